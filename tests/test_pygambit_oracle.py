"""The Bayesian equilibrium set against pygambit on random crisis games.

pygambit (the Python interface of Gambit, McKelvey, McLennan & Turocy) is an independent,
widely used game solver. Every random instance is a ``Scenario`` and a ``FormatSpec``
validated by our pydantic models; its members' complete-information subgame (each member's
payoff at every pure response profile, from OUR rules ``guarantor_payoffs``) is solved by
pygambit, and the Bayesian game with private resolve by ``equilibrium_set``:

* Purification (Harsanyi 1973): with small private scales sigma_i, the Bayesian equilibrium
  set is complete and matches the Nash equilibria of the subgame (``enumpoly_solve``, which
  lists every isolated equilibrium) one to one, each Bayesian equilibrium off its Nash
  equilibrium by the first-order shift that the scales predict; a tenth of the scales moves
  them ten times closer.
* Logit QRE (McKelvey & Palfrey 1995): with one scale sigma for every member, the Bayesian
  equilibria are the logit QREs at lambda = 1/sigma; pygambit's on the principal branch
  (``logit_solve_lambda``) must be one of ours, and the only one where ours is unique.

Conventions. Our profile ``k`` gives member i the action ``(k >> i) & 1``; in pygambit, player
i is axis i of every payoff array and its strategy "2" is our action 1 (honour). Engaged
members (troops on the ground) always honour: they are not players of the subgame.

Regularity. Purification holds at regular equilibria. An instance is used only if the
oracle's equilibria are all regular enough to be told apart at the scales used, decided from
the subgame's table and pygambit's answer alone (:func:`regular`), never from ours; skipped
instances are counted and must stay a minority.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from deterrence.game.payoffs import (
    Game,
    all_profiles,
    build_game,
    expectation,
    honouring_gain,
)
from deterrence.solve.equilibrium import equilibrium_set

from helpers import pure_gains, tuned_case

gbt = pytest.importorskip("pygambit", reason="the oracle tests need pygambit (test extra)")

#: Instances per number of players (free members) in the purification test.
PURIFICATION_INSTANCES = 16
#: Private scale of each member relative to its largest gain at a pure profile.
SIGMA_RELATIVE = 1e-3
#: At an equilibrium, a member that does not mix must gain or lose at least this many times
#: its scale by honouring (it then honours with at most Lambda(-8) = 3.4e-4 or at least
#: 1 - 3.4e-4): a smaller gain is a near tie, and the instance is not regular enough.
NON_MIXER_GAIN = 8.0
#: The mixing members' system may have at most this condition number.
MAX_CONDITION = 1e8
#: Largest predicted shift of a regular equilibrium at the scales used.
MAX_SHIFT = 0.02
#: The shift found may differ from the predicted one by this share of it (second order),
#: plus ABSOLUTE_SLACK (rounding and the solver's own tolerance, 1e-9).
SHIFT_TOL, ABSOLUTE_SLACK = 0.1, 1e-8
#: At a tenth of the scales, each Bayesian equilibrium is at least this much closer to its
#: Nash equilibrium (first order: 10 times for a mixing one, exponentially for a pure one).
PURIFICATION_FACTOR = 0.2
#: At most this share of instances may be skipped as not regular.
MAX_SKIPPED_SHARE = 0.25

PLAYER_COUNTS = (2, 3, 4)


# ---------------------------------------------------------------------------------------
# Conversion to pygambit


def to_pygambit(table: np.ndarray):
    """A (2^n, n) table in our profile convention as a pygambit strategic game."""
    n = table.shape[1]
    return gbt.StrategicGame.from_arrays(
        *(table[:, i].reshape((2,) * n, order="F") for i in range(n)))


def honour_probabilities(game, profile) -> np.ndarray:
    """P(strategy "2") of every player in a pygambit mixed profile, (n,)."""
    return np.array([float(profile[player]["2"]) for player in game.players])


def test_conversion_keeps_the_bit_order_in_an_asymmetric_game():
    """G0 has the dominant action 1; G1 wants to do the opposite of G0. The unique
    equilibrium is G0 = 1, G1 = 0 (it would read G0 = 0, G1 = 1 with the bits swapped)."""
    table = np.array([[0.0, 0.0], [1.0, 1.0], [0.0, 1.0], [1.0, 0.0]])
    game = to_pygambit(table)
    found = gbt.nash.enumpoly_solve(game).equilibria
    assert [honour_probabilities(game, p).tolist() for p in found] == [[1.0, 0.0]]


def test_conversion_reproduces_every_payoff_of_a_three_player_table():
    table = np.arange(24, dtype=float).reshape(8, 3) * 1.5 - 7.0  # all entries distinct
    game = to_pygambit(table)
    players = list(game.players)  # labels "1", "2", "3"; strategies "1" (abstain), "2"
    for k in range(8):
        payoffs = game.get_payoffs({p: str(1 + ((k >> i) & 1)) for i, p in enumerate(players)})
        assert [float(payoffs[p]) for p in players] == table[k].tolist()


# ---------------------------------------------------------------------------------------
# The oracle's Nash equilibria and whether they are regular


def nash_equilibria(table: np.ndarray) -> tuple[list[np.ndarray], bool]:
    """pygambit's Nash equilibria of the subgame (enumpoly_solve: every isolated one) and
    whether its search was whole (no singular support, no support left for lack of budget)."""
    game = to_pygambit(table)
    events = []
    result = gbt.nash.enumpoly_solve(game, event_callback=events.append)
    whole = result.success and not any(
        isinstance(e, gbt.EnumPolySingularSupportEvent | gbt.EnumPolyBudgetExceededSupportEvent)
        for e in events)
    return [honour_probabilities(game, p) for p in result.equilibria], whole


def expected_gains(table: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Each player's gain from honouring when the others honour independently with x."""
    gains = pure_gains(table)
    bits = all_profiles(table.shape[1])
    out = np.empty(x.size)
    for i in range(x.size):
        others = np.prod(np.where(bits == 1, x, 1.0 - x)[:, np.arange(x.size) != i], axis=1)
        out[i] = np.sum(np.where(bits[:, i] == 0, others * gains[:, i], 0.0))
    return out


def gain_derivatives(table: np.ndarray, x: np.ndarray) -> np.ndarray:
    """d gain_i / d x_j at x (the gains are affine in each other player's x_j)."""
    n = x.size
    jac = np.zeros((n, n))
    for j in range(n):
        hi, lo = x.copy(), x.copy()
        hi[j], lo[j] = 1.0, 0.0
        jac[:, j] = expected_gains(table, hi) - expected_gains(table, lo)
    np.fill_diagonal(jac, 0.0)
    return jac


def predicted_shift(table: np.ndarray, x: np.ndarray, sigma: np.ndarray):
    """The shift of the Bayesian equilibrium near the Nash equilibrium x at scales sigma,
    to first order in the mixing members' part, or None if x is not regular enough.

    The members S who mix solve ``G_S(q) = sigma_S logit(q_S)``, so
    ``delta_S = J_SS^-1 (sigma_S logit(x_S) - J_SN delta_N)`` (J = dG/dq at x); the others
    honour with ``Lambda(G_N(x + delta) / sigma_N)``, whatever the size of their gain (their
    shift is exponentially small in gain / sigma). Not regular: a member that does not mix
    has a gain below NON_MIXER_GAIN sigma (a near tie), the mixing system is singular
    (condition number above MAX_CONDITION), or the shift exceeds MAX_SHIFT."""
    gains = expected_gains(table, x)
    mixing = (x > 1e-9) & (x < 1 - 1e-9)
    if np.any(np.abs(gains[~mixing]) < NON_MIXER_GAIN * sigma[~mixing]):
        return None
    jac = gain_derivatives(table, x)
    block = jac[np.ix_(mixing, mixing)]
    if mixing.any() and np.linalg.cond(block) > MAX_CONDITION:
        return None
    xs = x[mixing]
    shift = np.zeros(x.size)
    for _ in range(3):  # the two parts depend on each other, weakly: a few rounds
        at = expected_gains(table, x + shift)
        with np.errstate(over="ignore"):
            shift[~mixing] = 1.0 / (1.0 + np.exp(-at[~mixing] / sigma[~mixing])) - x[~mixing]
        if mixing.any():
            rhs = sigma[mixing] * np.log(xs / (1 - xs)) - jac[np.ix_(mixing, ~mixing)] @ \
                shift[~mixing]
            shift[mixing] = np.linalg.solve(block, rhs)
    if np.max(np.abs(shift)) > MAX_SHIFT:
        return None
    return shift


def regular(table: np.ndarray, equilibria: list[np.ndarray], whole: bool,
            sigma: np.ndarray) -> bool:
    """Whether the instance is regular at scales sigma: pygambit's search was whole, every
    one of its equilibria is regular (:func:`predicted_shift`), and they lie far apart
    compared with their shifts (each is told from the others)."""
    shifts = [predicted_shift(table, x, sigma) for x in equilibria]
    if not whole or any(s is None for s in shifts):
        return False
    for a in range(len(equilibria)):
        for b in range(a):
            gap = np.max(np.abs(equilibria[a] - equilibria[b]))
            if gap < 10 * (np.max(np.abs(shifts[a])) + np.max(np.abs(shifts[b]))):
                return False
    return True


def solve_each(games: list[Game], scale_factor: float = 1.0):
    """``equilibrium_set`` of single-cell games, those with as many members solved together
    as the cells of one game, at ``scale_factor`` times their scales: for each game, its
    free members' probabilities in every equilibrium (E, f) and whether the set is complete."""
    out: list = [None] * len(games)
    for n in {g.n for g in games}:
        index = [k for k, g in enumerate(games) if g.n == n]
        fields = {name: getattr(games[index[0]], name) if name == "guarantor_ids" else
                  np.concatenate([getattr(games[k], name) for k in index])
                  for name in Game.__dataclass_fields__}
        fields["resolve_scale"] = fields["resolve_scale"] * scale_factor
        together = Game(**fields)
        eq = equilibrium_set(together)
        for cell, k in enumerate(index):
            out[k] = (eq.q[eq.cell == cell][:, ~together.engaged[cell]], bool(eq.complete[cell]))
    return out


def match(found: np.ndarray, oracle: list[np.ndarray]) -> np.ndarray | None:
    """For each oracle equilibrium the index of the nearest found one, if that is one to
    one (a bijection); else None."""
    if len(found) != len(oracle):
        return None
    nearest = np.array([int(np.argmin(np.max(np.abs(found - x), axis=1))) for x in oracle])
    return nearest if len(set(nearest.tolist())) == len(oracle) else None


@pytest.mark.parametrize("players", PLAYER_COUNTS)
def test_bayesian_equilibria_purify_the_nash_equilibria_found_by_pygambit(players):
    """At scales SIGMA_RELATIVE times each member's largest gain, and a tenth of those:
    the set is complete, one Bayesian equilibrium per Nash equilibrium, each off it by the
    predicted shift (within SHIFT_TOL of it, plus ABSOLUTE_SLACK); at a tenth of the scales
    every one is closer, by at least a factor PURIFICATION_FACTOR (or within ABSOLUTE_SLACK)."""
    cases, oracle, skipped, kinds = [], [], 0, {"mixed": 0, "several": 0}
    for k in range(PURIFICATION_INSTANCES):
        sc, f, table = tuned_case((20, players, k), players, SIGMA_RELATIVE)
        game = build_game(sc, f)
        sigma = game.resolve_scale[0][~game.engaged[0]]
        equilibria, whole = nash_equilibria(table)
        if not regular(table, equilibria, whole, sigma):
            skipped += 1
            continue
        cases.append((game, table, sigma))
        oracle.append(equilibria)
        kinds["mixed"] += any(np.any((x > 0) & (x < 1)) for x in equilibria)
        kinds["several"] += len(equilibria) > 1
    assert skipped <= MAX_SKIPPED_SHARE * PURIFICATION_INSTANCES, f"{skipped} skipped"
    assert kinds["mixed"] > 0 and kinds["several"] > 0, kinds  # not only dominant actions
    games = [game for game, _, _ in cases]
    solved = {1.0: solve_each(games), 0.1: solve_each(games, 0.1)}
    problems = []
    for c, ((_, table, sigma), equilibria) in enumerate(zip(cases, oracle, strict=True)):
        distance = {}
        for factor, each in solved.items():
            found, complete = each[c]
            if not complete:
                problems.append(f"instance {c} (scale x{factor:g}): set not complete")
                continue
            pairing = match(found, equilibria)
            if pairing is None:
                problems.append(f"instance {c} (scale x{factor:g}): pygambit "
                                f"{np.round(equilibria, 6).tolist()}, ours "
                                f"{np.round(found, 6).tolist()}")
                continue
            distance[factor] = []
            for x, j in zip(equilibria, pairing, strict=True):
                want = predicted_shift(table, x, sigma * factor)
                got = found[j] - x
                distance[factor].append(np.max(np.abs(got)))
                if np.max(np.abs(got - want)) > SHIFT_TOL * np.max(np.abs(want)) + ABSOLUTE_SLACK:
                    problems.append(f"instance {c} (scale x{factor:g}): Nash {x}, shift "
                                    f"{got}, predicted {want}")
        if len(distance) == 2:
            for x, near, far in zip(equilibria, distance[0.1], distance[1.0], strict=True):
                if near > PURIFICATION_FACTOR * far + ABSOLUTE_SLACK:
                    problems.append(f"instance {c}: Nash {x}: distance {far:.3g} at the "
                                    f"scales, {near:.3g} at a tenth of them")
    assert not problems, "\n".join(problems)


# ---------------------------------------------------------------------------------------
# The logit QRE

#: Instances per number of players in the QRE test.
QRE_INSTANCES = 12
#: Agreement required with pygambit's QRE (its corrector's accuracy is about 1e-8).
QRE_TOL = 1e-6


@pytest.mark.parametrize("players", PLAYER_COUNTS)
def test_bayesian_equilibrium_is_pygambits_logit_qre_at_lambda_one_over_sigma(players):
    """One scale sigma for every member, between 0.05 and 0.5 times the largest gain at a
    pure profile: Phi_i(q) = Lambda(G_i(q) / sigma) is the logit response at lambda =
    1 / sigma. pygambit's QRE on the principal branch at that lambda is among our
    equilibria; where our set is a single certified equilibrium, it is that one."""
    unique = 0
    problems = []
    for k in range(QRE_INSTANCES):
        rng = np.random.default_rng((30, players, k))
        sc, f, table = tuned_case((31, players, k), players, SIGMA_RELATIVE)
        sigma = float(np.max(np.abs(pure_gains(table))) * math.exp(
            rng.uniform(math.log(0.05), math.log(0.5))))
        sc = sc.model_copy(update={"guarantors": [
            g.model_copy(update={"resolve_scale": sigma}) for g in sc.guarantors]})
        game = build_game(sc, f)
        qre = gbt.qre.logit_solve_lambda(to_pygambit(table), lam=[1.0 / sigma])
        assert len(qre) == 1 and abs(qre[0].lam - 1.0 / sigma) < 1e-6 / sigma
        x = honour_probabilities(to_pygambit(table), qre[0].profile)
        # pygambit's answer is a fixed point of the logit response of our table
        residual = x - 1.0 / (1.0 + np.exp(-expected_gains(table, x) / sigma))
        assert np.max(np.abs(residual)) < QRE_TOL, (k, residual)
        eq = equilibrium_set(game)
        found = eq.q[:, ~game.engaged[0]]
        gap = np.min(np.max(np.abs(found - x), axis=1))
        if gap > QRE_TOL:
            problems.append(f"instance {k}: pygambit {x}, ours {found.tolist()}")
        if len(found) == 1:
            unique += 1
            if not (eq.complete[0] and eq.certified.all()):
                problems.append(f"instance {k}: a single equilibrium, not certified complete")
        # and ours are fixed points of the same logit response
        q = eq.q[eq.cell == 0]
        ours = honouring_gain(game.take(np.zeros(len(q), dtype=int)),
                              expectation(game.take(np.zeros(len(q), dtype=int)), q))
        with np.errstate(over="ignore"):
            logit = 1.0 / (1.0 + np.exp(-ours / sigma))
        free = ~game.engaged[0]
        assert np.allclose(logit[:, free], q[:, free], atol=1e-10)
    assert not problems, "\n".join(problems)
    assert unique >= QRE_INSTANCES // 2, unique  # mostly unique at these scales
