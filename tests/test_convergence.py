"""The members' learning: experience-weighted attraction (Camerer & Ho 1999), and what it
makes of a readiness that is never tested.

* :func:`deterrence.simulate.rules.update_attractions` against a hand computation of
  Camerer & Ho's equations, ``N(t) = rho N(t-1) + 1`` and ``A^j(t) = [phi N(t-1) A^j(t-1)
  + (delta + (1 - delta) I(j played)) pi^j(t)] / N(t)``, on random inputs.
* Special cases: ``delta = 1`` and ``phi = rho`` is weighted fictitious play, each
  attraction the experience-weighted average of its payoffs (the initial attraction
  weighing ``N(0)``); with ``phi = rho`` every attraction stays within the range of the
  initial attractions and the weighted payoffs ``w pi`` (``w`` between ``delta`` and 1,
  so between 0 and ``pi``), whatever is chosen; with ``phi = 1, rho = 0`` (cumulative
  reinforcement) a constant payoff piles up without bound, so the bound is not vacuous.
* Where Russia never escalates no member experiences a crisis: the strategy "be ready"
  only costs its readiness cost each round. Its attraction falls from the start value
  (the expected gain of honouring, worked out here for a single member) towards that cost,
  and no further; without a readiness cost it falls towards 0, and never below.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from deterrence.simulate import engine
from deterrence.simulate import rules as dyn

from helpers import fmt, guarantor, scenario

ROUNDS = 300
RUNS = 50
#: Russia's payoff of refraining: far above anything a war can bring it (at most its war
#: aims, worth 1), so that with its resolve scale of 0.1 it escalates with a probability
#: below Lambda(-20), about 2e-9, each round.
SECURE_STATUS_QUO = 3.0
STATIC = {"war_damage": 0.0, "aid_persistence": 0.0, "sanctions_drag": 0.0}


def ewa_params(phi: float, rho: float, delta: float):
    return scenario([guarantor("A")]).dynamics.model_copy(update={
        "attraction_decay": phi, "experience_decay": rho, "foregone_payoff_weight": delta})


def hand_ewa(a_h, a_a, n, phi, rho, delta, pay_h, pay_a, chose_h):
    """One step of Camerer & Ho's equations (2.1)-(2.2) for one member, in floats."""
    new_n = rho * n + 1.0
    w_h = delta + (1.0 - delta) * (1.0 if chose_h else 0.0)
    w_a = delta + (1.0 - delta) * (0.0 if chose_h else 1.0)
    return ((phi * n * a_h + w_h * pay_h) / new_n, (phi * n * a_a + w_a * pay_a) / new_n,
            new_n)


@pytest.mark.parametrize("seed", range(10))
def test_update_attractions_is_camerer_and_hos_ewa(seed):
    rng = np.random.default_rng(seed)
    phi, rho, delta = rng.uniform(0, 1, 3)
    shape = (int(rng.integers(1, 6)), int(rng.integers(1, 5)))
    a_h, a_a = rng.normal(0, 2, shape), rng.normal(0, 2, shape)
    n = rng.uniform(0, 20, shape)
    params = ewa_params(phi, rho, delta)
    for _ in range(5):
        pay_h, pay_a = rng.normal(0, 3, shape), rng.normal(0, 3, shape)
        chose = rng.random(shape) < 0.5
        got = dyn.update_attractions(a_h, a_a, n, params, pay_h, pay_a, chose)
        for idx in np.ndindex(shape):
            want = hand_ewa(a_h[idx], a_a[idx], n[idx], phi, rho, delta, pay_h[idx],
                            pay_a[idx], chose[idx])
            for value, expected in zip((g[idx] for g in got), want, strict=True):
                assert value == pytest.approx(expected, rel=1e-13, abs=1e-15)
        a_h, a_a, n = got


def test_delta_one_and_phi_equal_rho_is_weighted_fictitious_play():
    rng = np.random.default_rng(5)
    for _ in range(10):
        rho = float(rng.uniform(0, 1))
        params = ewa_params(rho, rho, 1.0)
        a0, n0 = rng.normal(0, 1, (1, 2)), float(rng.uniform(0, 5))
        a_h, a_a, n = a0[:, :1], a0[:, 1:], np.full((1, 1), n0)
        seen_h, seen_a = [], []
        for t in range(1, 30):
            pay_h, pay_a = rng.normal(0, 1, (1, 1)), rng.normal(0, 1, (1, 1))
            seen_h.append(float(pay_h[0, 0]))
            seen_a.append(float(pay_a[0, 0]))
            a_h, a_a, n = dyn.update_attractions(a_h, a_a, n, params, pay_h, pay_a,
                                                 rng.random((1, 1)) < 0.5)
            # payoff s (1-based) weighs rho^(t - s), the initial attraction rho^t N(0)
            weights = [rho ** (t - s) for s in range(1, t + 1)]
            total = rho ** t * n0 + sum(weights)
            for got, start, seen in ((a_h, a0[0, 0], seen_h), (a_a, a0[0, 1], seen_a)):
                average = (rho ** t * n0 * start
                           + sum(w * x for w, x in zip(weights, seen, strict=True))) / total
                assert got[0, 0] == pytest.approx(average, rel=1e-11, abs=1e-13)
            assert n[0, 0] == pytest.approx(total, rel=1e-13)


@pytest.mark.parametrize("seed", range(5))
def test_with_phi_equal_rho_attractions_stay_within_the_payoffs_seen(seed):
    """The v1 rule let untested attractions fall without bound; EWA with phi = rho keeps
    them weighted averages."""
    rng = np.random.default_rng(seed)
    rho, delta = float(rng.uniform(0.5, 1)), float(rng.uniform(0, 1))
    params = ewa_params(rho, rho, delta)
    shape = (200, 3)
    a_h, a_a = rng.normal(0, 1, shape), rng.normal(0, 1, shape)
    n = rng.uniform(0, 10, shape)
    low = np.minimum(np.minimum(a_h, a_a), 0.0)
    high = np.maximum(np.maximum(a_h, a_a), 0.0)
    for _ in range(300):
        # a persistent negative drift, as a readiness cost that is never repaid
        pay_h, pay_a = rng.normal(-0.5, 1, shape), rng.normal(0.2, 1, shape)
        low, high = np.minimum(low, np.minimum(pay_h, pay_a)), np.maximum(
            high, np.maximum(pay_h, pay_a))
        a_h, a_a, n = dyn.update_attractions(a_h, a_a, n, params, pay_h, pay_a,
                                             rng.random(shape) < 0.5)
        for a in (a_h, a_a):
            assert (a >= low - 1e-12).all() and (a <= high + 1e-12).all()
    # the contrast: cumulative reinforcement (phi = 1, rho = 0) piles a constant cost up
    params = ewa_params(1.0, 0.0, delta)
    a_h, a_a, n = np.zeros((1, 1)), np.zeros((1, 1)), np.ones((1, 1))
    for _ in range(300):
        a_h, a_a, n = dyn.update_attractions(a_h, a_a, n, params, -np.ones((1, 1)),
                                             np.zeros((1, 1)), np.ones((1, 1), bool))
    assert a_h[0, 0] == pytest.approx(-300.0)


def single_ally(readiness: float, delta: float):
    ally = guarantor("A", military_spending_usd_bn=300.0, stake_in_ukraine=1.0,
                     honouring_cost=0.3, audience_cost=0.3, readiness_cost=readiness)
    spec = fmt(commitment_bindingness=1.0, response_delay_days=0.0,
               response={"denial_share": 0.5, "cost_share": 1.0})
    sc = scenario([ally], russia={"status_quo_value": SECURE_STATUS_QUO},
                  dynamics={**STATIC, "foregone_payoff_weight": delta})
    return sc, spec


def expected_gain_alone(sc, spec) -> float:
    """The ally's gain of honouring, from the payoff equations: it is the only member, so
    ``G = r - h + stake (P(0) - P(1)) - catastrophe (risk(1) - risk(0))``, whatever Russia
    believes of it."""
    ally = sc.guarantors[0]
    m = sc.russia.military_spending_usd_bn
    ukraine = sc.ukraine.military_spending_usd_bn + sc.ukraine.baseline_military_aid_usd_bn
    added = spec.response.denial_share * ally.military_spending_usd_bn  # no delay: tau = 1
    success_alone = m / (m + ukraine)
    success_helped = m / (m + ukraine + added) * (1.0 - spec.response.decisive_probability)
    risk = (spec.response.direct_combat * ally.nuclear_armed
            * sc.russia.nuclear_escalation_probability)
    return (spec.commitment_bindingness * ally.audience_cost
            - spec.response.cost_share * ally.honouring_cost
            + ally.stake_in_ukraine * (success_alone - success_helped)
            - ally.catastrophe_cost * risk)


@pytest.mark.parametrize("readiness", [0.05, 0.0])
def test_untested_readiness_erodes_towards_its_cost_and_no_further(readiness):
    # delta = 1: both strategies are reinforced fully, so the path is the same in every run
    sc, spec = single_ally(readiness, delta=1.0)
    setup = dyn.Setup.from_config(sc, spec)
    prior = dyn.equilibrium_priors(setup.base)
    start = dyn.initial_attractions(setup.base, prior, setup.params)[0][0, 0]
    assert start == pytest.approx(expected_gain_alone(sc, spec), rel=1e-12)
    assert start > 0.1  # the ally starts ready to honour
    sim = engine.simulate(setup, RUNS, ROUNDS, keep_series=True)
    assert not sim.series["escalated"].any()  # never tested
    attraction = sim.series["attraction"][:, :, 0]
    # weighted fictitious play: after round t (1-based) the average of the start value
    # (weight rho^t N(0)) and t payoffs of -readiness (weights rho^(t - s)); "not ready"
    # pays 0 throughout, so its attraction stays 0
    d = sc.dynamics
    rho, n0 = d.experience_decay, d.initial_experience
    assert d.attraction_decay == rho
    t = np.arange(1, ROUNDS + 1)
    paid = (1.0 - rho ** t) / (1.0 - rho)  # sum of rho^(t - s), s = 1 .. t
    expected = (rho ** t * n0 * start - readiness * paid) / (rho ** t * n0 + paid)
    np.testing.assert_allclose(attraction, np.broadcast_to(expected, attraction.shape),
                               rtol=0, atol=1e-12)
    final = attraction[:, -1]
    sigma = sc.guarantors[0].resolve_scale
    if readiness > 0:
        # eroded to the cost of readiness, and never below it
        assert np.all(final < 0)
        assert (attraction >= -readiness - 1e-12).all()
        np.testing.assert_allclose(final, -readiness, atol=1e-9)
        honour_alone = 1.0 / (1.0 + math.exp(-final[0] / sigma))
        assert honour_alone < 1.0 / (1.0 + math.exp(-start / sigma))
        assert honour_alone < 0.5  # deciding alone it would now more likely abstain
    else:
        # the start value is forgotten, towards the 0 an untested readiness pays
        assert (attraction > 0).all()
        assert np.all(np.diff(attraction, axis=1) <= 0)
        assert final[0] < 1e-6 * start


def test_with_a_partial_foregone_weight_readiness_settles_between_its_weighted_costs():
    """delta < 1: the strategy not played is reinforced at weight delta, so "be ready"
    settles between -readiness (played) and -delta readiness (not played), wherever each
    run's draws put it."""
    readiness, delta = 0.05, 0.5
    sc, spec = single_ally(readiness, delta)
    setup = dyn.Setup.from_config(sc, spec)
    sim = engine.simulate(setup, RUNS, ROUNDS, keep_series=True)
    assert not sim.series["escalated"].any()
    attraction = sim.series["attraction"][:, :, 0]
    start = expected_gain_alone(sc, spec)
    assert (attraction >= -readiness - 1e-12).all() and (attraction <= start + 1e-12).all()
    late = attraction[:, -50:]
    assert (late >= -readiness - 1e-9).all() and (late <= -delta * readiness + 1e-9).all()
