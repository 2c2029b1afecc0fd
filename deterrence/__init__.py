"""deterrence: security-guarantee formats for Ukraine as games, solved exactly.

The names below are the public API (:mod:`deterrence.api`); the subpackages are its layers:
``game`` (schema, loaders, payoff rules), ``solve`` (exact equilibria), ``simulate`` (the
repeated crisis), ``sweep`` (plans and executors), ``archive`` (writing, reading,
verifying) and ``analysis`` (statistics, comparison, sensitivity, discovery, reports).
"""

import importlib

#: Where each public name lives; imported on first use (PEP 562), so that importing a layer
#: (``deterrence.game``) does not import the faces' dependencies.
_HOMES = {"load_format": "game.config", "build_game": "game.payoffs",
          "parameter_paths": "game.payoffs", "solve_cell": "solve.equilibrium",
          "solve_grid": "solve.equilibrium"}


def __getattr__(name: str):
    if name in __all__:
        module = importlib.import_module(f".{_HOMES.get(name, 'api')}", __name__)
        value = getattr(module, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))


__all__ = [
    "EQUILIBRIUM_COLUMNS", "FORMAT_COLUMNS", "MAP_VARIABLES", "REGIME_NAMES", "ArchiveError",
    "ConfigError", "FormatResult", "build_game",
    "compare_formats", "discover", "label_categories", "load_archive", "load_catalogue",
    "load_format", "load_plan", "load_scenario", "parameter_paths", "plot_categories",
    "run_sweep", "sensitivity", "significance_counts", "simulate_runs", "simulate_scenario",
    "solve_cell", "solve_formats", "solve_grid", "solve_map", "solve_table", "stability_table",
    "sweep_dataset",
    "sweep_plan", "verify", "with_parameters", "write_report",
    "__version__",
]
