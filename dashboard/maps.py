"""The dashboard's maps: one chart per quantity, every format a panel of it.

:func:`format_map` draws a quantity of a dataset over the sweep's two axes (dims
``format`` and the axes' NetCDF names, :func:`deterrence.api.dim_name`) as a faceted
heatmap: one colour scale and one legend for all formats (so colours mean the same in
every panel), the formats' names as panel headers (never clipped: Vega-Lite draws them
above the panel, ``labelLimit`` 0), the parameters' labels with their units as axis titles
(:func:`axis_title`, from the schema), a tick at every swept value up to
:data:`MAX_TICKS` values (then evenly thinned, never every other one by overlap), a
tooltip with every value computed for the cell, and a white-ringed black point at each
format's own value of the two parameters where it lies in the swept range.

Panels are :data:`PANEL_WIDTH` x :data:`PANEL_HEIGHT` pixels, ``columns`` to a row (the
page's "Maps per row"); a Vega-Lite facet cannot stretch to its container, so the page
chooses how many panels fit across. Cells are rectangles between the midpoints of the
swept values on quantitative axes, so uneven grids are drawn to scale and the markers sit
where the format's value lies.
"""

from __future__ import annotations

import re
import textwrap
from dataclasses import dataclass

import altair as alt
import numpy as np
import pandas as pd

from deterrence import api

#: Size of one format's panel, in pixels: at 3 panels per row the maps of a 1280 px
#: window with the sidebar open fit without scrolling sideways.
PANEL_WIDTH = 230
PANEL_HEIGHT = 180
#: Panels per row unless the page says otherwise.
DEFAULT_COLUMNS = 3
#: Ticks on an axis: every swept value up to this many, then this many evenly spaced.
MAX_TICKS = 9
#: Colour schemes, colour-blind safe: sequential (viridis), diverging (blue-orange).
SEQUENTIAL = "viridis"
DIVERGING = "blueorange"
#: Longest line of an axis title, in characters: at Vega-Lite's 11 px bold it stays within a
#: panel's width, so the titles of neighbouring panels do not run into each other.
AXIS_TITLE_CHARS = 34
#: Space around a chart, in pixels: Vega measures rotated axis titles a little short.
CHART_PADDING = {"left": 8, "right": 8, "top": 8, "bottom": 8}
#: Number format of parameter values and of computed values in tooltips.
VALUE_FORMAT = ".3g"
#: The marker of a format's own value of the axis parameters.
OWN_VALUE_LABEL = "the format's own value"
OWN_MARKER_SIZE = 90
#: The normal distribution's 97.5% quantile: a 95% interval is the mean ± this many
#: standard errors.
Z_95 = 1.959963984540054
#: Summaries that are codes or rounds, not quantities to average over replicates.
NOT_AVERAGED = ("end_state", "first_escalation", "end_round")


def short_unit(unit: str) -> str:
    """The unit without its explanations in brackets ("Russia's utility (achieving its war
    aims is worth 1 ...)" -> "Russia's utility")."""
    return re.sub(r"\s*\([^)]*\)", "", unit).strip()


def axis_title(path: str) -> str:
    """A parameter's label with its unit, from the schema: "War cost (Russia's utility)"."""
    label, unit = api.parameter_label(path)
    unit = short_unit(unit)
    return f"{label} ({unit})" if unit else label


def axis_lines(path: str) -> list[str]:
    """:func:`axis_title` in lines of at most :data:`AXIS_TITLE_CHARS` characters (Vega-Lite
    draws a list as lines)."""
    return textwrap.wrap(axis_title(path), AXIS_TITLE_CHARS)


@dataclass(frozen=True)
class Quantity:
    """How a variable is coloured: ``kind`` "probability"/"share" (0 to 1), "years" (0 to
    ``domain[1]``), "count" (ordinal), "regime" (the regimes' colours), "difference"
    (diverging around 0) or "value" (its own range); ``title`` names it on the legend."""

    variable: str
    title: str
    kind: str = "probability"
    domain: tuple[float, float] | None = None


def _edges(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each swept value's cell: from the midpoint with its neighbour below to that with its
    neighbour above (half a step beyond the ends)."""
    values = np.asarray(values, dtype=float)
    if values.size == 1:
        half = max(abs(values[0]) * 0.05, 0.5)
        return values - half, values + half
    mids = (values[1:] + values[:-1]) / 2
    low = np.concatenate([[values[0] - (mids[0] - values[0])], mids])
    high = np.concatenate([mids, [values[-1] + (values[-1] - mids[-1])]])
    return low, high


def _ticks(values: np.ndarray) -> list[float]:
    values = [float(v) for v in values]
    if len(values) <= MAX_TICKS:
        return values
    picks = np.unique(np.round(np.linspace(0, len(values) - 1, MAX_TICKS)).astype(int))
    return [values[k] for k in picks]


def cell_frame(dataset, axes: list[str], names: dict[str, str],
               columns: list[str] | None = None) -> pd.DataFrame:
    """One row per format and point: the format's name, the two parameter values (``x``,
    ``y``) and their cells' edges, and every variable of ``dataset`` over (format, x, y)
    (or those in ``columns``); a variable with one more dim (``guarantor``) gives a column
    per label (``credibility UK``)."""
    x_dim, y_dim = (api.dim_name(p) for p in axes)
    xs, ys = dataset[x_dim].values, dataset[y_dim].values
    x_low, x_high = _edges(xs)
    y_low, y_high = _edges(ys)
    formats = [str(f) for f in dataset["format"].values]
    ix, iy = np.meshgrid(np.arange(xs.size), np.arange(ys.size), indexing="ij")
    ix, iy = ix.ravel(), iy.ravel()
    frames = []
    for fid in formats:
        frame = {"format": fid, "name": names.get(fid, fid), "x": xs[ix], "y": ys[iy],
                 "x0": x_low[ix], "x1": x_high[ix], "y0": y_low[iy], "y1": y_high[iy]}
        for var in columns or list(dataset.data_vars):
            da = dataset[var].sel(format=fid)
            extra = [d for d in da.dims if d not in (x_dim, y_dim)]
            if not extra:
                frame[var] = _decoded(da, da.transpose(x_dim, y_dim).values.ravel())
            elif len(extra) == 1:
                for label in da[extra[0]].values:
                    frame[f"{var} {label}"] = da.sel({extra[0]: label}).transpose(
                        x_dim, y_dim).values.ravel()
        frames.append(pd.DataFrame(frame))
    return pd.concat(frames, ignore_index=True)


def _decoded(da, values: np.ndarray) -> np.ndarray:
    """A coded variable's values as their meanings (CF ``flag_values``/``flag_meanings``:
    the regime's code 0 as "deterred"), so a tooltip shows words, not codes."""
    if "flag_meanings" not in da.attrs:
        return values
    meanings = dict(zip(np.asarray(da.attrs["flag_values"]).tolist(),
                        da.attrs["flag_meanings"].split(), strict=True))
    return np.array([meanings.get(int(v), "not computed") for v in values], dtype=object)


def _colour(quantity: Quantity, field: str, frame: pd.DataFrame) -> alt.Color:
    legend = alt.Legend(orient="top", title=quantity.title, titleLimit=0, labelLimit=0)
    if quantity.kind == "regime":
        return alt.Color(f"{field}:N", legend=legend, scale=alt.Scale(
            domain=list(api.REGIME_NAMES), range=[api.REGIME_COLOURS[n]
                                                  for n in api.REGIME_NAMES]))
    if quantity.kind == "count":
        top = int(max(2, np.nanmax(frame[field]) if len(frame) else 2))
        return alt.Color(f"{field}:O", legend=legend, scale=alt.Scale(
            scheme=SEQUENTIAL, domain=list(range(1, top + 1))))
    if quantity.kind == "difference":
        return alt.Color(f"{field}:Q", legend=legend,
                         scale=alt.Scale(scheme=DIVERGING, domainMid=0))
    domain = quantity.domain or ((0.0, 1.0) if quantity.kind in ("probability", "share")
                                 else None)
    scale = alt.Scale(scheme=SEQUENTIAL, domain=list(domain)) if domain else \
        alt.Scale(scheme=SEQUENTIAL)
    return alt.Color(f"{field}:Q", legend=legend, scale=scale)


def _tooltips(frame: pd.DataFrame, axes: list[str], first: str,
              labels: dict[str, str]) -> list[alt.Tooltip]:
    tips = [alt.Tooltip("name:N", title="format"),
            alt.Tooltip("x:Q", title=axis_title(axes[0]), format=VALUE_FORMAT),
            alt.Tooltip("y:Q", title=axis_title(axes[1]), format=VALUE_FORMAT)]
    skip = {"format", "name", "x", "y", "x0", "x1", "y0", "y1", "layer"}
    order = [first] + [c for c in frame.columns if c not in skip and c != first]
    for column in order:
        numeric = pd.api.types.is_numeric_dtype(frame[column])
        base = column.split(" ")[0]
        title = labels.get(base, column) + column[len(base):] if base in labels else column
        tips.append(alt.Tooltip(f"{column}:{'Q' if numeric else 'N'}", title=title,
                                **({"format": VALUE_FORMAT} if numeric else {})))
    return tips


def own_values(plan, axes: list[str]) -> dict[str, tuple[float | None, float | None]]:
    """Each format's own value of the two axis parameters (its format file's, or the
    scenario's for a scenario parameter), None where the path is not one value of it."""
    out = {}
    for fid, fmt in plan.formats.items():
        out[fid] = tuple(_own_value(plan.scenario, fmt, path) for path in axes)
    return out


def _own_value(scenario, fmt, path: str) -> float | None:
    parts = path.split(".")
    try:
        if parts[0] == "format":
            node = fmt
            for part in parts[1:]:
                node = node[part] if isinstance(node, dict) else getattr(node, part)
            return float(node)
        if parts[0] == "guarantors":
            values = {float(getattr(g, parts[2])) for g in scenario.guarantors
                      if parts[1] in ("*", g.id)}
            return values.pop() if len(values) == 1 else None
        return float(getattr(getattr(scenario, parts[0]), parts[1]))
    except (AttributeError, KeyError, TypeError, ValueError):
        return None


def format_map(dataset, quantity: Quantity, axes: list[str], names: dict[str, str], *,
               own: dict[str, tuple[float | None, float | None]] | None = None,
               columns: int = DEFAULT_COLUMNS, frame: pd.DataFrame | None = None,
               outline: str | None = None) -> alt.FacetChart:
    """One faceted map of ``quantity`` for every format of ``dataset`` (module docstring).
    ``frame`` (from :func:`cell_frame`) may be given to share its work between maps;
    ``outline`` names a boolean column whose true cells get a black border (e.g. sets of
    equilibria not proven complete)."""
    frame = cell_frame(dataset, axes, names) if frame is None else frame
    field = quantity.variable
    frame = frame.copy()
    frame["layer"] = "cell"
    markers = []
    xs = np.unique(frame["x"]), np.unique(frame["y"])
    for fid, (ox, oy) in (own or {}).items():
        if fid not in set(frame["format"]):
            continue
        inside = [v is not None and lo.min() <= v <= lo.max()
                  for v, lo in ((ox, xs[0]), (oy, xs[1]))]
        if ox is None and oy is None or not any(inside):
            continue
        # a value not on this axis (or outside its range) puts the marker on the edge
        mx = ox if inside[0] else float(xs[0].min())
        my = oy if inside[1] else float(xs[1].min())
        markers.append({"format": fid, "name": names.get(fid, fid), "x": mx, "y": my,
                        "layer": "own", "marker": OWN_VALUE_LABEL})
    data = pd.concat([frame, pd.DataFrame(markers)], ignore_index=True) if markers else frame
    x_values, y_values = xs
    x_scale = alt.Scale(domain=[float(frame["x0"].min()), float(frame["x1"].max())],
                        nice=False, zero=False)
    y_scale = alt.Scale(domain=[float(frame["y0"].min()), float(frame["y1"].max())],
                        nice=False, zero=False)
    x_axis = alt.Axis(values=_ticks(x_values), format=VALUE_FORMAT, labelOverlap=False,
                      labelAngle=-45 if len(_ticks(x_values)) > 5 else 0, titleLimit=0)
    y_axis = alt.Axis(values=_ticks(y_values), format=VALUE_FORMAT, labelOverlap=False,
                      titleLimit=0)
    base = alt.Chart().properties(width=PANEL_WIDTH, height=PANEL_HEIGHT)
    cells = base.mark_rect().encode(
        x=alt.X("x0:Q", title=axis_lines(axes[0]), scale=x_scale, axis=x_axis),
        x2="x1:Q",
        y=alt.Y("y0:Q", title=axis_lines(axes[1]), scale=y_scale, axis=y_axis),
        y2="y1:Q",
        color=_colour(quantity, field, frame),
        tooltip=_tooltips(frame.drop(columns=["layer"]), axes, field, {
            var: dataset[var].attrs.get("long_name", var) for var in dataset.data_vars}),
    ).transform_filter(alt.datum.layer == "cell")
    if outline is not None:
        cells = cells.encode(
            stroke=alt.condition(f"datum['{outline}']", alt.value("black"), alt.value(None)),
            strokeWidth=alt.condition(f"datum['{outline}']", alt.value(2), alt.value(0)))
    layers = [cells]
    if markers:
        layers.append(base.mark_point(filled=True, color="black", stroke="white",
                                      strokeWidth=1.5, size=OWN_MARKER_SIZE).encode(
            x="x:Q", y="y:Q",
            shape=alt.Shape("marker:N", legend=alt.Legend(orient="top", title=None)),
            tooltip=[alt.Tooltip("name:N", title="format"),
                     alt.Tooltip("marker:N", title="marker")],
        ).transform_filter(alt.datum.layer == "own"))
    order = list(dict.fromkeys(frame["name"]))
    return alt.layer(*layers, data=data).facet(
        facet=alt.Facet("name:N", sort=order, title=None,
                        header=alt.Header(labelLimit=0, labelFontSize=13,
                                          labelFontWeight="bold", labelPadding=6)),
        columns=columns,
    ).resolve_scale(color="shared").configure_view(stroke=None).properties(
        padding=CHART_PADDING)


def mean_over_replicates(sim) -> object:
    """The simulated summaries' means over replicates, with the 95% interval's half-width
    of each (``<name> ± 95%``: 1.96 standard errors; NaN with one replicate)."""
    sim = sim.drop_vars([v for v in NOT_AVERAGED if v in sim.data_vars])
    mean = sim.mean("replicate", skipna=True)
    count = sim.count("replicate")
    spread = sim.std("replicate", skipna=True, ddof=1)
    half = Z_95 * spread / np.sqrt(count.where(count > 1))
    out = mean.copy()
    for name in list(sim.data_vars):
        out[f"{name} ± 95%"] = half[name]
    return out
