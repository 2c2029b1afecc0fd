"""Configuration schema: scenarios (actors and their attributes) and guarantee formats.

Every model parameter is declared once, here, with a self-explaining name, a unit, a
default and a source (a public reference, or the word "assumption"). The values used in
studies live in ``configs/``, shipped as package data (:data:`CONFIG_DIR`); the defaults
below are what a file may leave out.

Files are TOML. Unknown keys, wrong types and out-of-range values raise
:class:`ConfigError`, whose message names the file, the key, the value and what is allowed.
"""

from __future__ import annotations

import importlib.util
import tomllib
from importlib.resources import files
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

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

UTILITY_RUSSIA = "Russia's utility (value of achieving its war aims = 1)"
UTILITY_GUARANTOR = "guarantor's utility (Ukraine's defeat = loss of its stake)"


class ConfigError(ValueError):
    """A configuration file or value is invalid. The message is meant for the user."""


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
    if candidate.exists():
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
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class RussiaParameters(Strict):
    military_spending_usd_bn: float = parameter(
        149.0, gt=0, unit="USD bn per year (2024)",
        source="SIPRI Fact Sheet, April 2025 (2024 military expenditure), "
               "docs/sources.md#sipri-2024",
        description="Russia's military expenditure; its strength in the denial contest.")
    status_quo_value: float = parameter(
        0.4, ge=0, le=1, unit=UTILITY_RUSSIA, source="assumption",
        description="Value to Russia of keeping the ceasefire line, relative to achieving "
                    "its war aims by force.")
    war_cost: float = parameter(
        0.2, ge=0, unit=UTILITY_RUSSIA, source="assumption",
        description="Cost to Russia of renewing the offensive, whatever the outcome.")
    sanctions_cost: float = parameter(
        0.3, ge=0, unit=UTILITY_RUSSIA, source="assumption",
        description="Cost of new sanctions if every guarantor in the scenario imposes them; "
                    "honouring guarantors impose their share of the guarantors' GDP.")
    catastrophe_cost: float = parameter(
        10.0, ge=0, unit=UTILITY_RUSSIA, source="assumption",
        description="Cost to Russia of a nuclear catastrophe.")
    foreign_troops_aversion: float = parameter(
        0.1, ge=0, unit=UTILITY_RUSSIA,
        source="direction: Moscow rejects foreign troops in Ukraine (August 2025 reporting, "
               "docs/sources.md#reporting-2025); size: assumption",
        description="Loss of status-quo value to Russia while foreign troops are stationed in "
                    "Ukraine (provocation, Jervis' spiral, docs/sources.md#jervis-1976).")
    contest_decisiveness: float = parameter(
        1.0, gt=0, le=50, unit="dimensionless exponent",
        source="Hirshleifer (1989) ratio contest success function, "
               "docs/sources.md#hirshleifer-1989; value: assumption",
        description="Exponent of the contest function: how sharply the balance of "
                    "capability decides the offensive.")
    fait_accompli_days: float = parameter(
        14.0, gt=0, unit="days", source="assumption",
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
        64.7, gt=0, unit="USD bn per year (2024)",
        source="SIPRI Fact Sheet, April 2025 (2024 military expenditure), "
               "docs/sources.md#sipri-2024",
        description="Ukraine's own military expenditure.")
    baseline_military_aid_usd_bn: float = parameter(
        45.0, ge=0, unit="USD bn per year",
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
        ..., gt=0, unit="USD bn per year (2024)",
        source="SIPRI (see scenario file; docs/sources.md#sipri-2024)",
        description="Military expenditure; what a combat response can bring to bear.")
    gdp_usd_tn: float = parameter(
        ..., gt=0, unit="USD tn (2024)", source="IMF World Economic Outlook (see scenario file; "
                                      "docs/sources.md#imf-weo-2024)",
        description="Economic weight; sets the guarantor's share of the sanctions cost.")
    nuclear_armed: bool = parameter(
        False, unit="yes/no", source="public record",
        description="Whether direct combat with this guarantor carries nuclear risk.")
    stake_in_ukraine: float = parameter(
        1.0, ge=0, unit=UTILITY_GUARANTOR, source="assumption",
        description="What the guarantor loses if Russia's offensive succeeds.")
    honouring_cost: float = parameter(
        0.3, ge=0, unit=UTILITY_GUARANTOR, source="assumption",
        description="Cost of honouring with a full response (cost share 1); a format's "
                    "response scales it.")
    audience_cost: float = parameter(
        0.3, ge=0, unit=UTILITY_GUARANTOR,
        source="Fearon (1994, 1997) tying hands; Tomz (2007) shows audience costs exist "
               "(docs/sources.md#fearon-1994, #fearon-1997, #tomz-2007); size: assumption",
        description="Cost of reneging on a fully binding commitment (bindingness 1).")
    tripwire_cost: float = parameter(
        0.5, ge=0, unit=UTILITY_GUARANTOR,
        source="Schelling (1966); Reiter & Poast (2021) on limits "
               "(docs/sources.md#schelling-1966, #reiter-poast-2021); size: assumption",
        description="Extra cost of abstaining when the guarantor's own troops in Ukraine are "
                    "attacked.")
    catastrophe_cost: float = parameter(
        10.0, ge=0, unit=UTILITY_GUARANTOR, source="assumption",
        description="Cost to the guarantor of a nuclear catastrophe.")
    readiness_cost: float = parameter(
        0.02, ge=0, unit=f"{UTILITY_GUARANTOR} per crisis round", source="assumption",
        description="Peacetime cost of keeping a credible response ready (forces on standby, "
                    "exercises, stocks), paid each round by a guarantor whose policy is to "
                    "honour. It is sunk once Russia escalates, so it does not enter the "
                    "crisis equilibrium; it drives the learning dynamics.")


class AnalysisParameters(Strict):
    rationality: float = parameter(
        10.0, ge=0, le=1e4, unit="1 / utility unit",
        source="McKelvey & Palfrey (1995) logit quantal response, "
               "docs/sources.md#mckelvey-palfrey-1995; value: assumption",
        description="Logit precision lambda for noisy play (0 = uniform random choice).")
    defended_below_russia_success: float = parameter(
        0.5, gt=0, lt=1, unit="probability", source="assumption",
        description="An escalation counts as defended when the response leaves Russia's "
                    "chance of success below this value, otherwise as abandoned.")


class DynamicsParameters(Strict):
    """How agents learn and stocks evolve over repeated crisis rounds (the simulations)."""

    belief_prior_reliability: float = parameter(
        0.745, gt=0, lt=1, unit="probability",
        source="Leeds, Long & Mitchell (2000): alliance commitments honoured in 74.5% of "
               "the cases where they were invoked, docs/sources.md#leeds-long-mitchell-2000",
        description="Mean of Russia's prior Beta belief that a guarantor deciding alone "
                    "honours; also where beliefs drift back to as memories fade.")
    belief_prior_strength: float = parameter(
        4.0, gt=0, unit="pseudo-observations", source="assumption",
        description="Weight of the prior belief, in observed responses.")
    belief_memory: float = parameter(
        0.95, ge=0, le=1, unit="share kept per round", source="assumption",
        description="Forgetting: each round, evidence beyond the prior shrinks by this "
                    "factor, so reputations decay (Renshon, Dafoe & Huth on reputation, "
                    "docs/sources.md#renshon-dafoe-huth-2018).")
    troop_signal_weight: float = parameter(
        0.1, ge=0, unit="pseudo-observations of honouring per round", source="assumption "
        "(costly signals: Fearon 1997 sinking costs, docs/sources.md#fearon-1997; declarations "
        "are cheap talk and count for nothing)",
        description="Evidence that a guarantor with troops stationed in Ukraine adds to "
                    "Russia's belief each round.")
    attraction_memory: float = parameter(
        0.9, ge=0, lt=1, unit="share kept per round", source="assumption",
        description="Guarantors' reinforcement: weight of the past in the attraction of "
                    "honouring (Camerer & Ho 1999 experience-weighted attraction, "
                    "docs/sources.md#camerer-ho-1999).")
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


class Shock(Strict):
    """A scheduled event in a simulation."""

    step: int = Field(..., ge=0, description="Round at whose start the shock applies.")
    kind: Literal["withdraw", "cost_change", "election"] = Field(
        ..., description="withdraw: the guarantor stops honouring for good; cost_change: "
                         "its honouring cost is multiplied by `factor`; election: Russia's "
                         "belief about it returns to the prior and its learning restarts.")
    guarantor: str = Field(..., description="Guarantor id, or '*' for every member.")
    factor: float = Field(1.0, gt=0, description="Multiplier for cost_change.")


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
        description="Whether the guarantor has troops stationed in Ukraine (tripwire; also "
                    "provokes Russia and arrives without delay).")
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
        description="Chance that the collective mechanism turns the members into one team "
                    "that chooses the response maximising their joint payoff; otherwise each "
                    "decides alone (free riding). 0 for bilateral deals.")
    response_delay_days: float = parameter(
        14.0, ge=0, unit="days", source="assumption",
        description="Time from an attack to the response taking effect; troops already on "
                    "the ground act without delay.")
    response: ResponseSpec = Field(default_factory=ResponseSpec,
                                   description="Response of every member unless overridden.")
    response_overrides: dict[str, ResponseSpec] = Field(
        default_factory=dict,
        description="Per-guarantor responses, e.g. US air support without ground troops.")

    @model_validator(mode="after")
    def _overrides_are_members(self) -> FormatSpec:
        if self.members != "all":
            if len(set(self.members)) != len(self.members):
                raise ValueError(f"members lists a guarantor twice: {self.members}")
            stray = sorted(set(self.response_overrides) - set(self.members))
            if stray:
                raise ValueError(f"response_overrides name non-members {stray}; "
                                 f"members are {self.members}")
        return self


class Scenario(Strict):
    """Actors, their attributes and the format to study."""

    name: str = Field(..., min_length=1)
    description: str = ""
    format: str = Field("nato_lite", description="Id of the scenario's own format, for "
                                                 "commands that study one format.")
    seed: int = Field(20250801, ge=0, description="Root seed for everything random.")
    russia: RussiaParameters = Field(default_factory=RussiaParameters)
    ukraine: UkraineParameters = Field(default_factory=UkraineParameters)
    guarantors: list[GuarantorParameters] = Field(..., min_length=1)
    analysis: AnalysisParameters = Field(default_factory=AnalysisParameters)
    dynamics: DynamicsParameters = Field(default_factory=DynamicsParameters)
    shocks: list[Shock] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique_ids(self) -> Scenario:
        ids = [g.id for g in self.guarantors]
        if len(set(ids)) != len(ids):
            raise ValueError(f"guarantor ids must be unique, got {ids}")
        stray = sorted({s.guarantor for s in self.shocks} - set(ids) - {"*"})
        if stray:
            raise ValueError(f"shocks name unknown guarantors {stray}; allowed: {ids} or '*'")
        return self

    def guarantor(self, guarantor_id: str) -> GuarantorParameters:
        for g in self.guarantors:
            if g.id == guarantor_id:
                return g
        raise KeyError(guarantor_id)


# ---------------------------------------------------------------------------------------
# Loading and error messages


def _describe_error(err: dict[str, Any], model: type[BaseModel]) -> str:
    key = ".".join(str(part) for part in err["loc"]) or "(top level)"
    value = err.get("input")
    if err["type"] == "extra_forbidden":
        allowed = _allowed_keys(model, err["loc"][:-1])
        hint = f"unknown key; allowed keys here: {', '.join(allowed)}" if allowed else \
            "unknown key"
        return f"key '{key}' = {value!r}: {hint}"
    if err["type"] == "missing":
        return f"key '{key}' is required but missing"
    return f"key '{key}' = {value!r}: {err['msg']}"


def _allowed_keys(model: type[BaseModel], loc: tuple) -> list[str]:
    """Field names of the sub-model at ``loc`` (skipping list indices and dict keys)."""
    current: Any = model
    for part in loc:
        if not (isinstance(current, type) and issubclass(current, BaseModel)):
            return []
        field = current.model_fields.get(str(part))
        if field is None:
            continue  # a list index or a dict key: stay on the same model
        current = _inner_model(field.annotation)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return sorted(current.model_fields)
    return []


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
    path = Path(path)
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot be read ({exc.strerror or exc})") from None


def load_scenario(path: str | Path) -> Scenario:
    """Load a scenario file, or a bundled scenario by name (:func:`locate`).
    ``extends = "other.toml"`` (relative to the file) starts from another scenario: tables
    are merged key by key, lists (guarantors, shocks) replaced."""
    path = locate(path, "scenario")
    return validate(Scenario, _resolve_extends(path, ()), str(path))


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
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def load_format(path: str | Path) -> FormatSpec:
    spec = validate(FormatSpec, read_toml(path), str(path))
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
    unknown = [m for m in fmt.members if m not in known]
    if unknown:
        raise ConfigError(f"format {fmt.id!r}: key 'members' names {unknown}, which are not "
                          f"guarantors of scenario {scenario.name!r} (allowed: {known})")
    return [g for g in known if g in fmt.members]


def response_of(fmt: FormatSpec, guarantor_id: str) -> ResponseSpec:
    return fmt.response_overrides.get(guarantor_id, fmt.response)
