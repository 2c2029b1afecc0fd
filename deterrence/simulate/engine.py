"""The vectorised engine: many runs of the repeated crisis advanced together.

Each step applies the rules of :mod:`deterrence.simulate.rules` to arrays over runs; the
Mesa model (:mod:`deterrence.simulate.mesa_model`) applies the same functions to one run.
Runs are processed in chunks (memory stays bounded by the chunk size); a run's numbers
depend only on the root key and its run index, not on the chunking.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..game.config import ConfigError, size_text
from ..game.payoffs import russia_success_probability
from . import rules as dyn

#: Runs advanced together; bounds memory: the largest arrays of a round are Russia's
#: expectation, (chunk, quadrature nodes, members) floats (about 37 MB at 32 nodes and 35
#: members), and the coordinated equilibrium's boxes, solved for the chunk's coordinating
#: runs only. Each round costs some 100 array operations whatever the chunk, so larger
#: chunks spread that cost: 4096 runs take 3.6 us per run-step against 7.5 for 512
#: (nato_lite, 8 members; benchmarks/engine_vs_mesa.py).
CHUNK_RUNS = 4096
#: Most memory the results of one simulation may take as held (:func:`result_bytes`);
#: stacking the series and writing them to a file copies them once or twice more.
RESULT_MEMORY_LIMIT = 2 * 2**30
#: Bytes kept per run whatever is asked: its index and cell (8 bytes each), six summaries
#: of 8 bytes and its end state (1 byte).
RUN_BYTES = 2 * 8 + 6 * 8 + 1


def series_bytes_per_round(members: int) -> int:
    """Bytes of one run's series for one round (:class:`deterrence.simulate.rules.Series`):
    escalated, team and outcome (1 byte each), each member's action (1 byte), belief and
    attraction (8 bytes each), and four stocks (8 bytes each)."""
    return 3 + members * (1 + 8 + 8) + 4 * 8


def result_bytes(runs: int, steps: int, members: int, keep_series: bool) -> int:
    """Memory the results of ``runs`` runs of ``steps`` rounds take as held."""
    per_run = RUN_BYTES + (steps * series_bytes_per_round(members) if keep_series else 0)
    return runs * per_run


def check_result_memory(runs: int, steps: int, members: int, keep_series: bool) -> None:
    """Raise ConfigError, before any work, if the results would not fit
    :data:`RESULT_MEMORY_LIMIT`; the message says what they would need."""
    need = result_bytes(runs, steps, members, keep_series)
    if need > RESULT_MEMORY_LIMIT:
        per_run = result_bytes(1, steps, members, keep_series)
        what = (f"{runs:,} runs x {steps:,} rounds of series for {members} members"
                if keep_series else f"{runs:,} runs")
        raise ConfigError(f"runs = {runs}: the results of {what} would take "
                          f"{size_text(need)} in memory; at most "
                          f"{size_text(RESULT_MEMORY_LIMIT)} allowed: use at most "
                          f"{RESULT_MEMORY_LIMIT // per_run:,} runs"
                          + (" or fewer rounds, or no series" if keep_series else ""))


@dataclass(frozen=True)
class Simulation:
    """Results of runs: per-run summaries and, if kept, per-step series."""

    guarantor_ids: tuple[str, ...]
    run_ids: np.ndarray
    steps: int
    summary: dict[str, np.ndarray]
    series: dict[str, np.ndarray] | None


def simulate(setup: dyn.Setup, runs: int | np.ndarray, steps: int, keep_series: bool = False,
             chunk_runs: int = CHUNK_RUNS, cells: np.ndarray | None = None,
             progress=None) -> Simulation:
    """Advance ``runs`` (a count, or explicit run indices) for ``steps`` rounds.

    ``cells`` gives, for each run, the cell of ``setup.base`` (a parameter point) it plays;
    by default every run plays cell 0. ``progress``, if given, is called with the number of
    runs finished after each chunk.
    """
    count = int(runs) if np.isscalar(runs) else len(runs)
    check_result_memory(count, steps, setup.base.n, keep_series)
    if chunk_runs < 1:
        raise ValueError("chunk_runs must be at least 1")
    run_ids = np.arange(runs) if np.isscalar(runs) else np.asarray(runs, dtype=np.int64)
    if run_ids.size == 0 or steps < 1:
        raise ValueError("need at least one run and one step")
    cells = (np.zeros(run_ids.size, dtype=np.int64) if cells is None
             else np.asarray(cells, dtype=np.int64))
    if cells.shape != run_ids.shape or cells.min() < 0 or cells.max() >= setup.base.cells:
        raise ValueError(f"cells must give one cell in [0, {setup.base.cells}) per run")
    if run_ids.min() < 0 or run_ids.max() >= dyn.MAX_RUNS or steps > dyn.MAX_STEPS:
        raise ValueError(f"run indices must be in [0, {dyn.MAX_RUNS}) and steps <= "
                         f"{dyn.MAX_STEPS}")
    parts = []
    for s in range(0, run_ids.size, chunk_runs):
        parts.append(_simulate_chunk(setup, run_ids[s:s + chunk_runs], cells[s:s + chunk_runs],
                                     steps, keep_series))
        if progress:
            progress(min(run_ids.size, s + chunk_runs))
    return combine([Simulation(setup.base.guarantor_ids, run_ids[s:s + chunk_runs], steps,
                               summary, series)
                    for s, (summary, series) in zip(range(0, run_ids.size, chunk_runs), parts,
                                                    strict=True)])


def combine(parts: list[Simulation]) -> Simulation:
    """Concatenate simulations of the same set-up along the run axis."""
    first = parts[0]
    summary = {k: np.concatenate([p.summary[k] for p in parts]) for k in first.summary}
    series = ({k: np.concatenate([p.series[k] for p in parts]) for k in first.series}
              if first.series is not None else None)
    return Simulation(first.guarantor_ids, np.concatenate([p.run_ids for p in parts]),
                      first.steps, summary, series)


class _Cells:
    """The runs' parameter points: what is the same for every run of a point is computed
    once per point (the equilibrium priors: shocks reach every run alike)."""

    def __init__(self, cells: np.ndarray) -> None:
        _, self.first, self.back = np.unique(cells, return_index=True, return_inverse=True)

    def priors(self, committed) -> np.ndarray:
        return dyn.equilibrium_priors(committed.take(self.first))[self.back]

    def attractions(self, committed, prior, params):
        start = dyn.initial_attractions(committed.take(self.first), prior[self.first], params)
        return tuple(a[self.back] for a in start)

    def representatives(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """One of ``rows`` per point, and for each of ``rows`` the position of its point's:
        for quantities that are the same for every run of a point."""
        _, first, back = np.unique(self.back[rows], return_index=True, return_inverse=True)
        return rows[first], back


#: Compact the chunk's state to the runs still going once this share of its rows has ended
#: (a run that ended changes no summary; gathering every array costs about one round).
COMPACT_SHARE = 0.125


@dataclass
class _Runs:
    """The state of a chunk's runs still going (without series, ended runs are dropped)."""

    rows: np.ndarray          # their rows of the chunk
    run_ids: np.ndarray
    cells: np.ndarray
    base: object
    commitments: dyn.Commitments
    committed: object
    prior: np.ndarray
    attraction_h: np.ndarray
    attraction_a: np.ndarray
    experience: np.ndarray
    honoured: np.ndarray
    abstained: np.ndarray
    stocks: dyn.Stocks
    russia_latent: np.ndarray | None
    member_latent: np.ndarray | None
    pristine: np.ndarray      # bool: no escalation and no evidence yet, at the equilibrium start
    pristine_gain: np.ndarray | None   # their escalation gain (all alike per point)

    def keep(self, kept: np.ndarray) -> _Runs:
        def sub(x):
            return None if x is None else x[kept]

        return _Runs(self.rows[kept], self.run_ids[kept], self.cells[kept],
                     self.base.take(kept),
                     dyn.Commitments(*(getattr(self.commitments, f)[kept]
                                       for f in dyn.Commitments.__dataclass_fields__)),
                     self.committed.take(kept), self.prior[kept], self.attraction_h[kept],
                     self.attraction_a[kept], self.experience[kept], self.honoured[kept],
                     self.abstained[kept],
                     dyn.Stocks(*(getattr(self.stocks, f)[kept]
                                  for f in dyn.Stocks.__dataclass_fields__)),
                     sub(self.russia_latent), sub(self.member_latent), self.pristine[kept],
                     sub(self.pristine_gain))


def _simulate_chunk(setup: dyn.Setup, run_ids: np.ndarray, cells: np.ndarray, steps: int,
                    keep_series: bool):
    """The chunk's runs, round by round. Two savings leave every number as it was: a run
    still *pristine* (at the equilibrium start, never escalated, no evidence: so its stocks
    and beliefs are its point's initial ones) has its point's escalation gain, computed once
    per point until the commitments change, and its point's coordinated gains; and without
    series, runs that ended are dropped (their summaries are final)."""
    params = setup.params
    base = setup.base.take(cells)
    n, members = base.n, base.guarantor_ids
    persistence = dyn.type_persistence(params)
    noise = params.decision_noise_share
    commitments = dyn.Commitments.initial(base, setup.membership)
    committed = dyn.committed_game(base, commitments)
    points = _Cells(cells)
    prior = points.priors(committed)
    attraction_h, attraction_a, experience = points.attractions(committed, prior, params)
    if setup.start == "random":
        prior, (attraction_h, attraction_a, experience) = dyn.random_start(
            setup.key, run_ids, committed, params)
    state = _Runs(np.arange(run_ids.size), run_ids, cells, base, commitments, committed,
                  prior, attraction_h, attraction_a, experience,
                  np.zeros((run_ids.size, 2, n)), np.zeros((run_ids.size, 2, n)),
                  dyn.Stocks.initial(base), None, None,
                  np.full(run_ids.size, setup.start == "equilibrium"), None)
    tally = dyn.Tally.empty(run_ids.size)
    series = dyn.Series() if keep_series else None
    member_slots = slice(dyn.SLOT_FIRST_MEMBER, dyn.SLOT_FIRST_MEMBER + n)
    noise_slots = slice(dyn.SLOT_FIRST_MEMBER + n, dyn.SLOT_FIRST_MEMBER + 2 * n)
    ended_since = 0

    for t in range(steps):
        r = state
        changed, restarted = False, []
        for shock in setup.shocks_at(t):
            if shock.kind == "format_switch":
                switched, membership = setup.switched[shock.format]
                r.base = switched.take(r.cells)
                r.commitments.switch(r.base.troops_on_ground, membership)
                changed, restarted = True, list(range(n))
                continue
            for i in dyn.shock_targets(shock.guarantor, members):
                if shock.kind in dyn.COMMITMENT_SHOCKS:
                    dyn.change_commitment(r.commitments, shock, i)
                    changed = True
                elif shock.kind == "election":
                    r.honoured[:, :, i] = 0.0
                    r.abstained[:, :, i] = 0.0
                    restarted.append(i)
                else:  # belief: evidence for every run
                    r.honoured, r.abstained = dyn.add_evidence(r.honoured, r.abstained, i,
                                                               shock.belief, shock.strength)
                    r.pristine[:] = False
        if changed:
            r.committed = dyn.committed_game(r.base, r.commitments)
            r.prior = _Cells(r.cells).priors(r.committed)
            r.pristine_gain = None
        if restarted:  # per run: after a random start the priors differ between runs
            start = dyn.initial_attractions(r.committed, r.prior, params)
            for i in restarted:
                r.attraction_h[:, i], r.attraction_a[:, i], r.experience[:, i] = (
                    a[:, i] for a in start)

        size = r.rows.size
        active = tally.end_state[r.rows] == dyn.ONGOING
        draws = dyn.uniforms(setup.key, r.run_ids, t, dyn.slot_count(n))
        r.russia_latent = dyn.advance_latent(r.russia_latent, draws[:, dyn.SLOT_RUSSIA_TYPE],
                                             persistence)
        r.member_latent = dyn.advance_latent(r.member_latent, draws[:, member_slots],
                                             persistence)
        game = dyn.stage_game(r.committed, r.stocks)
        belief = dyn.belief_means(r.prior, params, r.honoured, r.abstained, game,
                                  r.commitments.away)
        gain = np.empty(size)
        others = np.flatnonzero(~r.pristine)
        if others.size == size:
            gain = dyn.escalation_gain(game, belief)
        elif others.size:
            gain[others] = dyn.escalation_gain(game.take(others), belief[others])
        pristine = np.flatnonzero(r.pristine)
        if pristine.size:
            if r.pristine_gain is None:
                r.pristine_gain = np.zeros(size)
                chosen, back = _Cells(r.cells).representatives(pristine)
                r.pristine_gain[pristine] = dyn.escalation_gain(game.take(chosen),
                                                                belief[chosen])[back]
            gain[pristine] = r.pristine_gain[pristine]
        russia_type = dyn.type_value(r.russia_latent, game.russia_resolve_scale)
        escalated = active & (gain - russia_type
                              > dyn.tremble(draws[:, dyn.SLOT_RUSSIA_NOISE], noise,
                                            game.russia_resolve_scale))
        team = escalated & (draws[:, dyn.SLOT_TEAM] < game.coordination_probability)
        coordinated_gain = np.zeros((size, n))
        rows = np.flatnonzero(team)
        if rows.size:  # pristine runs play their point's game: one solve per point
            fresh, rest = rows[r.pristine[rows]], rows[~r.pristine[rows]]
            if fresh.size:
                chosen, back = _Cells(r.cells).representatives(fresh)
                coordinated_gain[fresh] = dyn.coordinated_gains(game.take(chosen))[back]
            if rest.size:
                coordinated_gain[rest] = dyn.coordinated_gains(game.take(rest))
        member_type = dyn.type_value(r.member_latent, game.resolve_scale)
        member_noise = dyn.tremble(draws[:, noise_slots], noise, game.resolve_scale)
        actions = dyn.respond(game.engaged, r.commitments.away, team, escalated,
                              coordinated_gain, r.attraction_h, r.attraction_a, member_type,
                              member_noise)
        success = russia_success_probability(game, actions[:, None, :])[:, 0]
        succeeded = draws[:, dyn.SLOT_SUCCESS] < success
        result = dyn.round_outcome(escalated, success, setup.defended_below, active)
        chose_h = np.where(escalated[:, None], actions > 0,
                           dyn.ready_posture(r.attraction_h, r.attraction_a, member_type,
                                             member_noise))
        payoff_h, payoff_a = dyn.strategy_payoffs(game, actions, escalated)
        r.attraction_h, r.attraction_a, r.experience = dyn.update_attractions(
            r.attraction_h, r.attraction_a, r.experience, params, payoff_h, payoff_a, chose_h)
        r.honoured, r.abstained = dyn.update_evidence(r.honoured, r.abstained, params,
                                                      escalated, team, actions)
        r.stocks = dyn.update_stocks(r.stocks, r.base, params, escalated, actions, game)
        r.stocks, end = dyn.consequences(r.stocks, params, escalated, succeeded,
                                         draws[:, dyn.SLOT_SETTLEMENT])
        r.pristine &= ~escalated
        tally.add(t, active, escalated, result, end, r.rows)
        if keep_series:
            after = dyn.belief_means(r.prior, params, r.honoured, r.abstained, game,
                                     r.commitments.away)
            series.record(escalated, team, actions, result, dyn.mixed_belief(game, after),
                          r.attraction_h - r.attraction_a, r.stocks)
            continue
        ended_since += int(np.count_nonzero(active & (end != dyn.ONGOING)))
        if ended_since > COMPACT_SHARE * size:
            state = r.keep(np.flatnonzero(tally.end_state[r.rows] == dyn.ONGOING))
            ended_since = 0
            if state.rows.size == 0:
                break
    return tally.summary(params.round_months), (series.arrays() if keep_series else None)


# ---------------------------------------------------------------------------------------
# Labelled arrays, written to NetCDF by the CF conventions

#: The conventions every NetCDF file of the package follows (docs/sweeps.md#netcdf-files).
CONVENTIONS = "CF-1.10"
#: netCDF's default fill value for doubles (NC_FILL_DOUBLE): a missing float (NaN in
#: memory) is written as this ``_FillValue``, which every NetCDF reader (netCDF4, R's
#: ncdf4, Julia's NCDatasets) reads back as missing.
FLOAT_FILL = 9.969209968386869e36
REFERENCES = ("deterrence documentation: docs/sweeps.md (archive files), docs/model.md "
              "(the model and its outputs), docs/analysis.md (comparisons, sensitivity)")

#: A yes/no variable, stored as int8 codes 0 and 1.
YES_NO = {"flag_values": np.array([0, 1], dtype=np.int8), "flag_meanings": "no yes",
          "units": "1"}

#: CF attributes of each run summary. Shares and rounds are dimensionless (``units = 1``);
#: a round lasts ``dynamics.round_months`` (the global attribute ``round_months``).
SUMMARY_DESCRIPTIONS: dict[str, dict] = {
    "escalation_frequency": {"long_name": "share of the run's rounds in which Russia "
                                          "escalated", "units": "1",
                             "comment": "rounds before the run ended"},
    "escalations_per_year": {"long_name": "escalations per year of the run", "units": "year-1",
                             "comment": "years before the run ended"},
    "abandoned_given_escalation": {
        "long_name": "share of escalations met by an insufficient response", "units": "1",
        "comment": "missing in a run without any escalation"},
    "deterred_share": {"long_name": "share of the run's rounds in which Russia refrained",
                       "units": "1"},
    "first_escalation": {
        "long_name": "round of the first escalation", "units": "1",
        "valid_min": np.int32(0),
        "comment": "crisis round, counted from 0; missing (code -1) in a run without "
                   "any escalation", "_FillValue": -1},
    "end_state": {"long_name": "how the run ended", "units": "1",
                  "flag_values": np.arange(len(dyn.END_STATES), dtype=np.int8),
                  "flag_meanings": " ".join(dyn.END_STATES)},
    "end_round": {
        "long_name": "round in which the run ended (Ukraine defeated, or a settlement)",
        "units": "1", "valid_min": np.int32(0),
        "comment": "crisis round, counted from 0; missing (code -1) in a run still "
                   "ongoing at the horizon", "_FillValue": -1},
}


def cf_variable(dims, values, meta: dict, coordinate: bool = False):
    """An ``xarray.Variable`` with CF attributes ``meta`` (``long_name``, ``units``,
    ``flag_values`` ...), encoded so that it reads back as it is held:

    - booleans become int8 codes 0 and 1;
    - an integer variable with ``_FillValue`` in ``meta`` (a missing code) holds NaN
      where the code is and is written as integers with that fill value;
    - a float data variable is written with ``_FillValue`` :data:`FLOAT_FILL` for NaN;
      a coordinate has no fill value (CF 5: coordinates are never missing).
    """
    import xarray as xr

    attrs = dict(meta)
    fill = attrs.pop("_FillValue", None)
    values = np.asarray(values)
    if values.dtype == bool:
        values = values.astype(np.int8)
    encoding: dict = {}
    if fill is not None:
        if not np.issubdtype(values.dtype, np.integer):
            raise TypeError(f"a missing code needs integer values, not {values.dtype}")
        # NetCDF 3 has no 64-bit integers; codes and rounds fit in 32 bits
        encoding = {"_FillValue": np.int32(fill), "dtype": "int32"}
        values = np.where(values == fill, np.nan, values)
    elif values.dtype.kind == "f":
        encoding = {"_FillValue": None if coordinate else FLOAT_FILL}
    return xr.Variable(dims, values, attrs, encoding)


def history(function: str, created: str | None = None) -> str:
    """The CF ``history`` line: when (if given) and by which function a file was made."""
    made = f"deterrence {package_version()}: {function}"
    return f"{created} {made}" if created else made


def package_version() -> str:
    from importlib import metadata

    try:
        return metadata.version("deterrence")
    except metadata.PackageNotFoundError:
        return "not installed"


def global_attributes(title: str, history_line: str, **attrs) -> dict:
    """The CF global attributes of a file (Conventions, title, history, source,
    references), then ``attrs``."""
    return {"Conventions": CONVENTIONS, "title": title, "history": history_line,
            "source": f"deterrence {package_version()}", "references": REFERENCES, **attrs}


def simulation_dataset(sim, attrs: dict):
    """Labelled arrays of a simulation (an ``xarray.Dataset``): summaries by run and, if
    kept, series by run and round (and guarantor); ``attrs`` are added to the global
    attributes."""
    from datetime import UTC, datetime

    import xarray as xr

    data = {name: cf_variable("run", values, SUMMARY_DESCRIPTIONS[name])
            for name, values in sim.summary.items()}
    coords = {"run": cf_variable("run", sim.run_ids, {
                  "long_name": "run index (its random numbers depend only on the root seed "
                               "and this index)", "units": "1"}, coordinate=True),
              "guarantor": cf_variable("guarantor", list(sim.guarantor_ids),
                                       {"long_name": "guarantor id"}, coordinate=True)}
    if sim.series is not None:
        s = sim.series
        run_round, per_guarantor = ("run", "round"), ("run", "round", "guarantor")
        capability = {"units": "1", "comment": "in USD bn (military expenditure and aid); "
                                               "UDUNITS has no currency, so units is 1"}
        outcomes = dyn.OUTCOME_NAMES
        coords["round"] = cf_variable("round", np.arange(sim.steps), {
            "long_name": "crisis round, counted from 0", "units": "1"}, coordinate=True)
        data.update({
            "escalated": cf_variable(run_round, s["escalated"], {
                "long_name": "Russia escalated in the round", **YES_NO}),
            "team_formed": cf_variable(run_round, s["team"], {
                "long_name": "the members coordinated their response", **YES_NO}),
            "outcome": cf_variable(run_round, s["outcome"], {
                "long_name": "outcome of the round", "units": "1",
                "flag_values": np.arange(len(outcomes), dtype=s["outcome"].dtype),
                "flag_meanings": " ".join(outcomes)}),
            "honoured": cf_variable(per_guarantor, s["actions"], {
                "long_name": "the guarantor honoured its commitment in the round (no in a "
                             "round without escalation)", **YES_NO}),
            "belief": cf_variable(per_guarantor, s["belief"], {
                "long_name": "Russia's belief that the guarantor honours, after the round's "
                             "learning", "units": "1"}),
            "attraction": cf_variable(per_guarantor, s["attraction"], {
                "long_name": "the guarantor's attraction of being ready to honour less that "
                             "of not (experience-weighted attraction)",
                "units": "1", "comment": "in the guarantor's utility units"}),
            "ukraine_capability": cf_variable(run_round, s["stocks"][..., 0], {
                "long_name": "Ukraine's capability in the denial contest, USD bn",
                **capability}),
            "russia_capability": cf_variable(run_round, s["stocks"][..., 1], {
                "long_name": "Russia's capability in the denial contest, USD bn",
                **capability}),
            "sanctions_stock": cf_variable(run_round, s["stocks"][..., 2], {
                "long_name": "accumulated sanctions stock", "units": "1"}),
            "war_aims_achieved": cf_variable(run_round, s["stocks"][..., 3], {
                "long_name": "share of its war aims Russia has achieved", "units": "1"}),
        })
    created = datetime.now(UTC).isoformat(timespec="seconds")
    cf = global_attributes("Repeated crisis simulation",
                           history("deterrence.simulate.engine.simulation_dataset", created))
    return xr.Dataset(data, coords=coords, attrs={**cf, **attrs})
