"""The agent-based model in Mesa: the readable reference for one run.

``CrisisModel`` holds the environment (the commitments, shocks, the random stream and the
stage game of each round); the agents hold their own state and decide with the rules of
:mod:`deterrence.simulate.rules`, the same functions the vectorised engine applies to many
runs at once, so both produce the same numbers (tested to the last bit). It follows Mesa's
conventions: keyword parameters, one ``step()`` per crisis round, and a ``DataCollector``
with model reporters (``escalated``, ``team_formed``, ``outcome``, the stocks) and agent
reporters (each member's id, action and readiness: the attraction of being ready less that
of not), read with ``model.datacollector.get_model_vars_dataframe()`` and
``get_agent_vars_dataframe()``.

Mesa 3.3 keeps every model alive in ``mesa.Agent._ids`` (mesa issue 3179); :func:`run`
releases it after each run. Randomness comes from :func:`deterrence.simulate.rules.uniforms`,
not from ``model.rng``, so it is a pure function of (root key, run, round, slot).
"""

from __future__ import annotations

import mesa
import numpy as np

from ..game.config import load_catalogue, load_scenario
from ..game.payoffs import russia_success_probability
from . import rules as dyn


class RussiaAgent(mesa.Agent):
    """Escalates or refrains on its persistent private value of war; holds its evidence
    about each member, its capability, the sanctions stock and the war aims achieved."""

    def __init__(self, model: CrisisModel) -> None:
        super().__init__(model)
        n = model.base.n
        self.latent = None
        self.honoured = np.zeros((1, 2, n))
        self.abstained = np.zeros((1, 2, n))
        self.stocks = dyn.Stocks.initial(model.base)
        self.escalated = np.zeros(1, dtype=bool)

    def belief(self, game) -> np.ndarray:
        return dyn.belief_means(self.model.prior, self.model.setup.params, self.honoured,
                                self.abstained, game, self.model.away)

    def decide(self, game, draws: np.ndarray) -> None:
        model = self.model
        self.latent = dyn.advance_latent(self.latent, draws[:, dyn.SLOT_RUSSIA_TYPE],
                                         model.persistence)
        own_type = dyn.type_value(self.latent, game.russia_resolve_scale)
        noise = dyn.tremble(draws[:, dyn.SLOT_RUSSIA_NOISE], model.setup.params.
                            decision_noise_share, game.russia_resolve_scale)
        self.escalated = model.active & (dyn.escalation_gain(game, self.belief(game))
                                         - own_type > noise)

    def learn(self, team: np.ndarray, actions: np.ndarray) -> None:
        """Every response is seen in a round with escalation."""
        self.honoured, self.abstained = dyn.update_evidence(
            self.honoured, self.abstained, self.model.setup.params, self.escalated, team,
            actions)

    def forget(self, index: int) -> None:
        """An election: what Russia has seen of member ``index`` no longer counts."""
        self.honoured[:, :, index] = 0.0
        self.abstained[:, :, index] = 0.0

    def hear(self, index: int, belief: float, strength: float) -> None:
        self.honoured, self.abstained = dyn.add_evidence(self.honoured, self.abstained,
                                                         index, belief, strength)


class GuarantorAgent(mesa.Agent):
    """A member: honours or abstains when Russia escalates, on its persistent private cost
    type against its gain in the coordinated equilibrium (when the members coordinate) or
    its learned attractions (when it decides alone); learns by experience-weighted
    attraction."""

    def __init__(self, model: CrisisModel, index: int, start=None) -> None:
        super().__init__(model)
        self.index = index
        self.guarantor_id = model.base.guarantor_ids[index]
        self.commitment = dyn.Commitments.initial(model.base,
                                                  model.setup.membership).column(index)
        self.latent = None
        self.restart(start)
        self.action = np.zeros((1, 1))
        self.own_type = self.noise = np.zeros((1, 1))

    def _own(self, values: np.ndarray) -> np.ndarray:
        return values[:, self.index:self.index + 1]

    def restart(self, start=None) -> None:
        """Attractions as at the start (``start`` (A^h, A^a, N) of every member, default:
        from the equilibrium priors under today's commitments)."""
        if start is None:
            start = dyn.initial_attractions(self.model.committed, self.model.prior,
                                            self.model.setup.params)
        self.attraction_h, self.attraction_a, self.experience = (self._own(a) for a in start)

    def draw_type(self, game, draws: np.ndarray) -> None:
        model, i, n = self.model, self.index, self.model.base.n
        u = draws[:, dyn.SLOT_FIRST_MEMBER + i:dyn.SLOT_FIRST_MEMBER + i + 1]
        self.latent = dyn.advance_latent(self.latent, u, model.persistence)
        scale = self._own(game.resolve_scale)
        self.own_type = dyn.type_value(self.latent, scale)
        u = draws[:, dyn.SLOT_FIRST_MEMBER + n + i:dyn.SLOT_FIRST_MEMBER + n + i + 1]
        self.noise = dyn.tremble(u, model.setup.params.decision_noise_share, scale)

    def respond(self, game, team: np.ndarray, coordinated_gain: np.ndarray) -> None:
        """``coordinated_gain`` (1, n): the gains at the coordinated equilibrium where
        ``team``, else unused."""
        self.action = dyn.respond(self._own(game.engaged), self.commitment.away, team,
                                  self.model.russia.escalated, self._own(coordinated_gain),
                                  self.attraction_h, self.attraction_a, self.own_type,
                                  self.noise)

    def learn(self, game, actions: np.ndarray) -> None:
        escalated = self.model.russia.escalated
        chose_h = np.where(escalated[:, None], self.action > 0,
                           dyn.ready_posture(self.attraction_h, self.attraction_a,
                                             self.own_type, self.noise))
        payoff_h, payoff_a = dyn.strategy_payoffs(game, actions, escalated, [self.index])
        self.attraction_h, self.attraction_a, self.experience = dyn.update_attractions(
            self.attraction_h, self.attraction_a, self.experience, self.model.setup.params,
            payoff_h, payoff_a, chose_h)

    @property
    def readiness(self) -> float:
        """The attraction of being ready to honour less that of not."""
        return float((self.attraction_h - self.attraction_a)[0, 0])


class CrisisModel(mesa.Model):
    """One run of the repeated crisis under one format.

    Give either ``setup`` (a :class:`deterrence.simulate.rules.Setup`, as the engines
    share) or ``scenario`` (a file or bundled name) and optionally ``format_id`` (default:
    the scenario's own) and ``seed``; ``run_index`` picks the run's random numbers and
    ``cell`` the parameter point of ``setup.base`` it plays; ``collect`` False skips the
    data collector (the engines' comparisons read the series).
    """

    def __init__(self, *, setup: dyn.Setup | None = None, scenario: str | None = None,
                 format_id: str | None = None, seed: int | None = None, run_index: int = 0,
                 cell: int = 0, keep_series: bool = True,
                 collect: bool = True) -> None:
        if setup is None:
            if scenario is None:
                raise ValueError("CrisisModel needs a setup or a scenario")
            loaded = load_scenario(scenario)
            fmt = load_catalogue()[format_id or loaded.format]
            setup = dyn.Setup.from_config(loaded, fmt, seed)
        # our rules draw from rules.uniforms; Mesa's own generators get a fixed seed
        super().__init__(rng=int(setup.key % (2 ** 63)))
        self.setup = setup
        self.cell = int(cell)
        self.base = setup.base.take([self.cell])  # the parameter point this run plays
        self.run_index = int(run_index)
        self.round = 0  # our own counter (Model.steps is gone in Mesa 4)
        self.persistence = dyn.type_persistence(setup.params)
        self.committed = dyn.committed_game(
            self.base, dyn.Commitments.initial(self.base, setup.membership))
        self.prior = dyn.equilibrium_priors(self.committed)
        start = None
        if setup.start == "random":
            self.prior, start = dyn.random_start(setup.key, np.array([self.run_index]),
                                                 self.committed, setup.params)
        self.russia = RussiaAgent(self)
        self.ukraine = mesa.Agent(self)  # not strategic: its capability is a stock
        self.guarantors = [GuarantorAgent(self, i, start) for i in range(self.base.n)]
        self.tally = dyn.Tally.empty(1)
        self.series = dyn.Series() if keep_series else None
        self.collect = collect
        self.game = dyn.stage_game(self.committed, self.russia.stocks)
        self.team = np.zeros(1, dtype=bool)
        self.result = np.zeros(1, dtype=np.int8)
        self.datacollector = mesa.DataCollector(
            model_reporters={"escalated": lambda m: bool(m.russia.escalated[0]),
                             "team_formed": lambda m: bool(m.team[0]),
                             "outcome": lambda m: dyn.OUTCOME_NAMES[int(m.result[0])],
                             **{name: (lambda m, k=k: float(m.russia.stocks.stacked()[0, k]))
                                for k, name in enumerate(dyn.STOCK_NAMES)}},
            agent_reporters={"guarantor": lambda a: getattr(a, "guarantor_id", None),
                             "honoured": lambda a: (bool(a.action[0, 0])
                                                    if isinstance(a, GuarantorAgent) else None),
                             "readiness": lambda a: (a.readiness
                                                     if isinstance(a, GuarantorAgent) else None)})

    @property
    def active(self) -> np.ndarray:
        return self.tally.active

    @property
    def away(self) -> np.ndarray:
        """Members withdrawn or not bound by the format: (1, n)."""
        return self._commitments().away

    def _commitments(self) -> dyn.Commitments:
        if not self.guarantors:
            return dyn.Commitments.initial(self.base, self.setup.membership)
        return dyn.Commitments.joined([g.commitment for g in self.guarantors])

    def _column(self, attribute: str) -> np.ndarray:
        columns = [getattr(g, attribute) for g in self.guarantors]
        return np.concatenate(columns, axis=1) if columns else np.zeros((1, 0))

    def _apply_shocks(self) -> None:
        changed, restarted = False, []
        for shock in self.setup.shocks_at(self.round):
            if shock.kind == "format_switch":  # every member signs up to the new format
                switched, membership = self.setup.switched[shock.format]
                self.base = switched.take([self.cell])
                for g in self.guarantors:
                    g.commitment.switch(g._own(self.base.troops_on_ground),
                                        membership[g.index:g.index + 1])
                changed, restarted = True, list(range(self.base.n))
                continue
            for i in dyn.shock_targets(shock.guarantor, self.base.guarantor_ids):
                if shock.kind in dyn.COMMITMENT_SHOCKS:
                    commitment = self.guarantors[i].commitment
                    dyn.change_commitment(commitment, shock, 0)
                    changed = True
                elif shock.kind == "election":
                    self.russia.forget(i)
                    restarted.append(i)
                else:  # belief
                    self.russia.hear(i, shock.belief, shock.strength)
        if changed:
            self.committed = dyn.committed_game(self.base, self._commitments())
            self.prior = dyn.equilibrium_priors(self.committed)
        for i in restarted:
            self.guarantors[i].restart()

    def step(self) -> None:
        self._apply_shocks()
        n, russia = self.base.n, self.russia
        active = self.active
        game = self.game = dyn.stage_game(self.committed, russia.stocks)
        draws = dyn.uniforms(self.setup.key, np.array([self.run_index]), self.round,
                             dyn.slot_count(n))
        russia.decide(game, draws)
        self.team = russia.escalated & (draws[:, dyn.SLOT_TEAM]
                                        < self.base.coordination_probability)
        # the members coordinate: they play the coordinated equilibrium of today's game
        coordinated_gain = (dyn.coordinated_gains(game) if self.team[0]
                            else np.zeros((1, n)))
        for guarantor in self.guarantors:
            guarantor.draw_type(game, draws)
            guarantor.respond(game, self.team, coordinated_gain)
        actions = self._column("action")
        success = russia_success_probability(game, actions[:, None, :])[:, 0]
        succeeded = draws[:, dyn.SLOT_SUCCESS] < success
        self.result = dyn.round_outcome(russia.escalated, success, self.setup.defended_below,
                                        active)

        for guarantor in self.guarantors:
            guarantor.learn(game, actions)
        russia.learn(self.team, actions)
        stocks = dyn.update_stocks(russia.stocks, self.base, self.setup.params,
                                   russia.escalated, actions, game)
        russia.stocks, state = dyn.consequences(stocks, self.setup.params, russia.escalated,
                                                succeeded, draws[:, dyn.SLOT_SETTLEMENT])
        self.ukraine.capability = float(russia.stocks.ukraine_capability[0])
        self.tally.add(self.round, active, russia.escalated, self.result, state)
        if self.series is not None:
            self.series.record(russia.escalated, self.team, actions, self.result,
                               dyn.mixed_belief(game, russia.belief(game)),
                               self._column("attraction_h") - self._column("attraction_a"),
                               russia.stocks)
        if self.collect:
            self.datacollector.collect(self)
        self.round += 1


def run(setup: dyn.Setup, run_index: int, steps: int, keep_series: bool = True,
        cell: int = 0):
    """One run with the Mesa model, playing cell ``cell`` of ``setup.base``:
    (summary, series); releases Mesa's reference to the model."""
    model = CrisisModel(setup=setup, run_index=run_index, keep_series=keep_series, cell=cell,
                        collect=False)
    try:
        for _ in range(steps):
            model.step()
        return (model.tally.summary(setup.params.round_months),
                model.series.arrays() if keep_series else None)
    finally:
        release(model)


def release(model: CrisisModel) -> None:
    """Drop Mesa's reference to a finished model (mesa issue 3179, Mesa <= 3.3.1)."""
    registry = getattr(mesa.Agent, "_ids", None)
    if registry is not None:
        registry.pop(model, None)
