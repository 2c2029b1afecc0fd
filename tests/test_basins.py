"""Where the repeated crisis goes from each start: random starts, the basins table and the
``basins`` command."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
from scipy import stats
from typer.testing import CliRunner

from deterrence import api
from deterrence.cli import app
from deterrence.game import config as C
from deterrence.simulate import engine
from deterrence.simulate import rules as dyn

from helpers import assert_engines_agree

CATALOGUE = C.load_catalogue()
BASELINE = C.load_scenario("baseline")


def test_random_priors_are_uniform_and_independent_of_the_round_numbers():
    setup = dyn.Setup.from_config(BASELINE, CATALOGUE["bilateral"])
    runs = np.arange(20_000)
    committed = dyn.committed_game(setup.base.take(np.zeros(runs.size, dtype=np.int64)),
                                   dyn.Commitments.initial(setup.base.take(
                                       np.zeros(runs.size, dtype=np.int64))))
    prior, _ = dyn.random_start(setup.key, runs, committed, setup.params)
    assert prior.shape == (runs.size, 2, setup.base.n)
    for column in prior.reshape(runs.size, -1).T[:4]:
        assert stats.kstest(column, "uniform").pvalue > 1e-4
    # the start's stream is not the rounds' stream: no correlation with round 0's draws
    round0 = dyn.uniforms(setup.key, runs, 0, 2 * setup.base.n)
    assert abs(np.corrcoef(prior.reshape(runs.size, -1)[:, 0], round0[:, 0])[0, 1]) < 0.05


@pytest.mark.parametrize("format_id", ["bilateral", "three_tier"])
def test_both_engines_agree_from_random_starts(format_id):
    scenario = C.load_scenario("us_withdrawal")
    setup = replace(dyn.Setup.from_config(scenario, CATALOGUE[format_id]), start="random")
    runs = np.array([0, 2, 9, 31, 1_000_003])
    assert_engines_agree(setup, runs, 40, chunk_runs=2)


def test_a_random_start_changes_nothing_where_every_member_is_engaged():
    """Engaged members honour whatever Russia believes and whatever they learned: from any
    start the runs are the same (a format with troops for every member)."""
    fmt = CATALOGUE["coalition"]
    spec = fmt.model_copy(update={"response_overrides": {}, "response": fmt.response.model_copy(
        update={"troops_on_ground": True})})
    setup = dyn.Setup.from_config(BASELINE, spec)
    a = engine.simulate(setup, 300, 30)
    b = engine.simulate(replace(setup, start="random"), 300, 30)
    for name in a.summary:
        np.testing.assert_array_equal(a.summary[name], b.summary[name], err_msg=name)


def test_random_starts_change_the_runs_of_a_format_without_troops():
    setup = dyn.Setup.from_config(BASELINE, CATALOGUE["bilateral"])
    a = engine.simulate(setup, 300, 30)
    b = engine.simulate(replace(setup, start="random"), 300, 30)
    assert not np.array_equal(a.summary["first_escalation"], b.summary["first_escalation"])


def test_the_basins_table_has_a_row_per_start_and_shares_that_add_up():
    table = api.basins("baseline", "nato_lite", runs=300, steps=36)
    assert list(table.index) == list(api.STARTS)
    shares = table[["ongoing_deterred_share", "ongoing_escalated_share", "defeated_share",
                    "settled_share"]].sum(axis=1)
    np.testing.assert_allclose(shares, 1.0)
    assert (table["runs"] == 300).all()
    # the equilibrium start is the scenario's own simulation
    sim = api.simulate_scenario("baseline", "nato_lite", runs=300, steps=36)
    never = (sim.summary["first_escalation"] < 0) & (sim.summary["end_state"] == 0)
    assert table.loc["equilibrium", "ongoing_deterred_share"] == pytest.approx(never.mean())


def test_the_basins_command_prints_the_table_and_json():
    runner = CliRunner()
    shown = runner.invoke(app, ["basins", "baseline", "-f", "bilateral", "--runs", "50",
                                "--steps", "12"], env={"COLUMNS": "200"})
    assert shown.exit_code == 0, shown.output
    assert "equilibrium" in shown.stdout and "random" in shown.stdout
    shown = runner.invoke(app, ["basins", "baseline", "--runs", "50", "--steps", "12",
                                "--json"])
    data = json.loads(shown.stdout)
    assert set(data["starts"]) == set(api.STARTS)


def test_bad_arguments_give_one_line():
    runner = CliRunner()
    shown = runner.invoke(app, ["basins", "baseline", "-f", "no_such", "--runs", "5"])
    assert shown.exit_code == 2 and "no_such" in shown.output
    with pytest.raises(C.ConfigError, match="starts"):
        api.basins("baseline", starts=("sideways",))
