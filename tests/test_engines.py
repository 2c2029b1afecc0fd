"""The two simulation engines: the Mesa model and the vectorised engine agree bit for bit.

* **Equivalence.** Over more than 2,000 runs spread over every format of the catalogue, with
  scheduled shocks (withdrawals, cost changes on '*', elections) and varied rationality and
  seeds, :func:`deterrence.simulate.mesa_model.run` (one Mesa run at a time) and
  :func:`deterrence.simulate.engine.simulate` (runs in chunks) give the same actions, teams,
  outcomes,
  stocks, beliefs, attractions and summaries to the last bit. The engine is called with odd
  chunk sizes and scattered, shuffled run indices, so a run's numbers depend neither on the
  chunking nor on which runs are computed with it. The test data are checked to contain many
  escalations, team formations and abandonments, and the shocks are checked to change the
  runs, so the equality is not vacuous.
* **Seeds.** Different seeds give different action sequences; the same seed the same ones.
* **Memory.** Mesa 3.3.1 keeps every model alive through ``mesa.Agent._ids`` (mesa issue
  3179); :func:`deterrence.simulate.mesa_model.run` releases it, so thousands of runs in one
  process do not
  grow memory. The counter-test shows the leak without the release.
* **Random numbers.** :func:`deterrence.simulate.rules.uniforms` is SplitMix64 of the documented
  counter: a pure function of (key, run, step, slot), in [0, 1), and uniform.
"""

from __future__ import annotations

import gc
import tracemalloc
from dataclasses import dataclass
from functools import cache

import mesa
import numpy as np
import pytest
from scipy import stats

from deterrence.game.config import SCENARIOS_DIR, Scenario, Shock, load_catalogue, load_scenario
from deterrence.game.payoffs import ABANDONED, DEFENDED, DETERRED
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
    rationality: float | None     # None: the scenario's rationality (10)
    runs: int                     # about this many run indices
    chunk_runs: int
    shocks: tuple[Shock, ...]
    first_effect: int | None      # first step at which a shock changes the runs (None: never)

    @property
    def id(self) -> str:
        return self.format_id


# Every case has a withdrawal, a cost change on '*' and an election within the horizon;
# some also have shocks that must do nothing (a non-member, a step after the horizon, an
# election at step 0, which resets state that is still at its start).
CASES = (
    Case("bilateral", None, None, 220, 7,
         (cost(3, "*", 2.0), withdraw(9, "Germany"), election(16, "Poland"),
          withdraw(40, "US")), first_effect=3),
    Case("budapest", 0, 3.0, 450, 3,
         (election(0, "*"), withdraw(5, "Poland"), withdraw(12, "US"), cost(20, "*", 0.5),
          election(22, "UK")), first_effect=12),
    Case("coalition", 2 ** 40 + 1, 25.0, 220, 113,
         (withdraw(1, "US"), withdraw(2, "UK"), cost(8, "*", 1.5), cost(8, "France", 0.3),
          election(17, "Poland")), first_effect=2),
    Case("nato", 12345, 0.5, 220, engine.CHUNK_RUNS,
         (cost(1, "*", 3.0), election(6, "US"), withdraw(13, "US"), election(24, "*")),
         first_effect=1),
    Case("nato_lite", 99, 6.0, 220, 64,
         (withdraw(0, "France"), cost(11, "*", 0.7), election(15, "France"),
          election(19, "Italy"), withdraw(24, "Baltic")), first_effect=0),
    Case("neutrality", 7, 4.0, 500, 2,
         (withdraw(4, "*"), cost(10, "*", 2.0), election(18, "*"), withdraw(20, "US")),
         first_effect=None),
    Case("three_tier", 31337, 1.5, 220, 97,
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


def scenario_with(shocks) -> Scenario:
    return BASELINE.model_copy(update={"shocks": list(shocks)})


def setup_of(case: Case, shocks=None) -> dyn.Setup:
    sc = scenario_with(case.shocks if shocks is None else shocks)
    return dyn.Setup.from_config(sc, CATALOGUE[case.format_id], seed=case.seed,
                                 rationality=case.rationality)


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
    assert len({c.rationality for c in CASES}) == len(CASES)
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
    withdrawals = sorted((s.step, i) for s in case.shocks if s.kind == "withdraw"
                         for i in dyn.shock_targets(s.guarantor, sim.guarantor_ids))
    gone = set()
    for step, i in withdrawals:
        if step >= STEPS or i in gone:
            continue
        gone.add(i)
        assert not sim.series["actions"][:, step:, i].any(), (case.format_id, step, i)
        assert not sim.series["belief"][:, step:, i].any(), (case.format_id, step, i)
        assert sim.series["belief"][:, :step, i].all(), (case.format_id, step, i)
    assert len(gone) == {"bilateral": 1, "budapest": 1, "coalition": 1, "nato": 1,
                         "nato_lite": 2, "neutrality": 0, "three_tier": 8}[case.format_id]


def test_the_test_data_contain_many_escalations_teams_and_abandonments():
    counts = {"runs": 0, "escalations": 0, "teams": 0, "abandoned": 0, "defended": 0,
              "deterred": 0, "honours": 0}
    for index, case in enumerate(CASES):
        ids, _, _, series = results(index)
        escalated, team, outcome = series["escalated"], series["team"], series["outcome"]
        # consistency of the records
        assert not (team & ~escalated).any()
        assert not series["actions"][~escalated].any()
        np.testing.assert_array_equal(outcome == DETERRED, ~escalated)
        if CATALOGUE[case.format_id].coordination_probability == 0:
            assert not team.any(), case.format_id
        else:
            assert team.sum() > 500, case.format_id
        # every case has deterred rounds, escalations, abandonments and defences
        assert 0.1 < escalated.mean() < 0.9, case.format_id
        assert (outcome == ABANDONED).sum() >= 100, case.format_id
        assert (outcome == DEFENDED).sum() >= 50, case.format_id
        counts["runs"] += ids.size
        counts["escalations"] += int(escalated.sum())
        counts["teams"] += int(team.sum())
        counts["abandoned"] += int((outcome == ABANDONED).sum())
        counts["defended"] += int((outcome == DEFENDED).sum())
        counts["deterred"] += int((outcome == DETERRED).sum())
        counts["honours"] += int(series["actions"].sum())
    assert counts["runs"] >= 2000, counts
    assert counts["escalations"] >= 20_000, counts
    assert counts["teams"] >= 5_000, counts
    assert counts["abandoned"] >= 5_000, counts
    assert counts["defended"] >= 5_000, counts
    assert counts["deterred"] >= 10_000, counts
    assert counts["honours"] >= 20_000, counts


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
MEMORY_TOLERANCE = 1_000_000  # bytes: 1,800 leaked models would hold about 25 MB


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
        for r in range(200, 2000):
            abm.run(SMALL, r, 2)
        gc.collect()
        after_2000 = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert registry_200 == registry, (registry, registry_200)
    assert len(mesa.Agent._ids) == registry, (registry, len(mesa.Agent._ids))
    assert after_2000 - after_200 < MEMORY_TOLERANCE, (after_200, after_2000)
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
