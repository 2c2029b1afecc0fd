"""One run of the sweep, round by round: Step, Play / Pause and Reset, as in SolaraViz or
NetLogo.

The run is the sweep's own (:func:`deterrence.api.step_run`): replicate ``r`` of a point is
run ``cell * replicates + r`` of the Mesa model, with the sweep's random numbers, so the
rounds shown are those the sweep's maps average. The seed is the sweep's root seed: every
run's random numbers are a pure function of (seed, run, round), so the same seed plays the
same run again and another seed another draw of it.

Use from the page::

    from deterrence.dashboard import run_view
    run_view.run_panel(plan, "run_")   # plan: api.Plan; draws the panel

The stepping object lives in ``st.session_state[key_prefix + "stepper"]`` (one per
session and prefix); Play reruns only the panel (``st.fragment(run_every=...)``).
"""

from __future__ import annotations

import altair as alt
import numpy as np
import pandas as pd
import streamlit as st

from deterrence import api
from deterrence.dashboard import maps

#: Most rounds the panel plays in one run, whatever the sweep's ``steps`` (each round
#: redraws the plots of every round so far).
MAX_ROUNDS = 500
#: Play's speed, rounds per second: (slowest, fastest, default).
SPEED = (1, 10, 4)
#: The stocks of a run's series plotted, by column (the first two of STOCK_NAMES), in USD bn.
STOCKS = ("Ukraine's capability", "Russia's capability")
#: Colour of the shocks' rules (Okabe & Ito vermillion, as the page's other shock marks).
SHOCK_COLOUR = "#D55E00"
#: Colours of the actions: Russia escalates / refrains, a member deters / abstains, and a
#: member not called on (Russia refrained).
ACTION_COLOURS = {"escalate": "#D55E00", "refrain": "#009E73", "deter": "#0072B2",
                  "abstain": "#E69F00", "not called": "#DDDDDD"}
CHART_HEIGHT = 220


def axis_label(path: str) -> str:
    """A swept parameter's label with its unit, as the maps title their axes."""
    return maps.axis_title(path)


def parse_seed(text: str) -> int | None:
    """The root seed typed, or None (shown why, in one line) if it is not one."""
    try:
        seed = int(text.strip())
    except ValueError:
        seed = -1
    if not 0 <= seed <= api.MAX_SEED:
        st.error(f"Seed = {text!r}: allowed: a whole number from 0 to {api.MAX_SEED}")
        return None
    return seed


def choose_cell(plan: api.Plan, key_prefix: str, columns) -> int:
    """The point chosen: one value per axis of a grid, or a sample's point."""
    paths = [a.path for a in plan.spec.axes]
    if plan.grid_shape is None:
        return columns[0].selectbox(
            "Point", range(plan.cells), key=f"{key_prefix}point",
            format_func=lambda c: ", ".join(f"{p} = {v:.3g}"
                                            for p, v in zip(paths, plan.points[c],
                                                            strict=True)))
    match = np.ones(plan.cells, dtype=bool)
    for j, path in enumerate(paths):
        values = sorted(set(plan.points[:, j].tolist()))
        value = columns[j % len(columns)].selectbox(
            axis_label(path), values, key=f"{key_prefix}axis{j}",
            format_func=lambda v: f"{v:.3g}")
        match &= plan.points[:, j] == value
    return int(np.flatnonzero(match)[0])


def stepper(plan: api.Plan, key_prefix: str, format_id: str, cell: int, replicate: int,
            seed: int) -> api.RunStepper:
    """The session's stepper for this choice, rebuilt at round 0 when the choice changes."""
    choice = (plan.scenario.name, plan.spec.model_dump_json(), format_id, cell, replicate,
              seed)
    state = st.session_state
    if state.get(f"{key_prefix}choice") != choice:
        reset(key_prefix, api.step_run(plan, format_id, cell, replicate, seed))
        state[f"{key_prefix}choice"] = choice
    return state[f"{key_prefix}stepper"]


def reset(key_prefix: str, new: api.RunStepper) -> None:
    """Replace the session's stepper by ``new`` (paused)."""
    st.session_state[f"{key_prefix}stepper"] = new
    st.session_state[f"{key_prefix}playing"] = False


def rounds_cap(run: api.RunStepper) -> int:
    return min(run.horizon, MAX_ROUNDS)


def finished(run: api.RunStepper) -> bool:
    return run.ended or run.round >= rounds_cap(run)


def run_panel(plan: api.Plan, key_prefix: str) -> None:
    """The panel: choose format, point, replicate and seed; Step, Play / Pause, Reset and
    the speed; the plots of the rounds played so far."""
    cols = st.columns(4)
    format_id = cols[0].selectbox("Format", list(plan.formats), key=f"{key_prefix}format",
                                  format_func=lambda f: plan.formats[f].name)
    replicate = cols[1].number_input("Replicate", min_value=0,
                                     max_value=plan.spec.replicates - 1, value=0,
                                     key=f"{key_prefix}replicate")
    seed_text = cols[2].text_input(
        "Seed", value=str(plan.seed), key=f"{key_prefix}seed",
        help="The sweep's root seed: each run's random numbers are a pure function of "
             "(seed, run, round). The sweep's own seed plays the sweep's run; another seed "
             "another draw of it.")
    speed = cols[3].slider("Speed (rounds per second)", *SPEED, key=f"{key_prefix}speed")
    cell = choose_cell(plan, key_prefix, st.columns(max(len(plan.spec.axes), 1)))
    seed = parse_seed(seed_text)
    if seed is None:
        return
    stepper(plan, key_prefix, format_id, cell, int(replicate), seed)
    playing = st.session_state[f"{key_prefix}playing"]

    @st.fragment(run_every=1.0 / speed if playing else None)
    def live() -> None:
        run = st.session_state[f"{key_prefix}stepper"]
        if st.session_state[f"{key_prefix}playing"] and not finished(run):
            run.step()
        buttons = st.columns(3)
        if buttons[0].button("Step", key=f"{key_prefix}step", disabled=finished(run)):
            run.step()
        label = "Pause" if st.session_state[f"{key_prefix}playing"] else "Play"
        if buttons[1].button(label, key=f"{key_prefix}play", disabled=finished(run)):
            st.session_state[f"{key_prefix}playing"] = label == "Play"
            st.rerun()  # the whole page: the fragment's timer starts or stops
        if buttons[2].button("Reset", key=f"{key_prefix}reset"):
            reset(key_prefix, api.step_run(plan, run.format_id, run.cell, run.replicate,
                                           run.seed))
            st.rerun()
        run = st.session_state[f"{key_prefix}stepper"]
        if finished(run) and st.session_state[f"{key_prefix}playing"]:
            st.session_state[f"{key_prefix}playing"] = False
            st.rerun()  # stop the timer
        draw(run)

    live()


def status(run: api.RunStepper) -> str:
    """One line: the round, the seed and run, and the last round's outcome."""
    series = run.series()
    last = api.OUTCOME_NAMES[int(series["outcome"][0, -1])] if run.round else "not played"
    return (f"Round {run.round} of {rounds_cap(run)} · seed {run.seed} · run "
            f"{run.run_index} (point {run.cell}, replicate {run.replicate}) · outcome of "
            f"the last round: {last} · the run is {run.end_state}")


def draw(run: api.RunStepper) -> None:
    st.markdown(f"**{status(run)}**")
    if run.ended:
        st.info(f"The run ended in round {run.round - 1}: "
                f"{'Ukraine defeated' if run.end_state == 'defeated' else 'a settlement'}.")
    elif run.round >= rounds_cap(run):
        why = ("the sweep's horizon" if rounds_cap(run) == run.horizon
               else f"the panel's cap of {MAX_ROUNDS} rounds")
        st.info(f"Stopped at {why}: {run.round} rounds. Reset to play it again.")
    if not run.round:
        st.caption("Press Step or Play to play the first round.")
        return
    series = run.series()
    rounds = np.arange(run.round)
    shocks = pd.DataFrame([{"round": r, "shock": label} for r, label in run.shocks()
                           if r < run.round], columns=["round", "shock"])

    def with_shocks(chart: alt.Chart) -> alt.Chart:
        if not len(shocks):
            return chart
        base = alt.Chart(shocks)
        return chart + base.mark_rule(color=SHOCK_COLOUR, strokeDash=[4, 3]).encode(
            x="round:Q", tooltip=["shock"]) + base.mark_text(
            color=SHOCK_COLOUR, align="left", dx=3, dy=-4, baseline="bottom").encode(
            x="round:Q", y=alt.value(0), text="shock:N")

    x = alt.X("round:Q", scale=alt.Scale(domain=[0, max(run.round - 1, 1)]))
    frame = pd.DataFrame({"round": rounds, "Russia": np.where(series["escalated"][0],
                                                              "escalate", "refrain")})
    for k, member in enumerate(run.guarantors):
        frame[member] = np.where(~series["escalated"][0], "not called",
                                 np.where(series["actions"][0][:, k] > 0, "deter", "abstain"))
    actions = frame.melt("round", var_name="actor", value_name="action")
    st.altair_chart(with_shocks(alt.Chart(actions, title="Actions per round").mark_rect()
                                .encode(x=alt.X("round:O"), y=alt.Y(
                                    "actor:N", sort=["Russia", *run.guarantors]),
                                    color=alt.Color("action:N", scale=alt.Scale(
                                        domain=list(ACTION_COLOURS),
                                        range=list(ACTION_COLOURS.values()))),
                                    tooltip=["round", "actor", "action"])
                                .properties(height=CHART_HEIGHT)), width="stretch")
    if run.guarantors:
        beliefs = pd.DataFrame(series["belief"][0], columns=run.guarantors).assign(
            round=rounds).melt("round", var_name="guarantor", value_name="belief")
        st.altair_chart(with_shocks(alt.Chart(
            beliefs, title="Russia's belief that each guarantor honours").mark_line(
            point=run.round < 2).encode(x=x, y=alt.Y("belief:Q", scale=alt.Scale(
                domain=[0, 1])), color="guarantor:N").properties(height=CHART_HEIGHT)),
            width="stretch")
    stocks = pd.DataFrame(series["stocks"][0][:, :len(STOCKS)], columns=list(STOCKS)).assign(
        round=rounds).melt("round", var_name="stock", value_name="USD bn")
    st.altair_chart(with_shocks(alt.Chart(stocks, title="Capabilities (USD bn)").mark_line(
        point=run.round < 2).encode(x=x, y="USD bn:Q", color="stock:N").properties(
        height=CHART_HEIGHT)), width="stretch")
    st.caption("How to read this: one run of the Mesa model, the sweep's own (same random "
               "numbers as this replicate of this point). A member is called on only in a "
               "round in which Russia escalates. Dashed lines: the scenario's shocks.")
