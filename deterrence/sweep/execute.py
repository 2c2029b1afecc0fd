"""Execution of a plan: chunks of runs on any ``concurrent.futures``-style executor.

Work is split into chunks of runs; any executor with ``submit`` runs them (in-process,
local processes, or Dask). Each finished chunk is written to the sweep's staging folder at
once (synced to disk, then renamed into place), so an interrupted sweep resumes from its
completed chunks; a chunk file found damaged on resuming is run again. A chunk that fails
is retried and, if it still fails, reported; so is an executor that is lost (a Dask
scheduler that stops answering). An exception or Ctrl-C while chunks run stops the
executor's work at once: no worker keeps computing for a sweep that has ended.
"""

from __future__ import annotations

import logging
import math
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Callable
from concurrent.futures import Executor, Future
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..game.config import ConfigError, FormatSpec, Scenario, require_extra
from .datasets import OUTPUTS, simulated_dataset
from .spec import Plan

#: Seconds a Dask scheduler has to answer: to accept the connection, and each heartbeat
#: while a sweep runs; after that the sweep stops with its completed chunks kept.
SCHEDULER_TIMEOUT = 10.0
#: Seconds between checks on the executor while chunks run (the Dask heartbeat's period).
POLL_SECONDS = 1.0
#: Seconds a local worker has to stop when a sweep is interrupted, before it is killed.
STOP_SECONDS = 0.25
#: Exit status of a worker process whose parent process has died.
ORPHAN_EXIT_STATUS = 1

log = logging.getLogger(__name__)


#: A sweep's summaries in memory, as :func:`read_summaries` returns them:
#: {output: array (format, runs)}, formats in the plan's order.
Summaries = dict[str, np.ndarray]
#: What stops work between chunks: an event (``threading.Event``) or a callable that
#: returns True once the work is to stop.
Cancel = Callable[[], bool] | threading.Event


class Cancelled(Exception):
    """Work stopped because it was cancelled (see :data:`Cancel`); nothing was kept."""


def cancel_check(cancel: Cancel | None) -> Callable[[], None]:
    """A function that raises :class:`Cancelled` once ``cancel`` is set (never, for None)."""
    if cancel is None:
        return lambda: None
    is_set = cancel.is_set if isinstance(cancel, threading.Event) else cancel

    def check() -> None:
        if is_set():
            raise Cancelled("cancelled")
    return check


def simulate_summaries(plan: Plan, executor: Executor | None = None, progress=None,
                       cancel: Cancel | None = None) -> Summaries:
    """Run a plan's simulations without writing an archive: the summaries in memory.

    The same chunks and code path as :func:`run_sweep`, staged in a temporary folder that
    is removed however the run ends (failed chunks: RuntimeError; ``cancel`` set:
    :class:`Cancelled`)."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="deterrence-sweep-") as folder:
        failures = execute(plan, Path(folder), executor or InProcessExecutor(),
                           progress=progress, cancel=cancel)
        if failures:
            raise RuntimeError("; ".join(failures))
        return read_summaries(plan, Path(folder))


def simulate_plan(plan: Plan, executor: Executor | None = None, progress=None,
                  cancel: Cancel | None = None):
    """The labelled arrays of :func:`simulate_summaries` (``simulated.nc`` of an archive)."""
    return simulated_dataset(plan, simulate_summaries(plan, executor, progress, cancel))


@dataclass(frozen=True)
class ChunkTask:
    """What a worker needs for one chunk: only the parameter values of its own runs."""

    scenario: Scenario
    fmt: FormatSpec
    overrides: dict[str, np.ndarray]   # {path: values of this chunk's cells}
    first_cell: int           # the chunk's cells are first_cell, first_cell + 1, ...
    replicates: int
    steps: int
    seed: int
    start: int
    stop: int


def chunk_task(plan: Plan, format_id: str, start: int, stop: int) -> ChunkTask:
    first, last = start // plan.spec.replicates, (stop - 1) // plan.spec.replicates
    return ChunkTask(plan.scenario, plan.formats[format_id],
                     plan.overrides(format_id, plan.all_points[first:last + 1]),
                     first, plan.spec.replicates, plan.spec.steps, plan.seed, start, stop)


def run_chunk(task: ChunkTask) -> dict[str, np.ndarray]:
    """Simulate runs [start, stop) of one format: the summaries (importable, for workers)."""
    from ..simulate import engine
    from ..simulate import rules as dyn

    runs = np.arange(task.start, task.stop)
    cells = runs // task.replicates - task.first_cell
    setup = dyn.Setup.from_config(task.scenario, task.fmt, task.seed, task.overrides)
    sim = engine.simulate(setup, runs, task.steps, cells=cells)
    return {name: sim.summary[name] for name in OUTPUTS}


class ExecutorLost(Exception):
    """The executor can run no more chunks (a Dask scheduler that stopped answering)."""


class InProcessExecutor(Executor):
    """Runs each task at once, in this process (the embedded default)."""

    max_in_flight = 1

    def submit(self, fn, /, *args, **kwargs) -> Future:
        future: Future = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except Exception as exc:  # reported by the caller, like a pool's failure
            future.set_exception(exc)
        return future


def _start_worker() -> None:
    """Initialise a pool worker: it ignores Ctrl-C, which reaches the whole process group
    (the parent stops the workers), and it exits as soon as its parent process has died."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    parent = multiprocessing.parent_process()
    if parent is not None:
        threading.Thread(target=_exit_with, args=(parent,), name="exit with parent",
                         daemon=True).start()


def _exit_with(parent) -> None:
    parent.join()  # returns once the parent has ended, however it ended (also kill -9)
    os._exit(ORPHAN_EXIT_STATUS)


class RecoveringProcessPool(Executor):
    """Local worker processes; a pool broken by a dead worker is replaced, so the failed
    chunks can be retried (``ProcessPoolExecutor`` fails every pending future then).

    The workers exit when this process dies, and ignore Ctrl-C: :meth:`abort` stops them."""

    def __init__(self, workers: int | None) -> None:
        self._workers = workers
        self._context = multiprocessing.get_context("spawn")
        self._pool = None

    def _live(self):
        from concurrent.futures import ProcessPoolExecutor

        if self._pool is None:
            self._pool = ProcessPoolExecutor(self._workers, mp_context=self._context,
                                             initializer=_start_worker)
        return self._pool

    def submit(self, fn, /, *args, **kwargs) -> Future:
        from concurrent.futures.process import BrokenProcessPool

        try:
            return self._live().submit(fn, *args, **kwargs)
        except BrokenProcessPool:
            self.shutdown(wait=False, cancel_futures=True)
            return self._live().submit(fn, *args, **kwargs)

    def abort(self) -> None:
        """Stop every task now: the workers are terminated (a later submit starts new ones)."""
        pool = self._pool
        if pool is None:
            return
        workers = list(pool._processes.values())  # (Python 3.14 has terminate_workers())
        self.shutdown(wait=False, cancel_futures=True)
        for worker in workers:
            worker.terminate()

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=wait, cancel_futures=cancel_futures)


@contextmanager
def _workers_ignore_ctrl_c():
    """Start processes that ignore Ctrl-C (a signal ignored at their start stays ignored),
    which reaches the whole process group: the parent stops them."""
    if threading.current_thread() is not threading.main_thread():
        yield  # only the main thread may set signal handlers
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def check_scheduler_address(address: str) -> None:
    """Raise ConfigError unless ``address`` is [tcp:// | tls://]HOST:PORT (Dask's default
    protocol is tcp)."""
    scheme, sep, location = address.partition("://")
    if not sep:
        scheme, location = "tcp", address
    host, _, port = location.rpartition(":")
    if (scheme not in ("tcp", "tls") or not host or any(c.isspace() for c in host)
            or not port.isdigit() or not 0 < int(port) < 2 ** 16):
        raise ConfigError(f"--scheduler {address!r}: not a scheduler address; allowed: "
                          "tcp://HOST:PORT, tls://HOST:PORT or HOST:PORT, with PORT from 1 "
                          "to 65535")


class DaskExecutor(Executor):
    """A Dask cluster: the scheduler at ``address``, or a local cluster bound to 127.0.0.1
    with its dashboard off. Dask reschedules the tasks of a worker that dies.

    A scheduler must accept the connection within :data:`SCHEDULER_TIMEOUT` seconds, and
    answer a heartbeat sent every :data:`POLL_SECONDS` within as long while chunks run
    (:meth:`check`). It receives pickled tasks and sends pickled results: use only a
    cluster you trust."""

    #: Loggers of Dask's client side in this process, quiet while the executor lives: the
    #: sweep reports a lost scheduler or failed chunks itself, in one line each, and Dask
    #: would add its own messages and tracebacks (a closed connection, a failed reconnect;
    #: tornado logs the reset connection of a gather in flight when the scheduler dies).
    QUIET_LOGGERS = ("distributed", "distributed.client", "distributed.batched",
                     "tornado.application")

    def __init__(self, address: str | None, workers: int | None) -> None:
        require_extra("distributed", "dask", "the Dask executor")
        import dask
        from dask.distributed import Client, LocalCluster

        self._log_levels = {name: logging.getLogger(name).level for name in self.QUIET_LOGGERS}
        for name in self.QUIET_LOGGERS:
            logging.getLogger(name).setLevel(logging.CRITICAL)

        self._cluster = None
        if address is None:
            saved = dict(os.environ)  # the cluster writes worker settings into os.environ
            # Dask makes workers return freed memory to the system at once
            # (MALLOC_TRIM_THRESHOLD_=65536): measured 3.5x slower chunks here
            with dask.config.set({"distributed.nanny.pre-spawn-environ."
                                  "MALLOC_TRIM_THRESHOLD_": None}), _workers_ignore_ctrl_c():
                self._cluster = LocalCluster(
                    n_workers=workers or os.cpu_count() or 1, threads_per_worker=1,
                    processes=True, host="127.0.0.1", dashboard_address=None,
                    # its HTTP endpoints (health, metrics) on a free loopback port
                    scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
                    # the sweep reports its failures; Dask's own messages (a cancelled
                    # task, a worker killed when a sweep is interrupted, a worker's failed
                    # heartbeat to a scheduler that is closing) are noise here
                    silence_logs=logging.CRITICAL)
            os.environ.clear()
            os.environ.update(saved)
            address = self._cluster.scheduler_address
        else:
            check_scheduler_address(address)
        self.address = address
        try:
            self._client = Client(address, timeout=SCHEDULER_TIMEOUT)
        except OSError:  # refused, unknown host or no answer: Dask retries until the timeout
            raise ConfigError(f"--scheduler {address!r}: no Dask scheduler answered within "
                              f"{SCHEDULER_TIMEOUT:g} s") from None
        self._executor = self._client.get_executor(pure=False)
        # keep every worker busy, also on a large remote cluster
        self.max_in_flight = 2 * max(1, sum(self._client.nthreads().values()))
        self._heartbeat = None   # the heartbeat in flight (a concurrent.futures.Future)
        self._asked = -math.inf  # when the last one was sent
        self._unanswered_since: float | None = None  # the first heartbeat not answered

    def submit(self, fn, /, *args, **kwargs) -> Future:
        return self._executor.submit(fn, *args, **kwargs)

    def check(self) -> None:
        """Send the scheduler a heartbeat (at most every :data:`POLL_SECONDS`); raise
        :class:`ExecutorLost` if none was answered for :data:`SCHEDULER_TIMEOUT` seconds."""
        import asyncio

        now = time.monotonic()
        beat = self._heartbeat
        if beat is not None and beat.done():
            if not beat.cancelled() and beat.exception() is None:
                self._unanswered_since = None
            self._heartbeat = beat = None
        if beat is None and now - self._asked >= POLL_SECONDS:
            self._asked = now
            if self._unanswered_since is None:
                self._unanswered_since = now
            self._heartbeat = asyncio.run_coroutine_threadsafe(
                self._identity(), self._client.loop.asyncio_loop)
        if self._lost():
            raise ExecutorLost(f"the Dask scheduler {self.address} did not answer for "
                               f"{SCHEDULER_TIMEOUT:g} s")

    async def _identity(self):
        return await self._client.scheduler.identity()

    def _lost(self) -> bool:
        since = self._unanswered_since
        return since is not None and time.monotonic() - since > SCHEDULER_TIMEOUT

    def abort(self) -> None:
        """Cancel every task of this executor; a local cluster's workers are stopped now
        (each has :data:`STOP_SECONDS` to stop, then it is killed; the cluster then has
        none)."""
        if self._client.status == "running":
            self._executor.shutdown(wait=False)
            self._executor = self._client.get_executor(pure=False)
        if self._cluster is not None:
            self._cluster.sync(self._stop_local_workers)

    async def _stop_local_workers(self) -> None:
        import asyncio

        await asyncio.gather(*(worker.close(timeout=STOP_SECONDS)
                               for worker in list(self._cluster.workers.values())))

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        if self._heartbeat is not None:
            self._heartbeat.cancel()
        # a lost scheduler cannot take part in closing: close at once
        with suppress(OSError):
            self._client.close(timeout=POLL_SECONDS if self._lost() else SCHEDULER_TIMEOUT)
        if self._cluster is not None:
            self._cluster.close()
        for name, level in self._log_levels.items():
            logging.getLogger(name).setLevel(level)


EXECUTORS = ("inprocess", "processes", "dask")


def make_executor(kind: str, workers: int | None = None, scheduler: str | None = None):
    if scheduler is not None and kind != "dask":
        raise ConfigError(f"--scheduler {scheduler!r} needs --executor dask")
    if workers is not None and workers < 1:
        raise ConfigError(f"workers = {workers}: must be at least 1")
    if kind == "inprocess":
        return InProcessExecutor()
    if kind == "processes":
        return RecoveringProcessPool(workers)
    if kind == "dask":
        return DaskExecutor(scheduler, workers)
    raise ConfigError(f"executor = {kind!r}: allowed: {', '.join(EXECUTORS)}")


def chunk_file(staging: Path, format_id: str, start: int) -> Path:
    return staging / "chunks" / f"{format_id}-{start:012d}.npz"


def execute(plan: Plan, staging: Path, executor: Executor, retries: int = 2,
            progress: Callable[[int, int], None] | None = None,
            cancel: Cancel | None = None) -> list[str]:
    """Run every chunk not yet in ``staging``; return the errors of chunks that failed.

    A chunk file already in ``staging`` that cannot be read or lacks an output of the
    right length is logged as a warning and run again. An executor with a ``check()``
    method is checked every :data:`POLL_SECONDS` while chunks run; if it raises
    :class:`ExecutorLost`, the chunks not run are reported as one failure. On any
    exception (Ctrl-C included) the chunks in flight are cancelled (``abort()``, if the
    executor has it, stops them at once) and the exception is raised again; the chunk
    files written so far stay complete. ``cancel`` is looked at before each chunk is
    submitted and while chunks run; once set, the chunks in flight are abandoned as on an
    exception and :class:`Cancelled` is raised."""
    stop = cancel_check(cancel)
    executor_check = getattr(executor, "check", None)

    def check() -> None:
        stop()
        if executor_check is not None:
            executor_check()
    (staging / "chunks").mkdir(parents=True, exist_ok=True)
    todo = [c for c in plan.chunks() if not _complete(chunk_file(staging, c[0], c[1]), c)]
    total = len(plan.chunks())
    done = total - len(todo)
    if progress:
        progress(done, total)
    attempts = dict.fromkeys(todo, 0)
    failures: list[str] = []
    # a bounded number of chunks in flight: results are saved as they come, memory stays
    # bounded, and the in-process executor saves each chunk before computing the next
    in_flight = getattr(executor, "max_in_flight", 2 * (os.cpu_count() or 1))
    queue = list(reversed(todo))
    pending: dict[Future, tuple[str, int, int]] = {}
    try:
        while queue or pending:
            while queue and len(pending) < in_flight:
                stop()
                chunk = queue.pop()
                pending[executor.submit(run_chunk, chunk_task(plan, *chunk))] = chunk
            future = _first_done(pending, check)
            chunk = pending.pop(future)
            try:
                result = future.result()
            except Exception as exc:  # a task error, or a dead worker
                attempts[chunk] += 1
                if attempts[chunk] <= retries:
                    queue.append(chunk)
                else:
                    failures.append(f"chunk {chunk[0]} runs {chunk[1]}-{chunk[2] - 1}: "
                                    f"{exc!r}")
                continue
            _save(result, chunk_file(staging, chunk[0], chunk[1]))
            done += 1
            if progress:
                progress(done, total)
    except ExecutorLost as exc:
        _abandon(pending, executor)
        failures.append(f"{exc}; {len(queue) + len(pending)} of {total} chunks not run")
    except BaseException:
        _abandon(pending, executor)
        raise
    return failures


def _first_done(futures, check: Callable[[], None] | None) -> Future:
    """A finished future of ``futures``, calling ``check`` while waiting for one."""
    from concurrent.futures import FIRST_COMPLETED, wait

    while True:
        if check is not None:
            check()
        done, _ = wait(list(futures), timeout=POLL_SECONDS if check else None,
                       return_when=FIRST_COMPLETED)
        if done:
            return next(iter(done))


def _abandon(pending, executor) -> None:
    """Stop the chunks in flight: the executor's ``abort()``, else cancel their futures."""
    abort = getattr(executor, "abort", None)
    if abort is not None:
        abort()
    else:
        for future in pending:
            future.cancel()


def _save(result: dict[str, np.ndarray], target: Path) -> None:
    """Write a chunk file so that it is complete or absent, also after a power cut: the
    data is synced before the rename, the folder after it."""
    partial = target.with_suffix(".partial.npz")
    with partial.open("wb") as file:
        np.savez(file, **result)
        file.flush()
        os.fsync(file.fileno())
    os.replace(partial, target)
    if os.name == "posix":  # a folder cannot be opened for syncing on Windows
        folder = os.open(target.parent, os.O_RDONLY)
        try:
            os.fsync(folder)
        finally:
            os.close(folder)


def _complete(path: Path, chunk: tuple[str, int, int]) -> bool:
    """Whether ``path`` holds the chunk: every output, one value a run. A damaged file is
    logged as a warning (it will be run again)."""
    if not path.exists():
        return False
    runs = chunk[2] - chunk[1]
    problems = []
    try:
        with np.load(path) as data:
            for name in OUTPUTS:
                if name not in data.files:
                    problems.append(f"no {name}")
                elif data[name].shape != (runs,):
                    problems.append(f"{name} has shape {data[name].shape}, not ({runs},)")
    except Exception as exc:  # truncated or not a chunk file: BadZipFile, ValueError, ...
        problems = [f"unreadable: {exc}"]
    if problems:
        log.warning("chunk file %s is damaged (%s); running it again", path,
                    "; ".join(problems))
    return not problems


def read_summaries(plan: Plan, staging: Path) -> dict[str, np.ndarray]:
    """Every run's summaries from the chunk files in ``staging``: {output: (format, runs)}."""
    out = {}
    for name in OUTPUTS:
        out[name] = np.stack([
            np.concatenate([np.load(chunk_file(staging, fid, start))[name]
                            for f, start, _ in plan.chunks() if f == fid])
            for fid in plan.formats])
    return out
