"""Oracle tests: pygambit must agree with our equilibrium solvers on random crisis games.

pygambit (the Python interface of Gambit, McKelvey, McLennan & Turocy) is an independent,
widely used game solver. Every random instance below is a ``Scenario`` and a ``FormatSpec``
validated by our pydantic models, turned into payoff tables by OUR payoff rules
(``deterrence.game.payoffs.build_game``), and then solved twice: by our code and by pygambit.

* Pure Nash equilibria of the guarantors' subgame (1-3 guarantors): ``pure_nash_mask`` and
  ``pure_equilibria`` against ``pygambit.nash.enumpure_solve``.
* Every Nash equilibrium of the two-guarantor subgame: our pure equilibria plus our totally
  mixed equilibrium against ``pygambit.nash.enummixed_solve``.
* The logit QRE of the strategic form (Russia + guarantors) on the principal branch:
  ``logit_equilibrium`` against ``pygambit.qre.logit_solve_lambda``, and at large precision
  against the limit of the branch, ``pygambit.nash.logit_solve``.

The conversion to pygambit is itself checked on hand-made games whose answers are known.

Conventions. Our tables have shape (P, m) with P = 2**m: profile ``k`` gives player ``i`` the
action ``(k >> i) & 1``. In pygambit, player ``i`` is the i-th axis of every payoff array and
its first strategy (index 0) is our action 0. Strategies are relabelled with the action
names so that reading a profile back cannot confuse the two actions.

Genericity. An instance in which some player's gain from switching (at some pure profile,
in the subgame or in the strategic form) is within ``GAIN_FLOOR`` of zero is redrawn: ties
make equilibrium sets non-generic (continua of equilibria), where "the set of equilibria"
is not a finite list that two solvers can be asked to agree on. Redraws are counted.
"""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from deterrence.game.config import FormatSpec, Scenario
from deterrence.game.payoffs import build_game
from deterrence.solve import binary_games as bg
from deterrence.solve import equilibrium as eq

pygambit = pytest.importorskip("pygambit", reason="the oracle tests need pygambit (test extra)")

#: Gains closer to zero than this count as ties; such instances are redrawn.
GAIN_FLOOR = 1e-6
#: Tolerance of our pure-equilibrium tests (as in the package).
PAYOFF_TOL = eq.PAYOFF_TOL
#: At most this share of draws may be redrawn for being (nearly) non-generic.
MAX_REDRAW_SHARE = 0.05

GUARANTOR_ACTIONS = ("abstain", "deter")
RUSSIA_ACTIONS = ("refrain", "escalate")


# ---------------------------------------------------------------------------------------
# Conversion to pygambit


def to_pygambit(table: np.ndarray, labels: list[str], actions: list[tuple[str, str]]):
    """pygambit strategic game of a binary-game table (P, m) in our profile convention."""
    P, m = table.shape
    assert P == 2 ** m and len(labels) == m == len(actions)
    arrays = {label: np.empty((2,) * m) for label in labels}
    for k in range(P):
        cell = tuple((k >> j) & 1 for j in range(m))  # axis j = player j's action
        for i, label in enumerate(labels):
            arrays[label][cell] = table[k, i]
    game = pygambit.StrategicGame.from_dict(arrays)
    for label, (off, on) in zip(labels, actions, strict=True):
        game.relabel_strategies(label, {"1": off, "2": on})
    return game


def action_one_probabilities(profile, labels, actions) -> np.ndarray:
    """Probability of action 1 of every player in a pygambit mixed profile: shape (m,)."""
    return np.array([float(profile[label][on]) for label, (_, on) in zip(labels, actions,
                                                                          strict=True)])


def pure_index(profile, labels, actions) -> int:
    """Our profile index of a pure pygambit profile (fails if the profile is not pure)."""
    x = action_one_probabilities(profile, labels, actions)
    assert np.all((x == 0.0) | (x == 1.0)), f"not a pure profile: {profile}"
    return int(sum(int(b) << i for i, b in enumerate(x)))


def subgame_labels(n: int):
    return [f"G{i}" for i in range(n)], [GUARANTOR_ACTIONS] * n


def strategic_labels(n: int):
    labels, actions = subgame_labels(n)
    return ["Russia", *labels], [RUSSIA_ACTIONS, *actions]


# ---------------------------------------------------------------------------------------
# Random instances


def _loguniform(rng: np.random.Generator, low: float, high: float) -> float:
    return float(np.exp(rng.uniform(np.log(low), np.log(high))))


def _response(rng: np.random.Generator) -> dict:
    return {
        "denial_share": float(rng.uniform(0.0, 1.0)),
        "punishment_share": float(rng.uniform(0.0, 1.0)),
        "direct_combat": bool(rng.random() < 0.6),
        "troops_on_ground": bool(rng.random() < 0.4),
        "cost_share": float(rng.uniform(0.1, 2.0)),
    }


def _draw(rng: np.random.Generator, n: int) -> tuple[dict, dict]:
    """Raw scenario and format data with ``n`` members (and perhaps one non-member)."""
    extra = int(rng.random() < 0.25)  # a non-member still weighs in the sanctions shares
    guarantors = [{
        "id": f"G{i}", "name": f"Guarantor {i}",
        "military_spending_usd_bn": _loguniform(rng, 10.0, 1000.0),
        "gdp_usd_tn": _loguniform(rng, 0.1, 30.0),
        "nuclear_armed": bool(rng.random() < 0.6),
        "stake_in_ukraine": _loguniform(rng, 0.05, 5.0),
        "honouring_cost": float(rng.uniform(0.0, 0.6)),
        "audience_cost": float(rng.uniform(0.0, 0.5)),
        "tripwire_cost": float(rng.uniform(0.0, 0.5)),
        "catastrophe_cost": _loguniform(rng, 0.01, 50.0),
        "readiness_cost": float(rng.uniform(0.005, 0.1)),
    } for i in range(n + extra)]
    scenario = {
        "name": "random", "description": "random oracle instance",
        "russia": {
            "military_spending_usd_bn": _loguniform(rng, 50.0, 400.0),
            "status_quo_value": float(rng.uniform(0.0, 1.0)),
            "war_cost": float(rng.uniform(0.0, 0.5)),
            "sanctions_cost": float(rng.uniform(0.0, 1.0)),
            "catastrophe_cost": float(rng.uniform(0.0, 30.0)),
            "foreign_troops_aversion": float(rng.uniform(0.0, 0.3)),
            "contest_decisiveness": _loguniform(rng, 0.5, 5.0),
            "fait_accompli_days": _loguniform(rng, 3.0, 60.0),
            "nuclear_escalation_probability": float(rng.uniform(0.0, 0.6)),
        },
        "ukraine": {
            "military_spending_usd_bn": _loguniform(rng, 20.0, 150.0),
            "baseline_military_aid_usd_bn": float(rng.uniform(0.0, 80.0)),
        },
        "guarantors": guarantors,
    }
    members = [f"G{i}" for i in range(n)]
    fmt = {
        "id": "random", "name": "Random format", "description": "random oracle instance",
        "members": members if extra else "all",
        "commitment_bindingness": float(rng.uniform(0.0, 1.0)),
        "coordination_probability": float(rng.uniform(0.0, 1.0)),
        "response_delay_days": float(rng.uniform(0.0, 60.0)),
        "response": _response(rng),
        "response_overrides": {g: _response(rng) for g in members if rng.random() < 0.3},
    }
    if n >= 2 and rng.random() < 0.3:
        _split_motives(rng, scenario, fmt, n)
    return scenario, fmt


def _split_motives(rng: np.random.Generator, scenario: dict, fmt: dict, n: int) -> None:
    """Make the others' help a substitute for some members and a complement for others.

    Another member's honouring lowers i's marginal effect on Russia's success (a
    substitute, weight ``stake_i``) but also lowers i's marginal nuclear risk (a
    complement, weight ``catastrophe_cost_i``). Independent draws almost never split the
    members between the two, so games without a pure equilibrium (matching pennies) would
    be missing: here every member fights and is nuclear-armed, the denial contest is
    tight, and the members differ sharply in stake per unit of catastrophe cost.
    """
    fmt["response_overrides"] = {}
    fmt["response"].update(direct_combat=True, denial_share=float(rng.uniform(0.3, 1.0)))
    fmt["response_delay_days"] = float(rng.uniform(0.0, 5.0))
    scenario["russia"]["contest_decisiveness"] = float(rng.uniform(0.5, 1.0))
    scenario["russia"]["nuclear_escalation_probability"] = float(rng.uniform(0.1, 0.6))
    for i, member in enumerate(scenario["guarantors"][:n]):
        member["nuclear_armed"] = True
        member["military_spending_usd_bn"] = _loguniform(rng, 50.0, 500.0)
        if i % 2 == 0:  # cares about Ukraine, hardly about catastrophe
            member["stake_in_ukraine"] = _loguniform(rng, 1.0, 5.0)
            member["catastrophe_cost"] = _loguniform(rng, 0.01, 0.5)
        else:
            member["stake_in_ukraine"] = _loguniform(rng, 0.05, 0.5)
            member["catastrophe_cost"] = _loguniform(rng, 5.0, 50.0)


def _cost_shares(fmt: FormatSpec, n: int) -> np.ndarray:
    return np.array([fmt.response_overrides.get(f"G{i}", fmt.response).cost_share
                     for i in range(n)])


def _tune_costs(rng, scenario: dict, fmt: FormatSpec, n: int) -> None:
    """Set the members' honouring (or audience) costs so that gains change sign.

    With all costs drawn independently, one action is almost always dominant (the gain of
    honouring varies with the others' actions by much less than its level). Here each
    member's level is placed, at random, within 1.5 times the range over which the others'
    actions move its gain (taken as at least 100 * GAIN_FLOOR), so that coordination games,
    chicken and games without a pure equilibrium are common. The level is set through the
    honouring cost, or, when it would have to be negative, by raising the audience cost
    (reneging costs more). Values stay valid (>= 0).
    """
    base = Scenario.model_validate(scenario)
    zero = base.model_copy(update={"guarantors": [
        g.model_copy(update={"honouring_cost": 0.0}) for g in base.guarantors]})
    t = eq.crisis_tables(build_game(zero, fmt))
    d0 = bg.gains(eq.guarantor_table(t))[0]  # gains without the honouring cost, (P, n)
    shares = _cost_shares(fmt, n)
    for i in range(n):
        mid = 0.5 * (d0[:, i].max() + d0[:, i].min())
        half = max(0.5 * (d0[:, i].max() - d0[:, i].min()), 1e-4)
        level = mid + rng.uniform(-1.5, 1.5) * half  # the gains become d0 - level
        member = scenario["guarantors"][i]
        if level >= 0.0:
            member["honouring_cost"] = float(level / shares[i])
        elif fmt.commitment_bindingness >= 0.05:
            extra = shares[i] * member["honouring_cost"] - level
            member["audience_cost"] += float(extra / fmt.commitment_bindingness)


def random_instance(seed: tuple[int, ...], n: int, max_draws: int = 50):
    """A generic random instance: (scenario, format, number of redrawn candidates)."""
    rng = np.random.default_rng(seed)
    for redraws in range(max_draws):
        scenario_data, fmt_data = _draw(rng, n)
        fmt = FormatSpec.model_validate(fmt_data)
        if rng.random() < 0.75:
            _tune_costs(rng, scenario_data, fmt, n)
        try:
            scenario = Scenario.model_validate(scenario_data)
        except ValidationError:  # tuning pushed a cost beyond the schema's limits: redraw
            continue
        t = eq.crisis_tables(build_game(scenario, fmt))
        sub_gains = bg.gains(eq.guarantor_table(t))
        strategic_gains = bg.gains(eq.strategic_table(t))
        if (np.min(np.abs(sub_gains)) >= GAIN_FLOOR
                and np.min(np.abs(strategic_gains)) >= GAIN_FLOOR):
            return scenario, fmt, redraws
    raise AssertionError(f"seed {seed}: no generic instance in {max_draws} draws")


def solved(scenario: Scenario, fmt: FormatSpec):
    """Our crisis tables, the subgame table U (P, n) and the strategic table S (2P, n + 1)."""
    t = eq.crisis_tables(build_game(scenario, fmt))
    return t, eq.guarantor_table(t)[0], eq.strategic_table(t)[0]


# ---------------------------------------------------------------------------------------
# The conversion itself, on hand-made games with known answers


def test_conversion_reproduces_every_payoff_of_an_asymmetric_three_player_table():
    """Each of the 8 x 3 payoffs lands in the pygambit cell of the same action profile."""
    table = np.arange(24, dtype=float).reshape(8, 3) * 1.5 - 7.0  # all entries distinct
    labels, actions = subgame_labels(3)
    game = to_pygambit(table, labels, actions)
    for k in range(8):
        contingency = {label: actions[i][(k >> i) & 1] for i, label in enumerate(labels)}
        payoffs = game.get_payoffs(contingency)
        assert [float(payoffs[label]) for label in labels] == list(table[k])


def test_conversion_of_a_prisoners_dilemma_written_directly_in_pygambit():
    """A textbook prisoner's dilemma, typed as a pygambit table (rows: player 1's strategies
    cooperate, defect; columns: player 2's), and the same game typed as our (P, m) table
    with action 1 = defect. Both solvers must find (defect, defect), i.e. profile 3."""
    row = np.array([[3.0, 0.0], [5.0, 1.0]])
    direct = pygambit.StrategicGame.from_arrays(row, row.T)
    # ours: profile k = (bit 0: player 1 defects, bit 1: player 2 defects)
    ours = np.array([[3.0, 3.0], [5.0, 0.0], [0.0, 5.0], [1.0, 1.0]])
    assert np.flatnonzero(bg.pure_nash_mask(ours[None], PAYOFF_TOL)[0]).tolist() == [3]
    found = pygambit.nash.enumpure_solve(direct).equilibria
    assert len(found) == 1
    assert [float(found[0][p]["2"]) for p in ("1", "2")] == [1.0, 1.0]
    # our conversion of `ours` is the same pygambit game as the direct one
    labels, actions = subgame_labels(2)
    converted = to_pygambit(ours, labels, actions)
    for a in range(2):
        for b in range(2):
            want = direct.get_payoffs({"1": str(a + 1), "2": str(b + 1)})
            got = converted.get_payoffs({"G0": actions[0][a], "G1": actions[1][b]})
            assert [float(got[x]) for x in labels] == [float(want[x]) for x in ("1", "2")]


def test_conversion_keeps_the_bit_order_in_an_asymmetric_game():
    """G0 has the dominant action 1; G1 wants to do the opposite of G0. The unique
    equilibrium is G0 = 1, G1 = 0: profile 1 (profile 2 if the bit order were swapped)."""
    ours = np.array([[0.0, 0.0], [1.0, 1.0], [0.0, 1.0], [1.0, 0.0]])
    labels, actions = subgame_labels(2)
    found = pygambit.nash.enumpure_solve(to_pygambit(ours, labels, actions)).equilibria
    assert [pure_index(p, labels, actions) for p in found] == [1]
    assert np.flatnonzero(bg.pure_nash_mask(ours[None], PAYOFF_TOL)[0]).tolist() == [1]


def test_conversion_of_asymmetric_matching_pennies():
    """G0 gets 1 for matching, G1 gets 2 for mismatching G0's action 1 and 1 for mismatching
    action 0. Indifference: G1 deters with probability 1/2 (G0 indifferent); G0 deters with
    probability q where 2q = 1 - q, q = 1/3 (G1 indifferent)."""
    ours = np.array([[1.0, 0.0], [0.0, 2.0], [0.0, 1.0], [1.0, 0.0]])
    labels, actions = subgame_labels(2)
    found = pygambit.nash.enummixed_solve(to_pygambit(ours, labels, actions),
                                          rational=False).equilibria
    assert len(found) == 1
    np.testing.assert_allclose(action_one_probabilities(found[0], labels, actions),
                               [1 / 3, 1 / 2], atol=1e-12)
    mixed = bg.totally_mixed_equilibrium(bg.gains(ours[None]), tol=1e-9)
    assert mixed.converged[0]
    np.testing.assert_allclose(mixed.x[0], [1 / 3, 1 / 2], atol=1e-12)


def test_conversion_of_logit_qre_with_independent_decisions():
    """Three players whose payoffs ignore the others: the logit QRE is known in closed
    form, x_i = 1 / (1 + exp(-lambda * d_i)) for gains d = (0.3, -1.2, 0.05)."""
    d = np.array([0.3, -1.2, 0.05])
    bits = bg.profile_bits(3)
    table = bits * d + np.array([0.7, -0.1, 2.0])  # U_i = a_i d_i + constant
    labels, actions = strategic_labels(2)
    game = to_pygambit(table, labels, actions)
    for lam in (0.5, 3.0, 20.0):
        qre = pygambit.qre.logit_solve_lambda(game, lam=[lam])
        assert len(qre) == 1 and abs(qre[0].lam - lam) < 1e-9
        want = 1.0 / (1.0 + np.exp(-lam * d))
        np.testing.assert_allclose(action_one_probabilities(qre[0].profile, labels, actions),
                                   want, atol=1e-9)
        ours = bg.logit_equilibrium(bg.gains(table[None]), rationality=lam, tol=1e-9)
        assert ours.converged[0]
        np.testing.assert_allclose(ours.x[0], want, atol=1e-9)


# ---------------------------------------------------------------------------------------
# Random instances built from our payoff rules

#: Instances per number of guarantors in the pure-equilibrium test (300 in all).
PURE_INSTANCES = 100
#: Two-guarantor instances in the mixed-equilibrium test.
MIXED_INSTANCES = 250
#: Instances per number of guarantors in the QRE test (240 in all).
QRE_INSTANCES = 80
#: Agreement required of QRE probabilities at a given lambda. The largest gap seen in 900
#: instances is 2e-9; pygambit's corrector stops at a residual of about 3e-6 in log-odds
#: (at most 7.5e-7 in probability) near folds, hence not tighter.
QRE_TOL = 1e-6
#: Agreement required at the end point of a fold-free branch (largest gap seen: 4e-12).
LIMIT_TOL = 1e-7


def _pygambit_pure_set(table: np.ndarray) -> set[int]:
    labels, actions = subgame_labels(table.shape[1])
    result = pygambit.nash.enumpure_solve(to_pygambit(table, labels, actions))
    return {pure_index(p, labels, actions) for p in result.equilibria}


@pytest.mark.parametrize("n", [1, 2, 3])
def test_pure_equilibria_agree_with_pygambit_enumpure(n):
    counts = np.zeros(2 ** n + 1, dtype=int)  # instances by number of pure equilibria
    redraws, disagreements = 0, []
    for i in range(PURE_INSTANCES):
        scenario, fmt, redrawn = random_instance((1, n, i), n)
        redraws += redrawn
        t, table, _ = solved(scenario, fmt)
        oracle = _pygambit_pure_set(table)
        mask = set(np.flatnonzero(bg.pure_nash_mask(table[None], PAYOFF_TOL)[0]).tolist())
        fast = set(np.flatnonzero(eq.pure_equilibria(t)[0]).tolist())
        if not oracle == mask == fast:
            disagreements.append(f"seed {(1, n, i)}: pygambit {sorted(oracle)}, "
                                 f"pure_nash_mask {sorted(mask)}, pure_equilibria {sorted(fast)}")
        counts[len(oracle)] += 1
    assert not disagreements, "\n".join(disagreements)
    assert redraws <= MAX_REDRAW_SHARE * PURE_INSTANCES, f"{redraws} redraws"
    # the instances are not all alike: for two and more guarantors, some games have
    # several pure equilibria, and some (two guarantors) none
    assert counts[1] > 0
    if n >= 2:
        assert counts[2:].sum() >= 0.05 * PURE_INSTANCES, counts
    if n == 2:
        assert counts[0] >= 0.03 * PURE_INSTANCES, counts


def test_all_equilibria_of_two_guarantor_subgames_agree_with_pygambit_enummixed():
    """For two guarantors enummixed_solve lists every extreme equilibrium; in a generic 2x2
    game these are the pure equilibria and at most one totally mixed equilibrium (a
    partially mixed one would need a zero gain at a pure profile)."""
    labels, actions = subgame_labels(2)
    redraws, disagreements = 0, []
    kinds = {"no pure": 0, "totally mixed": 0}
    for i in range(MIXED_INSTANCES):
        seed = (2, 2, i)
        scenario, fmt, redrawn = random_instance(seed, 2)
        redraws += redrawn
        t, table, _ = solved(scenario, fmt)
        found = pygambit.nash.enummixed_solve(to_pygambit(table, labels, actions),
                                              rational=False).equilibria
        x = np.array([action_one_probabilities(p, labels, actions) for p in found])
        pure = np.all((x < 1e-12) | (x > 1 - 1e-12), axis=1)
        interior = np.all((x > 1e-12) & (x < 1 - 1e-12), axis=1)
        oracle_pure = {int(round(r[0])) + 2 * int(round(r[1])) for r in x[pure]}
        ours_pure = set(np.flatnonzero(bg.pure_nash_mask(table[None], PAYOFF_TOL)[0]).tolist())
        with np.errstate(all="ignore"):
            mixed = bg.totally_mixed_equilibrium(bg.gains(table[None]), tol=1e-9)
        problems = []
        if oracle_pure != ours_pure:
            problems.append(f"pure: pygambit {sorted(oracle_pure)}, ours {sorted(ours_pure)}")
        if not np.all(pure | interior):
            problems.append(f"pygambit found a partially mixed equilibrium {x[~(pure | interior)]}")
        if mixed.converged[0]:
            if interior.sum() != 1:
                problems.append(f"ours: totally mixed {mixed.x[0]}; pygambit: {x[interior]}")
            elif np.max(np.abs(x[interior][0] - mixed.x[0])) > 1e-7:
                problems.append(f"totally mixed: pygambit {x[interior][0]}, ours {mixed.x[0]}")
        elif interior.any():
            problems.append(f"pygambit: totally mixed {x[interior]}; ours did not converge")
        if problems:
            disagreements.append(f"seed {seed}: " + "; ".join(problems))
        kinds["no pure"] += not oracle_pure
        kinds["totally mixed"] += bool(interior.any())
    assert not disagreements, "\n".join(disagreements)
    assert redraws <= MAX_REDRAW_SHARE * MIXED_INSTANCES, f"{redraws} redraws"
    # both branches of the comparison are exercised
    assert kinds["totally mixed"] >= 0.1 * MIXED_INSTANCES, kinds
    assert kinds["no pure"] >= 0.03 * MIXED_INSTANCES, kinds


def _logit_game(n: int, seed: tuple[int, ...]):
    """A random instance's strategic form: (our table S, pygambit game, labels, actions)."""
    scenario, fmt, redrawn = random_instance(seed, n)
    _, _, table = solved(scenario, fmt)
    labels, actions = strategic_labels(n)
    return table, to_pygambit(table, labels, actions), labels, actions, redrawn


@pytest.mark.parametrize("n", [1, 2, 3])
def test_logit_qre_agrees_with_pygambit_logit_solve_lambda(n):
    """The logit QRE of the strategic form (Russia = player 0) at a random precision in
    [0.5, 20], on the principal branch, by both path followers.

    Where the principal branch folds back in lambda there are several QREs at one lambda;
    pygambit returns the first one met along the branch, and so must our follower
    (pseudo-arclength continuation), or report ``converged = False``. The test demands
    agreement on every instance that reports convergence and allows at most 2%
    unconverged. (Above lambda ~ 50 folds are common; see the folded case below.)"""
    disagreements, unconverged, redraws = [], [], 0
    for i in range(QRE_INSTANCES):
        seed = (3, n, i)
        table, game, labels, actions, redrawn = _logit_game(n, seed)
        redraws += redrawn
        lam = _loguniform(np.random.default_rng((4, n, i)), 0.5, 20.0)
        qre = pygambit.qre.logit_solve_lambda(game, lam=[lam])
        assert len(qre) == 1 and abs(qre[0].lam - lam) < 1e-6 * lam, (seed, lam, qre)
        oracle = action_one_probabilities(qre[0].profile, labels, actions)
        ours = bg.logit_equilibrium(bg.gains(table[None]), rationality=lam, tol=1e-9)
        gap = float(np.max(np.abs(ours.x[0] - oracle)))
        if not ours.converged[0]:
            unconverged.append(f"seed {seed}, lambda {lam:.6g}: gap {gap:.3g}")
        elif gap > QRE_TOL:
            disagreements.append(f"seed {seed}, lambda {lam:.6g}: pygambit {oracle}, "
                                 f"ours {ours.x[0]}")
    assert not disagreements, "\n".join(disagreements)
    assert len(unconverged) <= 0.02 * QRE_INSTANCES, "\n".join(unconverged)
    assert redraws <= MAX_REDRAW_SHARE * QRE_INSTANCES, f"{redraws} redraws"


#: Instances per number of guarantors in the test of the limit of the principal branch.
LIMIT_INSTANCES = 60


@pytest.mark.parametrize("n", [1, 2, 3])
def test_limit_of_the_logit_branch_agrees_with_pygambit_logit_solve(n):
    """``pygambit.nash.logit_solve`` follows the principal branch until the profile is a
    Nash equilibrium to within a regret of 1e-8 (relative to the payoff range) and returns
    that end point; ``logit_solve_branch`` (the same tracer) also returns the lambda of the
    end point (a few hundred typically; from 30 to 6e7 in these instances).

    1. The end point is a Nash equilibrium of OUR strategic table: every player's regret,
       computed from our expected gains, is tiny; if it is pure, it is among the profiles
       ``pure_nash_mask`` accepts.
    2. Where the branch is monotone in lambda (no fold, no bifurcation reported), the QRE at
       a given lambda on it is unambiguous, and our ``logit_equilibrium`` at the end point's
       lambda must converge to the same profile (to LIMIT_TOL): both must follow the branch
       to the same equilibrium (a real selection: many instances have several), also where
       the branch folds on the way. Only where the branch ends below a lambda it reached
       earlier is the first QRE met at the end point's lambda a different one; such
       instances are skipped, counted, and must stay a minority.
    """
    disagreements, folded = [], []
    for i in range(LIMIT_INSTANCES):
        seed = (5, n, i)
        table, game, labels, actions, _ = _logit_game(n, seed)
        result = pygambit.nash.logit_solve(game)
        assert result.success, (seed, result)
        limit = action_one_probabilities(result.equilibrium, labels, actions)
        # 1. a Nash equilibrium of our table
        g = bg.expected_gains(bg.gains(table[None]), limit[None])[0]
        regret = np.maximum(g, 0.0) * (1.0 - limit) + np.maximum(-g, 0.0) * limit
        payoff_range = float(table.max() - table.min())
        if regret.max() > 1e-7 * payoff_range:  # pygambit stops at 1e-8
            disagreements.append(f"seed {seed}: pygambit's limit {limit} has regret {regret} "
                                 f"under our gains")
        if np.all((limit < 1e-6) | (limit > 1.0 - 1e-6)):
            k = int(sum(int(round(b)) << j for j, b in enumerate(limit)))
            if not bg.pure_nash_mask(table[None], PAYOFF_TOL)[0, k]:
                disagreements.append(f"seed {seed}: pygambit's pure limit {k} is not in "
                                     f"our pure_nash_mask")
        # 2. our QRE at the end point's lambda
        branch = pygambit.qre.logit_solve_branch(game)
        lams = np.array([point.lam for point in branch])
        end = action_one_probabilities(branch[-1].profile, labels, actions)
        assert np.max(np.abs(end - limit)) < 1e-9, (seed, end, limit)
        if result.bifurcations or lams[-1] < lams.max():
            # the branch ends below a lambda it reached before: the first QRE met at the
            # end point's lambda is an earlier one, not the end point
            folded.append(seed)
            continue
        with np.errstate(all="ignore"):
            ours = bg.logit_equilibrium(bg.gains(table[None]), rationality=lams[-1], tol=1e-9)
        gap = float(np.max(np.abs(ours.x[0] - limit)))
        if not ours.converged[0] or gap > LIMIT_TOL:
            disagreements.append(f"seed {seed}, lambda {lams[-1]:.6g}: pygambit {limit}, "
                                 f"ours {ours.x[0]} (converged {ours.converged[0]})")
    assert not disagreements, "\n".join(disagreements)
    assert len(folded) <= 0.2 * LIMIT_INSTANCES, folded


#: Strategic table (Russia, one guarantor) of random_instance((5, 1, 4), 1), written out so
#: that the case below does not depend on the instance generator. Its principal logit branch
#: folds: lambda rises to 506.54, falls back to 133.52 and rises again, so for lambda in
#: (133.52, 506.54) there are three QREs.
FOLDED_TABLE = np.array([[0.8769447967533005, -0.0],
                         [0.9401300539519168, -0.2721788742766346],
                         [0.8769447967533005, -0.00862724549946126],
                         [-5.2843567720798665, -0.31124328232058157]])


def _folded_case(lam: float):
    """pygambit's QRE and ours at ``lam`` for FOLDED_TABLE, and the fixed-point residual."""
    labels, actions = strategic_labels(1)
    game = to_pygambit(FOLDED_TABLE, labels, actions)
    table_gains = bg.gains(FOLDED_TABLE[None])

    def residual(x):  # the logit fixed point: x = 1 / (1 + exp(-lambda * G(x)))
        g = bg.expected_gains(table_gains, x[None])[0]
        return np.max(np.abs(x - 1.0 / (1.0 + np.exp(-lam * g))))

    qre = pygambit.qre.logit_solve_lambda(game, lam=[lam])
    oracle = action_one_probabilities(qre[0].profile, labels, actions)
    ours = bg.logit_equilibrium(table_gains, rationality=lam, tol=1e-9)
    lams = np.array([p.lam for p in pygambit.qre.logit_solve_branch(game)])
    return oracle, ours, residual, lams


@pytest.mark.parametrize("lam", [499.0, 500.0])
def test_folded_case_has_several_qres_and_both_solvers_find_one(lam):
    """Preconditions of the test below: the branch folds and both answers are QREs."""
    oracle, ours, residual, lams = _folded_case(lam)
    # the branch passes lam upwards, then downwards (and, beyond the end of the traced
    # part, upwards again towards lambda = infinity): three QREs at lam
    crossings = np.count_nonzero(np.diff(np.sign(lams - lam)))
    assert crossings == 2 and lams[-2] < lams[-1] < lam, (crossings, lams[-2:])
    # pygambit's answer, the first QRE met along the branch, is a QRE of our table, in
    # which Russia refrains
    assert residual(oracle) < 1e-6
    assert oracle[0] < 1e-3
    # our answer is a QRE too, and reported as converged
    assert residual(ours.x[0]) < 1e-10
    assert ours.converged[0]


@pytest.mark.parametrize("lam", [499.0, 500.0])
def test_logit_qre_does_not_jump_sheets_silently(lam):
    """Our follower must stay on the sheet it follows (the one pygambit reports, met first
    along the branch). A follower that steps in lambda instead of arclength jumps here to
    the third sheet at 499 (Russia escalates with probability ~1) and to the unstable
    middle sheet at 500; pygambit: (5.5e-5, 0.0133) and (7.7e-5, 0.0132)."""
    oracle, ours, _, _ = _folded_case(lam)
    assert ours.converged[0]
    assert np.max(np.abs(ours.x[0] - oracle)) < 1e-5, (
        f"converged to {ours.x[0]}, pygambit {oracle}")
