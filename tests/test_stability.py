"""Erosion time (Kaplan-Meier) and end-state shares against independent facts: hand
computations, the closed form of a geometric waiting time, statsmodels' survival function,
and SciPy's Student-t interval."""

from __future__ import annotations

import math

import numpy as np
import pytest
import xarray as xr
from scipy import stats

from deterrence.analysis.stability import (
    END_SHARES,
    STABILITY_VARIABLES,
    kaplan_meier,
    median_interval,
    rounds_to_first_escalation,
    stability,
)
from deterrence.analysis.stats import mean_t_interval
from deterrence.simulate.rules import DEFEATED, ONGOING, SETTLED


def geometric_median(h: float) -> int:
    """The median of T with P(T > k) = (1 - h)^k: the smallest k with (1 - h)^k <= 1/2."""
    return math.ceil(math.log(0.5) / math.log(1.0 - h))


def test_without_censoring_the_curve_is_the_empirical_survival():
    times = np.array([3, 1, 2, 5, 2])
    curve = kaplan_meier(times, np.ones(5, dtype=bool))
    # P(T > t) counted by hand: 4, 2, 1 and 0 of the 5 runs exceed 1, 2, 3 and 5
    assert curve.times.tolist() == [1, 2, 3, 5]
    assert curve.survival == pytest.approx([4 / 5, 2 / 5, 1 / 5, 0])
    median, _, _ = median_interval(curve)
    assert median == 2  # the sample median of 1, 2, 2, 3, 5


def test_censored_example_by_hand():
    # runs: events at 1, 3, 3, 5; censored at 2 and 4 (at risk at their own time)
    curve = kaplan_meier([1, 2, 3, 3, 4, 5], [True, False, True, True, False, True])
    assert curve.times.tolist() == [1, 3, 5]
    assert curve.at_risk.tolist() == [6, 4, 1]
    assert curve.survival == pytest.approx([5 / 6, 5 / 6 * 2 / 4, 0.0])
    # Greenwood: S(t)^2 * sum d / (n (n - d))
    var_1 = (5 / 6) ** 2 * (1 / (6 * 5))
    var_3 = (5 / 12) ** 2 * (1 / (6 * 5) + 2 / (4 * 2))
    assert curve.standard_error[:2] == pytest.approx([math.sqrt(var_1), math.sqrt(var_3)])
    assert curve.at(2) == pytest.approx(5 / 6) and curve.at(0.5) == 1.0
    median, low, high = median_interval(curve)
    assert median == 3
    z = stats.norm.ppf(0.975)
    # lower limit: the first time with S - z se <= 1/2; upper: with S + z se <= 1/2
    assert low == (1 if 5 / 6 - z * math.sqrt(var_1) <= 0.5 else 3)
    assert high == (3 if 5 / 12 + z * math.sqrt(var_3) <= 0.5 else 5)


def test_agrees_with_statsmodels_on_censored_samples():
    from statsmodels.duration.survfunc import SurvfuncRight

    rng = np.random.default_rng(7)
    for _ in range(20):
        n = int(rng.integers(30, 200))
        event_time = rng.geometric(rng.uniform(0.02, 0.3), n)
        censor_time = rng.integers(1, 60, n)
        durations = np.minimum(event_time, censor_time)
        observed = event_time <= censor_time
        ours = kaplan_meier(durations, observed)
        theirs = SurvfuncRight(durations, observed.astype(int))
        np.testing.assert_allclose(ours.times, theirs.surv_times)
        np.testing.assert_allclose(ours.survival, theirs.surv_prob, atol=1e-12)
        alive = ours.survival > 0  # at S = 0 statsmodels' error is NaN, ours 0
        np.testing.assert_allclose(ours.standard_error[alive], theirs.surv_prob_se[alive],
                                   atol=1e-12)
        if np.isclose(ours.survival, 0.5).any():
            continue  # statsmodels (as SAS) takes S < 1/2, we take S <= 1/2
        median, low, high = median_interval(ours)
        assert median == pytest.approx(theirs.quantile(0.5), nan_ok=True)
        lb, ub = theirs.quantile_ci(0.5, alpha=0.05, method="linear")
        assert low == pytest.approx(lb, nan_ok=True)
        assert high == pytest.approx(np.nan if np.isinf(ub) else ub, nan_ok=True)


@pytest.mark.parametrize("h", [0.1, 0.3, 0.05])
def test_geometric_waiting_time_has_its_closed_form_median(h):
    rng = np.random.default_rng(11)
    steps = 400  # far beyond the median: (1 - h)^400 is negligible
    first = rng.geometric(h, 40_000) - 1.0  # round of the first escalation, from 0
    first[first >= steps] = np.nan
    durations, observed = rounds_to_first_escalation(first, np.full(first.size, np.nan),
                                                     steps)
    median, low, high = median_interval(kaplan_meier(durations, observed))
    assert median == geometric_median(h)
    assert low <= median <= high


def test_independent_censoring_leaves_the_median_unbiased():
    rng = np.random.default_rng(3)
    h, n = 0.1, 40_000
    event_time = rng.geometric(h, n)
    censor_time = rng.geometric(0.08, n)  # many runs censored before their event
    durations = np.minimum(event_time, censor_time)
    observed = event_time <= censor_time
    median, _, _ = median_interval(kaplan_meier(durations, observed))
    assert median == geometric_median(h)
    # the naive median of the observed times alone is biased downwards
    assert np.median(durations[observed]) < geometric_median(h)


def test_interval_covers_the_true_median():
    rng = np.random.default_rng(5)
    h, n, trials = 0.12, 60, 400
    truth = geometric_median(h)
    covered = 0
    for _ in range(trials):
        t = rng.geometric(h, n)
        _, low, high = median_interval(kaplan_meier(t, np.ones(n, dtype=bool)))
        covered += low <= truth <= (np.inf if np.isnan(high) else high)
    # a nominal 95% interval on discrete times; the binomial sd of the rate is about 0.011
    assert covered / trials >= 0.92


def test_median_not_reached_when_most_runs_hold_to_the_horizon():
    rng = np.random.default_rng(2)
    h, steps, n = 0.02, 20, 20_000
    first = rng.geometric(h, n) - 1.0
    first[first >= steps] = np.nan
    durations, observed = rounds_to_first_escalation(first, np.full(n, np.nan), steps)
    curve = kaplan_meier(durations, observed)
    median, _, high = median_interval(curve)
    assert np.isnan(median) and np.isnan(high)
    share = (1 - h) ** steps
    assert curve.at(steps) == pytest.approx(share, abs=4 * math.sqrt(share * (1 - share) / n))


def test_a_run_that_ends_without_escalation_is_censored_at_its_end():
    durations, observed = rounds_to_first_escalation([np.nan, 2.0, np.nan], [4.0, 5.0, np.nan],
                                                     10)
    assert durations.tolist() == [5.0, 3.0, 10.0]
    assert observed.tolist() == [False, True, False]


def test_mean_t_interval_is_scipys():
    rng = np.random.default_rng(1)
    v = rng.uniform(size=(4, 9))
    v[0, :3] = np.nan
    mean, half, n = mean_t_interval(v, 0.9)
    for row in range(4):
        x = v[row][np.isfinite(v[row])]
        low, high = stats.t.interval(0.9, x.size - 1, loc=x.mean(), scale=stats.sem(x))
        assert n[row] == x.size
        assert mean[row] == pytest.approx(x.mean())
        assert half[row] == pytest.approx((high - low) / 2)
    assert np.isnan(mean_t_interval([[0.5]])[1][0])


def synthetic(first, end_state, end_round, frequency, steps=12, round_months=3.0):
    """A simulated dataset of 2 formats x 1 point x replicates, as a sweep's."""
    dims = ("format", "x", "replicate")
    shape = (2, 1, len(first))

    def tile(values):
        return np.broadcast_to(np.asarray(values, dtype=np.float64), shape).copy()

    return xr.Dataset(
        {"first_escalation": (dims, tile(first)), "end_state": (dims, tile(end_state)),
         "end_round": (dims, tile(end_round)),
         "escalation_frequency": (dims, tile(frequency))},
        coords={"format": ["a", "b"], "x": [0.5], "replicate": np.arange(len(first))},
        attrs={"steps": steps, "round_months": round_months})


def test_stability_of_a_dataset_counted_by_hand():
    nan = np.nan
    first = [0, 2, nan, 5, nan, 1, 3, nan]
    state = [DEFEATED, SETTLED, ONGOING, ONGOING, ONGOING, DEFEATED, ONGOING, ONGOING]
    end = [4, 2, nan, nan, nan, 9, nan, nan]
    frequency = [0.4, 0.3, 0.0, 0.1, 0.0, 0.5, 0.2, 0.0]
    out = stability(synthetic(first, state, end, frequency)).sel(format="b", x=0.5)
    assert float(out.defeated_share) == 2 / 8
    assert float(out.settled_share) == 1 / 8
    assert float(out.ongoing_escalated_share) == 2 / 8  # rounds 5 and 3, still ongoing
    assert float(out.ongoing_deterred_share) == 3 / 8
    assert sum(float(out[s]) for s in END_SHARES) == pytest.approx(1.0)
    # times 1, 2, 3, 4, 6 observed, three censored at 12: S(3) = 5/8, S(4) = 4/8
    assert float(out.erosion_rounds) == 4
    assert float(out.erosion_years) == pytest.approx(4 * 3.0 / 12)
    assert float(out.deterred_at_horizon) == pytest.approx(3 / 8)
    low, high = stats.t.interval(0.95, 7, loc=np.mean(frequency),
                                 scale=stats.sem(frequency))
    assert float(out.escalation_frequency_mean) == pytest.approx(np.mean(frequency))
    assert float(out.escalation_frequency_low) == pytest.approx(max(low, 0.0))
    assert float(out.escalation_frequency_high) == pytest.approx(high)
    assert float(out.runs) == 8


def test_every_variable_is_labelled():
    ds = stability(synthetic([0.0, np.nan], [ONGOING, ONGOING], [np.nan, np.nan],
                             [0.5, 0.0]))
    for name in STABILITY_VARIABLES:
        assert {"long_name", "units"} <= set(ds[name].attrs), name
    assert set(ds.dims) == {"format", "x"}


def test_a_dataset_without_end_states_is_refused():
    ds = synthetic([0.0], [ONGOING], [np.nan], [0.5]).drop_vars("end_state")
    with pytest.raises(ValueError, match="end_state"):
        stability(ds)
