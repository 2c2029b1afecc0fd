"""Sweep files and plans: the axes, their points and the fully resolved plan of a sweep.

A sweep runs every format over a set of parameter points (a grid, or a Latin hypercube or
Sobol sample of ranges), ``replicates`` simulations per point, and also solves the exact
game at every point. Run ``r`` of point ``c`` has run index ``c * replicates + r`` under
every format, so formats are compared under common random numbers.
"""

from __future__ import annotations

import difflib
import math
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import Field, model_validator

from ..game.config import (
    FORMATS_DIR,
    MAX_SEED,
    NO_VALUE,
    ConfigError,
    Distribution,
    FormatSpec,
    KeyProblem,
    Scenario,
    Strict,
    first_repeat,
    load_catalogue,
    load_scenario,
    locate,
    read_toml,
    validate,
)
from ..game.payoffs import build_game, parameter_paths
from .datasets import dim_name
from .design import SensitivitySpec

#: Most points a sweep may have: its grid or sample and its sensitivity design together
#: (each point is solved exactly under every format and simulated ``replicates`` times);
#: a grid of 1000 x 1000.
MAX_POINTS = 1_000_000
#: Most numbers a plan may hold (points x axes): config/plan.json writes each in about 20
#: characters, so a plan stays under about 40 MB.
MAX_PLAN_VALUES = 2_000_000
#: Most runs a sweep may have over all its formats: the archive's simulation.nc holds four
#: 8-byte summaries per run (at most about 320 MB), read into memory to write it.
MAX_SWEEP_RUNS = 10_000_000
#: Most work units (chunks of ``chunk_runs`` runs) a sweep may have: each is a file in the
#: staging folder while the sweep runs.
MAX_CHUNKS = 100_000


class SweepAxis(Strict):
    """One swept parameter: explicit ``values``, or a range ``low``-``high``."""

    path: str = Field(..., description="Parameter path, e.g. russia.war_cost (see docs).")
    values: list[float] | None = Field(None, min_length=1, max_length=MAX_POINTS)
    low: float | None = None
    high: float | None = None
    count: int | None = Field(None, ge=1, le=10_000, description="Grid points in the range.")
    prior: Distribution | None = Field(
        None, description="method prior: the parameter's distribution for every format (in "
                          "place of the scenario's and formats' own); the axis is then its "
                          "quantile, [0, 1].")

    @model_validator(mode="before")
    @classmethod
    def _quantile_range(cls, data: Any) -> Any:
        """An axis with a prior lies on the quantile scale: low 0 and high 1 unless given."""
        if isinstance(data, dict) and data.get("prior") is not None:
            data = {"low": 0.0, "high": 1.0, **data}
        return data

    @model_validator(mode="after")
    def _one_form(self) -> SweepAxis:
        if self.prior is not None and (self.values, self.count, self.low, self.high) != (
                None, None, 0.0, 1.0):
            raise KeyProblem("", NO_VALUE, f"axis {self.path!r}: an axis with a prior takes "
                                           "no values, count, low or high")
        if self.values is not None:
            if self.low is not None or self.high is not None or self.count is not None:
                raise KeyProblem("", NO_VALUE, f"axis {self.path!r}: give either values or "
                                               "low/high, not both")
        elif self.low is None or self.high is None:
            raise KeyProblem("", NO_VALUE, f"axis {self.path!r}: give values, or low and high")
        elif not self.low < self.high:
            raise KeyProblem("", NO_VALUE, f"axis {self.path!r}: low = {self.low} must be "
                                           f"below high = {self.high}")
        return self

    @property
    def size(self) -> int | None:
        """Points of the axis in a grid (None for a range without count)."""
        return len(self.values) if self.values is not None else self.count


#: Prior samples per cell of a map integrated over the prior when none is given (a power
#: of 2; assumption: a Monte Carlo half-width of at most 1.96 * 0.5 / 8 = 0.12 per cell).
DEFAULT_MAP_SAMPLES = 64


class PriorMapSpec(Strict):
    """The ``[prior_map]`` table of a prior sweep: two grid axes over which P(deterrence
    holds) is mapped with every other uncertain parameter integrated over its prior."""

    x: SweepAxis
    y: SweepAxis
    samples: int = Field(DEFAULT_MAP_SAMPLES, ge=2, le=1 << 16,
                         description="Prior points per cell (a power of 2).")

    @model_validator(mode="after")
    def _grid_axes(self) -> PriorMapSpec:
        for key, a in (("x", self.x), ("y", self.y)):
            if a.prior is not None or a.size is None:
                raise KeyProblem(key, NO_VALUE, f"axis {a.path!r}: a map axis is a grid: "
                                                "values, or low, high and count")
        if self.x.path == self.y.path:
            raise KeyProblem("y.path", self.y.path, "the map's two axes must differ")
        if self.samples & (self.samples - 1):
            raise KeyProblem("samples", self.samples, "a Sobol sample's size is a power of 2")
        cells = self.x.size * self.y.size * self.samples
        if cells > MAX_POINTS:
            raise KeyProblem("samples", self.samples,
                             f"{self.x.size} x {self.y.size} cells x {self.samples} samples = "
                             f"{cells:,} points to solve per format; at most {MAX_POINTS:,}")
        return self

    def values(self, axis: SweepAxis) -> np.ndarray:
        return (np.asarray(axis.values, dtype=np.float64) if axis.values is not None
                else np.linspace(axis.low, axis.high, axis.count))


class SweepSpec(Strict):
    """A sweep file (``configs/sweeps/*.toml``)."""

    name: str = Field(..., pattern=r"^[A-Za-z0-9_-]+$")
    description: str = ""
    scenario: str = Field(..., description="Scenario file, relative to the sweep file.")
    formats: list[str] | Literal["all"] = Field("all", min_length=1)
    method: Literal["grid", "lhs", "sobol", "prior"] = Field(
        "grid", description="grid: every combination of the axes' values; lhs / sobol: a "
                            "sample of their ranges; prior: a Sobol sample of the joint "
                            "prior of the scenario's and formats' distributions (the axes "
                            "are their parameters, on the quantile scale).")
    samples: int | None = Field(None, ge=1, le=MAX_POINTS,
                                description="Points drawn by lhs / sobol / prior.")
    axes: list[SweepAxis] = Field(default_factory=list, description="The swept parameters; "
                                  "for method prior, filled from the distributions.")
    replicates: int = Field(..., ge=1, le=100_000)
    steps: int = Field(..., ge=1, le=100_000)
    seed: int | None = Field(None, ge=0, le=MAX_SEED,
                             description="Root seed (default: the scenario's).")
    chunk_runs: int = Field(4096, ge=1, le=1_000_000, description="Runs per work unit.")
    sensitivity: SensitivitySpec | None = Field(
        None, description="A Sobol or Morris design over the axes' ranges, run with the "
                          "sweep, and its sensitivity indices.")
    prior_map: PriorMapSpec | None = Field(
        None, description="method prior: maps of P(deterrence holds) over two parameters, "
                          "the others integrated over the prior.")

    @model_validator(mode="after")
    def _consistent(self) -> SweepSpec:
        if not self.axes and self.method != "prior":
            raise KeyProblem("axes", NO_VALUE, "a sweep needs at least one axis")
        if self.prior_map is not None and self.method != "prior":
            raise KeyProblem("prior_map", NO_VALUE, f"a map over the prior is for method "
                                                    f"'prior', not {self.method!r}")
        if self.method == "prior":
            self._check_prior_axes()
        else:
            for j, a in enumerate(self.axes):
                if a.prior is not None:
                    raise KeyProblem(f"axes.{j}.prior", NO_VALUE,
                                     f"a prior is for method 'prior', not {self.method!r}")
        first = first_repeat([a.path for a in self.axes])
        if first is not None:
            i, j = first
            raise KeyProblem(f"axes.{j}.path", self.axes[j].path,
                             f"axes.{i} varies this parameter too; give each parameter once")
        if self.sensitivity is not None:
            for j, a in enumerate(self.axes):
                if a.values is not None:
                    raise KeyProblem(f"axes.{j}.values", NO_VALUE,
                                     f"axis {a.path!r}: the sensitivity design samples a "
                                     "range (low, high), not values")
        if self.method == "grid":
            for j, a in enumerate(self.axes):
                if a.values is None and a.count is None:
                    raise KeyProblem(f"axes.{j}", NO_VALUE,
                                     f"axis {a.path!r}: a grid range needs count")
            if self.samples is not None:
                raise KeyProblem("samples", self.samples, "samples is for lhs / sobol; a grid "
                                                          "takes its points from the axes")
        else:
            if self.samples is None:
                raise KeyProblem("samples", NO_VALUE, f"method {self.method!r} needs samples")
            for j, a in enumerate(self.axes):
                if a.values is not None or a.count is not None:
                    raise KeyProblem(f"axes.{j}", NO_VALUE,
                                     f"axis {a.path!r}: {self.method} samples a range "
                                     f"(low, high), not values or count")
        self._check_size()
        return self

    def _check_prior_axes(self) -> None:
        """A prior sample's axes are quantiles, [0, 1]; its size a power of 2."""
        if self.samples is None:
            raise KeyProblem("samples", NO_VALUE, "method 'prior' needs samples")
        if self.samples & (self.samples - 1):
            low = 1 << (self.samples.bit_length() - 1)
            raise KeyProblem("samples", self.samples, f"method 'prior' draws a Sobol sample, "
                                                      f"whose size is a power of 2 (e.g. "
                                                      f"{low} or {2 * low})")
        for j, a in enumerate(self.axes):
            if (a.values, a.count, a.low, a.high) != (None, None, 0.0, 1.0):
                raise KeyProblem(f"axes.{j}", NO_VALUE,
                                 "method 'prior' samples the distributions of the scenario and "
                                 "the formats; an axis of its own gives a prior (path = ..., "
                                 "prior = { distribution = ... }), not values or a range")

    @property
    def point_count(self) -> int:
        """Points of the sweep's own design: the grid's product of axis sizes, or samples."""
        if self.method == "grid":
            return math.prod(a.size for a in self.axes)
        return self.samples

    @property
    def design_point_count(self) -> int:
        """Points of the sensitivity design (SALib's sizes: N (k + 2) for Sobol without
        second-order indices, N (k + 1) for Morris; :func:`.design.design`)."""
        if self.sensitivity is None:
            return 0
        extra = 2 if self.sensitivity.method == "sobol" else 1
        return self.sensitivity.samples * (len(self.axes) + extra)

    def _check_size(self) -> None:
        """Refuse a sweep too large to plan or hold: before any point is made."""
        own, design = self.point_count, self.design_point_count
        total = own + design
        what = (" x ".join(str(a.size) for a in self.axes) + " grid" if self.method == "grid"
                else f"{self.samples} samples")
        if design:
            what += f" and a sensitivity design of {design:,}"
        if total > MAX_POINTS:
            key = ("sensitivity.samples" if own <= MAX_POINTS
                   else "axes" if self.method == "grid" else "samples")
            raise KeyProblem(key, NO_VALUE, f"{total:,} points ({what}); a sweep may have at "
                                            f"most {MAX_POINTS:,} points")
        if total * len(self.axes) > MAX_PLAN_VALUES:
            raise KeyProblem("axes", NO_VALUE,
                             f"{total:,} points x {len(self.axes)} axes = "
                             f"{total * len(self.axes):,} numbers in the plan; at most "
                             f"{MAX_PLAN_VALUES:,} (fewer points or fewer axes)")
        runs = total * self.replicates
        if runs > MAX_SWEEP_RUNS:
            raise KeyProblem("replicates", self.replicates,
                             f"{total:,} points x {self.replicates:,} replicates = {runs:,} "
                             f"runs per format; a sweep may have at most {MAX_SWEEP_RUNS:,} "
                             "runs")


@dataclass(frozen=True)
class Plan:
    """A fully resolved sweep: everything needed to run it and to re-run it."""

    spec: SweepSpec
    scenario: Scenario
    formats: dict[str, FormatSpec]
    points: np.ndarray               # (cells, axes)
    grid_shape: tuple[int, ...] | None  # per-axis lengths for a grid
    seed: int
    # the sensitivity design's points (spec.sensitivity), run after the sweep's own cells
    sensitivity_points: np.ndarray | None = None

    @property
    def cells(self) -> int:
        """Cells of the sweep's own design (grid or sample)."""
        return self.points.shape[0]

    @cached_property
    def all_points(self) -> np.ndarray:
        """Every simulated point: the sweep's cells, then the sensitivity design."""
        if self.sensitivity_points is None:
            return self.points
        return np.concatenate([self.points, self.sensitivity_points])

    def overrides(self, format_id: str, points: np.ndarray) -> dict[str, np.ndarray]:
        """The parameter values of format ``format_id`` at ``points`` (rows of
        :attr:`all_points`), {path: values}: the points themselves, or for a prior sample
        each quantile mapped through the format's (else the scenario's) distribution."""
        paths = [a.path for a in self.spec.axes]
        if self.spec.method != "prior":
            return {path: points[:, j] for j, path in enumerate(paths)}
        from .design import prior_overrides

        return prior_overrides(self.scenario, self.formats[format_id], paths, points,
                               {a.path: a.prior for a in self.spec.axes if a.prior})

    @property
    def runs_per_format(self) -> int:
        return self.all_points.shape[0] * self.spec.replicates

    def chunks(self) -> list[tuple[str, int, int]]:
        """Work units: (format id, first run, end run), in a fixed order."""
        size = self.spec.chunk_runs
        return [(fid, start, min(start + size, self.runs_per_format))
                for fid in self.formats for start in range(0, self.runs_per_format, size)]

    def to_json(self) -> dict[str, Any]:
        spec = self.spec.model_dump(mode="json")
        for key in ("sensitivity", "prior_map"):
            if spec[key] is None:  # the form of archives without one
                del spec[key]
        for axis in spec["axes"]:
            if axis["prior"] is None:
                del axis["prior"]
            else:
                axis["prior"] = {k: v for k, v in axis["prior"].items() if v is not None}
        out = {"spec": spec,
               "scenario": _dumped(self.scenario),
               "formats": {k: _dumped(v) for k, v in self.formats.items()},
               "points": self.points.tolist(),
               "grid_shape": None if self.grid_shape is None else list(self.grid_shape),
               "seed": self.seed}
        if self.sensitivity_points is not None:
            out["sensitivity_points"] = self.sensitivity_points.tolist()
        return out

    @classmethod
    def from_json(cls, data: Any, origin: str) -> Plan:
        """The plan stored by :meth:`to_json` (an archive's ``config/plan.json``), checked
        as strictly as a sweep file is resolved: every key and value validated as in a
        configuration file; the formats those the sweep names, in its order; the seed the
        one the sweep or scenario gives; the points finite numbers on the axes' values or
        within their ranges, as many as the grid, sample or sensitivity design has; and
        every axis a parameter of every format, with valid values (:func:`resolve`'s
        checks). Raises ConfigError naming ``origin`` and the key."""
        if not isinstance(data, dict):
            raise ConfigError(f"{origin}: not a sweep plan (a JSON object with keys "
                              f"{', '.join(_StoredPlan.model_fields)}), but a "
                              f"{type(data).__name__}")
        stored = validate(_StoredPlan, data, origin)
        spec, scenario, formats = stored.spec, stored.scenario, stored.formats
        for key, fmt in formats.items():
            if fmt.id != key:
                raise ConfigError(f"{origin}: key 'formats.{key}.id' = {fmt.id!r}: must be "
                                  f"its key in formats, {key!r}")
        if spec.formats != "all" and list(formats) != list(dict.fromkeys(spec.formats)):
            raise ConfigError(f"{origin}: key 'formats' = {list(formats)}: must be the "
                              f"formats of key 'spec.formats', in order: {spec.formats}")
        seed, source = ((scenario.seed, "scenario.seed") if spec.seed is None
                        else (spec.seed, "spec.seed"))
        if stored.seed != seed:
            raise ConfigError(f"{origin}: key 'seed' = {stored.seed}: must be {seed}, the "
                              f"seed of key '{source}'")
        if spec.method == "prior":  # its axes are those of the distributions
            own = spec.model_copy(update={"axes": [a for a in spec.axes if a.prior]})
            if _prior_axes(own, scenario, formats, origin).axes != spec.axes:
                raise ConfigError(f"{origin}: key 'spec.axes': must be the uncertain "
                                  "parameters of the scenario, the formats and the sweep, in "
                                  "sorted order, each on the quantile scale [0, 1]")
        points = _stored_points(stored.points, "points", spec, origin)
        shape = tuple(stored.grid_shape) if stored.grid_shape is not None else None
        _check_layout(spec, points, shape, origin)
        design = None
        if (stored.sensitivity_points is None) != (spec.sensitivity is None):
            raise ConfigError(f"{origin}: key 'sensitivity_points' must be given exactly "
                              "when key 'spec.sensitivity' is")
        if spec.sensitivity is not None:
            from .design import design as sensitivity_design

            design = _stored_points(stored.sensitivity_points, "sensitivity_points", spec,
                                    origin)
            expected = sensitivity_design(spec.sensitivity, [a.path for a in spec.axes],
                                          [a.low for a in spec.axes],
                                          [a.high for a in spec.axes], seed).shape[0]
            if len(design) != expected:
                raise ConfigError(f"{origin}: key 'sensitivity_points' has {len(design)} "
                                  f"points; the {spec.sensitivity.method} design of key "
                                  f"'spec.sensitivity' has {expected}")
        plan = cls(spec, scenario, formats, points, shape, seed, design)
        _check_axes(plan, origin, "spec.")
        return plan


def _dumped(model: Scenario | FormatSpec) -> dict[str, Any]:
    """A scenario or format as JSON, its distributions without the keys their kind does not
    use, and no ``prior`` key without any (the form of plans without uncertainty)."""
    data = model.model_dump(mode="json", exclude={"prior"})
    if model.prior:
        data["prior"] = {path: dist.model_dump(mode="json", exclude_none=True)
                         for path, dist in model.prior.items()}
    return data


#: How far, in units in the last place, a stored point may lie outside its axis's range:
#: a sample drawn on [0, 1) and scaled to the range is rounded.
ROUNDING_ULPS = 4
#: A number of a stored plan: finite (JSON has no NaN or infinity; Python's reader allows
#: them).
_Finite = Annotated[float, Field(allow_inf_nan=False)]


class _StoredPlan(Strict):
    """The keys of :meth:`Plan.to_json`, as read back."""

    spec: SweepSpec
    scenario: Scenario
    formats: dict[str, FormatSpec] = Field(..., min_length=1)
    points: list[list[_Finite]] = Field(..., min_length=1)
    grid_shape: list[Annotated[int, Field(ge=1)]] | None
    seed: int = Field(..., ge=0)
    sensitivity_points: list[list[_Finite]] | None = None


def _stored_points(rows: list[list[float]], key: str, spec: SweepSpec,
                   origin: str) -> np.ndarray:
    """Stored points as an array (points, axes): one value per axis in each, each on the
    axis's values or within its range."""
    for i, row in enumerate(rows):
        if len(row) != len(spec.axes):
            raise ConfigError(f"{origin}: key '{key}.{i}' = {row!r:.200}: must hold "
                              f"{len(spec.axes)} numbers, one per axis")
    points = np.asarray(rows, dtype=np.float64)
    for j, axis in enumerate(spec.axes):
        column = points[:, j]
        if axis.values is not None:
            outside = ~np.isin(column, axis.values)
            allowed = f"one of the axis's values {axis.values}"
        else:
            slack = ROUNDING_ULPS * np.spacing(max(abs(axis.low), abs(axis.high)))
            outside = (column < axis.low - slack) | (column > axis.high + slack)
            allowed = f"within the axis's range [{axis.low}, {axis.high}]"
        if outside.any():
            i = int(np.flatnonzero(outside)[0])
            raise ConfigError(f"{origin}: key '{key}.{i}.{j}' = {float(column[i])!r}: must be "
                              f"{allowed} (key 'spec.axes.{j}', {axis.path})")
    return points


def _check_layout(spec: SweepSpec, points: np.ndarray, shape: tuple[int, ...] | None,
                  origin: str) -> None:
    """A grid's shape is the axes' lengths and its points the grid of their values, in
    :func:`_points`' order; a sample has ``samples`` points and no shape."""
    if spec.method != "grid":
        if shape is not None:
            raise ConfigError(f"{origin}: key 'grid_shape' = {list(shape)}: must be null "
                              f"for method {spec.method!r}")
        if len(points) != spec.samples:
            raise ConfigError(f"{origin}: key 'points' has {len(points)} points; key "
                              f"'spec.samples' = {spec.samples}")
        return
    lengths = tuple(len(a.values) if a.values is not None else a.count for a in spec.axes)
    if shape != lengths:
        raise ConfigError(f"{origin}: key 'grid_shape' = {shape and list(shape)}: must be "
                          f"{list(lengths)}, the lengths of the axes")
    if len(points) != int(np.prod(lengths)):
        raise ConfigError(f"{origin}: key 'points' has {len(points)} points; a grid of "
                          f"shape {list(lengths)} has {int(np.prod(lengths))}")
    for j, axis in enumerate(spec.axes):
        grid = points[:, j].reshape(lengths)
        values = np.moveaxis(grid, j, 0).reshape(lengths[j], -1)[:, 0]
        on_grid = np.array_equal(grid, np.broadcast_to(
            values.reshape([-1 if k == j else 1 for k in range(len(lengths))]), lengths))
        in_order = (np.array_equal(values, axis.values) if axis.values is not None
                    else bool(np.all(np.diff(values) > 0)))
        if not (on_grid and in_order):
            raise ConfigError(f"{origin}: key 'points': column {j} is not the grid of axis "
                              f"{axis.path!r}'s values (key 'spec.axes.{j}')")


def load_plan(path: str | Path, sensitivity: dict[str, Any] | None = None,
              formats_dir: str | Path = FORMATS_DIR) -> Plan:
    """Read a sweep file, or a bundled sweep by name (``quickstart``), and resolve it:
    scenario, formats, points, seed. The file names its scenario relative to itself, or a
    bundled scenario by name.

    ``sensitivity`` sets or overrides keys of the file's ``[sensitivity]`` table; the
    formats are read from ``formats_dir``."""
    path = locate(path, "sweep")
    data = read_toml(path)
    if sensitivity is not None:
        table = data.get("sensitivity", {})
        if not isinstance(table, dict):
            raise ConfigError(f"{path}: key 'sensitivity' must be a table")
        data["sensitivity"] = {**table, **sensitivity}
    spec = validate(SweepSpec, data, str(path))
    scenario = load_scenario(locate(spec.scenario, "scenario", base=path.parent))
    return resolve(spec, scenario, str(path), formats_dir)


def resolve(spec: SweepSpec, scenario: Scenario, origin: str = "sweep",
            formats_dir: str | Path = FORMATS_DIR) -> Plan:
    """The plan of a validated sweep on a loaded scenario, with the formats of
    ``formats_dir``; every axis path and value is checked against every chosen format
    before any work."""
    catalogue = load_catalogue(formats_dir)
    ids = list(catalogue) if spec.formats == "all" else spec.formats
    unknown = [f for f in ids if f not in catalogue]
    if unknown:
        raise ConfigError(f"{origin}: key 'formats' names unknown formats {unknown}; allowed: "
                          f"{sorted(catalogue)}")
    formats = {f: catalogue[f] for f in dict.fromkeys(ids)}
    runs = (spec.point_count + spec.design_point_count) * spec.replicates * len(formats)
    if runs > MAX_SWEEP_RUNS:
        raise ConfigError(f"{origin}: {runs:,} runs ({len(formats)} formats x "
                          f"{runs // len(formats):,} runs each); a sweep may have at most "
                          f"{MAX_SWEEP_RUNS:,} runs: fewer formats, points or replicates")
    chunks = -(-runs // len(formats) // spec.chunk_runs) * len(formats)
    if chunks > MAX_CHUNKS:
        raise ConfigError(f"{origin}: key 'chunk_runs' = {spec.chunk_runs}: {chunks:,} work "
                          f"units of {spec.chunk_runs} runs; a sweep may have at most "
                          f"{MAX_CHUNKS:,}: use larger chunks")
    seed = scenario.seed if spec.seed is None else spec.seed
    if spec.method == "prior":
        spec = _prior_axes(spec, scenario, formats, origin)
    points, shape = _points(spec, seed)
    design = None
    if spec.sensitivity is not None:
        from .design import design as sensitivity_design

        design = sensitivity_design(spec.sensitivity, [a.path for a in spec.axes],
                                    [a.low for a in spec.axes], [a.high for a in spec.axes],
                                    seed)
    plan = Plan(spec, scenario, formats, points, shape, seed, design)
    _check_axes(plan, origin)
    return plan


def _check_axes(plan: Plan, origin: str, prefix: str = "") -> None:
    """Every axis of ``plan`` is a parameter of every format, with a NetCDF name, and every
    point gives each format's game valid parameters. ``prefix``: the keys' prefix (the
    sweep is ``spec`` in a stored plan)."""
    for fid, fmt in plan.formats.items():
        allowed = parameter_paths(plan.scenario, fmt)
        used = plan.overrides(fid, plan.all_points[:1])
        for j, axis in enumerate(plan.spec.axes):
            if axis.path not in allowed and axis.path in used:
                close = difflib.get_close_matches(axis.path, allowed, n=3)
                hint = (f"did you mean {', '.join(close)}?" if close else
                        "the allowed paths are listed by deterrence.parameter_paths and in "
                        "docs/model.md")
                raise ConfigError(f"{origin}: key '{prefix}axes.{j}.path' = {axis.path!r}: "
                                  f"not a parameter of format {fid!r}; {hint}")
            try:
                dim_name(axis.path)  # its name in the data files
            except ValueError as exc:
                raise ConfigError(f"{origin}: {exc}") from None
        try:
            build_game(plan.scenario, fmt, plan.overrides(fid, plan.all_points))
        except ConfigError as exc:
            raise ConfigError(f"{origin}: {exc}") from None
        chart = plan.spec.prior_map
        if chart is not None:
            for key, axis in (("x", chart.x), ("y", chart.y)):
                if axis.path not in allowed:
                    raise ConfigError(f"{origin}: key '{prefix}prior_map.{key}.path' = "
                                      f"{axis.path!r}: not a parameter of format {fid!r}")
                try:
                    dim_name(axis.path)
                except ValueError as exc:
                    raise ConfigError(f"{origin}: {exc}") from None
            try:
                build_game(plan.scenario, fmt, {chart.x.path: chart.values(chart.x)[:, None],
                                                chart.y.path: chart.values(chart.y)[None, :]})
            except ConfigError as exc:
                raise ConfigError(f"{origin}: key '{prefix}prior_map': {exc}") from None


def _prior_axes(spec: SweepSpec, scenario: Scenario, formats: dict[str, FormatSpec],
                origin: str) -> SweepSpec:
    """A prior sweep's spec with its axes: every uncertain parameter of the scenario, the
    formats and the sweep's own axes (whose priors stand for every format), in sorted
    order, on the quantile scale [0, 1]."""
    from ..game.config import check_distribution, uncertain_field
    from .design import prior_paths

    own = {}
    for j, a in enumerate(spec.axes):
        if a.prior is None:
            raise ConfigError(f"{origin}: key 'axes.{j}': method 'prior' samples the "
                              "distributions of the scenario and the formats; an axis of its "
                              "own needs a prior = { distribution = ... }")
        info = uncertain_field(a.path)
        if info is None:
            raise ConfigError(f"{origin}: key 'axes.{j}.path' = {a.path!r}: not a parameter "
                              "that may be uncertain (a number of the russia, ukraine or "
                              "guarantor tables, or of a format)")
        try:
            check_distribution(a.prior, info)
        except KeyProblem as exc:
            raise ConfigError(f"{origin}: key 'axes.{j}.prior': {exc}") from None
        own[a.path] = a.prior
    paths = sorted(set(prior_paths(scenario, formats.values())) | set(own))
    if not paths:
        raise ConfigError(f"{origin}: key 'method' = 'prior': neither the scenario, the "
                          "formats nor the sweep give any parameter as a distribution (e.g. "
                          "war_cost = { distribution = \"uniform\", low = 0.1, high = 0.3 })")
    axes = [SweepAxis(path=path, low=0.0, high=1.0, prior=own.get(path)) for path in paths]
    return spec.model_copy(update={"axes": axes})


def _points(spec: SweepSpec, seed: int) -> tuple[np.ndarray, tuple[int, ...] | None]:
    if spec.method == "grid":
        values = [np.asarray(a.values, dtype=np.float64) if a.values is not None
                  else np.linspace(a.low, a.high, a.count) for a in spec.axes]
        mesh = np.meshgrid(*values, indexing="ij")
        return (np.stack([m.ravel() for m in mesh], axis=1),
                tuple(v.size for v in values))
    from scipy.stats import qmc

    d = len(spec.axes)
    if spec.method == "prior":
        from .design import unit_sample

        return unit_sample("sobol", spec.samples, d, seed), None
    rng = np.random.default_rng(spec.seed if spec.seed is not None else 0)
    if spec.method == "lhs":
        unit = qmc.LatinHypercube(d=d, rng=rng).random(spec.samples)
    else:
        unit = qmc.Sobol(d=d, scramble=True, rng=rng).random(spec.samples)
    low = np.array([a.low for a in spec.axes])
    high = np.array([a.high for a in spec.axes])
    return qmc.scale(unit, low, high), None
