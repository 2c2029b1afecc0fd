"""Python API: the operations of the command line as functions, for scripts and notebooks.

This is the front door of the package: the command line and the dashboard call these
functions and nothing below them, so both faces do the same thing for the same input.
"""

from __future__ import annotations

from concurrent.futures import Executor
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path

import numpy as np

from .analysis.compare import COMPARED_OUTCOMES, compare_formats, significance_counts
from .analysis.sensitivity import INDICES
from .analysis.stats import mean_ci, paired_difference
from .archive.manifest import ArchiveError
from .archive.read import INDICES_FILE
from .archive.write import results_dir
from .game.config import (
    DASHBOARD_APP,
    FORMATS_DIR,
    SCENARIOS_DIR,
    SWEEPS_DIR,
    ConfigError,
    FormatSpec,
    MissingExtra,
    Scenario,
    load_catalogue,
    load_scenario,
    locate,
    read_toml,
    require_extra,
)
from .game.payoffs import build_game, parameter_paths
from .simulate.engine import SUMMARY_DESCRIPTIONS, simulation_dataset
from .simulate.rules import hazard_of_first_escalation
from .solve.binary_games import STABILITY_NAMES
from .solve.equilibrium import (
    MAP_VARIABLES,
    REGIME_NAMES,
    Equilibrium,
    GridSolution,
    solve_cell,
    solve_grid,
)
from .sweep.design import DEFAULT_SAMPLES
from .sweep.execute import EXECUTORS, make_executor, simulate_plan
from .sweep.spec import Plan, SweepSpec, load_plan, resolve

__all__ = [
    # names re-exported from the layers below, for the faces and for notebooks
    "COMPARED_OUTCOMES", "DASHBOARD_APP", "DEFAULT_SAMPLES", "EXECUTORS", "FORMATS_DIR",
    "INDICES", "INDICES_FILE", "MAP_VARIABLES", "REGIME_NAMES", "SCENARIOS_DIR",
    "STABILITY_NAMES", "SUMMARY_DESCRIPTIONS", "SWEEPS_DIR", "ArchiveError", "ConfigError",
    "MissingExtra", "Plan", "SweepSpec", "compare_formats",
    "hazard_of_first_escalation", "load_catalogue", "load_plan", "load_scenario", "locate",
    "mean_ci", "paired_difference", "parameter_paths", "read_toml", "require_extra",
    "resolve", "results_dir", "significance_counts", "simulate_plan", "simulation_dataset",
    # the operations defined here
    "FormatResult", "discover", "exact_dataset", "load_archive", "plan_run", "run_sweep",
    "simulate_scenario", "solve_formats", "solve_map", "verify", "write_report",
    "write_simulation",
]

try:  # the version is declared once, in pyproject.toml
    __version__ = metadata.version("deterrence")
except metadata.PackageNotFoundError:  # a source tree on sys.path, never installed
    __version__ = "unknown"

ENGINES = ("vector", "mesa")


@dataclass(frozen=True)
class FormatResult:
    """The solved crisis game of one scenario under one format."""

    format_id: str
    format_name: str
    members: list[str]
    regime: str                  # over the pure SPE ("mixed" if they differ), as on maps
    equilibria: list[Equilibrium]

    def to_dict(self) -> dict:
        return {"id": self.format_id, "name": self.format_name, "members": self.members,
                "regime": self.regime, "equilibria": [asdict(e) for e in self.equilibria]}


def solve_formats(scenario: Scenario | str | Path, format_ids: list[str] | None = None,
                  rationality: float | None = None,
                  formats_dir: str | Path = FORMATS_DIR) -> list[FormatResult]:
    """Solve ``scenario`` under each format (default: the whole catalogue)."""
    if not isinstance(scenario, Scenario):
        scenario = load_scenario(scenario)
    catalogue = load_catalogue(formats_dir)
    if scenario.format not in catalogue:
        raise ConfigError(f"scenario {scenario.name!r}: key 'format' = {scenario.format!r}: "
                          f"not in the catalogue; allowed: {sorted(catalogue)}")
    chosen = list(dict.fromkeys(format_ids)) if format_ids else list(catalogue)
    unknown = [f for f in chosen if f not in catalogue]
    if unknown:
        raise ConfigError(f"unknown format id(s) {unknown}; allowed: {sorted(catalogue)}")
    if rationality is None:
        rationality = scenario.analysis.rationality
    elif not 0 <= rationality <= 1e4:
        raise ConfigError(f"rationality = {rationality!r}: must be between 0 and 10000")
    results = []
    for fid in chosen:
        fmt: FormatSpec = catalogue[fid]
        game = build_game(scenario, fmt)
        threshold = scenario.analysis.defended_below_russia_success
        grid = solve_grid(game, defended_below=threshold, threads=1)
        results.append(FormatResult(
            format_id=fid, format_name=fmt.name, members=list(game.guarantor_ids),
            regime=REGIME_NAMES[int(grid.regime[0])],
            equilibria=solve_cell(game, rationality, defended_below=threshold)))
    return results


def solve_map(scenario: Scenario | str | Path, format_id: str,
              x: tuple[str, np.ndarray], y: tuple[str, np.ndarray],
              formats_dir: str | Path = FORMATS_DIR):
    """Solve a 2-D parameter grid for one format; returns labelled arrays (x by y).

    ``x`` and ``y`` are (parameter path, values); see :func:`deterrence.parameter_paths`.
    """
    if not isinstance(scenario, Scenario):
        scenario = load_scenario(scenario)
    catalogue = load_catalogue(formats_dir)
    if format_id not in catalogue:
        raise ConfigError(f"unknown format id {format_id!r}; allowed: {sorted(catalogue)}")
    import xarray as xr  # imported here: engine workers need not load it

    (x_path, x_values), (y_path, y_values) = x, y
    if x_path == y_path:
        raise ConfigError(f"the two axes must differ, both are {x_path!r}")
    x_values = np.asarray(x_values, dtype=np.float64)
    y_values = np.asarray(y_values, dtype=np.float64)
    game = build_game(scenario, catalogue[format_id],
                      {x_path: x_values[:, None], y_path: y_values[None, :]})
    grid: GridSolution = solve_grid(
        game, defended_below=scenario.analysis.defended_below_russia_success)
    shape = (x_values.size, y_values.size)
    data = {name: ((x_path, y_path), getattr(grid, name).reshape(shape),
                   {"description": desc, "units": unit})
            for name, (desc, unit) in MAP_VARIABLES.items()}
    return xr.Dataset(data, coords={x_path: x_values, y_path: y_values},
                      attrs={"scenario": scenario.name, "format": format_id,
                             "regime_names": list(REGIME_NAMES),
                             "stability_names": list(STABILITY_NAMES)})


def simulate_scenario(scenario: Scenario | str | Path, format_id: str | None = None,
                      engine: str = "vector", runs: int = 100, steps: int = 200,
                      seed: int | None = None, rationality: float | None = None,
                      keep_series: bool = False, formats_dir: str | Path = FORMATS_DIR,
                      progress=None):
    """Simulate ``runs`` repeated crises under one format (default: the scenario's).

    Both engines give the same numbers for the same seed. ``progress``, if given, is
    called with the number of runs finished after each run (Mesa) or chunk (vector).
    """
    from .simulate import engine as vector
    from .simulate import mesa_model as abm
    from .simulate.rules import MAX_RUNS, MAX_STEPS, Setup

    if not isinstance(scenario, Scenario):
        scenario = load_scenario(scenario)
    catalogue = load_catalogue(formats_dir)
    format_id = format_id or scenario.format
    if format_id not in catalogue:
        raise ConfigError(f"unknown format id {format_id!r}; allowed: {sorted(catalogue)}")
    if engine not in ENGINES:
        raise ConfigError(f"engine = {engine!r}: allowed: {', '.join(ENGINES)}")
    if not 1 <= runs < MAX_RUNS:
        raise ConfigError(f"runs = {runs!r}: must be between 1 and {MAX_RUNS - 1}")
    if not 1 <= steps <= MAX_STEPS:
        raise ConfigError(f"steps = {steps!r}: must be between 1 and {MAX_STEPS}")
    if seed is not None and seed < 0:
        raise ConfigError(f"seed = {seed!r}: must be a non-negative integer")
    if rationality is not None and not 0 <= rationality <= 1e4:
        raise ConfigError(f"rationality = {rationality!r}: must be between 0 and 10000")
    setup = Setup.from_config(scenario, catalogue[format_id], seed, rationality)
    if engine == "vector":
        return vector.simulate(setup, runs, steps, keep_series, progress=progress)
    results = []
    for r in range(runs):
        results.append(abm.run(setup, r, steps, keep_series))
        if progress:
            progress(r + 1)
    summary = {k: np.concatenate([res[0][k] for res in results]) for k in results[0][0]}
    series = ({k: np.concatenate([res[1][k] for res in results]) for k in results[0][1]}
              if keep_series else None)
    return vector.Simulation(setup.base.guarantor_ids, np.arange(runs), steps, summary, series)


def write_simulation(target: str | Path, dataset, record: dict) -> Path:
    """Write a simulation's labelled arrays (``simulation.nc``) and its record
    (``run.json``) into the new folder ``target``, all or nothing."""
    import json

    from .archive.storage import write_directory

    def fill(folder: Path) -> None:
        dataset.to_netcdf(folder / "simulation.nc", engine="scipy")
        (folder / "run.json").write_text(json.dumps(record, indent=2))

    return write_directory(target, fill)


def run_sweep(plan: Plan, target: str | Path, executor: str | Executor = "inprocess",
              executor_name: str | None = None, source: str | Path | None = None,
              resume: bool = False, retries: int = 2, progress=None,
              workers: int | None = None, scheduler: str | None = None,
              ) -> tuple[Path | None, list[str]]:
    """Run a sweep plan into the new archive folder ``target``, with its analysis.

    ``executor`` is a name (:data:`EXECUTORS`; ``workers`` and ``scheduler`` configure it)
    or any ``concurrent.futures.Executor``. Returns (archive, []) or, if chunks failed,
    (None, failures) with the staging folder kept for ``resume=True``."""
    from .analysis.sensitivity import archive_outputs
    from .archive.write import run_sweep as run

    source_file = locate(source, "sweep") if source is not None else None  # a file or a name
    own = isinstance(executor, str)
    pool = make_executor(executor, workers, scheduler) if own else executor
    name = executor_name or (executor if own else type(executor).__name__)
    try:
        return run(plan, Path(target), pool, name, source_file, resume=resume,
                   retries=retries, progress=progress, derive=archive_outputs)
    finally:
        if own:
            pool.shutdown()


def verify(archive: str | Path, executor=None) -> list[str]:
    """Re-run an archive and compare every array bit for bit: what differs (empty if it
    reproduces). Raises :class:`ArchiveError` if the archive is malformed."""
    from .analysis.sensitivity import archive_outputs
    from .archive.verify import verify as check

    return check(archive, executor, derive=archive_outputs)


def write_report(archive: str | Path, out: str | Path | None = None) -> Path:
    """Write the self-contained HTML report of an archive (outside it); its path."""
    from .analysis.report import write_report as write

    return write(archive, out)


def load_archive(archive: str | Path):
    """An archive's plan, datasets and manifest (:class:`deterrence.analysis.report.Archive`)."""
    from .analysis.report import load_archive as load

    return load(archive)


def discover(archive: str | Path, format_ids: list[str] | None = None,
             outcome: str = "escalation_frequency", threshold: float = 0.5,
             min_density: float = 0.8):
    """Scenario discovery (PRIM) on an archive: (points used, [(format id, box or None)])."""
    from .analysis.discovery import find_failure_box
    from .analysis.report import discovery_data

    loaded = load_archive(archive)
    sim, exact, source = discovery_data(loaded)
    unknown = [f for f in format_ids or [] if f not in loaded.plan.formats]
    if unknown:
        raise ConfigError(f"format {unknown[0]!r}: not in the archive; allowed: "
                          f"{', '.join(loaded.plan.formats)}")
    boxes = []
    for fid in format_ids or list(loaded.plan.formats):
        try:
            boxes.append((fid, find_failure_box(sim, exact, fid, outcome, threshold,
                                                min_density=min_density)))
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
    return source, boxes


def exact_dataset(plan: Plan):
    """The exact solver's maps of a sweep plan, per format (no simulation)."""
    from .sweep.datasets import exact_dataset as exact

    return exact(plan)


def plan_run(plan: Plan, format_id: str, cell: int, replicate: int):
    """One run of a sweep plan in the Mesa model (the reference engine): the run that the
    sweep computes as run ``cell * replicates + replicate``. Returns (summary, series,
    guarantor ids)."""
    from dataclasses import replace

    from .simulate import mesa_model
    from .simulate.rules import Setup

    fmt = plan.formats[format_id]
    overrides = {a.path: plan.points[[cell], j] for j, a in enumerate(plan.spec.axes)}
    setup = Setup.from_config(plan.scenario, fmt, plan.seed, plan.spec.rationality)
    setup = replace(setup, base=build_game(plan.scenario, fmt, overrides))
    summary, series = mesa_model.run(setup, cell * plan.spec.replicates + replicate,
                                     plan.spec.steps)
    return summary, series, list(setup.base.guarantor_ids)
