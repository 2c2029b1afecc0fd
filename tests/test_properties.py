"""Properties every solution must have, on random games (hypothesis).

* every equilibrium ``solve_cell`` reports passes a best-response check for every player,
  computed here directly from the payoff tables;
* results do not depend on the order in which guarantors are listed;
* the fast forms used on grids (difference forms, halves) agree with the plain tables.
"""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from deterrence.game.payoffs import (
    all_profiles,
    build_game,
    guarantor_payoffs,
    honouring_gain,
    joint_guarantor_payoff,
    russia_escalate_payoff,
)
from deterrence.solve import binary_games as bg
from deterrence.solve.equilibrium import (
    REGIME_NAMES,
    crisis_tables,
    guarantor_table,
    pure_equilibria,
    solve_cell,
    solve_grid,
    strategic_gains_at,
    strategic_payoffs,
    strategic_table,
)

from helpers import fmt, guarantor, scenario

TOL = 1e-9


@st.composite
def games(draw, max_guarantors: int = 4):
    n = draw(st.integers(1, max_guarantors))
    unit = st.floats(0.0, 1.0)
    members = [guarantor(
        f"G{i}",
        military_spending_usd_bn=draw(st.floats(5.0, 1000.0)),
        gdp_usd_tn=draw(st.floats(0.1, 30.0)),
        nuclear_armed=draw(st.booleans()),
        stake_in_ukraine=draw(st.floats(0.0, 2.0)),
        honouring_cost=draw(unit), audience_cost=draw(unit), tripwire_cost=draw(unit),
        catastrophe_cost=draw(st.floats(0.0, 20.0)), readiness_cost=draw(st.floats(0.0, 0.1)),
    ) for i in range(n)]
    response = {"denial_share": draw(unit), "punishment_share": draw(unit),
                "direct_combat": draw(st.booleans()), "troops_on_ground": draw(st.booleans()),
                "cost_share": draw(st.floats(0.0, 2.0))}
    f = fmt(commitment_bindingness=draw(unit), coordination_probability=draw(unit),
            response_delay_days=draw(st.floats(0.0, 60.0)), response=response)
    russia = {"status_quo_value": draw(unit), "war_cost": draw(st.floats(0.0, 0.5)),
              "sanctions_cost": draw(st.floats(0.0, 0.5)),
              "contest_decisiveness": draw(st.floats(0.3, 4.0)),
              "nuclear_escalation_probability": draw(st.floats(0.0, 0.1))}
    return scenario(members, russia=russia), f


def russia_best_response_holds(t, y, x):
    prob = bg.profile_probabilities(x[None])
    p = t.coordination[0]
    value = p * t.russia_escalate[0, t.team[0]] + (1 - p) * prob[0] @ t.russia_escalate[0]
    refrain = t.russia_refrain[0]
    return value <= refrain + TOL if y == 0 else value >= refrain - TOL


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(games())
def test_every_reported_equilibrium_is_a_best_response_for_every_player(case):
    sc, f = case
    game = build_game(sc, f)
    t = crisis_tables(game)
    table = guarantor_table(t)[0]
    bits = all_profiles(game.n)
    for e in solve_cell(game, rationality=5.0):
        x = np.array(list(e.deter_probability.values()))
        if e.kind == "pure SPE":
            k = int(x @ (1 << np.arange(game.n)))
            assert np.array_equal(bits[k], x)
            for i in range(game.n):
                assert table[k, i] >= table[k ^ (1 << i), i] - TOL
            assert russia_best_response_holds(t, e.escalate_probability, x)
        elif e.kind == "mixed SPE":
            assert np.all((x > 0) & (x < 1))
            assert np.allclose(bg.expected_gains(bg.gains(table[None]), x[None]), 0, atol=1e-7)
            assert russia_best_response_holds(t, e.escalate_probability, x)
        elif e.kind == "logit QRE":
            # a QRE is a fixed point of the logit response in the strategic form
            s = np.concatenate([[e.escalate_probability], x])[None]
            g = bg.expected_gains(bg.gains(strategic_table(t)), s)
            assert np.allclose(1 / (1 + np.exp(-5.0 * g)), s, atol=1e-7)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(games(), st.randoms(use_true_random=False))
def test_results_do_not_depend_on_the_order_of_guarantors(case, rnd):
    sc, f = case
    shuffled = list(sc.guarantors)
    rnd.shuffle(shuffled)
    other = sc.model_copy(update={"guarantors": shuffled})

    def summary(s):
        game = build_game(s, f)
        eqs = sorted((e.kind, round(e.escalate_probability, 9), e.regime,
                      tuple(round(e.deter_probability[g], 7) for g in sorted(game.guarantor_ids)))
                     for e in solve_cell(game, rationality=5.0) if "QRE" not in e.kind)
        return int(solve_grid(game).regime[0]), eqs

    assert summary(sc) == summary(other)


@settings(max_examples=60, deadline=None)
@given(games())
def test_fast_forms_agree_with_the_plain_tables(case):
    sc, f = case
    # several cells: vary the status quo and the coordination probability
    game = build_game(sc, f, {"russia.status_quo_value": np.linspace(0, 1, 5)[:, None],
                              "format.coordination_probability": np.array([0.0, 0.5, 1.0])})
    t = crisis_tables(game)
    table = guarantor_table(t)
    bits = all_profiles(game.n)
    assert np.array_equal(pure_equilibria(t), bg.pure_nash_mask(table, TOL))
    assert np.allclose(joint_guarantor_payoff(game, bits, t.success, t.risk),
                       table.sum(axis=-1), atol=1e-12)
    for i in range(game.n):
        on, off = bits[:, i] == 1, bits[:, i] == 0
        gain = honouring_gain(game, i, t.success[:, on], t.success[:, off], t.risk[:, on],
                              t.risk[:, off])
        assert np.allclose(gain, table[:, on, i] - table[:, off, i], atol=1e-12)
    # per-cell profiles (the simulation engines' layout) give the very same numbers
    per_cell = np.array(bits)[None].repeat(game.cells, 0)
    assert np.array_equal(guarantor_payoffs(game, per_cell), table)
    assert np.array_equal(russia_escalate_payoff(game, per_cell), t.russia_escalate)
    # strategic gains at a vertex = differences of strategic payoffs
    rng = np.random.default_rng(0)
    escalate = rng.integers(0, 2, game.cells)
    profile = rng.integers(0, 2 ** game.n, game.cells)
    gains = strategic_gains_at(t, escalate.astype(float), profile)
    full = bg.gains(strategic_table(t))
    vertex = escalate + 2 * profile
    assert np.allclose(gains, full[np.arange(game.cells), vertex], atol=1e-12)
    direct = strategic_payoffs(t, escalate[:, None], profile[:, None])[:, 0]
    assert np.allclose(direct, strategic_table(t)[np.arange(game.cells), vertex], atol=1e-12)


@settings(max_examples=40, deadline=None)
@given(games(max_guarantors=3))
def test_grid_solution_matches_cell_by_cell_solution(case):
    sc, f = case
    sq = np.linspace(0, 1, 7)
    grid = solve_grid(build_game(sc, f, {"russia.status_quo_value": sq}), chunk_cells=3)
    for j, value in enumerate(sq):
        game = build_game(sc, f, {"russia.status_quo_value": [value]})
        spe = [e for e in solve_cell(game, rationality=1.0) if "SPE" in e.kind]
        pure = [e for e in spe if e.kind == "pure SPE"]
        considered = pure or spe
        regimes = {e.regime for e in considered}
        expected = regimes.pop() if len(regimes) == 1 else "mixed"
        assert REGIME_NAMES[grid.regime[j]] == expected
        if pure:
            assert grid.equilibrium_count[j] == len(pure)
            assert grid.escalation_share[j] == np.mean([e.escalate_probability for e in pure])


@settings(max_examples=20, deadline=None)
@given(games(), st.integers(1, 40), st.integers(1, 2))
def test_grid_results_do_not_depend_on_chunking_or_threads(case, chunk, threads):
    sc, f = case
    game = build_game(sc, f, {"russia.status_quo_value": np.linspace(0, 1, 9)[:, None],
                              "russia.war_cost": np.linspace(0, 0.5, 7)[None, :]})
    reference = solve_grid(game, chunk_cells=game.cells, threads=1)
    other = solve_grid(game, chunk_cells=chunk, threads=threads)
    for name in reference.__dataclass_fields__:
        assert np.array_equal(getattr(reference, name), getattr(other, name)), name
