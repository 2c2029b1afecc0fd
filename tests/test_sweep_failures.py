"""Sweeps that fail safely: a lost Dask scheduler, a scheduler that is not there, a killed or
interrupted command, a damaged chunk file. Each ends promptly with the completed chunks kept,
and the sweep resumes to the same archive as an uninterrupted one."""

from __future__ import annotations

import logging
import os
import re
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import psutil
import pytest

from deterrence import api
from deterrence.archive import write
from deterrence.game.config import SCENARIOS_DIR
from deterrence.sweep import datasets, execute
from tests.test_sweep import chunk_files, cli, digests, flat, run_api, write_sweep

ROOT = Path(__file__).resolve().parent.parent
BASELINE = SCENARIOS_DIR / "baseline.toml"
FORMATS = ["budapest", "nato_lite"]
#: Seconds a command may take beyond its own bound: starting Python and importing the
#: package take a few seconds on a loaded machine.
MARGIN = 10.0
#: Ctrl-C must end a sweep within this many seconds (teardown included).
INTERRUPT_BOUND = 2.0
#: Seconds the worker processes of a killed sweep may take to notice and exit.
ORPHAN_BOUND = 5.0

#: A progress line of a sweep run off a terminal (docs/cli.md), e.g.
#: "sweep heavy: 3/8 chunks, 38%, ETA 0:00:04".
PROGRESS_LINE = re.compile(r"^sweep [\w-]+: [\d,]+/[\d,]+ chunks, ")


@dataclass(frozen=True)
class Reference:
    sweep: Path
    digests: dict[str, str]
    chunks: int


@pytest.fixture(scope="module")
def slow(tmp_path_factory) -> Reference:
    """12 chunks of a few tenths of a second each (long enough to interrupt), run in
    process without interruption."""
    folder = tmp_path_factory.mktemp("slow")
    sweep_file = write_sweep(folder, formats=FORMATS, steps=400, chunk_runs=3)
    archive = run_api(sweep_file, folder / "archive")
    return Reference(sweep_file, digests(archive), len(api.load_plan(sweep_file).chunks()))


@pytest.fixture(scope="module")
def heavy(tmp_path_factory) -> Reference:
    """4 chunks of about two seconds each: a chunk still runs when a sweep is stopped."""
    folder = tmp_path_factory.mktemp("heavy")
    sweep_file = write_sweep(folder, formats=FORMATS, steps=1600, chunk_runs=9)
    archive = run_api(sweep_file, folder / "archive")
    return Reference(sweep_file, digests(archive), len(api.load_plan(sweep_file).chunks()))


@pytest.fixture(scope="module")
def quick(tmp_path_factory) -> Reference:
    folder = tmp_path_factory.mktemp("quick")
    sweep_file = write_sweep(folder, formats=FORMATS)
    archive = run_api(sweep_file, folder / "archive")
    return Reference(sweep_file, digests(archive), len(api.load_plan(sweep_file).chunks()))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start(args: list[str], log: Path, **options) -> subprocess.Popen:
    """A command in its own process group (so that it and its children can be signalled
    together, as a terminal's Ctrl-C does)."""
    with log.open("w") as out:
        return subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT,
                                start_new_session=True, **options)


def start_sweep(sweep_file: Path, out: Path, *options: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "deterrence", "sweep", str(sweep_file),
                             "--out", str(out), *options], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=ROOT,
                            start_new_session=True)


def stop_group(proc: subprocess.Popen) -> None:
    """End a command started by :func:`start` or :func:`start_sweep`, and its group."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)


def wait_for_chunks(proc: subprocess.Popen, staging: Path, count: int) -> None:
    deadline = time.monotonic() + 120
    while (not staging.is_dir() or len(chunk_files(staging)) < count) \
            and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert proc.poll() is None, "the sweep ended before it could be stopped"
    assert len(chunk_files(staging)) >= count, "no chunk finished in time"


def gone(process: psutil.Process) -> bool:
    """Ended (a zombie has ended; only its exit status waits to be collected)."""
    try:
        return process.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def wait_gone(processes: list[psutil.Process], seconds: float) -> list[psutil.Process]:
    """The processes still running after ``seconds``."""
    deadline = time.monotonic() + seconds
    while any(not gone(p) for p in processes) and time.monotonic() < deadline:
        time.sleep(0.05)
    return [p for p in processes if not gone(p)]


def assert_resumable(staging: Path, reference: Reference, out: Path, done: list[Path]) -> None:
    """Every chunk file is whole; resuming in process completes the same archive."""
    assert not out.exists()
    assert write.plan_file(staging).is_file()
    assert 1 <= len(done) < reference.chunks
    for chunk in done:
        with np.load(chunk) as data:
            assert sorted(data.files) == sorted(datasets.OUTPUTS)
    resumed = cli("sweep", reference.sweep, "--out", out, "--resume", out.name)
    assert resumed.returncode == 0, resumed.stderr
    assert "damaged" not in resumed.stderr
    assert digests(out) == reference.digests


# ---------------------------------------------------------------------------------------
# The Dask scheduler


@pytest.mark.parametrize("end", [signal.SIGKILL, signal.SIGSTOP], ids=["killed", "frozen"])
def test_a_scheduler_lost_mid_sweep_stops_it_and_it_resumes(end, slow, tmp_path):
    """A dead scheduler closes its connections; a frozen one (or a lost network) is
    silent: the heartbeat notices both."""
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    scheduler = start([sys.executable, "-m", "dask", "scheduler", "--host", "127.0.0.1",
                       "--port", str(port), "--no-dashboard",
                       "--dashboard-address", "127.0.0.1:0"], tmp_path / "scheduler.log")
    worker = None
    sweep = None
    try:
        worker = start([sys.executable, "-m", "dask", "worker", address, "--nworkers", "1",
                        "--nthreads", "1", "--host", "127.0.0.1", "--no-dashboard"],
                       tmp_path / "worker.log")
        from dask.distributed import Client

        with Client(address, timeout=60) as client:  # the cluster is up
            client.wait_for_workers(1, timeout=60)
        out = tmp_path / "results" / "lost"
        staging = write.staging_for(out)
        sweep = start_sweep(slow.sweep, out, "--executor", "dask", "--scheduler", address)
        wait_for_chunks(sweep, staging, 2)
        os.killpg(scheduler.pid, end)
        killed = time.monotonic()
        bound = execute.SCHEDULER_TIMEOUT + execute.POLL_SECONDS + MARGIN
        _, stderr = sweep.communicate(timeout=bound)
        took = time.monotonic() - killed
    finally:
        for proc in (sweep, worker, scheduler):
            if proc is not None:
                stop_group(proc)
    assert took < bound
    assert sweep.returncode == 1, stderr
    text = flat(stderr)
    assert f"the Dask scheduler {address} did not answer for " \
           f"{execute.SCHEDULER_TIMEOUT:g} s" in text
    assert f"--resume {out.name}" in text and "Traceback" not in stderr
    assert_resumable(staging, slow, out, chunk_files(staging))


@pytest.mark.parametrize(("address", "connects"), [
    ("not a url", False),
    ("tcp://:99999", False),
    ("tcp://127.0.0.1:0", False),
    ("http://127.0.0.1:8786", False),
    ("tcp://127.0.0.1:{free}", True),  # nothing listens there
])
def test_a_scheduler_that_is_not_there_is_one_line_and_exit_2(address, connects, quick,
                                                              tmp_path):
    address = address.format(free=free_port())
    out = tmp_path / "results" / "archive"
    began = time.monotonic()
    result = cli("sweep", quick.sweep, "--out", out, "--executor", "dask",
                 "--scheduler", address)
    took = time.monotonic() - began
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert repr(address) in lines[0] and "Traceback" not in result.stderr
    assert took < (execute.SCHEDULER_TIMEOUT if connects else 0) + MARGIN
    assert not (tmp_path / "results").exists()


# ---------------------------------------------------------------------------------------
# A killed or interrupted command


@pytest.mark.parametrize("kind", ["processes", "dask"])
def test_no_worker_outlives_a_killed_sweep(kind, slow, tmp_path):
    out = tmp_path / "results" / "killed"
    sweep = start_sweep(slow.sweep, out, "--executor", kind, "--workers", "2")
    children: list[psutil.Process] = []
    try:
        wait_for_chunks(sweep, write.staging_for(out), 1)
        children = psutil.Process(sweep.pid).children(recursive=True)
        os.kill(sweep.pid, signal.SIGKILL)
        sweep.wait(timeout=30)
        alive = wait_gone(children, ORPHAN_BOUND)
    finally:
        stop_group(sweep)
        for child in children:  # none left if the test passes
            if not gone(child):
                child.kill()
    assert len(children) >= 2  # the two workers (and helpers such as a resource tracker)
    assert alive == [], [p.cmdline() for p in alive]


@pytest.mark.parametrize(("kind", "whole_group"), [
    ("inprocess", True), ("processes", True), ("processes", False), ("dask", True),
    ("dask", False),
])
def test_ctrl_c_stops_a_sweep_at_once_and_it_resumes(kind, whole_group, heavy, tmp_path):
    """Ctrl-C in a terminal signals the whole process group, ``kill -INT`` the command
    alone (its workers must then be stopped by it)."""
    out = tmp_path / "results" / "interrupted"
    staging = write.staging_for(out)
    sweep = start_sweep(heavy.sweep, out, "--executor", kind, "--workers", "2")
    try:
        wait_for_chunks(sweep, staging, 1)
        children = psutil.Process(sweep.pid).children(recursive=True)
        (os.killpg if whole_group else os.kill)(sweep.pid, signal.SIGINT)
        interrupted = time.monotonic()
        _, stderr = sweep.communicate(timeout=60)
        took = time.monotonic() - interrupted
        alive = wait_gone(children, ORPHAN_BOUND)
    finally:
        stop_group(sweep)
    assert took < INTERRUPT_BOUND
    assert sweep.returncode == 130, stderr
    # besides the progress lines of a command off a terminal, one line: how to resume
    lines = [line for line in stderr.splitlines()
             if line.strip() and not PROGRESS_LINE.match(line)]
    assert len(lines) == 1 and "Traceback" not in stderr, stderr
    assert f"--resume {out.name}" in lines[0]
    assert alive == [], [p.cmdline() for p in alive]
    assert_resumable(staging, heavy, out, chunk_files(staging))


# ---------------------------------------------------------------------------------------
# Chunk files


def _stage(plan, staging: Path) -> list[Path]:
    """A staging folder with every chunk done, as after an interruption at the very end."""
    write.start_staging(plan, None, staging)
    (staging / "chunks").mkdir()
    files = []
    for fid, start, stop in plan.chunks():
        files.append(execute.chunk_file(staging, fid, start))
        np.savez(files[-1], **execute.run_chunk(execute.chunk_task(plan, fid, start, stop)))
    return files


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:len(path.read_bytes()) // 2])


def _garbage(path: Path) -> None:
    path.write_bytes(b"not a chunk")


def _short(path: Path) -> None:
    with np.load(path) as data:
        arrays = {name: data[name][:-1] for name in data.files}
    np.savez(path, **arrays)


def _without_an_output(path: Path) -> None:
    with np.load(path) as data:
        arrays = {name: data[name] for name in data.files if name != "deterred_share"}
    np.savez(path, **arrays)


@pytest.mark.parametrize(("damage", "needle"), [
    (_truncate, "unreadable"), (_garbage, "unreadable"),
    (_short, "escalation_frequency has shape (4,), not (5,)"),
    (_without_an_output, "no deterred_share"),
])
def test_a_damaged_chunk_file_is_reported_and_run_again(damage, needle, quick, tmp_path,
                                                        monkeypatch, caplog):
    plan = api.load_plan(quick.sweep)
    target = tmp_path / "archive"
    files = _stage(plan, write.staging_for(target))
    fid, start, stop = plan.chunks()[1]
    assert stop - start == 5
    damage(files[1])
    real, calls = execute.run_chunk, []

    def counting(task):
        calls.append((task.fmt.id, task.start))
        return real(task)

    monkeypatch.setattr(execute, "run_chunk", counting)
    with caplog.at_level(logging.WARNING, logger=execute.__name__):
        archive, failures = api.run_sweep(plan, target, execute.InProcessExecutor(),
                                         "inprocess", resume=True)
    assert failures == [] and calls == [(fid, start)]
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1
    assert str(files[1]) in warnings[0] and needle in warnings[0]
    assert digests(archive) == quick.digests


def test_a_truncated_chunk_file_is_one_line_on_resume(quick, tmp_path):
    plan = api.load_plan(quick.sweep)
    out = tmp_path / "results" / "archive"
    files = _stage(plan, write.staging_for(out))
    _truncate(files[0])
    result = cli("sweep", quick.sweep, "--out", out, "--resume", out.name)
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stderr.splitlines()
             if line.strip() and not PROGRESS_LINE.match(line)]
    assert len(lines) == 1, result.stderr
    assert str(files[0]) in flat(result.stderr) and "damaged" in lines[0]
    assert digests(out) == quick.digests


def test_a_chunk_file_is_synced_before_it_is_renamed_and_its_folder_after(quick, tmp_path,
                                                                          monkeypatch):
    plan = api.load_plan(quick.sweep)
    fid, start, stop = plan.chunks()[0]
    target = execute.chunk_file(tmp_path, fid, start)
    partial = target.with_suffix(".partial.npz")
    target.parent.mkdir()
    events: list[tuple] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd: int) -> None:  # what is synced (by inode), and the names at that time
        events.append(("fsync", os.fstat(fd).st_ino, partial.exists(), target.exists()))
        real_fsync(fd)

    def replace(source, destination) -> None:
        events.append(("replace", Path(source), Path(destination)))
        real_replace(source, destination)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    execute._save(execute.run_chunk(execute.chunk_task(plan, fid, start, stop)), target)
    assert events == [("fsync", target.stat().st_ino, True, False),
                      ("replace", partial, target),
                      ("fsync", target.parent.stat().st_ino, False, True)]
    assert execute._complete(target, (fid, start, stop))
