"""The analyses on screen: global sensitivity, scenario discovery (PRIM), the paired
comparison of two formats, and the formats under the prior of the assumptions.

Each analysis has a *compute* function, pure (no Streamlit), which returns plain data (a
frozen dataclass holding DataFrames and Datasets) for the page to run in a background job
and cache, and a *draw* function (Streamlit and altair) that takes what it returned:

- sensitivity: ``compute_sensitivity(plan, method="sobol", samples=64, *,
  parameters=None, limit=None, progress=None)`` -> ``draw_sensitivity(result)``;
- PRIM: ``compute_prim(dataset, formats=None, outcome="escalation_frequency",
  threshold=0.5, min_density=0.8)`` -> ``draw_prim(result)``;
- comparison: ``compute_comparison(sim, first, second)`` -> ``draw_comparison(result)``;
- uncertainty: ``compute_uncertainty(scenario, formats=None, samples=256, calibrated=True,
  map_x=None, map_y=None, *, map_samples=64)`` -> ``draw_uncertainty_table(result)``.

Every number comes from :mod:`deterrence.api`. Bad input raises ``api.ConfigError`` with
one line naming the key, the value and what is allowed: show it with ``st.error(str(exc))``.
A sensitivity design larger than ``limit`` simulated run-rounds (the page passes its
``INTERACTIVE_LIMIT``) is not run: the result says so (``result.refused``) and its draw
function shows that line. The maps of the comparison and of the prior are not drawn here:
``result.maps`` lists what a map needs (:class:`MapSpec`) for the page's maps module.
:data:`HOW_TO_READ` holds a short text per analysis.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import altair as alt
import numpy as np
import pandas as pd
import streamlit as st

from deterrence import api
from deterrence.dashboard import jobs

#: The sensitivity methods, and for each the wide index (the bar, with its interval) and
#: the narrow one drawn over it: Sobol's total and first-order indices, Morris's mu* and
#: sigma (api.INDICES lists each method's two).
SENSITIVITY_METHODS = tuple(api.INDICES)
TORNADO = {"sobol": ("ST", "S1"), "morris": ("mu_star", "sigma")}
#: Base samples of the design when none is given: a power of 2 for Sobol (N (k + 2) points
#: for k parameters), trajectories for Morris (N (k + 1) points).
DEFAULT_SENSITIVITY_SAMPLES = 64
#: A sensitivity design over parameters that the sweep does not vary takes them as grid
#: axes of this many points, so that the sweep's own cells (run before the design) cost
#: almost nothing.
UNSWEPT_AXIS_POINTS = 1
#: PRIM's defaults: failure is an escalation frequency above half the rounds; the box chosen
#: is the one of highest coverage with at least this density (Bryant & Lempert 2010).
DEFAULT_THRESHOLD = 0.5
DEFAULT_MIN_DENSITY = 0.8
#: A difference of shares is shown in percentage points: 100 per unit.
PERCENTAGE_POINTS = 100.0
#: Fewest replicates per grid point for a per-point paired test (a t interval needs two).
MIN_REPLICATES = 2
#: The compared outcomes' labels on screen.
COMPARISON_LABELS = {"escalation_frequency": "escalation frequency",
                     "abandoned_given_escalation": "P(abandoned | escalation)",
                     "deterred_share": "share of rounds deterred"}
#: The outcome whose paired difference is the comparison's headline and map.
HEADLINE_OUTCOME = "escalation_frequency"
#: Prior points of the uncertainty table, and of each cell of a map over the prior, when
#: none are given (powers of 2: Sobol samples).
DEFAULT_PRIOR_SAMPLES = 256
DEFAULT_MAP_SAMPLES = 64
#: The bundled scenario whose assumptions are distributions (docs/analysis.md).
UNCERTAIN_SCENARIO = "configs/scenarios/baseline_uncertain.toml"
#: The columns of the uncertainty table drawn, with their labels: (estimate, interval's
#: low and high, the prior's 5% and 95% quantiles or None).
UNCERTAINTY_QUANTITIES = {
    "p_deterred": ("P(deterred) = E[1 − P(escalate)]", "p_deterred_q05", "p_deterred_q95"),
    "holds": ("P(deterrence holds)", None, None),
    "p_defended_given_escalation": ("P(defended | escalation)", None, None),
}
#: The maps over the prior (api.prior_map's variables) and their titles.
PRIOR_MAP_TITLES = {"holds": "P(deterrence holds), the rest integrated over the prior",
                    "p_deterred": "P(deterred) = E[1 − P(escalate)] over the prior"}
#: Sizes of the charts, in pixels.
TORNADO_ROW_HEIGHT = 22
TORNADO_WIDTH = 170
CURVE_SIZE = 300
LIMITS_ROW_HEIGHT = 28
#: Colours: the wide and narrow bars (the analysis layer's blues), the chosen box, the
#: prior's range and intervals (Okabe & Ito 2008).
WIDE_COLOUR, NARROW_COLOUR, HIGHLIGHT_COLOUR = "#56B4E9", "#0072B2", "#D55E00"
RANGE_COLOUR, INTERVAL_COLOUR = "#BBBBBB", "#000000"


def format_names(format_ids) -> dict[str, str]:
    """Each format id with its name from the catalogue (the id itself if not in it)."""
    catalogue = api.load_catalogue()
    return {str(f): catalogue[str(f)].name if str(f) in catalogue else str(f)
            for f in format_ids}


@dataclass(frozen=True)
class MapSpec:
    """What a map over two parameters needs: ``dataset[variable]`` over the dims ``x`` and
    ``y`` (and ``format`` if ``by_format``), whose parameter paths are ``x_path`` and
    ``y_path``; ``title``; the colour scale's ``domain`` (None: the data's own; a
    difference centres on 0 when ``diverging``); ``outline``, a variable of the same dims
    marking the cells to outline, or None."""

    dataset: Any
    variable: str
    title: str
    x: str
    y: str
    x_path: str
    y_path: str
    by_format: bool
    domain: tuple[float, float] | None = None
    diverging: bool = False
    outline: str | None = None


# ---------------------------------------------------------------------------------------
# Sensitivity: Sobol indices or Morris screening of the sweep's parameters


@dataclass(frozen=True)
class SensitivityResult:
    """The indices of a sensitivity design (``indices``: dims format, output, parameter;
    None when refused), the design (``method``, base ``samples``, ``parameters`` and their
    ``ranges``), its cost (``run_rounds``) and, if it was not run, why (``refused``)."""

    method: str
    samples: int
    parameters: list[str]
    ranges: dict[str, tuple[float, float]]
    run_rounds: int
    indices: Any = None
    names: dict[str, str] = field(default_factory=dict)
    refused: str | None = None


def sensitivity_plan(plan: api.Plan, method: str = "sobol",
                     samples: int = DEFAULT_SENSITIVITY_SAMPLES,
                     parameters: dict[str, tuple[float, float]] | None = None) -> api.Plan:
    """``plan`` with a sensitivity design (``method``, base sample ``samples``) over its
    axes' ranges: the plan ``deterrence sensitivity`` runs for the same sweep file, so the
    same indices. With ``parameters`` ({path: (low, high)}) the design covers those instead,
    each a grid axis of :data:`UNSWEPT_AXIS_POINTS` point(s) besides. Validated as a sweep
    file is (ConfigError)."""
    if method not in SENSITIVITY_METHODS:
        raise api.ConfigError(f"method = {method!r}: allowed: {', '.join(SENSITIVITY_METHODS)}")
    spec = plan.spec
    if parameters is None:
        axes = {a.path: {k: getattr(a, k) for k in ("values", "low", "high", "count")
                         if getattr(a, k) is not None} for a in spec.axes}
        keys = {"method": spec.method, "samples": spec.samples}
    else:
        if not parameters:
            raise api.ConfigError("parameters = {}: choose at least one parameter")
        axes = {}
        for path, bounds in parameters.items():
            try:
                low, high = map(float, bounds)
            except (TypeError, ValueError):
                raise api.ConfigError(f"parameters[{path!r}] = {bounds!r}: allowed: a pair "
                                      "(low, high) of numbers") from None
            axes[path] = {"low": low, "high": high, "count": UNSWEPT_AXIS_POINTS}
        keys = {"method": "grid", "samples": None}
    return api.sweep_plan(plan.scenario, axes, replicates=spec.replicates, steps=spec.steps,
                          formats=list(plan.formats), seed=spec.seed,
                          sensitivity={"method": method, "samples": samples},
                          name=spec.name, **keys)


def size_refusal(what: str, size: int, limit: int | None) -> str | None:
    """None if ``size`` run-rounds are at most ``limit`` (None: no limit); otherwise the
    one line that says so."""
    if limit is None or size <= limit:
        return None
    return (f"{what} simulates {size:,} run-rounds, more than the {limit:,} run "
            f"interactively: use fewer samples, formats, replicates or rounds, or run it "
            f"headless with `deterrence sensitivity SWEEP_FILE`.")


def compute_sensitivity(plan: api.Plan, method: str = "sobol",
                        samples: int = DEFAULT_SENSITIVITY_SAMPLES, *,
                        parameters: dict[str, tuple[float, float]] | None = None,
                        limit: int | None = None,
                        progress: Callable[[int, int], None] | None = None
                        ) -> SensitivityResult:
    """The ``method`` indices ("sobol": S1 and ST; "morris": mu* and sigma, each with its
    bootstrap interval) of every outcome per format, over the sweep's axes or
    ``parameters``: :func:`api.sensitivity` of :func:`sensitivity_plan`. Not run (the
    result's ``refused`` says why) if it would simulate more than ``limit`` run-rounds.
    ``progress(done, total)`` is called as chunks finish."""
    design = sensitivity_plan(plan, method, samples, parameters)
    axes = design.spec.axes
    size = jobs.plan_size(design)
    result = SensitivityResult(method, samples, [a.path for a in axes],
                               {a.path: (a.low, a.high) for a in axes}, size,
                               names=format_names(design.formats))
    refused = size_refusal(f"A {method} design of {samples} samples over "
                           f"{len(axes)} parameters", size, limit)
    if refused is not None:
        return replace(result, refused=refused)
    indices = api.sensitivity(design, progress=progress)
    return replace(result, indices=indices)


def sensitivity_frame(result: SensitivityResult) -> pd.DataFrame:
    """One row per format, outcome and parameter: the wide index ``value`` with its
    interval ``low`` to ``high``, the narrow index ``narrow``, and ``rank`` (0: the
    parameter with the largest wide index anywhere; the tornado's order)."""
    wide, narrow = TORNADO[result.method]
    ind = result.indices
    frame = ind[[wide, f"{wide}_conf", narrow]].to_dataframe().reset_index()
    frame = frame.rename(columns={wide: "value", f"{wide}_conf": "conf", narrow: "narrow"})
    conf = frame["conf"].fillna(0.0)
    frame["low"], frame["high"] = frame["value"] - conf, frame["value"] + conf
    frame["format"] = frame["format"].astype(str)
    frame["format_name"] = frame["format"].map(result.names)
    frame["output"] = frame["output"].astype(str)
    frame["parameter"] = frame["parameter"].astype(str)
    largest = frame.groupby("parameter")["value"].max().fillna(-math.inf)
    order = list(largest.sort_values(ascending=False, kind="stable").index)
    frame["rank"] = frame["parameter"].map(order.index)
    return frame[["format", "format_name", "output", "parameter", "rank", "value", "conf",
                  "low", "high", "narrow"]]


def draw_sensitivity(result: SensitivityResult) -> None:
    """A tornado per format (rows) and outcome (columns), on one scale: the wide index
    (Sobol's ST, Morris's mu*) as a bar with its interval, the narrow one (S1 inside it,
    or sigma as a diamond), parameters sorted by their largest wide index."""
    if result.refused is not None:
        st.warning(result.refused)
        return
    wide, narrow = TORNADO[result.method]
    frame = sensitivity_frame(result)
    order = list(frame.sort_values("rank")["parameter"].drop_duplicates())
    reach = np.concatenate([frame["high"].to_numpy(), frame["narrow"].to_numpy()])
    top = float(np.nanmax(reach)) if np.isfinite(reach).any() else 1.0
    bottom = min(0.0, float(np.nanmin(reach))) if np.isfinite(reach).any() else 0.0
    domain = [bottom, max(1.0, top) if result.method == "sobol" else max(top, 1e-9)]
    x = alt.X("value:Q", title=f"{wide} (bar) and {narrow}",
              scale=alt.Scale(domain=domain, clamp=True))
    y = alt.Y("parameter:N", sort=order, title=None)
    tooltip = ["format_name:N", "output:N", "parameter:N",
               alt.Tooltip("value:Q", title=wide, format=".3f"),
               alt.Tooltip("conf:Q", title="± interval", format=".3f"),
               alt.Tooltip("narrow:Q", title=narrow, format=".3f")]
    base = alt.Chart(frame)
    bars = base.mark_bar(color=WIDE_COLOUR, size=TORNADO_ROW_HEIGHT * 0.7).encode(
        x=x, y=y, tooltip=tooltip)
    whiskers = base.mark_rule(color=INTERVAL_COLOUR).encode(x="low:Q", x2="high:Q", y=y)
    if result.method == "sobol":  # S1 is part of ST: a bar inside the bar
        inner = base.mark_bar(color=NARROW_COLOUR, size=TORNADO_ROW_HEIGHT * 0.3).encode(
            x=alt.X("narrow:Q"), y=y, tooltip=tooltip)
    else:  # sigma is another measure, not a part of mu*
        inner = base.mark_point(shape="diamond", filled=True, color=HIGHLIGHT_COLOUR).encode(
            x=alt.X("narrow:Q"), y=y, tooltip=tooltip)
    layers = [bars, whiskers, inner]
    if result.method == "sobol":  # a share is at most 1: beyond it, the estimator's noise
        layers.append(base.mark_rule(strokeDash=[4, 3], color=RANGE_COLOUR).encode(
            x=alt.datum(1.0)))
    chart = alt.layer(*layers).properties(
        width=TORNADO_WIDTH, height=TORNADO_ROW_HEIGHT * len(order)).facet(
        row=alt.Row("format_name:N", title=None, header=alt.Header(labelAngle=0,
                                                                   labelAlign="left")),
        column=alt.Column("output:N", title=None))
    st.altair_chart(chart)
    constant = frame[frame["value"].isna()][["format_name", "output"]].drop_duplicates()
    if len(constant):
        st.caption("No indices (the outcome does not vary over the design): " + "; ".join(
            f"{r.format_name}, {r.output}" for r in constant.itertuples()))
    ranges = ", ".join(f"{p} in [{lo:.3g}, {hi:.3g}]" for p, (lo, hi) in result.ranges.items())
    st.caption(f"{result.method.capitalize()} design of {result.samples} base samples over "
               f"{ranges}: {result.run_rounds:,} simulated run-rounds.")


# ---------------------------------------------------------------------------------------
# Scenario discovery: the PRIM box where a format fails, and its peeling trajectory


@dataclass(frozen=True)
class PrimResult:
    """Per format its PRIM box (``boxes``: api.discover's, None where no point fails) and
    peeling trajectory (``trajectories``: :func:`api.peeling_trajectory`, formats with a
    box only); ``source`` names the points used; ``missing`` says, if PRIM is not
    installed, how to install it (then there are no boxes)."""

    source: str
    outcome: str
    threshold: float
    min_density: float
    boxes: dict[str, Any]
    trajectories: dict[str, pd.DataFrame]
    names: dict[str, str] = field(default_factory=dict)
    missing: str | None = None


def compute_prim(dataset, formats: list[str] | None = None,
                 outcome: str = "escalation_frequency", threshold: float = DEFAULT_THRESHOLD,
                 min_density: float = DEFAULT_MIN_DENSITY) -> PrimResult:
    """PRIM on the sweep's points (:func:`api.discover`) for ``formats`` (default: every
    format of ``dataset``): where ``outcome`` (:data:`api.DISCOVERY_OUTCOMES`) fails, its
    mean over replicates above ``threshold`` (or the exact regime not deterred), the box of
    highest coverage with density at least ``min_density``. ``dataset`` holds the outcome:
    the simulated dataset for a simulated summary, the exact one for
    ``regime_not_deterred``, or :func:`api.sweep_dataset` (both)."""
    try:
        source, found = api.discover(dataset, formats, outcome, threshold, min_density)
    except api.MissingExtra as exc:
        return PrimResult("", outcome, threshold, min_density, {}, {}, missing=str(exc))
    boxes = dict(found)
    trajectories = {fid: api.peeling_trajectory(box) for fid, box in boxes.items()
                    if box is not None}
    return PrimResult(source, outcome, threshold, min_density, boxes, trajectories,
                      format_names(boxes))


def box_limits(result: PrimResult, format_id: str) -> pd.DataFrame:
    """The chosen box of ``format_id`` over each analysed parameter: its range over the
    points (``range_low``, ``range_high``), the box's ``low`` and ``high`` (the range
    where it does not restrict), ``restricted``, and both ends as shares of the range
    (``low_share``, ``high_share``: 0 at the range's low end)."""
    box = result.boxes[format_id]
    chosen = result.trajectories[format_id].loc[box.selected]
    rows = []
    for path, (rmin, rmax) in box.ranges.items():
        low, high = float(chosen[f"{path}_low"]), float(chosen[f"{path}_high"])
        width = rmax - rmin
        rows.append({"parameter": path, "range_low": rmin, "range_high": rmax, "low": low,
                     "high": high, "restricted": path in box.limits,
                     "low_share": (low - rmin) / width, "high_share": (high - rmin) / width})
    return pd.DataFrame(rows)


def tradeoff_chart(trajectory: pd.DataFrame, min_density: float, title: str) -> alt.Chart:
    """Coverage against density of every box along the peel, the chosen box highlighted, a
    dashed line at the density asked for; hovering a box shows its limits."""
    frame = trajectory.reset_index()
    frame["conditions"] = frame["conditions"].replace("", "the whole range")
    tooltip = [alt.Tooltip("box:Q", title="box along the peel"),
               alt.Tooltip("coverage:Q", format=".2f"),
               alt.Tooltip("density:Q", format=".2f"),
               alt.Tooltip("mass:Q", title="mass (share of points)", format=".2f"),
               alt.Tooltip("restricted:Q", title="restricted parameters"),
               alt.Tooltip("conditions:N", title="limits")]
    scale = alt.Scale(domain=[0, 1])
    base = alt.Chart(frame).encode(x=alt.X("coverage:Q", scale=scale),
                                   y=alt.Y("density:Q", scale=scale), tooltip=tooltip)
    curve = base.mark_line(point=True, color=NARROW_COLOUR).encode(order="box:Q")
    chosen = base.transform_filter("datum.selected").mark_point(
        size=220, filled=True, color=HIGHLIGHT_COLOUR)
    wanted = alt.Chart(pd.DataFrame({"density": [min_density]})).mark_rule(
        strokeDash=[4, 3], color=RANGE_COLOUR).encode(y="density:Q")
    return alt.layer(curve, chosen, wanted, title=title).properties(width=CURVE_SIZE,
                                                                     height=CURVE_SIZE)


def limits_chart(limits: pd.DataFrame) -> alt.Chart:
    """Each parameter's swept range (grey, from its low to its high end) and the chosen
    box's limits on it (coloured where it restricts)."""
    tooltip = ["parameter:N", alt.Tooltip("low:Q", title="box from", format=".3g"),
               alt.Tooltip("high:Q", title="box to", format=".3g"),
               alt.Tooltip("range_low:Q", title="range from", format=".3g"),
               alt.Tooltip("range_high:Q", title="range to", format=".3g")]
    y = alt.Y("parameter:N", title=None)
    share = alt.Scale(domain=[0, 1])
    frame = limits.assign(start=0.0, end=1.0)
    swept = alt.Chart(frame).mark_bar(color=RANGE_COLOUR, size=LIMITS_ROW_HEIGHT * 0.8).encode(
        x=alt.X("start:Q", scale=share, title="share of the swept range"), x2="end:Q", y=y,
        tooltip=tooltip)
    box = alt.Chart(frame).mark_bar(size=LIMITS_ROW_HEIGHT * 0.4).encode(
        x=alt.X("low_share:Q", scale=share), x2="high_share:Q", y=y, tooltip=tooltip,
        color=alt.condition("datum.restricted", alt.value(HIGHLIGHT_COLOUR),
                            alt.value(NARROW_COLOUR)))
    return alt.layer(swept, box, title="The box over each parameter's range").properties(
        width=CURVE_SIZE, height=LIMITS_ROW_HEIGHT * len(limits))


def draw_prim(result: PrimResult) -> None:
    """Per format: the box in one line, the trade-off curve of its peeling trajectory and
    its limits over each parameter's range, as a chart and a table."""
    if result.missing is not None:
        st.warning(result.missing)
        return
    st.caption(f"PRIM on {result.source}; failure: {result.outcome.replace('_', ' ')}"
               + ("" if result.outcome == api.REGIME_OUTCOME
                  else f" above {result.threshold:g}")
               + f"; the box of highest coverage with density ≥ {result.min_density:g}.")
    for fid, box in result.boxes.items():
        st.markdown(f"**{result.names.get(fid, fid)}** (`{fid}`)")
        if box is None:
            st.info("No grid point fails: there is no box to find.")
            continue
        st.write(box.describe())
        limits = box_limits(result, fid)
        left, right = st.columns(2)
        left.altair_chart(tradeoff_chart(result.trajectories[fid], result.min_density,
                                         "Coverage against density along the peel"))
        right.altair_chart(limits_chart(limits))
        right.dataframe(limits[["parameter", "low", "high", "range_low", "range_high",
                                "restricted"]], hide_index=True)


# ---------------------------------------------------------------------------------------
# Paired comparison of two formats under common random numbers


@dataclass(frozen=True)
class ComparisonResult:
    """``first`` against ``second``: per outcome (``rows``) the mean paired difference over
    every pair in percentage points with its 95% interval and the grid points whose own
    test finds a difference (None below :data:`MIN_REPLICATES` replicates, with
    ``note`` saying so); ``cells``, api.compare_formats' per-point differences; ``maps``."""

    first: str
    second: str
    replicates: int
    rows: pd.DataFrame
    cells: Any
    note: str | None = None
    maps: list[MapSpec] = field(default_factory=list)


def compute_comparison(sim, first: str, second: str) -> ComparisonResult:
    """Paired differences ``first - second`` of the simulated dataset ``sim`` (dims
    format, the grid's two dims, replicate): over every (grid point, replicate) pair
    (:func:`api.paired_difference`) and per grid point (:func:`api.compare_formats`,
    :func:`api.significance_counts`)."""
    if first == second:
        others = [str(f) for f in sim["format"].values if str(f) != first]
        raise api.ConfigError(f"second = {second!r}: the same format as first; allowed: "
                              f"{', '.join(others)}")
    cells = api.compare_formats(sim, first, second)
    replicates = int(sim.sizes.get("replicate", 1))
    tested = replicates >= MIN_REPLICATES
    rows = []
    for outcome in api.COMPARED_OUTCOMES:
        diff = api.paired_difference(sim[outcome].sel(format=first).values,
                                     sim[outcome].sel(format=second).values)
        counts = api.significance_counts(cells, outcome)
        low, high = diff.mean - diff.half_width, diff.mean + diff.half_width
        rows.append({
            "outcome": COMPARISON_LABELS.get(outcome, outcome), "variable": outcome,
            "difference (percentage points)": PERCENTAGE_POINTS * diff.mean,
            "± 95% (percentage points)": PERCENTAGE_POINTS * diff.half_width,
            "low": PERCENTAGE_POINTS * low, "high": PERCENTAGE_POINTS * high,
            "pairs": diff.n, "interval excludes 0": diff.excludes_zero,
            "grid points lower": counts["points_lower"] if tested else None,
            "grid points higher": counts["points_higher"] if tested else None,
            "lower / higher after FDR": (f"{counts['points_lower_fdr']} / "
                                         f"{counts['points_higher_fdr']}" if tested else None),
            "grid points": counts["points"]})
    note = None if tested else (
        f"One replicate per grid point: the per-grid-point tests need at least "
        f"{MIN_REPLICATES} replicates (a paired t interval needs two pairs), so none is "
        f"reported; the overall difference pools the grid points.")
    dims = [d for d in cells[HEADLINE_OUTCOME].dims]
    maps = []
    if len(dims) == 2:
        maps.append(MapSpec(cells, HEADLINE_OUTCOME, f"escalation frequency: {first} − "
                            f"{second}", dims[0], dims[1], api.parameter_path(dims[0]),
                            api.parameter_path(dims[1]), by_format=False, diverging=True,
                            outline=f"{HEADLINE_OUTCOME}_significant_fdr" if tested else None))
    return ComparisonResult(first, second, replicates, pd.DataFrame(rows), cells, note, maps)


def draw_comparison(result: ComparisonResult) -> None:
    """The headline difference, each outcome's difference with its 95% interval as an error
    bar (percentage points), the table with the grid points' tests, and the one-replicate
    message."""
    rows = result.rows
    head = rows[rows["variable"] == HEADLINE_OUTCOME].iloc[0]
    names = format_names([result.first, result.second])
    st.markdown(f"**{names[result.first]} vs {names[result.second]}: "
                f"{head['difference (percentage points)']:+.1f} ± "
                f"{head['± 95% (percentage points)']:.1f} percentage points of escalation "
                f"frequency**")
    if result.note is not None:
        st.info(result.note)
    tooltip = ["outcome:N",
               alt.Tooltip("difference (percentage points):Q", format="+.2f"),
               alt.Tooltip("± 95% (percentage points):Q", format=".2f"), "pairs:Q"]
    y = alt.Y("outcome:N", title=None)
    base = alt.Chart(rows)
    bars = base.mark_rule(color=INTERVAL_COLOUR, strokeWidth=2).encode(
        x=alt.X("low:Q", title=f"{result.first} − {result.second} (percentage points)"),
        x2="high:Q", y=y, tooltip=tooltip)
    dots = base.mark_point(filled=True, size=80, color=NARROW_COLOUR).encode(
        x="difference (percentage points):Q", y=y, tooltip=tooltip)
    zero = alt.Chart(pd.DataFrame({"zero": [0.0]})).mark_rule(
        strokeDash=[4, 3], color=RANGE_COLOUR).encode(x="zero:Q")
    st.altair_chart(alt.layer(zero, bars, dots, title="Mean paired difference with its 95% "
                              "interval").properties(height=TORNADO_ROW_HEIGHT * 4 * len(rows)),
                    width="stretch")
    st.dataframe(rows.drop(columns=["variable", "low", "high"]), hide_index=True)


# ---------------------------------------------------------------------------------------
# The formats under the joint prior of the assumptions


@dataclass(frozen=True)
class UncertaintyResult:
    """Per format under the prior (``table``: :func:`api.uncertainty_table`), the uncertain
    parameters (``uncertain``; ``note`` says what to do when there are none) and, when map
    axes were given, ``prior_map`` (:func:`api.prior_map`) with ``maps`` describing them."""

    scenario: str
    samples: int
    calibrated: bool
    table: pd.DataFrame
    uncertain: list[str]
    names: dict[str, str] = field(default_factory=dict)
    note: str | None = None
    prior_map: Any = None
    maps: list[MapSpec] = field(default_factory=list)


def compute_uncertainty(scenario, formats=None, samples: int = DEFAULT_PRIOR_SAMPLES,
                        calibrated: bool = True, map_x: tuple[str, Any] | None = None,
                        map_y: tuple[str, Any] | None = None, *,
                        map_samples: int = DEFAULT_MAP_SAMPLES) -> UncertaintyResult:
    """Each format of ``formats`` (as :func:`api.uncertainty_table` takes them) under the
    joint prior of ``scenario``'s and the formats' distributions (``samples`` points;
    ``calibrated`` adds the priors fitted to base rates), and, with ``map_x`` and ``map_y``
    (each (parameter path, values)), the maps over them, the rest integrated over the
    prior (``map_samples`` points per cell)."""
    if (map_x is None) != (map_y is None):
        given, missing = ("map_x", "map_y") if map_y is None else ("map_y", "map_x")
        raise api.ConfigError(f"{missing} = None: give both map axes or neither ({given} "
                              "is given)")
    table = api.uncertainty_table(scenario, formats, samples=samples, calibrated=calibrated)
    uncertain = api.uncertain_parameters(scenario, formats, calibrated=calibrated)
    name = getattr(scenario, "name", str(scenario))
    priors = " and no calibrated priors" if calibrated else ""
    note = None if uncertain else (
        f"Scenario {name!r} has no distributions{priors}: "
        f"every prior point is the same point, so the intervals have no width; use "
        f"{UNCERTAIN_SCENARIO} or give its parameters distributions (docs/analysis.md, "
        f"\"Uncertainty\").")
    prior, maps = None, []
    if map_x is not None:
        prior = api.prior_map(scenario, formats, x=map_x, y=map_y, samples=map_samples,
                              calibrated=calibrated)
        x, y = api.dim_name(map_x[0]), api.dim_name(map_y[0])
        maps = [MapSpec(prior, variable, title, x, y, map_x[0], map_y[0], by_format=True,
                        domain=(0.0, 1.0)) for variable, title in PRIOR_MAP_TITLES.items()]
    return UncertaintyResult(name, samples, calibrated, table, uncertain,
                             format_names(table.index), note, prior, maps)


def uncertainty_frame(result: UncertaintyResult) -> pd.DataFrame:
    """One row per format and quantity of :data:`UNCERTAINTY_QUANTITIES`: ``estimate``, its
    95% interval ``low`` to ``high``, and the prior's 5-95% range ``prior_low`` to
    ``prior_high`` (NaN where not defined)."""
    rows = []
    for fid, row in result.table.iterrows():
        for column, (label, q05, q95) in UNCERTAINTY_QUANTITIES.items():
            rows.append({"format": fid, "format_name": result.names.get(fid, fid),
                         "quantity": label, "estimate": row[column],
                         "low": row[f"{column}_low"], "high": row[f"{column}_high"],
                         "prior_low": row[q05] if q05 else np.nan,
                         "prior_high": row[q95] if q95 else np.nan})
    return pd.DataFrame(rows)


def draw_uncertainty_table(result: UncertaintyResult) -> None:
    """Per format and quantity the point estimate with its 95% interval as an error bar
    over the prior's 5-95% range (a wide grey bar, for P(deterred)), on one scale from 0 to
    1; the table beneath; the note when the scenario has no distributions."""
    if result.note is not None:
        st.warning(result.note)
    frame = uncertainty_frame(result)
    y = alt.Y("format_name:N", title=None)
    unit = alt.Scale(domain=[0, 1])
    tooltip = ["format_name:N", "quantity:N",
               alt.Tooltip("estimate:Q", format=".3f"),
               alt.Tooltip("low:Q", title="95% interval from", format=".3f"),
               alt.Tooltip("high:Q", title="95% interval to", format=".3f"),
               alt.Tooltip("prior_low:Q", title="prior's 5%", format=".3f"),
               alt.Tooltip("prior_high:Q", title="prior's 95%", format=".3f")]
    base = alt.Chart(frame)
    spread = base.mark_bar(color=RANGE_COLOUR, size=TORNADO_ROW_HEIGHT * 0.7).encode(
        x=alt.X("prior_low:Q", scale=unit, title=None), x2="prior_high:Q", y=y,
        tooltip=tooltip)
    interval = base.mark_errorbar(ticks=True, color=INTERVAL_COLOUR).encode(
        x=alt.X("low:Q", scale=unit, title=None), x2="high:Q", y=y, tooltip=tooltip)
    point = base.mark_point(filled=True, size=60, color=NARROW_COLOUR).encode(
        x=alt.X("estimate:Q", scale=unit), y=y, tooltip=tooltip)
    chart = alt.layer(spread, interval, point).properties(
        width=TORNADO_WIDTH, height=TORNADO_ROW_HEIGHT * len(result.table)).facet(
        column=alt.Column("quantity:N", title=None, sort=[
            label for label, _, _ in UNCERTAINTY_QUANTITIES.values()]))
    st.altair_chart(chart)
    st.dataframe(result.table)
    st.caption(f"{result.samples} points of the joint prior of {len(result.uncertain)} "
               f"uncertain parameters ({', '.join(result.uncertain) or 'none'})"
               f"{', with the calibrated priors' if result.calibrated else ''}.")


# ---------------------------------------------------------------------------------------
# How to read each analysis

HOW_TO_READ = {
    "sensitivity": (
        "**Global sensitivity.** A Sobol design (Saltelli's extension of a scrambled Sobol "
        "sequence, N (k + 2) points for k parameters) or Morris trajectories is drawn over "
        "the ranges of the sweep's axes and simulated under every format with the sweep's "
        "replicates and seeds (SALib estimates the indices; docs/analysis.md). Each outcome "
        "is its mean over the replicates at a design point. **S1** is the share of the "
        "outcome's variance due to a parameter alone, **ST** with all its interactions "
        "(the bar; S1 the bar inside it); ST − S1 is the interactions' share. Run-to-run "
        "noise is variance no parameter explains, so the S1 sum to less than 1. The "
        "whiskers are 95% bootstrap intervals: with few samples (64) they are wide and an "
        "index may come out below 0 or above 1, which is the estimator's noise, not a "
        "share; give more samples before reading small differences. **Morris**: mu* (the "
        "bar) is the mean absolute elementary effect, a ranking, not a share; sigma (the "
        "diamond) its spread, large for non-linear or interacting parameters. An outcome "
        "that does not vary over the design has no indices."),
    "prim": (
        "**Scenario discovery (PRIM).** A point *fails* where the outcome's mean over "
        "replicates exceeds the threshold (or the exact regime is not deterred). PRIM "
        "(Friedman & Fisher 1999, ema_workbench's implementation) peels thin slices off a "
        "box around every point, each time the slice whose removal most raises the box's "
        "**density** (the share of its points that fail), trading away **coverage** (the "
        "share of all failing points inside it). The curve shows every box along the peel; "
        "the highlighted one is the box of highest coverage with at least the density "
        "asked for (else the densest; Bryant & Lempert 2010), not necessarily the last. "
        "On a grid a limit lies midway between two grid values. With few grid points a box "
        "says little: PRIM needs at least 10 points, and a box of a few points may be "
        "chance."),
    "comparison": (
        "**Paired comparison.** Run r at each grid point uses the same random numbers under "
        "every format (common random numbers), so differences are paired per grid point "
        "and replicate. The headline and the error bars average over every pair, mean ± "
        "1.96 sd/√n in **percentage points** (a difference of shares times 100): over the "
        "swept range as well as over chance. The **grid points** lower / higher are those "
        "whose own 95% Student-t interval over the replicates excludes 0 (at least 2 "
        "replicates are needed); with many grid points some pass by chance, so the next "
        "column keeps those that survive Benjamini–Hochberg control of the false discovery "
        "rate at 5%."),
    "uncertainty": (
        "**Under the prior.** The assumptions with distributions are sampled together (a "
        "scrambled Sobol sample of the joint prior, the same points for every format) and "
        "the crisis game is solved exactly at each point. **P(deterred)** = E[1 − "
        "P(escalate)] is the prior-predictive probability that Russia refrains, with the "
        "Monte Carlo 95% interval of that mean (the error bar) and the prior's 5–95% range "
        "of 1 − P(escalate) (the grey bar): the interval shrinks with more samples, the "
        "range does not. **P(deterrence holds)** is the prior probability of the deterred "
        "regime, with a Wilson interval. A scenario without distributions has one point: "
        "use baseline_uncertain.toml or add distributions (docs/analysis.md, "
        "\"Uncertainty\"). The maps fix two parameters and integrate the rest over the "
        "prior."),
}
