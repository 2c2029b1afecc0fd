"""Paired comparison of two formats per point of a sweep, under common random numbers."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..archive.read import load_archive
from ..game.config import ConfigError
from ..simulate.engine import YES_NO
from .stats import paired_cells, paired_difference

#: Outcomes compared run by run between two formats.
COMPARED_OUTCOMES = ("escalation_frequency", "abandoned_given_escalation", "deterred_share")


def compare_formats(simulated, first: str, second: str,
                    outcomes: tuple[str, ...] = COMPARED_OUTCOMES, confidence: float = 0.95):
    """Paired differences ``first - second`` per point of a sweep, under common random
    numbers (run r of a point draws the same numbers under every format).

    ``simulated`` is a sweep archive folder (read and checked as every archive is:
    :func:`deterrence.archive.read.load_archive`, which raises ArchiveError) or its
    simulated dataset (dims format, point dims..., replicate). Returns an
    ``xarray.Dataset`` over the point dims with, per outcome, ``<outcome>`` (mean
    difference), ``<outcome>_half_width`` (Student-t interval at ``confidence``),
    ``<outcome>_pairs``, ``<outcome>_p_value``, ``<outcome>_significant`` (the interval
    excludes 0) and ``<outcome>_significant_fdr`` (Benjamini-Hochberg over the points); its
    attrs hold the difference over every pair (``<outcome>_overall`` and
    ``_overall_half_width``, normal approximation).
    """
    import xarray as xr

    if isinstance(simulated, str | Path):
        simulated = load_archive(simulated).sim
    formats = [str(f) for f in simulated["format"].values]
    for name, value in (("first", first), ("second", second)):
        if value not in formats:
            raise ConfigError(f"{name} = {value!r}: not in the sweep; allowed: "
                              f"{', '.join(formats)}")
    for outcome in outcomes:
        if outcome not in simulated:
            raise ConfigError(f"outcome {outcome!r}: allowed: "
                              f"{', '.join(str(v) for v in simulated.data_vars)}")
    a, b = simulated.sel(format=first), simulated.sel(format=second)
    dims = [d for d in a[outcomes[0]].dims if d != "replicate"]
    data, attrs = {}, {"first": first, "second": second, "confidence": confidence,
                       "pairing": "common random numbers: run r of a point shares its "
                                  "random numbers under every format"}
    for outcome in outcomes:
        x = a[outcome].transpose(*dims, "replicate").values
        y = b[outcome].transpose(*dims, "replicate").values
        cells = paired_cells(x, y, confidence)
        data[outcome] = (dims, cells.mean, {
            "long_name": f"mean paired difference in {outcome} ({first} - {second})",
            "units": "1"})
        data[f"{outcome}_half_width"] = (dims, cells.half_width, {
            "long_name": f"half-width of the {confidence:.0%} Student-t interval",
            "units": "1"})
        data[f"{outcome}_pairs"] = (dims, cells.pairs, {"long_name": "pairs counted",
                                                        "units": "1"})
        data[f"{outcome}_p_value"] = (dims, cells.p_value, {
            "long_name": "two-sided p-value of the paired t-test", "units": "1"})
        data[f"{outcome}_significant"] = (dims, cells.significant.astype(np.int8), {
            "long_name": "the interval excludes 0", **YES_NO})
        data[f"{outcome}_significant_fdr"] = (dims, cells.significant_fdr.astype(np.int8), {
            "long_name": "a discovery under Benjamini-Hochberg control of the false "
                         f"discovery rate at {1 - confidence:.0%}", **YES_NO})
        overall = paired_difference(x, y)
        attrs[f"{outcome}_overall"] = overall.mean
        attrs[f"{outcome}_overall_half_width"] = overall.half_width
    coords = {name: coord for name, coord in a.coords.items()
              if name not in ("format", "replicate")
              and set(coord.dims) <= set(dims)}
    return xr.Dataset(data, coords=coords, attrs=attrs)


def significance_counts(differences, outcome: str) -> dict[str, int]:
    """How many points of a :func:`compare_formats` result differ significantly: ``points``,
    ``points_lower``, ``points_higher`` and the same after FDR control (``*_fdr``)."""
    mean = differences[outcome].values
    counts = {"points": int(mean.size)}
    for suffix, flag in (("", "significant"), ("_fdr", "significant_fdr")):
        marked = differences[f"{outcome}_{flag}"].values.astype(bool)
        counts[f"points_lower{suffix}"] = int((marked & (mean < 0)).sum())
        counts[f"points_higher{suffix}"] = int((marked & (mean > 0)).sum())
    return counts
