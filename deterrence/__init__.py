"""deterrence: security-guarantee formats for Ukraine as games, solved exactly."""

from .api import FormatResult, compare_formats, solve_formats, solve_map
from .game.config import ConfigError, load_catalogue, load_format, load_scenario
from .game.payoffs import build_game, parameter_paths
from .solve.equilibrium import REGIME_NAMES, solve_cell, solve_grid

__all__ = [
    "ConfigError", "FormatResult", "REGIME_NAMES", "build_game", "compare_formats",
    "load_catalogue", "load_format", "load_scenario", "parameter_paths", "solve_cell",
    "solve_formats", "solve_grid", "solve_map",
]
__version__ = "0.1.0"
