r"""Rules of the repeated crisis: types, choices, beliefs, learning, stocks, consequences.

The only home of the simulation rules. Both engines call these functions — the Mesa model
(:mod:`deterrence.simulate.mesa_model`) with arrays of one run, the vectorised engine
(:mod:`deterrence.simulate.engine`) with arrays of many — so both evaluate the same
expressions in the same order. Arrays have the run axis first; per-member arrays are
(R, n). Payoffs and expectations are those of :mod:`deterrence.game.payoffs`, the
equilibria those of :mod:`deterrence.solve.equilibrium`; nothing here enumerates the 2^n
response profiles. docs/model.md §4 states the equations; in short, one round t:

1. *Shocks* scheduled for t change the commitments (:class:`Commitments`): a member
   leaves, deploys or recalls troops, its honouring cost or bindingness changes, an
   election resets what is known about it, or Russia receives evidence about it. Whenever
   the commitments change, Russia's prior about each member is re-read from them: the
   member's honouring probability in the crisis game's equilibrium (deciding alone, and
   coordinating) under today's commitments (:func:`equilibrium_priors`).
2. *Types.* Russia's private value of war ``theta_R`` and each member's private cost of
   honouring ``theta_i`` persist over the run and drift: a latent standard normal
   ``z <- rho z + sqrt(1 - rho^2) xi`` (``rho`` from ``type_half_life_years``), mapped to
   the crisis game's logistic distribution, ``theta = sigma logit(Phi(z))``. Every round's
   type thus has exactly the distribution of the one-shot game.
3. *Russia* escalates iff ``V - U_R(refrain) - theta_R > epsilon_R``, where ``V = p
   V(b_c) + (1 - p) V(b_a)`` is its expected payoff of war against members honouring
   independently with its belief means ``b_c`` (the members coordinate, probability
   ``p``) and ``b_a`` (they decide alone), and ``epsilon`` a tremble of scale
   ``decision_noise_share * sigma`` (none by default).
4. *Response.* With probability ``p`` the members coordinate: member i honours iff
   ``G_i(q_c) - theta_i > epsilon_i``, ``q_c`` the coordinated equilibrium of today's
   game. Otherwise it decides alone on its learned attraction: iff ``A_i^h - A_i^a -
   theta_i > epsilon_i``. An engaged member (troops on the ground) honours, an absent one
   (withdrawn) abstains.
5. *Outcome.* The offensive succeeds with probability ``P(a)`` of the realised profile.
   A success moves Russia's status quo ``war_aims_gain_per_success`` of the way to its war
   aims and takes that share of Ukraine's capability; Ukraine is defeated once the share
   of the war aims achieved reaches ``defeat_at_war_aims_share``; a failure ends in a
   settlement with probability ``settlement_probability_after_failure``. Defeat and
   settlement end the run.
6. *Learning.* Russia's evidence (pseudo-counts of honouring and abstaining, per member
   and per branch) shrinks by ``belief_memory`` and, in a round with escalation, gains the
   responses it saw in the branch played (Bayes' rule for a Beta prior). Members learn by
   experience-weighted attraction exactly as Camerer & Ho (1999) define it
   (:func:`update_attractions`), their strategies being "be ready to honour" (which costs
   ``readiness_cost`` every round) and "not".
7. *Stocks*: capabilities and the sanctions stock (:func:`update_stocks`).

Randomness is a pure function of (root key, run, round, slot) (:func:`uniforms`): slot 0
Russia's type innovation, 1 the coordination, 2 the offensive's success, 3 the settlement,
4 Russia's tremble, ``5 + i`` member i's type innovation and ``5 + n + i`` its tremble.
Each uniform is the SplitMix64 output (Steele, Lea & Flood 2014) for the counter
``run * 2^28 + round * 2^8 + slot``, so a run's numbers depend neither on the engine nor
on how runs are grouped.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any

import numpy as np
from scipy.special import log_ndtr, ndtri

from ..game.config import (
    ConfigError,
    DynamicsParameters,
    FormatSpec,
    Scenario,
    Shock,
    load_catalogue,
    member_ids,
)
from ..game.payoffs import (
    ABANDONED,
    DETERRED,
    Game,
    build_game,
    capability_with_troops,
    expectation,
    guarantor_payoffs,
    honouring_gain,
    outcome,
    prepare_quadrature,
    russia_escalation_value,
    russia_refrain_payoff,
)
from ..solve.equilibrium import CHUNK_CELLS, equilibrium_set, select

SLOT_RUSSIA_TYPE, SLOT_TEAM, SLOT_SUCCESS, SLOT_SETTLEMENT, SLOT_RUSSIA_NOISE = range(5)
SLOT_FIRST_MEMBER = 5
MAX_RUNS, MAX_STEPS, MAX_SLOTS = 1 << 36, 1 << 20, 1 << 8
#: Branches of Russia's evidence about a member: when the members decide alone, and when
#: they coordinate.
ALONE, COORDINATED = 0, 1
#: Where a run's learning starts (:attr:`Setup.start`): Russia's prior about each member
#: and the members' initial attractions at the equilibrium of the crisis game, or drawn at
#: random per run.
STARTS = ("equilibrium", "random")
#: The random starts draw from the root key xor this salt (round 0, slots 0 .. 2n - 1), a
#: stream of their own, so a run with a random start has the same round-by-round numbers as
#: with the equilibrium start.
START_SALT = 0x5EED0F5A4AB1E
#: How a run stands after a round.
ONGOING, DEFEATED, SETTLED = 0, 1, 2
END_STATES = ("ongoing", "defeated", "settled")
#: Outcomes of a round: the crisis game's three, and "ended" for a round after the run
#: ended.
OUTCOME_NAMES = ("deterred", "defended", "abandoned", "ended")
ENDED = 3

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
#: Half the spacing of the uniforms: added to one, it lies strictly inside (0, 1), so its
#: normal and logistic quantiles are finite.
_HALF_STEP = 2.0 ** -54


def slot_count(members: int) -> int:
    return SLOT_FIRST_MEMBER + 2 * members


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
# Private types and trembles


def type_persistence(params: DynamicsParameters) -> float:
    """``rho``: the latent types' correlation from one round to the next, so that it is 1/2
    over ``type_half_life_years``."""
    return 0.5 ** (params.round_months / 12.0 / params.type_half_life_years)


def normal_quantile(u: np.ndarray) -> np.ndarray:
    return ndtri(u + _HALF_STEP)


def advance_latent(latent: np.ndarray | None, u: np.ndarray, persistence: float):
    """The latent standard normal types after this round's innovation (from uniforms
    ``u``): drawn afresh in the first round (``latent`` None), else AR(1)."""
    innovation = normal_quantile(u)
    if latent is None:
        return innovation
    return persistence * latent + math.sqrt(1.0 - persistence * persistence) * innovation


def type_value(latent: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """``sigma logit(Phi(z))``: logistic with scale ``sigma`` for a standard normal z."""
    return scale * (log_ndtr(latent) - log_ndtr(-latent))


def tremble(u: np.ndarray, share: float, scale: np.ndarray) -> np.ndarray:
    """A logistic tremble of scale ``share * scale`` (0 for share 0)."""
    if share == 0:  # no tremble: 0 (what the product gives, without its logarithms)
        return np.zeros(np.broadcast_shapes(np.shape(u), np.shape(scale)))
    v = u + _HALF_STEP
    return share * scale * (np.log(v) - np.log1p(-v))


# ---------------------------------------------------------------------------------------
# Commitments, the game of the day and stocks


@dataclass
class Commitments:
    """What the shocks so far have made of each member's commitment, (R, n) arrays."""

    troops: np.ndarray          # 1 where the member has troops in Ukraine
    cost_factor: np.ndarray     # multiplies its honouring cost
    rebound: np.ndarray         # bool: its bindingness was changed to ``bindingness``
    bindingness: np.ndarray
    absent: np.ndarray          # bool: it has withdrawn
    member: np.ndarray          # bool: the format binds it

    @classmethod
    def initial(cls, base: Game, membership: np.ndarray | None = None) -> Commitments:
        shape = (base.cells, base.n)
        member = np.ones(shape, dtype=bool) if membership is None else np.broadcast_to(
            membership, shape).copy()
        return cls(base.troops_on_ground.copy(), np.ones(shape), np.zeros(shape, dtype=bool),
                   np.zeros(shape), np.zeros(shape, dtype=bool), member)

    @property
    def away(self) -> np.ndarray:
        """Withdrawn, or not bound by the format: a bystander."""
        return self.absent | ~self.member

    def switch(self, troops: np.ndarray, membership: np.ndarray) -> None:
        """A new format, with its ``troops`` on the ground and ``membership``, in place: the
        bindingness is the format's again; cost changes and withdrawals stay."""
        self.member[:] = membership
        self.troops[:] = troops
        self.rebound[:] = False

    def column(self, i: int) -> Commitments:
        return Commitments(*(getattr(self, f)[:, i:i + 1] for f in self.__dataclass_fields__))

    @classmethod
    def joined(cls, columns: list[Commitments]) -> Commitments:
        return cls(*(np.concatenate([getattr(c, f) for c in columns], axis=1)
                     for f in cls.__dataclass_fields__))


def committed_game(base: Game, c: Commitments) -> Game:
    """The crisis game under today's commitments (before today's stocks). A member that is
    away (withdrawn, or not bound by the format) is a bystander: it adds nothing, costs
    nothing, has no troops and no stake, so it changes nothing for anyone."""
    present = np.where(c.away, 0.0, 1.0)
    troops = c.troops * present
    reneging = np.where(c.rebound, c.bindingness * base.audience_cost, base.reneging_cost)
    added = capability_with_troops(base.prompt_capability, base.response_timeliness, troops)
    return replace(base, troops_on_ground=troops,
                   added_capability=added * present,
                   decisive_probability=base.decisive_probability * present,
                   sanctions_weight=base.sanctions_weight * present,
                   escalation_probability=base.escalation_probability * present,
                   stake=base.stake * present,
                   honouring_cost=base.honouring_cost * c.cost_factor * present,
                   reneging_cost=reneging * present,
                   catastrophe_cost=base.catastrophe_cost * present,
                   readiness_cost=base.readiness_cost * present)


@dataclass
class Stocks:
    """Stocks of each run, shape (R,)."""

    ukraine_capability: np.ndarray
    russia_capability: np.ndarray
    sanctions: np.ndarray
    war_aims_achieved: np.ndarray  # share of Russia's war aims it has achieved

    @classmethod
    def initial(cls, base: Game) -> Stocks:
        return cls(base.ukraine_capability.copy(), base.russia_capability.copy(),
                   np.zeros(base.cells), np.zeros(base.cells))

    def stacked(self) -> np.ndarray:
        return np.stack([self.ukraine_capability, self.russia_capability, self.sanctions,
                         self.war_aims_achieved], axis=1)


STOCK_NAMES = ("ukraine_capability", "russia_capability", "sanctions_stock",
               "war_aims_achieved")


def stage_game(committed: Game, stocks: Stocks) -> Game:
    """Today's crisis game: the committed game with today's capabilities, and Russia's
    status quo raised by the war aims it has achieved."""
    achieved = stocks.war_aims_achieved
    status_quo = ((1.0 - achieved) * committed.status_quo_value
                  + achieved * committed.war_aims_value)
    return replace(committed, ukraine_capability=stocks.ukraine_capability,
                   russia_capability=stocks.russia_capability, status_quo_value=status_quo)


def update_stocks(stocks: Stocks, base: Game, params: DynamicsParameters,
                  escalated: np.ndarray, actions: np.ndarray, game: Game) -> Stocks:
    """Capabilities and sanctions after the round (``game`` is today's: what honouring
    added and imposed)."""
    fought = escalated.astype(np.float64)
    added = (actions * game.added_capability).sum(axis=1)
    sanctions_imposed = (actions * game.sanctions_weight).sum(axis=1)
    ukraine = stocks.ukraine_capability
    baseline = base.ukraine_capability * (1.0 - stocks.war_aims_achieved)
    ukraine = (ukraine + params.ukraine_recovery_rate * (baseline - ukraine)
               + fought * (params.aid_persistence * added - params.war_damage * ukraine))
    russia = stocks.russia_capability
    target = base.russia_capability * np.maximum(0.0, 1.0 - params.sanctions_drag
                                                 * stocks.sanctions)
    russia = (russia + params.russia_regeneration_rate * (target - russia)
              - fought * params.war_damage * russia)
    sanctions = (1.0 - params.sanctions_decay) * stocks.sanctions + fought * sanctions_imposed
    # a rate + war_damage of 1 (the most the schema allows) leaves (1 - rate - war_damage)
    # = 0 of the old capability, which rounding can take a hair below 0
    return Stocks(np.maximum(ukraine, 0.0), np.maximum(russia, 0.0), sanctions,
                  stocks.war_aims_achieved)


def consequences(stocks: Stocks, params: DynamicsParameters, escalated: np.ndarray,
                 succeeded: np.ndarray, settle_draw: np.ndarray) -> tuple[Stocks, np.ndarray]:
    """A success achieves part of the war aims and takes that share of Ukraine's
    capability; the run's state after the round (:data:`END_STATES` codes)."""
    gain = params.war_aims_gain_per_success
    won = escalated & succeeded
    achieved = np.where(won, stocks.war_aims_achieved + gain * (1.0 - stocks.war_aims_achieved),
                        stocks.war_aims_achieved)
    ukraine = np.where(won, stocks.ukraine_capability * (1.0 - gain), stocks.ukraine_capability)
    settled = escalated & ~succeeded & (settle_draw < params.settlement_probability_after_failure)
    state = np.where(achieved >= params.defeat_at_war_aims_share, DEFEATED,
                     np.where(settled, SETTLED, ONGOING)).astype(np.int8)
    return replace(stocks, ukraine_capability=ukraine, war_aims_achieved=achieved), state


# ---------------------------------------------------------------------------------------
# Equilibrium priors


def equilibrium_priors(game: Game) -> np.ndarray:
    """Each member's honouring probability in the selected equilibria of ``game``, deciding
    alone and coordinating: (C, 2, n) (:data:`ALONE`, :data:`COORDINATED`), solved in
    chunks of at most ``CHUNK_CELLS`` cells (each cell's equilibria depend on it alone)."""
    parts = []
    for start in range(0, game.cells, CHUNK_CELLS):
        part = game.take(slice(start, start + CHUNK_CELLS))
        chosen = select(part, equilibrium_set(part))
        parts.append(np.stack([chosen.q_alone, chosen.q_coordinated], axis=1))
    return np.concatenate(parts) if parts else np.zeros((0, 2, game.n))


def coordinated_gains(game: Game) -> np.ndarray:
    """``G_i(q_c)``: each member's gain of honouring in the coordinated equilibrium of each
    cell of ``game`` (C, n): a member coordinating honours iff its cost type is below it."""
    q = equilibrium_priors(game)[:, COORDINATED]
    return honouring_gain(game, expectation(game, q))


# ---------------------------------------------------------------------------------------
# Russia


def belief_means(prior: np.ndarray, params: DynamicsParameters, honoured: np.ndarray,
                 abstained: np.ndarray, game: Game, absent: np.ndarray) -> np.ndarray:
    """Russia's Beta belief means (R, 2, n): ``(s_0 r + h) / (s_0 + h + f)``; 1 for an
    engaged member (its garrison fights), 0 for an absent one."""
    s0 = params.belief_prior_strength
    mean = (s0 * prior + honoured) / (s0 + honoured + abstained)
    mean = np.where(game.engaged[:, None, :], 1.0, mean)
    return np.where(absent[:, None, :], 0.0, mean)


def escalation_gain(game: Game, belief: np.ndarray) -> np.ndarray:
    """``V - U_R(refrain)``, ``V = p V(b_c) + (1 - p) V(b_a)``: (R,)."""
    rule = prepare_quadrature(game)  # the same game in both branches: one rule
    alone = russia_escalation_value(game, expectation(game, belief[:, ALONE], rule))
    p = game.coordination_probability
    # without coordination the second term is 0 * (a finite value): skip computing it
    together = (russia_escalation_value(game, expectation(game, belief[:, COORDINATED], rule))
                if np.any(p > 0) else alone)
    return p * together + (1.0 - p) * alone - russia_refrain_payoff(game)


def update_evidence(honoured: np.ndarray, abstained: np.ndarray, params: DynamicsParameters,
                    escalated: np.ndarray, team: np.ndarray, actions: np.ndarray):
    """Forget, then add the responses seen in the branch played (rounds with escalation):
    ``h <- mu h + e a``, ``f <- mu f + e (1 - a)``."""
    mu = params.belief_memory
    seen = np.stack([escalated & ~team, escalated & team], axis=1)[:, :, None]
    a = actions[:, None, :]
    return mu * honoured + seen * a, mu * abstained + seen * (1.0 - a)


def add_evidence(honoured, abstained, i: int, belief: float, strength: float):
    """A belief shock: ``strength`` pseudo-observations of member i at rate ``belief``."""
    honoured, abstained = honoured.copy(), abstained.copy()
    honoured[:, :, i] += strength * belief
    abstained[:, :, i] += strength * (1.0 - belief)
    return honoured, abstained


# ---------------------------------------------------------------------------------------
# Members


def initial_attractions(game: Game, prior: np.ndarray, params: DynamicsParameters):
    """EWA's start: ``A^h(0) = G_i(q_a)``, the member's expected gain of honouring in the
    equilibrium played alone, ``A^a(0) = 0``, ``N(0)`` = ``initial_experience``."""
    gain = honouring_gain(game, expectation(game, prior[:, ALONE]))
    return gain, np.zeros_like(gain), np.full(gain.shape, params.initial_experience)


def random_start(key: int, run_ids: np.ndarray, committed: Game, params: DynamicsParameters):
    """A random start for each run: Russia's prior means about each member, in both
    branches, uniform on (0, 1), and each member's attractions as if the others honoured
    with the prior it was given for deciding alone (:func:`initial_attractions`):
    (prior (R, 2, n), (A^h, A^a, N))."""
    n = committed.n
    u = uniforms(key ^ START_SALT, run_ids, 0, 2 * n) + _HALF_STEP
    prior = u.reshape(run_ids.size, 2, n)
    return prior, initial_attractions(committed, prior, params)


def respond(engaged, absent, team: np.ndarray, escalated: np.ndarray, coordinated_gain,
            attraction_h, attraction_a, member_type, noise) -> np.ndarray:
    """Each member's action (R, n) float 0/1: honours iff its gain (coordinated: at the
    coordinated equilibrium; alone: its attraction difference) less its cost type exceeds
    its tremble; engaged members honour, absent ones abstain; 0 without escalation."""
    gain = np.where(team[:, None], coordinated_gain, attraction_h - attraction_a)
    ready = gain - member_type > noise
    honours = np.where(absent, False, engaged | ready)
    return np.logical_and(honours, escalated[:, None]).astype(np.float64)


def ready_posture(attraction_h, attraction_a, member_type, noise) -> np.ndarray:
    """Whether each member's policy is to honour (what it would do alone): (R, n) bool."""
    return attraction_h - attraction_a - member_type > noise


def strategy_payoffs(game: Game, actions: np.ndarray, escalated: np.ndarray, which=None):
    """Each member's payoff of being ready to honour and of not, given the others' realised
    actions, for members ``which`` (default all), (R, len) each: ``U_i(honour, a_-i) -
    readiness_i`` and ``U_i(abstain, a_-i)`` in a round with escalation, ``-readiness_i``
    and 0 without. Each profile's payoffs are computed element by element, so the numbers
    are the same whether one member or all are asked for."""
    which = list(range(game.n)) if which is None else list(which)
    k = len(which)
    if k == 0:
        empty = np.zeros((game.cells, 0))
        return empty, empty
    # without escalation: -readiness_i and 0, so only the rounds with one need the payoffs
    honour = -game.readiness_cost[:, which]
    abstain = np.zeros_like(honour)
    fought = np.flatnonzero(escalated)
    if fought.size == 0:
        return honour, abstain
    rows = np.arange(k)
    flipped = np.repeat(actions[fought, None, :], 2 * k, axis=1)
    flipped[:, rows, which] = 1.0
    flipped[:, k + rows, which] = 0.0
    payoffs = guarantor_payoffs(game.take(fought), flipped)  # (F, 2k, n)
    honour[fought] = payoffs[:, rows, which] - game.readiness_cost[fought][:, which]
    abstain[fought] = payoffs[:, k + rows, which]
    return honour, abstain


def update_attractions(attraction_h, attraction_a, experience, params: DynamicsParameters,
                       payoff_h, payoff_a, chose_h):
    """Experience-weighted attraction (Camerer & Ho 1999, eqs. 2.1-2.2)::

        N(t)   = rho N(t-1) + 1
        A^j(t) = [phi N(t-1) A^j(t-1) + (delta + (1 - delta) I(j played)) pi^j(t)] / N(t)
    """
    phi, delta = params.attraction_decay, params.foregone_payoff_weight
    new_experience = params.experience_decay * experience + 1.0
    weight_h = np.where(chose_h, 1.0, delta)
    weight_a = np.where(chose_h, delta, 1.0)
    kept = phi * experience
    attraction_h = (kept * attraction_h + weight_h * payoff_h) / new_experience
    attraction_a = (kept * attraction_a + weight_a * payoff_a) / new_experience
    return attraction_h, attraction_a, new_experience


# ---------------------------------------------------------------------------------------
# Shocks and summaries


def shock_targets(guarantor: str, members: tuple[str, ...]) -> list[int]:
    """Member indices a shock applies to ('*' = all; a non-member is not affected)."""
    if guarantor == "*":
        return list(range(len(members)))
    return [members.index(guarantor)] if guarantor in members else []


#: Shocks that change the commitments (and so Russia's prior).
COMMITMENT_SHOCKS = {"withdraw", "deploy", "recall", "cost_change", "bindingness_change"}


def change_commitment(c: Commitments, shock: Shock, i: int) -> None:
    """Apply a commitment shock to member i, in place."""
    if shock.kind == "withdraw":
        c.absent[:, i] = True
    elif shock.kind == "deploy":
        c.troops[:, i] = 1.0
    elif shock.kind == "recall":
        c.troops[:, i] = 0.0
    elif shock.kind == "cost_change":
        c.cost_factor[:, i] *= shock.factor
    else:  # bindingness_change
        c.rebound[:, i] = True
        c.bindingness[:, i] = shock.bindingness


@dataclass
class Tally:
    """Per-run counters from which the summaries are computed, shape (R,)."""

    rounds: np.ndarray            # rounds played before the run ended
    escalations: np.ndarray
    abandoned: np.ndarray
    deterred: np.ndarray
    first_escalation: np.ndarray  # round of the first escalation, -1 if none
    end_state: np.ndarray         # END_STATES code
    end_round: np.ndarray         # round in which the run ended, -1 if it did not

    @classmethod
    def empty(cls, runs: int) -> Tally:
        zeros = np.zeros(runs, dtype=np.int64)
        return cls(zeros, zeros.copy(), zeros.copy(), zeros.copy(),
                   np.full(runs, -1, dtype=np.int64), np.zeros(runs, dtype=np.int8),
                   np.full(runs, -1, dtype=np.int64))

    @property
    def active(self) -> np.ndarray:
        return self.end_state == ONGOING

    def add(self, step: int, active: np.ndarray, escalated: np.ndarray, result: np.ndarray,
            state: np.ndarray, rows: np.ndarray | None = None) -> None:
        """Count a round of the runs ``rows`` (default: all, in order)."""
        at = slice(None) if rows is None else rows
        self.rounds[at] += active
        self.escalations[at] += escalated
        self.abandoned[at] += result == ABANDONED
        self.deterred[at] += active & (result == DETERRED)
        first = self.first_escalation[at]
        self.first_escalation[at] = np.where((first < 0) & escalated, step, first)
        ends = active & (state != ONGOING)
        self.end_round[at] = np.where(ends, step, self.end_round[at])
        self.end_state[at] = np.where(ends, state, self.end_state[at])

    def summary(self, round_months: float) -> dict[str, np.ndarray]:
        """Per run: the shares of its rounds with escalation and deterred, escalations per
        year, P(abandoned | escalation) (NaN without any escalation), the rounds of the
        first escalation and of the end, and how it ended."""
        with np.errstate(invalid="ignore", divide="ignore"):
            abandoned_share = np.where(self.escalations > 0,
                                       self.abandoned / self.escalations, np.nan)
        years = self.rounds * (round_months / 12.0)
        return {"escalation_frequency": self.escalations / self.rounds,
                "escalations_per_year": self.escalations / years,
                "abandoned_given_escalation": abandoned_share,
                "deterred_share": self.deterred / self.rounds,
                "first_escalation": self.first_escalation,
                "end_state": self.end_state,
                "end_round": self.end_round}


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
    """Everything a run needs besides its index: shared by both engines.

    ``base`` is the game of the scenario's format, one cell per parameter point, over the
    guarantors bound by it or by any format a ``format_switch`` shock switches to
    (``membership`` marks the format's own); ``switched`` holds, per such format, its game
    over the same guarantors and cells and its membership. ``start`` (:data:`STARTS`) says
    where the runs' learning starts; a commitment shock re-reads the priors from the
    equilibrium whatever the start."""

    base: Game
    params: DynamicsParameters
    shocks: tuple[Shock, ...]
    defended_below: float
    key: int
    membership: np.ndarray | None = None
    switched: dict[str, tuple[Game, np.ndarray]] = field(default_factory=dict)
    start: str = "equilibrium"     # one of STARTS

    @classmethod
    def from_config(cls, scenario: Scenario, fmt: FormatSpec, seed: int | None = None,
                    overrides: Mapping[str, Any] | None = None,
                    catalogue: Mapping[str, FormatSpec] | None = None) -> Setup:
        """The set-up of ``scenario`` under ``fmt``; ``overrides`` (parameter paths to
        arrays, as :func:`~deterrence.game.payoffs.build_game` takes) give the cells. The
        formats of ``format_switch`` shocks are looked up in ``catalogue`` (default: the
        bundled one) and keep their own values: the ``format.*`` overrides are ``fmt``'s."""
        overrides = dict(overrides or {})
        targets = {}
        for k, shock in enumerate(scenario.shocks):
            if shock.kind == "format_switch" and shock.format not in targets:
                if catalogue is None:
                    catalogue = load_catalogue()
                if shock.format not in catalogue:
                    raise ConfigError(f"key 'shocks.{k}.format' = {shock.format!r}: not a "
                                      f"format; allowed: {', '.join(sorted(catalogue))}")
                targets[shock.format] = catalogue[shock.format]
        base = build_game(scenario, fmt, overrides)
        membership = switched = None
        if targets:
            bound = {*base.guarantor_ids}
            for other in targets.values():
                bound |= set(member_ids(other, scenario))
            ids = tuple(g.id for g in scenario.guarantors if g.id in bound)
            own = {k: v for k, v in overrides.items() if not k.startswith("format.")}
            membership = np.array([gid in base.guarantor_ids for gid in ids])
            switched = {}
            for fid, other in targets.items():
                game = build_game(scenario, other, own)
                if game.cells != base.cells:
                    game = game.take(np.zeros(base.cells, dtype=np.int64))
                switched[fid] = (embed(game, ids),
                                 np.array([gid in game.guarantor_ids for gid in ids]))
            base = embed(base, ids)
        return cls(base=base, params=scenario.dynamics, shocks=tuple(scenario.shocks),
                   defended_below=scenario.analysis.defended_below_russia_success,
                   key=root_key(scenario.seed if seed is None else seed),
                   membership=membership, switched=switched or {})

    def shocks_at(self, step: int) -> list[Shock]:
        return [s for s in self.shocks if s.step == step]


def embed(game: Game, ids: tuple[str, ...]) -> Game:
    """``game`` over the guarantors ``ids`` (a superset of its own, in order): a guarantor
    it does not bind has zeros everywhere (a resolve scale of 1), a bystander."""
    if tuple(ids) == game.guarantor_ids:
        return game
    columns = [game.guarantor_ids.index(gid) if gid in game.guarantor_ids else -1
               for gid in ids]
    values = {}
    for f in fields(game):
        value = getattr(game, f.name)
        if f.name == "guarantor_ids":
            value = tuple(ids)
        elif value.ndim == 2:
            filler = 1.0 if f.name == "resolve_scale" else 0.0
            value = np.stack([value[:, j] if j >= 0 else np.full(game.cells, filler)
                              for j in columns], axis=1)
        values[f.name] = value
    return Game(**values)


@dataclass
class Series:
    """Per-step records of each run (only kept on request)."""

    escalated: list[np.ndarray] = field(default_factory=list)      # (R,) bool per step
    team: list[np.ndarray] = field(default_factory=list)           # (R,) bool
    actions: list[np.ndarray] = field(default_factory=list)        # (R, n) int8
    outcome: list[np.ndarray] = field(default_factory=list)        # (R,) int8
    belief: list[np.ndarray] = field(default_factory=list)         # (R, n) Russia's b_i
    attraction: list[np.ndarray] = field(default_factory=list)     # (R, n) A^h - A^a
    stocks: list[np.ndarray] = field(default_factory=list)         # (R, 4)

    def record(self, escalated, team, actions, result, belief, attraction, stocks: Stocks):
        """Append copies: the caller may change its arrays in place afterwards."""
        self.escalated.append(escalated.copy())
        self.team.append(team.copy())
        self.actions.append(actions.astype(np.int8))
        self.outcome.append(result.copy())
        self.belief.append(belief.copy())
        self.attraction.append(attraction.copy())
        self.stocks.append(stocks.stacked())

    def arrays(self) -> dict[str, np.ndarray]:
        """Each record stacked with the step as axis 1: (R, T, ...)."""
        return {name: np.stack(getattr(self, name), axis=1) for name in self.__dataclass_fields__}


def round_outcome(escalated, success_probability, defended_below, active) -> np.ndarray:
    """The round's :data:`OUTCOME_NAMES` code: the crisis game's outcome, or ended."""
    return np.where(active, outcome(escalated, success_probability, defended_below),
                    ENDED).astype(np.int8)


def mixed_belief(game: Game, belief: np.ndarray) -> np.ndarray:
    """Russia's belief that each member honours, over both branches: (R, n)."""
    p = game.coordination_probability[:, None]
    return p * belief[:, COORDINATED] + (1.0 - p) * belief[:, ALONE]
