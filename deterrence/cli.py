"""Command line: ``deterrence formats``, ``solve``, ``run``, ``sweep``, ``sensitivity``,
``verify``, ``report``, ``compare``, ``discover`` and ``dashboard`` (docs/cli.md).

Exit codes: 0 success; 1 ``verify`` found a difference, or a sweep finished with failed
chunks; 2 bad input or a usage error (a message on stderr, no traceback); 3 an unexpected
internal error (one line on stderr naming it and the file holding its traceback); 130
interrupted.
"""

from __future__ import annotations

import errno
import json
import math
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal, TextIO

import numpy as np
import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text
from typer.core import TyperGroup

from . import api
from .api import FORMATS_DIR, ArchiveError, ConfigError

EXIT_DIFFERS = 1    # verify found a difference; a sweep finished with failed chunks
EXIT_BAD_INPUT = 2  # also Typer's code for a usage error
EXIT_INTERNAL = 3   # an unexpected error: a bug
#: Seconds between two progress lines when stderr is not a terminal (CI, nohup, batch jobs).
PROGRESS_INTERVAL = 5.0


class _Commands(TyperGroup):
    """The command group: an exception that is neither a usage error nor a deliberate exit
    becomes one line on stderr and exit code 3 (:func:`_crash`)."""

    def invoke(self, ctx: typer.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (typer.Exit, typer.Abort, typer.TyperException):
            raise
        except Exception as exc:
            if isinstance(exc, OSError) and exc.errno == errno.EPIPE:
                raise  # the reader of stdout went away (`| head`): Typer exits quietly
            _crash(exc, debug=bool(ctx.params.get("debug")))


app = typer.Typer(cls=_Commands, add_completion=False, no_args_is_help=True,
                  pretty_exceptions_enable=False,
                  help="Compare security-guarantee formats for Ukraine.")
out = Console()
err = Console(stderr=True)


def _print_version(value: bool) -> None:
    if value:
        print(f"deterrence {api.__version__}")
        raise typer.Exit()


@app.callback()
def _options(
    debug: Annotated[bool, typer.Option(
        "--debug", help="On an internal error (exit code 3), print the traceback instead of "
                        "writing it to a file.")] = False,
    version: Annotated[bool, typer.Option(
        "--version", callback=_print_version, is_eager=True,
        help="Print the version and exit.")] = False,
) -> None:
    """Compare security-guarantee formats for Ukraine."""


def _crash(exc: Exception, debug: bool) -> None:
    """Report an unexpected exception: its type and message on one line and the file under
    the temporary folder that holds the traceback (with ``debug``: the traceback)."""
    import platform
    import tempfile
    import traceback
    from datetime import UTC, datetime

    trace = "".join(traceback.format_exception(exc))
    if debug:
        sys.stderr.write(trace)
        raise typer.Exit(EXIT_INTERNAL)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    try:
        fd, name = tempfile.mkstemp(prefix=f"deterrence-crash-{stamp}-", suffix=".txt")
        with open(fd, "w", encoding="utf-8") as file:
            file.write(f"command: {' '.join(sys.argv)}\npython: {sys.version.split()[0]} on "
                       f"{platform.platform()}\n\n{trace}")
        where = f"traceback in {name}"
    except OSError as failure:
        where = f"the traceback could not be written ({failure}); run with --debug to see it"
    _say(("internal error:", "bold red"), f" {type(exc).__name__}: {' '.join(str(exc).split())}"
         f" ({where})", console=err)
    raise typer.Exit(EXIT_INTERNAL)


def _say(*parts: str | tuple[str, str], console: Console | None = None) -> None:
    """Print one line made of ``parts`` (text, or (text, style)). It is never wrapped, so a
    path in it stays whole at any width, and no markup is read from the text."""
    (console or out).print(Text.assemble(*parts), soft_wrap=True)


def _fail(message: str) -> None:
    _say(("error:", "bold red"), f" {message}", console=err)
    raise typer.Exit(code=EXIT_BAD_INPUT)


def _jsonable(value: Any) -> Any:
    """``value`` as plain JSON types: NumPy scalars and arrays as numbers and lists, paths
    as text, and every non-finite number (NaN, infinity) as None (JSON null)."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return _jsonable(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _print_json(value: Any) -> None:
    """The one way ``--json`` output is printed: a single valid JSON document on stdout."""
    print(json.dumps(_jsonable(value), indent=2, allow_nan=False))


class ProgressLines:
    """Progress for a log: a plain line on stderr at the first update, then at most every
    ``interval`` seconds, and once when done, e.g.
    ``sweep quickstart: 12/56 chunks, 21%, ETA 0:00:31`` and
    ``sweep quickstart: 56/56 chunks, 100%, done in 0:00:20; writing the archive`` (``then``:
    what follows the counted work). The ETA assumes the rate since the first update goes
    on."""

    def __init__(self, label: str, unit: str, total: int | None, then: str | None = None,
                 interval: float = PROGRESS_INTERVAL,
                 clock: Callable[[], float] = time.monotonic, stream: TextIO | None = None):
        self.label, self.unit, self.total, self.then = label, unit, total, then
        self.interval, self.clock, self.stream = interval, clock, stream
        self.start: float | None = None
        self.first_done = 0
        self.last: float | None = None
        self.finished = False

    def __call__(self, done: int, total: int | None = None) -> None:
        now = self.clock()
        if total is not None:
            self.total = total
        if self.start is None:
            self.start, self.first_done = now, done
        finished = self.total is not None and done >= self.total
        if self.finished or (self.last is not None and not finished
                             and now - self.last < self.interval):
            return
        self.last, self.finished = now, finished
        if finished:
            tail = f"done in {_duration(now - self.start)}" + (f"; {self.then}"
                                                                 if self.then else "")
        elif done > self.first_done and self.total is not None:
            rate = (done - self.first_done) / max(now - self.start, 1e-9)
            tail = f"ETA {_duration((self.total - done) / rate)}"
        else:
            tail = "ETA unknown"
        count = (f"{done:,} {self.unit}" if self.total is None else
                 f"{done:,}/{self.total:,} {self.unit}, {done / max(self.total, 1):.0%}")
        print(f"{self.label}: {count}, {tail}", file=self.stream or sys.stderr, flush=True)


def _duration(seconds: float) -> str:
    whole = round(seconds)
    return f"{whole // 3600}:{whole // 60 % 60:02d}:{whole % 60:02d}"


def _stderr_is_terminal() -> bool:
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):  # no stderr, or a closed one
        return False


@contextmanager
def _progress(label: str, unit: str, total: int | None,
              then: str | None = None) -> Iterator[Callable[..., None]]:
    """A progress callback ``(done, total=None)`` reporting on stderr (``total`` may be
    unknown until the first update; ``then`` says what follows the counted work): on a
    terminal a bar with an ETA, cleared at the end; otherwise :class:`ProgressLines` (no
    control codes, also where FORCE_COLOR asks rich for colours)."""
    if not _stderr_is_terminal():
        yield ProgressLines(label, unit, total, then)
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    with Progress("{task.description}", BarColumn(), MofNCompleteColumn(),
                  TimeRemainingColumn(), console=err, transient=True) as bar:
        task = bar.add_task(f"{label}, {unit}", total=total)

        def update(done: int, new_total: int | None = None) -> None:
            bar.update(task, completed=done, total=new_total)
            total = bar.tasks[0].total
            if then and total is not None and done >= total:
                bar.update(task, description=f"{label}: {then}")

        yield update


FormatsDir = Annotated[Path, typer.Option("--formats-dir", help="Folder of format files.")]
JsonFlag = Annotated[bool, typer.Option(
    "--json", help="Print one JSON object on stdout instead of tables (docs/cli.md).")]
ArchiveArgument = Annotated[Path, typer.Argument(help="Archive folder.")]
FormatIdsOption = Annotated[list[str] | None, typer.Option(
    "--format", "-f", help="Format id; repeat for several (default: all).")]


@app.command()
def formats(as_json: JsonFlag = False, formats_dir: FormatsDir = FORMATS_DIR) -> None:
    """List the format catalogue."""
    try:
        catalogue = api.load_catalogue(formats_dir)
    except ConfigError as exc:
        _fail(str(exc))
    if as_json:
        _print_json([{"id": f.id, "name": f.name, "description": f.description,
                      "members": f.members} for f in catalogue.values()])
        return
    table = Table("id", "name", "what it commits", box=None, header_style="bold")
    for f in catalogue.values():
        table.add_row(f.id, f.name, f.description)
    out.print(table)


@app.command()
def solve(
    scenario: Annotated[Path, typer.Argument(help="Scenario file (TOML).")],
    format_ids: FormatIdsOption = None,
    brief: Annotated[bool, typer.Option(
        "--brief", help="One table, a row per format, instead of each format's numbers, "
                        "members and equilibria.")] = False,
    as_json: JsonFlag = False,
    formats_dir: FormatsDir = FORMATS_DIR,
) -> None:
    """Solve the crisis game exactly under each format: regime, P(escalate), the response,
    each member's credibility and every equilibrium of the members' subgame."""
    try:
        results = api.solve_formats(scenario, format_ids, formats_dir)
    except ConfigError as exc:
        _fail(str(exc))
    if as_json:
        _print_json({"scenario": str(scenario), "formats": [r.to_dict() for r in results]})
        return
    if brief:
        _print_brief(results)
        return
    for r in results:
        out.print()
        _say((r.format_name, "bold"), f" ({r.format_id}): regime ", (r.regime, "bold"),
             f"; members {', '.join(r.members) or 'none'}")
        table = Table("", "", box=None, show_header=False)
        for label, value in _format_numbers(r):
            table.add_row(label, value)
        for member, value in r.credibility.items():
            table.add_row(f"credibility {member}", f"{value:.3f}")
        out.print(table)
        if len(r.equilibria) > 1:
            out.print(_equilibria_table(r))
    out.print()
    out.print(SOLVE_NOTE, style="dim", soft_wrap=True)


#: What the numbers of ``solve`` are, under its tables.
SOLVE_NOTE = ("Given an escalation, each member honours or not by its private cost: the "
              "members play a Bayesian equilibrium (the one least favourable to deterrence "
              "when they decide alone, the most deterrent one all prefer when they "
              "coordinate). P(escalate) in brackets, where there are several equilibria: its "
              "range over them, each played whether or not the members coordinate. "
              "Credibility: P(member honours | escalation). Margin: Russia's "
              "payoff of refraining less its expected payoff of escalating. See "
              "docs/model.md.")


def _equilibria(r) -> str:
    """The number of equilibria, and whether the set is proven complete."""
    return f"{r.equilibrium_count}" + ("" if r.equilibrium_set_complete
                                       else ", not proven complete")


def _escalation(r) -> str:
    """P(escalate), with its range over the equilibria when it has one."""
    low, high = r.escalation_probability_min, r.escalation_probability_max
    spread = f" [{low:.3f}–{high:.3f}]" if r.equilibrium_count > 1 else ""
    return f"{r.escalation_probability:.3f}{spread}"


def _format_numbers(r) -> list[tuple[str, str]]:
    return [("P(escalate)", _escalation(r)),
            ("P(response | escalation)", f"{r.response_probability:.3f}"),
            ("P(defended | escalation)", f"{r.defended_probability:.3f}"),
            ("deterrence margin", f"{r.deterrence_margin:+.3f}"),
            ("equilibria", _equilibria(r))]


def _equilibria_table(r) -> Table:
    """Every equilibrium of a format, a column each."""
    table = Table("equilibrium", *(str(k + 1) for k in range(len(r.equilibria))), box=None,
                  header_style="bold")
    rows = {
        "P(escalate) if played": [f"{e.escalation_probability:.3f}" for e in r.equilibria],
        "P(Russia succeeds | esc.)": [f"{e.russia_success_probability:.3f}"
                                      for e in r.equilibria],
        "P(response | esc.)": [f"{e.response_probability:.3f}" for e in r.equilibria],
        "played": [" and ".join(w for w, on in (("alone", e.played_alone),
                                                ("coordinated", e.played_coordinated)) if on)
                   or "—" for e in r.equilibria],
        "certified": ["yes" if e.certified else "no" for e in r.equilibria],
    }
    for member in r.members:
        rows[f"P(honour) {member}"] = [f"{e.honour_probability[member]:.3f}"
                                       for e in r.equilibria]
    for label, cells in rows.items():
        table.add_row(label, *cells)
    return table


@app.command()
def run(
    scenario: Annotated[Path, typer.Argument(help="Scenario file (TOML).")],
    format_id: Annotated[str | None, typer.Option(
        "--format", "-f", help="Format id (default: the scenario's).")] = None,
    engine: Annotated[Literal[api.ENGINES], typer.Option(
        help="vector (fast) or mesa (reference).")] = "vector",
    runs: Annotated[int, typer.Option(help="Number of runs.")] = 100,
    steps: Annotated[int | None, typer.Option(
        help="Crisis rounds per run (default: the scenario's dynamics.horizon_rounds).")] = None,
    seed: Annotated[int | None, typer.Option(help="Root seed (default: the scenario's).")] = None,
    out_dir: Annotated[Path | None, typer.Option(
        "--out", help="New folder for per-round data (simulation.nc) and the config.")] = None,
    as_json: JsonFlag = False,
    formats_dir: FormatsDir = FORMATS_DIR,
) -> None:
    """Simulate repeated crises; print the summary (same seed, same numbers, either engine)."""
    try:
        loaded = api.load_scenario(scenario)
        if out_dir is not None:
            api.check_new_folder(out_dir)  # before the work: a folder that can be made
        used_format = format_id or loaded.format
        with _progress(f"run {used_format} ({engine})", "runs", runs) as update:
            sim = api.simulate_scenario(loaded, format_id, engine, runs, steps, seed,
                                        keep_series=out_dir is not None,
                                        formats_dir=formats_dir, progress=update)
    except ConfigError as exc:
        _fail(str(exc))
    used_seed = loaded.seed if seed is None else seed
    steps = sim.steps
    codes = ("first_escalation", "end_state", "end_round")
    stats = {name: _mean_ci(values) for name, values in sim.summary.items()
             if name not in codes}
    first = sim.summary["first_escalation"]
    hazard = api.hazard_of_first_escalation(first, steps)
    months = loaded.dynamics.round_months
    ends = sim.summary["end_state"]
    report = {"scenario": str(scenario), "format": used_format, "engine": engine,
              "runs": runs, "steps": steps, "round_months": months, "seed": used_seed,
              "summary": stats,
              "runs_with_an_escalation": int((first >= 0).sum()),
              "median_first_escalation": (float(np.median(first[first >= 0]))
                                          if (first >= 0).any() else None),
              "end_states": {name: int((ends == k).sum())
                             for k, name in enumerate(api.END_STATES)},
              "hazard_first_10_rounds": [None if np.isnan(h) else float(h)
                                         for h in hazard[:10]]}
    if out_dir is not None:
        dataset = api.simulation_dataset(sim, {k: str(v) for k, v in report.items()
                                               if k != "summary"})
        record = _jsonable({**report, "scenario_config": loaded.model_dump(mode="json")})
        report["out"] = str(api.write_simulation(out_dir, dataset, record))
    if as_json:
        _print_json(report)
        return
    _say((used_format, "bold"), f", {runs} runs x {steps} rounds of {months:g} month(s), "
         f"{engine} engine, seed {used_seed}")
    table = Table("per run", "mean", "95% CI", "runs counted", box=None, header_style="bold")
    for name, st in stats.items():
        table.add_row(name.replace("_", " "), _number(st["mean"], ".4f"),
                      f"[{_number(st['ci95'][0], '.4f')}, {_number(st['ci95'][1], '.4f')}]",
                      str(st["n"]))
    out.print(table)
    median = report["median_first_escalation"]
    _say(f"runs with an escalation: {report['runs_with_an_escalation']} of {runs}; median "
         f"first escalation (among them): "
         f"{'none' if median is None else f'round {median:g}'}")
    _say("how the runs ended: " + ", ".join(f"{name} {count}" for name, count
                                            in report["end_states"].items()))
    if out_dir is not None:
        _say(f"per-round data: {report['out']}/simulation.nc")


@app.command()
def basins(
    scenario: Annotated[Path, typer.Argument(help="Scenario file (TOML).")],
    format_id: Annotated[str | None, typer.Option(
        "--format", "-f", help="Format id (default: the scenario's).")] = None,
    runs: Annotated[int, typer.Option(help="Runs from each start.")] = 1000,
    steps: Annotated[int | None, typer.Option(
        help="Crisis rounds per run (default: the scenario's dynamics.horizon_rounds).")] = None,
    seed: Annotated[int | None, typer.Option(help="Root seed (default: the scenario's).")] = None,
    as_json: JsonFlag = False,
    formats_dir: FormatsDir = FORMATS_DIR,
) -> None:
    """Where the repeated crisis goes from each start (equilibrium beliefs, random ones):
    the shares of runs deterred throughout, escalating, defeated and settled, and the
    erosion time (median rounds to the first escalation)."""
    try:
        loaded = api.load_scenario(scenario)
        with _progress(f"basins {format_id or loaded.format}", "starts",
                       len(api.STARTS)) as update:
            table = api.basins(loaded, format_id, runs=runs, steps=steps, seed=seed,
                               formats_dir=formats_dir, progress=update)
    except ConfigError as exc:
        _fail(str(exc))
    rows = {start: {k: (None if not math.isfinite(v) else float(v)) for k, v in row.items()}
            for start, row in table.iterrows()}
    if as_json:
        _print_json({"scenario": str(scenario), "format": format_id or loaded.format,
                     "runs": runs, "starts": rows})
        return
    out_table = Table(box=None, header_style="bold")
    out_table.add_column("start", no_wrap=True)
    for header in ("deterred throughout", "escalated, ongoing", "defeated", "settled",
                   "erosion (years) [95% CI]", "escalation frequency"):
        out_table.add_column(header)
    for start, row in table.iterrows():
        erosion = (f"{_number(row.erosion_years, '.2f')} [{_number(row.erosion_years_low, '.2f')}"
                   f", {_number(row.erosion_years_high, '.2f')}]")
        if not math.isfinite(row.erosion_years):
            erosion = "not reached"
        out_table.add_row(start, *(_number(row[k], ".3f") for k in (
            "ongoing_deterred_share", "ongoing_escalated_share", "defeated_share",
            "settled_share")), erosion, _number(row.escalation_frequency_mean, ".4f"))
    out.print(out_table)


ExecutorOption = Annotated[Literal[api.EXECUTORS], typer.Option(
    help="inprocess, processes (local workers) or dask.")]
SchedulerOption = Annotated[str | None, typer.Option(
    help="Dask scheduler address, e.g. tcp://host:8786 (with --executor dask).")]
WorkersOption = Annotated[int | None, typer.Option(help="Local workers (default: cores).")]
ArchiveOption = Annotated[Path | None, typer.Option(
    "--out", help="Archive folder (default: <results dir>/<name>-<UTC time>).")]
ResumeOption = Annotated[str | None, typer.Option(
    help="Resume the interrupted sweep with this archive id: the folder name under the "
         "results dir, or the name of --out when it is given.")]
ResultsDirOption = Annotated[Path | None, typer.Option(
    "--results-dir", help="Folder of new archives and of --resume (default: "
                          "$DETERRENCE_RESULTS_DIR, else ./results).")]
#: The outcomes ``--output`` may name (an Enum: Typer takes no list of literals).
SensitivityOutput = StrEnum("SensitivityOutput", {o: o for o in api.SENSITIVITY_OUTPUTS})
ReportOption = Annotated[bool, typer.Option(
    "--report/--no-report", help="Also write the HTML report beside the archive.")]


@app.command()
def sweep(
    sweep_file: Annotated[Path, typer.Argument(metavar="SWEEP", help="Sweep file (TOML).")],
    executor: ExecutorOption = "inprocess",
    scheduler: SchedulerOption = None,
    workers: WorkersOption = None,
    out_dir: ArchiveOption = None,
    resume: ResumeOption = None,
    results_dir: ResultsDirOption = None,
    with_report: ReportOption = True,
    as_json: JsonFlag = False,
    formats_dir: FormatsDir = FORMATS_DIR,
) -> None:
    """Run a sweep; write an archive (and its report) and print the paths (exit 1 if chunks
    failed)."""
    _sweep("sweep", sweep_file, None, executor, scheduler, workers, out_dir, resume,
           results_dir, with_report, as_json, formats_dir)


@app.command()
def sensitivity(
    sweep_file: Annotated[Path, typer.Argument(metavar="SWEEP", help="Sweep file (TOML).")],
    method: Annotated[Literal[tuple(api.INDICES)] | None, typer.Option(
        help="sobol (first-order and total indices) or morris (screening); default: the "
             "file's \\[sensitivity] table, else sobol.")] = None,
    samples: Annotated[int | None, typer.Option(
        help="Sobol base sample (a power of 2) or Morris trajectories; default: the file's, "
             "else 128 (sobol) or 20 (morris).")] = None,
    levels: Annotated[int | None, typer.Option(help="Morris grid levels (even).")] = None,
    output: Annotated[list[SensitivityOutput] | None, typer.Option(
        help="Outcome to analyse; repeat for several (default: all).")] = None,
    executor: ExecutorOption = "inprocess",
    scheduler: SchedulerOption = None,
    workers: WorkersOption = None,
    out_dir: ArchiveOption = None,
    resume: ResumeOption = None,
    results_dir: ResultsDirOption = None,
    with_report: ReportOption = True,
    as_json: JsonFlag = False,
    formats_dir: FormatsDir = FORMATS_DIR,
) -> None:
    """Run a sweep with a global sensitivity design over its axes' ranges (Sobol or Morris,
    SALib); the archive holds the indices with confidence intervals and a tornado chart."""
    try:
        table = api.read_toml(api.locate(sweep_file, "sweep")).get("sensitivity", {})
    except ConfigError as exc:
        _fail(str(exc))
    overrides: dict = {k: v for k, v in (("method", method), ("samples", samples),
                                         ("levels", levels)) if v is not None}
    if output:
        overrides["outputs"] = [o.value for o in output]
    table = table if isinstance(table, dict) else {}  # load_plan names a malformed table
    chosen = method or table.get("method", "sobol")
    # a Sobol base sample and a number of Morris trajectories are not interchangeable
    if samples is None and ("samples" not in table or chosen != table.get("method", "sobol")):
        overrides["samples"] = api.DEFAULT_SAMPLES.get(chosen, api.DEFAULT_SAMPLES["sobol"])
    _sweep("sensitivity", sweep_file, overrides, executor, scheduler, workers, out_dir,
           resume, results_dir, with_report, as_json, formats_dir)


def _results_dir(explicit: Path | None) -> Path:
    """Where new archives go and ``--resume`` looks."""
    return api.results_dir(explicit)


def _archive_target(name: str, out_dir: Path | None, resume: str | None,
                    results_dir: Path | None) -> Path:
    """The archive folder of a sweep named ``name``: ``--out``, else a new folder under the
    results dir; with ``--resume ID``, the folder of that id (``--out``'s own name)."""
    from datetime import UTC, datetime

    if out_dir is not None and results_dir is not None:
        raise ConfigError(f"--out {out_dir} and --results-dir {results_dir}: both say where "
                          "the archive goes; give one")
    if resume is not None:
        if resume in ("", ".", "..") or Path(resume).name != resume:
            raise ConfigError(f"--resume {resume!r}: an archive id is a folder name (as "
                              "printed when the sweep stopped), not a path; for a folder "
                              "elsewhere give --out FOLDER --resume NAME")
        if out_dir is None:
            return _results_dir(results_dir) / resume
        if out_dir.name != resume:
            raise ConfigError(f"--resume {resume!r} with --out {out_dir}: resuming continues "
                              f"the sweep of --out, whose archive id is {out_dir.name!r}; "
                              f"give --resume {out_dir.name}, or leave out --out to resume "
                              f"{_results_dir(None) / resume}")
        return out_dir
    if out_dir is not None:
        return out_dir
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return _results_dir(results_dir) / f"{name}-{stamp}"


@app.command()
def uncertainty(
    scenario: Annotated[Path, typer.Argument(
        metavar="SCENARIO", help="Scenario file (TOML) whose uncertain parameters (or those "
                                 "of its formats) are distributions, or a bundled name.")],
    format_ids: Annotated[list[str] | None, typer.Option(
        "--format", help="Format to study; repeat for several (default: all).")] = None,
    samples: Annotated[int | None, typer.Option(
        help="Points of the joint prior, a power of 2 (default 256).")] = None,
    voi_samples: Annotated[int | None, typer.Option(
        help="Sobol base sample of the value-of-information design, a power of 2 (0: "
             "none; default 64).")] = None,
    replicates: Annotated[int | None, typer.Option(
        help="Simulated runs per prior point (default 8).")] = None,
    steps: Annotated[int | None, typer.Option(
        help="Rounds per run (default: the scenario's horizon).")] = None,
    seed: Annotated[int | None, typer.Option(help="Root seed (default: the scenario's).")] = None,
    map_x: Annotated[str | None, typer.Option(
        metavar="PATH:LOW:HIGH:COUNT",
        help="Also map P(deterrence holds) over this parameter (with --map-y), the rest "
             "integrated over the prior.")] = None,
    map_y: Annotated[str | None, typer.Option(metavar="PATH:LOW:HIGH:COUNT",
                                              help="The map's second parameter.")] = None,
    map_samples: Annotated[int | None, typer.Option(
        help="Prior points per map cell, a power of 2 (default 64).")] = None,
    calibrated: Annotated[bool, typer.Option(
        help="Give the parameters the scenario leaves at their defaults the priors fitted "
             "to base rates (docs/calibration.md).")] = True,
    executor: ExecutorOption = "inprocess",
    scheduler: SchedulerOption = None,
    workers: WorkersOption = None,
    out_dir: ArchiveOption = None,
    resume: ResumeOption = None,
    results_dir: ResultsDirOption = None,
    with_report: ReportOption = True,
    as_json: JsonFlag = False,
    formats_dir: FormatsDir = FORMATS_DIR,
) -> None:
    """Carry the scenario's assumptions as uncertainty: sample the joint prior of its (and
    its formats') distributions, solve and simulate every format there, and report P(deterred)
    per format with intervals, paired differences and the value of information of each
    assumption (an archive and its report)."""
    def plan():
        chart = None
        if (map_x is None) != (map_y is None):
            raise ConfigError("--map-x and --map-y: give both, or neither")
        if map_x is not None:
            chart = {"x": _map_axis("--map-x", map_x), "y": _map_axis("--map-y", map_y)}
            if map_samples is not None:
                chart["samples"] = map_samples
        elif map_samples is not None:
            raise ConfigError("--map-samples: needs --map-x and --map-y")
        return api.uncertainty_plan(scenario, format_ids, samples=samples,
                                    voi_samples=voi_samples, replicates=replicates,
                                    steps=steps, seed=seed, prior_map=chart,
                                    calibrated=calibrated, formats_dir=formats_dir)

    _sweep("uncertainty", None, None, executor, scheduler, workers, out_dir, resume,
           results_dir, with_report, as_json, formats_dir, make_plan=plan)


def _map_axis(option: str, text: str) -> dict:
    """A map axis ``PATH:LOW:HIGH:COUNT`` as a sweep file's axis table."""
    parts = text.split(":")
    try:
        if len(parts) != 4:
            raise ValueError
        return {"path": parts[0], "low": float(parts[1]), "high": float(parts[2]),
                "count": int(parts[3])}
    except ValueError:
        raise ConfigError(f"{option} {text!r}: must be PATH:LOW:HIGH:COUNT, e.g. "
                          "russia.war_cost:0:1:21") from None


def _sweep(command: str, sweep_file: Path | None, sensitivity_overrides: dict | None,
           executor: str, scheduler: str | None, workers: int | None, out_dir: Path | None,
           resume: str | None, results_dir: Path | None, with_report: bool, as_json: bool,
           formats_dir: Path, make_plan=None) -> None:
    try:
        plan = (make_plan() if make_plan is not None
                else api.load_plan(sweep_file, sensitivity_overrides, formats_dir))
        target = _archive_target(plan.spec.name, out_dir, resume, results_dir)
    except ConfigError as exc:
        _fail(str(exc))
    again = (f"--out {target} --resume {target.name}" if out_dir is not None else
             f"--results-dir {results_dir} --resume {target.name}"
             if results_dir is not None else f"--resume {target.name}")
    try:
        with _progress(f"{command} {plan.spec.name}", "chunks", len(plan.chunks()),
                       "writing the archive") as update:
            archive, failures = api.run_sweep(
                plan, target, executor, workers=workers, scheduler=scheduler,
                source=sweep_file, resume=resume is not None, progress=update)
    except ConfigError as exc:
        _fail(str(exc))
    except KeyboardInterrupt:
        _say(f"interrupted: completed chunks are kept; run the same command with {again}",
             console=err)
        raise
    if failures:
        if as_json:
            _print_json({"archive": None, "report": None, "summary": [], "sensitivity": None,
                         "failures": failures, "resume": again})
        else:
            for failure in failures:
                _say(("failed:", "bold red"), f" {failure}", console=err)
            _say(f"completed chunks are kept; run the same command with {again}",
                 console=err)
        raise typer.Exit(code=EXIT_DIFFERS)
    summary = _sweep_summary(archive)
    indices = _sensitivity_summary(archive) if plan.sensitivity_points is not None else None
    prior = (api.uncertainty_summary(archive).reset_index().to_dict("records")
             if plan.spec.method == "prior" else None)
    report = api.write_report(archive) if with_report else None
    if as_json:
        _print_json({"archive": archive, "report": report, "summary": summary,
                     "sensitivity": indices, "failures": [], "resume": None,
                     **({"uncertainty": prior} if prior is not None else {})})
        return
    if prior is not None:
        table = Table("format", "P(deterred)", "prior 5-95%", "P(deterrence holds)",
                      "P(defended | esc.)", "unattacked runs", box=None,
                      header_style="bold", title_justify="left",
                      title=f"under the joint prior: {plan.cells} points, 95% intervals")
        def cell(row, name):
            return f"{row[name]:.3f} [{row[name + '_low']:.3f}, {row[name + '_high']:.3f}]"

        for row in prior:
            table.add_row(row["format"], cell(row, "p_deterred"),
                          f"{row['p_deterred_q05']:.3f}-{row['p_deterred_q95']:.3f}",
                          cell(row, "holds"), cell(row, "p_defended_given_escalation"),
                          cell(row, "unattacked"))
        out.print(table)
    table = Table("format", "escalation freq.", "P(abandoned | esc.)", "deterred share",
                  "cells deterred (exact)", "P(escalate) (exact)", box=None,
                  header_style="bold")
    for row in summary:
        table.add_row(row["format"], _number(row["escalation_frequency"], ".3f"),
                      _number(row["abandoned_given_escalation"], ".3f"),
                      _number(row["deterred_share"], ".3f"),
                      _number(row["points_deterred_exact"], ".0%"),
                      _number(row["escalation_probability_exact"], ".3f"))
    out.print(table)
    if indices is not None:
        table = Table("format", "outcome", "most influential parameter", indices["index"],
                      box=None, header_style="bold", title_justify="left",
                      title=f"{indices['method']} sensitivity, {indices['design_points']} "
                            f"design points, ± {indices['confidence']:.0%} interval")
        for row in indices["rows"]:
            if row["parameter"] is None:
                table.add_row(row["format"], row["outcome"], f"({row['note']})", "")
            else:
                table.add_row(row["format"], row["outcome"], row["parameter"],
                              f"{row['value']:.2f} ± {row['half_width']:.2f}")
        out.print(table)
    _say(f"archive: {archive}")
    if report is not None:
        _say(f"report:  {report}")


def _sweep_summary(archive: Path) -> list[dict]:
    """Per format: the mean escalation frequency, P(abandoned | escalation) (runs without
    an escalation left out; NaN if none escalated), share of rounds deterred, share of
    points the exact solver finds deterred, and the exact P(escalate), mean over the
    points."""
    import xarray as xr

    deterred = api.REGIME_NAMES.index("deterred")
    rows = []
    with xr.open_dataset(archive / "data" / "simulation.nc", engine="scipy") as sim, \
            xr.open_dataset(archive / "data" / "exact.nc", engine="scipy") as exact:
        for fmt in sim["format"].values:
            one = sim.sel(format=fmt)
            rows.append({"format": str(fmt),
                         "escalation_frequency": float(one.escalation_frequency.mean()),
                         "abandoned_given_escalation": float(
                             one.abandoned_given_escalation.mean(skipna=True)),
                         "deterred_share": float(one.deterred_share.mean()),
                         "points_deterred_exact": float(
                             (exact.regime.sel(format=fmt) == deterred).mean()),
                         "escalation_probability_exact": float(
                             exact.escalation_probability.sel(format=fmt).mean())})
    return rows


def _sensitivity_summary(archive: Path) -> dict:
    """The most influential parameter per format and outcome: by the total index (Sobol)
    or mu* (Morris), with the half-width of its interval. None where there is no estimate:
    the outcome is constant over the design, or (Sobol) over its base samples, where the
    estimators divide by a variance of 0 and SALib reports 0 for every parameter."""
    import xarray as xr

    with xr.open_dataset(archive / api.INDICES_FILE, engine="scipy") as ind:
        method = str(ind.attrs["method"])
        key = "ST" if method == "sobol" else api.INDICES[method][0]
        rows = []
        for fmt in ind["format"].values:
            for o in ind["output"].values:
                v = ind[key].sel(format=fmt, output=o).values
                c = ind[f"{key}_conf"].sel(format=fmt, output=o).values
                row = {"format": str(fmt), "outcome": str(o), "parameter": None,
                       "value": None, "half_width": None, "note": None}
                if not np.isfinite(v).any():
                    row["note"] = "outcome constant"
                elif method == "sobol" and not v.any() and not np.nan_to_num(c).any():
                    row["note"] = "constant on the base sample"
                else:
                    i = int(np.nanargmax(v))
                    row.update(parameter=str(ind["parameter"].values[i]), value=float(v[i]),
                               half_width=float(c[i]))
                rows.append(row)
        return {"method": method, "design_points": int(ind.attrs["design_points"]),
                "confidence": float(ind.attrs["confidence"]), "index": key, "rows": rows}


@app.command()
def verify(archive: ArchiveArgument, as_json: JsonFlag = False) -> None:
    """Re-run an archive; exit 0 if every array reproduces bit for bit, 1 if not, 2 if the
    archive is malformed."""
    try:
        with _progress(f"verify {archive.name}", "chunks", None, "comparing") as update:
            problems = api.verify(archive, progress=update)
    except (ArchiveError, ConfigError) as exc:
        _fail(str(exc))
    if as_json:
        _print_json({"archive": str(archive), "reproduces": not problems,
                     "problems": problems})
    else:
        for problem in problems:
            _say(("differs:", "bold red"), f" {problem}", console=err)
        if not problems:
            _say(f"{archive}: reproduces bit for bit")
    if problems:
        raise typer.Exit(code=EXIT_DIFFERS)


@app.command()
def report(
    archive: ArchiveArgument,
    out_path: Annotated[Path | None, typer.Option(
        "--out", help="Report file (*.html) or folder (default: <archive>.report/ beside "
                      "the archive).")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Write a self-contained HTML report of an archive (outside it) and print its path."""
    try:
        path = api.write_report(archive, out_path)
    except (ArchiveError, ConfigError) as exc:
        _fail(str(exc))
    if as_json:
        _print_json({"report": str(path)})
    else:
        print(path)


@app.command()
def compare(
    archive: ArchiveArgument,
    first: Annotated[str, typer.Argument(help="Format id.")],
    second: Annotated[str, typer.Argument(help="Format id it is compared with.")],
    confidence: Annotated[float, typer.Option(help="Confidence level of the intervals.",
                                              min=0.5, max=0.999)] = 0.95,
    as_json: JsonFlag = False,
) -> None:
    """Paired differences FIRST - SECOND under common random numbers: over all points, and
    how many points differ significantly (Student-t per point; Benjamini-Hochberg)."""
    try:
        diff = api.compare_formats(archive, first, second, confidence=confidence)
    except (ArchiveError, ConfigError) as exc:
        _fail(str(exc))
    rows = [{"outcome": outcome, "difference": diff.attrs[f"{outcome}_overall"],
             "half_width": float(diff.attrs[f"{outcome}_overall_half_width"]),
             **api.significance_counts(diff, outcome)}
            for outcome in api.COMPARED_OUTCOMES]
    if as_json:
        _print_json({"first": first, "second": second, "confidence": confidence,
                     "outcomes": rows})
        return
    table = Table(box=None, header_style="bold")
    table.add_column("outcome", no_wrap=True)  # a name to pass on: never cut
    for header in (f"{first} - {second}, points", "points lower", "higher",
                   "lower / higher (FDR)"):
        table.add_column(header)
    for r in rows:
        table.add_row(r["outcome"], f"{_number(100 * r['difference'], '+.1f')} ± "
                      f"{_number(100 * r['half_width'], '.1f')}",
                      f"{r['points_lower']} of {r['points']}", str(r["points_higher"]),
                      f"{r['points_lower_fdr']} / {r['points_higher_fdr']}")
    out.print(table)


@app.command()
def discover(
    archive: ArchiveArgument,
    format_ids: FormatIdsOption = None,
    outcome: Annotated[Literal[api.DISCOVERY_OUTCOMES], typer.Option(
        help="A simulated summary (fails above --threshold), or regime_not_deterred.")
    ] = "escalation_frequency",
    threshold: Annotated[float, typer.Option(
        help="A point fails where the outcome's mean over replicates exceeds this.")] = 0.5,
    min_density: Annotated[float, typer.Option(
        help="Density wanted; the box with the most coverage at that density is shown.",
        min=0.01, max=1.0)] = 0.8,
    as_json: JsonFlag = False,
) -> None:
    """Scenario discovery (PRIM): the box of swept parameters where a format fails."""
    try:
        source, results = api.discover(archive, format_ids, outcome, threshold, min_density)
    except (ArchiveError, ConfigError) as exc:
        _fail(str(exc))
    if as_json:
        _print_json({"points": source, "outcome": outcome, "threshold": threshold,
                     "boxes": [{"format": fid, "found": box is not None,
                                **({"limits": box.limits, "coverage": box.coverage,
                                    "density": box.density, "mass": box.mass,
                                    "points": box.cases, "text": box.describe()}
                                   if box is not None else {})}
                               for fid, box in results]})
        return
    _say(f"PRIM over {source}")
    for fid, box in results:
        _say((fid, "bold"), f": {box.describe() if box is not None else 'no point fails'}")


@app.command()
def dashboard(
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1.", min=1, max=65535)] = 8501,
) -> None:
    """Launch the Streamlit dashboard on 127.0.0.1 (usage statistics off)."""
    import os

    try:
        api.require_extra("streamlit", "dashboard", "the dashboard")
    except ConfigError as exc:
        _fail(str(exc))
    if not api.DASHBOARD_APP.is_file():
        _fail(f"{api.DASHBOARD_APP}: the dashboard's script is missing from the installed "
              "package (reinstall it)")
    command = [sys.executable, "-m", "streamlit", "run", str(api.DASHBOARD_APP),
               "--server.address", "127.0.0.1", "--server.port", str(port),
               "--server.headless", "true", "--browser.gatherUsageStats", "false",
               # flags outrank config files and STREAMLIT_* variables: no user setting
               # opens the dashboard's WebSocket to other origins
               "--server.enableCORS", "true", "--server.enableXsrfProtection", "true",
               # a local tool: no "Deploy" button, no developer menu
               "--client.toolbarMode", "minimal",
               # no full garbage collection after every run of the page (a progress bar
               # reruns twice a second): it would hold the GIL the background jobs need
               "--runner.postScriptGC", "false"]
    out.print(f"dashboard: http://127.0.0.1:{port}", highlight=False)
    sys.stdout.flush()
    os.execv(sys.executable, command)  # become Streamlit: signals reach the server itself



def _number(value: float, spec: str) -> str:
    """``value`` formatted by ``spec``; a dash for NaN (e.g. no run escalated)."""
    return format(value, spec) if math.isfinite(value) else "—"


def _mean_ci(values: np.ndarray) -> dict:
    """Mean over runs with a normal-approximation 95% interval (NaN runs left out)."""
    estimate = api.mean_ci(values)
    half = estimate.half_width if np.isfinite(estimate.half_width) else 0.0
    return {"mean": estimate.mean, "ci95": [estimate.mean - half, estimate.mean + half],
            "n": estimate.n}


def _print_brief(results) -> None:
    table = Table(box=None, header_style="bold")
    for header, whole in (("format", True), ("regime", True), ("P(escalate)", True),
                          ("P(response | esc.)", False), ("P(defended | esc.)", False),
                          ("margin", True), ("equilibria", False)):
        table.add_column(header, no_wrap=whole)  # ids and numbers are never cut
    for r in results:
        table.add_row(r.format_id, r.regime, *(value for _, value in _format_numbers(r)))
    out.print(table)
    out.print(SOLVE_NOTE, style="dim", soft_wrap=True)


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
