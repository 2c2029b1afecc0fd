"""Python API: the operations of the command line as functions, for scripts and notebooks.

This is the front door of the package: the command line and the dashboard call these
functions and nothing below them, so both faces do the same thing for the same input.
"""

from __future__ import annotations

from concurrent.futures import Executor
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from importlib import metadata
from pathlib import Path

import numpy as np

from .analysis.compare import COMPARED_OUTCOMES, compare_formats, significance_counts
from .analysis.discovery import REGIME_OUTCOME
from .analysis.palette import REGIME_COLOURS, colours_of
from .analysis.sensitivity import INDICES
from .analysis.stability import STABILITY_VARIABLES
from .analysis.stats import mean_ci, paired_difference
from .archive.manifest import ArchiveError
from .archive.read import INDICES_FILE
from .archive.storage import check_new_folder
from .archive.write import results_dir
from .game.config import (
    DASHBOARD_APP,
    FORMATS_DIR,
    MAX_SEED,
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
from .simulate.rules import END_STATES, STARTS, hazard_of_first_escalation
from .solve.equilibrium import (
    CREDIBILITY_VARIABLE,
    MAP_VARIABLES,
    REGIME_NAMES,
    Equilibrium,
    GridSolution,
    solve_cell,
)
from .sweep.datasets import (
    CREDIBILITY,
    QUANTITY_OUTPUTS,
    credibility_values,
    decode_flags,
    dim_name,
    parameter_attributes,
    parameter_path,
    simulated_dataset,
)
from .sweep.datasets import solve as solve_points
from .sweep.design import DEFAULT_SAMPLES
from .sweep.design import OUTPUTS as SENSITIVITY_OUTPUTS
from .sweep.execute import (
    EXECUTORS,
    Cancel,
    Cancelled,
    Summaries,
    make_executor,
    simulate_plan,
    simulate_summaries,
)
from .sweep.spec import Plan, SweepSpec, load_plan, resolve

__all__ = [
    # names re-exported from the layers below, for the faces and for notebooks
    "COMPARED_OUTCOMES", "CREDIBILITY_VARIABLE", "DASHBOARD_APP", "DEFAULT_SAMPLES",
    "END_STATES", "STARTS", "EXECUTORS", "FORMATS_DIR", "INDICES", "INDICES_FILE", "MAP_VARIABLES",
    "REGIME_COLOURS", "REGIME_NAMES", "SCENARIOS_DIR", "STABILITY_VARIABLES",
    "SUMMARY_DESCRIPTIONS", "SWEEPS_DIR", "ArchiveError", "ConfigError",
    "MissingExtra", "Plan", "SweepSpec", "check_new_folder", "compare_formats",
    "decode_flags", "dim_name",
    "hazard_of_first_escalation", "load_catalogue", "load_plan", "load_scenario", "locate",
    "mean_ci", "paired_difference", "parameter_path", "parameter_paths", "read_toml",
    "require_extra", "resolve", "results_dir", "significance_counts", "simulate_plan",
    "simulation_dataset", "SENSITIVITY_OUTPUTS",
    # the operations defined here
    "DISCOVERY_OUTCOMES", "ENGINES", "EQUILIBRIUM_COLUMNS", "FORMAT_COLUMNS",
    "FormatResult", "basins", "discover", "exact_dataset", "load_archive", "plan_run",
    "run_sweep",
    "simulate_scenario", "solve_formats", "solve_map", "stability_dataset",
    "stability_table", "verify", "write_report",
    "write_simulation",
    # for notebooks: changed parameters, tables and labelled arrays in memory
    "label_categories", "plot_categories", "sensitivity", "simulate_runs", "solve_table",
    "sweep_dataset", "sweep_plan", "with_parameters",
    "REGIME_OUTCOME", "peeling_trajectory", "uncertain_parameters",  # the analysis views


# ---------------------------------------------------------------------------------------
    # long work: cancelling it, and saving what was computed
    "Cancel", "Cancelled", "Summaries", "simulate_summaries", "simulated_dataset", "write_archive",
    "parameter_label",  # the dashboard's labels
    "MAX_SEED", "OUTCOME_NAMES", "RunStepper", "parameter_attributes",  # one run; archives
    "read_manifest", "read_plan", "report_location", "step_run",
    "ParameterInfo", "parameter_catalogue", "parameter_problem", "with_formats",  # params panel
]

try:  # the version is declared once, in pyproject.toml
    __version__ = metadata.version("deterrence")
except metadata.PackageNotFoundError:  # a source tree on sys.path, never installed
    __version__ = "unknown"

ENGINES = ("vector", "mesa")
#: What :func:`discover` can look at: a simulated summary, or the exact regime.
DISCOVERY_OUTCOMES = (*QUANTITY_OUTPUTS, REGIME_OUTCOME)


@dataclass(frozen=True)
class FormatResult:
    """The solved crisis game of one scenario under one format: the numbers of a map's cell
    (:data:`MAP_VARIABLES`, the same names) and every equilibrium of the members' subgame."""

    format_id: str
    format_name: str
    members: list[str]
    regime: str                          # a name of REGIME_NAMES ("mixed": the set disagrees)
    escalation_probability: float        # P(Russia escalates)
    escalation_probability_min: float    # over the equilibrium set, each played alone
    escalation_probability_max: float
    response_probability: float          # P(at least one member honours | escalation)
    defended_probability: float          # P(the offensive fails | escalation)
    russia_success: float                # P(Russia's offensive succeeds | escalation)
    deterrence_margin: float             # U_R(refrain) - V_escalate, Russia's utility
    credibility: dict[str, float]        # each member's P(honour | escalation)
    mean_credibility: float              # their mean (NaN without members)
    equilibrium_count: int
    equilibrium_set_complete: bool       # every equilibrium is in ``equilibria``
    equilibria: list[Equilibrium]

    def to_dict(self) -> dict:
        out = {"id": self.format_id, "name": self.format_name}
        out.update((k, v) for k, v in asdict(self).items()
                   if k not in ("format_id", "format_name"))
        return out


def _format_result(fid: str, fmt: FormatSpec, grid: GridSolution,
                   equilibria: list[Equilibrium]) -> FormatResult:
    """A FormatResult from the one-cell grid solution (its map values) and the cell's set."""
    values = {name: getattr(grid, name)[0].item() for name in MAP_VARIABLES}
    values["regime"] = REGIME_NAMES[int(values["regime"])]
    values["equilibrium_set_complete"] = bool(values["equilibrium_set_complete"])
    members = list(grid.guarantor_ids)
    return FormatResult(
        format_id=fid, format_name=fmt.name, members=members,
        credibility=dict(zip(members, map(float, grid.credibility[0]), strict=True)),
        equilibria=equilibria, **values)


def solve_formats(scenario: Scenario | str | Path, format_ids: list[str] | None = None,
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
    results = []
    for fid in chosen:
        fmt: FormatSpec = catalogue[fid]
        equilibria, _ = solve_cell(build_game(scenario, fmt))  # complete: as in the grid's
        results.append(_format_result(fid, fmt, solve_points(scenario, fmt), equilibria))
    return results


def solve_map(scenario: Scenario | str | Path, format_id: str,
              x: tuple[str, np.ndarray], y: tuple[str, np.ndarray],
              formats_dir: str | Path = FORMATS_DIR):
    """Solve a 2-D parameter grid for one format; returns labelled arrays (x by y): every
    variable of :data:`MAP_VARIABLES`, and ``credibility`` (x by y by guarantor: the
    scenario's guarantors, missing for those that are not members of the format).

    ``x`` and ``y`` are (parameter path, values); see :func:`deterrence.parameter_paths`.
    The dimensions are named by :func:`dim_name` (``russia.war_cost`` ->
    ``russia__war_cost``).
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
    grid: GridSolution = solve_points(
        scenario, catalogue[format_id], {x_path: x_values[:, None], y_path: y_values[None, :]},
        threads=None)
    shape = (x_values.size, y_values.size)
    try:
        dims = (dim_name(x_path), dim_name(y_path))
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    data = {name: (dims, getattr(grid, name).reshape(shape), attrs)
            for name, attrs in MAP_VARIABLES.items()}
    ids = [g.id for g in scenario.guarantors]
    data[CREDIBILITY] = ((*dims, "guarantor"),
                         credibility_values(scenario, grid).reshape(*shape, len(ids)),
                         CREDIBILITY_VARIABLE)
    return xr.Dataset(data, coords={dims[0]: (dims[0], x_values, parameter_attributes(x_path)),
                                    dims[1]: (dims[1], y_values, parameter_attributes(y_path)),
                                    "guarantor": ("guarantor", ids)},
                      attrs={"scenario": scenario.name, "format": format_id,
                             "regime_names": list(REGIME_NAMES)})


def simulate_scenario(scenario: Scenario | str | Path, format_id: str | None = None,
                      engine: str = "vector", runs: int = 100, steps: int | None = None,
                      seed: int | None = None, keep_series: bool = False,
                      formats_dir: str | Path = FORMATS_DIR, progress=None):
    """Simulate ``runs`` repeated crises under one format (default: the scenario's), each
    of ``steps`` rounds (default: the scenario's ``dynamics.horizon_rounds``).

    Both engines give the same numbers for the same seed. ``progress``, if given, is
    called with 0 once the arguments are checked, then with the number of runs finished
    after each run (Mesa) or chunk (vector).
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
    steps = scenario.dynamics.horizon_rounds if steps is None else steps
    if not 1 <= steps <= MAX_STEPS:
        raise ConfigError(f"steps = {steps!r}: must be between 1 and {MAX_STEPS}")
    if seed is not None and not 0 <= seed <= MAX_SEED:
        raise ConfigError(f"seed = {seed!r}: must be an integer between 0 and {MAX_SEED} "
                          "(2^63 - 1)")
    setup = Setup.from_config(scenario, catalogue[format_id], seed, catalogue=catalogue)
    vector.check_result_memory(runs, steps, setup.base.n, keep_series)
    if progress:
        progress(0)
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


def basins(scenario: Scenario | str | Path, format_id: str | None = None, runs: int = 1000,
           steps: int | None = None, seed: int | None = None, starts=STARTS,
           formats_dir: str | Path = FORMATS_DIR, progress=None):
    """Where the repeated crisis goes from each start (:data:`STARTS`: Russia's priors and
    the members' attractions at the crisis game's equilibrium, or drawn at random per run):
    a ``pandas.DataFrame`` indexed by start with the erosion time, the end-state shares
    (the basins: deterred throughout, escalated and ongoing, defeated, settled) and the
    time-average escalation of :data:`STABILITY_VARIABLES`. Every start plays the same
    runs (common random numbers); ``steps`` defaults to the scenario's horizon."""
    import xarray as xr

    from .analysis.stability import stability
    from .simulate import engine as vector
    from .simulate.rules import Setup

    if not isinstance(scenario, Scenario):
        scenario = load_scenario(scenario)
    unknown = [s for s in starts if s not in STARTS]
    if unknown or not starts:
        raise ConfigError(f"starts = {list(starts)!r}: allowed: {', '.join(STARTS)}")
    first = simulate_scenario(scenario, format_id, runs=runs, steps=steps, seed=seed,
                              formats_dir=formats_dir)  # checks the arguments
    steps = first.steps
    catalogue = load_catalogue(formats_dir)
    setup = Setup.from_config(scenario, catalogue[format_id or scenario.format], seed,
                              catalogue=catalogue)
    summaries = []
    for k, start in enumerate(starts):
        sim = first if start == "equilibrium" else vector.simulate(
            replace(setup, start=start), runs, steps)
        summaries.append(sim.summary)
        if progress:
            progress(k + 1)

    def stacked(name):
        values = np.stack([s[name] for s in summaries]).astype(np.float64)
        if "_FillValue" in SUMMARY_DESCRIPTIONS[name]:
            values[values == SUMMARY_DESCRIPTIONS[name]["_FillValue"]] = np.nan
        return (("start", "replicate"), values)

    names = ("first_escalation", "end_state", "end_round", "escalation_frequency")
    data = xr.Dataset({name: stacked(name) for name in names}, coords={"start": list(starts)},
                      attrs={"steps": steps,
                             "round_months": scenario.dynamics.round_months})
    return stability(data).to_dataframe()


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
              cancel=None) -> tuple[Path | None, list[str]]:
    """Run a sweep plan into the new archive folder ``target``, with its analysis.

    ``executor`` is a name (:data:`EXECUTORS`; ``workers`` and ``scheduler`` configure it)
    or any ``concurrent.futures.Executor``. Returns (archive, []) or, if chunks failed,
    (None, failures) with the staging folder kept for ``resume=True``. Once ``cancel``
    (:data:`Cancel`) is set, between chunks, the sweep stops, its staging folder is removed
    (unless resuming) and :class:`Cancelled` is raised."""
    from .analysis.uncertainty import archive_outputs
    from .archive.write import run_sweep as run

    source_file = locate(source, "sweep") if source is not None else None  # a file or a name
    own = isinstance(executor, str)
    pool = make_executor(executor, workers, scheduler) if own else executor
    name = executor_name or (executor if own else type(executor).__name__)
    try:
        return run(plan, Path(target), pool, name, source_file, resume=resume,
                   retries=retries, progress=progress, derive=archive_outputs,
                   cancel=cancel)
    finally:
        if own:
            pool.shutdown()


def verify(archive: str | Path, executor=None, progress=None) -> list[str]:
    """Re-run an archive and compare every array bit for bit: what differs (empty if it
    reproduces). Where numpy here dispatches to more SIMD features than on the archive's
    machine (AVX-512 here, not there), the re-run runs in a new process that dispatches to
    the archive's (``NPY_DISABLE_CPU_FEATURES``; ``executor`` is then not used), since
    those kernels round exp, log and tanh differently in the last bit. Raises
    :class:`ArchiveError` if the archive is malformed. ``progress``, if given, is called
    with (chunks re-run, chunks) as the re-run goes on."""
    from .analysis.uncertainty import archive_outputs
    from .archive.verify import dispatch_environment, dispatch_note
    from .archive.verify import verify as check

    environment = dispatch_environment(archive)
    if environment is not None:
        return _verify_in_child(archive, environment, progress)
    problems = check(archive, executor, derive=archive_outputs, progress=progress)
    note = dispatch_note(archive) if problems else None
    return problems + ([note] if note else [])


#: The re-run of :func:`verify` in a new process: it prints a progress line per chunk on
#: stderr ("done total") and the differences as JSON on stdout.
_VERIFY_CHILD = """
import json, sys
from deterrence import api
progress = lambda done, total: print(done, total, file=sys.stderr, flush=True)
print(json.dumps(api.verify(sys.argv[1], progress=progress)))
"""


def _verify_in_child(archive: str | Path, environment: dict[str, str], progress) -> list[str]:
    """:func:`verify` in a new Python process with ``environment``, where numpy dispatches
    to the archive's SIMD features (:func:`deterrence.archive.verify.dispatch_environment`);
    it re-runs in that process alone."""
    import json
    import subprocess
    import sys

    child = subprocess.Popen([sys.executable, "-c", _VERIFY_CHILD, str(archive)],
                             env=environment, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    errors = []
    for line in child.stderr:
        numbers = line.split()
        if len(numbers) == 2 and all(n.isdigit() for n in numbers):
            if progress is not None:
                progress(int(numbers[0]), int(numbers[1]))
        else:
            errors.append(line.rstrip())
    out = child.stdout.read()
    if child.wait() != 0:
        last = next((e for e in reversed(errors) if e.strip()), "no message")
        raise ArchiveError(f"{archive}: the re-run in a new process failed: {last}")
    return json.loads(out)


def write_report(archive: str | Path, out: str | Path | None = None) -> Path:
    """Write the self-contained HTML report of an archive (outside it); its path."""
    from .analysis.report import write_report as write

    return write(archive, out)


def load_archive(archive: str | Path):
    """An archive's plan, datasets and manifest (:class:`deterrence.analysis.report.Archive`)."""
    from .analysis.report import load_archive as load

    return load(archive)


def discover(archive, format_ids: list[str] | None = None,
             outcome: str = "escalation_frequency", threshold: float = 0.5,
             min_density: float = 0.8):
    """Scenario discovery (PRIM) on an archive folder, or on a sweep's dataset with its
    simulated and exact variables (:func:`sweep_dataset`): (points used, [(format id, box
    or None)])."""
    from .analysis.discovery import find_failure_box

    if isinstance(archive, str | Path):
        from .analysis.report import discovery_data

        loaded = load_archive(archive)
        sim, exact, source = discovery_data(loaded)
        formats = list(loaded.plan.formats)
    else:
        sim = exact = archive
        formats = [str(f) for f in archive["format"].values]
        points = int(np.prod([n for d, n in archive.sizes.items()
                              if d not in ("format", "replicate", "guarantor")]))
        source = f"the dataset's {points} points"
    unknown = [f for f in format_ids or [] if f not in formats]
    if unknown:
        raise ConfigError(f"format {unknown[0]!r}: not in the sweep; allowed: "
                          f"{', '.join(formats)}")
    boxes = []
    for fid in format_ids or formats:
        try:
            boxes.append((fid, find_failure_box(sim, exact, fid, outcome, threshold,
                                                min_density=min_density)))
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
    return source, boxes


def stability_dataset(source):
    """Erosion time, end-state shares and time-average escalation per format and point
    (:func:`deterrence.analysis.stability.stability`; the variables of
    :data:`STABILITY_VARIABLES`, CF-labelled) of an archive folder or of a sweep's dataset
    (:func:`sweep_dataset`). Raises ConfigError for a dataset without the summaries of how
    runs end."""
    from .analysis.stability import stability

    if isinstance(source, str | Path):
        loaded = load_archive(source)
        sim = loaded.sim
        steps = loaded.plan.spec.steps
        round_months = loaded.plan.scenario.dynamics.round_months
    else:
        sim, steps, round_months = source, None, None
    try:
        return stability(sim, steps, round_months)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


def stability_table(source):
    """:func:`stability_dataset` as a ``pandas.DataFrame``, one row per format and point
    (indexed by ``format`` and the point dims; a sample's parameters are columns)."""
    return stability_dataset(source).to_dataframe()


def exact_dataset(plan: Plan):
    """The exact solver's maps of a sweep plan, per format (no simulation)."""
    from .sweep.datasets import exact_dataset as exact

    return exact(plan)


def plan_run(plan: Plan, format_id: str, cell: int, replicate: int):
    """One run of a sweep plan in the Mesa model (the reference engine): the run that the
    sweep computes as run ``cell * replicates + replicate``. Returns (summary, series,
    guarantor ids)."""
    from .simulate import mesa_model
    from .simulate.rules import Setup

    fmt = plan.formats[format_id]
    overrides = plan.overrides(format_id, plan.points[[cell]])
    setup = Setup.from_config(plan.scenario, fmt, plan.seed, overrides)
    summary, series = mesa_model.run(setup, cell * plan.spec.replicates + replicate,
                                     plan.spec.steps)
    return summary, series, list(setup.base.guarantor_ids)


# ---------------------------------------------------------------------------------------
# Notebook use: changed parameters, tables and labelled arrays in memory


#: Scenario tables whose numeric keys :func:`with_parameters` changes besides the game's
#: parameters (:func:`parameter_paths`): they shape simulations and the analysis, not the
#: payoffs, so sweeps do not vary them.
SCENARIO_TABLES = ("analysis", "dynamics")
#: The coded variables of the exact solutions.
CATEGORIES = ("regime", "equilibrium_set_complete")
#: Close matches offered for a mistyped parameter path.
CLOSE_MATCHES = 3


def _as_scenario(scenario: Scenario | str | Path) -> Scenario:
    return scenario if isinstance(scenario, Scenario) else load_scenario(scenario)


def _as_format(fmt: str | FormatSpec, formats_dir: str | Path) -> FormatSpec:
    if isinstance(fmt, FormatSpec):
        return fmt
    catalogue = load_catalogue(formats_dir)
    if fmt not in catalogue:
        raise ConfigError(f"unknown format id {fmt!r}; allowed: {sorted(catalogue)}")
    return catalogue[fmt]


def _unknown_path(path: str, allowed: list[str], where: str) -> ConfigError:
    import difflib

    close = difflib.get_close_matches(path, allowed, n=CLOSE_MATCHES)
    hint = (f"did you mean {' or '.join(map(repr, close))}?" if close
            else f"allowed: {', '.join(allowed)}")
    return ConfigError(f"parameter path {path!r} is not a parameter of {where}; {hint}")


def _set_path(data, parts: list[str], value) -> None:
    """Set ``value`` at ``parts`` of a model's dumped data; in a list of tables (the
    guarantors) a part is an entry's ``id``, or ``*`` for every entry."""
    head, rest = parts[0], parts[1:]
    if isinstance(data, list):
        for entry in data:
            if head in ("*", entry["id"]):
                _set_path(entry, rest, value)
    elif rest:
        _set_path(data[head], rest, value)
    else:
        data[head] = value


def _validated(model, original, changes: list[tuple[list[str], object]], origin: str,
               key_of):
    """``original`` with ``changes`` applied, validated as a configuration file is; the
    keys in an error are given back as the caller's parameter paths (``key_of``)."""
    import re

    from .game.config import validate

    data = original.model_dump()
    for parts, value in changes:
        _set_path(data, parts, value)
    try:
        return validate(model, data, origin)
    except ConfigError as exc:
        problems = str(exc).removeprefix(f"{origin}: ").split("; ")
        named = [re.sub(r"key '([^']*)'", lambda m: f"key '{key_of(m[1])}'", problem)
                 for problem in problems]
        # a change to every guarantor is one problem, not one per guarantor
        raise ConfigError(f"{origin}: " + "; ".join(dict.fromkeys(named))) from None


def with_parameters(scenario: Scenario | str | Path, changes: dict[str, float],
                    fmt: str | FormatSpec | None = None,
                    formats_dir: str | Path = FORMATS_DIR):
    """A new scenario with the values at parameter paths changed, validated exactly as a
    scenario file is (an out-of-range value raises :class:`ConfigError` naming the path,
    the value and what is allowed).

    The paths are those a sweep varies (:func:`parameter_paths`: ``russia.war_cost``,
    ``guarantors.UK.stake_in_ukraine``, ``guarantors.*.audience_cost`` for every
    guarantor, ...) and the numeric keys of the ``analysis`` and ``dynamics`` tables
    (``dynamics.belief_memory``). ``format.*`` paths change a format: pass ``fmt`` (an id
    or a :class:`FormatSpec`) and get ``(scenario, format)`` back. A guarantor's own path
    takes precedence over ``guarantors.*``, as in sweeps.
    """
    scenario = _as_scenario(scenario)
    spec = _as_format(fmt if fmt is not None else scenario.format, formats_dir)
    allowed = parameter_paths(scenario, spec) + _table_paths(scenario)
    where = (f"scenario {scenario.name!r}" if fmt is None
             else f"scenario {scenario.name!r} and format {spec.id!r}")
    for path in changes:
        if path not in allowed:
            raise _unknown_path(path, allowed, where)
        if fmt is None and path.startswith("format."):
            raise ConfigError(f"parameter path {path!r} changes a format: pass fmt= (a "
                              f"format id or FormatSpec) to change it")

    def value(v):
        return v.item() if isinstance(v, np.generic) else v

    # every guarantor first, then a guarantor's own value on top
    order = sorted(changes, key=lambda p: not p.startswith("guarantors.*."))
    ids = [g.id for g in scenario.guarantors]

    def scenario_key(key: str) -> str:
        """The path the caller gave for a key of the scenario data (guarantors by index)."""
        parts = key.split(".")
        if parts[0] != "guarantors" or len(parts) < 3 or not parts[1].isdigit():
            return key
        field = ".".join(parts[2:])
        own, every = f"guarantors.{ids[int(parts[1])]}.{field}", f"guarantors.*.{field}"
        return every if every in changes and own not in changes else own

    changed = _validated(Scenario, scenario,
                         [(p.split("."), value(changes[p])) for p in order
                          if not p.startswith("format.")],
                         f"scenario {scenario.name!r}", scenario_key)
    if fmt is None:
        return changed
    return changed, _validated(FormatSpec, spec,
                               [(p.split(".")[1:], value(changes[p])) for p in order
                                if p.startswith("format.")],
                               f"format {spec.id!r}",
                               lambda key: key if key.startswith("(") else f"format.{key}")


#: The per-format columns of :func:`solve_table` besides ``name`` and ``members``: the
#: numbers of a map's cell.
FORMAT_COLUMNS = tuple(MAP_VARIABLES)
#: The per-equilibrium columns of :func:`solve_table` (and one ``honour_<id>`` column per
#: guarantor of the scenario): each the equilibrium's own numbers, as if it were played.
EQUILIBRIUM_COLUMNS = ("escalation_if_played", "russia_success_if_played",
                       "response_if_played", "russia_escalation_value", "played_alone",
                       "played_coordinated", "certified")


def solve_table(scenario: Scenario | str | Path, formats: list[str] | None = None,
                formats_dir: str | Path = FORMATS_DIR):
    """:func:`solve_formats` as a ``pandas.DataFrame``, one row per equilibrium of the
    members' subgame, indexed by (``format``, ``equilibrium``: 0, 1, ... in the solver's
    order).

    Per format (the same on each of its rows): ``name``; ``members`` (how many guarantors
    the format binds); and :data:`FORMAT_COLUMNS`, the numbers of a map's cell
    (:data:`MAP_VARIABLES`): ``regime`` (a Categorical with the categories of
    :data:`REGIME_NAMES`, in that order), ``escalation_probability`` (P(Russia escalates) at
    the selected equilibria) and its ``_min`` and ``_max`` over the set,
    ``response_probability`` and ``defended_probability`` (given an escalation),
    ``russia_success``, ``deterrence_margin``, ``mean_credibility``, ``equilibrium_count``
    and ``equilibrium_set_complete``. Per equilibrium: ``honour_<id>`` for every guarantor
    of the scenario (its probability of honouring; NaN if not a member),
    ``escalation_if_played``, ``russia_success_if_played`` and ``response_if_played`` (P(Russia
    escalates), P(its offensive succeeds | escalation) and P(at least one member honours |
    escalation) if the members play this equilibrium whether or not they coordinate),
    ``russia_escalation_value`` (Russia's expected payoff of escalating against it),
    ``played_alone`` and ``played_coordinated`` (selected when the members decide alone, or
    coordinate) and ``certified`` (proven the only equilibrium in its box).
    ``table.groupby(level="format").first()[list(FORMAT_COLUMNS)]`` is one row per format.
    """
    import pandas as pd

    scenario = _as_scenario(scenario)
    ids = [g.id for g in scenario.guarantors]
    rows = []
    for result in solve_formats(scenario, formats, formats_dir):
        summary = {"name": result.format_name, "members": len(result.members),
                   **{name: getattr(result, name) for name in FORMAT_COLUMNS}}
        for k, e in enumerate(result.equilibria):
            rows.append({
                "format": result.format_id, "equilibrium": k, **summary,
                **{f"honour_{g}": e.honour_probability.get(g, np.nan) for g in ids},
                "escalation_if_played": e.escalation_probability,
                "russia_success_if_played": e.russia_success_probability,
                "response_if_played": e.response_probability,
                "russia_escalation_value": e.russia_escalation_value,
                "played_alone": e.played_alone, "played_coordinated": e.played_coordinated,
                "certified": e.certified})
    table = pd.DataFrame(rows).set_index(["format", "equilibrium"])
    table["regime"] = pd.Categorical(table["regime"], categories=REGIME_NAMES, ordered=True)
    return table


def simulate_runs(scenario: Scenario | str | Path, format_id: str | None = None, *,
                  runs: int, steps: int, seed: int | None = None, engine: str = "vector",
                  keep_series: bool = False, formats_dir: str | Path = FORMATS_DIR,
                  progress=None):
    """:func:`simulate_scenario` as labelled arrays (an ``xarray.Dataset`` over ``run``,
    with ``round`` and ``guarantor`` when ``keep_series``); its attrs record the scenario,
    format, engine, runs, steps and seed used."""
    scenario = _as_scenario(scenario)
    sim = simulate_scenario(scenario, format_id, engine=engine, runs=runs, steps=steps,
                            seed=seed, keep_series=keep_series, formats_dir=formats_dir,
                            progress=progress)
    return simulation_dataset(sim, {
        "scenario": scenario.name, "format": format_id or scenario.format, "engine": engine,
        "runs": runs, "steps": steps, "seed": scenario.seed if seed is None else seed})


def sweep_plan(scenario: Scenario | str | Path, axes: dict, *, replicates: int, steps: int,
               formats: list[str] | None = None, seed: int | None = None,
               method: str | None = None, samples: int | None = None,
               sensitivity: dict | None = None,
               name: str = "in-memory") -> Plan:
    """The plan of a sweep given as arguments instead of a file (:func:`load_plan`).

    ``axes`` maps parameter paths to a list of values (a grid axis) or to a table of the
    sweep file's axis keys (``{"low": 0, "high": 1, "count": 5}``; ``lhs`` and ``sobol``
    take ``low`` and ``high``). ``formats`` defaults to the whole catalogue; the other
    arguments are the sweep file's keys (docs/sweeps.md), validated as a file is, and
    omitted ones take the file's defaults.
    """
    from .game.config import validate

    scenario = _as_scenario(scenario)
    table = [{"path": path, **values} if isinstance(values, dict)
             else {"path": path, "values": np.asarray(values).ravel().tolist()}
             for path, values in axes.items()]
    data = {"name": name, "scenario": scenario.name, "formats": formats or "all",
            "axes": table, "replicates": replicates, "steps": steps, "seed": seed,
            "method": method, "samples": samples, "sensitivity": sensitivity}
    spec = validate(SweepSpec, {k: v for k, v in data.items() if v is not None},
                    f"sweep {name!r}")
    return resolve(spec, scenario, f"sweep {name!r}")


@contextmanager
def _pool(executor: str | Executor | None, workers: int | None, scheduler: str | None):
    """The caller's executor, or one by name (:data:`EXECUTORS`; in-process by default)
    opened and shut here."""
    if isinstance(executor, Executor):
        yield executor
        return
    pool = make_executor(executor or "inprocess", workers, scheduler)
    try:
        yield pool
    finally:
        pool.shutdown()


def sweep_dataset(scenario: Scenario | str | Path | Plan, axes: dict | None = None, *,
                  replicates: int | None = None, steps: int | None = None,
                  formats: list[str] | None = None, seed: int | None = None,
                  method: str | None = None, samples: int | None = None,
                  executor: str | Executor | None = None,
                  workers: int | None = None, scheduler: str | None = None, progress=None):
    """Run a sweep in memory (no archive) into one ``xarray.Dataset``: the exact solutions
    (dims format and the points) and the simulated summaries (also replicate), labelled by
    :func:`label_categories`.

    Give a :class:`Plan` (:func:`load_plan`, :func:`sweep_plan`), or a scenario, ``axes``
    and the sweep's keys as in :func:`sweep_plan`. ``executor`` is a name
    (:data:`EXECUTORS`; ``workers`` and ``scheduler`` configure it) or an executor;
    ``progress(done, total)`` is called as chunks finish. The numbers are an archive's:
    :func:`simulate_plan` and :func:`exact_dataset` of the same plan. A plan's sensitivity
    design is not run (:func:`sensitivity` runs it).
    """
    from dataclasses import replace

    import xarray as xr

    keys = {"replicates": replicates, "steps": steps, "formats": formats, "seed": seed,
            "method": method, "samples": samples}
    if isinstance(scenario, Plan):
        given = sorted(k for k, v in keys.items() if v is not None)
        if axes is not None or given:
            raise ConfigError(f"give a plan, or a scenario with axes and the sweep's keys, "
                              f"not both; got a plan and {['axes'] * (axes is not None) + given}")
        plan = scenario
    elif axes is None:
        raise ConfigError("axes is required with a scenario: {parameter path: values}")
    else:
        plan = sweep_plan(scenario, axes, **keys)
    # the design's runs come after the sweep's own, which are the same without them
    plan = replace(plan, sensitivity_points=None)
    with _pool(executor, workers, scheduler) as pool:
        simulated = simulate_plan(plan, pool, progress)
    merged = xr.merge([exact_dataset(plan), simulated], combine_attrs="drop_conflicts")
    merged.attrs.update(scenario=plan.scenario.name, replicates=plan.spec.replicates)
    return label_categories(merged)


def label_categories(dataset):
    """``dataset`` with its coded variables (``regime``, ``equilibrium_set_complete``)
    labelled: CF ``flag_values`` and ``flag_meanings`` on the codes, and the names
    themselves as strings in ``<variable>_name`` (e.g. ``regime_name``: deterred, ...;
    ``equilibrium_set_complete_name``: no, yes), for selecting and counting.

    Works on :func:`sweep_dataset`, :func:`solve_map`, :func:`exact_dataset` and an
    archive's exact dataset. To draw a map with a legend, see :func:`plot_categories`.
    """
    out = dataset.copy()
    for variable in CATEGORIES:
        if variable in out:
            out[f"{variable}_name"] = _decoded(out[variable])
    return out


def _decoded(array):
    """:func:`decode_flags` with a user's error."""
    try:
        return decode_flags(array)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


def plot_categories(array, ax=None):
    """Draw a coded variable (``regime``, ``equilibrium_set_complete``) of one format with
    a legend of its names: a map over two point dims, or points along one. Returns the axes.

    ``array`` needs its codes' names (:func:`label_categories`); select one format first,
    e.g. ``plot_categories(ds.regime.sel(format="bilateral"))``. xarray's own ``.plot()``
    draws codes with a colour bar and cannot draw strings."""
    import matplotlib.pyplot as plt
    from matplotlib.colors import BoundaryNorm, ListedColormap
    from matplotlib.patches import Patch

    names = _decoded(array).attrs["categories"]
    try:
        colours = colours_of(names)
    except ValueError as exc:
        raise ConfigError(f"variable {array.name!r}: {exc}") from None
    if array.ndim not in (1, 2):
        raise ConfigError(f"variable {array.name!r} has dims {array.dims}: select one "
                          "format (and fix the other dims) to draw one or two, e.g. "
                          ".sel(format='bilateral')")
    cmap = ListedColormap(colours)
    norm = BoundaryNorm(np.arange(len(names) + 1) - 0.5, len(names))
    ax = ax if ax is not None else plt.figure(layout="constrained").add_subplot()
    if array.ndim == 2:
        x, y = array.dims
        array.plot(ax=ax, x=x, y=y, cmap=cmap, norm=norm, add_colorbar=False)
    else:
        (dim,) = array.dims
        along = [str(c) for c in array.coords if array[c].dims == (dim,) and c != dim
                 and np.issubdtype(array[c].dtype, np.number)]
        if len(along) >= 2:  # a sample of points: the plane of the first two parameters
            ax.scatter(array[along[0]], array[along[1]], c=array.values, cmap=cmap, norm=norm)
            ax.set_xlabel(along[0])
            ax.set_ylabel(along[1])
        else:
            x = array[along[0]] if along else array[dim]
            ax.scatter(x, array.values, c=array.values, cmap=cmap, norm=norm, marker="s")
            ax.set_yticks(range(len(names)), names)
            ax.set_xlabel(str(x.name))
    ax.legend(handles=[Patch(color=c, label=n) for c, n in zip(colours, names, strict=True)],
              title=str(array.name), loc="upper left", bbox_to_anchor=(1.01, 1),
              frameon=False)
    return ax


def sensitivity(source: str | Path | Plan, *, executor: str | Executor | None = None,
                workers: int | None = None, scheduler: str | None = None, progress=None):
    """The sensitivity indices (dims format, output, parameter) of a sweep's sensitivity
    design: read from an archive folder, or computed in memory from a :class:`Plan` with a
    ``[sensitivity]`` design (:func:`load_plan`, or :func:`sweep_plan` with
    ``sensitivity={...}``), from the same runs an archive of that plan holds.

    A grid or sample that is not a Saltelli or Morris design (such as
    :func:`sweep_dataset`'s) has no indices."""
    from dataclasses import replace

    from .analysis.sensitivity import indices_dataset

    if isinstance(source, str | Path):
        from .archive.read import load_archive as read

        loaded = read(source)
        if loaded.sensitivity is None:
            raise ConfigError(f"{source}: the sweep has no sensitivity design; run it with "
                              "`deterrence sensitivity` or a [sensitivity] table")
        return loaded.sensitivity
    if not isinstance(source, Plan):
        raise ConfigError(f"sensitivity needs an archive folder or a Plan with a sensitivity "
                          f"design, not {type(source).__name__}: a sweep's own points are "
                          f"not a Saltelli or Morris design")
    plan = source
    if plan.sensitivity_points is None:
        raise ConfigError(f"sweep {plan.spec.name!r} has no sensitivity design; give "
                          "sweep_plan(..., sensitivity={'method': 'sobol', 'samples': 64})")
    # one list of every simulated point, in the archive's order, so the design's runs have
    # the archive's run indices (and so its random numbers)
    every = replace(plan, points=plan.all_points, grid_shape=None, sensitivity_points=None)
    with _pool(executor, workers, scheduler) as pool:
        simulated = simulate_plan(every, pool, progress)
    design = slice(plan.cells, None)
    axes = plan.spec.axes
    return indices_dataset(plan.spec.sensitivity, [a.path for a in axes],
                           [a.low for a in axes], [a.high for a in axes],
                           plan.sensitivity_points, simulated.isel(sample=design),
                           exact_dataset(every).isel(sample=design), plan.seed,
                           plan.spec.name)


# ---------------------------------------------------------------------------------------
# Uncertainty: the answer under the joint prior of the assumptions (docs/analysis.md)


def _study_formats(scenario: Scenario, formats, formats_dir) -> dict[str, FormatSpec]:
    """``formats`` (None: the scenario's own format; ``"all"``: the catalogue; or ids and
    FormatSpec objects) by id."""
    if formats is None:
        formats = [scenario.format]
    elif formats == "all":
        formats = list(load_catalogue(formats_dir))
    chosen = [_as_format(f, formats_dir) for f in formats]
    return {f.id: f for f in chosen}


def prior_study(scenario: Scenario | str | Path, formats=None, *, samples: int | None = None,
                seed: int | None = None, method: str = "sobol", calibrated: bool = True,
                formats_dir: str | Path = FORMATS_DIR):
    """Solve the crisis game under each format at ``samples`` points of the joint prior of
    the scenario's and the formats' distributions (:mod:`deterrence.analysis.uncertainty`):
    a :class:`~deterrence.analysis.uncertainty.PriorStudy`. ``formats``: None (the
    scenario's own format), ``"all"`` (the catalogue) or a list of ids and FormatSpec
    objects; ``seed`` defaults to the scenario's; ``method`` ``"sobol"`` (samples a power
    of 2) or ``"lhs"``. ``calibrated``: give the parameters the scenario leaves at their
    defaults the priors fitted to base rates (docs/calibration.md;
    :func:`~deterrence.game.config.with_calibrated_priors`)."""
    from .analysis.uncertainty import DEFAULT_PRIOR_SAMPLES, solve_prior
    from .sweep.design import PRIOR_METHODS

    scenario = _studied(scenario, calibrated)
    samples = DEFAULT_PRIOR_SAMPLES if samples is None else samples
    if isinstance(samples, bool) or not isinstance(samples, int) or not 2 <= samples <= 1 << 20:
        raise ConfigError(f"samples = {samples!r}: must be a whole number from 2 to {1 << 20}")
    if method not in PRIOR_METHODS:
        raise ConfigError(f"method = {method!r}: allowed: {', '.join(PRIOR_METHODS)}")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)
                             or not 0 <= seed <= MAX_SEED):
        raise ConfigError(f"seed = {seed!r}: must be a whole number from 0 to {MAX_SEED}")
    try:
        return solve_prior(scenario, _study_formats(scenario, formats, formats_dir), samples,
                           seed, method)
    except ValueError as exc:
        if isinstance(exc, ConfigError):
            raise
        raise ConfigError(str(exc)) from None


def _studied(scenario: Scenario | str | Path, calibrated: bool) -> Scenario:
    from .game.config import with_calibrated_priors

    loaded = _as_scenario(scenario)
    return with_calibrated_priors(loaded) if calibrated else loaded


def uncertainty_table(scenario: Scenario | str | Path, formats=None, samples: int | None = None,
                      seed: int | None = None, method: str = "sobol", calibrated: bool = True,
                      formats_dir: str | Path = FORMATS_DIR):
    """Per format, under the joint prior (:func:`prior_study`): ``p_deterred`` (E[1 -
    P(escalate)], the predictive probability that Russia refrains in a crisis) with its
    Monte Carlo interval ``_low``/``_high`` and the prior's quantiles ``_q05``/``_q95``;
    ``holds`` (P(the regime is deterred)) with a Wilson interval; ``p_defended_given_
    escalation`` with its interval; ``samples``. A ``pandas.DataFrame`` indexed by
    ``format``."""
    from .analysis.uncertainty import uncertainty_table as table

    return table(prior_study(scenario, formats, samples=samples, seed=seed, method=method,
                             calibrated=calibrated, formats_dir=formats_dir))


#: Defaults of an uncertainty study's simulations and value-of-information design
#: (assumptions: a trade-off of cost and precision). Replicates per prior point: the
#: clustered interval of the unattacked share is dominated by the points' spread.
DEFAULT_PRIOR_REPLICATES = 8
#: Sobol base sample of the value-of-information design (N (k + 2) points for k uncertain
#: parameters).
DEFAULT_VOI_SAMPLES = 64


def uncertainty_plan(scenario: Scenario | str | Path, formats: list[str] | None = None, *,
                     samples: int | None = None, voi_samples: int | None = None,
                     replicates: int | None = None, steps: int | None = None,
                     seed: int | None = None, prior_map: dict | None = None,
                     calibrated: bool = True, formats_dir: str | Path = FORMATS_DIR) -> Plan:
    """The plan of an uncertainty study of a scenario with distributions: a sweep with
    method ``prior`` (``samples`` points of the joint prior, a power of 2; default
    :data:`~deterrence.analysis.uncertainty.DEFAULT_PRIOR_SAMPLES`), each simulated
    ``replicates`` times for ``steps`` rounds (default the scenario's horizon), under
    ``formats`` (default all), with a Sobol design of base sample ``voi_samples`` (0: none)
    for the value of information. ``prior_map`` (the sweep file's ``[prior_map]`` table:
    ``{"x": {"path": ..., "low": ..., "high": ..., "count": ...}, "y": {...}, "samples":
    64}``) adds maps of P(deterrence holds) over two parameters, the rest integrated over
    the prior. ``calibrated`` as for :func:`prior_study`. Run it with :func:`run_sweep`; its
    report has the uncertainty section."""
    import re

    from .analysis.uncertainty import DEFAULT_PRIOR_SAMPLES
    from .game.config import validate

    loaded = _studied(scenario, calibrated)
    origin = f"uncertainty study of {loaded.name!r}"
    voi = DEFAULT_VOI_SAMPLES if voi_samples is None else voi_samples
    data = {"name": re.sub(r"[^A-Za-z0-9_-]+", "_", f"uncertainty-{loaded.name}"),
            "description": f"The formats under the joint prior of {loaded.name}'s "
                           "distributions",
            "scenario": loaded.name if isinstance(scenario, Scenario) else str(scenario),
            "formats": formats or "all", "method": "prior",
            "samples": DEFAULT_PRIOR_SAMPLES if samples is None else samples,
            "replicates": DEFAULT_PRIOR_REPLICATES if replicates is None else replicates,
            "steps": loaded.dynamics.horizon_rounds if steps is None else steps}
    if seed is not None:
        data["seed"] = seed
    if voi:
        data["sensitivity"] = {"method": "sobol", "samples": voi}
    if prior_map is not None:
        data["prior_map"] = prior_map
    spec = validate(SweepSpec, data, origin)
    return resolve(spec, loaded, origin, formats_dir)


def uncertainty_summary(archive: str | Path):
    """The uncertainty table of a prior sweep's archive: per format ``p_deterred``,
    ``holds``, ``p_defended_given_escalation`` (as :func:`uncertainty_table`) and
    ``unattacked`` (share of runs without any escalation within the steps), each with its
    interval."""
    from .analysis.uncertainty import archive_table

    loaded = load_archive(archive)
    if loaded.plan.spec.method != "prior":
        raise ConfigError(f"{archive}: not an uncertainty study (its sweep's method is "
                          f"{loaded.plan.spec.method!r}, not 'prior')")
    return archive_table(loaded.plan, loaded.exact, loaded.sim)


def prior_map(scenario: Scenario | str | Path, formats=None, *, x: tuple[str, list],
              y: tuple[str, list], samples: int = 64, seed: int | None = None,
              calibrated: bool = True, formats_dir: str | Path = FORMATS_DIR):
    """P(deterrence holds) and P(deterred) per format over the grid of two parameters
    ``x`` = (path, values) and ``y``, every other uncertain parameter integrated over its
    prior (``samples`` points, a power of 2, the same at every cell): an
    ``xarray.Dataset`` (format, x, y), solved exactly in memory (no archive).
    ``calibrated`` as for :func:`prior_study`."""
    import xarray as xr

    from .analysis.uncertainty import PRIOR_MAP_ATTRIBUTES, map_over_prior
    from .game.config import validate
    from .sweep.spec import PriorMapSpec

    loaded = _studied(scenario, calibrated)
    chosen = _study_formats(loaded, formats, formats_dir)
    spec = validate(PriorMapSpec, {"x": {"path": x[0], "values": list(map(float, x[1]))},
                                   "y": {"path": y[0], "values": list(map(float, y[1]))},
                                   "samples": samples}, "prior map")
    xs, ys = spec.values(spec.x), spec.values(spec.y)
    for fid, fmt in chosen.items():
        allowed = parameter_paths(loaded, fmt)
        for path in (x[0], y[0]):
            if path not in allowed:
                raise _unknown_path(path, allowed, f"format {fid!r}")
        build_game(loaded, fmt, {x[0]: xs[:, None], y[0]: ys[None, :]})
    maps = map_over_prior(loaded, chosen, x[0], xs, y[0], ys, samples,
                          loaded.seed if seed is None else seed)
    dims = ("format", dim_name(x[0]), dim_name(y[0]))
    return xr.Dataset({name: (dims, np.stack([maps[f][name] for f in chosen]), meta)
                       for name, meta in PRIOR_MAP_ATTRIBUTES.items()},
                      coords={"format": list(chosen), dims[1]: xs, dims[2]: ys})


# ---------------------------------------------------------------------------------------
# The analysis views: a PRIM box's trade-off curve, and whether a study has a prior


def peeling_trajectory(box):
    """The peeling trajectory of a PRIM box (one of :func:`discover`'s): a
    ``pandas.DataFrame`` with one row per box along the peel, from the whole range (row 0)
    on, with its ``coverage``, ``density``, ``mass``, ``restricted`` (parameters),
    ``selected`` (the row of ``box`` itself: the box the selection rule chose, not
    necessarily the last), ``conditions`` (its restrictions as text) and each parameter's
    ``<path>_low`` / ``<path>_high`` (:func:`deterrence.analysis.discovery.trajectory_table`).
    """
    from .analysis.discovery import Box, trajectory_table

    if not isinstance(box, Box):
        raise ConfigError(f"box: a box found by discover(), not {type(box).__name__}")
    return trajectory_table(box)


def uncertain_parameters(scenario: Scenario | str | Path, formats=None, *,
                         calibrated: bool = True,
                         formats_dir: str | Path = FORMATS_DIR) -> list[str]:
    """The parameter paths with a distribution in ``scenario`` or ``formats`` (as for
    :func:`prior_study`; ``calibrated`` adds the priors fitted to base rates), sorted: the
    columns of a study's prior sample. Empty: every prior point is the same point, and a
    study's intervals have no width (docs/analysis.md, "Uncertainty")."""
    from .sweep.design import prior_paths

    loaded = _studied(scenario, calibrated)
    return prior_paths(loaded, _study_formats(loaded, formats, formats_dir).values())


# ---------------------------------------------------------------------------------------
# Long work: cancelling it, and saving what was computed without running it again

def write_archive(plan: Plan, summaries: Summaries, target: str | Path, cancel=None,
                  executor_name: str = "inprocess") -> Path:
    """Write the new archive folder ``target`` of ``plan`` from ``summaries``, what
    :func:`simulate_summaries` computed for it, without running any chunk: the same data
    and analysis as :func:`run_sweep` writes for the plan (``verify`` re-runs it), staged
    and renamed into place. ``executor_name`` is the manifest's record of what ran the
    chunks. Once ``cancel`` (:data:`Cancel`) is set, between files, nothing is left and
    :class:`Cancelled` is raised; summaries that do not fit the plan are a ConfigError."""
    from .analysis.uncertainty import archive_outputs
    from .archive.write import write_archive as write

    return write(plan, summaries, Path(target), executor_name, derive=archive_outputs,
                 cancel=cancel)


# ---------------------------------------------------------------------------------------
# The dashboard's labels: a parameter's name and unit from the schema


#: Last words of a parameter's name that its unit states (``military_spending_usd_bn``:
#: "Military spending", in USD bn per year).
LABEL_UNIT_WORDS = frozenset({"usd", "bn", "tn", "days", "years", "months"})
#: Words of parameter names written as acronyms in labels.
LABEL_ACRONYMS = {"gdp": "GDP", "ewa": "EWA"}


def parameter_label(path: str) -> tuple[str, str]:
    """A parameter path's short label and its unit as the schema states them
    (``russia.war_cost`` -> ("War cost", "Russia's utility (achieving ...)")); a guarantor's
    own path names it (``guarantors.UK.stake_in_ukraine`` -> ("Stake in ukraine, UK", ...)).
    Raises ConfigError for a path that names no parameter."""
    from .game.config import parameter_field

    parts = path.split(".")
    try:
        field = parameter_field(path)
    except (KeyError, IndexError):
        raise ConfigError(f"parameter path {path!r}: names no parameter of the schema") from None
    words = parts[-1].split("_")
    while len(words) > 1 and words[-1] in LABEL_UNIT_WORDS:  # the unit says them
        words.pop()
    label = " ".join(LABEL_ACRONYMS.get(w, w) for w in words)
    label = label[:1].upper() + label[1:]
    if parts[0] == "guarantors":
        label = f"{label}, {'every guarantor' if parts[1] == '*' else parts[1]}"
    elif parts[0] == "format" and parts[1] == "response_overrides":
        label = f"{label}, {parts[2]}'s response"
    return label, str((field.json_schema_extra or {}).get("unit", ""))


# One run, round by round, and the archives on disk (the dashboard's "One run" and
# "Archives" views)

from .simulate.rules import OUTCOME_NAMES  # noqa: E402  (a round's outcome codes)


def read_manifest(archive: str | Path) -> dict:
    """The checked manifest of an archive folder (its provenance and the checksums of its
    files), without reading its data. Raises :class:`ArchiveError` for a folder that is
    not an archive or whose manifest is malformed or edited."""
    from .archive.manifest import read_manifest as read

    return read(Path(archive))


def read_plan(archive: str | Path) -> Plan:
    """The resolved plan of an archive folder (``config/plan.json``: scenario, formats,
    axes, seed), checked, without reading its data. Raises :class:`ArchiveError`."""
    from .archive.manifest import regular_files
    from .archive.read import read_plan as read

    archive = Path(archive)
    return read(archive, regular_files(archive))


def report_location(archive: str | Path) -> Path:
    """Where :func:`write_report` puts an archive's report by default
    (``<archive>.report/index.html`` beside it), whether or not it exists."""
    from .analysis.report import default_location

    return default_location(Path(archive))


class RunStepper:
    """One run of a sweep plan in the Mesa model, played one round at a time: the run the
    sweep computes as run ``cell * replicates + replicate`` of format ``format_id``, with
    the same random numbers, so :meth:`series` after ``n`` steps is the first ``n`` rounds
    of :func:`plan_run`'s series, bit for bit (with ``seed`` the plan's own).

    ``seed`` is the root seed of the sweep (the plan's ``seed``, by default the scenario's):
    every run's random numbers are a pure function of (seed, run index, round), so another
    seed gives another draw of the same run, and the same seed the same run again. Make
    one with :func:`step_run`."""

    def __init__(self, plan: Plan, format_id: str, cell: int, replicate: int,
                 seed: int) -> None:
        from .simulate import mesa_model
        from .simulate.rules import Setup

        self.plan, self.format_id, self.cell, self.replicate = plan, format_id, cell, replicate
        self.seed = seed
        self.horizon = plan.spec.steps
        self.run_index = cell * plan.spec.replicates + replicate
        setup = Setup.from_config(plan.scenario, plan.formats[format_id], seed,
                                  plan.overrides(format_id, plan.points[[cell]]))
        self.guarantors = list(setup.base.guarantor_ids)
        self.model = mesa_model.CrisisModel(setup=setup, run_index=self.run_index,
                                            keep_series=True, collect=False)
        # no agents are made after the model's start: Mesa's registry of them (which
        # would keep every stepper's model alive, mesa issue 3179) is dropped at once
        mesa_model.release(self.model)
        self._round_months = setup.params.round_months

    @property
    def round(self) -> int:
        """Rounds played so far (0 before the first step)."""
        return self.model.round

    @property
    def ended(self) -> bool:
        """Whether the run has ended (Ukraine's defeat or a settlement)."""
        return not bool(self.model.active[0])

    @property
    def end_state(self) -> str:
        """The run's state: a name of :data:`END_STATES` (ongoing, defeated, settled)."""
        return END_STATES[int(self.model.tally.end_state[0])]

    @property
    def done(self) -> bool:
        """The horizon is reached or the run has ended: stepping on adds nothing."""
        return self.ended or self.round >= self.horizon

    def step(self) -> None:
        """Play one round (past the horizon: ConfigError)."""
        if self.round >= self.horizon:
            raise ConfigError(f"round {self.round}: the run's horizon is {self.horizon} "
                              f"rounds (key 'steps'); reset to play it again")
        self.model.step()

    def series(self) -> dict[str, np.ndarray]:
        """The rounds played so far, as :func:`plan_run`'s series (each (1, rounds, ...)):
        ``escalated``, ``team``, ``actions`` (each member's 1 honour / 0 abstain),
        ``outcome`` (codes of ``OUTCOME_NAMES``), ``belief`` (Russia's belief that each
        member honours), ``attraction`` and ``stocks`` (the four of ``STOCK_NAMES``).
        Empty before the first step."""
        return self.model.series.arrays() if self.round else {}

    def summary(self) -> dict[str, np.ndarray]:
        """:func:`plan_run`'s summary of the rounds played so far (after the first)."""
        return self.model.tally.summary(self._round_months)

    def shocks(self) -> list[tuple[int, str]]:
        """The scenario's scheduled shocks within the horizon: (round, label)."""
        return [(s.step, " ".join(filter(None, (s.kind, s.format or s.guarantor))))
                for s in self.plan.scenario.shocks if s.step < self.horizon]


def step_run(plan: Plan, format_id: str, cell: int, replicate: int,
             seed: int | None = None) -> RunStepper:
    """A :class:`RunStepper` at round 0 for the run of ``plan`` that :func:`plan_run` plays
    (format ``format_id``, point ``cell``, replicate ``replicate``), under the root seed
    ``seed`` (default: the plan's). Bad arguments raise ConfigError naming the value and
    what is allowed."""
    if format_id not in plan.formats:
        raise ConfigError(f"format = {format_id!r}: not in the sweep; allowed: "
                          f"{', '.join(plan.formats)}")
    for name, value, size in (("cell", cell, plan.cells),
                              ("replicate", replicate, plan.spec.replicates)):
        if isinstance(value, bool) or not isinstance(value, int | np.integer) \
                or not 0 <= value < size:
            raise ConfigError(f"{name} = {value!r}: must be a whole number from 0 to "
                              f"{size - 1}")
    seed = plan.seed if seed is None else seed
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) \
            or not 0 <= seed <= MAX_SEED:
        raise ConfigError(f"seed = {seed!r}: must be a whole number from 0 to {MAX_SEED}")
    return RunStepper(plan, format_id, int(cell), int(replicate), int(seed))
# ---------------------------------------------------------------------------------------
# The parameter catalogue: what a user can set, with its schema, value and limits

#: The groups of :class:`ParameterInfo`, by a path's first part; a guarantor's own path is
#: "Guarantor <id>", a response override's "Format response, <id>".
PARAMETER_GROUPS = {"russia": "Russia", "ukraine": "Ukraine", "guarantors": "Guarantors (all)",
                    "format": "Format", "dynamics": "Dynamics", "analysis": "Analysis"}


@dataclass(frozen=True)
class ParameterInfo:
    """One parameter a user can set (:func:`parameter_catalogue`), as the schema states it.

    ``value`` is the scenario's (for ``guarantors.*`` the guarantors' common value, None
    if they differ; None for ``format.*`` paths, whose values are per format in
    ``values``). ``default`` is the schema's (None: the schema has none and the scenario
    file must give it). ``low``/``high`` are the schema's limits (None: unbounded);
    ``low_strict``/``high_strict`` say whether the bound itself is excluded (``gt``/``lt``).
    ``own_value``: the scenario (or a format) gives a value other than the schema's
    default, so ``source`` (the default's) is not where the value comes from.
    ``formats``: the formats that have the path. ``sweepable``: a sweep axis may vary it
    (:func:`parameter_paths`); the ``dynamics`` and ``analysis`` keys are set, not swept.
    """

    path: str
    group: str
    label: str
    unit: str
    description: str
    source: str
    value: float | None
    values: dict[str, float]
    default: float | None
    low: float | None
    high: float | None
    low_strict: bool
    high_strict: bool
    own_value: bool
    formats: tuple[str, ...]
    sweepable: bool

    @property
    def allowed(self) -> str:
        """The limits for a message, e.g. ``>= 0 and <= 1000`` (``any finite number``)."""
        from .game.config import describe_limits, parameter_field

        return describe_limits(parameter_field(self.path)) or "any finite number"


def _table_paths(scenario: Scenario) -> list[str]:
    """The numeric keys of the scenario's :data:`SCENARIO_TABLES` as parameter paths."""
    return [f"{table}.{key}" for table in SCENARIO_TABLES
            for key, field in type(getattr(scenario, table)).model_fields.items()
            if field.annotation is float]


def _values_at(data, parts: list[str]) -> list:
    """The values at ``parts`` of a model's dumped data (as :func:`_set_path` sets them):
    one per guarantor for ``*``."""
    head, rest = parts[0], parts[1:]
    if isinstance(data, list):
        return [v for entry in data if head in ("*", entry["id"])
                for v in _values_at(entry, rest)]
    return _values_at(data[head], rest) if rest else [data[head]]


def _group_of(path: str) -> str:
    parts = path.split(".")
    if parts[0] == "guarantors" and parts[1] != "*":
        return f"Guarantor {parts[1]}"
    if parts[0] == "format" and parts[1] == "response":
        return "Format response"
    if parts[0] == "format" and parts[1] == "response_overrides":
        return f"Format response, {parts[2]}"
    return PARAMETER_GROUPS[parts[0]]


def parameter_catalogue(scenario: Scenario | str | Path, format_ids=None,
                        formats_dir: str | Path = FORMATS_DIR) -> list[ParameterInfo]:
    """Every parameter a user can set for ``scenario`` under the formats ``format_ids``
    (ids or :class:`FormatSpec` objects; default: the whole catalogue): the paths of
    :func:`parameter_paths` (their union over the formats, in its order) and the numeric
    keys of the scenario's ``dynamics`` and ``analysis`` tables (:func:`with_parameters`
    takes them all), one :class:`ParameterInfo` each: group, label and unit
    (:func:`parameter_label`), description, source, value(s), default and limits from the
    schema (:func:`deterrence.game.config.parameter_field`, ``limits_of``)."""
    from pydantic_core import PydanticUndefined

    from .game.config import limits_of, parameter_field

    scenario = _as_scenario(scenario)
    chosen = [_as_format(f, formats_dir) for f in
              (format_ids if format_ids is not None else list(load_catalogue(formats_dir)))]
    having: dict[str, list[str]] = {}
    for fmt in chosen:
        for path in parameter_paths(scenario, fmt):
            having.setdefault(path, []).append(fmt.id)
    every = tuple(f.id for f in chosen)
    dumped = scenario.model_dump()
    formats_dumped = {f.id: f.model_dump() for f in chosen}
    rows = []
    for path in [*having, *_table_paths(scenario)]:
        field = parameter_field(path)
        extra = field.json_schema_extra or {}
        label, unit = parameter_label(path)
        default = None if field.default is PydanticUndefined else float(field.default)
        low = high = None
        low_strict = high_strict = False
        for name, bound in limits_of(field):
            if name in ("gt", "ge"):
                low, low_strict = float(bound), name == "gt"
            else:
                high, high_strict = float(bound), name == "lt"
        parts = path.split(".")
        value, values = None, {}
        if parts[0] == "format":
            values = {fid: float(_values_at(formats_dumped[fid], parts[1:])[0])
                      for fid in having[path]}
            given = list(values.values())
        else:
            given = [float(v) for v in _values_at(dumped, parts)]
            value = given[0] if len(set(given)) == 1 else None
        rows.append(ParameterInfo(
            path=path, group=_group_of(path), label=label, unit=unit,
            description=field.description or "", source=str(extra.get("source", "")),
            value=value, values=values, default=default, low=low, high=high,
            low_strict=low_strict, high_strict=high_strict,
            own_value=default is None or any(v != default for v in given),
            formats=tuple(having.get(path, every)), sweepable=path in having))
    return rows


def parameter_problem(info: ParameterInfo, value: float) -> str | None:
    """Why ``value`` cannot be ``info``'s (a number that is not finite, or outside the
    schema's limits) in one line naming the path, the value and what is allowed; None if
    it can. :func:`with_parameters` checks the same limits, and whatever else the schema
    asks of the whole scenario."""
    import math

    from .game.config import limits_of, parameter_field
    from .game.payoffs import LIMIT_TESTS

    keeps = math.isfinite(value) and all(
        LIMIT_TESTS[name](value, bound) for name, bound in limits_of(parameter_field(info.path)))
    return None if keeps else (f"{info.label} (key '{info.path}') = {value:g}: allowed: "
                               f"{info.allowed}")


def with_formats(plan: Plan, formats: dict[str, FormatSpec]) -> Plan:
    """``plan`` with some of its formats replaced by changed ones (``{id: FormatSpec}``,
    e.g. from :func:`with_parameters` with ``fmt=``), checked as a sweep's formats are:
    every axis a parameter of each, every point valid. The archive records the changed
    formats, so ``verify`` re-runs them."""
    from .sweep.spec import _check_axes

    unknown = [fid for fid in formats if fid not in plan.formats]
    if unknown:
        raise ConfigError(f"formats {unknown}: not formats of the sweep; allowed: "
                          f"{list(plan.formats)}")
    for fid, fmt in formats.items():
        if not isinstance(fmt, FormatSpec) or fmt.id != fid:
            raise ConfigError(f"formats[{fid!r}]: a FormatSpec with id {fid!r}, not "
                              f"{getattr(fmt, 'id', type(fmt).__name__)!r}")
    changed = replace(plan, formats={fid: formats.get(fid, fmt)
                                     for fid, fmt in plan.formats.items()})
    _check_axes(changed, f"sweep {plan.spec.name!r}")
    return changed
