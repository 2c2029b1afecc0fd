r"""Equilibria of the crisis game of incomplete information, exact and vectorised.

The crisis (one round) is solved by backward induction (equations in ``docs/model.md``):

1. *The members' subgame* after an escalation. Member i honours iff its private cost type
   (logistic, scale sigma_i) is below its gain ``G_i(q_-i)`` from honouring, so a Bayesian
   Nash equilibrium is a fixed point ``q = Phi(q)``, ``Phi_i(q) = Lambda(G_i(q_-i) / sigma_i)``
   (engaged members honour with probability 1). :func:`equilibrium_set` finds every fixed
   point by interval branch and bound (below) and says per cell whether the set is proven
   complete.
2. *Selection.* Deciding alone, the members play the equilibrium least favourable to
   deterrence (the one that gives Russia the highest expected payoff of escalating). With
   probability p (the format's coordination probability) they coordinate on the equilibrium
   with the lowest such payoff among those every member weakly prefers to the former and
   that make some response no less likely: each member's own expected utility decides,
   never a sum across members.
3. *Russia* escalates iff its private net value of war (logistic, scale sigma_R) is above
   ``U_R(refrain) - V_escalate``, ``V_escalate = p V(q_coordinated) + (1 - p) V(q_alone)``.

*Branch and bound.* The denial part of G_i is non-increasing in every other q_j (every
difference of the completely monotone ``m / (m + K)`` alternates in sign), the nuclear-risk
part non-decreasing, so G_i over a box ``[lo, hi]`` lies between the values at the two
corners (:func:`gain_bounds`). Every fixed point in a box lies in ``B cap Phi(B)``, so
shrinking boxes by that map loses none; a box whose image misses it holds none. Where
``max_i sup_B Lambda'(G_i / sigma_i) / sigma_i * L_i < 1`` (L_i a bound on the interaction,
:func:`deterrence.game.payoffs.interaction_bounds`), Phi is a contraction on the box, which
then holds at most one fixed point, found by the clipped iteration. Other boxes are halved
along their widest side. All boxes of all cells are processed together; each box's numbers
depend on its own cell alone.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from ..game.payoffs import (
    ABANDONED,
    DEFENDED,
    DETERRED,
    QUADRATURE_TOLERANCE,
    Game,
    Quadrature,
    expectation,
    gain_jacobian,
    gain_jacobian_bounds,
    gain_range,
    honour_probabilities,
    honour_response,
    honouring_gain,
    interaction_bounds,
    member_welfare,
    prepare_quadrature,
    russia_escalation_value,
    russia_refrain_payoff,
    settle_response,
)

MIXED = 3  # a cell whose equilibria disagree on the regime (codes 0-2: DETERRED, ...)
REGIME_NAMES = ("deterred", "defended", "abandoned", "mixed")

#: Rounding allowance on a computed gain, relative to the member's utilities (stake, costs):
#: :func:`gain_bounds` adds it, and the quadrature's error in the two success probabilities.
GAIN_ROUNDING = 64 * np.finfo(float).eps
#: Width (in probability) below which a box is a point.
POINT_WIDTH = 1e-12
#: Two equilibria of a cell closer than this (max norm) are the same.
SAME_EQUILIBRIUM = 1e-9
#: Boxes a cell may hold at once, and rounds of shrinking and halving, before its set is
#: reported as not proven complete.
BOX_BUDGET = 4096
MAX_ROUNDS = 200
#: Boxes narrower than this are put to the Krawczyk test.
KRAWCZYK_WIDTH = 0.25
#: Relative and absolute widening of a box before the Krawczyk test is repeated.
INFLATION, INFLATION_ABSOLUTE = 0.1, 1e-10
#: How far beyond [0, 1] the Krawczyk box may reach at an edge of the domain.
EDGE_ALLOWANCE = 1e-12
#: Rounding allowance in the residual of the Krawczyk test.
ROUNDING_SLACK = 1e-13
#: A box the map shrinks by less than this factor (in width) in a round is halved.
HALVE_ABOVE = 0.75
#: Iterations of the contracting map to locate the point of a certified box.
MAX_POINT_ITERATIONS = 2000
#: Member-by-member sweeps of the best response in the fallback (:func:`_iterate`).
FALLBACK_SWEEPS = 100
#: Utility tolerance when members compare equilibria (weak preference).
WELFARE_TOL = 1e-12
#: Probability tolerance when coordination compares the chance of a response.
RESPONSE_TOL = 1e-12
#: Cells per chunk in grid solves (memory: boxes x quadrature nodes x members).
CHUNK_CELLS = 1024


def logistic(z: np.ndarray) -> np.ndarray:
    """The logistic cdf, evaluated without overflow."""
    tail = np.exp(-np.abs(z))
    total = 1.0 + tail
    return np.where(z >= 0, 1.0 / total, tail / total)


def best_response(game: Game, q: np.ndarray, rule: Quadrature | None = None) -> np.ndarray:
    """``Phi(q)``: each member's probability of honouring against the others' ``q``
    (``rule``: the game's prepared quadrature, :func:`~deterrence.game.payoffs.expectation`)."""
    return honour_response(game, q, rule)


def gain_bounds(game: Game, lo: np.ndarray, hi: np.ndarray, rule: Quadrature | None = None):
    """Bounds ``(gmin, gmax)`` (C, n) on every member's gain over the box [lo, hi], widened
    by the error of the computed gains (:data:`GAIN_ALLOWANCE`): without it a box pinned at
    1 - 1e-16 in one member can see another member's two bounds cross by rounding, and be
    dropped with the equilibrium it holds."""
    gmin, gmax = gain_range(game, lo, hi, rule)
    slack = gain_error(game)
    return gmin - slack, gmax + slack


def gain_error(game: Game) -> np.ndarray:
    """(C, n) bound on the error of a computed gain: the quadrature's and rounding's."""
    return (2.0 * QUADRATURE_TOLERANCE * game.stake + GAIN_ROUNDING
            * (game.stake + game.catastrophe_cost + game.honouring_cost + game.reneging_cost))


def _residual_allowance(game: Game) -> np.ndarray:
    """(C,) how far from a computed ``q = Phi(q)`` a fixed point may be left by the error of
    the computed Phi: ``10 POINT_WIDTH`` plus the largest gain error times the logistic's
    largest slope, ``1 / (4 sigma)``. Where the resolve scale is tiny against the
    payoffs' rounding (a scale of 1e-6 with stakes of 100), Phi is only known to a few
    parts in a billion, and no point can show a smaller residual."""
    noise = np.max(gain_error(game) / (4.0 * game.resolve_scale), axis=1, initial=0.0)
    return 10 * POINT_WIDTH + noise


def _max_density(gmin, gmax, sigma):
    """sup of Lambda'(g / sigma) / sigma over g in [gmin, gmax]."""
    z = np.clip(0.0, gmin / sigma, gmax / sigma)
    p = logistic(z)
    return p * (1.0 - p) / sigma


@dataclass(frozen=True)
class EquilibriumSet:
    """The Bayesian equilibria of the members' subgame, for C cells."""

    cell: np.ndarray          # (E,) the cell of each equilibrium, sorted
    q: np.ndarray             # (E, n) each member's probability of honouring
    certified: np.ndarray     # (E,) proven to be the only fixed point in its box
    complete: np.ndarray      # (C,) every fixed point of the cell is in the list
    count: np.ndarray         # (C,) equilibria found


def equilibrium_set(game: Game, rule: Quadrature | None = None) -> EquilibriumSet:
    """Every Bayesian Nash equilibrium of the members' subgame, per cell (``rule``: the
    game's prepared quadrature, made here when not given)."""
    cells, n = game.cells, game.n
    rule = prepare_quadrature(game) if rule is None else rule
    engaged = game.engaged
    free = ~engaged
    bound = interaction_bounds(game, rule)
    box_cell = np.arange(cells)
    lo = np.where(engaged, 1.0, 0.0)
    hi = np.ones((cells, n))
    complete = np.ones(cells, dtype=bool)
    found_cell, found_q, found_cert = [], [], []

    for _ in range(MAX_ROUNDS):
        if box_cell.size == 0:
            break
        old_width = _width(lo, hi, free[box_cell])
        # 1. shrink by the interval image; a box whose image misses it holds no fixed point
        sub, sub_rule = _cells(game, rule, box_cell)
        sigma = sub.resolve_scale
        gmin, gmax = gain_bounds(sub, lo, hi, sub_rule)
        new_lo = np.where(free[box_cell], np.maximum(lo, logistic(gmin / sigma)), 1.0)
        new_hi = np.where(free[box_cell], np.minimum(hi, logistic(gmax / sigma)), 1.0)
        keep = np.all(new_lo <= new_hi, axis=1)
        lo, hi = new_lo, new_hi
        if not keep.all():
            lo, hi, box_cell, old_width = lo[keep], hi[keep], box_cell[keep], old_width[keep]
            gmin, gmax, sigma = gmin[keep], gmax[keep], sigma[keep]
        box_free = free[box_cell]
        # 2. a contraction on the box: at most one fixed point, found by iterating
        kappa = np.max(np.where(box_free, _max_density(gmin, gmax, sigma) * bound[box_cell],
                                0.0), axis=1, initial=0.0)
        settle = kappa < 1.0
        if settle.all():  # every box contracts: located, none is left
            q, fixed = _locate(*_cells(game, rule, box_cell), lo, hi)
            found_cell.append(box_cell[fixed])
            found_q.append(q[fixed])
            found_cert.append(np.ones(int(fixed.sum()), dtype=bool))
            box_cell = box_cell[:0]
            break
        if np.any(settle):
            idx = np.flatnonzero(settle)
            q, fixed = _locate(*_cells(game, rule, box_cell[idx]), lo[idx], hi[idx])
            found_cell.append(box_cell[idx][fixed])
            found_q.append(q[fixed])
            found_cert.append(np.ones(int(fixed.sum()), dtype=bool))
        # 3. small boxes: the Krawczyk test (exactly one zero of q - Phi(q), or none)
        small = ~settle & (_width(lo, hi, box_free) <= KRAWCZYK_WIDTH)
        drop = np.zeros(box_cell.size, dtype=bool)
        if np.any(small):
            idx = np.flatnonzero(small)
            sub, sub_rule = game.take(box_cell[idx]), rule.take(box_cell[idx])
            k_lo, k_hi, unique, inverse = _krawczyk(sub, sub_rule, lo[idx], hi[idx], gmin[idx],
                                                    gmax[idx])
            none = np.any(box_free[idx] & ((k_lo > hi[idx]) | (k_hi < lo[idx])), axis=1)
            unique &= ~none
            drop[idx[none]] = True
            lo[idx] = np.where(none[:, None], lo[idx], np.maximum(lo[idx], k_lo))
            hi[idx] = np.where(none[:, None], hi[idx], np.minimum(hi[idx], k_hi))
            # epsilon-inflation (Rump 1983): the test again on the narrowed box, widened a
            # little, where rounding would defeat it on a box that is nearly a point
            again = np.flatnonzero(~unique & ~none)
            if again.size:
                j = idx[again]
                centre = (lo[j] + hi[j]) / 2.0
                half = (hi[j] - lo[j]) / 2.0 * (1.0 + INFLATION) + INFLATION_ABSOLUTE
                wide_lo = np.where(box_free[j], np.clip(centre - half, 0.0, 1.0), 1.0)
                wide_hi = np.where(box_free[j], np.clip(centre + half, 0.0, 1.0), 1.0)
                w_sub, w_rule = game.take(box_cell[j]), rule.take(box_cell[j])
                w_gmin, w_gmax = gain_bounds(w_sub, wide_lo, wide_hi, w_rule)
                _, _, w_unique, w_inverse = _krawczyk(w_sub, w_rule, wide_lo, wide_hi, w_gmin,
                                                      w_gmax)
                unique[again] = w_unique
                lo[j] = np.where(w_unique[:, None], wide_lo, lo[j])
                hi[j] = np.where(w_unique[:, None], wide_hi, hi[j])
                inverse[again] = np.where(w_unique[:, None, None], w_inverse, inverse[again])
            if np.any(unique):
                u = np.flatnonzero(unique)
                q, fixed = _newton(game.take(box_cell[idx[u]]), rule.take(box_cell[idx[u]]),
                                   lo[idx[u]], hi[idx[u]], inverse[u])
                # the box holds exactly one equilibrium: listed, certified if located
                found_cell.append(box_cell[idx[u]])
                found_q.append(q)
                found_cert.append(fixed)
                settle[idx[u]] = True
        # 4. a box that is a point without a certificate (a degenerate equilibrium)
        width = _width(lo, hi, box_free)
        point = ~settle & ~drop & (width <= POINT_WIDTH)
        if np.any(point):
            idx = np.flatnonzero(point)
            found_cell.append(box_cell[idx])
            found_q.append((lo[idx] + hi[idx]) / 2.0)
            found_cert.append(np.zeros(idx.size, dtype=bool))
        rest = ~(settle | drop | point)
        lo, hi, box_cell = lo[rest], hi[rest], box_cell[rest]
        width, old_width, box_free = width[rest], old_width[rest], box_free[rest]
        # 5. halve the boxes that shrank too little
        halve = width > HALVE_ABOVE * old_width
        lo, hi, box_cell = _halve(lo, hi, box_cell, halve, box_free)
        over = np.bincount(box_cell, minlength=cells) > BOX_BUDGET
        if np.any(over):
            complete[over] = False
            keep = ~over[box_cell]
            lo, hi, box_cell = lo[keep], hi[keep], box_cell[keep]
    complete[box_cell] = False  # rounds exhausted
    missing = np.flatnonzero(np.bincount(np.concatenate(found_cell) if found_cell else
                                         np.zeros(0, dtype=np.int64), minlength=cells) == 0)
    if missing.size:  # the search ran out of budget before finding any: iterate instead
        q, fixed = _iterate(game.take(missing), rule.take(missing))
        found_cell.append(missing[fixed])
        found_q.append(q[fixed])
        found_cert.append(np.zeros(int(fixed.sum()), dtype=bool))

    cell = np.concatenate(found_cell) if found_cell else np.zeros(0, dtype=np.int64)
    q = np.concatenate(found_q) if found_q else np.zeros((0, n))
    cert = np.concatenate(found_cert) if found_cert else np.zeros(0, dtype=bool)
    cell, q, cert = _distinct(cell, q, cert, n)
    complete &= np.bincount(cell[~cert], minlength=cells) == 0
    return EquilibriumSet(cell=cell, q=q, certified=cert, complete=complete,
                          count=np.bincount(cell, minlength=cells))


def _cells(game: Game, rule: Quadrature, index: np.ndarray) -> tuple[Game, Quadrature]:
    """``game.take(index)`` and ``rule.take(index)``: the game and rule themselves where
    ``index`` is every cell in order (each box its own cell's)."""
    if index.size == game.cells and (index == np.arange(index.size)).all():
        return game, rule
    return game.take(index), rule.take(index)


def _width(lo, hi, free):
    return np.max(np.where(free, hi - lo, 0.0), axis=1, initial=0.0)


def _halve(lo, hi, box_cell, halve, free):
    """Split the boxes marked ``halve`` in two along their widest free side."""
    if not np.any(halve):
        return lo, hi, box_cell
    idx = np.flatnonzero(halve)
    side = np.argmax(np.where(free[idx], hi[idx] - lo[idx], -1.0), axis=1)
    mid = (lo[idx, side] + hi[idx, side]) / 2.0
    upper_lo, lower_hi = lo[idx].copy(), hi[idx].copy()
    upper_lo[np.arange(idx.size), side] = mid
    lower_hi[np.arange(idx.size), side] = mid
    stay = ~halve
    lo = np.concatenate([lo[stay], lo[idx], upper_lo])
    hi = np.concatenate([hi[stay], lower_hi, hi[idx]])
    box_cell = np.concatenate([box_cell[stay], box_cell[idx], box_cell[idx]])
    order = np.argsort(box_cell, kind="stable")
    return lo[order], hi[order], box_cell[order]


def _until_settled(game: Game, rule: Quadrature, q, step):
    """Iterate ``q[idx] <- step(game.take(idx), rule.take(idx), idx, q[idx])`` over the
    cells that still
    move, each until its step moves it by at most POINT_WIDTH (at most
    MAX_POINT_ITERATIONS times); a cell's result does not depend on the others."""
    q = q.copy()
    idx = np.arange(game.cells)
    sub, sub_rule = game, rule
    for _ in range(MAX_POINT_ITERATIONS):
        if idx.size == 0:
            break
        new = step(sub, sub_rule, idx, q[idx])
        moving = ~(np.max(np.abs(new - q[idx]), axis=1, initial=0.0) <= POINT_WIDTH)
        q[idx] = new
        if not np.all(moving):  # the subgame changes only when a cell settles
            idx = idx[moving]
            if idx.size:
                sub, sub_rule = game.take(idx), rule.take(idx)
    return q


def _locate(game: Game, rule: Quadrature, lo, hi):
    """The fixed point of ``clip(Phi, lo, hi)`` for boxes where it contracts (or is a
    point): returns it and whether it is a fixed point of Phi itself."""
    q, residual = settle_response(game, (lo + hi) / 2.0, lo, hi, MAX_POINT_ITERATIONS,
                                  POINT_WIDTH, rule, residual=True)
    return q, residual <= _residual_allowance(game)


def _iterate(game: Game, rule: Quadrature):
    """A fixed point by Newton's method on ``q - Phi(q)``, kept in [0, 1] (the fallback where
    the search exhausted its budget before finding any): from q = 1/2, and where that fails
    from the point that member-by-member best responses reach from q = 0 (in a volunteer's
    dilemma of many members with small scales, Newton from 1/2 jumps between the corners;
    the sweeps settle on one volunteer)."""
    q, fixed = _newton_from(game, rule, np.where(game.engaged, 1.0, 0.5))
    failed = np.flatnonzero(~fixed)
    if failed.size:
        sub, sub_rule = game.take(failed), rule.take(failed)
        start = honour_probabilities(sub, np.zeros((failed.size, game.n)))
        for _ in range(FALLBACK_SWEEPS):
            before = start.copy()
            for i in range(game.n):
                start[:, i] = best_response(sub, start, sub_rule)[:, i]
            if np.max(np.abs(start - before), initial=0.0) <= POINT_WIDTH:
                break
        q[failed], fixed[failed] = _newton_from(sub, sub_rule, start)
    return q, fixed


def _newton_from(game: Game, rule: Quadrature, q):
    """Newton's method on ``q - Phi(q)`` from ``q``, kept in [0, 1]: the point reached and
    whether it is a zero (its last Newton step within :func:`_residual_allowance`)."""
    lo = np.where(game.engaged, 1.0, 0.0)
    q = q.copy()
    eye = np.eye(game.n)

    def newton_step(sub, sub_rule, at):
        gain = honouring_gain(sub, expectation(sub, at, sub_rule))
        p = logistic(gain / sub.resolve_scale)
        density = np.where(sub.engaged, 0.0, p * (1.0 - p) / sub.resolve_scale)
        jac = eye - density[:, :, None] * gain_jacobian(sub, at, sub_rule)
        residual = at - honour_probabilities(sub, p)
        try:
            return np.linalg.solve(jac, residual[:, :, None])[..., 0]
        except np.linalg.LinAlgError:  # a singular Jacobian somewhere: least squares
            return np.stack([np.linalg.lstsq(j, r, rcond=None)[0]
                             for j, r in zip(jac, residual, strict=True)])

    active = np.ones(game.cells, dtype=bool)
    for _ in range(MAX_POINT_ITERATIONS):
        idx = np.flatnonzero(active)
        if idx.size == 0:
            break
        new = np.clip(q[idx] - newton_step(game.take(idx), rule.take(idx), q[idx]), lo[idx],
                      1.0)
        moved = np.max(np.abs(new - q[idx]), axis=1, initial=0.0)
        q[idx] = new
        active[idx[moved <= POINT_WIDTH]] = False
    last = np.max(np.abs(newton_step(game, rule, q)), axis=1, initial=0.0)
    return q, last <= _residual_allowance(game)


def _krawczyk(game: Game, rule: Quadrature, lo, hi, gmin, gmax):
    """The Krawczyk operator of ``H(q) = q - Phi(q)`` on boxes [lo, hi] (Moore, Kearfott &
    Cloud 2009, ch. 8): returns its box (k_lo, k_hi), whether it lies strictly inside
    [lo, hi] (then the box holds exactly one zero), and the preconditioner used."""
    cells, n = lo.shape
    free = ~game.engaged
    sigma = game.resolve_scale
    # Lambda'(g / sigma) / sigma over the gain's range: the largest nearest to 0
    z_near = np.clip(0.0, gmin / sigma, gmax / sigma)
    z_far = np.where(np.abs(gmin) > np.abs(gmax), gmin, gmax) / sigma
    p_near, p_far = logistic(z_near), logistic(z_far)
    dens_hi = np.where(free, p_near * (1 - p_near) / sigma, 0.0)[:, :, None]
    dens_lo = np.where(free, p_far * (1 - p_far) / sigma, 0.0)[:, :, None]
    d_lo, d_hi = gain_jacobian_bounds(game, lo, hi, rule)
    corners = np.stack([dens_lo * d_lo, dens_lo * d_hi, dens_hi * d_lo, dens_hi * d_hi])
    phi_lo, phi_hi = corners.min(axis=0), corners.max(axis=0)
    eye = np.eye(n)
    centre = eye - (phi_lo + phi_hi) / 2.0
    radius = (phi_hi - phi_lo) / 2.0
    y = (lo + hi) / 2.0
    r = (hi - lo) / 2.0
    residual = y - best_response(game, y, rule)
    try:
        inverse = np.linalg.inv(centre)
    except np.linalg.LinAlgError:
        inverse = np.linalg.pinv(centre)
    good = np.all(np.isfinite(inverse), axis=(1, 2))
    inverse = np.where(good[:, None, None], inverse, 0.0)
    spread = (np.abs(eye - inverse @ centre) + np.abs(inverse) @ radius) @ r[:, :, None]
    slack = np.abs(inverse) @ np.full((cells, n, 1), ROUNDING_SLACK)
    middle = y - (inverse @ residual[:, :, None])[..., 0]
    half = spread[..., 0] + slack[..., 0]
    k_lo, k_hi = middle - half, middle + half
    # strictly inside; at an edge of [0, 1] within EDGE_ALLOWANCE, where the logistic
    # rounds to 0 or 1 (such a zero is an equilibrium to that precision)
    above = (k_lo > lo) | ((lo == 0.0) & (k_lo > -EDGE_ALLOWANCE))
    below = (k_hi < hi) | ((hi == 1.0) & (k_hi < 1.0 + EDGE_ALLOWANCE))
    inside = np.all(~free | (above & below), axis=1) & good
    k_lo = np.where(free & good[:, None], k_lo, lo)
    k_hi = np.where(free & good[:, None], k_hi, hi)
    return k_lo, k_hi, inside, inverse


def _newton(game: Game, rule: Quadrature, lo, hi, inverse):
    """The zero of q - Phi(q) in boxes certified by :func:`_krawczyk`, by the simplified
    Newton iteration with its preconditioner; returns it and whether it converged."""
    def step(sub, sub_rule, idx, q):
        residual = q - best_response(sub, q, sub_rule)
        return np.clip(q - (inverse[idx] @ residual[:, :, None])[..., 0], lo[idx], hi[idx])

    q = _until_settled(game, rule, (lo + hi) / 2.0, step)
    # the preconditioned residual, not q - Phi(q): where Phi is steep (a small resolve
    # scale) a point within POINT_WIDTH of the zero can leave a residual far above it
    residual = q - best_response(game, q, rule)
    newton_step = np.max(np.abs((inverse @ residual[:, :, None])[..., 0]), axis=1, initial=0.0)
    return q, newton_step <= 10 * POINT_WIDTH


def _distinct(cell, q, cert, n):
    """Sort equilibria by cell and profile, and merge those closer than SAME_EQUILIBRIUM."""
    if cell.size == 0 or np.all(cell[1:] > cell[:-1]):  # sorted, one in each cell
        return cell, q, cert
    order = np.lexsort((*q.T[::-1], cell)) if n else np.argsort(cell, kind="stable")
    cell, q, cert = cell[order], q[order], cert[order]
    keep = np.ones(cell.size, dtype=bool)
    start = np.searchsorted(cell, cell)  # the first equilibrium of each one's cell
    for k in np.flatnonzero(start < np.arange(cell.size)):  # not first in its cell: few
        # every one kept so far in the cell, not only the previous: in the lexicographic
        # order a copy that differs by rounding in an early member can lie far apart
        kept = start[k] + np.flatnonzero(keep[start[k]:k])
        same = kept[np.max(np.abs(q[kept] - q[k]), axis=1, initial=0.0) <= SAME_EQUILIBRIUM]
        if same.size:
            keep[k] = False
            cert[same[0]] = cert[same[0]] and cert[k]
    return cell[keep], q[keep], cert[keep]


# ---------------------------------------------------------------------------------------
# Selection and the cell's solution


@dataclass(frozen=True)
class GridSolution:
    """Per-cell results of the crisis game (arrays of shape (C,), credibility (C, n))."""

    guarantor_ids: tuple[str, ...]
    regime: np.ndarray                    # int8, REGIME_NAMES
    escalation_probability: np.ndarray    # P(escalate)
    escalation_probability_min: np.ndarray  # over the equilibrium set, each played alone
    escalation_probability_max: np.ndarray
    response_probability: np.ndarray      # P(at least one member honours | escalation)
    defended_probability: np.ndarray      # P(the offensive fails | escalation)
    russia_success: np.ndarray            # E[P(success) | escalation]
    deterrence_margin: np.ndarray         # U_R(refrain) - V_escalate, Russia's utility
    credibility: np.ndarray               # (C, n) P(member honours | escalation)
    mean_credibility: np.ndarray          # mean over members (NaN without members)
    equilibrium_count: np.ndarray         # int32
    equilibrium_set_complete: np.ndarray  # bool


@dataclass(frozen=True)
class Selection:
    """The equilibria played, per cell: alone (``q_alone``) and coordinated."""

    q_alone: np.ndarray
    q_coordinated: np.ndarray
    value_alone: np.ndarray          # Russia's V at each
    value_coordinated: np.ndarray
    values: np.ndarray               # (E,) Russia's V at every equilibrium of the set


def select(game: Game, eq: EquilibriumSet, rule: Quadrature | None = None) -> Selection:
    """The selection rule (module docstring, step 2); ``rule``: the game's prepared
    quadrature."""
    return _select(game, eq, rule)[0]


def _select(game: Game, eq: EquilibriumSet, rule: Quadrature | None):
    """:func:`select`, the :class:`Expectation` at every equilibrium of the set, and the
    indices (into the set) of the equilibria played alone and coordinated."""
    cells = game.cells
    if eq.cell.size == 0 or np.any(eq.count == 0):
        raise RuntimeError("a cell without any equilibrium: the threshold map always has a "
                           "fixed point, so the search failed")
    rule = prepare_quadrature(game) if rule is None else rule
    sub, sub_rule = _cells(game, rule, eq.cell)
    ex = expectation(sub, eq.q, sub_rule)
    values = russia_escalation_value(sub, ex)
    if eq.cell.size == cells:  # one equilibrium in every cell, played in both branches
        alone = coordinated = np.arange(cells)
    else:
        welfare = member_welfare(sub, ex)
        first = np.searchsorted(eq.cell, np.arange(cells))
        # the least deterrent equilibrium (ties: the first in the sorted order)
        order = np.lexsort((-values, eq.cell))
        alone = order[first]
        # candidates: every member weakly prefers them, and the chance of some response is
        # not lower (so coordinating can weaken neither deterrence nor the response)
        acceptable = (np.all(welfare >= welfare[alone][eq.cell] - WELFARE_TOL, axis=1)
                      & (ex.respond >= ex.respond[alone][eq.cell] - RESPONSE_TOL))
        score = np.where(acceptable, values, np.inf)
        order = np.lexsort((score, eq.cell))
        coordinated = order[first]
    chosen = Selection(q_alone=eq.q[alone], q_coordinated=eq.q[coordinated],
                       value_alone=values[alone], value_coordinated=values[coordinated],
                       values=values)
    return chosen, ex, alone, coordinated


def _regime(escalation, success, deterred_below, defended_below):
    return np.where(escalation < deterred_below, DETERRED,
                    np.where(success < defended_below, DEFENDED, ABANDONED)).astype(np.int8)


def solve_grid(game: Game, deterred_below: float = 0.5, defended_below: float = 0.5,
               chunk_cells: int = CHUNK_CELLS, threads: int | None = None) -> GridSolution:
    """The crisis game's solution in every cell of ``game``, in chunks on ``threads``
    threads (default: the CPUs; never more than the chunks) that numpy and the compiled
    loops release the GIL in; each cell's result depends on that cell alone."""
    starts = range(0, game.cells, chunk_cells)
    if not starts:
        raise ValueError("solve_grid needs at least one cell")
    # no more threads than chunks (a pool for one chunk costs more than the cell)
    threads = 1 if len(starts) == 1 else min(threads or os.cpu_count() or 1, len(starts))

    def work(start: int) -> GridSolution:
        chunk = game if len(starts) == 1 else game.take(slice(start, start + chunk_cells))
        return _solve_chunk(chunk, deterred_below, defended_below)

    if threads > 1:
        with ThreadPoolExecutor(threads) as pool:
            parts = list(pool.map(work, starts))
    else:
        parts = [work(s) for s in starts]
    if len(parts) == 1:
        return parts[0]
    return GridSolution(game.guarantor_ids, **{
        name: np.concatenate([getattr(p, name) for p in parts])
        for name in GridSolution.__dataclass_fields__ if name != "guarantor_ids"})


def _solve_chunk(game: Game, deterred_below: float, defended_below: float) -> GridSolution:
    rule = prepare_quadrature(game)
    eq = equilibrium_set(game, rule)
    chosen, ex, alone, coordinated = _select(game, eq, rule)
    p = game.coordination_probability
    sigma_r = game.russia_resolve_scale
    refrain = russia_refrain_payoff(game)
    value = p * chosen.value_coordinated + (1.0 - p) * chosen.value_alone
    escalation = logistic((value - refrain) / sigma_r)
    # the expectations at the equilibria played: each cell's own numbers at that q
    success = p * ex.success[coordinated] + (1.0 - p) * ex.success[alone]
    respond = p * ex.respond[coordinated] + (1.0 - p) * ex.respond[alone]
    credibility = (p[:, None] * honour_probabilities(game, chosen.q_coordinated)
                   + (1.0 - p)[:, None] * honour_probabilities(game, chosen.q_alone))
    # each equilibrium played in both branches: the range over the set
    each = logistic((chosen.values - refrain[eq.cell]) / sigma_r[eq.cell])
    cells = game.cells
    regime = _regime(escalation, success, deterred_below, defended_below)
    if eq.cell.size == cells:  # one equilibrium in every cell: the range is that one
        low, high = each, each.copy()
    else:
        each_regime = _regime(each, ex.success, deterred_below, defended_below)
        first = np.searchsorted(eq.cell, np.arange(cells))
        low = np.minimum.reduceat(each, first)
        high = np.maximum.reduceat(each, first)
        agree = (np.minimum.reduceat(each_regime, first)
                 == np.maximum.reduceat(each_regime, first))
        regime = np.where(agree, regime, MIXED).astype(np.int8)
    with np.errstate(invalid="ignore"):
        mean_cred = credibility.mean(axis=1) if game.n else np.full(cells, np.nan)
    return GridSolution(
        guarantor_ids=game.guarantor_ids, regime=regime, escalation_probability=escalation,
        escalation_probability_min=low, escalation_probability_max=high,
        response_probability=respond, defended_probability=1.0 - success,
        russia_success=success, deterrence_margin=refrain - value, credibility=credibility,
        mean_credibility=mean_cred, equilibrium_count=eq.count.astype(np.int32),
        equilibrium_set_complete=eq.complete)


# ---------------------------------------------------------------------------------------
# One cell in full


@dataclass(frozen=True)
class Equilibrium:
    """One Bayesian equilibrium of the members' subgame in one cell (:func:`solve_cell`)."""

    honour_probability: dict[str, float]  # each member's P(honour | escalation)
    russia_escalation_value: float        # Russia's expected payoff of escalating
    escalation_probability: float         # P(escalate) if the members play this one
    russia_success_probability: float     # E[P(success) | escalation]
    response_probability: float           # P(at least one member honours)
    member_welfare: dict[str, float]      # each member's expected utility
    played_alone: bool                    # selected when the members decide alone
    played_coordinated: bool              # selected when they coordinate
    certified: bool                       # proven the only fixed point in its box


def solve_cell(game: Game) -> tuple[list[Equilibrium], bool]:
    """Every equilibrium of a single-cell ``game`` and whether the list is proven complete."""
    if game.cells != 1:
        raise ValueError(f"solve_cell needs a single cell, got {game.cells}")
    rule = prepare_quadrature(game)
    eq = equilibrium_set(game, rule)
    chosen = select(game, eq, rule)
    sub = game.take(eq.cell)
    ex = expectation(sub, eq.q, rule.take(eq.cell))
    welfare = member_welfare(sub, ex)
    refrain = float(russia_refrain_payoff(game)[0])
    ids = game.guarantor_ids
    out = []
    for k in range(eq.cell.size):
        value = float(chosen.values[k])
        q = honour_probabilities(sub.take([k]), eq.q[k:k + 1])[0]
        out.append(Equilibrium(
            honour_probability=dict(zip(ids, map(float, q), strict=True)),
            russia_escalation_value=value,
            escalation_probability=float(logistic(
                np.array((value - refrain) / game.russia_resolve_scale[0]))),
            russia_success_probability=float(ex.success[k]),
            response_probability=float(ex.respond[k]),
            member_welfare=dict(zip(ids, map(float, welfare[k]), strict=True)),
            played_alone=bool(np.array_equal(eq.q[k], chosen.q_alone[0])),
            played_coordinated=bool(np.array_equal(eq.q[k], chosen.q_coordinated[0])),
            certified=bool(eq.certified[k])))
    return out, bool(eq.complete[0])


def _codes(names) -> dict:
    """CF flag attributes of integer codes 0, 1, ... naming ``names`` (int8, as stored)."""
    return {"units": "1", "flag_values": np.arange(len(names), dtype=np.int8),
            "flag_meanings": " ".join(name.replace(" ", "_") for name in names)}


#: CF attributes of each per-cell GridSolution field, as written to NetCDF (booleans as
#: int8 codes); ``credibility`` has a guarantor dimension besides.
MAP_VARIABLES = {
    "regime": {"long_name": "regime of the selected equilibria (mixed: the equilibria of the "
                            "set disagree)", **_codes(REGIME_NAMES)},
    "escalation_probability": {"long_name": "P(Russia escalates)", "units": "1"},
    "escalation_probability_min": {
        "long_name": "least P(Russia escalates) over the equilibrium set", "units": "1",
        "comment": "each equilibrium played whether or not the members coordinate"},
    "escalation_probability_max": {
        "long_name": "greatest P(Russia escalates) over the equilibrium set", "units": "1",
        "comment": "each equilibrium played whether or not the members coordinate"},
    "response_probability": {"long_name": "P(at least one member honours | escalation)",
                             "units": "1"},
    "defended_probability": {"long_name": "P(the offensive fails | escalation)",
                             "units": "1"},
    "russia_success": {"long_name": "P(Russia's offensive succeeds | escalation)",
                       "units": "1"},
    "deterrence_margin": {"long_name": "Russia's payoff of refraining less its expected "
                                       "payoff of escalating", "units": "1",
                          "comment": "in Russia's utility (its war aims are worth 1 at the "
                                     "defaults); > 0: the public payoffs deter"},
    "mean_credibility": {"long_name": "mean over members of P(member honours | escalation)",
                         "units": "1"},
    "equilibrium_count": {"long_name": "number of Bayesian equilibria of the members' "
                                       "subgame", "units": "1"},
    "equilibrium_set_complete": {"long_name": "the equilibrium set is proven complete",
                                 **_codes(("no", "yes"))},
}
#: CF attributes of the per-member credibility.
CREDIBILITY_VARIABLE = {"long_name": "P(member honours | escalation): its credibility",
                        "units": "1", "comment": "missing for a guarantor that is not a "
                                                 "member of the format"}
