"""The two simulation engines: the Mesa model and the vectorised engine agree bit for bit.

* **Equivalence.** Over runs spread over every format of the catalogue, with every kind of
  shock scheduled (withdraw, deploy, recall, cost_change, bindingness_change, election,
  belief), with and without decision noise, with runs that end (defeat, settlement) and
  varied seeds and Russian parameters (so that Russia escalates in a fair share of rounds
  under every format), :func:`deterrence.simulate.mesa_model.run` (one Mesa run at a time)
  and :func:`deterrence.simulate.engine.simulate` (runs in chunks) give the same actions,
  coordinations, outcomes, stocks, beliefs, attractions and summaries to the last bit. The
  engine is called with odd chunk sizes and scattered, shuffled run indices, so a run's
  numbers depend neither on the chunking nor on which runs are computed with it. The test
  data are checked to contain many escalations, coordinated responses (with equilibria that
  are not trivial: free members), abandonments, defences and ended runs, and each shock is
  checked to change the runs from its step on (or, where it must not, to change nothing),
  so the equality is not vacuous.
* **The round's rules against independent oracles.** Russia's prior about each member is
  its honouring probability in the crisis game's equilibria, alone and coordinating: both
  are checked here to be fixed points of the threshold map by enumerating the 2^n response
  profiles from the payoff equations. Russia's escalation probability in round 0 is
  ``Lambda((p V(q_c) + (1 - p) V(q_a) - U_R(refrain)) / sigma_R)`` with ``V`` enumerated
  the same way (no code of the package's expectation); the engine's round-0 choices are
  pinned to it by run indices whose uniform lies just below or just above it. A
  coordinated response in round 0 is drawn from the coordinated equilibrium; the first
  round's beliefs (Beta evidence per branch) and attractions (EWA) follow their equations
  computed here by hand. Engaged members always honour, withdrawn ones never.
* **Seeds.** Different seeds give different action sequences; the same seed the same ones.
* **Memory.** Mesa 3.3.1 keeps every model alive through ``mesa.Agent._ids`` (mesa issue
  3179); :func:`deterrence.simulate.mesa_model.run` releases it, so thousands of runs in one
  process do not grow memory. The counter-test shows the leak without the release.
* **Random numbers.** :func:`deterrence.simulate.rules.uniforms` is SplitMix64 of the documented
  counter: a pure function of (key, run, step, slot), in [0, 1), and uniform.
"""

from __future__ import annotations

import gc
import itertools
import math
import tracemalloc
from dataclasses import dataclass, field
from functools import cache

import mesa
import numpy as np
import pytest
from scipy import stats

from deterrence.game.config import (
    SCENARIOS_DIR,
    SHOCK_FIELDS,
    Scenario,
    Shock,
    load_catalogue,
    load_scenario,
)
from deterrence.game.payoffs import ABANDONED, DEFENDED, DETERRED, build_game
from deterrence.simulate import engine
from deterrence.simulate import mesa_model as abm
from deterrence.simulate import rules as dyn

from helpers import fmt, guarantor, scenario

STEPS = 25
BASELINE = load_scenario(SCENARIOS_DIR / "baseline.toml")
CATALOGUE = load_catalogue()
#: Run indices every case includes: 0, small, large and the largest allowed.
SPECIAL_RUNS = (0, 5, 1_000_003, dyn.MAX_RUNS - 1)
SERIES_KEYS = ("escalated", "team", "actions", "outcome", "belief", "attraction", "stocks")
SUMMARY_KEYS = ("escalation_frequency", "escalations_per_year", "abandoned_given_escalation",
                "deterred_share", "first_escalation", "end_state", "end_round")
#: A tremble of a fifth of each actor's resolve scale, in the cases with decision noise.
NOISE = 0.2
#: Runs of the engine alone (cheap) when a shock is removed from a case.
SHOCK_RUNS = 60


def shock(step: int, kind: str, who: str, **fields) -> Shock:
    return Shock(step=step, kind=kind, guarantor=who, **fields)


def withdraw(step, who):
    return shock(step, "withdraw", who)


def deploy(step, who):
    return shock(step, "deploy", who)


def recall(step, who):
    return shock(step, "recall", who)


def cost(step, who, factor):
    return shock(step, "cost_change", who, factor=factor)


def bind(step, who, bindingness):
    return shock(step, "bindingness_change", who, bindingness=bindingness)


def election(step, who):
    return shock(step, "election", who)


def heard(step, who, belief, strength):
    return shock(step, "belief", who, belief=belief, strength=strength)


@dataclass(frozen=True)
class Case:
    format_id: str
    seed: int | None              # None: the scenario's seed
    russia: dict                  # changes to the baseline's Russia (escalations in every case)
    runs: int                     # about this many run indices
    chunk_runs: int
    shocks: tuple[Shock, ...]
    inert: tuple[int, ...]        # indices of the shocks that must change nothing
    dynamics: dict = field(default_factory=dict)  # changes to the baseline's dynamics
    response: dict = field(default_factory=dict)  # changes to the format's response

    @property
    def id(self) -> str:
        return self.format_id

    @property
    def noisy(self) -> bool:
        return self.dynamics.get("decision_noise_share", 0.0) > 0


#: Runs rarely end (so that most rounds are played), but some do.
LONG_WAR = {"defeat_at_war_aims_share": 0.6, "settlement_probability_after_failure": 0.03}

# Every case schedules every kind of shock within the horizon; the inert ones must do
# nothing (a non-member, a step after the horizon, an election at step 0, which resets
# state that is still at its start, any shock of a format without members).
CASES = (
    Case("bilateral", None, {"status_quo_value": 0.2}, 40, 7,
         (deploy(2, "Poland"), cost(3, "*", 2.0), bind(5, "US", 1.0),
          heard(7, "Germany", 0.0, 20.0), withdraw(9, "Germany"), recall(12, "Poland"),
          election(16, "Poland"), withdraw(40, "US")), inert=(7,),
         dynamics={"decision_noise_share": NOISE, **LONG_WAR}),
    Case("budapest", 0, {"status_quo_value": 0.3}, 40, 3,
         (election(0, "*"), heard(3, "US", 1.0, 10.0), withdraw(5, "Poland"),
          deploy(8, "UK"), withdraw(12, "US"), bind(14, "UK", 0.0), cost(20, "*", 0.5),
          recall(21, "UK"), election(22, "UK")), inert=(0, 2), dynamics=LONG_WAR),
    Case("coalition", 2 ** 40 + 1, {"status_quo_value": -0.1}, 40, 113,
         (withdraw(1, "US"), withdraw(2, "UK"), recall(4, "France"), bind(6, "*", 0.2),
          cost(8, "*", 1.5), cost(8, "France", 0.3), heard(10, "France", 0.9, 5.0),
          deploy(13, "France"), election(17, "Poland")), inert=(0,)),
    Case("nato", 12345, {"status_quo_value": -0.2, "resolve_scale": 0.4}, 40,
         engine.CHUNK_RUNS,
         (cost(1, "*", 3.0), election(6, "US"), recall(8, "*"), heard(9, "UK", 0.2, 8.0),
          bind(11, "Germany", 0.5), withdraw(13, "US"), deploy(16, "Baltic"),
          election(24, "*")), inert=(),
         dynamics={"decision_noise_share": NOISE, **LONG_WAR}),
    Case("nato_lite", 99, {"status_quo_value": 0.0}, 40, 64,
         (withdraw(0, "France"), deploy(3, "US"), heard(5, "UK", 0.5, 30.0),
          cost(11, "*", 0.7), bind(12, "*", 1.0), election(15, "France"), recall(17, "US"),
          election(19, "Italy"), withdraw(24, "Baltic")), inert=(),
         dynamics=LONG_WAR, response={"decisive_probability": 0.1}),
    Case("neutrality", 7, {"status_quo_value": 0.4}, 40, 2,
         (withdraw(4, "*"), deploy(5, "*"), recall(6, "*"), cost(10, "*", 2.0),
          bind(12, "*", 1.0), heard(14, "*", 0.0, 10.0), election(18, "*"),
          withdraw(20, "US")), inert=tuple(range(8))),
    Case("three_tier", 31337, {"status_quo_value": -0.2, "resolve_scale": 0.3}, 40, 97,
         (election(5, "UK"), deploy(7, "US"), cost(10, "*", 1.8), bind(11, "Poland", 1.0),
          heard(12, "Italy", 1.0, 15.0), recall(13, "France"), withdraw(14, "US"),
          withdraw(22, "*")), inert=(),
         dynamics={"decision_noise_share": NOISE, **LONG_WAR}),
)


def run_indices(count: int, salt: int) -> np.ndarray:
    """About ``count`` distinct run indices: the special ones, a strided block and scattered
    large ones, in shuffled order."""
    rng = np.random.default_rng(salt)
    strided = 11 + 3 * np.arange(count // 2)
    scattered = rng.choice(dyn.MAX_RUNS, size=count - len(SPECIAL_RUNS) - strided.size,
                           replace=False)
    ids = np.unique(np.concatenate([SPECIAL_RUNS, strided, scattered]).astype(np.int64))
    return rng.permutation(ids)


def case_scenario(case: Case, shocks=None, noise: bool = True) -> Scenario:
    dynamics = dict(case.dynamics)
    if not noise:
        dynamics.pop("decision_noise_share", None)
    return BASELINE.model_copy(update={
        "shocks": list(case.shocks if shocks is None else shocks),
        "russia": BASELINE.russia.model_copy(update=case.russia),
        "dynamics": BASELINE.dynamics.model_copy(update=dynamics)})


def case_format(case: Case):
    spec = CATALOGUE[case.format_id]
    return spec.model_copy(update={"response": spec.response.model_copy(update=case.response)})


def setup_of(case: Case, shocks=None, noise: bool = True) -> dyn.Setup:
    return dyn.Setup.from_config(case_scenario(case, shocks, noise), case_format(case),
                                 seed=case.seed)


def case_named(format_id: str) -> Case:
    return CASES[[c.format_id for c in CASES].index(format_id)]


def mesa_runs(setup: dyn.Setup, run_ids: np.ndarray, steps: int):
    """Each run on its own through the Mesa model, stacked along the run axis."""
    results = [abm.run(setup, int(r), steps, keep_series=True) for r in run_ids]
    summary = {k: np.concatenate([s[k] for s, _ in results]) for k in results[0][0]}
    series = {k: np.concatenate([s[k] for _, s in results]) for k in results[0][1]}
    return summary, series


@cache
def results(index: int):
    """(run ids, engine simulation, Mesa summary, Mesa series) of CASES[index]."""
    case = CASES[index]
    ids = run_indices(case.runs, salt=index)
    setup = setup_of(case)
    sim = engine.simulate(setup, ids, STEPS, keep_series=True, chunk_runs=case.chunk_runs)
    summary, series = mesa_runs(setup, ids, STEPS)
    return ids, sim, summary, series


def assert_identical(left: dict, right: dict, keys, where: str) -> None:
    """Same keys, dtypes, shapes and bytes (so 0.0 vs -0.0 or NaN payloads would count)."""
    assert set(left) == set(right) == set(keys), where
    for key in keys:
        a, b = np.asarray(left[key]), np.asarray(right[key])
        assert a.dtype == b.dtype and a.shape == b.shape, (where, key, a.dtype, b.dtype,
                                                          a.shape, b.shape)
        equal_nan = a.dtype.kind == "f"
        if not np.array_equal(a, b, equal_nan=equal_nan):
            bad = np.argwhere(~((a == b) | (np.isnan(a) & np.isnan(b)) if equal_nan
                                else a == b))
            pytest.fail(f"{where}: {key} differs at {len(bad)} entries, first at index "
                        f"{tuple(bad[0])}: {a[tuple(bad[0])]!r} vs {b[tuple(bad[0])]!r}")
        assert a.tobytes() == b.tobytes(), f"{where}: {key} equal in value but not in bits"


# ---------------------------------------------------------------------------------------
# 1. Equivalence of the Mesa model and the vectorised engine


def test_cases_cover_every_format_shock_kind_and_noise():
    assert sorted(c.format_id for c in CASES) == sorted(CATALOGUE)
    assert len(CATALOGUE) == 7
    for case in CASES:
        kinds = {s.kind for s in case.shocks if s.step < STEPS}
        # format switches change the members and have their own file: test_format_switch.py
        assert kinds == set(SHOCK_FIELDS) - {"format_switch"}, case.format_id
        assert any(s.guarantor == "*" for s in case.shocks), case.format_id
        assert len({s.step for s in case.shocks}) >= 3, case.format_id
    assert {c.noisy for c in CASES} == {True, False}
    assert len({c.seed for c in CASES}) == len(CASES)
    assert len({c.chunk_runs for c in CASES}) == len(CASES)


def ended_round(outcome: np.ndarray) -> np.ndarray:
    """Per run, the first round recorded as ended (STEPS if none)."""
    ended = outcome == dyn.ENDED
    return np.where(ended.any(axis=1), ended.argmax(axis=1), outcome.shape[1])


@pytest.mark.parametrize("index", range(len(CASES)), ids=[c.id for c in CASES])
def test_mesa_model_and_vectorised_engine_agree_to_the_last_bit(index):
    case = CASES[index]
    ids, sim, mesa_summary, mesa_series = results(index)
    assert set(SPECIAL_RUNS) <= set(ids.tolist())
    np.testing.assert_array_equal(sim.run_ids, ids)
    assert sim.series["actions"].shape == (ids.size, STEPS, len(sim.guarantor_ids))
    assert_identical(sim.series, mesa_series, SERIES_KEYS, f"{case.format_id} series")
    assert_identical(sim.summary, mesa_summary, SUMMARY_KEYS, f"{case.format_id} summary")

    # the summaries follow from the series: rounds are those before the run ended
    outcome = sim.series["outcome"]
    rounds = ended_round(outcome)
    escalations = sim.series["escalated"].sum(axis=1)
    np.testing.assert_array_equal(sim.summary["escalation_frequency"], escalations / rounds)
    months = case_scenario(case).dynamics.round_months
    np.testing.assert_allclose(sim.summary["escalations_per_year"],
                               escalations / (rounds * months / 12.0), rtol=1e-15)
    first = np.where(escalations > 0, sim.series["escalated"].argmax(axis=1), -1)
    np.testing.assert_array_equal(sim.summary["first_escalation"], first)
    abandoned = (outcome == ABANDONED).sum(axis=1)
    with np.errstate(invalid="ignore"):
        share = abandoned / escalations
    np.testing.assert_array_equal(sim.summary["abandoned_given_escalation"], share)
    np.testing.assert_array_equal(sim.summary["deterred_share"],
                                  (outcome == DETERRED).sum(axis=1) / rounds)
    # a run that stops being played ended the round before, defeated (the war aims
    # achieved reached the threshold) or settled
    stopped = rounds < STEPS
    np.testing.assert_array_equal(sim.summary["end_round"][stopped], rounds[stopped] - 1)
    aims = sim.series["stocks"][np.flatnonzero(stopped), rounds[stopped] - 1, 3]
    threshold = case_scenario(case).dynamics.defeat_at_war_aims_share
    expected_state = np.where(aims >= threshold, dyn.DEFEATED, dyn.SETTLED)
    np.testing.assert_array_equal(sim.summary["end_state"][stopped], expected_state)
    assert set(sim.summary["end_round"][~stopped].tolist()) <= {-1, STEPS - 1}

    # Mesa without series gives the same summary
    for k, r in enumerate(ids[:3]):
        summary, series = abm.run(setup_of(case), int(r), STEPS, keep_series=False)
        assert series is None
        for key in SUMMARY_KEYS:
            assert np.array_equal(summary[key], sim.summary[key][k:k + 1], equal_nan=True)


@pytest.mark.parametrize("index", range(len(CASES)), ids=[c.id for c in CASES])
def test_engine_results_do_not_depend_on_chunking_or_on_the_other_runs(index):
    case = CASES[index]
    ids, sim, _, _ = results(index)
    setup = setup_of(case)
    # reversed order, a different chunk size and no series: the same numbers per run
    other_chunk = engine.CHUNK_RUNS if case.chunk_runs != engine.CHUNK_RUNS else 13
    backwards = engine.simulate(setup, ids[::-1], STEPS, keep_series=True,
                                chunk_runs=other_chunk)
    flipped = {k: v[::-1] for k, v in backwards.series.items()}
    assert_identical(sim.series, flipped, SERIES_KEYS, f"{case.format_id} reversed")
    no_series = engine.simulate(setup, ids, STEPS, keep_series=False, chunk_runs=other_chunk)
    assert no_series.series is None
    assert_identical(sim.summary, no_series.summary, SUMMARY_KEYS, f"{case.format_id} summary")
    # a few runs alone, each one by itself, and the three specials as a group
    alone = engine.simulate(setup, ids[[7, 2]], STEPS, keep_series=True)
    assert_identical({k: v[[7, 2]] for k, v in sim.series.items()}, alone.series, SERIES_KEYS,
                     f"{case.format_id} subset")
    position = {r: k for k, r in enumerate(ids.tolist())}
    rows = [position[r] for r in SPECIAL_RUNS]
    for r, row in zip(SPECIAL_RUNS, rows, strict=True):
        single = engine.simulate(setup, [r], STEPS, keep_series=True, chunk_runs=1)
        assert_identical({k: v[row:row + 1] for k, v in sim.series.items()}, single.series,
                         SERIES_KEYS, f"{case.format_id} run {r}")


def differing_steps(one: dict, other: dict) -> set[int]:
    """Steps at which any series differs."""
    steps = set()
    for key in SERIES_KEYS:
        a, b = one[key], other[key]
        differ = a != b
        steps |= set(np.flatnonzero(differ.reshape(a.shape[0], a.shape[1], -1)
                                    .any(axis=(0, 2))).tolist())
    return steps


@pytest.mark.parametrize("index", range(len(CASES)), ids=[c.id for c in CASES])
def test_each_shock_changes_the_runs_from_its_step_on_or_not_at_all(index):
    """Without this the handling of a kind of shock could be skipped by both engines
    alike: leaving each shock out in turn changes nothing before its step and something
    from its step on, except for the inert shocks, which change nothing."""
    case = CASES[index]
    ids = run_indices(SHOCK_RUNS, salt=100 + index)
    full = engine.simulate(setup_of(case), ids, STEPS, keep_series=True).series
    for k, s in enumerate(case.shocks):
        others = case.shocks[:k] + case.shocks[k + 1:]
        without = engine.simulate(setup_of(case, shocks=others), ids, STEPS,
                                  keep_series=True).series
        steps = differing_steps(full, without)
        if k in case.inert:
            assert not steps, (case.format_id, s)
        else:
            assert steps, (case.format_id, s)
            assert min(steps) >= s.step, (case.format_id, s, min(steps))


def commitment_paths(case: Case, members, troops: np.ndarray):
    """(troops, absent) per step and member, (STEPS, n), replaying the commitment shocks."""
    n = len(members)
    has, gone = troops.astype(bool).copy(), np.zeros(n, dtype=bool)
    troop_path, absent_path = np.zeros((STEPS, n), bool), np.zeros((STEPS, n), bool)
    for t in range(STEPS):
        for s in case.shocks:
            if s.step != t:
                continue
            for i in range(n):
                if s.guarantor not in ("*", members[i]):
                    continue
                if s.kind == "withdraw":
                    gone[i] = True
                elif s.kind == "deploy":
                    has[i] = True
                elif s.kind == "recall":
                    has[i] = False
        troop_path[t], absent_path[t] = has & ~gone, gone
    return troop_path, absent_path


@pytest.mark.parametrize("index", range(len(CASES)), ids=[c.id for c in CASES])
def test_engaged_members_always_honour_and_withdrawn_ones_never(index):
    """Tripwire: a member with troops on the ground (from the start or deployed) honours in
    every round of escalation, coordinated or not, until it recalls them or withdraws; a
    withdrawn member never honours again and Russia expects nothing of it."""
    case = CASES[index]
    ids, sim, _, _ = results(index)
    game = build_game(case_scenario(case), case_format(case))
    escalated, actions, belief = (sim.series[k] for k in ("escalated", "actions", "belief"))
    troops, absent = commitment_paths(case, sim.guarantor_ids, game.troops_on_ground[0])
    for i in range(game.n):
        on, off = troops[:, i], absent[:, i]
        assert (actions[:, on, i] == escalated[:, on]).all(), (case.format_id, i)
        assert not actions[:, off, i].any(), (case.format_id, i)
        assert not belief[:, off, i].any(), (case.format_id, i)
        assert (belief[:, on, i] == 1.0).all(), (case.format_id, i)
        assert (belief[:, ~off, i] > 0).all(), (case.format_id, i)
    withdrawn = {"bilateral": 1, "budapest": 1, "coalition": 1, "nato": 1, "nato_lite": 2,
                 "neutrality": 0, "three_tier": 8}[case.format_id]
    assert absent[-1].sum() == withdrawn
    if game.n:  # a deployment and a recall engage and free a member within the horizon
        assert (troops[1:] & ~troops[:-1]).any() and (~troops[1:] & troops[:-1]).any()


def test_the_test_data_contain_many_escalations_coordinations_and_abandonments():
    counts = {"runs": 0, "escalations": 0, "coordinated": 0, "free_coordinated": 0,
              "abandoned": 0, "defended": 0, "deterred": 0, "honours": 0,
              "coordinated_abstentions": 0, "defeated": 0, "settled": 0, "ended_rounds": 0}
    for index, case in enumerate(CASES):
        ids, sim, _, series = results(index)
        escalated, team, outcome = series["escalated"], series["team"], series["outcome"]
        actions = series["actions"]
        # consistency of the records
        assert not (team & ~escalated).any()
        assert not actions[~escalated].any()
        np.testing.assert_array_equal((outcome == DETERRED) | (outcome == dyn.ENDED),
                                      ~escalated)
        # an ended run stays ended and records no further escalation
        ended = outcome == dyn.ENDED
        assert not (ended[:, :-1] & ~ended[:, 1:]).any()
        if CATALOGUE[case.format_id].coordination_probability == 0:
            assert not team.any(), case.format_id
        else:
            assert team.sum() > 30, case.format_id
        # every case has a fair share of deterred rounds and of escalations
        played = ~ended
        share = escalated.sum() / played.sum()
        assert 0.1 < share < 0.9, (case.format_id, share)
        assert (outcome == ABANDONED).sum() + (outcome == DEFENDED).sum() > 30, case.format_id
        game = build_game(case_scenario(case), case_format(case))
        free = ~game.engaged[0]
        counts["runs"] += ids.size
        counts["escalations"] += int(escalated.sum())
        counts["coordinated"] += int(team.sum())
        # coordinated rounds with members that decide (not engaged): a real equilibrium
        counts["free_coordinated"] += int(team.sum()) if free.any() else 0
        counts["coordinated_abstentions"] += int((team[..., None] & (actions == 0)
                                                  & free).sum())
        counts["abandoned"] += int((outcome == ABANDONED).sum())
        counts["defended"] += int((outcome == DEFENDED).sum())
        counts["deterred"] += int((outcome == DETERRED).sum())
        counts["honours"] += int(actions.sum())
        counts["defeated"] += int((sim.summary["end_state"] == dyn.DEFEATED).sum())
        counts["settled"] += int((sim.summary["end_state"] == dyn.SETTLED).sum())
        counts["ended_rounds"] += int(ended.sum())
    minimum = {"runs": 250, "escalations": 1000, "coordinated": 300, "free_coordinated": 100,
               "coordinated_abstentions": 100, "abandoned": 300, "defended": 300,
               "deterred": 1500, "honours": 1500, "defeated": 10, "settled": 10,
               "ended_rounds": 200}
    short = {k: v for k, v in counts.items() if v < minimum[k]}
    assert not short, (short, counts)


# ---------------------------------------------------------------------------------------
# 2. The round's rules against independent oracles


def profile_outcome(game, a) -> tuple[float, float]:
    """Russia's chance of success and the escalation risk in cell 0 of ``game`` at the pure
    profile ``a``, from the payoff equations."""
    honouring = [j for j in range(game.n) if a[j]]
    m, ukraine = float(game.russia_capability[0]), float(game.ukraine_capability[0])
    defence = ukraine + sum(float(game.added_capability[0, j]) for j in honouring)
    success = m / (m + defence) * math.prod(
        1.0 - float(game.decisive_probability[0, j]) for j in honouring)
    risk = 1.0 - math.prod(1.0 - float(game.escalation_probability[0, j]) for j in honouring)
    return success, risk


def profile_utility(game, i: int, a) -> float:
    """Member i's payoff in cell 0 of ``game`` at the pure profile ``a``, from the payoff
    equations."""
    success, risk = profile_outcome(game, a)
    return (-float(game.stake[0, i]) * success
            - (float(game.honouring_cost[0, i]) if a[i] else float(game.reneging_cost[0, i]))
            - risk * float(game.catastrophe_cost[0, i]))


def russia_war_utility(game, a) -> float:
    """Russia's payoff of war in cell 0 against the pure profile ``a``."""
    success, risk = profile_outcome(game, a)
    sanctions = sum(float(game.sanctions_weight[0, i]) for i in range(game.n) if a[i])
    return (float(game.failed_war_value[0])
            + success * float(game.war_aims_value[0] - game.failed_war_value[0])
            - float(game.war_cost[0]) - float(game.sanctions_cost[0]) * sanctions
            - risk * float(game.russia_catastrophe_cost[0]))


def with_engaged(game, q) -> list[float]:
    return [1.0 if game.engaged[0, i] else float(q[i]) for i in range(game.n)]


def enumerated_war_value(game, q) -> float:
    """``V(q)``: the mean of U_R(a) over all 2^n profiles weighted by prod_i q_i^a_i
    (1 - q_i)^(1 - a_i) (engaged members honour)."""
    n, q = game.n, with_engaged(game, q)
    return math.fsum(math.prod(q[i] if a[i] else 1.0 - q[i] for i in range(n))
                     * russia_war_utility(game, a)
                     for a in itertools.product((0, 1), repeat=n))


def enumerated_escalation_probability(game, q_alone, q_coordinated) -> float:
    """``Lambda((p V(q_c) + (1 - p) V(q_a) - U_R(refrain)) / sigma_R)`` for cell 0."""
    p = float(game.coordination_probability[0])
    value = p * enumerated_war_value(game, q_coordinated) + (1 - p) * enumerated_war_value(
        game, q_alone)
    refrain = float(game.status_quo_value[0] - game.provocation_cost[0])
    return 1.0 / (1.0 + math.exp(-(value - refrain) / float(game.russia_resolve_scale[0])))


def enumerated_gains(game, q: np.ndarray) -> np.ndarray:
    """Each member's expected gain of honouring, cell 0, by enumerating the others'
    profiles (engaged members honour), from the payoff equations."""
    n, q = game.n, with_engaged(game, q)
    gains = np.zeros(n)
    for i in range(n):
        terms = []
        others = [x for x in range(n) if x != i]
        for rest in itertools.product((0, 1), repeat=n - 1):
            weight = math.prod(q[j] if rest[k] else 1.0 - q[j] for k, j in enumerate(others))
            a1 = list(rest[:i]) + [1] + list(rest[i:])
            a0 = list(rest[:i]) + [0] + list(rest[i:])
            terms.append(weight * (profile_utility(game, i, a1) - profile_utility(game, i, a0)))
        gains[i] = math.fsum(terms)
    return gains


def logistic(x):
    return 1.0 / (1.0 + np.exp(-x))


def checked_priors(game) -> np.ndarray:
    """Russia's priors (2, n) for cell 0 of ``game``, each branch checked by enumeration to
    be an equilibrium: each free member honours with Lambda(G_i(q_-i) / sigma_i), an engaged
    one with 1."""
    prior = dyn.equilibrium_priors(game)[0]
    free = ~game.engaged[0]
    for branch in (dyn.ALONE, dyn.COORDINATED):
        q = prior[branch]
        fixed = logistic(enumerated_gains(game, q) / game.resolve_scale[0])
        np.testing.assert_allclose(q[free], fixed[free], rtol=0, atol=1e-9)
        assert np.all(q[~free] == 1.0)
    return prior


#: Run indices scanned for uniforms next to a probability (slot 0, round 0).
SCANNED_RUNS = 4_000_000
#: How close (relative) the package's and the enumerated escalation probability must be:
#: the quadrature's proven bound (1e-14 in a probability), the solver's tolerance on the
#: priors (atol 1e-9 above) times V's slope in them, and rounding.
ORACLE_RTOL = 1e-7


@pytest.fixture(scope="module")
def round_zero_uniforms():
    """Russia's uniforms in round 0 of runs 0 .. SCANNED_RUNS - 1, per root seed."""
    return cache(lambda key: dyn.uniforms(key, np.arange(SCANNED_RUNS), 0,
                                          dyn.SLOT_RUSSIA_TYPE + 1)[:, dyn.SLOT_RUSSIA_TYPE])


@pytest.mark.parametrize("index", range(len(CASES)), ids=[c.id for c in CASES])
def test_round_zero_escalation_probability_equals_the_enumerated_one(index,
                                                                     round_zero_uniforms):
    case = CASES[index]
    setup = setup_of(case, shocks=[], noise=False)  # round 0 plays the base game
    game = setup.base
    prior = checked_priors(game)
    expected = enumerated_escalation_probability(game, prior[dyn.ALONE],
                                                 prior[dyn.COORDINATED])
    assert 0.05 < expected < 0.95, (case.format_id, expected)
    # the rule itself: Russia's gain of escalating at its round-0 beliefs (the priors)
    belief = dyn.belief_means(prior[None], setup.params, np.zeros((1, 2, game.n)),
                              np.zeros((1, 2, game.n)), game, np.zeros((1, game.n), bool))
    gain = dyn.escalation_gain(game, belief)[0]
    computed = logistic(gain / game.russia_resolve_scale[0])
    assert computed == pytest.approx(expected, rel=ORACLE_RTOL, abs=0.0)
    # the engine's choices in round 0: the runs whose uniforms lie nearest below and above
    # the enumerated probability escalate and refrain (Russia's type is its logistic
    # quantile), so the engine's probability is within their distance of it
    u = round_zero_uniforms(setup.key)
    below = np.flatnonzero(u < expected)
    above = np.flatnonzero(u >= expected)
    nearest_below = below[np.argsort(expected - u[below])[:20]]
    nearest_above = above[np.argsort(u[above] - expected)[:20]]
    gap = max(expected - u[nearest_below].min(), u[nearest_above].max() - expected)
    assert gap < 2e-5, gap
    ids = np.concatenate([nearest_below, nearest_above])
    sim = engine.simulate(setup, ids, 1, keep_series=True)
    np.testing.assert_array_equal(sim.series["escalated"][:, 0],
                                  np.arange(ids.size) < nearest_below.size)


#: A guarantor's resolve scale at which the members' coordinated response is mixed, so that
#: their draws decide it (the calibrated default makes it almost pure at the baseline).
MIXED_RESPONSE_SCALE = 0.05


@pytest.mark.parametrize("format_id", ["nato_lite", "three_tier"])
def test_a_coordinated_response_in_round_zero_is_drawn_from_the_coordinated_equilibrium(
        format_id):
    case = case_named(format_id)
    scenario = case_scenario(case, [], noise=False)
    scenario = scenario.model_copy(update={"guarantors": [
        g.model_copy(update={"resolve_scale": MIXED_RESPONSE_SCALE})
        for g in scenario.guarantors]})
    setup = dyn.Setup.from_config(scenario, case_format(case), seed=case.seed)
    game = setup.base
    q = checked_priors(game)[dyn.COORDINATED]
    assert np.any((q > 0.05) & (q < 0.95)), q  # a mixed response: the draws matter
    ids = np.arange(1500)
    sim = engine.simulate(setup, ids, 1, keep_series=True)
    team = sim.series["team"][:, 0]
    assert team.sum() >= 50
    # a member coordinating honours iff its cost type (the logistic quantile of its
    # uniform) is below G_i(q_c), i.e. iff its uniform is below q_i
    u = dyn.uniforms(setup.key, ids[team], 0, dyn.slot_count(game.n))
    member_u = u[:, dyn.SLOT_FIRST_MEMBER:dyn.SLOT_FIRST_MEMBER + game.n]
    np.testing.assert_array_equal(sim.series["actions"][team, 0],
                                  (member_u < q).astype(np.int8))


@pytest.mark.parametrize("index", range(len(CASES)), ids=[c.id for c in CASES])
def test_the_start_attraction_is_the_enumerated_expected_gain_in_the_alone_equilibrium(index):
    case = CASES[index]
    setup = setup_of(case, shocks=[])
    game = setup.base
    prior = checked_priors(game)
    honour, abstain, experience = dyn.initial_attractions(game, prior[None], setup.params)
    np.testing.assert_allclose(honour[0], enumerated_gains(game, prior[dyn.ALONE]),
                               rtol=1e-11, atol=1e-14)
    assert np.all(abstain == 0.0)
    assert np.all(experience == setup.params.initial_experience)


@pytest.mark.parametrize("format_id", ["bilateral", "nato_lite", "three_tier"])
def test_the_first_round_of_learning_follows_the_equations(format_id):
    """Beliefs after round 0 from the responses seen in the branch played (Beta evidence
    per branch, mixed by the coordination probability); attractions by Camerer & Ho's EWA
    from the realised payoffs of both strategies, the one played at full weight."""
    setup = setup_of(case_named(format_id), shocks=[], noise=False)  # the base game
    game, params = setup.base, setup.params
    ids = np.arange(300)
    sim = engine.simulate(setup, ids, 1, keep_series=True)
    escalated, team = sim.series["escalated"][:, 0], sim.series["team"][:, 0]
    actions = sim.series["actions"][:, 0].astype(np.float64)
    assert escalated.sum() >= 30 and (escalated & ~team).sum() >= 10
    prior = checked_priors(game)
    s0, p = params.belief_prior_strength, float(game.coordination_probability[0])
    engaged = game.engaged[0]
    means = []
    for branch, seen in ((dyn.ALONE, escalated & ~team), (dyn.COORDINATED, team)):
        e = seen[:, None].astype(np.float64)
        means.append(np.where(engaged, 1.0, (s0 * prior[branch] + e * actions) / (s0 + e)))
    np.testing.assert_allclose(sim.series["belief"][:, 0], p * means[1] + (1 - p) * means[0],
                               rtol=1e-13, atol=1e-15)
    # EWA from A^h(0) = G_i(q_a), A^a(0) = 0, N(0)
    start = enumerated_gains(game, prior[dyn.ALONE])
    phi, rho, delta = (params.attraction_decay, params.experience_decay,
                       params.foregone_payoff_weight)
    n0 = params.initial_experience
    n1 = rho * n0 + 1.0
    u = dyn.uniforms(setup.key, ids, 0, dyn.slot_count(game.n))
    sigma = game.resolve_scale[0]
    readiness = game.readiness_cost[0]
    for k in range(ids.size):
        a = [int(x) for x in actions[k]]
        for i in range(game.n):
            if escalated[k]:
                pay_h = profile_utility(game, i, a[:i] + [1] + a[i + 1:]) - readiness[i]
                pay_a = profile_utility(game, i, a[:i] + [0] + a[i + 1:])
                chose_h = bool(a[i])
            else:  # untested: its policy is what it would do alone
                pay_h, pay_a = -readiness[i], 0.0
                v = u[k, dyn.SLOT_FIRST_MEMBER + i]
                chose_h = start[i] > sigma[i] * math.log(v / (1.0 - v))
            w_h, w_a = (1.0, delta) if chose_h else (delta, 1.0)
            a_h = (phi * n0 * start[i] + w_h * pay_h) / n1
            a_a = (phi * n0 * 0.0 + w_a * pay_a) / n1
            assert sim.series["attraction"][k, 0, i] == pytest.approx(
                a_h - a_a, rel=1e-9, abs=1e-12), (k, i)


def test_the_mesa_model_follows_mesas_conventions_and_gives_the_engines_numbers():
    """Keyword construction from a bundled scenario, one data-collector row per step with
    the model's reporters, agent reporters with each member's action, and the engine's
    numbers for the same run."""
    steps = 12
    setup = dyn.Setup.from_config(BASELINE, CATALOGUE["nato_lite"])
    # a run in which Russia both escalates and refrains
    scan = engine.simulate(setup, 200, steps, keep_series=True).series["escalated"]
    run_index = int(np.flatnonzero(scan.any(axis=1) & ~scan.all(axis=1))[0])
    model = abm.CrisisModel(scenario="baseline", format_id="nato_lite", run_index=run_index)
    assert isinstance(model, mesa.Model)
    with pytest.raises(TypeError):
        abm.CrisisModel(dyn.Setup.from_config(BASELINE, CATALOGUE["nato_lite"]), 0)
    try:
        for _ in range(steps):
            model.step()
        frame = model.datacollector.get_model_vars_dataframe()
        agents = model.datacollector.get_agent_vars_dataframe()
    finally:
        mesa.Agent._ids.pop(model, None)
    sim = engine.simulate(setup, [run_index], steps, keep_series=True)
    s = {k: v[0] for k, v in sim.series.items()}
    assert len(frame) == steps
    assert list(frame.columns) == ["escalated", "team_formed", "outcome", *dyn.STOCK_NAMES]
    np.testing.assert_array_equal(frame["escalated"].to_numpy(bool), s["escalated"])
    np.testing.assert_array_equal(frame["team_formed"].to_numpy(bool), s["team"])
    assert frame["outcome"].tolist() == [dyn.OUTCOME_NAMES[c] for c in s["outcome"]]
    for k, name in enumerate(dyn.STOCK_NAMES):
        np.testing.assert_array_equal(frame[name].to_numpy(float), s["stocks"][:, k])
    members = agents.dropna(subset=["guarantor"])
    assert set(members.columns) >= {"guarantor", "honoured", "readiness"}
    assert len(members) == steps * len(sim.guarantor_ids)
    for i, gid in enumerate(sim.guarantor_ids):
        mine = members[members["guarantor"] == gid]
        assert len(mine) == steps
        np.testing.assert_array_equal(mine["honoured"].to_numpy(bool), s["actions"][:, i] > 0)
        np.testing.assert_array_equal(mine["readiness"].to_numpy(float), s["attraction"][:, i])


# ---------------------------------------------------------------------------------------
# 3. Seeds


#: The baseline with Russia's status quo lowered, so that it escalates in most runs.
TESTED = case_scenario(case_named("nato_lite"), shocks=[])


@pytest.fixture(scope="module")
def nato_lite_runs():
    ids = np.array([0, 1, 2, 5, 1_000_003] + list(range(100, 215)))

    def simulate(seed, sc=TESTED):
        setup = dyn.Setup.from_config(sc, CATALOGUE["nato_lite"], seed=seed)
        return engine.simulate(setup, ids, STEPS, keep_series=True, chunk_runs=37)

    return simulate


def test_different_seeds_give_different_action_sequences(nato_lite_runs):
    one, two = nato_lite_runs(1), nato_lite_runs(2)
    assert not np.array_equal(one.series["actions"], two.series["actions"])
    assert not np.array_equal(one.series["escalated"], two.series["escalated"])
    # not just somewhere: almost every run's path differs (the attractions follow every
    # type draw; escalation sequences alone coincide by chance where Russia nearly always
    # or nearly never escalates)
    same_run = (one.series["attraction"] == two.series["attraction"]).all(axis=(1, 2))
    assert same_run.mean() < 0.05
    # and different runs of one seed differ from each other
    assert not np.array_equal(one.series["escalated"][0], one.series["escalated"][1])


def test_the_same_seed_gives_the_same_action_sequences(nato_lite_runs):
    first, again = nato_lite_runs(1), nato_lite_runs(1)
    assert_identical(first.series, again.series, SERIES_KEYS, "same seed")
    # the scenario's seed is the default, and seed= overrides it
    default = nato_lite_runs(None, TESTED.model_copy(update={"seed": 1}))
    assert_identical(first.series, default.series, SERIES_KEYS, "scenario seed")
    baseline_seed = nato_lite_runs(None)
    assert not np.array_equal(first.series["actions"], baseline_seed.series["actions"])
    explicit = nato_lite_runs(TESTED.seed)
    assert_identical(baseline_seed.series, explicit.series, SERIES_KEYS, "explicit seed")


# ---------------------------------------------------------------------------------------
# 4. Memory: Mesa's registry of agent ids (mesa issue 3179)


SMALL = dyn.Setup.from_config(scenario([guarantor("A")]), fmt(coordination_probability=0.5),
                              seed=3)
#: Runs before the first measurement of memory, and after it.
FIRST_RUNS, MORE_RUNS = 50, 150
MEMORY_TOLERANCE = 1_000_000  # bytes: 200 leaked models hold about 5.6 MB
#: Models the counter-test leaks on purpose.
LEAKED_MODELS = 100


def live_crisis_models() -> int:
    gc.collect()
    return sum(isinstance(obj, abm.CrisisModel) for obj in gc.get_objects())


def test_many_mesa_runs_in_one_process_do_not_grow_memory():
    abm.run(SMALL, 0, 2)  # warm caches
    gc.collect()
    registry = len(mesa.Agent._ids)
    tracemalloc.start()
    try:
        for r in range(FIRST_RUNS):
            abm.run(SMALL, r, 2)
        gc.collect()
        after_first = tracemalloc.get_traced_memory()[0]
        registry_first = len(mesa.Agent._ids)
        for r in range(FIRST_RUNS, FIRST_RUNS + MORE_RUNS):
            abm.run(SMALL, r, 2)
        gc.collect()
        after_more = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert registry_first == registry, (registry, registry_first)
    assert len(mesa.Agent._ids) == registry, (registry, len(mesa.Agent._ids))
    assert after_more - after_first < MEMORY_TOLERANCE, (after_first, after_more)
    assert live_crisis_models() == 0


def forget_models_except(keep: set) -> None:
    """Release from Mesa's registry every model not in ``keep`` (as abm.run does)."""
    for model in set(mesa.Agent._ids) - keep:
        mesa.Agent._ids.pop(model, None)


def test_without_the_release_mesa_keeps_every_model():
    """The counter-test: building and stepping CrisisModel directly (as abm.run does, but
    without popping it from Mesa's registry) leaks, so the test above can fail."""
    gc.collect()
    before = set(mesa.Agent._ids)
    tracemalloc.start()
    try:
        start = tracemalloc.get_traced_memory()[0]
        for r in range(LEAKED_MODELS):
            model = abm.CrisisModel(setup=SMALL, run_index=r)
            for _ in range(2):
                model.step()
        del model
        gc.collect()
        leaked = tracemalloc.get_traced_memory()[0] - start
        grown = len(mesa.Agent._ids) - len(before)
        alive = live_crisis_models()
    finally:
        tracemalloc.stop()
        forget_models_except(before)
    assert grown == LEAKED_MODELS, grown
    assert alive >= LEAKED_MODELS, alive
    assert leaked > MEMORY_TOLERANCE, leaked
    assert live_crisis_models() == 0  # released by hand


# ---------------------------------------------------------------------------------------
# 5. The random numbers

MASK = (1 << 64) - 1


def splitmix64(key: int, counter: int) -> int:
    """Reference SplitMix64 (Steele, Lea & Flood 2014), output ``counter`` of seed ``key``,
    in Python integers."""
    z = (key + (counter + 1) * 0x9E3779B97F4A7C15) & MASK
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
    return z ^ (z >> 31)


def test_reference_splitmix64_matches_the_published_sequence():
    # the well-known first outputs of SplitMix64 seeded with 1234567
    assert [splitmix64(1234567, i) for i in range(3)] == [
        6457827717110365317, 3203168211198807973, 9817491932198370423]


def test_uniforms_are_splitmix64_of_the_documented_counter():
    key = dyn.root_key(2025)
    runs = [0, 5, 1_000_003, dyn.MAX_RUNS - 1]
    for step in (0, 1, 24, dyn.MAX_STEPS - 1):
        u = dyn.uniforms(key, np.array(runs), step, 10)
        for k, run in enumerate(runs):
            for slot in range(10):
                counter = run * 2 ** 28 + step * 2 ** 8 + slot
                assert u[k, slot] == (splitmix64(key, counter) >> 11) * 2.0 ** -53
    last = dyn.uniforms(key, np.array([dyn.MAX_RUNS - 1]), dyn.MAX_STEPS - 1, dyn.MAX_SLOTS)
    assert last[0, -1] == (splitmix64(key, MASK) >> 11) * 2.0 ** -53


def test_uniforms_do_not_depend_on_the_group_of_runs():
    key = dyn.root_key(99)
    ids = np.array([0, 5, 1_000_003, dyn.MAX_RUNS - 1, 42, 7])
    for step in (0, 3, 1000):
        together = dyn.uniforms(key, ids, step, 12)
        assert together.shape == (ids.size, 12)
        for k, r in enumerate(ids):
            np.testing.assert_array_equal(dyn.uniforms(key, np.array([r]), step, 12)[0],
                                          together[k])
        order = np.array([3, 0, 5, 1, 4, 2])
        np.testing.assert_array_equal(dyn.uniforms(key, ids[order], step, 12), together[order])
        bigger = np.concatenate([np.arange(100, 150), ids, np.arange(2000, 2010)])
        np.testing.assert_array_equal(dyn.uniforms(key, bigger, step, 12)[50:50 + ids.size],
                                      together)
        # the number of slots asked for changes nothing either
        np.testing.assert_array_equal(dyn.uniforms(key, ids, step, 3), together[:, :3])
        # nor the integer type of the run indices
        np.testing.assert_array_equal(dyn.uniforms(key, ids.astype(np.uint64), step, 12),
                                      together)
        np.testing.assert_array_equal(dyn.uniforms(key, ids.tolist(), step, 12), together)
    # but key, run, step and slot each matter
    base = dyn.uniforms(key, ids, 3, 12)
    assert not np.array_equal(base, dyn.uniforms(dyn.root_key(100), ids, 3, 12))
    assert not np.array_equal(base, dyn.uniforms(key, ids, 4, 12))
    assert not np.array_equal(base[1:], base[:-1])
    assert not np.array_equal(base[:, 1:], base[:, :-1])


def test_uniforms_reject_out_of_range_steps_and_slots():
    for step, slots in ((dyn.MAX_STEPS, 1), (-1, 1), (0, dyn.MAX_SLOTS + 1)):
        with pytest.raises(ValueError):
            dyn.uniforms(1, np.array([0]), step, slots)


def test_run_indices_outside_the_counter_range_are_rejected_by_both_engines():
    setup = dyn.Setup.from_config(load_scenario(SCENARIOS_DIR / "baseline.toml"),
                                  load_catalogue()["budapest"])
    for bad in (dyn.MAX_RUNS, -1):
        with pytest.raises(ValueError, match="run indices"):
            abm.run(setup, bad, 2)
        with pytest.raises(ValueError, match="run indices"):
            engine.simulate(setup, [0, bad], 2)


def uniformity_failures(u: np.ndarray) -> list[str]:
    """Why ``u`` does not look like independent uniforms on [0, 1) (empty if it does)."""
    failures = []
    if not (u.min() >= 0.0 and u.max() < 1.0):
        failures.append(f"range [{u.min()}, {u.max()}]")
    if abs(u.mean() - 0.5) >= 0.002:
        failures.append(f"mean {u.mean()}")
    counts = np.bincount((u * 100).astype(np.int64), minlength=100)
    expected = u.size / 100
    chi2 = float(((counts - expected) ** 2 / expected).sum())
    if stats.chi2.sf(chi2, df=99) < 1e-6:  # about chi2 > 175
        failures.append(f"chi-square {chi2:.1f} on 99 degrees of freedom")
    return failures


def test_a_million_uniforms_look_uniform():
    u = dyn.uniforms(dyn.root_key(20250801), np.arange(62_500), 17, 16)
    assert u.shape == (62_500, 16)
    assert uniformity_failures(u.ravel()) == []
    # every slot by itself, and no correlation between neighbouring slots or runs
    assert np.abs(u.mean(axis=0) - 0.5).max() < 0.01
    assert abs(np.corrcoef(u[:, 0], u[:, 1])[0, 1]) < 0.02
    assert abs(np.corrcoef(u[:-1, 0], u[1:, 0])[0, 1]) < 0.02
    # no two of the million numbers coincide (distinct counters)
    assert np.unique(u).size == u.size


def test_the_uniformity_check_can_fail():
    u = dyn.uniforms(dyn.root_key(20250801), np.arange(62_500), 17, 16).ravel()
    assert any("chi-square" in f for f in uniformity_failures(u ** 1.02))
    assert any("mean" in f for f in uniformity_failures(u * 0.99))
    assert any("range" in f for f in uniformity_failures(np.append(u, 1.0)))


def test_engines_agree_when_each_run_plays_its_own_parameter_cell():
    from dataclasses import replace

    sc = load_scenario(SCENARIOS_DIR / "us_withdrawal.toml")
    spec = load_catalogue()["three_tier"]
    grid = build_game(sc, spec, {
        "russia.status_quo_value": np.linspace(0.1, 0.7, 7)[:, None],
        "format.commitment_bindingness": np.array([0.2, 0.9])[None, :]})
    setup = replace(dyn.Setup.from_config(sc, spec), base=grid)
    cells = np.random.default_rng(1).integers(0, grid.cells, 20)
    runs = np.arange(20) * 7 + 3
    sim = engine.simulate(setup, runs, 40, keep_series=True, chunk_runs=11, cells=cells)
    for j in range(runs.size):
        summary, series = abm.run(setup, int(runs[j]), 40, cell=int(cells[j]))
        for name, values in series.items():
            np.testing.assert_array_equal(values[0], sim.series[name][j], err_msg=name)
    # the cells matter: the same run index in two cells differs
    one = engine.simulate(setup, [3, 3], 40, cells=[0, grid.cells - 1], keep_series=True)
    assert not np.array_equal(one.series["belief"][0], one.series["belief"][1])
    assert not np.array_equal(one.series["attraction"][0], one.series["attraction"][1])
    with pytest.raises(ValueError, match="cells must give"):
        engine.simulate(setup, [0], 5, cells=[grid.cells])
