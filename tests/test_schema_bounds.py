"""Every number the schema lets through is one the model computes with.

* With every parameter anywhere inside its limits, the extremes included, the exact solver
  and the engine give finite numbers (hypothesis draws whole scenarios and formats).
* A value just outside a limit, infinity, NaN or a huge number is a ConfigError naming the
  key, on one line: when a file is loaded, through ``with_parameters`` and on the sweep
  and grid override path.

The fields come from the schema's ``model_fields``, so a new field is covered as it is
added.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from deterrence import api
from deterrence.game import config as C
from deterrence.game.payoffs import build_game, parameter_field, parameter_paths
from deterrence.simulate import engine, rules
from deterrence.solve.equilibrium import solve_cell, solve_grid

from helpers import guarantor

#: The tables of a scenario with numbers, by where they sit in a scenario file.
SCENARIO_TABLES = {"russia": C.RussiaParameters, "ukraine": C.UkraineParameters,
                   "analysis": C.AnalysisParameters, "dynamics": C.DynamicsParameters}


def float_fields(model) -> dict:
    """The fields holding a number (a shock's optional fields too)."""
    return {name: info for name, info in model.model_fields.items()
            if info.annotation in (float, float | None)}


def shock_using(field: str, **values) -> dict:
    """A shock of a kind that uses ``field`` (cost_change by default), its fields set."""
    kind = next((k for k, needed in C.SHOCK_FIELDS.items() if field in needed), "cost_change")
    defaults = {"factor": 1.0, "bindingness": 0.5, "belief": 0.5, "strength": 1.0}
    return {"step": 1, "kind": kind, "guarantor": "G0",
            **{name: defaults[name] for name in C.SHOCK_FIELDS[kind]}, **values}


def extremes(info) -> tuple[float, float]:
    """The smallest and the largest value a field accepts."""
    limits = dict(C.limits_of(info))
    low = limits["ge"] if "ge" in limits else float(np.nextafter(limits["gt"], np.inf))
    high = limits["le"] if "le" in limits else float(np.nextafter(limits["lt"], -np.inf))
    return low, high


def inside(info):
    """A value inside the field's limits: often one of the two extremes, else uniform."""
    low, high = extremes(info)
    return st.one_of(st.sampled_from([low, high]),
                     st.floats(0.0, 1.0).map(lambda u: min(high, max(low, low + u * (high - low)))))


def test_every_float_field_has_finite_limits_on_both_sides():
    models = [*SCENARIO_TABLES.values(), C.GuarantorParameters, C.FormatSpec, C.ResponseSpec,
              C.Shock]
    for model in models:
        for name, info in float_fields(model).items():
            limits = dict(C.limits_of(info))
            assert {"ge", "gt"} & set(limits) and {"le", "lt"} & set(limits), (model, name)
            assert all(math.isfinite(v) for v in limits.values()), (model, name)


@st.composite
def cases(draw):
    """A scenario and a format with every number drawn inside its limits."""
    def table(model):
        return {name: draw(inside(info)) for name, info in float_fields(model).items()}

    sections = {name: table(model) for name, model in SCENARIO_TABLES.items()}
    dyn = sections["dynamics"]
    for rate in ("ukraine_recovery_rate", "russia_regeneration_rate"):
        # a constraint between fields: a rate beyond it is moved to its edge
        dyn[rate] = min(dyn[rate], 1 - dyn["war_damage"])
        while dyn[rate] + dyn["war_damage"] > 1:
            dyn[rate] = float(np.nextafter(dyn[rate], 0))
    n = draw(st.integers(1, 3))
    guarantors = [guarantor(f"G{i}", nuclear_armed=draw(st.booleans()),
                            **table(C.GuarantorParameters)) for i in range(n)]
    low, high = extremes(C.Shock.model_fields["factor"])
    factors = [draw(st.sampled_from([low, high]) | st.floats(low, high)) for _ in range(2)]
    if all(f > 1 for f in factors):  # the factors above 1 that reach G0 multiply to <= 100
        factors[1] = min(factors[1], C.MAX_COST_FACTOR / factors[0])
        while factors[0] * factors[1] > C.MAX_COST_FACTOR:
            factors[1] = float(np.nextafter(factors[1], 0))
    shocks = [{"step": 1, "kind": "cost_change", "guarantor": "*", "factor": factors[0]},
              {"step": 2, "kind": "cost_change", "guarantor": "G0", "factor": factors[1]}]
    scenario = C.validate(C.Scenario, {"name": "drawn", "seed": draw(st.integers(0, C.MAX_SEED)),
                                       "guarantors": guarantors, "shocks": shocks, **sections},
                          "drawn scenario")
    response = {**table(C.ResponseSpec), "direct_combat": draw(st.booleans()),
                "troops_on_ground": draw(st.booleans())}
    fmt = C.validate(C.FormatSpec, {"id": "drawn", "name": "drawn", "description": "drawn",
                                    "response": response, **table(C.FormatSpec)},
                     "drawn format")
    return scenario, fmt


def assert_grid_finite(grid) -> None:
    """Every number of the solution is finite (mean_credibility is documented as NaN only
    without members: the drawn formats have some), and the probabilities are ones."""
    assert grid.credibility.shape[1] >= 1
    for name in grid.__dataclass_fields__:
        values = getattr(grid, name)
        if isinstance(values, np.ndarray) and values.dtype.kind == "f":
            assert np.all(np.isfinite(values)), name
    for name in ("escalation_probability", "escalation_probability_min",
                 "escalation_probability_max", "response_probability", "defended_probability",
                 "russia_success", "credibility", "mean_credibility"):
        values = getattr(grid, name)
        assert np.all((0 <= values) & (values <= 1)), name
    assert np.all(grid.equilibrium_count >= 1)


def assert_equilibria_finite(found) -> None:
    equilibria, complete = found
    assert equilibria and isinstance(complete, bool)
    for eq in equilibria:
        values = [eq.escalation_probability, eq.russia_success_probability,
                  eq.response_probability, *eq.honour_probability.values()]
        assert all(math.isfinite(v) and 0 <= v <= 1 for v in values), eq
        assert math.isfinite(eq.russia_escalation_value), eq
        assert all(map(math.isfinite, eq.member_welfare.values())), eq


def assert_simulation_finite(sim) -> None:
    summary = sim.summary
    # documented: P(abandoned | escalation) is missing exactly where no round escalated
    assert np.array_equal(np.isnan(summary["abandoned_given_escalation"]),
                          summary["escalation_frequency"] == 0)
    for name in ("escalation_frequency", "deterred_share"):
        assert np.all(np.isfinite(summary[name])) and np.all((0 <= summary[name])
                                                             & (summary[name] <= 1)), name
    for name, values in sim.series.items():
        if values.dtype.kind == "f":
            assert np.all(np.isfinite(values)), name
    assert np.all(sim.series["stocks"] >= 0)  # capabilities and sanctions never negative


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cases())
def test_the_solver_and_the_engine_give_finite_numbers_inside_the_limits(case):
    scenario, fmt = case
    with np.errstate(all="ignore"):  # overflow to inf inside a formula is allowed
        game = build_game(scenario, fmt)
        grid = solve_grid(game, scenario.analysis.deterred_below_escalation_probability,
                          scenario.analysis.defended_below_russia_success, threads=1)
        sim = engine.simulate(rules.Setup.from_config(scenario, fmt), 6, 12, keep_series=True)
    assert_grid_finite(grid)
    assert_simulation_finite(sim)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cases())
def test_every_equilibrium_solve_reports_is_finite_inside_the_limits(case):
    """``deterrence solve``'s report: every equilibrium of the members' subgame, each with
    finite probabilities and payoffs."""
    scenario, fmt = case
    with np.errstate(all="ignore"):
        found = solve_cell(build_game(scenario, fmt))
    assert_equilibria_finite(found)


@pytest.mark.parametrize("side", [0, 1])
def test_solve_and_simulate_everything_at_one_extreme(side):
    """Every number at its smallest (side 0) or largest (side 1) value at once: the exact
    solver's full report (``solve``: every equilibrium) and both engines."""
    def table(model):
        return {name: extremes(info)[side] for name, info in float_fields(model).items()}

    sections = {name: table(model) for name, model in SCENARIO_TABLES.items()}
    if side:  # the largest war damage leaves no room for recovery
        sections["dynamics"].update(ukraine_recovery_rate=0.0, russia_regeneration_rate=0.0)
    guarantors = [guarantor(f"G{i}", nuclear_armed=True, **table(C.GuarantorParameters))
                  for i in range(2)]
    scenario = C.Scenario.model_validate({"name": "edge", "guarantors": guarantors,
                                          **sections})
    fmt = C.FormatSpec.model_validate({
        "id": "edge", "name": "edge", "description": "edge", **table(C.FormatSpec),
        "response": {**table(C.ResponseSpec), "direct_combat": True, "troops_on_ground": False}})
    with np.errstate(all="ignore"):
        game = build_game(scenario, fmt)
        assert_grid_finite(solve_grid(game,
                                      scenario.analysis.deterred_below_escalation_probability,
                                      scenario.analysis.defended_below_russia_success))
        assert_equilibria_finite(solve_cell(game))
        setup = rules.Setup.from_config(scenario, fmt)
        assert_simulation_finite(engine.simulate(setup, 4, 30, keep_series=True))


# ---------------------------------------------------------------------------------------
# Outside the limits


def outside(info) -> list[float]:
    """Values just beyond each limit, and numbers no limit admits."""
    values = [math.inf, -math.inf, math.nan, 1e308, -1e308]
    for name, bound in C.limits_of(info):
        if name in ("gt", "lt"):
            values.append(bound)
        else:
            values.append(float(np.nextafter(bound, -np.inf if name == "ge" else np.inf)))
    return values


FIELDS = ([(f"{table}.{name}", info) for table, model in SCENARIO_TABLES.items()
           for name, info in float_fields(model).items()]
          + [(f"guarantors.0.{name}", info)
             for name, info in float_fields(C.GuarantorParameters).items()]
          + [(f"shocks.0.{name}", info) for name, info in float_fields(C.Shock).items()])


def scenario_data(key: str, value) -> dict:
    # the rates and the war damage at 0, so that each may reach its own limits
    data = {"name": "edge", "guarantors": [guarantor("G0")],
            "dynamics": {"war_damage": 0.0, "ukraine_recovery_rate": 0.0,
                         "russia_regeneration_rate": 0.0},
            "shocks": [shock_using(key.split(".")[-1] if key.startswith("shocks.") else "")]}
    parts = key.split(".")
    target = data
    for part in parts[:-1]:
        target = target[int(part)] if part.isdigit() else target.setdefault(part, {})
    target[parts[-1]] = value
    return data


def assert_one_line_naming(exc: C.ConfigError, key: str, value) -> None:
    message = str(exc)
    assert "\n" not in message and f"key '{key}' = {value!r}" in message, message
    assert message.count("key '") == 1, message  # this problem alone


@pytest.mark.parametrize(("key", "info"), FIELDS, ids=[k for k, _ in FIELDS])
def test_a_scenario_value_outside_the_limits_is_refused_naming_the_key(key, info):
    for value in outside(info):
        with pytest.raises(C.ConfigError) as raised:
            C.validate(C.Scenario, scenario_data(key, value), "edge.toml")
        assert_one_line_naming(raised.value, key, value)
    for value in extremes(info):  # and the limits themselves are allowed
        C.validate(C.Scenario, scenario_data(key, value), "edge.toml")


@given(st.data())
@settings(max_examples=100, deadline=None)
def test_any_value_beyond_a_limit_is_refused(data):
    key, info = data.draw(st.sampled_from(FIELDS))
    low, high = extremes(info)
    value = data.draw(st.floats(max_value=low, exclude_max=True, allow_nan=False)
                      | st.floats(min_value=high, exclude_min=True, allow_nan=False))
    with pytest.raises(C.ConfigError) as raised:
        C.validate(C.Scenario, scenario_data(key, value), "edge.toml")
    assert_one_line_naming(raised.value, key, value)


@pytest.mark.parametrize("value", [math.inf, 1e308, math.nan, -1.0])
def test_with_parameters_refuses_values_outside_the_limits(value):
    with pytest.raises(C.ConfigError) as raised:
        api.with_parameters("baseline", {"russia.war_cost": value})
    assert "key 'russia.war_cost'" in str(raised.value) and "\n" not in str(raised.value)
    with pytest.raises(C.ConfigError, match="key 'guarantors.US.gdp_usd_tn'"):
        api.with_parameters("baseline", {"guarantors.US.gdp_usd_tn": value})


def test_the_override_path_applies_the_same_limits():
    """Grids and sweeps set parameters through build_game's overrides: every numeric path
    accepts its extremes and refuses what lies beyond them, with the limit in the line."""
    scenario = C.load_scenario("baseline")
    fmt = C.load_catalogue()["nato_lite"]
    for path in parameter_paths(scenario, fmt):
        info = parameter_field(path)
        low, high = extremes(info)
        build_game(scenario, fmt, {path: np.array([low, high])})
        for value in outside(info):
            with pytest.raises(C.ConfigError) as raised:
                build_game(scenario, fmt, {path: np.array([value])})
            assert f"parameter path {path!r}" in str(raised.value)
            assert "\n" not in str(raised.value)


def test_cost_factors_that_compound_beyond_the_limit_are_refused():
    def shock(step, who, factor):
        return {"step": step, "kind": "cost_change", "guarantor": who, "factor": factor}

    data = {"name": "x", "guarantors": [guarantor("G0"), guarantor("G1")]}
    # 10 for every guarantor, then 10 for each: each cost rises 100-fold, the limit
    C.validate(C.Scenario, {**data, "shocks": [shock(1, "*", 10.0), shock(2, "G0", 10.0),
                                               shock(3, "G1", 10.0)]}, "x")
    # falling costs may compound without limit (they fall towards 0)
    C.validate(C.Scenario, {**data, "shocks": [shock(s, "*", 0.01) for s in range(10)]}, "x")
    with pytest.raises(C.ConfigError, match=r"key 'shocks': the cost_change factors above 1 "
                                            r"that reach guarantor 'G0' multiply to 1e\+03; "
                                            r"at most 100 allowed"):
        C.validate(C.Scenario, {**data, "shocks": [shock(1, "*", 10.0), shock(2, "G0", 10.0),
                                                   shock(5, "G0", 10.0)]}, "x")
    with pytest.raises(C.ConfigError, match="reach every guarantor multiply to 1e\\+04"):
        C.validate(C.Scenario, {**data, "shocks": [shock(1, "*", 100.0),
                                                   shock(2, "*", 100.0)]}, "x")


def test_recovery_and_war_damage_may_not_add_up_to_more_than_the_whole():
    data = {"name": "x", "guarantors": [guarantor("G0")]}
    C.validate(C.Scenario, {**data, "dynamics": {"war_damage": 0.75,
                                                 "ukraine_recovery_rate": 0.25}}, "x")
    with pytest.raises(C.ConfigError, match=r"key 'dynamics.russia_regeneration_rate' = 0.5: "
                                            r"russia_regeneration_rate \+ war_damage = 1.25"):
        C.validate(C.Scenario, {**data, "dynamics": {"war_damage": 0.75,
                                                     "russia_regeneration_rate": 0.5}}, "x")


def test_an_equilibrium_is_found_where_rounding_blurs_the_best_response():
    """Resolve scales of 1e-6 against stakes of 100: the computed gains carry rounding of a
    few 1e-14, which moves Phi by parts in a billion, so no point has a residual below
    1e-11; the equilibrium must still be found. The members barely interact (their
    capability is 1e-12 of Russia's), so each honours with Lambda(fixed gain / sigma)."""
    drawn = {"military_spending_usd_bn": 0.001, "gdp_usd_tn": 1e-6, "resolve_scale": 1e-6,
             "audience_cost": 0.0, "catastrophe_cost": 0.0, "readiness_cost": 0.0}
    members = [guarantor("G0", stake_in_ukraine=100.0, honouring_cost=1e-10, **drawn),
               guarantor("G1", stake_in_ukraine=100.0, honouring_cost=0.0, **drawn),
               guarantor("G2", stake_in_ukraine=0.0, honouring_cost=0.0, **drawn)]
    sc = C.Scenario.model_validate({
        "name": "blur", "guarantors": members,
        "russia": {"military_spending_usd_bn": 1e5, "war_aims_value": 1e-6,
                   "status_quo_value": -100.0, "failed_war_value": -100.0,
                   "resolve_scale": 1e-6, "sanctions_reference_gdp_usd_tn": 1e-6},
        "ukraine": {"military_spending_usd_bn": 0.001, "baseline_military_aid_usd_bn": 0.0}},
        strict=False)
    spec = C.FormatSpec.model_validate({
        "id": "drawn", "name": "drawn", "description": "drawn",
        "commitment_bindingness": 0.0, "response_delay_days": 1825.0,
        "response": {"denial_share": 6e-8, "punishment_share": 0.0, "cost_share": 1.25}},
        strict=False)
    found, _ = solve_cell(build_game(sc, spec))
    assert len(found) == 1
    q = found[0].honour_probability
    assert q["G0"] == pytest.approx(1.0 / (1.0 + math.exp(1.25e-10 / 1e-6)), abs=1e-6)
    assert q["G1"] == pytest.approx(0.5, abs=1e-6)
    assert q["G2"] == pytest.approx(0.5, abs=1e-6)
