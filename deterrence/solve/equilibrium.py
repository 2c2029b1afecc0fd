r"""Equilibria of the crisis game, their regime and their stability under learning.

The crisis (one round) is solved by backward induction:

1. *Guarantors' subgame* after an escalation. With probability ``p`` (the format's
   coordination probability) the members act as one team and play the profile that maximises
   the sum of their payoffs; otherwise each decides alone. The independent game is an
   n-player binary game (payoffs from :mod:`deterrence.game.payoffs`); its pure equilibria are
   enumerated exactly and, where there is none, its totally mixed equilibrium is computed.
2. *Russia* compares refraining with the exact expectation over the response::

       V_escalate = p * U_R(team) + (1 - p) * sum_k Pr(k) U_R(k)

   and escalates iff ``V_escalate > U_R(refrain)`` (ties: refrain). Enumerating the
   ``2**n`` profiles costs ``O(2**n * n)`` per cell: 256 x 8 for the eight default
   guarantors.

Each subgame-perfect equilibrium (SPE) has a *regime*: deterred (Russia refrains),
defended (escalation, and the response leaves Russia's success chance below the scenario's
threshold) or abandoned. A cell's regime is taken over its *pure* SPE, and is ``mixed`` when
they disagree; only where the subgame has no pure equilibrium does the totally mixed one
stand in. A totally mixed equilibrium is never asymptotically stable under the
multi-population replicator dynamics (Ritzberger & Weibull 1995: only strict equilibria
are), so learning does not settle on it; :func:`solve_cell` still lists it.

*Learning dynamics* (stability) act on the strategic form, in which a guarantor's strategy
is a policy (honour if attacked) that costs ``readiness_cost`` every round, and Russia's is
escalate/refrain: an (n+1)-player binary game (Russia is player 0). An equilibrium's
stability is the classification of the Jacobian of the replicator dynamics at it
(:func:`deterrence.solve.binary_games.classify`); the largest real part is a number a map can
show. The logit equilibrium (QRE) of the same strategic form is the rest point of the logit
dynamics, and is classified the same way.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from ..game.payoffs import (
    Game,
    all_profiles,
    cells_per_chunk,
    escalation_risk,
    guarantor_payoffs,
    honouring_gain,
    joint_guarantor_payoff,
    outcome,
    russia_escalate_payoff,
    russia_refrain_payoff,
    russia_success_probability,
)
from . import binary_games as bg

MIXED = 3  # a cell whose equilibria disagree (codes 0-2: payoffs.DETERRED, ...)
REGIME_NAMES = ("deterred", "defended", "abandoned", "mixed")

#: Payoff tolerance for best-response comparisons (payoffs are of order 1).
PAYOFF_TOL = 1e-10
#: Tolerance on eigenvalues when classifying stability.
EIGEN_TOL = 1e-9
#: Cells per chunk in grid solves (measured fastest on 2 cores; ~1 MB per (C, P) array),
#: and fewer for many members (:func:`deterrence.game.payoffs.cells_per_chunk`).
CHUNK_CELLS = 512


@dataclass(frozen=True)
class CrisisTables:
    """Outcomes of every response profile in every cell (the crisis game in table form)."""

    game: Game
    success: np.ndarray          # (C, P) P(Russia succeeds | escalation, profile)
    risk: np.ndarray             # (C, P) P(nuclear catastrophe | escalation, profile)
    russia_refrain: np.ndarray   # (C,)
    team: np.ndarray             # (C,) profile the coordinated team chooses

    @property
    def coordination(self) -> np.ndarray:
        return self.game.coordination_probability

    @cached_property
    def russia_escalate(self) -> np.ndarray:
        """Russia's payoff of escalating against every profile: (C, P)."""
        return russia_escalate_payoff(self.game, all_profiles(self.game.n),
                                      success=self.success, risk=self.risk)


def crisis_tables(game: Game, withdrawn: np.ndarray | None = None) -> CrisisTables:
    """The crisis in table form. ``withdrawn`` (C, n), used by the simulations, marks
    members that have withdrawn: the team cannot send them."""
    profiles = all_profiles(game.n)
    success = russia_success_probability(game, profiles)
    risk = escalation_risk(game, profiles)
    joint = joint_guarantor_payoff(game, profiles, success, risk)
    if withdrawn is not None and withdrawn.any():
        joint = np.where((withdrawn.astype(np.float64) @ profiles.T) > 0, -np.inf, joint)
    return CrisisTables(
        game=game, success=success, risk=risk,
        russia_refrain=russia_refrain_payoff(game),
        # the team maximises the members' joint payoff; ties go to the lowest profile index
        team=np.argmax(joint, axis=1),
    )


def guarantor_table(t: CrisisTables) -> np.ndarray:
    """Every guarantor's payoff at every profile: (C, P, n)."""
    return guarantor_payoffs(t.game, all_profiles(t.game.n), success=t.success, risk=t.risk)


def pure_equilibria(t: CrisisTables, tol: float = PAYOFF_TOL) -> np.ndarray:
    """``mask[c, k]``: profile k is a pure equilibrium of the independent subgame.

    Same test as :func:`deterrence.solve.binary_games.pure_nash_mask` on
    :func:`guarantor_table`, computed from the gain of each player on the two halves of the
    profile axis (bit i = 0 / 1) so that the (C, P, n) table is never formed.
    """
    cells, P = t.success.shape
    mask = np.ones((cells, P), dtype=bool)
    fights = bool(np.any(t.game.escalation_probability > 0))
    def halves(a, i):
        view = a.reshape(cells, P >> (i + 1), 2, 1 << i)
        return view[:, :, 1, :], view[:, :, 0, :]

    for i in range(t.game.n):
        s1, s0 = halves(t.success, i)
        gain = honouring_gain(t.game, i, s1, s0, *(halves(t.risk, i) if fights else ()))
        honour, abstain = halves(mask, i)
        honour &= gain >= -tol
        abstain &= gain <= tol
    return mask


def _at(table: np.ndarray, index: np.ndarray) -> np.ndarray:
    """``table[c, index[c, ...]]`` for a (C, P, ...) table and (C, K) indices."""
    return np.take_along_axis(table, index.reshape(index.shape[0], -1, *([1] * (table.ndim - 2))),
                              axis=1)


def escalation_value(t: CrisisTables, response: np.ndarray) -> np.ndarray:
    """Russia's exact expected payoff of escalating, for a distribution over profiles.

    ``response`` is (C, P): the probability of each independent-play profile. Returns (C,).
    """
    p = t.coordination
    team_value = _at(t.russia_escalate, t.team[:, None])[:, 0]
    return p * team_value + (1.0 - p) * np.einsum("cp,cp->c", response, t.russia_escalate)


def success_given_escalation(t: CrisisTables, response: np.ndarray) -> np.ndarray:
    p = t.coordination
    return p * _at(t.success, t.team[:, None])[:, 0] + (1.0 - p) * np.einsum(
        "cp,cp->c", response, t.success)


def strategic_payoffs(t: CrisisTables, escalate: np.ndarray, profile: np.ndarray) -> np.ndarray:
    """Payoffs of the strategic form at (Russia's action, guarantors' profile index).

    ``escalate`` (0/1) and ``profile`` are (C, K); returns (C, K, n + 1), player 0 = Russia.
    A guarantor whose policy is to honour pays its readiness cost in every round; its
    policy matters only when Russia escalates and the team does not form.
    """
    game = t.game
    bits = all_profiles(game.n)
    p = t.coordination[:, None]
    team = np.broadcast_to(t.team[:, None], profile.shape)

    def guarantors_at(index):
        return guarantor_payoffs(game, bits[index], success=_at(t.success, index),
                                 risk=_at(t.risk, index))

    russia_esc = p * _at(t.russia_escalate, team) + (1.0 - p) * _at(t.russia_escalate, profile)
    russia = np.where(escalate > 0, russia_esc, t.russia_refrain[:, None])
    guarantor_esc = p[..., None] * guarantors_at(team) + (1.0 - p)[..., None] * guarantors_at(
        profile)
    guarantors = (escalate[..., None] * guarantor_esc
                  - bits[profile] * game.readiness_cost[:, None, :])
    return np.concatenate([russia[..., None], guarantors], axis=-1)


def strategic_table(t: CrisisTables) -> np.ndarray:
    """The strategic form as a binary-game table (C, 2**(n+1), n+1); Russia is bit 0."""
    n = t.game.n
    k = np.arange(2 ** (n + 1))
    cells = t.russia_refrain.shape[0]
    escalate = np.broadcast_to(k & 1, (cells, k.size))
    profile = np.broadcast_to(k >> 1, (cells, k.size))
    return strategic_payoffs(t, escalate, profile)


def escalate_payoff_at(t: CrisisTables, profile: np.ndarray,
                       cells: np.ndarray | None = None) -> np.ndarray:
    """Russia's payoff of escalating against one profile per cell, shape (len(profile),).

    The same numbers as the column of ``t.russia_escalate`` (the sums do not depend on the
    layout), without forming the (C, P) table. ``cells`` picks cells (default: all, in
    order) and may repeat them.
    """
    game = t.game if cells is None else t.game.take(cells)
    rows = np.arange(t.success.shape[0]) if cells is None else cells
    actions = all_profiles(t.game.n)[profile][:, None, :]
    return russia_escalate_payoff(game, actions, success=t.success[rows, profile][:, None],
                                  risk=t.risk[rows, profile][:, None])[:, 0]


def strategic_gains_at(t: CrisisTables, escalate: np.ndarray, profile: np.ndarray):
    """Each player's gain from switching to action 1 at pure strategic profiles.

    The difference form of :func:`strategic_payoffs` at one profile per cell (``escalate``
    and ``profile`` have shape (C,)): Russia gains ``V_escalate - U_R(refrain)``; guarantor
    i gains ``y (1 - p) [U_i(honour) - U_i(abstain)] - readiness_cost_i``. Shape (C, n + 1).
    """
    game = t.game
    p = t.coordination
    value = p * escalate_payoff_at(t, t.team) + (1.0 - p) * escalate_payoff_at(t, profile)
    columns = [value - t.russia_refrain]
    fights = bool(np.any(game.escalation_probability > 0))
    for i in range(game.n):
        on = (profile | (1 << i))[:, None]
        off = (profile & ~(1 << i))[:, None]
        risks = (_at(t.risk, on), _at(t.risk, off)) if fights else ()
        gain = honouring_gain(game, i, _at(t.success, on), _at(t.success, off), *risks)[:, 0]
        columns.append(escalate * (1.0 - p) * gain - game.readiness_cost[:, i])
    return np.stack(columns, axis=1)


def vertex_stability(t: CrisisTables, escalate: np.ndarray, profile: np.ndarray):
    """Replicator stability at pure strategic profiles, one per cell (each (C,)).

    At a vertex of the cube the replicator Jacobian is diagonal with entries
    ``(1 - 2 s_j) * gain_j``, so the eigenvalues are read off without forming it.
    """
    bits = all_profiles(t.game.n)[profile]
    state = np.concatenate([escalate[:, None].astype(np.float64), bits], axis=1)
    eigen = (1.0 - 2.0 * state) * strategic_gains_at(t, escalate.astype(np.float64), profile)
    return bg.classify(eigen.astype(complex), EIGEN_TOL)


@dataclass(frozen=True)
class GridSolution:
    """Per-cell summary of the subgame-perfect equilibria (all arrays have shape (C,))."""

    regime: np.ndarray                 # int8, REGIME_NAMES
    equilibrium_count: np.ndarray      # number of SPE (pure ones, or 1 mixed)
    escalation_share: np.ndarray       # share of SPE in which Russia escalates
    has_pure_equilibrium: np.ndarray   # bool
    # the SPE most favourable to Russia (the cautious analyst's case)
    worst_escalates: np.ndarray        # bool
    worst_russia_success: np.ndarray   # P(success | escalation) in that SPE
    worst_deter_share: np.ndarray      # mean P(deter) over guarantors in that SPE (indep. play)
    worst_stability: np.ndarray        # int8, binary_games.STABILITY_NAMES
    worst_max_real_eigenvalue: np.ndarray


def solve_grid(game: Game, defended_below: float = 0.5, chunk_cells: int = CHUNK_CELLS,
               threads: int | None = None) -> GridSolution:
    """Subgame-perfect equilibria, regimes and stability for every cell of ``game``.

    Cells are solved in chunks (bounding memory) on ``threads`` threads (default: one per
    core); numpy releases the GIL in its loops, and each cell's result does not depend on
    the chunking.
    """
    chunk_cells = cells_per_chunk(game.n, chunk_cells)
    starts = range(0, game.cells, chunk_cells)
    if not starts:
        raise ValueError("solve_grid needs at least one cell")
    threads = threads or min(len(starts), os.cpu_count() or 1)

    def work(start: int) -> GridSolution:
        return _solve_chunk(game.take(slice(start, start + chunk_cells)), defended_below)

    if threads > 1:
        with ThreadPoolExecutor(threads) as pool:
            parts = list(pool.map(work, starts))
    else:
        parts = [work(s) for s in starts]
    return GridSolution(**{name: np.concatenate([getattr(p, name) for p in parts])
                           for name in GridSolution.__dataclass_fields__})


def _solve_chunk(game: Game, defended_below: float) -> GridSolution:
    t = crisis_tables(game)
    cells = game.cells
    bits = all_profiles(game.n)
    nash = pure_equilibria(t)
    # work on the (cell, profile) pairs that are equilibria, not on the whole table
    cell, prof = np.nonzero(nash)
    count = np.bincount(cell, minlength=cells)
    has_pure = count > 0

    every = np.arange(cells)
    p = t.coordination[cell]
    value = (p * escalate_payoff_at(t, t.team)[cell]
             + (1.0 - p) * escalate_payoff_at(t, prof, cell))
    escalates = value > t.russia_refrain[cell] + PAYOFF_TOL
    success = p * t.success[every, t.team][cell] + (1.0 - p) * t.success[cell, prof]
    regimes = outcome(escalates, success, defended_below)

    starts = np.searchsorted(cell, every)[has_pure]
    regime = np.full(cells, MIXED)
    low = np.minimum.reduceat(regimes, starts) if starts.size else regimes[:0]
    high = np.maximum.reduceat(regimes, starts) if starts.size else regimes[:0]
    regime[has_pure] = np.where(low == high, low, MIXED)
    esc_share = np.bincount(cell, weights=escalates, minlength=cells) / np.maximum(count, 1)

    # Russia's favourite SPE: the highest payoff, refraining valued at U_R(refrain)
    russia_value = np.where(escalates, value, t.russia_refrain[cell])
    order = np.lexsort((-russia_value, cell))
    first = order[starts]
    worst = np.zeros(cells, dtype=np.int64)
    worst[has_pure] = prof[first]
    worst_esc = np.zeros(cells, dtype=bool)
    worst_esc[has_pure] = escalates[first]
    worst_success = np.zeros(cells)
    worst_success[has_pure] = success[first]
    deter_share = bits[worst].mean(axis=1) if game.n else np.zeros(cells)
    stability, top = vertex_stability(t, worst_esc, worst)

    if not np.all(has_pure):  # no pure equilibrium: use the totally mixed one
        idx = np.flatnonzero(~has_pure)
        mixed = _mixed_spe(game.take(idx), defended_below)
        regime[idx] = mixed["regime"]
        count[idx] = mixed["converged"].astype(count.dtype)
        esc_share[idx] = mixed["escalates"]
        worst_esc[idx] = mixed["escalates"]
        worst_success[idx] = mixed["success"]
        deter_share[idx] = mixed["deter_share"]
        stability[idx] = mixed["stability"]
        top[idx] = mixed["max_real"]

    return GridSolution(
        regime=regime.astype(np.int8), equilibrium_count=count.astype(np.int32),
        escalation_share=esc_share, has_pure_equilibrium=has_pure,
        worst_escalates=worst_esc, worst_russia_success=worst_success,
        worst_deter_share=deter_share, worst_stability=stability,
        worst_max_real_eigenvalue=top)


def _mixed_spe(game: Game, defended_below: float) -> dict[str, np.ndarray]:
    t = crisis_tables(game)
    with np.errstate(all="ignore"):
        sol = bg.totally_mixed_equilibrium(bg.gains(guarantor_table(t)), tol=1e-9)
    x = np.nan_to_num(sol.x, nan=0.5)
    prob = bg.profile_probabilities(x)
    escalates = escalation_value(t, prob) > t.russia_refrain + PAYOFF_TOL
    success = success_given_escalation(t, prob)
    regime = np.where(sol.converged, outcome(escalates, success, defended_below), MIXED)
    y = escalates.astype(np.float64)[:, None]
    state = np.concatenate([y, x], axis=1)
    strategic_gains = bg.gains(strategic_table(t))
    with np.errstate(all="ignore"):
        jac = bg.replicator_jacobian(strategic_gains, state)
        codes, top = bg.classify(np.linalg.eigvals(jac), EIGEN_TOL)
    resting = bg.is_replicator_rest_point(strategic_gains, state, 1e-9)
    codes = np.where(resting, codes, bg.NOT_REST_POINT).astype(np.int8)
    top = np.where(resting, top, np.nan)
    return {"regime": regime, "converged": sol.converged, "escalates": escalates,
            "success": success, "deter_share": x.mean(axis=1), "stability": codes,
            "max_real": top}


# ---------------------------------------------------------------------------------------
# One cell in full: every equilibrium, the QRE and the learning rest point


@dataclass(frozen=True)
class Equilibrium:
    """One equilibrium of one cell, as reported by :func:`solve_cell`."""

    kind: str                 # "pure SPE", "mixed SPE", "logit QRE", "learning rest point"
    escalate_probability: float
    deter_probability: dict[str, float]   # P(deter) of each member when deciding alone
    russia_success_probability: float     # P(Russia succeeds | escalation)
    regime: str
    stability: str
    max_real_eigenvalue: float
    dynamics: str                         # the dynamics the stability refers to


def solve_cell(game: Game, rationality: float, defended_below: float = 0.5,
               tol: float = 1e-9) -> list[Equilibrium]:
    """All pure SPE, the totally mixed SPE (if any), the logit QRE and the interior rest
    point of the replicator dynamics (if any) for a single-cell ``game``."""
    if game.cells != 1:
        raise ValueError(f"solve_cell needs a single cell, got {game.cells}")
    t = crisis_tables(game)
    ids = game.guarantor_ids
    strategic_gains = bg.gains(strategic_table(t))
    found: list[Equilibrium] = []

    def describe(kind: str, y: float, x: np.ndarray, jac: np.ndarray, dynamics: str,
                 resting: bool = True):
        prob = bg.profile_probabilities(x[None])
        success = float(success_given_escalation(t, prob)[0])
        if 0 < y < 1:
            regime = REGIME_NAMES[MIXED]
        else:
            regime = REGIME_NAMES[int(outcome(np.array(y > 0.5), np.array(success),
                                              defended_below))]
        code, top = bg.classify(np.linalg.eigvals(jac)[None], EIGEN_TOL)
        if not resting:  # e.g. a mixed SPE that readiness costs move away from at once
            code, top = np.array([bg.NOT_REST_POINT]), np.array([np.nan])
        found.append(Equilibrium(kind, float(y), dict(zip(ids, map(float, x), strict=True)),
                                 success, regime, bg.STABILITY_NAMES[code[0]], float(top[0]),
                                 dynamics))

    nash = bg.pure_nash_mask(guarantor_table(t), PAYOFF_TOL)[0]
    bits = all_profiles(game.n)
    for k in np.flatnonzero(nash):
        x = bits[k]
        prob = bg.profile_probabilities(x[None])
        y = float(escalation_value(t, prob)[0] > t.russia_refrain[0] + PAYOFF_TOL)
        state = np.concatenate([[y], x])[None]
        describe("pure SPE", y, x, bg.replicator_jacobian(strategic_gains, state)[0],
                 "replicator")
    if game.n >= 2:
        with np.errstate(all="ignore"):
            mixed = bg.totally_mixed_equilibrium(bg.gains(guarantor_table(t)), tol)
        if mixed.converged[0]:
            x = mixed.x[0]
            prob = bg.profile_probabilities(x[None])
            y = float(escalation_value(t, prob)[0] > t.russia_refrain[0] + PAYOFF_TOL)
            state = np.concatenate([[y], x])[None]
            describe("mixed SPE", y, x, bg.replicator_jacobian(strategic_gains, state)[0],
                     "replicator", bool(bg.is_replicator_rest_point(strategic_gains, state,
                                                                     1e-9)[0]))
    with np.errstate(all="ignore"):
        rest = bg.totally_mixed_equilibrium(strategic_gains, tol)
    if rest.converged[0]:
        s = rest.x[0]
        describe("learning rest point", s[0], s[1:],
                 bg.replicator_jacobian(strategic_gains, s[None])[0], "replicator")
    qre = bg.logit_equilibrium(strategic_gains, rationality, tol)
    s = qre.x[0]
    describe("logit QRE" + ("" if qre.converged[0] else " (not converged)"), s[0], s[1:],
             bg.logit_jacobian(strategic_gains, s[None], rationality)[0],
             f"logit, rationality {rationality:g}")
    return found


def _codes(names) -> dict:
    """CF flag attributes of integer codes 0, 1, ... naming ``names`` (int8, as stored)."""
    return {"units": "1", "flag_values": np.arange(len(names), dtype=np.int8),
            "flag_meanings": " ".join(name.replace(" ", "_") for name in names)}


#: CF attributes of each GridSolution field, as written to NetCDF (booleans as int8 codes).
MAP_VARIABLES = {
    "regime": {"long_name": "regime over the pure subgame-perfect equilibria (the totally "
                            "mixed one where there is no pure one)", **_codes(REGIME_NAMES)},
    "equilibrium_count": {"long_name": "number of pure subgame-perfect equilibria",
                          "units": "1",
                          "comment": "1 where the totally mixed one stands in, 0 where none "
                                     "was found"},
    "escalation_share": {"long_name": "share of the pure subgame-perfect equilibria in "
                                       "which Russia escalates",
                         "units": "1"},
    "has_pure_equilibrium": {"long_name": "the guarantors' subgame has a pure equilibrium",
                             **_codes(("no", "yes"))},
    "worst_escalates": {"long_name": "Russia escalates in the equilibrium it likes best",
                        **_codes(("no", "yes"))},
    "worst_russia_success": {"long_name": "P(Russia succeeds | escalation) in the "
                                          "equilibrium Russia likes best", "units": "1"},
    "worst_deter_share": {"long_name": "mean P(deter) of guarantors deciding alone in the "
                                       "equilibrium Russia likes best", "units": "1"},
    "worst_stability": {"long_name": "stability under replicator learning of the "
                                     "equilibrium Russia likes best", **_codes(bg.STABILITY_NAMES)},
    "worst_max_real_eigenvalue": {
        "long_name": "largest real part of the replicator Jacobian's eigenvalues at "
                     "the equilibrium Russia likes best",
        "units": "1",
        "comment": "per crisis round (a round is not a unit of time, so units is 1); > 0: "
                   "learning moves away"},
}
