"""Measurements behind the validation cases (docs/validation.md).

The functions here measure what each stylised fact is about, under the calibration the page
documents; the tests in this folder assert the fact's direction on these numbers, and

    python tests/validation/validation_support.py

prints them for the page's table. Every simulation uses an explicit seed, the same seed for
the formats it compares (common random numbers: run ``r`` of two formats draws the same
uniforms), the vectorised engine and the scenario's horizon (``dynamics.horizon_rounds``).
A run's summaries count only the rounds before it ended (defeat or settlement).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from deterrence.analysis.stats import Estimate, mean_ci, paired_difference
from deterrence.game.config import (
    SCENARIOS_DIR,
    FormatSpec,
    Scenario,
    load_catalogue,
    load_scenario,
)
from deterrence.game.payoffs import build_game
from deterrence.simulate import engine
from deterrence.simulate import rules as dyn
from deterrence.solve.equilibrium import REGIME_NAMES, solve_cell, solve_grid

SCENARIO_FILES = {"baseline": SCENARIOS_DIR / "baseline.toml",
                  "baltic_efp": SCENARIOS_DIR / "validation" / "baltic_efp.toml"}
RUNS = 1000
#: Window of the first-escalation hazard, in months: the first year.
HAZARD_MONTHS = 12
#: Defence pledges to the protected state (Leeds 2003): every format that commits its
#: members to act for it. `budapest` (assurances, no obligation) and `neutrality` are not.
DEFENCE_PLEDGES = ("nato", "nato_lite", "bilateral", "coalition", "three_tier")
#: Formats with troops on the ground (all members, or the UK and France in `three_tier`).
TRIPWIRE_FORMATS = ("nato", "coalition", "three_tier")
GUARANTOR_COUNTS = (2, 3, 5, 8)
#: Russia's status quo from -1 (worse than a failed war by more than the value of its war
#: aims) to the baseline value, step 0.001.
STATUS_QUO = np.linspace(-1.0, 0.4, 1401)

# One explicit seed per case.
SEED_BUDAPEST, SEED_BALTIC, SEED_LEEDS, SEED_TRIPWIRE, SEED_VOLUNTEER = (
    1994, 2017, 2003, 1966, 1985)


@functools.cache
def scenario(name: str) -> Scenario:
    return load_scenario(SCENARIO_FILES[name])


@functools.cache
def catalogue() -> dict[str, FormatSpec]:
    return load_catalogue()


def without_troops(spec: FormatSpec) -> FormatSpec:
    """The format with every member's troops withdrawn and nothing else changed."""
    def strip(response):
        return response.model_copy(update={"troops_on_ground": False})
    return spec.model_copy(update={
        "response": strip(spec.response),
        "response_overrides": {g: strip(r) for g, r in spec.response_overrides.items()}})


def format_spec(format_id: str, troops: bool = True) -> FormatSpec:
    spec = catalogue()[format_id]
    return spec if troops else without_troops(spec)


def horizon(scenario_name: str) -> int:
    """Rounds every simulation of the scenario runs: its ``dynamics.horizon_rounds``."""
    return scenario(scenario_name).dynamics.horizon_rounds


def hazard_rounds(scenario_name: str) -> int:
    """Rounds in the first year (:data:`HAZARD_MONTHS`) at the scenario's round length."""
    return round(HAZARD_MONTHS / scenario(scenario_name).dynamics.round_months)


def simulate(sc: Scenario, spec: FormatSpec, seed: int, keep_series: bool = False):
    setup = dyn.Setup.from_config(sc, spec, seed=seed)
    return engine.simulate(setup, RUNS, sc.dynamics.horizon_rounds, keep_series=keep_series)


@functools.cache
def summary(scenario_name: str, format_id: str, seed: int, troops: bool = True):
    """Per-run summaries of RUNS runs over the scenario's horizon (cached: cases share
    them)."""
    return simulate(scenario(scenario_name), format_spec(format_id, troops), seed).summary


def solution(scenario_name: str, format_id: str, troops: bool = True, overrides=None):
    sc = scenario(scenario_name)
    game = build_game(sc, format_spec(format_id, troops), overrides)
    return solve_grid(game, deterred_below=sc.analysis.deterred_below_escalation_probability,
                      defended_below=sc.analysis.defended_below_russia_success, threads=1)


def regime(scenario_name: str, format_id: str, troops: bool = True) -> str:
    """The exact regime of the selected equilibria (as on the maps)."""
    return REGIME_NAMES[int(solution(scenario_name, format_id, troops).regime[0])]


def escalation(scenario_name: str, format_id: str, seed: int, troops: bool = True) -> Estimate:
    return mean_ci(summary(scenario_name, format_id, seed, troops)["escalation_frequency"])


def attacked(scenario_name: str, format_id: str, seed: int) -> Estimate:
    """Share of runs with an escalation within the horizon (a first escalation)."""
    first = summary(scenario_name, format_id, seed)["first_escalation"]
    return mean_ci((first >= 0).astype(np.float64))


def never_attacked(scenario_name: str, format_id: str, seed: int) -> Estimate:
    """Share of runs without any escalation within the horizon."""
    first = summary(scenario_name, format_id, seed)["first_escalation"]
    return mean_ci((first < 0).astype(np.float64))


def end_states(scenario_name: str, format_id: str, seed: int) -> dict[str, float]:
    """Share of runs in each end state at the horizon (ongoing, defeated, settled)."""
    state = summary(scenario_name, format_id, seed)["end_state"]
    return {name: float(np.mean(state == code)) for code, name in enumerate(dyn.END_STATES)}


# ---------------------------------------------------------------------------------------
# Case 4: the first-escalation hazard


def _hazard_parts(first_escalation: np.ndarray, rounds: int):
    """Per run: 1 if the first escalation falls in rounds 0..rounds-1, and the rounds at
    risk (rounds up to and including the first escalation, at most ``rounds``)."""
    event = (first_escalation >= 0) & (first_escalation < rounds)
    exposure = np.where(event, first_escalation + 1, rounds)
    return event.astype(np.float64), exposure.astype(np.float64)


def pooled_hazard(first_escalation: np.ndarray, rounds: int) -> float:
    """First escalations per round at risk over the first ``rounds`` rounds (the
    maximum-likelihood constant hazard)."""
    event, exposure = _hazard_parts(first_escalation, rounds)
    return float(event.sum() / exposure.sum())


def paired_hazard_difference(first: np.ndarray, reference: np.ndarray,
                             rounds: int) -> Estimate:
    """``pooled_hazard(first) - pooled_hazard(reference)`` over paired runs, with a 95%
    interval from the linearisation of the two ratio estimators (delta method)."""
    parts = []
    for values in (first, reference):
        event, exposure = _hazard_parts(values, rounds)
        rate = event.sum() / exposure.sum()
        parts.append((rate, (event - rate * exposure) / exposure.mean()))
    (rate_a, infl_a), (rate_b, infl_b) = parts
    influence = infl_a - infl_b
    half = 1.96 * float(influence.std(ddof=1)) / np.sqrt(influence.size)
    return Estimate(float(rate_a - rate_b), half, int(influence.size))


@dataclass(frozen=True)
class TripwireResult:
    regime_with: str
    regime_without: str
    escalation_with: Estimate
    escalation_without: Estimate
    escalation_change: Estimate       # without - with, paired
    hazard_with: float
    hazard_without: float
    hazard_change: Estimate           # without - with, paired


@functools.cache
def case_tripwire(format_id: str) -> TripwireResult:
    with_troops = summary("baseline", format_id, SEED_TRIPWIRE)
    without = summary("baseline", format_id, SEED_TRIPWIRE, troops=False)
    window = hazard_rounds("baseline")
    return TripwireResult(
        regime("baseline", format_id), regime("baseline", format_id, troops=False),
        mean_ci(with_troops["escalation_frequency"]), mean_ci(without["escalation_frequency"]),
        paired_difference(without["escalation_frequency"],
                          with_troops["escalation_frequency"]),
        pooled_hazard(with_troops["first_escalation"], window),
        pooled_hazard(without["first_escalation"], window),
        paired_hazard_difference(without["first_escalation"],
                                 with_troops["first_escalation"], window))


# ---------------------------------------------------------------------------------------
# Case 5: volunteer's dilemma among symmetric bilateral guarantors


def symmetric_scenario(n: int) -> Scenario:
    """The baseline with ``n`` copies of its United Kingdom as the only guarantors."""
    base = scenario("baseline")
    uk = base.guarantor("UK")
    copies = [uk.model_copy(update={"id": f"G{i + 1}", "name": f"UK-like guarantor {i + 1}"})
              for i in range(n)]
    return Scenario.model_validate({**base.model_dump(), "guarantors":
                                    [g.model_dump() for g in copies]})


@functools.cache
def volunteer_exact(n: int) -> float:
    """P(no member responds | escalation) when the members decide alone, in the equilibrium
    they then play (the least deterrent of the subgame's set; under `bilateral` they never
    coordinate)."""
    sc = symmetric_scenario(n)
    found, complete = solve_cell(build_game(sc, catalogue()["bilateral"]))
    if not complete:
        raise AssertionError(f"n = {n}: the equilibrium set is not proven complete")
    alone = next(e for e in found if e.played_alone)
    return 1.0 - alone.response_probability


@functools.cache
def volunteer_simulated(n: int) -> np.ndarray:
    """Per run: share of escalations met by no member at all (NaN: no escalation)."""
    sim = simulate(symmetric_scenario(n), catalogue()["bilateral"], SEED_VOLUNTEER,
                   keep_series=True)
    escalated = sim.series["escalated"]
    nobody = escalated & (sim.series["actions"].sum(axis=2) == 0)
    count = escalated.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, nobody.sum(axis=1) / count, np.nan)


# ---------------------------------------------------------------------------------------
# Case 6: perfect deterrence (Zagare & Kilgour)


@dataclass(frozen=True)
class StatusQuoResult:
    baseline_regime: str
    baseline_credibility: np.ndarray  # each member's P(honour | escalation) at the baseline
    escalates: np.ndarray             # per STATUS_QUO value: the regime is not deterred
    credibility_unchanged: bool       # the members' response is the same at every value
    highest_escalating: float         # largest status quo at which Russia escalates (NaN)
    margin_at_lowest: float           # Russia's deterrence margin at the lowest status quo


@functools.cache
def case_status_quo(format_id: str) -> StatusQuoResult:
    at_baseline = solution("baseline", format_id)
    grid = solution("baseline", format_id, overrides={"russia.status_quo_value": STATUS_QUO})
    escalates = grid.regime != REGIME_NAMES.index("deterred")
    return StatusQuoResult(
        REGIME_NAMES[int(at_baseline.regime[0])], at_baseline.credibility[0],
        escalates, bool(np.all(grid.credibility == grid.credibility[:1])),
        float(STATUS_QUO[escalates].max()) if escalates.any() else float("nan"),
        float(grid.deterrence_margin[0]))


# ---------------------------------------------------------------------------------------
# The table of docs/validation.md


def _ends(scenario_name: str, format_id: str, seed: int) -> str:
    return ", ".join(f"{name} {share:.3f}"
                     for name, share in end_states(scenario_name, format_id, seed).items())


def report() -> None:
    print(f"case 1: Budapest-style assurances (baseline, {horizon('baseline')} rounds)")
    for fid in ("budapest", "neutrality", "nato"):
        print(f"  {fid:11s} regime {regime('baseline', fid):9s} attacked within the horizon "
              f"{attacked('baseline', fid, SEED_BUDAPEST).text()}  escalation frequency "
              f"{escalation('baseline', fid, SEED_BUDAPEST).text()}  end states "
              f"{_ends('baseline', fid, SEED_BUDAPEST)}")
    print(f"case 2: Baltic states, Article 5 with forward presence (baltic_efp, "
          f"{horizon('baltic_efp')} rounds)")
    for fid in ("nato", "nato_lite", "neutrality"):
        print(f"  {fid:11s} regime {regime('baltic_efp', fid):9s} no escalation within the "
              f"horizon {never_attacked('baltic_efp', fid, SEED_BALTIC).text()}  escalation "
              f"frequency {escalation('baltic_efp', fid, SEED_BALTIC).text()}  end states "
              f"{_ends('baltic_efp', fid, SEED_BALTIC)}")
    print("case 3: defence pledges vs neutrality (baseline)")
    neutral = summary("baseline", "neutrality", SEED_LEEDS)["escalation_frequency"]
    print(f"  neutrality  regime {regime('baseline', 'neutrality'):9s} escalation "
          f"{mean_ci(neutral).text()}")
    for fid in DEFENCE_PLEDGES:
        freq = summary("baseline", fid, SEED_LEEDS)["escalation_frequency"]
        print(f"  {fid:11s} regime {regime('baseline', fid):9s} escalation "
              f"{mean_ci(freq).text()}  minus neutrality "
              f"{paired_difference(freq, neutral).text(signed=True)}")
    print(f"case 4: tripwire removed (baseline; hazard over the first "
          f"{hazard_rounds('baseline')} rounds)")
    for fid in TRIPWIRE_FORMATS:
        r = case_tripwire(fid)
        print(f"  {fid:11s} regime {r.regime_with} -> {r.regime_without}; escalation "
              f"{r.escalation_with.text()} -> {r.escalation_without.text()} (paired "
              f"{r.escalation_change.text(signed=True)}); hazard {r.hazard_with:.4f} -> "
              f"{r.hazard_without:.4f} (paired {r.hazard_change.text(signed=True)})")
    print("case 5: n symmetric UK-like guarantors under `bilateral`: P(no response | esc.)")
    for n in GUARANTOR_COUNTS:
        print(f"  n = {n}: exact {volunteer_exact(n):.4f}; simulated "
              f"{mean_ci(volunteer_simulated(n)).text()}")
    for a, b in zip(GUARANTOR_COUNTS, GUARANTOR_COUNTS[1:], strict=False):
        print(f"  n = {b} minus n = {a}: "
              f"{paired_difference(volunteer_simulated(b), volunteer_simulated(a)).text(True)}")
    print("case 6: status quo lowered from 0.4 to -1 (baseline)")
    for fid in DEFENCE_PLEDGES:
        r = case_status_quo(fid)
        print(f"  {fid:11s} at 0.4 {r.baseline_regime}, credibility "
              f"{np.round(r.baseline_credibility, 3)}; response unchanged "
              f"{r.credibility_unchanged}; Russia escalates for status quo <= "
              f"{r.highest_escalating:.3f}; deterrence margin at -1: {r.margin_at_lowest:+.4f}")

if __name__ == "__main__":
    report()
