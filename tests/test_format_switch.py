"""A format switch: the runs play the new format's game from the round it applies, and the
two engines still agree to the last bit."""

from __future__ import annotations

import numpy as np
import pytest

from deterrence import api
from deterrence.game import config as C
from deterrence.game.payoffs import build_game, russia_refrain_payoff
from deterrence.simulate import engine
from deterrence.simulate import rules as dyn

from helpers import assert_engines_agree

CATALOGUE = C.load_catalogue()
BASELINE = C.load_scenario("baseline")


def switching(first: str, then: str, step: int = 3, **dynamics) -> tuple[C.Scenario, dyn.Setup]:
    scenario = BASELINE.model_copy(update={
        "format": first,
        "shocks": [C.Shock(step=step, kind="format_switch", format=then)],
        "dynamics": BASELINE.dynamics.model_copy(update=dynamics)})
    return scenario, dyn.Setup.from_config(scenario, CATALOGUE[first])


@pytest.mark.parametrize(("first", "then"), [("budapest", "coalition"),
                                             ("coalition", "budapest"),
                                             ("bilateral", "three_tier")])
def test_after_the_switch_the_members_game_is_the_new_formats(first, then):
    """The committed game after the switch, restricted to the new format's members, is that
    format's own game; Russia's refrain payoff and its priors about them are the same."""
    _, setup = switching(first, then)
    switched, membership = setup.switched[then]
    commitments = dyn.Commitments.initial(setup.base, setup.membership)
    commitments.switch(switched.troops_on_ground, membership)
    committed = dyn.committed_game(switched, commitments)
    own = build_game(BASELINE, CATALOGUE[then])
    columns = [setup.base.guarantor_ids.index(g) for g in own.guarantor_ids]
    assert [setup.base.guarantor_ids[j] for j in np.flatnonzero(membership)] == list(
        own.guarantor_ids)
    for name in ("added_capability", "sanctions_weight", "honouring_cost", "reneging_cost",
                 "stake", "troops_on_ground", "decisive_probability"):
        np.testing.assert_array_equal(getattr(committed, name)[:, columns],
                                      getattr(own, name), err_msg=name)
        others = np.delete(getattr(committed, name), columns, axis=1)
        assert np.all(others == 0), name  # the rest are bystanders
    np.testing.assert_array_equal(russia_refrain_payoff(committed), russia_refrain_payoff(own))
    np.testing.assert_allclose(dyn.equilibrium_priors(committed)[:, :, columns],
                               dyn.equilibrium_priors(own), atol=1e-9)


def test_a_switch_to_a_collective_pledge_lowers_escalation_from_its_round_on():
    """Common random numbers: the runs agree before the switch round and, from it on,
    escalate less often under the pledge (the budapest assurances deter less)."""
    _, plain = switching("budapest", "budapest", step=10_000)
    _, upgraded = switching("budapest", "nato", step=6)
    a = engine.simulate(plain, 2000, 18, keep_series=True)
    b = engine.simulate(upgraded, 2000, 18, keep_series=True)
    np.testing.assert_array_equal(a.series["escalated"][:, :6], b.series["escalated"][:, :6])
    # per run, the share of rounds from the switch on with escalation, paired over runs
    difference = (a.series["escalated"][:, 6:].mean(axis=1)
                  - b.series["escalated"][:, 6:].mean(axis=1))
    standard_error = difference.std(ddof=1) / np.sqrt(difference.size)
    assert difference.mean() > 3 * standard_error, (difference.mean(), standard_error)


SWITCH_CASES = [  # (format, shocks): switches with other shocks between them
    ("bilateral", [C.Shock(step=4, kind="format_switch", format="three_tier"),
                   C.Shock(step=7, kind="withdraw", guarantor="Poland"),
                   C.Shock(step=9, kind="format_switch", format="budapest"),
                   C.Shock(step=11, kind="format_switch", format="coalition")]),
    ("budapest", [C.Shock(step=2, kind="deploy", guarantor="Poland"),  # not yet a member
                  C.Shock(step=5, kind="format_switch", format="nato"),
                  C.Shock(step=8, kind="election", guarantor="*"),
                  C.Shock(step=10, kind="bindingness_change", guarantor="US",
                          bindingness=0.1)]),
    ("neutrality", [C.Shock(step=3, kind="format_switch", format="nato_lite"),
                    C.Shock(step=6, kind="belief", guarantor="UK", belief=0.0, strength=9.0),
                    C.Shock(step=9, kind="format_switch", format="neutrality")]),
]


@pytest.mark.parametrize("noise", [0.0, 0.3])
@pytest.mark.parametrize(("first", "shocks"), SWITCH_CASES, ids=[c[0] for c in SWITCH_CASES])
def test_both_engines_agree_through_switches(first, shocks, noise):
    scenario, _ = switching(first, first, decision_noise_share=noise,
                            settlement_probability_after_failure=0.02)
    scenario = scenario.model_copy(update={"shocks": shocks})
    setup = dyn.Setup.from_config(scenario, CATALOGUE[first])
    runs = np.array([0, 3, 17, 40, 41, 99, 1_000_003])
    assert_engines_agree(setup, runs, 16, chunk_runs=4)


def test_an_unknown_format_to_switch_to_is_refused_in_one_line():
    scenario = BASELINE.model_copy(update={
        "shocks": [C.Shock(step=1, kind="format_switch", format="no_such_format")]})
    with pytest.raises(C.ConfigError) as raised:
        api.simulate_scenario(scenario, "nato_lite", runs=2, steps=2)
    message = str(raised.value)
    assert "shocks.0.format" in message and "no_such_format" in message
    assert "nato_lite" in message and "\n" not in message


@pytest.mark.parametrize(("shock", "named"), [
    ({"step": 1, "kind": "format_switch"}, "format"),
    ({"step": 1, "kind": "format_switch", "format": "nato", "guarantor": "US"}, "guarantor"),
    ({"step": 1, "kind": "withdraw", "guarantor": "US", "format": "nato"}, "format")])
def test_a_switch_without_its_format_or_with_a_guarantor_is_refused(shock, named):
    data = {"name": "s", "guarantors": [{"id": "US", "name": "US",
                                         "military_spending_usd_bn": 997.0,
                                         "gdp_usd_tn": 29.2}], "shocks": [shock]}
    with pytest.raises(C.ConfigError) as raised:
        C.validate(C.Scenario, data, "s.toml")
    assert f"shocks.0.{named}" in str(raised.value)
