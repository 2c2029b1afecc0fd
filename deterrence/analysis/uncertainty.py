r"""Assumptions carried as uncertainty: the answer of each format under the joint prior.

Every uncertain parameter of a scenario or a format has a distribution
(:class:`deterrence.game.config.Distribution`). A study draws points of the unit cube
(:func:`deterrence.sweep.design.unit_sample`), maps each column through its parameter's
quantile function, solves the crisis game exactly at every point under every format (the
same unit point for every format: common random numbers), and reports per format
(docs/analysis.md, "Uncertainty"):

- ``p_deterred``: the prior-predictive probability that Russia refrains in a crisis,
  E[1 - P(escalate)] over the prior, with the Monte Carlo interval of that mean and the
  prior's 5% and 95% quantiles of 1 - P(escalate);
- ``holds``: P(deterrence holds), the prior probability of the deterred regime, with a
  Wilson interval;
- ``p_defended_given_escalation``: E[P(the offensive fails | escalation)];
- paired differences between formats over the same points;
- the value of information of each uncertain parameter: its total Sobol index (SALib) on
  the deterred indicator and on 1 - P(escalate), the share of the answer's variance that
  would go if it were known.

The intervals of the means are normal-approximation Monte Carlo intervals over the
sample's points; for a scrambled Sobol sample they are conservative (its error falls
faster than an independent sample's).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..archive.read import PRIOR_MAP_FILE
from ..solve.equilibrium import DETERRED
from ..sweep.datasets import solve
from ..sweep.design import prior_overrides, prior_paths, unit_sample
from .stats import NORMAL_95, mean_ci

#: Samples of the prior when none is given (a power of 2 for the Sobol sample; assumption:
#: a Monte Carlo half-width of at most 1.96 * 0.5 / 16 = 0.06 on any probability).
DEFAULT_PRIOR_SAMPLES = 256
#: The prior's quantiles reported around the predictive probability.
PRIOR_QUANTILES = (0.05, 0.95)


@dataclass(frozen=True)
class PriorStudy:
    """The solutions of every format at the prior's points."""

    paths: list[str]
    unit: np.ndarray                  # (points, paths) in the unit cube
    values: dict[str, dict[str, np.ndarray]]   # per format: {path: (points,)}
    solutions: dict[str, object]      # per format: GridSolution over the points


def solve_prior(scenario, formats: dict, samples: int = DEFAULT_PRIOR_SAMPLES,
                seed: int | None = None, method: str = "sobol") -> PriorStudy:
    """Solve every format of ``formats`` ({id: FormatSpec}) at ``samples`` points of the
    joint prior of ``scenario`` and the formats (seeded by ``seed``, default the
    scenario's)."""
    paths = prior_paths(scenario, formats.values())
    unit = unit_sample(method, samples, len(paths), scenario.seed if seed is None else seed)
    values, solutions = {}, {}
    for fid, fmt in formats.items():
        overrides = prior_overrides(scenario, fmt, paths, unit)
        if not overrides:  # nothing uncertain for this format: one point, repeated
            solutions[fid] = _repeated(solve(scenario, fmt), samples)
        else:
            solutions[fid] = solve(scenario, fmt, overrides)
        values[fid] = overrides
    return PriorStudy(paths, unit, values, solutions)


def _repeated(solution, samples: int):
    """A one-point solution repeated at ``samples`` points."""
    from dataclasses import fields, replace

    return replace(solution, **{f.name: np.repeat(getattr(solution, f.name), samples, axis=0)
                                for f in fields(solution)
                                if isinstance(getattr(solution, f.name), np.ndarray)})


def wilson_interval(successes: np.ndarray, n: int, z: float = NORMAL_95):
    """Wilson's score interval of a proportion (Wilson 1927): (low, high)."""
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


def _mean_interval(values: np.ndarray):
    """(mean, low, high): :func:`~deterrence.analysis.stats.mean_ci` as its interval."""
    estimate = mean_ci(values)
    return (estimate.mean, estimate.mean - estimate.half_width,
            estimate.mean + estimate.half_width)


def outcome_arrays(solution) -> dict[str, np.ndarray]:
    """Per point: 1 - P(escalate), the deterred indicator, P(defended | escalation), from a
    GridSolution or an archive's exact dataset of one format."""
    def get(name):
        value = solution[name].values if hasattr(solution, "data_vars") else getattr(
            solution, name)
        return np.asarray(value).reshape(-1)

    return {"p_deterred": 1.0 - get("escalation_probability").astype(np.float64),
            "holds": (get("regime") == DETERRED).astype(np.float64),
            "p_defended_given_escalation": get("defended_probability").astype(np.float64)}


def uncertainty_rows(outcomes: dict[str, dict[str, np.ndarray]]):
    """The table's rows from each format's :func:`outcome_arrays`."""
    import pandas as pd

    rows = []
    for fid, out in outcomes.items():
        n = out["holds"].size
        p, p_low, p_high = _mean_interval(out["p_deterred"])
        q05, q95 = np.quantile(out["p_deterred"], PRIOR_QUANTILES)
        h_low, h_high = wilson_interval(out["holds"].sum(), n)
        d, d_low, d_high = _mean_interval(out["p_defended_given_escalation"])
        rows.append({"format": fid, "p_deterred": p, "p_deterred_low": p_low,
                     "p_deterred_high": p_high, "p_deterred_q05": float(q05),
                     "p_deterred_q95": float(q95), "holds": float(out["holds"].mean()),
                     "holds_low": float(h_low), "holds_high": float(h_high),
                     "p_defended_given_escalation": d,
                     "p_defended_given_escalation_low": d_low,
                     "p_defended_given_escalation_high": d_high, "samples": n})
    return pd.DataFrame(rows).set_index("format")


def uncertainty_table(study: PriorStudy):
    """One row per format (index ``format``): see the module docstring for the columns."""
    return uncertainty_rows({fid: outcome_arrays(s) for fid, s in study.solutions.items()})


def unattacked(first_escalation: np.ndarray):
    """P(no escalation within the horizon) from runs' first escalations (points,
    replicates; NaN where none), with the normal-approximation interval of the mean over
    the points of their per-point shares (runs of a point share its parameters)."""
    share = np.isnan(np.asarray(first_escalation, dtype=np.float64)).mean(axis=-1)
    return _mean_interval(share.reshape(-1))


def archive_table(plan, exact, sim):
    """The uncertainty table of a prior sweep's archive (its ``exact.nc`` and
    ``simulation.nc``), with ``unattacked`` (the share of runs without any escalation in
    the ``steps`` rounds) and its interval."""
    table = uncertainty_rows({fid: outcome_arrays(exact.sel(format=fid))
                              for fid in plan.formats})
    for fid in plan.formats:
        mean, low, high = unattacked(sim["first_escalation"].sel(format=fid).values)
        table.loc[fid, ["unattacked", "unattacked_low", "unattacked_high"]] = mean, low, high
    return table


def archive_paired(plan, exact, reference: str):
    """:func:`paired_table` for a prior sweep's archive."""
    return _paired({fid: outcome_arrays(exact.sel(format=fid)) for fid in plan.formats},
                   reference)


def paired_table(study: PriorStudy, reference: str):
    """Each format against ``reference`` over the same prior points: the mean difference
    of 1 - P(escalate) and of the deterred indicator, with normal-approximation intervals
    of the paired differences."""
    return _paired({fid: outcome_arrays(s) for fid, s in study.solutions.items()}, reference)


def _paired(outcomes: dict[str, dict[str, np.ndarray]], reference: str):
    import pandas as pd

    if reference not in outcomes:
        raise ValueError(f"reference = {reference!r}: not a format of the study; allowed: "
                         f"{', '.join(outcomes)}")
    base = outcomes[reference]
    rows = []
    for fid, out in outcomes.items():
        if fid == reference:
            continue
        row = {"format": fid, "reference": reference}
        for name in ("p_deterred", "holds"):
            mean, low, high = _mean_interval(out[name] - base[name])
            row.update({f"{name}_difference": mean, f"{name}_difference_low": low,
                        f"{name}_difference_high": high})
        rows.append(row)
    return pd.DataFrame(rows).set_index("format")


# ---------------------------------------------------------------------------------------
# Maps integrated over the prior

#: The stream (under the study's seed) of the maps' prior sample: apart from the study's.
PRIOR_MAP_STREAM = 3
#: The mapped quantities (:data:`deterrence.archive.read.PRIOR_MAP_VARIABLES`): name and CF
#: attributes.
PRIOR_MAP_ATTRIBUTES = {
    "holds": {"long_name": "P(deterrence holds): share of the prior's points in the deterred "
                           "regime", "units": "1"},
    "p_deterred": {"long_name": "P(deterred): E[1 - P(escalate)] over the prior",
                   "units": "1"},
}


def map_over_prior(scenario, formats: dict, x_path: str, xs: np.ndarray, y_path: str,
                   ys: np.ndarray, samples: int, seed: int, every: dict | None = None):
    """Per format, P(deterrence holds) and P(deterred) on the grid ``xs`` x ``ys`` of two
    parameters, every other uncertain parameter integrated over its prior: at each cell the
    same ``samples`` prior points (a Sobol sample of the stream :data:`PRIOR_MAP_STREAM`;
    common random numbers across cells and formats), the two mapped parameters fixed (their
    own distributions, if any, set aside). {format: {name: (len(xs), len(ys))}}."""
    from ..sweep.design import stream_generator

    paths = sorted((set(prior_paths(scenario, formats.values())) | set(every or {}))
                   - {x_path, y_path})
    unit = _map_unit(samples, len(paths), stream_generator(seed, PRIOR_MAP_STREAM))
    out = {}
    for fid, fmt in formats.items():
        overrides = {path: values[None, None, :] for path, values in
                     prior_overrides(scenario, fmt, paths, unit, every).items()}
        overrides[x_path] = np.asarray(xs, dtype=np.float64)[:, None, None]
        overrides[y_path] = np.asarray(ys, dtype=np.float64)[None, :, None]
        if len(overrides) == 2:  # nothing else uncertain: one prior point stands for all
            overrides = {x_path: overrides[x_path][..., 0], y_path: overrides[y_path][..., 0]}
        solution = solve(scenario, fmt, overrides, threads=None)
        shape = (len(xs), len(ys), -1)
        arrays = outcome_arrays(solution)
        out[fid] = {name: arrays[name].reshape(shape).mean(axis=-1)
                    for name in PRIOR_MAP_ATTRIBUTES}
    return out


def _map_unit(samples: int, dimensions: int, rng) -> np.ndarray:
    from scipy.stats import qmc

    if dimensions == 0:
        return np.full((samples, 0), 0.5)
    return qmc.Sobol(d=dimensions, scramble=True, rng=rng).random(samples)


def prior_map_dataset(plan):
    """The maps of a prior sweep's ``[prior_map]`` as an ``xarray.Dataset`` (format, x,
    y) with CF attributes: the archive's :data:`PRIOR_MAP_FILE`."""
    import xarray as xr

    from ..simulate.engine import cf_variable
    from ..sweep.datasets import dim_name, parameter_attributes

    chart = plan.spec.prior_map
    xs, ys = chart.values(chart.x), chart.values(chart.y)
    every = {a.path: a.prior for a in plan.spec.axes if a.prior}
    maps = map_over_prior(plan.scenario, plan.formats, chart.x.path, xs, chart.y.path, ys,
                          chart.samples, plan.seed, every)
    dims = ("format", dim_name(chart.x.path), dim_name(chart.y.path))
    data = {name: cf_variable(dims, np.stack([maps[f][name] for f in plan.formats]),
                              {**meta, "comment": f"mean over {chart.samples} points of the "
                                                  "prior of the other uncertain parameters"})
            for name, meta in PRIOR_MAP_ATTRIBUTES.items()}
    coords = {"format": cf_variable("format", list(plan.formats), {
        "long_name": "guarantee format id"}, coordinate=True)}
    for axis, values in ((chart.x, xs), (chart.y, ys)):
        coords[dim_name(axis.path)] = cf_variable(dim_name(axis.path), values,
                                                  parameter_attributes(axis.path),
                                                  coordinate=True)
    from ..simulate.engine import global_attributes, history

    attrs = global_attributes(f"{plan.spec.name}: P(deterrence holds) over two parameters, "
                              "integrated over the prior",
                              history("deterrence.analysis.uncertainty.prior_map_dataset"),
                              sweep=plan.spec.name, seed=str(plan.seed),
                              samples=chart.samples)
    return xr.Dataset(data, coords=coords, attrs=attrs)


def archive_outputs(plan, data) -> dict:
    """What an archive derives from its data (the ``derive`` step of
    :func:`deterrence.archive.write.run_sweep` and ``verify``): the sensitivity indices
    (:func:`deterrence.analysis.sensitivity.archive_outputs`) and a prior sweep's maps."""
    from .sensitivity import archive_outputs as sensitivity_outputs

    out = sensitivity_outputs(plan, data)
    if plan.spec.prior_map is not None:
        out[PRIOR_MAP_FILE] = prior_map_dataset(plan)
    return out
