r"""Calibration of the resolve scales to published base rates (docs/calibration.md).

Each base rate of ``configs/calibration/base_rates.toml`` is a count: ``k`` of ``n`` cases
in which an event happened (allies honoured an invoked commitment; a challenger attacked).
The *reference crisis* (``configs/scenarios/validation/calibration_reference.toml`` under
the format ``configs/calibration/formats/defence_pact.toml``) maps it to one model quantity
``p(sigma)`` of the crisis game at the selected equilibria (docs/model.md §3), a function of
the one scale ``sigma`` the rate is fitted to. The fit is maximum likelihood with the
binomial likelihood of the count, in the manner of Signorino's (1999) strategic estimation
(the likelihood of the outcome is the equilibrium probability the game assigns to it)::

    l(theta) = k log p(e^theta) + (n - k) log(1 - p(e^theta)),     theta = log sigma

over ``theta`` in ``[log SCALE_BOUNDS[0], log SCALE_BOUNDS[1]]``. One rate per scale: the
rates are fitted in file order, each with the scales fitted before it held at their
estimates (the members' subgame does not depend on Russia's scale, so the guarantors' scale
comes first and the order loses nothing). The 95% interval is the profile-likelihood (here:
likelihood-ratio) interval ``{theta : 2 (l(theta_hat) - l(theta)) <= CHI2_95}``. A rate that
the quantity cannot reach at any scale in the bounds, or an interval that runs into a bound,
means the scale is *not identified* by that rate: the fit says so and ships no estimate.

Each result is a lognormal prior in the syntax of scenario files (median: the estimate;
sigma of log: the interval's larger half-width in log-scale over ``Z_95``). Parameters the data do
not identify keep their default as median with a wide prior (:data:`WIDE_PRIOR_FACTOR`).

Run ``python -m deterrence.analysis.calibration`` to print the fitted priors as TOML, or
``python -m deterrence.analysis.calibration configs/calibration/fitted.toml`` to write them.
"""

from __future__ import annotations

import math
import os
import sys
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from deterrence.game.config import (
    CONFIG_DIR,
    SCENARIOS_DIR,
    ConfigError,
    FormatSpec,
    GuarantorParameters,
    RussiaParameters,
    Scenario,
    load_format,
    load_scenario,
    read_toml,
)
from deterrence.game.payoffs import build_game
from deterrence.solve.equilibrium import solve_grid

CALIBRATION_DIR = CONFIG_DIR / "calibration"
#: The published base rates and the parameters they cannot identify.
BASE_RATES = CALIBRATION_DIR / "base_rates.toml"
#: The shipped result of :func:`fit_all` (:func:`priors_toml`).
FITTED = CALIBRATION_DIR / "fitted.toml"
REFERENCE_SCENARIO = SCENARIOS_DIR / "validation" / "calibration_reference.toml"
REFERENCE_FORMAT = CALIBRATION_DIR / "formats" / "defence_pact.toml"

#: Range searched for a scale, in its actor's utility units: from well below any margin of
#: the reference crisis (1e-4) to ten times Russia's war aims (10), where every choice is
#: close to a coin flip. An estimate or interval end at a bound is not identified.
SCALE_BOUNDS = (1e-4, 10.0)
#: 95% quantile of the chi-square distribution with one degree of freedom, and the
#: standard normal's 97.5% quantile: the likelihood-ratio and lognormal 95% intervals.
CHI2_95 = 3.841458820694124
Z_95 = 1.959963984540054
#: A scale the data do not identify keeps its default as the prior's median, with 95% of
#: the prior within this factor of it either way.
WIDE_PRIOR_FACTOR = 10.0
#: Relative tolerance on log-scales in the optimiser and the interval's root search.
LOG_SCALE_TOLERANCE = 1e-9
#: Distance (in log-scale) from a bound within which an estimate counts as at the bound.
AT_BOUND = 1e-6

#: Model quantities a base rate can measure: name -> (description, function of the
#: solution giving one value per cell).
QUANTITIES: dict[str, tuple[str, Callable[[Any], np.ndarray]]] = {
    "mean_credibility": ("P(a member honours | escalation), averaged over the members",
                         lambda sol: sol.mean_credibility),
    "escalation_probability": ("P(Russia escalates)", lambda sol: sol.escalation_probability),
}
#: The parameter paths a base rate can be fitted to, with their schema defaults.
SCALES = {"guarantors.*.resolve_scale": GuarantorParameters.model_fields["resolve_scale"],
          "russia.resolve_scale": RussiaParameters.model_fields["resolve_scale"]}
#: Where docs/calibration.md explains the fitted and the unidentified priors.
FITTED_SOURCE = "docs/calibration.md#fitted-values"
ASSUMED_SOURCE = "docs/calibration.md#not-identified"


class CalibrationError(ConfigError):
    """A base-rate file that cannot be used as it is."""


@dataclass(frozen=True)
class BaseRate:
    """One published rate and the model quantity it measures."""

    id: str
    parameter: str   # the scale it is fitted to
    quantity: str    # a key of QUANTITIES
    value: float     # the published share k / n
    n: int           # cases
    source: str      # anchor in docs/sources.md
    status: str      # checked / recalled

    @property
    def successes(self) -> float:
        """``k = value * n`` (a real number: the binomial likelihood does not need it whole)."""
        return self.value * self.n


@dataclass(frozen=True)
class Fit:
    """The maximum-likelihood scale for one rate and its 95% likelihood-ratio interval."""

    rate: BaseRate
    estimate: float
    low: float
    high: float
    loglik: float
    fitted_quantity: float  # p at the estimate

    @property
    def median(self) -> float:
        return self.estimate

    @property
    def sigma(self) -> float:
        """The lognormal prior's sigma of log: the larger of the interval's two half-widths
        in log-scale over Z_95, so that the prior's central 95% covers the interval (the
        likelihood is not symmetric in log-scale)."""
        centre = math.log(self.estimate)
        return max(centre - math.log(self.low), math.log(self.high) - centre) / Z_95


class NotIdentified(CalibrationError):
    """The rate does not identify its scale within SCALE_BOUNDS."""


def load_base_rates(path: str | Path = BASE_RATES) -> tuple[list[BaseRate], dict[str, str]]:
    """The rates to fit, and the scales left unfitted (path -> reason), from ``path``."""
    data = read_toml(Path(path))
    rates, seen = [], set()
    for i, entry in enumerate(data.get("rates", [])):
        where = f"{path}: rates.{i}"
        missing = [k for k in ("id", "parameter", "quantity", "value", "n", "source",
                               "status") if k not in entry]
        if missing:
            raise CalibrationError(f"{where}: missing key(s) {', '.join(missing)}")
        if entry["parameter"] not in SCALES:
            raise CalibrationError(f"{where}: key 'parameter' = {entry['parameter']!r}: "
                                   f"allowed: {', '.join(SCALES)}")
        if entry["parameter"] in seen:
            raise CalibrationError(f"{where}: key 'parameter' = {entry['parameter']!r}: "
                                   f"one rate per scale, and an earlier rate fits it")
        if entry["quantity"] not in QUANTITIES:
            raise CalibrationError(f"{where}: key 'quantity' = {entry['quantity']!r}: "
                                   f"allowed: {', '.join(QUANTITIES)}")
        value, n = entry["value"], entry["n"]
        if not isinstance(value, float | int) or not 0 < value < 1:
            raise CalibrationError(f"{where}: key 'value' = {value!r}: must be a share "
                                   f"strictly between 0 and 1")
        if not isinstance(n, int) or isinstance(n, bool) or n < 1:
            raise CalibrationError(f"{where}: key 'n' = {n!r}: must be a whole number >= 1")
        if entry["status"] not in ("checked", "recalled"):
            raise CalibrationError(f"{where}: key 'status' = {entry['status']!r}: allowed: "
                                   f"checked, recalled")
        seen.add(entry["parameter"])
        rates.append(BaseRate(id=entry["id"], parameter=entry["parameter"],
                              quantity=entry["quantity"], value=float(value), n=n,
                              source=entry["source"], status=entry["status"]))
    unfitted = {}
    for i, entry in enumerate(data.get("not_identified", [])):
        where = f"{path}: not_identified.{i}"
        if entry.get("parameter") not in SCALES:
            raise CalibrationError(f"{where}: key 'parameter' = {entry.get('parameter')!r}: "
                                   f"allowed: {', '.join(SCALES)}")
        if entry["parameter"] in seen:
            raise CalibrationError(f"{where}: key 'parameter' = {entry['parameter']!r}: "
                                   f"a rate fits it")
        unfitted[entry["parameter"]] = str(entry.get("reason", ""))
    return rates, unfitted


def reference_crisis() -> tuple[Scenario, FormatSpec]:
    """The reference crisis: its scenario and the format that stands for a defence pact."""
    return load_scenario(REFERENCE_SCENARIO), load_format(REFERENCE_FORMAT)


def model_quantity(scenario: Scenario, fmt: FormatSpec, quantity: str, path: str,
                   scales: np.ndarray, fixed: Mapping[str, float] | None = None) -> np.ndarray:
    """``quantity`` at the selected equilibria with ``path`` set to each of ``scales``
    (one cell each) and the scales of ``fixed`` held."""
    overrides: dict[str, Any] = {k: np.full(np.shape(scales), v)
                                 for k, v in (fixed or {}).items()}
    overrides[path] = np.asarray(scales, dtype=np.float64)
    return QUANTITIES[quantity][1](solve_grid(build_game(scenario, fmt, overrides), threads=1))


def log_likelihood(p: np.ndarray, k: float, n: int) -> np.ndarray:
    """Binomial log-likelihood of ``k`` of ``n`` at probability ``p`` (constant dropped)."""
    p = np.clip(p, 1e-300, 1.0 - 1e-16)
    return k * np.log(p) + (n - k) * np.log1p(-p)


def fit_rate(rate: BaseRate, scenario: Scenario, fmt: FormatSpec,
             fixed: Mapping[str, float] | None = None, k: float | None = None,
             n: int | None = None) -> Fit:
    """:class:`Fit` of ``rate`` (or of the count ``k`` of ``n`` in its place: synthetic
    data); raises :class:`NotIdentified` when the scale is not identified."""
    from scipy.optimize import brentq, minimize_scalar

    k = rate.successes if k is None else k
    n = rate.n if n is None else n

    def p(theta: float) -> float:
        return float(model_quantity(scenario, fmt, rate.quantity, rate.parameter,
                                    np.array([math.exp(theta)]), fixed)[0])

    def loglik(theta: float) -> float:
        return float(log_likelihood(np.array([p(theta)]), k, n)[0])

    lo, hi = (math.log(b) for b in SCALE_BOUNDS)
    ends = (p(lo), p(hi))
    share = k / n
    if not min(ends) < share < max(ends):
        raise NotIdentified(
            f"{rate.id}: {rate.quantity} = {share:.4g} is outside what "
            f"{rate.parameter} in [{SCALE_BOUNDS[0]:g}, {SCALE_BOUNDS[1]:g}] gives in the "
            f"reference crisis ({min(ends):.4g} to {max(ends):.4g}): not identified")
    best = minimize_scalar(lambda t: -loglik(t), bounds=(lo, hi), method="bounded",
                           options={"xatol": LOG_SCALE_TOLERANCE})
    theta = float(best.x)
    peak = -float(best.fun)
    if min(theta - lo, hi - theta) < AT_BOUND:
        raise NotIdentified(f"{rate.id}: the likelihood peaks at the bound "
                            f"{math.exp(theta):.4g} of {rate.parameter}: not identified")

    def drop(t: float) -> float:
        return 2.0 * (peak - loglik(t)) - CHI2_95

    ends_theta = []
    for bound in (lo, hi):
        if drop(bound) <= 0:
            raise NotIdentified(f"{rate.id}: the 95% likelihood interval of "
                                f"{rate.parameter} reaches the bound {math.exp(bound):g}: "
                                f"not identified on that side")
        ends_theta.append(brentq(drop, min(bound, theta), max(bound, theta),
                                 xtol=LOG_SCALE_TOLERANCE))
    return Fit(rate=rate, estimate=math.exp(theta), low=math.exp(ends_theta[0]),
               high=math.exp(ends_theta[1]), loglik=peak, fitted_quantity=p(theta))


def fit_all(path: str | Path = BASE_RATES) -> tuple[list[Fit], dict[str, str]]:
    """Every rate of ``path`` fitted in file order (earlier estimates held), and the scales
    left unfitted with their reasons (a rate that does not identify its scale joins them)."""
    rates, unfitted = load_base_rates(path)
    scenario, fmt = reference_crisis()
    fits, fixed = [], {}
    for rate in rates:
        try:
            fit = fit_rate(rate, scenario, fmt, fixed)
        except NotIdentified as exc:
            unfitted[rate.parameter] = str(exc)
            continue
        fits.append(fit)
        fixed[rate.parameter] = fit.estimate
    return fits, unfitted


def wide_prior(path: str) -> tuple[float, float]:
    """(median, sigma of log) of the prior of a scale the data do not identify."""
    return float(SCALES[path].default), math.log(WIDE_PRIOR_FACTOR) / Z_95


def priors_toml(fits: list[Fit], unfitted: Mapping[str, str]) -> str:
    """The priors as TOML: ``[priors]`` maps each parameter path to a lognormal table in the
    syntax of scenario files; ``[fits]`` records each fit (data, estimate, interval)."""
    lines = ["# Priors of the resolve scales fitted to published base rates",
             "# (docs/calibration.md). Written by `python -m deterrence.analysis.calibration "
             "configs/calibration/fitted.toml`;",
             "# tests/test_calibration.py checks that a re-run gives these numbers.", "",
             "[priors]"]
    for fit in fits:
        lines.append(f'"{fit.rate.parameter}" = {{ distribution = "lognormal", '
                     f"median = {fit.median!r}, sigma = {fit.sigma!r}, "
                     f'source = "{FITTED_SOURCE}" }}')
    for path in unfitted:
        median, sigma = wide_prior(path)
        lines.append(f'"{path}" = {{ distribution = "lognormal", median = {median!r}, '
                     f'sigma = {sigma!r}, source = "{ASSUMED_SOURCE}" }}')
    for fit in fits:
        lines += ["", f'[fits."{fit.rate.parameter}"]', f'rate = "{fit.rate.id}"',
                  f'quantity = "{fit.rate.quantity}"', f"value = {fit.rate.value!r}",
                  f"n = {fit.rate.n}", f"estimate = {fit.estimate!r}",
                  f"interval_95 = [{fit.low!r}, {fit.high!r}]",
                  f"fitted_quantity = {fit.fitted_quantity!r}",
                  f"log_likelihood = {fit.loglik!r}"]
    return "\n".join(lines) + "\n"


def write_atomically(text: str, path: str | Path) -> None:
    """Write ``text`` to ``path`` through a temporary file in the same folder, renamed into
    place: never half-written."""
    path = Path(path)
    with tempfile.NamedTemporaryFile("w", dir=path.parent, prefix=f".{path.name}.",
                                     delete=False, encoding="utf-8") as tmp:
        tmp.write(text)
    os.replace(tmp.name, path)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) > 1:
        print("usage: python -m deterrence.analysis.calibration [OUTPUT.toml]",
              file=sys.stderr)
        return 2
    try:
        text = priors_toml(*fit_all())
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if argv:
        write_atomically(text, argv[0])
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
