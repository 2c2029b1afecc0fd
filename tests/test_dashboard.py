"""The Streamlit dashboard, headless (``streamlit.testing.v1.AppTest``): the default page
loads, every tab shows its content, the numbers on the page are the package's numbers for
the same inputs, changing an input re-runs with new maps, invalid inputs give one error line
each (the same as a sweep file's) and no exception, large sweeps are sent to the CLI, saving
writes an archive that verifies and is refused while a save runs or too soon after one, and
a page opened under a foreign name is refused before any computation.

AppTest runs the script in this process, so the tests can check the page against an
independent computation with ``deterrence.sweep`` and can monkeypatch the package (e.g. where
archives go) or Streamlit (the request's headers, which AppTest leaves empty). The script's
pure helpers (the Host check, the save gate) are also tested by importing it. Streamlit's
caches are process-wide: every test starts from empty caches.
"""

from __future__ import annotations

import importlib.util
import json
import re
import threading
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
from deterrence.game.config import SCENARIOS_DIR, RussiaParameters, load_catalogue, load_scenario
from deterrence.solve.equilibrium import REGIME_NAMES

ROOT = Path(__file__).resolve().parent.parent
APP = ROOT / "dashboard" / "app.py"
QUICKSTART = ROOT / "configs" / "sweeps" / "quickstart.toml"
TIMEOUT = 180  # AppTest's default is 3 s; a cold run simulates a whole sweep
TABS = ["Regime maps", "Credibility & multiplicity", "Simulated outcomes", "Compare formats",
        "One run", "Save"]
# st.altair_chart's element: "arrow_vega_lite_chart" in older Streamlit, "vega_lite_chart"
# in 1.67; AppTest shows either as an UnknownElement carrying the chart's proto.
CHART_TYPES = frozenset({"arrow_vega_lite_chart", "vega_lite_chart"})
SELECTBOXES = frozenset({"scenario", "axis0_path", "axis1_path", "compare_a", "compare_b",
                         "run_format", "run_x", "run_y"})
# the sidebar's numbers are typed as text
TEXT_INPUTS = frozenset({"axis0_low", "axis0_high", "axis0_count", "axis1_low", "axis1_high",
                         "axis1_count", "replicates", "steps"})
# A small sweep (3 formats x 4 x 4 points x 2 replicates x 20 rounds): runs in well under 1 s.
SMALL_FORMATS = ["bilateral", "coalition", "nato_lite"]
SMALL = {"formats": SMALL_FORMATS, "axis0_count": 4, "axis1_count": 4, "replicates": 2,
         "steps": 20}
COMPARE = re.compile(r"^\*\*(\w+) vs (\w+): ([+-]\d+\.\d) ± (\d+\.\d) points escalation\*\*$")


# ---------------------------------------------------------------------------------------
# Helpers


@pytest.fixture(autouse=True)
def empty_caches():
    """Each test sees cold caches (Streamlit's caches are shared by every AppTest in a
    process)."""
    st.cache_data.clear()
    st.cache_resource.clear()
    yield
    st.cache_data.clear()
    st.cache_resource.clear()


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
    """Set sidebar or tab widgets by key (a number for a sidebar box is typed as its
    ``str``), then re-run the script."""
    for key, value in inputs.items():
        widget(at, key).set_value(str(value) if key in TEXT_INPUTS else value)
    return at.run()


def typed(at: AppTest, key: str) -> float:
    """The number in a sidebar box."""
    return float(at.text_input(key=key).value)


def started(**inputs) -> AppTest:
    """The app run once with its defaults, then (if given) with ``inputs``."""
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT).run()
    assert_clean(at)
    return apply(at, **inputs) if inputs else at


def charts(node) -> list:
    """The Vega-Lite (Altair) charts in ``node`` (the app, a tab, the sidebar), in order."""
    return [n for n in node if getattr(n, "type", None) in CHART_TYPES]


def chart_spec(chart) -> dict:
    return json.loads(chart.proto.spec)


def chart_frame(chart) -> pd.DataFrame:
    """The data of a single-layer chart (Streamlit sends it beside the spec, in Arrow)."""
    spec = chart_spec(chart)
    datasets = {d.name: d.data.data for d in chart.proto.datasets}
    if "name" in spec.get("data", {}) and spec["data"]["name"] in datasets:
        raw = datasets[spec["data"]["name"]]
    else:
        assert len(datasets) == 1, f"expected one dataset, got {list(datasets)}"
        raw = next(iter(datasets.values()))
    return pa.ipc.open_stream(raw).read_all().to_pandas()


def default_spec() -> dict:
    """The dashboard's defaults: quickstart.toml's sweep."""
    spec = tomllib.loads(QUICKSTART.read_text())
    formats = list(load_catalogue()) if spec["formats"] == "all" else spec["formats"]
    return {"name": "dashboard", "scenario": Path(spec["scenario"]).name, "formats": formats,
            "method": "grid", "axes": [dict(a) for a in spec["axes"]],
            "replicates": spec["replicates"], "steps": spec["steps"]}


def expected_plan(formats=None, axes=(None, None), replicates=None, steps=None) -> api.Plan:
    """The plan of the defaults with some inputs changed, resolved by the package alone. A
    plan made from arguments instead of a file names its scenario by name
    (``api.sweep_plan``, docs/api.md)."""
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


def exact_map(plan: api.Plan, variable: str, fmt: str) -> pd.DataFrame:
    """One format's exact map as (x, y, value) rows sorted by x then y."""
    ds = api.exact_dataset(plan)
    x, y = (api.dim_name(a.path) for a in plan.spec.axes)
    frame = ds[variable].sel(format=fmt).to_dataframe().reset_index()
    return frame.rename(columns={x: "x", y: "y"})[["x", "y", variable]].sort_values(
        ["x", "y"], ignore_index=True)


def shown_map(chart, column: str) -> pd.DataFrame:
    return chart_frame(chart)[["x", "y", column]].sort_values(["x", "y"], ignore_index=True)


def assert_regime_maps(at: AppTest, plan: api.Plan) -> None:
    """The 'Regime maps' tab shows, per format, exactly the package's exact regimes (the
    first map of each format; P(escalate) follows)."""
    maps = charts(at.tabs[0])[:len(plan.formats)]
    assert [chart_spec(c)["title"] for c in maps] == list(plan.formats)
    x, y = (a.path for a in plan.spec.axes)
    for fmt, chart in zip(plan.formats, maps, strict=True):
        spec = chart_spec(chart)
        assert (spec["encoding"]["x"]["title"], spec["encoding"]["y"]["title"]) == (x, y)
        expected = exact_map(plan, "regime", fmt)
        expected["regime"] = [REGIME_NAMES[int(v)] for v in expected["regime"]]
        shown = shown_map(chart, "regime")
        assert len(shown) == plan.cells
        np.testing.assert_allclose(shown[["x", "y"]].to_numpy(), expected[["x", "y"]].to_numpy())
        assert list(shown["regime"]) == list(expected["regime"]), fmt


# ---------------------------------------------------------------------------------------
# The default page


@pytest.fixture(scope="module")
def default_app() -> AppTest:
    """The page as a visitor first sees it (read-only: tests must not re-run it)."""
    st.cache_data.clear()
    st.cache_resource.clear()
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT).run()
    st.cache_data.clear()
    st.cache_resource.clear()
    return at


def test_default_page_loads_with_quickstart_defaults(default_app):
    at = default_app
    assert_clean(at)
    assert not at.warning
    assert at.title[0].value.startswith("Security guarantees for Ukraine")
    assert [t.label for t in at.tabs] == TABS
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
    assert not [w for w in at.text_input if "λ" in w.label or "ationality" in w.label]


def test_every_tab_renders_its_content(default_app):
    at = default_app
    n = len(load_catalogue())
    regime, credibility, simulated, compare, one_run, save = at.tabs
    # two kinds of map per format in each of the map tabs
    assert len(charts(regime)) == 2 * n and len(regime.caption) == 1
    assert [m.value for m in regime.markdown] == ["**P(Russia escalates)**"]
    assert len(charts(credibility)) == 2 * n and len(credibility.caption) == 1
    assert [m.value for m in credibility.markdown] == [
        "**Mean credibility of the members**: P(member honours | escalation)",
        "**Number of Bayesian equilibria** of the members' subgame"]
    assert len(charts(simulated)) == 6 * n and len(simulated.caption) == 1
    assert [m.value for m in simulated.markdown] == [
        "**escalation frequency (share of rounds)**, mean over replicates",
        "**P(abandoned | escalation)**, mean over replicates",
        "**Erosion time**: median years until the first escalation",
        "**Where the runs end**: share of runs deterred throughout",
        "**Where the runs end**: share of runs ending in Ukraine's defeat",
        "**Where the runs end**: share of runs ending in a settlement"]
    # the comparison: two pickers, a headline, a table and a difference map
    assert [s.key for s in compare.selectbox] == ["compare_a", "compare_b"]
    assert (compare.selectbox[0].value, compare.selectbox[1].value) == ("nato_lite", "bilateral")
    assert COMPARE.match(compare.markdown[0].value), compare.markdown[0].value
    table = compare.dataframe[0].value
    assert list(table["outcome"]) == ["escalation frequency", "P(abandoned | escalation)",
                                      "share of rounds deterred"]
    assert len(charts(compare)) == 1
    # one run: pickers, outcome, beliefs (the default format has guarantors), capabilities
    assert [s.key for s in one_run.selectbox] == ["run_format", "run_x", "run_y"]
    assert [n.key for n in one_run.number_input] == ["run_replicate"]
    titles = [chart_spec(c).get("title") for c in charts(one_run)]
    assert titles == ["Outcome per round", "Russia's belief that each guarantor honours",
                      "Capabilities (USD bn)"]
    assert "replicate 0" in one_run.caption[0].value
    # save: a button, no archive yet
    assert [b.key for b in save.button] == ["save"]
    assert not at.download_button and not at.success


def test_maps_show_the_exact_solvers_numbers(default_app):
    at = default_app
    plan = expected_plan()
    assert_regime_maps(at, plan)
    n = len(plan.formats)
    shown = {"escalation_probability": charts(at.tabs[0])[n:],
             "mean_credibility": charts(at.tabs[1])[:n],
             "equilibrium_count": charts(at.tabs[1])[n:]}
    for variable, maps in shown.items():
        assert [chart_spec(c)["title"] for c in maps] == list(plan.formats), variable
        for fmt, chart in zip(plan.formats, maps, strict=True):
            expected = exact_map(plan, variable, fmt)
            np.testing.assert_array_equal(shown_map(chart, variable)[variable],
                                          expected[variable], err_msg=f"{variable} {fmt}")
    for fmt, chart in zip(plan.formats, shown["equilibrium_count"], strict=True):
        complete = exact_map(plan, "equilibrium_set_complete", fmt)["equilibrium_set_complete"]
        assert list(shown_map(chart, "complete")["complete"]) == list(complete.astype(bool))
    # the probabilities share one scale, 0 to 1, in every map
    for chart in [*shown["escalation_probability"], *shown["mean_credibility"]]:
        scale = chart_spec(chart)["encoding"]["color"]["scale"]
        assert scale["domain"] == [0, 1]


def test_map_tooltips_treat_category_names_as_nominal(default_app):
    """A regime name is a category: a quantitative tooltip shows it as NaN."""
    at = default_app
    n = len(load_catalogue())
    for chart in charts(at.tabs[0])[:n]:
        tips = {t["field"]: t["type"] for t in chart_spec(chart)["encoding"]["tooltip"]}
        assert tips["regime"] == "nominal", (
            f"{chart_spec(chart)['title']}: tooltip 'regime' is {tips['regime']!r}")


# ---------------------------------------------------------------------------------------
# Numbers against the package


def test_simulations_and_comparison_match_an_independent_computation():
    at = started(**SMALL)
    assert_clean(at)
    plan = small_plan()
    sim = api.simulate_plan(plan)
    # simulated maps: the mean over replicates, per format
    maps = charts(at.tabs[2])
    assert len(maps) == 6 * len(SMALL_FORMATS)
    for variable, shown in (("escalation_frequency", maps[:3]),
                            ("abandoned_given_escalation", maps[3:6])):
        mean = sim[variable].mean("replicate", skipna=True)
        for fmt, chart in zip(SMALL_FORMATS, shown, strict=True):
            np.testing.assert_allclose(shown_map(chart, variable)[variable],
                                       mean.sel(format=fmt).values.ravel(), equal_nan=True)
    # erosion time: with censoring only at the horizon, the median is the smallest t at
    # which at least half the runs had escalated by round t (counted from 1), in years
    years = plan.scenario.dynamics.round_months / 12
    first = sim.first_escalation + 1  # NaN: never escalated
    for fmt, chart in zip(SMALL_FORMATS, maps[6:9], strict=True):
        runs = first.sel(format=fmt).values.reshape(-1, plan.spec.replicates)
        expected = []
        for row in runs:
            times = np.sort(row[np.isfinite(row)])
            need = int(np.ceil(row.size / 2))  # S(t) <= 1/2: at least half have escalated
            expected.append(times[need - 1] * years if times.size >= need else np.nan)
        np.testing.assert_allclose(shown_map(chart, "erosion_years")["erosion_years"],
                                   expected, equal_nan=True)
        scale = chart_spec(chart)["encoding"]["color"]["scale"]
        assert scale["domain"] == [0, plan.spec.steps * years]
    # where the runs end: shares counted from each run's end state and first escalation
    counted = {
        "ongoing_deterred_share": (sim.end_state == 0) & np.isnan(sim.first_escalation),
        "defeated_share": sim.end_state == 1, "settled_share": sim.end_state == 2}
    for k, (variable, runs) in enumerate(counted.items()):
        for fmt, chart in zip(SMALL_FORMATS, maps[9 + 3 * k:12 + 3 * k], strict=True):
            share = runs.sel(format=fmt).mean("replicate").values.ravel()
            np.testing.assert_allclose(shown_map(chart, variable)[variable], share)
    # the comparison headline and table: paired differences under common random numbers
    compare = at.tabs[3]
    first, second = "nato_lite", "bilateral"
    match = COMPARE.match(compare.markdown[0].value)
    assert match, compare.markdown[0].value
    assert match.group(1, 2) == (first, second)
    table = compare.dataframe[0].value.set_index("outcome")
    for variable, label in (("escalation_frequency", "escalation frequency"),
                            ("abandoned_given_escalation", "P(abandoned | escalation)"),
                            ("deterred_share", "share of rounds deterred")):
        diff = paired_difference(sim[variable].sel(format=first).values,
                                 sim[variable].sel(format=second).values)
        row = table.loc[label]
        assert row["difference (points)"] == pytest.approx(100 * diff.mean, abs=1e-9)
        assert row["± 95% (points)"] == pytest.approx(100 * diff.half_width, abs=1e-9)
        assert row["pairs"] == diff.n <= plan.cells * plan.spec.replicates  # NaN pairs left out
        assert bool(row["significant"]) == diff.excludes_zero
        if variable == "escalation_frequency":
            assert diff.n == plan.cells * plan.spec.replicates
            assert float(match.group(3)) == pytest.approx(100 * diff.mean, abs=0.05 + 1e-9)
            assert float(match.group(4)) == pytest.approx(100 * diff.half_width,
                                                          abs=0.05 + 1e-9)
    delta = (sim.escalation_frequency.sel(format=first)
             - sim.escalation_frequency.sel(format=second)).mean("replicate")
    np.testing.assert_allclose(shown_map(charts(compare)[0], "difference")["difference"],
                               delta.values.ravel())
    # points whose own interval excludes 0, recounted with scipy's paired t-test
    from scipy import stats

    a = sim.escalation_frequency.sel(format=first).values.reshape(-1, plan.spec.replicates)
    b = sim.escalation_frequency.sel(format=second).values.reshape(-1, plan.spec.replicates)
    lower = higher = 0
    for x, y in zip(a, b, strict=True):
        d = x - y
        if np.all(d == d[0]):
            lower, higher = lower + (d[0] < 0), higher + (d[0] > 0)
            continue
        low, high = stats.ttest_rel(x, y).confidence_interval(0.95)
        lower, higher = lower + (high < 0), higher + (low > 0)
    row = table.loc["escalation frequency"]
    assert (row["points lower"], row["points higher"]) == (lower, higher)
    assert row["points"] == plan.cells
    # one run: the Mesa model's run is the sweep's run at that point and replicate
    run_tab = at.tabs[4]
    assert run_tab.selectbox(key="run_format").value == SMALL_FORMATS[0]
    outcome = chart_frame(charts(run_tab)[0])
    assert list(outcome["round"]) == list(range(SMALL["steps"]))
    caption = run_tab.caption[0].value
    frequency = float(re.search(r"Escalation frequency (\d\.\d\d)", caption).group(1))
    expected = sim.escalation_frequency.sel(format=SMALL_FORMATS[0]).values[0, 0, 0]
    assert frequency == pytest.approx(expected, abs=0.005 + 1e-9)


def test_changing_an_axis_reruns_with_new_maps():
    at = started(**SMALL)
    assert_clean(at)
    before = shown_map(charts(at.tabs[0])[0], "regime")
    assert_regime_maps(at, small_plan())
    # more points on the x axis
    apply(at, axis0_count=5)
    assert_clean(at)
    plan = expected_plan(SMALL_FORMATS, ({"count": 5}, {"count": 4}), 2, 20)
    assert_regime_maps(at, plan)
    after = shown_map(charts(at.tabs[0])[0], "regime")
    assert len(before) == 16 and len(after) == 20
    np.testing.assert_allclose(sorted(set(after["x"])), np.linspace(0, 1, 5))
    assert len(charts(at.tabs[2])) == 6 * len(SMALL_FORMATS)
    assert len(chart_frame(charts(at.tabs[2])[0])) == 20
    # another parameter on the x axis
    war_cost = {"path": "russia.war_cost", "low": 0.05, "high": 0.5, "count": 5}
    apply(at, axis0_path=war_cost["path"], axis0_low=war_cost["low"],
          axis0_high=war_cost["high"])
    assert_clean(at)
    plan = expected_plan(SMALL_FORMATS, (war_cost, {"count": 4}), 2, 20)
    assert_regime_maps(at, plan)
    moved = shown_map(charts(at.tabs[0])[0], "regime")
    np.testing.assert_allclose(sorted(set(moved["x"])), np.linspace(0.05, 0.5, 5))
    assert chart_spec(charts(at.tabs[2])[0])["encoding"]["x"]["title"] == "russia.war_cost"
    assert at.tabs[4].selectbox(key="run_x").label == "russia.war_cost"


# ---------------------------------------------------------------------------------------
# Invalid inputs and large sweeps


def _refuse(*_args, **_kwargs):
    raise AssertionError("the dashboard simulated a sweep it should not run")


def assert_refused(at: AppTest, needle: str) -> None:
    """The page shows one error line containing ``needle``, no exception and no map."""
    assert not at.exception, [e.value for e in at.exception]
    assert any(needle in e.value for e in at.error), [e.value for e in at.error]
    assert all("\n" not in e.value for e in at.error), [e.value for e in at.error]
    assert not charts(at)


@pytest.mark.parametrize(("inputs", "needle"), [
    ({"formats": []}, "Choose at least one format."),
    ({"axis0_low": 0.8, "axis0_high": 0.2}, "Axis x: 'from' (0.8) must be below 'to' (0.2)."),
    ({"axis1_low": 0.7}, "Axis y: 'from' (0.7) must be below 'to' (0.7)."),
    ({"axis1_path": "format.commitment_bindingness"},
     "The two axes must be different parameters."),
    # what a browser's number box drops without a word: too large for a double, not a number
    ({"axis0_high": "1e400"}, "Axis x 'to' (key 'axes.0.high') = '1e400': not a finite "
                              "number; allowed: a finite decimal number"),
    ({"axis1_low": "nan"}, "Axis y 'from' (key 'axes.1.low') = 'nan': not a finite number"),
    ({"axis0_count": "2.5"}, "Axis x 'points' (key 'axes.0.count') = '2.5': not a whole "
                             "number; allowed: a whole number from 2 to 60"),
    ({"steps": "sixty"}, "Rounds per run (key 'steps') = 'sixty': not a whole number; "
                         "allowed: a whole number from 1 to 2000"),
    # the dashboard's own limits (docs/cli.md)
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
    monkeypatch.setattr(api, "simulate_plan", _refuse)
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
    """The same sweep written as a sweep file is refused by ``deterrence sweep``'s loader
    with the same message (after the origin, which names the file or the dashboard)."""
    at = started(**SMALL)
    monkeypatch.setattr(api, "simulate_plan", _refuse)
    monkeypatch.setattr(api, "exact_dataset", _refuse)
    apply(at, **inputs)
    assert not at.exception, [e.value for e in at.exception]
    assert len(at.error) == 1, [e.value for e in at.error]
    shown = at.error[0].value
    # the sweep as a file, from the boxes on the page
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
    # the line names the key or parameter, the value typed and what is allowed
    assert re.search(r"(key '[\w.]+'|parameter path '[\w.]+') = -?[\d.e+]+: ", shown), shown
    assert not charts(at)


def test_an_absurd_value_is_refused_as_a_sweep_file_refuses_it():
    """The schema bounds war_cost at 100 (docs/model.md): 1e300 is refused by a sweep file
    and, with the same line, by the dashboard, which computes nothing for it."""
    at = started(**SMALL)
    apply(at, **{**WAR_COST, "axis0_high": "1e300"})
    assert not at.exception
    errors = [e.value for e in at.error]
    assert len(errors) == 1, errors
    assert "'russia.war_cost' = 1e+300: must be <= 100" in errors[0]
    field = RussiaParameters.model_fields["war_cost"]
    assert any(getattr(rule, "le", None) == 100 for rule in field.metadata)


def test_a_sweep_over_the_interactive_limit_is_sent_to_the_cli(monkeypatch):
    at = started()
    monkeypatch.setattr(api, "simulate_plan", _refuse)
    apply(at, formats=SMALL_FORMATS, axis0_count=4, axis1_count=4, replicates=1000, steps=200)
    assert_clean(at)
    size = 3 * 4 * 4 * 1000 * 200
    for tab in at.tabs[2:4]:
        assert len(tab.warning) == 1 and not charts(tab)
        message = tab.warning[0].value
        assert f"simulates {size:,} run-rounds" in message
        assert "`deterrence sweep configs/sweeps/my_sweep.toml" in message
        # the hint is a sweep file for exactly this sweep
        hint = tomllib.loads(tab.code[0].value)
        spec = api.SweepSpec.model_validate(hint)
        assert (spec.scenario, spec.formats, spec.replicates, spec.steps) == (
            "../scenarios/baseline.toml", SMALL_FORMATS, 1000, 200)
        assert [(a.path, a.low, a.high, a.count) for a in spec.axes] == [
            ("format.commitment_bindingness", 0.0, 1.0, 4), ("russia.status_quo_value", 0.1,
                                                             0.7, 4)]
    # the exact maps and one run are still shown
    assert len(charts(at.tabs[0])) == 2 * len(SMALL_FORMATS)
    assert len(charts(at.tabs[1])) == 2 * len(SMALL_FORMATS)
    assert len(charts(at.tabs[4])) == 3


# ---------------------------------------------------------------------------------------
# Re-runs with the same sweep: pickers in the tabs, the save button, a reload


def test_rerunning_with_the_same_inputs_shows_the_same_page():
    """A re-run with an unchanged sweep (any click in a tab, a reload, a second visitor)
    takes the simulations from the cache and must show the same page."""
    at = started(**SMALL)
    assert_clean(at)
    first = [chart_frame(c) for c in charts(at)]
    at.run()
    assert_clean(at)
    again = [chart_frame(c) for c in charts(at)]
    assert len(again) == len(first)
    for a, b in zip(first, again, strict=True):
        pd.testing.assert_frame_equal(a, b)


def test_choosing_formats_to_compare_updates_the_comparison():
    at = started(**SMALL)
    apply(at, compare_a="coalition")
    assert_clean(at)
    sim = api.simulate_plan(small_plan())
    diff = paired_difference(sim.escalation_frequency.sel(format="coalition").values,
                             sim.escalation_frequency.sel(format="bilateral").values)
    assert at.tabs[3].markdown[0].value == (
        f"**coalition vs bilateral: {100 * diff.mean:+.1f} ± {100 * diff.half_width:.1f} "
        f"points escalation**")


def test_default_comparison_is_between_two_different_formats():
    at = started(**{**SMALL, "formats": ["bilateral", "coalition"]})
    assert_clean(at)
    first = at.selectbox(key="compare_a").value
    second = at.selectbox(key="compare_b").value
    assert first != second, f"the Compare tab compares {first} with itself"


def test_one_run_follows_the_chosen_format_and_point():
    at = started(**SMALL)
    xs = at.selectbox(key="run_x").options
    apply(at, run_format="nato_lite", run_x=float(xs[2]), run_replicate=1)
    assert_clean(at)
    sim = api.simulate_plan(small_plan())
    caption = at.tabs[4].caption[0].value
    assert "replicate 1 of this point" in caption
    frequency = float(re.search(r"Escalation frequency (\d\.\d\d)", caption).group(1))
    expected = sim.escalation_frequency.sel(format="nato_lite").values[2, 0, 1]
    assert frequency == pytest.approx(expected, abs=0.005 + 1e-9)


def test_save_writes_an_archive_that_verifies(monkeypatch, tmp_path):
    results = tmp_path / "results"
    results.mkdir()
    monkeypatch.setenv("DETERRENCE_RESULTS_DIR", str(results))
    real = sorted(p.name for p in (ROOT / "results").iterdir())
    at = started(**SMALL)
    at.button(key="save").click().run()
    assert_clean(at)
    archives = [p for p in results.iterdir() if (p / "manifest.json").is_file()]
    assert len(archives) == 1, sorted(p.name for p in results.iterdir())
    archive = archives[0]
    assert archive.name.startswith("dashboard-")
    message = at.success[0].value
    assert f"Archive: {archive} — report: " in message
    assert Path(message.split(" — report: ")[1]).is_file()
    assert [b.key for b in at.download_button] == ["download"]
    assert api.verify(archive) == []
    stored = api.Plan.from_json(json.loads(write.plan_file(archive).read_text()), str(archive))
    assert stored.to_json() == small_plan().to_json()
    # nothing was written to the repository's results/
    assert sorted(p.name for p in (ROOT / "results").iterdir()) == real


def test_a_second_click_on_save_right_after_a_save_writes_nothing(monkeypatch, tmp_path):
    """Saves are at least 10 s apart, for the whole server (docs/cli.md)."""
    results = tmp_path / "results"
    results.mkdir()
    monkeypatch.setenv("DETERRENCE_RESULTS_DIR", str(results))
    at = started(**SMALL)
    at.button(key="save").click().run()
    assert_clean(at)
    assert len(at.success) == 1
    at.button(key="save").click().run()
    assert_clean(at)
    assert not at.success and not at.download_button
    (message,) = [w.value for w in at.tabs[5].warning]
    # the wait left: 10 s less the time since the first save ended, rounded up
    assert re.fullmatch(r"Saves are at least 10 s apart: press Save again in (10|[1-9]) s\.",
                        message), message
    # one archive and its report beside it
    (archive,) = [p for p in results.iterdir() if (p / "manifest.json").is_file()]
    assert sorted(p.name for p in results.iterdir()) == [archive.name, f"{archive.name}.report"]


def test_save_while_another_save_runs_writes_nothing(monkeypatch, tmp_path):
    """A visitor who presses Save while another visitor's save runs is told so, and only
    the first archive is written."""
    results = tmp_path / "results"
    results.mkdir()
    monkeypatch.setenv("DETERRENCE_RESULTS_DIR", str(results))
    first, second = started(**SMALL), started(**SMALL)
    real_run_sweep = api.run_sweep
    during = {}

    def run_sweep(plan, target, *args, **kwargs):
        # the first save is under way: the second visitor presses Save now
        if "second" not in during:
            during["second"] = None
            press = threading.Thread(
                target=lambda: during.update(second=second.button(key="save").click().run()))
            press.start()
            press.join(TIMEOUT)
        return real_run_sweep(plan, target, *args, **kwargs)

    monkeypatch.setattr(api, "run_sweep", run_sweep)
    first.button(key="save").click().run()
    assert_clean(first)
    assert len(first.success) == 1
    assert during["second"] is second
    assert not second.exception and not second.success
    assert [w.value for w in second.tabs[5].warning] == [
        "A save is already running: press Save again when it has finished."]
    assert len([p for p in results.iterdir() if (p / "manifest.json").is_file()]) == 1


def test_save_into_a_folder_that_cannot_be_made_shows_one_line(monkeypatch, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv("DETERRENCE_RESULTS_DIR", str(blocker / "results"))
    at = started(**SMALL)
    at.button(key="save").click().run()
    assert not at.exception, [e.value for e in at.exception]
    (error,) = [e.value for e in at.error]
    assert error.startswith("Not saved: ") and "a-file" in error and "\n" not in error
    assert not at.success and not at.download_button
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file"]


# ---------------------------------------------------------------------------------------
# Who the dashboard answers


def test_a_page_under_a_foreign_name_is_refused_before_any_work(monkeypatch):
    """A page whose own name resolves to 127.0.0.1 (DNS rebinding) sends that name as Host:
    the page shows one refusal line and nothing else, and computes nothing."""
    handshake = [("Host", "evil.example:8501"), ("Origin", "http://evil.example:8501"),
                 ("Upgrade", "websocket"), ("Connection", "Upgrade")]
    monkeypatch.setattr(ContextProxy, "headers", property(lambda _: StreamlitHeaders(handshake)))
    for name in ("load_plan", "load_catalogue", "exact_dataset", "simulate_plan", "run_sweep",
                 "sweep_plan", "plan_run"):
        monkeypatch.setattr(api, name, _refuse)
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT).run()
    assert not at.exception, [e.value for e in at.exception]
    assert [e.value for e in at.error] == [
        "Refused: this page asked for the dashboard as `evil.example:8501`; it answers only "
        "to localhost, 127.0.0.1 and [::1] — open http://127.0.0.1:8501/."]
    assert not at.title and not at.tabs and not at.sidebar.children and not charts(at)


def test_loopback_hosts_are_served(monkeypatch):
    host = {}
    monkeypatch.setattr(ContextProxy, "headers", property(
        lambda _: StreamlitHeaders([("Host", host["now"]), ("Upgrade", "websocket")])))
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
    for host["now"] in ("127.0.0.1:8501", "localhost:8501", "LOCALHOST:8501", "[::1]:8501",
                        "127.0.0.1", "localhost", "[::1]"):
        at.run()
        assert_clean(at)
        assert [t.label for t in at.tabs] == TABS, host
        assert len(charts(at.tabs[0])) == 2 * len(load_catalogue()), host


# ---------------------------------------------------------------------------------------
# The script's helpers, imported


@pytest.fixture(scope="module")
def app_module():
    """dashboard/app.py imported as a module: Streamlit runs it as __main__, so importing it
    defines its functions without drawing a page."""
    spec = importlib.util.spec_from_file_location("dashboard_app", APP)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(("host", "allowed"), [
    ("localhost", True), ("localhost:8501", True), ("LocalHost:1", True),
    ("127.0.0.1", True), ("127.0.0.1:65535", True), ("[::1]", True), ("[::1]:8501", True),
    # DNS rebinding: the attacker's own name, resolved to 127.0.0.1
    ("evil.example", False), ("evil.example:8501", False),
    # names that only look local
    ("localhost.evil.example", False), ("127.0.0.1.evil.example:8501", False),
    ("evil-localhost:8501", False), ("localhost@evil.example", False),
    ("evil.example@localhost", False), ("localhost:8501/evil", False),
    ("localhost:8501, evil.example", False), ("localhost evil.example", False),
    # other spellings and other addresses: not the names the server is opened under
    ("::1", False), ("[::1", False), ("127.1", False), ("0x7f000001", False),
    ("127.0.0.2", False), ("0.0.0.0:8501", False), ("localhost:", False),
    ("localhost:port", False), ("", False),
])
def test_host_allowed_accepts_only_loopback_names(app_module, host, allowed):
    assert app_module.host_allowed(host) is allowed


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_save_gate_lets_one_save_run_and_spaces_them(app_module):
    clock = FakeClock()
    gate = app_module.SaveGate(10.0, clock)
    assert gate.try_start() is None
    running = gate.try_start()
    assert running == "A save is already running: press Save again when it has finished."
    clock.now += 60.0  # however long the save takes
    assert gate.try_start() == running
    gate.finish()
    clock.now += 2.5
    assert gate.try_start() == "Saves are at least 10 s apart: press Save again in 8 s."
    clock.now += 7.4
    assert gate.try_start() == "Saves are at least 10 s apart: press Save again in 1 s."
    clock.now += 0.1  # 10 s after the end of the last save
    assert gate.try_start() is None
    gate.finish()
    clock.now += 10.0
    assert gate.try_start() is None
    # a save that fails counts too: the caller finishes it in any case
    gate.finish()
    assert gate.try_start().startswith("Saves are at least 10 s apart")


def test_the_documented_save_interval_is_the_gates(app_module):
    """docs/cli.md promises saves at least 10 s apart."""
    assert app_module.SAVE_INTERVAL_S == 10.0
    assert "at least 10 s apart" in (ROOT / "docs" / "cli.md").read_text()
