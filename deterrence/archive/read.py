"""Reading archives: the plan, the datasets and the manifest, each checked as it is read.

Every command that reads an archive reads it here: the folder is walked once
(:func:`~deterrence.archive.manifest.regular_files`, which refuses links and special files),
the manifest's digest is checked before anything else is used, the plan is validated as
strictly as a sweep file, and every NetCDF file goes through :func:`open_dataset`.
"""

from __future__ import annotations

import json
import os
import stat
from dataclasses import dataclass
from numbers import Integral, Real
from pathlib import Path
from typing import Any

from ..game.config import ConfigError
from ..sweep.datasets import (
    CREDIBILITY,
    DESIGN_EXACT_OUTPUTS,
    EXACT_FILE,
    EXACT_OUTPUTS,
    SENSITIVITY_DESIGN_FILE,
    SIMULATION_FILE,
    dim_name,
)
from ..sweep.spec import Plan
from .manifest import (
    PLAN_FILE,
    SWEEP_FILE,
    ArchiveError,
    check_files,
    open_regular,
    parse_json,
    read_limited,
    read_manifest,
    regular_files,
    shown,
)

#: Files the analysis adds to an archive with a sensitivity design: the indices and their
#: tornado chart.
INDICES_FILE = "analysis/sensitivity.nc"
FIGURE_FILE = "figures/sensitivity.png"
#: A prior sweep's maps over two parameters, integrated over the prior (its [prior_map]).
PRIOR_MAP_FILE = "analysis/prior_map.nc"
#: The variables of PRIOR_MAP_FILE, each over (format, x, y).
PRIOR_MAP_VARIABLES = ("holds", "p_deterred")
#: The simulated summaries every reader of an archive uses.
SUMMARIES = ("escalation_frequency", "deterred_share", "abandoned_given_escalation")
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@dataclass(frozen=True)
class Archive:
    path: Path
    manifest: dict[str, Any]
    plan: Plan
    sim: Any      # xarray.Dataset: data/simulation.nc
    exact: Any    # xarray.Dataset: data/exact.nc
    config_text: str
    config_source: str
    problems: list[str]  # files missing, changed or not in the manifest
    sensitivity: Any = None         # xarray.Dataset: analysis/sensitivity.nc, if designed
    sensitivity_figure: bytes | None = None
    design: Any = None              # xarray.Dataset: data/sensitivity.nc, if designed
    prior_map: Any = None           # xarray.Dataset: analysis/prior_map.nc, if mapped


def open_dataset(path: str | Path):
    """A NetCDF file of an archive, read into memory with its CF encoding decoded: a
    ``_FillValue`` reads as NaN; ``units`` are left as attributes (a parameter in days is a
    number, not a time span). The one reader of an archive's NetCDF files: anything but a
    readable NetCDF 3 file in a regular file raises ArchiveError in one line,
    ``<path>: unreadable NetCDF (<the first line of the library's message>)``."""
    import xarray as xr

    path = Path(path)
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        raise ArchiveError(f"{shown(path)}: missing") from None
    except OSError as exc:
        raise ArchiveError(f"{shown(path)}: unreadable ({exc.strerror or exc})") from None
    if not stat.S_ISREG(mode):
        raise ArchiveError(f"{shown(path)}: not a regular file; nothing is read through a "
                           "link or from a special file")
    try:
        # read, not memory-mapped: nothing refers to the file once it is closed
        with xr.open_dataset(path, engine="scipy", mmap=False, decode_timedelta=False) as ds:
            return ds.load()
    except Exception as exc:  # truncated, not NetCDF, or a value the decoder refuses
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
        raise ArchiveError(f"{shown(path)}: unreadable NetCDF "
                           f"({lines[0] if lines else type(exc).__name__})") from None


def read_plan(archive: Path, files: dict[str, int]) -> Plan:
    """The archive's resolved plan (``config/plan.json``), validated by
    :meth:`Plan.from_json`. ``files``: the archive's ``regular_files``."""
    path = archive / PLAN_FILE
    try:
        data = parse_json(read_limited(archive, files, PLAN_FILE))
    except (ValueError, RecursionError) as exc:
        if isinstance(exc, ArchiveError):
            raise
        raise ArchiveError(f"{shown(path)}: unreadable plan ({exc})") from None
    try:
        return Plan.from_json(data, shown(path))
    except ConfigError as exc:
        raise ArchiveError(str(exc)) from None


def _points_layout(plan: Plan) -> dict[str, int]:
    """The point dimensions of the sweep's datasets and their lengths: one per grid axis,
    or ``sample``."""
    if plan.grid_shape is None:
        return {"sample": plan.cells}
    return {dim_name(a.path): n for a, n in zip(plan.spec.axes, plan.grid_shape, strict=True)}


def _check_dataset(ds, path: Path, plan: Plan, points: dict[str, int],
                   variables: dict[str, tuple[str, ...]]) -> None:
    """``ds`` holds ``variables`` (name: dims) as numbers, the plan's formats in its order
    (and the scenario's guarantors, where it has that dimension), the lengths the plan
    gives every dimension, and each axis's coordinate."""
    guarantors = [g.id for g in plan.scenario.guarantors]
    sizes = {"format": len(plan.formats), "replicate": plan.spec.replicates,
             "guarantor": len(guarantors), **points}
    missing = [name for name in variables if name not in ds]
    missing += [f"coordinate {dim_name(a.path)} (axis {a.path})" for a in plan.spec.axes
                if dim_name(a.path) not in ds.coords]
    if missing:
        raise ArchiveError(f"{shown(path)}: lacks {', '.join(missing)}")
    for name, dims in variables.items():
        if ds[name].dims != dims:
            raise ArchiveError(f"{shown(path)}: variable {name} has dimensions "
                               f"{ds[name].dims}; the plan gives it {dims}")
        if ds[name].dtype.kind not in "fiu":
            raise ArchiveError(f"{shown(path)}: variable {name} holds {ds[name].dtype}, "
                               "not numbers")
    for dim, size in ds.sizes.items():
        if dim in sizes and size != sizes[dim]:
            raise ArchiveError(f"{shown(path)}: dimension {dim} has {size} entries; the "
                               f"plan gives it {sizes[dim]}")
    if "format" not in ds.coords or list(map(str, ds["format"].values)) != list(plan.formats):
        raise ArchiveError(f"{shown(path)}: formats differ from the plan's "
                           f"{list(plan.formats)}")
    if "guarantor" in ds.dims and ("guarantor" not in ds.coords or list(
            map(str, ds["guarantor"].values)) != guarantors):
        raise ArchiveError(f"{shown(path)}: guarantors differ from the scenario's "
                           f"{guarantors}")
    for a in plan.spec.axes:
        name = dim_name(a.path)
        along = ("sample",) if "sample" in points else (name,)
        if ds.coords[name].dims != along or ds.coords[name].dtype.kind not in "fiu":
            raise ArchiveError(f"{shown(path)}: coordinate {name} (axis {a.path}) is not "
                               f"numbers along {along[0]}")


def _check_indices(ds, path: Path, plan: Plan) -> None:
    """The sensitivity indices have the plan's method, design size, formats, outputs and
    parameters."""
    spec = plan.spec.sensitivity
    attrs = {"method": str, "design_points": Integral, "confidence": Real,
             "resamples": Integral}
    for key, kind in attrs.items():
        if not isinstance(ds.attrs.get(key), kind):
            raise ArchiveError(f"{shown(path)}: lacks the attribute {key}")
    if (ds.attrs["method"] != spec.method
            or ds.attrs["design_points"] != len(plan.sensitivity_points)):
        raise ArchiveError(f"{shown(path)}: the indices of a {ds.attrs['method']} design of "
                           f"{ds.attrs['design_points']} points; the plan's is {spec.method}"
                           f" of {len(plan.sensitivity_points)}")
    labels = {"format": list(plan.formats), "output": list(spec.outputs),
              "parameter": [a.path for a in plan.spec.axes]}
    for dim, expected in labels.items():
        if dim not in ds.coords or list(map(str, ds[dim].values)) != expected:
            raise ArchiveError(f"{shown(path)}: coordinate {dim} differs from the plan's "
                               f"{expected}")
    for name in ("low", "high", *ds.data_vars):
        if (name not in ds or ds[name].dtype.kind not in "fiu"
                or not set(ds[name].dims) <= set(labels)):
            raise ArchiveError(f"{shown(path)}: variable {name} is not numbers over "
                               f"{', '.join(labels)}")


def load_archive(archive: str | Path) -> Archive:
    """Read an archive; raises ArchiveError if it is malformed or unsafe to read."""
    archive = Path(archive)
    files = regular_files(archive)
    manifest = read_manifest(archive, files)
    plan = read_plan(archive, files)
    points = _points_layout(plan)
    point_dims = tuple(points)

    def member(name: str) -> Path:
        if name not in files:
            raise ArchiveError(f"{shown(archive / name)}: missing")
        return archive / name

    def dataset(name: str, variables: dict[str, tuple[str, ...]], layout: dict[str, int]):
        ds = open_dataset(member(name))
        _check_dataset(ds, archive / name, plan, layout, variables)
        return ds

    sim = dataset(SIMULATION_FILE, {v: ("format", *point_dims, "replicate")
                                    for v in SUMMARIES}, points)
    exact = dataset(EXACT_FILE, {**{v: ("format", *point_dims) for v in EXACT_OUTPUTS},
                                 CREDIBILITY: ("format", *point_dims, "guarantor")}, points)
    if SWEEP_FILE in files:
        config_text = read_limited(archive, files, SWEEP_FILE).decode(
            "utf-8", errors="replace")
        config_source = SWEEP_FILE
    else:
        config_text = json.dumps(plan.spec.model_dump(mode="json"), indent=2)
        config_source = f"the sweep specification in {PLAN_FILE}"
    design, indices, figure = None, None, None
    if plan.sensitivity_points is not None:
        design_points = {"sample": len(plan.sensitivity_points)}
        design = dataset(SENSITIVITY_DESIGN_FILE,
                         {**{v: ("format", "sample", "replicate") for v in SUMMARIES},
                          **{v: ("format", "sample") for v in DESIGN_EXACT_OUTPUTS}},
                         design_points)
        indices = open_dataset(member(INDICES_FILE))
        _check_indices(indices, archive / INDICES_FILE, plan)
        path = member(FIGURE_FILE)
        try:
            with open_regular(path) as fh:
                figure = fh.read()
        except OSError as exc:
            raise ArchiveError(f"{shown(path)}: unreadable ({exc.strerror or exc})") from None
        if not figure.startswith(_PNG_SIGNATURE):
            raise ArchiveError(f"{shown(path)}: not a PNG image")
    prior_map = None
    chart = plan.spec.prior_map
    if chart is not None:
        dims = ("format", dim_name(chart.x.path), dim_name(chart.y.path))
        prior_map = open_dataset(member(PRIOR_MAP_FILE))
        sizes = dict(zip(dims, (len(plan.formats), chart.values(chart.x).size,
                                chart.values(chart.y).size), strict=True))
        for name in PRIOR_MAP_VARIABLES:
            if name not in prior_map or prior_map[name].dims != dims or any(
                    prior_map.sizes[d] != n for d, n in sizes.items()):
                raise ArchiveError(f"{shown(archive / PRIOR_MAP_FILE)}: lacks variable "
                                   f"{name} over {dims} of sizes {list(sizes.values())}")
    return Archive(archive, manifest, plan, sim, exact, config_text, config_source,
                   check_files(archive, manifest, files), indices, figure, design, prior_map)
