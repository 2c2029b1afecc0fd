r"""The payoff rules of one crisis round: the only place they are written down.

Russia chooses to escalate or refrain. If it escalates, each member of the format chooses
to honour (``a_i = 1``) or abstain (``a_i = 0``). With a response profile ``a`` (equations,
sources and the reasons for each form in ``docs/model.md``):

Denial (contest, Hirshleifer 1989) with a best-shot component (Hirshleifer 1983)::

    K(a)     = M_U + sum_i a_i c_i,       c_i = denial_share_i * m_i * tau_i
    P(a)     = m_R / (m_R + K(a)) * prod_i (1 - a_i beta_i)
    tau_i    = 1 if i has troops on the ground, else exp(-delay / fait_accompli_days)

``beta_i`` is the chance that member i's response alone defeats the offensive.

Escalation risk (each nuclear-armed member in direct combat, independently)::

    risk(a)  = 1 - prod_i (1 - a_i e_i)

Russia (war aims worth W, a failed offensive worth F: a failed war is not the status quo)::

    U_R(refrain) = s - provocation               (provocation if any member stations troops)
    U_R(a)       = F + P(a) (W - F) - war_cost - sanctions_cost * sum_i a_i w_i
                   - risk(a) * catastrophe_cost_R
    w_i          = punishment_share_i * gdp_i / sanctions_reference_gdp

Guarantor i (Fearon's tying hands)::

    U_i(a) = -stake_i * P(a) - a_i h_i - (1 - a_i) r_i - risk(a) * catastrophe_cost_i
    r_i    = bindingness * audience_cost_i

A member with troops on the ground is *engaged* (Schelling's tripwire): its garrison fights
when attacked, so it honours whatever its costs.

Private information: member i's net cost of honouring has a logistic private component of
scale ``sigma_i``, Russia's net value of war one of scale ``sigma_R``. Against members who
honour independently with probabilities ``q``, the expectations below are exact up to a
proven quadrature bound and never enumerate the 2^n profiles (:class:`Expectation`).

All functions broadcast: a ``Game`` holds arrays over ``C`` cells (parameter points or
runs), per-member arrays have shape ``(C, n)``, and action profiles have shape ``(P, n)``
(the same profiles in every cell) or ``(C, P, n)``. Every engine (exact solver, Mesa model,
vectorised engine) calls these functions, and each cell's numbers depend on that cell alone,
so the same expression is evaluated in the same order everywhere.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
from pydantic import BaseModel

from .config import (
    FORMAT_SCALARS,
    GUARANTOR_FIELDS,
    LIMIT_SYMBOLS,
    RESPONSE_FIELDS,
    ConfigError,
    FormatSpec,
    GuarantorParameters,
    ResponseSpec,
    RussiaParameters,
    Scenario,
    UkraineParameters,
    limits_of,
    member_ids,
    parameter_field,
    response_of,
)


@dataclass(frozen=True)
class Game:
    """Payoff-relevant quantities of a crisis round for ``C`` cells and ``n`` members."""

    guarantor_ids: tuple[str, ...]
    # Russia and Ukraine, shape (C,)
    russia_capability: np.ndarray
    ukraine_capability: np.ndarray
    war_aims_value: np.ndarray
    status_quo_value: np.ndarray
    failed_war_value: np.ndarray
    war_cost: np.ndarray
    sanctions_cost: np.ndarray
    russia_catastrophe_cost: np.ndarray
    foreign_troops_aversion: np.ndarray
    russia_resolve_scale: np.ndarray
    coordination_probability: np.ndarray
    # members, shape (C, n)
    added_capability: np.ndarray
    prompt_capability: np.ndarray  # what the response adds without delay (troops present)
    response_timeliness: np.ndarray  # (C,) share of it left after the delay, without troops
    decisive_probability: np.ndarray
    sanctions_weight: np.ndarray
    escalation_probability: np.ndarray
    stake: np.ndarray
    honouring_cost: np.ndarray
    reneging_cost: np.ndarray
    audience_cost: np.ndarray  # reneging_cost = bindingness * audience_cost
    catastrophe_cost: np.ndarray
    readiness_cost: np.ndarray
    resolve_scale: np.ndarray
    troops_on_ground: np.ndarray  # 1 where the member has troops in Ukraine: it is engaged

    @property
    def cells(self) -> int:
        return self.russia_capability.shape[0]

    @property
    def n(self) -> int:
        return len(self.guarantor_ids)

    @property
    def provocation_cost(self) -> np.ndarray:
        """(C,) the loss of status-quo value to Russia while any member has troops in
        Ukraine."""
        any_troops = (self.troops_on_ground.max(axis=1) if self.n
                      else np.zeros(self.cells))
        return any_troops * self.foreign_troops_aversion

    @property
    def engaged(self) -> np.ndarray:
        """(C, n) bool: the member's garrison is engaged when Russia attacks."""
        return self.troops_on_ground > 0

    def take(self, index: Any) -> Game:
        """The game restricted to cells ``index`` (a slice or an index array)."""
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        return Game(**{k: v if k == "guarantor_ids" else v[index] for k, v in values.items()})


def capability_with_troops(prompt: np.ndarray, timeliness: np.ndarray,
                           troops: np.ndarray) -> np.ndarray:
    """``c_i``: the prompt capability (C, n), times the timeliness (C,) of a response
    without troops on the ground."""
    return prompt * np.where(troops > 0, 1.0, timeliness[:, None])


# ---------------------------------------------------------------------------------------
# The rules at pure profiles


def _per_guarantor(game_array: np.ndarray) -> np.ndarray:
    """Broadcast a (C, n) array against actions of shape (P, n) or (C, P, n)."""
    return game_array[:, None, :]


def _weighted_count(actions: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """``sum_i a_i w_i`` for every cell and profile: shape (C, P), summed member by member
    in increasing order (so a cell's value does not depend on the other cells)."""
    total = np.zeros((weights.shape[0], actions.shape[-2]))
    for i in range(weights.shape[1]):
        total += weights[:, i, None] * actions[..., i]
    return total


def _survival(actions: np.ndarray, chance: np.ndarray) -> np.ndarray:
    """``prod_i (1 - a_i p_i)`` for every cell and profile, (C, P), member by member."""
    total = np.ones((chance.shape[0], actions.shape[-2]))
    for i in range(chance.shape[1]):
        total *= 1.0 - chance[:, i, None] * actions[..., i]
    return total


def contest(russia: np.ndarray, defence: np.ndarray) -> np.ndarray:
    """``m / (m + K)``: Russia's chance in the contest; 0 when Russia has no capability left
    (war damage can wear it down to 0), whatever the defence."""
    total = russia + defence
    return np.where(russia > 0, russia / np.where(russia > 0, total, 1.0), 0.0)


def russia_success_probability(game: Game, actions: np.ndarray) -> np.ndarray:
    """P(Russia's offensive succeeds | escalation, profile): shape (C, P)."""
    defence = game.ukraine_capability[:, None] + _weighted_count(actions, game.added_capability)
    return (contest(game.russia_capability[:, None], defence)
            * _survival(actions, game.decisive_probability))


def escalation_risk(game: Game, actions: np.ndarray) -> np.ndarray:
    """P(nuclear catastrophe | escalation, profile): shape (C, P)."""
    return 1.0 - _survival(actions, game.escalation_probability)


def russia_refrain_payoff(game: Game) -> np.ndarray:
    """Russia's payoff of refraining: shape (C,)."""
    return game.status_quo_value - game.provocation_cost


def russia_war_payoff(game: Game, success, sanctions, risk):
    """Russia's payoff of escalating given P(success), sanctions sum_i a_i w_i and risk
    (each (C, ...), or their expectations: the payoff is linear in all three)."""
    shape = (-1, *([1] * (np.ndim(success) - 1)))

    def cell(a):
        return a.reshape(shape)

    failed = cell(game.failed_war_value)
    return (failed + success * (cell(game.war_aims_value) - failed) - cell(game.war_cost)
            - cell(game.sanctions_cost) * sanctions - risk * cell(game.russia_catastrophe_cost))


def russia_escalate_payoff(game: Game, actions: np.ndarray) -> np.ndarray:
    """Russia's payoff of escalating against each profile: shape (C, P)."""
    return russia_war_payoff(game, russia_success_probability(game, actions),
                             _weighted_count(actions, game.sanctions_weight),
                             escalation_risk(game, actions))


def guarantor_payoffs(game: Game, actions: np.ndarray) -> np.ndarray:
    """Each member's payoff once Russia has escalated: shape (C, P, n)."""
    success = russia_success_probability(game, actions)
    risk = escalation_risk(game, actions)
    return (-_per_guarantor(game.stake) * success[..., None]
            - actions * _per_guarantor(game.honouring_cost)
            - (1.0 - actions) * _per_guarantor(game.reneging_cost)
            - risk[..., None] * _per_guarantor(game.catastrophe_cost))


#: Outcomes of a crisis round.
DETERRED, DEFENDED, ABANDONED = 0, 1, 2


def outcome(escalates: np.ndarray, success: np.ndarray, defended_below: float) -> np.ndarray:
    """Deterred (no escalation), defended (the response leaves Russia's chance of success
    below ``defended_below``) or abandoned, as int8 codes."""
    return (escalates * (DEFENDED + (success >= defended_below))).astype(np.int8)


#: Most members the enumeration of pure profiles (:func:`all_profiles`) handles: 2^16 =
#: 65,536 profiles. The solver never enumerates; tests and small examples do.
MAX_ENUMERATED = 16
#: Most members a format may bind. The solver's cost grows polynomially in n
#: (docs/model.md#34-finding-every-equilibrium); 64 is far above the 35 states of the
#: largest coalition on record (docs/sources.md#paris-declaration-2026).
MAX_MEMBERS = 64


def check_members(members: int, where: str) -> None:
    """Raise ConfigError if ``members`` are more than :data:`MAX_MEMBERS`."""
    if members > MAX_MEMBERS:
        raise ConfigError(f"{where}: {members} members; at most {MAX_MEMBERS} allowed")


@functools.cache
def all_profiles(n: int) -> np.ndarray:
    """Every pure response profile: row ``k`` holds the bits of ``k`` (member i = bit i).
    Cached and read-only."""
    if n > MAX_ENUMERATED:
        raise ConfigError(f"enumerating the 2^{n} response profiles of {n} members: at most "
                          f"{MAX_ENUMERATED} members can be enumerated")
    k = np.arange(2 ** n)
    profiles = ((k[:, None] >> np.arange(n)[None, :]) & 1).astype(np.float64)
    profiles.flags.writeable = False
    return profiles


# ---------------------------------------------------------------------------------------
# Expectations over members who honour independently


#: Largest quadrature error accepted in a probability (Russia's chance of success).
QUADRATURE_TOLERANCE = 1e-14
#: Gauss-Laguerre rules tried, smallest first (nodes).
LAGUERRE_NODES = (16, 32, 48, 64, 96, 128)
#: The composite Gauss-Legendre rule used where no Laguerre rule meets the tolerance: nodes
#: per panel, panels of width 1 up to u = 2 * PANEL_NODES, then panels growing by the factor
#: 1 + PANEL_GROWTH (in u = (m + M_U + C) t), up to TAIL (1 + A): the tail beyond contributes
#: less than exp(-TAIL) to a probability.
PANEL_NODES, PANEL_GROWTH, TAIL = 8, 0.4, 34.0


def laguerre_limit(nodes: int, tolerance: float = QUADRATURE_TOLERANCE) -> float:
    """The largest capability ratio A = sum_i c_i / (m + M_U) for which the ``nodes``-point
    Gauss-Laguerre rule is proven within ``tolerance`` of E[P].

    The integrand is a mixture, with non-negative weights summing to at most 1, of
    ``exp(-a u)``, a in [0, A]; the rule's remainder for ``exp(-a u)`` is
    ``(N!)^2 / (2N)! a^(2N) exp(-a xi)`` for some xi > 0 (Abramowitz & Stegun 25.4.45),
    at most ``(N!)^2 / (2N)! A^(2N)``; E[P] multiplies it by m / (m + M_U) <= 1."""
    log_c = 2.0 * math.lgamma(nodes + 1) - math.lgamma(2 * nodes + 1)
    return math.exp((math.log(tolerance) - log_c) / (2 * nodes))


#: The rule chosen by the index of the first Laguerre limit at least A (-1: none).
_LAGUERRE_CHOICES = np.array([*LAGUERRE_NODES, -1], dtype=np.int64)


@functools.cache
def _laguerre_limits() -> np.ndarray:
    """:func:`laguerre_limit` of each rule of :data:`LAGUERRE_NODES` (increasing)."""
    return np.array([laguerre_limit(nodes) for nodes in LAGUERRE_NODES])


@functools.cache
def _laguerre(nodes: int) -> tuple[np.ndarray, np.ndarray]:
    """Nodes and weights of the ``nodes``-point Gauss-Laguerre rule: scipy's, accurate to
    rounding (numpy's ``laggauss`` is not: with 96 nodes its rule is off by 3e-13 for
    ``exp(-a u)``, a = 1.6, thirty times the :data:`QUADRATURE_TOLERANCE` that the remainder
    bound of :func:`laguerre_limit` is set to)."""
    from scipy.special import roots_laguerre  # scipy.special is imported when first needed

    x, w = roots_laguerre(nodes)
    return x, w


@functools.cache
def _legendre(nodes: int) -> tuple[np.ndarray, np.ndarray]:
    x, w = np.polynomial.legendre.leggauss(nodes)
    return (x + 1.0) / 2.0, w / 2.0


def composite_edges(ratio: float) -> np.ndarray:
    """Panel edges of the composite rule for capability ratio A, in u = (m + M_U + C) t:
    0, 1, ..., 2v, then each edge (1 + PANEL_GROWTH) times the last, until TAIL (1 + A) is
    passed. The edges depend on A only through their number."""
    edges = list(np.arange(2 * PANEL_NODES + 1, dtype=np.float64))
    while edges[-1] < TAIL * (1.0 + ratio):
        edges.append(edges[-1] * (1.0 + PANEL_GROWTH))
    return np.array(edges)


def composite_error_bound(ratio: float) -> float:
    """Bound on the composite rule's error in a probability for capability ratio A.

    In u the integrand is ``m / T sum_S w_S exp(-r_S u)`` with T = m + M_U + C, weights
    summing to at most 1 and r_S in [1 / (1 + A), 1], so its 2v-th derivative on a panel
    starting at a is at most ``M(a) = max_r r^(2v) exp(-r a)`` (``exp(-a)`` for a <= 2v,
    ``(2v / (e a))^(2v)`` beyond), and m / T <= 1 / (1 + A). Per panel of width h the
    Gauss-Legendre remainder is ``h^(2v+1) (v!)^4 / ((2v+1) ((2v)!)^3) M(a)``; the tail
    beyond the last edge adds at most ``exp(-TAIL)``."""
    v = PANEL_NODES
    edges = composite_edges(ratio)
    a, h = edges[:-1], np.diff(edges)
    peak = np.where(a <= 2 * v, np.exp(-a), (2 * v / (math.e * np.maximum(a, 1.0))) ** (2 * v))
    constant = math.exp(4 * math.lgamma(v + 1) - math.log(2 * v + 1) - 3 * math.lgamma(2 * v + 1))
    return float(constant * np.sum(h ** (2 * v + 1) * peak) / (1.0 + ratio) + math.exp(-TAIL))


def quadrature(game: Game) -> tuple[list[np.ndarray], list[tuple[np.ndarray, np.ndarray]]]:
    """Cells grouped by the rule that integrates them: ``(cells, (t, weight))`` where
    ``t`` (G, N) are the nodes in t and ``weight`` (G, N) include ``m exp(-(m + M_U) t)``,
    so that ``E[P] = sum_k weight_k prod_i f_i(t_k)`` (see :class:`Expectation`).

    A cell's rule depends only on its own capability ratio A = sum_i c_i / (m + M_U):
    the smallest Laguerre rule proven within :data:`QUADRATURE_TOLERANCE`, else the
    composite rule (:func:`composite_error_bound`), whose panels depend on A only through
    their number."""
    m = game.russia_capability
    base = m + game.ukraine_capability
    safe = np.where(base > 0, base, 1.0)
    ratio = game.added_capability.sum(axis=1) / safe
    # the first rule whose limit is at least A; none (-1) above the last limit, or for NaN
    key = _LAGUERRE_CHOICES[np.searchsorted(_laguerre_limits(), ratio, side="left")]
    for c in np.flatnonzero(key < 0):  # the composite rule: minus its number of panels
        key[c] = 1 - composite_edges(float(ratio[c])).size
    groups, rules = [], []
    single = key.size > 0 and key.min() == key.max()
    for k in key[:1] if single else np.unique(key):
        cells = np.arange(key.size) if single else np.flatnonzero(key == k)
        s, mm = (safe[:, None], m[:, None]) if single else (safe[cells, None], m[cells, None])
        if k > 0:
            x, w = _laguerre(int(k))
            t, weight = x[None, :] / s, w[None, :] * mm / s  # (G, N) each
        else:
            total = s + game.added_capability[cells].sum(axis=1)[:, None]
            x, w = _legendre(PANEL_NODES)
            edges = composite_edges(float(ratio[cells[0]]))
            width = np.diff(edges)
            u = (edges[:-1, None] + width[:, None] * x[None, :]).reshape(-1)
            t = u[None, :] / total
            weight = ((width[:, None] * w[None, :]).reshape(-1)[None, :] / total) * mm \
                * np.exp(-s * t)
        groups.append(cells)
        rules.append((np.ascontiguousarray(t), np.ascontiguousarray(weight)))
    return groups, rules


@dataclass(frozen=True)
class Quadrature:
    """Every cell's rule in the form the expectations use, prepared once per game: what
    does not depend on ``q`` (the rule, its nodes and weights, the factors ``y_i(t_k) =
    (1 - beta_i) exp(-t_k c_i)``). Cell j integrates over the rows ``start[j] : start[j] +
    count[j]`` of ``weight`` (K,) and ``y`` (K, n); :meth:`take` selects cells (or the
    cells of boxes) and shares the rows."""

    start: np.ndarray   # (C,) int64, first row of each cell's nodes
    count: np.ndarray   # (C,) int64, nodes of each cell's rule
    weight: np.ndarray  # (K,) the weights of :func:`quadrature`, m exp(-(m + M_U) t) included
    y: np.ndarray       # (K, n)

    def take(self, index: Any) -> Quadrature:
        """The rule of cells ``index`` (a slice or an index array) of the game."""
        return Quadrature(np.ascontiguousarray(self.start[index]),
                          np.ascontiguousarray(self.count[index]), self.weight, self.y)

    @functools.cached_property
    def groups(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """Cells with the same number of nodes N: ``(cells, rows)``, rows (G, N) indexing
        ``weight`` and ``y``."""
        if self.count.size and self.count.min() == self.count.max():  # a single rule
            nodes = self.count[0]
            return [(np.arange(self.count.size), self.start[:, None] + np.arange(nodes))]
        out = []
        for nodes in np.unique(self.count):
            cells = np.flatnonzero(self.count == nodes)
            out.append((cells, self.start[cells, None] + np.arange(nodes)[None, :]))
        return out


def prepare_quadrature(game: Game) -> Quadrature:
    """:class:`Quadrature` of every cell of ``game`` (:func:`quadrature`)."""
    cells, n = game.added_capability.shape
    groups, rules = quadrature(game)
    beta, c = game.decisive_probability, game.added_capability
    start = np.zeros(cells, dtype=np.int64)
    count = np.zeros(cells, dtype=np.int64)
    rows = sum(t.size for t, _ in rules)
    weight, y = np.empty(rows), np.empty((rows, n))
    offset = 0
    for idx, (t, w) in zip(groups, rules, strict=True):
        size, nodes = t.shape
        start[idx] = offset + nodes * np.arange(size)
        count[idx] = nodes
        weight[offset:offset + t.size] = w.reshape(-1)
        # (1 - beta_i) exp(-t c_i), (G, N, n), computed in place
        block = y[offset:offset + t.size].reshape(size, nodes, n)
        np.multiply(-t[:, :, None], c[idx, None, :], out=block)
        np.exp(block, out=block)
        block *= (1.0 - beta[idx])[:, None, :]
        offset += t.size
    return Quadrature(start=start, count=count, weight=weight, y=y)


@functools.cache
def _kernels():
    """The compiled loops (:mod:`deterrence.game.kernels`), imported when first needed."""
    from . import kernels

    return kernels


@dataclass(frozen=True)
class Expectation:
    """Expected outcomes of an escalation when member i honours independently with
    probability ``q[:, i]`` (engaged members with 1), per cell.

    With y_i(t) = (1 - beta_i) exp(-t c_i) and f_i(t) = 1 - q_i + q_i y_i(t), because
    ``m / (m + K) = m int_0^inf exp(-t (m + K)) dt``::

        E[P]            = m int_0^inf exp(-t (m + M_U)) prod_i f_i(t) dt
        E[P | a_i = 1]  = the same with f_i replaced by y_i, E[P | a_i = 0] by 1

    (Gauss quadrature, :func:`quadrature`; the products over the others are prefix and
    suffix products, never a division). Sanctions and risk are closed forms."""

    success: np.ndarray        # (C,) E[P]
    success_if: np.ndarray     # (C, n, 2) E[P | a_i = 0], E[P | a_i = 1]
    sanctions: np.ndarray      # (C,) E[sum_i a_i w_i]
    risk: np.ndarray           # (C,) E[risk]
    risk_if: np.ndarray        # (C, n, 2) E[risk | a_i = 0], E[risk | a_i = 1]
    respond: np.ndarray        # (C,) P(at least one member honours)


def _exclusive_products(factors: np.ndarray) -> np.ndarray:
    """``prod_{j != i} factors[..., j]`` for every i along the last axis, by prefix and
    suffix products (exact where a factor is 0)."""
    n = factors.shape[-1]
    ones = np.ones(factors.shape[:-1] + (1,))
    prefix = np.concatenate([ones, np.cumprod(factors[..., :-1], axis=-1)], axis=-1) \
        if n else factors
    suffix = np.concatenate([np.cumprod(factors[..., :0:-1], axis=-1)[..., ::-1], ones],
                            axis=-1) if n else factors
    return prefix * suffix


def honour_probabilities(game: Game, q: np.ndarray) -> np.ndarray:
    """``q`` with engaged members set to 1."""
    return np.where(game.engaged, 1.0, q)


def expectation(game: Game, q: np.ndarray, rule: Quadrature | None = None) -> Expectation:
    """:class:`Expectation` against independent honouring probabilities ``q`` (C, n);
    ``rule`` is :func:`prepare_quadrature` of ``game`` (prepared here when not given)."""
    q = honour_probabilities(game, q)
    cells, n = q.shape
    rule = prepare_quadrature(game) if rule is None else rule
    e = np.ascontiguousarray(game.escalation_probability)
    success = np.empty(cells)
    success_if = np.empty((cells, n, 2))
    risk_if = np.empty((cells, n, 2))
    risk_respond = np.empty((cells, 2))
    product = np.empty((cells, int(rule.count.max(initial=0))))
    _kernels().expectation_sums(np.ascontiguousarray(q), e, rule.start, rule.count,
                                rule.weight, rule.y, product, success_if, risk_if,
                                risk_respond)
    for idx, rows in rule.groups:
        weight = rule.weight[rows]
        success[idx] = (np.einsum("gk,gk->g", weight, product[idx, :rows.shape[1]]) if n
                        else weight.sum(axis=1))
    return Expectation(success=success, success_if=success_if,
                       sanctions=np.sum(q * game.sanctions_weight, axis=1),
                       risk=risk_respond[:, 0], risk_if=risk_if, respond=risk_respond[:, 1])


def russia_escalation_value(game: Game, ex: Expectation) -> np.ndarray:
    """Russia's expected payoff of escalating against independent members: (C,)."""
    return russia_war_payoff(game, ex.success, ex.sanctions, ex.risk)


def contest_gain(game: Game, ex: Expectation) -> np.ndarray:
    """The part of member i's gain from honouring that comes from denial: (C, n),
    ``-stake_i (E[P | a_i = 1] - E[P | a_i = 0])``; non-increasing in every other q_j."""
    return -game.stake * (ex.success_if[..., 1] - ex.success_if[..., 0])


def risk_gain(game: Game, ex: Expectation) -> np.ndarray:
    """The part from nuclear risk: ``-catastrophe_i (E[risk | 1] - E[risk | 0])`` (C, n);
    non-decreasing in every other q_j."""
    return -game.catastrophe_cost * (ex.risk_if[..., 1] - ex.risk_if[..., 0])


def fixed_gain(game: Game) -> np.ndarray:
    """The part that does not depend on the others: reneging cost less honouring cost."""
    return game.reneging_cost - game.honouring_cost


def honouring_gain(game: Game, ex: Expectation) -> np.ndarray:
    """``G_i = E[U_i | honour] - E[U_i | abstain]`` against the others' probabilities (C, n):
    member i honours iff its private cost type is below G_i."""
    return fixed_gain(game) + contest_gain(game, ex) + risk_gain(game, ex)


def _response_arguments(game: Game, rule: Quadrature) -> tuple[np.ndarray, ...]:
    """The arrays of :func:`deterrence.game.kernels.settle` after ``q``, ``lo`` and ``hi``."""
    return (np.ascontiguousarray(game.escalation_probability), rule.start, rule.count,
            rule.weight, rule.y, np.ascontiguousarray(fixed_gain(game)),
            np.ascontiguousarray(game.stake), np.ascontiguousarray(game.catastrophe_cost),
            np.ascontiguousarray(game.resolve_scale), np.ascontiguousarray(game.engaged))


def honour_response(game: Game, q: np.ndarray, rule: Quadrature | None = None) -> np.ndarray:
    """Each member's probability of honouring against the others' independent ``q`` (C, n):
    ``Lambda(G_i / sigma_i)`` with ``G_i`` = :func:`honouring_gain` at
    :func:`expectation` ``(game, q, rule)`` and ``Lambda`` the logistic cdf
    (:func:`deterrence.solve.equilibrium.logistic`), 1 for engaged members. The same
    operations in the same order as those functions, in one compiled pass per cell: one
    step of :func:`settle_response` between 0 and 1."""
    return settle_response(game, q, np.zeros(q.shape), np.ones(q.shape), 1, 0.0, rule)


def gain_range(game: Game, lo: np.ndarray, hi: np.ndarray, rule: Quadrature | None = None):
    """``(gmin, gmax)`` (C, n): each member's gain with its denial part
    (:func:`contest_gain`) at ``hi`` and its risk part (:func:`risk_gain`) at ``lo``, and
    the other way round: the extremes of :func:`honouring_gain` over the box [lo, hi], since
    the denial part is non-increasing and the risk part non-decreasing in every other q_j.
    The same operations as those functions, in one compiled pass per cell."""
    lo = np.ascontiguousarray(honour_probabilities(game, lo))
    hi = np.ascontiguousarray(honour_probabilities(game, hi))
    rule = prepare_quadrature(game) if rule is None else rule
    gmin, gmax = np.empty(lo.shape), np.empty(lo.shape)
    _kernels().gain_ranges(lo, hi, *_response_arguments(game, rule)[:8], gmin, gmax)
    return gmin, gmax


def settle_response(game: Game, q: np.ndarray, lo: np.ndarray, hi: np.ndarray,
                    iterations: int, width: float, rule: Quadrature | None = None,
                    residual: bool = False):
    """Iterate ``q <- clip(honour_response(game, q), lo, hi)`` in each cell until a step
    moves it by at most ``width`` (max norm), at most ``iterations`` times; returns the
    last ``q`` and, if ``residual``, ``max_i |honour_response(game, q)_i - q_i|`` there (C,).
    Engaged members honour: their q is 1 throughout, within their [lo, hi]."""
    q = np.array(honour_probabilities(game, q), dtype=np.float64, order="C")
    rule = prepare_quadrature(game) if rule is None else rule
    left = np.empty(q.shape[0] if residual else 0)
    _kernels().settle(q, np.ascontiguousarray(lo), np.ascontiguousarray(hi),
                      *_response_arguments(game, rule), iterations, width, left)
    return (q, left) if residual else q


def member_welfare(game: Game, ex: Expectation) -> np.ndarray:
    """Each member's expected utility in the crisis, integrating over its own cost type
    (logistic, scale sigma_i): ``E[U_i | abstain] + sigma_i log(1 + exp(G_i / sigma_i))``;
    an engaged member's is ``E[U_i | honour]``. (C, n)."""
    abstain = (-game.stake * ex.success_if[..., 0] - game.reneging_cost
               - game.catastrophe_cost * ex.risk_if[..., 0])
    gain = honouring_gain(game, ex)
    sigma = game.resolve_scale
    surplus = sigma * np.logaddexp(0.0, gain / sigma)
    return np.where(game.engaged, abstain + gain, abstain + surplus)


def interaction_bounds(game: Game, rule: Quadrature | None = None) -> np.ndarray:
    """``L_i >= sum_{j free, j != i} sup |dG_i / dq_j|`` over all q (C, n): the Lipschitz
    constant of member i's gain in the others' probabilities (max norm); ``rule`` as in
    :func:`expectation`.

    ``|d(E[P | 1] - E[P | 0]) / dq_j| <= m int exp(-t (m + M_U)) (1 - y_i)(1 - y_j) dt``
    (the other factors are in [0, 1]); the risk part is at most ``e_i e_j``."""
    cells, n = game.added_capability.shape
    rule = prepare_quadrature(game) if rule is None else rule
    free = ~game.engaged
    bound = np.empty((cells, n))
    _kernels().interaction_sums(np.ascontiguousarray(free), rule.start, rule.count,
                                rule.weight, rule.y, bound)
    e = game.escalation_probability
    free_e = e * free
    risk = e * (free_e.sum(axis=1, keepdims=True) - free_e)
    return game.stake * bound * (1.0 + QUADRATURE_RELATIVE_SLACK) + game.catastrophe_cost * risk


def _pair_exclusive(factors: np.ndarray) -> np.ndarray:
    """``prod_{k != i, j} factors[..., k]`` for every pair (i, j): shape (..., n, n)."""
    n = factors.shape[-1]
    eye = np.eye(n, dtype=bool)
    without_i = np.where(eye, 1.0, factors[..., None, :])        # (..., i, k): f_i -> 1
    return _exclusive_products(without_i)                         # (..., i, j)


def _interaction(game: Game, q: np.ndarray, rule: Quadrature | None = None):
    """The two parts of ``dG_i / dq_j`` at ``q`` (C, n, n), zero on the diagonal: the
    denial part ``-stake_i E[D_i D_j P]`` (<= 0, non-decreasing in every other q_k) and the
    risk part ``catastrophe_i e_i e_j prod_{k != i, j} (1 - q_k e_k)`` (>= 0,
    non-increasing in every other q_k)."""
    q = honour_probabilities(game, q)
    cells, n = q.shape
    rule = prepare_quadrature(game) if rule is None else rule
    second = np.empty((cells, n, n))
    _kernels().pair_sums(np.ascontiguousarray(q), rule.start, rule.count, rule.weight, rule.y,
                         second)
    eye = np.eye(n, dtype=bool)
    denial = np.where(eye, 0.0, -game.stake[:, :, None] * second)
    e = game.escalation_probability
    risk = (game.catastrophe_cost * e)[:, :, None] * e[:, None, :] * _pair_exclusive(1.0 - q * e)
    return denial, np.where(eye, 0.0, risk)


def gain_jacobian(game: Game, q: np.ndarray, rule: Quadrature | None = None) -> np.ndarray:
    """``dG_i / dq_j`` at ``q``: (C, n, n), zero on the diagonal (G_i does not depend on
    q_i) and in the columns of engaged members (their q is fixed); ``rule`` as in
    :func:`expectation`."""
    denial, risk = _interaction(game, q, rule)
    return np.where(game.engaged[:, None, :], 0.0, denial + risk)


def gain_jacobian_bounds(game: Game, lo: np.ndarray, hi: np.ndarray,
                         rule: Quadrature | None = None):
    """Bounds ``(low, high)`` on ``dG_i / dq_j`` over the box [lo, hi] (each (C, n, n)):
    each part is monotone in every other q_k, so its extremes are at the two corners."""
    rule = prepare_quadrature(game) if rule is None else rule
    denial_lo, risk_lo = _interaction(game, lo, rule)
    denial_hi, risk_hi = _interaction(game, hi, rule)
    fixed = game.engaged[:, None, :]
    low = np.where(fixed, 0.0, denial_lo + risk_hi)
    high = np.where(fixed, 0.0, denial_hi + risk_lo)
    return low, high


#: Relative slack on quadrature-computed bounds (the quadrature's own error).
QUADRATURE_RELATIVE_SLACK = 1e-9


# ---------------------------------------------------------------------------------------
# From configuration to arrays


def parameter_paths(scenario: Scenario, fmt: FormatSpec) -> list[str]:
    """Every numeric parameter path a grid may vary for this scenario and format."""
    paths = [f"russia.{k}" for k in RussiaParameters.model_fields]
    paths += [f"ukraine.{k}" for k in UkraineParameters.model_fields]
    numeric = sorted(k for k in GUARANTOR_FIELDS
                     if GuarantorParameters.model_fields[k].annotation is float)
    for field in numeric:
        paths.append(f"guarantors.*.{field}")
        paths += [f"guarantors.{g.id}.{field}" for g in scenario.guarantors]
    paths += [f"format.{k}" for k in sorted(FORMAT_SCALARS)]
    resp_numeric = sorted(k for k in RESPONSE_FIELDS
                          if ResponseSpec.model_fields[k].annotation is float)
    paths += [f"format.response.{k}" for k in resp_numeric]
    for gid in fmt.response_overrides:
        paths += [f"format.response_overrides.{gid}.{k}" for k in resp_numeric]
    return paths


def _check_override(path: str, values: np.ndarray, scenario: Scenario, fmt: FormatSpec):
    """Raise ConfigError unless every value is allowed at ``path``."""
    allowed = parameter_paths(scenario, fmt)
    if path not in allowed:
        raise ConfigError(f"parameter path {path!r} is not a numeric parameter of this "
                          f"scenario and format; allowed: {', '.join(allowed)}")
    if values.size == 0:
        raise ConfigError(f"parameter path {path!r}: no values given")
    if not np.all(np.isfinite(values)):
        raise ConfigError(f"parameter path {path!r}: values must be finite numbers")
    info = parameter_field(path)
    for value in (float(values.min()), float(values.max())):
        for name, bound in limits_of(info):
            if not LIMIT_TESTS[name](value, bound):
                raise ConfigError(f"parameter path {path!r} = {value!r}: must be "
                                  f"{LIMIT_SYMBOLS[name]} {bound:g}")


#: Whether a value keeps a field's limit (:func:`deterrence.game.config.limits_of`).
LIMIT_TESTS = {"gt": lambda v, b: v > b, "ge": lambda v, b: v >= b,
               "lt": lambda v, b: v < b, "le": lambda v, b: v <= b}


def build_game(scenario: Scenario, fmt: FormatSpec,
               overrides: Mapping[str, Any] | None = None) -> Game:
    """Arrays of the crisis game for ``scenario`` under ``fmt``.

    ``overrides`` maps parameter paths (see :func:`parameter_paths`) to arrays; they are
    broadcast together and flattened into the cell axis (C-order), so a grid built with
    ``x[:, None]`` and ``y[None, :]`` gives ``C = len(x) * len(y)`` cells.
    """
    overrides = {k: np.asarray(v, dtype=np.float64) for k, v in (overrides or {}).items()}
    for path, values in overrides.items():
        _check_override(path, values, scenario, fmt)
    shape = np.broadcast_shapes(*(v.shape for v in overrides.values())) if overrides else ()
    cells = int(np.prod(shape, dtype=np.int64))

    def value(path: str, default: float, *fallbacks: str) -> np.ndarray:
        for candidate in (path, *fallbacks):
            if candidate in overrides:
                return np.broadcast_to(overrides[candidate], shape).reshape(cells)
        return np.full(cells, float(default))

    def side(prefix: str, params: BaseModel, name: str) -> np.ndarray:
        return value(f"{prefix}.{name}", getattr(params, name))

    russia, ukraine = scenario.russia, scenario.ukraine
    members = member_ids(fmt, scenario)
    check_members(len(members), f"scenario {scenario.name!r}, format {fmt.id!r}")

    def guarantor_column(name: str) -> np.ndarray:
        cols = [value(f"guarantors.{gid}.{name}", float(getattr(scenario.guarantor(gid), name)),
                      f"guarantors.*.{name}") for gid in members]
        return np.stack(cols, axis=1) if cols else np.zeros((cells, 0))

    def response_column(name: str) -> np.ndarray:
        cols = []
        for gid in members:
            specific = f"format.response_overrides.{gid}.{name}"
            if gid in fmt.response_overrides:
                cols.append(value(specific, float(getattr(response_of(fmt, gid), name))))
            else:
                cols.append(value(f"format.response.{name}", float(getattr(fmt.response, name))))
        return np.stack(cols, axis=1) if cols else np.zeros((cells, 0))

    fmt_value = {k: value(f"format.{k}", getattr(fmt, k)) for k in FORMAT_SCALARS}
    fait_accompli = side("russia", russia, "fait_accompli_days")
    troops = response_column("troops_on_ground")
    delayed = np.exp(-fmt_value["response_delay_days"] / fait_accompli)
    prompt = response_column("denial_share") * guarantor_column("military_spending_usd_bn")
    audience = guarantor_column("audience_cost")

    return Game(
        guarantor_ids=tuple(members),
        russia_capability=side("russia", russia, "military_spending_usd_bn"),
        ukraine_capability=(side("ukraine", ukraine, "military_spending_usd_bn")
                            + side("ukraine", ukraine, "baseline_military_aid_usd_bn")),
        war_aims_value=side("russia", russia, "war_aims_value"),
        status_quo_value=side("russia", russia, "status_quo_value"),
        failed_war_value=side("russia", russia, "failed_war_value"),
        war_cost=side("russia", russia, "war_cost"),
        sanctions_cost=side("russia", russia, "sanctions_cost"),
        russia_catastrophe_cost=side("russia", russia, "catastrophe_cost"),
        foreign_troops_aversion=side("russia", russia, "foreign_troops_aversion"),
        russia_resolve_scale=side("russia", russia, "resolve_scale"),
        coordination_probability=fmt_value["coordination_probability"],
        added_capability=capability_with_troops(prompt, delayed, troops),
        prompt_capability=prompt,
        response_timeliness=delayed,
        decisive_probability=response_column("decisive_probability"),
        sanctions_weight=(response_column("punishment_share")
                          * guarantor_column("gdp_usd_tn")
                          / side("russia", russia, "sanctions_reference_gdp_usd_tn")[:, None]),
        escalation_probability=(
            response_column("direct_combat") * guarantor_column("nuclear_armed")
            * side("russia", russia, "nuclear_escalation_probability")[:, None]),
        stake=guarantor_column("stake_in_ukraine"),
        honouring_cost=response_column("cost_share") * guarantor_column("honouring_cost"),
        reneging_cost=fmt_value["commitment_bindingness"][:, None] * audience,
        audience_cost=audience,
        catastrophe_cost=guarantor_column("catastrophe_cost"),
        readiness_cost=guarantor_column("readiness_cost"),
        resolve_scale=guarantor_column("resolve_scale"),
        troops_on_ground=troops,
    )
