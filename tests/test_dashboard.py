"""The Streamlit dashboard, headless (``streamlit.testing.v1.AppTest``): the default page
loads, every view shows its content, the numbers on the page are the package's numbers for
the same inputs, the maps are readable (format names as panel titles, one legend and one
scale per quantity, parameters labelled with their schema units), changing an input re-runs
with new maps, invalid inputs give one error line each (the same as a sweep file's) and no
exception, large sweeps are sent to the CLI, the settings come from the page's address,
Save writes the simulations already computed as an archive that verifies, and a page opened
under a foreign name is refused before any computation.

AppTest runs the script in this process, so the tests can check the page against an
independent computation with the package and can monkeypatch the package (e.g. where
archives go) or Streamlit (the request's headers, which AppTest leaves empty). Simulations
run as jobs in background threads (dashboard/jobs.py): :func:`settled` waits for them and
runs the page again, as the page's progress strip does in a browser. Streamlit's caches
are process-wide: every test starts from empty caches.
"""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
import streamlit as st
from streamlit.runtime.context import ContextProxy, StreamlitHeaders
from streamlit.testing.v1 import AppTest

from deterrence import api
from deterrence.analysis.stats import paired_difference
from deterrence.archive import write
from deterrence.dashboard import jobs
from deterrence.game.config import (
    SCENARIOS_DIR,
    FormatSpec,
    RussiaParameters,
    load_catalogue,
    load_scenario,
)
from deterrence.solve.equilibrium import REGIME_NAMES

ROOT = Path(__file__).resolve().parent.parent
APP = ROOT / "dashboard" / "app.py"
QUICKSTART = ROOT / "configs" / "sweeps" / "quickstart.toml"
TIMEOUT = 180  # AppTest's default is 3 s; a cold run simulates a whole sweep
VIEWS = ["Regime maps", "Credibility", "Simulated outcomes", "Compare formats",
         "Sensitivity", "Scenario discovery", "Uncertainty", "One run", "Archives", "Save"]
# st.altair_chart's element: "arrow_vega_lite_chart" in older Streamlit, "vega_lite_chart"
# in 1.67; AppTest shows either as an UnknownElement carrying the chart's proto.
CHART_TYPES = frozenset({"arrow_vega_lite_chart", "vega_lite_chart"})
SELECTBOXES = frozenset({"scenario", "axis0_path", "axis1_path", "compare_a", "compare_b"})
# the sidebar's numbers are typed as text
TEXT_INPUTS = frozenset({"axis0_low", "axis0_high", "axis0_count", "axis1_low", "axis1_high",
                         "axis1_count", "replicates", "steps"})
# A small sweep (3 formats x 4 x 4 points x 2 replicates x 20 rounds): runs in well under 1 s.
SMALL_FORMATS = ["bilateral", "coalition", "nato_lite"]
SMALL = {"formats": SMALL_FORMATS, "axis0_count": 4, "axis1_count": 4, "replicates": 2,
         "steps": 20}
NAMES = {fid: fmt.name for fid, fmt in load_catalogue().items()}
COMPARE = re.compile(r"^\*\*(.+) vs (.+): ([+-]\d+\.\d) ± (\d+\.\d) percentage points")


# ---------------------------------------------------------------------------------------
# Helpers


@pytest.fixture(autouse=True)
def empty_caches():
    """Each test sees cold caches and an empty job board (Streamlit's caches are shared by
    every AppTest in a process)."""
    st.cache_data.clear()
    st.cache_resource.clear()
    yield
    for job in jobs.job_board().jobs():
        job.cancel()
        job.wait(TIMEOUT)
    st.cache_data.clear()
    st.cache_resource.clear()


def settled(at: AppTest) -> AppTest:
    """Run the page, wait for the jobs it started and run it again until none runs (what
    the progress strip's re-run does in a browser)."""
    at.run()
    for _ in range(10):
        running = [j for j in jobs.job_board().jobs() if not j.status().final]
        if not running:
            return at
        for job in running:
            assert job.wait(TIMEOUT), f"job {job.key} did not finish"
        at.run()
    raise AssertionError("jobs kept starting")


def assert_clean(at: AppTest) -> None:
    """No exception and no error on the page."""
    assert not at.exception, "the page shows an exception:\n" + "\n\n".join(
        e.value for e in at.exception)
    assert not at.error, f"the page shows errors: {[e.value for e in at.error]}"


def widget(at: AppTest, key: str):
    if key == "formats":
        return at.multiselect(key=key)
    if key in TEXT_INPUTS:
        return at.text_input(key=key)
    return at.selectbox(key=key) if key in SELECTBOXES else at.number_input(key=key)


def apply(at: AppTest, **inputs) -> AppTest:
    """Set widgets by key (a number for a sidebar box is typed as its ``str``), then run the
    page until its jobs have finished."""
    for key, value in inputs.items():
        widget(at, key).set_value(str(value) if key in TEXT_INPUTS else value)
    return settled(at)


def show(at: AppTest, view: str) -> AppTest:
    at.segmented_control(key="view").set_value(view)
    return settled(at)


def typed(at: AppTest, key: str) -> float:
    """The number in a sidebar box."""
    return float(at.text_input(key=key).value)


def started(view: str | None = None, **inputs) -> AppTest:
    """The app run once with its defaults, then (if given) with ``inputs``, on ``view``."""
    at = settled(AppTest.from_file(str(APP), default_timeout=TIMEOUT))
    assert_clean(at)
    if inputs:
        apply(at, **inputs)
    return show(at, view) if view else at


def charts(node) -> list:
    """The Vega-Lite (Altair) charts in ``node`` (the app, a view, the sidebar), in order."""
    return [n for n in node if getattr(n, "type", None) in CHART_TYPES]


def chart_spec(chart) -> dict:
    return json.loads(chart.proto.spec)


def chart_frame(chart) -> pd.DataFrame:
    """The data of a chart (Streamlit sends it beside the spec, in Arrow)."""
    spec = chart_spec(chart)
    datasets = {d.name: d.data.data for d in chart.proto.datasets}
    if "name" in spec.get("data", {}) and spec["data"]["name"] in datasets:
        raw = datasets[spec["data"]["name"]]
    else:
        assert len(datasets) == 1, f"expected one dataset, got {list(datasets)}"
        raw = next(iter(datasets.values()))
    return pa.ipc.open_stream(raw).read_all().to_pandas()


def cells(chart) -> pd.DataFrame:
    """A map's cells (not its markers), sorted by format, x, y."""
    frame = chart_frame(chart)
    frame = frame[frame["layer"] == "cell"]
    return frame.sort_values(["format", "x", "y"], ignore_index=True)


def cell_layer(chart) -> dict:
    return chart_spec(chart)["spec"]["layer"][0]


def default_spec() -> dict:
    """The dashboard's defaults: quickstart.toml's sweep."""
    spec = tomllib.loads(QUICKSTART.read_text())
    formats = list(load_catalogue()) if spec["formats"] == "all" else spec["formats"]
    return {"name": "dashboard", "scenario": Path(spec["scenario"]).name, "formats": formats,
            "method": "grid", "axes": [dict(a) for a in spec["axes"]],
            "replicates": spec["replicates"], "steps": spec["steps"]}


def expected_plan(formats=None, axes=(None, None), replicates=None, steps=None) -> api.Plan:
    """The plan of the defaults with some inputs changed, resolved by the package alone."""
    spec = default_spec()
    if formats is not None:
        spec["formats"] = list(formats)
    for axis, change in zip(spec["axes"], axes, strict=True):
        axis.update(change or {})
    spec["replicates"] = replicates or spec["replicates"]
    spec["steps"] = steps or spec["steps"]
    scenario = load_scenario(SCENARIOS_DIR / spec["scenario"])
    spec["scenario"] = scenario.name
    return api.resolve(api.SweepSpec.model_validate(spec), scenario, "test")


def small_plan() -> api.Plan:
    axes = ({"count": SMALL["axis0_count"]}, {"count": SMALL["axis1_count"]})
    return expected_plan(SMALL_FORMATS, axes, SMALL["replicates"], SMALL["steps"])


def exact_map(plan: api.Plan, variable: str) -> pd.DataFrame:
    """The exact maps of every format as (format, x, y, value) rows sorted like
    :func:`cells`."""
    ds = api.exact_dataset(plan)
    x, y = (api.dim_name(a.path) for a in plan.spec.axes)
    frame = ds[variable].to_dataframe().reset_index()
    return frame.rename(columns={x: "x", y: "y"})[["format", "x", "y", variable]].sort_values(
        ["format", "x", "y"], ignore_index=True)


def schema_unit(path: str) -> str:
    """The unit the schema gives a parameter, read from the pydantic models directly."""
    from deterrence.game.config import GuarantorParameters, ResponseSpec, UkraineParameters

    parts = path.split(".")
    model = {"russia": RussiaParameters, "ukraine": UkraineParameters,
             "guarantors": GuarantorParameters}.get(parts[0])
    if model is None:
        model = FormatSpec if parts[1] in FormatSpec.model_fields else ResponseSpec
    field = model.model_fields[parts[-1]]
    return field.json_schema_extra["unit"]


def assert_readable_map(chart, plan: api.Plan) -> None:
    """Format names as panel titles, never cut; one colour legend; the axes titled with the
    parameters' labels and units; a tick at every swept value."""
    spec = chart_spec(chart)
    assert spec["facet"]["field"] == "name"
    assert spec["facet"]["header"]["labelLimit"] == 0
    assert spec["facet"]["sort"] == [NAMES[f] for f in plan.formats]
    assert set(cells(chart)["name"]) == {NAMES[f] for f in plan.formats}
    encoding = cell_layer(chart)["encoding"]
    for key, axis in zip(("x", "y"), plan.spec.axes, strict=True):
        title = " ".join(encoding[key]["title"])  # in lines
        unit = re.sub(r"\s*\([^)]*\)", "", schema_unit(axis.path)).strip()
        assert title.endswith(f"({unit})"), (title, unit)
        words = axis.path.split(".")[-1].split("_")
        assert title.lower().startswith(" ".join(words)), (title, axis.path)
        np.testing.assert_allclose(encoding[key]["axis"]["values"],
                                   np.linspace(axis.low, axis.high, axis.count))
    legends = [layer["encoding"]["color"] for layer in spec["spec"]["layer"]
               if "color" in layer["encoding"]]
    assert len(legends) == 1  # one colour scale and legend for every panel
    assert spec.get("resolve", {}).get("scale", {}).get("color") == "shared"


def assert_regime_maps(at: AppTest, plan: api.Plan) -> None:
    """The 'Regime maps' view shows exactly the package's exact regimes and P(escalate)."""
    regime, escalation = charts(at.main)
    assert_readable_map(regime, plan)
    assert_readable_map(escalation, plan)
    expected = exact_map(plan, "regime")
    shown = cells(regime)
    assert len(shown) == plan.cells * len(plan.formats)
    assert list(shown["format"]) == list(expected["format"])
    np.testing.assert_allclose(shown[["x", "y"]].to_numpy(float),
                               expected[["x", "y"]].to_numpy(float))
    assert list(shown["regime"]) == [REGIME_NAMES[int(v)] for v in expected["regime"]]
    np.testing.assert_array_equal(cells(escalation)["escalation_probability"],
                                  exact_map(plan, "escalation_probability")[
                                      "escalation_probability"])


# ---------------------------------------------------------------------------------------
# The default page


@pytest.fixture(scope="module")
def default_app() -> AppTest:
    """The page as a visitor first sees it (read-only: tests must not re-run it)."""
    st.cache_data.clear()
    st.cache_resource.clear()
    at = settled(AppTest.from_file(str(APP), default_timeout=TIMEOUT))
    st.cache_data.clear()
    st.cache_resource.clear()
    return at


def test_default_page_loads_with_quickstart_defaults(default_app):
    at = default_app
    assert_clean(at)
    assert not at.warning
    assert at.title[0].value.startswith("Security guarantees for Ukraine")
    view = at.segmented_control(key="view")
    assert view.options == VIEWS and view.value == "Regime maps"
    defaults = default_spec()
    assert at.selectbox(key="scenario").value == defaults["scenario"]
    assert at.multiselect(key="formats").value == defaults["formats"]
    for number, axis in enumerate(defaults["axes"]):
        assert at.selectbox(key=f"axis{number}_path").value == axis["path"]
        assert typed(at, f"axis{number}_low") == axis["low"]
        assert typed(at, f"axis{number}_high") == axis["high"]
        assert typed(at, f"axis{number}_count") == axis["count"]
    assert typed(at, "replicates") == defaults["replicates"]
    assert typed(at, "steps") == defaults["steps"]
    # only the chosen view is computed: no simulation ran for the regime maps
    assert not [j for j in jobs.job_board().jobs() if j.kind == "simulation"]


def test_the_regime_maps_show_the_exact_solvers_numbers(default_app):
    assert_regime_maps(default_app, expected_plan())


def test_each_format_is_marked_at_its_own_value(default_app):
    """The black point of each panel: the format file's bindingness (x) and the scenario's
    status-quo value (y), read from the files here."""
    chart = charts(default_app.main)[0]
    frame = chart_frame(chart)
    marks = frame[frame["layer"] == "own"].set_index("format")
    scenario = load_scenario(SCENARIOS_DIR / "baseline.toml")
    for fid, fmt in load_catalogue().items():
        assert marks.loc[fid, "x"] == fmt.commitment_bindingness
        assert marks.loc[fid, "y"] == scenario.russia.status_quo_value


def test_the_hover_shows_every_value_of_the_cell(default_app):
    """The tooltip of a cell lists every variable the exact solver computed there."""
    chart = charts(default_app.main)[1]
    tips = {t["field"] for t in cell_layer(chart)["encoding"]["tooltip"]}
    exact = api.exact_dataset(expected_plan())
    guarantors = [str(g) for g in exact["guarantor"].values]
    scalar = [v for v in exact.data_vars if "guarantor" not in exact[v].dims]
    assert set(scalar) <= tips
    assert {f"credibility {g}" for g in guarantors} <= tips
    types = {t["field"]: t["type"] for t in cell_layer(chart)["encoding"]["tooltip"]}
    assert types["regime"] == "nominal"  # a category, not a number shown as NaN


def test_every_view_renders_without_an_error():
    at = started(**SMALL)
    expected = {"Regime maps": 2, "Credibility": 2, "Simulated outcomes": 6}
    for view in VIEWS:
        show(at, view)
        assert_clean(at)
        if view in expected:
            assert len(charts(at.main)) == expected[view], view
        assert at.main.expander, f"{view}: no 'How to read this'"


def test_credibility_view_shows_the_solvers_numbers():
    at = started("Credibility", **SMALL)
    assert_clean(at)
    plan = small_plan()
    credibility, count = charts(at.main)
    for chart in (credibility, count):
        assert_readable_map(chart, plan)
    np.testing.assert_array_equal(cells(credibility)["mean_credibility"],
                                  exact_map(plan, "mean_credibility")["mean_credibility"])
    np.testing.assert_array_equal(cells(count)["equilibrium_count"],
                                  exact_map(plan, "equilibrium_count")["equilibrium_count"])
    complete = exact_map(plan, "equilibrium_set_complete")["equilibrium_set_complete"]
    assert list(cells(count)["not proven complete"]) == list(complete == 0)
    assert list(cells(count)["equilibrium_set_complete"]) == [
        "yes" if c else "no" for c in complete]
    assert cell_layer(credibility)["encoding"]["color"]["scale"]["domain"] == [0, 1]


# ---------------------------------------------------------------------------------------
# Numbers against the package


def test_simulations_match_an_independent_computation():
    at = started("Simulated outcomes", **SMALL)
    assert_clean(at)
    plan = small_plan()
    sim = api.simulate_plan(plan)
    maps = charts(at.main)
    assert len(maps) == 6
    for chart in maps:
        assert_readable_map(chart, plan)
    for variable, chart in (("escalation_frequency", maps[0]),
                            ("abandoned_given_escalation", maps[1])):
        mean = sim[variable].mean("replicate", skipna=True).to_dataframe().reset_index()
        x, y = (api.dim_name(a.path) for a in plan.spec.axes)
        mean = mean.rename(columns={x: "x", y: "y"}).sort_values(["format", "x", "y"])
        np.testing.assert_allclose(cells(chart)[variable], mean[variable], equal_nan=True)
        # the interval over the replicates is in the tooltip: 1.96 standard errors
        runs = sim[variable].values.reshape(len(plan.formats), -1, plan.spec.replicates)
        sd = np.nanstd(runs, axis=-1, ddof=1)
        np.testing.assert_allclose(cells(chart)[f"{variable} ± 95%"],
                                   (1.959963984540054 * sd / np.sqrt(2)).ravel(),
                                   equal_nan=True)
    # erosion time: with censoring only at the horizon, the median is the smallest t at
    # which at least half the runs had escalated by round t (counted from 1), in years
    years = plan.scenario.dynamics.round_months / 12
    first = sim.first_escalation + 1  # NaN: never escalated
    expected = []
    for fmt in SMALL_FORMATS:
        for row in first.sel(format=fmt).values.reshape(-1, plan.spec.replicates):
            times = np.sort(row[np.isfinite(row)])
            need = int(np.ceil(row.size / 2))
            expected.append(times[need - 1] * years if times.size >= need else np.nan)
    np.testing.assert_allclose(cells(maps[2])["erosion_years"], expected, equal_nan=True)
    assert cell_layer(maps[2])["encoding"]["color"]["scale"]["domain"] == [
        0, plan.spec.steps * years]
    counted = {
        "ongoing_deterred_share": (sim.end_state == 0) & np.isnan(sim.first_escalation),
        "defeated_share": sim.end_state == 1, "settled_share": sim.end_state == 2}
    for chart, (variable, runs) in zip(maps[3:], counted.items(), strict=True):
        share = runs.mean("replicate").values.ravel()
        np.testing.assert_allclose(cells(chart)[variable], share)


def test_the_comparison_is_the_paired_difference():
    at = started("Compare formats", **SMALL)
    assert_clean(at)
    sim = api.simulate_plan(small_plan())
    assert (at.selectbox(key="compare_a").value, at.selectbox(key="compare_b").value) == (
        "nato_lite", "bilateral")
    diff = paired_difference(sim.escalation_frequency.sel(format="nato_lite").values,
                             sim.escalation_frequency.sel(format="bilateral").values)
    (headline,) = [m.value for m in at.main.markdown if COMPARE.match(m.value)]
    match = COMPARE.match(headline)
    assert match.group(1, 2) == (NAMES["nato_lite"], NAMES["bilateral"]) or match.group(
        1, 2) == ("nato_lite", "bilateral")
    assert float(match.group(3)) == pytest.approx(100 * diff.mean, abs=0.05 + 1e-9)
    assert float(match.group(4)) == pytest.approx(100 * diff.half_width, abs=0.05 + 1e-9)
    apply(at, compare_a="coalition")
    assert_clean(at)
    diff = paired_difference(sim.escalation_frequency.sel(format="coalition").values,
                             sim.escalation_frequency.sel(format="bilateral").values)
    (headline,) = [m.value for m in at.main.markdown if COMPARE.match(m.value)]
    assert float(COMPARE.match(headline).group(3)) == pytest.approx(100 * diff.mean,
                                                                    abs=0.05 + 1e-9)


def test_changing_an_axis_reruns_with_new_maps():
    at = started(**SMALL)
    assert_clean(at)
    assert_regime_maps(at, small_plan())
    apply(at, axis0_count=5)
    assert_clean(at)
    assert_regime_maps(at, expected_plan(SMALL_FORMATS, ({"count": 5}, {"count": 4}), 2, 20))
    war_cost = {"path": "russia.war_cost", "low": 0.05, "high": 0.5, "count": 5}
    # a new parameter resets the range to one within its bounds; then the visitor types
    apply(at, axis0_path=war_cost["path"])
    assert_clean(at)
    field = RussiaParameters.model_fields["war_cost"]
    bounds = [getattr(rule, name) for rule in field.metadata for name in ("ge", "le")
              if getattr(rule, name, None) is not None]
    assert min(bounds) <= typed(at, "axis0_low") < typed(at, "axis0_high") <= max(bounds)
    apply(at, axis0_low=war_cost["low"], axis0_high=war_cost["high"], axis0_count=5)
    assert_clean(at)
    plan = expected_plan(SMALL_FORMATS, (war_cost, {"count": 4}), 2, 20)
    assert_regime_maps(at, plan)
    title = cell_layer(charts(at.main)[0])["encoding"]["x"]["title"]
    assert title == ["War cost (Russia's utility)"]


# ---------------------------------------------------------------------------------------
# Invalid inputs and large sweeps


def _refuse(*_args, **_kwargs):
    raise AssertionError("the dashboard computed a sweep it should not run")


def assert_refused(at: AppTest, needle: str) -> None:
    """The page shows one error line containing ``needle``, no exception and no map."""
    assert not at.exception, [e.value for e in at.exception]
    assert any(needle in e.value for e in at.error), [e.value for e in at.error]
    assert all("\n" not in e.value for e in at.error), [e.value for e in at.error]
    assert not charts(at.main)


@pytest.mark.parametrize(("inputs", "needle"), [
    ({"formats": []}, "Choose at least one format."),
    ({"axis0_low": 0.8, "axis0_high": 0.2}, "Axis x: 'from' (0.8) must be below 'to' (0.2)."),
    ({"axis1_low": 0.7}, "Axis y: 'from' (0.7) must be below 'to' (0.7)."),
    ({"axis1_path": "format.commitment_bindingness"},
     "The two axes must be different parameters."),
    ({"axis0_high": "1e400"}, "Axis x 'to' (key 'axes.0.high') = '1e400': not a finite "
                              "number; allowed: a finite decimal number"),
    ({"axis1_low": "nan"}, "Axis y 'from' (key 'axes.1.low') = 'nan': not a finite number"),
    ({"axis0_count": "2.5"}, "Axis x 'points' (key 'axes.0.count') = '2.5': not a whole "
                             "number; allowed: a whole number from 2 to 60"),
    ({"steps": "sixty"}, "Rounds per run (key 'steps') = 'sixty': not a whole number; "
                         "allowed: a whole number from 1 to 2000"),
    ({"replicates": 0}, "Replicates per point (key 'replicates') = 0: the dashboard takes 1 "
                        "to 1000"),
    ({"axis1_count": 100}, "Axis y 'points' (key 'axes.1.count') = 100: the dashboard takes "
                           "2 to 60; larger sweeps run headless with `deterrence sweep`"),
    ({"steps": "1e9"}, "Rounds per run (key 'steps') = 1e+09: the dashboard takes 1 to 2000"),
], ids=["no-formats", "inverted-range", "empty-range", "same-parameter", "overflow", "nan",
        "fractional-count", "word-for-steps", "no-replicates", "many-points",
        "many-rounds"])
def test_invalid_inputs_show_an_error_and_no_exception(monkeypatch, inputs, needle):
    at = started(**SMALL)
    monkeypatch.setattr(api, "simulate_summaries", _refuse)
    monkeypatch.setattr(api, "exact_dataset", _refuse)
    apply(at, **inputs)
    assert_refused(at, needle)


WAR_COST = {"axis0_path": "russia.war_cost", "axis0_low": 0.05, "axis0_high": 0.5}


@pytest.mark.parametrize("inputs", [
    {"axis0_high": 2.0},  # a probability-like share above 1
    {**WAR_COST, "axis0_low": -1},  # a cost below 0
    {"axis1_low": -200.0},  # a status quo below -100, the schema's bound
], ids=["bindingness-above-1", "negative-war-cost", "status-quo-below-its-bound"])
def test_values_out_of_range_are_refused_as_in_a_sweep_file(monkeypatch, tmp_path, inputs):
    inputs = dict(inputs)
    """The same sweep written as a sweep file is refused by ``deterrence sweep``'s loader
    with the same message (after the origin, which names the file or the dashboard)."""
    at = started(**SMALL)
    if "axis0_path" in inputs:  # a new parameter first (its range resets), then the numbers
        apply(at, axis0_path=inputs.pop("axis0_path"))
    monkeypatch.setattr(api, "simulate_summaries", _refuse)
    monkeypatch.setattr(api, "exact_dataset", _refuse)
    apply(at, **inputs)
    assert not at.exception, [e.value for e in at.exception]
    assert len(at.error) == 1, [e.value for e in at.error]
    shown = at.error[0].value
    scenario = SCENARIOS_DIR / at.selectbox(key="scenario").value
    lines = ['name = "typed"', f'scenario = "{scenario}"',
             f"formats = {json.dumps(at.multiselect(key='formats').value)}",
             'method = "grid"', f"replicates = {int(typed(at, 'replicates'))}",
             f"steps = {int(typed(at, 'steps'))}"]
    for number in range(2):
        lines += ["[[axes]]", f'path = "{at.selectbox(key=f"axis{number}_path").value}"',
                  f"low = {typed(at, f'axis{number}_low')!r}",
                  f"high = {typed(at, f'axis{number}_high')!r}",
                  f"count = {int(typed(at, f'axis{number}_count'))}"]
    sweep = tmp_path / "typed.toml"
    sweep.write_text("\n".join(lines) + "\n")
    with pytest.raises(api.ConfigError) as refused:
        api.load_plan(sweep)
    from_file = str(refused.value)
    assert from_file.startswith(f"{sweep}: ") and shown.startswith("sweep 'dashboard': ")
    assert shown.removeprefix("sweep 'dashboard': ") == from_file.removeprefix(f"{sweep}: ")
    assert re.search(r"(key '[\w.]+'|parameter path '[\w.]+') = -?[\d.e+]+: ", shown), shown
    assert not charts(at.main)


def test_an_absurd_value_is_refused_as_a_sweep_file_refuses_it():
    """The schema bounds war_cost at 100 (docs/model.md): 1e300 is refused by a sweep file
    and, with the same line, by the dashboard, which computes nothing for it."""
    at = started(**SMALL)
    apply(at, axis0_path=WAR_COST["axis0_path"])
    apply(at, axis0_low=WAR_COST["axis0_low"], axis0_high="1e300")
    assert not at.exception
    errors = [e.value for e in at.error]
    assert len(errors) == 1, errors
    assert "'russia.war_cost' = 1e+300: must be <= 100" in errors[0]
    field = RussiaParameters.model_fields["war_cost"]
    assert any(getattr(rule, "le", None) == 100 for rule in field.metadata)


def test_a_sweep_over_the_interactive_limit_is_sent_to_the_cli(monkeypatch):
    at = started(**SMALL)
    monkeypatch.setattr(api, "simulate_summaries", _refuse)
    apply(at, replicates=1000, steps=200)
    size = 3 * 4 * 4 * 1000 * 200
    for view in ("Simulated outcomes", "Compare formats", "Scenario discovery"):
        show(at, view)
        assert_clean(at)
        assert len(at.warning) == 1 and not charts(at.main), view
        message = at.warning[0].value
        assert f"simulates {size:,} run-rounds" in message
        assert "`deterrence sweep configs/sweeps/my_sweep.toml" in message
        hint = tomllib.loads(at.main.code[0].value)
        spec = api.SweepSpec.model_validate(hint)
        assert (spec.scenario, spec.formats, spec.replicates, spec.steps) == (
            "../scenarios/baseline.toml", SMALL_FORMATS, 1000, 200)
        assert [(a.path, a.low, a.high, a.count) for a in spec.axes] == [
            ("format.commitment_bindingness", 0.0, 1.0, 4), ("russia.status_quo_value", 0.1,
                                                             0.7, 4)]
    # the exact maps are still shown
    show(at, "Regime maps")
    assert len(charts(at.main)) == 2


def test_rerunning_with_the_same_inputs_shows_the_same_page():
    """A re-run with an unchanged sweep (a click, a reload, a second visitor) takes
    everything from the caches and the job board and shows the same page."""
    at = started("Simulated outcomes", **SMALL)
    first = [chart_frame(c) for c in charts(at.main)]
    simulations = [j for j in jobs.job_board().jobs() if j.kind == "simulation"]
    at.run()
    assert_clean(at)
    again = [chart_frame(c) for c in charts(at.main)]
    assert len(again) == len(first) == 6
    for a, b in zip(first, again, strict=True):
        pd.testing.assert_frame_equal(a, b)
    assert [j for j in jobs.job_board().jobs() if j.kind == "simulation"] == simulations


def test_two_visitors_asking_for_one_sweep_share_one_simulation(monkeypatch):
    calls = []
    real = api.simulate_summaries

    def counted(plan, *args, **kwargs):
        calls.append(plan.spec.steps)
        return real(plan, *args, **kwargs)

    monkeypatch.setattr(api, "simulate_summaries", counted)
    first = started("Simulated outcomes", **SMALL)
    second = started("Simulated outcomes", **SMALL)
    assert_clean(first)
    assert_clean(second)
    assert len(calls) == 1
    assert len(charts(second.main)) == 6


# ---------------------------------------------------------------------------------------
# The address


def test_the_page_starts_from_the_settings_in_its_address():
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
    # the address names formats as the page does (a bound widget's labels)
    at.query_params.update({"view": "Credibility", "steps": "30", "axis0_count": "4",
                            "formats": [NAMES["nato"], NAMES["bilateral"]]})
    settled(at)
    assert_clean(at)
    assert at.segmented_control(key="view").value == "Credibility"
    assert typed(at, "steps") == 30 and typed(at, "axis0_count") == 4
    assert at.multiselect(key="formats").value == ["nato", "bilateral"]
    assert set(cells(charts(at.main)[0])["format"]) == {"nato", "bilateral"}


def test_a_value_of_the_link_the_page_cannot_show_is_named_in_one_line():
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
    at.query_params.update({"view": "Secrets", "formats": [NAMES["nato"], "Warsaw Pact"]})
    settled(at)
    assert not at.exception
    warnings = [w.value for w in at.warning]
    assert any("view = 'Secrets' was not used" in w for w in warnings), warnings
    assert any("formats = 'Warsaw Pact' was not used" in w for w in warnings), warnings
    assert at.segmented_control(key="view").value == "Regime maps"
    at.run()  # once per session
    assert not [w for w in at.warning if "was not used" in w.value]


# ---------------------------------------------------------------------------------------
# Save


@pytest.fixture
def results(monkeypatch, tmp_path) -> Path:
    folder = tmp_path / "results"
    folder.mkdir()
    monkeypatch.setenv("DETERRENCE_RESULTS_DIR", str(folder))
    return folder


def test_save_writes_the_computed_simulations_as_an_archive_that_verifies(results,
                                                                         monkeypatch):
    real = sorted(p.name for p in (ROOT / "results").iterdir())
    at = started("Simulated outcomes", **SMALL)
    show(at, "Save")
    # nothing runs again: a chunk run now fails the save
    from deterrence.sweep import execute

    monkeypatch.setattr(execute, "run_chunk", _refuse)
    at.button(key="save").click()
    settled(at)
    assert_clean(at)
    archives = [p for p in results.iterdir() if (p / "manifest.json").is_file()]
    assert len(archives) == 1, sorted(p.name for p in results.iterdir())
    archive = archives[0]
    assert archive.name.startswith("dashboard-")
    (message,) = [s.value for s in at.success]
    assert f"Archive: `{archive}`" in message
    report = Path(message.split("report: `")[1].rstrip("`"))
    assert report.is_file()
    assert len(at.get("download_button")) == 1
    monkeypatch.undo()
    assert api.verify(archive) == []
    stored = api.Plan.from_json(json.loads(write.plan_file(archive).read_text()),
                                str(archive))
    assert stored.to_json() == small_plan().to_json()
    # a widget change keeps the saved archive's paths and download on the page
    apply(at, steps=21)
    show(at, "Save")
    assert [s.value for s in at.success] == [message]
    assert sorted(p.name for p in (ROOT / "results").iterdir()) == real


def test_save_waits_for_the_simulations_of_the_sweep_on_the_page(results):
    at = started("Save", **SMALL)
    assert at.button(key="save").disabled
    assert any("Save writes the simulations already computed" in i.value for i in at.info)
    assert not list(results.iterdir())


def test_a_second_save_right_after_a_save_writes_nothing(results):
    """Saves are at least 10 s apart, for the whole server (docs/cli.md)."""
    at = started("Simulated outcomes", **SMALL)
    show(at, "Save")
    at.button(key="save").click()
    settled(at)
    assert len(at.success) == 1
    apply(at, steps=21)
    show(at, "Simulated outcomes")
    show(at, "Save")
    at.button(key="save").click()
    settled(at)
    assert not at.exception
    (message,) = [w.value for w in at.warning]
    assert re.fullmatch(r"Saves are at least 10 s apart: press Save again in (10|[1-9]) s\.",
                        message), message
    (archive,) = [p for p in results.iterdir() if (p / "manifest.json").is_file()]
    assert sorted(p.name for p in results.iterdir()) == [archive.name, f"{archive.name}.report"]


def test_the_documented_save_interval_is_the_gates():
    """docs/cli.md promises saves at least 10 s apart."""
    assert jobs.SAVE_INTERVAL_S == 10.0
    assert "at least 10 s apart" in (ROOT / "docs" / "cli.md").read_text()


# ---------------------------------------------------------------------------------------
# Who the dashboard answers


def test_a_page_under_a_foreign_name_is_refused_before_any_work(monkeypatch):
    """A page whose own name resolves to 127.0.0.1 (DNS rebinding) sends that name as Host:
    the page shows one refusal line and nothing else, and computes nothing."""
    handshake = [("Host", "evil.example:8501"), ("Origin", "http://evil.example:8501"),
                 ("Upgrade", "websocket"), ("Connection", "Upgrade")]
    monkeypatch.setattr(ContextProxy, "headers", property(lambda _: StreamlitHeaders(handshake)))
    for name in ("load_plan", "load_catalogue", "exact_dataset", "simulate_summaries",
                 "run_sweep", "sweep_plan", "plan_run", "write_archive"):
        monkeypatch.setattr(api, name, _refuse)
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT).run()
    assert not at.exception, [e.value for e in at.exception]
    assert [e.value for e in at.error] == [
        "Refused: this page asked for the dashboard as `evil.example:8501`; it answers only "
        "to localhost, 127.0.0.1 and [::1] — open http://127.0.0.1:8501/."]
    assert not at.title and not at.sidebar.children and not charts(at)


def test_loopback_hosts_are_served(monkeypatch):
    host = {}
    monkeypatch.setattr(ContextProxy, "headers", property(
        lambda _: StreamlitHeaders([("Host", host["now"]), ("Upgrade", "websocket")])))
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
    for host["now"] in ("127.0.0.1:8501", "localhost:8501", "LOCALHOST:8501", "[::1]:8501",
                        "127.0.0.1", "localhost", "[::1]"):
        at.run()
        assert_clean(at)
        assert len(charts(at.main)) == 2, host


@pytest.fixture(scope="module")
def app_module():
    """dashboard/app.py imported as a module: Streamlit runs it as __main__, so importing it
    defines its functions without drawing a page."""
    from deterrence.dashboard import app

    return app


@pytest.mark.parametrize(("host", "allowed"), [
    ("localhost", True), ("localhost:8501", True), ("LocalHost:1", True),
    ("127.0.0.1", True), ("127.0.0.1:65535", True), ("[::1]", True), ("[::1]:8501", True),
    ("evil.example", False), ("evil.example:8501", False),
    ("localhost.evil.example", False), ("127.0.0.1.evil.example:8501", False),
    ("evil-localhost:8501", False), ("localhost@evil.example", False),
    ("evil.example@localhost", False), ("localhost:8501/evil", False),
    ("localhost:8501, evil.example", False), ("localhost evil.example", False),
    ("::1", False), ("[::1", False), ("127.1", False), ("0x7f000001", False),
    ("127.0.0.2", False), ("0.0.0.0:8501", False), ("localhost:", False),
    ("localhost:port", False), ("", False),
])
def test_host_allowed_accepts_only_loopback_names(app_module, host, allowed):
    assert app_module.host_allowed(host) is allowed
