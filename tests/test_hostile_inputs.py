"""Hostile inputs: each is refused before any work, through the command line and the API.

Through the command line a case must exit with code 2, print exactly one non-empty line on
stderr naming the key or the file, print no traceback, and write nothing (no results
folder, no staging folder). Through the Python API it must raise ConfigError (not a NumPy
or memory error).

The float-field corpus is generated from the schema's ``model_fields``. Read-only folders
are not in the corpus: the tests run as root under CI, where permissions do not stop a
write; a folder under /proc (which nobody can create) and a folder under a file stand in
for a place where a folder cannot be made.
"""

from __future__ import annotations

import math
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from deterrence import api
from deterrence.cli import app
from deterrence.game import config as C
from deterrence.game.payoffs import MAX_MEMBERS
from deterrence.simulate.rules import MAX_RUNS

BASELINE = C.SCENARIOS_DIR / "baseline.toml"
runner = CliRunner()

#: Values no float field admits: infinity, NaN and numbers beyond every limit.
HOSTILE_FLOATS = {"inf": math.inf, "1e308": 1e308, "1e12": 1e12, "nan": math.nan}


def cli(*args, cwd: Path | None = None):
    """Run the command line in this process (fast); ``cwd`` is the working directory."""
    old = os.getcwd()
    if cwd is not None:
        os.chdir(cwd)
    try:
        return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)
    finally:
        os.chdir(old)


def assert_refused(result, *needles: str) -> None:
    """Exit 2, one non-empty stderr line holding each needle, no traceback."""
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.exit_code == 2, (result.exit_code, result.stdout, result.stderr)
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr and "internal error" not in result.stderr
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])


def assert_nothing_written(folder: Path, before: set[str]) -> None:
    """No new entry in ``folder`` (no results/, no archive, no staging folder)."""
    assert set(os.listdir(folder)) == before, set(os.listdir(folder)) - before


def toml_value(value) -> str:
    if isinstance(value, float) and math.isnan(value):
        return "nan"
    if isinstance(value, float) and math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return repr(value)


def write_scenario(folder: Path, name: str = "hostile", **tables) -> Path:
    """A small scenario file: two guarantors and a shock; ``tables`` set or add keys
    (``russia={"war_cost": inf}``, ``guarantors=[...]``, ``seed=...``)."""
    guarantors = tables.pop("guarantors", None) or [
        {"id": "US", "name": "US", "military_spending_usd_bn": 997.0, "gdp_usd_tn": 29.2},
        {"id": "UK", "name": "UK", "military_spending_usd_bn": 81.8, "gdp_usd_tn": 3.6}]
    shocks = tables.pop("shocks", [{"step": 2, "kind": "cost_change", "guarantor": "UK",
                                    "factor": 1.5}])
    lines = [f'name = "{name}"', 'format = "bilateral"']
    lines += [f"{k} = {toml_value(v)}" for k, v in tables.items() if not isinstance(v, dict)]
    for table, keys in tables.items():
        if isinstance(keys, dict):
            lines.append(f"[{table}]")
            lines += [f"{k} = {toml_value(v)}" for k, v in keys.items()]
    for array, entries in (("guarantors", guarantors), ("shocks", shocks)):
        for entry in entries:
            lines.append(f"[[{array}]]")
            lines += [f"{k} = {toml_value(v) if not isinstance(v, str) else repr(v)}"
                      .replace("'", '"') for k, v in entry.items()]
    path = folder / f"{name}.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def write_sweep(folder: Path, scenario: str | Path, name: str = "hostile", axes=None,
                **keys) -> Path:
    keys = {"formats": ["bilateral"], "replicates": 1, "steps": 3, **keys}
    axes = axes or [{"path": "russia.war_cost", "values": [0.1, 0.2]}]
    lines = [f'name = "{name}"', f'scenario = "{scenario}"']
    lines += [f"{k} = {toml_value(v) if not isinstance(v, str | list) else repr(v)}"
              .replace("'", '"') for k, v in keys.items()]
    for axis in axes:
        lines.append("[[axes]]")
        lines += [f"{k} = {repr(v) if isinstance(v, str) else toml_value(v)}"
                  .replace("'", '"') if not isinstance(v, list)
                  else f"{k} = [{', '.join(toml_value(x) for x in v)}]"
                  for k, v in axis.items()]
    path = folder / f"sweep-{name}.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


# ---------------------------------------------------------------------------------------
# 1. Numbers no field admits, for every float field of the schema


def float_keys() -> list[tuple[str, str]]:
    """(table, key) of every float field of a scenario: its tables, the guarantors' and
    the shocks' entries."""
    tables = {"russia": C.RussiaParameters, "ukraine": C.UkraineParameters,
              "analysis": C.AnalysisParameters, "dynamics": C.DynamicsParameters,
              "guarantors": C.GuarantorParameters, "shocks": C.Shock}
    return [(table, name) for table, model in tables.items()
            for name, info in model.model_fields.items()
            if info.annotation in (float, float | None)]


FLOAT_CASES = [(table, key, label) for table, key in float_keys() for label in HOSTILE_FLOATS]


def hostile_scenario(folder: Path, table: str, key: str, value: float) -> tuple[Path, str]:
    """The scenario with ``value`` at (table, key), and the key as a message names it."""
    if table == "guarantors":
        us = {"id": "US", "name": "US", "military_spending_usd_bn": 997.0, "gdp_usd_tn": 29.2,
              key: value}
        return write_scenario(folder, guarantors=[us], shocks=[]), f"guarantors.0.{key}"
    if table == "shocks":
        kind = next(k for k, needed in C.SHOCK_FIELDS.items() if key in needed)
        defaults = {"factor": 1.0, "bindingness": 0.5, "belief": 0.5, "strength": 1.0}
        shock = {"step": 2, "kind": kind, "guarantor": "UK",
                 **{name: defaults[name] for name in C.SHOCK_FIELDS[kind]}, key: value}
        return write_scenario(folder, shocks=[shock]), f"shocks.0.{key}"
    return write_scenario(folder, **{table: {key: value}}), f"{table}.{key}"


@pytest.mark.parametrize(("table", "key", "label"), FLOAT_CASES,
                         ids=[f"{t}.{k}={v}" for t, k, v in FLOAT_CASES])
def test_a_number_no_field_admits_is_refused_by_every_command(table, key, label, tmp_path):
    path, named = hostile_scenario(tmp_path, table, key, HOSTILE_FLOATS[label])
    sweep = write_sweep(tmp_path, path.name)
    before = set(os.listdir(tmp_path))
    for args in (("solve", path), ("run", path, "--runs", 2, "--steps", 3, "--out", "out"),
                 ("sweep", sweep, "--no-report")):
        assert_refused(cli(*args, cwd=tmp_path), str(path), f"key '{named}' = ")
    assert_nothing_written(tmp_path, before)
    with pytest.raises(C.ConfigError, match=f"key '{named}' = "):
        api.solve_formats(path)
    with pytest.raises(C.ConfigError, match=f"key '{named}' = "):
        api.simulate_scenario(path, runs=2, steps=3)


FORMAT_KEYS = [name for name, info in C.FormatSpec.model_fields.items()
               if info.annotation is float] + [
    f"response.{name}" for name, info in C.ResponseSpec.model_fields.items()
    if info.annotation is float]


@pytest.mark.parametrize("key", FORMAT_KEYS)
@pytest.mark.parametrize("label", list(HOSTILE_FLOATS))
def test_a_number_no_format_field_admits_is_refused(key, label, tmp_path):
    formats = tmp_path / "formats"
    formats.mkdir()
    text = (C.FORMATS_DIR / "bilateral.toml").read_text()
    name = key.split(".")[-1]
    line = f"{name} = {toml_value(HOSTILE_FLOATS[label])}"
    text, found = re.subn(rf"^{name} = .*$", line, text, count=1, flags=re.MULTILINE)
    if not found:  # a key the file leaves at its default
        text = (text.replace("[response]", f"[response]\n{line}", 1)
                if key.startswith("response.") else f"{line}\n{text}")
    (formats / "bilateral.toml").write_text(text)
    assert_refused(cli("solve", BASELINE, "--formats-dir", formats), "bilateral.toml",
                   f"key '{key}' = ")


@pytest.mark.parametrize("label", list(HOSTILE_FLOATS))
def test_a_sweep_axis_value_no_field_admits_is_refused(label, tmp_path):
    scenario = write_scenario(tmp_path)
    sweep = write_sweep(tmp_path, scenario.name, axes=[
        {"path": "russia.war_cost", "values": [0.1, HOSTILE_FLOATS[label]]}])
    before = set(os.listdir(tmp_path))
    # a number that is no number is refused in the file, one out of range on its path
    needle = ("key 'axes.0.values.1' = " if not math.isfinite(HOSTILE_FLOATS[label])
              else f"parameter path 'russia.war_cost' = {HOSTILE_FLOATS[label]!r}: must be <=")
    assert_refused(cli("sweep", sweep, "--no-report", cwd=tmp_path), needle)
    assert_nothing_written(tmp_path, before)


@pytest.mark.parametrize("value", [math.inf, 1e308, math.nan])
def test_with_parameters_refuses_what_a_file_may_not_hold(value):
    with pytest.raises(C.ConfigError, match="key 'russia.war_cost'"):
        api.with_parameters("baseline", {"russia.war_cost": value})


# ---------------------------------------------------------------------------------------
# 2. Seeds


HUGE_SEEDS = [2**63, 2**70]


@pytest.mark.parametrize("seed", HUGE_SEEDS)
def test_a_seed_beyond_64_bits_is_refused_everywhere(seed, tmp_path):
    scenario = write_scenario(tmp_path, seed=seed)
    plain = write_scenario(tmp_path, name="plain")
    sweep = write_sweep(tmp_path, plain.name, seed=seed)
    before = set(os.listdir(tmp_path))
    assert_refused(cli("run", scenario, "--runs", 2, "--steps", 3), "key 'seed' = ")
    assert_refused(cli("sweep", sweep, "--no-report", cwd=tmp_path), str(sweep), "key 'seed'")
    assert_refused(cli("run", plain, "--runs", 2, "--steps", 3, "--seed", seed),
                   f"seed = {seed}")
    assert_nothing_written(tmp_path, before)
    with pytest.raises(C.ConfigError, match="seed"):
        api.simulate_scenario(plain, runs=2, steps=3, seed=seed)


@pytest.mark.parametrize("seed", [2**31, C.MAX_SEED])
def test_the_largest_seeds_round_trip_through_a_sweep_archive(seed, tmp_path):
    """2^31 broke the NetCDF attributes and 2^63 - 1 is the largest seed: both make an
    archive that verifies, and a run that records the seed."""
    scenario = write_scenario(tmp_path, seed=seed)
    sweep = write_sweep(tmp_path, scenario.name)
    result = cli("sweep", sweep, "--no-report", "--out", "archive", cwd=tmp_path)
    assert result.exit_code == 0, result.stderr
    assert cli("verify", tmp_path / "archive").exit_code == 0
    import json

    assert json.loads((tmp_path / "archive" / "manifest.json").read_text())["seed"] == seed
    result = cli("run", scenario, "--runs", 2, "--steps", 3, "--json")
    assert result.exit_code == 0 and json.loads(result.stdout)["seed"] == seed


# ---------------------------------------------------------------------------------------
# 3. Work that cannot fit


def many_guarantors(count: int) -> list[dict]:
    return [{"id": f"G{i}", "name": f"G{i}", "military_spending_usd_bn": 10.0,
             "gdp_usd_tn": 1.0} for i in range(count)]


@pytest.mark.parametrize("count", [MAX_MEMBERS + 1, 100])
def test_too_many_members_are_refused_before_any_work(count, tmp_path):
    scenario = write_scenario(tmp_path, guarantors=many_guarantors(count),
                              shocks=[{"step": 1, "kind": "election", "guarantor": "*"}])
    sweep = write_sweep(tmp_path, scenario.name, formats=["nato"])
    before = set(os.listdir(tmp_path))
    needle = f"format 'nato': {count} members; at most {MAX_MEMBERS} allowed"
    assert_refused(cli("solve", scenario, "-f", "nato"), needle)
    assert_refused(cli("run", scenario, "-f", "nato", "--runs", 2, "--steps", 2), needle)
    assert_refused(cli("sweep", sweep, "--no-report", cwd=tmp_path), needle)
    assert_nothing_written(tmp_path, before)
    with pytest.raises(C.ConfigError, match=re.escape(needle)):
        api.solve_formats(scenario, ["nato"])
    # a format that binds none of them still runs
    assert cli("run", scenario, "-f", "neutrality", "--runs", 2, "--steps", 2).exit_code == 0


def test_the_largest_number_of_members_is_solved(tmp_path):
    """At the limit the solver works: every member has its credibility, and the set of
    equilibria is found."""
    scenario = write_scenario(tmp_path, guarantors=many_guarantors(MAX_MEMBERS), shocks=[])
    result = cli("solve", scenario, "-f", "nato", "--json")
    assert result.exit_code == 0, result.stderr
    import json

    [solved] = json.loads(result.stdout)["formats"]
    assert len(solved["credibility"]) == MAX_MEMBERS
    assert solved["equilibrium_count"] == len(solved["equilibria"]) >= 1
    assert all(0 <= v <= 1 for v in solved["credibility"].values())


def test_more_runs_than_memory_holds_are_refused(tmp_path):
    before = set(os.listdir(tmp_path))
    runs = MAX_RUNS - 1
    assert_refused(cli("run", BASELINE, "--runs", runs, "--steps", 2), f"runs = {runs}",
                   "would take", "TiB in memory", "use at most")
    with pytest.raises(C.ConfigError, match="would take"):
        api.simulate_scenario(BASELINE, runs=runs, steps=2)
    # the series of every round: runs x steps x members
    result = cli("run", BASELINE, "--runs", 100_000, "--steps", 100_000, "--out", "series",
                 cwd=tmp_path)
    assert_refused(result, "100,000 runs x 100,000 rounds of series for 8 members",
                   "would take", "TiB in memory")
    assert_nothing_written(tmp_path, before)


def test_the_memory_estimate_is_what_the_series_take():
    """The estimate counts the bytes of the arrays a simulation returns."""
    from deterrence.simulate import engine
    from deterrence.simulate.rules import Setup

    scenario = C.load_scenario(BASELINE)
    setup = Setup.from_config(scenario, C.load_catalogue()["nato_lite"])
    sim = engine.simulate(setup, 10, 7, keep_series=True)
    held = (sum(a.nbytes for a in sim.summary.values()) + sim.run_ids.nbytes
            + 10 * 8  # the cell of each run
            + sum(a.nbytes for a in sim.series.values()))
    assert engine.result_bytes(10, 7, setup.base.n, True) == held


# ---------------------------------------------------------------------------------------
# 4. Files that are not configuration files, and sweeps too large to plan


def test_a_device_a_pipe_or_a_huge_file_is_not_read(tmp_path):
    fifo = tmp_path / "pipe.toml"
    os.mkfifo(fifo)
    huge = tmp_path / "huge.toml"
    with huge.open("wb") as fh:
        fh.truncate(C.MAX_CONFIG_BYTES + 1)
    child = tmp_path / "child.toml"
    child.write_text('extends = "/dev/zero"\nname = "child"\n')
    sweep = write_sweep(tmp_path, "/dev/zero")
    before = set(os.listdir(tmp_path))
    cases = [(("solve", "/dev/zero"), "/dev/zero: a character device"),
             (("solve", fifo), f"{fifo}: a named pipe"),
             (("solve", tmp_path), f"{tmp_path}: a folder"),
             (("solve", huge), f"{huge}: 16.0 MiB; a configuration file may have at most"),
             (("run", child), "/dev/zero: a character device"),
             (("sweep", sweep, "--no-report"), "/dev/zero: a character device"),
             (("sweep", "/dev/zero"), "/dev/zero: a character device")]
    for args, needle in cases:
        started = time.monotonic()
        assert_refused(cli(*args, cwd=tmp_path), needle)
        assert time.monotonic() - started < 5  # refused at once, not read
    assert_nothing_written(tmp_path, before)
    with pytest.raises(C.ConfigError, match="a character device"):
        api.load_scenario(child)


@pytest.mark.parametrize(("keys", "axes", "needles"), [
    ({"method": "lhs", "samples": 1_000_000, "replicates": 100_000},
     [{"path": "russia.war_cost", "low": 0.1, "high": 0.5}],
     ["key 'replicates' = 100000", "100,000,000,000 runs per format",
      "at most 10,000,000 runs"]),
    ({}, [{"path": p, "low": 0.1, "high": 0.5, "count": 10_000}
          for p in ("russia.war_cost", "russia.sanctions_cost", "russia.status_quo_value")],
     ["key 'axes'", "1,000,000,000,000 points (10000 x 10000 x 10000 grid)",
      "at most 1,000,000 points"]),
    ({"replicates": 20, "formats": "all"},
     [{"path": "russia.war_cost", "low": 0.1, "high": 0.5, "count": 1000},
      {"path": "russia.sanctions_cost", "low": 0.1, "high": 0.5, "count": 100}],
     ["14,000,000 runs (7 formats x 2,000,000 runs each)", "at most 10,000,000 runs"]),
    ({"chunk_runs": 1, "replicates": 10},
     [{"path": "russia.war_cost", "low": 0.1, "high": 0.5, "count": 1000},
      {"path": "russia.sanctions_cost", "low": 0.1, "high": 0.5, "count": 100}],
     ["key 'chunk_runs' = 1", "1,000,000 work units", "at most 100,000"]),
], ids=["lhs-1e11-runs", "grid-1e12-points", "runs-over-formats", "work-units"])
def test_a_sweep_too_large_to_plan_is_refused_before_any_point(keys, axes, needles, tmp_path):
    scenario = write_scenario(tmp_path)
    sweep = write_sweep(tmp_path, scenario.name, axes=axes, **keys)
    before = set(os.listdir(tmp_path))
    started = time.monotonic()
    assert_refused(cli("sweep", sweep, "--no-report", cwd=tmp_path), *needles)
    assert time.monotonic() - started < 10  # no plan was built
    assert_nothing_written(tmp_path, before)
    with pytest.raises(C.ConfigError, match=needles[-1]):
        api.load_plan(sweep)


@pytest.mark.parametrize("method", ["sobol", "morris"])
def test_the_size_check_counts_the_sensitivity_design_as_it_is_drawn(method, tmp_path):
    scenario = write_scenario(tmp_path)
    axes = [{"path": p, "low": 0.1, "high": 0.5}
            for p in ("russia.war_cost", "russia.sanctions_cost", "russia.status_quo_value")]
    sweep = write_sweep(tmp_path, scenario.name, axes=axes, method="lhs", samples=5)
    plan = api.load_plan(sweep, {"method": method, "samples": 8})
    assert plan.spec.design_point_count == plan.sensitivity_points.shape[0]
    assert plan.spec.point_count == plan.points.shape[0] == 5


# ---------------------------------------------------------------------------------------
# 5. Model-level errors name the key and the value, not the whole table


@pytest.mark.parametrize(("change", "needle"), [
    ({"guarantors": [{"id": "UK", "name": "a", "military_spending_usd_bn": 1.0,
                      "gdp_usd_tn": 1.0},
                     {"id": "UK", "name": "b", "military_spending_usd_bn": 1.0,
                      "gdp_usd_tn": 1.0}]},
     "key 'guarantors.1.id' = 'UK': guarantors.0 has this id too; ids must be unique"),
    ({"shocks": [{"step": 1, "kind": "withdraw", "guarantor": "UK"},
                 {"step": 2, "kind": "withdraw", "guarantor": "xx"}]},
     "key 'shocks.1.guarantor' = 'xx': not a guarantor; allowed: '*' or US, UK"),
], ids=["duplicate-ids", "unknown-shock-guarantor"])
def test_a_scenario_error_names_the_key_and_value_only(change, needle, tmp_path):
    scenario = write_scenario(tmp_path, **change)
    result = cli("solve", scenario)
    assert_refused(result, needle)
    assert "top level" not in result.stderr and "{'" not in result.stderr


@pytest.mark.parametrize(("keys", "axes", "needle"), [
    ({}, [{"path": "russia.war_cost", "values": [0.1]},
          {"path": "russia.war_cost", "values": [0.2]}],
     "key 'axes.1.path' = 'russia.war_cost': axes.0 varies this parameter too"),
    ({"samples": 8}, None, "key 'samples' = 8: samples is for lhs / sobol"),
], ids=["duplicate-axes", "grid-with-samples"])
def test_a_sweep_error_names_the_key_and_value_only(keys, axes, needle, tmp_path):
    scenario = write_scenario(tmp_path)
    sweep = write_sweep(tmp_path, scenario.name, axes=axes, **keys)
    result = cli("sweep", sweep, "--no-report", cwd=tmp_path)
    assert_refused(result, needle)
    assert "top level" not in result.stderr and "{'" not in result.stderr


def test_a_long_list_of_names_is_cut_in_a_message(tmp_path):
    scenario = write_scenario(tmp_path, guarantors=many_guarantors(500),
                              shocks=[{"step": 1, "kind": "withdraw", "guarantor": "nobody"}])
    result = cli("solve", scenario)
    assert_refused(result, "G0, G1", "... (500 in all)")
    assert len(result.stderr) < 1000


# ---------------------------------------------------------------------------------------
# 6. Output folders that cannot be made


def bad_outputs(tmp_path: Path) -> list[tuple[Path, str]]:
    """(--out, what the line says): under a file, in /proc, a name too long."""
    a_file = tmp_path / "a-file"
    a_file.write_text("")
    return [(a_file / "out", "Not a directory"),
            (Path("/proc/deterrence-out"), "cannot create the folder"),
            (Path("/proc/deterrence/out"), "cannot create the folder"),
            (tmp_path / ("x" * 300), "File name too long"),
            (tmp_path / ("x" * 300) / "out", "File name too long")]


def test_run_refuses_an_output_folder_it_cannot_make_before_the_work(tmp_path):
    for out, reason in bad_outputs(tmp_path):
        before = set(os.listdir(tmp_path))
        result = cli("run", BASELINE, "--runs", 2, "--steps", 2, "--out", out)
        assert_refused(result, str(out), reason)
        assert result.stdout == ""  # no summary: the work did not start
        assert_nothing_written(tmp_path, before)
        with pytest.raises(C.ConfigError, match=reason):
            api.write_simulation(out, None, {})


def test_sweep_refuses_an_output_folder_it_cannot_make(tmp_path):
    scenario = write_scenario(tmp_path)
    sweep = write_sweep(tmp_path, scenario.name)
    for out, reason in bad_outputs(tmp_path):
        before = set(os.listdir(tmp_path))
        assert_refused(cli("sweep", sweep, "--no-report", "--out", out, cwd=tmp_path),
                       str(out), reason)
        assert_nothing_written(tmp_path, before)
    # the default results folder under a file
    (tmp_path / "results-file").write_text("")
    before = set(os.listdir(tmp_path))
    assert_refused(cli("sweep", sweep, "--no-report", "--results-dir",
                       tmp_path / "results-file", cwd=tmp_path), "Not a directory")
    assert_nothing_written(tmp_path, before)


def test_a_name_that_fits_gets_a_staging_name_that_fits(tmp_path):
    """The longest name a folder may have still works: the staging folder's is shorter."""
    name_max = os.pathconf(tmp_path, "PC_NAME_MAX")
    out = tmp_path / ("y" * name_max)
    result = cli("run", BASELINE, "--runs", 2, "--steps", 2, "--out", out)
    assert result.exit_code == 0, result.stderr
    assert (out / "simulation.nc").is_file()
    assert sorted(os.listdir(tmp_path)) == [out.name]


def test_verify_writes_nothing_beside_the_archive(tmp_path):
    """verify re-runs in the temporary folder, so it works where the archive's folder
    cannot be written; here: nothing appears or changes beside the archive."""
    scenario = write_scenario(tmp_path)
    sweep = write_sweep(tmp_path, scenario.name)
    assert cli("sweep", sweep, "--no-report", "--out", "archive", cwd=tmp_path).exit_code == 0
    def listing():
        return {p: p.stat().st_mtime_ns for p in [tmp_path, *tmp_path.rglob("*")]}

    before = listing()
    result = cli("verify", tmp_path / "archive")
    assert result.exit_code == 0, result.stderr
    assert listing() == before


# ---------------------------------------------------------------------------------------
# The real process: exit code, one line, no traceback


@pytest.mark.parametrize("args", [("solve", "/dev/zero"),
                                  ("run", str(BASELINE), "--runs", str(MAX_RUNS - 1)),
                                  ("run", str(BASELINE), "--out", "/proc/x/y")])
def test_a_hostile_input_in_a_real_process(args, tmp_path):
    result = subprocess.run([sys.executable, "-m", "deterrence", *args], capture_output=True,
                            text=True, cwd=tmp_path, timeout=120,
                            env={**os.environ, "PYTHONPATH": str(Path(api.__file__).parents[1])})
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 2 and len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ") and "Traceback" not in result.stderr
    assert os.listdir(tmp_path) == []


# ---------------------------------------------------------------------------------------
# Guarantor lookups do not grow with the number of guarantors


def test_guarantor_lookups_take_the_same_time_whatever_the_number_of_guarantors():
    def lookups_per_second(count: int) -> float:
        scenario = C.Scenario.model_validate({"name": "many",
                                              "guarantors": many_guarantors(count)})
        ids = [f"G{i}" for i in range(0, count, max(1, count // 1000))][:1000]
        started = time.perf_counter()
        for _ in range(20):
            for gid in ids:
                assert scenario.guarantor(gid).id == gid
        return 20 * len(ids) / (time.perf_counter() - started)

    small, large = lookups_per_second(1_000), lookups_per_second(100_000)
    # a linear search would be about 100 times slower at 100 times the guarantors
    assert large > small / 10, (small, large)


def test_a_copy_with_other_guarantors_looks_up_its_own():
    scenario = C.load_scenario(BASELINE)
    cheaper = scenario.model_copy(update={"guarantors": [
        g.model_copy(update={"honouring_cost": 0.0}) for g in scenario.guarantors]})
    assert cheaper.guarantor("UK").honouring_cost == 0.0
    assert scenario.guarantor("UK").honouring_cost == 0.3
    assert cheaper == C.Scenario.model_validate(cheaper.model_dump())
    with pytest.raises(KeyError):
        scenario.guarantor("nobody")
