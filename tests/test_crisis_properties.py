"""Properties of the repeated crisis, each against an independent fact.

* **Withdrawal.** After the only member with troops withdraws, Russia's refrain payoff has
  no provocation cost, and for the others the committed game is the game built without
  that member (the same payoffs for Russia and for them, the same equilibrium priors).
* **Commitments and priors.** Raising a member's bindingness or deploying its troops
  raises (weakly) Russia's prior about it: its honouring probability in the equilibria.
* **The first round is the one-shot game.** With zero decision noise and beliefs at their
  equilibrium prior, the share of runs escalating in round 0 matches the exact solver's
  P(escalate) on every cell of a grid (binomial tests, Bonferroni-corrected).
* **Coordination.** Raising the coordination probability does not raise the long-run
  escalation frequency (common random numbers).
* **Types.** Each round's type has the crisis game's logistic distribution (KS test at a
  late round), and the latent's lag-k correlation is rho^k, rho = 2^(-months / 12 / half
  life).
* **Consequences.** After k successes Russia has achieved 1 - (1 - g)^k of its war aims;
  a run ends defeated exactly when that reaches the threshold; a settlement probability of
  0 never settles and 1 settles at the first failure; an ended run records no escalation.
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
from scipy import stats

from deterrence.game.config import SCENARIOS_DIR, Shock, load_catalogue, load_scenario
from deterrence.game.payoffs import (
    build_game,
    expectation,
    honouring_gain,
    russia_escalation_value,
    russia_refrain_payoff,
)
from deterrence.simulate import engine
from deterrence.simulate import rules as dyn
from deterrence.solve.equilibrium import solve_grid

from helpers import random_case, random_response

BASELINE = load_scenario(SCENARIOS_DIR / "baseline.toml")
CATALOGUE = load_catalogue()
#: Random instances per property.
INSTANCES = 25
#: Tolerance of the solver's equilibria (its fixed points are found to about 1e-10).
EQUILIBRIUM_ATOL = 1e-8


def committed_after(base, shocks_by_member: dict[int, Shock]):
    """The committed game after the shocks (member index -> shock), and the commitments."""
    c = dyn.Commitments.initial(base)
    for i, s in shocks_by_member.items():
        dyn.change_commitment(c, s, i)
    return dyn.committed_game(base, c), c


# ---------------------------------------------------------------------------------------
# Withdrawal


def no_troops(rng, **kw):
    return {**random_response(rng, **kw), "troops_on_ground": False}


@pytest.mark.parametrize("seed", range(INSTANCES))
def test_a_withdrawn_members_troops_no_longer_provoke_and_it_changes_nothing(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 5))
    sc, f = random_case(rng, n, response=no_troops)
    who = int(rng.integers(n))
    gid = f"G{who}"
    overrides = dict(f.response_overrides)
    overrides[gid] = overrides[gid].model_copy(update={"troops_on_ground": True})
    f = f.model_copy(update={"response_overrides": overrides})
    sc = sc.model_copy(update={"russia": sc.russia.model_copy(
        update={"foreign_troops_aversion": float(rng.uniform(0.05, 0.3))})})
    base = build_game(sc, f)
    assert base.provocation_cost[0] > 0  # before: the garrison provokes
    committed, c = committed_after(base, {who: Shock(step=0, kind="withdraw", guarantor=gid)})
    stage = dyn.stage_game(committed, dyn.Stocks.initial(base))
    assert russia_refrain_payoff(stage)[0] == sc.russia.status_quo_value
    # the game built without the member at all
    others = [m for m in f.members if m != gid]
    reduced = build_game(sc, f.model_copy(update={
        "members": others,
        "response_overrides": {m: r for m, r in f.response_overrides.items() if m != gid}}))
    keep = [i for i in range(n) if i != who]
    for name in ("added_capability", "decisive_probability", "sanctions_weight",
                 "escalation_probability", "stake", "honouring_cost", "reneging_cost",
                 "catastrophe_cost", "troops_on_ground"):
        np.testing.assert_array_equal(getattr(committed, name)[:, keep],
                                      getattr(reduced, name), err_msg=name)
    # the same payoffs for Russia and the others whatever the absent member would do
    q = rng.uniform(0.0, 1.0, size=(1, n))
    with_member = expectation(committed, q)
    without = expectation(reduced, q[:, keep])
    np.testing.assert_allclose(russia_escalation_value(committed, with_member),
                               russia_escalation_value(reduced, without), rtol=1e-12)
    np.testing.assert_allclose(honouring_gain(committed, with_member)[:, keep],
                               honouring_gain(reduced, without), rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(dyn.equilibrium_priors(committed)[:, :, keep],
                               dyn.equilibrium_priors(reduced), rtol=0,
                               atol=EQUILIBRIUM_ATOL)


# ---------------------------------------------------------------------------------------
# Commitments raise the prior


@pytest.mark.parametrize("seed", range(INSTANCES))
def test_binding_a_member_more_or_deploying_its_troops_raises_the_prior_about_it(seed):
    rng = np.random.default_rng(1000 + seed)
    n = int(rng.integers(1, 5))
    sc, f = random_case(rng, n, response=no_troops)
    base = build_game(sc, f)
    who = int(rng.integers(n))
    gid = f"G{who}"
    before = dyn.equilibrium_priors(base)[0]
    tighter = float(rng.uniform(f.commitment_bindingness, 1.0))
    bound, _ = committed_after(base, {who: Shock(step=0, kind="bindingness_change",
                                                 guarantor=gid, bindingness=tighter)})
    deployed, _ = committed_after(base, {who: Shock(step=0, kind="deploy", guarantor=gid)})
    for branch in (dyn.ALONE, dyn.COORDINATED):
        assert (dyn.equilibrium_priors(bound)[0, branch, who]
                >= before[branch, who] - EQUILIBRIUM_ATOL), (seed, branch, tighter)
        assert dyn.equilibrium_priors(deployed)[0, branch, who] == 1.0


# ---------------------------------------------------------------------------------------
# The first round against the exact solver

#: Family-wise level of the binomial tests (Bonferroni over every cell of every format).
FAMILY_LEVEL = 0.01
FIRST_ROUND_RUNS = 3000
FIRST_ROUND_FORMATS = ("bilateral", "nato_lite", "three_tier", "coalition")
STATUS_QUO = np.array([-0.2, 0.0, 0.2, 0.4])
BINDINGNESS = np.array([0.1, 0.4, 0.7, 1.0])


def grid_setup(format_id: str, overrides: dict, dynamics: dict | None = None, seed=7):
    sc = BASELINE.model_copy(update={"dynamics": BASELINE.dynamics.model_copy(
        update=dynamics or {})})
    spec = CATALOGUE[format_id]
    grid = build_game(sc, spec, overrides)
    return replace(dyn.Setup.from_config(sc, spec, seed=seed), base=grid)


def test_first_round_escalation_share_matches_the_exact_solver_on_a_grid():
    overrides = {"russia.status_quo_value": STATUS_QUO[:, None],
                 "format.commitment_bindingness": BINDINGNESS[None, :]}
    cells = STATUS_QUO.size * BINDINGNESS.size
    level = FAMILY_LEVEL / (cells * len(FIRST_ROUND_FORMATS))
    failures, informative = [], 0
    for format_id in FIRST_ROUND_FORMATS:
        setup = grid_setup(format_id, overrides)
        assert setup.params.decision_noise_share == 0
        exact = solve_grid(setup.base).escalation_probability
        runs = np.arange(cells * FIRST_ROUND_RUNS)
        cell_of = runs % cells
        sim = engine.simulate(setup, runs, 1, cells=cell_of)
        escalated = sim.summary["escalation_frequency"] > 0
        for k in range(cells):
            hits = int(escalated[cell_of == k].sum())
            p = stats.binomtest(hits, FIRST_ROUND_RUNS, exact[k]).pvalue
            informative += 0.02 < exact[k] < 0.98
            if p < level:
                failures.append((format_id, k, hits / FIRST_ROUND_RUNS, float(exact[k]), p))
    assert not failures, failures
    assert informative >= 0.75 * cells * len(FIRST_ROUND_FORMATS), informative


# ---------------------------------------------------------------------------------------
# Coordination does not invite escalation

COORDINATION = np.array([0.0, 0.3, 0.6, 0.9])
LONG_RUNS, LONG_STEPS = 200, 60
#: How many standard errors of the paired difference a rise may reach by chance.
RISE_SE = 3.0


@pytest.mark.parametrize("format_id", ["nato_lite", "three_tier", "bilateral"])
def test_raising_the_coordination_probability_does_not_raise_long_run_escalation(format_id):
    status_quo = np.array([0.0, 0.3])
    overrides = {"format.coordination_probability": COORDINATION[:, None],
                 "russia.status_quo_value": status_quo[None, :]}
    setup = grid_setup(format_id, overrides)
    runs = np.arange(LONG_RUNS)
    freq = {}
    for k in range(setup.base.cells):
        freq[k] = engine.simulate(setup, runs, LONG_STEPS,
                                  cells=np.full(runs.size, k)).summary["escalation_frequency"]
    rises = []
    for j in range(status_quo.size):
        for a in range(COORDINATION.size - 1):
            low, high = freq[a * status_quo.size + j], freq[(a + 1) * status_quo.size + j]
            diff = high - low  # the same runs (common random numbers)
            se = diff.std(ddof=1) / math.sqrt(diff.size) + 1e-12
            if diff.mean() > RISE_SE * se:
                rises.append((COORDINATION[a], COORDINATION[a + 1], status_quo[j],
                              float(low.mean()), float(high.mean())))
    assert not rises, rises


# ---------------------------------------------------------------------------------------
# Types

TYPE_RUNS = 20_000


@pytest.mark.parametrize(("months", "half_life"), [(1.0, 5.0), (3.0, 1.0), (12.0, 0.5)])
def test_types_are_logistic_every_round_and_their_latent_is_ar1(months, half_life):
    params = BASELINE.dynamics.model_copy(update={"round_months": months,
                                                  "type_half_life_years": half_life})
    rho = 2.0 ** (-(months / 12.0) / half_life)  # correlation 1/2 over half_life years
    assert dyn.type_persistence(params) == pytest.approx(rho, rel=1e-14)
    key, runs, rounds, sigma = dyn.root_key(11), np.arange(TYPE_RUNS), 30, 0.37
    latent, path = None, []
    for t in range(rounds):
        u = dyn.uniforms(key, runs, t, dyn.SLOT_RUSSIA_TYPE + 1)[:, dyn.SLOT_RUSSIA_TYPE]
        latent = dyn.advance_latent(latent, u, dyn.type_persistence(params))
        path.append(latent)
    path = np.array(path)
    late = dyn.type_value(path[-1], np.full(TYPE_RUNS, sigma))
    assert stats.kstest(late, stats.logistic(scale=sigma).cdf).pvalue > 1e-3
    assert stats.kstest(path[-1], stats.norm.cdf).pvalue > 1e-3
    # the lag-k correlation of the latent is rho^k (standard error about (1 - r^2) / sqrt(N))
    for k in (1, 2, 5, 10):
        r = np.corrcoef(path[rounds - 1 - k], path[-1])[0, 1]
        assert abs(r - rho ** k) < 5 * (1 - rho ** (2 * k)) / math.sqrt(TYPE_RUNS) + 1e-3, (k, r)


# ---------------------------------------------------------------------------------------
# Consequences


def test_consequences_follow_their_closed_forms():
    rng = np.random.default_rng(3)
    base = build_game(BASELINE, CATALOGUE["nato_lite"])
    for _ in range(20):
        g = float(rng.uniform(0.05, 0.6))
        threshold = float(rng.uniform(0.1, 1.0))
        params = BASELINE.dynamics.model_copy(update={
            "war_aims_gain_per_success": g, "defeat_at_war_aims_share": threshold,
            "settlement_probability_after_failure": 0.0})
        stocks = dyn.Stocks.initial(base)
        yes = np.ones(1, bool)
        for k in range(1, 12):
            stocks, state = dyn.consequences(stocks, params, yes, yes, np.zeros(1))
            achieved = 1.0 - (1.0 - g) ** k
            assert stocks.war_aims_achieved[0] == pytest.approx(achieved, rel=1e-12)
            if achieved >= threshold * (1 + 1e-12):
                assert state[0] == dyn.DEFEATED, (g, threshold, k)
            elif achieved < threshold * (1 - 1e-12):
                assert state[0] == dyn.ONGOING, (g, threshold, k)
    # exactly at the threshold: 1 - (1 - 1/2)^2 = 3/4
    params = BASELINE.dynamics.model_copy(update={"war_aims_gain_per_success": 0.5,
                                                  "defeat_at_war_aims_share": 0.75})
    stocks, yes = dyn.Stocks.initial(base), np.ones(1, bool)
    states = []
    for _ in range(3):
        stocks, state = dyn.consequences(stocks, params, yes, yes, np.zeros(1))
        states.append(int(state[0]))
    assert states[:2] == [dyn.ONGOING, dyn.DEFEATED]
    # settlements: only after a failed offensive, with the stated probability
    draws = (np.arange(100) + 0.5) / 100  # midpoints of a hundred equal bins
    failed, fought = np.zeros(100, bool), np.ones(100, bool)
    for probability, settles in ((0.0, 0), (1.0, 100), (0.3, 30)):
        params = BASELINE.dynamics.model_copy(
            update={"settlement_probability_after_failure": probability})
        many = dyn.Stocks(*(np.repeat(a, 100) for a in (base.ukraine_capability,
                                                         base.russia_capability,
                                                         np.zeros(1), np.zeros(1))))
        _, state = dyn.consequences(many, params, fought, failed, draws)
        assert int((state == dyn.SETTLED).sum()) == settles
        _, state = dyn.consequences(many, params, ~fought, failed, draws)
        assert not state.any()  # no offensive, no settlement


def ended_runs(dynamics: dict, runs=400, steps=40):
    sc = BASELINE.model_copy(update={
        "russia": BASELINE.russia.model_copy(update={"status_quo_value": -0.2}),
        "dynamics": BASELINE.dynamics.model_copy(update=dynamics)})
    setup = dyn.Setup.from_config(sc, CATALOGUE["nato_lite"], seed=5)
    return engine.simulate(setup, runs, steps, keep_series=True)


def test_runs_end_in_defeat_at_the_threshold_and_in_settlement_at_the_first_failure():
    g = 0.2
    needed = math.ceil(math.log(1 - 0.5) / math.log(1 - g))  # 1 - 0.8^k >= 0.5: k = 4
    sim = ended_runs({"war_aims_gain_per_success": g, "defeat_at_war_aims_share": 0.5,
                      "settlement_probability_after_failure": 0.0})
    s, summary = sim.series, sim.summary
    aims = s["stocks"][..., 3]
    gained = np.diff(np.concatenate([np.zeros((aims.shape[0], 1)), aims], axis=1), axis=1) > 0
    successes = np.cumsum(gained, axis=1)
    assert not (summary["end_state"] == dyn.SETTLED).any()
    defeated = summary["end_state"] == dyn.DEFEATED
    assert defeated.sum() >= 50
    rows = np.flatnonzero(defeated)
    at_end = successes[rows, summary["end_round"][rows]]
    np.testing.assert_array_equal(at_end, needed)
    assert (successes[~defeated, -1] < needed).all()
    # an ended run records no further escalation, nor a change of its war aims
    for r in rows:
        after = slice(summary["end_round"][r] + 1, None)
        assert not s["escalated"][r, after].any()
        assert (s["outcome"][r, after] == dyn.ENDED).all()
        assert (aims[r, after] == aims[r, summary["end_round"][r]]).all()

    sim = ended_runs({"settlement_probability_after_failure": 1.0,
                      "defeat_at_war_aims_share": 1.0})
    s, summary = sim.series, sim.summary
    aims = s["stocks"][..., 3]
    previous = np.concatenate([np.zeros((aims.shape[0], 1)), aims[:, :-1]], axis=1)
    failure = s["escalated"] & (aims == previous)
    has_failure = failure.any(axis=1)
    assert has_failure.sum() >= 50
    np.testing.assert_array_equal(summary["end_state"][has_failure], dyn.SETTLED)
    np.testing.assert_array_equal(summary["end_round"][has_failure],
                                  failure.argmax(axis=1)[has_failure])
    assert (summary["end_state"][~has_failure] == dyn.ONGOING).all()
