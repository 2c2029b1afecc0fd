"""The retrodiction suite: historical cases of extended deterrence.

The cases, their calibrations and the scores: docs/validation.md#retrodiction.

Each case of cases.toml asserts its expectation, fixed before the model was first run on
it: the 95% Monte Carlo interval of the predictive probability that the challenger refrains
lies on the observed side of 1/2. A case the model gets wrong is a strict xfail whose reason
is the diagnosis; its calibration is not changed. The suite test asserts the expectation
cases.toml fixed for the Brier score.
"""

from __future__ import annotations

import pytest
from retrodiction_report import cases, result, score, suite

#: Cases the model does not reproduce, with the diagnosis (added after the run).
DIAGNOSES: dict[str, str] = {
    "falklands_1982": (
        "the model predicts deterrence (p_deterred 0.88): a member with troops on the ground "
        "is engaged, so the UK responds with certainty (credibility 1), at once and with its "
        "whole response, and a certain response with full sanctions and the nuclear risk of "
        "combat with a nuclear-armed member outweighs the war's gain for every challenger "
        "type but the most resolved; the model has no misperception (Argentina did not "
        "expect Britain to fight), no garrison size and no delay for an engaged member"),
}


def _param(spec: dict):
    reason = DIAGNOSES.get(spec["id"])
    marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
    return pytest.param(spec["id"], id=spec["id"], marks=marks)


@pytest.mark.parametrize("case_id", [_param(spec) for spec in cases()])
def test_case_is_retrodicted(case_id):
    r = result(case_id)
    assert r.reproduced, (f"{case_id}: observed {r.observed}; p_deterred {r.p_deterred:.3f} "
                          f"[{r.low:.3f}, {r.high:.3f}]")


def test_the_suite_scores_better_than_always_one_half():
    hits, total, brier = score([result(spec["id"]) for spec in cases()])
    assert total >= 8
    assert brier < suite()["brier_below"], f"Brier score {brier:.3f}; {hits}/{total} reproduced"
