r"""Rules of the repeated crisis: how agents choose and learn, how stocks evolve.

The only home of the simulation rules. Both engines call these functions — the Mesa model
(:mod:`deterrence.simulate.mesa_model`) with arrays of one run, the vectorised engine
(:mod:`deterrence.simulate.engine`) with arrays of many — so both evaluate the same expressions in
the same order. Arrays have the run axis first; per-member arrays are (R, n). Payoffs and
expectations are those of :mod:`deterrence.game.payoffs`, the equilibria those of
:mod:`deterrence.solve.equilibrium`; nothing here enumerates the 2^n response profiles.
``Lambda`` is the logistic cdf (:func:`deterrence.solve.equilibrium.logistic`).

One round t:

1. *Stage game.* The crisis game of :mod:`deterrence.game.payoffs` with today's stocks
   (Ukraine's capability ``M_U(t)``, Russia's ``m(t)``) and honouring costs
   ``h_i f_i(t)`` (``f_i`` the product of the cost shocks that reached member i). A member
   that has withdrawn has left: its troops leave (``troops_on_ground = 0``: it is no longer
   engaged) and its response would add nothing (its capability ``c_i``, decisive chance
   ``beta_i``, sanctions weight ``w_i`` and escalation risk ``e_i`` are 0), so it is a
   bystander that changes nothing, and it never honours. Russia's provocation cost stays
   the base game's.
2. *Russia* holds Beta beliefs ``(alpha_i, beta_i)`` that member i honours, with mean
   ``b_i = alpha_i / (alpha_i + beta_i)`` (0 for a member that has withdrawn; an engaged
   member honours with 1 whatever the belief). Against members honouring independently
   with ``b`` its expected payoff of escalating is ``V = E_b[U_R(a)]``
   (:func:`~deterrence.game.payoffs.russia_escalation_value`, exact to the quadrature's
   proven bound), and it escalates with probability::

       P(escalate) = Lambda((V - U_R(refrain)) / sigma_R)

   ``sigma_R`` = ``russia.resolve_scale``: each round Russia draws a fresh private value of
   war (its resolve type), logistic with scale ``sigma_R``, and escalates iff
   ``V - U_R(refrain)`` exceeds it.
3. *Response.* If Russia escalates, the members coordinate with probability ``p``
   (``format.coordination_probability``, the 24-hour mechanism): member i then honours
   with probability ``q_c,i``, the coordinated equilibrium of that round's stage game
   (:func:`~deterrence.solve.equilibrium.equilibrium_set`, then
   :func:`~deterrence.solve.equilibrium.select`), solved only in the runs that coordinate
   this round. Otherwise member i decides alone and honours with probability::

       q_i = Lambda(A_i / sigma_i)

   ``A_i`` its attraction of honouring (below), ``sigma_i`` = its ``resolve_scale``. Either
   way an engaged member honours (its garrison fights) and a withdrawn one abstains.
4. *Outcome*: deterred (no escalation), defended (the realised profile's chance of success
   ``P(a)`` is below ``analysis.defended_below_russia_success``) or abandoned.
5. *Learning.* In a round with escalation Russia observes every member's response
   (coordinated or not). Its evidence beyond the prior ``(alpha_0, beta_0) = (s_0 r_0,
   s_0 (1 - r_0))`` (``s_0`` = ``belief_prior_strength``, ``r_0`` =
   ``belief_prior_reliability``) shrinks by ``mu`` = ``belief_memory`` every round::

       alpha_i <- alpha_0 + mu (alpha_i - alpha_0) + e a_i + kappa T_i
       beta_i  <- beta_0  + mu (beta_i  - beta_0)  + e (1 - a_i)

   ``e`` = 1 in a round with escalation, ``T_i`` = 1 for a member with troops stationed in
   Ukraine that has not withdrawn, ``kappa`` = ``troop_signal_weight`` (a costly signal;
   declarations count for nothing). Members reinforce (experience-weighted attraction with
   full feedback, Camerer & Ho 1999)::

       A_i <- A_i + (1 - m) [d (g_i - A_i) - rho_i]

   ``m`` = ``attraction_memory``, ``rho_i`` = its ``readiness_cost`` (staying ready costs
   every round, so untested readiness erodes), ``d`` = 1 in a round in which Russia
   escalated and the members decided alone, and ``g_i = U_i(honour, a_-i) -
   U_i(abstain, a_-i)`` at the realised profile (pure-profile payoffs). The start value
   ``A_i(0) = G_i`` is member i's exact expected gain of honouring when the others honour
   independently with ``r_0`` (:func:`~deterrence.game.payoffs.honouring_gain`).
6. *Stocks.* Ukraine's capability returns towards its baseline and keeps part of the
   response's capability; both sides lose ``war_damage`` of their capability in a round of
   fighting; Russia regenerates towards a baseline lowered by the sanctions stock, which
   grows with the sanctions imposed and decays (:func:`update_stocks`).

Randomness is a pure function of (root key, run, round, slot): slot 0 is Russia's
choice, slot 1 the coordination, slot 2 + i member i's response (coordinated or alone).
Each uniform is the SplitMix64 output (Steele, Lea & Flood 2014) for the counter
``run * 2^28 + round * 2^8 + slot``, so a run's numbers depend neither on the engine nor on
how runs are grouped.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from ..game.config import DynamicsParameters, FormatSpec, Scenario, Shock
from ..game.payoffs import (
    ABANDONED,
    DETERRED,
    Game,
    build_game,
    expectation,
    guarantor_payoffs,
    honouring_gain,
    russia_escalation_value,
    russia_refrain_payoff,
)
from ..solve.equilibrium import CHUNK_CELLS, equilibrium_set, logistic, select

SLOT_RUSSIA, SLOT_TEAM, SLOT_FIRST_GUARANTOR = 0, 1, 2
MAX_RUNS, MAX_STEPS, MAX_SLOTS = 1 << 36, 1 << 20, 1 << 8

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)


def root_key(seed: int) -> int:
    """The 64-bit key of a root seed (through SeedSequence, so nearby seeds differ)."""
    return int(np.random.SeedSequence(int(seed)).generate_state(1, dtype=np.uint64)[0])


def uniforms(key: int, runs: np.ndarray, step: int, slots: int) -> np.ndarray:
    """Uniform numbers in [0, 1) for (runs, slots) at ``step``: shape (len(runs), slots)."""
    if not 0 <= step < MAX_STEPS or slots > MAX_SLOTS:
        raise ValueError(f"step must be < {MAX_STEPS} and slots <= {MAX_SLOTS}")
    runs = np.asarray(runs)
    if runs.size and (runs.min() < 0 or runs.max() >= MAX_RUNS):
        raise ValueError(f"run indices must be in [0, {MAX_RUNS}): counters would repeat")
    runs = runs.astype(np.uint64)
    counter = ((runs[:, None] << np.uint64(28)) | np.uint64(step << 8)
               | np.arange(slots, dtype=np.uint64)[None, :])
    z = np.uint64(key) + (counter + np.uint64(1)) * _GOLDEN
    z = (z ^ (z >> np.uint64(30))) * _MIX1
    z = (z ^ (z >> np.uint64(27))) * _MIX2
    z ^= z >> np.uint64(31)
    return (z >> np.uint64(11)).astype(np.float64) * 2.0 ** -53


# ---------------------------------------------------------------------------------------
# Stage game


@dataclass
class Stocks:
    """Stocks of each run, shape (R,)."""

    ukraine_capability: np.ndarray
    russia_capability: np.ndarray
    sanctions: np.ndarray


def initial_stocks(base: Game) -> Stocks:
    return Stocks(base.ukraine_capability.copy(), base.russia_capability.copy(),
                  np.zeros(base.cells))


def stage_game(base: Game, stocks: Stocks, cost_factor: np.ndarray,
               withdrawn: np.ndarray) -> Game:
    """Today's crisis game: the base game with today's stocks and honouring costs; a
    withdrawn member (``withdrawn`` (R, n) bool) is a bystander: no troops, and a response
    that would add nothing."""
    present = np.where(withdrawn, 0.0, 1.0)
    # provocation_cost stays the base game's even when every garrison has left
    return replace(base, ukraine_capability=stocks.ukraine_capability,
                   russia_capability=stocks.russia_capability,
                   honouring_cost=base.honouring_cost * cost_factor,
                   troops_on_ground=base.troops_on_ground * present,
                   added_capability=base.added_capability * present,
                   decisive_probability=base.decisive_probability * present,
                   sanctions_weight=base.sanctions_weight * present,
                   escalation_probability=base.escalation_probability * present)


# ---------------------------------------------------------------------------------------
# Russia


def belief_means(alpha: np.ndarray, beta: np.ndarray, withdrawn: np.ndarray) -> np.ndarray:
    return np.where(withdrawn, 0.0, alpha / (alpha + beta))


def escalation_probability(game: Game, honour_belief: np.ndarray) -> np.ndarray:
    """``Lambda((V - U_R(refrain)) / sigma_R)``, ``V`` Russia's exact expected payoff of
    escalating against members honouring independently with ``honour_belief`` (R, n)."""
    value = russia_escalation_value(game, expectation(game, honour_belief))
    return logistic((value - russia_refrain_payoff(game)) / game.russia_resolve_scale)


def update_beliefs(alpha: np.ndarray, beta: np.ndarray, params: DynamicsParameters,
                   observed: np.ndarray, actions: np.ndarray, troops: np.ndarray,
                   withdrawn: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Forget, then add this round's evidence. ``observed`` (R, 1): 1 where Russia escalated
    and so saw every member's response."""
    prior_alpha = params.belief_prior_strength * params.belief_prior_reliability
    prior_beta = params.belief_prior_strength * (1.0 - params.belief_prior_reliability)
    memory = params.belief_memory
    present = 1.0 - withdrawn
    alpha = (prior_alpha + memory * (alpha - prior_alpha) + observed * actions
             + params.troop_signal_weight * troops * present)
    beta = prior_beta + memory * (beta - prior_beta) + observed * (1.0 - actions)
    return alpha, beta


def prior_beliefs(params: DynamicsParameters, shape: tuple[int, ...]):
    alpha = np.full(shape, params.belief_prior_strength * params.belief_prior_reliability)
    beta = np.full(shape, params.belief_prior_strength * (1.0 - params.belief_prior_reliability))
    return alpha, beta


# ---------------------------------------------------------------------------------------
# Members


def initial_attraction(game: Game, params: DynamicsParameters) -> np.ndarray:
    """A member's attraction of honouring before any crisis: its exact expected gain from
    honouring when the others honour independently at the prior reliability: (C, n)."""
    prior = np.full((game.cells, game.n), params.belief_prior_reliability)
    return honouring_gain(game, expectation(game, prior))


def alone_probability(attraction: np.ndarray, resolve_scale: np.ndarray) -> np.ndarray:
    """``Lambda(A_i / sigma_i)``: a member deciding alone honours with this probability."""
    return logistic(attraction / resolve_scale)


def coordinated_probabilities(game: Game) -> np.ndarray:
    """``q_c``: each member's probability of honouring in the coordinated equilibrium of
    every cell of ``game`` (C, n), solved in chunks of at most ``CHUNK_CELLS`` cells (each
    cell's equilibria depend on that cell alone)."""
    parts = []
    for start in range(0, game.cells, CHUNK_CELLS):
        part = game.take(slice(start, start + CHUNK_CELLS))
        parts.append(select(part, equilibrium_set(part)).q_coordinated)
    return np.concatenate(parts) if parts else np.zeros((0, game.n))


def honour_probability(probability: np.ndarray, engaged: np.ndarray,
                       withdrawn: np.ndarray) -> np.ndarray:
    """``probability`` with engaged members set to 1 (their garrison fights) and withdrawn
    ones to 0."""
    return np.where(withdrawn, 0.0, np.where(engaged, 1.0, probability))


def honouring_gain_of(game: Game, actions: np.ndarray, i: int) -> np.ndarray:
    """``U_i(honour, a_-i) - U_i(abstain, a_-i)`` at each run's profile ``actions`` (R, n)
    for member i: shape (R,)."""
    return honouring_gains(game, actions, [i])[:, 0]


def honouring_gains(game: Game, actions: np.ndarray, which=None) -> np.ndarray:
    """:func:`honouring_gain_of` for several members at once (default: all): (R, len).

    Each profile's payoffs are computed element by element, so the numbers are the same
    whether one member or all are asked for."""
    which = list(range(game.n)) if which is None else list(which)
    k = len(which)
    if k == 0:
        return np.zeros((game.cells, 0))
    flipped = np.repeat(actions[:, None, :], 2 * k, axis=1)
    rows = np.arange(k)
    flipped[:, rows, which] = 1.0
    flipped[:, k + rows, which] = 0.0
    payoffs = guarantor_payoffs(game, flipped)  # (R, 2k, n)
    return payoffs[:, rows, which] - payoffs[:, k + rows, which]


def update_attraction(attraction: np.ndarray, params: DynamicsParameters,
                      decided_alone: np.ndarray, gain: np.ndarray,
                      readiness_cost: np.ndarray) -> np.ndarray:
    """``A <- A + (1 - m) [d (g - A) - readiness]``, ``d`` (R, 1) = 1 where Russia escalated
    and the members decided alone: experience moves the attraction towards the gain of
    honouring, and staying ready costs every round, so untested readiness erodes."""
    step = 1.0 - params.attraction_memory
    return attraction + step * (decided_alone * (gain - attraction) - readiness_cost)


# ---------------------------------------------------------------------------------------
# Outcome and stocks


def update_stocks(stocks: Stocks, base: Game, params: DynamicsParameters,
                  escalated: np.ndarray, actions: np.ndarray) -> Stocks:
    fought = escalated.astype(np.float64)
    added = (actions * base.added_capability).sum(axis=1)
    sanctions_imposed = (actions * base.sanctions_weight).sum(axis=1)
    ukraine = stocks.ukraine_capability
    ukraine = (ukraine + params.ukraine_recovery_rate * (base.ukraine_capability - ukraine)
               + fought * (params.aid_persistence * added - params.war_damage * ukraine))
    russia = stocks.russia_capability
    target = base.russia_capability * np.maximum(0.0, 1.0 - params.sanctions_drag
                                                 * stocks.sanctions)
    russia = (russia + params.russia_regeneration_rate * (target - russia)
              - fought * params.war_damage * russia)
    sanctions = (1.0 - params.sanctions_decay) * stocks.sanctions + fought * sanctions_imposed
    # a rate + war_damage of 1 (the most the schema allows) leaves (1 - rate - war_damage)
    # = 0 of the old capability, which rounding can take a hair below 0
    return Stocks(np.maximum(ukraine, 0.0), np.maximum(russia, 0.0), sanctions)


# ---------------------------------------------------------------------------------------
# Shocks and summaries


def shock_targets(guarantor: str, members: tuple[str, ...]) -> list[int]:
    """Member indices a shock applies to ('*' = all; a non-member is not affected)."""
    if guarantor == "*":
        return list(range(len(members)))
    return [members.index(guarantor)] if guarantor in members else []


@dataclass
class Tally:
    """Per-run counters from which the summaries are computed, shape (R,)."""

    escalations: np.ndarray
    abandoned: np.ndarray
    deterred: np.ndarray
    first_escalation: np.ndarray  # round of the first escalation, -1 if none

    @classmethod
    def empty(cls, runs: int) -> Tally:
        zeros = np.zeros(runs, dtype=np.int64)
        return cls(zeros, zeros.copy(), zeros.copy(), np.full(runs, -1, dtype=np.int64))

    def add(self, step: int, escalated: np.ndarray, result: np.ndarray) -> None:
        self.escalations += escalated
        self.abandoned += result == ABANDONED
        self.deterred += result == DETERRED
        self.first_escalation = np.where((self.first_escalation < 0) & escalated, step,
                                         self.first_escalation)

    def summary(self, steps: int) -> dict[str, np.ndarray]:
        """Long-run escalation frequency, P(abandoned | escalation) (NaN without any
        escalation), share of rounds deterred, and the round of first escalation."""
        with np.errstate(invalid="ignore", divide="ignore"):
            abandoned_share = np.where(self.escalations > 0,
                                       self.abandoned / self.escalations, np.nan)
        return {"escalation_frequency": self.escalations / steps,
                "abandoned_given_escalation": abandoned_share,
                "deterred_share": self.deterred / steps,
                "first_escalation": self.first_escalation}


def hazard_of_first_escalation(first_escalation: np.ndarray, steps: int) -> np.ndarray:
    """Discrete hazard h(t) = P(first escalation at t | none before t), over runs: (steps,)."""
    first = first_escalation[first_escalation >= 0]
    events = np.bincount(first, minlength=steps)[:steps]
    at_risk = first_escalation.size - np.concatenate([[0], np.cumsum(events)[:-1]])
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(at_risk > 0, events / at_risk, np.nan)


# ---------------------------------------------------------------------------------------
# What both engines share: the set-up of a run and its per-step records


@dataclass(frozen=True)
class Setup:
    """Everything a run needs besides its index: shared by both engines."""

    base: Game                     # one cell per run
    params: DynamicsParameters
    shocks: tuple[Shock, ...]
    defended_below: float
    key: int

    @classmethod
    def from_config(cls, scenario: Scenario, fmt: FormatSpec, seed: int | None = None) -> Setup:
        return cls(base=build_game(scenario, fmt), params=scenario.dynamics,
                   shocks=tuple(scenario.shocks),
                   defended_below=scenario.analysis.defended_below_russia_success,
                   key=root_key(scenario.seed if seed is None else seed))


@dataclass
class Series:
    """Per-step records of each run (only kept on request)."""

    escalated: list[np.ndarray] = field(default_factory=list)      # (R,) bool per step
    team: list[np.ndarray] = field(default_factory=list)           # (R,) bool
    actions: list[np.ndarray] = field(default_factory=list)        # (R, n) int8
    outcome: list[np.ndarray] = field(default_factory=list)        # (R,) int8
    belief: list[np.ndarray] = field(default_factory=list)         # (R, n) Russia's b_i
    attraction: list[np.ndarray] = field(default_factory=list)     # (R, n)
    stocks: list[np.ndarray] = field(default_factory=list)         # (R, 3)

    def record(self, escalated, team, actions, result, belief, attraction, stocks):
        """Append copies: the caller may change its arrays in place afterwards."""
        self.escalated.append(escalated.copy())
        self.team.append(team.copy())
        self.actions.append(actions.astype(np.int8))
        self.outcome.append(result.copy())
        self.belief.append(belief.copy())
        self.attraction.append(attraction.copy())
        self.stocks.append(np.stack([stocks.ukraine_capability, stocks.russia_capability,
                                     stocks.sanctions], axis=1))

    def arrays(self) -> dict[str, np.ndarray]:
        """Each record stacked with the step as axis 1: (R, T, ...)."""
        return {name: np.stack(getattr(self, name), axis=1) for name in self.__dataclass_fields__}


