"""The calibration of the resolve scales (deterrence/analysis/calibration.py,
docs/calibration.md): it recovers the scales that generated synthetic counts, its intervals
cover them at about the nominal rate, it refuses rates that cannot identify a scale, and the
shipped priors are a re-run of the fit."""

from __future__ import annotations

import math
import tomllib
from dataclasses import replace

import numpy as np
import pytest
from scipy.stats import binom

from deterrence.analysis import calibration as cal
from deterrence.game.payoffs import build_game
from deterrence.solve.equilibrium import solve_grid

GUARANTOR = "guarantors.*.resolve_scale"
RUSSIA = "russia.resolve_scale"


@pytest.fixture(scope="module")
def crisis():
    return cal.reference_crisis()


@pytest.fixture(scope="module")
def honoured():
    rates, _ = cal.load_base_rates()
    (rate,) = [r for r in rates if r.parameter == GUARANTOR]
    return rate


def synthetic(parameter: str, quantity: str) -> cal.BaseRate:
    return cal.BaseRate(id="synthetic", parameter=parameter, quantity=quantity, value=0.5,
                        n=1, source="none", status="recalled")


def test_the_reference_crisis_is_a_pre_nuclear_defence_pact_whose_members_decide(crisis):
    scenario, fmt = crisis
    game = build_game(scenario, fmt)
    assert not game.engaged.any()                    # no garrison honours whatever its scale
    assert np.all(game.escalation_probability == 0)  # no nuclear risk before 1945
    assert fmt.commitment_bindingness == 1.0 and fmt.coordination_probability == 0.0
    assert np.allclose(game.reneging_cost, game.honouring_cost)  # a treaty, a full response


@pytest.mark.parametrize("truth", [0.003, 0.02])
def test_the_fit_recovers_the_guarantors_scale_that_generated_the_counts(crisis, truth):
    scenario, fmt = crisis
    rate = synthetic(GUARANTOR, "mean_credibility")
    p = cal.model_quantity(scenario, fmt, rate.quantity, GUARANTOR, np.array([truth]))[0]
    n = 100_000
    k = np.random.default_rng(7).binomial(n, p)
    fit = cal.fit_rate(rate, scenario, fmt, k=k, n=n)
    assert fit.low < truth < fit.high
    assert abs(math.log(fit.estimate / truth)) < 0.1


def test_russias_scale_is_recovered_and_matches_the_closed_form(crisis):
    """P(escalate) = Lambda(-margin / sigma_R) (docs/model.md §3.6), and the margin does not
    depend on sigma_R: the maximum-likelihood scale for a share s is -margin / logit(s)."""
    scenario, fmt = crisis
    fixed = {GUARANTOR: 0.004}
    truth, n = 0.3, 10_000
    rate = synthetic(RUSSIA, "escalation_probability")
    p = cal.model_quantity(scenario, fmt, rate.quantity, RUSSIA, np.array([truth]), fixed)[0]
    k = np.random.default_rng(11).binomial(n, p)
    fit = cal.fit_rate(rate, scenario, fmt, fixed, k=k, n=n)
    margin = solve_grid(build_game(scenario, fmt, {GUARANTOR: np.array([0.004])}),
                        threads=1).deterrence_margin[0]
    share = k / n
    assert fit.estimate == pytest.approx(-margin / math.log(share / (1 - share)), rel=1e-6)
    assert fit.low < truth < fit.high


def test_the_likelihood_interval_covers_the_truth_at_about_the_nominal_rate(crisis):
    scenario, fmt = crisis
    rate = synthetic(GUARANTOR, "mean_credibility")
    truth, n, replications = 0.01, 200, 150
    p = cal.model_quantity(scenario, fmt, rate.quantity, GUARANTOR, np.array([truth]))[0]
    covered = 0
    for k in np.random.default_rng(2024).binomial(n, p, size=replications):
        try:
            fit = cal.fit_rate(rate, scenario, fmt, k=k, n=n)
        except cal.NotIdentified:
            continue  # counts as not covering
        covered += fit.low < truth < fit.high
    # the two-sided 0.2% acceptance region of Binomial(150, 0.95)
    low, high = binom.ppf(0.001, replications, 0.95), binom.isf(0.001, replications, 0.95)
    assert low <= covered <= high, covered


def test_a_rate_the_reference_crisis_cannot_reach_is_not_identified(crisis, honoured):
    """In the reference crisis reneging costs what honouring costs and there is no nuclear
    risk, so a member's gain from honouring is its denial gain alone, positive: it honours
    with probability above 1/2 at every scale, and Berkemeier & Fuhrmann's 41% for defence
    pacts cannot be fitted."""
    scenario, fmt = crisis
    with pytest.raises(cal.NotIdentified, match="not identified"):
        cal.fit_rate(replace(honoured, value=0.41), scenario, fmt)


def test_the_shipped_priors_are_a_rerun_of_the_fit():
    """To a relative 1e-6: the optimiser and the root search stop within 1e-9 in log-scale."""
    shipped = tomllib.loads(cal.FITTED.read_text())
    rerun = tomllib.loads(cal.priors_toml(*cal.fit_all()))
    assert shipped["priors"].keys() == rerun["priors"].keys()
    for path, prior in rerun["priors"].items():
        assert shipped["priors"][path]["distribution"] == prior["distribution"] == "lognormal"
        assert shipped["priors"][path]["source"] == prior["source"]
        for key in ("median", "sigma"):
            assert shipped["priors"][path][key] == pytest.approx(prior[key], rel=1e-6), path
    for path, fit in rerun["fits"].items():
        assert shipped["fits"][path]["interval_95"] == pytest.approx(fit["interval_95"],
                                                                     rel=1e-6)


def test_the_fitted_honouring_probability_is_the_published_rate(honoured):
    fits, unfitted = cal.fit_all()
    (fit,) = [f for f in fits if f.rate.parameter == GUARANTOR]
    assert fit.fitted_quantity == pytest.approx(honoured.value, abs=1e-6)
    assert fit.low < fit.estimate < fit.high
    assert RUSSIA in unfitted


def test_a_bad_base_rate_file_names_the_key_and_the_value(tmp_path):
    bad = tmp_path / "rates.toml"
    bad.write_text('[[rates]]\nid = "x"\nparameter = "guarantors.*.resolve_scale"\n'
                   'quantity = "mean_credibility"\nvalue = 1.5\nn = 10\nsource = "s"\n'
                   'status = "checked"\n')
    with pytest.raises(cal.CalibrationError, match=r"key 'value' = 1\.5"):
        cal.load_base_rates(bad)


def test_the_shipped_priors_are_valid_distributions_of_their_parameters():
    """Each prior is a distribution table its parameter accepts (its schema bounds), and
    the point value used where nothing is sampled is its median, the fitted scale."""
    from deterrence.game.config import Distribution, check_distribution

    for path, table in tomllib.loads(cal.FITTED.read_text())["priors"].items():
        dist = Distribution(**table)
        check_distribution(dist, cal.SCALES[path])
        assert dist.point() == pytest.approx(table["median"], rel=1e-12)


def test_the_guarantors_default_scale_is_the_fitted_median():
    """The schema's default is the calibration's estimate (rounded to 4 significant digits)."""
    from deterrence.game.config import GuarantorParameters, calibrated_priors

    fitted = calibrated_priors()["guarantors.*.resolve_scale"]
    default = GuarantorParameters.model_fields["resolve_scale"].default
    assert default == pytest.approx(fitted.median, rel=5e-4)
    assert fitted.point() == pytest.approx(default, rel=5e-4)  # the prior's median: the default
