"""A self-contained HTML report of a sweep archive.

The report is written beside the archive (``<archive>.report/index.html`` by default), never
inside it: the archive's manifest lists a checksum of every file, so a file added there would
make ``deterrence verify`` fail. Figures are embedded as PNG; the page loads nothing else.

The page is the Jinja2 template ``templates/report.html`` (package data), rendered with
autoescaping: every value read from the archive, a parameter path or a description in the
plan included, is escaped; only the template's own markup is HTML.
"""

from __future__ import annotations

import base64
import io
import os
import shlex
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only, no display; must precede the pyplot import

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.colors import BoundaryNorm, ListedColormap  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402

from ..archive.read import Archive, load_archive  # noqa: E402
from ..game.config import ConfigError, MissingExtra  # noqa: E402
from ..solve.equilibrium import REGIME_NAMES  # noqa: E402
from ..sweep.datasets import dim_name  # noqa: E402
from ..sweep.spec import Plan  # noqa: E402
from .palette import REGIME_COLOURS  # noqa: E402
from .stats import mean_ci, paired_difference  # noqa: E402

# the regimes in their colours (analysis/palette.py, Okabe & Ito 2008)
REGIME_CMAP = ListedColormap([REGIME_COLOURS[name] for name in REGIME_NAMES])
REGIME_NORM = BoundaryNorm(np.arange(len(REGIME_NAMES) + 1) - 0.5, len(REGIME_NAMES))
VALUE_CMAP = "viridis"
REFERENCE_FORMAT = "nato_lite"


def comparison(sim, exact, reference: str) -> list[dict[str, Any]]:
    """One row per format: the summaries over cells × replicates, the exact solver's share
    of deterred cells and the paired differences against ``reference``."""
    ref = sim.sel(format=reference)
    rows = []
    for fid in map(str, sim["format"].values):
        one = sim.sel(format=fid)
        regime = exact["regime"].sel(format=fid).values
        rows.append({
            "format": fid,
            "escalation": mean_ci(one["escalation_frequency"].values),
            "abandoned": mean_ci(one["abandoned_given_escalation"].values),
            "deterred": mean_ci(one["deterred_share"].values),
            "exact_deterred": (int((regime == 0).sum()), int(regime.size)),
            "d_escalation": paired_difference(one["escalation_frequency"].values,
                                              ref["escalation_frequency"].values),
            "d_abandoned": paired_difference(one["abandoned_given_escalation"].values,
                                             ref["abandoned_given_escalation"].values),
        })
    return rows


# ---------------------------------------------------------------------------------------
# Reading the archive


def reference_format(formats: list[str]) -> str:
    return REFERENCE_FORMAT if REFERENCE_FORMAT in formats else formats[0]


# ---------------------------------------------------------------------------------------
# Figures


def layout(plan: Plan) -> str:
    """How the cells are drawn: ``heatmap`` (2-axis grid), ``line`` (one axis) or
    ``scatter`` (the first two parameters of a larger grid or a sample)."""
    if len(plan.spec.axes) == 1:
        return "line"
    return "heatmap" if plan.grid_shape is not None and len(plan.spec.axes) == 2 else "scatter"


def _ticks(ax, values: np.ndarray, which: str) -> None:
    step = max(1, int(np.ceil(len(values) / 8)))
    positions = np.arange(0, len(values), step)
    labels = [f"{values[i]:.3g}" for i in positions]
    if which == "x":
        ax.set_xticks(positions, labels)
    else:
        ax.set_yticks(positions, labels)


def _format_figure(fid: str, kind: str, plan: Plan, regime: np.ndarray,
                   escalation: np.ndarray, coords: list[np.ndarray]) -> bytes:
    """Exact regime (left) and simulated escalation frequency (right) of one format.

    ``regime`` is per cell, ``escalation`` per cell and replicate, both flat in plan order.
    """
    paths = [a.path for a in plan.spec.axes]
    mean = escalation.mean(axis=1)
    value_label = (f"escalation frequency\n(share of rounds, mean of "
                   f"{escalation.shape[1]} replicates)")
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.3), constrained_layout=True)
    left.set_title(f"{fid}: exact regime")
    right.set_title(f"{fid}: simulated escalation frequency")
    if kind == "heatmap":
        shape = plan.grid_shape
        for ax, values, style in ((left, regime, {"cmap": REGIME_CMAP, "norm": REGIME_NORM}),
                                  (right, mean, {"cmap": VALUE_CMAP, "vmin": 0, "vmax": 1})):
            image = ax.imshow(values.reshape(shape).T, origin="lower", aspect="auto",
                              interpolation="nearest", **style)
            _ticks(ax, coords[0], "x")
            _ticks(ax, coords[1], "y")
        fig.colorbar(image, ax=right, label=value_label)
    elif kind == "line":
        x = plan.points[:, 0]
        order = np.argsort(x, kind="stable")
        left.scatter(x, regime, c=regime, cmap=REGIME_CMAP, norm=REGIME_NORM, marker="s",
                     s=60)
        left.set_yticks(range(len(REGIME_NAMES)), REGIME_NAMES)
        left.set_ylim(-0.5, len(REGIME_NAMES) - 0.5)
        right.scatter(np.repeat(x, escalation.shape[1]), escalation.ravel(), s=10,
                      color="0.6", label="one replicate")
        right.plot(x[order], mean[order], marker="o", color=plt.get_cmap(VALUE_CMAP)(0.25),
                   label="mean over replicates")
        right.set_ylim(-0.02, 1.02)
        right.set_ylabel(value_label)
        right.legend(loc="best", frameon=False)
    else:
        x, y = plan.points[:, 0], plan.points[:, 1]
        size = float(np.clip(4000 / len(x), 8, 60))
        left.scatter(x, y, c=regime, cmap=REGIME_CMAP, norm=REGIME_NORM, s=size)
        dots = right.scatter(x, y, c=mean, cmap=VALUE_CMAP, vmin=0, vmax=1, s=size)
        fig.colorbar(dots, ax=right, label=value_label)
    for ax in (left, right):
        ax.set_xlabel(paths[0])
        if kind != "line":
            ax.set_ylabel(paths[1])
    left.legend(handles=[Patch(color=REGIME_COLOURS[n], label=n) for n in REGIME_NAMES],
                title="regime", loc="upper left", bbox_to_anchor=(1.01, 1), frameon=False)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90)
    plt.close(fig)
    return buffer.getvalue()


# ---------------------------------------------------------------------------------------
# The page: each section's values, rendered by templates/report.html


def _template():
    import jinja2

    environment = jinja2.Environment(
        loader=jinja2.PackageLoader("deterrence.analysis", "templates"),
        autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True,
        lstrip_blocks=True, keep_trailing_newline=True)
    return environment.get_template("report.html")


def _provenance(a: Archive) -> dict[str, Any]:
    m, spec = a.manifest, a.plan.spec
    code = m.get("code") or {}
    system = m.get("platform") or {}
    packages = ", ".join(f"{k} {v}" for k, v in sorted((m.get("packages") or {}).items()))
    return {
        "archive": str(a.path.resolve()), "scenario": a.plan.scenario.name,
        "started": m.get("started", "?"), "finished": m.get("finished", "?"),
        "commit": code.get("git_commit") or "unknown",
        "tree": {True: "uncommitted changes in deterrence/ or configs/",
                 False: "clean working tree"}.get(code.get("git_dirty"), "state unknown"),
        "packages": packages or "not recorded",
        "platform": f"Python {system.get('python', '?')}, {system.get('system', '?')}",
        "seed": m.get("seed", a.plan.seed), "random_key": m.get("random_key", "?"),
        "runs": m.get("runs", "?"), "executor": m.get("executor", "?"),
        "design": f"{spec.method}, axes: " + ", ".join(x.path for x in spec.axes),
        "problems": a.problems, "files": len(m["files"]),
    }


def _reproduce(a: Archive, out_hint: Path) -> dict[str, Any]:
    commit = (a.manifest.get("code") or {}).get("git_commit")
    archive = shlex.quote(str(a.path.resolve()))
    lines = []
    if commit:
        lines.append(f"git checkout {commit}   # the code that made the archive")
    lines.append(f"deterrence verify {archive}")
    toml = a.path / "config" / "sweep.toml"
    runnable = toml.is_file() and (toml.parent / a.plan.spec.scenario).is_file()
    sweep_file = shlex.quote(str(toml.resolve())) if runnable else "SWEEP_FILE.toml"
    sens = a.plan.spec.sensitivity
    if sens is None:
        lines.append(f"deterrence sweep {sweep_file} --out {shlex.quote(str(out_hint))}")
    else:  # the design may have been set on the command line, not in the file
        options = f"--method {sens.method} --samples {sens.samples}"
        if sens.method == "morris":
            options += f" --levels {sens.levels}"
        options += "".join(f" --output {o}" for o in sens.outputs)
        lines.append(f"deterrence sensitivity {sweep_file} {options} "
                     f"--out {shlex.quote(str(out_hint))}")
    return {"commands": "\n".join(lines), "runnable": runnable,
            "scenario": a.plan.spec.scenario}


def _comparison(a: Archive, reference: str) -> list[dict[str, Any]]:
    rows = []
    for r in comparison(a.sim, a.exact, reference):
        k, n = r["exact_deterred"]
        deltas = None if r["format"] == reference else [
            {"text": d.text(signed=True), "n": d.n, "bold": d.excludes_zero}
            for d in (r["d_escalation"], r["d_abandoned"])]
        rows.append({"format": r["format"], "name": a.plan.formats[r["format"]].name,
                     "escalation": r["escalation"].text(),
                     "abandoned": r["abandoned"].text(), "abandoned_n": r["abandoned"].n,
                     "deterred": r["deterred"].text(),
                     "exact_deterred": f"{k} of {n} ({k / n:.0%})", "deltas": deltas})
    return rows


def _maps(a: Archive) -> list[dict[str, Any]]:
    kind = layout(a.plan)
    dims = [dim_name(x.path) for x in a.plan.spec.axes] if a.plan.grid_shape is not None \
        else []
    coords = [np.asarray(a.sim[d].values) for d in dims]
    maps = []
    for fid in a.plan.formats:
        regime = a.exact["regime"].sel(format=fid).values.reshape(-1)
        escalation = a.sim["escalation_frequency"].sel(format=fid).values.reshape(
            a.plan.cells, a.plan.spec.replicates)
        png = _format_figure(fid, kind, a.plan, regime, escalation, coords)
        mean = escalation.mean(axis=1)
        maps.append({
            "format": fid, "name": a.plan.formats[fid].name,
            "png": base64.b64encode(png).decode("ascii"),
            "regimes": ", ".join(f"{int((regime == i).sum())} {name}"
                                 for i, name in enumerate(REGIME_NAMES)
                                 if (regime == i).any()),
            "cells": regime.size, "low": f"{mean.min():.3f}", "high": f"{mean.max():.3f}"})
    return maps


def _png(fig) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90)
    plt.close(fig)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _difference_figure(a: Archive, diffs: dict[str, Any], reference: str) -> str:
    """Per-point paired difference in escalation frequency of each format against the
    reference (diverging colours, 0 white); points significant after Benjamini-Hochberg
    are marked with a dot."""
    kind = layout(a.plan)
    n = len(diffs)
    cols = min(n, 3)
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.3 * cols, 3.5 * rows), squeeze=False,
                             constrained_layout=True)
    top = max(max(float(np.nanmax(np.abs(d.escalation_frequency.values)))
                  for d in diffs.values()), 1e-9)
    style = {"cmap": "RdBu_r", "vmin": -top, "vmax": top}
    paths = [x.path for x in a.plan.spec.axes]
    image = None
    for ax, (fid, d) in zip(axes.ravel(), diffs.items(), strict=False):
        mean = d.escalation_frequency.values.reshape(-1)
        marked = d.escalation_frequency_significant_fdr.values.reshape(-1).astype(bool)
        ax.set_title(f"{fid} − {reference}", fontsize=10)
        if kind == "heatmap":
            shape = a.plan.grid_shape
            image = ax.imshow(mean.reshape(shape).T, origin="lower", aspect="auto",
                              interpolation="nearest", **style)
            i, j = np.unravel_index(np.flatnonzero(marked), shape)
            ax.scatter(i, j, s=8, color="black")
            coords = [np.asarray(a.sim[dim_name(p)].values) for p in paths]
            _ticks(ax, coords[0], "x")
            _ticks(ax, coords[1], "y")
        elif kind == "line":
            x = a.plan.points[:, 0]
            half = d.escalation_frequency_half_width.values.reshape(-1)
            ax.errorbar(x, mean, yerr=np.nan_to_num(half), fmt="o", color="0.3", ms=3)
            ax.axhline(0, color="0.6", linewidth=0.8)
            ax.scatter(x[marked], mean[marked], color="black", s=14, zorder=3)
        else:
            x, y = a.plan.points[:, 0], a.plan.points[:, 1]
            size = float(np.clip(3000 / len(x), 6, 50))
            image = ax.scatter(x, y, c=mean, s=size, **style)
            ax.scatter(x[marked], y[marked], s=3, color="black")
        ax.set_xlabel(paths[0], fontsize=8)
        if kind != "line":
            ax.set_ylabel(paths[1], fontsize=8)
    for ax in axes.ravel()[n:]:
        ax.set_visible(False)
    if image is not None:
        fig.colorbar(image, ax=axes, shrink=0.8,
                     label=f"difference in escalation frequency (format − {reference})")
    return _png(fig)


def _paired(a: Archive, reference: str) -> dict[str, Any] | None:
    from .compare import compare_formats, significance_counts

    others = [f for f in a.plan.formats if f != reference]
    if not others:
        return None
    diffs = {fid: compare_formats(a.sim, fid, reference) for fid in others}
    points = a.plan.cells
    rows = []
    for fid, d in diffs.items():
        mean = d.escalation_frequency.values.reshape(-1)
        half = d.escalation_frequency_half_width.values.reshape(-1)
        counts = significance_counts(d, "escalation_frequency")
        lower, higher = counts["points_lower"], counts["points_higher"]
        i = int(np.nanargmax(np.abs(mean))) if np.isfinite(mean).any() else 0
        where = ", ".join(f"{p} = {a.plan.points[i, j]:.3g}"
                          for j, p in enumerate(x.path for x in a.plan.spec.axes))
        overall = d.attrs["escalation_frequency_overall"]
        overall_half = d.attrs["escalation_frequency_overall_half_width"]
        rows.append({
            "format": fid, "overall": f"{100 * overall:+.1f} ± {100 * overall_half:.1f}",
            "lower": lower, "same": points - lower - higher, "higher": higher,
            "fdr": f"{counts['points_lower_fdr']} / {counts['points_higher_fdr']}",
            "largest": f"{100 * mean[i]:+.1f} ± {100 * half[i]:.1f} points at {where}"})
    return {"rows": rows, "png": _difference_figure(a, diffs, reference)}


def _sensitivity(a: Archive) -> dict[str, Any] | None:
    ind = a.sensitivity
    if ind is None:
        return None
    method = str(ind.attrs["method"])
    wide, narrow = ("ST", "S1") if method == "sobol" else ("mu_star", "sigma")
    names = [str(p) for p in ind["parameter"].values]
    rows = []
    for fid in map(str, ind["format"].values):
        for output in map(str, ind["output"].values):
            one = ind.sel(format=fid, output=output)
            cells = None
            if np.isfinite(one[wide].values).any():
                best = int(np.nanargmax(one[wide].values))
                cells = [{"bold": k == best, "wide": f"{one[wide].values[k]:.2f}",
                          "conf": f"{one[f'{wide}_conf'].values[k]:.2f}",
                          "narrow": f"{one[narrow].values[k]:.2f}"} for k in range(len(names))]
            rows.append({"format": fid, "output": output, "cells": cells})
    ranges = ", ".join(f"{n} in [{lo:.3g}, {hi:.3g}]" for n, lo, hi in
                       zip(names, ind["low"].values, ind["high"].values, strict=True))
    return {"method": method, "wide": wide, "narrow": narrow, "names": names, "rows": rows,
            "points": int(ind.attrs["design_points"]),
            "confidence": f"{float(ind.attrs['confidence']):.0%}",
            "resamples": int(ind.attrs["resamples"]), "ranges": ranges,
            "png": base64.b64encode(a.sensitivity_figure).decode("ascii")}


#: Failure in the scenario-discovery section: escalation in more than half the rounds.
DISCOVERY_THRESHOLD = 0.5


def discovery_data(a: Archive) -> tuple[Any, Any, str]:
    """The points PRIM looks at: the sensitivity design when there is one with more points
    than the sweep's own cells (a space-filling sample), else the sweep's cells."""
    if a.design is not None and a.design.sizes["sample"] > a.plan.cells:
        return a.design, a.design, (f"the {a.design.sizes['sample']} points of the "
                                    f"sensitivity design")
    return a.sim, a.exact, f"the sweep's {a.plan.cells} cells"


def _discovery(a: Archive) -> dict[str, Any]:
    from .discovery import REGIME_OUTCOME, find_failure_box

    sim, exact, source = discovery_data(a)
    rows = []
    for fid in a.plan.formats:
        cells = []
        for outcome in ("escalation_frequency", REGIME_OUTCOME):
            try:
                box = find_failure_box(sim, exact, fid, outcome, DISCOVERY_THRESHOLD)
            except MissingExtra as exc:  # the section needs ema_workbench; the rest does not
                return {"missing": str(exc), "rows": [], "source": source,
                        "threshold": f"{DISCOVERY_THRESHOLD:g}"}
            except ValueError as exc:  # e.g. too few points
                cells.append(f"not analysed: {exc}")
                continue
            cells.append("no point fails" if box is None else box.describe())
        rows.append({"format": fid, "cells": cells})
    return {"missing": None, "rows": rows, "source": source,
            "threshold": f"{DISCOVERY_THRESHOLD:g}"}


def render(a: Archive, out_hint: Path) -> str:
    """The report page of a loaded archive."""
    reference = reference_format(list(a.plan.formats))
    spec = a.plan.spec
    paths = [x.path for x in spec.axes]
    return _template().render(
        title=f"Sweep report: {spec.name}", spec=spec, plan=a.plan, reference=reference,
        kind=layout(a.plan), paths=paths, rest=", ".join(paths[2:]),
        provenance=_provenance(a), reproduce=_reproduce(a, out_hint),
        comparison=_comparison(a, reference), paired=_paired(a, reference),
        sensitivity=_sensitivity(a), discovery=_discovery(a), maps=_maps(a),
        config_source=a.config_source, config_text=a.config_text,
        written=datetime.now(UTC).isoformat(timespec="seconds"))


# ---------------------------------------------------------------------------------------
# Writing


def default_location(archive: Path) -> Path:
    archive = archive.resolve()
    return archive.parent / f"{archive.name}.report" / "index.html"


def report_path(archive: Path, out: str | Path | None = None) -> Path:
    """Where the report goes: ``out`` if it names an .html file, ``out/index.html`` for a
    folder, else ``<archive>.report/index.html`` beside the archive."""
    if out is None:
        target = default_location(archive)
    else:
        out = Path(out).resolve()
        is_file = out.suffix.lower() in (".html", ".htm") and not out.is_dir()
        target = out if is_file else out / "index.html"
    if target.is_relative_to(archive.resolve()):
        raise ConfigError(f"{target}: inside the archive, whose manifest would then list an "
                          "unknown file (verify fails); write the report elsewhere")
    return target


def _write_atomically(target: Path, text: str) -> None:
    folder = target.parent
    if folder.is_dir():  # replace the file: temporary file beside it, then rename
        temporary = folder / f".{target.name}.{os.getpid()}.partial"
        try:
            temporary.write_text(text, encoding="utf-8")
            os.replace(temporary, target)
        finally:
            temporary.unlink(missing_ok=True)
        return
    folder.parent.mkdir(parents=True, exist_ok=True)  # new folder: fill a temporary one
    staging = folder.parent / f".{folder.name}.{os.getpid()}.partial"
    try:
        staging.mkdir()
        (staging / target.name).write_text(text, encoding="utf-8")
        os.rename(staging, folder)
    finally:
        if staging.exists():
            (staging / target.name).unlink(missing_ok=True)
            staging.rmdir()


def write_report(archive: str | Path, out: str | Path | None = None) -> Path:
    """Write the HTML report of ``archive`` (beside it by default; see report_path) and
    return its path. Raises ArchiveError for a malformed archive, ConfigError for an output
    inside it or one that cannot be written."""
    archive = Path(archive)
    loaded = load_archive(archive)
    target = report_path(archive, out)
    rerun = archive.resolve().parent / f"{archive.resolve().name}-rerun"
    page = render(loaded, rerun)
    try:
        _write_atomically(target, page)
    except OSError as exc:
        raise ConfigError(f"{target}: cannot write the report ({exc})") from None
    return target
