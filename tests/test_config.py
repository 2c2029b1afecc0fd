"""Configuration files: the catalogue, the schema's metadata and the errors users see."""

from __future__ import annotations

import math
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from deterrence import ConfigError, solve_formats
from deterrence.game.config import (
    FORMATS_DIR,
    SCENARIOS_DIR,
    AnalysisParameters,
    DynamicsParameters,
    FormatSpec,
    GuarantorParameters,
    ResponseSpec,
    RussiaParameters,
    UkraineParameters,
    load_catalogue,
    load_format,
    load_scenario,
)
from deterrence.game.payoffs import build_game, parameter_paths

BASELINE = SCENARIOS_DIR / "baseline.toml"
FORMAT_IDS = {"neutrality", "budapest", "nato_lite", "bilateral", "coalition", "three_tier",
              "nato"}


def test_catalogue_holds_the_seven_formats_and_baseline_loads():
    catalogue = load_catalogue()
    assert set(catalogue) == FORMAT_IDS
    scenario = load_scenario(BASELINE)
    assert [g.id for g in scenario.guarantors] == ["US", "UK", "France", "Germany", "Italy",
                                                   "Poland", "Nordic", "Baltic"]
    assert scenario.russia.military_spending_usd_bn == 149.0  # SIPRI 2024


@pytest.mark.parametrize("model", [RussiaParameters, UkraineParameters, GuarantorParameters,
                                   ResponseSpec, FormatSpec, DynamicsParameters,
                                   AnalysisParameters])
def test_every_model_parameter_has_a_unit_and_a_source(model):
    for name, field in model.model_fields.items():
        if field.annotation not in (float, bool) or name in ("id", "name"):
            continue
        extra = field.json_schema_extra or {}
        assert extra.get("unit"), f"{model.__name__}.{name} has no unit"
        assert extra.get("source"), f"{model.__name__}.{name} has no source"
        assert field.description, f"{model.__name__}.{name} has no description"


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def baseline_with(tmp_path: Path, old: str, new: str) -> Path:
    text = BASELINE.read_text()
    assert old in text
    return write(tmp_path, "scenario.toml", text.replace(old, new, 1))


def test_unknown_key_names_file_key_and_allowed_keys(tmp_path):
    path = baseline_with(tmp_path, "war_cost = 0.2", "war_cots = 0.2")
    with pytest.raises(ConfigError) as info:
        load_scenario(path)
    message = str(info.value)
    assert str(path) in message and "russia.war_cots" in message and "war_cost" in message


def test_wrong_type_names_key_and_value(tmp_path):
    path = baseline_with(tmp_path, "war_cost = 0.2", 'war_cost = "high"')
    with pytest.raises(ConfigError, match=r"russia\.war_cost.*'high'.*valid number"):
        load_scenario(path)


def test_out_of_range_names_key_value_and_bound(tmp_path):
    path = baseline_with(tmp_path, "nuclear_escalation_probability = 0.02",
                         "nuclear_escalation_probability = 1.5")
    with pytest.raises(ConfigError, match=r"russia\.nuclear_escalation_probability.*1\.5.*less "
                                          r"than 1"):
        load_scenario(path)


def test_guarantor_errors_point_at_the_list_entry(tmp_path):
    path = baseline_with(tmp_path, "stake_in_ukraine = 0.5", "stake_in_ukraine = -1.0")
    with pytest.raises(ConfigError, match=r"guarantors\.0\.stake_in_ukraine.*-1\.0"):
        load_scenario(path)


def test_bad_toml_and_missing_file_are_clear(tmp_path):
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_scenario(write(tmp_path, "bad.toml", "russia = ["))
    with pytest.raises(ConfigError, match="file not found"):
        load_scenario(tmp_path / "absent.toml")


def test_format_id_must_match_file_name(tmp_path):
    text = (FORMATS_DIR / "nato.toml").read_text()
    with pytest.raises(ConfigError, match="must match the file name 'other'"):
        load_format(write(tmp_path, "other.toml", text))


def test_override_for_a_non_member_is_rejected(tmp_path):
    text = (FORMATS_DIR / "budapest.toml").read_text() + "\n[response_overrides.France]\n"
    with pytest.raises(ConfigError, match=r"key 'response_overrides.France': 'France' is not a "
                                          r"member; members: US, UK$"):
        load_format(write(tmp_path, "budapest.toml", text))


def test_member_unknown_to_the_scenario_is_rejected_when_combined(tmp_path):
    text = (FORMATS_DIR / "budapest.toml").read_text().replace('["US", "UK"]', '["US", "Japan"]')
    spec = load_format(write(tmp_path, "budapest.toml", text))
    with pytest.raises(ConfigError, match=r"members.*Japan.*allowed"):
        build_game(load_scenario(BASELINE), spec)


def test_grid_paths_and_values_are_checked():
    scenario, spec = load_scenario(BASELINE), load_catalogue()["nato_lite"]
    assert "guarantors.US.stake_in_ukraine" in parameter_paths(scenario, spec)
    with pytest.raises(ConfigError, match="'russia.warcost' is not a numeric parameter"):
        build_game(scenario, spec, {"russia.warcost": [0.1]})
    with pytest.raises(ConfigError, match=r"format\.coordination_probability' = 1\.5.*<= 1"):
        build_game(scenario, spec, {"format.coordination_probability": [0.5, 1.5]})
    with pytest.raises(ConfigError, match="finite"):
        build_game(scenario, spec, {"russia.war_cost": [np.nan]})


def test_a_new_format_is_defined_by_a_toml_file_alone(tmp_path):
    formats = tmp_path / "formats"
    shutil.copytree(FORMATS_DIR, formats)
    (formats / "nordic_baltic.toml").write_text('''
id = "nordic_baltic"
name = "Nordic-Baltic web"
description = "Bilateral agreements with the Nordic and Baltic states and Poland only."
members = ["Poland", "Nordic", "Baltic"]
commitment_bindingness = 0.5
coordination_probability = 0.3
response_delay_days = 5.0

[response]
denial_share = 0.1
punishment_share = 1.0
cost_share = 0.5
''')
    [result] = solve_formats(BASELINE, ["nordic_baltic"], formats_dir=formats)
    assert result.members == ["Poland", "Nordic", "Baltic"]
    assert result.regime in {"deterred", "defended", "abandoned", "mixed"}
    assert set(result.credibility) == {"Poland", "Nordic", "Baltic"}
    assert all(set(e.honour_probability) == {"Poland", "Nordic", "Baltic"}
               for e in result.equilibria)


def test_unreadable_inputs_are_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="a folder, not a regular file"):
        load_scenario(tmp_path)
    binary = tmp_path / "binary.toml"
    binary.write_bytes(b"\xff\xfe\x00name")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_scenario(binary)


def test_scenario_format_must_be_in_the_catalogue(tmp_path):
    path = baseline_with(tmp_path, 'format = "nato_lite"', 'format = "nato_light"')
    with pytest.raises(ConfigError, match=r"'format' = 'nato_light'.*allowed"):
        solve_formats(path)


def test_a_scenario_can_extend_another():
    base = load_scenario(BASELINE)
    stressed = load_scenario(SCENARIOS_DIR / "us_withdrawal.toml")
    assert stressed.name == "us_withdrawal"
    assert stressed.guarantors == base.guarantors and stressed.russia == base.russia
    assert [(s.step, s.kind, s.guarantor) for s in stressed.shocks] == [
        (24, "withdraw", "US"), (36, "cost_change", "*"), (48, "election", "UK")]


def test_extends_merges_tables_and_rejects_circles(tmp_path):
    write(tmp_path, "a.toml", 'extends = "b.toml"\nname = "a"\n[russia]\nwar_cost = 0.3\n')
    write(tmp_path, "b.toml", BASELINE.read_text())
    merged = load_scenario(tmp_path / "a.toml")
    assert merged.russia.war_cost == 0.3
    assert merged.russia.status_quo_value == load_scenario(BASELINE).russia.status_quo_value
    write(tmp_path, "c.toml", 'extends = "d.toml"\n')
    write(tmp_path, "d.toml", 'extends = "c.toml"\n')
    with pytest.raises(ConfigError, match="in a circle"):
        load_scenario(tmp_path / "c.toml")
    write(tmp_path, "e.toml", 'extends = "missing.toml"\n')
    with pytest.raises(ConfigError, match="missing.toml: file not found"):
        load_scenario(tmp_path / "e.toml")


# ---------------------------------------------------------------------------------------
# The coalition of the willing, state by state (docs/sources.md#coalition-members)

COALITION = SCENARIOS_DIR / "coalition_35.toml"
#: The scenario's European NATO members (public record) without Türkiye, which SIPRI's
#: total for European NATO members leaves out (docs/sources.md#sipri-2024).
EUROPEAN_NATO_IN_COALITION = [
    "UK", "France", "Germany", "Italy", "Poland", "Finland", "Norway", "Estonia", "Latvia",
    "Lithuania", "Sweden", "Denmark", "Netherlands", "Spain", "Belgium", "Luxembourg",
    "Portugal", "Greece", "Czechia", "Romania", "Bulgaria", "Croatia", "Slovenia", "Albania"]
#: SIPRI 2024, USD bn: the European NATO members that are not in the scenario (Hungary,
#: Iceland, Montenegro, North Macedonia, Slovakia; docs/sources.md#sipri-2024).
EUROPEAN_NATO_LEFT_OUT_USD_BN = 4.7347 + 0.0 + 0.150 + 0.3537 + 2.8492
#: SIPRI fact sheet 2024: European NATO members together, rounded to 1 USD bn.
SIPRI_EUROPEAN_NATO_USD_BN = 454.0


def test_coalition_scenario_has_one_guarantor_per_state_as_its_header_says():
    stated = re.search(r"^# (\d+) guarantors:", COALITION.read_text(encoding="utf-8"), re.M)
    ids = [g.id for g in load_scenario(COALITION).guarantors]
    assert len(set(ids)) == len(ids) == int(stated.group(1))


def test_coalition_spending_adds_up_to_sipris_european_nato_total():
    """With SIPRI's figures for the European NATO members left out, the scenario's European
    NATO members make up SIPRI's total, to within rounding: the total's (0.5 USD bn) and each
    value's (half a unit in its third significant figure)."""
    spending = {g.id: g.military_spending_usd_bn for g in load_scenario(COALITION).guarantors}
    values = [spending[gid] for gid in EUROPEAN_NATO_IN_COALITION]
    rounding = 0.5 + sum(0.5 * 10.0 ** (math.floor(math.log10(v)) - 2) for v in values)
    total = sum(values) + EUROPEAN_NATO_LEFT_OUT_USD_BN
    assert abs(total - SIPRI_EUROPEAN_NATO_USD_BN) <= rounding
