"""The simulations against the exact solver.

With precise choices (rationality 200), no forgetting, no readiness costs and constant
stocks, the agents learn the one-round game the solver solves. Where Russia's choice at its
prior beliefs agrees with its choice in the equilibrium, learning ends where the solver
says: the long-run escalation frequency is within 0.05 of the subgame-perfect prediction.

Where they disagree in one direction — the equilibrium has Russia escalate because a
guarantor would abstain, but Russia's untested prior belief deters it — learning cannot end
there: Russia never escalates, so it never learns that the threat is empty. Deterrence then
rests on a self-confirming belief (Fudenberg & Levine 1993), and the test documents it.

Readiness costs make the deterred equilibrium unstable in the guarantors' direction
(eigenvalue = readiness cost); without them it is neutral. The simulations do the same:
an untested guarantor's readiness erodes, or stays put.
"""

from __future__ import annotations

import numpy as np
import pytest

from deterrence.game.config import SCENARIOS_DIR, load_catalogue, load_scenario
from deterrence.game.payoffs import build_game
from deterrence.simulate import engine
from deterrence.simulate import rules as dyn
from deterrence.solve import binary_games as bg
from deterrence.solve.equilibrium import crisis_tables, escalation_value, solve_cell, solve_grid

from helpers import fmt, guarantor, scenario

RATIONALITY = 200.0
TOLERANCE = 0.05           # on the long-run escalation frequency
DECISIVE_MARGIN = 0.03     # |V_escalate - U_R(refrain)|: sigmoid(200 * 0.03) > 0.997
STATIC = {"war_damage": 0.0, "aid_persistence": 0.0, "sanctions_drag": 0.0,
          "belief_memory": 1.0}


def learning_scenario(status_quo: float):
    base = load_scenario(SCENARIOS_DIR / "baseline.toml")
    return base.model_copy(update={
        "dynamics": base.dynamics.model_copy(update=STATIC),
        "guarantors": [g.model_copy(update={"readiness_cost": 0.0}) for g in base.guarantors],
        "russia": base.russia.model_copy(update={"status_quo_value": status_quo}),
    })


def cells():
    catalogue = load_catalogue()
    for format_id in catalogue:
        for status_quo in (0.1, 0.2, 0.3, 0.4, 0.5, 0.7):
            yield format_id, status_quo


def prediction(sc, spec):
    """(SPE escalates?, decisive?, escalates at the prior beliefs?) for one cell."""
    game = build_game(sc, spec)
    grid = solve_grid(game)
    t = crisis_tables(game)
    spe = [e for e in solve_cell(game, RATIONALITY) if e.kind == "pure SPE"]
    assert len(spe) == 1 and grid.equilibrium_count[0] == 1
    x = np.array(list(spe[0].deter_probability.values()))[None]
    margin = escalation_value(t, bg.profile_probabilities(x)) - t.russia_refrain
    prior = np.full((1, game.n), sc.dynamics.belief_prior_reliability)
    at_prior = escalation_value(t, bg.profile_probabilities(prior)) > t.russia_refrain
    return bool(grid.worst_escalates[0]), bool(abs(margin[0]) > DECISIVE_MARGIN), bool(
        at_prior[0])


def long_run_escalation(sc, spec, runs=50, steps=400):
    setup = dyn.Setup.from_config(sc, spec, rationality=RATIONALITY)
    sim = engine.simulate(setup, runs, steps, keep_series=True)
    return float(sim.series["escalated"][:, steps // 2:].mean())


def test_learning_reaches_the_subgame_perfect_prediction():
    catalogue = load_catalogue()
    checked, self_confirming = [], []
    for format_id, status_quo in cells():
        sc = learning_scenario(status_quo)
        escalates, decisive, at_prior = prediction(sc, catalogue[format_id])
        if not decisive:
            continue
        observed = long_run_escalation(sc, catalogue[format_id])
        if escalates and not at_prior:
            self_confirming.append((format_id, status_quo, observed))
            continue
        checked.append((format_id, status_quo, escalates, observed))
        assert observed == pytest.approx(float(escalates), abs=TOLERANCE), (
            format_id, status_quo, escalates, observed)
    # the comparison covers both outcomes and most of the cells
    assert len(checked) >= 20
    assert {e for _, _, e, _ in checked} == {True, False}
    # the documented exception: an untested, empty threat keeps deterring
    assert self_confirming, "expected a self-confirming case in these cells"
    for format_id, status_quo, observed in self_confirming:
        assert observed < TOLERANCE, (format_id, status_quo, observed)


def single_ally_deterrence(readiness: float):
    ally = guarantor("A", military_spending_usd_bn=300.0, stake_in_ukraine=1.0,
                     honouring_cost=0.3, audience_cost=0.3, readiness_cost=readiness)
    spec = fmt(commitment_bindingness=1.0, response_delay_days=0.0,
               response={"denial_share": 0.5, "cost_share": 1.0})
    sc = scenario([ally], russia={"status_quo_value": 0.3}, dynamics=STATIC)
    return sc, spec


@pytest.mark.parametrize(("readiness", "expected"), [(0.05, "unstable"), (0.0, "neutral")])
def test_untested_readiness_erodes_exactly_when_the_solver_says_unstable(readiness, expected):
    sc, spec = single_ally_deterrence(readiness)
    [spe] = [e for e in solve_cell(build_game(sc, spec), RATIONALITY) if e.kind == "pure SPE"]
    assert spe.regime == "deterred" and spe.deter_probability == {"A": 1.0}
    assert spe.stability == expected
    assert spe.max_real_eigenvalue == pytest.approx(readiness)  # the ally's eigenvalue

    setup = dyn.Setup.from_config(sc, spec, rationality=RATIONALITY)
    sim = engine.simulate(setup, 50, 300, keep_series=True)
    untested = ~sim.series["escalated"].any(axis=1)
    assert untested.sum() >= 40  # deterrence holds in (almost) every run
    start = dyn.initial_attraction(setup.base, setup.params)[0, 0]
    assert start > 0.1  # the ally starts ready to honour
    final = sim.series["attraction"][untested, -1, 0]
    if expected == "unstable":
        # readiness erodes: after 300 untested rounds the ally would no longer honour
        assert np.all(final < 0)
        assert np.all(dyn.honour_probability(RATIONALITY, final, np.zeros_like(final,
                                                                                   bool)) < 0.01)
    else:
        assert np.all(final == start)  # neutral: nothing moves it
