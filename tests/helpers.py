"""Builders for small scenarios and formats used across the tests."""

from __future__ import annotations

from typing import Any

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
