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
from matplotlib.cm import ScalarMappable  # noqa: E402
from matplotlib.colors import BoundaryNorm, ListedColormap, Normalize  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402

from ..archive.read import Archive, load_archive  # noqa: E402
from ..game.config import ConfigError, MissingExtra  # noqa: E402
from ..solve.equilibrium import REGIME_NAMES  # noqa: E402
from ..sweep.datasets import dim_name  # noqa: E402
from ..sweep.spec import Plan  # noqa: E402
from .palette import OKABE_ITO, REGIME_COLOURS  # noqa: E402
from .stability import stability  # noqa: E402
from .stats import mean_ci, paired_difference  # noqa: E402

# the regimes in their colours (analysis/palette.py, Okabe & Ito 2008)
REGIME_CMAP = ListedColormap([REGIME_COLOURS[name] for name in REGIME_NAMES])
REGIME_NORM = BoundaryNorm(np.arange(len(REGIME_NAMES) + 1) - 0.5, len(REGIME_NAMES))
VALUE_CMAP = "viridis"
REFERENCE_FORMAT = "nato_lite"


def comparison(sim, exact, reference: str) -> list[dict[str, Any]]:
    """One row per format: the summaries over cells × replicates, the exact solver's share
    of deterred cells and mean P(escalate), and the paired differences against
    ``reference``."""
    ref = sim.sel(format=reference)
    rows = []
    for fid in map(str, sim["format"].values):
        one = sim.sel(format=fid)
        regime = exact["regime"].sel(format=fid).values
        rows.append({
            "exact_escalation": float(exact["escalation_probability"].sel(format=fid).mean()),
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


#: The report's maps, in order: (variable, title); each is one figure with a panel per
#: format on one colour scale. All but the last are the exact solver's (data/exact.nc);
#: the last is the simulations' (data/simulation.nc, the mean over the replicates).
EXACT_MAPS = (
    ("regime", "exact regime"),
    ("escalation_probability", "P(Russia escalates)"),
    ("response_probability", "P(at least one member honours | escalation)"),
    ("defended_probability", "P(the offensive fails | escalation)"),
    ("mean_credibility", "mean credibility of the members: P(member honours | escalation)"),
    ("equilibrium_count", "number of Bayesian equilibria of the members' subgame"),
)
SIMULATED_MAP = ("escalation_frequency", "simulated escalation frequency")
#: The stability section's maps (analysis/stability.py), in order: (variable, title).
STABILITY_MAPS = (
    ("erosion_years", "erosion time: median years until the first escalation"),
    ("ongoing_deterred_share", "share of runs deterred throughout (never escalated)"),
    ("defeated_share", "share of runs ending with Ukraine defeated"),
    ("settled_share", "share of runs ending in a settlement"),
)
#: Colour of a missing value on a map with a scale of its own (an erosion time not
#: reached within the horizon).
MISSING_COLOUR = "0.8"
#: Panels per row of a map figure.
PANELS_PER_ROW = 4
#: Colours of the formats' lines where one axis is swept: Okabe & Ito (2008) without the
#: yellow, which is hard to see on white, then grey.
LINE_COLOURS = (*(c for c in OKABE_ITO if c != "#F0E442"), "#999999")


def _count_style(counts: list[np.ndarray]) -> tuple[ListedColormap, BoundaryNorm, int]:
    """One discrete colour per number of equilibria, 1 to the most found anywhere."""
    top = max(2, max(int(np.nanmax(c)) for c in counts))
    cmap = ListedColormap(plt.get_cmap(VALUE_CMAP)(np.linspace(0, 1, top)))
    return cmap, BoundaryNorm(np.arange(0.5, top + 1.5), top), top


def _map_figure(kind: str, plan: Plan, coords: list[np.ndarray], variable: str, title: str,
                values: dict[str, np.ndarray], marks: dict[str, np.ndarray] | None = None,
                replicates: dict[str, np.ndarray] | None = None,
                scale: tuple[Normalize, str] | None = None,
                missing: str = "no members") -> bytes:
    """One quantity of every format on one colour scale: a panel per format (a heatmap of a
    2-axis grid, a scatter of the first two parameters otherwise), or, along one axis, a
    line per format (a strip per format for the regime).

    ``values`` are per cell, flat in plan order; ``marks`` flags cells drawn with a cross
    (sets not proven complete); ``replicates`` (cells, replicates) adds single runs.
    ``scale`` (norm, colour bar label) replaces the probability scale 0 to 1; missing cells
    are drawn in :data:`MISSING_COLOUR`, and a panel with none says ``missing``."""
    paths = [a.path for a in plan.spec.axes]
    formats = list(values)
    regime = variable == "regime"
    if regime:
        cmap, norm, label = REGIME_CMAP, REGIME_NORM, None
    elif variable == "equilibrium_count":
        cmap, norm, top = _count_style(list(values.values()))
        label = "equilibria"
    elif scale is not None:
        cmap, (norm, label) = plt.get_cmap(VALUE_CMAP).with_extremes(bad=MISSING_COLOUR), scale
    else:
        cmap, norm = plt.get_cmap(VALUE_CMAP), Normalize(0.0, 1.0)
        label = "probability" if variable != SIMULATED_MAP[0] else "share of rounds"
    if kind == "line":
        fig, ax = plt.subplots(figsize=(9, 1.2 + (0.45 * len(formats) if regime else 3.2)),
                               constrained_layout=True)
        x = plan.points[:, 0]
        order = np.argsort(x, kind="stable")
        for k, fid in enumerate(formats):
            colour = LINE_COLOURS[k % len(LINE_COLOURS)]
            if regime:
                ax.scatter(x, np.full(x.size, k), c=values[fid], cmap=cmap, norm=norm,
                           marker="s", s=70)
                continue
            if replicates is not None:
                runs = replicates[fid]
                ax.scatter(np.repeat(x, runs.shape[1]), runs.ravel(), s=8, color=colour,
                           alpha=0.35)
            ax.plot(x[order], values[fid][order], marker="o", color=colour, label=fid)
            if marks is not None and marks[fid].any():
                ax.scatter(x[marks[fid]], values[fid][marks[fid]], marker="x", s=60,
                           color="black", zorder=3)
        if regime:
            ax.set_yticks(range(len(formats)), formats)
            ax.set_ylim(len(formats) - 0.5, -0.5)  # the first format on top
        else:
            ax.set_ylim(norm.vmin - 0.02 * (norm.vmax - norm.vmin),
                        norm.vmax + 0.02 * (norm.vmax - norm.vmin))
            ax.set_ylabel(label)
            ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), frameon=False)
        ax.set_xlabel(paths[0])
        ax.set_title(title)
        axes = [ax]
    else:
        cols = min(len(formats), PANELS_PER_ROW)
        rows = -(-len(formats) // cols)
        fig, grid = plt.subplots(rows, cols, figsize=(3.3 * cols + 1.6, 3.0 * rows + 0.5),
                                 squeeze=False, constrained_layout=True)
        axes = list(grid.ravel())
        for ax, fid in zip(axes, formats, strict=False):
            cell = values[fid]
            ax.set_title(fid, fontsize=10)
            if kind == "heatmap":
                ax.imshow(cell.reshape(plan.grid_shape).T, origin="lower", aspect="auto",
                          interpolation="nearest", cmap=cmap, norm=norm)
                _ticks(ax, coords[0], "x")
                _ticks(ax, coords[1], "y")
                where = np.unravel_index(np.arange(cell.size), plan.grid_shape)
            else:
                size = float(np.clip(3000 / cell.size, 6, 50))
                ax.scatter(plan.points[:, 0], plan.points[:, 1], c=cell, cmap=cmap, norm=norm,
                           s=size, plotnonfinite=True)
                where = (plan.points[:, 0], plan.points[:, 1])
            if marks is not None and marks[fid].any():
                ax.scatter(where[0][marks[fid]], where[1][marks[fid]], marker="x", s=30,
                           color="black")
            if not np.isfinite(cell).any():
                ax.text(0.5, 0.5, missing, ha="center", va="center",
                        transform=ax.transAxes, color="0.25")
            ax.set_xlabel(paths[0], fontsize=8)
            ax.set_ylabel(paths[1], fontsize=8)
        for ax in axes[len(formats):]:
            ax.set_visible(False)
        fig.suptitle(title, fontsize=11, x=0.01, ha="left")
        if not regime:
            bar = fig.colorbar(ScalarMappable(norm, cmap), ax=grid, shrink=0.8, label=label)
            if variable == "equilibrium_count":
                bar.set_ticks(range(1, top + 1))
    if regime:
        axes[-1].figure.legend(
            handles=[Patch(color=REGIME_COLOURS[n], label=n) for n in REGIME_NAMES],
            title="regime", loc="outside right upper", frameon=False)
    return _png_bytes(fig)


def _png_bytes(fig) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90, metadata={"Software": None})
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
    spec = a.plan.spec
    if spec.method == "prior" and not toml.is_file():  # a study of a scenario file
        formats = "".join(f" --format {f}" for f in a.plan.formats)
        lines.append(f"deterrence uncertainty {shlex.quote(spec.scenario)}{formats} "
                     f"--samples {spec.samples} --voi-samples {sens.samples if sens else 0} "
                     f"--replicates {spec.replicates} --steps {spec.steps} --seed "
                     f"{a.plan.seed} --out {shlex.quote(str(out_hint))}")
        return {"commands": "\n".join(lines), "runnable": True, "scenario": spec.scenario}
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
                     "exact_deterred": f"{k} of {n} ({k / n:.0%})",
                     "exact_escalation": f"{r['exact_escalation']:.3f}", "deltas": deltas})
    return rows


def _flat(dataset, variable: str, fid: str) -> np.ndarray:
    """A variable of one format, flat over the points in plan order."""
    return np.asarray(dataset[variable].sel(format=fid).values, dtype=np.float64).reshape(-1)


def _maps(a: Archive) -> list[dict[str, Any]]:
    """The figures of the maps section, one per quantity, each with its own caption's
    numbers."""
    kind = layout(a.plan)
    dims = [dim_name(x.path) for x in a.plan.spec.axes] if a.plan.grid_shape is not None \
        else []
    coords = [np.asarray(a.exact[d].values) for d in dims]
    formats = list(a.plan.formats)
    incomplete = {fid: _flat(a.exact, "equilibrium_set_complete", fid) == 0
                  for fid in formats}
    maps = []
    for variable, title in EXACT_MAPS:
        values = {fid: _flat(a.exact, variable, fid) for fid in formats}
        marks = incomplete if variable == "equilibrium_count" else None
        png = _map_figure(kind, a.plan, coords, variable, title, values, marks)
        if variable == "regime":
            summary = "; ".join(
                f"{fid}: " + ", ".join(f"{int((v == i).sum())} {name}"
                                       for i, name in enumerate(REGIME_NAMES)
                                       if (v == i).any()) for fid, v in values.items())
        else:
            summary = "; ".join(
                f"{fid}: {np.nanmin(v):.3g} to {np.nanmax(v):.3g}" if np.isfinite(v).any()
                else f"{fid}: none (no members)" for fid, v in values.items())
        maps.append({"id": variable, "title": title, "summary": summary,
                     "png": base64.b64encode(png).decode("ascii")})
    variable, title = SIMULATED_MAP
    runs = {fid: a.sim[variable].sel(format=fid).values.reshape(a.plan.cells,
                                                                  a.plan.spec.replicates)
            for fid in formats}
    means = {fid: r.mean(axis=1) for fid, r in runs.items()}
    title = f"{title} (share of rounds, mean of {a.plan.spec.replicates} replicates)"
    png = _map_figure(kind, a.plan, coords, variable, title, means, replicates=runs)
    maps.append({"id": variable, "title": title,
                 "summary": "; ".join(f"{fid}: {m.min():.3f} to {m.max():.3f}"
                                      for fid, m in means.items()),
                 "png": base64.b64encode(png).decode("ascii")})
    return maps


def _stability(a: Archive) -> dict[str, Any]:
    """The erosion time and the end-state shares per format: a table over the points and
    a map per quantity, on one scale per quantity (the erosion time from 0 to the
    horizon)."""
    try:
        st = stability(a.sim, a.plan.spec.steps, a.plan.scenario.dynamics.round_months)
    except ValueError as exc:  # an archive without the summaries of how runs end
        return {"missing": str(exc), "rows": [], "maps": []}
    kind = layout(a.plan)
    dims = [dim_name(x.path) for x in a.plan.spec.axes] if a.plan.grid_shape is not None \
        else []
    coords = [np.asarray(a.sim[d].values) for d in dims]
    formats = list(a.plan.formats)
    horizon = float(st.attrs["horizon_years"])
    rows = []
    for fid in formats:
        years = _flat(st, "erosion_years", fid)
        reached = np.isfinite(years)
        erosion = (f"{np.nanmin(years):.3g} to {np.nanmax(years):.3g}" if reached.any()
                   else "not reached")
        rows.append({"format": fid, "reached": f"{int(reached.sum())} of {years.size}",
                     "erosion": erosion,
                     "shares": [f"{np.mean(_flat(st, name, fid)):.3f}"
                                for name in ("ongoing_deterred_share",
                                             "ongoing_escalated_share", "defeated_share",
                                             "settled_share")]})
    maps = []
    for variable, title in STABILITY_MAPS:
        values = {fid: _flat(st, variable, fid) for fid in formats}
        erosion = variable == "erosion_years"
        scale = ((Normalize(0.0, horizon), "years") if erosion
                 else (Normalize(0.0, 1.0), "share of runs"))
        png = _map_figure(kind, a.plan, coords, variable, title, values, scale=scale,
                          missing="not reached" if erosion else "no runs")
        summary = "; ".join(
            f"{fid}: {np.nanmin(v):.3g} to {np.nanmax(v):.3g}" if np.isfinite(v).any()
            else f"{fid}: not reached" for fid, v in values.items())
        maps.append({"id": variable, "title": title, "summary": summary,
                     "png": base64.b64encode(png).decode("ascii")})
    return {"missing": None, "rows": rows, "maps": maps, "horizon": f"{horizon:.3g}",
            "steps": a.plan.spec.steps, "replicates": a.plan.spec.replicates,
            "confidence": f"{float(st.attrs['confidence']):.0%}"}


def _where(plan: Plan, flags: np.ndarray) -> str:
    """The range of every swept parameter over the flagged points, in words."""
    if not flags.any():
        return "nowhere"
    return ", ".join(f"{x.path} {plan.points[flags, j].min():.3g} to "
                     f"{plan.points[flags, j].max():.3g}"
                     for j, x in enumerate(plan.spec.axes))


def _multiplicity(a: Archive) -> list[dict[str, Any]]:
    """Per format: where the members' subgame has several equilibria, where the equilibria
    disagree on the regime, and where the set is not proven complete."""
    mixed = REGIME_NAMES.index("mixed")
    rows = []
    for fid in a.plan.formats:
        count = _flat(a.exact, "equilibrium_count", fid)
        several = count > 1
        incomplete = _flat(a.exact, "equilibrium_set_complete", fid) == 0
        spread = (_flat(a.exact, "escalation_probability_max", fid)
                  - _flat(a.exact, "escalation_probability_min", fid))
        widest = int(np.argmax(spread))
        rows.append({
            "format": fid, "points": count.size, "several": int(several.sum()),
            "most": int(count.max()), "where_several": _where(a.plan, several),
            "mixed": int((_flat(a.exact, "regime", fid) == mixed).sum()),
            "spread": (f"{spread[widest]:.3f} at " + ", ".join(
                f"{x.path} = {a.plan.points[widest, j]:.3g}"
                for j, x in enumerate(a.plan.spec.axes))) if spread[widest] > 0 else "0",
            "incomplete": int(incomplete.sum()), "where_incomplete": _where(a.plan,
                                                                            incomplete)})
    return rows


def _png(fig) -> str:
    return base64.b64encode(_png_bytes(fig)).decode("ascii")


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


def _uncertainty(a: Archive, reference: str) -> dict[str, Any] | None:
    """The answer of each format under the joint prior (a prior sweep's archive)."""
    from .uncertainty import archive_paired, archive_table

    plan = a.plan
    if plan.spec.method != "prior":
        return None

    def interval(row, name, signed=False):
        sign = "+" if signed else ""
        return (f"{row[name]:{sign}.3f} [{row[name + '_low']:{sign}.3f}, "
                f"{row[name + '_high']:{sign}.3f}]")

    table = archive_table(plan, a.exact, a.sim)
    rows = [{"format": fid, "p_deterred": interval(r, "p_deterred"),
             "spread": f"{r['p_deterred_q05']:.3f} to {r['p_deterred_q95']:.3f}",
             "holds": interval(r, "holds"),
             "defended": interval(r, "p_defended_given_escalation"),
             "unattacked": interval(r, "unattacked")} for fid, r in table.iterrows()]
    paired = []
    if len(plan.formats) > 1:
        for fid, r in archive_paired(plan, a.exact, reference).iterrows():
            paired.append({"format": fid, "p_deterred": interval(r, "p_deterred_difference",
                                                                 True),
                           "holds": interval(r, "holds_difference", True)})
    priors = []
    for path in (x.path for x in plan.spec.axes):
        givers = [("scenario", plan.scenario.prior.get(path))] + [
            (fid, f.prior.get(path)) for fid, f in plan.formats.items()]
        for who, dist in givers:
            if dist is not None:
                keys = ", ".join(f"{k} = {v:g}" for k, v in dist.model_dump(
                    exclude_none=True).items() if k not in ("distribution", "source"))
                priors.append({"path": path, "where": who, "distribution":
                               f"{dist.distribution} ({keys})", "source": dist.source})
    return {"rows": rows, "paired": paired, "priors": priors, "samples": plan.cells,
            "maps": _prior_maps(a), "voi": _value_of_information(a)}


#: The outcome whose variance the value-of-information chart splits: the deterred regime.
VOI_OUTPUT = "regime_deterred"


def _value_of_information(a: Archive) -> str | None:
    """A chart of each uncertain parameter's total Sobol index on the deterred regime, per
    format (formats whose regime does not vary over the design are left out): None without
    a Sobol design."""
    ind = a.sensitivity
    if ind is None or str(ind.attrs["method"]) != "sobol" or VOI_OUTPUT not in list(
            map(str, ind["output"].values)):
        return None
    names = [str(p) for p in ind["parameter"].values]
    shown = {}
    for fid in map(str, ind["format"].values):
        one = ind.sel(format=fid, output=VOI_OUTPUT)
        if np.isfinite(one["ST"].values).any():
            shown[fid] = (np.nan_to_num(one["ST"].values), np.nan_to_num(one["ST_conf"].values))
    if not shown:
        return None
    order = np.argsort(np.max([v for v, _ in shown.values()], axis=0))
    fig, ax = plt.subplots(figsize=(9, 1.0 + 0.42 * len(names) * max(1, len(shown) / 3)),
                           constrained_layout=True)
    height = 0.8 / len(shown)
    for k, (fid, (value, conf)) in enumerate(shown.items()):
        y = np.arange(len(names)) - 0.4 + (k + 0.5) * height
        ax.barh(y, value[order], height, xerr=conf[order], label=fid,
                color=LINE_COLOURS[k % len(LINE_COLOURS)], error_kw={"elinewidth": 0.8})
    ax.set_yticks(range(len(names)), [names[i] for i in order], fontsize=8)
    ax.axvline(0, color="0.6", lw=0.8)
    ax.axvline(1, color="0.6", lw=0.8, ls="--")  # an index above 1 is the estimator's noise
    ax.set_xlabel("total Sobol index on the deterred regime\n(share of its variance that "
                  "knowing the parameter would remove)", fontsize=9)
    ax.set_title("Value of information of each assumption", loc="left", fontsize=11)
    ax.legend(loc="lower right", frameon=False, fontsize=8)
    return base64.b64encode(_png_bytes(fig)).decode("ascii")


def _prior_maps(a: Archive) -> dict[str, Any] | None:
    """P(deterrence holds) and P(deterred) over the ``[prior_map]`` grid, per format."""
    chart = a.plan.spec.prior_map
    if chart is None or a.prior_map is None:
        return None
    from dataclasses import replace as copied

    xs, ys = chart.values(chart.x), chart.values(chart.y)
    grid = copied(a.plan, spec=a.plan.spec.model_copy(update={
        "axes": [chart.x, chart.y], "method": "grid"}),
        points=np.stack([m.ravel() for m in np.meshgrid(xs, ys, indexing="ij")], axis=1),
        grid_shape=(xs.size, ys.size), sensitivity_points=None)
    pngs = []
    for name, title in (("holds", "P(deterrence holds), the rest integrated over the prior"),
                        ("p_deterred", "P(deterred) = E[1 - P(escalate)] over the prior")):
        values = {fid: a.prior_map[name].sel(format=fid).values.ravel()
                  for fid in a.plan.formats}
        pngs.append(base64.b64encode(_map_figure("heatmap", grid, [xs, ys], name, title,
                                                 values)).decode("ascii"))
    return {"pngs": pngs, "x": chart.x.path, "y": chart.y.path, "samples": chart.samples}


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
    if a.plan.spec.method == "prior":
        ranges = "every parameter over its prior, sampled on the quantile scale"
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
        uncertainty=_uncertainty(a, reference),
        comparison=_comparison(a, reference), paired=_paired(a, reference),
        sensitivity=_sensitivity(a), discovery=_discovery(a), maps=_maps(a),
        stability=_stability(a),
        multiplicity=_multiplicity(a),
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
