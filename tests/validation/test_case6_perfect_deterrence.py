"""Case 6: a credible threat fails to deter when the status quo is bad enough for Russia.

Zagare & Kilgour (2000), perfect deterrence: Russia is deterred iff the credibility of a
response exceeds (w - s)/(w - d); when the status quo s falls below the payoff d of a war
against the response, no credibility deters (docs/sources.md#zagare-kilgour-2000; the oracle
tests check the threshold on a stylised game). Calibration: the baseline, with Russia's
`status_quo_value` lowered from 0.4 to -1 in steps of 0.001 (a status quo worse than a
failed war, which has its own payoff, 0.3 at the baseline). Expectation, for each format
that deters at the baseline: below some status quo the regime is not deterred although the
members' response is unchanged (the status quo does not enter their payoffs, so every
member's credibility is the same), and the set of status quo values at which Russia
escalates is an interval starting at the bottom (the worse the status quo, the likelier the
challenge).
"""

from __future__ import annotations

import numpy as np
import pytest
from validation_support import DEFENCE_PLEDGES, case_status_quo


@pytest.mark.parametrize("format_id", DEFENCE_PLEDGES)
def test_a_bad_enough_status_quo_defeats_a_credible_deterrent(format_id):
    result = case_status_quo(format_id)
    # the premise: the format deters at the baseline, with members that honour
    assert result.baseline_regime == "deterred"
    assert result.baseline_credibility.max() > 0
    assert result.escalates.any(), f"deterrence margin at -1: {result.margin_at_lowest:+.4f}"
    assert result.credibility_unchanged
    # escalation below a threshold status quo, deterrence above it
    assert np.all(np.diff(result.escalates.astype(int)) <= 0)
