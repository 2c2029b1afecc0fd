"""Configuration schema: scenarios (actors and their attributes) and guarantee formats.

Every model parameter is declared once, here, with a self-explaining name, a unit, a
default and a source (a public reference, or the word "assumption"). The values used in
studies live in ``configs/``, shipped as package data (:data:`CONFIG_DIR`); the defaults
below are what a file may leave out.

Files are TOML. Unknown keys, wrong types and out-of-range values raise
:class:`ConfigError`, whose message names the file, the key, the value and what is allowed.
Every number has finite limits (NaN and infinity are refused): each lies far beyond any
value the quantity takes in the world, and the model computes finite results for every
value inside them (tests/test_schema_bounds.py).
"""

from __future__ import annotations

import importlib.util
import math
import os
import stat
import tomllib
from importlib.resources import files
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, model_validator
from pydantic.fields import FieldInfo

#: The package's data: the repository's configs/ and dashboard/ folders, which the package
#: holds as deterrence/configs and deterrence/dashboard (links in the repository, copies in
#: a wheel). pip installs packages unpacked, so this is a folder on disk.
PACKAGE_DATA = Path(str(files("deterrence")))
#: The bundled configuration: the format catalogue, example scenarios and sweeps.
CONFIG_DIR = PACKAGE_DATA / "configs"
FORMATS_DIR = CONFIG_DIR / "formats"
SCENARIOS_DIR = CONFIG_DIR / "scenarios"
SWEEPS_DIR = CONFIG_DIR / "sweeps"
#: The Streamlit script that ``deterrence dashboard`` runs.
DASHBOARD_APP = PACKAGE_DATA / "dashboard" / "app.py"
#: Where a bundled file of each kind is looked up by name (:func:`locate`).
BUNDLED = {"scenario": SCENARIOS_DIR, "sweep": SWEEPS_DIR}

#: Largest configuration file read (scenario, sweep, format): far above any real one (the
#: bundled files are under 10 KiB), small enough to parse in a second.
MAX_CONFIG_BYTES = 16 * 2**20

# Limits of the numbers (each the largest value accepted):
#: military expenditure or aid, USD bn a year: USD 100 trillion, about 37 times the world's
#: military expenditure in 2024 (USD 2,718 bn, SIPRI, docs/sources.md#sipri-2024).
MAX_SPENDING_USD_BN = 1e5
#: The smallest spending, GDP, value of war aims and duration accepted: USD 1 million a
#: year, USD 1 million, a millionth of the utility unit, a minute. Smaller positive numbers
#: (down to 5e-324) are no quantity of the world, and their ratios overflow.
MIN_SPENDING_USD_BN, MIN_GDP_USD_TN, MIN_UTILITY, MIN_DAYS = 1e-3, 1e-6, 1e-6, 1.0 / 1440
#: GDP, USD tn: about 90 times the world's GDP in 2024 (about USD 110 tn, IMF WEO).
MAX_GDP_USD_TN = 1e4
#: a cost or stake in utility units: a hundred times the unit of the scale (Russia's war
#: aims; a guarantor's stake is 1 by default) and ten times the default catastrophe cost.
MAX_UTILITY = 100.0
#: a duration in days: ten years.
MAX_DAYS = 3650.0
#: evidence in pseudo-observations (a prior's weight, a signal per round): a million
#: observed responses, more than any history holds.
MAX_PSEUDO_OBSERVATIONS = 1e6
#: the smallest prior weight, in pseudo-observations: a thousandth of an observation (a
#: weight of 0 is no prior, and the belief of a guarantor never observed is undefined).
MIN_PRIOR_STRENGTH = 1e-3
#: a shock's cost factor lies in [1 / MAX_COST_FACTOR, MAX_COST_FACTOR], and the factors
#: above 1 that reach one guarantor multiply to at most MAX_COST_FACTOR: its honouring cost
#: changes at most a hundredfold over a run.
MAX_COST_FACTOR = 100.0
#: Seeds are integers in [0, MAX_SEED]: what a signed 64-bit integer holds, the range of
#: numpy's and NetCDF-4's int64 and of JSON readers that parse integers as int64 (the
#: random key derived from a seed through SeedSequence takes any size; the archive stores
#: it as text).
MAX_SEED = 2**63 - 1
#: the smallest scale of a private component (resolve, cost type), in utility units: a
#: millionth of the unit; 0 would be complete information, where equilibria are not
#: isolated fixed points of the threshold map.
MIN_RESOLVE_SCALE = 1e-6
#: a crisis round lasts between a day and ten years.
MIN_ROUND_MONTHS, MAX_ROUND_MONTHS = 12.0 / 365.25, 120.0
#: the longest horizon: the engines' counters allow 2^20 rounds.
MAX_HORIZON_ROUNDS = 1 << 20
#: the half-life of a type's correlation lies between a day and ten million years (the
#: latter is a type that never drifts in any horizon the engines allow).
MIN_HALF_LIFE_YEARS, MAX_HALF_LIFE_YEARS = 1.0 / 365.25, 1e7
#: decision noise at most ten times the resolve scale: beyond, choices are coin flips.
MAX_NOISE_SHARE = 10.0

UTILITY_RUSSIA = "Russia's utility (achieving its war aims is worth 1 at the defaults)"
UTILITY_GUARANTOR = "guarantor's utility (Ukraine's defeat = loss of its stake)"


class ConfigError(ValueError):
    """A configuration file or value is invalid. The message is meant for the user."""


#: The value of a :class:`KeyProblem` that names a key and not its value (a table).
NO_VALUE = object()


class KeyProblem(ValueError):
    """Raised by a model's validator: the value at ``key`` (dotted, relative to the model;
    list entries by index) is not allowed, for the reason ``message``. :func:`validate`
    names that key and value, not the whole table."""

    def __init__(self, key: str, value: Any, message: str) -> None:
        super().__init__(message)
        self.key, self.value = key, value


class MissingExtra(ConfigError):
    """An optional dependency is not installed; the message names the extra that adds it."""


def require_extra(module: str, extra: str, purpose: str) -> None:
    """Raise :class:`MissingExtra` unless the top-level package ``module``, which the extra
    ``extra`` of deterrence installs, is installed (looked up without importing it)."""
    if importlib.util.find_spec(module) is None:
        raise MissingExtra(f"{purpose} needs {module}, which is not installed: "
                           f'pip install "deterrence[{extra}]" adds it')


def bundled_names(kind: str) -> list[str]:
    """The bundled files of ``kind`` ("scenario" or "sweep"), by name: the path under its
    folder without ``.toml`` (``baseline``, ``validation/baltic_efp``)."""
    folder = BUNDLED[kind]
    return sorted(p.relative_to(folder).with_suffix("").as_posix()
                  for p in folder.rglob("*.toml"))


def locate(path: str | Path, kind: str, base: Path | None = None) -> Path:
    """The file ``path`` (relative to ``base`` if given) if it exists, else the bundled file
    of ``kind`` ("scenario" or "sweep") with that name (``baseline`` or ``baseline.toml``)."""
    given = Path(path)
    candidate = base / given if base is not None else given
    try:
        found = candidate.exists()
    except OSError as exc:  # e.g. a name too long for the file system
        raise ConfigError(f"{candidate}: cannot be read ({exc.strerror or exc})") from None
    if found:
        return candidate
    names = bundled_names(kind)
    name = given.as_posix().removesuffix(".toml")
    if name in names:
        return BUNDLED[kind] / f"{name}.toml"
    raise ConfigError(f"{candidate}: file not found, and {str(given)!r} is not the name of a "
                      f"bundled {kind} (bundled: {', '.join(names)})")


def parameter(default: Any = ..., *, unit: str, source: str, description: str, **limits: Any):
    """A model parameter: a pydantic field that carries its unit and source."""
    return Field(
        default,
        description=description,
        json_schema_extra={"unit": unit, "source": source},
        **limits,
    )


class Strict(BaseModel):
    """The base of every configuration model: unknown keys, other types than declared, NaN
    and infinity are errors, and a loaded model does not change."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, allow_inf_nan=False)


#: The distributions a parameter may be given as, and the keys each takes (beyond
#: ``distribution`` and ``source``): required, optional.
DISTRIBUTION_KEYS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "uniform": (("low", "high"), ()),
    "triangular": (("low", "mode", "high"), ()),
    "normal": (("mean", "sd"), ("low", "high")),
    "lognormal": (("median", "sigma"), ("low", "high")),
    "beta": (("alpha", "beta"), ("low", "high")),
}
#: Least probability a truncated normal or lognormal must keep within its parameter's
#: limits: below it the truncation is the distribution, and its quantiles lose precision.
MIN_TRUNCATED_MASS = 1e-9
#: Where the quantile function is evaluated at most: a unit-cube point is kept this far
#: from 0 and 1, so every quantile is finite.
QUANTILE_EDGE = 2.0 ** -53


class Distribution(Strict):
    """An uncertain parameter: a distribution in place of a number (docs/analysis.md,
    "Uncertainty").

    ``normal`` and ``lognormal`` (``sigma``: the standard deviation of the logarithm) are
    truncated to the parameter's limits and to ``low`` / ``high`` if given; ``beta`` lies on
    [``low``, ``high``] (default [0, 1]). Where no uncertainty is sampled the parameter
    takes the distribution's median."""

    distribution: Literal[tuple(DISTRIBUTION_KEYS)] = Field(
        ..., description="uniform, triangular, normal, lognormal or beta.")
    source: str = Field("assumption", min_length=1,
                        description="docs/sources.md anchor, or the word assumption.")
    low: float | None = None
    high: float | None = None
    mode: float | None = None
    mean: float | None = None
    sd: float | None = Field(None, gt=0)
    median: float | None = Field(None, gt=0)
    sigma: float | None = Field(None, gt=0)
    alpha: float | None = Field(None, gt=0)
    beta: float | None = Field(None, gt=0)

    @model_validator(mode="after")
    def _keys_of_kind(self) -> Distribution:
        required, optional = DISTRIBUTION_KEYS[self.distribution]
        given = {k for k in ("low", "high", "mode", "mean", "sd", "median", "sigma", "alpha",
                             "beta") if getattr(self, k) is not None}
        missing = [k for k in required if k not in given]
        if missing:
            raise KeyProblem(missing[0], NO_VALUE,
                             f"a {self.distribution} distribution needs "
                             f"{', '.join(required)}")
        extra = sorted(given - set(required) - set(optional))
        if extra:
            raise KeyProblem(extra[0], getattr(self, extra[0]),
                             f"not a key of a {self.distribution} distribution; its keys: "
                             f"{', '.join(required + optional)}")
        low = self.low if self.low is not None else -math.inf
        high = self.high if self.high is not None else math.inf
        if self.distribution == "beta":
            low, high = (0.0 if self.low is None else low), (1.0 if self.high is None else high)
        if not low < high:
            raise KeyProblem("high", self.high, f"must be above low = {self.low}")
        if self.mode is not None and not low <= self.mode <= high:
            raise KeyProblem("mode", self.mode, f"must lie in [low, high] = [{low}, {high}]")
        if self.distribution == "lognormal" and self.low is not None and self.low < 0:
            raise KeyProblem("low", self.low, "a lognormal lies above 0: low must be >= 0")
        return self

    def support(self, lower: float = -math.inf, upper: float = math.inf) -> tuple[float, float]:
        """The interval the distribution lies on, truncated to [``lower``, ``upper``] (the
        parameter's limits) for normal and lognormal."""
        low = -math.inf if self.low is None else self.low
        high = math.inf if self.high is None else self.high
        if self.distribution == "beta":
            return (0.0 if self.low is None else low), (1.0 if self.high is None else high)
        if self.distribution in ("normal", "lognormal"):
            low, high = max(low, lower), min(high, upper)
            if self.distribution == "lognormal":
                low = max(low, 0.0)
        return low, high

    def quantile(self, u, lower: float = -math.inf, upper: float = math.inf):
        """The quantile function at ``u`` in (0, 1) (an array), truncated to [``lower``,
        ``upper``] for normal and lognormal."""
        import numpy as np
        from scipy import stats

        u = np.clip(np.asarray(u, dtype=np.float64), QUANTILE_EDGE, 1.0 - QUANTILE_EDGE)
        low, high = self.support(lower, upper)
        kind = self.distribution
        if kind == "uniform":
            return low + u * (high - low)
        if kind == "triangular":
            return stats.triang.ppf(u, (self.mode - low) / (high - low), loc=low,
                                    scale=high - low)
        if kind == "beta":
            return low + (high - low) * stats.beta.ppf(u, self.alpha, self.beta)
        if kind == "normal":
            centre, scale = self.mean, self.sd
        else:  # lognormal: a truncated normal of the logarithm
            centre, scale = math.log(self.median), self.sigma
            with np.errstate(divide="ignore"):
                low, high = np.log(low), np.log(high)
        a, b = (low - centre) / scale, (high - centre) / scale
        x = stats.truncnorm.ppf(u, a, b, loc=centre, scale=scale)
        return x if kind == "normal" else np.exp(x)

    def truncated_mass(self, lower: float = -math.inf, upper: float = math.inf) -> float:
        """The probability the untruncated normal or lognormal puts on its support (1 for
        the other kinds)."""
        from scipy import stats

        if self.distribution not in ("normal", "lognormal"):
            return 1.0
        low, high = self.support(lower, upper)
        if self.distribution == "normal":
            centre, scale = self.mean, self.sd
        else:
            centre, scale = math.log(self.median), self.sigma
            low = -math.inf if low <= 0 else math.log(low)
            high = math.log(high) if high < math.inf else math.inf
        return float(stats.norm.cdf((high - centre) / scale)
                     - stats.norm.cdf((low - centre) / scale))

    def point(self, lower: float = -math.inf, upper: float = math.inf) -> float:
        """The median: the value used where no uncertainty is sampled."""
        return float(self.quantile(0.5, lower, upper))


def limit_interval(info: FieldInfo) -> tuple[float, float]:
    """The closed interval a field's limits allow (strict limits as closed: the quantile
    function keeps the strict side, :func:`check_distribution`)."""
    lower, upper = -math.inf, math.inf
    for name, bound in limits_of(info):
        if name in ("gt", "ge"):
            lower = max(lower, bound)
        else:
            upper = min(upper, bound)
    return lower, upper


def check_distribution(dist: Distribution, info: FieldInfo) -> None:
    """Raise KeyProblem unless ``dist`` lies within the limits of the field ``info``: a
    uniform, triangular or beta support inside them; a truncated normal or lognormal (cut to
    them) keeping at least :data:`MIN_TRUNCATED_MASS` of its probability."""
    lower, upper = limit_interval(info)
    low, high = dist.support(lower, upper)
    limits = describe_limits(info)
    if dist.distribution in ("normal", "lognormal"):
        mass = dist.truncated_mass(lower, upper) if low < high else 0.0
        if mass < MIN_TRUNCATED_MASS:
            raise KeyProblem("", NO_VALUE, f"the {dist.distribution} distribution puts "
                                           f"{mass:.3g} of its probability where the "
                                           f"parameter is allowed ({limits}); at least "
                                           f"{MIN_TRUNCATED_MASS:g} needed")
        return
    keeps = {"gt": low > lower, "ge": low >= lower, "lt": high < upper, "le": high <= upper}
    if not all(keeps[name] for name, _ in limits_of(info)):
        raise KeyProblem("", NO_VALUE, f"the {dist.distribution} distribution lies on "
                                       f"[{low:g}, {high:g}]; the parameter must be {limits}")


class RussiaParameters(Strict):
    military_spending_usd_bn: float = parameter(
        149.0, ge=MIN_SPENDING_USD_BN, le=MAX_SPENDING_USD_BN, unit="USD bn per year (2024)",
        source="SIPRI Fact Sheet, April 2025 (2024 military expenditure), "
               "docs/sources.md#sipri-2024",
        description="Russia's military expenditure; its strength in the denial contest.")
    war_aims_value: float = parameter(
        1.0, ge=MIN_UTILITY, le=MAX_UTILITY, unit=UTILITY_RUSSIA,
        source="assumption: the unit of Russia's utility scale",
        description="Value to Russia of an offensive that achieves its war aims.")
    status_quo_value: float = parameter(
        0.4, ge=-MAX_UTILITY, le=MAX_UTILITY, unit=UTILITY_RUSSIA, source="assumption",
        description="Value to Russia of keeping the ceasefire line (below the value of a "
                    "failed war if Russia finds the line intolerable).")
    failed_war_value: float = parameter(
        0.3, ge=-MAX_UTILITY, le=MAX_UTILITY, unit=UTILITY_RUSSIA,
        source="assumption (a failed war has its own payoff: Zagare & Kilgour 2000, "
               "docs/sources.md#zagare-kilgour-2000)",
        description="Value to Russia of an offensive that fails, before the war's cost, "
                    "sanctions and nuclear risk.")
    resolve_scale: float = parameter(
        0.1, ge=MIN_RESOLVE_SCALE, le=MAX_UTILITY, unit=UTILITY_RUSSIA,
        source="form: private resolve (Harsanyi 1973; Fearon 1997), "
               "docs/sources.md#harsanyi-1973; value: assumption",
        description="Scale of the logistic private component of Russia's net value of war, "
                    "known to Russia alone: the larger, the less Russia's choice follows "
                    "from the public payoffs.")
    war_cost: float = parameter(
        0.2, ge=0, le=MAX_UTILITY, unit=UTILITY_RUSSIA, source="assumption",
        description="Cost to Russia of renewing the offensive, whatever the outcome.")
    sanctions_cost: float = parameter(
        0.3, ge=0, le=MAX_UTILITY, unit=UTILITY_RUSSIA, source="assumption",
        description="Cost of new sanctions imposed by states whose GDP adds up to "
                    "sanctions_reference_gdp_usd_tn; each honouring member imposes its "
                    "share of that reference.")
    sanctions_reference_gdp_usd_tn: float = parameter(
        45.96, ge=MIN_GDP_USD_TN, le=MAX_GDP_USD_TN, unit="USD tn (2024)",
        source="assumption: the combined GDP of the baseline's eight guarantors "
               "(docs/sources.md#imf-weo-2024)",
        description="GDP of the sanctioning states at which the sanctions cost is "
                    "sanctions_cost: a fixed reference, so a bystander changes nothing.")
    catastrophe_cost: float = parameter(
        10.0, ge=0, le=MAX_UTILITY, unit=UTILITY_RUSSIA, source="assumption",
        description="Cost to Russia of a nuclear catastrophe.")
    foreign_troops_aversion: float = parameter(
        0.1, ge=0, le=MAX_UTILITY, unit=UTILITY_RUSSIA,
        source="direction: Moscow rejects foreign troops in Ukraine (August 2025 reporting, "
               "docs/sources.md#reporting-2025); size: assumption",
        description="Loss of status-quo value to Russia while foreign troops are stationed in "
                    "Ukraine (provocation, Jervis' spiral, docs/sources.md#jervis-1976).")
    fait_accompli_days: float = parameter(
        14.0, ge=MIN_DAYS, le=MAX_DAYS, unit="days", source="assumption",
        description="Characteristic time in which an offensive creates facts on the ground; "
                    "a response delayed by d days keeps exp(-d / fait_accompli_days) of its "
                    "effect.")
    nuclear_escalation_probability: float = parameter(
        0.02, ge=0, lt=1, unit="probability per nuclear-armed guarantor in direct combat",
        source="assumption",
        description="Chance that direct combat between Russia and a nuclear-armed guarantor "
                    "escalates to nuclear use.")


class UkraineParameters(Strict):
    military_spending_usd_bn: float = parameter(
        64.7, ge=MIN_SPENDING_USD_BN, le=MAX_SPENDING_USD_BN, unit="USD bn per year (2024)",
        source="SIPRI Fact Sheet, April 2025 (2024 military expenditure), "
               "docs/sources.md#sipri-2024",
        description="Ukraine's own military expenditure.")
    baseline_military_aid_usd_bn: float = parameter(
        45.0, ge=0, le=MAX_SPENDING_USD_BN, unit="USD bn per year",
        source="Kiel Ukraine Support Tracker: military allocations averaged EUR 41.6 bn a "
               "year in 2022-24, docs/sources.md#kiel-ust (converted at about 1.08 USD/EUR, "
               "assumption)",
        description="Military aid Ukraine receives whatever the format; adds to its "
                    "capability in the denial contest.")


class GuarantorParameters(Strict):
    id: str = Field(..., pattern=r"^[A-Za-z][A-Za-z0-9_]*$",
                    description="Short identifier used in formats and parameter paths.")
    name: str = Field(..., min_length=1, description="Display name.")
    military_spending_usd_bn: float = parameter(
        ..., ge=MIN_SPENDING_USD_BN, le=MAX_SPENDING_USD_BN, unit="USD bn per year (2024)",
        source="SIPRI (see scenario file; docs/sources.md#sipri-2024)",
        description="Military expenditure; what a combat response can bring to bear.")
    gdp_usd_tn: float = parameter(
        ..., ge=MIN_GDP_USD_TN, le=MAX_GDP_USD_TN, unit="USD tn (2024)",
        source="IMF World Economic Outlook (see scenario file; docs/sources.md#imf-weo-2024)",
        description="Economic weight; sets the guarantor's share of the sanctions cost.")
    nuclear_armed: bool = parameter(
        False, unit="yes/no", source="public record",
        description="Whether direct combat with this guarantor carries nuclear risk.")
    stake_in_ukraine: float = parameter(
        1.0, ge=0, le=MAX_UTILITY, unit=UTILITY_GUARANTOR, source="assumption",
        description="What the guarantor loses if Russia's offensive succeeds.")
    honouring_cost: float = parameter(
        0.3, ge=0, le=MAX_UTILITY, unit=UTILITY_GUARANTOR, source="assumption",
        description="Cost of honouring with a full response (cost share 1); a format's "
                    "response scales it.")
    audience_cost: float = parameter(
        0.3, ge=0, le=MAX_UTILITY, unit=UTILITY_GUARANTOR,
        source="Fearon (1994, 1997) tying hands; Tomz (2007) shows audience costs exist "
               "(docs/sources.md#fearon-1994, #fearon-1997, #tomz-2007); size: assumption",
        description="Cost of reneging on a fully binding commitment (bindingness 1).")
    resolve_scale: float = parameter(
        0.003988, ge=MIN_RESOLVE_SCALE, le=MAX_UTILITY, unit=UTILITY_GUARANTOR,
        source="form: private costs of honouring (Harsanyi 1973; Fearon 1997), "
               "docs/sources.md#harsanyi-1973; value: fitted to the 74.5% of invoked "
               "alliance commitments honoured (Leeds, Long & Mitchell 2000), "
               "docs/calibration.md#fitted-values (its prior: configs/calibration/"
               "fitted.toml)",
        description="Scale of the logistic private component of the guarantor's net cost "
                    "of honouring, known to the guarantor alone: the larger, the less its "
                    "response follows from the public payoffs.")
    catastrophe_cost: float = parameter(
        10.0, ge=0, le=MAX_UTILITY, unit=UTILITY_GUARANTOR, source="assumption",
        description="Cost to the guarantor of a nuclear catastrophe.")
    readiness_cost: float = parameter(
        0.02, ge=0, le=MAX_UTILITY, unit=f"{UTILITY_GUARANTOR} per crisis round",
        source="assumption",
        description="Peacetime cost of keeping a credible response ready (forces on standby, "
                    "exercises, stocks), paid each round by a guarantor whose policy is to "
                    "honour. It is sunk once Russia escalates, so it does not enter the "
                    "crisis equilibrium; it drives the learning dynamics.")


class AnalysisParameters(Strict):
    deterred_below_escalation_probability: float = parameter(
        0.5, gt=0, lt=1, unit="probability", source="assumption",
        description="A cell counts as deterred when Russia escalates with a probability "
                    "below this value.")
    defended_below_russia_success: float = parameter(
        0.5, gt=0, lt=1, unit="probability", source="assumption",
        description="An escalation counts as defended when the expected response leaves "
                    "Russia's chance of success below this value, otherwise as abandoned.")


class DynamicsParameters(Strict):
    """How the repeated crisis unfolds: time, types, beliefs, learning, stocks and the
    consequences of war (the simulations, docs/model.md#4-the-repeated-crisis)."""

    round_months: float = parameter(
        1.0, ge=MIN_ROUND_MONTHS, le=MAX_ROUND_MONTHS, unit="months per round",
        source="assumption: a crisis round is a month, the pace of the decisions "
               "(force posture, aid packages) the rounds stand for",
        description="Length of one crisis round: turns rounds into years in rates and "
                    "times, and sets how far types drift per round.")
    horizon_rounds: int = parameter(
        120, ge=1, le=MAX_HORIZON_ROUNDS, unit="rounds", source="assumption: ten years of "
        "monthly rounds, the span of the guarantees under discussion",
        description="Rounds a simulation of the scenario runs unless told otherwise.")
    type_half_life_years: float = parameter(
        5.0, ge=MIN_HALF_LIFE_YEARS, le=MAX_HALF_LIFE_YEARS, unit="years",
        source="assumption: resolve changes with leaders and circumstances over years, "
               "not months",
        description="Private types (Russia's value of war, each member's cost of "
                    "honouring) persist over a run and drift: the correlation of an "
                    "actor's type across this many years is 1/2 (a latent Gaussian AR(1); "
                    "every round's type has the crisis game's logistic distribution).")
    decision_noise_share: float = parameter(
        0.0, ge=0, le=MAX_NOISE_SHARE, unit="share of the actor's resolve scale",
        source="assumption: 0, because the private types already carry every "
               "unobserved reason to act; a calibration may set it",
        description="Scale of a fresh logistic tremble in every decision, as a share of "
                    "the actor's resolve_scale (0: actors act on their type).")
    belief_prior_strength: float = parameter(
        4.0, ge=MIN_PRIOR_STRENGTH, le=MAX_PSEUDO_OBSERVATIONS, unit="pseudo-observations",
        source="assumption",
        description="Weight of Russia's prior about each member, in observed responses. "
                    "The prior's mean is the member's honouring probability in the "
                    "crisis game's equilibrium, so it reads the commitment.")
    belief_memory: float = parameter(
        0.95, ge=0, le=1, unit="share kept per round", source="assumption",
        description="Forgetting: each round, the evidence beyond the prior shrinks by this "
                    "factor, so reputations decay (Renshon, Dafoe & Huth on reputation, "
                    "docs/sources.md#renshon-dafoe-huth-2018).")
    attraction_decay: float = parameter(
        0.9, ge=0, le=1, unit="share kept per round",
        source="Camerer & Ho (1999) estimate phi around 0.8-1, "
               "docs/sources.md#camerer-ho-1999",
        description="EWA's phi: how much of its past attractions a member keeps each "
                    "round.")
    experience_decay: float = parameter(
        0.9, ge=0, le=1, unit="share kept per round",
        source="Camerer & Ho (1999): rho between 0 and phi, "
               "docs/sources.md#camerer-ho-1999; value: assumption (rho = phi, the "
               "weighted fictitious play case, keeps attractions averages of payoffs)",
        description="EWA's rho: how much of its experience weight N a member keeps each "
                    "round.")
    foregone_payoff_weight: float = parameter(
        0.5, ge=0, le=1, unit="weight",
        source="Camerer & Ho (1999) estimate delta around 0.5, "
               "docs/sources.md#camerer-ho-1999",
        description="EWA's delta: weight of the payoff the strategy not played would have "
                    "brought, relative to the one played.")
    initial_experience: float = parameter(
        1.0, ge=0, le=MAX_PSEUDO_OBSERVATIONS, unit="rounds of experience",
        source="assumption (EWA's N(0))",
        description="Experience weight of a member's initial attractions, in rounds.")
    ukraine_recovery_rate: float = parameter(
        0.1, ge=0, le=1, unit="share of the gap closed per round", source="assumption",
        description="Ukraine's capability returns towards its baseline (depreciation of "
                    "emergency aid, recovery from damage).")
    aid_persistence: float = parameter(
        0.5, ge=0, le=1, unit="share of the response's capability", source="assumption",
        description="Share of the capability an honouring response adds that stays with "
                    "Ukraine after the round.")
    war_damage: float = parameter(
        0.1, ge=0, le=1, unit="share of capability lost per escalation", source="assumption",
        description="Capability each side loses in a round of fighting.")
    russia_regeneration_rate: float = parameter(
        0.05, ge=0, le=1, unit="share of the gap closed per round", source="assumption",
        description="Russia's capability returns towards its baseline, less the drag of "
                    "sanctions.")
    sanctions_decay: float = parameter(
        0.05, ge=0, le=1, unit="share lost per round", source="assumption",
        description="Decay of the accumulated sanctions stock.")
    sanctions_drag: float = parameter(
        0.2, ge=0, le=1, unit="share of Russia's baseline capability per unit of stock",
        source="assumption",
        description="How far the sanctions stock lowers the capability Russia regenerates "
                    "towards (capped at the whole baseline).")
    war_aims_gain_per_success: float = parameter(
        0.25, ge=0, le=1, unit="share of the war aims not yet achieved",
        source="assumption",
        description="What a successful offensive achieves: Russia's status quo moves this "
                    "share of the way to its war aims, and Ukraine loses this share of its "
                    "capability and of the baseline it recovers towards.")
    defeat_at_war_aims_share: float = parameter(
        0.5, gt=0, le=1, unit="share of the war aims",
        source="assumption",
        description="Ukraine is defeated (the run ends) once Russia has achieved this "
                    "share of its war aims.")
    settlement_probability_after_failure: float = parameter(
        0.2, ge=0, le=1, unit="probability per failed offensive", source="assumption",
        description="Chance that a failed offensive ends in a settlement (the run ends).")

    @model_validator(mode="after")
    def _stocks_stay_positive(self) -> DynamicsParameters:
        # a side's capability after a round of fighting is (1 - rate - war_damage) times
        # its old one plus non-negative terms: with a larger sum it could turn negative
        for rate in ("ukraine_recovery_rate", "russia_regeneration_rate"):
            total = getattr(self, rate) + self.war_damage
            if total > 1:
                raise KeyProblem(rate, getattr(self, rate),
                                 f"{rate} + war_damage = {total:g}: the shares of capability "
                                 "regained and lost in a round of fighting may add up to at "
                                 "most 1 (else a capability turns negative)")
        return self


#: What each kind of shock needs besides ``step`` and ``guarantor``.
SHOCK_FIELDS = {"withdraw": (), "deploy": (), "recall": (), "election": (),
                "cost_change": ("factor",), "bindingness_change": ("bindingness",),
                "belief": ("belief", "strength"), "format_switch": ("format",)}


class Shock(Strict):
    """A scheduled event in a simulation (docs/model.md#shocks)."""

    step: int = Field(..., ge=0, description="Round at whose start the shock applies.")
    kind: Literal[tuple(SHOCK_FIELDS)] = Field(
        ..., description="withdraw: the guarantor leaves (its troops and their provocation "
                         "go, it never honours again); deploy / recall: it stations troops "
                         "in Ukraine / brings them home; cost_change: its honouring cost is "
                         "multiplied by `factor`; bindingness_change: the format binds it "
                         "with `bindingness`; election: Russia's evidence about it and its "
                         "own learning start afresh; belief: Russia sees `strength` "
                         "pseudo-observations of it honouring at rate `belief`; "
                         "format_switch: the format becomes `format` (every guarantor).")
    guarantor: str = Field("*", description="Guarantor id, or '*' for every member.")
    factor: float | None = Field(None, ge=1 / MAX_COST_FACTOR, le=MAX_COST_FACTOR,
                                 description="Multiplier for cost_change.")
    bindingness: float | None = Field(None, ge=0, le=1,
                                      description="New bindingness for bindingness_change.")
    belief: float | None = Field(None, ge=0, le=1,
                                 description="Honouring rate of a belief shock's evidence.")
    strength: float | None = Field(None, ge=0, le=MAX_PSEUDO_OBSERVATIONS,
                                   description="Pseudo-observations of a belief shock.")
    format: str | None = Field(None, pattern=r"^[a-z][a-z0-9_]*$",
                               description="Id of the format a format_switch switches to.")

    @model_validator(mode="after")
    def _fields_of_kind(self) -> Shock:
        needed = SHOCK_FIELDS[self.kind]
        for name in ("factor", "bindingness", "belief", "strength", "format"):
            given = getattr(self, name) is not None
            if name in needed and not given:
                raise KeyProblem(name, NO_VALUE, f"a {self.kind} shock needs {name}")
            if given and name not in needed:
                allowed = ", ".join(needed) or "none"
                raise KeyProblem(name, getattr(self, name),
                                 f"not used by a {self.kind} shock (its fields: {allowed})")
        if self.kind == "format_switch" and self.guarantor != "*":
            raise KeyProblem("guarantor", self.guarantor,
                             "a format_switch changes the format for every guarantor: "
                             "leave guarantor out (or give '*')")
        return self


class ResponseSpec(Strict):
    """What honouring the commitment means for a guarantor under a format."""

    denial_share: float = parameter(
        0.05, ge=0, le=1, unit="share of the guarantor's annual military expenditure",
        source="assumption (below the bound the Kiel tracker implies: total aid under 0.2% "
               "of GDP a year, i.e. under about 6-11% of the largest donors' military "
               "spending; docs/sources.md#kiel-ust)",
        description="Capability the response adds to Ukraine's side of the denial contest.")
    punishment_share: float = parameter(
        1.0, ge=0, le=1, unit="share of the guarantor's full sanctions", source="assumption",
        description="How much of its possible sanctions the guarantor imposes.")
    direct_combat: bool = parameter(
        False, unit="yes/no", source="format definition",
        description="Whether honouring means fighting Russian forces (air or ground).")
    troops_on_ground: bool = parameter(
        False, unit="yes/no", source="format definition",
        description="Whether the guarantor has troops stationed in Ukraine: a tripwire "
                    "(the garrison is engaged when attacked, so the member responds whatever "
                    "its costs); also provokes Russia and acts without delay.")
    decisive_probability: float = parameter(
        0.0, ge=0, le=1, unit="probability",
        source="form: best-shot (weakest-link / best-shot) technologies, Hirshleifer "
               "(1983), docs/sources.md#hirshleifer-1983; value: assumption",
        description="Chance that this member's response alone defeats the offensive, "
                    "whatever the others do (a sufficient response: one volunteer can be "
                    "pivotal).")
    cost_share: float = parameter(
        0.3, ge=0, le=5, unit="multiple of the guarantor's honouring cost", source="assumption",
        description="Cost of this response relative to a full response.")


class FormatSpec(Strict):
    """A security-guarantee format. Defined by data alone (``configs/formats/*.toml``)."""

    id: str = Field(..., pattern=r"^[a-z][a-z0-9_]*$")
    name: str = Field(..., min_length=1)
    description: str = Field(..., min_length=1, description="One line for listings.")
    sources: list[str] = Field(default_factory=list, description="Where the format comes from.")
    members: list[str] | Literal["all"] = Field(
        "all", description="Guarantor ids bound by the format, or 'all' for every guarantor "
                           "of the scenario. Guarantors that are not members are not players.")
    commitment_bindingness: float = parameter(
        0.5, ge=0, le=1, unit="share of the audience cost incurred by reneging",
        source="assumption (ordering: assurances < bilateral agreement < collective pledge "
               "< treaty)",
        description="How binding the pledge is: 0 = no cost of walking away, 1 = a treaty "
                    "obligation.")
    coordination_probability: float = parameter(
        0.0, ge=0, le=1, unit="probability", source="assumption",
        description="Chance that the collective mechanism (e.g. consultations within 24 "
                    "hours) lets the members coordinate on the equilibrium of their subgame "
                    "that deters most among those every member is willing to play; "
                    "otherwise each decides alone. 0 for bilateral deals.")
    response_delay_days: float = parameter(
        14.0, ge=0, le=MAX_DAYS, unit="days", source="assumption",
        description="Time from an attack to the response taking effect; troops already on "
                    "the ground act without delay.")
    response: ResponseSpec = Field(default_factory=ResponseSpec,
                                   description="Response of every member unless overridden.")
    response_overrides: dict[str, ResponseSpec] = Field(
        default_factory=dict,
        description="Per-guarantor responses, e.g. US air support without ground troops.")
    prior: dict[str, Distribution] = Field(
        default_factory=dict,
        description="The distributions of the format's uncertain parameters, by parameter "
                    "path (format.*). In a file each is given in place of the value.")

    @model_validator(mode="after")
    def _overrides_are_members(self) -> FormatSpec:
        _check_prior(self.prior, lambda path: path.startswith("format.") and (
            not path.startswith("format.response_overrides.")
            or path.split(".")[2] in self.response_overrides))
        if self.members != "all":
            first = first_repeat(self.members)
            if first is not None:
                i, j = first
                raise KeyProblem(f"members.{j}", self.members[j],
                                 f"listed twice (also members.{i}); list each member once")
            members = set(self.members)
            for gid in self.response_overrides:
                if gid not in members:
                    raise KeyProblem(f"response_overrides.{gid}", NO_VALUE,
                                     f"{gid!r} is not a member; members: "
                                     f"{listing(self.members)}")
        return self


class Scenario(Strict):
    """Actors, their attributes and the format to study."""

    name: str = Field(..., min_length=1)
    description: str = ""
    format: str = Field("nato_lite", description="Id of the scenario's own format, for "
                                                 "commands that study one format.")
    seed: int = Field(20250801, ge=0, le=MAX_SEED,
                      description="Root seed for everything random.")
    russia: RussiaParameters = Field(default_factory=RussiaParameters)
    ukraine: UkraineParameters = Field(default_factory=UkraineParameters)
    guarantors: list[GuarantorParameters] = Field(..., min_length=1)
    analysis: AnalysisParameters = Field(default_factory=AnalysisParameters)
    dynamics: DynamicsParameters = Field(default_factory=DynamicsParameters)
    shocks: list[Shock] = Field(default_factory=list)
    prior: dict[str, Distribution] = Field(
        default_factory=dict,
        description="The distributions of the uncertain parameters, by parameter path. In a "
                    "file each is given in place of the parameter's value, which is then its "
                    "median.")

    #: the guarantors by id (:meth:`guarantor`), derived from ``guarantors``
    _by_id: dict[str, GuarantorParameters] = PrivateAttr(default_factory=dict)

    @model_validator(mode="after")
    def _consistent(self) -> Scenario:
        ids = [g.id for g in self.guarantors]
        first = first_repeat(ids)
        if first is not None:
            i, j = first
            raise KeyProblem(f"guarantors.{j}.id", ids[j],
                             f"guarantors.{i} has this id too; ids must be unique")
        known = set(ids)
        for k, shock in enumerate(self.shocks):
            if shock.guarantor != "*" and shock.guarantor not in known:
                raise KeyProblem(f"shocks.{k}.guarantor", shock.guarantor,
                                 f"not a guarantor; allowed: '*' or {listing(ids)}")
        self._check_cost_factors()
        _check_prior(self.prior, lambda path: path.split(".")[0] in ("russia", "ukraine")
                     or (path.startswith("guarantors.")
                         and path.split(".")[1] in known | {"*"}))
        self._by_id = dict(zip(ids, self.guarantors, strict=True))
        return self

    def _check_cost_factors(self) -> None:
        """The cost factors above 1 that reach one guarantor (its own and those for '*')
        multiply to at most MAX_COST_FACTOR, so that its honouring cost stays in range."""
        every = 1.0
        own: dict[str, float] = {}
        for shock in self.shocks:
            if shock.kind == "cost_change" and shock.factor > 1:
                if shock.guarantor == "*":
                    every *= shock.factor
                else:
                    own[shock.guarantor] = own.get(shock.guarantor, 1.0) * shock.factor
        who, most = max(own.items(), key=lambda item: item[1], default=(None, 1.0))
        total = every * most
        if total > MAX_COST_FACTOR:
            reached = "every guarantor" if who is None else f"guarantor {who!r}"
            shown = f"{total:.3g}" if math.isfinite(total) else "more than 1e308"
            raise KeyProblem("shocks", NO_VALUE,
                             f"the cost_change factors above 1 that reach {reached} multiply "
                             f"to {shown}; at most {MAX_COST_FACTOR:g} allowed (an honouring "
                             f"cost may change at most {MAX_COST_FACTOR:g}-fold)")

    def guarantor(self, guarantor_id: str) -> GuarantorParameters:
        """The guarantor with this id (KeyError if there is none): a dictionary lookup."""
        if len(self._by_id) != len(self.guarantors):  # made without validation
            self._by_id = {g.id: g for g in self.guarantors}
        return self._by_id[guarantor_id]

    def model_copy(self, *, update: dict[str, Any] | None = None, deep: bool = False):
        """A copy (pydantic's), with the guarantors by id taken from the copy's own."""
        copied = super().model_copy(update=update, deep=deep)
        copied._by_id = {g.id: g for g in copied.guarantors}
        return copied


GUARANTOR_FIELDS = {name for name in GuarantorParameters.model_fields
                    if name not in ("id", "name")}
RESPONSE_FIELDS = set(ResponseSpec.model_fields)
FORMAT_SCALARS = {"commitment_bindingness", "coordination_probability", "response_delay_days"}


def parameter_field(path: str) -> FieldInfo:
    """The schema field a parameter path (``russia.war_cost``, ``guarantors.UK.stake``,
    ``format.response.aid_share`` ...; see :func:`deterrence.game.payoffs.parameter_paths`)
    sets: its unit and source in ``json_schema_extra``, its description and limits. The
    keys of the scenario's ``dynamics`` and ``analysis`` tables (``dynamics.belief_memory``)
    are fields too."""
    parts = path.split(".")
    model: type[BaseModel]
    if parts[0] == "dynamics":
        model, field = DynamicsParameters, parts[1]
    elif parts[0] == "analysis":
        model, field = AnalysisParameters, parts[1]
    elif parts[0] == "russia":
        model, field = RussiaParameters, parts[1]
    elif parts[0] == "ukraine":
        model, field = UkraineParameters, parts[1]
    elif parts[0] == "guarantors":
        model, field = GuarantorParameters, parts[2]
    elif parts[1] in FORMAT_SCALARS:
        model, field = FormatSpec, parts[1]
    else:
        model, field = ResponseSpec, parts[-1]
    return model.model_fields[field]


def uncertain_field(path: str) -> FieldInfo | None:
    """The field of a parameter path that may be given as a distribution (a float game
    parameter), or None."""
    parts = path.split(".")
    shapes = {"russia": 2, "ukraine": 2, "guarantors": 3}
    if parts[0] in shapes:
        if len(parts) != shapes[parts[0]]:
            return None
    elif parts[0] != "format" or not (
            (len(parts) == 2 and parts[1] in FORMAT_SCALARS)
            or (len(parts) == 3 and parts[1] == "response")
            or (len(parts) == 4 and parts[1] == "response_overrides")):
        return None
    try:
        info = parameter_field(path)
    except KeyError:
        return None
    return info if info.annotation is float else None


def prior_values(dist: Distribution, path: str, u):
    """The values of the parameter at ``path`` at unit-cube points ``u``: the quantiles of
    its distribution, truncated to the parameter's limits (a strict limit kept strictly)."""
    import numpy as np

    info = parameter_field(path)
    lower, upper = limit_interval(info)
    values = dist.quantile(u, lower, upper)
    for name, bound in limits_of(info):
        if name == "gt":
            values = np.maximum(values, np.nextafter(bound, math.inf))
        elif name == "lt":
            values = np.minimum(values, np.nextafter(bound, -math.inf))
    return values


def _check_prior(prior: dict[str, Distribution], allowed) -> None:
    """Every path of a ``prior`` table is an uncertain parameter ``allowed`` (a predicate
    on the path) and its distribution keeps the parameter's limits."""
    for path, dist in prior.items():
        info = uncertain_field(path)
        if info is None or not allowed(path):
            raise KeyProblem(f"prior.{path}", NO_VALUE,
                             "not a parameter that may be uncertain here (a number of the "
                             "russia, ukraine or guarantor tables of a scenario, or of a "
                             "format)")
        try:
            check_distribution(dist, info)
        except KeyProblem as exc:
            raise KeyProblem(f"prior.{path}", NO_VALUE, str(exc)) from None


#: The priors fitted to published base rates (docs/calibration.md), which uncertainty studies
#: give the parameters a scenario leaves at their defaults (:func:`with_calibrated_priors`).
CALIBRATED_PRIORS = CONFIG_DIR / "calibration" / "fitted.toml"


def calibrated_priors() -> dict[str, Distribution]:
    """The fitted priors of :data:`CALIBRATED_PRIORS`, by parameter path."""
    table = read_toml(CALIBRATED_PRIORS).get("priors", {})
    return {path: validate(Distribution, value, f"{CALIBRATED_PRIORS}: key 'priors.{path}'")
            for path, value in table.items()}


def with_calibrated_priors(scenario: Scenario) -> Scenario:
    """``scenario`` with the calibrated prior of each parameter it leaves at the schema's
    default (every guarantor's, for a ``guarantors.*`` path) and gives no distribution of
    its own; a parameter the scenario sets keeps its value."""
    added = {}
    for path, dist in calibrated_priors().items():
        parts = path.split(".")
        if parts[0] == "guarantors":
            field = parts[2]
            default = GuarantorParameters.model_fields[field].default
            own = any(p.startswith("guarantors.") and p.endswith(f".{field}")
                      for p in scenario.prior)
            if own or any(getattr(g, field) != default for g in scenario.guarantors):
                continue
        else:
            table = getattr(scenario, parts[0])
            if path in scenario.prior or getattr(table, parts[1]) != type(table).model_fields[
                    parts[1]].default:
                continue
        added[path] = dist
    if not added:
        return scenario
    return scenario.model_copy(update={"prior": {**scenario.prior, **added}})


def first_repeat(values: list) -> tuple[int, int] | None:
    """(i, j), i < j, of the first value that appears again, at j; None if all differ."""
    seen: dict = {}
    for j, value in enumerate(values):
        if value in seen:
            return seen[value], j
        seen[value] = j
    return None


#: Names a message lists before it says how many there are in all.
LISTED_NAMES = 20


def listing(names: list[str]) -> str:
    """``names`` for a message: all of them, or the first :data:`LISTED_NAMES` and the count."""
    if len(names) <= LISTED_NAMES:
        return ", ".join(names)
    return f"{', '.join(names[:LISTED_NAMES])}, ... ({len(names)} in all)"


# ---------------------------------------------------------------------------------------
# Loading and error messages


def _describe_error(err: dict[str, Any], model: type[BaseModel]) -> str:
    """One problem of a failed validation: the key, the value and what is allowed."""
    loc = tuple(err["loc"])
    problem = (err.get("ctx") or {}).get("error")
    if isinstance(problem, KeyProblem):  # a model's validator names the key itself
        key = _key((*loc, *problem.key.split("."))) if problem.key else _key(loc)
        if problem.value is NO_VALUE:
            return f"key '{key}': {problem}"
        return f"key '{key}' = {_shown(problem.value)}: {problem}"
    key = _key(loc)
    value = err.get("input")
    if err["type"] == "extra_forbidden":
        allowed = _allowed_keys(model, err["loc"][:-1])
        hint = f"unknown key; allowed keys here: {', '.join(allowed)}" if allowed else \
            "unknown key"
        return f"key '{key}' = {_shown(value)}: {hint}"
    if err["type"] == "missing":
        return f"key '{key}' is required but missing"
    if err["type"] == "finite_number":
        limits = describe_limits(_field_at(model, loc))
        return (f"key '{key}' = {_shown(value)}: must be a finite number"
                + (f" ({limits})" if limits else ""))
    message = str(problem) if err["type"] == "value_error" and problem else err["msg"]
    if isinstance(value, dict):  # a whole table: name it, not its contents
        return f"key '{key}': {message}"
    return f"key '{key}' = {_shown(value)}: {message}"


def _key(loc: tuple) -> str:
    return ".".join(str(part) for part in loc) or "(top level)"


#: Characters of a value a message shows (a longer one is cut).
SHOWN_CHARACTERS = 120


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= SHOWN_CHARACTERS else f"{text[:SHOWN_CHARACTERS]}..."


LIMIT_SYMBOLS = {"gt": ">", "ge": ">=", "lt": "<", "le": "<="}


def limits_of(info: FieldInfo | None) -> list[tuple[str, float]]:
    """The limits of a field: (``gt``, ``ge``, ``lt`` or ``le``, bound) pairs."""
    if info is None:
        return []
    return [(name, getattr(rule, name)) for rule in info.metadata for name in LIMIT_SYMBOLS
            if getattr(rule, name, None) is not None]


def describe_limits(info: FieldInfo | None) -> str:
    """The limits of a field for a message, e.g. ``> 0 and <= 100000``."""
    return " and ".join(f"{LIMIT_SYMBOLS[name]} {bound:g}" for name, bound in limits_of(info))


def _allowed_keys(model: type[BaseModel], loc: tuple) -> list[str]:
    """Field names of the sub-model at ``loc`` (skipping list indices and dict keys)."""
    current = _walk(model, loc)[1]
    if isinstance(current, type) and issubclass(current, BaseModel):
        return sorted(current.model_fields)
    return []


def _field_at(model: type[BaseModel], loc: tuple) -> FieldInfo | None:
    """The field at ``loc`` (skipping list indices and dict keys), or None."""
    return _walk(model, loc)[0]


def _walk(model: type[BaseModel], loc: tuple) -> tuple[FieldInfo | None, Any]:
    """The last field named on the way along ``loc`` and the model (or type) reached."""
    current: Any = model
    info = None
    for part in loc:
        if not (isinstance(current, type) and issubclass(current, BaseModel)):
            return None, None
        found = current.model_fields.get(str(part))
        if found is None:
            continue  # a list index or a dict key: stay on the same model
        info, current = found, _inner_model(found.annotation)
    return info, current


def _inner_model(annotation: Any) -> Any:
    args = getattr(annotation, "__args__", None)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in args or ():
        found = _inner_model(arg)
        if found is not None:
            return found
    return None


def validate(model: type[BaseModel], data: dict[str, Any], origin: str):
    """Validate ``data`` as ``model``; on failure raise ConfigError naming ``origin``."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        lines = [_describe_error(err, model) for err in exc.errors()]
        raise ConfigError(f"{origin}: " + "; ".join(lines)) from None


def read_toml(path: str | Path) -> dict[str, Any]:
    """The table of a TOML file: a regular file of at most :data:`MAX_CONFIG_BYTES`.

    The file is opened without blocking and checked before it is read, so a device
    (``/dev/zero``), a named pipe or a folder is refused at once."""
    path = Path(path)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            os.close(fd)
            raise ConfigError(f"{path}: {_file_kind(info.st_mode)}, not a regular file; "
                              f"a configuration is a TOML file")
        with os.fdopen(fd, "rb") as fh:
            data = fh.read(MAX_CONFIG_BYTES + 1)
        if len(data) > MAX_CONFIG_BYTES:
            size = size_text(info.st_size) if info.st_size > MAX_CONFIG_BYTES else \
                f"more than {size_text(MAX_CONFIG_BYTES)}"
            raise ConfigError(f"{path}: {size}; a configuration file may have at most "
                              f"{size_text(MAX_CONFIG_BYTES)}")
        return tomllib.loads(data.decode("utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from None
    except RecursionError:
        raise ConfigError(f"{path}: not valid TOML (nested too deeply)") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot be read ({exc.strerror or exc})") from None


def size_text(size: float) -> str:
    """A number of bytes for a message: ``512 bytes``, ``16.0 MiB``, ``8.0 GiB``."""
    for unit, power in (("EiB", 60), ("PiB", 50), ("TiB", 40), ("GiB", 30), ("MiB", 20),
                        ("KiB", 10)):
        if size >= 2**power:
            return f"{size / 2**power:,.1f} {unit}"
    return f"{size:,.0f} bytes"


def _file_kind(mode: int) -> str:
    kinds = ((stat.S_ISDIR, "a folder"), (stat.S_ISCHR, "a character device"),
             (stat.S_ISBLK, "a block device"), (stat.S_ISFIFO, "a named pipe"),
             (stat.S_ISSOCK, "a socket"))
    return next((name for test, name in kinds if test(mode)), "a special file")


def load_scenario(path: str | Path) -> Scenario:
    """Load a scenario file, or a bundled scenario by name (:func:`locate`).
    ``extends = "other.toml"`` (relative to the file) starts from another scenario: tables
    are merged key by key, lists (guarantors, shocks) replaced."""
    path = locate(path, "scenario")
    data = _resolve_extends(path, ())
    return validate(Scenario, take_distributions(data, "scenario", str(path)), str(path))


def _resolve_extends(path: Path, seen: tuple[Path, ...]) -> dict[str, Any]:
    data = read_toml(path)
    parent = data.pop("extends", None)
    if parent is None:
        return data
    if not isinstance(parent, str):
        raise ConfigError(f"{path}: key 'extends' = {parent!r}: must be a file name (string)")
    parent_path = (path.parent / parent).resolve()
    if parent_path in seen or parent_path == path.resolve():
        raise ConfigError(f"{path}: key 'extends' = {parent!r}: scenarios extend each other "
                          f"in a circle")
    return _merge(_resolve_extends(parent_path, (*seen, path.resolve())), data)


def _merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in update.items():
        if (isinstance(value, dict) and isinstance(merged.get(key), dict)
                and "distribution" not in value):  # a distribution replaces, whole
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _distribution_places(data: dict[str, Any], kind: str):
    """(path, table, key) of the values of a file's ``data`` that a distribution may take
    the place of, and of the fixed settings it may not (named in the message)."""
    def tables(prefix: str, table: Any):
        if isinstance(table, dict):
            for key in table:
                yield f"{prefix}.{key}", table, key

    if kind == "scenario":
        for name in ("russia", "ukraine"):
            yield from tables(name, data.get(name))
        guarantors = data.get("guarantors")
        for g in guarantors if isinstance(guarantors, list) else ():
            if isinstance(g, dict) and isinstance(g.get("id"), str):
                yield from tables(f"guarantors.{g['id']}", g)
        for name in ("dynamics", "analysis"):
            yield from tables(name, data.get(name))
    else:
        for key in FORMAT_SCALARS:
            if key in data:
                yield f"format.{key}", data, key
        yield from tables("format.response", data.get("response"))
        overrides = data.get("response_overrides")
        for gid, table in (overrides.items() if isinstance(overrides, dict) else ()):
            yield from tables(f"format.response_overrides.{gid}", table)


def take_distributions(data: dict[str, Any], kind: str, origin: str) -> dict[str, Any]:
    """A file's ``data`` (``kind`` "scenario" or "format") with every distribution given in
    place of a value replaced by its median and gathered, by parameter path, under
    ``prior``. Raises ConfigError naming the key for a malformed distribution, one outside
    its parameter's limits, or one where a number must be fixed."""
    if "prior" in data:
        raise ConfigError(f"{origin}: key 'prior': not a key of a {kind} file; give a "
                          "distribution in place of a parameter's value, e.g. war_cost = "
                          "{ distribution = \"uniform\", low = 0.1, high = 0.3 }")
    data = _copy_tables(data)
    prior: dict[str, Any] = {}
    for path, table, key in list(_distribution_places(data, kind)):
        value = table[key]
        if not (isinstance(value, dict) and "distribution" in value):
            continue
        where = path if kind == "scenario" else path.removeprefix("format.")
        info = uncertain_field(path)
        if info is None:
            if path.startswith("guarantors."):
                continue  # not a float field: validation names it
            raise ConfigError(f"{origin}: key {where!r}: may not be a distribution; "
                              "distributions are for the numbers of the russia, ukraine and "
                              "guarantor tables of a scenario and of a format (dynamics and "
                              "analysis settings are fixed)")
        try:
            dist = Distribution.model_validate(value)
            check_distribution(dist, info)
        except ValidationError as exc:
            parts = tuple(where.split("."))
            lines = [_describe_error({**err, "loc": (*parts, *err["loc"])}, Distribution)
                     for err in exc.errors()]
            raise ConfigError(f"{origin}: " + "; ".join(lines)) from None
        except KeyProblem as exc:
            raise ConfigError(f"{origin}: key {where!r}: {exc}") from None
        table[key] = dist.point(*limit_interval(info))
        prior[path] = dist.model_dump(mode="json", exclude_none=True)
    if prior:
        data["prior"] = prior
    return data


def _copy_tables(data: Any) -> Any:
    if isinstance(data, dict):
        return {k: _copy_tables(v) for k, v in data.items()}
    if isinstance(data, list):
        return [_copy_tables(v) for v in data]
    return data


def load_format(path: str | Path) -> FormatSpec:
    data = take_distributions(read_toml(path), "format", str(path))
    spec = validate(FormatSpec, data, str(path))
    if Path(path).stem != spec.id:
        raise ConfigError(f"{path}: key 'id' = {spec.id!r}: must match the file name "
                          f"{Path(path).stem!r}")
    return spec


def load_catalogue(directory: str | Path = FORMATS_DIR) -> dict[str, FormatSpec]:
    """All formats in ``directory``, keyed by id, in file-name order."""
    directory = Path(directory)
    files = sorted(directory.glob("*.toml"))
    if not files:
        raise ConfigError(f"{directory}: no format files (*.toml) found")
    return {spec.id: spec for spec in map(load_format, files)}


def member_ids(fmt: FormatSpec, scenario: Scenario) -> list[str]:
    """Ids of the scenario's guarantors bound by ``fmt``, in scenario order."""
    known = [g.id for g in scenario.guarantors]
    if fmt.members == "all":
        return known
    known_ids = set(known)
    unknown = [m for m in fmt.members if m not in known_ids]
    if unknown:
        raise ConfigError(f"format {fmt.id!r}: key 'members' names {listing(unknown)}, which "
                          f"are not guarantors of scenario {scenario.name!r} (allowed: "
                          f"{listing(known)})")
    members = set(fmt.members)
    return [g for g in known if g in members]


def response_of(fmt: FormatSpec, guarantor_id: str) -> ResponseSpec:
    return fmt.response_overrides.get(guarantor_id, fmt.response)
