"""Execution of a plan: chunks of runs on any ``concurrent.futures``-style executor.

Work is split into chunks of runs; any executor with ``submit`` runs them (in-process,
local processes, or Dask). Each finished chunk is written to the sweep's staging folder at
once, so an interrupted sweep resumes from its completed chunks; a chunk that fails is
retried and, if it still fails, reported.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import Executor, Future
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..game.config import ConfigError, FormatSpec, Scenario, require_extra
from ..game.payoffs import build_game
from .datasets import OUTPUTS, simulated_dataset
from .spec import Plan


def simulate_plan(plan: Plan, executor: Executor | None = None, progress=None):
    """Run a plan's simulations without writing an archive: the summaries in memory.

    The same chunks and code path as :func:`run_sweep`, staged in a temporary folder."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="deterrence-sweep-") as folder:
        failures = execute(plan, Path(folder), executor or InProcessExecutor(),
                           progress=progress)
        if failures:
            raise RuntimeError("; ".join(failures))
        return simulated_dataset(plan, read_summaries(plan, Path(folder)))


@dataclass(frozen=True)
class ChunkTask:
    """What a worker needs for one chunk: only the points of its own runs."""

    scenario: Scenario
    fmt: FormatSpec
    paths: tuple[str, ...]
    points: np.ndarray        # (cells of this chunk, axes)
    first_cell: int           # the chunk's cells are first_cell, first_cell + 1, ...
    replicates: int
    steps: int
    seed: int
    rationality: float | None
    start: int
    stop: int


def chunk_task(plan: Plan, format_id: str, start: int, stop: int) -> ChunkTask:
    first, last = start // plan.spec.replicates, (stop - 1) // plan.spec.replicates
    return ChunkTask(plan.scenario, plan.formats[format_id],
                     tuple(a.path for a in plan.spec.axes), plan.all_points[first:last + 1],
                     first, plan.spec.replicates, plan.spec.steps, plan.seed,
                     plan.spec.rationality, start, stop)


def run_chunk(task: ChunkTask) -> dict[str, np.ndarray]:
    """Simulate runs [start, stop) of one format: the summaries (importable, for workers)."""
    from dataclasses import replace

    from ..simulate import engine
    from ..simulate import rules as dyn

    runs = np.arange(task.start, task.stop)
    cells = runs // task.replicates - task.first_cell
    overrides = {path: task.points[:, j] for j, path in enumerate(task.paths)}
    setup = dyn.Setup.from_config(task.scenario, task.fmt, task.seed, task.rationality)
    setup = replace(setup, base=build_game(task.scenario, task.fmt, overrides))
    sim = engine.simulate(setup, runs, task.steps, cells=cells)
    return {name: sim.summary[name] for name in OUTPUTS}


class InProcessExecutor(Executor):
    """Runs each task at once, in this process (the embedded default)."""

    max_in_flight = 1

    def submit(self, fn, /, *args, **kwargs) -> Future:
        future: Future = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as exc:  # reported by the caller, like a pool's failure
            future.set_exception(exc)
        return future


class RecoveringProcessPool(Executor):
    """Local worker processes; a pool broken by a dead worker is replaced, so the failed
    chunks can be retried (``ProcessPoolExecutor`` fails every pending future then)."""

    def __init__(self, workers: int | None) -> None:
        import multiprocessing

        self._workers = workers
        self._context = multiprocessing.get_context("spawn")
        self._pool = self._new()

    def _new(self):
        from concurrent.futures import ProcessPoolExecutor

        return ProcessPoolExecutor(self._workers, mp_context=self._context)

    def submit(self, fn, /, *args, **kwargs) -> Future:
        from concurrent.futures.process import BrokenProcessPool

        try:
            return self._pool.submit(fn, *args, **kwargs)
        except BrokenProcessPool:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = self._new()
            return self._pool.submit(fn, *args, **kwargs)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        self._pool.shutdown(wait=wait, cancel_futures=cancel_futures)


class DaskExecutor(Executor):
    """A Dask cluster: the scheduler at ``address``, or a local cluster bound to 127.0.0.1
    with its dashboard off. Dask reschedules the tasks of a worker that dies."""

    def __init__(self, address: str | None, workers: int | None) -> None:
        require_extra("distributed", "dask", "the Dask executor")
        import dask
        from dask.distributed import Client, LocalCluster

        self._cluster = None
        if address is None:
            saved = dict(os.environ)  # the cluster writes worker settings into os.environ
            # Dask makes workers return freed memory to the system at once
            # (MALLOC_TRIM_THRESHOLD_=65536): measured 3.5x slower chunks here
            with dask.config.set({"distributed.nanny.pre-spawn-environ."
                                  "MALLOC_TRIM_THRESHOLD_": None}):
                self._cluster = LocalCluster(n_workers=workers or os.cpu_count() or 1,
                                             threads_per_worker=1, processes=True,
                                             host="127.0.0.1", dashboard_address=None)
            os.environ.clear()
            os.environ.update(saved)
            address = self._cluster.scheduler_address
        self._client = Client(address)
        self._executor = self._client.get_executor(pure=False)
        # keep every worker busy, also on a large remote cluster
        self.max_in_flight = 2 * max(1, sum(self._client.nthreads().values()))

    def submit(self, fn, /, *args, **kwargs) -> Future:
        return self._executor.submit(fn, *args, **kwargs)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        self._client.close()
        if self._cluster is not None:
            self._cluster.close()


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
            progress: Callable[[int, int], None] | None = None) -> list[str]:
    """Run every chunk not yet in ``staging``; return the errors of chunks that failed."""
    (staging / "chunks").mkdir(parents=True, exist_ok=True)
    todo = [c for c in plan.chunks() if not chunk_file(staging, c[0], c[1]).exists()]
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
    while queue or pending:
        while queue and len(pending) < in_flight:
            chunk = queue.pop()
            pending[executor.submit(run_chunk, chunk_task(plan, *chunk))] = chunk
        future = next(iter(_as_completed(pending)))
        chunk = pending.pop(future)
        try:
            result = future.result()
        except Exception as exc:  # a task error, or a dead worker
            attempts[chunk] += 1
            if attempts[chunk] <= retries:
                queue.append(chunk)
            else:
                failures.append(f"chunk {chunk[0]} runs {chunk[1]}-{chunk[2] - 1}: {exc!r}")
            continue
        target = chunk_file(staging, chunk[0], chunk[1])
        partial = target.with_suffix(".partial.npz")
        np.savez(partial, **result)
        os.replace(partial, target)  # a chunk file is complete or absent
        done += 1
        if progress:
            progress(done, total)
    return failures


def _as_completed(futures):
    from concurrent.futures import FIRST_COMPLETED, wait

    done, _ = wait(list(futures), return_when=FIRST_COMPLETED)
    return done


def read_summaries(plan: Plan, staging: Path) -> dict[str, np.ndarray]:
    """Every run's summaries from the chunk files in ``staging``: {output: (format, runs)}."""
    out = {}
    for name in OUTPUTS:
        out[name] = np.stack([
            np.concatenate([np.load(chunk_file(staging, fid, start))[name]
                            for f, start, _ in plan.chunks() if f == fid])
            for fid in plan.formats])
    return out
