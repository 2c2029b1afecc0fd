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
from deterrence.game.config import FORMATS_DIR, SCENARIOS_DIR, FormatSpec
from deterrence.game.payoffs import build_game
from deterrence.solve.equilibrium import MAP_VARIABLES, REGIME_NAMES, solve_cell, solve_grid

matplotlib.use("Agg")  # figures are drawn, never shown

BASELINE = SCENARIOS_DIR / "baseline.toml"
#: Two members, either of whose responses alone defeats the offensive with probability
#: 0.95 (a volunteer's dilemma: each would rather the other responded), alike in every
#: parameter of their gain from honouring.
VOLUNTEERS = {"guarantors.*.stake_in_ukraine": 1.0, "guarantors.*.honouring_cost": 0.3,
              "guarantors.*.audience_cost": 0.2, "guarantors.*.resolve_scale": 0.05}


@pytest.fixture(scope="module")
def volunteers(tmp_path_factory):
    """(scenario, formats folder): the catalogue and ``volunteers``, Budapest-style
    assurances by the US and UK whose response is decisive."""
    folder = tmp_path_factory.mktemp("formats")
    for path in FORMATS_DIR.glob("*.toml"):
        (folder / path.name).write_text(path.read_text())
    text = (FORMATS_DIR / "budapest.toml").read_text()
    assert 'id = "budapest"' in text and "\n[response]" in text
    (folder / "volunteers.toml").write_text(
        text.replace('id = "budapest"', 'id = "volunteers"').replace(
            "\n[response]", "\n[response]\ndecisive_probability = 0.95", 1))
    return api.with_parameters(BASELINE, VOLUNTEERS), folder


def test_map_cells_are_labelled_with_the_values_that_produced_them():
    xs, ys = np.linspace(0, 1, 6), np.array([0.0, 0.3, 0.45, 0.6])
    x_path, y_path = "format.commitment_bindingness", "russia.status_quo_value"
    ds = solve_map(BASELINE, "budapest", (x_path, xs), (y_path, ys))
    x_name, y_name = "format__commitment_bindingness", "russia__status_quo_value"
    assert set(ds.data_vars) == {*MAP_VARIABLES, "credibility"}
    assert ds.regime.dims == (x_name, y_name)
    assert ds.credibility.dims == (x_name, y_name, "guarantor")
    assert (ds[x_name].parameter_path, ds[y_name].parameter_path) == (x_path, y_path)
    assert len(np.unique(ds.regime.values)) > 1  # the map is not flat
    scenario, spec = load_scenario(BASELINE), load_catalogue()["budapest"]
    assert list(ds.guarantor.values) == [g.id for g in scenario.guarantors]
    for xv in xs[::2]:
        for yv in ys:
            one = solve_grid(build_game(scenario, spec, {x_path: [xv], y_path: [yv]}))
            cell = ds.sel({x_name: xv, y_name: yv})
            for name in MAP_VARIABLES:
                assert cell[name].item() == getattr(one, name)[0], name
            for g in scenario.guarantors:  # the members' credibility; others missing
                value = float(cell.credibility.sel(guarantor=g.id))
                if g.id in spec.members:
                    assert value == one.credibility[0, one.guarantor_ids.index(g.id)]
                else:
                    assert np.isnan(value)


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


def test_with_parameters_changes_the_analysis_and_simulation_tables():
    changed = api.with_parameters(BASELINE, {"dynamics.belief_memory": 0.8,
                                             "analysis.deterred_below_escalation_probability":
                                             0.2})
    assert changed.dynamics.belief_memory == 0.8
    assert changed.analysis.deterred_below_escalation_probability == 0.2
    assert changed.russia == load_scenario(BASELINE).russia


def test_the_thresholds_of_the_scenario_decide_the_regime():
    """A format deterred at the default threshold of P(escalate) is not deterred below its
    own P(escalate)."""
    [deterred] = api.solve_formats(BASELINE, ["nato_lite"])
    assert deterred.regime == "deterred"
    stricter = api.with_parameters(BASELINE, {
        "analysis.deterred_below_escalation_probability":
            deterred.escalation_probability_min / 2})
    [result] = api.solve_formats(stricter, ["nato_lite"])
    assert result.escalation_probability == deterred.escalation_probability
    assert result.regime != "deterred"


def test_the_response_is_that_of_independent_members():
    """Budapest-style assurances have no coordination: the members play one equilibrium
    and honour independently, so at least one honours with 1 - prod(1 - credibility)."""
    [result] = api.solve_formats(BASELINE, ["budapest"])
    assert load_catalogue()["budapest"].coordination_probability == 0
    abstain = np.prod([1 - q for q in result.credibility.values()])
    assert result.response_probability == pytest.approx(1 - abstain, rel=1e-12)
    assert result.russia_success == pytest.approx(1 - result.defended_probability, rel=1e-12)


def test_solve_table_has_a_row_per_equilibrium(volunteers):
    scenario, formats = volunteers
    table = api.solve_table(scenario, formats_dir=formats)
    results = api.solve_formats(scenario, formats_dir=formats)
    assert table.index.names == ["format", "equilibrium"]
    assert list(table.index) == [(r.format_id, k) for r in results
                                 for k in range(len(r.equilibria))]
    assert list(table["regime"].cat.categories) == list(REGIME_NAMES)
    assert table["regime"].cat.ordered
    ids = [g.id for g in scenario.guarantors]
    assert list(table.columns) == ["name", "members", *api.FORMAT_COLUMNS,
                                   *(f"honour_{g}" for g in ids), *api.EQUILIBRIUM_COLUMNS]
    catalogue = load_catalogue(formats)
    for fid, rows in table.groupby(level="format"):
        game = build_game(scenario, catalogue[fid])
        # independent paths: the grid solver on the format's one cell, and the cell solver
        grid = solve_grid(game, scenario.analysis.deterred_below_escalation_probability,
                          scenario.analysis.defended_below_russia_success)
        equilibria, complete = solve_cell(game)
        assert len(rows) == grid.equilibrium_count[0] == len(equilibria)
        assert (rows["members"] == game.n).all()
        for name in api.FORMAT_COLUMNS:
            expected = getattr(grid, name)[0]
            if name == "regime":
                expected = REGIME_NAMES[int(expected)]
            assert (rows[name] == expected).all() or np.isnan(expected), (fid, name)
        assert (rows["equilibrium_set_complete"] == complete).all()
        assert rows["played_alone"].sum() == rows["played_coordinated"].sum() == 1
        for (_, row), e in zip(rows.iterrows(), equilibria, strict=True):
            assert row["escalation_if_played"] == e.escalation_probability
            for g in ids:
                assert (row[f"honour_{g}"] == e.honour_probability[g] if g in game.guarantor_ids
                        else np.isnan(row[f"honour_{g}"]))
        low, high = rows["escalation_if_played"].min(), rows["escalation_if_played"].max()
        assert rows["escalation_probability_min"].iloc[0] == low
        assert rows["escalation_probability_max"].iloc[0] == high
        assert low <= rows["escalation_probability"].iloc[0] <= high
    assert np.isnan(table.loc["neutrality", "mean_credibility"]).all()  # no members


def test_a_volunteers_dilemma_has_both_asymmetric_equilibria_and_the_symmetric_one(
        volunteers):
    """Either member's response suffices and the two are alike: in one equilibrium the US
    is the likelier to respond, in another the UK, with the same probabilities swapped, and
    in a third both respond alike."""
    scenario, formats = volunteers
    [result] = api.solve_formats(scenario, ["volunteers"], formats)
    assert result.equilibrium_count == 3 and result.equilibrium_set_complete
    profiles = [(e.honour_probability["US"], e.honour_probability["UK"])
                for e in result.equilibria]
    swapped = sorted((uk, us) for us, uk in profiles)
    np.testing.assert_allclose(sorted(profiles), swapped, atol=1e-9)
    assert sum(abs(us - uk) < 1e-9 for us, uk in profiles) == 1
    assert result.escalation_probability_min < result.escalation_probability_max
    assert result.regime in REGIME_NAMES
    alone = [e for e in result.equilibria if e.played_alone]
    assert alone[0].russia_escalation_value == max(e.russia_escalation_value
                                                   for e in result.equilibria)
    assert result.credibility == alone[0].honour_probability  # no coordination in it


def test_simulate_runs_labels_the_simulation():
    ds = api.simulate_runs(BASELINE, "bilateral", runs=20, steps=15, keep_series=True)
    assert "rationality" not in ds.attrs
    sim = api.simulate_scenario(BASELINE, "bilateral", runs=20, steps=15)
    for name, values in sim.summary.items():
        if "_FillValue" in api.SUMMARY_DESCRIPTIONS[name]:  # -1 codes a missing value
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
    for variable, names in (("regime", REGIME_NAMES), ("equilibrium_set_complete",
                                                        ("no", "yes"))):
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
    np.testing.assert_array_equal(grid.equilibrium_set_complete_name.values == "yes",
                                  grid.equilibrium_set_complete.values == 1)


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
    ax = api.plot_categories(ds.equilibrium_set_complete.sel(format="bilateral"))
    try:
        assert [t.get_text() for t in ax.get_legend().get_texts()] == ["no", "yes"]
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


def test_stability_table_has_a_row_per_format_and_point(small_sweep):
    from deterrence.analysis.stability import END_SHARES

    ds, plan = small_sweep
    table = deterrence.stability_table(ds)
    assert table.index.names == ["format", *map(api.dim_name, SMALL_AXES)]
    assert len(table) == len(SMALL_FORMATS) * plan.cells
    np.testing.assert_allclose(table[list(END_SHARES)].sum(axis=1), 1.0)
    # a run ends only through an escalation, so every run without one is censored at the
    # horizon: the Kaplan-Meier survival to the horizon is then the share never escalated
    np.testing.assert_allclose(table.deterred_at_horizon, table.ongoing_deterred_share)
    years = plan.scenario.dynamics.round_months / 12
    np.testing.assert_allclose(table.erosion_years, table.erosion_rounds * years)
    with pytest.raises(ConfigError, match="end_state"):
        api.stability_table(ds.drop_vars("end_state"))


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
