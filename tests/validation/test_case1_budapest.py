"""Case 1: Budapest-style assurances fail to deter (2014, 2022).

The Budapest Memorandum (1994) gave Ukraine assurances from the US and the UK (and Russia)
to seek UN Security Council action, with no obligation to defend it
(docs/sources.md#budapest-1994, checked); Russia annexed Crimea in 2014 and invaded in 2022.
Expectation under the baseline calibration: `budapest` does not deter, like `neutrality`.
Exactly: the regime is not deterred (Russia escalates with probability at least 1/2), as
under `neutrality`. Simulated: Russia attacks while the assurances stand in most runs (a
first escalation within the scenario's horizon), with the 95% interval above 1/2.
"""

from __future__ import annotations

import pytest
from validation_support import SEED_BUDAPEST, attacked, regime

ESCALATION_REGIMES = ("defended", "abandoned")


def test_budapest_does_not_deter_like_neutrality():
    budapest = regime("baseline", "budapest")
    assert budapest in ESCALATION_REGIMES
    assert budapest == regime("baseline", "neutrality")


@pytest.mark.parametrize("format_id", ["budapest", "neutrality"])
def test_most_simulated_runs_are_attacked_within_the_horizon(format_id):
    share = attacked("baseline", format_id, SEED_BUDAPEST)
    assert share.mean - share.half_width > 0.5, share.text()
