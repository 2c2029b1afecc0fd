"""Builders for small scenarios and formats used across the tests."""

from __future__ import annotations

from typing import Any

import numpy as np
from pydantic import ValidationError

from deterrence.game.config import FormatSpec, ResponseSpec, Scenario
from deterrence.game.payoffs import Game, all_profiles, build_game, guarantor_payoffs


def guarantor(gid: str, **attrs: Any) -> dict[str, Any]:
    base = {"id": gid, "name": gid, "military_spending_usd_bn": 50.0, "gdp_usd_tn": 1.0}
    base.update(attrs)
    return base


def scenario(guarantors: list[dict[str, Any]], **sections: Any) -> Scenario:
    data: dict[str, Any] = {"name": "test", "guarantors": guarantors}
    data.update(sections)
    return Scenario.model_validate(data)


def fmt(**fields: Any) -> FormatSpec:
    data: dict[str, Any] = {"id": "test", "name": "test", "description": "test"}
    data.update(fields)
    return FormatSpec.model_validate(data)


def loguniform(rng, low: float, high: float) -> float:
    """A draw from the log-uniform distribution on [low, high]."""
    return float(np.exp(rng.uniform(np.log(low), np.log(high))))


def random_response(rng, *, troops: float = 0.25, decisive: float = 0.4, combat: float = 0.5,
                    denial_high: float = 1.0) -> dict[str, Any]:
    """A random response within the schema's limits: troops on the ground (the member is
    engaged), a decisive chance and direct combat each with the given probability."""
    return {"denial_share": float(rng.uniform(0.0, denial_high)),
            "punishment_share": float(rng.uniform(0.0, 1.0)),
            "direct_combat": bool(rng.random() < combat),
            "troops_on_ground": bool(rng.random() < troops),
            "decisive_probability": float(rng.uniform(0.0, 1.0)) if rng.random() < decisive
            else 0.0,
            "cost_share": float(rng.uniform(0.1, 2.0))}


def random_case(rng, n: int, *, non_members: int = 0, response=random_response,
                **response_args: Any) -> tuple[Scenario, FormatSpec]:
    """A random scenario with members G0 .. G{n-1} (each with its own response) and
    ``non_members`` bystanders X0, ...; every value within the schema's limits."""
    people = [guarantor(
        gid, military_spending_usd_bn=loguniform(rng, 5.0, 1000.0),
        gdp_usd_tn=loguniform(rng, 0.1, 30.0), nuclear_armed=bool(rng.random() < 0.5),
        stake_in_ukraine=loguniform(rng, 0.05, 5.0),
        honouring_cost=float(rng.uniform(0.0, 1.0)), audience_cost=float(rng.uniform(0.0, 1.0)),
        catastrophe_cost=loguniform(rng, 0.01, 50.0),
        resolve_scale=loguniform(rng, 0.005, 0.5))
        for gid in [f"G{i}" for i in range(n)] + [f"X{i}" for i in range(non_members)]]
    russia = {"military_spending_usd_bn": loguniform(rng, 50.0, 400.0),
              "war_aims_value": float(rng.uniform(0.5, 2.0)),
              "status_quo_value": float(rng.uniform(-0.5, 1.0)),
              "failed_war_value": float(rng.uniform(-0.5, 0.8)),
              "war_cost": float(rng.uniform(0.0, 0.5)),
              "sanctions_cost": float(rng.uniform(0.0, 1.0)),
              "catastrophe_cost": float(rng.uniform(0.0, 30.0)),
              "foreign_troops_aversion": float(rng.uniform(0.0, 0.3)),
              "fait_accompli_days": loguniform(rng, 3.0, 60.0),
              "nuclear_escalation_probability": float(rng.uniform(0.0, 0.3)),
              "resolve_scale": loguniform(rng, 0.01, 0.5)}
    ukraine = {"military_spending_usd_bn": loguniform(rng, 20.0, 150.0),
               "baseline_military_aid_usd_bn": float(rng.uniform(0.0, 80.0))}
    members = [f"G{i}" for i in range(n)]
    f = fmt(members=members, commitment_bindingness=float(rng.uniform(0.0, 1.0)),
            coordination_probability=float(rng.uniform(0.0, 1.0)),
            response_delay_days=float(rng.uniform(0.0, 30.0)),
            response_overrides={g: response(rng, **response_args) for g in members})
    return scenario(people, russia=russia, ukraine=ukraine), f


# ---------------------------------------------------------------------------------------
# Members' subgames with several equilibria


def _tuned_response(rng, engaged: bool = False):
    return random_response(rng, troops=float(engaged), decisive=0.3, combat=0.7)


def subgame_table(game: Game) -> np.ndarray:
    """The free members' payoffs at every pure profile of theirs (engaged members honour):
    (2^f, f) for the single cell of ``game``."""
    free = np.flatnonzero(~game.engaged[0])
    profiles = np.ones((2 ** free.size, game.n))
    profiles[:, free] = all_profiles(free.size)
    return guarantor_payoffs(game, profiles)[0][:, free]


def pure_gains(table: np.ndarray) -> np.ndarray:
    """Each player's gain from honouring at every profile of the others: (2^f, f), row k
    the gain of player i against the others' actions in k (its own bit ignored)."""
    k = np.arange(table.shape[0])
    gains = np.empty(table.shape)
    for i in range(table.shape[1]):
        on, off = k | (1 << i), k & ~(1 << i)
        gains[:, i] = table[on, i] - table[off, i]
    return gains


def tuned_case(seed, players: int, sigma_relative: float, max_draws: int = 50):
    """A random scenario and format with ``players`` free members (and, one time in three, an
    engaged member besides) whose honouring costs are tuned so that gains change sign, and
    each member's scale ``sigma_relative`` times its largest pure-profile gain. Returns
    (scenario, format, the subgame's table)."""
    rng = np.random.default_rng(seed)
    for _ in range(max_draws):
        engaged = int(rng.random() < 1 / 3)
        n = players + engaged
        sc, f = random_case(rng, n, response=_tuned_response)
        overrides = dict(f.response_overrides)
        if engaged:
            overrides[f"G{n - 1}"] = ResponseSpec.model_validate(_tuned_response(rng, True))
        f = f.model_copy(update={"response_overrides": overrides})
        try:
            sc = _tune_costs(rng, sc, f, players)
        except ValidationError:  # a tuned cost beyond the schema's limits: draw again
            continue
        table = subgame_table(build_game(sc, f))
        scale = np.max(np.abs(pure_gains(table)), axis=0)
        if np.any(sigma_relative * scale < 1e-6):
            continue
        guarantors = [g.model_copy(update={"resolve_scale": float(sigma_relative * scale[i])})
                      if i < players else g for i, g in enumerate(sc.guarantors)]
        return sc.model_copy(update={"guarantors": guarantors}), f, table
    raise AssertionError(f"seed {seed}: no instance in {max_draws} draws")


def _tune_costs(rng, sc, f, players):
    """Place each free member's gain level, at random, within 1.5 times the range over which
    the others' actions move its gain (set through its honouring cost, or through its
    audience cost where the level is negative): with independently drawn costs one action
    is almost always dominant, and coordination games, chicken and games without a pure
    equilibrium would be rare."""
    zero = sc.model_copy(update={"guarantors": [
        g.model_copy(update={"honouring_cost": 0.0}) for g in sc.guarantors]})
    gains = pure_gains(subgame_table(build_game(zero, f)))  # the gains without h_i
    data = sc.model_dump()
    for i in range(players):
        mid = 0.5 * (gains[:, i].max() + gains[:, i].min())
        half = max(0.5 * (gains[:, i].max() - gains[:, i].min()), 1e-4)
        level = mid + rng.uniform(-1.5, 1.5) * half  # the gains become gains - level
        member = data["guarantors"][i]
        if level >= 0.0:
            member["honouring_cost"] = float(level / f.response_overrides[f"G{i}"].cost_share)
        else:
            member["honouring_cost"] = 0.0
            member["audience_cost"] += float(-level / max(f.commitment_bindingness, 1e-3))
    return Scenario.model_validate(data)


def assert_engines_agree(setup, runs: np.ndarray, steps: int, chunk_runs: int) -> None:
    """The vectorised engine (``runs`` in chunks of ``chunk_runs``) and the Mesa model (each
    run alone) give the same summaries and series, bit for bit."""
    from deterrence.simulate import engine, mesa_model

    sim = engine.simulate(setup, runs, steps, keep_series=True, chunk_runs=chunk_runs)
    for k, r in enumerate(runs):
        summary, series = mesa_model.run(setup, int(r), steps)
        for name, values in summary.items():
            np.testing.assert_array_equal(values[0], sim.summary[name][k], err_msg=name)
        for name, values in series.items():
            np.testing.assert_array_equal(values[0], sim.series[name][k], err_msg=name)
