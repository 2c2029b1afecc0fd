"""The two simulation engines: the Mesa model and the vectorised engine agree bit for bit.

* **Equivalence.** Over about 1,200 runs spread over every format of the catalogue, with
  scheduled shocks (withdrawals, cost changes on '*', elections) and varied seeds and
  Russian parameters (so that Russia escalates in a fair share of rounds under every
  format), :func:`deterrence.simulate.mesa_model.run` (one Mesa run at a time) and
  :func:`deterrence.simulate.engine.simulate` (runs in chunks) give the same actions,
  coordinations, outcomes, stocks, beliefs, attractions and summaries to the last bit. The
  engine is called with odd chunk sizes and scattered, shuffled run indices, so a run's
  numbers depend neither on the chunking nor on which runs are computed with it. The test
  data are checked to contain many escalations, coordinated responses (with equilibria that
  are not trivial: free members), abandonments and defences, and the shocks are checked to
  change the runs, so the equality is not vacuous.
* **The round's rules against independent oracles.** Russia's escalation probability in
  round 0 is ``Lambda((V - U_R(refrain)) / sigma_R)`` with ``V`` computed here by
  enumerating the 2^n response profiles from the payoff equations (no code of the package's
  expectation); the engine's round-0 choices are pinned to it by run indices whose uniform
  lies just below or just above it. A coordinated response in round 0 is drawn from the
  coordinated equilibrium, checked here to be a fixed point of the threshold map by
  enumeration. Engaged members always honour, withdrawn ones never.
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

from deterrence.game.config import SCENARIOS_DIR, Scenario, Shock, load_catalogue, load_scenario
from deterrence.game.payoffs import ABANDONED, DEFENDED, DETERRED, build_game
from deterrence.simulate import engine
from deterrence.simulate import mesa_model as abm
from deterrence.simulate import rules as dyn
from deterrence.solve.equilibrium import equilibrium_set, select

from helpers import fmt, guarantor, scenario

STEPS = 25
BASELINE = load_scenario(SCENARIOS_DIR / "baseline.toml")
CATALOGUE = load_catalogue()
#: Run indices every case includes: 0, small, large and the largest allowed.
SPECIAL_RUNS = (0, 5, 1_000_003, dyn.MAX_RUNS - 1)
SERIES_KEYS = ("escalated", "team", "actions", "outcome", "belief", "attraction", "stocks")
SUMMARY_KEYS = ("escalation_frequency", "abandoned_given_escalation", "deterred_share",
                "first_escalation")


def withdraw(step: int, who: str) -> Shock:
    return Shock(step=step, kind="withdraw", guarantor=who)


def cost(step: int, who: str, factor: float) -> Shock:
    return Shock(step=step, kind="cost_change", guarantor=who, factor=factor)


def election(step: int, who: str) -> Shock:
    return Shock(step=step, kind="election", guarantor=who)


@dataclass(frozen=True)
class Case:
    format_id: str
    seed: int | None              # None: the scenario's seed
    russia: dict                  # changes to the baseline's Russia (escalations in every case)
    runs: int                     # about this many run indices
    chunk_runs: int
    shocks: tuple[Shock, ...]
    first_effect: int | None      # first step at which a shock changes the runs (None: never)
    response: dict = field(default_factory=dict)  # changes to the format's response

    @property
    def id(self) -> str:
        return self.format_id


# Every case has a withdrawal, a cost change on '*' and an election within the horizon;
# some also have shocks that must do nothing (a non-member, a step after the horizon, an
# election at step 0, which resets state that is still at its start).
CASES = (
    Case("bilateral", None, {"status_quo_value": 0.2}, 160, 7,
         (cost(3, "*", 2.0), withdraw(9, "Germany"), election(16, "Poland"),
          withdraw(40, "US")), first_effect=3),
    Case("budapest", 0, {"status_quo_value": 0.4}, 200, 3,
         (election(0, "*"), withdraw(5, "Poland"), withdraw(12, "US"), cost(20, "*", 0.5),
          election(22, "UK")), first_effect=12),
    Case("coalition", 2 ** 40 + 1, {"status_quo_value": 0.05}, 140, 113,
         (withdraw(1, "US"), withdraw(2, "UK"), cost(8, "*", 1.5), cost(8, "France", 0.3),
          election(17, "Poland")), first_effect=2),
    Case("nato", 12345, {"status_quo_value": 0.0, "resolve_scale": 0.4}, 140,
         engine.CHUNK_RUNS,
         (cost(1, "*", 3.0), election(6, "US"), withdraw(13, "US"), election(24, "*")),
         first_effect=1),
    Case("nato_lite", 99, {"status_quo_value": 0.1}, 180, 64,
         (withdraw(0, "France"), cost(11, "*", 0.7), election(15, "France"),
          election(19, "Italy"), withdraw(24, "Baltic")), first_effect=0,
         response={"decisive_probability": 0.1}),
    Case("neutrality", 7, {"status_quo_value": 0.4}, 200, 2,
         (withdraw(4, "*"), cost(10, "*", 2.0), election(18, "*"), withdraw(20, "US")),
         first_effect=None),
    Case("three_tier", 31337, {"status_quo_value": 0.0, "resolve_scale": 0.3}, 160, 97,
         (election(5, "UK"), cost(10, "*", 1.8), withdraw(14, "US"), withdraw(22, "*")),
         first_effect=5),
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


def case_scenario(case: Case, shocks=None) -> Scenario:
    return BASELINE.model_copy(update={
        "shocks": list(case.shocks if shocks is None else shocks),
        "russia": BASELINE.russia.model_copy(update=case.russia)})


def case_format(case: Case):
    spec = CATALOGUE[case.format_id]
    return spec.model_copy(update={"response": spec.response.model_copy(update=case.response)})


def setup_of(case: Case, shocks=None) -> dyn.Setup:
    return dyn.Setup.from_config(case_scenario(case, shocks), case_format(case), seed=case.seed)


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


def test_cases_cover_every_format_of_the_catalogue():
    assert sorted(c.format_id for c in CASES) == sorted(CATALOGUE)
    assert len(CATALOGUE) == 7
    for case in CASES:
        kinds = {s.kind for s in case.shocks if s.step < STEPS}
        assert kinds == {"withdraw", "cost_change", "election"}, case.format_id
        assert any(s.kind == "cost_change" and s.guarantor == "*" for s in case.shocks)
        assert len({s.step for s in case.shocks}) >= 3, case.format_id
    assert len({c.seed for c in CASES}) == len(CASES)
    assert len({c.chunk_runs for c in CASES}) == len(CASES)


@pytest.mark.parametrize("index", range(len(CASES)), ids=[c.id for c in CASES])
def test_mesa_model_and_vectorised_engine_agree_to_the_last_bit(index):
    case = CASES[index]
    ids, sim, mesa_summary, mesa_series = results(index)
    assert set(SPECIAL_RUNS) <= set(ids.tolist())
    np.testing.assert_array_equal(sim.run_ids, ids)
    assert sim.series["actions"].shape == (ids.size, STEPS, len(sim.guarantor_ids))
    assert_identical(sim.series, mesa_series, SERIES_KEYS, f"{case.format_id} series")
    assert_identical(sim.summary, mesa_summary, SUMMARY_KEYS, f"{case.format_id} summary")

    # the summaries follow from the series
    escalations = sim.series["escalated"].sum(axis=1)
    np.testing.assert_array_equal(sim.summary["escalation_frequency"], escalations / STEPS)
    first = np.where(escalations > 0, sim.series["escalated"].argmax(axis=1), -1)
    np.testing.assert_array_equal(sim.summary["first_escalation"], first)
    abandoned = (sim.series["outcome"] == ABANDONED).sum(axis=1)
    with np.errstate(invalid="ignore"):
        share = abandoned / escalations
    np.testing.assert_array_equal(sim.summary["abandoned_given_escalation"], share)
    np.testing.assert_array_equal(sim.summary["deterred_share"],
                                  (sim.series["outcome"] == DETERRED).sum(axis=1) / STEPS)

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


def withdrawals(case: Case, members) -> list[tuple[int, int]]:
    """(step, member) of each member's first withdrawal within the horizon."""
    first: dict[int, int] = {}
    for s in sorted(case.shocks, key=lambda s: s.step):
        if s.kind == "withdraw" and s.step < STEPS:
            for i in dyn.shock_targets(s.guarantor, members):
                first.setdefault(i, s.step)
    return sorted((step, i) for i, step in first.items())


@pytest.mark.parametrize("index", range(len(CASES)), ids=[c.id for c in CASES])
def test_the_shocks_change_the_runs_from_the_step_they_apply(index):
    """Without this the shock handling could be skipped by both engines alike."""
    case = CASES[index]
    ids, sim, _, _ = results(index)
    calm = engine.simulate(setup_of(case, shocks=[]), ids, STEPS, keep_series=True)
    first = STEPS if case.first_effect is None else case.first_effect
    for key in SERIES_KEYS:
        np.testing.assert_array_equal(sim.series[key][:, :first], calm.series[key][:, :first],
                                      err_msg=f"{case.format_id}: {key} before any shock")
    if case.first_effect is not None:
        at_first = [key for key in SERIES_KEYS
                    if not np.array_equal(sim.series[key][:, first], calm.series[key][:, first])]
        assert at_first, f"{case.format_id}: nothing changed at step {first}"
    # a withdrawn member never acts again and Russia expects nothing of it
    gone = withdrawals(case, sim.guarantor_ids)
    for step, i in gone:
        assert not sim.series["actions"][:, step:, i].any(), (case.format_id, step, i)
        assert not sim.series["belief"][:, step:, i].any(), (case.format_id, step, i)
        assert sim.series["belief"][:, :step, i].all(), (case.format_id, step, i)
    assert len(gone) == {"bilateral": 1, "budapest": 1, "coalition": 1, "nato": 1,
                         "nato_lite": 2, "neutrality": 0, "three_tier": 8}[case.format_id]


@pytest.mark.parametrize("index", range(len(CASES)), ids=[c.id for c in CASES])
def test_engaged_members_always_honour_and_withdrawn_ones_never(index):
    """Tripwire: a member with troops on the ground honours in every round of escalation,
    coordinated or not, until it withdraws; then it never honours."""
    case = CASES[index]
    ids, sim, _, _ = results(index)
    game = build_game(case_scenario(case), case_format(case))
    escalated, actions = sim.series["escalated"], sim.series["actions"]
    out = dict((i, step) for step, i in withdrawals(case, sim.guarantor_ids))
    for i in range(game.n):
        stay = out.get(i, STEPS)
        if game.engaged[0, i]:
            assert (actions[:, :stay, i] == escalated[:, :stay]).all(), (case.format_id, i)
        assert not actions[:, stay:, i].any(), (case.format_id, i)


def test_the_test_data_contain_many_escalations_coordinations_and_abandonments():
    counts = {"runs": 0, "escalations": 0, "coordinated": 0, "free_coordinated": 0,
              "abandoned": 0, "defended": 0, "deterred": 0, "honours": 0,
              "coordinated_abstentions": 0}
    for index, case in enumerate(CASES):
        ids, _, _, series = results(index)
        escalated, team, outcome = series["escalated"], series["team"], series["outcome"]
        actions = series["actions"]
        # consistency of the records
        assert not (team & ~escalated).any()
        assert not actions[~escalated].any()
        np.testing.assert_array_equal(outcome == DETERRED, ~escalated)
        if CATALOGUE[case.format_id].coordination_probability == 0:
            assert not team.any(), case.format_id
        else:
            assert team.sum() > 300, case.format_id
        # every case has a fair share of deterred rounds and of escalations
        assert 0.15 < escalated.mean() < 0.85, case.format_id
        assert (outcome == ABANDONED).sum() + (outcome == DEFENDED).sum() > 300, case.format_id
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
    assert counts["runs"] >= 1100, counts
    assert counts["escalations"] >= 10_000, counts
    assert counts["coordinated"] >= 3_000, counts
    assert counts["free_coordinated"] >= 1_000, counts
    assert counts["coordinated_abstentions"] >= 1_000, counts
    assert counts["abandoned"] >= 3_000, counts
    assert counts["defended"] >= 3_000, counts
    assert counts["deterred"] >= 10_000, counts
    assert counts["honours"] >= 10_000, counts


# ---------------------------------------------------------------------------------------
# 2. The round's rules against independent oracles


def enumerated_escalation_probability(game, q: np.ndarray) -> float:
    """``Lambda((V - U_R(refrain)) / sigma_R)`` for cell 0 of ``game``, with V the mean of
    U_R(a) over all 2^n profiles weighted by prod_i q_i^a_i (1 - q_i)^(1 - a_i) (engaged
    members honour), each U_R(a) from the payoff equations (v2spec, docs/model.md)."""
    n = game.n
    q = [1.0 if game.engaged[0, i] else float(q[i]) for i in range(n)]
    m, ukraine = float(game.russia_capability[0]), float(game.ukraine_capability[0])
    terms = []
    for a in itertools.product((0, 1), repeat=n):
        weight = math.prod(q[i] if a[i] else 1.0 - q[i] for i in range(n))
        defence = ukraine + sum(float(game.added_capability[0, i]) for i in range(n) if a[i])
        success = m / (m + defence) * math.prod(
            1.0 - float(game.decisive_probability[0, i]) for i in range(n) if a[i])
        risk = 1.0 - math.prod(1.0 - float(game.escalation_probability[0, i])
                               for i in range(n) if a[i])
        sanctions = sum(float(game.sanctions_weight[0, i]) for i in range(n) if a[i])
        war = (float(game.failed_war_value[0])
               + success * float(game.war_aims_value[0] - game.failed_war_value[0])
               - float(game.war_cost[0]) - float(game.sanctions_cost[0]) * sanctions
               - risk * float(game.russia_catastrophe_cost[0]))
        terms.append(weight * war)
    value = math.fsum(terms)
    refrain = float(game.status_quo_value[0] - game.provocation_cost[0])
    return 1.0 / (1.0 + math.exp(-(value - refrain) / float(game.russia_resolve_scale[0])))


#: Run indices scanned for uniforms next to a probability (slot 0, round 0).
SCANNED_RUNS = 4_000_000
#: How close (relative) the package's and the enumerated escalation probability must be:
#: the quadrature's proven bound (1e-14 in a probability) and rounding.
ORACLE_RTOL = 1e-11


@pytest.fixture(scope="module")
def round_zero_uniforms():
    """Russia's uniforms in round 0 of runs 0 .. SCANNED_RUNS - 1, per root seed."""
    return cache(lambda key: dyn.uniforms(key, np.arange(SCANNED_RUNS), 0, 1)[:, 0])


@pytest.mark.parametrize("index", range(len(CASES)), ids=[c.id for c in CASES])
def test_round_zero_escalation_probability_equals_the_enumerated_one(index,
                                                                     round_zero_uniforms):
    case = CASES[index]
    setup = setup_of(case, shocks=[])  # round 0 plays the base game
    game = setup.base
    prior = np.full(game.n, setup.params.belief_prior_reliability)
    expected = enumerated_escalation_probability(game, prior)
    assert 0.05 < expected < 0.95, (case.format_id, expected)
    # the rule itself
    computed = dyn.escalation_probability(game, np.full((1, game.n), prior))[0]
    assert computed == pytest.approx(expected, rel=ORACLE_RTOL, abs=0.0)
    # the engine's choices in round 0: the runs whose uniforms lie nearest below and above
    # the enumerated probability escalate and refrain, so the engine's probability is
    # within their distance of it
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


def enumerated_gains(game, q: np.ndarray) -> np.ndarray:
    """Each member's expected gain of honouring, cell 0, by enumerating the others'
    profiles (engaged members honour), from the payoff equations."""
    n = game.n
    q = [1.0 if game.engaged[0, i] else float(q[i]) for i in range(n)]
    m, ukraine = float(game.russia_capability[0]), float(game.ukraine_capability[0])

    def utility(i, a):
        defence = ukraine + sum(float(game.added_capability[0, j]) for j in range(n) if a[j])
        success = m / (m + defence) * math.prod(
            1.0 - float(game.decisive_probability[0, j]) for j in range(n) if a[j])
        risk = 1.0 - math.prod(1.0 - float(game.escalation_probability[0, j])
                               for j in range(n) if a[j])
        return (-float(game.stake[0, i]) * success
                - (float(game.honouring_cost[0, i]) if a[i] else float(game.reneging_cost[0, i]))
                - risk * float(game.catastrophe_cost[0, i]))

    gains = np.zeros(n)
    for i in range(n):
        terms = []
        for rest in itertools.product((0, 1), repeat=n - 1):
            weight = math.prod(q[j] if rest[k] else 1.0 - q[j]
                               for k, j in enumerate(x for x in range(n) if x != i))
            a1 = list(rest[:i]) + [1] + list(rest[i:])
            a0 = list(rest[:i]) + [0] + list(rest[i:])
            terms.append(weight * (utility(i, a1) - utility(i, a0)))
        gains[i] = math.fsum(terms)
    return gains


@pytest.mark.parametrize("format_id", ["nato_lite", "three_tier"])
def test_a_coordinated_response_in_round_zero_is_drawn_from_the_coordinated_equilibrium(
        format_id):
    case = CASES[[c.format_id for c in CASES].index(format_id)]
    setup = setup_of(case, shocks=[])  # round 0 plays the base game
    game = setup.base
    q = select(game, equilibrium_set(game)).q_coordinated[0]
    # an equilibrium: each free member honours with Lambda(G_i(q_-i) / sigma_i)
    free = ~game.engaged[0]
    gains = enumerated_gains(game, q)
    fixed = 1.0 / (1.0 + np.exp(-gains / game.resolve_scale[0]))
    np.testing.assert_allclose(q[free], fixed[free], rtol=0, atol=1e-9)
    assert np.all(q[~free] == 1.0)
    assert np.any((q > 0.05) & (q < 0.95)), q  # a mixed response: the draws matter
    ids = np.arange(1500)
    sim = engine.simulate(setup, ids, 1, keep_series=True)
    team = sim.series["team"][:, 0]
    assert team.sum() >= 50
    u = dyn.uniforms(setup.key, ids[team], 0, dyn.SLOT_FIRST_GUARANTOR + game.n)
    np.testing.assert_array_equal(sim.series["actions"][team, 0],
                                  (u[:, dyn.SLOT_FIRST_GUARANTOR:] < q).astype(np.int8))


def profile_utility(game, i: int, a) -> float:
    """Member i's payoff in cell 0 of ``game`` at the pure profile ``a``, from the payoff
    equations."""
    n = game.n
    m, ukraine = float(game.russia_capability[0]), float(game.ukraine_capability[0])
    defence = ukraine + sum(float(game.added_capability[0, j]) for j in range(n) if a[j])
    success = m / (m + defence) * math.prod(
        1.0 - float(game.decisive_probability[0, j]) for j in range(n) if a[j])
    risk = 1.0 - math.prod(1.0 - float(game.escalation_probability[0, j])
                           for j in range(n) if a[j])
    return (-float(game.stake[0, i]) * success
            - (float(game.honouring_cost[0, i]) if a[i] else float(game.reneging_cost[0, i]))
            - risk * float(game.catastrophe_cost[0, i]))


@pytest.mark.parametrize("index", range(len(CASES)), ids=[c.id for c in CASES])
def test_the_start_attraction_is_the_enumerated_expected_gain_at_the_prior(index):
    case = CASES[index]
    setup = setup_of(case)
    game = setup.base
    prior = np.full(game.n, setup.params.belief_prior_reliability)
    start = dyn.initial_attraction(game, setup.params)[0]
    np.testing.assert_allclose(start, enumerated_gains(game, prior), rtol=1e-11, atol=1e-14)


@pytest.mark.parametrize("format_id", ["bilateral", "nato_lite", "three_tier"])
def test_the_first_round_of_learning_follows_the_equations(format_id):
    """Beliefs after round 0 from every response seen in an escalation (coordinated or
    not) and the troop signal; attractions from the realised gain where the members decided
    alone, and from the readiness cost alone otherwise."""
    case = CASES[[c.format_id for c in CASES].index(format_id)]
    setup = setup_of(case, shocks=[])  # round 0 plays the base game
    game, params = setup.base, setup.params
    ids = np.arange(300)
    sim = engine.simulate(setup, ids, 1, keep_series=True)
    escalated, team = sim.series["escalated"][:, 0], sim.series["team"][:, 0]
    actions = sim.series["actions"][:, 0].astype(np.float64)
    assert escalated.sum() >= 30 and (escalated & ~team).sum() >= 10
    # before round 0 the beliefs are the prior, so the memory does not act yet
    r0, s0 = params.belief_prior_reliability, params.belief_prior_strength
    alpha0, beta0 = s0 * r0, s0 * (1.0 - r0)
    troops = game.troops_on_ground[0]
    alpha = (alpha0 + escalated[:, None] * actions
             + params.troop_signal_weight * troops[None, :])
    beta = beta0 + escalated[:, None] * (1.0 - actions)
    np.testing.assert_allclose(sim.series["belief"][:, 0], alpha / (alpha + beta),
                               rtol=1e-14, atol=0)
    start = enumerated_gains(game, np.full(game.n, r0))
    step = 1.0 - params.attraction_memory
    rho = game.readiness_cost[0]
    for k in range(ids.size):
        alone = escalated[k] and not team[k]
        for i in range(game.n):
            a = [int(x) for x in actions[k]]
            gain = (profile_utility(game, i, a[:i] + [1] + a[i + 1:])
                    - profile_utility(game, i, a[:i] + [0] + a[i + 1:]))
            expected = start[i] + step * ((gain - start[i] if alone else 0.0) - rho[i])
            assert sim.series["attraction"][k, 0, i] == pytest.approx(expected, rel=1e-10,
                                                                      abs=1e-13), (k, i)


# ---------------------------------------------------------------------------------------
# 2. Seeds


@pytest.fixture(scope="module")
def nato_lite_runs():
    ids = np.array([0, 1, 2, 5, 1_000_003] + list(range(100, 295)))

    def simulate(seed, sc=BASELINE):
        setup = dyn.Setup.from_config(sc, CATALOGUE["nato_lite"], seed=seed)
        return engine.simulate(setup, ids, STEPS, keep_series=True, chunk_runs=37)

    return simulate


def test_different_seeds_give_different_action_sequences(nato_lite_runs):
    one, two = nato_lite_runs(1), nato_lite_runs(2)
    assert not np.array_equal(one.series["actions"], two.series["actions"])
    assert not np.array_equal(one.series["escalated"], two.series["escalated"])
    # not just somewhere: almost every run's escalation sequence differs
    same_run = (one.series["escalated"] == two.series["escalated"]).all(axis=1)
    assert same_run.mean() < 0.05
    # and different runs of one seed differ from each other
    assert not np.array_equal(one.series["escalated"][0], one.series["escalated"][1])


def test_the_same_seed_gives_the_same_action_sequences(nato_lite_runs):
    first, again = nato_lite_runs(1), nato_lite_runs(1)
    assert_identical(first.series, again.series, SERIES_KEYS, "same seed")
    # the scenario's seed is the default, and seed= overrides it
    default = nato_lite_runs(None, BASELINE.model_copy(update={"seed": 1}))
    assert_identical(first.series, default.series, SERIES_KEYS, "scenario seed")
    baseline_seed = nato_lite_runs(None)
    assert not np.array_equal(first.series["actions"], baseline_seed.series["actions"])
    explicit = nato_lite_runs(BASELINE.seed)
    assert_identical(baseline_seed.series, explicit.series, SERIES_KEYS, "explicit seed")


# ---------------------------------------------------------------------------------------
# 3. Memory: Mesa's registry of agent ids (mesa issue 3179)


SMALL = dyn.Setup.from_config(scenario([guarantor("A")]), fmt(coordination_probability=0.5),
                              seed=3)
MEMORY_TOLERANCE = 1_000_000  # bytes: 800 leaked models would hold about 14 MB


def live_crisis_models() -> int:
    gc.collect()
    return sum(isinstance(obj, abm.CrisisModel) for obj in gc.get_objects())


def test_many_mesa_runs_in_one_process_do_not_grow_memory():
    abm.run(SMALL, 0, 2)  # warm caches
    gc.collect()
    registry = len(mesa.Agent._ids)
    tracemalloc.start()
    try:
        for r in range(200):
            abm.run(SMALL, r, 2)
        gc.collect()
        after_200 = tracemalloc.get_traced_memory()[0]
        registry_200 = len(mesa.Agent._ids)
        for r in range(200, 1000):
            abm.run(SMALL, r, 2)
        gc.collect()
        after_1000 = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert registry_200 == registry, (registry, registry_200)
    assert len(mesa.Agent._ids) == registry, (registry, len(mesa.Agent._ids))
    assert after_1000 - after_200 < MEMORY_TOLERANCE, (after_200, after_1000)
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
        for r in range(200):
            model = abm.CrisisModel(SMALL, r)
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
    assert grown == 200, grown
    assert alive >= 200, alive
    assert leaked > MEMORY_TOLERANCE, leaked
    assert live_crisis_models() == 0  # released by hand


# ---------------------------------------------------------------------------------------
# 4. The random numbers

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

    from deterrence.game.payoffs import build_game

    sc = load_scenario(SCENARIOS_DIR / "us_withdrawal.toml")
    spec = load_catalogue()["three_tier"]
    grid = build_game(sc, spec, {
        "russia.status_quo_value": np.linspace(0.1, 0.7, 7)[:, None],
        "format.commitment_bindingness": np.array([0.2, 0.9])[None, :]})
    setup = replace(dyn.Setup.from_config(sc, spec), base=grid)
    cells = np.random.default_rng(1).integers(0, grid.cells, 40)
    runs = np.arange(40) * 7 + 3
    sim = engine.simulate(setup, runs, 40, keep_series=True, chunk_runs=11, cells=cells)
    for j in range(runs.size):
        summary, series = abm.run(setup, int(runs[j]), 40, cell=int(cells[j]))
        for name, values in series.items():
            np.testing.assert_array_equal(values[0], sim.series[name][j], err_msg=name)
    # the cells matter: the same run index in two cells differs
    one = engine.simulate(setup, [3, 3], 40, cells=[0, grid.cells - 1])
    assert one.summary["escalation_frequency"][0] != one.summary["escalation_frequency"][1]
    with pytest.raises(ValueError, match="cells must give"):
        engine.simulate(setup, [0], 5, cells=[grid.cells])
