"""deterrence: security-guarantee formats for Ukraine as games, solved exactly.

The names below are the public API (:mod:`deterrence.api`); the subpackages are its layers:
``game`` (schema, loaders, payoff rules), ``solve`` (exact equilibria), ``simulate`` (the
repeated crisis), ``sweep`` (plans and executors), ``archive`` (writing, reading,
verifying) and ``analysis`` (statistics, comparison, sensitivity, discovery, reports).
"""

from .api import (
    REGIME_NAMES,
    ArchiveError,
    ConfigError,
    FormatResult,
    __version__,
    compare_formats,
    discover,
    label_categories,
    load_archive,
    load_catalogue,
    load_plan,
    load_scenario,
    plot_categories,
    run_sweep,
    sensitivity,
    significance_counts,
    simulate_runs,
    simulate_scenario,
    solve_formats,
    solve_map,
    solve_table,
    sweep_dataset,
    sweep_plan,
    verify,
    with_parameters,
    write_report,
)
from .game.config import load_format
from .game.payoffs import build_game, parameter_paths
from .solve.equilibrium import solve_cell, solve_grid

__all__ = [
    "REGIME_NAMES", "ArchiveError", "ConfigError", "FormatResult", "build_game",
    "compare_formats", "discover", "label_categories", "load_archive", "load_catalogue",
    "load_format", "load_plan", "load_scenario", "parameter_paths", "plot_categories",
    "run_sweep", "sensitivity", "significance_counts", "simulate_runs", "simulate_scenario",
    "solve_cell", "solve_formats", "solve_grid", "solve_map", "solve_table", "sweep_dataset",
    "sweep_plan", "verify", "with_parameters", "write_report",
    "__version__",
]
