"""Python API: the operations of the command line as functions, for scripts and notebooks."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from .game.config import (
    FORMATS_DIR,
    ConfigError,
    FormatSpec,
    Scenario,
    load_catalogue,
    load_scenario,
)
from .game.payoffs import build_game
from .solve.binary_games import STABILITY_NAMES
from .solve.equilibrium import REGIME_NAMES, Equilibrium, GridSolution, solve_cell, solve_grid

ENGINES = ("vector", "mesa")

MAP_VARIABLES = {  # GridSolution field -> (description, unit)
    "regime": ("regime over the pure subgame-perfect equilibria (the totally mixed one where "
               "there is no pure one); codes: "
               + ", ".join(f"{i} {name}" for i, name in enumerate(REGIME_NAMES)), "code"),
    "equilibrium_count": ("number of pure subgame-perfect equilibria (1 where the totally "
                          "mixed one stands in, 0 where none was found)", "count"),
    "escalation_share": ("share of those equilibria in which Russia escalates", "share"),
    "has_pure_equilibrium": ("the guarantors' subgame has a pure equilibrium", "yes/no"),
    "worst_escalates": ("Russia escalates in the equilibrium it likes best", "yes/no"),
    "worst_russia_success": ("P(Russia succeeds | escalation) in that equilibrium",
                             "probability"),
    "worst_deter_share": ("mean P(deter) of guarantors deciding alone in that equilibrium",
                          "probability"),
    "worst_stability": ("stability of that equilibrium under replicator learning; codes: "
                        + ", ".join(f"{i} {name}" for i, name in enumerate(STABILITY_NAMES)),
                        "code"),
    "worst_max_real_eigenvalue": ("largest real part of the replicator Jacobian's eigenvalues "
                                  "there (> 0: learning moves away)", "1 / round"),
}


@dataclass(frozen=True)
class FormatResult:
    """The solved crisis game of one scenario under one format."""

    format_id: str
    format_name: str
    members: list[str]
    regime: str                  # over the pure SPE ("mixed" if they differ), as on maps
    equilibria: list[Equilibrium]

    def to_dict(self) -> dict:
        return {"id": self.format_id, "name": self.format_name, "members": self.members,
                "regime": self.regime, "equilibria": [asdict(e) for e in self.equilibria]}


def solve_formats(scenario: Scenario | str | Path, format_ids: list[str] | None = None,
                  rationality: float | None = None,
                  formats_dir: str | Path = FORMATS_DIR) -> list[FormatResult]:
    """Solve ``scenario`` under each format (default: the whole catalogue)."""
    if not isinstance(scenario, Scenario):
        scenario = load_scenario(scenario)
    catalogue = load_catalogue(formats_dir)
    if scenario.format not in catalogue:
        raise ConfigError(f"scenario {scenario.name!r}: key 'format' = {scenario.format!r}: "
                          f"not in the catalogue; allowed: {sorted(catalogue)}")
    chosen = list(dict.fromkeys(format_ids)) if format_ids else list(catalogue)
    unknown = [f for f in chosen if f not in catalogue]
    if unknown:
        raise ConfigError(f"unknown format id(s) {unknown}; allowed: {sorted(catalogue)}")
    if rationality is None:
        rationality = scenario.analysis.rationality
    elif not 0 <= rationality <= 1e4:
        raise ConfigError(f"rationality = {rationality!r}: must be between 0 and 10000")
    results = []
    for fid in chosen:
        fmt: FormatSpec = catalogue[fid]
        game = build_game(scenario, fmt)
        threshold = scenario.analysis.defended_below_russia_success
        grid = solve_grid(game, defended_below=threshold, threads=1)
        results.append(FormatResult(
            format_id=fid, format_name=fmt.name, members=list(game.guarantor_ids),
            regime=REGIME_NAMES[int(grid.regime[0])],
            equilibria=solve_cell(game, rationality, defended_below=threshold)))
    return results


def solve_map(scenario: Scenario | str | Path, format_id: str,
              x: tuple[str, np.ndarray], y: tuple[str, np.ndarray],
              formats_dir: str | Path = FORMATS_DIR):
    """Solve a 2-D parameter grid for one format; returns labelled arrays (x by y).

    ``x`` and ``y`` are (parameter path, values); see :func:`deterrence.parameter_paths`.
    """
    if not isinstance(scenario, Scenario):
        scenario = load_scenario(scenario)
    catalogue = load_catalogue(formats_dir)
    if format_id not in catalogue:
        raise ConfigError(f"unknown format id {format_id!r}; allowed: {sorted(catalogue)}")
    import xarray as xr  # imported here: engine workers need not load it

    (x_path, x_values), (y_path, y_values) = x, y
    if x_path == y_path:
        raise ConfigError(f"the two axes must differ, both are {x_path!r}")
    x_values = np.asarray(x_values, dtype=np.float64)
    y_values = np.asarray(y_values, dtype=np.float64)
    game = build_game(scenario, catalogue[format_id],
                      {x_path: x_values[:, None], y_path: y_values[None, :]})
    grid: GridSolution = solve_grid(
        game, defended_below=scenario.analysis.defended_below_russia_success)
    shape = (x_values.size, y_values.size)
    data = {name: ((x_path, y_path), getattr(grid, name).reshape(shape),
                   {"description": desc, "units": unit})
            for name, (desc, unit) in MAP_VARIABLES.items()}
    return xr.Dataset(data, coords={x_path: x_values, y_path: y_values},
                      attrs={"scenario": scenario.name, "format": format_id,
                             "regime_names": list(REGIME_NAMES),
                             "stability_names": list(STABILITY_NAMES)})


def simulate_scenario(scenario: Scenario | str | Path, format_id: str | None = None,
                      engine: str = "vector", runs: int = 100, steps: int = 200,
                      seed: int | None = None, rationality: float | None = None,
                      keep_series: bool = False, formats_dir: str | Path = FORMATS_DIR,
                      progress=None):
    """Simulate ``runs`` repeated crises under one format (default: the scenario's).

    Both engines give the same numbers for the same seed. ``progress``, if given, is
    called with the number of runs finished after each run (Mesa) or chunk (vector).
    """
    from .simulate import engine as vector
    from .simulate import mesa_model as abm
    from .simulate.rules import MAX_RUNS, MAX_STEPS, Setup

    if not isinstance(scenario, Scenario):
        scenario = load_scenario(scenario)
    catalogue = load_catalogue(formats_dir)
    format_id = format_id or scenario.format
    if format_id not in catalogue:
        raise ConfigError(f"unknown format id {format_id!r}; allowed: {sorted(catalogue)}")
    if engine not in ENGINES:
        raise ConfigError(f"engine = {engine!r}: allowed: {', '.join(ENGINES)}")
    if not 1 <= runs < MAX_RUNS:
        raise ConfigError(f"runs = {runs!r}: must be between 1 and {MAX_RUNS - 1}")
    if not 1 <= steps <= MAX_STEPS:
        raise ConfigError(f"steps = {steps!r}: must be between 1 and {MAX_STEPS}")
    if seed is not None and seed < 0:
        raise ConfigError(f"seed = {seed!r}: must be a non-negative integer")
    if rationality is not None and not 0 <= rationality <= 1e4:
        raise ConfigError(f"rationality = {rationality!r}: must be between 0 and 10000")
    setup = Setup.from_config(scenario, catalogue[format_id], seed, rationality)
    if engine == "vector":
        return vector.simulate(setup, runs, steps, keep_series, progress=progress)
    results = []
    for r in range(runs):
        results.append(abm.run(setup, r, steps, keep_series))
        if progress:
            progress(r + 1)
    summary = {k: np.concatenate([res[0][k] for res in results]) for k in results[0][0]}
    series = ({k: np.concatenate([res[1][k] for res in results]) for k in results[0][1]}
              if keep_series else None)
    return vector.Simulation(setup.base.guarantor_ids, np.arange(runs), steps, summary, series)


SUMMARY_DESCRIPTIONS = {
    "escalation_frequency": ("share of rounds in which Russia escalated", "share"),
    "abandoned_given_escalation": ("share of escalations met by an insufficient response "
                                   "(NaN: no escalation)", "share"),
    "deterred_share": ("share of rounds in which Russia refrained", "share"),
    "first_escalation": ("round of the first escalation (-1: none)", "round"),
}


def simulation_dataset(sim, attrs: dict):
    """Labelled arrays of a simulation (an ``xarray.Dataset``): summaries by run and, if
    kept, series by run and round (and guarantor)."""
    import xarray as xr
    data = {name: ("run", values, {"description": SUMMARY_DESCRIPTIONS[name][0],
                                   "units": SUMMARY_DESCRIPTIONS[name][1]})
            for name, values in sim.summary.items()}
    coords = {"run": sim.run_ids, "guarantor": list(sim.guarantor_ids)}
    if sim.series is not None:
        s = sim.series
        coords["round"] = np.arange(sim.steps)
        data.update({
            "escalated": (("run", "round"), s["escalated"].astype(np.int8)),
            "team_formed": (("run", "round"), s["team"].astype(np.int8)),
            "outcome": (("run", "round"), s["outcome"],
                        {"description": "0 deterred, 1 defended, 2 abandoned"}),
            "honoured": (("run", "round", "guarantor"), s["actions"]),
            "belief": (("run", "round", "guarantor"), s["belief"],
                       {"description": "Russia's belief that the guarantor honours, after "
                                       "the round's learning"}),
            "attraction": (("run", "round", "guarantor"), s["attraction"]),
            "ukraine_capability": (("run", "round"), s["stocks"][..., 0], {"units": "USD bn"}),
            "russia_capability": (("run", "round"), s["stocks"][..., 1], {"units": "USD bn"}),
            "sanctions_stock": (("run", "round"), s["stocks"][..., 2]),
        })
    return xr.Dataset(data, coords=coords, attrs=attrs)


#: Outcomes compared run by run between two formats.
COMPARED_OUTCOMES = ("escalation_frequency", "abandoned_given_escalation", "deterred_share")


def compare_formats(simulated, first: str, second: str,
                    outcomes: tuple[str, ...] = COMPARED_OUTCOMES, confidence: float = 0.95):
    """Paired differences ``first - second`` per point of a sweep, under common random
    numbers (run r of a point draws the same numbers under every format).

    ``simulated`` is a sweep archive folder or its simulated dataset (dims format, point
    dims..., replicate). Returns an ``xarray.Dataset`` over the point dims with, per
    outcome, ``<outcome>`` (mean difference), ``<outcome>_half_width`` (Student-t interval at
    ``confidence``), ``<outcome>_pairs``, ``<outcome>_p_value``, ``<outcome>_significant``
    (the interval excludes 0) and ``<outcome>_significant_fdr`` (Benjamini-Hochberg over the
    points); its attrs hold the difference over every pair (``<outcome>_overall`` and
    ``_overall_half_width``, normal approximation).
    """
    import xarray as xr

    from .analysis.stats import paired_cells, paired_difference

    if isinstance(simulated, str | Path):
        path = Path(simulated) / "data" / "simulation.nc"
        if not path.is_file():
            raise ConfigError(f"{simulated}: not a sweep archive (no data/simulation.nc)")
        with xr.open_dataset(path, engine="scipy") as ds:
            simulated = ds.load()
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
        unit = f"difference in {outcome} ({first} - {second})"
        data[outcome] = (dims, cells.mean, {"description": unit})
        data[f"{outcome}_half_width"] = (dims, cells.half_width,
                                         {"description": f"half-width of the {confidence:.0%}"
                                                         " Student-t interval"})
        data[f"{outcome}_pairs"] = (dims, cells.pairs)
        data[f"{outcome}_p_value"] = (dims, cells.p_value)
        data[f"{outcome}_significant"] = (dims, cells.significant.astype(np.int8))
        data[f"{outcome}_significant_fdr"] = (dims, cells.significant_fdr.astype(np.int8))
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
