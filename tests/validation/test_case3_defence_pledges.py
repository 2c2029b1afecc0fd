"""Case 3: defence pledges to the target reduce initiation; neutrality raises it.

Leeds (2003, AJPS 47(3)): defence pacts with the target reduce the probability that a
challenger initiates a dispute; neutrality or offensive pacts with the challenger raise it
(docs/sources.md#leeds-2003, checked; no effect sizes). In the model, `neutrality` is the
absence of any guarantor, so the comparison is each defence pledge against it. Expectation
under the baseline calibration: every format that pledges to act for Ukraine deters exactly
where `neutrality` does not, and lowers the simulated escalation frequency (Russia's
initiations per round) below `neutrality`'s: the paired difference over runs with common
random numbers has its 95% interval below zero.
"""

from __future__ import annotations

import pytest
from validation_support import DEFENCE_PLEDGES, SEED_LEEDS, regime, summary

from deterrence.analysis.stats import paired_difference


@pytest.mark.parametrize("format_id", DEFENCE_PLEDGES)
def test_defence_pledge_lowers_initiation_below_neutrality(format_id):
    assert regime("baseline", format_id) == "deterred"
    assert regime("baseline", "neutrality") in ("defended", "abandoned")
    pledge = summary("baseline", format_id, SEED_LEEDS)["escalation_frequency"]
    neutral = summary("baseline", "neutrality", SEED_LEEDS)["escalation_frequency"]
    change = paired_difference(pledge, neutral)
    assert change.mean + change.half_width < 0.0, change.text(signed=True)
