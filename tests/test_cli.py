"""The command line as a user runs it: a separate process, real exit codes and streams;
progress off a terminal, valid JSON, exit codes, unwrapped paths, no third-party warnings."""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from deterrence import api, cli, solve_formats
from deterrence.game.config import FORMATS_DIR, SCENARIOS_DIR

BASELINE = str(SCENARIOS_DIR / "baseline.toml")
#: A progress line (docs/cli.md): label, done/total unit, percentage, ETA or duration.
PROGRESS = re.compile(r"(?P<label>[^:]+): (?P<done>[\d,]+)/(?P<total>[\d,]+) (?P<unit>\w+), "
                      r"(?P<percent>\d+)%, (?:ETA (?:\d+:\d\d:\d\d|unknown)"
                      r"|done in \d+:\d\d:\d\d(?:; (?P<then>.+))?)")
#: What a warning printed by Python's warnings module looks like.
WARNING_TEXT = re.compile(r"Warning\b|warn\(")


def run(*args: str, columns: int | None = None) -> subprocess.CompletedProcess:
    """The command in a new process with stdout and stderr piped (neither a terminal)."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE", "COLUMNS")}
    if columns is not None:
        env["COLUMNS"] = str(columns)
    return subprocess.run([sys.executable, "-m", "deterrence", *map(str, args)],
                          capture_output=True, text=True, timeout=300, env=env)


def strict_json(text: str):
    """Parse as JSON proper: NaN and Infinity, which Python's json accepts, are refused."""
    def refuse(constant: str):
        raise ValueError(f"{constant} is not JSON")

    return json.loads(text, parse_constant=refuse)


def test_formats_json_lists_the_catalogue():
    result = run("formats", "--json")
    assert result.returncode == 0, result.stderr
    listed = json.loads(result.stdout)
    assert {f["id"] for f in listed} == {"neutrality", "budapest", "nato_lite", "bilateral",
                                         "coalition", "three_tier", "nato"}
    assert all(f["name"] and f["description"] for f in listed)


def test_solve_json_matches_the_python_api():
    chosen = ["nato_lite", "budapest", "neutrality"]
    result = run("solve", BASELINE, *(f"--format={f}" for f in chosen), "--json")
    assert result.returncode == 0, result.stderr
    payload = strict_json(result.stdout)
    solved = {r.format_id: r for r in solve_formats(BASELINE, chosen)}
    assert [f["id"] for f in payload["formats"]] == chosen
    for fmt in payload["formats"]:
        assert fmt == cli._jsonable(solved[fmt["id"]].to_dict())
        assert set(fmt) == {"id", "name", "members", *api.MAP_VARIABLES, "credibility",
                            "equilibria"}
        assert set(fmt["credibility"]) == set(fmt["members"])
        assert len(fmt["equilibria"]) == fmt["equilibrium_count"]
        assert (fmt["escalation_probability_min"] <= fmt["escalation_probability"]
                <= fmt["escalation_probability_max"])
        for e in fmt["equilibria"]:
            assert set(e["honour_probability"]) == set(fmt["members"])
    neutrality = payload["formats"][2]
    assert neutrality["members"] == [] and neutrality["mean_credibility"] is None  # NaN


def test_solve_prints_a_readable_table():
    result = run("solve", BASELINE, "--format", "three_tier")
    assert result.returncode == 0, result.stderr
    [solved] = solve_formats(BASELINE, ["three_tier"])
    lines = [" ".join(line.split()) for line in result.stdout.splitlines()]
    assert f"Three-tier defence line (three_tier): regime {solved.regime}; members " \
           f"{', '.join(solved.members)}" in lines
    assert f"P(escalate) {solved.escalation_probability:.3f}" in lines
    assert f"P(response | escalation) {solved.response_probability:.3f}" in lines
    assert f"P(defended | escalation) {solved.defended_probability:.3f}" in lines
    assert f"deterrence margin {solved.deterrence_margin:+.3f}" in lines
    assert "equilibria 1" in lines  # one equilibrium: no table of them
    for member, value in solved.credibility.items():
        assert f"credibility {member} {value:.3f}" in lines
    assert "P(honour) US" not in result.stdout


@pytest.fixture(scope="module")
def volunteers(tmp_path_factory):
    """A scenario file and a formats folder where two alike members, either of whose
    responses is decisive, have three equilibria (a volunteer's dilemma)."""
    folder = tmp_path_factory.mktemp("volunteers")
    formats = folder / "formats"
    formats.mkdir()
    for path in FORMATS_DIR.glob("*.toml"):
        (formats / path.name).write_text(path.read_text())
    text = (FORMATS_DIR / "budapest.toml").read_text()
    (formats / "volunteers.toml").write_text(
        text.replace('id = "budapest"', 'id = "volunteers"').replace(
            "\n[response]", "\n[response]\ndecisive_probability = 0.95", 1))
    scenario = folder / "alike.toml"
    scenario.write_text(re.sub(r"(?m)^stake_in_ukraine = .*$", "stake_in_ukraine = 1.0",
                               Path(BASELINE).read_text()))
    return scenario, formats


def test_solve_prints_every_equilibrium_where_there_are_several(volunteers):
    scenario, formats = volunteers
    result = run("solve", scenario, "-f", "volunteers", "--formats-dir", formats)
    assert result.returncode == 0, result.stderr
    [solved] = solve_formats(scenario, ["volunteers"], formats)
    assert solved.equilibrium_count == 3
    lines = [" ".join(line.split()) for line in result.stdout.splitlines()]
    assert (f"P(escalate) {solved.escalation_probability:.3f} "
            f"[{solved.escalation_probability_min:.3f}–"
            f"{solved.escalation_probability_max:.3f}]") in lines
    assert "equilibria 3" in lines
    assert "equilibrium 1 2 3" in lines
    for member in ("US", "UK"):
        assert f"P(honour) {member} " + " ".join(
            f"{e.honour_probability[member]:.3f}" for e in solved.equilibria) in lines
    played = next(line for line in lines if line.startswith("played "))
    assert played.count("alone") == 1 and played.count("coordinated") == 1
    assert "certified yes yes yes" in lines
    brief = run("solve", scenario, "-f", "volunteers", "--formats-dir", formats, "--brief")
    assert brief.returncode == 0, brief.stderr
    [row] = [" ".join(line.split()) for line in brief.stdout.splitlines()
             if line.lstrip().startswith("volunteers ")]
    assert row.startswith(f"volunteers {solved.regime} {solved.escalation_probability:.3f} "
                          f"[{solved.escalation_probability_min:.3f}–")
    assert row.endswith(" 3")


def test_a_set_not_proven_complete_is_said_so(monkeypatch):
    """The solver's own flag, printed as it is (the cases where the search runs out of
    budget are slow to solve, so the result is the solver's with the flag changed)."""
    import dataclasses

    [solved] = solve_formats(BASELINE, ["budapest"])
    incomplete = dataclasses.replace(solved, equilibrium_set_complete=False)
    monkeypatch.setattr(api, "solve_formats", lambda *args, **kwargs: [incomplete])
    for options in ([], ["--brief"]):
        result = CliRunner().invoke(cli.app, ["solve", BASELINE, *options],
                                    env={"COLUMNS": "200"})  # a table's cells unwrapped
        assert result.exit_code == 0, result.output
        assert "1, not proven complete" in result.stdout


@pytest.mark.parametrize(("args", "needle"), [
    (("solve", "missing.toml"), "file not found"),
    (("solve", BASELINE, "--format", "natolite"), "unknown format id(s) ['natolite']"),
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
    (("--runs", "0"), "runs = 0"),
    (("--seed", "-1"), "seed = -1"),
    (("--format", "nope"), "unknown format id 'nope'"),
])
def test_run_rejects_bad_options(args, needle):
    result = run("run", BASELINE, "--steps", "2", *args)
    assert result.returncode == 2
    assert needle in " ".join(result.stderr.split()) and "Traceback" not in result.stderr


# ---------------------------------------------------------------------------------------
# A small sweep with a sensitivity design, run as a user runs it


#: The guarantors' readiness cost is paid in peacetime and does not enter the crisis
#: equilibrium (docs/model.md), so the exact game cannot vary along it: the outcomes
#: regime_deterred and escalation_probability are constant over the design, while the
#: simulated outcomes (whose learning pays that cost) are not.
SMALL_SWEEP = """name = "small"
scenario = {scenario}
formats = {formats}
replicates = 2
steps = 10
chunk_runs = 4

[[axes]]
path = "guarantors.*.readiness_cost"
low = 0.0
high = 0.1
count = 3

[sensitivity]
method = "sobol"
samples = 4
resamples = 10
"""
SMALL_FORMATS = ["nato", "budapest"]


def write_small_sweep(folder: Path, formats=SMALL_FORMATS) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "small.toml"
    path.write_text(SMALL_SWEEP.format(scenario=json.dumps(BASELINE),
                                       formats=json.dumps(formats)))
    return path


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """The small sweep run once, off a terminal on a 100-column console, into an archive
    folder whose path is longer than that."""
    folder = tmp_path_factory.mktemp("small")
    sweep_file = write_small_sweep(folder)
    archive = folder / ("a-folder-name-longer-than-the-console-" * 2) / "archive"
    archive.parent.mkdir()
    result = run("sweep", sweep_file, "--out", archive, columns=100)
    assert result.returncode == 0, result.stderr
    return sweep_file, archive, result


def test_progress_off_a_terminal_is_plain_lines(small):
    sweep_file, _, result = small
    chunks = len(api.load_plan(sweep_file).chunks())
    lines = result.stderr.splitlines()
    assert "\x1b" not in result.stderr and "\r" not in result.stderr  # no bar, no colours
    matches = [PROGRESS.fullmatch(line) for line in lines]
    assert all(matches), lines
    for m in matches:
        done, total = int(m["done"].replace(",", "")), int(m["total"].replace(",", ""))
        assert m["label"] == "sweep small" and m["unit"] == "chunks" and total == chunks
        assert int(m["percent"]) == round(100 * done / total)
    assert lines[0] == f"sweep small: 0/{chunks} chunks, 0%, ETA unknown"
    assert matches[-1]["done"] == str(chunks) and matches[-1]["then"] == "writing the archive"


def test_the_demo_kind_of_sweep_prints_no_third_party_warning(small):
    """Every stderr line is a progress line (above); none is a warning, and the outcome that
    is constant over the design is named in our words."""
    _, _, result = small
    assert not WARNING_TEXT.search(result.stderr), result.stderr
    constant = [line for line in result.stdout.splitlines()
                if "regime_deterred" in line or "escalation_probability" in line]
    assert len(constant) == 2 * len(SMALL_FORMATS)
    assert all("(outcome constant)" in line for line in constant)


def test_printed_paths_are_never_wrapped(small, tmp_path):
    _, archive, result = small
    assert len(str(archive)) > 100
    lines = result.stdout.splitlines()
    assert f"archive: {archive}" in lines
    assert f"report:  {archive.parent / 'archive.report' / 'index.html'}" in lines
    missing = tmp_path / ("a-folder-name-longer-than-the-console-" * 2) / "missing.toml"
    bad = run("solve", missing, columns=40)
    assert bad.returncode == 2
    assert len(bad.stderr.splitlines()) == 1 and str(missing) in bad.stderr


def test_verify_shows_progress_and_prints_json(small, tmp_path):
    _, archive, _ = small
    result = run("verify", archive, "--json")
    assert result.returncode == 0, result.stderr
    assert strict_json(result.stdout) == {"archive": str(archive), "reproduces": True,
                                          "problems": []}
    lines = result.stderr.splitlines()
    assert lines and all(PROGRESS.fullmatch(line) for line in lines), lines
    assert PROGRESS.fullmatch(lines[-1])["then"] == "comparing"
    assert {PROGRESS.fullmatch(line)["label"] for line in lines} == {"verify archive"}

    damaged = Path(shutil.copytree(archive, tmp_path / "damaged"))
    with (damaged / "data" / "simulation.nc").open("ab") as data:
        data.write(b"\0")
    result = run("verify", damaged, "--json")
    assert result.returncode == 1
    assert strict_json(result.stdout) == {
        "archive": str(damaged), "reproduces": False,
        "problems": ["data/simulation.nc: changed (checksum differs)"]}


def test_every_json_output_is_valid_json(small, tmp_path):
    _, archive, _ = small
    commands = [
        ("formats", "--json"),
        ("solve", BASELINE, "-f", "nato", "--json"),
        # with so few rounds some summary has no run to count: NaN, printed as null
        ("run", BASELINE, "-f", "nato", "--runs", "3", "--steps", "5", "--json"),
        ("compare", archive, "nato", "budapest", "--json"),
        ("discover", archive, "--json"),
        ("report", archive, "--out", tmp_path / "r.html", "--json"),
    ]
    for args in commands:
        result = run(*args)
        assert result.returncode == 0, (args, result.stderr)
        strict_json(result.stdout)
    assert strict_json(result.stdout) == {"report": str(tmp_path / "r.html")}
    assert (tmp_path / "r.html").is_file()


def test_non_finite_numbers_become_null():
    value = {"nan": float("nan"), "inf": np.float64(np.inf), "list": [1.5, -np.inf],
             "array": np.array([np.nan, 2.0]), "int": np.int64(3), "path": Path("a/b"),
             "flag": np.bool_(True)}
    printed = io.StringIO()
    sys.stdout, saved = printed, sys.stdout
    try:
        cli._print_json(value)
    finally:
        sys.stdout = saved
    assert strict_json(printed.getvalue()) == {
        "nan": None, "inf": None, "list": [1.5, None], "array": [None, 2.0], "int": 3,
        "path": "a/b", "flag": True}


def test_sweep_json_with_a_results_dir_and_a_formats_dir(tmp_path):
    """The archive goes under --results-dir; the formats come from --formats-dir (a format
    that exists only there)."""
    formats = tmp_path / "formats"
    formats.mkdir()
    text = (FORMATS_DIR / "nato.toml").read_text()
    assert 'id = "nato"' in text
    (formats / "solo.toml").write_text(text.replace('id = "nato"', 'id = "solo"'))
    sweep_file = write_small_sweep(tmp_path, formats=["solo"])
    results = tmp_path / "results"
    result = run("sweep", sweep_file, "--results-dir", results, "--formats-dir", formats,
                 "--no-report", "--json")
    assert result.returncode == 0, result.stderr
    report = strict_json(result.stdout)
    archive = Path(report["archive"])
    assert archive.parent == results and archive.name.startswith("small-")
    assert archive.is_dir() and sorted(results.iterdir()) == [archive]
    assert report["report"] is None and report["failures"] == [] and report["resume"] is None
    assert [row["format"] for row in report["summary"]] == ["solo"]
    for row in report["summary"]:
        for share in ("escalation_frequency", "deterred_share", "points_deterred_exact",
                      "escalation_probability_exact"):
            assert 0 <= row[share] <= 1
        assert row["escalation_frequency"] + row["deterred_share"] == pytest.approx(1)
    indices = report["sensitivity"]
    assert indices["method"] == "sobol" and indices["index"] == "ST"
    assert indices["design_points"] == 4 * (1 + 2)  # N (k + 2) for k = 1 parameter
    rows = {row["outcome"]: row for row in indices["rows"]}
    assert set(rows) == set(api.SENSITIVITY_OUTPUTS)
    for exact in ("regime_deterred", "escalation_probability"):  # readiness: not in a crisis
        assert rows[exact]["parameter"] is None
        assert rows[exact]["note"] == "outcome constant"


@pytest.mark.parametrize("command", ["sweep", "sensitivity"])
def test_sweep_and_sensitivity_read_the_formats_dir(command, tmp_path):
    formats = tmp_path / "formats"
    formats.mkdir()
    shutil.copy(FORMATS_DIR / "nato.toml", formats)
    sweep_file = write_small_sweep(tmp_path)  # nato and budapest
    result = run(command, sweep_file, "--formats-dir", formats, "--out", tmp_path / "a")
    assert result.returncode == 2
    assert "['budapest']" in result.stderr and "['nato']" in result.stderr
    assert not (tmp_path / "a").exists()


def test_a_sensitivity_sweep_prints_json(tmp_path):
    sweep_file = write_small_sweep(tmp_path)
    result = run("sensitivity", sweep_file, "--method", "morris", "--samples", "4",
                 "--output", "regime_deterred", "--output", "escalation_frequency",
                 "--out", tmp_path / "a", "--json")
    assert result.returncode == 0, result.stderr
    report = strict_json(result.stdout)
    assert report["archive"] == str(tmp_path / "a")
    assert report["report"] == str(tmp_path / "a.report" / "index.html")
    indices = report["sensitivity"]
    assert indices["method"] == "morris" and indices["index"] == "mu_star"
    assert indices["design_points"] == 4 * (1 + 1)  # N (k + 1) trajectories' points
    assert [(r["format"], r["outcome"]) for r in indices["rows"]] == [
        (f, o) for f in SMALL_FORMATS for o in ("regime_deterred", "escalation_frequency")]
    lines = result.stderr.splitlines()
    assert all(PROGRESS.fullmatch(line)["label"] == "sensitivity small" for line in lines)


def test_failed_chunks_exit_1_with_json_naming_how_to_resume(tmp_path, monkeypatch):
    from deterrence.sweep import execute

    def broken(task):
        raise RuntimeError("worker lost")

    monkeypatch.setattr(execute, "run_chunk", broken)
    out = tmp_path / "a"
    result = CliRunner().invoke(cli.app, ["sweep", str(write_small_sweep(tmp_path)),
                                          "--out", str(out), "--json"])
    assert result.exit_code == 1, result.output
    report = strict_json(result.stdout)
    assert report["archive"] is None and report["summary"] == []
    assert report["failures"] and all("worker lost" in f for f in report["failures"])
    assert report["resume"] == f"--out {out} --resume a"
    assert not out.exists()


# ---------------------------------------------------------------------------------------
# --resume, --out and --results-dir


@pytest.mark.parametrize(("options", "needles"), [
    (("--out", "{tmp}/a", "--resume", "b"), ["--resume 'b'", "'a'", "--resume a"]),
    (("--resume", "x/a"), ["--resume 'x/a'", "folder name"]),
    (("--resume", ".."), ["--resume '..'"]),
    (("--out", "{tmp}/a", "--results-dir", "{tmp}/r"), ["--results-dir", "give one"]),
    (("--results-dir", "{tmp}/r", "--resume", "nope"), ["{tmp}/r/.nope.partial",
                                                        "no interrupted sweep"]),
])
def test_resume_out_and_results_dir_are_never_silently_ignored(options, needles, tmp_path):
    sweep_file = write_small_sweep(tmp_path / "in")
    options = [o.format(tmp=tmp_path) for o in options]
    result = CliRunner().invoke(cli.app, ["sweep", str(sweep_file), *options])
    assert result.exit_code == 2, result.output
    assert len(result.stderr.splitlines()) == 1
    for needle in needles:
        assert needle.format(tmp=tmp_path) in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in"]  # nothing written


def test_resume_finds_the_interrupted_sweep_under_the_results_dir(tmp_path):
    from deterrence.archive import write

    sweep_file = write_small_sweep(tmp_path)
    results = tmp_path / "results"
    staging = write.staging_for(results / "job")
    write.start_staging(api.load_plan(sweep_file), sweep_file, staging)  # no chunk done yet
    result = run("sweep", sweep_file, "--results-dir", results, "--resume", "job",
                 "--no-report", "--json")
    assert result.returncode == 0, result.stderr
    assert strict_json(result.stdout)["archive"] == str(results / "job")
    assert (results / "job" / "manifest.json").is_file() and not staging.exists()


# ---------------------------------------------------------------------------------------
# Exit codes, usage errors and choices


def test_an_internal_error_exits_3_with_one_line_and_a_traceback_file(tmp_path,
                                                                      monkeypatch):
    import tempfile

    def broken(*args, **kwargs):
        raise RuntimeError("the catalogue\nexploded")

    monkeypatch.setattr(api, "load_catalogue", broken)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    result = CliRunner().invoke(cli.app, ["formats"])
    assert result.exit_code == cli.EXIT_INTERNAL == 3
    assert result.stdout == "" and "Traceback" not in result.output
    [line] = result.stderr.splitlines()
    found = re.fullmatch(r"internal error: RuntimeError: the catalogue exploded "
                         r"\(traceback in (?P<path>.+)\)", line)
    assert found, line
    saved = Path(found["path"])
    assert saved.parent == tmp_path and saved.name.startswith("deterrence-crash-")
    text = saved.read_text()
    assert "Traceback (most recent call last)" in text and "exploded" in text
    assert "in broken" in text  # where it failed

    debug = CliRunner().invoke(cli.app, ["--debug", "formats"])
    assert debug.exit_code == 3
    assert "Traceback (most recent call last)" in debug.stderr and "in broken" in debug.stderr


@pytest.mark.parametrize(("args", "needle"), [
    (("formats", "--bogus"), "No such option"),
    (("solve",), "Missing argument"),
    (("run", BASELINE, "--runs", "many"), "Invalid value"),
    (("frobnicate",), "No such command"),
    # the logit precision of v1 is gone: private resolve scales replace it
    (("solve", BASELINE, "--rationality", "10"), "No such option"),
    (("run", BASELINE, "--rationality", "10"), "No such option"),
])
def test_usage_errors_exit_2_with_the_usage_text(args, needle):
    result = run(*args)
    assert result.returncode == 2
    assert needle in result.stderr and "Usage:" in result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""


@pytest.mark.parametrize(("command", "option", "allowed"), [
    ("run", "--engine", api.ENGINES),
    ("sweep", "--executor", api.EXECUTORS),
    ("sensitivity", "--executor", api.EXECUTORS),
    ("sensitivity", "--method", ("sobol", "morris")),
    ("sensitivity", "--output", ("escalation_frequency", "abandoned_frequency",
                                 "regime_deterred", "escalation_probability")),
    ("discover", "--outcome", ("escalation_frequency", "escalations_per_year",
                               "abandoned_given_escalation", "deterred_share",
                               "first_escalation", "end_round", "regime_not_deterred")),
])
def test_choices_are_listed_in_help_and_others_refused(command, option, allowed):
    runner = CliRunner()
    shown = runner.invoke(cli.app, [command, "--help"], env={"COLUMNS": "300"})
    assert shown.exit_code == 0
    [line] = [line for line in shown.stdout.splitlines()
              if line.lstrip("│ ").startswith(f"{option} ")]
    assert "|".join(allowed) in line
    bad = runner.invoke(cli.app, [command, "file.toml", option, "nonsense"])
    assert bad.exit_code == 2
    assert f"Invalid value for '{option}'" in bad.stderr and "'nonsense'" in bad.stderr
    assert "Traceback" not in bad.output


# ---------------------------------------------------------------------------------------
# Progress lines and warnings, in-process


def test_progress_lines_come_every_interval_with_an_eta():
    now = [0.0]
    stream = io.StringIO()
    lines = cli.ProgressLines("sweep x", "chunks", 12, then="writing the archive",
                              interval=5.0, clock=lambda: now[0], stream=stream)
    for second in range(13):  # one chunk a second
        now[0] = float(second)
        lines(second, 12)
    lines(12, 12)  # a repeated final update prints nothing more
    assert stream.getvalue().splitlines() == [
        "sweep x: 0/12 chunks, 0%, ETA unknown",
        "sweep x: 5/12 chunks, 42%, ETA 0:00:07",   # 7 chunks left at one a second
        "sweep x: 10/12 chunks, 83%, ETA 0:00:02",
        "sweep x: 12/12 chunks, 100%, done in 0:00:12; writing the archive",
    ]


def test_progress_lines_when_resuming_time_only_the_new_work():
    """A resumed sweep starts with chunks already done: the rate counts only new ones."""
    now = [100.0]
    stream = io.StringIO()
    lines = cli.ProgressLines("verify a", "chunks", None, clock=lambda: now[0],
                              stream=stream)
    lines(40, 100)
    now[0] = 110.0
    lines(50, 100)  # 10 chunks in 10 s: 50 left take 50 s
    assert stream.getvalue().splitlines() == ["verify a: 40/100 chunks, 40%, ETA unknown",
                                              "verify a: 50/100 chunks, 50%, ETA 0:00:50"]


def test_an_outcome_constant_on_the_sobol_base_sample_is_named_without_a_warning(tmp_path):
    """SALib warns (and returns indices of 0) when the outcome is constant over the base
    samples A and B but not over the design; the analysis keeps the warning in and the
    summary says so."""
    import xarray as xr
    from SALib.analyze import sobol as salib_sobol

    from deterrence.analysis.sensitivity import analyse, indices_dataset
    from deterrence.sweep.design import SensitivitySpec, design, problem

    names, low, high = ["a", "b"], [0.0, 0.0], [1.0, 1.0]
    spec = SensitivitySpec(method="sobol", samples=8, resamples=20,
                           outputs=["escalation_frequency"])
    points = design(spec, names, low, high, 1)
    values = np.zeros(len(points))
    step = len(names) + 2  # SALib's rows: A, AB_1 .. AB_k, B for each base sample
    for j in range(len(names)):
        values[j + 1::step] = 1.0  # varies only on the mixed rows
    with pytest.warns(UserWarning, match="Constant values encountered"):
        salib_sobol.analyze(problem(names, low, high), values, calc_second_order=False,
                            num_resamples=20, seed=1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = analyse(spec, names, low, high, points, values, 1)
    assert not result["ST"].any()

    sim = xr.Dataset({"escalation_frequency": (("format", "sample", "replicate"),
                                               values.reshape(1, -1, 1)),
                      "abandoned_given_escalation": (("format", "sample", "replicate"),
                                                     np.zeros((1, len(points), 1)))},
                     coords={"format": ["f"]})
    exact = xr.Dataset({"regime": (("format", "sample"), np.zeros((1, len(points))))},
                       coords={"format": ["f"]})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        indices = indices_dataset(spec, names, low, high, points, sim, exact, 1)
    (tmp_path / api.INDICES_FILE).parent.mkdir(parents=True)
    indices.to_netcdf(tmp_path / api.INDICES_FILE, engine="scipy")
    [row] = cli._sensitivity_summary(tmp_path)["rows"]
    assert row["parameter"] is None and row["note"] == "constant on the base sample"


def test_comparing_a_format_with_itself_prints_no_warning(small):
    """Identical pairs have zero spread: the statistics must say so without a warning."""
    _, archive, _ = small
    result = run("compare", archive, "nato", "nato", "--json")
    assert result.returncode == 0 and result.stderr == ""
    for row in strict_json(result.stdout)["outcomes"]:
        assert row["points_lower"] == row["points_higher"] == 0
