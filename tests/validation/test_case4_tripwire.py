"""Case 4: removing a tripwire raises the hazard of attack.

Schelling (1966): troops on the ground commit the state that stations them; Reiter & Poast
(2021) find that tripwires deter only by changing the local balance
(docs/sources.md#schelling-1966, #reiter-poast-2021). Each format with troops on the ground
is compared with the same format with every member's `troops_on_ground` set to false and
nothing else changed (baseline calibration). In the model, withdrawing the troops disengages
the garrisons (members with troops honour whatever their costs) and slows the members'
denial, but also removes the provocation (`foreign_troops_aversion`: Moscow rejects foreign
troops), which raises Russia's status quo. Expectation: without the troops, the regime is
not deterred where it was deterred; in the simulations (paired runs, common random
numbers) the escalation frequency (over the rounds before a run ended) and the hazard of a
first escalation over the first year (12 monthly rounds; first escalations per round at
risk) are higher, with 95% intervals above zero.
"""

from __future__ import annotations

import pytest
from validation_support import TRIPWIRE_FORMATS, case_tripwire

DETERRED_WITHOUT_TROOPS = (
    "not reproduced: without troops the members are no longer engaged, yet the regime stays "
    "deterred: {why}")


@pytest.mark.parametrize("format_id", [
    pytest.param("nato", marks=pytest.mark.xfail(strict=True, reason=(
        DETERRED_WITHOUT_TROOPS.format(why="the treaty's bindingness (1) keeps the "
                                       "non-nuclear members honouring with 0.60-1.00, "
                                       "while the nuclear risk keeps the US (0.002), the "
                                       "UK and France (below 1e-19) out: P(escalate) "
                                       "0.485, just below 1/2 (Russia's deterrence margin "
                                       "+0.006)")))),
    "coalition",
    "three_tier"])
def test_without_troops_russia_escalates_in_equilibrium(format_id):
    result = case_tripwire(format_id)
    assert result.regime_with == "deterred"
    assert result.regime_without in ("defended", "abandoned")


@pytest.mark.parametrize("format_id", TRIPWIRE_FORMATS)
def test_without_troops_escalation_frequency_rises(format_id):
    change = case_tripwire(format_id).escalation_change
    assert change.mean - change.half_width > 0.0, change.text(signed=True)


@pytest.mark.parametrize("format_id", TRIPWIRE_FORMATS)
def test_without_troops_first_escalation_hazard_rises(format_id):
    change = case_tripwire(format_id).hazard_change
    assert change.mean - change.half_width > 0.0, change.text(signed=True)
