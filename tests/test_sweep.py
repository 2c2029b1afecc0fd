"""Parameter sweeps: same bytes on every executor and chunking, interrupted sweeps resume to
the same archive, failures are reported, archives verify (and tampering is caught), config
errors stop a sweep before any work, and sampled plans are reproducible."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from deterrence import api
from deterrence.archive import manifest as archive_manifest
from deterrence.archive import write
from deterrence.game.config import SCENARIOS_DIR, ConfigError
from deterrence.game.payoffs import build_game
from deterrence.solve.equilibrium import solve_grid
from deterrence.sweep import datasets, execute

ROOT = Path(__file__).resolve().parent.parent
BASELINE = SCENARIOS_DIR / "baseline.toml"
FORMATS = ["budapest", "coalition", "nato_lite"]  # in catalogue (file name) order
GRID_AXES = (
    {"path": "format.commitment_bindingness", "low": 0.0, "high": 1.0, "count": 3},
    {"path": "russia.status_quo_value", "low": 0.1, "high": 0.7, "count": 3},
)
RANGE_AXES = (
    {"path": "russia.war_cost", "low": 0.05, "high": 0.5},
    {"path": "guarantors.*.honouring_cost", "low": 0.1, "high": 0.8},
    {"path": "format.coordination_probability", "low": 0.2, "high": 0.9},
)


# ---------------------------------------------------------------------------------------
# Helpers


def _toml(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return json.dumps(value)  # strings and lists of strings or numbers are valid TOML


def write_sweep(folder: Path, filename: str = "sweep.toml", axes=GRID_AXES, **fields) -> Path:
    """A small sweep file: 3 formats, 3 x 3 grid, 2 replicates, 20 steps, 5 runs a chunk.
    A field given as None is left out of the file."""
    spec = {"name": "small", "scenario": str(BASELINE), "formats": FORMATS, "replicates": 2,
            "steps": 20, "chunk_runs": 5}
    spec.update(fields)
    lines = [f"{key} = {_toml(value)}" for key, value in spec.items() if value is not None]
    for axis in axes:
        lines += ["", "[[axes]]"]
        lines += [f"{key} = {_toml(value)}" for key, value in axis.items() if value is not None]
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / filename
    path.write_text("\n".join(lines) + "\n")
    return path


def run_api(sweep_file: Path, target: Path, executor=None, name: str = "inprocess") -> Path:
    archive, failures = api.run_sweep(api.load_plan(sweep_file), target,
                                     executor or execute.InProcessExecutor(), name,
                                     source=sweep_file)
    assert failures == []
    assert archive == target
    return archive


def as_read(name: str, summary):
    """A run's summary as an archive holds it: a missing code (-1: no escalation, no end)
    is NaN."""
    missing = "_FillValue" in datasets.SUMMARY_DESCRIPTIONS[name]
    return np.nan if missing and summary == -1 else summary


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def digests(archive: Path) -> dict[str, str]:
    return {name: sha256(archive / name)
            for name in (datasets.SIMULATION_FILE, datasets.EXACT_FILE)}


def cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "deterrence", *map(str, args)],
                          capture_output=True, text=True, timeout=timeout, cwd=ROOT)


def flat(text: str) -> str:
    return " ".join(text.split())


def chunk_files(staging: Path) -> list[Path]:
    """Completed chunk files (a ``.partial.npz`` is one being written)."""
    return sorted(p for p in (staging / "chunks").glob("*.npz")
                  if not p.name.endswith(".partial.npz"))


def load(path: Path) -> xr.Dataset:
    with xr.open_dataset(path, engine="scipy") as ds:
        return ds.load()


def rewrite(archive: Path, name: str, dataset: xr.Dataset) -> None:
    """Replace a data file and update its checksum, so that only the re-run can tell."""
    dataset.to_netcdf(archive / name, engine="scipy")
    manifest = json.loads((archive / "manifest.json").read_text())
    manifest["files"][name] = sha256(archive / name)
    archive_manifest.write_manifest(archive, manifest)


@dataclass(frozen=True)
class Reference:
    sweep: Path
    archive: Path
    digests: dict[str, str]


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Reference:
    """The small sweep run in-process, uninterrupted."""
    folder = tmp_path_factory.mktemp("reference")
    sweep_file = write_sweep(folder)
    archive = run_api(sweep_file, folder / "archive")
    return Reference(sweep_file, archive, digests(archive))


@pytest.fixture
def archive(reference, tmp_path) -> Path:
    """A copy of the reference archive that a test may damage."""
    return Path(shutil.copytree(reference.archive, tmp_path / "archive"))


# ---------------------------------------------------------------------------------------
# The archive


def test_archive_holds_data_config_and_checksums(reference):
    archive = reference.archive
    assert not write.staging_for(archive).exists()
    files = sorted(p.relative_to(archive).as_posix() for p in archive.rglob("*") if p.is_file())
    assert files == ["config/plan.json", "config/sweep.toml", "data/exact.nc",
                     "data/simulation.nc", "manifest.json"]
    manifest = archive_manifest.read_manifest(archive)
    assert manifest["files"] == {f: sha256(archive / f) for f in files if f != "manifest.json"}
    assert manifest["sweep"] == "small" and manifest["executor"] == "inprocess"
    assert manifest["runs"] == 3 * 9 * 2
    assert manifest["seed"] == 20250801  # the scenario's, as the sweep gives none
    assert (archive / "config" / "sweep.toml").read_text() == reference.sweep.read_text()

    sim = load(archive / "data" / "simulation.nc")
    # one dimension per axis, named by its path with "__" for "."
    names = ["format__commitment_bindingness", "russia__status_quo_value"]
    assert sim.escalation_frequency.dims == ("format", *names, "replicate")
    assert sim.escalation_frequency.shape == (3, 3, 3, 2)
    assert list(sim["format"].values) == FORMATS
    np.testing.assert_array_equal(sim[names[0]].values, [0.0, 0.5, 1.0])
    np.testing.assert_array_equal(sim[names[1]].values, np.linspace(0.1, 0.7, 3))
    assert [sim[n].attrs["parameter_path"] for n in names] == [a["path"] for a in GRID_AXES]
    assert len(np.unique(sim.escalation_frequency.values)) > 1  # not a flat result
    exact = load(archive / "data" / "exact.nc")
    assert exact.regime.dims == ("format", *names)
    assert len(np.unique(exact.regime.values)) > 1


def test_every_cell_holds_the_run_and_the_solution_of_its_parameters(reference):
    """Run ``r`` of point ``c`` is run index ``c * replicates + r``, alone or in a chunk."""
    plan = api.load_plan(reference.sweep)
    sim = load(reference.archive / "data" / "simulation.nc")
    exact = load(reference.archive / "data" / "exact.nc")
    for f, fid in enumerate(plan.formats):
        for cell in (1, 3, 5, 8):  # off the diagonal too: a transposed grid fails
            index = np.unravel_index(cell, plan.grid_shape)
            for rep in range(plan.spec.replicates):
                run = cell * plan.spec.replicates + rep
                alone = execute.run_chunk(execute.chunk_task(plan, fid, run, run + 1))
                for name in datasets.OUTPUTS:
                    stored = sim[name].values[(f, *index, rep)]
                    np.testing.assert_array_equal(stored, as_read(name, alone[name][0]),
                                                  err_msg=name)
            point = {a.path: plan.points[cell:cell + 1, j] for j, a in enumerate(plan.spec.axes)}
            solved = solve_grid(build_game(plan.scenario, plan.formats[fid], point),
                                deterred_below=0.5, defended_below=0.5, threads=1)
            for name in datasets.EXACT_OUTPUTS:
                assert exact[name].values[(f, *index)] == getattr(solved, name)[0], name
            for g, gid in enumerate(exact.guarantor.values):
                stored = exact.credibility.values[(f, *index, g)]
                if gid in solved.guarantor_ids:
                    assert stored == solved.credibility[0, solved.guarantor_ids.index(gid)]
                else:
                    assert np.isnan(stored)


# ---------------------------------------------------------------------------------------
# 1. Executors and chunking do not change the bytes


@pytest.mark.parametrize("kind", ["processes", "dask"])
def test_every_executor_writes_byte_identical_data(kind, reference, tmp_path):
    executor = api.make_executor(kind, 2)
    try:
        archive = run_api(reference.sweep, tmp_path / kind, executor, kind)
    finally:
        executor.shutdown()
    assert digests(archive) == reference.digests
    assert archive_manifest.read_manifest(archive)["executor"] == kind


@pytest.mark.parametrize(("chunk_runs", "chunks"), [(1, 54), (7, 9), (18, 3), (1000, 3)])
def test_results_do_not_depend_on_the_chunking(chunk_runs, chunks, reference, tmp_path):
    sweep_file = write_sweep(tmp_path, chunk_runs=chunk_runs)
    assert len(api.load_plan(sweep_file).chunks()) == chunks
    assert digests(run_api(sweep_file, tmp_path / "archive")) == reference.digests


# ---------------------------------------------------------------------------------------
# 2. Kill and resume


def test_a_killed_sweep_resumes_to_the_same_archive(tmp_path):
    sweep_file = write_sweep(tmp_path, steps=400, chunk_runs=3)  # 18 chunks
    total = len(api.load_plan(sweep_file).chunks())
    uninterrupted = run_api(sweep_file, tmp_path / "uninterrupted")

    out = tmp_path / "results" / "killed"
    staging = write.staging_for(out)
    with (tmp_path / "log.txt").open("w") as log:
        proc = subprocess.Popen([sys.executable, "-m", "deterrence", "sweep", str(sweep_file),
                                 "--out", str(out), "--executor", "inprocess"],
                                stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
        try:
            deadline = time.monotonic() + 60
            while (not staging.is_dir() or len(chunk_files(staging)) < 2) \
                    and proc.poll() is None and time.monotonic() < deadline:
                time.sleep(0.005)
            assert proc.poll() is None, "the sweep ended before it could be killed"
            os.kill(proc.pid, signal.SIGKILL)
        finally:
            proc.kill()
            proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL

    assert not out.exists()  # never half-written
    done = chunk_files(staging)
    assert 2 <= len(done) < total, "chunk files appeared all at once, at the end"
    for chunk in done:
        with np.load(chunk) as data:
            assert sorted(data.files) == sorted(datasets.OUTPUTS)
    assert write.plan_file(staging).is_file()

    # Starting afresh over the interrupted sweep is refused, and so is resuming it with a
    # different sweep; neither touches the staging folder.
    fresh = cli("sweep", sweep_file, "--out", out)
    assert fresh.returncode == 2, fresh.stderr
    assert "--resume" in flat(fresh.stderr) and "Traceback" not in fresh.stderr
    other = write_sweep(tmp_path, "other.toml", steps=401, chunk_runs=3)
    changed = cli("sweep", other, "--out", out, "--resume", out.name)
    assert changed.returncode == 2, changed.stderr
    assert "different sweep" in flat(changed.stderr) and "Traceback" not in changed.stderr
    assert chunk_files(staging) == done and not out.exists()

    resumed = cli("sweep", sweep_file, "--out", out, "--resume", out.name)
    assert resumed.returncode == 0, resumed.stderr
    assert "archive:" in resumed.stdout
    assert out.is_dir() and not staging.exists()
    assert digests(out) == digests(uninterrupted)
    manifest = archive_manifest.read_manifest(out)
    assert archive_manifest.check_files(out, manifest) == []
    assert manifest["files"]["config/sweep.toml"] == sha256(sweep_file)


def test_in_process_each_chunk_is_saved_before_the_next_is_computed(reference, tmp_path,
                                                                   monkeypatch):
    """"Each finished chunk is written to the sweep's staging folder at once": otherwise an
    interrupted in-process sweep (the command line's default) has nothing to resume from."""
    plan = api.load_plan(reference.sweep)
    target = tmp_path / "archive"
    staging = write.staging_for(target)
    real, saved = execute.run_chunk, []

    def observing(task):
        saved.append(len(chunk_files(staging)))
        return real(task)

    monkeypatch.setattr(execute, "run_chunk", observing)
    archive, failures = api.run_sweep(plan, target, execute.InProcessExecutor(), "inprocess")
    assert failures == [] and digests(archive) == reference.digests
    assert saved == list(range(len(plan.chunks()))), "chunk files saved when each chunk began"


def test_resume_runs_only_the_missing_chunks(reference, tmp_path, monkeypatch):
    plan = api.load_plan(reference.sweep)
    target = tmp_path / "archive"
    staging = write.staging_for(target)
    write.start_staging(plan, reference.sweep, staging)
    (staging / "chunks").mkdir()
    for fid, start, stop in plan.chunks()[::2]:  # every other chunk done before a "crash"
        np.savez(staging / "chunks" / f"{fid}-{start:012d}.npz",
                 **execute.run_chunk(execute.chunk_task(plan, fid, start, stop)))
    real, calls = execute.run_chunk, []

    def counting(task):
        fid, start = task.fmt.id, task.start
        calls.append((fid, start))
        return real(task)

    monkeypatch.setattr(execute, "run_chunk", counting)
    archive, failures = api.run_sweep(plan, target, execute.InProcessExecutor(), "inprocess",
                                     resume=True)
    assert failures == []
    assert sorted(calls) == sorted((f, s) for f, s, _ in plan.chunks()[1::2])
    assert digests(archive) == reference.digests


def test_resume_without_an_interrupted_sweep_and_reuse_of_an_archive_are_refused(
        reference, tmp_path):
    plan = api.load_plan(reference.sweep)
    with pytest.raises(ConfigError, match="no interrupted sweep"):
        api.run_sweep(plan, tmp_path / "new", execute.InProcessExecutor(), "inprocess", resume=True)
    assert list(tmp_path.iterdir()) == []
    existing = tmp_path / "existing"
    existing.mkdir()
    (existing / "keep.txt").write_text("mine")
    result = cli("sweep", reference.sweep, "--out", existing)
    assert result.returncode == 2
    assert "already exists" in flat(result.stderr) and "Traceback" not in result.stderr
    assert [p.name for p in existing.iterdir()] == ["keep.txt"]
    assert not write.staging_for(existing).exists()


# ---------------------------------------------------------------------------------------
# 3. A Dask worker dies mid-sweep


def test_a_dask_worker_killed_mid_sweep_does_not_change_the_result(tmp_path):
    from dask.distributed import Client, LocalCluster

    sweep_file = write_sweep(tmp_path, formats=["budapest", "nato_lite"], steps=400,
                             chunk_runs=3)  # 12 chunks of a few tenths of a second
    plan = api.load_plan(sweep_file)
    in_process = run_api(sweep_file, tmp_path / "inprocess")

    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                           host="127.0.0.1", dashboard_address=None)
    client = Client(cluster)
    executor = api.make_executor("dask", scheduler=cluster.scheduler_address)
    killed: list[tuple[int, int]] = []

    def kill_a_busy_worker(done: int, total: int) -> None:
        if done < 1 or killed:
            return
        # The first chunk is written; kill a worker that is running one of the others.
        busy = [addr for addr, keys in client.processing().items() if keys]
        assert busy, "no chunk running"
        pid = client.run(os.getpid, workers=[busy[0]])[busy[0]]
        os.kill(pid, signal.SIGKILL)
        killed.append((pid, total - done))

    try:
        archive, failures = api.run_sweep(plan, tmp_path / "dask", executor, "dask",
                                         progress=kill_a_busy_worker)
        alive = set(client.run(os.getpid).values())
    finally:
        executor.shutdown()
        client.close()
        cluster.close()
    assert killed, "no worker was killed"
    pid, remaining = killed[0]
    assert remaining > 2 and pid not in alive
    assert failures == []
    assert digests(archive) == digests(in_process)


# ---------------------------------------------------------------------------------------
# 4. Failures are reported, not dropped


@pytest.mark.parametrize("retries", [0, 2])
def test_a_chunk_that_always_fails_is_reported_and_kept_for_resume(retries, reference,
                                                                    tmp_path, monkeypatch):
    plan = api.load_plan(reference.sweep)
    real, calls = execute.run_chunk, []

    def broken(task):
        fid, start = task.fmt.id, task.start
        calls.append((fid, start))
        if (fid, start) == ("coalition", 5):
            raise RuntimeError("simulated worker failure")
        return real(task)

    monkeypatch.setattr(execute, "run_chunk", broken)
    target = tmp_path / "archive"
    archive, failures = api.run_sweep(plan, target, execute.InProcessExecutor(), "inprocess",
                                     retries=retries)
    assert archive is None and not target.exists()
    assert len(failures) == 1
    assert "chunk coalition runs 5-9" in failures[0]
    assert "simulated worker failure" in failures[0]
    assert calls.count(("coalition", 5)) == retries + 1
    assert len(calls) == len(plan.chunks()) + retries  # every other chunk ran once
    staging = write.staging_for(target)
    assert write.plan_file(staging).is_file()
    assert [p.name for p in chunk_files(staging)] == sorted(
        f"{f}-{s:012d}.npz" for f, s, _ in plan.chunks() if (f, s) != ("coalition", 5))

    monkeypatch.setattr(execute, "run_chunk", real)
    archive, failures = api.run_sweep(plan, target, execute.InProcessExecutor(), "inprocess",
                                     resume=True)
    assert failures == []
    assert digests(archive) == reference.digests


def test_a_chunk_that_fails_once_is_retried(reference, tmp_path, monkeypatch):
    plan = api.load_plan(reference.sweep)
    real, calls = execute.run_chunk, []

    def flaky(task):
        fid, start = task.fmt.id, task.start
        calls.append((fid, start))
        if (fid, start) == ("nato_lite", 10) and calls.count((fid, start)) == 1:
            raise OSError("lost connection")
        return real(task)

    monkeypatch.setattr(execute, "run_chunk", flaky)
    archive, failures = api.run_sweep(plan, tmp_path / "archive", execute.InProcessExecutor(),
                                     "inprocess")
    assert failures == []
    assert calls.count(("nato_lite", 10)) == 2
    assert digests(archive) == reference.digests


# ---------------------------------------------------------------------------------------
# 5. verify


def test_a_fresh_archive_verifies(archive):
    assert api.verify(archive) == []
    assert sorted(p.name for p in archive.parent.iterdir()) == ["archive"]  # no scratch left
    result = cli("verify", archive)
    assert result.returncode == 0, result.stderr
    assert "reproduces bit for bit" in flat(result.stdout)


def test_an_archive_with_formats_in_any_order_verifies(tmp_path):
    """The sweep file's order of formats is the archive's; the re-run must compare like with
    like (config/plan.json is written with sorted keys, so its formats come back sorted)."""
    sweep_file = write_sweep(tmp_path, formats=["nato_lite", "budapest"])
    archive = run_api(sweep_file, tmp_path / "archive")
    assert list(load(archive / "data" / "simulation.nc")["format"].values) == [
        "nato_lite", "budapest"]
    assert api.verify(archive) == []


def test_a_changed_data_file_fails_verify_naming_it(archive):
    path = archive / "data" / "simulation.nc"
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))
    assert api.verify(archive) == ["data/simulation.nc: changed (checksum differs)"]
    result = cli("verify", archive)
    assert result.returncode == 1
    assert "data/simulation.nc" in result.stderr and "Traceback" not in result.stderr


def _edit_manifest(archive: Path, edit) -> None:
    """Edit the manifest's files table and write it with a valid digest, so that the
    checksums are what tells."""
    manifest = json.loads((archive / "manifest.json").read_text())
    edit(manifest["files"])
    archive_manifest.write_manifest(archive, manifest)


@pytest.mark.parametrize(("edit", "expected"), [
    (lambda files: files.update({"data/exact.nc": "0" * 64}),
     ["data/exact.nc: changed (checksum differs)"]),
    (lambda files: files.pop("config/plan.json"), ["config/plan.json: not in the manifest"]),
    (lambda files: files.update({"data/extra.nc": "0" * 64}), ["data/extra.nc: missing"]),
], ids=["checksum", "file-unlisted", "file-added"])
def test_an_edited_manifest_fails_verify_naming_the_file(edit, expected, archive):
    _edit_manifest(archive, edit)
    assert api.verify(archive) == expected


def test_extra_and_missing_files_are_reported(archive):
    (archive / "notes.txt").write_text("added later")
    (archive / "data" / "exact.nc").unlink()
    assert api.verify(archive) == ["data/exact.nc: missing", "notes.txt: not in the manifest"]
    result = cli("verify", archive)
    assert result.returncode == 1
    assert "notes.txt" in result.stderr and "data/exact.nc" in result.stderr


def test_changed_data_with_a_matching_checksum_fails_the_re_run(archive):
    sim = load(archive / "data" / "simulation.nc")
    sim["escalation_frequency"][0, 1, 2, 1] += 0.125
    rewrite(archive, "data/simulation.nc", sim)
    assert archive_manifest.check_files(archive, archive_manifest.read_manifest(archive)) == []
    assert api.verify(archive) == ["data/simulation.nc: escalation_frequency differs"]

    exact = load(archive / "data" / "exact.nc")
    exact["deterrence_margin"][2, 0, 0] += 0.125
    rewrite(archive, "data/exact.nc", exact)
    assert api.verify(archive) == ["data/simulation.nc: escalation_frequency differs",
                                  "data/exact.nc: deterrence_margin differs"]
    result = cli("verify", archive)
    assert result.returncode == 1
    assert "escalation_frequency" in result.stderr
    assert "deterrence_margin" in result.stderr


def test_relabelled_data_with_a_matching_checksum_fails_the_re_run(archive):
    """The numbers are in place but labelled with the wrong formats: the coordinates are
    data too, and a re-run must catch them."""
    sim = load(archive / "data" / "simulation.nc")
    rewrite(archive, "data/simulation.nc",
            sim.assign_coords(format=["coalition", "budapest", "nato_lite"]))
    problems = api.verify(archive)
    assert problems and all(p.startswith("data/simulation.nc") for p in problems)


def _no_manifest(archive: Path) -> None:
    (archive / "manifest.json").unlink()


def _invalid_json(archive: Path) -> None:
    (archive / "manifest.json").write_text('{"files": {')


def _no_files_table(archive: Path) -> None:
    archive_manifest.write_manifest(archive, {"files": ["data/exact.nc"]})


def _no_plan(archive: Path) -> None:
    write.plan_file(archive).unlink()
    _edit_manifest(archive, lambda files: files.pop("config/plan.json"))


def _replace_plan(archive: Path, text: str) -> None:
    write.plan_file(archive).write_text(text)
    _edit_manifest(archive, lambda files: files.update(
        {"config/plan.json": sha256(write.plan_file(archive))}))


def _plan_invalid_json(archive: Path) -> None:
    _replace_plan(archive, '{"spec": ')


def _plan_not_a_table(archive: Path) -> None:
    _replace_plan(archive, '["spec"]')


def _plan_without_keys(archive: Path) -> None:
    _replace_plan(archive, '{"spec": {"name": "small"}}')


def _unreadable_data(archive: Path) -> None:
    (archive / "data" / "exact.nc").write_bytes(b"not a netcdf file")
    _edit_manifest(archive, lambda files: files.update(
        {"data/exact.nc": sha256(archive / "data" / "exact.nc")}))


@pytest.mark.parametrize(("damage", "needle"), [
    (_no_manifest, "no manifest.json"),
    (_invalid_json, "malformed manifest"),
    (_no_files_table, "malformed manifest"),
    (_no_plan, "config/plan.json: missing"),
    (_plan_invalid_json, "unreadable plan"),
    (_plan_not_a_table, "not a sweep plan (a JSON object"),
    (_plan_without_keys, "key 'scenario' is required but missing"),
    (_unreadable_data, "exact.nc: unreadable"),
], ids=lambda v: getattr(v, "__name__", "")[1:] or None)
def test_a_malformed_archive_is_an_archive_error(damage, needle, archive):
    damage(archive)
    with pytest.raises(api.ArchiveError) as raised:
        api.verify(archive)
    assert needle in str(raised.value)
    result = cli("verify", archive)
    assert result.returncode == 2, result.stderr
    assert needle in flat(result.stderr) and "error:" in result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""


def test_verify_of_a_file_instead_of_an_archive_is_an_archive_error(archive):
    """E.g. ``deterrence verify ARCHIVE/manifest.json``."""
    target = archive / "manifest.json"
    with pytest.raises(api.ArchiveError):
        api.verify(target)
    result = cli("verify", target)
    assert result.returncode == 2, result.stderr
    assert "error:" in result.stderr and "Traceback" not in result.stderr


# ---------------------------------------------------------------------------------------
# 6. Config errors stop a sweep before any work


def _axes(**changes) -> tuple[dict, ...]:
    """GRID_AXES with the second axis changed."""
    return (GRID_AXES[0], {**GRID_AXES[1], **changes})


CONFIG_ERRORS = {
    "unknown-key": ({"stepz": 3}, ["stepz", "unknown key"]),
    # the logit precision of v1: the private resolve scales replace it (docs/sweeps.md)
    "rationality-is-no-key": ({"rationality": 10.0}, ["key 'rationality' = 10.0: unknown key"]),
    "unknown-axis-key": ({"axes": _axes(step=0.1)}, ["axes.1.step", "unknown key"]),
    "no-such-path": ({"axes": _axes(path="russia.war_costs")}, ["'russia.war_costs'"]),
    "low-not-below-high": ({"axes": _axes(low=0.7, high=0.7)},
                           ["low = 0.7 must be below high = 0.7"]),
    "grid-range-without-count": ({"axes": _axes(count=None)},
                                 ["'russia.status_quo_value': a grid range needs count"]),
    "lhs-without-samples": ({"method": "lhs", "axes": RANGE_AXES}, ["method 'lhs' needs samples"]),
    "samples-on-a-grid": ({"samples": 8}, ["samples is for lhs / sobol"]),
    "value-out-of-range": ({"axes": (GRID_AXES[0], {"path": "format.coordination_probability",
                                                    "low": 0.2, "high": 1.5, "count": 3})},
                           ["'format.coordination_probability' = 1.5", "<= 1"]),
    "unknown-format": ({"formats": ["budapest", "natolite"]}, ["unknown formats ['natolite']"]),
    "no-formats": ({"formats": []}, ["formats"]),
}


@pytest.mark.parametrize("case", list(CONFIG_ERRORS))
def test_a_bad_sweep_file_is_a_config_error_before_any_work(case, tmp_path):
    fields, needles = CONFIG_ERRORS[case]
    sweep_file = write_sweep(tmp_path / "sweeps", **fields)
    with pytest.raises(ConfigError) as raised:
        api.load_plan(sweep_file)
    for needle in needles:
        assert needle in flat(str(raised.value))
    out = tmp_path / "results" / "archive"
    result = cli("sweep", sweep_file, "--out", out)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""
    for needle in needles:
        assert needle in flat(result.stderr)
    assert not (tmp_path / "results").exists()


@pytest.mark.parametrize(("options", "needle"), [
    (("--executor", "threads"), "'threads' is not one of"),
    (("--scheduler", "tcp://127.0.0.1:1"), "needs --executor dask"),
    (("--executor", "processes", "--workers", "0"), "workers = 0"),
])
def test_bad_executor_options_exit_2_before_any_work(options, needle, reference, tmp_path):
    out = tmp_path / "results" / "archive"
    result = cli("sweep", reference.sweep, "--out", out, *options)
    assert result.returncode == 2, result.stderr
    assert needle in flat(result.stderr) and "Traceback" not in result.stderr
    assert not (tmp_path / "results").exists()


# ---------------------------------------------------------------------------------------
# 7. Latin hypercube and Sobol plans


@pytest.mark.parametrize(("method", "samples"), [("lhs", 12), ("sobol", 16)])
def test_sampled_points_fill_the_ranges_reproducibly(method, samples, tmp_path):
    def points(seed: int, filename: str) -> np.ndarray:
        sweep_file = write_sweep(tmp_path, filename, axes=RANGE_AXES, method=method,
                                 samples=samples, seed=seed)
        plan = api.load_plan(sweep_file)
        assert plan.grid_shape is None and plan.seed == seed
        return plan.points

    first, again, other = points(7, "a.toml"), points(7, "b.toml"), points(8, "c.toml")
    assert first.shape == (samples, len(RANGE_AXES))
    np.testing.assert_array_equal(first, again)
    assert not np.any(np.all(first == other, axis=1))  # no point in common
    for j, axis in enumerate(RANGE_AXES):
        column = first[:, j]
        assert np.all((axis["low"] <= column) & (column <= axis["high"])), axis["path"]
        # one point in each of ``samples`` equal slices of the range (for Sobol, with a
        # power-of-two sample, by its net property)
        unit = (column - axis["low"]) / (axis["high"] - axis["low"])
        strata = np.clip(np.floor(unit * samples).astype(int), 0, samples - 1)
        np.testing.assert_array_equal(np.sort(strata), np.arange(samples), err_msg=axis["path"])


@pytest.mark.parametrize("method", ["lhs", "sobol"])
def test_a_sampled_archive_has_a_sample_dimension(method, tmp_path):
    sweep_file = write_sweep(tmp_path, axes=RANGE_AXES, method=method, samples=8, seed=3,
                             formats=["bilateral", "three_tier"], steps=15, chunk_runs=4)
    plan = api.load_plan(sweep_file)
    archive = run_api(sweep_file, tmp_path / "archive")
    sim = load(archive / "data" / "simulation.nc")
    exact = load(archive / "data" / "exact.nc")
    for name in datasets.OUTPUTS:
        assert sim[name].dims == ("format", "sample", "replicate")
        assert sim[name].shape == (2, 8, 2)
    for name in datasets.EXACT_OUTPUTS:
        assert exact[name].dims == ("format", "sample")
    assert exact.credibility.dims == ("format", "sample", "guarantor")
    for ds in (sim, exact):
        np.testing.assert_array_equal(ds["sample"].values, np.arange(8))
        for j, axis in enumerate(RANGE_AXES):
            name = datasets.dim_name(axis["path"])
            assert ds[name].dims == ("sample",)
            assert ds[name].attrs["parameter_path"] == axis["path"]
            np.testing.assert_array_equal(ds[name].values, plan.points[:, j])

    for f, fid in enumerate(plan.formats):
        for cell in (0, 5):
            run = cell * 2 + 1
            alone = execute.run_chunk(execute.chunk_task(plan, fid, run, run + 1))
            for name in datasets.OUTPUTS:
                np.testing.assert_array_equal(sim[name].values[f, cell, 1],
                                              as_read(name, alone[name][0]))
            point = {a.path: plan.points[cell:cell + 1, j] for j, a in enumerate(plan.spec.axes)}
            solved = solve_grid(build_game(plan.scenario, plan.formats[fid], point),
                                deterred_below=0.5, defended_below=0.5, threads=1)
            assert exact.regime.values[f, cell] == solved.regime[0]
            assert exact.escalation_probability.values[f, cell] == \
                solved.escalation_probability[0]
    assert api.verify(archive) == []
