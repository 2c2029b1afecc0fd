"""The global sensitivity design of a sweep: its ``[sensitivity]`` table and its points.

A sweep file may carry a ``[sensitivity]`` table. Its design (Saltelli's extension of a
scrambled Sobol sequence, or Morris trajectories, through SALib) is drawn over the ranges of
the sweep's axes and run with the sweep, under every format, with the same engine,
replicates and seeds. The indices are estimated from the runs by
:mod:`deterrence.analysis.sensitivity`.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from pydantic import Field, model_validator

from ..game.config import Strict

#: Outcomes the indices can be computed for: description and unit, per design point.
OUTPUTS: dict[str, tuple[str, str]] = {
    "escalation_frequency": ("share of rounds in which Russia escalated, mean over the "
                             "replicates", "share of rounds"),
    "abandoned_frequency": ("share of rounds in which Russia escalated and the response was "
                            "insufficient (abandoned), mean over the replicates",
                            "share of rounds"),
    "regime_deterred": ("1 where the exact game's regime is deterred (Russia escalates "
                        "with a probability below the scenario's threshold under every "
                        "equilibrium of the set), else 0", "indicator"),
    "escalation_probability": ("P(Russia escalates) in the exact game, at the selected "
                               "equilibria", "probability"),
}
#: Design size when neither the sweep file nor the command line gives one: base samples for
#: Sobol (N·(k+2) points; assumption: a trade-off of cost and interval width, Saltelli et al.
#: 2010 use 2^9 and more) and trajectories for Morris (10-20 suffice for screening,
#: Campolongo, Cariboni & Saltelli 2007).
DEFAULT_SAMPLES = {"sobol": 128, "morris": 20}


class SensitivitySpec(Strict):
    """The ``[sensitivity]`` table of a sweep file."""

    method: Literal["sobol", "morris"] = Field(
        "sobol", description="sobol: Saltelli design, first-order and total indices; "
                             "morris: elementary-effects screening (cheaper).")
    samples: int = Field(
        ..., ge=4, le=1 << 16,
        description="sobol: base sample N, a power of 2 (N·(k+2) points for k parameters); "
                    "morris: trajectories (N·(k+1) points).")
    levels: int = Field(4, ge=2, le=100, description="Morris grid levels (even).")
    outputs: list[Literal[tuple(OUTPUTS)]] = Field(
        default_factory=lambda: list(OUTPUTS), min_length=1)
    confidence: float = Field(0.95, gt=0.5, lt=1.0, description="Confidence level.")
    resamples: int = Field(1000, ge=10, le=100_000, description="Bootstrap resamples.")

    @model_validator(mode="after")
    def _consistent(self) -> SensitivitySpec:
        if self.method == "sobol" and self.samples & (self.samples - 1):
            low = 1 << (self.samples.bit_length() - 1)
            raise ValueError(f"samples = {self.samples}: the Sobol design needs a power of 2 "
                             f"(e.g. {low} or {2 * low})")
        if self.method == "morris" and self.levels % 2:
            raise ValueError(f"levels = {self.levels}: Morris needs an even number of levels")
        if len(set(self.outputs)) != len(self.outputs):
            raise ValueError(f"outputs repeat a name: {self.outputs}")
        return self


def problem(names: list[str], low, high) -> dict[str, Any]:
    """SALib's description of the parameter space."""
    return {"num_vars": len(names), "names": list(names),
            "bounds": [[float(a), float(b)] for a, b in zip(low, high, strict=True)]}


def stream_generator(seed: int, stream: int) -> np.random.Generator:
    # the design and the bootstrap draw from streams of their own under the sweep's seed
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(0x5E45, stream)))


def design(spec: SensitivitySpec, names: list[str], low, high, seed: int) -> np.ndarray:
    """The design points, shape (points, parameters), in SALib's order."""
    space = problem(names, low, high)
    rng = stream_generator(seed, 0)
    if spec.method == "sobol":
        from SALib.sample import sobol

        points = sobol.sample(space, spec.samples, calc_second_order=False, scramble=True,
                              seed=rng)
    else:
        from SALib.sample import morris

        points = morris.sample(space, spec.samples, num_levels=spec.levels, seed=rng)
    return np.ascontiguousarray(points, dtype=np.float64)


# ---------------------------------------------------------------------------------------
# The joint prior of a study's uncertain parameters (docs/analysis.md, "Uncertainty")

#: The stream (under the study's seed) the prior's sample is drawn from: apart from the
#: sensitivity design's (0, 1) and every run's random numbers.
PRIOR_STREAM = 2
#: How the prior is sampled: a scrambled Sobol sequence (its size a power of 2, so that the
#: points keep their balance) or a Latin hypercube.
PRIOR_METHODS = ("sobol", "lhs")


def prior_paths(scenario, formats) -> list[str]:
    """Every uncertain parameter of ``scenario`` and ``formats`` (FormatSpec objects), in
    sorted order: the columns of the prior's unit design. A path uncertain in several
    formats has one column, so every format sees the same quantile (common random
    numbers)."""
    paths = set(scenario.prior)
    for fmt in formats:
        paths |= set(fmt.prior)
    return sorted(paths)


def unit_sample(method: str, samples: int, dimensions: int, seed: int) -> np.ndarray:
    """``samples`` points of the unit cube (samples, dimensions), drawn from the prior's own
    stream under ``seed``."""
    from scipy.stats import qmc

    if method not in PRIOR_METHODS:
        raise ValueError(f"method = {method!r}: allowed: {', '.join(PRIOR_METHODS)}")
    if method == "sobol" and samples & (samples - 1):
        low = 1 << (samples.bit_length() - 1)
        raise ValueError(f"samples = {samples}: a Sobol sample needs a power of 2 (e.g. "
                         f"{low} or {2 * low})")
    if dimensions == 0:
        return np.full((samples, 0), 0.5)
    rng = stream_generator(seed, PRIOR_STREAM)
    engine = (qmc.Sobol(d=dimensions, scramble=True, rng=rng) if method == "sobol"
              else qmc.LatinHypercube(d=dimensions, rng=rng))
    return engine.random(samples)


def prior_overrides(scenario, fmt, paths: list[str], unit: np.ndarray,
                    every: dict | None = None) -> dict[str, np.ndarray]:
    """The parameter values of ``fmt`` at the unit-cube points ``unit`` (points, paths):
    the quantiles of each path's distribution: ``every``'s (a sweep's, for every format),
    else the format's own, else the scenario's; a path none gives keeps its value."""
    from ..game.config import prior_values

    every = every or {}
    overrides = {}
    for j, path in enumerate(paths):
        dist = every.get(path) or fmt.prior.get(path) or scenario.prior.get(path)
        if dist is not None:
            overrides[path] = prior_values(dist, path, unit[:, j])
    return overrides
