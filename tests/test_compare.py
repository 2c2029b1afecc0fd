"""Paired comparison of two formats per point: against scipy's paired t-test and
statsmodels' Benjamini-Hochberg, a format against itself gives zero, and bad names are
errors that list what is allowed."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from scipy import stats
from statsmodels.stats.multitest import multipletests

from deterrence import ArchiveError, compare_formats
from deterrence.analysis.stats import benjamini_hochberg, paired_cells
from deterrence.game.config import ConfigError

ROOT = Path(__file__).resolve().parent.parent
REFERENCE = ROOT / "results" / "reference"


def test_cells_match_scipys_paired_t_test():
    rng = np.random.default_rng(4)
    shift = np.linspace(-0.5, 0.5, 12)[:, None]
    a = rng.normal(size=(12, 6)) + shift
    b = a - shift + rng.normal(scale=0.5, size=(12, 6))
    cells = paired_cells(a, b, 0.9)
    for i in range(12):
        test = stats.ttest_rel(a[i], b[i])
        assert cells.p_value[i] == pytest.approx(test.pvalue, rel=1e-9)
        low, high = test.confidence_interval(0.9)
        assert cells.mean[i] - cells.half_width[i] == pytest.approx(low, rel=1e-9)
        assert cells.mean[i] + cells.half_width[i] == pytest.approx(high, rel=1e-9)
        assert cells.significant[i] == (low > 0 or high < 0)
        assert cells.pairs[i] == 6


def test_nan_pairs_are_left_out():
    a = np.array([[0.2, np.nan, 0.4, 0.9], [np.nan, np.nan, np.nan, 0.1]])
    b = np.array([[0.1, 0.3, np.nan, 0.5], [0.2, 0.2, 0.2, 0.2]])
    cells = paired_cells(a, b)
    assert list(cells.pairs) == [2, 1]
    test = stats.ttest_rel([0.2, 0.9], [0.1, 0.5])
    assert cells.p_value[0] == pytest.approx(test.pvalue)
    assert np.isnan(cells.half_width[1]) and not cells.significant[1]  # one pair: no test


def test_a_constant_difference_is_exact():
    a = np.full((2, 5), 0.3)
    cells = paired_cells(a, a - np.array([[0.1], [0.0]]))
    assert list(cells.significant) == [True, False]
    assert list(cells.p_value) == [0.0, 1.0]


@pytest.mark.parametrize("seed", range(5))
def test_benjamini_hochberg_matches_statsmodels(seed):
    rng = np.random.default_rng(seed)
    p = np.concatenate([rng.uniform(size=40), rng.uniform(0, 0.01, size=int(rng.integers(1,
                                                                                       20)))])
    p[rng.integers(0, p.size, 3)] = np.nan
    ok = np.isfinite(p)
    expected = np.zeros(p.size, dtype=bool)
    expected[ok] = multipletests(p[ok], alpha=0.05, method="fdr_bh")[0]
    np.testing.assert_array_equal(benjamini_hochberg(p, 0.05), expected)


def test_a_format_against_itself_differs_by_nothing():
    diff = compare_formats(REFERENCE, "nato_lite", "nato_lite")
    for outcome in ("escalation_frequency", "abandoned_given_escalation", "deterred_share"):
        values = diff[outcome].values
        assert np.all((values == 0) | np.isnan(values))
        assert not diff[f"{outcome}_significant"].values.any()
        assert not diff[f"{outcome}_significant_fdr"].values.any()
        assert diff.attrs[f"{outcome}_overall"] == 0


def test_archive_comparison_is_the_difference_of_the_stored_runs():
    with xr.open_dataset(REFERENCE / "data" / "simulation.nc", engine="scipy") as ds:
        sim = ds.load()
    first, second = [str(f) for f in sim.format.values[:2]]
    diff = compare_formats(sim, first, second)
    a = sim.escalation_frequency.sel(format=first).values
    b = sim.escalation_frequency.sel(format=second).values
    np.testing.assert_allclose(diff.escalation_frequency.values, (a - b).mean(axis=-1),
                               rtol=1e-12, atol=1e-15)
    assert diff.escalation_frequency.dims == sim.escalation_frequency.dims[1:-1]
    assert diff.attrs["escalation_frequency_overall"] == pytest.approx((a - b).mean())
    assert (a != b).any()  # the two formats do differ somewhere


def test_unknown_names_are_errors():
    with pytest.raises(ConfigError, match="first = 'nato_plus'.*allowed"):
        compare_formats(REFERENCE, "nato_plus", "nato_lite")
    with pytest.raises(ConfigError, match="outcome 'war'.*allowed"):
        compare_formats(REFERENCE, "nato_lite", "nato_lite", outcomes=("war",))
    with pytest.raises(ArchiveError, match="not an archive"):
        compare_formats(ROOT / "configs", "nato_lite", "nato_lite")
    with pytest.raises(ValueError, match="confidence"):
        paired_cells(np.zeros((2, 2)), np.zeros((2, 2)), confidence=1.5)
