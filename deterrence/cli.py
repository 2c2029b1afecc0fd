"""Command line: ``deterrence formats``, ``deterrence solve``.

Exit codes: 0 success, 2 bad input (message on stderr, no traceback).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import numpy as np
import typer
from rich.console import Console
from rich.table import Table

from . import api
from .api import FORMATS_DIR, ArchiveError, ConfigError

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Compare security-guarantee formats for Ukraine.")
out = Console()
err = Console(stderr=True)

FormatsDir = Annotated[Path, typer.Option("--formats-dir", help="Folder of format files.")]
JsonFlag = Annotated[bool, typer.Option("--json", help="Machine-readable output (docs/cli.md).")]
ArchiveArgument = Annotated[Path, typer.Argument(help="Archive folder.")]
FormatIdsOption = Annotated[list[str] | None, typer.Option(
    "--format", "-f", help="Format id; repeat for several (default: all).")]


def _fail(message: str) -> None:
    err.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code=2)


@app.command()
def formats(as_json: JsonFlag = False, formats_dir: FormatsDir = FORMATS_DIR) -> None:
    """List the format catalogue."""
    try:
        catalogue = api.load_catalogue(formats_dir)
    except ConfigError as exc:
        _fail(str(exc))
    if as_json:
        print(json.dumps([{"id": f.id, "name": f.name, "description": f.description,
                           "members": f.members} for f in catalogue.values()], indent=2))
        return
    table = Table("id", "name", "what it commits", box=None, header_style="bold")
    for f in catalogue.values():
        table.add_row(f.id, f.name, f.description)
    out.print(table)


@app.command()
def solve(
    scenario: Annotated[Path, typer.Argument(help="Scenario file (TOML).")],
    format_ids: FormatIdsOption = None,
    rationality: Annotated[float | None, typer.Option(
        help="Logit precision for the QRE (default: the scenario's).")] = None,
    brief: Annotated[bool, typer.Option(
        "--brief", help="One line per format instead of every equilibrium.")] = False,
    as_json: JsonFlag = False,
    formats_dir: FormatsDir = FORMATS_DIR,
) -> None:
    """Solve the crisis game exactly under each format: equilibria, regime, stability."""
    try:
        results = api.solve_formats(scenario, format_ids, rationality, formats_dir)
    except ConfigError as exc:
        _fail(str(exc))
    if as_json:
        print(json.dumps({"scenario": str(scenario),
                          "formats": [r.to_dict() for r in results]}, indent=2))
        return
    if brief:
        _print_brief(results)
        return
    for r in results:
        out.print(f"\n[bold]{r.format_name}[/] ({r.format_id}): regime [bold]{r.regime}[/]"
                  f"; members {', '.join(r.members) or 'none'}", highlight=False)
        table = Table("", *(e.kind for e in r.equilibria), box=None, header_style="bold")
        rows = {
            "P(escalate)": [f"{e.escalate_probability:.3f}" for e in r.equilibria],
            "P(Russia succeeds | escalation)": [
                f"{e.russia_success_probability:.3f}" for e in r.equilibria],
            "regime": [e.regime for e in r.equilibria],
            "stability": [e.stability for e in r.equilibria],
            "  largest Re(eigenvalue)": [f"{e.max_real_eigenvalue:+.3g}" for e in r.equilibria],
            "  under dynamics": [e.dynamics for e in r.equilibria],
        }
        for member in r.members:
            rows[f"P(deter) {member}"] = [f"{e.deter_probability[member]:.3f}"
                                          for e in r.equilibria]
        for label, cells in rows.items():
            table.add_row(label, *cells)
        out.print(table)


@app.command()
def run(
    scenario: Annotated[Path, typer.Argument(help="Scenario file (TOML).")],
    format_id: Annotated[str | None, typer.Option(
        "--format", "-f", help="Format id (default: the scenario's).")] = None,
    engine: Annotated[str, typer.Option(help="vector (fast) or mesa (reference).")] = "vector",
    runs: Annotated[int, typer.Option(help="Number of runs.")] = 100,
    steps: Annotated[int, typer.Option(help="Crisis rounds per run.")] = 200,
    seed: Annotated[int | None, typer.Option(help="Root seed (default: the scenario's).")] = None,
    rationality: Annotated[float | None, typer.Option(
        help="Logit precision of all agents (default: the scenario's).")] = None,
    out_dir: Annotated[Path | None, typer.Option(
        "--out", help="New folder for per-round data (simulation.nc) and the config.")] = None,
    as_json: JsonFlag = False,
    formats_dir: FormatsDir = FORMATS_DIR,
) -> None:
    """Simulate repeated crises; print the summary (same seed, same numbers, either engine)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn


    try:
        loaded = api.load_scenario(scenario)
        if out_dir is not None and out_dir.exists():
            raise ConfigError(f"{out_dir}: already exists; choose a new output folder")
        with Progress("{task.description}", BarColumn(), MofNCompleteColumn(),
                      TimeRemainingColumn(), console=err, transient=True,
                      disable=as_json) as bar:
            task = bar.add_task(f"{engine} runs", total=runs)
            sim = api.simulate_scenario(loaded, format_id, engine, runs, steps, seed, rationality,
                                    keep_series=out_dir is not None, formats_dir=formats_dir,
                                    progress=lambda done: bar.update(task, completed=done))
    except ConfigError as exc:
        _fail(str(exc))
    used_format = format_id or loaded.format
    used_seed = loaded.seed if seed is None else seed
    stats = {name: _mean_ci(values) for name, values in sim.summary.items()
             if name != "first_escalation"}
    first = sim.summary["first_escalation"]
    hazard = api.hazard_of_first_escalation(first, steps)
    report = {"scenario": str(scenario), "format": used_format, "engine": engine,
              "runs": runs, "steps": steps, "seed": used_seed,
              "rationality": loaded.analysis.rationality if rationality is None
              else rationality,
              "summary": stats,
              "runs_with_an_escalation": int((first >= 0).sum()),
              "median_first_escalation": (float(np.median(first[first >= 0]))
                                          if (first >= 0).any() else None),
              "hazard_first_10_rounds": [None if np.isnan(h) else float(h)
                                         for h in hazard[:10]]}
    if out_dir is not None:
        dataset = api.simulation_dataset(sim, {k: str(v) for k, v in report.items()
                                               if k != "summary"})
        record = {**report, "scenario_config": loaded.model_dump(mode="json")}
        report["out"] = str(api.write_simulation(out_dir, dataset, record))
    if as_json:
        print(json.dumps(report, indent=2))
        return
    out.print(f"[bold]{used_format}[/], {runs} runs x {steps} rounds, {engine} engine, "
              f"seed {used_seed}", highlight=False)
    table = Table("per run", "mean", "95% CI", "runs counted", box=None, header_style="bold")
    for name, st in stats.items():
        table.add_row(name.replace("_", " "), f"{st['mean']:.4f}",
                      f"[{st['ci95'][0]:.4f}, {st['ci95'][1]:.4f}]", str(st["n"]))
    out.print(table)
    out.print(f"runs with an escalation: {report['runs_with_an_escalation']} of {runs}; "
              f"median first escalation: round {report['median_first_escalation']}",
              highlight=False)
    if out_dir is not None:
        out.print(f"per-round data: {report['out']}/simulation.nc", highlight=False)


ExecutorOption = Annotated[str, typer.Option(help="inprocess, processes or dask.")]
SchedulerOption = Annotated[str | None, typer.Option(
    help="Dask scheduler address, e.g. tcp://host:8786 (with --executor dask).")]
WorkersOption = Annotated[int | None, typer.Option(help="Local workers (default: cores).")]
ArchiveOption = Annotated[Path | None, typer.Option(
    "--out", help="Archive folder (default: results/<name>-<UTC time>).")]
ResumeOption = Annotated[str | None, typer.Option(
    help="Resume the interrupted sweep with this archive id (a folder under results/).")]
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
    with_report: ReportOption = True,
) -> None:
    """Run a sweep; write an archive (and its report) and print the paths (exit 1 if chunks
    failed)."""
    _sweep(sweep_file, None, executor, scheduler, workers, out_dir, resume, with_report)


@app.command()
def sensitivity(
    sweep_file: Annotated[Path, typer.Argument(metavar="SWEEP", help="Sweep file (TOML).")],
    method: Annotated[str | None, typer.Option(
        help="sobol (first-order and total indices) or morris (screening); default: the "
             "file's [sensitivity] table, else sobol.")] = None,
    samples: Annotated[int | None, typer.Option(
        help="Sobol base sample (a power of 2) or Morris trajectories; default: the file's, "
             "else 128 (sobol) or 20 (morris).")] = None,
    levels: Annotated[int | None, typer.Option(help="Morris grid levels (even).")] = None,
    output: Annotated[list[str] | None, typer.Option(
        help="Outcome to analyse (repeat): escalation_frequency, abandoned_frequency, "
             "regime_deterred; default: all.")] = None,
    executor: ExecutorOption = "inprocess",
    scheduler: SchedulerOption = None,
    workers: WorkersOption = None,
    out_dir: ArchiveOption = None,
    resume: ResumeOption = None,
    with_report: ReportOption = True,
) -> None:
    """Run a sweep with a global sensitivity design over its axes' ranges (Sobol or Morris,
    SALib); the archive holds the indices with confidence intervals and a tornado chart."""
    try:
        table = api.read_toml(sweep_file).get("sensitivity", {})
    except ConfigError as exc:
        _fail(str(exc))
    overrides: dict = {k: v for k, v in (("method", method), ("samples", samples),
                                         ("levels", levels)) if v is not None}
    if output:
        overrides["outputs"] = output
    table = table if isinstance(table, dict) else {}  # load_plan names a malformed table
    chosen = method or table.get("method", "sobol")
    # a Sobol base sample and a number of Morris trajectories are not interchangeable
    if samples is None and ("samples" not in table or chosen != table.get("method", "sobol")):
        overrides["samples"] = api.DEFAULT_SAMPLES.get(chosen, api.DEFAULT_SAMPLES["sobol"])
    _sweep(sweep_file, overrides, executor, scheduler, workers, out_dir, resume, with_report)


def _sweep(sweep_file: Path, sensitivity_overrides: dict | None, executor: str,
           scheduler: str | None, workers: int | None, out_dir: Path | None,
           resume: str | None, with_report: bool) -> None:
    from datetime import UTC, datetime

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    try:
        plan = api.load_plan(sweep_file, sensitivity_overrides)
        if resume is not None:
            target = api.RESULTS_DIR / resume if out_dir is None else out_dir
        else:
            stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
            target = out_dir or api.RESULTS_DIR / f"{plan.spec.name}-{stamp}"
    except ConfigError as exc:
        _fail(str(exc))
    again = f"--out {target} --resume {target.name}" if out_dir else f"--resume {target.name}"
    try:
        with Progress("{task.description}", BarColumn(), MofNCompleteColumn(),
                      TimeRemainingColumn(), console=err, transient=True) as bar:
            runs = plan.runs_per_format * len(plan.formats)
            task = bar.add_task(f"{plan.spec.name}: {runs:,} runs x {plan.spec.steps} rounds, "
                                "chunks", total=len(plan.chunks()))
            archive, failures = api.run_sweep(
                plan, target, executor, workers=workers, scheduler=scheduler,
                source=sweep_file, resume=resume is not None,
                progress=lambda done, total: bar.update(task, completed=done, total=total))
    except ConfigError as exc:
        _fail(str(exc))
    except KeyboardInterrupt:
        err.print(f"interrupted: completed chunks are kept; run again with {again}",
                  soft_wrap=True)
        raise
    if failures:
        for failure in failures:
            err.print(f"[bold red]failed:[/] {failure}", highlight=False, soft_wrap=True)
        err.print(f"completed chunks are kept; run again with {again}", soft_wrap=True)
        raise typer.Exit(code=1)
    _print_sweep_summary(archive)
    if plan.sensitivity_points is not None:
        _print_sensitivity_summary(archive)
    out.print(f"archive: {archive}", highlight=False)
    if with_report:
        out.print(f"report:  {api.write_report(archive)}", highlight=False)


def _print_sweep_summary(archive: Path) -> None:
    import xarray as xr

    with xr.open_dataset(archive / "data" / "simulation.nc", engine="scipy") as sim, \
            xr.open_dataset(archive / "data" / "exact.nc", engine="scipy") as exact:
        table = Table("format", "escalation freq.", "P(abandoned | esc.)", "deterred share",
                      "cells deterred (exact)", box=None, header_style="bold")
        for fmt in sim["format"].values:
            one = sim.sel(format=fmt)
            table.add_row(str(fmt), f"{float(one.escalation_frequency.mean()):.3f}",
                          f"{float(one.abandoned_given_escalation.mean(skipna=True)):.3f}",
                          f"{float(one.deterred_share.mean()):.3f}",
                          f"{float((exact.regime.sel(format=fmt) == 0).mean()):.0%}")
        out.print(table)


def _print_sensitivity_summary(archive: Path) -> None:
    import xarray as xr

    with xr.open_dataset(archive / api.INDICES_FILE, engine="scipy") as ind:
        method = str(ind.attrs["method"])
        key = "ST" if method == "sobol" else api.INDICES[method][0]
        table = Table("format", "outcome", "most influential parameter", key, box=None,
                      header_style="bold", title_justify="left",
                      title=f"{method} sensitivity, {int(ind.attrs['design_points'])} design "
                            f"points, ± {ind.attrs['confidence']:.0%} interval")
        for fmt in ind["format"].values:
            for o in ind["output"].values:
                v = ind[key].sel(format=fmt, output=o).values
                c = ind[f"{key}_conf"].sel(format=fmt, output=o).values
                if not np.isfinite(v).any():
                    table.add_row(str(fmt), str(o), "(outcome constant)", "")
                    continue
                i = int(np.nanargmax(v))
                table.add_row(str(fmt), str(o), str(ind["parameter"].values[i]),
                              f"{v[i]:.2f} ± {c[i]:.2f}")
        out.print(table)


@app.command()
def verify(archive: ArchiveArgument) -> None:
    """Re-run an archive; exit 0 if every array reproduces bit for bit, 1 if not, 2 if the
    archive is malformed."""
    try:
        problems = api.verify(archive)
    except (ArchiveError, ConfigError) as exc:
        _fail(str(exc))
    if problems:
        for problem in problems:
            err.print(f"[bold red]differs:[/] {problem}", highlight=False, soft_wrap=True)
        raise typer.Exit(code=1)
    out.print(f"{archive}: reproduces bit for bit", highlight=False)


@app.command()
def report(
    archive: ArchiveArgument,
    out_path: Annotated[Path | None, typer.Option(
        "--out", help="Report file (*.html) or folder (default: <archive>.report/ beside "
                      "the archive).")] = None,
) -> None:
    """Write a self-contained HTML report of an archive (outside it) and print its path."""
    try:
        path = api.write_report(archive, out_path)
    except (ArchiveError, ConfigError) as exc:
        _fail(str(exc))
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
    except ConfigError as exc:
        _fail(str(exc))
    rows = [{"outcome": outcome, "difference": diff.attrs[f"{outcome}_overall"],
             "half_width": float(diff.attrs[f"{outcome}_overall_half_width"]),
             **api.significance_counts(diff, outcome)}
            for outcome in api.COMPARED_OUTCOMES]
    if as_json:
        print(json.dumps({"first": first, "second": second, "confidence": confidence,
                          "outcomes": rows}, indent=2))
        return
    table = Table("outcome", f"{first} - {second}", "points lower", "higher",
                  "lower / higher (FDR)", box=None, header_style="bold")
    for r in rows:
        table.add_row(r["outcome"], f"{100 * r['difference']:+.1f} ± "
                      f"{100 * r['half_width']:.1f} points",
                      f"{r['points_lower']} of {r['points']}", str(r["points_higher"]),
                      f"{r['points_lower_fdr']} / {r['points_higher_fdr']}")
    out.print(table)


@app.command()
def discover(
    archive: ArchiveArgument,
    format_ids: FormatIdsOption = None,
    outcome: Annotated[str, typer.Option(
        help="escalation_frequency, abandoned_given_escalation, deterred_share, "
             "first_escalation or regime_not_deterred.")] = "escalation_frequency",
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
        print(json.dumps({"points": source, "outcome": outcome, "threshold": threshold,
                          "boxes": [{"format": fid, "found": box is not None,
                                     **({"limits": box.limits, "coverage": box.coverage,
                                         "density": box.density, "mass": box.mass,
                                         "points": box.cases, "text": box.describe()}
                                        if box is not None else {})}
                                    for fid, box in results]}, indent=2))
        return
    out.print(f"PRIM over {source}", highlight=False)
    for fid, box in results:
        text = box.describe() if box is not None else "no point fails"
        out.print(f"[bold]{fid}[/]: {text}", highlight=False, soft_wrap=True)


@app.command()
def dashboard(
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1.", min=1, max=65535)] = 8501,
) -> None:
    """Launch the Streamlit dashboard on 127.0.0.1 (usage statistics off)."""
    import os

    app_file = Path(__file__).resolve().parent.parent / "dashboard" / "app.py"
    if not app_file.is_file():
        _fail(f"{app_file}: the dashboard is not there (install the project from its "
              "repository: make demo)")
    command = [sys.executable, "-m", "streamlit", "run", str(app_file),
               "--server.address", "127.0.0.1", "--server.port", str(port),
               "--server.headless", "true", "--browser.gatherUsageStats", "false"]
    out.print(f"dashboard: http://127.0.0.1:{port}", highlight=False)
    sys.stdout.flush()
    os.execv(sys.executable, command)  # become Streamlit: signals reach the server itself


def _mean_ci(values: np.ndarray) -> dict:
    """Mean over runs with a normal-approximation 95% interval (NaN runs left out)."""
    estimate = api.mean_ci(values)
    half = estimate.half_width if np.isfinite(estimate.half_width) else 0.0
    return {"mean": estimate.mean, "ci95": [estimate.mean - half, estimate.mean + half],
            "n": estimate.n}


def _print_brief(results) -> None:
    table = Table("format", "regime", "SPE: P(escalate)", "SPE stability", "QRE: P(escalate)",
                  "QRE: P(success | esc.)", box=None, header_style="bold")
    for r in results:
        spe = [e for e in r.equilibria if "SPE" in e.kind]
        qre = next(e for e in r.equilibria if "QRE" in e.kind)
        escalate = sorted({f"{e.escalate_probability:.2f}" for e in spe})
        stability = sorted({e.stability for e in spe})
        table.add_row(r.format_id, r.regime, " / ".join(escalate), " / ".join(stability),
                      f"{qre.escalate_probability:.3f}", f"{qre.russia_success_probability:.3f}")
    out.print(table)
    out.print("SPE: subgame-perfect equilibria (stability under replicator learning with "
              "readiness costs); QRE: logit equilibrium at the scenario's rationality. "
              "See docs/model.md.", style="dim")


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
