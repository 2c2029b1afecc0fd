"""The dashboard's background jobs (``dashboard/jobs.py``): shared computations, cancelling,
failures, the bound on kept results, and saving what was computed without running it
again."""

from __future__ import annotations

import io
import tempfile
import threading
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest
from test_cancel_and_save import AXES, FORMATS, small_plan

from deterrence import api
from deterrence.dashboard import jobs
from deterrence.sweep import execute

#: Seconds a test waits for a background thread before it fails.
WAIT_S = 60.0


def until(condition, timeout: float = WAIT_S) -> None:
    """Wait until ``condition()`` holds (fail after ``timeout`` seconds)."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def blocked(release: threading.Event, calls: list | None = None, result="result"):
    """A job's work that reports one step, then waits for ``release`` (or a cancel)."""
    def work(progress, cancel):
        if calls is not None:
            calls.append(1)
        progress(1, 2, "half way")
        while not release.wait(0.01):
            if cancel.is_set():
                raise api.Cancelled("cancelled")
        return result
    return work


def test_the_same_key_from_two_threads_is_one_job_run_once():
    board, release, calls = jobs.JobBoard(), threading.Event(), []
    barrier, got = threading.Barrier(2), []

    def ask():
        barrier.wait()
        got.append(board.submit("k", "simulation", blocked(release, calls)))
    threads = [threading.Thread(target=ask) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(WAIT_S)
    assert len(got) == 2 and got[0] is got[1]
    release.set()
    assert got[0].wait(WAIT_S)
    assert got[0].state == "done" and got[0].result == "result"
    # finished, it is still shared: asked again, nothing runs again
    assert board.submit("k", "simulation", blocked(release, calls)) is got[0]
    assert calls == [1]


def test_progress_and_times_are_recorded():
    board, release = jobs.JobBoard(), threading.Event()
    job = board.submit("k", "save", blocked(release))
    until(lambda: job.status().done == 1)
    status = job.status()
    assert (status.state, status.done, status.total, status.text) == \
        ("running", 1, 2, "half way")
    assert status.fraction == 0.5 and status.started is not None and status.finished is None
    release.set()
    job.wait(WAIT_S)
    assert job.status().finished >= job.status().started


def test_a_cancelled_simulation_writes_nothing(tmp_path, monkeypatch):
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    started = threading.Event()

    def work(progress, cancel):
        progress(1, 2)
        started.set()
        cancel.wait(WAIT_S)
        return api.simulate_summaries(small_plan(), cancel=cancel)
    job = jobs.JobBoard().submit("k", "simulation", work)
    assert started.wait(WAIT_S)
    assert job.state == "running"
    job.cancel()
    assert job.wait(WAIT_S)
    assert job.state == "cancelled" and job.result is None and job.error is None
    assert list(folder.iterdir()) == []


def test_a_failure_is_one_line():
    board = jobs.JobBoard()

    def fails(progress, cancel):
        raise ValueError("first line\nsecond line")

    def refused(progress, cancel):
        raise api.ConfigError("key 'steps' = 0: must be at least 1")
    job = board.submit("a", "simulation", fails)
    job.wait(WAIT_S)
    assert (job.state, job.error) == ("failed", "ValueError: first line")
    other = board.submit("b", "simulation", refused)
    other.wait(WAIT_S)
    assert other.error == "key 'steps' = 0: must be at least 1"
    # a failed job is not shared: asked again, it runs again
    again = board.submit("a", "simulation", lambda progress, cancel: 1)
    assert again is not job
    again.wait(WAIT_S)
    assert again.result == 1


def test_finished_jobs_are_kept_least_recently_used_first():
    board = jobs.JobBoard(kept=2)

    def done(key):
        job = board.submit(key, "simulation", lambda progress, cancel: key)
        assert job.wait(WAIT_S)
        return job
    a = done("a")
    done("b")
    assert board.get("a") is a  # a used: b is now the oldest
    done("c")
    assert [j.key for j in board.jobs()] == ["a", "c"]
    assert board.get("b") is None
    assert jobs.FINISHED_KEPT >= 1 and jobs.JobBoard().kept == jobs.FINISHED_KEPT


def test_a_running_job_is_never_dropped():
    board, release = jobs.JobBoard(kept=0), threading.Event()
    running = board.submit("r", "simulation", blocked(release))
    finished = board.submit("f", "save", lambda progress, cancel: 1)
    finished.wait(WAIT_S)
    until(lambda: board.get("f") is None)
    assert board.get("r") is running
    release.set()


def test_at_most_the_limit_runs_at_once():
    board, release = jobs.JobBoard({"simulation": 1, "save": 1}), threading.Event()
    first = board.submit("a", "simulation", blocked(release))
    with pytest.raises(jobs.Refused) as info:
        board.submit("b", "simulation", blocked(release))
    assert "\n" not in str(info.value) and "at most 1 simulation" in str(info.value)
    save = board.submit("c", "save", blocked(release))  # another kind has its own limit
    with pytest.raises(jobs.Refused, match="job kind 'other': allowed: simulation, save"):
        board.submit("d", "other", blocked(release))
    release.set()
    first.wait(WAIT_S)
    save.wait(WAIT_S)
    later = board.submit("b", "simulation", lambda progress, cancel: 2)
    later.wait(WAIT_S)
    assert later.result == 2


def test_plan_size_is_formats_points_replicates_rounds():
    plan = small_plan()
    points = 1
    for values in AXES.values():
        points *= len(values)
    assert jobs.plan_size(plan) == len(FORMATS) * points * plan.spec.replicates * \
        plan.spec.steps
    assert jobs.plan_key(plan) == jobs.plan_key(small_plan())


def test_simulation_job_shares_and_gives_summaries_and_dataset():
    plan = small_plan()
    board = jobs.JobBoard()
    job = jobs.simulation_job(board, plan)
    assert jobs.simulation_job(board, plan) is job
    assert job.wait(WAIT_S) and job.state == "done", job.error
    expected = api.simulate_summaries(plan)
    assert set(job.result.summaries) == set(expected)
    for name, values in expected.items():
        assert np.array_equal(job.result.summaries[name], values, equal_nan=True), name
    assert job.result.dataset.identical(api.simulate_plan(plan))
    assert job.status().text == f"Simulating: chunk {len(plan.chunks())} of " \
                                f"{len(plan.chunks())}"


def test_a_new_simulation_replaces_the_sessions_previous_one():
    board, release = jobs.JobBoard(), threading.Event()
    old = board.submit("old plan", "simulation", blocked(release))
    until(lambda: old.status().done == 1)
    with pytest.raises(jobs.Refused, match="at most 1 simulation"):
        jobs.simulation_job(board, small_plan())
    assert old.state == "running"
    new = jobs.simulation_job(board, small_plan(), replaces=old)
    assert old.state == "cancelled"
    assert new.wait(WAIT_S) and new.state == "done", new.error
    # the same plan: nothing is cancelled, the job is shared
    assert jobs.simulation_job(board, small_plan(), replaces=new) is new
    assert new.state == "done"


@pytest.fixture
def summaries():
    return api.simulate_summaries(small_plan())


def test_save_writes_what_was_computed_without_running_a_chunk(tmp_path, monkeypatch,
                                                               summaries):
    plan = small_plan()
    monkeypatch.setattr(execute, "run_chunk", lambda task: 1 / 0)
    job = jobs.save_job(jobs.JobBoard(), plan, summaries, jobs.SaveGate(0.0), tmp_path)
    assert job.wait(WAIT_S) and job.state == "done", job.error
    saved = job.result
    assert saved.archive.parent == tmp_path and saved.archive.name.startswith("small-")
    assert saved.report == tmp_path / f"{saved.archive.name}.report" / "index.html"
    assert saved.report.read_text().lstrip().lower().startswith("<!doctype html")
    names = zipfile.ZipFile(io.BytesIO(saved.zip_bytes)).namelist()
    archive_files = sorted(f"{saved.archive.name}/{p.relative_to(saved.archive).as_posix()}"
                           for p in saved.archive.rglob("*") if p.is_file())
    assert sorted(names) == sorted([*archive_files,
                                    f"{saved.archive.name}.report/index.html"])
    assert saved.zip_name == f"{saved.archive.name}.zip"
    monkeypatch.undo()
    assert api.verify(saved.archive) == []


def test_a_second_save_of_the_same_plan_is_the_same_job(tmp_path, summaries):
    plan, board = small_plan(), jobs.JobBoard()
    gate = jobs.SaveGate(3600.0)
    job = jobs.save_job(board, plan, summaries, gate, tmp_path)
    assert jobs.save_job(board, plan, summaries, gate, tmp_path) is job
    job.wait(WAIT_S)
    assert jobs.save_job(board, plan, summaries, gate, tmp_path) is job
    assert [p.name for p in tmp_path.iterdir() if not p.name.endswith(".report")] == \
        [job.result.archive.name]


def test_save_refused_during_another_save_and_within_the_interval(tmp_path, summaries):
    plan, now = small_plan(), [100.0]
    gate = jobs.SaveGate(10.0, clock=lambda: now[0])
    assert gate.try_start() is None  # another save is running
    with pytest.raises(jobs.Refused, match="A save is already running"):
        jobs.save_job(jobs.JobBoard(), plan, summaries, gate, tmp_path)
    gate.finish()
    now[0] += 4.0
    with pytest.raises(jobs.Refused, match="at least 10 s apart: press Save again in 6 s"):
        jobs.save_job(jobs.JobBoard(), plan, summaries, gate, tmp_path)
    assert list(tmp_path.iterdir()) == []
    now[0] += 6.0
    job = jobs.save_job(jobs.JobBoard(), plan, summaries, gate, tmp_path)
    assert job.wait(WAIT_S) and job.state == "done", job.error


def test_save_refused_over_the_size_limit(tmp_path, monkeypatch, summaries):
    plan = small_plan()
    size = jobs.plan_size(plan)
    monkeypatch.setattr(jobs, "INTERACTIVE_LIMIT", size - 1)
    gate = jobs.SaveGate(0.0)
    with pytest.raises(jobs.Refused) as info:
        jobs.save_job(jobs.JobBoard(), plan, summaries, gate, tmp_path)
    assert f"{size:,} run-rounds" in str(info.value) and "\n" not in str(info.value)
    with pytest.raises(jobs.Refused, match="run-rounds"):
        jobs.simulation_job(jobs.JobBoard(), plan)
    assert list(tmp_path.iterdir()) == []
    monkeypatch.setattr(jobs, "INTERACTIVE_LIMIT", size)  # at the limit: allowed
    job = jobs.save_job(jobs.JobBoard(), plan, summaries, gate, tmp_path)  # gate not held
    assert job.wait(WAIT_S) and job.state == "done", job.error


@pytest.mark.parametrize("step", ["archive", "report"])
def test_a_cancelled_save_leaves_nothing(tmp_path, monkeypatch, summaries, step):
    """Cancelled once the archive, or the report, has been written."""
    plan, board, gate, results = small_plan(), jobs.JobBoard(), jobs.SaveGate(0.0), \
        tmp_path / "results"
    name = "write_archive" if step == "archive" else "write_report"
    real = getattr(api, name)

    def then_cancel(*args, **kwargs):
        out = real(*args, **kwargs)
        assert Path(out).exists()
        board.get(("save", jobs.plan_key(plan))).cancel()  # on the board before it runs
        return out
    monkeypatch.setattr(api, name, then_cancel)
    job = jobs.save_job(board, plan, summaries, gate, results)
    assert job.wait(WAIT_S)
    assert job.state == "cancelled", job.error
    assert list(results.iterdir()) == []
    assert gate.try_start() is None  # the gate was released


def test_new_archive_paths_do_not_reuse_a_name(tmp_path):
    from datetime import UTC, datetime

    now = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    first = jobs.new_archive_path(tmp_path, "s", now)
    assert first == tmp_path / "s-20260102T030405Z"
    jobs.report_folder(first).mkdir()  # a report alone takes the name too
    assert jobs.new_archive_path(tmp_path, "s", now) == tmp_path / "s-20260102T030405Z-2"


# ---------------------------------------------------------------------------------------
# The progress strip, in a headless page


def strip_page(job):
    import streamlit as st

    from deterrence.dashboard import jobs

    st.session_state["runs"] = st.session_state.get("runs", 0) + 1
    jobs.progress_strip(job)


def test_the_strip_shows_progress_and_cancels():
    release = threading.Event()
    job = jobs.JobBoard().submit("k", "simulation", blocked(release))
    until(lambda: job.status().done == 1)
    at = AppTest.from_function(strip_page, args=(job,)).run()
    assert not at.exception
    assert [(p.value, p.text) for p in at.get("progress")] == [(50, "half way")]
    assert [b.label for b in at.button] == ["Cancel"]
    at.button(key=f"cancel-{job.id}").click().run()
    assert job.cancel_requested
    assert job.wait(WAIT_S) and job.state == "cancelled"
    at.run()
    assert not at.exception and not at.get("progress")
    assert [i.value for i in at.info] == [jobs.CANCELLED_TEXT]


def test_the_strip_reruns_the_page_once_when_its_job_finishes():
    release = threading.Event()
    job = jobs.JobBoard().submit("k", "simulation", blocked(release))
    until(lambda: job.status().done == 1)
    at = AppTest.from_function(strip_page, args=(job,)).run()
    assert at.session_state["runs"] == 1
    release.set()
    job.wait(WAIT_S)
    at.run()
    assert not at.exception
    assert at.session_state["runs"] == 3  # the run, then the page's rerun for the result
    assert not at.get("progress") and not at.button
    at.run()
    assert at.session_state["runs"] == 4  # once only


def test_a_failed_job_shows_its_error():
    def fails(progress, cancel):
        raise RuntimeError("disk full")
    job = jobs.JobBoard().submit("k", "save", fails)
    job.wait(WAIT_S)
    at = AppTest.from_function(strip_page, args=(job,)).run()
    assert [e.value for e in at.error] == ["Failed: RuntimeError: disk full"]
    assert at.session_state["runs"] == 1  # never seen running: no rerun


def saved_page(job):
    from deterrence.dashboard import jobs

    jobs.saved_view(job)


def test_a_finished_save_shows_its_paths_and_a_download(tmp_path, summaries):
    job = jobs.save_job(jobs.JobBoard(), small_plan(), summaries, jobs.SaveGate(0.0),
                        tmp_path)
    assert job.wait(WAIT_S) and job.state == "done", job.error
    at = AppTest.from_function(saved_page, args=(job,)).run()
    assert not at.exception
    [shown] = [s.value for s in at.success]
    assert str(job.result.archive) in shown and str(job.result.report) in shown
    assert len(at.get("download_button")) == 1
    at.run()  # a later run of the page shows it again
    assert [s.value for s in at.success] == [shown]
