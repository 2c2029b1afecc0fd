"""The dashboard's "One run" panel (``dashboard/run_view.py``) and the API's stepping run
(:func:`deterrence.api.step_run`): stepping a run round by round plays exactly the run the
sweep computes (:func:`deterrence.api.plan_run`, the reference), bit for bit, also through
a scenario's shocks; Reset plays it again; another seed plays another run; and the panel,
headless (AppTest), steps one round per Step, goes back to round 0 on Reset and shows the
seed."""

from __future__ import annotations

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from deterrence import api

FORMATS = ["bilateral", "coalition", "nato_lite"]
STEPS = 60  # past the shocks of us_withdrawal (rounds 24, 36 and 48)
TIMEOUT = 60


def small_plan(scenario: str = "us_withdrawal.toml", steps: int = STEPS, seed=None):
    scenario = api.load_scenario(api.SCENARIOS_DIR / scenario)
    return api.sweep_plan(scenario, {"russia.war_cost": {"low": 0.5, "high": 2.0, "count": 3},
                                     "russia.war_aims_value": {"low": 0.5, "high": 2.0,
                                                               "count": 3}},
                          formats=FORMATS, replicates=2, steps=steps, seed=seed)


def played(stepper, rounds):
    for _ in range(rounds):
        stepper.step()
    return stepper.series()


def same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(
        a[k].dtype == b[k].dtype and np.array_equal(a[k], b[k], equal_nan=True) for k in a)


@pytest.mark.parametrize("format_id", FORMATS)
def test_stepping_is_the_sweeps_run_bit_for_bit(format_id):
    plan = small_plan()
    assert plan.scenario.shocks  # the run goes through the scenario's shocks
    cell, replicate = 4, 1
    summary, series, members = api.plan_run(plan, format_id, cell, replicate)
    stepper = api.step_run(plan, format_id, cell, replicate)
    assert stepper.round == 0 and stepper.series() == {}
    assert same(played(stepper, STEPS), series)
    assert stepper.guarantors == members
    for name, values in summary.items():
        assert np.array_equal(stepper.summary()[name], values, equal_nan=True), name
    # the first n rounds are the reference's first n rounds
    partial = api.step_run(plan, format_id, cell, replicate)
    assert same(played(partial, 30), {k: v[:, :30] for k, v in series.items()})


def test_reset_plays_the_same_run_and_another_seed_another():
    plan = small_plan()
    first = played(api.step_run(plan, "coalition", 2, 0), STEPS)
    assert same(played(api.step_run(plan, "coalition", 2, 0), STEPS), first)
    other = api.step_run(plan, "coalition", 2, 0, seed=plan.seed + 1)
    assert other.seed == plan.seed + 1
    assert not same(played(other, STEPS), first)
    # the seed is the plan's root seed: a plan made with that seed plays the same run
    reseeded = small_plan(seed=plan.seed + 1)
    assert same(api.plan_run(reseeded, "coalition", 2, 0)[1],
                played(api.step_run(plan, "coalition", 2, 0, seed=plan.seed + 1), STEPS))


def test_the_shocks_and_the_horizon():
    plan = small_plan(steps=30)
    stepper = api.step_run(plan, "bilateral", 0, 0)
    # only the shocks within the 30 rounds, labelled with their kind and target
    assert [r for r, _ in stepper.shocks()] == [s.step for s in plan.scenario.shocks
                                                if s.step < 30]
    assert all(label.startswith(kind) for (_, label), kind in
               zip(stepper.shocks(), [s.kind for s in plan.scenario.shocks], strict=False))
    played(stepper, 30)
    assert stepper.done
    with pytest.raises(api.ConfigError, match="horizon is 30 rounds"):
        stepper.step()


@pytest.mark.parametrize("kwargs, key", [({"format_id": "nato"}, "format"),
                                         ({"cell": 9}, "cell"), ({"replicate": -1}, "replicate"),
                                         ({"seed": -3}, "seed"), ({"seed": 2 ** 63}, "seed")])
def test_bad_choices_name_the_key(kwargs, key):
    args = {"format_id": "bilateral", "cell": 0, "replicate": 0} | kwargs
    seed = args.pop("seed", None)
    with pytest.raises(api.ConfigError, match=f"^{key} = "):
        api.step_run(small_plan(), seed=seed, **args)


def panel_script(steps: int = 20):
    from deterrence import api as api_
    from deterrence.dashboard import run_view

    scenario = api_.load_scenario(api_.SCENARIOS_DIR / "us_withdrawal.toml")
    plan = api_.sweep_plan(scenario, {"russia.war_cost": {"low": 0.5, "high": 2.0, "count": 3},
                                      "russia.war_aims_value": {"low": 0.5, "high": 2.0,
                                                                "count": 3}},
                           formats=["bilateral", "coalition", "nato_lite"], replicates=2,
                           steps=steps)
    run_view.run_panel(plan, "t_")


def round_shown(at) -> int:
    line = next(m.value for m in at.markdown if m.value.startswith("**Round "))
    return int(line.split()[1])


def test_panel_steps_resets_and_shows_the_seed():
    at = AppTest.from_function(panel_script, default_timeout=TIMEOUT).run()
    assert not at.exception and not at.error
    plan = small_plan(steps=20)
    assert at.text_input(key="t_seed").value == str(plan.seed)
    assert round_shown(at) == 0
    assert f"seed {plan.seed}" in at.markdown[0].value
    at.button(key="t_step").click().run()
    assert round_shown(at) == 1
    at.button(key="t_step").click().run()
    assert round_shown(at) == 2
    # the panel's run is the sweep's: its two rounds are plan_run's first two
    stepper = at.session_state["t_stepper"]
    reference = api.plan_run(plan, "bilateral", 0, 0)[1]
    assert same(stepper.series(), {k: v[:, :2] for k, v in reference.items()})
    at.button(key="t_reset").click().run()
    assert round_shown(at) == 0 and at.session_state["t_stepper"].round == 0
    at.text_input(key="t_seed").set_value("7").run()
    assert at.session_state["t_stepper"].seed == 7 and "seed 7 " in at.markdown[0].value


def test_panel_refuses_a_bad_seed_in_one_line():
    at = AppTest.from_function(panel_script, default_timeout=TIMEOUT).run()
    at.text_input(key="t_seed").set_value("-1").run()
    assert not at.exception
    assert [e.value for e in at.error] == [
        f"Seed = '-1': allowed: a whole number from 0 to {api.MAX_SEED}"]


def test_panel_plays_to_the_horizon():
    """Play steps once per run of the fragment and stops, paused, at the horizon."""
    at = AppTest.from_function(panel_script, kwargs={"steps": 3},
                               default_timeout=TIMEOUT).run()
    at.button(key="t_play").click().run()
    assert at.session_state["t_playing"]
    for _ in range(5):  # AppTest has no timer: each run plays the fragment's tick
        at.run()
    assert at.session_state["t_stepper"].round == 3
    assert not at.session_state["t_playing"]
    assert any("Stopped at the sweep's horizon" in i.value for i in at.info)


def test_a_dropped_stepper_frees_its_model():
    """Mesa's registry of agents (mesa issue 3179) does not keep a stepper's model alive,
    so a session's Reset or a new choice does not leak the old run."""
    import gc

    import mesa

    def live() -> int:
        gc.collect()
        return sum(isinstance(o, mesa.Model) for o in gc.get_objects())

    plan = small_plan(steps=5)
    before = live()
    stepper = api.step_run(plan, "coalition", 0, 0)
    played(stepper, 5)
    assert live() == before + 1
    del stepper
    assert live() == before
