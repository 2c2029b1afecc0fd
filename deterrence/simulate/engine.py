"""The vectorised engine: many runs of the repeated crisis advanced together.

Each step applies the rules of :mod:`deterrence.simulate.rules` to arrays over runs; the
Mesa model (:mod:`deterrence.simulate.mesa_model`) applies the same functions to one run.
Runs are processed in chunks (memory stays bounded by the chunk size); a run's numbers
depend only on the root key and its run index, not on the chunking.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..game.payoffs import all_profiles, outcome, russia_success_probability
from ..solve.equilibrium import crisis_tables
from . import rules as dyn

#: Runs advanced together; bounds memory (the 2^n profile tables are (chunk, 2^n)).
CHUNK_RUNS = 512


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


def _simulate_chunk(setup: dyn.Setup, run_ids: np.ndarray, cells: np.ndarray, steps: int,
                    keep_series: bool):
    params, rationality = setup.params, setup.rationality
    base = setup.base.take(cells)
    n, members = base.n, base.guarantor_ids
    coordination = base.coordination_probability
    stocks = dyn.initial_stocks(base)
    alpha, beta = dyn.prior_beliefs(params, (run_ids.size, n))
    # the same for every run of a cell: computed once per cell
    unique, back = np.unique(cells, return_inverse=True)
    start_attraction = dyn.initial_attraction(setup.base.take(unique), params)[back]
    attraction = start_attraction.copy()
    withdrawn = np.zeros((run_ids.size, n), dtype=bool)
    cost_factor = np.ones((run_ids.size, n))
    tally = dyn.Tally.empty(run_ids.size)
    series = dyn.Series() if keep_series else None
    prior_alpha, prior_beta = dyn.prior_beliefs(params, (run_ids.size, n))

    for t in range(steps):
        for shock in (s for s in setup.shocks if s.step == t):
            for i in dyn.shock_targets(shock.guarantor, members):
                if shock.kind == "withdraw":
                    withdrawn[:, i] = True
                elif shock.kind == "cost_change":
                    cost_factor[:, i] *= shock.factor
                else:  # election
                    alpha[:, i], beta[:, i] = prior_alpha[:, i], prior_beta[:, i]
                    attraction[:, i] = start_attraction[:, i]
        game = dyn.stage_game(base, stocks, cost_factor)
        tables = crisis_tables(game, withdrawn)
        draws = dyn.uniforms(setup.key, run_ids, t, dyn.SLOT_FIRST_GUARANTOR + n)
        belief = dyn.belief_means(alpha, beta, withdrawn)
        escalated = draws[:, dyn.SLOT_RUSSIA] < dyn.escalation_probability(
            rationality, tables, belief)
        team = escalated & (draws[:, dyn.SLOT_TEAM] < coordination)
        honours = draws[:, dyn.SLOT_FIRST_GUARANTOR:] < dyn.honour_probability(
            rationality, attraction, withdrawn)
        actions = np.where(team[:, None], all_profiles(n)[tables.team], honours)
        actions = actions * escalated[:, None]
        success = russia_success_probability(game, actions[:, None, :])[:, 0]
        result = outcome(escalated, success, setup.defended_below)
        decided_alone = (escalated & ~team).astype(np.float64)[:, None]
        gains = dyn.honouring_gains(game, actions)
        attraction = dyn.update_attraction(attraction, params, decided_alone, gains,
                                           game.readiness_cost)
        alpha, beta = dyn.update_beliefs(alpha, beta, params, decided_alone, actions,
                                         base.troops_on_ground, withdrawn)
        stocks = dyn.update_stocks(stocks, base, params, escalated, actions)
        tally.add(t, escalated, result)
        if keep_series:
            series.record(escalated, team, actions, result,
                          dyn.belief_means(alpha, beta, withdrawn), attraction, stocks)
    return tally.summary(steps), (series.arrays() if keep_series else None)


SUMMARY_DESCRIPTIONS = {
    "escalation_frequency": ("share of rounds in which Russia escalated", "share"),
    "abandoned_given_escalation": ("share of escalations met by an insufficient response "
                                   "(NaN: no escalation)", "share"),
    "deterred_share": ("share of rounds in which Russia refrained", "share"),
    "first_escalation": ("round of the first escalation (-1: none)", "round"),
}


def simulation_dataset(sim, attrs: dict):
    """Labelled arrays of a simulation (an ``xarray.Dataset``): summaries by run and, if
    kept, series by run and round (and guarantor)."""
    import xarray as xr
    data = {name: ("run", values, {"description": SUMMARY_DESCRIPTIONS[name][0],
                                   "units": SUMMARY_DESCRIPTIONS[name][1]})
            for name, values in sim.summary.items()}
    coords = {"run": sim.run_ids, "guarantor": list(sim.guarantor_ids)}
    if sim.series is not None:
        s = sim.series
        coords["round"] = np.arange(sim.steps)
        data.update({
            "escalated": (("run", "round"), s["escalated"].astype(np.int8)),
            "team_formed": (("run", "round"), s["team"].astype(np.int8)),
            "outcome": (("run", "round"), s["outcome"],
                        {"description": "0 deterred, 1 defended, 2 abandoned"}),
            "honoured": (("run", "round", "guarantor"), s["actions"]),
            "belief": (("run", "round", "guarantor"), s["belief"],
                       {"description": "Russia's belief that the guarantor honours, after "
                                       "the round's learning"}),
            "attraction": (("run", "round", "guarantor"), s["attraction"]),
            "ukraine_capability": (("run", "round"), s["stocks"][..., 0], {"units": "USD bn"}),
            "russia_capability": (("run", "round"), s["stocks"][..., 1], {"units": "USD bn"}),
            "sanctions_stock": (("run", "round"), s["stocks"][..., 2]),
        })
    return xr.Dataset(data, coords=coords, attrs=attrs)
