"""The command line as a user runs it: a separate process, real exit codes and streams."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from deterrence import solve_formats
from deterrence.game.config import SCENARIOS_DIR

BASELINE = str(SCENARIOS_DIR / "baseline.toml")


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "deterrence", *args], capture_output=True,
                          text=True, timeout=120)


def test_formats_json_lists_the_catalogue():
    result = run("formats", "--json")
    assert result.returncode == 0, result.stderr
    listed = json.loads(result.stdout)
    assert {f["id"] for f in listed} == {"neutrality", "budapest", "nato_lite", "bilateral",
                                         "coalition", "three_tier", "nato"}
    assert all(f["name"] and f["description"] for f in listed)


def test_solve_json_matches_the_python_api():
    result = run("solve", BASELINE, "--format", "nato_lite", "--format", "budapest", "--json")
    assert result.returncode == 0, result.stderr
    payload = json.loads(result.stdout)
    api = {r.format_id: r.to_dict() for r in solve_formats(BASELINE, ["nato_lite", "budapest"])}
    assert [f["id"] for f in payload["formats"]] == ["nato_lite", "budapest"]
    for fmt in payload["formats"]:
        assert fmt == api[fmt["id"]]
        kinds = [e["kind"] for e in fmt["equilibria"]]
        assert "logit QRE" in kinds and any("SPE" in k for k in kinds)
        for e in fmt["equilibria"]:
            assert set(e["deter_probability"]) == set(fmt["members"])


def test_solve_prints_a_readable_table():
    result = run("solve", BASELINE, "--format", "three_tier")
    assert result.returncode == 0, result.stderr
    assert "Three-tier defence line" in result.stdout
    assert "P(deter) US" in result.stdout and "stability" in result.stdout


@pytest.mark.parametrize(("args", "needle"), [
    (("solve", "missing.toml"), "file not found"),
    (("solve", BASELINE, "--format", "natolite"), "unknown format id(s) ['natolite']"),
    (("solve", BASELINE, "--rationality", "-1"), "rationality = -1.0"),
])
def test_bad_input_exits_2_with_a_message_and_no_traceback(args, needle):
    result = run(*args)
    assert result.returncode == 2
    assert needle in " ".join(result.stderr.split())
    assert "Traceback" not in result.stderr and result.stdout == ""


def test_invalid_scenario_file_exits_2_naming_the_key(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text(open(BASELINE).read().replace("seed = 20250801", "seed = -3"))
    result = run("solve", str(bad))
    assert result.returncode == 2
    assert "seed" in result.stderr and "-3" in result.stderr
    assert "Traceback" not in result.stderr


def test_run_gives_the_same_numbers_with_either_engine():
    reports = {}
    for engine in ("vector", "mesa"):
        result = run("run", BASELINE, "--engine", engine, "--runs", "4", "--steps", "15",
                     "--seed", "7", "--format", "bilateral", "--json")
        assert result.returncode == 0, result.stderr
        reports[engine] = json.loads(result.stdout)
    assert reports["vector"]["summary"] == reports["mesa"]["summary"]
    assert reports["vector"]["hazard_first_10_rounds"] == reports["mesa"][
        "hazard_first_10_rounds"]
    other = json.loads(run("run", BASELINE, "--runs", "4", "--steps", "15", "--seed", "8",
                           "--format", "bilateral", "--json").stdout)
    assert other["summary"] != reports["vector"]["summary"]  # the seed matters


def test_run_writes_per_round_data_once(tmp_path):
    import xarray as xr

    out = tmp_path / "sim"
    result = run("run", BASELINE, "--runs", "3", "--steps", "12", "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in out.iterdir()) == ["run.json", "simulation.nc"]
    with xr.open_dataset(out / "simulation.nc") as ds:
        assert dict(ds.sizes) == {"run": 3, "round": 12, "guarantor": 8}
        escalations = ds.escalated.sum("round").values
        assert list(ds.escalation_frequency.values) == list(escalations / 12)
    again = run("run", BASELINE, "--runs", "3", "--steps", "12", "--out", str(out))
    assert again.returncode == 2 and "already exists" in again.stderr
    assert [p.name for p in tmp_path.iterdir()] == ["sim"]  # nothing half-written beside it


@pytest.mark.parametrize(("args", "needle"), [
    (("--engine", "numba"), "engine = 'numba'"),
    (("--runs", "0"), "runs = 0"),
    (("--seed", "-1"), "seed = -1"),
    (("--format", "nope"), "unknown format id 'nope'"),
])
def test_run_rejects_bad_options(args, needle):
    result = run("run", BASELINE, "--steps", "2", *args)
    assert result.returncode == 2
    assert needle in " ".join(result.stderr.split()) and "Traceback" not in result.stderr
