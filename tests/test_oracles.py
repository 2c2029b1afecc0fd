"""The solver against closed-form results from the literature
(docs/sources.md#theory-and-test-oracles; docs/model.md §3).

Each game here is built through the project's own payoff function (``build_game``), with
parameters chosen so that it reduces to the textbook game; the expected numbers come from
the published closed forms, not from the code.
"""

from __future__ import annotations

import numpy as np
import pytest
from burden_sharing import cobb_douglas_contributions, samuelson_provision
from scipy.integrate import solve_ivp
from scipy.optimize import minimize_scalar

from deterrence.game.payoffs import (
    all_profiles,
    build_game,
    russia_escalate_payoff,
    russia_refrain_payoff,
)
from deterrence.solve import binary_games as bg
from deterrence.solve.equilibrium import (
    crisis_tables,
    guarantor_table,
    pure_equilibria,
    solve_cell,
    solve_grid,
    strategic_table,
)

from helpers import fmt, guarantor, scenario

# A contest so decisive (exponent 50) that one honouring guarantor turns certain Russian
# success (P = 1 - 1e-20) into certain failure (P < 1e-36): a threshold public good.
STEP_CONTEST = {"russia": {"military_spending_usd_bn": 100.0, "contest_decisiveness": 50.0},
                "ukraine": {"military_spending_usd_bn": 40.0, "baseline_military_aid_usd_bn": 0.0}}
VOLUNTEER_FORMAT = fmt(commitment_bindingness=0.0, coordination_probability=0.0,
                       response_delay_days=0.0,
                       response={"denial_share": 1.0, "punishment_share": 0.0, "cost_share": 1.0})


def volunteers_dilemma(benefits, costs):
    """The crisis game of len(benefits) guarantors that is a volunteer's dilemma."""
    pairs = enumerate(zip(benefits, costs, strict=True))
    members = [guarantor(f"G{i}", military_spending_usd_bn=500.0, stake_in_ukraine=b,
                         honouring_cost=c) for i, (b, c) in pairs]
    return build_game(scenario(members, **STEP_CONTEST), VOLUNTEER_FORMAT)


def mixed_spe(game):
    found = [e for e in solve_cell(game, rationality=1.0) if e.kind == "mixed SPE"]
    assert len(found) == 1, [e.kind for e in solve_cell(game, rationality=1.0)]
    return np.array(list(found[0].deter_probability.values()))


@pytest.mark.parametrize(("n", "expected_nobody"), [(3, 0.125), (5, 0.1768), (10, 0.2143)])
def test_volunteers_dilemma_probability_that_nobody_acts(n, expected_nobody):
    # Diekmann (1985): c/b = 0.25, P(nobody acts) = (c/b)^(n/(n-1))
    act = mixed_spe(volunteers_dilemma([1.0] * n, [0.25] * n))
    assert np.prod(1.0 - act) == pytest.approx(expected_nobody, abs=1e-4)
    assert np.allclose(1.0 - act, 0.25 ** (1.0 / (n - 1)), atol=1e-9)


def test_volunteers_dilemma_two_players_each_volunteers_with_three_quarters():
    act = mixed_spe(volunteers_dilemma([1.0, 1.0], [0.25, 0.25]))
    assert act == pytest.approx([0.75, 0.75], abs=1e-12)


def test_asymmetric_volunteers_dilemma_cheapest_volunteer_acts_least():
    # q_i = Q b_i / c_i with Q^(n-1) = prod c_j / b_j; c/b = (0.1, 0.2, 0.4)
    stay_out = 1.0 - mixed_spe(volunteers_dilemma([1.0, 1.0, 1.0], [0.1, 0.2, 0.4]))
    assert stay_out == pytest.approx([0.894, 0.447, 0.224], abs=1e-3)
    assert np.argmax(stay_out) == 0


def test_volunteers_dilemma_pure_equilibria_are_the_single_volunteer_profiles():
    game = volunteers_dilemma([1.0] * 4, [0.25] * 4)
    pure = [e for e in solve_cell(game, rationality=1.0) if e.kind == "pure SPE"]
    volunteers = sorted(tuple(e.deter_probability.values()) for e in pure)
    expected = sorted(tuple(float(i == j) for i in range(4)) for j in range(4))
    assert volunteers == expected


def test_olson_zeckhauser_only_the_largest_ally_contributes():
    incomes, alpha = np.array([20.0, 4.0, 3.0, 2.0, 1.0]), 0.2
    x = cobb_douglas_contributions(incomes, alpha)
    assert x.sum() == pytest.approx(4.0)
    assert x[0] == pytest.approx(4.0) and np.all(x[1:] == 0)
    assert samuelson_provision(incomes, alpha) == pytest.approx(6.0)
    # an independent check: each contribution is a best response to the others'
    for i, y in enumerate(incomes):
        others = x.sum() - x[i]
        best = minimize_scalar(lambda xi, y=y, others=others:
                               -((y - xi) ** (1 - alpha) * (others + xi) ** alpha),
                               bounds=(0.0, y - 1e-12), method="bounded",
                               options={"xatol": 1e-10})
        assert best.x == pytest.approx(x[i], abs=1e-5)
    # the Samuelson level satisfies sum of marginal rates of substitution = 1
    total = samuelson_provision(incomes, alpha)
    private = incomes * (incomes.sum() - total) / incomes.sum()
    assert np.sum(alpha / (1 - alpha) * private / total) == pytest.approx(1.0)


def credibility_game(pi: np.ndarray, status_quo: float):
    """Two allies who would free ride alone but defend when the team forms (prob. pi)."""
    allies = [guarantor(g, military_spending_usd_bn=300.0, stake_in_ukraine=1.0,
                        honouring_cost=0.3) for g in ("A", "B")]
    sc = scenario(allies, russia={"status_quo_value": status_quo, "sanctions_cost": 0.3,
                                  "war_cost": 0.1})
    f = fmt(commitment_bindingness=0.0, response_delay_days=0.0,
            response={"denial_share": 0.5, "cost_share": 1.0})
    return build_game(sc, f, {"format.coordination_probability": pi})


def test_perfect_deterrence_credibility_threshold():
    # Zagare & Kilgour: deterred iff credibility pi > (w - s) / (w - d)
    pi = np.linspace(0.0, 1.0, 401)
    game = credibility_game(pi, status_quo=0.45)
    t = crisis_tables(game)
    # alone, both abstain (the only equilibrium); the team sends one of them
    assert np.array_equal(np.flatnonzero(pure_equilibria(t)[0]), [0])
    team = t.team[0]
    assert team in (1, 2) and np.all(t.team == team)
    profiles = all_profiles(2)
    w = russia_escalate_payoff(game, profiles)[0, 0]  # unopposed
    d = russia_escalate_payoff(game, profiles)[0, team]  # opposed by the team
    s = russia_refrain_payoff(game)[0]
    assert d < s < w
    threshold = (w - s) / (w - d)
    deterred = solve_grid(game).regime == 0
    assert np.array_equal(deterred, pi > threshold + 1e-9)
    assert 0.05 < threshold < 0.95  # the sweep actually crosses it


def test_no_credibility_deters_when_war_beats_the_status_quo():
    pi = np.linspace(0.0, 1.0, 51)
    game = credibility_game(pi, status_quo=0.0)
    s = russia_refrain_payoff(game)[0]
    d = russia_escalate_payoff(game, all_profiles(2))[0, crisis_tables(game).team[0]]
    assert s < d
    assert not np.any(solve_grid(game).regime == 0)


def one_guarantor_cycle_game(readiness: float = 0.05):
    ally = guarantor("A", military_spending_usd_bn=300.0, stake_in_ukraine=1.0,
                     honouring_cost=0.3, audience_cost=0.3, readiness_cost=readiness)
    f = fmt(commitment_bindingness=1.0, response_delay_days=0.0,
            response={"denial_share": 0.5, "cost_share": 1.0})
    return build_game(scenario([ally], russia={"status_quo_value": 0.3}), f)


def test_two_population_replicator_rest_point_is_a_centre():
    game = one_guarantor_cycle_game()
    t = crisis_tables(game)
    # closed form from the 2x2 payoffs: Russia indifferent at x*, the ally at y*
    esc = russia_escalate_payoff(game, all_profiles(1))[0]
    refrain = russia_refrain_payoff(game)[0]
    honour_gain = np.diff(guarantor_table(t)[0, :, 0])[0]
    x_star = (refrain - esc[0]) / (esc[1] - esc[0])
    y_star = 0.05 / honour_gain
    assert 0 < x_star < 1 and 0 < y_star < 1
    gains = bg.gains(strategic_table(t))
    rest = bg.totally_mixed_equilibrium(gains, tol=1e-10)
    assert rest.converged[0]
    assert rest.x[0] == pytest.approx([y_star, x_star], abs=1e-9)
    jac = bg.replicator_jacobian(gains, rest.x)[0]
    # by hand: J = [[0, y(1-y) dV/dx], [x(1-x) dU/dy, 0]]: trace 0, determinant > 0
    by_hand = np.array([[0.0, y_star * (1 - y_star) * (esc[1] - esc[0])],
                        [x_star * (1 - x_star) * honour_gain, 0.0]])
    assert jac == pytest.approx(by_hand, abs=1e-9)
    assert np.trace(by_hand) == 0 and np.linalg.det(by_hand) > 0
    codes, _ = bg.classify(np.linalg.eigvals(jac)[None], 1e-9)
    assert bg.STABILITY_NAMES[codes[0]] == "centre"
    found = {e.kind: e for e in solve_cell(game, rationality=20.0)}
    assert found["learning rest point"].stability == "centre"


def test_replicator_orbits_close_and_logit_noise_damps_them():
    game = one_guarantor_cycle_game()
    gains = bg.gains(strategic_table(crisis_tables(game)))
    rest = bg.totally_mixed_equilibrium(gains, tol=1e-10).x[0]

    def replicator(_, s):
        s = s[None]
        return (s * (1 - s) * bg.expected_gains(gains, s))[0]

    start = rest + np.array([0.02, 0.0])
    orbit = solve_ivp(replicator, (0, 4000), start, rtol=1e-10, atol=1e-12, dense_output=True)
    # distance from the rest point neither dies out nor explodes over many cycles
    radius = np.linalg.norm(orbit.sol(np.linspace(2000, 4000, 4001)).T - rest, axis=1)
    assert radius.max() < 0.1 and radius.min() > 1e-4
    # the orbit comes back to its start line (x = x*) above y*, again and again
    ys = orbit.sol(np.linspace(0, 4000, 400001))
    crossings = np.flatnonzero((ys[1, :-1] - rest[1] < 0) & (ys[1, 1:] - rest[1] >= 0))
    assert len(crossings) >= 3
    # with logit noise the rest point is asymptotically stable (spirals in)
    qre = solve_cell(game, rationality=20.0)[-1]
    assert qre.kind == "logit QRE" and qre.stability == "stable"
