"""The Mesa model is usable as a Mesa user expects: keyword parameters, Mesa's own
``batch_run`` and its ``DataCollector``, with the engine's numbers."""

from __future__ import annotations

import mesa
import numpy as np
import pandas as pd

from deterrence.game import config as C
from deterrence.simulate import engine
from deterrence.simulate import rules as dyn
from deterrence.simulate.mesa_model import CrisisModel


def test_mesa_batch_run_runs_the_model_over_keyword_parameters():
    results = pd.DataFrame(mesa.batch_run(
        CrisisModel, parameters={"scenario": "baseline", "format_id": ["nato_lite", "budapest"],
                                 "run_index": [0, 3]},
        iterations=1, max_steps=6, number_processes=1, display_progress=False))
    assert set(results["format_id"]) == {"nato_lite", "budapest"}
    assert {"escalated", "outcome", "war_aims_achieved", "guarantor", "honoured"} <= set(
        results.columns)
    # each (format, run): one row per agent (Russia, Ukraine, each member) at the last step
    members = {fid: len(C.member_ids(C.load_catalogue()[fid], C.load_scenario("baseline")))
               for fid in ("nato_lite", "budapest")}
    sizes = results.groupby(["format_id", "run_index"]).size()
    for (fid, _), size in sizes.items():
        assert size == members[fid] + 2, (fid, size)


def test_the_data_collector_holds_the_engines_series():
    scenario = C.load_scenario("us_withdrawal")
    catalogue = C.load_catalogue()
    model = CrisisModel(scenario="us_withdrawal", format_id="bilateral", run_index=7)
    for _ in range(30):
        model.step()
    frame = model.datacollector.get_model_vars_dataframe()
    sim = engine.simulate(dyn.Setup.from_config(scenario, catalogue["bilateral"]),
                          np.array([7]), 30, keep_series=True)
    np.testing.assert_array_equal(frame["escalated"].to_numpy(), sim.series["escalated"][0])
    np.testing.assert_array_equal(frame["war_aims_achieved"].to_numpy(),
                                  sim.series["stocks"][0, :, 3])
    agents = model.datacollector.get_agent_vars_dataframe().dropna(subset=["guarantor"])
    honoured = agents["honoured"].astype(bool).to_numpy().reshape(30, -1)
    np.testing.assert_array_equal(honoured, sim.series["actions"][0].astype(bool))
