"""The Python API: labelled maps, and the notebook's front door (changed parameters,
tables, in-memory sweeps with labelled categories, comparison, discovery, sensitivity)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import matplotlib
import numpy as np
import pytest
import xarray as xr

import deterrence
from deterrence import ConfigError, api, load_catalogue, load_scenario, solve_map
from deterrence.game.config import SCENARIOS_DIR, FormatSpec
from deterrence.game.payoffs import build_game
from deterrence.solve.binary_games import STABILITY_NAMES
from deterrence.solve.equilibrium import REGIME_NAMES, solve_grid

matplotlib.use("Agg")  # figures are drawn, never shown

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


# ---------------------------------------------------------------------------------------
# The notebook front door: with_parameters, solve_table, simulate_runs, sweep_dataset,
# label_categories, plot_categories, discover, sensitivity


SMALL_AXES = {"format.commitment_bindingness": np.linspace(0.0, 1.0, 4),
              "russia.status_quo_value": np.linspace(0.1, 0.7, 4)}
SMALL_FORMATS = ["bilateral", "nato_lite"]


def assert_same_game(a, b):
    assert a.guarantor_ids == b.guarantor_ids
    for field in dataclasses.fields(a):
        if field.name != "guarantor_ids":
            np.testing.assert_array_equal(getattr(a, field.name), getattr(b, field.name),
                                          err_msg=field.name)


def test_with_parameters_rejects_an_out_of_range_value_in_one_line():
    scenario = load_scenario(BASELINE)
    with pytest.raises(ConfigError) as caught:
        api.with_parameters(scenario, {"russia.war_cost": -5})
    message = str(caught.value)
    assert "\n" not in message
    assert "'russia.war_cost'" in message and "-5" in message
    assert "greater than or equal to 0" in message
    assert scenario.russia.war_cost == 0.2  # the scenario given is unchanged (its file)


def test_with_parameters_names_guarantors_and_formats_by_the_callers_path():
    scenario = load_scenario(BASELINE)
    with pytest.raises(ConfigError, match=r"'guarantors\.UK\.stake_in_ukraine' = -1"):
        api.with_parameters(scenario, {"guarantors.UK.stake_in_ukraine": -1})
    with pytest.raises(ConfigError) as caught:  # every guarantor: one problem, not eight
        api.with_parameters(scenario, {"guarantors.*.audience_cost": -1})
    assert str(caught.value).count("audience_cost") == 1
    assert "'guarantors.*.audience_cost'" in str(caught.value)
    with pytest.raises(ConfigError, match=r"'format\.response\.cost_share' = 9.*less than "
                                          r"or equal to 5"):
        api.with_parameters(scenario, {"format.response.cost_share": 9}, fmt="bilateral")
    with pytest.raises(ConfigError, match=r"'dynamics\.belief_memory' = 2"):
        api.with_parameters(scenario, {"dynamics.belief_memory": 2})
    with pytest.raises(ConfigError, match="Input should be a valid number"):
        api.with_parameters(scenario, {"russia.war_cost": "0.3"})


def test_with_parameters_offers_close_matches_for_unknown_paths():
    scenario = load_scenario(BASELINE)
    with pytest.raises(ConfigError, match=r"'russia\.war_cots'.*did you mean "
                                          r"'russia\.war_cost'"):
        api.with_parameters(scenario, {"russia.war_cots": 0.3})
    with pytest.raises(ConfigError, match=r"did you mean 'guarantors\.UK\.stake_in_ukraine'"):
        api.with_parameters(scenario, {"guarantors.UK.stake": 0.3})
    with pytest.raises(ConfigError, match="changes a format: pass fmt="):
        api.with_parameters(scenario, {"format.commitment_bindingness": 0.3})
    with pytest.raises(ConfigError, match="unknown format id 'nat'"):
        api.with_parameters(scenario, {"russia.war_cost": 0.3}, fmt="nat")


@pytest.mark.parametrize("format_id, changes", [
    ("nato_lite", {"russia.war_cost": 0.35, "ukraine.baseline_military_aid_usd_bn": 20.0}),
    ("coalition", {"guarantors.UK.stake_in_ukraine": 2.5}),
    # a guarantor's own value takes precedence over every guarantor's, as in sweeps
    ("nato_lite", {"guarantors.*.gdp_usd_tn": 3.0, "guarantors.US.gdp_usd_tn": 9.0}),
    ("bilateral", {"format.commitment_bindingness": 0.9, "format.response.cost_share": 1.5}),
    ("three_tier", {"format.response_overrides.US.denial_share": 0.2,
                    "format.response.denial_share": 0.01, "russia.status_quo_value": 0.55}),
])
def test_with_parameters_gives_the_game_of_the_same_override(format_id, changes):
    scenario, spec = load_scenario(BASELINE), load_catalogue()[format_id]
    if any(path.startswith("format.") for path in changes):
        changed, changed_format = api.with_parameters(scenario, changes, fmt=spec)
    else:
        changed, changed_format = api.with_parameters(scenario, changes), spec
    overridden = build_game(scenario, spec, {p: [v] for p, v in changes.items()})
    assert_same_game(build_game(changed, changed_format), overridden)
    assert_same_game(build_game(scenario, spec), build_game(load_scenario(BASELINE), spec))


def test_with_parameters_changes_the_simulation_tables():
    changed = api.with_parameters(BASELINE, {"dynamics.belief_memory": 0.8,
                                             "analysis.rationality": 3.0})
    assert (changed.dynamics.belief_memory, changed.analysis.rationality) == (0.8, 3.0)
    assert changed.russia == load_scenario(BASELINE).russia


def test_solve_table_rows_are_the_solved_formats():
    table = api.solve_table(BASELINE)
    results = api.solve_formats(BASELINE)
    assert list(table.index) == [r.format_id for r in results]
    assert list(table["regime"].astype(str)) == [r.regime for r in results]
    assert list(table["regime"].cat.categories) == list(REGIME_NAMES)
    assert table["regime"].cat.ordered
    assert list(table["qre_stability"].cat.categories) == list(STABILITY_NAMES)
    scenario, catalogue = load_scenario(BASELINE), load_catalogue()
    for fid, row in table.iterrows():
        # an independent path: the grid solver on the format's one cell
        grid = solve_grid(build_game(scenario, catalogue[fid]),
                          defended_below=scenario.analysis.defended_below_russia_success)
        assert row["regime"] == REGIME_NAMES[int(grid.regime[0])]
        assert row["spe"] == grid.equilibrium_count[0]
        assert row["spe_escalation_share"] == pytest.approx(grid.escalation_share[0])
        assert row["members"] == build_game(scenario, catalogue[fid]).n
        assert 0 <= row["qre_escalate"] <= 1 and 0 <= row["qre_russia_success"] <= 1


def test_simulate_runs_labels_the_simulation():
    ds = api.simulate_runs(BASELINE, "bilateral", runs=20, steps=15, keep_series=True)
    sim = api.simulate_scenario(BASELINE, "bilateral", runs=20, steps=15)
    for name, values in sim.summary.items():
        if name == "first_escalation":  # -1 (no escalation) is a missing value in the data
            values = np.where(values < 0, np.nan, values)
        np.testing.assert_array_equal(ds[name].values, values)
    assert ds.attrs["seed"] == load_scenario(BASELINE).seed
    assert ds.attrs["format"] == "bilateral" and ds.sizes == {"run": 20, "round": 15,
                                                              "guarantor": 8}


@pytest.fixture(scope="module")
def small_sweep():
    scenario = load_scenario(BASELINE)
    ds = api.sweep_dataset(scenario, SMALL_AXES, replicates=3, steps=20,
                           formats=SMALL_FORMATS)
    # the same sweep built independently: a specification resolved on the scenario
    spec = api.SweepSpec.model_validate({
        "name": "independent", "scenario": "baseline", "formats": SMALL_FORMATS,
        "axes": [{"path": p, "values": list(v)} for p, v in SMALL_AXES.items()],
        "replicates": 3, "steps": 20})
    return ds, api.resolve(spec, scenario)


def test_sweep_dataset_holds_the_plans_simulated_and_exact_arrays(small_sweep):
    ds, plan = small_sweep
    simulated, exact = api.simulate_plan(plan), api.exact_dataset(plan)
    for source in (simulated, exact):
        for name, array in source.data_vars.items():
            xr.testing.assert_equal(ds[name].reset_coords(drop=True).drop_attrs(),
                                    array.reset_coords(drop=True).drop_attrs())
    for name in ("format", *map(api.dim_name, SMALL_AXES)):
        np.testing.assert_array_equal(ds[name].values, exact[name].values)


def test_sweep_categories_are_labelled(small_sweep):
    ds, _ = small_sweep
    for variable, names in (("regime", REGIME_NAMES), ("worst_stability", STABILITY_NAMES)):
        codes = ds[variable]
        assert list(codes.attrs["flag_values"]) == list(range(len(names)))
        assert [m.replace("_", " ") for m in codes.attrs["flag_meanings"].split()] == \
            list(names)
        expected = [names[int(c)] for c in codes.values.ravel()]
        assert list(ds[f"{variable}_name"].values.ravel()) == expected
    assert len(np.unique(ds.regime_name.values)) > 1  # the grid is not flat


def test_label_categories_keeps_the_names_a_file_gives():
    ds = xr.Dataset({"regime": ("x", np.array([0, 2, 1], dtype=np.int8),
                                {"flag_values": [0, 1, 2], "flag_meanings": "a b_c d"})})
    assert list(api.label_categories(ds).regime_name.values) == ["a", "d", "b c"]
    ds.regime.attrs["flag_values"] = [1, 2, 3]
    with pytest.raises(ConfigError, match="not among the flag_values"):
        api.label_categories(ds)
    grid = api.label_categories(solve_map(BASELINE, "bilateral",
                                          ("russia.war_cost", [0.1, 0.9]),
                                          ("russia.status_quo_value", [0.1, 0.9])))
    assert grid.regime_name.dims == grid.regime.dims
    assert set(grid.worst_stability_name.values.ravel()) <= set(STABILITY_NAMES)


def test_plot_categories_draws_a_legend_in_the_cells_colours(small_sweep):
    import matplotlib.pyplot as plt
    from matplotlib.colors import to_hex

    ds, _ = small_sweep
    one = ds.regime.sel(format="bilateral")
    ax = api.plot_categories(one)
    try:
        assert len(ax.figure.axes) == 1  # no colour bar
        legend = ax.get_legend()
        labels = [t.get_text() for t in legend.get_texts()]
        assert labels == list(REGIME_NAMES)
        colour_of = {label: to_hex(patch.get_facecolor())
                     for label, patch in zip(labels, legend.get_patches(), strict=True)}
        mesh = ax.collections[0]
        cells = [to_hex(c) for c in mesh.cmap(mesh.norm(np.asarray(mesh.get_array()).ravel()))]
        # pcolormesh draws the x-by-y array transposed: rows are y
        names = ds.regime_name.sel(format="bilateral").transpose(*one.dims[::-1])
        assert cells == [colour_of[n] for n in names.values.ravel()]
        # the axis is labelled with the schema's description of the parameter
        described = FormatSpec.model_fields["commitment_bindingness"].description
        assert " ".join(ax.get_xlabel().split()).startswith(" ".join(described.split()[:4]))
    finally:
        plt.close(ax.figure)
    with pytest.raises(ConfigError, match="select one format"):
        api.plot_categories(ds.regime)
    with pytest.raises(ConfigError, match="not a coded variable"):
        api.plot_categories(ds.escalation_frequency.isel(replicate=0, format=0))


def test_compare_and_discover_work_on_the_in_memory_sweep(small_sweep):
    from deterrence.analysis.discovery import REGIME_OUTCOME

    ds, plan = small_sweep
    simulated = api.simulate_plan(plan)
    xr.testing.assert_identical(api.compare_formats(ds, "nato_lite", "bilateral"),
                                api.compare_formats(simulated, "nato_lite", "bilateral"))
    source, boxes = api.discover(ds, ["bilateral"], outcome=REGIME_OUTCOME)
    assert source == "the dataset's 16 points"
    (fid, box), = boxes
    failing = ds.regime.sel(format="bilateral") != REGIME_NAMES.index("deterred")
    assert fid == "bilateral" and box.cases == int(round(box.mass * 16))
    assert box.coverage * int(failing.sum()) == pytest.approx(box.density * box.cases)
    with pytest.raises(ConfigError, match="format 'nato': not in the sweep"):
        api.discover(ds, ["nato"])


def test_sweep_dataset_rejects_mixed_or_missing_arguments(small_sweep):
    _, plan = small_sweep
    with pytest.raises(ConfigError, match="not both"):
        api.sweep_dataset(plan, replicates=2)
    with pytest.raises(ConfigError, match="axes is required"):
        api.sweep_dataset(BASELINE, replicates=2, steps=5)
    with pytest.raises(ConfigError, match="key 'steps' is required but missing"):
        api.sweep_dataset(BASELINE, SMALL_AXES, replicates=2)
    with pytest.raises(ConfigError, match="'russia.war_cots': not a parameter of format "
                                          "'bilateral'; did you mean russia.war_cost"):
        api.sweep_dataset(BASELINE, {"russia.war_cots": [0.1]}, replicates=2, steps=5)


def test_sensitivity_in_memory_is_the_archives(tmp_path):
    plan = api.sweep_plan(
        BASELINE, {"format.commitment_bindingness": {"low": 0.0, "high": 1.0, "count": 2},
                   "russia.status_quo_value": {"low": 0.1, "high": 0.7, "count": 2}},
        replicates=2, steps=15, formats=SMALL_FORMATS,
        sensitivity={"method": "morris", "samples": 4, "resamples": 20})
    archive, failures = api.run_sweep(plan, tmp_path / "archive")
    assert failures == []
    xr.testing.assert_identical(api.sensitivity(plan), api.sensitivity(archive))
    with pytest.raises(ConfigError, match="has no sensitivity design"):
        api.sensitivity(dataclasses.replace(plan, sensitivity_points=None))
    with pytest.raises(ConfigError, match="not a Saltelli or Morris design"):
        api.sensitivity(xr.Dataset())


def test_the_package_root_does_not_hide_its_layers():
    """``deterrence.simulate`` and ``deterrence.sweep`` stay the subpackages: a function
    of that name at the root would break ``import deterrence.simulate.engine``."""
    import importlib

    layers = {p.name for p in Path(deterrence.__file__).parent.iterdir()
              if (p / "__init__.py").is_file()}
    assert {"simulate", "sweep"} <= layers
    assert not layers & set(deterrence.__all__)
    for layer in layers:
        assert importlib.import_module(f"deterrence.{layer}") is getattr(deterrence, layer)
