"""Reading archives: the plan, the datasets and the manifest, each checked as it is read."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..game.config import ConfigError
from ..sweep.datasets import SENSITIVITY_DESIGN_FILE, dim_name
from ..sweep.spec import Plan
from .manifest import ArchiveError, check_files, read_manifest
from .write import plan_file

#: Files the analysis adds to an archive with a sensitivity design: the indices and their
#: tornado chart.
INDICES_FILE = "analysis/sensitivity.nc"
FIGURE_FILE = "figures/sensitivity.png"


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


def open_dataset(path: str | Path):
    """A NetCDF file of an archive, read into memory with its CF encoding decoded: a
    ``_FillValue`` reads as NaN; ``units`` are left as attributes (a parameter in days is a
    number, not a time span)."""
    import xarray as xr

    with xr.open_dataset(path, engine="scipy", decode_timedelta=False) as ds:
        return ds.load()


def load_archive(archive: str | Path) -> Archive:
    """Read an archive; raises ArchiveError if it is malformed."""
    archive = Path(archive)
    if not archive.is_dir():
        raise ArchiveError(f"{archive}: not an archive (not a folder)")
    try:
        manifest = read_manifest(archive)
    except OSError as exc:  # read_manifest reports a missing file; this is anything else
        raise ArchiveError(f"{archive}: unreadable manifest ({exc})") from None
    try:
        plan = Plan.from_json(json.loads(plan_file(archive).read_text()), str(archive))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ArchiveError(f"{archive}: unreadable plan ({exc})") from None
    except ConfigError as exc:
        raise ArchiveError(str(exc)) from None
    try:
        names = {a.path: dim_name(a.path) for a in plan.spec.axes}
    except ValueError as exc:  # a path no sweep accepts
        raise ArchiveError(f"{archive}: {exc}") from None
    data = []
    for name, needed in (("simulation.nc", ("escalation_frequency", "deterred_share",
                                            "abandoned_given_escalation")),
                         ("exact.nc", ("regime",))):
        path = archive / "data" / name
        try:
            ds = open_dataset(path)
        except Exception as exc:  # missing, truncated or not NetCDF
            raise ArchiveError(f"{path}: unreadable ({exc})") from None
        missing = [v for v in needed if v not in ds]
        missing += [f"{coordinate} (the coordinate of axis {axis}; an archive made before "
                    "dimensions had identifier names: re-run its sweep)"
                    for axis, coordinate in names.items() if coordinate not in ds.coords]
        if missing:
            raise ArchiveError(f"{path}: lacks {', '.join(missing)}")
        data.append(ds)
    sim, exact = data
    formats = list(plan.formats)
    for ds, name in ((sim, "simulation.nc"), (exact, "exact.nc")):
        if "format" not in ds.coords or list(map(str, ds["format"].values)) != formats:
            raise ArchiveError(f"{archive / 'data' / name}: formats differ from the plan's "
                               f"{formats}")
    if (sim["escalation_frequency"].sel(format=formats[0]).size
            != plan.cells * plan.spec.replicates
            or exact["regime"].sel(format=formats[0]).size != plan.cells):
        raise ArchiveError(f"{archive}: the data do not match the plan's "
                           f"{plan.cells} cells x {plan.spec.replicates} replicates")
    toml = archive / "config" / "sweep.toml"
    if toml.is_file():
        try:
            config_text = toml.read_text(errors="replace")
        except OSError as exc:
            raise ArchiveError(f"{toml}: unreadable ({exc})") from None
        config_source = "config/sweep.toml"
    else:
        config_text = json.dumps(plan.spec.model_dump(mode="json"), indent=2)
        config_source = "the sweep specification in config/plan.json"
    design, indices, figure = None, None, None
    if plan.sensitivity_points is not None:
        try:
            path = archive / SENSITIVITY_DESIGN_FILE
            design = open_dataset(path)
            path = archive / INDICES_FILE
            indices = open_dataset(path)
            path = archive / FIGURE_FILE
            figure = path.read_bytes()
        except Exception as exc:  # missing, truncated or not NetCDF
            raise ArchiveError(f"{path}: unreadable ({exc})") from None
    return Archive(archive, manifest, plan, sim, exact, config_text, config_source,
                   check_files(archive, manifest), indices, figure, design)
