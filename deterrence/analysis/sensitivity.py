"""Global sensitivity of sweep outcomes: Sobol indices and Morris screening, through SALib.

A sweep file may carry a ``[sensitivity]`` table. Its design (Saltelli's extension of a
scrambled Sobol sequence, or Morris trajectories) is drawn over the ranges of the sweep's
axes and run with the sweep, under every format, with the same engine, replicates and
seeds; the indices of each outcome are then estimated per format, with bootstrap
confidence intervals.

Each outcome is a function of the parameters alone: the simulated outcomes are averaged
over the replicates at each design point, so run-to-run noise adds variance that no
parameter explains (first-order indices then sum to less than 1 by that share).

References: Sobol' (2001); Saltelli et al. (2010) for the estimators SALib implements;
Morris (1991) and Campolongo, Cariboni & Saltelli (2007) for mu*; Herman & Usher (2017),
SALib.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np

from ..archive.read import FIGURE_FILE, INDICES_FILE
from ..simulate.engine import cf_variable, global_attributes, history
from ..sweep.design import OUTPUTS, SensitivitySpec, problem, stream_generator

#: Index variables per method, each with its confidence half-width ``<name>_conf``.
INDICES = {"sobol": ("S1", "ST"), "morris": ("mu_star", "sigma")}
INDEX_DESCRIPTIONS = {
    "S1": "first-order Sobol index: share of the outcome's variance due to this parameter "
          "alone",
    "ST": "total Sobol index: share of the variance due to this parameter with all its "
          "interactions",
    "mu_star": "Morris mu*: mean absolute elementary effect over the parameter's range",
    "sigma": "Morris sigma: spread of the elementary effects (non-linearity, interactions)",
}


def outcomes(sim, exact, names: list[str]) -> dict[str, np.ndarray]:
    """Each requested outcome per (format, design point) from the design's datasets:
    ``sim`` has dims (format, sample, replicate), ``exact`` (format, sample)."""
    from ..solve.equilibrium import REGIME_NAMES

    out = {}
    for name in names:
        if name == "escalation_frequency":
            values = sim["escalation_frequency"].values.mean(axis=-1)
        elif name == "abandoned_frequency":
            # abandoned rounds / rounds; a run that never escalated abandoned nothing
            per_run = np.nan_to_num(sim["abandoned_given_escalation"].values, nan=0.0)
            values = (sim["escalation_frequency"].values * per_run).mean(axis=-1)
        elif name == "regime_deterred":
            values = (exact["regime"].values == REGIME_NAMES.index("deterred")).astype(
                np.float64)
        elif name == "escalation_probability":
            values = exact["escalation_probability"].values.astype(np.float64)
        else:
            raise ValueError(f"outcome {name!r}: allowed: {', '.join(OUTPUTS)}")
        out[name] = values
    return out


def analyse(spec: SensitivitySpec, names: list[str], low, high, points: np.ndarray,
            values: np.ndarray, seed: int) -> dict[str, np.ndarray]:
    """Indices of one outcome sampled at ``points``: {index: (parameters,)} with
    ``<index>_conf`` the half-width of its confidence interval. An outcome that does not
    vary over the design has no indices (NaN)."""
    space = problem(names, low, high)
    k = len(names)
    nan = {f"{i}{s}": np.full(k, np.nan) for i in INDICES[spec.method] for s in ("", "_conf")}
    if not np.all(np.isfinite(values)):
        raise ValueError("the outcome has non-finite values at some design points")
    if np.ptp(values) == 0:
        return nan
    bootstrap_seed = int(stream_generator(seed, 1).integers(1, 2**31 - 1))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        # SALib warns when the outcome is constant over the Sobol base samples A and B
        # (while it varies elsewhere in the design) and returns indices of 0 with 0
        # intervals; the command line says so in its own words
        warnings.filterwarnings("ignore", message="Constant values encountered",
                                category=UserWarning)
        if spec.method == "sobol":
            from SALib.analyze import sobol

            result = sobol.analyze(space, values, calc_second_order=False,
                                   num_resamples=spec.resamples, conf_level=spec.confidence,
                                   seed=bootstrap_seed)
        else:
            from SALib.analyze import morris

            result = morris.analyze(space, points, values, num_resamples=spec.resamples,
                                    conf_level=spec.confidence, num_levels=spec.levels,
                                    seed=bootstrap_seed)
    out = {}
    for index in INDICES[spec.method]:
        out[index] = np.asarray(result[index], dtype=np.float64)
        conf = f"{index}_conf"
        out[conf] = (np.asarray(result[conf], dtype=np.float64) if conf in result
                     else np.full(k, np.nan))
    return out


def indices_dataset(spec: SensitivitySpec, names: list[str], low, high, points: np.ndarray,
                    sim, exact, seed: int, sweep: str = ""):
    """Every requested outcome's indices per format, as an xarray Dataset with dims
    (format, output, parameter)."""
    import xarray as xr

    formats = [str(f) for f in sim["format"].values]
    per_output = outcomes(sim, exact, spec.outputs)
    columns: dict[str, list] = {}
    for output in spec.outputs:
        for f in range(len(formats)):
            result = analyse(spec, names, low, high, points, per_output[output][f], seed)
            for key, value in result.items():
                columns.setdefault(key, []).append(value)
    shape = (len(spec.outputs), len(formats), len(names))
    data = {}
    for key, stacked in columns.items():
        base = key.removesuffix("_conf")
        desc = INDEX_DESCRIPTIONS[base]
        if key.endswith("_conf"):
            desc = f"half-width of the {spec.confidence:.0%} bootstrap interval of {base}"
        values = np.asarray(stacked).reshape(shape).transpose(1, 0, 2)
        data[key] = cf_variable(("format", "output", "parameter"), values, {
            "long_name": desc, "units": "1",
            "comment": "missing where the outcome does not vary over the design"})
    variance = np.array([[np.var(per_output[o][f]) for o in spec.outputs]
                         for f in range(len(formats))])
    data["output_variance"] = cf_variable(("format", "output"), variance, {
        "long_name": "variance of the outcome over the design", "units": "1"})
    bound = {"units": "1", "comment": "in the parameter's own unit (its coordinate in "
                                      "data/sensitivity.nc)"}
    coords = {
        "format": cf_variable("format", formats, {"long_name": "guarantee format id"},
                              coordinate=True),
        "output": cf_variable("output", list(spec.outputs), {
            "long_name": "outcome whose variance is apportioned",
            "comment": "; ".join(f"{name}: {OUTPUTS[name][0]}" for name in spec.outputs)},
            coordinate=True),
        "parameter": cf_variable("parameter", list(names), {
            "long_name": "parameter path (docs/sweeps.md)"}, coordinate=True),
        "low": cf_variable("parameter", np.asarray(low, dtype=np.float64),
                           {"long_name": "lower end of the parameter's range", **bound},
                           coordinate=True),
        "high": cf_variable("parameter", np.asarray(high, dtype=np.float64),
                            {"long_name": "upper end of the parameter's range", **bound},
                            coordinate=True)}
    title = f"{sweep}: {spec.method} sensitivity indices" if sweep else \
        f"{spec.method} sensitivity indices"
    return xr.Dataset(data, coords=coords, attrs=global_attributes(
        title, history("deterrence.analysis.sensitivity.indices_dataset (SALib) of the "
                       "design in data/sensitivity.nc"),
        method=spec.method, samples=spec.samples, levels=spec.levels,
        confidence=spec.confidence, resamples=spec.resamples,
        design_points=int(points.shape[0]), sweep=sweep))


def figure(indices, title: str = "") -> bytes:
    """A tornado chart (PNG): one row per output, one column per format; the parameters
    sorted by their largest total index (Sobol) or mu* (Morris) in that row, the wide bar
    with its confidence interval, the narrow bar the first-order index (Sobol) or sigma."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    method = indices.attrs["method"]
    wide, narrow = ("ST", "S1") if method == "sobol" else ("mu_star", "sigma")
    outputs = [str(o) for o in indices["output"].values]
    formats = [str(f) for f in indices["format"].values]
    names = [str(p) for p in indices["parameter"].values]
    k = len(names)
    fig, axes = plt.subplots(len(outputs), len(formats), squeeze=False,
                             figsize=(2.3 * len(formats) + 2.2,
                                      (0.3 * k + 1.1) * len(outputs) + 0.6))
    for r, output in enumerate(outputs):
        row = indices.sel(output=output)
        value, conf = row[wide].values, np.nan_to_num(row[f"{wide}_conf"].values)
        order = np.argsort(np.nan_to_num(np.nanmax(value, axis=0, initial=-1.0), nan=-1.0))
        reach = np.concatenate([value + conf, row[narrow].values])
        top = float(np.nanmax(reach)) if np.isfinite(reach).any() else 1.0
        right = max(1.0, top) if method == "sobol" else max(top, 1e-9) * 1.05
        for c, fid in enumerate(formats):
            ax = axes[r][c]
            y = np.arange(k)
            if np.isfinite(value[c]).any():
                ax.barh(y, value[c][order], xerr=conf[c][order], color="#56B4E9", height=0.7,
                        label=wide, capsize=2, error_kw={"elinewidth": 0.8})
                if method == "sobol":  # S1 is part of ST: a bar inside the bar
                    ax.barh(y, row[narrow].values[c][order], color="#0072B2", height=0.3,
                            label=narrow)
                else:  # sigma is another measure, not a part of mu*
                    ax.scatter(row[narrow].values[c][order], y, marker="D", s=14,
                               color="#D55E00", zorder=3, label=narrow)
            else:
                ax.text(0.5, 0.5, "outcome\nconstant", ha="center", va="center",
                        transform=ax.transAxes, color="0.25", fontsize=8)
            ax.set_yticks(y, [names[i] for i in order] if c == 0 else [""] * k, fontsize=7)
            ax.set_xlim(min(0.0, float(np.nanmin(row[narrow].values, initial=0.0))), right)
            ax.axvline(0, color="0.6", linewidth=0.5)
            ax.tick_params(axis="x", labelsize=7)
            if r == 0:
                ax.set_title(fid, fontsize=9)
            if c == 0:
                ax.set_ylabel(output.replace("_", " "), fontsize=8)
    handles, labels = [], []
    for ax in np.ravel(axes):
        handles, labels = ax.get_legend_handles_labels()
        if handles:
            break
    if handles:
        fig.legend(handles, labels, loc="upper right", fontsize=8, ncols=2)
    if title:
        fig.suptitle(title, fontsize=10, x=0.01, ha="left")
    fig.tight_layout(rect=(0, 0, 1, 0.96))
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, metadata={"Software": None})
    plt.close(fig)
    return buffer.getvalue()


def archive_outputs(plan, data: Mapping[str, Any]) -> dict[str, Any]:
    """The indices and tornado chart of an archive's sensitivity design (none without one):
    the ``derive`` step of :func:`deterrence.archive.write.run_sweep` and ``verify``."""
    from ..sweep.datasets import SENSITIVITY_DESIGN_FILE

    if plan.sensitivity_points is None:
        return {}
    spec = plan.spec
    design_data = data[SENSITIVITY_DESIGN_FILE]
    indices = indices_dataset(spec.sensitivity, [a.path for a in spec.axes],
                              [a.low for a in spec.axes], [a.high for a in spec.axes],
                              plan.sensitivity_points, design_data, design_data, plan.seed,
                              spec.name)
    return {INDICES_FILE: indices,
            FIGURE_FILE: figure(indices, f"{spec.name}: {spec.sensitivity.method} indices")}
