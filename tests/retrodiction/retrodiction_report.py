"""The retrodiction suite's measurements (docs/validation.md#retrodiction).

Each case of ``cases.toml`` is a historical commitment, a calibration under
``configs/scenarios/validation/`` and an observed outcome. The model's result for a case is
its predictive probability that the challenger refrains, ``p_deterred`` (the mean over the
case's prior of 1 - P(escalate) in the crisis game, ``deterrence.api.uncertainty_table``),
with the 95% Monte Carlo interval of that mean. A case is reproduced when the interval lies
on the observed side of 1/2. The suite's score is the number of cases reproduced; its Brier
score is the mean of (p_deterred - outcome)^2 with outcome 1 for "deterred".

    python tests/retrodiction/retrodiction_report.py

prints the table of docs/validation.md#retrodiction and the two scores.
"""

from __future__ import annotations

import functools
import tomllib
from dataclasses import dataclass
from pathlib import Path

from deterrence import api
from deterrence.game.config import CONFIG_DIR, SCENARIOS_DIR, load_format

HERE = Path(__file__).resolve().parent
CASES_FILE = HERE / "cases.toml"
CALIBRATIONS = SCENARIOS_DIR / "validation"
CASE_FORMATS = CONFIG_DIR / "validation" / "formats"
#: The probability of refraining on which a retrodiction turns: above it the model says
#: deterred, below it not deterred (the regimes' threshold, docs/model.md#1-the-game).
HALF = 0.5
OUTCOMES = {"deterred": 1, "not deterred": 0}


def suite() -> dict:
    """The ``[suite]`` table of cases.toml: samples per case and the Brier expectation."""
    return tomllib.loads(CASES_FILE.read_text())["suite"]


def cases() -> list[dict]:
    """The cases of cases.toml, in file order."""
    return tomllib.loads(CASES_FILE.read_text())["cases"]


def case(case_id: str) -> dict:
    return next(c for c in cases() if c["id"] == case_id)


@dataclass(frozen=True)
class Result:
    """The model's result for one case."""

    case_id: str
    observed: str
    p_deterred: float
    low: float    # 95% Monte Carlo interval of p_deterred
    high: float
    q05: float    # the prior's 5% and 95% quantiles of 1 - P(escalate)
    q95: float
    holds: float  # share of prior samples whose regime is deterred

    @property
    def outcome(self) -> int:
        return OUTCOMES[self.observed]

    @property
    def reproduced(self) -> bool:
        """The interval lies on the observed side of 1/2."""
        return self.low > HALF if self.outcome == 1 else self.high < HALF

    @property
    def p_observed(self) -> tuple[float, float, float]:
        """P(observed outcome) with its interval."""
        if self.outcome == 1:
            return self.p_deterred, self.low, self.high
        return 1 - self.p_deterred, 1 - self.high, 1 - self.low

    @property
    def brier(self) -> float:
        return (self.p_deterred - self.outcome) ** 2


@functools.cache
def result(case_id: str) -> Result:
    """Solve one case under its prior (the scenario's seed, the suite's sample count)."""
    spec = case(case_id)
    fmt = spec.get("format") or load_format(CASE_FORMATS / spec["format_file"])
    table = api.uncertainty_table(CALIBRATIONS / spec["scenario"], formats=[fmt],
                                  samples=suite()["samples"])
    row = table.iloc[0]
    return Result(case_id, spec["observed"], float(row["p_deterred"]),
                  float(row["p_deterred_low"]), float(row["p_deterred_high"]),
                  float(row["p_deterred_q05"]), float(row["p_deterred_q95"]),
                  float(row["holds"]))


def score(results: list[Result]) -> tuple[int, int, float]:
    """(cases reproduced, cases, Brier score of p_deterred)."""
    brier = sum(r.brier for r in results) / len(results)
    return sum(r.reproduced for r in results), len(results), brier


def main() -> None:
    results = [result(c["id"]) for c in cases()]
    print("| case | observed | P(observed outcome) [95% interval] | p_deterred (prior 5-95%) "
          "| P(regime deterred) | status |")
    print("|---|---|---|---|---|---|")
    for r in results:
        p, lo, hi = r.p_observed
        status = "reproduced" if r.reproduced else "**not reproduced**"
        print(f"| {r.case_id} | {r.observed} | {p:.3f} [{lo:.3f}, {hi:.3f}] | "
              f"{r.p_deterred:.3f} ({r.q05:.3f}-{r.q95:.3f}) | {r.holds:.3f} | {status} |")
    hits, total, brier = score(results)
    print(f"\nscore: {hits} of {total} cases reproduced; Brier score {brier:.3f} "
          f"(always 1/2: 0.250)")


if __name__ == "__main__":
    main()
