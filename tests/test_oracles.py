"""The solver against independent oracles: brute-force enumeration of the response profiles,
and closed-form results from the literature (docs/sources.md#theory-and-test-oracles).

* The expectations (``expectation``, ``honouring_gain``, ``russia_escalation_value``,
  ``gain_jacobian``, ``member_welfare``) against sums over all 2^n pure profiles, on random
  instances with decisive responses, engaged members and nuclear members, to the proven
  quadrature tolerance; the pure-profile rules themselves against the formulas of
  docs/model.md written out here from the configuration's values.
* Diekmann's volunteer's dilemma (1985) as the complete-information limit of the Bayesian game.
* Zagare & Kilgour's perfect-deterrence threshold (2000).
* Olson & Zeckhauser's burden sharing (1966), on the closed form of tests/burden_sharing.py.

Each game is built through the project's own payoff rules (``build_game``), with parameters
chosen so that it reduces to the textbook game; the expected numbers come from the published
closed forms or from the enumeration, never from the solver.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from burden_sharing import cobb_douglas_contributions, samuelson_provision
from scipy.integrate import quad
from scipy.optimize import minimize_scalar

from deterrence.game import payoffs as pay
from deterrence.game.config import response_of
from deterrence.game.payoffs import (
    QUADRATURE_TOLERANCE,
    all_profiles,
    build_game,
    escalation_risk,
    expectation,
    gain_jacobian,
    guarantor_payoffs,
    honouring_gain,
    laguerre_limit,
    member_welfare,
    russia_escalate_payoff,
    russia_escalation_value,
    russia_success_probability,
)
from deterrence.solve.equilibrium import equilibrium_set, solve_grid

from helpers import fmt, guarantor, random_case, random_response, scenario

# ---------------------------------------------------------------------------------------
# 1. Expectations against enumeration

#: Random instances per number of members in the enumeration tests.
ENUMERATED_INSTANCES = 6
#: Random honouring probabilities (cells) per instance.
PROBABILITY_DRAWS = 8
#: Floating-point rounding allowed besides the quadrature's proven error, relative to the
#: size of the numbers summed (2^10 profiles at most; numpy sums pairwise).
ROUNDING = 64 * np.finfo(float).eps


def _draw_q(rng, game, draws):
    """``draws`` cells of the game with random honouring probabilities, some at 0 or 1."""
    q = rng.uniform(0.0, 1.0, (draws, game.n))
    q[rng.random(q.shape) < 0.15] = 0.0
    q[rng.random(q.shape) < 0.15] = 1.0
    return game.take(np.zeros(draws, dtype=int)), q


def _weights(q):
    """P(profile) for independent members (C, P), and P(the others' part | a_i) (C, P, n)."""
    a = all_profiles(q.shape[1])[None]
    each = np.where(a == 1, q[:, None, :], 1.0 - q[:, None, :])  # (C, P, n)
    weight = np.prod(each, axis=2)
    others = np.stack([np.prod(np.delete(each, i, axis=2), axis=2)
                       for i in range(q.shape[1])], axis=2)
    return weight, others


def enumerated(game, q):
    """Every expectation by summing over all 2^n profiles with the pure-profile rules."""
    q = np.where(game.engaged, 1.0, q)
    a = all_profiles(game.n)
    weight, others = _weights(q)
    success = russia_success_probability(game, a)           # (C, P)
    risk = escalation_risk(game, a)
    payoff = guarantor_payoffs(game, a)                     # (C, P, n)
    on = a[None] == 1                                       # (1, P, n)

    def conditional(values, honour):                       # values (C, P) or (C, P, n)
        v = values if values.ndim == 3 else values[..., None]
        return np.sum(np.where(on == honour, others * v, 0.0), axis=1)

    gain = conditional(payoff, True) - conditional(payoff, False)
    # dG_i/dq_j: G_i is affine in q_j, so the derivative is G_i(q_j = 1) - G_i(q_j = 0)
    n = game.n
    jac = np.zeros((game.cells, n, n))
    for j in range(n):
        for value, sign in ((1.0, 1.0), (0.0, -1.0)):
            qj = q.copy()
            qj[:, j] = value
            _, oth = _weights(qj)
            g = (np.sum(np.where(on, oth * payoff, 0.0), axis=1)
                 - np.sum(np.where(~on, oth * payoff, 0.0), axis=1))
            jac[:, :, j] += sign * g
    jac[:, np.arange(n), np.arange(n)] = 0.0
    jac[:, :, game.engaged[0]] = 0.0
    return {"success": np.sum(weight * success, axis=1),
            "success_if": np.stack([conditional(success, False), conditional(success, True)],
                                   axis=-1),
            "risk": np.sum(weight * risk, axis=1),
            "respond": 1.0 - weight[:, 0],
            "sanctions": np.sum(weight * (a @ game.sanctions_weight.T).T, axis=1)
            if n else np.zeros(game.cells),
            "russia": np.sum(weight * russia_escalate_payoff(game, a), axis=1),
            "gain": gain, "jacobian": jac}


def _case(seed, n, **response_args):
    sc, f = random_case(np.random.default_rng(seed), n, **response_args)
    return build_game(sc, f), sc, f


def _scale(game):
    """The largest utility in a member's gain: the bound's multiplier."""
    return 1.0 + np.max(game.stake + game.honouring_cost + game.reneging_cost
                        + game.catastrophe_cost, initial=0.0)


def check_against_enumeration(game, q):
    """Assert every expectation agrees with the enumeration to the proven bound."""
    ex = expectation(game, q)
    want = enumerated(game, q)
    prob_tol = QUADRATURE_TOLERANCE + ROUNDING
    np.testing.assert_allclose(ex.success, want["success"], rtol=0, atol=prob_tol)
    np.testing.assert_allclose(ex.success_if, want["success_if"], rtol=0, atol=prob_tol)
    np.testing.assert_allclose(ex.risk, want["risk"], rtol=0, atol=ROUNDING)
    np.testing.assert_allclose(ex.respond, want["respond"], rtol=0, atol=ROUNDING)
    np.testing.assert_allclose(ex.sanctions, want["sanctions"], rtol=ROUNDING, atol=ROUNDING)
    # Russia's value: the success probability times (W - F), the rest closed forms
    russia_scale = float(np.max(np.abs(game.war_aims_value - game.failed_war_value))
                         + np.max(game.sanctions_cost * game.sanctions_weight.sum(axis=1))
                         + np.max(game.russia_catastrophe_cost) + 1.0)
    np.testing.assert_allclose(russia_escalation_value(game, ex), want["russia"], rtol=0,
                               atol=russia_scale * (prob_tol + ROUNDING))
    # a member's gain: stake times two success errors, the rest exact up to rounding
    scale = _scale(game)
    np.testing.assert_allclose(honouring_gain(game, ex), want["gain"], rtol=0,
                               atol=scale * (2 * QUADRATURE_TOLERANCE + 2 * ROUNDING))
    # the Jacobian: a second difference, four success errors
    np.testing.assert_allclose(gain_jacobian(game, q), want["jacobian"], rtol=0,
                               atol=scale * (4 * QUADRATURE_TOLERANCE + 4 * ROUNDING))


@pytest.mark.parametrize("n", range(1, 11))
def test_expectations_agree_with_the_enumeration_of_all_profiles(n):
    rules = set()
    for k in range(ENUMERATED_INSTANCES):
        game, _, _ = _case((10, n, k), n)
        base = game.russia_capability + game.ukraine_capability
        rules.add(int(np.searchsorted([laguerre_limit(m) for m in pay.LAGUERRE_NODES],
                                      game.added_capability.sum() / base[0])))
        cells, q = _draw_q(np.random.default_rng((11, n, k)), game, PROBABILITY_DRAWS)
        check_against_enumeration(cells, q)
    assert len(rules) >= 2 or n < 3, rules  # several quadrature rules are exercised


@pytest.mark.parametrize("n", [1, 3, 6, 10])
def test_expectations_with_large_denial_shares_use_the_composite_rule(n):
    """Denial shares near 1 of large military budgets put A = sum_i c_i / (m + M_U) above the
    limit of the 128-point Laguerre rule, so ``quadrature`` falls back to the composite
    Gauss-Legendre rule; the enumeration must still agree to the same tolerance. The
    budgets are scaled so that A runs from just above the limit to 50 (with responses that
    arrive within 3 days)."""
    limit = laguerre_limit(pay.LAGUERRE_NODES[-1])
    for k, target in enumerate(np.geomspace(1.05 * limit, 50.0, 3)):
        rng = np.random.default_rng((12, n, k))
        sc, f = random_case(rng, n, response=_strong_response)
        f = f.model_copy(update={"response_delay_days": float(rng.uniform(0.0, 3.0))})
        game = build_game(sc, f)
        ratio = game.added_capability.sum() / (game.russia_capability + game.ukraine_capability)
        factor = target / ratio[0]
        spending = {f"guarantors.G{i}.military_spending_usd_bn":
                    sc.guarantor(f"G{i}").military_spending_usd_bn * factor for i in range(n)}
        game = build_game(sc, f, spending)
        groups, rules = pay.quadrature(game)
        assert rules[0][0].shape[1] not in pay.LAGUERRE_NODES  # the composite rule
        cells, q = _draw_q(rng, game, COMPOSITE_DRAWS)
        check_against_enumeration(cells, q)


#: Random honouring probabilities per instance on the composite rule (thousands of nodes).
COMPOSITE_DRAWS = 3


def _strong_response(rng):
    response = random_response(rng, troops=0.5)
    response["denial_share"] = float(rng.uniform(0.7, 1.0))
    return response


def test_pure_profile_rules_are_the_formulas_of_the_model():
    """The pure-profile rules, which the enumeration uses, against docs/model.md's formulas
    evaluated here from the configuration's values (not from the Game's arrays)."""
    for n in (1, 4, 7):
        rng = np.random.default_rng((13, n))
        sc, f = random_case(rng, n, non_members=1)
        game = build_game(sc, f)
        r, u = sc.russia, sc.ukraine
        ids = [f"G{i}" for i in range(n)]
        g = [sc.guarantor(i) for i in ids]
        resp = [response_of(f, i) for i in ids]
        tau = [1.0 if x.troops_on_ground else
               math.exp(-f.response_delay_days / r.fait_accompli_days) for x in resp]
        c = [x.denial_share * gi.military_spending_usd_bn * t
             for x, gi, t in zip(resp, g, tau, strict=True)]
        e = [r.nuclear_escalation_probability * x.direct_combat * gi.nuclear_armed
             for x, gi in zip(resp, g, strict=True)]
        w = [x.punishment_share * gi.gdp_usd_tn / r.sanctions_reference_gdp_usd_tn
             for x, gi in zip(resp, g, strict=True)]
        m = r.military_spending_usd_bn
        mu = u.military_spending_usd_bn + u.baseline_military_aid_usd_bn
        profiles = all_profiles(n)
        success = russia_success_probability(game, profiles)[0]
        russia = russia_escalate_payoff(game, profiles)[0]
        members = guarantor_payoffs(game, profiles)[0]
        for k, a in enumerate(profiles):
            p = m / (m + mu + sum(ai * ci for ai, ci in zip(a, c, strict=True)))
            for ai, x in zip(a, resp, strict=True):
                p *= 1.0 - ai * x.decisive_probability
            risk = 1.0 - math.prod(1.0 - ai * ei for ai, ei in zip(a, e, strict=True))
            v = (r.failed_war_value + p * (r.war_aims_value - r.failed_war_value) - r.war_cost
                 - r.sanctions_cost * sum(ai * wi for ai, wi in zip(a, w, strict=True))
                 - risk * r.catastrophe_cost)
            assert success[k] == pytest.approx(p, rel=1e-14, abs=1e-16)
            assert russia[k] == pytest.approx(v, rel=1e-13, abs=1e-14)
            for i in range(n):
                ui = (-g[i].stake_in_ukraine * p - a[i] * resp[i].cost_share * g[i].honouring_cost
                      - (1 - a[i]) * f.commitment_bindingness * g[i].audience_cost
                      - risk * g[i].catastrophe_cost)
                assert members[k, i] == pytest.approx(ui, rel=1e-13, abs=1e-14)


def test_member_welfare_integrates_over_the_members_own_type():
    """A member with cost type eps honours iff G > eps and then gets E[U | honour] - eps:
    its welfare is E[U | abstain] + E[max(G - eps, 0)], here by numerical integration over
    the logistic density (scipy.integrate.quad); an engaged member gets E[U | honour]."""
    game, _, _ = _case((14, 4), 4)
    cells, q = _draw_q(np.random.default_rng((14, 5)), game, 3)
    ex = expectation(cells, q)
    want = enumerated(cells, q)
    welfare = member_welfare(cells, ex)
    abstain = np.sum(np.where(all_profiles(4)[None] == 0, _weights(
        np.where(cells.engaged, 1.0, q))[1] * guarantor_payoffs(cells, all_profiles(4)), 0.0),
        axis=1)
    for c in range(cells.cells):
        for i in range(cells.n):
            gain, sigma = want["gain"][c, i], cells.resolve_scale[c, i]
            if cells.engaged[c, i]:
                expected = abstain[c, i] + gain
            else:
                def density(eps, sigma=sigma):
                    z = eps / sigma
                    return math.exp(-abs(z)) / (sigma * (1 + math.exp(-abs(z))) ** 2)
                surplus = quad(lambda eps, gain=gain, density=density:
                               (gain - eps) * density(eps), -np.inf, gain,
                               epsabs=1e-13, epsrel=1e-12, limit=200)[0]
                expected = abstain[c, i] + surplus
            assert welfare[c, i] == pytest.approx(expected, rel=1e-9, abs=1e-11)


# ---------------------------------------------------------------------------------------
# 2. Diekmann's volunteer's dilemma as the complete-information limit

#: The volunteer's dilemma of docs/sources.md#diekmann-1985: c/b = 0.25.
VOLUNTEER_COST, VOLUNTEER_BENEFIT = 0.2, 0.8
#: Private scales (utility units) towards complete information.
VOLUNTEER_SCALES = (1e-3, 1e-4, 1e-5)


def volunteers_dilemma(n: int, scales=VOLUNTEER_SCALES):
    """n symmetric members; one member's response alone defeats the offensive (decisive
    probability 1, no denial, no sanctions, no nuclear risk), so P(a) = P0 if nobody honours
    and 0 otherwise. A member's gain from honouring is ``r - h + stake P0 prod_{j != i}
    (1 - q_j)``: a volunteer's dilemma with cost c = h - r (here r = 0, h = 0.2) and benefit
    b = stake P0 (stake 1, P0 = 80 / (80 + 20) = 0.8). One cell per private scale."""
    members = [guarantor(f"G{i}", stake_in_ukraine=1.0, honouring_cost=VOLUNTEER_COST,
                         audience_cost=0.0) for i in range(n)]
    sc = scenario(members, russia={"military_spending_usd_bn": 80.0},
                  ukraine={"military_spending_usd_bn": 20.0, "baseline_military_aid_usd_bn": 0.0})
    f = fmt(commitment_bindingness=0.0, coordination_probability=0.0, response_delay_days=0.0,
            response={"denial_share": 0.0, "punishment_share": 0.0, "cost_share": 1.0,
                      "decisive_probability": 1.0})
    return build_game(sc, f, {"guarantors.*.resolve_scale": np.asarray(scales)})


@pytest.mark.parametrize(("n", "nobody", "scales"), [
    (2, 0.0625, VOLUNTEER_SCALES), (3, 0.125, VOLUNTEER_SCALES), (4, 0.1575, VOLUNTEER_SCALES),
    (5, 0.1768, VOLUNTEER_SCALES[:1])])
def test_volunteers_dilemma_is_the_limit_of_the_symmetric_bayesian_equilibrium(n, nobody,
                                                                                scales):
    """Diekmann (1985): each stays out with (c/b)^(1/(n-1)), nobody acts with
    (c/b)^(n/(n-1)) (0.0625, 0.125, 0.1768 for c/b = 0.25 and n = 2, 3, 5; 0.1575 for n = 4).
    The symmetric Bayesian equilibrium solves ``-c + b x^(n-1) = sigma logit(1 - x)``
    (x = P(abstain)), so it is off the limit by ``sigma logit(1 - x*) / (b (n - 1)
    x*^(n-2))`` to first order in sigma: the test asks for that shift within 1% at every
    scale (exactly 0 for n = 3, where x* = 1/2), i.e. convergence at the rate sigma. (One
    scale for n = 5: its 31 equilibria take seconds per scale.)"""
    ratio = VOLUNTEER_COST / VOLUNTEER_BENEFIT
    limit = ratio ** (1.0 / (n - 1))
    assert limit ** n == pytest.approx(nobody, abs=1e-4)  # the published numbers
    game = volunteers_dilemma(n, scales)
    eq = equilibrium_set(game)
    assert np.all(eq.complete)
    for cell, sigma in enumerate(scales):
        mine = eq.q[eq.cell == cell]
        symmetric = mine[np.ptp(mine, axis=1) < 1e-9]
        assert len(symmetric) == 1, mine
        abstain = 1.0 - symmetric[0, 0]
        shift = sigma * math.log((1 - limit) / limit) / (
            VOLUNTEER_BENEFIT * (n - 1) * limit ** (n - 2))
        assert abstain - limit == pytest.approx(shift, rel=1e-2, abs=1e-12)
        assert abstain ** n == pytest.approx(nobody, abs=1e-4 + n * abs(shift))
        # every Nash equilibrium of the volunteer's dilemma: a nonempty set S of members mixes,
        # each abstaining with ratio^(1/(|S|-1)) (|S| > 1), or volunteers (|S| = 1), the others
        # abstain: 2^n - 1 in all, each the limit of exactly one Bayesian equilibrium
        assert len(mine) == 2 ** n - 1
        support = np.round(mine, 2) > 0
        for q, s in zip(mine, support, strict=True):
            k = int(s.sum())
            want = 1.0 if k == 1 else 1.0 - ratio ** (1.0 / (k - 1))
            assert np.allclose(q[s], want, atol=20 * sigma)
            assert np.all(q[~s] < 1e-6)
        assert len({tuple(s) for s in support}) == 2 ** n - 1


def test_volunteers_dilemma_response_falls_with_the_number_of_members():
    """Deciding alone, the members play the equilibrium most favourable to Russia, here the
    symmetric one (nobody acts with ratio^(|S|/(|S|-1)) when S mixes, largest for S = all),
    so P(response | escalation) = 1 - (c/b)^(n/(n-1)): 0.9375, 0.875, 0.8425; it falls with n."""
    ratio = VOLUNTEER_COST / VOLUNTEER_BENEFIT
    responses = []
    for n in (2, 3, 4):
        sigma = VOLUNTEER_SCALES[-1]
        solution = solve_grid(volunteers_dilemma(n, [sigma]))
        assert solution.equilibrium_set_complete[0]
        responses.append(solution.response_probability[0])
        assert responses[-1] == pytest.approx(1.0 - ratio ** (n / (n - 1)), abs=1e-4)
    assert responses[0] > responses[1] > responses[2]


# ---------------------------------------------------------------------------------------
# 3. Perfect deterrence (Zagare & Kilgour 2000)


def perfect_deterrence(costs, *, troops=False, status_quo=0.45, russia_scale=1e-3):
    """One member A whose response alone defeats the offensive (decisive probability 1, no
    denial, no nuclear risk); one cell per honouring cost in ``costs``.

    The mapping to Zagare & Kilgour's payoffs, from docs/model.md's rules (P0 = m / (m + M_U),
    w_A = punishment_share * gdp_A / sanctions_reference):

    * w (Russia unopposed, a = 0): P = P0, no sanctions, no risk: ``F + P0 (W - F) - war_cost``;
    * d (Russia opposed, a = 1): P = 0: ``F - war_cost - sanctions_cost w_A``;
    * s (refrain): ``status_quo - foreign_troops_aversion`` if A has troops, else status_quo;
    * credibility pi = P(A honours): A honours iff its type is below
      ``G = E[U_A | honour] - E[U_A | abstain] = -h - (-stake P0 - r) = r - h + stake P0``, so
      ``pi = Lambda(G / sigma_A)``; engaged (troops on the ground), pi = 1.

    Russia escalates with Lambda((pi d + (1 - pi) w - s) / sigma_R), which is below 1/2
    (deterred) iff ``pi d + (1 - pi) w < s``, i.e. iff ``pi > (w - s) / (w - d)``: the
    perfect-deterrence threshold, whatever sigma_R (small here: the complete-information
    limit for Russia, where P(escalate) is near 0 or 1 away from the threshold)."""
    ally = guarantor("A", military_spending_usd_bn=300.0, gdp_usd_tn=4.0, stake_in_ukraine=1.0,
                     audience_cost=0.3, resolve_scale=0.05)
    sc = scenario([ally], russia={"status_quo_value": status_quo, "failed_war_value": 0.2,
                                  "sanctions_cost": 0.4, "war_cost": 0.1,
                                  "resolve_scale": russia_scale},
                  ukraine={"military_spending_usd_bn": 50.0, "baseline_military_aid_usd_bn": 0.0})
    f = fmt(commitment_bindingness=0.5, coordination_probability=0.0,
            response={"denial_share": 0.0, "punishment_share": 1.0, "cost_share": 1.0,
                      "decisive_probability": 1.0, "troops_on_ground": troops})
    return sc, f, build_game(sc, f, {"guarantors.A.honouring_cost": np.asarray(costs)})


def zagare_kilgour_payoffs(sc, f, troops=False):
    r = sc.russia
    p0 = r.military_spending_usd_bn / (r.military_spending_usd_bn
                                       + sc.ukraine.military_spending_usd_bn
                                       + sc.ukraine.baseline_military_aid_usd_bn)
    ally = sc.guarantor("A")
    weight = f.response.punishment_share * ally.gdp_usd_tn / r.sanctions_reference_gdp_usd_tn
    w = r.failed_war_value + p0 * (r.war_aims_value - r.failed_war_value) - r.war_cost
    d = r.failed_war_value - r.war_cost - r.sanctions_cost * weight
    s = r.status_quo_value - (r.foreign_troops_aversion if troops else 0.0)
    return p0, w, d, s


def test_perfect_deterrence_credibility_threshold():
    costs = np.linspace(0.0, 1.5, 601)
    sc, f, game = perfect_deterrence(costs)
    p0, w, d, s = zagare_kilgour_payoffs(sc, f)
    ally = sc.guarantor("A")
    gain = f.commitment_bindingness * ally.audience_cost - costs + ally.stake_in_ukraine * p0
    pi = 1.0 / (1.0 + np.exp(-gain / ally.resolve_scale))
    threshold = (w - s) / (w - d)
    assert d < s < w and 0.05 < threshold < 0.95  # the sweep crosses the threshold
    solution = solve_grid(game)
    np.testing.assert_allclose(solution.credibility[:, 0], pi, rtol=0, atol=1e-12)
    value = pi * d + (1.0 - pi) * w
    np.testing.assert_allclose(solution.deterrence_margin, s - value, rtol=0, atol=1e-12)
    clear = np.abs(pi - threshold) > 1e-9
    deterred = solution.regime == pay.DETERRED
    assert np.array_equal(deterred[clear], (pi > threshold)[clear])
    assert 0 < deterred.sum() < costs.size
    # the complete-information limit for Russia: away from the threshold it is all or nothing
    far = np.abs(pi - threshold) * (w - d) > 10 * sc.russia.resolve_scale
    assert np.all(np.where(pi > threshold, solution.escalation_probability < 1e-4,
                           solution.escalation_probability > 1 - 1e-4)[far])


@pytest.mark.parametrize("status_quo", [0.0, 0.02, 0.1, 0.3])
def test_an_engaged_member_has_credibility_one_and_deters_iff_the_status_quo_beats_war(
        status_quo):
    """With troops on the ground the member is engaged: pi = 1 whatever its honouring cost,
    and the threshold (w - s) / (w - d) < 1 iff s > d."""
    sc, f, game = perfect_deterrence([0.0, 5.0, 50.0], troops=True, status_quo=status_quo)
    _, w, d, s = zagare_kilgour_payoffs(sc, f, troops=True)
    solution = solve_grid(game)
    assert np.all(solution.credibility == 1.0)
    assert np.all((solution.regime == pay.DETERRED) == (s > d))
    np.testing.assert_allclose(solution.deterrence_margin, s - d, rtol=0, atol=1e-12)


#: Formats of the catalogue that pledge a response of every member with combat or aid.
NATO_LIKE = ("nato", "nato_lite", "three_tier", "coalition")


@pytest.mark.parametrize("format_id", NATO_LIKE)
def test_no_credibility_deters_a_russia_that_prefers_a_failed_war(format_id):
    """If the status quo is worth less to Russia than war against the full response
    (s < d, d = U_R with every member honouring), no credibility deters: every response
    profile leaves Russia at least d (P falls, sanctions and risk rise as members join), so
    V >= d > s and P(escalate) > 1/2 in every cell, whatever the members' costs and
    coordination. d is computed here from the configuration. Just above d, a format whose
    members are all engaged (credibility 1) deters."""
    from deterrence.game.config import load_catalogue, load_scenario

    sc, f = load_scenario("baseline"), load_catalogue()[format_id]
    members = [g for g in sc.guarantors if f.members == "all" or g.id in f.members]
    resp = [response_of(f, g.id) for g in members]
    r, u = sc.russia, sc.ukraine
    tau = [1.0 if x.troops_on_ground else math.exp(-f.response_delay_days / r.fait_accompli_days)
           for x in resp]
    capability = sum(x.denial_share * g.military_spending_usd_bn * t
                     for x, g, t in zip(resp, members, tau, strict=True))
    m = r.military_spending_usd_bn
    p_all = m / (m + u.military_spending_usd_bn + u.baseline_military_aid_usd_bn + capability)
    p_all *= math.prod(1.0 - x.decisive_probability for x in resp)
    risk = 1.0 - math.prod(1.0 - r.nuclear_escalation_probability * x.direct_combat
                           * g.nuclear_armed for x, g in zip(resp, members, strict=True))
    sanctions = sum(x.punishment_share * g.gdp_usd_tn / r.sanctions_reference_gdp_usd_tn
                    for x, g in zip(resp, members, strict=True))
    d = (r.failed_war_value + p_all * (r.war_aims_value - r.failed_war_value) - r.war_cost
         - r.sanctions_cost * sanctions - risk * r.catastrophe_cost)
    provocation = r.foreign_troops_aversion * any(x.troops_on_ground for x in resp)
    grid = {"guarantors.*.honouring_cost": np.linspace(0.0, 2.0, 9)[:, None],
            "format.coordination_probability": np.linspace(0.0, 1.0, 5)[None, :]}
    below = d + provocation - 0.01  # s = d - 0.01
    solution = solve_grid(build_game(sc, f, {"russia.status_quo_value": below, **grid}))
    assert not np.any(solution.regime == pay.DETERRED)
    assert np.all(solution.escalation_probability > 0.5)
    assert np.all(solution.deterrence_margin < 0)
    if all(x.troops_on_ground for x in resp):
        above = d + provocation + 0.01
        solution = solve_grid(build_game(sc, f, {"russia.status_quo_value": above, **grid}))
        assert np.all(solution.credibility == 1.0)
        assert np.all(solution.regime == pay.DETERRED)
        np.testing.assert_allclose(solution.deterrence_margin, 0.01, rtol=0, atol=1e-12)


# ---------------------------------------------------------------------------------------
# 4. Burden sharing (Olson & Zeckhauser 1966)


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
