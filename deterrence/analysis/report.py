"""A self-contained HTML report of a sweep archive.

The report is written beside the archive (``<archive>.report/index.html`` by default), never
inside it: the archive's manifest lists a checksum of every file, so a file added there would
make ``deterrence verify`` fail. Figures are embedded as PNG; the page loads nothing else.
"""

from __future__ import annotations

import base64
import html
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
from ..sweep.spec import Plan  # noqa: E402
from .stats import mean_ci, paired_difference  # noqa: E402

# Okabe & Ito (2008), distinguishable with the common colour-vision deficiencies.
REGIME_COLOURS = {"deterred": "#009E73", "defended": "#0072B2", "abandoned": "#D55E00",
                  "mixed": "#CC79A7"}
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


def _reading(kind: str, plan: Plan) -> str:
    paths = [a.path for a in plan.spec.axes]
    general = ("Left: the regime of the exact one-shot game in each parameter cell "
               "(docs/model.md §1; the regime over its subgame-perfect equilibria, "
               "“mixed” where they disagree or none was found). Right: the share of "
               "rounds in which Russia escalated in the repeated, learning simulation "
               "(§4), averaged over the replicates. The two need not agree: the "
               "simulation adds learning, shocks and noisy choice. ")
    if kind == "heatmap":
        return general + (f"Each square is one grid cell: {paths[0]} across, {paths[1]} up. "
                          "Dark purple is rare escalation, yellow frequent; the colour "
                          "scale runs from 0 to 1 in every map, so maps can be compared.")
    if kind == "line":
        return general + (f"The horizontal axis is {paths[0]}; on the right grey dots are "
                          "single replicates and the line their mean.")
    rest = ", ".join(paths[2:])
    if plan.grid_shape is not None:
        return general + (f"<strong>Scatter of the first two parameters only:</strong> each "
                          f"dot is a grid cell placed by {paths[0]} and {paths[1]}; cells "
                          f"that differ only in {rest} lie on top of each other and only the "
                          "last drawn is visible. The comparison table covers every cell.")
    varied = f"; {rest} vary too, so neighbouring dots can differ for reasons not shown" \
        if rest else ""
    return general + (f"<strong>Scatter of the first two parameters:</strong> each dot is "
                      f"one {plan.spec.method} sample, placed by {paths[0]} and "
                      f"{paths[1]}{varied}.")


# ---------------------------------------------------------------------------------------
# The page


STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;max-width:1180px;
margin:2em auto;padding:0 1em;color:#222;line-height:1.45}
h1{margin-bottom:.2em}h2{border-bottom:1px solid #ccc;margin-top:2em}
table{border-collapse:collapse;font-size:.92em}td,th{padding:.3em .7em;text-align:left;
vertical-align:top;border-bottom:1px solid #e4e4e4}th{background:#f4f4f4}
table.num td:nth-child(n+3){font-variant-numeric:tabular-nums;white-space:nowrap}
pre{background:#f6f6f6;padding:1em;overflow-x:auto;font-size:.88em}
img{max-width:100%;height:auto}figure{margin:1.5em 0}
.how{color:#444;font-size:.93em;max-width:60em}.warn{color:#a40000}
"""


def _e(value: Any) -> str:
    return html.escape(str(value))


def _table(rows: list[tuple[str, str]]) -> str:
    return "<table>" + "".join(f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in rows) \
        + "</table>"


def _provenance(a: Archive) -> str:
    m, spec = a.manifest, a.plan.spec
    code = m.get("code") or {}
    commit = code.get("git_commit")
    dirty = {True: "uncommitted changes in deterrence/ or configs/",
             False: "clean working tree"}.get(code.get("git_dirty"), "state unknown")
    packages = ", ".join(f"{k} {v}" for k, v in sorted((m.get("packages") or {}).items()))
    system = m.get("platform") or {}
    if a.problems:
        integrity = ("<span class='warn'>" + "; ".join(map(_e, a.problems)) + "</span>")
    else:
        integrity = f"all {len(m['files'])} files match the manifest's checksums"
    return _table([
        ("archive", f"<code>{_e(a.path.resolve())}</code>"),
        ("sweep", f"{_e(spec.name)} ({_e(spec.description) or 'no description'})"),
        ("scenario", _e(a.plan.scenario.name)),
        ("created", f"started {_e(m.get('started', '?'))}, finished "
                    f"{_e(m.get('finished', '?'))}"),
        ("code version", f"git commit <code>{_e(commit or 'unknown')}</code>, {dirty}"),
        ("packages", _e(packages or "not recorded")),
        ("platform", _e(f"Python {system.get('python', '?')}, {system.get('system', '?')}")),
        ("seed", f"{_e(m.get('seed', a.plan.seed))} (random key "
                 f"{_e(m.get('random_key', '?'))})"),
        ("runs", f"{_e(m.get('runs', '?'))} in all: {a.plan.cells} cells × "
                 f"{spec.replicates} replicates × {len(a.plan.formats)} formats, "
                 f"{spec.steps} rounds each; executor {_e(m.get('executor', '?'))}"),
        ("design", _e(f"{spec.method}, axes: " + ", ".join(x.path for x in spec.axes))),
        ("integrity", integrity),
    ])


def _reproduce(a: Archive, out_hint: Path) -> str:
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
    note = ("<code>verify</code> re-runs the sweep from the archive's stored plan "
            "(<code>config/plan.json</code>: the resolved scenario, formats, points and "
            "seed) and checks every array bit for bit; it exits 0 if everything reproduces. "
            "<code>sweep</code> runs the sweep file again as a new archive.")
    if not runnable:
        note += (f" The archive's copy <code>config/sweep.toml</code> names its scenario "
                 f"relative to the original file (<code>{_e(a.plan.spec.scenario)}</code>), "
                 "so run the original sweep file, or a copy placed where that path "
                 "resolves, as <code>SWEEP_FILE.toml</code>.")
    return f"<pre>{_e(chr(10).join(lines))}</pre><p class='how'>{note}</p>"


def _comparison_html(a: Archive, rows: list[dict[str, Any]], reference: str) -> str:
    head = ("<tr><th>format</th><th>name</th><th>escalation frequency</th>"
            "<th>P(abandoned | escalation)</th><th>deterred share</th>"
            "<th>cells deterred (exact)</th>"
            f"<th>Δ escalation frequency vs {_e(reference)}</th>"
            f"<th>Δ P(abandoned | escalation) vs {_e(reference)}</th></tr>")
    body = []
    for r in rows:
        fid = r["format"]
        k, n = r["exact_deterred"]
        if fid == reference:
            deltas = "<td>reference</td><td>reference</td>"
        else:
            deltas = "".join(
                f"<td>{'<strong>' if d.excludes_zero else ''}{_e(d.text(signed=True))}"
                f"{'</strong>' if d.excludes_zero else ''}<br><small>n = {d.n}</small></td>"
                for d in (r["d_escalation"], r["d_abandoned"]))
        body.append(
            f"<tr id='format-{_e(fid)}'><td><code>{_e(fid)}</code></td>"
            f"<td>{_e(a.plan.formats[fid].name)}</td>"
            f"<td>{_e(r['escalation'].text())}</td>"
            f"<td>{_e(r['abandoned'].text())}<br><small>n = {r['abandoned'].n}</small></td>"
            f"<td>{_e(r['deterred'].text())}</td>"
            f"<td>{k} of {n} ({k / n:.0%})</td>{deltas}</tr>")
    cells, reps = a.plan.cells, a.plan.spec.replicates
    how = (
        f"How to read this: each simulated figure is the mean over all {cells} cells × "
        f"{reps} replicates = {cells * reps} runs of the format, with a 95% interval "
        "(mean ± 1.96·sd/√n), every cell weighted alike. The interval counts the spread "
        "across parameter cells as well as the run-to-run noise; for a fixed grid it is "
        "therefore wide, and it describes the average over the swept range, not one "
        "scenario. P(abandoned | escalation) is averaged over the runs with at least one "
        "escalation (n shown). “Cells deterred (exact)” counts the cells whose exact "
        f"regime is deterred. The Δ columns compare each format with {_e(reference)} under "
        "common random numbers: run r of cell c draws the same random numbers in every "
        "format, so the difference is taken run by run and averaged (pairs where either "
        "side has no escalation are left out of the second Δ). Bold: the interval "
        "excludes 0. Negative Δ escalation means the format is escalated against less "
        f"often than {_e(reference)}.")
    return (f"<table class='num'>{head}{''.join(body)}</table>"
            f"<p class='how'>{how}</p>")


def _maps_html(a: Archive) -> str:
    kind = layout(a.plan)
    dims = [x.path for x in a.plan.spec.axes] if a.plan.grid_shape is not None else []
    coords = [np.asarray(a.sim[d].values) for d in dims]
    parts = []
    for fid in a.plan.formats:
        regime = a.exact["regime"].sel(format=fid).values.reshape(-1)
        escalation = a.sim["escalation_frequency"].sel(format=fid).values.reshape(
            a.plan.cells, a.plan.spec.replicates)
        png = base64.b64encode(_format_figure(fid, kind, a.plan, regime, escalation,
                                              coords)).decode("ascii")
        counts = ", ".join(f"{int((regime == i).sum())} {name}"
                           for i, name in enumerate(REGIME_NAMES) if (regime == i).any())
        mean = escalation.mean(axis=1)
        here = (f"Here ({_e(fid)}): exact regimes {counts} of {regime.size} cells; the "
                f"simulated escalation frequency per cell runs from {mean.min():.3f} to "
                f"{mean.max():.3f}.")
        parts.append(
            f"<figure id='map-{_e(fid)}'><img alt='{_e(fid)}: exact regime and simulated "
            f"escalation frequency' src='data:image/png;base64,{png}'>"
            f"<figcaption><strong>{_e(a.plan.formats[fid].name)}</strong> "
            f"(<code>{_e(fid)}</code>)</figcaption></figure>"
            f"<p class='how'>How to read this: {_reading(kind, a.plan)} {here}</p>")
    return "".join(parts)


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
            coords = [np.asarray(a.sim[p].values) for p in paths]
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


def _paired_html(a: Archive, reference: str) -> str:
    from .compare import compare_formats, significance_counts

    others = [f for f in a.plan.formats if f != reference]
    if not others:
        return "<p>Only one format: nothing to compare.</p>"
    diffs = {fid: compare_formats(a.sim, fid, reference) for fid in others}
    head = ("<tr><th>format</th><th>Δ escalation frequency, all points</th>"
            "<th>points lower</th><th>no significant difference</th><th>points higher</th>"
            "<th>lower / higher after FDR control</th><th>largest difference at a point</th>"
            "</tr>")
    body = []
    points = a.plan.cells
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
        body.append(
            f"<tr><td><code>{_e(fid)}</code></td>"
            f"<td>{100 * overall:+.1f} ± {100 * overall_half:.1f} points</td>"
            f"<td>{lower}</td><td>{points - lower - higher}</td><td>{higher}</td>"
            f"<td>{counts['points_lower_fdr']} / {counts['points_higher_fdr']}</td>"
            f"<td>{100 * mean[i]:+.1f} ± {100 * half[i]:.1f} points at {_e(where)}</td></tr>")
    reps = a.plan.spec.replicates
    how = (f"How to read this: at every point, run r draws the same random numbers under "
           f"every format (common random numbers), so the {reps} replicates give {reps} "
           f"paired differences per point. A point counts as lower or higher when the 95% "
           f"Student-t interval of its mean difference excludes 0; with many points some "
           f"pass by chance, so the next column counts only those that survive "
           f"Benjamini–Hochberg control of the false discovery rate at 5% (marked with a "
           f"black dot in the maps). Negative: the format is escalated against less often "
           f"than {_e(reference)}. The first column averages over every point and replicate "
           f"(normal approximation), as in the table above."
           + (" With one replicate per point there is no per-point interval."
              if reps < 2 else ""))
    png = _difference_figure(a, diffs, reference)
    return (f"<table class='num'>{head}{''.join(body)}</table>"
            f"<figure id='differences'><img alt='paired differences in escalation frequency "
            f"against {_e(reference)}' src='data:image/png;base64,{png}'></figure>"
            f"<p class='how'>{how}</p>"
            "<p class='how'>From Python: <code>deterrence.compare_formats(archive, first, "
            "second)</code> returns these per-point differences, intervals and flags for "
            "any two formats and outcomes.</p>")


def _sensitivity_html(a: Archive) -> str:
    ind = a.sensitivity
    if ind is None:
        return ("<p>This sweep has no sensitivity design. Add a <code>[sensitivity]</code> "
                "table to the sweep file, or run <code>deterrence sensitivity "
                "SWEEP.toml</code> (docs/analysis.md).</p>")
    method = str(ind.attrs["method"])
    wide, narrow = ("ST", "S1") if method == "sobol" else ("mu_star", "sigma")
    names = [str(p) for p in ind["parameter"].values]
    head = ("<tr><th>format</th><th>outcome</th>"
            + "".join(f"<th>{_e(n)}</th>" for n in names) + "</tr>")
    body = []
    for fid in map(str, ind["format"].values):
        for output in map(str, ind["output"].values):
            one = ind.sel(format=fid, output=output)
            if not np.isfinite(one[wide].values).any():
                cells = "".join("<td>constant</td>" for _ in names)
            else:
                best = int(np.nanargmax(one[wide].values))
                cells = "".join(
                    f"<td>{'<strong>' if k == best else ''}{wide} "
                    f"{one[wide].values[k]:.2f} ± {one[f'{wide}_conf'].values[k]:.2f}"
                    f"{'</strong>' if k == best else ''}<br><small>{narrow} "
                    f"{one[narrow].values[k]:.2f}</small></td>" for k in range(len(names)))
            body.append(f"<tr><td><code>{_e(fid)}</code></td><td>{_e(output)}</td>{cells}"
                        "</tr>")
    points = int(ind.attrs["design_points"])
    conf = float(ind.attrs["confidence"])
    ranges = ", ".join(f"{n} in [{lo:.3g}, {hi:.3g}]" for n, lo, hi in
                       zip(names, ind["low"].values, ind["high"].values, strict=True))
    if method == "sobol":
        how = ("How to read this: the total index ST is the share of the outcome's variance "
               "over the ranges that disappears if the parameter is fixed (its effect "
               "alone and in interactions); the first-order index S1 is the share due to it "
               "alone. ST − S1 measures interactions. A parameter with ST near 0 can be "
               "fixed anywhere in its range without changing the outcome. ")
    else:
        how = ("How to read this: mu* is the mean absolute change of the outcome when the "
               "parameter moves by one grid step of its range (in outcome units per unit "
               "of the scaled range): its importance. sigma is the spread of those changes: "
               "large sigma means a non-linear effect or interactions. Morris ranks "
               "parameters; it does not split the variance. ")
    how += (f"Estimated with SALib over a {method} design of {points} points ({ranges}), "
            f"each point simulated {a.plan.spec.replicates} times and averaged; ± is the "
            f"half-width of the {conf:.0%} bootstrap interval "
            f"({int(ind.attrs['resamples'])} resamples). Run-to-run noise adds variance no "
            "parameter explains, so indices of simulated outcomes are lower bounds of "
            "what more replicates would show. abandoned_frequency is the share of rounds "
            "ending abandoned (escalation met by an insufficient response); "
            "regime_deterred is 1 where the exact game deters Russia. Bold: the most "
            "influential parameter.")
    png = base64.b64encode(a.sensitivity_figure).decode("ascii")
    return (f"<figure id='tornado'><img alt='{method} sensitivity indices per format and "
            f"outcome' src='data:image/png;base64,{png}'></figure>"
            f"<table class='num'>{head}{''.join(body)}</table><p class='how'>{how}</p>")


#: Failure in the scenario-discovery section: escalation in more than half the rounds.
DISCOVERY_THRESHOLD = 0.5


def discovery_data(a: Archive) -> tuple[Any, Any, str]:
    """The points PRIM looks at: the sensitivity design when there is one with more points
    than the sweep's own cells (a space-filling sample), else the sweep's cells."""
    if a.design is not None and a.design.sizes["sample"] > a.plan.cells:
        return a.design, a.design, (f"the {a.design.sizes['sample']} points of the "
                                    f"sensitivity design")
    return a.sim, a.exact, f"the sweep's {a.plan.cells} cells"


def _discovery_html(a: Archive) -> str:
    from .discovery import REGIME_OUTCOME, find_failure_box

    sim, exact, source = discovery_data(a)
    head = (f"<tr><th>format</th><th>where escalation frequency > {DISCOVERY_THRESHOLD:g}"
            "</th><th>where the exact regime is not deterred</th></tr>")
    body = []
    for fid in a.plan.formats:
        cells = []
        for outcome in ("escalation_frequency", REGIME_OUTCOME):
            try:
                box = find_failure_box(sim, exact, fid, outcome, DISCOVERY_THRESHOLD)
            except MissingExtra as exc:  # the section needs ema_workbench; the rest does not
                return f"<p>Not analysed: {_e(exc)}.</p>"
            except ValueError as exc:  # e.g. too few points
                cells.append(f"<td>not analysed: {_e(exc)}</td>")
                continue
            if box is None:
                cells.append("<td>no point fails</td>")
            else:
                cells.append(f"<td>{_e(box.describe())}</td>")
        body.append(f"<tr><td><code>{_e(fid)}</code></td>{''.join(cells)}</tr>")
    how = ("How to read this: PRIM (Friedman &amp; Fisher 1999) looks for a box in the "
           f"swept parameters that holds the points where the format fails, here over "
           f"{_e(source)}. Coverage is the share of all failing points inside the box; "
           "density the share of the box's points that fail. Of the boxes on PRIM's "
           "peeling trajectory the one shown has the highest coverage among those with "
           "density at least 0.8 (Bryant &amp; Lempert 2010). A failure region that is not "
           "box-shaped shows as low density or low coverage. “Over the whole sampled "
           "range”: the format fails everywhere. From Python: "
           "<code>deterrence.analysis.discovery.find_failure_box</code>; from the shell: "
           "<code>deterrence discover ARCHIVE</code>.")
    return f"<table>{head}{''.join(body)}</table><p class='how'>{how}</p>"


def render(a: Archive, out_hint: Path) -> str:
    """The report page of a loaded archive."""
    formats = list(a.plan.formats)
    reference = reference_format(formats)
    rows = comparison(a.sim, a.exact, reference)
    spec = a.plan.spec
    title = f"Sweep report: {spec.name}"
    now = datetime.now(UTC).isoformat(timespec="seconds")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{_e(title)}</title><style>{STYLE}</style></head><body>
<h1>{_e(title)}</h1>
<p>{_e(spec.description)}</p>
<p>Contents: <a href="#provenance">provenance</a> · <a href="#reproduce">reproduce</a> ·
<a href="#comparison">format comparison</a> · <a href="#paired">paired differences by
point</a> · <a href="#sensitivity">sensitivity</a> ·
<a href="#discovery">scenario discovery</a> · <a href="#maps">maps by format</a> ·
<a href="#config">configuration</a></p>
<h2 id="provenance">Provenance</h2>{_provenance(a)}
<h2 id="reproduce">How to reproduce</h2>{_reproduce(a, out_hint)}
<h2 id="comparison">Format comparison</h2>{_comparison_html(a, rows, reference)}
<h2 id="paired">Paired differences by point, against {_e(reference)}</h2>
{_paired_html(a, reference)}
<h2 id="sensitivity">Global sensitivity</h2>{_sensitivity_html(a)}
<h2 id="discovery">Scenario discovery: where deterrence fails</h2>{_discovery_html(a)}
<h2 id="maps">Maps by format</h2>{_maps_html(a)}
<h2 id="config">Sweep configuration</h2>
<p>From {_e(a.config_source)}.</p><pre>{_e(a.config_text)}</pre>
<p class="how">Written {now} by deterrence.analysis.report; the archive itself is unchanged.</p>
</body></html>
"""


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
