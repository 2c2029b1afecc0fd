r"""The payoff rules of one crisis round: the only place they are written down.

Russia chooses to escalate or refrain. If it escalates, each guarantor bound by the format
chooses to honour (deter, ``a_i = 1``) or abstain (``a_i = 0``). With a response profile
``a`` (equations and sources in ``docs/model.md``):

Denial (contest function, Hirshleifer 1989)::

    K(a)     = M_U + sum_i a_i * theta_i * m_i * tau_i          capability on Ukraine's side
    P_win(a) = m_R^g / (m_R^g + K(a)^g) = 1 / (1 + (K(a)/m_R)^g)
    tau_i    = 1 if i has troops on the ground, else exp(-delay / fait_accompli_days)

Escalation risk (each nuclear-armed guarantor in direct combat, independently)::

    risk(a)  = 1 - prod_i (1 - a_i * e_i)

Russia::

    U_R(refrain) = s - provocation               (provocation if any member stations troops)
    U_R(a)       = s + P_win(a) (1 - s) - war_cost - sanctions_cost * sum_i a_i w_i
                   - risk(a) * catastrophe_cost_R

Guarantor i (Fearon's tying hands; Schelling's tripwire)::

    U_i(a) = -stake_i * P_win(a) - a_i * honouring_cost_i
             - (1 - a_i) * reneging_cost_i - risk(a) * catastrophe_cost_i
    reneging_cost_i = bindingness * audience_cost_i + [troops on ground] * tripwire_cost_i

All functions broadcast: a ``Game`` holds arrays over ``C`` cells (parameter points or
runs), per-guarantor arrays have shape ``(C, n)``, and action profiles have shape
``(P, n)`` (the same profiles in every cell) or ``(C, P, n)``. Every engine (exact solver,
Mesa model, vectorised engine) calls these functions, so the same expression is evaluated
in the same order everywhere.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from .config import (
    LIMIT_SYMBOLS,
    ConfigError,
    FormatSpec,
    GuarantorParameters,
    ResponseSpec,
    RussiaParameters,
    Scenario,
    UkraineParameters,
    limits_of,
    member_ids,
    response_of,
    size_text,
)


@dataclass(frozen=True)
class Game:
    """Payoff-relevant quantities of a crisis round for ``C`` cells and ``n`` guarantors."""

    guarantor_ids: tuple[str, ...]
    # Russia and Ukraine, shape (C,)
    russia_capability: np.ndarray
    ukraine_capability: np.ndarray
    contest_decisiveness: np.ndarray
    status_quo_value: np.ndarray
    war_cost: np.ndarray
    sanctions_cost: np.ndarray
    russia_catastrophe_cost: np.ndarray
    provocation_cost: np.ndarray
    coordination_probability: np.ndarray
    # guarantors, shape (C, n)
    added_capability: np.ndarray
    sanctions_weight: np.ndarray
    escalation_probability: np.ndarray
    stake: np.ndarray
    honouring_cost: np.ndarray
    reneging_cost: np.ndarray
    catastrophe_cost: np.ndarray
    readiness_cost: np.ndarray
    troops_on_ground: np.ndarray  # 1 where the member has troops stationed in Ukraine

    @property
    def cells(self) -> int:
        return self.russia_capability.shape[0]

    @property
    def n(self) -> int:
        return len(self.guarantor_ids)

    def take(self, index: Any) -> Game:
        """The game restricted to cells ``index`` (a slice or an index array)."""
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        return Game(**{k: v if k == "guarantor_ids" else v[index] for k, v in values.items()})


# ---------------------------------------------------------------------------------------
# The rules


def _per_guarantor(game_array: np.ndarray) -> np.ndarray:
    """Broadcast a (C, n) array against actions of shape (P, n) or (C, P, n)."""
    return game_array[:, None, :]


def _weighted_count(actions: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """``sum_i a_i w_i`` for every cell and profile: shape (C, P).

    Summed guarantor by guarantor in increasing order, so a cell's value depends neither
    on how many cells are computed together (a matrix product's rounding does) nor on the
    layout. For the table of all profiles (:func:`all_profiles`) the sums are built by
    doubling: profiles with bit i set add ``w_i`` to the sums of the lower bits, which for
    0/1 actions is the same sequence of additions as the loop, at one addition per profile.
    """
    n = weights.shape[1]
    if actions is all_profiles(n):
        total = np.empty((weights.shape[0], 2 ** n))
        total[:, 0] = 0.0
        for i in range(n):
            half = 1 << i
            np.add(total[:, :half], weights[:, i, None], out=total[:, half:2 * half])
        return total
    total = np.zeros((weights.shape[0], actions.shape[-2]))
    for i in range(n):
        total += weights[:, i, None] * actions[..., i]
    return total


def russia_success_probability(game: Game, actions: np.ndarray) -> np.ndarray:
    """P(Russia's offensive succeeds | escalation, profile): shape (C, P)."""
    defence = game.ukraine_capability[:, None] + _weighted_count(actions, game.added_capability)
    russia = game.russia_capability[:, None]
    if np.all(game.russia_capability > 0):
        ratio = defence / russia
    else:  # war damage can wear Russia's capability down to 0 (and Ukraine's as well)
        with np.errstate(divide="ignore", invalid="ignore"):
            # Russia fails against any defence; with no capability on either side the
            # contest is even (ratio 1, P = 1/2)
            ratio = np.where((defence == 0) & (russia == 0), 1.0, defence / russia)
    decisiveness = game.contest_decisiveness
    if decisiveness.size and np.all(decisiveness == decisiveness[0]):
        decisiveness = decisiveness[0]  # a scalar exponent takes numpy's fast paths
    else:
        decisiveness = decisiveness[:, None]
    return 1.0 / (1.0 + ratio ** decisiveness)


def escalation_risk(game: Game, actions: np.ndarray) -> np.ndarray:
    """P(nuclear catastrophe | escalation, profile): shape (C, P).

    ``1 - prod_i (1 - a_i e_i)`` evaluated as ``1 - exp(sum_i a_i log(1 - e_i))``, exact
    for actions in {0, 1} up to rounding; zero when no member fights.
    """
    if not np.any(game.escalation_probability):  # nobody fights: no risk, skip the sums
        return np.zeros((game.cells, actions.shape[-2]))
    log_survive = np.log1p(-game.escalation_probability)
    return -np.expm1(_weighted_count(actions, log_survive))


def russia_refrain_payoff(game: Game) -> np.ndarray:
    """Russia's payoff of refraining: shape (C,)."""
    return game.status_quo_value - game.provocation_cost


def russia_escalate_payoff(game: Game, actions: np.ndarray, success=None, risk=None):
    """Russia's payoff of escalating against each profile: shape (C, P)."""
    success = russia_success_probability(game, actions) if success is None else success
    risk = escalation_risk(game, actions) if risk is None else risk
    status_quo = game.status_quo_value[:, None]
    punishment = _weighted_count(actions, game.sanctions_weight)
    return (status_quo + success * (1.0 - status_quo) - game.war_cost[:, None]
            - game.sanctions_cost[:, None] * punishment
            - risk * game.russia_catastrophe_cost[:, None])


def guarantor_payoffs(game: Game, actions: np.ndarray, success=None, risk=None) -> np.ndarray:
    """Each guarantor's payoff once Russia has escalated: shape (C, P, n)."""
    success = russia_success_probability(game, actions) if success is None else success
    risk = escalation_risk(game, actions) if risk is None else risk
    return (-_per_guarantor(game.stake) * success[..., None]
            - actions * _per_guarantor(game.honouring_cost)
            - (1.0 - actions) * _per_guarantor(game.reneging_cost)
            - risk[..., None] * _per_guarantor(game.catastrophe_cost))


def honouring_gain(game: Game, i: int, success_honour, success_abstain, risk_honour=None,
                   risk_abstain=None) -> np.ndarray:
    """``U_i(honour) - U_i(abstain)`` given the outcome of each (arrays of shape (C, ...)).

    The difference form of :func:`guarantor_payoffs`, used where the full (C, P, n) table
    would cost too much (grids). Risks may be omitted when no member fights (risk is 0)."""
    shape = (-1, *([1] * (np.ndim(success_honour) - 1)))

    def per_cell(a):
        return a[:, i].reshape(shape)

    gain = (per_cell(game.reneging_cost) - per_cell(game.honouring_cost)
            - per_cell(game.stake) * (success_honour - success_abstain))
    if risk_honour is not None:
        gain -= per_cell(game.catastrophe_cost) * (risk_honour - risk_abstain)
    return gain


def joint_guarantor_payoff(game: Game, actions: np.ndarray, success, risk) -> np.ndarray:
    """Sum over guarantors of :func:`guarantor_payoffs`, shape (C, P), without the
    (C, P, n) table: what a coordinated team maximises."""
    return (-game.stake.sum(axis=1)[:, None] * success
            - _weighted_count(actions, game.honouring_cost - game.reneging_cost)
            - game.reneging_cost.sum(axis=1)[:, None]
            - risk * game.catastrophe_cost.sum(axis=1)[:, None])


#: Outcomes of a crisis round.
DETERRED, DEFENDED, ABANDONED = 0, 1, 2


def outcome(escalates: np.ndarray, success: np.ndarray, defended_below: float) -> np.ndarray:
    """Deterred (no escalation), defended (the response leaves Russia's chance of success
    below ``defended_below``) or abandoned, as int8 codes."""
    return (escalates * (DEFENDED + (success >= defended_below))).astype(np.int8)


# ---------------------------------------------------------------------------------------
# The size of the enumeration: 2^n response profiles per cell

#: Bytes of a float64.
FLOAT_BYTES = 8
#: Memory the largest table over the profiles may take for one chunk of cells (solver) or
#: runs (engine); a chunk's working set is a few times this.
TABLE_BYTES_PER_CHUNK = 64 * 2**20


def profile_table_bytes(members: int) -> int:
    """Bytes per cell of the largest table over response profiles that the solver or an
    engine forms: the strategic form's payoffs, 2^(n+1) profiles x (n+1) players."""
    return FLOAT_BYTES * (members + 1) * 2 ** (members + 1)


#: Most members a format may bind: the largest n whose table for one cell fits
#: :data:`TABLE_BYTES_PER_CHUNK` (17: 2^17 = 131,072 response profiles; solving one cell
#: then takes minutes, and each member more doubles the work).
MAX_MEMBERS = max(n for n in range(64) if profile_table_bytes(n) <= TABLE_BYTES_PER_CHUNK)


def check_members(members: int, where: str) -> None:
    """Raise ConfigError if ``members`` guarantors are too many to enumerate."""
    if members > MAX_MEMBERS:
        raise ConfigError(
            f"{where}: {members} members need 2^{members} response profiles "
            f"({size_text(profile_table_bytes(members))} per cell for the largest table); "
            f"the exact enumeration handles up to 2^{MAX_MEMBERS} "
            f"({size_text(profile_table_bytes(MAX_MEMBERS))} per cell): use at most "
            f"{MAX_MEMBERS} members")


def cells_per_chunk(members: int, wanted: int) -> int:
    """Cells (or runs) to compute together: at most ``wanted``, and few enough that the
    largest profile table of the chunk fits :data:`TABLE_BYTES_PER_CHUNK` (at least 1)."""
    check_members(members, "the exact enumeration")
    return max(1, min(wanted, TABLE_BYTES_PER_CHUNK // profile_table_bytes(members)))


@functools.cache
def all_profiles(n: int) -> np.ndarray:
    """Every pure response profile: row ``k`` holds the bits of ``k`` (guarantor i = bit i).

    Cached and read-only: the payoff functions recognise this array and use a faster sum.
    """
    check_members(n, "the exact enumeration")
    k = np.arange(2 ** n)
    profiles = ((k[:, None] >> np.arange(n)[None, :]) & 1).astype(np.float64)
    profiles.flags.writeable = False
    return profiles


# ---------------------------------------------------------------------------------------
# From configuration to arrays


GUARANTOR_FIELDS = {name for name in GuarantorParameters.model_fields if name not in ("id", "name")}
RESPONSE_FIELDS = set(ResponseSpec.model_fields)
FORMAT_SCALARS = {"commitment_bindingness", "coordination_probability", "response_delay_days"}


def parameter_paths(scenario: Scenario, fmt: FormatSpec) -> list[str]:
    """Every numeric parameter path a grid may vary for this scenario and format."""
    paths = [f"russia.{k}" for k in RussiaParameters.model_fields]
    paths += [f"ukraine.{k}" for k in UkraineParameters.model_fields]
    numeric = sorted(k for k in GUARANTOR_FIELDS
                     if GuarantorParameters.model_fields[k].annotation is float)
    for field in numeric:
        paths.append(f"guarantors.*.{field}")
        paths += [f"guarantors.{g.id}.{field}" for g in scenario.guarantors]
    paths += [f"format.{k}" for k in sorted(FORMAT_SCALARS)]
    resp_numeric = sorted(k for k in RESPONSE_FIELDS
                          if ResponseSpec.model_fields[k].annotation is float)
    paths += [f"format.response.{k}" for k in resp_numeric]
    for gid in fmt.response_overrides:
        paths += [f"format.response_overrides.{gid}.{k}" for k in resp_numeric]
    return paths


def parameter_field(path: str) -> FieldInfo:
    """The schema field a parameter path (see :func:`parameter_paths`) sets: its unit and
    source in ``json_schema_extra``, its description and limits."""
    parts = path.split(".")
    model: type[BaseModel]
    if parts[0] == "russia":
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


def _check_override(path: str, values: np.ndarray, scenario: Scenario, fmt: FormatSpec):
    """Raise ConfigError unless every value is allowed at ``path``."""
    allowed = parameter_paths(scenario, fmt)
    if path not in allowed:
        raise ConfigError(f"parameter path {path!r} is not a numeric parameter of this "
                          f"scenario and format; allowed: {', '.join(allowed)}")
    if values.size == 0:
        raise ConfigError(f"parameter path {path!r}: no values given")
    if not np.all(np.isfinite(values)):
        raise ConfigError(f"parameter path {path!r}: values must be finite numbers")
    info = parameter_field(path)
    for value in (float(values.min()), float(values.max())):
        for name, bound in limits_of(info):
            if not LIMIT_TESTS[name](value, bound):
                raise ConfigError(f"parameter path {path!r} = {value!r}: must be "
                                  f"{LIMIT_SYMBOLS[name]} {bound:g}")


#: Whether a value keeps a field's limit (:func:`deterrence.game.config.limits_of`).
LIMIT_TESTS = {"gt": lambda v, b: v > b, "ge": lambda v, b: v >= b,
               "lt": lambda v, b: v < b, "le": lambda v, b: v <= b}


def build_game(scenario: Scenario, fmt: FormatSpec,
               overrides: Mapping[str, Any] | None = None) -> Game:
    """Arrays of the crisis game for ``scenario`` under ``fmt``.

    ``overrides`` maps parameter paths (see :func:`parameter_paths`) to arrays; they are
    broadcast together and flattened into the cell axis (C-order), so a grid built with
    ``x[:, None]`` and ``y[None, :]`` gives ``C = len(x) * len(y)`` cells.
    """
    overrides = {k: np.asarray(v, dtype=np.float64) for k, v in (overrides or {}).items()}
    for path, values in overrides.items():
        _check_override(path, values, scenario, fmt)
    shape = np.broadcast_shapes(*(v.shape for v in overrides.values())) if overrides else ()
    cells = int(np.prod(shape, dtype=np.int64))

    def value(path: str, default: float, *fallbacks: str) -> np.ndarray:
        for candidate in (path, *fallbacks):
            if candidate in overrides:
                return np.broadcast_to(overrides[candidate], shape).reshape(cells)
        return np.full(cells, float(default))

    def side(prefix: str, params: BaseModel, name: str) -> np.ndarray:
        return value(f"{prefix}.{name}", getattr(params, name))

    russia, ukraine = scenario.russia, scenario.ukraine
    members = member_ids(fmt, scenario)
    check_members(len(members), f"scenario {scenario.name!r}, format {fmt.id!r}")

    def guarantor_column(name: str) -> np.ndarray:
        cols = [value(f"guarantors.{gid}.{name}", float(getattr(scenario.guarantor(gid), name)),
                      f"guarantors.*.{name}") for gid in members]
        return np.stack(cols, axis=1) if cols else np.zeros((cells, 0))

    def response_column(name: str) -> np.ndarray:
        cols = []
        for gid in members:
            specific = f"format.response_overrides.{gid}.{name}"
            if gid in fmt.response_overrides:
                cols.append(value(specific, float(getattr(response_of(fmt, gid), name))))
            else:
                cols.append(value(f"format.response.{name}", float(getattr(fmt.response, name))))
        return np.stack(cols, axis=1) if cols else np.zeros((cells, 0))

    fmt_value = {k: value(f"format.{k}", getattr(fmt, k)) for k in FORMAT_SCALARS}
    fait_accompli = side("russia", russia, "fait_accompli_days")
    troops = response_column("troops_on_ground")
    timeliness = np.where(troops > 0, 1.0,
                          np.exp(-fmt_value["response_delay_days"] / fait_accompli)[:, None])
    gdp_all = sum(value(f"guarantors.{g.id}.gdp_usd_tn", g.gdp_usd_tn, "guarantors.*.gdp_usd_tn")
                  for g in scenario.guarantors)
    any_troops = troops.max(axis=1) if troops.shape[1] else np.zeros(cells)

    return Game(
        guarantor_ids=tuple(members),
        russia_capability=side("russia", russia, "military_spending_usd_bn"),
        ukraine_capability=(side("ukraine", ukraine, "military_spending_usd_bn")
                            + side("ukraine", ukraine, "baseline_military_aid_usd_bn")),
        contest_decisiveness=side("russia", russia, "contest_decisiveness"),
        status_quo_value=side("russia", russia, "status_quo_value"),
        war_cost=side("russia", russia, "war_cost"),
        sanctions_cost=side("russia", russia, "sanctions_cost"),
        russia_catastrophe_cost=side("russia", russia, "catastrophe_cost"),
        provocation_cost=any_troops * side("russia", russia, "foreign_troops_aversion"),
        coordination_probability=fmt_value["coordination_probability"],
        added_capability=(response_column("denial_share")
                          * guarantor_column("military_spending_usd_bn") * timeliness),
        sanctions_weight=(response_column("punishment_share")
                          * guarantor_column("gdp_usd_tn") / gdp_all[:, None]),
        escalation_probability=(
            response_column("direct_combat") * guarantor_column("nuclear_armed")
            * side("russia", russia, "nuclear_escalation_probability")[:, None]),
        stake=guarantor_column("stake_in_ukraine"),
        honouring_cost=response_column("cost_share") * guarantor_column("honouring_cost"),
        reneging_cost=(fmt_value["commitment_bindingness"][:, None]
                       * guarantor_column("audience_cost")
                       + troops * guarantor_column("tripwire_cost")),
        catastrophe_cost=guarantor_column("catastrophe_cost"),
        readiness_cost=guarantor_column("readiness_cost"),
        troops_on_ground=troops,
    )
