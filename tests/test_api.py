"""The Python API's labelled maps."""

from __future__ import annotations

import numpy as np
import pytest

from deterrence import ConfigError, load_catalogue, load_scenario, solve_map
from deterrence.game.config import SCENARIOS_DIR
from deterrence.game.payoffs import build_game
from deterrence.solve.equilibrium import solve_grid

BASELINE = SCENARIOS_DIR / "baseline.toml"


def test_map_cells_are_labelled_with_the_values_that_produced_them():
    xs, ys = np.linspace(0, 1, 6), np.array([0.0, 0.3, 0.45, 0.6])
    x_path, y_path = "format.commitment_bindingness", "russia.status_quo_value"
    ds = solve_map(BASELINE, "bilateral", (x_path, xs), (y_path, ys))
    x_name, y_name = "format__commitment_bindingness", "russia__status_quo_value"
    assert ds.regime.dims == (x_name, y_name)
    assert (ds[x_name].parameter_path, ds[y_name].parameter_path) == (x_path, y_path)
    assert len(np.unique(ds.regime.values)) > 1  # the map is not flat
    scenario, spec = load_scenario(BASELINE), load_catalogue()["bilateral"]
    for xv in xs[::2]:
        for yv in ys:
            one = solve_grid(build_game(scenario, spec, {x_path: [xv], y_path: [yv]}))
            cell = ds.sel({x_name: xv, y_name: yv})
            assert int(cell.regime) == one.regime[0]
            assert float(cell.worst_max_real_eigenvalue) == one.worst_max_real_eigenvalue[0]


def test_map_rejects_bad_axes():
    with pytest.raises(ConfigError, match="axes must differ"):
        solve_map(BASELINE, "nato", ("russia.war_cost", [0.1]), ("russia.war_cost", [0.2]))
    with pytest.raises(ConfigError, match="unknown format id 'nat'"):
        solve_map(BASELINE, "nat", ("russia.war_cost", [0.1]), ("russia.sanctions_cost", [0.2]))
