"""The dashboard's parameter panel (``dashboard/params.py``), headless: tiny pages that
call its functions (``AppTest.from_function``), checked against the package's API and the
schema read directly."""

from __future__ import annotations

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from deterrence import api
from deterrence.dashboard import params
from deterrence.game import config as C

SCENARIO_FILE = str(api.SCENARIOS_DIR / "baseline.toml")
SCENARIO = api.load_scenario(SCENARIO_FILE)
FORMATS = ["nato_lite", "three_tier"]
TIMEOUT = 30


@pytest.fixture(autouse=True)
def empty_caches():
    st.cache_data.clear()
    yield
    st.cache_data.clear()


def axis_page(scenario_file: str, formats: list[str]) -> None:
    import streamlit as st

    from deterrence.dashboard import params

    infos = params.catalogue(scenario_file, tuple(formats))
    path = params.axis_picker(st, infos, "ax", "russia.war_cost")
    numbers = params.Numbers()
    info = next(i for i in infos if i.path == path)
    st.session_state["result"] = (path, params.axis_range(
        st, info, "ax", numbers, initial=(0.1, 0.5, 5), limits=(2, 60)), numbers.problems)


def panel_page(scenario_file: str, formats: list[str]) -> None:
    import streamlit as st

    from deterrence.dashboard import params

    infos = params.catalogue(scenario_file, tuple(formats))
    st.session_state["result"] = params.parameter_panel(st, infos, formats)


def started(page) -> AppTest:
    at = AppTest.from_function(page, args=(SCENARIO_FILE, FORMATS),
                               default_timeout=TIMEOUT).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_axes_are_labelled_with_groups_and_units():
    at = started(axis_page)
    box = at.selectbox(key="ax")
    label, unit = api.parameter_label("russia.war_cost")
    assert box.value == "russia.war_cost"
    assert box.format_func("russia.war_cost") == f"Russia · {label} ({unit})"
    assert unit == C.RussiaParameters.model_fields["war_cost"].json_schema_extra["unit"]
    own, _ = api.parameter_label("guarantors.UK.audience_cost")
    assert f"Guarantor UK · {own}" in box.format_func("guarantors.UK.audience_cost")
    sweepable = {p for f in FORMATS
                 for p in api.parameter_paths(SCENARIO, api.load_catalogue()[f])}
    assert set(box.options) == {box.format_func(p) for p in sweepable}
    assert not any(option.startswith("Dynamics") for option in box.options)


def test_a_range_resets_when_the_parameter_changes():
    at = started(axis_page)
    assert at.session_state["result"][1] == (0.1, 0.5, 5)  # the sweep file's range at first
    at.text_input(key="ax_low").set_value("0.2").run()
    assert at.session_state["result"][1] == (0.2, 0.5, 5)  # kept while the parameter stays
    at.selectbox(key="ax").set_value("russia.nuclear_escalation_probability").run()
    # the schema: 0 <= p < 1, so the range is its limits, the strict one kept inside
    field = C.RussiaParameters.model_fields["nuclear_escalation_probability"]
    assert [type(m).__name__ for m in field.metadata] == ["Ge", "Lt"]
    path, (low, high, count), problems = at.session_state["result"]
    assert path == "russia.nuclear_escalation_probability" and not problems
    assert low == 0 and 0.98 < high < 1 and count == params.DEFAULT_POINTS
    assert at.text_input(key="ax_low").value == "0"
    at.selectbox(key="ax").set_value("russia.war_cost").run()
    # 0 <= war cost <= 100 is far wider than its value, 0.2: a range around it, within 0
    _, (low, high, _), _ = at.session_state["result"]
    assert SCENARIO.russia.war_cost == 0.2 and (low, high) == (0.0, 1.2)


def test_an_axis_range_reports_1e400():
    at = started(axis_page)
    at.text_input(key="ax_high").set_value("1e400").run()
    _, (_, high, _), problems = at.session_state["result"]
    assert high is None and len(problems) == 1 and "'1e400'" in problems[0]
    assert "axes.0.high" in problems[0]


def panel_box(at: AppTest, path: str, fid: str | None = None):
    return at.text_input(key=f"p:{fid}:{path}" if fid else f"p:{path}")


def test_every_parameter_has_a_box_with_its_value_and_unit():
    at = started(panel_page)
    infos = api.parameter_catalogue(SCENARIO, FORMATS)
    box = panel_box(at, "russia.war_cost")
    assert float(box.value) == SCENARIO.russia.war_cost
    label, unit = api.parameter_label("russia.war_cost")
    assert box.label == f"{label} ({unit})"
    assert "Source of the default" in box.help
    nato = api.load_catalogue()["three_tier"]
    assert float(panel_box(at, "format.commitment_bindingness", "three_tier").value) == \
        nato.commitment_bindingness
    keys = {t.key for t in at.text_input} - {"p_search"}
    expected = {f"p:{i.path}" for i in infos if not i.path.startswith("format.")}
    expected |= {f"p:{f}:{i.path}" for i in infos if i.path.startswith("format.")
                 for f in i.formats}
    assert keys == expected
    assert not at.error and at.session_state["result"] == ({}, {}, [])


def test_an_out_of_range_value_is_explained_under_its_box_and_not_applied():
    at = started(panel_page)
    panel_box(at, "russia.war_cost").set_value("-1").run()
    assert len(at.error) == 1
    message = at.error[0].value
    assert "russia.war_cost" in message and "-1" in message and ">= 0" in message
    russia = next(e for e in at.expander if e.label.startswith("Russia"))
    assert [e.value for e in russia.error] == [message]  # inline, in its group
    changes, format_changes, problems = at.session_state["result"]
    assert changes == {} and format_changes == {} and problems == [message]


def test_1e400_is_reported():
    at = started(panel_page)
    panel_box(at, "dynamics.belief_memory").set_value("1e400").run()
    assert len(at.error) == 1 and "'1e400'" in at.error[0].value
    assert "dynamics.belief_memory" in at.error[0].value
    assert at.session_state["result"].changes == {}


def test_changed_values_reach_the_changes_and_the_scenario():
    at = started(panel_page)
    panel_box(at, "russia.war_cost").set_value("0.5")
    panel_box(at, "format.commitment_bindingness", "three_tier").set_value("0.9").run()
    assert not at.error
    changes, format_changes, problems = at.session_state["result"]
    assert changes == {"russia.war_cost": 0.5}
    assert format_changes == {"three_tier": {"format.commitment_bindingness": 0.9}}
    scenario, formats = params.apply_changes(SCENARIO, changes, format_changes)
    assert scenario.russia.war_cost == 0.5 and list(formats) == ["three_tier"]
    assert formats["three_tier"].commitment_bindingness == 0.9
    assert formats["three_tier"].response == api.load_catalogue()["three_tier"].response


def test_the_search_box_filters_and_keeps_hidden_changes():
    at = started(panel_page)
    panel_box(at, "russia.war_cost").set_value("0.5").run()
    at.text_input(key="p_search").set_value("belief").run()
    keys = {t.key for t in at.text_input} - {"p_search"}
    infos = api.parameter_catalogue(SCENARIO, FORMATS)
    expected = {f"p:{i.path}" for i in infos
                if "belief" in f"{i.label} {i.path} {i.description}".lower()}
    assert keys == expected and "p:dynamics.belief_memory" in keys
    assert at.session_state["result"].changes == {"russia.war_cost": 0.5}
    at.text_input(key="p_search").set_value("no such thing at all").run()
    assert not [t for t in at.text_input if t.key != "p_search"]
    at.text_input(key="p_search").set_value("").run()
    assert panel_box(at, "russia.war_cost").value == "0.5"


def test_apply_changes_refuses_in_one_line():
    with pytest.raises(api.ConfigError) as refused:
        params.apply_changes(SCENARIO, {"dynamics.war_damage": 0.95}, {})
    assert "war_damage" in str(refused.value) and "\n" not in str(refused.value)
    with pytest.raises(api.ConfigError, match="format.response.cost_share"):
        params.apply_changes(SCENARIO, {}, {"nato": {"format.response.cost_share": 6.0}})


def switching_page(scenario_file: str, formats: list[str]) -> None:
    import streamlit as st

    from deterrence.dashboard import params

    chosen = st.session_state.get("formats_chosen", formats)
    infos = params.catalogue(scenario_file, tuple(chosen))
    path = params.axis_picker(st, infos, "ax", "russia.war_cost")
    info = next(i for i in infos if i.path == path)
    st.session_state["result"] = (path, params.axis_range(st, info, "ax", params.Numbers()))


def test_a_path_the_new_formats_lack_falls_back_and_resets():
    at = started(switching_page)
    us = "format.response_overrides.US.cost_share"
    at.selectbox(key="ax").set_value(us).run()
    assert at.session_state["result"][0] == us
    at.session_state["formats_chosen"] = ["bilateral"]  # no override for the US
    at.run()
    assert not at.exception
    path, (low, high, _) = at.session_state["result"]
    assert path in api.parameter_paths(SCENARIO, api.load_catalogue()["bilateral"])
    info = next(i for i in api.parameter_catalogue(SCENARIO, ["bilateral"]) if i.path == path)
    assert (low, high) == params.default_range(info)


def test_every_guarantor_at_once():
    at = started(panel_page)
    every = panel_box(at, "guarantors.*.gdp_usd_tn")
    assert every.value == ""  # the guarantors differ: no one value to show
    assert at.session_state["result"].changes == {}
    every.set_value("1.5").run()
    changes = at.session_state["result"].changes
    assert changes == {"guarantors.*.gdp_usd_tn": 1.5}
    scenario, _ = params.apply_changes(SCENARIO, changes, {})
    assert {g.gdp_usd_tn for g in scenario.guarantors} == {1.5}


def bound_page(scenario_file: str, formats: list[str]) -> None:
    import streamlit as st

    from deterrence.dashboard import params

    infos = params.catalogue(scenario_file, tuple(formats))
    path = params.axis_picker(st, infos, "ax", "russia.war_cost", bind="query-params")
    info = next(i for i in infos if i.path == path)
    st.session_state["result"] = params.axis_range(st, info, "ax", params.Numbers(),
                                                   bind="query-params")


def test_a_range_in_the_address_is_kept_until_the_parameter_changes():
    at = AppTest.from_function(bound_page, args=(SCENARIO_FILE, FORMATS),
                               default_timeout=TIMEOUT)
    at.query_params["ax_low"] = "0.05"
    at.run()
    assert at.session_state["result"][0] == 0.05
    at.selectbox(key="ax").set_value("russia.sanctions_cost").run()
    info = next(i for i in api.parameter_catalogue(SCENARIO, FORMATS)
                if i.path == "russia.sanctions_cost")
    assert at.session_state["result"][:2] == params.default_range(info)
    assert at.query_params["ax_high"] == params.as_text(params.default_range(info)[1])
