"""Builders for small scenarios and formats used across the tests."""

from __future__ import annotations

from typing import Any

import numpy as np

from deterrence.game.config import FormatSpec, Scenario


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
