"""The parameter catalogue (``api.parameter_catalogue``) against the schema read on its
own (pydantic ``model_fields`` and their ``annotated_types`` limits), against
``api.parameter_paths`` and against what ``api.with_parameters`` accepts and refuses."""

from __future__ import annotations

import dataclasses
import math

import annotated_types as at
import numpy as np
import pytest
from pydantic_core import PydanticUndefined

from deterrence import api
from deterrence.game import config as C
from deterrence.sweep.datasets import solve

SCENARIO = api.load_scenario(api.SCENARIOS_DIR / "baseline.toml")
FORMATS = api.load_catalogue()
CATALOGUE = api.parameter_catalogue(SCENARIO)
BY_PATH = {info.path: info for info in CATALOGUE}
#: Schema models by a path's first part (a format's scalars and responses below).
MODELS = {"russia": C.RussiaParameters, "ukraine": C.UkraineParameters,
          "guarantors": C.GuarantorParameters, "dynamics": C.DynamicsParameters,
          "analysis": C.AnalysisParameters}
#: The limit classes of annotated_types, by whether they bound from below, and strictly.
LOWER = {at.Ge: False, at.Gt: True}
UPPER = {at.Le: False, at.Lt: True}


def schema_field(path: str):
    """The pydantic field of a path, looked up here without the package's helpers."""
    parts = path.split(".")
    if parts[0] != "format":
        return MODELS[parts[0]].model_fields[parts[-1]]
    if len(parts) == 2:
        return C.FormatSpec.model_fields[parts[1]]
    return C.ResponseSpec.model_fields[parts[-1]]


def schema_limits(field):
    """(low, low strict, high, high strict) from the field's metadata."""
    low = high = None
    low_strict = high_strict = False
    for rule in field.metadata:
        for kind, strict in LOWER.items():
            if isinstance(rule, kind):
                low, low_strict = float(dataclasses.astuple(rule)[0]), strict
        for kind, strict in UPPER.items():
            if isinstance(rule, kind):
                high, high_strict = float(dataclasses.astuple(rule)[0]), strict
    return low, low_strict, high, high_strict


def test_every_settable_path_is_listed_once():
    expected = {p for fmt in FORMATS.values() for p in api.parameter_paths(SCENARIO, fmt)}
    tables = {f"{t}.{k}" for t in ("dynamics", "analysis")
              for k, f in MODELS[t].model_fields.items() if f.annotation is float}
    paths = [info.path for info in CATALOGUE]
    assert len(paths) == len(set(paths))
    assert set(paths) == expected | tables
    for info in CATALOGUE:
        assert info.sweepable == (info.path in expected)
        having = {fid for fid, fmt in FORMATS.items()
                  if info.path in api.parameter_paths(SCENARIO, fmt)}
        assert set(info.formats) == (having if info.sweepable else set(FORMATS))


def test_schema_text_defaults_and_limits():
    for info in CATALOGUE:
        field = schema_field(info.path)
        assert info.description == field.description
        assert info.unit == field.json_schema_extra["unit"]
        assert info.source == field.json_schema_extra["source"]
        default = None if field.default is PydanticUndefined else float(field.default)
        assert info.default == default, info.path
        assert (info.low, info.low_strict, info.high, info.high_strict) == schema_limits(field)
        if info.sweepable:
            assert info.unit.strip() and info.source.strip() and info.label.strip(), info.path


def test_groups_and_labels():
    assert BY_PATH["russia.war_cost"].group == "Russia"
    assert BY_PATH["russia.war_cost"].label == "War cost"
    assert BY_PATH["guarantors.*.audience_cost"].group == "Guarantors (all)"
    assert BY_PATH["guarantors.UK.audience_cost"].group == "Guarantor UK"
    assert BY_PATH["format.commitment_bindingness"].group == "Format"
    assert BY_PATH["format.response.cost_share"].group == "Format response"
    assert BY_PATH["format.response_overrides.US.cost_share"].group == "Format response, US"
    assert BY_PATH["dynamics.belief_memory"].group == "Dynamics"
    assert BY_PATH["analysis.deterred_below_escalation_probability"].group == "Analysis"


def test_values_are_the_scenarios_and_the_formats():
    assert BY_PATH["russia.war_cost"].value == SCENARIO.russia.war_cost
    assert BY_PATH["dynamics.belief_memory"].value == SCENARIO.dynamics.belief_memory
    for g in SCENARIO.guarantors:
        assert BY_PATH[f"guarantors.{g.id}.gdp_usd_tn"].value == g.gdp_usd_tn
    gdps = {g.gdp_usd_tn for g in SCENARIO.guarantors}
    assert len(gdps) > 1 and BY_PATH["guarantors.*.gdp_usd_tn"].value is None
    assert BY_PATH["guarantors.UK.gdp_usd_tn"].own_value  # the schema has no default
    info = BY_PATH["format.commitment_bindingness"]
    assert info.value is None
    assert info.values == {fid: f.commitment_bindingness for fid, f in FORMATS.items()}
    us = BY_PATH["format.response_overrides.US.cost_share"]
    assert us.values == {fid: f.response_overrides["US"].cost_share
                         for fid, f in FORMATS.items() if "US" in f.response_overrides}


def test_chosen_formats_only():
    rows = api.parameter_catalogue(SCENARIO, ["bilateral"])
    assert {info.path for info in rows if info.sweepable} == set(
        api.parameter_paths(SCENARIO, FORMATS["bilateral"]))
    assert all(info.formats == ("bilateral",) for info in rows)


#: Keys the schema also limits jointly (their sum at most 1): set to 0 beside a bound of
#: one of them, so that the bound alone decides.
JOINT = ("dynamics.war_damage", "dynamics.ukraine_recovery_rate",
         "dynamics.russia_regeneration_rate")


def changed(info: api.ParameterInfo, value: float):
    """``api.with_parameters`` with ``info.path`` = ``value`` (under a format having it)."""
    changes = {p: 0.0 for p in JOINT if info.path in JOINT} | {info.path: value}
    if info.path.startswith("format."):
        return api.with_parameters(SCENARIO, changes, fmt=info.formats[0])
    return api.with_parameters(SCENARIO, changes)


def bound_cases():
    """(info, value just inside, value just outside) at every finite bound."""
    for info in CATALOGUE:
        for bound, strict, direction in ((info.low, info.low_strict, -math.inf),
                                         (info.high, info.high_strict, math.inf)):
            if bound is None:
                continue
            outside = bound if strict else float(np.nextafter(bound, direction))
            inside = float(np.nextafter(bound, -direction)) if strict else bound
            yield pytest.param(info, inside, outside, id=f"{info.path}:{bound:g}")


@pytest.mark.parametrize(("info", "inside", "outside"), list(bound_cases()))
def test_bounds_are_what_with_parameters_takes(info, inside, outside):
    changed(info, inside)  # accepted
    assert api.parameter_problem(info, inside) is None
    with pytest.raises(api.ConfigError) as refused:
        changed(info, outside)
    assert info.path in str(refused.value) and "\n" not in str(refused.value)
    problem = api.parameter_problem(info, outside)
    assert problem is not None and info.path in problem and info.allowed in problem


def test_problem_of_a_number_that_is_not_finite():
    info = BY_PATH["russia.status_quo_value"]
    for value in (math.inf, -math.inf, math.nan):
        assert "russia.status_quo_value" in api.parameter_problem(info, value)


def test_with_formats_runs_the_changed_format():
    axes = {"russia.war_cost": np.array([0.1, 0.3]), "russia.sanctions_cost": np.array([0.2, 0.4])}
    plan = api.sweep_plan(SCENARIO, axes, formats=["nato_lite"], replicates=1, steps=2)
    _, idle = api.with_parameters(SCENARIO, {"format.response.denial_share": 0.0,
                                                 "format.response.punishment_share": 0.0},
                                      fmt="nato_lite")  # a response that does nothing
    changed_plan = api.with_formats(plan, {"nato_lite": idle})
    assert changed_plan.formats["nato_lite"] == idle
    assert plan.formats["nato_lite"] == FORMATS["nato_lite"]
    # the plan's exact game is the changed format's, solved directly at the grid's points
    x, y = axes.values()
    direct = solve(SCENARIO, idle, {"russia.war_cost": x[:, None],
                                        "russia.sanctions_cost": y[None, :]})
    got = api.exact_dataset(changed_plan)["escalation_probability"].sel(format="nato_lite")
    before = api.exact_dataset(plan)["escalation_probability"].sel(format="nato_lite")
    np.testing.assert_allclose(got.values, direct.escalation_probability.reshape(2, 2))
    assert np.all(np.abs(got.values - before.values) > 1e-3)


def test_with_formats_refuses_what_is_not_the_sweeps():
    plan = api.sweep_plan(SCENARIO, {"russia.war_cost": [0.1, 0.3]}, formats=["nato_lite"],
                          replicates=1, steps=2)
    with pytest.raises(api.ConfigError, match="nato"):
        api.with_formats(plan, {"nato": FORMATS["nato"]})
    with pytest.raises(api.ConfigError, match="bilateral"):
        api.with_formats(plan, {"nato_lite": FORMATS["bilateral"]})
