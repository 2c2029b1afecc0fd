"""The dashboard's settings in the address: a value of a link that the page cannot show is
named in one line, once per session (dashboard/url_state.py); the widgets keep their values
in the address themselves (Streamlit's ``bind="query-params"``)."""

from __future__ import annotations

from streamlit.testing.v1 import AppTest

from deterrence.dashboard.url_state import CHECKED, SHOWN_OPTIONS, Choice, link_problems

FORMATS = ["bilateral", "nato", "nato_lite"]
CHOICES = [Choice("formats", lambda: FORMATS, many=True),
           Choice("view", lambda: ["Regime maps", "One run"])]


def test_values_the_page_can_show_are_no_problem():
    state: dict = {}
    assert link_problems(CHOICES, {"formats": ["nato", "bilateral"], "view": ["One run"],
                                   "steps": ["20"]}, state) == []
    assert state[CHECKED] is True


def test_each_value_it_cannot_show_is_one_line_naming_it_and_what_is_allowed():
    state: dict = {}
    problems = link_problems(CHOICES, {"formats": ["nato", "warsaw_pact", "entente"],
                                       "view": ["Secret"]}, state)
    assert problems == [
        "The link's setting formats = 'warsaw_pact' was not used: allowed: bilateral, nato, "
        "nato_lite.",
        "The link's setting formats = 'entente' was not used: allowed: bilateral, nato, "
        "nato_lite.",
        "The link's setting view = 'Secret' was not used: allowed: Regime maps, One run."]


def test_problems_are_named_once_per_session():
    state: dict = {}
    assert len(link_problems(CHOICES, {"view": ["Secret"]}, state)) == 1
    assert link_problems(CHOICES, {"view": ["Secret"]}, state) == []


def test_long_lists_of_options_are_cut():
    many = [f"option{k}" for k in range(SHOWN_OPTIONS + 5)]
    (problem,) = link_problems([Choice("x", lambda: many)], {"x": ["nope"]}, {})
    assert f"option{SHOWN_OPTIONS - 1}, …" in problem and f"option{SHOWN_OPTIONS}" not in problem


def _bound_page():
    import streamlit as st

    st.selectbox("View", ["Regime maps", "One run"], key="view", bind="query-params")
    st.text_input("Rounds", "60", key="steps", bind="query-params")


def test_bound_widgets_take_their_values_from_the_address():
    """What the page relies on from Streamlit: a bound widget starts from the address (the
    browser writes a changed value back into it: tests/test_dashboard_browser.py)."""
    at = AppTest.from_function(_bound_page)
    at.query_params["view"] = "One run"
    at.query_params["steps"] = "1e400"
    at.run()
    assert at.selectbox(key="view").value == "One run"
    assert at.text_input(key="steps").value == "1e400"  # as typed: the page checks it
