r"""Rules of the repeated crisis: how agents choose and learn, how stocks evolve.

The only home of the simulation rules. Both engines call these functions — the Mesa model
(:mod:`deterrence.simulate.mesa_model`) with arrays of one run, the vectorised engine
(:mod:`deterrence.simulate.engine`) with arrays of many — so both evaluate the same expressions in
the same order. Arrays have the run axis first; per-guarantor arrays are (R, n).

One round (step) t:

1. *Stage game.* The crisis game of :mod:`deterrence.game.payoffs` with today's stocks
   (Ukraine's and Russia's capability) and honouring costs (after shocks).
2. *Russia* holds Beta beliefs (alpha_i, beta_i) that guarantor i, deciding alone, honours.
   With b_i = alpha_i / (alpha_i + beta_i) (0 for a guarantor that has withdrawn), its exact
   expected payoff of escalating is ``p U_R(team) + (1 - p) sum_k Pr_b(k) U_R(k)`` over all
   2^n profiles, and it escalates with the logit probability
   ``sigmoid(lambda (V_escalate - U_R(refrain)))``.
3. If it escalates, the members form a team with probability p (the format's coordination
   probability) and play the team's profile (withdrawn members excluded); otherwise each
   guarantor i honours with probability ``sigmoid(lambda A_i)``, A_i its attraction.
4. *Outcome*: deterred (no escalation), defended (the response leaves Russia's chance of
   success below the threshold) or abandoned.
5. *Learning.* Russia's evidence beyond the prior shrinks by ``belief_memory``; a response
   by a guarantor deciding alone counts as one observation; troops stationed in Ukraine
   count as ``troop_signal_weight`` observations of honouring each round (a costly signal;
   declarations count for nothing). Guarantors reinforce (experience-weighted attraction
   with full feedback, Camerer & Ho 1999): in a round in which Russia escalated and i
   decided alone, ``A_i`` moves a share ``1 - m`` of the way to the experienced gain
   ``g_i = U_i(honour, a_-i) - U_i(abstain, a_-i)``; in every round it also falls by
   ``(1 - m)`` times the readiness cost of being ready to honour. The expected increment,
   ``(1 - m) [y (1 - p) (G_i - A_i) - readiness_i]``, has the sign of the strategic-form gain
   of :mod:`deterrence.solve.equilibrium` at ``A_i = 0``, so the simulations learn in the game
   whose stability the solver classifies: untested readiness erodes.
6. *Stocks.* Ukraine's capability returns towards its baseline and keeps part of the
   response's capability; both sides lose ``war_damage`` of their capability in a round of
   fighting; Russia regenerates towards a baseline lowered by the sanctions stock, which
   grows with the sanctions imposed and decays.

Randomness is a pure function of (root key, run, round, slot): slot 0 is Russia's
choice, slot 1 the team's formation, slot 2 + i guarantor i's choice. Each uniform is
the SplitMix64 output (Steele, Lea & Flood 2014) for the counter
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
    all_profiles,
    build_game,
    escalation_risk,
    guarantor_payoffs,
    honouring_gain,
    russia_success_probability,
)
from ..solve import binary_games as bg
from ..solve.equilibrium import CrisisTables, escalation_value

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


def choice_probability(rationality: float, gain: np.ndarray) -> np.ndarray:
    """Logit choice: probability of the action whose payoff advantage is ``gain``."""
    return bg.sigmoid(rationality * gain)


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


def stage_game(base: Game, stocks: Stocks, cost_factor: np.ndarray) -> Game:
    """Today's crisis game: the base game with today's stocks and honouring costs."""
    return replace(base, ukraine_capability=stocks.ukraine_capability,
                   russia_capability=stocks.russia_capability,
                   honouring_cost=base.honouring_cost * cost_factor)


# ---------------------------------------------------------------------------------------
# Russia


def belief_means(alpha: np.ndarray, beta: np.ndarray, withdrawn: np.ndarray) -> np.ndarray:
    return np.where(withdrawn, 0.0, alpha / (alpha + beta))


def escalation_probability(rationality: float, tables: CrisisTables,
                           honour_belief: np.ndarray) -> np.ndarray:
    """Russia's logit choice on its exact expected payoff of escalating under its beliefs
    (:func:`deterrence.solve.equilibrium.escalation_value`)."""
    value = escalation_value(tables, bg.profile_probabilities(honour_belief))
    return choice_probability(rationality, value - tables.russia_refrain)


def update_beliefs(alpha: np.ndarray, beta: np.ndarray, params: DynamicsParameters,
                   observed: np.ndarray, actions: np.ndarray, troops: np.ndarray,
                   withdrawn: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Forget, then add this round's evidence. ``observed`` (R, 1): i decided alone."""
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
# Guarantors


def initial_attraction(game: Game, params: DynamicsParameters) -> np.ndarray:
    """A guarantor's attraction of honouring before any crisis: its exact expected gain
    from honouring, deciding alone, when the others honour at the prior reliability."""
    profiles = all_profiles(game.n)
    table = guarantor_payoffs(game, profiles)
    others = np.full((game.cells, game.n), params.belief_prior_reliability)
    return bg.expected_gains(bg.gains(table), others)


def honour_probability(rationality: float, attraction: np.ndarray,
                       withdrawn: np.ndarray) -> np.ndarray:
    return np.where(withdrawn, 0.0, choice_probability(rationality, attraction))


def honouring_gain_of(game: Game, actions: np.ndarray, i: int) -> np.ndarray:
    """``U_i(honour, a_-i) - U_i(abstain, a_-i)`` at each run's profile ``actions`` (R, n)
    for guarantor i: shape (R,)."""
    return honouring_gains(game, actions, [i])[:, 0]


def honouring_gains(game: Game, actions: np.ndarray, which=None) -> np.ndarray:
    """:func:`honouring_gain_of` for several guarantors at once (default: all): (R, len).

    Each profile's payoffs are computed element by element, so the numbers are the same
    whether one guarantor or all are asked for."""
    which = list(range(game.n)) if which is None else list(which)
    k = len(which)
    flipped = np.repeat(actions[:, None, :], 2 * k, axis=1)
    rows = np.arange(k)
    flipped[:, rows, which] = 1.0
    flipped[:, k + rows, which] = 0.0
    success = russia_success_probability(game, flipped)
    risk = escalation_risk(game, flipped)
    columns = [honouring_gain(game, i, success[:, j], success[:, k + j], risk[:, j],
                              risk[:, k + j]) for j, i in enumerate(which)]
    return np.stack(columns, axis=1) if columns else np.zeros((game.cells, 0))


def update_attraction(attraction: np.ndarray, params: DynamicsParameters,
                      decided_alone: np.ndarray, gain: np.ndarray,
                      readiness_cost: np.ndarray) -> np.ndarray:
    """``A <- A + (1 - m) [d (g - A) - readiness]``, ``d`` (R, 1) = 1 where Russia escalated
    and no team formed: experience moves the attraction towards the gain of honouring, and
    staying ready costs every round, so untested readiness erodes."""
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
    rationality: float
    defended_below: float
    key: int

    @classmethod
    def from_config(cls, scenario: Scenario, fmt: FormatSpec, seed: int | None = None,
                    rationality: float | None = None) -> Setup:
        return cls(base=build_game(scenario, fmt), params=scenario.dynamics,
                   shocks=tuple(scenario.shocks),
                   rationality=(scenario.analysis.rationality if rationality is None
                                else float(rationality)),
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


