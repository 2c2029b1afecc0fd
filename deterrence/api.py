"""Python API: the operations of the command line as functions, for scripts and notebooks."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

from .config import FORMATS_DIR, ConfigError, FormatSpec, Scenario, load_catalogue, load_scenario
from .equilibrium import REGIME_NAMES, Equilibrium, solve_cell, solve_grid
from .payoffs import build_game


@dataclass(frozen=True)
class FormatResult:
    """The solved crisis game of one scenario under one format."""

    format_id: str
    format_name: str
    members: list[str]
    regime: str                  # over all subgame-perfect equilibria ("mixed" if they differ)
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
    chosen = format_ids or list(catalogue)
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
