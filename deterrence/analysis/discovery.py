"""Scenario discovery: the region of parameter space where an outcome fails.

PRIM (the patient rule induction method, Friedman & Fisher 1999) peels thin slices off a
box around all points, each time the slice whose removal most raises the share of failing
points inside (the box's *density*), then pastes slices back while that share rises. Every
box on this peeling trajectory trades *coverage* (the share of all failing points that lie
inside) against density; :func:`find_box` picks one by a stated rule (Bryant & Lempert
2010). ema_workbench's implementation does the peeling and pasting.

On a grid the peel removes whole grid lines, so a limit lies midway between two grid
values; the box holds the same points as a limit at either neighbour would.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..game.config import require_extra

#: Fewer points than this are refused: a box over a handful of points says nothing.
MIN_POINTS = 10
#: The exact outcome that needs no threshold: the exact regime is not "deterred".
REGIME_OUTCOME = "regime_not_deterred"


@dataclass(frozen=True)
class TradeOff:
    """One box on the peeling trajectory."""

    coverage: float   # share of all failing points inside the box
    density: float    # share of the box's points that fail
    mass: float       # share of all points inside the box
    restricted: int   # number of restricted parameters
    # the box's restricted parameters as (lower, upper), as :attr:`Box.limits`
    limits: dict[str, tuple[float, float]] = field(default_factory=dict)


@dataclass(frozen=True)
class Box:
    """A box found by PRIM: where ``outcome_label`` holds.

    ``limits`` lists only the restricted parameters, in parameter order, as (lower, upper)
    with both ends inside the box; ``ranges`` is each analysed parameter's own (min, max)
    over the points, so a limit equal to an end of its range does not restrict that side.
    ``trajectory[selected]`` is this box.
    """

    limits: dict[str, tuple[float, float]]
    coverage: float
    density: float
    mass: float
    cases: int
    outcome_label: str = "y"
    trajectory: tuple[TradeOff, ...] = ()
    ranges: dict[str, tuple[float, float]] = field(default_factory=dict)
    selected: int = 0

    def conditions(self) -> list[str]:
        """Each restriction as text: ``p < b``, ``p > a`` or ``p between a and b``."""
        return conditions(self.limits, self.ranges)

    def describe(self) -> str:
        """One line, e.g. ``escalation frequency > 0.5 when russia.war_cost < 0.35 and
        ... (coverage 0.81, density 0.77)``."""
        conditions = self.conditions()
        where = (f"when {' and '.join(conditions)}" if conditions
                 else "over the whole sampled range")
        return (f"{self.outcome_label} {where} (coverage {self.coverage:.2f}, "
                f"density {self.density:.2f})")


def conditions(limits: Mapping[str, tuple[float, float]],
               ranges: Mapping[str, tuple[float, float]]) -> list[str]:
    """Each restriction of ``limits`` (a box's, or a :class:`TradeOff`'s) as text: ``p <
    b``, ``p > a`` or ``p between a and b``; a limit at an end of its parameter's range in
    ``ranges`` does not restrict that side."""
    out = []
    for name, (low, high) in limits.items():
        rmin, rmax = ranges.get(name, (-np.inf, np.inf))
        cut_low = np.isfinite(low) and low > rmin
        cut_high = np.isfinite(high) and high < rmax
        if cut_low and cut_high:
            out.append(f"{name} between {low:.3g} and {high:.3g}")
        elif cut_high:
            out.append(f"{name} < {high:.3g}")
        elif cut_low:
            out.append(f"{name} > {low:.3g}")
    return out


def trajectory_table(box: Box):
    """The peeling trajectory of ``box`` as a ``pandas.DataFrame``, one row per box along
    the peel (index ``box``: 0 is the whole range): ``coverage``, ``density``, ``mass``,
    ``restricted``, ``selected`` (the row of ``box`` itself), ``conditions`` (its
    restrictions as text, "; "-separated; empty for the whole range) and, per analysed
    parameter, ``<parameter>_low`` and ``<parameter>_high`` (its range where the box does
    not restrict it)."""
    import pandas as pd

    rows = []
    for i, step in enumerate(box.trajectory):
        row = {"box": i, "coverage": step.coverage, "density": step.density,
               "mass": step.mass, "restricted": step.restricted,
               "selected": i == box.selected,
               "conditions": "; ".join(conditions(step.limits, box.ranges))}
        for name, (rmin, rmax) in box.ranges.items():
            low, high = step.limits.get(name, (rmin, rmax))
            row[f"{name}_low"], row[f"{name}_high"] = max(low, rmin), min(high, rmax)
        rows.append(row)
    return pd.DataFrame(rows).set_index("box")


def find_box(x: Mapping[str, Any], y, *, min_density: float = 0.8, mass_min: float = 0.05,
             peel_alpha: float = 0.05, paste_alpha: float = 0.05,
             outcome_label: str = "y") -> Box | None:
    """The PRIM box around the points where ``y`` is true.

    Parameters
    ----------
    x : mapping of parameter name to a 1-D array of values, one per point. Parameters
        with a single value are left out.
    y : 1-D boolean array: the points of interest (e.g. failures).
    min_density : the box chosen is the one with the highest coverage among the boxes on
        the peeling trajectory with density >= ``min_density``; ties go to the higher
        density, then to fewer restricted parameters. If no box reaches it, the densest
        box (Bryant & Lempert 2010: coverage and density trade off along the trajectory;
        the analyst states the density wanted).
    mass_min : smallest share of the points a box may hold (peeling stops there).
    peel_alpha, paste_alpha : share of a box's points peeled, or pasted, per step.
    outcome_label : what ``y`` means, for :meth:`Box.describe`.

    Returns
    -------
    The box, or None if no point has ``y`` true. If every point has it, or no parameter
    varies, the box is the whole range (no limits).
    """
    columns, flags = _checked(x, y)
    for name, value, low, high in (("min_density", min_density, 0.0, 1.0),
                                   ("mass_min", mass_min, 0.0, 1.0),
                                   ("peel_alpha", peel_alpha, 0.0, 0.5),
                                   ("paste_alpha", paste_alpha, 0.0, 0.5)):
        upper_ok = value <= high if name == "min_density" else value < high
        if not (value > low and upper_ok):
            closing = "]" if name == "min_density" else ")"
            raise ValueError(f"{name} = {value!r}: must be in ({low}, {high}{closing}")
    n, positives = flags.size, int(flags.sum())
    if positives == 0:
        return None
    columns = {k: v for k, v in columns.items() if v.min() < v.max()}
    ranges = {k: (float(v.min()), float(v.max())) for k, v in columns.items()}
    if positives == n or not columns:
        whole = TradeOff(1.0, positives / n, 1.0, 0)
        return Box({}, whole.coverage, whole.density, whole.mass, n, outcome_label,
                   (whole,), ranges, 0)

    import pandas as pd

    names = list(columns)
    # neutral column names: ema_workbench drops a column called "scenario"
    frame = pd.DataFrame({f"x{j}": columns[k] for j, k in enumerate(names)})
    prim = _prim_module()
    with _quiet():
        # threshold: a point is of interest if y >= threshold (so any value in (0, 1]), and
        # the final box is discarded unless its mean reaches it. Peeling and pasting only
        # raise the mean, so below the base rate the peeled box is always kept.
        finder = prim.Prim(frame, flags.astype(np.int64), threshold=0.5 / n,
                           peel_alpha=peel_alpha, paste_alpha=paste_alpha, mass_min=mass_min)
        found = finder.find_box()
    table = found.peeling_trajectory

    def restricted(lims) -> dict[str, tuple[float, float]]:
        """The parameters whose limits in ``lims`` (ema_workbench's box) cut their range."""
        out = {}
        for j, name in enumerate(names):
            low, high = float(lims.loc[0, f"x{j}"]), float(lims.loc[1, f"x{j}"])
            if low > ranges[name][0] or high < ranges[name][1]:
                out[name] = (low, high)
        return out

    trajectory = tuple(TradeOff(float(r.coverage), float(r.density), float(r.mass),
                                int(r.res_dim), restricted(lims))
                       for r, lims in zip(table.itertuples(), found.box_lims, strict=True))
    dense = [i for i, t in enumerate(trajectory) if t.density >= min_density - 1e-12]
    if dense:
        best = max(dense, key=lambda i: (trajectory[i].coverage, trajectory[i].density,
                                         -trajectory[i].restricted, -i))
    else:
        best = max(range(len(trajectory)),
                   key=lambda i: (trajectory[i].density, trajectory[i].coverage,
                                  -trajectory[i].restricted, -i))
    chosen = trajectory[best]
    return Box(dict(chosen.limits), chosen.coverage, chosen.density, chosen.mass,
               int(table["n"].iloc[best]), outcome_label, trajectory, ranges, best)


def find_failure_box(sim, exact, format_id: str, outcome: str = "escalation_frequency",
                     threshold: float = 0.5, **kw: Any) -> Box | None:
    """The PRIM box of a sweep's points where a format fails.

    Parameters
    ----------
    sim, exact : a sweep's simulated and exact datasets (:mod:`deterrence.sweep.datasets`); only the
        one the outcome needs is read, the other may be None.
    format_id : the format analysed.
    outcome : a simulated summary (failure: its mean over replicates > ``threshold``;
        points where it is NaN in every replicate are left out), or
        ``"regime_not_deterred"`` (failure: the exact regime is not "deterred").
    threshold : the failure threshold on the simulated mean.
    **kw : passed to :func:`find_box` (``min_density``, ``mass_min``, ...).

    The parameters are the sweep's coordinates: the grid axes, broadcast over the grid, or
    the per-sample values of a Latin hypercube or Sobol sweep. Parameters that do not vary
    are left out.
    """
    from ..solve.equilibrium import REGIME_NAMES
    from ..sweep.datasets import QUANTITY_OUTPUTS

    allowed = (*QUANTITY_OUTPUTS, REGIME_OUTCOME)
    if outcome not in allowed:
        raise ValueError(f"outcome = {outcome!r}: allowed: {', '.join(allowed)}")
    if outcome == REGIME_OUTCOME:
        data, variable, which = exact, "regime", "exact"
    else:
        if not np.isfinite(threshold):
            raise ValueError(f"threshold = {threshold!r}: must be a finite number")
        data, variable, which = sim, outcome, "sim"
    if data is None:
        raise ValueError(f"outcome {outcome!r} is read from {which}, which is None")
    if variable not in data.data_vars:
        raise ValueError(f"{which} has no variable {variable!r}; it has: "
                         f"{', '.join(map(str, data.data_vars))}")
    formats = [str(f) for f in data["format"].values]
    if format_id not in formats:
        raise ValueError(f"format_id = {format_id!r}: not in the sweep; allowed: "
                         f"{', '.join(formats)}")
    values = data[variable].sel(format=format_id, drop=True)
    if "replicate" in values.dims:
        values = values.mean("replicate", skipna=True)
    x = _parameters(values)
    flat = values.values.astype(np.float64).ravel()
    keep = np.isfinite(flat)
    if outcome == REGIME_OUTCOME:
        y = flat[keep] != REGIME_NAMES.index("deterred")
        label = "regime not deterred"
    else:
        y = flat[keep] > threshold
        label = f"{outcome.replace('_', ' ')} > {threshold:.3g}"
    x = {k: v[keep] for k, v in x.items()}
    return find_box(x, y, **{"outcome_label": label, **kw})


def _parameters(values) -> dict[str, np.ndarray]:
    """Each numeric coordinate along the points, broadcast over them and flattened, by its
    parameter path."""
    from ..sweep.datasets import parameter_path

    names = [d for d in values.dims if d in values.coords and d != "sample"]
    names += [c for c in values.coords if c not in values.dims and values[c].ndim > 0
              and set(values[c].dims) <= set(values.dims)]
    out = {}
    for name in names:
        coord = values[name]
        if np.issubdtype(coord.dtype, np.number):
            full = coord.broadcast_like(values).transpose(*values.dims)
            out[parameter_path(str(name))] = full.values.astype(np.float64).ravel()
    if not out:
        raise ValueError(f"no parameter coordinates along the points (dims {values.dims})")
    return out


def _checked(x: Mapping[str, Any], y) -> tuple[dict[str, np.ndarray], np.ndarray]:
    flags = np.asarray(y)
    if flags.dtype != np.bool_:
        raise ValueError(f"y: must be a boolean array, got dtype {flags.dtype}; compare the "
                         "outcome with a threshold first (e.g. values > 0.5)")
    if flags.ndim != 1:
        raise ValueError(f"y: must be one-dimensional, got shape {flags.shape}")
    if not isinstance(x, Mapping) or not x:
        raise ValueError("x: must map at least one parameter name to its values")
    columns = {}
    for name, raw in x.items():
        try:
            values = np.asarray(raw, dtype=np.float64)
        except (TypeError, ValueError):
            raise ValueError(f"x[{name!r}]: not numeric") from None
        if values.ndim != 1 or values.size != flags.size:
            raise ValueError(f"x[{name!r}]: shape {values.shape}, but y has "
                             f"{flags.size} points")
        bad = np.flatnonzero(~np.isfinite(values))
        if bad.size:
            raise ValueError(f"x[{name!r}]: {bad.size} values are NaN or infinite "
                             f"(first at index {bad[0]})")
        columns[str(name)] = values
    if flags.size < MIN_POINTS:
        raise ValueError(f"y: {flags.size} points; at least {MIN_POINTS} are needed")
    return columns, flags


def _prim_module():
    """ema_workbench's PRIM, imported quietly (about 2.5 s; it warns that an optional
    package is missing and resets matplotlib's colour cycle)."""
    require_extra("ema_workbench", "discovery", "scenario discovery (PRIM)")
    import matplotlib

    with warnings.catch_warnings(), matplotlib.rc_context():
        warnings.filterwarnings("ignore", message="ipyparallel", category=UserWarning)
        from ema_workbench.analysis import prim
    return prim


@contextmanager
def _quiet() -> Iterator[None]:
    """ema_workbench's progress messages and the pandas deprecation warnings it triggers
    are not shown while it runs."""
    logger = logging.getLogger("EMA")
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            warnings.simplefilter("ignore", DeprecationWarning)
            yield
    finally:
        logger.setLevel(level)
