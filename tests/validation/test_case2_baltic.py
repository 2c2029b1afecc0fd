"""Case 2: Article 5 with forward presence keeps the Baltic states unattacked.

Estonia, Latvia and Lithuania have been NATO members since 2004 and host NATO's enhanced
Forward Presence since 2017 (docs/sources.md#nato-efp, checked); none has been attacked.
Calibration: configs/scenarios/validation/baltic_efp.toml (the Baltic states as the
protected state, seven NATO allies as guarantors; sources in the file). Expectation: `nato`
deters exactly, while the same calibration without a guarantee (`neutrality`) does not, so
the deterrence comes from the format. Simulated: the record (no attack in the 21 years under
Article 5, eight of them with the eFP) is the model's typical outcome over the scenario's
horizon (120 monthly rounds, ten years): more than half of the runs see no escalation
before the horizon, with the 95% interval above 1/2.
"""

from __future__ import annotations

from validation_support import SEED_BALTIC, escalation, horizon, never_attacked, regime


def test_nato_deters_in_the_baltic_calibration_and_neutrality_does_not():
    assert regime("baltic_efp", "nato") == "deterred"
    assert regime("baltic_efp", "neutrality") in ("defended", "abandoned")


def test_no_attack_within_the_horizon_is_the_typical_simulated_outcome():
    unattacked = never_attacked("baltic_efp", "nato", SEED_BALTIC)
    assert unattacked.mean - unattacked.half_width > 0.5, (
        f"runs without escalation in {horizon('baltic_efp')} rounds: {unattacked.text()}; "
        f"escalation frequency {escalation('baltic_efp', 'nato', SEED_BALTIC).text()}")
