"""Labelled arrays of a sweep: the exact solutions and the simulated summaries per point.

Each is an ``xarray.Dataset`` that an archive writes as NetCDF 3 by the CF conventions
(CF-1.10, docs/sweeps.md#netcdf-files): every variable and coordinate has a ``long_name``
and ``units``; codes carry ``flag_values`` and ``flag_meanings``; missing values a
``_FillValue``; and every name is an identifier, so a swept parameter's dimension is named
by :func:`dim_name` and keeps its path in the attribute ``parameter_path``.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import numpy as np

from ..game.payoffs import build_game, parameter_field
from ..simulate.engine import SUMMARY_DESCRIPTIONS, cf_variable, global_attributes, history
from ..solve.equilibrium import CREDIBILITY_VARIABLE, MAP_VARIABLES

if TYPE_CHECKING:
    from .spec import Plan

#: The simulated per-run summaries a sweep keeps
#: (:data:`~deterrence.simulate.engine.SUMMARY_DESCRIPTIONS`).
OUTPUTS = tuple(SUMMARY_DESCRIPTIONS)
#: The summaries that are quantities (not codes): what scenario discovery can threshold.
QUANTITY_OUTPUTS = tuple(name for name in OUTPUTS
                         if "flag_values" not in SUMMARY_DESCRIPTIONS[name])
#: The exact solver's per-point outputs (:data:`~deterrence.solve.equilibrium.MAP_VARIABLES`),
#: besides ``credibility``, which has a guarantor dimension too.
EXACT_OUTPUTS = tuple(MAP_VARIABLES)
CREDIBILITY = "credibility"
#: The exact outputs of a sensitivity design's points: what its indices and scenario
#: discovery read.
DESIGN_EXACT_OUTPUTS = ("regime", "escalation_probability")
#: Where each dataset lives in an archive.
SIMULATION_FILE = "data/simulation.nc"
EXACT_FILE = "data/exact.nc"
SENSITIVITY_DESIGN_FILE = "data/sensitivity.nc"

# ---------------------------------------------------------------------------------------
# Names and units of the swept parameters

#: Joins the segments of a parameter path in its NetCDF name.
SEPARATOR = "__"
#: Stands for the wildcard segment ``*`` (every guarantor) in a NetCDF name.
WILDCARD_NAME = "all"
_IDENTIFIER = re.compile(r"[A-Za-z][A-Za-z0-9_]*\Z")
#: Parameter units (the schema's ``unit``) that UDUNITS knows, as UDUNITS spells them.
#: Every other unit of the schema is a share, probability, multiple, utility or currency:
#: UDUNITS has no currency or utility, so such a parameter gets ``units = "1"`` and its
#: unit in words in ``comment``.
UDUNITS = {"days": "day"}


def dim_name(path: str) -> str:
    """The NetCDF name of a parameter path: its segments joined by ``__``, the wildcard
    ``*`` written ``all`` (``russia.war_cost`` -> ``russia__war_cost``,
    ``guarantors.*.honouring_cost`` -> ``guarantors__all__honouring_cost``).

    :func:`parameter_path` reads it back. Raises ValueError for a path whose name would not
    read back: one naming a guarantor whose id is ``all``, contains ``__`` or ends in ``_``.
    """
    name = SEPARATOR.join(WILDCARD_NAME if part == "*" else part for part in path.split("."))
    if not _IDENTIFIER.match(name) or parameter_path(name) != path:
        raise ValueError(f"parameter path {path!r}: its NetCDF name {name!r} would not read "
                         f"back as the path; a swept guarantor's id must not be "
                         f"{WILDCARD_NAME!r}, contain {SEPARATOR!r} or end in '_'")
    return name


def parameter_path(name: str) -> str:
    """The parameter path of a NetCDF name made by :func:`dim_name`."""
    return ".".join("*" if part == WILDCARD_NAME else part for part in name.split(SEPARATOR))


def parameter_attributes(path: str) -> dict[str, str]:
    """CF attributes of a swept parameter: its description, UDUNITS unit (``1`` for a
    unit UDUNITS lacks, with the schema's unit in ``comment``), source and path."""
    field = parameter_field(path)
    extra = field.json_schema_extra or {}
    unit = str(extra.get("unit", ""))
    description = re.split(r"[.;] ", field.description or path)[0].rstrip(".")
    attrs = {"long_name": description, "units": UDUNITS.get(unit, "1"),
             "parameter_path": path}
    note = f"unit: {unit}; " if unit not in UDUNITS else ""
    attrs["comment"] = f"{note}source of the default: {extra.get('source', 'not given')}"
    return attrs


def _parameter(dims, path: str, values, plan: Plan):
    attrs = parameter_attributes(path)
    if plan.spec.method == "prior":
        attrs = {"long_name": f"quantile of {path} under the prior ({attrs['long_name']})",
                 "units": "1", "parameter_path": path,
                 "comment": "each format's value is the quantile function of its "
                            "distribution (the format's, else the scenario's) at this "
                            "number; the distributions are in config/plan.json"}
    return cf_variable(dims, np.asarray(values, dtype=np.float64), attrs, coordinate=True)


def _labels(plan: Plan, replicates: bool) -> dict[str, Any]:
    coords = {"format": cf_variable("format", list(plan.formats), {
        "long_name": "guarantee format id (configs/formats/<id>.toml; resolved in the "
                     "archive's config/plan.json)"}, coordinate=True)}
    if replicates:
        coords["replicate"] = cf_variable("replicate", np.arange(plan.spec.replicates), {
            "long_name": "replicate: run r of a point draws the same random numbers under "
                         "every format", "units": "1"}, coordinate=True)
    return coords


def _sample(count: int) -> Any:
    return cf_variable("sample", np.arange(count), {
        "long_name": "index of the sample point (the parameters' values are coordinates "
                     "along it)", "units": "1"}, coordinate=True)


def _layout(plan: Plan):
    """Dimensions, shape and coordinates of the points: one dimension per grid axis, or
    ``sample`` with one coordinate per parameter."""
    spec = plan.spec
    if plan.grid_shape is not None:
        coords = {}
        for j, a in enumerate(spec.axes):
            values = np.unique(plan.points[:, j]) if a.values is None else a.values
            coords[dim_name(a.path)] = _parameter(dim_name(a.path), a.path, values, plan)
        return tuple(coords), plan.grid_shape, coords
    coords = {"sample": _sample(plan.cells)}
    coords.update({dim_name(a.path): _parameter("sample", a.path, plan.points[:, j], plan)
                   for j, a in enumerate(spec.axes)})
    return ("sample",), (plan.cells,), coords


def _attributes(plan: Plan, title: str, function: str, **attrs) -> dict[str, Any]:
    spec = plan.spec
    return global_attributes(
        f"{spec.name}: {title}",
        # no clock time: the files of a sweep are the same bytes on every run; the
        # archive's manifest.json records when it was run, by which code
        history(f"deterrence.sweep.datasets.{function} of a sweep plan (in an archive: "
                "config/plan.json, and manifest.json records when, with which code and "
                "packages)"),
        # the seed as text: NetCDF 3 attributes hold 32-bit integers, seeds are larger
        sweep=spec.name, seed=str(plan.seed), **attrs)


def solve(scenario, fmt, overrides=None, threads: int | None = 1):
    """The exact solution of ``fmt`` at every point of ``overrides`` ({path: values}), with
    the scenario's thresholds of the regimes."""
    from ..solve.equilibrium import solve_grid

    analysis = scenario.analysis
    return solve_grid(build_game(scenario, fmt, overrides),
                      deterred_below=analysis.deterred_below_escalation_probability,
                      defended_below=analysis.defended_below_russia_success, threads=threads)


def _solve(plan: Plan, points: np.ndarray) -> list:
    return [solve(plan.scenario, plan.formats[fid], plan.overrides(fid, points))
            for fid in plan.formats]


def guarantor_coordinate(scenario) -> Any:
    """The ``guarantor`` coordinate: every guarantor of the scenario, in its order."""
    return cf_variable("guarantor", [g.id for g in scenario.guarantors], {
        "long_name": "guarantor id (the scenario's guarantors; a format's members are "
                     "some of them)"}, coordinate=True)


def credibility_values(scenario, solution) -> np.ndarray:
    """A solution's credibility (points, member) spread over the scenario's guarantors
    (points, guarantor): NaN for a guarantor that is not a member of the format."""
    ids = [g.id for g in scenario.guarantors]
    out = np.full((solution.credibility.shape[0], len(ids)), np.nan)
    for column, member in enumerate(solution.guarantor_ids):
        out[:, ids.index(member)] = solution.credibility[:, column]
    return out


def exact_dataset(plan: Plan):
    """The exact solver's outputs at every point, per format: the maps of
    :data:`~deterrence.solve.equilibrium.MAP_VARIABLES` and each guarantor's
    ``credibility`` (missing where it is not a member)."""
    import xarray as xr

    dims, shape, coords = _layout(plan)
    solutions = _solve(plan, plan.points)
    exact = {name: cf_variable(("format", *dims),
                               np.stack([getattr(s, name).reshape(shape) for s in solutions]),
                               MAP_VARIABLES[name])
             for name in EXACT_OUTPUTS}
    guarantors = len(plan.scenario.guarantors)
    exact[CREDIBILITY] = cf_variable(
        ("format", *dims, "guarantor"),
        np.stack([credibility_values(plan.scenario, s).reshape(*shape, guarantors)
                  for s in solutions]), CREDIBILITY_VARIABLE)
    coords = {**_labels(plan, False), **coords,
              "guarantor": guarantor_coordinate(plan.scenario)}
    return xr.Dataset(exact, coords=coords,
                      attrs=_attributes(plan, "exact equilibria per format and point",
                                        "exact_dataset"))


def simulated_dataset(plan: Plan, summaries: dict[str, np.ndarray]):
    """The simulated summaries of the sweep's own cells; ``summaries`` holds every run's
    summaries, {output: (format, runs)} (:func:`deterrence.sweep.execute.read_summaries`)."""
    import xarray as xr

    spec = plan.spec
    dims, shape, coords = _layout(plan)
    runs = plan.cells * spec.replicates
    sim = {name: cf_variable(("format", *dims, "replicate"),
                             summaries[name][:, :runs].reshape(len(plan.formats), *shape,
                                                               spec.replicates),
                             SUMMARY_DESCRIPTIONS[name])
           for name in OUTPUTS}
    return xr.Dataset(sim, coords={**_labels(plan, True), **coords},
                      attrs=_attributes(plan, "simulated summaries per format, point and "
                                        "replicate", "simulated_dataset", steps=spec.steps,
                                        round_months=plan.scenario.dynamics.round_months))


def sensitivity_dataset(plan: Plan, summaries: dict[str, np.ndarray]):
    """The sensitivity design's simulated summaries (format, sample, replicate) and exact
    regime and escalation probability (format, sample)."""
    import xarray as xr

    spec = plan.spec
    points = plan.sensitivity_points
    first = plan.cells * spec.replicates
    data = {name: cf_variable(("format", "sample", "replicate"),
                              summaries[name][:, first:].reshape(
                                  len(plan.formats), points.shape[0], spec.replicates),
                              SUMMARY_DESCRIPTIONS[name])
            for name in OUTPUTS}
    solutions = _solve(plan, points)
    for name in DESIGN_EXACT_OUTPUTS:
        data[name] = cf_variable(("format", "sample"),
                                 np.stack([getattr(s, name) for s in solutions]),
                                 MAP_VARIABLES[name])
    coords = {**_labels(plan, True), "sample": _sample(len(points))}
    coords.update({dim_name(a.path): _parameter("sample", a.path, points[:, j], plan)
                   for j, a in enumerate(spec.axes)})
    return xr.Dataset(data, coords=coords, attrs=_attributes(
        plan, f"{spec.sensitivity.method} sensitivity design: simulated summaries and exact "
              "regime and escalation probability per format, sample and replicate",
        "sensitivity_dataset",
        steps=spec.steps, method=spec.sensitivity.method))


def datasets(plan: Plan, summaries: dict[str, np.ndarray]) -> dict[str, Any]:
    """Every data file of a sweep as a labelled array: the simulated summaries and the
    exact solutions, and with a sensitivity design its runs and exact outputs."""
    out = {SIMULATION_FILE: simulated_dataset(plan, summaries),
           EXACT_FILE: exact_dataset(plan)}
    if plan.sensitivity_points is not None:
        out[SENSITIVITY_DESIGN_FILE] = sensitivity_dataset(plan, summaries)
    return out


# ---------------------------------------------------------------------------------------
# Reading codes


def decode_flags(da):
    """The labels of a coded variable (``regime``, ``equilibrium_set_complete``): a
    DataArray of strings, the variable's CF ``flag_meanings`` with ``_`` read as a space (so
    the regimes are :data:`~deterrence.solve.equilibrium.REGIME_NAMES`; the set is complete
    ``no`` or ``yes``). ``attrs["categories"]`` lists every label in code order, e.g. for
    ``pandas.Categorical``.

    Raises ValueError if ``da`` has no flag attributes or holds a value that is not a code.
    """
    import xarray as xr

    codes, meanings = da.attrs.get("flag_values"), da.attrs.get("flag_meanings")
    if codes is None or meanings is None:
        raise ValueError(f"{da.name}: not a coded variable (no flag_values and "
                         "flag_meanings attributes)")
    codes = np.atleast_1d(np.asarray(codes))
    labels = np.array([word.replace("_", " ") for word in str(meanings).split()])
    if labels.size != codes.size:
        raise ValueError(f"{da.name}: {codes.size} flag_values but {labels.size} "
                         "flag_meanings")
    values = np.asarray(da.values)
    match = values[..., None] == codes
    known = match.any(axis=-1)
    if not known.all():
        strange = ", ".join(map(str, np.unique(values[~known])))
        raise ValueError(f"{da.name}: values {strange} are not among the flag_values "
                         f"{', '.join(map(str, codes))}")
    attrs = {"long_name": da.attrs.get("long_name", da.name),
             "categories": [str(label) for label in labels]}
    return xr.DataArray(labels[match.argmax(axis=-1)], coords=da.coords, dims=da.dims,
                        name=da.name, attrs=attrs)
