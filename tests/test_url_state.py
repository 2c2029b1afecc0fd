"""The dashboard's settings in the address (dashboard/url_state.py): a link restores what it
names once per session, refuses in one line what the page cannot show, and the address
names only the settings that differ from their defaults."""

from __future__ import annotations

import pytest

from deterrence.dashboard.url_state import (
    MAX_VALUE_LENGTH,
    RESTORED,
    Setting,
    publish,
    restore,
)

FORMATS = ["bilateral", "nato", "nato_lite"]
SETTINGS = [
    Setting("formats", "choices", FORMATS, lambda: FORMATS),
    Setting("view", "choice", "Regime maps", lambda: ["Regime maps", "One run"]),
    Setting("steps", "text", "60"),
]


def test_a_link_restores_its_settings_once():
    state: dict = {}
    assert restore(SETTINGS, {"formats": "nato,bilateral", "view": "One run", "steps": "20"},
                   state) == []
    assert state["formats"] == ["nato", "bilateral"]
    assert (state["view"], state["steps"]) == ("One run", "20")
    state["steps"] = "30"  # the visitor changes it: a later run keeps the change
    assert restore(SETTINGS, {"steps": "20"}, state) == []
    assert state["steps"] == "30"


@pytest.mark.parametrize(("params", "words"), [
    ({"formats": "nato,warsaw_pact"}, ["'formats'", "'warsaw_pact'", "bilateral"]),
    ({"view": ""}, ["'view'", "Regime maps"]),
    ({"view": "Secret"}, ["'view'", "'Secret'", "One run"]),
    ({"steps": "9" * (MAX_VALUE_LENGTH + 1)}, ["'steps'", str(MAX_VALUE_LENGTH)]),
])
def test_what_the_page_cannot_show_is_one_line_and_left_out(params, words):
    state: dict = {}
    (problem,) = restore(SETTINGS, params, state)
    assert "\n" not in problem
    for word in words:
        assert word in problem
    assert set(state) == {RESTORED}


def test_text_is_kept_as_typed_for_the_page_to_check():
    state: dict = {}
    assert restore(SETTINGS, {"steps": "1e400"}, state) == []
    assert state["steps"] == "1e400"


def test_the_address_names_only_what_differs_from_the_defaults():
    params = {"steps": "20", "stale": "x"}
    state = {"formats": ["nato"], "view": "Regime maps", "steps": "60"}
    publish(SETTINGS, state, params)
    assert params == {"formats": "nato"}
    state["view"] = "One run"
    publish(SETTINGS, state, params)
    assert params == {"formats": "nato", "view": "One run"}


def test_publish_then_restore_is_the_identity():
    state = {"formats": ["nato_lite", "nato"], "view": "One run", "steps": "7"}
    params: dict = {}
    publish(SETTINGS, state, params)
    again: dict = {}
    assert restore(SETTINGS, params, again) == []
    assert {k: again[k] for k in state} == state
