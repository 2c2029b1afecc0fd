"""Case 1: Budapest-style assurances fail to deter (2014, 2022).

The Budapest Memorandum (1994) gave Ukraine assurances from the US and the UK (and Russia)
to seek UN Security Council action, with no obligation to defend it
(docs/sources.md#budapest-1994, checked); Russia annexed Crimea in 2014 and invaded in 2022.
Expectation under the baseline calibration: `budapest` does not deter, like `neutrality`.
Exactly: the regime is not deterred (Russia escalates with probability at least 1/2), as
under `neutrality`. Simulated: Russia escalates in more rounds than it refrains (long-run
escalation frequency above 1/2), with the 95% interval above 1/2.
"""

from __future__ import annotations

import pytest
from validation_support import SEED_BUDAPEST, escalation, regime

ESCALATION_REGIMES = ("defended", "abandoned")


def test_budapest_does_not_deter_like_neutrality():
    budapest = regime("baseline", "budapest")
    assert budapest in ESCALATION_REGIMES
    assert budapest == regime("baseline", "neutrality")


@pytest.mark.parametrize("format_id", [
    pytest.param("budapest", marks=pytest.mark.xfail(strict=True, reason=(
        "not reproduced in the simulations: Russia escalates in 0.469 [0.466, 0.471] of the "
        "rounds, just under 1/2: the US and UK members deciding alone honour with about "
        "0.43 each (their private cost types, scale 0.05, against a gain of -0.015), and "
        "their sanctions lower Russia's gain below its private resolve's median; every run "
        "is still attacked within 100 rounds, and the exact regime is abandoned"))),
    "neutrality"])
def test_russia_escalates_in_most_simulated_rounds(format_id):
    frequency = escalation("baseline", format_id, SEED_BUDAPEST)
    assert frequency.mean - frequency.half_width > 0.5, frequency.text()
