"""Long work off the page script: simulations and saves run as jobs in background threads.

A :class:`Job` runs ``fn(progress, cancel)`` in a daemon thread; the server's one
:class:`JobBoard` (:func:`job_board`) starts jobs by key, so that two browser tabs asking
for the same sweep share one computation, keeps the results of the last
:data:`FINISHED_KEPT` finished jobs, and runs at most :data:`RUNNING_LIMITS` jobs of each
kind at once. A job and its result live on the board, not in a script run: a widget change
while it runs neither stops it nor loses its result.

How the page uses it::

    board = jobs.job_board()
    refusal = jobs.size_refusal(plan)          # the one size limit of every action
    job = jobs.simulation_job(board, plan, st.session_state.get("simulation"))
    st.session_state["simulation"] = job       # (jobs.Refused, one line, if it may not run)
    jobs.progress_strip(job)                   # at the top: bar, Cancel, rerun when done
    if job.state == "done":
        sim = job.result.dataset               # jobs.Simulated(summaries, dataset)
        ...
    if st.button("Save archive"):
        st.session_state["save"] = jobs.save_job(board, plan, job.result.summaries)
    jobs.progress_strip(st.session_state.get("save"))
    jobs.saved_view(st.session_state.get("save"))   # path and download, while the session lasts

:func:`save_job` writes the archive FROM the summaries already computed (no chunk runs
again), then its HTML report; it is refused while another save runs or within
:data:`SAVE_INTERVAL_S` of the last (:class:`SaveGate`), and for a sweep larger than
:data:`INTERACTIVE_LIMIT`; cancelled, it leaves nothing behind.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import shutil
import threading
import time
import uuid
import zipfile
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import streamlit as st

from deterrence import api

#: Largest sweep run interactively, in simulated run-rounds (formats x runs x rounds);
#: larger ones run headless with ``deterrence sweep``. Every action of the dashboard that
#: simulates or saves a sweep is held to it.
INTERACTIVE_LIMIT = 3_000_000
#: Seconds from the end of one save to the start of the next, for the whole server: a save
#: writes an archive and its report, so pressing Save again and again (or a script doing
#: it) cannot keep the machine busy or fill the disk.
SAVE_INTERVAL_S = 10.0
#: Jobs of each kind that may run at the same time on the server (the machine's cores are
#: shared by every visitor): one simulation and one save.
RUNNING_LIMITS = {"simulation": 1, "save": 1, "analysis": 1}
#: Finished jobs (with their results) the board keeps; the least recently asked for go first.
FINISHED_KEPT = 16
#: Seconds between two looks of a progress strip at its job.
STRIP_REFRESH_S = 0.5
#: The states of a job, in the order they are reached; the last three are final.
STATES = ("queued", "running", "done", "cancelled", "failed")
FINAL_STATES = frozenset(STATES[2:])
#: States in which a job of the same key is shared instead of started again (a failed or
#: cancelled one is started afresh).
SHARED_STATES = frozenset(("queued", "running", "done"))
#: The steps of a save, as its progress counts them: archive, report, zip.
SAVE_STEPS = 3
#: What a job's progress says before its work reports any.
STARTING_TEXT = "Starting…"
CANCELLED_TEXT = "Cancelled: nothing was written."
CANCELLING_TEXT = "Cancelling…"
#: Widths of the progress strip's bar and its Cancel button.
STRIP_COLUMNS = (5, 1)
#: Seconds a new simulation waits for the one it replaces to stop (it stops after the
#: chunk it is running) before it is refused as running.
REPLACED_WAIT_S = 5.0


class Refused(Exception):
    """A job that may not start now; the message says why, in one line."""


def one_line(exc: BaseException) -> str:
    """An error as one line: the package's own errors (bad input) by their message, any
    other by its type and the first line of its message."""
    lines = str(exc).strip().splitlines()
    text = lines[0] if lines else ""
    if isinstance(exc, (api.ConfigError, api.ArchiveError)) and text:
        return text
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


@dataclass(frozen=True)
class Status:
    """A job's state at one moment (a consistent copy: the job's thread goes on)."""

    state: str
    done: int
    total: int
    text: str
    error: str | None
    started: float | None   # time.time() when the work started, finished
    finished: float | None

    @property
    def fraction(self) -> float:
        """The share of the work done, 0 to 1 (0 while the total is not known)."""
        return min(1.0, self.done / self.total) if self.total > 0 else 0.0

    @property
    def final(self) -> bool:
        return self.state in FINAL_STATES


class Job:
    """``fn(progress, cancel)`` run in a daemon thread, started with :meth:`start`.

    ``fn`` calls ``progress(done, total, text=None)`` as it goes on (the package's progress
    callbacks, ``(done, total)``, fit) and hands ``cancel``, a ``threading.Event``, to the
    package (``cancel=``), which then raises :class:`deterrence.api.Cancelled`. Its return
    value is :attr:`result`; an exception is the one-line :attr:`error`. Thread-safe."""

    def __init__(self, key: Hashable, kind: str, fn: Callable[..., Any],
                 on_finish: Callable[[Job], None] | None = None) -> None:
        self.key, self.kind, self.fn = key, kind, fn
        self.id = uuid.uuid4().hex[:12]   # names the job's widgets
        self._on_finish = on_finish
        self._lock = threading.Lock()
        self._cancel = threading.Event()
        self._finished = threading.Event()
        self._status = Status("queued", 0, 0, STARTING_TEXT, None, None, None)
        self._result: Any = None
        self._thread = threading.Thread(target=self._run, name=f"deterrence {kind} job",
                                        daemon=True)

    def start(self) -> Job:
        self._thread.start()
        return self

    def _set(self, **changes) -> None:
        with self._lock:
            self._status = Status(**{**self._status.__dict__, **changes})

    def _progress(self, done: int, total: int, text: str | None = None) -> None:
        self._set(done=int(done), total=int(total),
                  text=text if text is not None else f"{done} of {total}")

    def _run(self) -> None:
        self._set(state="running", started=time.time())
        try:
            result = self.fn(self._progress, self._cancel)
        except api.Cancelled:
            self._set(state="cancelled", text=CANCELLED_TEXT, finished=time.time())
        except Exception as exc:  # reported in one line, as every error of the page
            self._set(state="failed", error=one_line(exc), finished=time.time())
        else:
            with self._lock:
                self._result = result
            self._set(state="done", finished=time.time())
        finally:
            self._finished.set()
            if self._on_finish is not None:
                self._on_finish(self)

    def cancel(self) -> None:
        """Ask the work to stop (at its next check); the state becomes "cancelled" then."""
        self._cancel.set()

    @property
    def cancel_requested(self) -> bool:
        return self._cancel.is_set()

    def status(self) -> Status:
        with self._lock:
            return self._status

    @property
    def state(self) -> str:
        return self.status().state

    @property
    def error(self) -> str | None:
        return self.status().error

    @property
    def result(self) -> Any:
        """What ``fn`` returned (None until the job is done)."""
        with self._lock:
            return self._result

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until the job has finished; whether it has."""
        return self._finished.wait(timeout)


class JobBoard:
    """The server's jobs by key: one computation per key, at most ``limits[kind]`` jobs of
    a kind running, the ``kept`` most recently used finished jobs kept. Thread-safe."""

    def __init__(self, limits: dict[str, int] | None = None, kept: int = FINISHED_KEPT):
        self.limits = dict(RUNNING_LIMITS if limits is None else limits)
        self.kept = kept
        self._jobs: OrderedDict[Hashable, Job] = OrderedDict()
        self._lock = threading.Lock()

    def submit(self, key: Hashable, kind: str, fn: Callable[..., Any]) -> Job:
        """The job of ``key``: the one queued, running or done if there is one (``fn`` is
        then not called), else a new job running ``fn``. Raises :class:`Refused` when
        :attr:`limits` jobs of ``kind`` are running already."""
        with self._lock:
            job = self._jobs.get(key)
            if job is not None and job.state in SHARED_STATES:
                self._jobs.move_to_end(key)
                return job
            if kind not in self.limits:
                raise Refused(f"job kind {kind!r}: allowed: {', '.join(self.limits)}")
            running = [j for j in self._jobs.values()
                       if j.kind == kind and not j.status().final]
            if len(running) >= self.limits[kind]:
                raise Refused(f"The server runs at most {self.limits[kind]} {kind} at a "
                              f"time and one is running ({running[0].status().text}): "
                              f"wait for it or cancel it, then try again.")
            job = Job(key, kind, fn, on_finish=self._finished)
            self._jobs[key] = job
            self._trim()
        return job.start()

    def get(self, key: Hashable) -> Job | None:
        """The job of ``key`` if the board has it (counted as a use)."""
        with self._lock:
            job = self._jobs.get(key)
            if job is not None:
                self._jobs.move_to_end(key)
            return job

    def jobs(self) -> list[Job]:
        """Every job on the board, least recently used first."""
        with self._lock:
            return list(self._jobs.values())

    def _finished(self, job: Job) -> None:
        with self._lock:
            self._trim()

    def _trim(self) -> None:
        """Drop the least recently used finished jobs beyond :attr:`kept` (the lock held)."""
        finished = [k for k, j in self._jobs.items() if j.status().final]
        for key in finished[:max(0, len(finished) - self.kept)]:
            del self._jobs[key]


class SaveGate:
    """At most one save at a time, and ``interval`` seconds from the end of one save to the
    start of the next; ``clock`` gives seconds (monotonic)."""

    def __init__(self, interval: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.interval, self._clock = interval, clock
        self._lock = threading.Lock()
        self._finished: float | None = None

    def try_start(self) -> str | None:
        """None if a save may start now (the caller then calls :meth:`finish`, or
        :meth:`abandon` if it does not save after all); otherwise the reason it may not,
        in one line."""
        if not self._lock.acquire(blocking=False):
            return "A save is already running: press Save again when it has finished."
        if self._finished is not None:
            wait = self.interval - (self._clock() - self._finished)
            if wait > 0:
                self._lock.release()
                return (f"Saves are at least {self.interval:g} s apart: press Save again in "
                        f"{math.ceil(wait)} s.")
        return None

    def finish(self) -> None:
        """A save has ended (from any thread): the next may start :attr:`interval` later."""
        self._finished = self._clock()
        self._lock.release()

    def abandon(self) -> None:
        """A started save did not take place: the next may start at once."""
        self._lock.release()


# ---------------------------------------------------------------------------------------
# Simulations and saves


def plan_key(plan: api.Plan) -> str:
    """A digest of the plan (scenario, formats, points, replicates, rounds, seed): the same
    for the same sweep, whichever tab or session asks."""
    text = json.dumps(plan.to_json(), sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def plan_size(plan: api.Plan) -> int:
    """Run-rounds the plan simulates: formats x runs per format x rounds."""
    return len(plan.formats) * plan.runs_per_format * plan.spec.steps


def size_refusal(plan: api.Plan) -> str | None:
    """Why ``plan`` is too large to run or save from the dashboard, in one line; None if
    it is not."""
    size = plan_size(plan)
    if size <= INTERACTIVE_LIMIT:
        return None
    return (f"This sweep simulates {size:,} run-rounds, more than the {INTERACTIVE_LIMIT:,} "
            f"run interactively. Run it headless: save the sweep as "
            f"configs/sweeps/my_sweep.toml and run `deterrence sweep "
            f"configs/sweeps/my_sweep.toml --executor processes`.")


@dataclass(frozen=True)
class Simulated:
    """A simulated sweep: the runs' summaries (what :func:`save_job` writes) and their
    labelled arrays (what the page shows)."""

    summaries: dict
    dataset: Any


def simulation_key(plan: api.Plan) -> tuple[str, str]:
    """The board's key of ``plan``'s simulation job."""
    return ("simulation", plan_key(plan))


def simulation_job(board: JobBoard, plan: api.Plan, replaces: Job | None = None) -> Job:
    """The job simulating ``plan`` (shared with every tab asking for the same plan); its
    result is :class:`Simulated`. ``replaces``, the session's previous simulation, is
    cancelled if it is still running for another plan (waited for up to
    :data:`REPLACED_WAIT_S` s), so that changing a widget does not leave it running (a tab
    that shared it starts it again when it next asks).
    Raises :class:`Refused` if the plan is too large or a simulation of another plan is
    running."""
    refusal = size_refusal(plan)
    if refusal is not None:
        raise Refused(refusal)
    key = simulation_key(plan)
    if replaces is not None and replaces.key != key and not replaces.status().final:
        replaces.cancel()
        replaces.wait(REPLACED_WAIT_S)

    def simulate(progress, cancel) -> Simulated:
        summaries = api.simulate_summaries(plan, progress=lambda done, total: progress(
            done, total, f"Simulating: chunk {done} of {total}"), cancel=cancel)
        return Simulated(summaries, api.simulated_dataset(plan, summaries))

    return board.submit(key, "simulation", simulate)


@dataclass(frozen=True)
class Saved:
    """A save: the archive, its report and a zip of both (``zip_name`` to download it as)."""

    archive: Path
    report: Path
    zip_bytes: bytes
    zip_name: str


def report_folder(archive: Path) -> Path:
    """Where a save writes the archive's report: ``<archive>.report`` beside it."""
    return archive.parent / f"{archive.name}.report"


def new_archive_path(results: Path, name: str, now: datetime | None = None) -> Path:
    """A folder under ``results`` named after the sweep and the time (UTC), with a number
    added if the name is taken (by an archive or its report)."""
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
    base, number = f"{name}-{stamp}", 1
    while True:
        target = results / (base if number == 1 else f"{base}-{number}")
        if not (target.exists() or report_folder(target).exists()):
            return target
        number += 1


def zip_of(archive: Path, report: Path) -> bytes:
    """A zip of the archive (as its folder) and its report (as ``<archive>.report/``)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(archive.rglob("*")):
            if path.is_file():
                zf.write(path, Path(archive.name) / path.relative_to(archive))
        zf.write(report, Path(report_folder(archive).name) / report.name)
    return buffer.getvalue()


def stop_if_cancelled(cancel: threading.Event) -> None:
    """Raise :class:`deterrence.api.Cancelled` once ``cancel`` is set."""
    if cancel.is_set():
        raise api.Cancelled("cancelled")


def save(plan: api.Plan, summaries: dict, results: Path, progress, cancel) -> Saved:
    """Write the archive of ``plan`` from ``summaries`` (no chunk runs), then its report,
    then their zip; ``cancel`` is looked at between the steps (and between the archive's
    files). Cancelled or failed, nothing is left: the archive is staged and renamed into
    place, and an archive or report already written is removed."""
    target = new_archive_path(results, plan.spec.name)
    written: list[Path] = []
    try:
        progress(0, SAVE_STEPS, "Saving: writing the archive")
        archive = api.write_archive(plan, summaries, target, cancel=cancel)
        written.append(archive)
        stop_if_cancelled(cancel)
        progress(1, SAVE_STEPS, "Saving: writing the report")
        written.append(report_folder(archive))
        report = api.write_report(archive, report_folder(archive))
        stop_if_cancelled(cancel)
        progress(2, SAVE_STEPS, "Saving: packing the zip")
        packed = zip_of(archive, report)
        stop_if_cancelled(cancel)
    except BaseException:
        for path in written:
            shutil.rmtree(path, ignore_errors=True)
        raise
    progress(SAVE_STEPS, SAVE_STEPS, f"Saved: {archive}")
    return Saved(archive, report, packed, f"{archive.name}.zip")


def save_job(board: JobBoard, plan: api.Plan, summaries: dict, gate: SaveGate | None = None,
             results: Path | None = None) -> Job:
    """The job saving ``plan``'s computed ``summaries`` under ``results`` (default
    :func:`deterrence.api.results_dir`): its result is :class:`Saved`. The save of the same
    plan, running or done, is returned instead of a second one. Raises :class:`Refused`
    (one line) for a sweep larger than :data:`INTERACTIVE_LIMIT`, while another save runs,
    or within the gate's interval of the last save (``gate``: the server's
    :func:`save_gate`)."""
    refusal = size_refusal(plan)
    if refusal is not None:
        raise Refused(refusal)
    key = ("save", plan_key(plan))
    job = board.get(key)
    if job is not None and job.state in SHARED_STATES:
        return job
    gate = gate if gate is not None else save_gate()
    refusal = gate.try_start()
    if refusal is not None:
        raise Refused(refusal)
    folder = results if results is not None else api.results_dir()

    def work(progress, cancel) -> Saved:
        try:
            return save(plan, summaries, folder, progress, cancel)
        finally:
            gate.finish()

    try:
        job = board.submit(key, "save", work)
    except BaseException:
        gate.abandon()
        raise
    if job.fn is not work:  # another tab started the same save meanwhile
        gate.abandon()
    return job


# ---------------------------------------------------------------------------------------
# The server's board, and what the page draws of a job


@st.cache_resource
def job_board() -> JobBoard:
    """The server's one board, shared by every visitor."""
    return JobBoard()


@st.cache_resource
def save_gate() -> SaveGate:
    """The server's one gate, shared by every visitor."""
    return SaveGate(SAVE_INTERVAL_S)


def _seen_key(job: Job) -> str:
    return f"deterrence-job-{job.id}"


def show_job(job: Job | None) -> None:
    """The job at the top of the page: its live :func:`progress_strip` while it runs (and
    once more when it has just finished, to run the page again); afterwards, a cancelled or
    failed job's line alone, without a timer (a strip reruns every
    :data:`STRIP_REFRESH_S` s, and each rerun costs the server a garbage collection)."""
    if job is None:
        return
    status = job.status()
    if not status.final or st.session_state.get(_seen_key(job)) == "running":
        progress_strip(job)
    elif status.state == "cancelled":
        st.info(CANCELLED_TEXT)
    elif status.state == "failed":
        st.error(f"Failed: {status.error}")


@st.fragment(run_every=STRIP_REFRESH_S)
def progress_strip(job: Job | None) -> None:
    """The job's progress bar with its text and a Cancel button, refreshed every
    :data:`STRIP_REFRESH_S` s; once the job this session saw running has finished, the
    whole page runs again (once) to show its result. A cancelled job says so, a failed
    one gives its error; a done one shows nothing (the page shows its result)."""
    if job is None:
        return
    status = job.status()
    seen = _seen_key(job)
    if not status.final:
        st.session_state[seen] = "running"
        cols = st.columns(STRIP_COLUMNS, vertical_alignment="center")
        if cols[1].button("Cancel", key=f"cancel-{job.id}", disabled=job.cancel_requested):
            job.cancel()
        text = CANCELLING_TEXT if job.cancel_requested else status.text
        cols[0].progress(status.fraction, text=text)
        return
    if st.session_state.get(seen) == "running":
        st.session_state[seen] = "shown"
        st.rerun(scope="app")
    st.session_state[seen] = "shown"
    if status.state == "cancelled":
        st.info(CANCELLED_TEXT)
    elif status.state == "failed":
        st.error(f"Failed: {status.error}")


def saved_view(job: Job | None) -> None:
    """Where a finished save wrote the archive and its report, and a button downloading
    both as a zip (the job is kept in the session, so this lasts as long as it does)."""
    if job is None or job.state != "done":
        return
    saved: Saved = job.result
    st.success(f"Archive: `{saved.archive}` — report: `{saved.report}`")
    st.download_button("Download the archive and its report (.zip)", saved.zip_bytes,
                       file_name=saved.zip_name, mime="application/zip",
                       key=f"download-{job.id}", on_click="ignore")
