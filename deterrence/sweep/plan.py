"""Parameter sweeps: a config file, a plan of chunks, execution, and a reproducible archive.

A sweep runs every format over a set of parameter points (a grid, or a Latin hypercube or
Sobol sample of ranges), ``replicates`` simulations per point, and also solves the exact
game at every point. Run ``r`` of point ``c`` has run index ``c * replicates + r`` under
every format, so formats are compared under common random numbers.

Work is split into chunks of runs; any executor with ``concurrent.futures``' ``submit``
runs them (in-process, local processes, or Dask). Each finished chunk is written to the
sweep's staging folder at once, so an interrupted sweep resumes from its completed chunks;
a chunk that fails is retried and, if it still fails, reported. When every chunk is there
the archive is assembled in the staging folder and renamed into place.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
from collections.abc import Callable
from concurrent.futures import Executor, Future
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property
from importlib import metadata
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import Field, model_validator

from ..analysis.sensitivity import SensitivitySpec
from ..game.config import (
    ConfigError,
    FormatSpec,
    Scenario,
    Strict,
    load_catalogue,
    load_scenario,
    read_toml,
    validate,
)
from ..game.payoffs import build_game, parameter_paths

RESULTS_DIR = Path(__file__).resolve().parents[2] / "results"
OUTPUTS = ("escalation_frequency", "abandoned_given_escalation", "deterred_share",
           "first_escalation")
EXACT_OUTPUTS = ("regime", "worst_escalates", "worst_stability", "worst_max_real_eigenvalue",
                 "equilibrium_count")


class SweepAxis(Strict):
    """One swept parameter: explicit ``values``, or a range ``low``-``high``."""

    path: str = Field(..., description="Parameter path, e.g. russia.war_cost (see docs).")
    values: list[float] | None = Field(None, min_length=1)
    low: float | None = None
    high: float | None = None
    count: int | None = Field(None, ge=1, le=10_000, description="Grid points in the range.")

    @model_validator(mode="after")
    def _one_form(self) -> SweepAxis:
        if self.values is not None:
            if self.low is not None or self.high is not None or self.count is not None:
                raise ValueError(f"axis {self.path!r}: give either values or low/high, not both")
        elif self.low is None or self.high is None:
            raise ValueError(f"axis {self.path!r}: give values, or low and high")
        elif not self.low < self.high:
            raise ValueError(f"axis {self.path!r}: low = {self.low} must be below "
                             f"high = {self.high}")
        return self


class SweepSpec(Strict):
    """A sweep file (``configs/sweeps/*.toml``)."""

    name: str = Field(..., pattern=r"^[A-Za-z0-9_-]+$")
    description: str = ""
    scenario: str = Field(..., description="Scenario file, relative to the sweep file.")
    formats: list[str] | Literal["all"] = Field("all", min_length=1)
    method: Literal["grid", "lhs", "sobol"] = "grid"
    samples: int | None = Field(None, ge=1, le=1_000_000,
                                description="Points drawn by lhs / sobol.")
    axes: list[SweepAxis] = Field(..., min_length=1)
    replicates: int = Field(..., ge=1, le=100_000)
    steps: int = Field(..., ge=1, le=100_000)
    seed: int | None = Field(None, ge=0, description="Root seed (default: the scenario's).")
    rationality: float | None = Field(None, ge=0, le=1e4)
    chunk_runs: int = Field(4096, ge=1, le=1_000_000, description="Runs per work unit.")
    sensitivity: SensitivitySpec | None = Field(
        None, description="A Sobol or Morris design over the axes' ranges, run with the "
                          "sweep, and its sensitivity indices.")

    @model_validator(mode="after")
    def _consistent(self) -> SweepSpec:
        paths = [a.path for a in self.axes]
        if len(set(paths)) != len(paths):
            raise ValueError(f"axes repeat a parameter: {paths}")
        if self.sensitivity is not None:
            for a in self.axes:
                if a.values is not None:
                    raise ValueError(f"axis {a.path!r}: the sensitivity design samples a "
                                     "range (low, high), not values")
        if self.method == "grid":
            for a in self.axes:
                if a.values is None and a.count is None:
                    raise ValueError(f"axis {a.path!r}: a grid range needs count")
            if self.samples is not None:
                raise ValueError("samples is for lhs / sobol; a grid takes its points from "
                                 "the axes")
        else:
            if self.samples is None:
                raise ValueError(f"method {self.method!r} needs samples")
            for a in self.axes:
                if a.values is not None or a.count is not None:
                    raise ValueError(f"axis {a.path!r}: {self.method} samples a range "
                                     f"(low, high), not values or count")
        return self


@dataclass(frozen=True)
class Plan:
    """A fully resolved sweep: everything needed to run it and to re-run it."""

    spec: SweepSpec
    scenario: Scenario
    formats: dict[str, FormatSpec]
    points: np.ndarray               # (cells, axes)
    grid_shape: tuple[int, ...] | None  # per-axis lengths for a grid
    seed: int
    # the sensitivity design's points (spec.sensitivity), run after the sweep's own cells
    sensitivity_points: np.ndarray | None = None

    @property
    def cells(self) -> int:
        """Cells of the sweep's own design (grid or sample)."""
        return self.points.shape[0]

    @cached_property
    def all_points(self) -> np.ndarray:
        """Every simulated point: the sweep's cells, then the sensitivity design."""
        if self.sensitivity_points is None:
            return self.points
        return np.concatenate([self.points, self.sensitivity_points])

    @property
    def runs_per_format(self) -> int:
        return self.all_points.shape[0] * self.spec.replicates

    def chunks(self) -> list[tuple[str, int, int]]:
        """Work units: (format id, first run, end run), in a fixed order."""
        size = self.spec.chunk_runs
        return [(fid, start, min(start + size, self.runs_per_format))
                for fid in self.formats for start in range(0, self.runs_per_format, size)]

    def to_json(self) -> dict[str, Any]:
        spec = self.spec.model_dump(mode="json")
        if spec["sensitivity"] is None:  # the form of archives without one
            del spec["sensitivity"]
        out = {"spec": spec,
               "scenario": self.scenario.model_dump(mode="json"),
               "formats": {k: v.model_dump(mode="json") for k, v in self.formats.items()},
               "points": self.points.tolist(), "grid_shape": self.grid_shape,
               "seed": self.seed}
        if self.sensitivity_points is not None:
            out["sensitivity_points"] = self.sensitivity_points.tolist()
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any], origin: str) -> Plan:
        try:
            return cls(spec=validate(SweepSpec, data["spec"], origin),
                       scenario=validate(Scenario, data["scenario"], origin),
                       formats={k: validate(FormatSpec, v, origin)
                                for k, v in data["formats"].items()},
                       points=np.asarray(data["points"], dtype=np.float64),
                       grid_shape=tuple(data["grid_shape"]) if data["grid_shape"] else None,
                       seed=int(data["seed"]),
                       sensitivity_points=np.asarray(data["sensitivity_points"],
                                                     dtype=np.float64).reshape(
                           -1, len(data["spec"]["axes"]))
                       if "sensitivity_points" in data else None)
        except (KeyError, TypeError, ValueError) as exc:
            if isinstance(exc, ConfigError):
                raise
            raise ConfigError(f"{origin}: not a valid sweep plan ({exc!r})") from None


def load_plan(path: str | Path, sensitivity: dict[str, Any] | None = None) -> Plan:
    """Read a sweep file and resolve it: scenario, formats, points, seed.

    ``sensitivity`` sets or overrides keys of the file's ``[sensitivity]`` table."""
    path = Path(path)
    data = read_toml(path)
    if sensitivity is not None:
        table = data.get("sensitivity", {})
        if not isinstance(table, dict):
            raise ConfigError(f"{path}: key 'sensitivity' must be a table")
        data["sensitivity"] = {**table, **sensitivity}
    spec = validate(SweepSpec, data, str(path))
    return resolve(spec, load_scenario(path.parent / spec.scenario), str(path))


def resolve(spec: SweepSpec, scenario: Scenario, origin: str = "sweep") -> Plan:
    """The plan of a validated sweep on a loaded scenario; every axis path and value is
    checked against every chosen format before any work."""
    catalogue = load_catalogue()
    ids = list(catalogue) if spec.formats == "all" else spec.formats
    unknown = [f for f in ids if f not in catalogue]
    if unknown:
        raise ConfigError(f"{origin}: key 'formats' names unknown formats {unknown}; allowed: "
                          f"{sorted(catalogue)}")
    formats = {f: catalogue[f] for f in dict.fromkeys(ids)}
    points, shape = _points(spec)
    seed = scenario.seed if spec.seed is None else spec.seed
    design = None
    if spec.sensitivity is not None:
        from ..analysis.sensitivity import design as sensitivity_design

        design = sensitivity_design(spec.sensitivity, [a.path for a in spec.axes],
                                    [a.low for a in spec.axes], [a.high for a in spec.axes],
                                    seed)
    plan = Plan(spec, scenario, formats, points, shape, seed, design)
    for fid, fmt in formats.items():
        allowed = parameter_paths(scenario, fmt)
        for axis in spec.axes:
            if axis.path not in allowed:
                raise ConfigError(f"{origin}: axis {axis.path!r} is not a parameter of format "
                                  f"{fid!r}; allowed: {', '.join(allowed)}")
        try:
            build_game(scenario, fmt, {a.path: plan.all_points[:, j]
                                       for j, a in enumerate(spec.axes)})
        except ConfigError as exc:
            raise ConfigError(f"{origin}: {exc}") from None
    return plan


def simulate_plan(plan: Plan, executor: Executor | None = None, progress=None):
    """Run a plan's simulations without writing an archive: the summaries in memory.

    The same chunks and code path as :func:`run_sweep`, staged in a temporary folder."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="deterrence-sweep-") as folder:
        failures = execute(plan, Path(folder), executor or InProcessExecutor(),
                           progress=progress)
        if failures:
            raise RuntimeError("; ".join(failures))
        return simulated_dataset(plan, Path(folder))


def _points(spec: SweepSpec) -> tuple[np.ndarray, tuple[int, ...] | None]:
    if spec.method == "grid":
        values = [np.asarray(a.values, dtype=np.float64) if a.values is not None
                  else np.linspace(a.low, a.high, a.count) for a in spec.axes]
        mesh = np.meshgrid(*values, indexing="ij")
        return (np.stack([m.ravel() for m in mesh], axis=1),
                tuple(v.size for v in values))
    from scipy.stats import qmc

    d = len(spec.axes)
    rng = np.random.default_rng(spec.seed if spec.seed is not None else 0)
    if spec.method == "lhs":
        unit = qmc.LatinHypercube(d=d, rng=rng).random(spec.samples)
    else:
        unit = qmc.Sobol(d=d, scramble=True, rng=rng).random(spec.samples)
    low = np.array([a.low for a in spec.axes])
    high = np.array([a.high for a in spec.axes])
    return qmc.scale(unit, low, high), None


# ---------------------------------------------------------------------------------------
# Work


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


def _chunk_file(staging: Path, format_id: str, start: int) -> Path:
    return staging / "chunks" / f"{format_id}-{start:012d}.npz"


def execute(plan: Plan, staging: Path, executor: Executor, retries: int = 2,
            progress: Callable[[int, int], None] | None = None) -> list[str]:
    """Run every chunk not yet in ``staging``; return the errors of chunks that failed."""
    (staging / "chunks").mkdir(parents=True, exist_ok=True)
    todo = [c for c in plan.chunks() if not _chunk_file(staging, c[0], c[1]).exists()]
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
        target = _chunk_file(staging, chunk[0], chunk[1])
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


# ---------------------------------------------------------------------------------------
# Archive


def plan_file(staging: Path) -> Path:
    return staging / "config" / "plan.json"


def start_staging(plan: Plan, source: Path | None, staging: Path) -> None:
    (staging / "config").mkdir(parents=True, exist_ok=True)
    # keys in their own order: the order of formats is part of the plan
    plan_file(staging).write_text(json.dumps(plan.to_json(), indent=1))
    if source is not None:
        shutil.copyfile(source, staging / "config" / "sweep.toml")


def _layout(plan: Plan):
    """Dimensions, shape and coordinates of the points: one dimension per grid axis, or
    ``sample`` with one coordinate per parameter."""
    spec = plan.spec
    if plan.grid_shape is not None:
        coords = {a.path: np.unique(plan.points[:, j]) if a.values is None
                  else np.asarray(a.values, dtype=np.float64)
                  for j, a in enumerate(spec.axes)}
        return tuple(a.path for a in spec.axes), plan.grid_shape, coords
    coords: dict[str, Any] = {"sample": np.arange(plan.cells)}
    coords.update({a.path: ("sample", plan.points[:, j]) for j, a in enumerate(spec.axes)})
    return ("sample",), (plan.cells,), coords


def _solve(plan: Plan, points: np.ndarray) -> list:
    from ..solve.equilibrium import solve_grid

    solutions = []
    for fid in plan.formats:
        game = build_game(plan.scenario, plan.formats[fid],
                          {a.path: points[:, j] for j, a in enumerate(plan.spec.axes)})
        solutions.append(solve_grid(
            game, defended_below=plan.scenario.analysis.defended_below_russia_success,
            threads=1))
    return solutions


def exact_dataset(plan: Plan):
    """The exact solver's regime and stability at every point, per format."""
    import xarray as xr

    from ..api import MAP_VARIABLES

    dims, shape, coords = _layout(plan)
    formats = list(plan.formats)
    solutions = _solve(plan, plan.points)
    exact: dict[str, Any] = {}
    for name in EXACT_OUTPUTS:
        desc, unit = MAP_VARIABLES[name]
        values = np.stack([getattr(s, name).reshape(shape) for s in solutions])
        if values.dtype == bool:
            values = values.astype(np.int8)
        exact[name] = (("format", *dims), values, {"description": desc, "units": unit})
    return xr.Dataset(exact, coords={"format": formats, **coords},
                      attrs={"sweep": plan.spec.name})


def _summaries(plan: Plan, staging: Path) -> dict[str, np.ndarray]:
    """Every run's summaries from the chunk files: {output: (format, runs)}."""
    out = {}
    for name in OUTPUTS:
        out[name] = np.stack([
            np.concatenate([np.load(_chunk_file(staging, fid, start))[name]
                            for f, start, _ in plan.chunks() if f == fid])
            for fid in plan.formats])
    return out


def simulated_dataset(plan: Plan, staging: Path, summaries=None):
    """The simulated summaries of the sweep's own cells, from the chunk files in
    ``staging``."""
    import xarray as xr

    from ..api import SUMMARY_DESCRIPTIONS

    spec = plan.spec
    dims, shape, coords = _layout(plan)
    summaries = _summaries(plan, staging) if summaries is None else summaries
    runs = plan.cells * spec.replicates
    sim: dict[str, Any] = {}
    for name in OUTPUTS:
        desc, unit = SUMMARY_DESCRIPTIONS[name]
        values = summaries[name][:, :runs].reshape(len(plan.formats), *shape,
                                                   spec.replicates)
        sim[name] = (("format", *dims, "replicate"), values,
                     {"description": desc, "units": unit})
    return xr.Dataset(sim, coords={"format": list(plan.formats), **coords,
                                   "replicate": np.arange(spec.replicates)},
                      attrs={"sweep": spec.name, "steps": spec.steps, "seed": plan.seed})


def sensitivity_dataset(plan: Plan, summaries: dict[str, np.ndarray]):
    """The sensitivity design's simulated summaries (format, sample, replicate) and exact
    regime (format, sample)."""
    import xarray as xr

    from ..api import MAP_VARIABLES, SUMMARY_DESCRIPTIONS

    spec = plan.spec
    points = plan.sensitivity_points
    first = plan.cells * spec.replicates
    data: dict[str, Any] = {}
    for name in OUTPUTS:
        desc, unit = SUMMARY_DESCRIPTIONS[name]
        data[name] = (("format", "sample", "replicate"),
                      summaries[name][:, first:].reshape(len(plan.formats), points.shape[0],
                                                         spec.replicates),
                      {"description": desc, "units": unit})
    desc, unit = MAP_VARIABLES["regime"]
    data["regime"] = (("format", "sample"),
                      np.stack([s.regime for s in _solve(plan, points)]),
                      {"description": desc, "units": unit})
    coords: dict[str, Any] = {"format": list(plan.formats), "sample": np.arange(len(points)),
                              "replicate": np.arange(spec.replicates)}
    coords.update({a.path: ("sample", points[:, j]) for j, a in enumerate(spec.axes)})
    return xr.Dataset(data, coords=coords, attrs={"sweep": spec.name, "steps": spec.steps,
                                                  "seed": plan.seed,
                                                  "method": spec.sensitivity.method})


def sensitivity_indices(plan: Plan, design):
    """The indices of every requested outcome, per format, from the design's data."""
    from ..analysis.sensitivity import indices_dataset

    spec = plan.spec
    return indices_dataset(spec.sensitivity, [a.path for a in spec.axes],
                           [a.low for a in spec.axes], [a.high for a in spec.axes],
                           plan.sensitivity_points, design, design, plan.seed, spec.name)


def datasets(plan: Plan, staging: Path) -> dict[str, Any]:
    """Every data file of the archive as a labelled array: the simulated summaries and the
    exact solutions, and with a sensitivity design its data and indices."""
    summaries = _summaries(plan, staging)
    out = {"data/simulation.nc": simulated_dataset(plan, staging, summaries),
           "data/exact.nc": exact_dataset(plan)}
    if plan.sensitivity_points is not None:
        design = sensitivity_dataset(plan, summaries)
        out[SENSITIVITY_FILES[0]] = design
        out[SENSITIVITY_FILES[1]] = sensitivity_indices(plan, design)
    return out


def sha256(path: Path) -> str:
    """SHA-256 of a file, read in blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _code_version() -> dict[str, Any]:
    root = Path(__file__).resolve().parents[2]
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True,
                                text=True, timeout=10).stdout.strip() or None
        dirty = bool(subprocess.run(["git", "status", "--porcelain", "--", "deterrence",
                                     "configs"], cwd=root, capture_output=True, text=True,
                                    timeout=10).stdout.strip()) if commit else None
    except (OSError, subprocess.SubprocessError):
        commit, dirty = None, None
    return {"git_commit": commit, "git_dirty": dirty}


def _packages() -> dict[str, str]:
    names = ("deterrence", "numpy", "scipy", "pydantic", "mesa", "xarray")
    out = {}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def _simd_features() -> list[str]:
    """The CPU features numpy dispatches to here. Transcendental functions (exp, tanh) may
    round differently in the last bit on a CPU with other features, which ``verify`` would
    report; basic arithmetic is the same everywhere."""
    try:
        from numpy._core._multiarray_umath import __cpu_dispatch__, __cpu_features__
    except ImportError:
        return []
    return [name for name in __cpu_dispatch__ if __cpu_features__.get(name)]


DATA_FILES = ("data/simulation.nc", "data/exact.nc")
SENSITIVITY_FILES = ("data/sensitivity.nc", "analysis/sensitivity.nc")
SENSITIVITY_FIGURE = "figures/sensitivity.png"


def finish_archive(plan: Plan, staging: Path, target: Path, started: str,
                   executor_name: str, source: Path | None = None) -> Path:
    """Write the data, provenance and checksums into ``staging`` and rename it to
    ``target``."""
    from ..simulate import rules as dyn

    for name, data in datasets(plan, staging).items():
        (staging / name).parent.mkdir(exist_ok=True)
        data.to_netcdf(staging / name, engine="scipy")
        if name == SENSITIVITY_FILES[1]:
            from ..analysis.sensitivity import figure

            (staging / SENSITIVITY_FIGURE).parent.mkdir(exist_ok=True)
            (staging / SENSITIVITY_FIGURE).write_bytes(
                figure(data, f"{plan.spec.name}: {plan.spec.sensitivity.method} indices"))
    shutil.rmtree(staging / "chunks")
    files = sorted(p.relative_to(staging).as_posix() for p in staging.rglob("*")
                   if p.is_file())
    manifest = {
        "archive": target.name,
        "sweep": plan.spec.name,
        "started": started,
        "finished": datetime.now(UTC).isoformat(timespec="seconds"),
        "seed": plan.seed,
        "random_key": dyn.root_key(plan.seed),
        "runs": plan.runs_per_format * len(plan.formats),
        "executor": executor_name,
        # config/sweep.toml names its scenario relative to this file
        "sweep_file": str(source.resolve()) if source is not None else None,
        "code": _code_version(),
        "packages": _packages(),
        "platform": {"python": sys.version.split()[0], "system": platform.platform(),
                     "machine": platform.machine(), "numpy_simd": _simd_features()},
        "files": {f: sha256(staging / f) for f in files},
    }
    (staging / "manifest.json").write_text(json.dumps(manifest, indent=1, sort_keys=True))
    os.rename(staging, target)
    return target


def staging_for(target: Path) -> Path:
    return target.parent / f".{target.name}.partial"


def run_sweep(plan: Plan, target: Path, executor: Executor, executor_name: str,
              source: Path | None = None, resume: bool = False, retries: int = 2,
              progress=None) -> tuple[Path | None, list[str]]:
    """Run a sweep into the archive folder ``target`` (which must not exist).

    Returns (archive path, []) on success, or (None, failures) if chunks failed; the
    staging folder is then kept so that ``resume=True`` continues where it stopped.
    """
    if target.exists():
        raise ConfigError(f"{target}: already exists; choose a new archive folder")
    staging = staging_for(target)
    started = datetime.now(UTC).isoformat(timespec="seconds")
    if resume:
        if not plan_file(staging).exists():
            raise ConfigError(f"{staging}: no interrupted sweep to resume")
        stored = Plan.from_json(json.loads(plan_file(staging).read_text()), str(staging))
        if stored.to_json() != plan.to_json():
            raise ConfigError(f"{staging}: was started with a different sweep; remove it or "
                              "run under a new name")
    else:
        if staging.exists():
            raise ConfigError(f"{staging}: an interrupted sweep is there; resume it "
                              "(--resume) or remove it")
        start_staging(plan, source, staging)
    failures = execute(plan, staging, executor, retries, progress)
    if failures:
        return None, failures
    return finish_archive(plan, staging, target, started, executor_name, source), []


# ---------------------------------------------------------------------------------------
# Verification


class ArchiveError(ValueError):
    """An archive is malformed (missing or unreadable manifest, plan or data)."""


def read_manifest(archive: Path) -> dict[str, Any]:
    path = archive / "manifest.json"
    try:
        manifest = json.loads(path.read_text())
        files = manifest["files"]
        if not isinstance(files, dict):
            raise TypeError("files is not a table")
    except FileNotFoundError:
        raise ArchiveError(f"{archive}: not an archive (no manifest.json)") from None
    except (json.JSONDecodeError, KeyError, TypeError, UnicodeDecodeError) as exc:
        raise ArchiveError(f"{path}: malformed manifest ({exc})") from None
    except OSError as exc:  # not a folder, unreadable
        raise ArchiveError(f"{archive}: not an archive ({exc.strerror or exc})") from None
    return manifest


def check_files(archive: Path, manifest: dict[str, Any]) -> list[str]:
    """Files that are missing, changed or not listed."""
    problems = []
    for name, digest in sorted(manifest["files"].items()):
        path = archive / name
        if not path.is_file():
            problems.append(f"{name}: missing")
        elif sha256(path) != digest:
            problems.append(f"{name}: changed (checksum differs)")
    listed = set(manifest["files"]) | {"manifest.json"}
    extra = sorted(p.relative_to(archive).as_posix() for p in archive.rglob("*")
                   if p.is_file() and p.relative_to(archive).as_posix() not in listed)
    problems += [f"{name}: not in the manifest" for name in extra]
    return problems


def verify(archive: str | Path, executor: Executor | None = None) -> list[str]:
    """Re-run an archive's sweep and compare every array bit for bit.

    Returns what differs (empty: it reproduces). Raises ArchiveError if malformed.
    """
    import xarray as xr

    archive = Path(archive)
    manifest = read_manifest(archive)
    problems = check_files(archive, manifest)
    if problems:
        return problems
    try:
        plan = Plan.from_json(json.loads(plan_file(archive).read_text()), str(archive))
    except (OSError, json.JSONDecodeError) as exc:
        raise ArchiveError(f"{archive}: unreadable plan ({exc})") from None
    except ConfigError as exc:
        raise ArchiveError(str(exc)) from None
    scratch = archive.parent / f".{archive.name}.verify-{os.getpid()}"
    shutil.rmtree(scratch, ignore_errors=True)
    try:
        start_staging(plan, None, scratch)
        failures = execute(plan, scratch, executor or InProcessExecutor())
        if failures:
            return [f"re-run failed: {f}" for f in failures]
        fresh = datasets(plan, scratch)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    if manifest.get("seed") != plan.seed or manifest.get("random_key") != _random_key(plan):
        problems.append("manifest.json: seed or random key does not match the plan")
    for name, new in fresh.items():
        try:
            with xr.open_dataset(archive / name, engine="scipy") as stored:
                stored.load()
        except Exception as exc:  # unreadable data file
            raise ArchiveError(f"{archive / name}: unreadable ({exc})") from None
        for var in (*new.coords, *new.data_vars):
            if var not in stored:
                problems.append(f"{name}: {var} missing")
            elif stored[var].dims != new[var].dims or not np.array_equal(
                    stored[var].values, new[var].values, equal_nan=var in new.data_vars):
                problems.append(f"{name}: {var} differs")
    return problems


def _random_key(plan: Plan) -> int:
    from ..simulate.rules import root_key

    return root_key(plan.seed)
