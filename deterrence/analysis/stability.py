"""Where the repeated crisis goes from the deterred state: erosion time and end-state shares.

Every run starts deterred: Russia's beliefs are the equilibrium prior (the members'
honouring probabilities in the crisis game's selected equilibria) and nothing has happened
yet. From the per-run summaries of a sweep (``first_escalation``, ``end_state``,
``end_round``, ``escalation_frequency``) this module computes, per format and point:

- the **erosion time**: the Kaplan-Meier median of the rounds until the first escalation,
  with a confidence interval, in rounds and in years;
- the **end-state shares**: the share of runs that ended with Ukraine defeated, in a
  settlement, or still ongoing at the horizon, the last split into runs that escalated at
  least once and runs that never did (deterred throughout);
- the **time-average escalation frequency**: the mean share of rounds with an escalation,
  with a Student-t interval over the replicates (cut to [0, 1]): the long-run escalation
  along whatever cycle a run settles into.

Conventions (docs/analysis.md#erosion-time-and-end-states):

- the time to the first escalation, ``T``, counts rounds from 1 and includes the round of
  the escalation: a run escalating in its first round (``first_escalation`` = 0) has
  ``T = 1``. So if Russia escalates in each round with probability ``h`` independently,
  ``P(T > k) = (1 - h)^k``;
- a run without any escalation is *censored*: all we know is ``T > steps`` (the horizon),
  or ``T > end_round + 1`` if it ended first;
- the median is the smallest ``t`` with ``S(t) <= 1/2`` (``S`` the Kaplan-Meier survival
  curve), the usual definition of a median of a discrete distribution; for the geometric
  law above it is ``ceil(log(1/2) / log(1 - h))``. It is missing ("not reached") when
  ``S`` stays above 1/2 up to the horizon: more than half of the runs are expected to hold
  deterrence that long;
- its interval is Brookmeyer & Crowley's (1982): the times ``t`` at which
  ``|S(t) - 1/2| <= z * se(t)``, with Greenwood's standard error ``se`` on the plain
  scale. Its lower limit is the first such time; its upper limit is the first time at
  which ``S(t) + z * se(t) <= 1/2``, missing when that does not happen before the horizon.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..simulate.rules import DEFEATED, ONGOING, SETTLED
from .stats import mean_t_interval

#: Level of the intervals of the erosion time and of the time-average escalation frequency.
CONFIDENCE = 0.95
#: The survival level whose time is the erosion time: the median.
MEDIAN = 0.5
#: Months of a year, to turn rounds (``dynamics.round_months``) into years.
MONTHS_PER_YEAR = 12.0

_ROUNDS_COMMENT = ("rounds counted from 1, the round of the first escalation included; "
                   "Kaplan-Meier, runs without escalation censored at the horizon; missing: "
                   "not reached (more than half the runs hold deterrence to the horizon)")
_YEARS_COMMENT = "the rounds times dynamics.round_months / 12; missing: not reached"
_INTERVAL = ("Brookmeyer-Crowley interval with Greenwood's standard error; missing upper "
             "limit: beyond the horizon")
_T_INTERVAL = "Student-t interval over the replicates, cut to [0, 1]"

#: CF attributes of each variable of :func:`stability`, over format and the point dims.
STABILITY_VARIABLES: dict[str, dict] = {
    "erosion_rounds": {
        "long_name": "erosion time: median rounds until the first escalation", "units": "1",
        "comment": _ROUNDS_COMMENT},
    "erosion_rounds_low": {"long_name": "lower limit of the erosion time's interval",
                           "units": "1", "comment": _INTERVAL},
    "erosion_rounds_high": {"long_name": "upper limit of the erosion time's interval",
                            "units": "1", "comment": _INTERVAL},
    "erosion_years": {"long_name": "erosion time: median years until the first escalation",
                      "units": "year", "comment": _YEARS_COMMENT},
    "erosion_years_low": {"long_name": "lower limit of the erosion time's interval, years",
                          "units": "year", "comment": _INTERVAL},
    "erosion_years_high": {"long_name": "upper limit of the erosion time's interval, years",
                           "units": "year", "comment": _INTERVAL},
    "deterred_at_horizon": {
        "long_name": "Kaplan-Meier share of runs with no escalation up to the horizon",
        "units": "1", "comment": "S(steps): survival of deterrence to the last round"},
    "defeated_share": {"long_name": "share of runs ending with Ukraine defeated",
                       "units": "1"},
    "settled_share": {"long_name": "share of runs ending in a settlement", "units": "1"},
    "ongoing_escalated_share": {
        "long_name": "share of runs ongoing at the horizon that escalated at least once",
        "units": "1",
        "comment": "whether such a run is deterred in its last rounds needs the per-round "
                   "series, which a sweep does not keep"},
    "ongoing_deterred_share": {
        "long_name": "share of runs ongoing at the horizon that never escalated",
        "units": "1", "comment": "deterred in every round; the four end-state shares sum "
                                 "to 1"},
    "escalation_frequency_mean": {
        "long_name": "time-average escalation frequency: mean over the replicates of the "
                     "share of rounds with an escalation", "units": "1",
        "comment": "rounds before a run ended"},
    "escalation_frequency_low": {
        "long_name": "lower limit of the time-average escalation frequency's interval",
        "units": "1", "comment": _T_INTERVAL},
    "escalation_frequency_high": {
        "long_name": "upper limit of the time-average escalation frequency's interval",
        "units": "1", "comment": _T_INTERVAL},
    "runs": {"long_name": "runs (replicates) at the point", "units": "1"},
}
#: The end-state shares, a partition of the runs.
END_SHARES = ("defeated_share", "settled_share", "ongoing_escalated_share",
              "ongoing_deterred_share")


@dataclass(frozen=True)
class Survival:
    """A Kaplan-Meier curve: at each distinct event time, the survival just after it and
    Greenwood's standard error."""

    times: np.ndarray
    survival: np.ndarray
    standard_error: np.ndarray
    at_risk: np.ndarray
    events: np.ndarray

    def at(self, t: float) -> float:
        """S(t): the survival after every event at or before ``t``."""
        k = int(np.searchsorted(self.times, t, side="right"))
        return 1.0 if k == 0 else float(self.survival[k - 1])


def kaplan_meier(durations, observed) -> Survival:
    """The Kaplan-Meier estimate of ``S(t) = P(T > t)`` from durations (an event at that
    time if ``observed``, else censored: ``T`` exceeds it) with Greenwood's variance
    ``S(t)^2 * sum d / (n (n - d))`` over the event times up to ``t``. A censored run is at
    risk at its censoring time."""
    t = np.asarray(durations, dtype=np.float64).ravel()
    event = np.asarray(observed, dtype=bool).ravel()
    if t.shape != event.shape:
        raise ValueError(f"durations and observed differ in size: {t.size} vs {event.size}")
    times = np.unique(t[event])
    ordered = np.sort(t)
    at_risk = t.size - np.searchsorted(ordered, times, side="left")
    ordered_events = np.sort(t[event])
    events = (np.searchsorted(ordered_events, times, side="right")
              - np.searchsorted(ordered_events, times, side="left"))
    survival = np.cumprod(1.0 - events / at_risk)
    with np.errstate(divide="ignore", invalid="ignore"):
        greenwood = np.cumsum(events / (at_risk * (at_risk - events)))
        se = survival * np.sqrt(greenwood)
    se = np.where(survival == 0.0, 0.0, se)  # everyone has had the event: no doubt left
    return Survival(times, survival, se, at_risk, events)


def median_interval(curve: Survival, confidence: float = CONFIDENCE
                    ) -> tuple[float, float, float]:
    """(median, lower, upper) of a Kaplan-Meier curve: the median is the first time with
    ``S <= 1/2``; the interval is Brookmeyer-Crowley's with Greenwood's standard error
    (module docstring). NaN where not reached."""
    from scipy import stats

    if not 0.5 < confidence < 1:
        raise ValueError(f"confidence = {confidence}: must lie in (0.5, 1)")
    z = float(stats.norm.ppf(0.5 + confidence / 2))
    s, se = curve.survival, curve.standard_error

    def first(flags: np.ndarray) -> float:
        hit = np.flatnonzero(flags)
        return float(curve.times[hit[0]]) if hit.size else float("nan")

    return first(s <= MEDIAN), first(s - z * se <= MEDIAN), first(s + z * se <= MEDIAN)


def rounds_to_first_escalation(first_escalation, end_round, steps: int
                               ) -> tuple[np.ndarray, np.ndarray]:
    """(durations, observed) of the time to the first escalation, in rounds counted from
    1: ``first_escalation + 1`` where a run escalated (missing = NaN where it did not),
    else censored at the round it ended (``end_round + 1``) or at the horizon ``steps``."""
    first = np.asarray(first_escalation, dtype=np.float64)
    end = np.asarray(end_round, dtype=np.float64)
    observed = np.isfinite(first)
    censored_at = np.where(np.isfinite(end), end + 1.0, float(steps))
    return np.where(observed, first + 1.0, censored_at), observed


def stability(sim, steps: int | None = None, round_months: float | None = None,
              confidence: float = CONFIDENCE):
    """Erosion time, end-state shares and time-average escalation per format and point of
    a sweep's simulated dataset (dims format, the point dims, replicate; the variables
    ``first_escalation``, ``end_state``, ``end_round`` and ``escalation_frequency``).

    ``steps`` (the horizon) and ``round_months`` default to the dataset's attributes of
    those names, which every sweep's simulated dataset has. Returns an ``xarray.Dataset``
    over format and the point dims with the variables of :data:`STABILITY_VARIABLES`.
    Raises ValueError for a dataset that lacks a variable or attribute.
    """
    import xarray as xr

    needed = ("first_escalation", "end_state", "end_round", "escalation_frequency")
    missing = [v for v in needed if v not in sim.data_vars]
    if missing:
        raise ValueError(f"the simulated dataset has no {', '.join(missing)}: it was made "
                         "by a version that did not store how runs end; run the sweep again")
    if "replicate" not in sim.dims:
        raise ValueError("the simulated dataset has no replicate dimension")
    steps = int(sim.attrs["steps"]) if steps is None and "steps" in sim.attrs else steps
    if round_months is None and "round_months" in sim.attrs:
        round_months = float(sim.attrs["round_months"])
    if steps is None or round_months is None:
        raise ValueError("the simulated dataset has no 'steps' or 'round_months' attribute: "
                         "pass steps= and round_months=")
    first = sim["first_escalation"].transpose(..., "replicate")
    dims = first.dims[:-1]
    shape = first.shape[:-1]
    runs = first.shape[-1]

    def rows(name: str) -> np.ndarray:
        return np.asarray(sim[name].transpose(*dims, "replicate").values,
                          dtype=np.float64).reshape(-1, runs)

    first_rows, end_rows, state_rows = rows("first_escalation"), rows("end_round"), \
        rows("end_state")
    cells = first_rows.shape[0]
    median, low, high, horizon = (np.full(cells, np.nan) for _ in range(4))
    for c in range(cells):
        durations, observed = rounds_to_first_escalation(first_rows[c], end_rows[c], steps)
        curve = kaplan_meier(durations, observed)
        median[c], low[c], high[c] = median_interval(curve, confidence)
        horizon[c] = curve.at(steps)
    escalated = np.isfinite(first_rows)
    ongoing = state_rows == ONGOING
    mean, half, count = mean_t_interval(rows("escalation_frequency"), confidence)
    years = round_months / MONTHS_PER_YEAR
    values = {
        "erosion_rounds": median, "erosion_rounds_low": low, "erosion_rounds_high": high,
        "erosion_years": median * years, "erosion_years_low": low * years,
        "erosion_years_high": high * years, "deterred_at_horizon": horizon,
        "defeated_share": (state_rows == DEFEATED).mean(axis=1),
        "settled_share": (state_rows == SETTLED).mean(axis=1),
        "ongoing_escalated_share": (ongoing & escalated).mean(axis=1),
        "ongoing_deterred_share": (ongoing & ~escalated).mean(axis=1),
        # a share: the interval is cut to [0, 1]
        "escalation_frequency_mean": mean,
        "escalation_frequency_low": np.clip(mean - half, 0.0, 1.0),
        "escalation_frequency_high": np.clip(mean + half, 0.0, 1.0),
        "runs": count.astype(np.float64),
    }
    data = {name: (dims, values[name].reshape(shape), STABILITY_VARIABLES[name])
            for name in STABILITY_VARIABLES}
    coords = {name: coord for name, coord in sim.coords.items()
              if set(coord.dims) <= set(dims)}
    return xr.Dataset(data, coords=coords, attrs={
        "title": "erosion time and end-state shares per format and point",
        "steps": steps, "round_months": round_months, "horizon_years": steps * years,
        "confidence": confidence})
