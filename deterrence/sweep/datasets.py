"""Labelled arrays of a sweep: the exact solutions and the simulated summaries per point."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..game.payoffs import build_game
from ..simulate.engine import SUMMARY_DESCRIPTIONS
from ..solve.equilibrium import MAP_VARIABLES
from .spec import Plan

OUTPUTS = ("escalation_frequency", "abandoned_given_escalation", "deterred_share",
           "first_escalation")
EXACT_OUTPUTS = ("regime", "worst_escalates", "worst_stability", "worst_max_real_eigenvalue",
                 "equilibrium_count")
#: Where each dataset lives in an archive.
SIMULATION_FILE = "data/simulation.nc"
EXACT_FILE = "data/exact.nc"
SENSITIVITY_DESIGN_FILE = "data/sensitivity.nc"


def _layout(plan: Plan):
    """Dimensions, shape and coordinates of the points: one dimension per grid axis, or
    ``sample`` with one coordinate per parameter."""
    spec = plan.spec
    if plan.grid_shape is not None:
        coords = {a.path: np.unique(plan.points[:, j]) if a.values is None
                  else np.asarray(a.values, dtype=np.float64)
                  for j, a in enumerate(spec.axes)}
        return tuple(a.path for a in spec.axes), plan.grid_shape, coords
    coords: dict[str, Any] = {"sample": np.arange(plan.cells)}
    coords.update({a.path: ("sample", plan.points[:, j]) for j, a in enumerate(spec.axes)})
    return ("sample",), (plan.cells,), coords


def _solve(plan: Plan, points: np.ndarray) -> list:
    from ..solve.equilibrium import solve_grid

    solutions = []
    for fid in plan.formats:
        game = build_game(plan.scenario, plan.formats[fid],
                          {a.path: points[:, j] for j, a in enumerate(plan.spec.axes)})
        solutions.append(solve_grid(
            game, defended_below=plan.scenario.analysis.defended_below_russia_success,
            threads=1))
    return solutions


def exact_dataset(plan: Plan):
    """The exact solver's regime and stability at every point, per format."""
    import xarray as xr

    dims, shape, coords = _layout(plan)
    formats = list(plan.formats)
    solutions = _solve(plan, plan.points)
    exact: dict[str, Any] = {}
    for name in EXACT_OUTPUTS:
        desc, unit = MAP_VARIABLES[name]
        values = np.stack([getattr(s, name).reshape(shape) for s in solutions])
        if values.dtype == bool:
            values = values.astype(np.int8)
        exact[name] = (("format", *dims), values, {"description": desc, "units": unit})
    return xr.Dataset(exact, coords={"format": formats, **coords},
                      attrs={"sweep": plan.spec.name})


def simulated_dataset(plan: Plan, summaries: dict[str, np.ndarray]):
    """The simulated summaries of the sweep's own cells; ``summaries`` holds every run's
    summaries, {output: (format, runs)} (:func:`deterrence.sweep.execute.read_summaries`)."""
    import xarray as xr

    spec = plan.spec
    dims, shape, coords = _layout(plan)
    runs = plan.cells * spec.replicates
    sim: dict[str, Any] = {}
    for name in OUTPUTS:
        desc, unit = SUMMARY_DESCRIPTIONS[name]
        values = summaries[name][:, :runs].reshape(len(plan.formats), *shape,
                                                   spec.replicates)
        sim[name] = (("format", *dims, "replicate"), values,
                     {"description": desc, "units": unit})
    return xr.Dataset(sim, coords={"format": list(plan.formats), **coords,
                                   "replicate": np.arange(spec.replicates)},
                      attrs={"sweep": spec.name, "steps": spec.steps, "seed": plan.seed})


def sensitivity_dataset(plan: Plan, summaries: dict[str, np.ndarray]):
    """The sensitivity design's simulated summaries (format, sample, replicate) and exact
    regime (format, sample)."""
    import xarray as xr

    spec = plan.spec
    points = plan.sensitivity_points
    first = plan.cells * spec.replicates
    data: dict[str, Any] = {}
    for name in OUTPUTS:
        desc, unit = SUMMARY_DESCRIPTIONS[name]
        data[name] = (("format", "sample", "replicate"),
                      summaries[name][:, first:].reshape(len(plan.formats), points.shape[0],
                                                         spec.replicates),
                      {"description": desc, "units": unit})
    desc, unit = MAP_VARIABLES["regime"]
    data["regime"] = (("format", "sample"),
                      np.stack([s.regime for s in _solve(plan, points)]),
                      {"description": desc, "units": unit})
    coords: dict[str, Any] = {"format": list(plan.formats), "sample": np.arange(len(points)),
                              "replicate": np.arange(spec.replicates)}
    coords.update({a.path: ("sample", points[:, j]) for j, a in enumerate(spec.axes)})
    return xr.Dataset(data, coords=coords, attrs={"sweep": spec.name, "steps": spec.steps,
                                                  "seed": plan.seed,
                                                  "method": spec.sensitivity.method})


def datasets(plan: Plan, summaries: dict[str, np.ndarray]) -> dict[str, Any]:
    """Every data file of a sweep as a labelled array: the simulated summaries and the
    exact solutions, and with a sensitivity design its runs and exact regime."""
    out = {SIMULATION_FILE: simulated_dataset(plan, summaries),
           EXACT_FILE: exact_dataset(plan)}
    if plan.sensitivity_points is not None:
        out[SENSITIVITY_DESIGN_FILE] = sensitivity_dataset(plan, summaries)
    return out
