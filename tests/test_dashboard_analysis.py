"""The dashboard's analysis views (``dashboard/analysis_view.py``): each compute function
gives the package's own numbers, computed here independently through ``deterrence.api``
(and, for the PRIM boxes along the peel, recounted from the grid's points), bad input
gives one line naming the key, and each draw function draws its charts without an
exception (``streamlit.testing.v1.AppTest``), with the one-replicate message, the size
refusal and the note of a scenario without distributions.

Small sweeps throughout: 3 formats on a 4 x 4 grid, 2 replicates, 20 rounds; Sobol designs
of 64 base samples.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from streamlit.testing.v1 import AppTest

from deterrence import api
from deterrence.dashboard import analysis_view as av

FORMATS = ["bilateral", "coalition", "nato_lite"]
AXES = {"format.commitment_bindingness": {"low": 0.0, "high": 1.0, "count": 4},
        "russia.status_quo_value": {"low": 0.1, "high": 0.7, "count": 4}}
REPLICATES, STEPS, SOBOL_SAMPLES, MORRIS_TRAJECTORIES = 2, 20, 64, 8
#: Chosen parameters of a design over parameters the sweep does not vary.
CHOSEN = {"russia.war_cost": (0.1, 0.4), "russia.status_quo_value": (0.1, 0.7)}
UNCERTAIN = "baseline_uncertain"
PRIOR_SAMPLES, MAP_SAMPLES = 32, 8
MAP_X = ("russia.war_cost", [0.1, 0.25, 0.4])
MAP_Y = ("russia.status_quo_value", [0.2, 0.5])
TIMEOUT = 120
CHART_TYPES = frozenset({"arrow_vega_lite_chart", "vega_lite_chart"})


def small_plan(replicates: int = REPLICATES) -> api.Plan:
    return api.sweep_plan(api.SCENARIOS_DIR / "baseline.toml", AXES, replicates=replicates,
                          steps=STEPS, formats=FORMATS, name="dashboard")


@pytest.fixture(scope="module")
def plan() -> api.Plan:
    return small_plan()


@pytest.fixture(scope="module")
def sim(plan):
    return api.simulate_plan(plan)


PROGRESS: list[tuple[int, int]] = []  # the Sobol fixture's progress calls


@pytest.fixture(scope="module")
def sobol(plan) -> av.SensitivityResult:
    return av.compute_sensitivity(plan, "sobol", SOBOL_SAMPLES,
                                  progress=lambda done, total: PROGRESS.append((done, total)))


def drawn(draw: str, result) -> AppTest:
    """A page that draws ``result`` with ``analysis_view.<draw>``, run once."""
    def page(draw, result):
        from deterrence.dashboard import analysis_view

        getattr(analysis_view, draw)(result)

    at = AppTest.from_function(page, args=(draw, result), default_timeout=TIMEOUT).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def charts(at: AppTest) -> list:
    return [n for n in at if getattr(n, "type", None) in CHART_TYPES]


# ---------------------------------------------------------------------------------------
# Sensitivity


def same_indices(ours, theirs) -> None:
    assert list(ours.data_vars) == list(theirs.data_vars)
    for name in theirs.data_vars:
        np.testing.assert_array_equal(ours[name].values, theirs[name].values, err_msg=name)
    assert list(ours["parameter"].values) == list(theirs["parameter"].values)


def test_sobol_indices_are_the_packages_on_the_same_sweep(sobol):
    design = api.sweep_plan(api.SCENARIOS_DIR / "baseline.toml", AXES, replicates=REPLICATES,
                            steps=STEPS, formats=FORMATS, name="dashboard",
                            sensitivity={"method": "sobol", "samples": SOBOL_SAMPLES})
    same_indices(sobol.indices, api.sensitivity(design))
    assert sobol.refused is None and sobol.parameters == list(AXES)
    assert PROGRESS and PROGRESS[-1][0] == PROGRESS[-1][1]  # told as chunks finish
    # the cells and the Saltelli design N (k + 2), under every format
    cells = np.prod([a["count"] for a in AXES.values()])
    assert sobol.run_rounds == len(FORMATS) * (cells + SOBOL_SAMPLES * (len(AXES) + 2)) \
        * REPLICATES * STEPS


def test_the_tornado_frame_holds_every_index_sorted(sobol):
    frame = av.sensitivity_frame(sobol)
    ind = sobol.indices
    assert len(frame) == ind.sizes["format"] * ind.sizes["output"] * ind.sizes["parameter"]
    for row in frame.sample(8, random_state=0).itertuples():
        one = ind.sel(format=row.format, output=row.output, parameter=row.parameter)
        assert row.value == pytest.approx(float(one["ST"]), nan_ok=True)
        assert row.narrow == pytest.approx(float(one["S1"]), nan_ok=True)
        assert row.high - row.low == pytest.approx(2 * float(one["ST_conf"]), nan_ok=True)
    first = frame.loc[frame["rank"] == 0, "parameter"].iloc[0]
    assert first == str(ind["parameter"].values[int(np.nanargmax(
        ind["ST"].max(["format", "output"]).values))])
    assert set(frame["format_name"]) == {api.load_catalogue()[f].name for f in FORMATS}


def test_morris_over_chosen_parameters_is_the_packages(plan):
    result = av.compute_sensitivity(plan, "morris", MORRIS_TRAJECTORIES, parameters=CHOSEN)
    design = api.sweep_plan(api.SCENARIOS_DIR / "baseline.toml",
                            {p: {"low": lo, "high": hi, "count": av.UNSWEPT_AXIS_POINTS}
                             for p, (lo, hi) in CHOSEN.items()},
                            replicates=REPLICATES, steps=STEPS, formats=FORMATS,
                            name="dashboard",
                            sensitivity={"method": "morris", "samples": MORRIS_TRAJECTORIES})
    same_indices(result.indices, api.sensitivity(design))
    assert result.parameters == list(CHOSEN) and result.ranges == CHOSEN


def test_a_design_over_the_limit_is_refused_without_simulating(plan, monkeypatch):
    cells = np.prod([a["count"] for a in AXES.values()])
    size = len(FORMATS) * (cells + SOBOL_SAMPLES * (len(AXES) + 2)) * REPLICATES * STEPS

    def never(*args, **kwargs):
        raise AssertionError("a refused design must not be simulated")

    monkeypatch.setattr(api, "sensitivity", never)
    refused = av.compute_sensitivity(plan, "sobol", SOBOL_SAMPLES, limit=size - 1)
    assert refused.indices is None and refused.run_rounds == size
    assert f"{size:,} run-rounds" in refused.refused
    assert f"{size - 1:,}" in refused.refused and "\n" not in refused.refused
    at = drawn("draw_sensitivity", refused)
    assert [w.value for w in at.warning] == [refused.refused] and not charts(at)


@pytest.mark.parametrize(("method", "samples", "key"), [
    ("saltelli", SOBOL_SAMPLES, "method = 'saltelli'"), ("sobol", 48, "samples = 48")])
def test_a_bad_design_is_one_line_naming_the_key(plan, method, samples, key):
    with pytest.raises(api.ConfigError) as caught:
        av.compute_sensitivity(plan, method, samples)
    assert key in str(caught.value) and "\n" not in str(caught.value)


def test_the_tornado_is_drawn(sobol):
    at = drawn("draw_sensitivity", sobol)
    assert len(charts(at)) == 1 and not at.warning


# ---------------------------------------------------------------------------------------
# PRIM


def recounted(sim, fid: str, row: pd.Series, threshold: float) -> tuple[float, float, float]:
    """(coverage, density, mass) of the box of trajectory row ``row``, counted from the
    grid's points: a point is inside where every parameter lies within the row's limits."""
    mean = sim["escalation_frequency"].sel(format=fid).mean("replicate")
    fails = (mean > threshold).values.ravel()
    inside = np.ones(fails.size, dtype=bool)
    for path in AXES:
        values = mean[api.dim_name(path)].broadcast_like(mean).values.ravel()
        inside &= (values >= row[f"{path}_low"]) & (values <= row[f"{path}_high"])
    return fails[inside].sum() / fails.sum(), fails[inside].mean(), inside.mean()


def test_prim_boxes_are_discovers_and_the_trajectory_recounts(sim):
    result = av.compute_prim(sim, FORMATS, "escalation_frequency", 0.5, 0.8)
    source, boxes = api.discover(sim, FORMATS, "escalation_frequency", 0.5, 0.8)
    assert result.boxes == dict(boxes) and result.source == source
    assert any(box is not None for box in result.boxes.values())
    for fid, box in result.boxes.items():
        if box is None:
            assert fid not in result.trajectories
            continue
        trajectory = result.trajectories[fid]
        assert len(trajectory) == len(box.trajectory)
        assert trajectory["selected"].sum() == 1
        chosen = trajectory[trajectory["selected"]].iloc[0]
        assert (chosen["coverage"], chosen["density"], chosen["mass"]) == (
            box.coverage, box.density, box.mass)
        assert trajectory.index[-1] == len(box.trajectory) - 1
        for _, row in trajectory.iterrows():
            assert recounted(sim, fid, row, 0.5) == pytest.approx(
                (row["coverage"], row["density"], row["mass"]))
        limits = av.box_limits(result, fid).set_index("parameter")
        for path, (low, high) in box.limits.items():
            assert limits.loc[path, "restricted"]
            assert (limits.loc[path, "low"], limits.loc[path, "high"]) == pytest.approx(
                (max(low, box.ranges[path][0]), min(high, box.ranges[path][1])))
        assert not limits.drop(index=list(box.limits))["restricted"].any()


def test_the_chosen_box_need_not_be_the_last_on_the_peel(sim):
    """A low density asked for: the box of highest coverage reaching it comes early in the
    peel, and is still api.discover's box, highlighted on its row."""
    low = 0.3
    result = av.compute_prim(sim, ["bilateral"], min_density=low)
    box = dict(api.discover(sim, ["bilateral"], min_density=low)[1])["bilateral"]
    trajectory = result.trajectories["bilateral"]
    assert result.boxes["bilateral"] == box
    assert box.selected < len(trajectory) - 1
    assert trajectory["selected"].to_numpy().nonzero()[0].tolist() == [box.selected]
    assert trajectory.loc[box.selected, "density"] >= low


def test_prim_on_the_exact_regime(plan):
    exact = api.exact_dataset(plan)
    result = av.compute_prim(exact, ["bilateral"], api.REGIME_OUTCOME)
    assert result.boxes == dict(api.discover(exact, ["bilateral"], api.REGIME_OUTCOME)[1])


@pytest.mark.parametrize(("kwargs", "key"), [
    ({"min_density": 1.5}, "min_density = 1.5"), ({"outcome": "chaos"}, "outcome = 'chaos'"),
    ({"formats": ["nobody"]}, "format 'nobody'")])
def test_bad_prim_input_is_one_line(sim, kwargs, key):
    with pytest.raises(api.ConfigError) as caught:
        av.compute_prim(sim, **kwargs)
    assert key in str(caught.value) and "\n" not in str(caught.value)


def test_the_prim_views_are_drawn(sim):
    result = av.compute_prim(sim, FORMATS)
    at = drawn("draw_prim", result)
    boxes = [b for b in result.boxes.values() if b is not None]
    assert len(charts(at)) == 2 * len(boxes)  # the trade-off curve and the limits per box
    assert len(at.dataframe) == len(boxes)


# ---------------------------------------------------------------------------------------
# Paired comparison


def test_the_comparison_is_the_packages(sim):
    result = av.compute_comparison(sim, "nato_lite", "bilateral")
    cells = api.compare_formats(sim, "nato_lite", "bilateral")
    xr.testing.assert_identical(result.cells, cells)
    rows = result.rows.set_index("variable")
    for outcome in api.COMPARED_OUTCOMES:
        diff = api.paired_difference(sim[outcome].sel(format="nato_lite").values,
                                     sim[outcome].sel(format="bilateral").values)
        row = rows.loc[outcome]
        assert row["difference (percentage points)"] == pytest.approx(100 * diff.mean)
        assert row["± 95% (percentage points)"] == pytest.approx(100 * diff.half_width)
        assert row["pairs"] == diff.n  # P(abandoned | escalation): runs that escalated
        counts = api.significance_counts(cells, outcome)
        assert row["grid points lower"] == counts["points_lower"]
        assert row["grid points higher"] == counts["points_higher"]
        assert row["grid points"] == 16
    assert rows.loc["escalation_frequency", "pairs"] == 16 * REPLICATES
    assert result.note is None
    assert not [c for c in result.rows.columns if "points" in c
                and "percentage points" not in c and "grid points" not in c]


def test_one_replicate_says_the_per_point_tests_need_two():
    one = api.simulate_plan(small_plan(replicates=1))
    result = av.compute_comparison(one, "nato_lite", "bilateral")
    assert "at least 2 replicates" in result.note
    assert result.rows["grid points lower"].isna().all()
    at = drawn("draw_comparison", result)
    assert [i.value for i in at.info] == [result.note]
    assert len(charts(at)) == 1


def test_the_comparison_is_drawn_with_error_bars(sim):
    result = av.compute_comparison(sim, "nato_lite", "bilateral")
    at = drawn("draw_comparison", result)
    assert len(charts(at)) == 1 and not at.info
    assert "percentage points" in at.markdown[0].value
    assert result.maps[0].outline == "escalation_frequency_significant_fdr"


def test_comparing_a_format_with_itself_is_one_line(sim):
    with pytest.raises(api.ConfigError, match="second = 'bilateral': the same format"):
        av.compute_comparison(sim, "bilateral", "bilateral")


# ---------------------------------------------------------------------------------------
# Uncertainty


@pytest.fixture(scope="module")
def prior() -> av.UncertaintyResult:
    return av.compute_uncertainty(UNCERTAIN, FORMATS, PRIOR_SAMPLES, False, MAP_X, MAP_Y,
                                  map_samples=MAP_SAMPLES)


def test_the_uncertainty_table_and_maps_are_the_packages(prior):
    pd.testing.assert_frame_equal(prior.table, api.uncertainty_table(
        UNCERTAIN, FORMATS, samples=PRIOR_SAMPLES, calibrated=False))
    xr.testing.assert_identical(prior.prior_map, api.prior_map(
        UNCERTAIN, FORMATS, x=MAP_X, y=MAP_Y, samples=MAP_SAMPLES, calibrated=False))
    scenario = api.load_scenario(UNCERTAIN)
    catalogue = api.load_catalogue()
    assert prior.uncertain == sorted(set(scenario.prior).union(
        *(catalogue[f].prior for f in FORMATS)))
    assert prior.note is None
    for spec in prior.maps:
        assert spec.variable in prior.prior_map and spec.by_format
        assert prior.prior_map[spec.variable].dims == ("format", spec.x, spec.y)


def test_the_uncertainty_frame_is_the_table(prior):
    frame = av.uncertainty_frame(prior).set_index(["format", "quantity"])
    for fid in FORMATS:
        row = prior.table.loc[fid]
        p = frame.loc[(fid, av.UNCERTAINTY_QUANTITIES["p_deterred"][0])]
        assert (p["estimate"], p["low"], p["high"], p["prior_low"], p["prior_high"]) == (
            row["p_deterred"], row["p_deterred_low"], row["p_deterred_high"],
            row["p_deterred_q05"], row["p_deterred_q95"])
        holds = frame.loc[(fid, av.UNCERTAINTY_QUANTITIES["holds"][0])]
        assert (holds["low"], holds["high"]) == (row["holds_low"], row["holds_high"])
        assert holds["low"] <= holds["estimate"] <= holds["high"]


def test_the_uncertainty_chart_is_drawn(prior):
    at = drawn("draw_uncertainty_table", prior)
    assert len(charts(at)) == 1 and not at.warning and len(at.dataframe) == 1


def test_a_scenario_without_distributions_is_told_where_to_find_some():
    result = av.compute_uncertainty(api.SCENARIOS_DIR / "baseline.toml", ["nato_lite"], 4,
                                    calibrated=False)
    assert result.uncertain == [] and "baseline_uncertain.toml" in result.note
    at = drawn("draw_uncertainty_table", result)
    assert [w.value for w in at.warning] == [result.note] and len(charts(at)) == 1


def test_one_map_axis_alone_is_one_line():
    with pytest.raises(api.ConfigError, match="map_y = None: give both map axes"):
        av.compute_uncertainty(UNCERTAIN, FORMATS, PRIOR_SAMPLES, False, map_x=MAP_X)


def test_there_is_a_text_per_analysis():
    assert set(av.HOW_TO_READ) == {"sensitivity", "prim", "comparison", "uncertainty"}
    assert all(len(text) > 200 for text in av.HOW_TO_READ.values())
