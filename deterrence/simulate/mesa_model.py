"""The agent-based model in Mesa: the readable reference for one run.

``CrisisModel`` holds the environment (the format, shocks, the random stream) and the
stage game of each round; the agents hold their own state and decide with the rules of
:mod:`deterrence.simulate.rules`, the same functions the vectorised engine applies to many
runs at once, so both produce the same numbers (tested to the last bit).

Mesa 3.3 keeps every model alive in ``mesa.Agent._ids`` (mesa issue 3179); :func:`run`
releases it after each run. Randomness comes from :func:`deterrence.simulate.rules.uniforms`,
not from ``model.rng``, so it is a pure function of (root key, run, round, slot).
"""

from __future__ import annotations

import mesa
import numpy as np

from ..game.payoffs import Game, outcome, russia_success_probability
from . import rules as dyn


class RussiaAgent(mesa.Agent):
    """Escalates or refrains; holds beliefs about each member, its capability and the
    sanctions stock."""

    def __init__(self, model: CrisisModel) -> None:
        super().__init__(model)
        n = model.base.n
        self.alpha, self.beta = dyn.prior_beliefs(model.setup.params, (1, n))
        self.capability = model.base.russia_capability.copy()
        self.sanctions = np.zeros(1)
        self.escalated = np.zeros(1, dtype=bool)

    def decide(self, game: Game, withdrawn: np.ndarray, draw: np.ndarray) -> None:
        belief = dyn.belief_means(self.alpha, self.beta, withdrawn)
        self.escalated = draw < dyn.escalation_probability(game, belief)

    def learn(self, escalated: np.ndarray, actions: np.ndarray,
              withdrawn: np.ndarray) -> None:
        """Every response is seen in a round with escalation."""
        self.alpha, self.beta = dyn.update_beliefs(
            self.alpha, self.beta, self.model.setup.params,
            escalated.astype(np.float64)[:, None], actions, self.model.base.troops_on_ground,
            withdrawn)

    def forget_guarantor(self, index: int) -> None:
        """An election: the reputation of member ``index`` returns to the prior."""
        alpha, beta = dyn.prior_beliefs(self.model.setup.params, (1, 1))
        self.alpha[:, index], self.beta[:, index] = alpha[:, 0], beta[:, 0]


class GuarantorAgent(mesa.Agent):
    """A member: honours or abstains when Russia escalates, with its coordinated
    equilibrium probability when the members coordinate, else on its attraction; learns by
    reinforcement of that attraction."""

    def __init__(self, model: CrisisModel, index: int, start_attraction: np.ndarray) -> None:
        super().__init__(model)
        self.index = index
        self.guarantor_id = model.base.guarantor_ids[index]
        self.start_attraction = start_attraction
        self.attraction = start_attraction.copy()          # (1, 1)
        self.withdrawn = np.zeros((1, 1), dtype=bool)
        self.cost_factor = np.ones((1, 1))
        self.honours = np.zeros(1, dtype=bool)

    @property
    def honours_column(self) -> np.ndarray:
        return self.honours[:, None]

    def _own(self, values: np.ndarray) -> np.ndarray:
        return values[:, self.index:self.index + 1]

    def decide(self, game: Game, team: np.ndarray, coordinated: np.ndarray,
               draw: np.ndarray) -> None:
        """``coordinated`` (1, n): the coordinated equilibrium where ``team``, else unused."""
        probability = np.where(team[:, None], self._own(coordinated),
                               dyn.alone_probability(self.attraction,
                                                     self._own(game.resolve_scale)))
        probability = dyn.honour_probability(probability, self._own(game.engaged),
                                             self.withdrawn)
        self.honours = draw < probability[:, 0]

    def learn(self, game: Game, actions: np.ndarray, decided_alone: np.ndarray) -> None:
        gain = dyn.honouring_gain_of(game, actions, self.index)[:, None]
        self.attraction = dyn.update_attraction(self.attraction, self.model.setup.params,
                                                decided_alone, gain,
                                                self._own(game.readiness_cost))


class UkraineAgent(mesa.Agent):
    """Not strategic: a capability stock that aid raises and that recovers or depreciates
    towards its baseline."""

    def __init__(self, model: CrisisModel) -> None:
        super().__init__(model)
        self.capability = model.base.ukraine_capability.copy()


class CrisisModel(mesa.Model):
    """One run of the repeated crisis under one format."""

    def __init__(self, setup: dyn.Setup, run_index: int, keep_series: bool = True,
                 cell: int = 0) -> None:
        # our rules draw from dynamics.uniforms; Mesa's own generators get a fixed seed
        super().__init__(rng=int(setup.key % (2 ** 63)))
        self.setup = setup
        self.base = setup.base.take([int(cell)])  # the parameter point this run plays
        self.run_index = int(run_index)
        self.round = 0  # our own counter (Model.steps is gone in Mesa 4)
        self.russia = RussiaAgent(self)
        self.ukraine = UkraineAgent(self)
        start = dyn.initial_attraction(self.base, setup.params)
        self.guarantors = [GuarantorAgent(self, i, start[:, i:i + 1])
                           for i in range(self.base.n)]
        self.tally = dyn.Tally.empty(1)
        self.series = dyn.Series() if keep_series else None

    def _column(self, attribute: str) -> np.ndarray:
        columns = [getattr(g, attribute) for g in self.guarantors]
        return np.concatenate(columns, axis=1) if columns else np.zeros((1, 0))

    def _apply_shocks(self) -> None:
        for shock in (s for s in self.setup.shocks if s.step == self.round):
            for i in dyn.shock_targets(shock.guarantor, self.base.guarantor_ids):
                guarantor = self.guarantors[i]
                if shock.kind == "withdraw":
                    guarantor.withdrawn = np.ones((1, 1), dtype=bool)
                elif shock.kind == "cost_change":
                    guarantor.cost_factor = guarantor.cost_factor * shock.factor
                else:  # election
                    self.russia.forget_guarantor(i)
                    guarantor.attraction = guarantor.start_attraction.copy()

    def step(self) -> None:
        self._apply_shocks()
        n = self.base.n
        stocks = dyn.Stocks(self.ukraine.capability, self.russia.capability,
                            self.russia.sanctions)
        withdrawn = self._column("withdrawn")
        game = dyn.stage_game(self.base, stocks, self._column("cost_factor"), withdrawn)
        draws = dyn.uniforms(self.setup.key, np.array([self.run_index]), self.round,
                             dyn.SLOT_FIRST_GUARANTOR + n)

        self.russia.decide(game, withdrawn, draws[:, dyn.SLOT_RUSSIA])
        escalated = self.russia.escalated
        team = escalated & (draws[:, dyn.SLOT_TEAM] < self.base.coordination_probability)
        # the members coordinate: they play the coordinated equilibrium of today's game
        coordinated = (dyn.coordinated_probabilities(game) if team[0]
                       else np.zeros((1, n)))
        for guarantor in self.guarantors:
            guarantor.decide(game, team, coordinated,
                             draws[:, dyn.SLOT_FIRST_GUARANTOR + guarantor.index])
        honours = self._column("honours_column")
        actions = np.logical_and(honours, escalated[:, None]).astype(np.float64)
        success = russia_success_probability(game, actions[:, None, :])[:, 0]
        result = outcome(escalated, success, self.setup.defended_below)

        decided_alone = (escalated & ~team).astype(np.float64)[:, None]
        for guarantor in self.guarantors:
            guarantor.learn(game, actions, decided_alone)
        self.russia.learn(escalated, actions, withdrawn)
        new = dyn.update_stocks(stocks, self.base, self.setup.params, escalated, actions)
        self.ukraine.capability = new.ukraine_capability
        self.russia.capability, self.russia.sanctions = new.russia_capability, new.sanctions

        self.tally.add(self.round, escalated, result)
        if self.series is not None:
            self.series.record(escalated, team, actions, result,
                               dyn.belief_means(self.russia.alpha, self.russia.beta, withdrawn),
                               self._column("attraction"), new)
        self.round += 1


def run(setup: dyn.Setup, run_index: int, steps: int, keep_series: bool = True,
        cell: int = 0):
    """One run with the Mesa model, playing cell ``cell`` of ``setup.base``:
    (summary, series); releases Mesa's reference to the model."""
    model = CrisisModel(setup, run_index, keep_series, cell)
    try:
        for _ in range(steps):
            model.step()
        return (model.tally.summary(steps),
                model.series.arrays() if keep_series else None)
    finally:
        registry = getattr(mesa.Agent, "_ids", None)  # mesa issue 3179 (Mesa <= 3.3.1)
        if registry is not None:
            registry.pop(model, None)
