"""Streamlit dashboard: widgets and plots only; every number comes from the package's API.

Run with ``deterrence dashboard`` (bound to 127.0.0.1). The defaults are those of
``configs/sweeps/quickstart.toml``; the sweep is the same plan and code path as
``deterrence sweep``, validated as a sweep file is.

It answers only a page opened under a loopback name (:func:`host_allowed`), so a web
page elsewhere cannot drive it by having its own name resolve to this machine (DNS
rebinding), and it saves at most one archive at a time, :data:`SAVE_INTERVAL_S` apart.
Streamlit runs this file as ``__main__``; importing it (the tests do) defines the
functions without drawing a page.
"""

from __future__ import annotations

import io
import json
import math
import re
import threading
import time
import zipfile
from collections import OrderedDict
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import altair as alt
import numpy as np
import pandas as pd
import streamlit as st

from deterrence import api
from deterrence.api import (
    REGIME_NAMES,
    SCENARIOS_DIR,
    ConfigError,
    compare_formats,
    dim_name,
    load_scenario,
    paired_difference,
    parameter_paths,
    significance_counts,
)

DEFAULT_SWEEP = api.SWEEPS_DIR / "quickstart.toml"
#: Largest sweep run interactively, in simulated run-rounds; larger ones go to the CLI.
INTERACTIVE_LIMIT = 3_000_000
#: The colours of the analysis layer (Okabe & Ito 2008), in code order.
REGIME_COLOURS = [api.REGIME_COLOURS[name] for name in REGIME_NAMES]
MAPS_PER_ROW = 3
SIMULATIONS_KEPT = 16
#: The dashboard's own limits on what a visitor may ask for (the sweep file's schema allows
#: more; larger sweeps run headless with ``deterrence sweep``): points per axis (the exact
#: maps solve every point of every format at once), replicates and rounds (one run of the
#: Mesa model is simulated whatever the size of the sweep).
AXIS_POINTS = (2, 60)
REPLICATES = (1, 1000)
ROUNDS = (1, 2000)
#: Seconds from the end of one save to the start of the next, for the whole server: a save
#: runs the sweep into an archive and writes its report, so pressing Save again and again
#: (or a script doing it) cannot keep the machine busy or fill the disk.
SAVE_INTERVAL_S = 10.0
#: Host headers the dashboard answers: the loopback names, with any port.
LOOPBACK_HOST = re.compile(r"(localhost|127\.0\.0\.1|\[::1\])(:[0-9]{1,5})?", re.IGNORECASE)


# ---------------------------------------------------------------------------------------
# Who may use the dashboard, and how often it saves


def host_allowed(host: str) -> bool:
    """Whether ``host``, a request's Host header, is a loopback name (localhost, 127.0.0.1,
    [::1]) with or without a port. A page elsewhere that has its own name resolve to
    127.0.0.1 (DNS rebinding) reaches the server with its own name as Host, and Streamlit
    accepts its WebSocket as same-origin."""
    return LOOPBACK_HOST.fullmatch(host) is not None


def visitor_host() -> str | None:
    """The Host header of the visitor's connection (its WebSocket handshake); None when the
    script runs without a connection (AppTest, bare mode), which has no headers at all."""
    headers = st.context.headers
    if not len(headers):
        return None
    hosts = headers.get_all("Host")
    return hosts[0] if len(hosts) == 1 else ", ".join(hosts)  # none or several: refused


class SaveGate:
    """At most one save at a time, and ``interval`` seconds from the end of one save to the
    start of the next; ``clock`` gives seconds (monotonic)."""

    def __init__(self, interval: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.interval, self._clock = interval, clock
        self._lock = threading.Lock()
        self._finished: float | None = None

    def try_start(self) -> str | None:
        """None if a save may start now (the caller then calls :meth:`finish`); otherwise
        the reason it may not, in one line."""
        if not self._lock.acquire(blocking=False):
            return "A save is already running: press Save again when it has finished."
        if self._finished is not None:
            wait = self.interval - (self._clock() - self._finished)
            if wait > 0:
                self._lock.release()
                return (f"Saves are at least {self.interval:g} s apart: press Save again in "
                        f"{math.ceil(wait)} s.")
        return None

    def finish(self) -> None:
        self._finished = self._clock()
        self._lock.release()


@st.cache_resource
def save_gate() -> SaveGate:
    """The server's one gate, shared by every visitor."""
    return SaveGate(SAVE_INTERVAL_S)


# ---------------------------------------------------------------------------------------
# Cached computations (pure functions of their inputs)


@st.cache_data(show_spinner=False)
def default_spec() -> dict:
    return api.load_plan(DEFAULT_SWEEP).spec.model_dump(mode="json")


@st.cache_data(show_spinner=False)
def scenario_files() -> list[str]:
    return sorted(p.name for p in SCENARIOS_DIR.glob("*.toml"))


@st.cache_data(show_spinner=False)
def axis_choices(scenario_name: str, formats: tuple[str, ...]) -> list[str]:
    """Parameter paths valid for every chosen format."""
    scenario = load_scenario(SCENARIOS_DIR / scenario_name)
    catalogue = api.load_catalogue()
    sets = [set(parameter_paths(scenario, catalogue[f])) for f in formats]
    common = set.intersection(*sets) if sets else set()
    ordered = parameter_paths(scenario, catalogue[formats[0]]) if formats else []
    return [p for p in ordered if p in common]


def make_plan(scenario_name: str, spec_json: str) -> api.Plan:
    """The sweep's plan, validated as a sweep file is (raises ConfigError naming the key,
    the value and what is allowed)."""
    spec = json.loads(spec_json)
    return api.sweep_plan(
        load_scenario(SCENARIOS_DIR / scenario_name),
        {a["path"]: {k: a[k] for k in ("low", "high", "count")} for a in spec["axes"]},
        formats=spec["formats"], method=spec["method"], replicates=spec["replicates"],
        steps=spec["steps"], name=spec["name"])


@st.cache_data(show_spinner=False, max_entries=32)
def exact_maps(scenario_name: str, spec_json: str):
    return api.exact_dataset(make_plan(scenario_name, spec_json))


@st.cache_resource
def _simulations() -> OrderedDict:
    """Simulated sweeps kept across reruns and sessions, newest last."""
    return OrderedDict()


def simulated_maps(scenario_name: str, spec_json: str, place) -> object:
    """The sweep's simulations, from the store or computed with a progress bar in ``place``
    (not st.cache_data: a cached function may not draw into the page)."""
    store, key = _simulations(), (scenario_name, spec_json)
    if key not in store:
        bar = place.progress(0.0, text="Simulating…")
        store[key] = api.simulate_plan(
            make_plan(scenario_name, spec_json),
            progress=lambda done, total: bar.progress(
                done / total, text=f"Simulating: chunk {done} of {total}"))
        bar.empty()
        while len(store) > SIMULATIONS_KEPT:
            store.popitem(last=False)
    store.move_to_end(key)
    return store[key]


@st.cache_data(show_spinner=False, max_entries=64)
def one_run(scenario_name: str, spec_json: str, format_id: str, cell: int, replicate: int):
    """The Mesa model's run of the sweep's run ``cell * replicates + replicate``."""
    plan = make_plan(scenario_name, spec_json)
    summary, series, guarantors = api.plan_run(plan, format_id, cell, replicate)
    return summary, series, guarantors, [
        (s.step, s.kind, s.guarantor) for s in plan.scenario.shocks]


# ---------------------------------------------------------------------------------------
# Inputs


class Numbers:
    """The sidebar's numbers, typed as text and read here, so that every entry reaches the
    checks (a number box would drop, without a word, what the browser cannot hold, such as
    1e400). Each is a key of the sweep file; what cannot be read is kept as a problem."""

    def __init__(self) -> None:
        self.problems: list[str] = []

    def read(self, place, label: str, default: float, key: str, spec_key: str, *,
             whole: bool = False, limits: tuple[int, int] | None = None,
             title: str | None = None) -> float | None:
        """The number typed in the box ``label`` (widget ``key``) for the sweep file's key
        ``spec_key``: finite, whole if ``whole``, within the dashboard's ``limits`` if
        given; otherwise None, and the problem is kept, named by ``title`` (default: the
        label) and the key."""
        text = place.text_input(label, value=str(int(default) if whole else float(default)),
                                key=key)
        name = f"{title or label} (key '{spec_key}')"
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not math.isfinite(value) or (whole and not value.is_integer()):
            allowed = (f"a whole number from {limits[0]} to {limits[1]}" if limits else
                       "a finite decimal number such as 0.25 or 1e-3")
            self.problems.append(f"{name} = {text!r}: not {'a whole' if whole else 'a finite'}"
                                 f" number; allowed: {allowed}")
            return None
        if limits and not limits[0] <= value <= limits[1]:
            larger = "; larger sweeps run headless with `deterrence sweep`" \
                if value > limits[1] else ""
            self.problems.append(f"{name} = {value:g}: the dashboard takes {limits[0]} to "
                                 f"{limits[1]}{larger}")
            return None
        return int(value) if whole else value


def sidebar() -> tuple[str, dict, list[str]]:
    """The scenario, the sweep as typed (None for numbers that cannot be read) and the
    problems reading it."""
    defaults = default_spec()
    numbers = Numbers()
    st.sidebar.header("Sweep")
    files = scenario_files()
    scenario_name = st.sidebar.selectbox(
        "Scenario", files, index=files.index("baseline.toml") if "baseline.toml" in files
        else 0, key="scenario")
    catalogue = api.load_catalogue()
    default_formats = list(catalogue) if defaults["formats"] == "all" else defaults["formats"]
    formats = st.sidebar.multiselect("Formats to compare", list(catalogue),
                                     default=default_formats, key="formats",
                                     format_func=lambda f: f"{f} — {catalogue[f].name}")
    choices = axis_choices(scenario_name, tuple(formats)) or [a["path"]
                                                              for a in defaults["axes"]]
    axes = []
    for number, default in enumerate(defaults["axes"][:2]):
        name = f"Axis {'xy'[number]}"
        st.sidebar.subheader(name)
        path = st.sidebar.selectbox(
            "Parameter", choices, key=f"axis{number}_path",
            index=choices.index(default["path"]) if default["path"] in choices else number)
        cols = st.sidebar.columns(3)
        axes.append({"path": path, **{
            field: numbers.read(col, label, default[field], f"axis{number}_{field}",
                                f"axes.{number}.{field}", title=f"{name} '{label}'",
                                whole=field == "count",
                                limits=AXIS_POINTS if field == "count" else None)
            for col, field, label in zip(cols, ("low", "high", "count"),
                                         ("from", "to", "points"), strict=True)}})
    st.sidebar.subheader("Simulation")
    replicates = numbers.read(st.sidebar, "Replicates per point", defaults["replicates"],
                              "replicates", "replicates", whole=True, limits=REPLICATES)
    steps = numbers.read(st.sidebar, "Rounds per run", defaults["steps"], "steps", "steps",
                         whole=True, limits=ROUNDS)
    spec = {"name": "dashboard", "scenario": scenario_name, "formats": formats,
            "method": "grid", "axes": axes, "replicates": replicates, "steps": steps}
    return scenario_name, spec, numbers.problems


def validated(scenario_name: str, spec: dict, problems: list[str]) -> str | None:
    """The sweep's JSON if the inputs are valid; otherwise show why, one line per problem,
    and return None. What the dashboard cannot read or does not take is found here; the
    rest is checked as a sweep file is (``api.sweep_plan``)."""
    problems = list(problems)
    if not spec["formats"]:
        problems.append("Choose at least one format.")
    if spec["axes"][0]["path"] == spec["axes"][1]["path"]:
        problems.append("The two axes must be different parameters.")
    for name, axis in zip("xy", spec["axes"], strict=True):
        if None not in (axis["low"], axis["high"]) and not axis["low"] < axis["high"]:
            problems.append(f"Axis {name}: 'from' ({axis['low']:g}) must be below 'to' "
                            f"({axis['high']:g}).")
    if not problems:
        try:
            make_plan(scenario_name, json.dumps(spec))
        except ConfigError as exc:
            problems.append(str(exc))
    for problem in problems:
        st.error(problem)
    return None if problems else json.dumps(spec)


# ---------------------------------------------------------------------------------------
# Plots


def map_frame(ds, variable: str, fmt: str, plan_axes: list[str]) -> pd.DataFrame:
    frame = ds[variable].sel(format=fmt).to_dataframe().reset_index()
    return frame.rename(columns={dim_name(plan_axes[0]): "x", dim_name(plan_axes[1]): "y"})


def heatmap(frame: pd.DataFrame, value: str, title: str, axes: list[str], colour) -> alt.Chart:
    return alt.Chart(frame, title=title).mark_rect().encode(
        x=alt.X("x:O", title=axes[0], axis=alt.Axis(format=".3g")),
        y=alt.Y("y:O", title=axes[1], sort="descending", axis=alt.Axis(format=".3g")),
        color=colour,
        tooltip=[alt.Tooltip("x:Q", title=axes[0], format=".3g"),
                 alt.Tooltip("y:Q", title=axes[1], format=".3g"),
                 alt.Tooltip(f"{value}:Q" if pd.api.types.is_numeric_dtype(frame[value])
                             else f"{value}:N", title=value)],
    ).properties(width=260, height=230)


def grid_of(charts: list[alt.Chart]) -> None:
    for start in range(0, len(charts), MAPS_PER_ROW):
        columns = st.columns(MAPS_PER_ROW)
        for column, chart in zip(columns, charts[start:start + MAPS_PER_ROW], strict=False):
            column.altair_chart(chart, width="stretch")


def probability_maps(exact, variable: str, title: str, axes: list[str]) -> None:
    """One map per format of a probability of the exact game, on one scale, 0 to 1."""
    charts = []
    for fmt in exact["format"].values:
        frame = map_frame(exact, variable, fmt, axes)
        charts.append(heatmap(frame, variable, str(fmt), axes, alt.Color(
            f"{variable}:Q", title=title, scale=alt.Scale(scheme="viridis", domain=[0, 1]))))
    grid_of(charts)


def regime_view(exact, axes: list[str]) -> None:
    scale = alt.Scale(domain=list(REGIME_NAMES), range=REGIME_COLOURS)
    charts = []
    for fmt in exact["format"].values:
        frame = map_frame(exact, "regime", fmt, axes)
        frame["regime"] = [REGIME_NAMES[int(v)] for v in frame["regime"]]
        charts.append(heatmap(frame, "regime", str(fmt), axes,
                              alt.Color("regime:N", scale=scale, title="regime")))
    grid_of(charts)
    st.markdown("**P(Russia escalates)**")
    probability_maps(exact, "escalation_probability", "P(escalate)", axes)
    st.caption("How to read this: each map is one format; each square one parameter point. "
               "Above, the regime of the exact game at its selected equilibria: deterred "
               "(Russia escalates with a probability below the scenario's threshold), "
               "defended (it escalates and the response leaves it less than the threshold "
               "chance of success), abandoned, or mixed (the equilibria of the members' "
               "subgame disagree). Below, P(Russia escalates), on one scale from 0 to 1 in "
               "every map. The border between green and the rest is where deterrence fails.")


def credibility_view(exact, axes: list[str]) -> None:
    st.markdown("**Mean credibility of the members**: P(member honours | escalation)")
    probability_maps(exact, "mean_credibility", "mean credibility", axes)
    counts = exact["equilibrium_count"]
    top = max(2, int(counts.max()))
    charts = []
    for fmt in exact["format"].values:
        frame = map_frame(exact, "equilibrium_count", fmt, axes)
        frame["complete"] = map_frame(exact, "equilibrium_set_complete", fmt, axes)[
            "equilibrium_set_complete"].astype(bool)
        chart = heatmap(frame, "equilibrium_count", str(fmt), axes, alt.Color(
            "equilibrium_count:O", title="equilibria",
            scale=alt.Scale(scheme="viridis", domain=list(range(1, top + 1)))))
        charts.append(chart.encode(
            stroke=alt.condition("datum.complete", alt.value(None), alt.value("black")),
            strokeWidth=alt.condition("datum.complete", alt.value(0), alt.value(2)),
            tooltip=[alt.Tooltip("x:Q", title=axes[0], format=".3g"),
                     alt.Tooltip("y:Q", title=axes[1], format=".3g"),
                     alt.Tooltip("equilibrium_count:Q", title="equilibria"),
                     alt.Tooltip("complete:N", title="proven complete")]))
    st.markdown("**Number of Bayesian equilibria** of the members' subgame")
    grid_of(charts)
    st.caption("How to read this: after an escalation each member honours or not by its own "
               "private cost, so the members play a Bayesian equilibrium. Credibility is a "
               "member's probability of honouring at the selected equilibria (the mean over "
               "the format's members; none without members). Where the subgame has several "
               "equilibria, the members deciding alone play the one least favourable to "
               "deterrence, and when they coordinate the most deterrent one that every "
               "member prefers to it. A black outline: the solver's search did not prove "
               "that it found every equilibrium there.")


def simulated_view(sim, axes: list[str]) -> None:
    for variable, label in (("escalation_frequency", "escalation frequency (share of rounds)"),
                            ("abandoned_given_escalation", "P(abandoned | escalation)")):
        mean = sim[variable].mean("replicate", skipna=True)
        charts = []
        for fmt in sim["format"].values:
            frame = mean.sel(format=fmt).to_dataframe().reset_index().rename(
                columns={dim_name(axes[0]): "x", dim_name(axes[1]): "y"})
            charts.append(heatmap(frame, variable, str(fmt), axes, alt.Color(
                f"{variable}:Q", title=label, scale=alt.Scale(scheme="viridis",
                                                              domain=[0, 1]))))
        st.markdown(f"**{label}**, mean over replicates")
        grid_of(charts)
    stability = api.stability_dataset(sim)
    horizon = float(stability.attrs["horizon_years"])
    charts = []
    for fmt in sim["format"].values:
        frame = map_frame(stability, "erosion_years", fmt, axes)
        charts.append(heatmap(frame, "erosion_years", str(fmt), axes, alt.Color(
            "erosion_years:Q", title="years",
            scale=alt.Scale(scheme="viridis", domain=[0, horizon]))))
    st.markdown("**Erosion time**: median years until the first escalation")
    grid_of(charts)
    for variable, label in (("ongoing_deterred_share", "share of runs deterred throughout"),
                            ("defeated_share", "share of runs ending in Ukraine's defeat"),
                            ("settled_share", "share of runs ending in a settlement")):
        charts = []
        for fmt in sim["format"].values:
            frame = map_frame(stability, variable, fmt, axes)
            charts.append(heatmap(frame, variable, str(fmt), axes, alt.Color(
                f"{variable}:Q", title="share", scale=alt.Scale(scheme="viridis",
                                                                domain=[0, 1]))))
        st.markdown(f"**Where the runs end**: {label}")
        grid_of(charts)
    st.caption("How to read this: the agent-based simulations (vectorised engine; learning "
               "Russia and guarantors, evolving stocks, the scenario's shocks). Compare with "
               "the exact maps: where they differ, learning has not reached the equilibrium "
               "(see docs/model.md §4). The erosion time is the Kaplan-Meier median of the "
               "time until the first escalation, every run starting deterred, on one scale "
               "from 0 to the horizon; a blank square: not reached (more than half the runs "
               "never escalated). The end-state shares are the basins of the runs from the "
               "deterred start: deterred throughout, ended in Ukraine's defeat, ended in a "
               "settlement (the rest escalated and go on). "
               "docs/analysis.md#erosion-time-and-end-states defines them; "
               "deterrence.stability_table gives the erosion time's interval.")


def compare_view(sim, axes: list[str]) -> None:
    formats = [str(f) for f in sim["format"].values]
    if len(formats) < 2:
        st.info("Choose at least two formats to compare.")
        return
    cols = st.columns(2)
    first = cols[0].selectbox("Format", formats, key="compare_a",
                              index=formats.index("nato_lite") if "nato_lite" in formats
                              else 0)
    others = [f for f in formats if f != first]
    second = cols[1].selectbox("against", others, key="compare_b",
                               index=others.index("bilateral") if "bilateral" in others
                               else 0)
    cells = compare_formats(sim, first, second)
    rows = []
    for variable, label in (("escalation_frequency", "escalation frequency"),
                            ("abandoned_given_escalation", "P(abandoned | escalation)"),
                            ("deterred_share", "share of rounds deterred")):
        diff = paired_difference(sim[variable].sel(format=first).values,
                                 sim[variable].sel(format=second).values)
        counts = significance_counts(cells, variable)
        rows.append({"outcome": label, "difference (points)": 100 * diff.mean,
                     "± 95% (points)": 100 * diff.half_width, "pairs": diff.n,
                     "significant": diff.excludes_zero,
                     "points lower": counts["points_lower"],
                     "points higher": counts["points_higher"],
                     "lower / higher after FDR": f"{counts['points_lower_fdr']} / "
                                                 f"{counts['points_higher_fdr']}",
                     "points": counts["points"]})
        if variable == "escalation_frequency":
            st.markdown(f"**{first} vs {second}: {100 * diff.mean:+.1f} ± "
                        f"{100 * diff.half_width:.1f} points escalation**")
    st.dataframe(pd.DataFrame(rows), hide_index=True)
    frame = cells[["escalation_frequency", "escalation_frequency_half_width",
                   "escalation_frequency_significant_fdr"]].to_dataframe().reset_index()
    frame = frame.rename(columns={dim_name(axes[0]): "x", dim_name(axes[1]): "y",
                                  "escalation_frequency": "difference",
                                  "escalation_frequency_half_width": "half_width",
                                  "escalation_frequency_significant_fdr": "significant"})
    frame["significant"] = frame["significant"].astype(bool)
    chart = heatmap(frame, "difference", f"escalation: {first} − {second}", axes,
                    alt.Color("difference:Q", title="difference in escalation frequency",
                              scale=alt.Scale(scheme="blueorange", domainMid=0)))
    chart = chart.encode(
        stroke=alt.condition("datum.significant", alt.value("black"), alt.value(None)),
        strokeWidth=alt.condition("datum.significant", alt.value(2), alt.value(0)),
        tooltip=[alt.Tooltip("x:Q", title=axes[0], format=".3g"),
                 alt.Tooltip("y:Q", title=axes[1], format=".3g"),
                 alt.Tooltip("difference:Q", format="+.3f"),
                 alt.Tooltip("half_width:Q", title="± 95% (Student t)", format=".3f"),
                 alt.Tooltip("significant:N", title="significant (FDR 5%)")])
    st.altair_chart(chart)
    st.caption("How to read this: run r at each point uses the same random numbers under "
               "every format (common random numbers), so differences are paired per point "
               "and replicate. The headline and the first columns average over every pair "
               "(mean ± 1.96 sd/√n): over the swept range as well as over chance. “Points "
               "lower / higher” count the points whose own 95% Student-t interval over the "
               "replicates excludes 0; with many points some pass by chance, so the next "
               "column keeps those that survive Benjamini–Hochberg control of the false "
               "discovery rate at 5%, outlined in black on the map.")


def run_view(scenario_name: str, spec_json: str, axes: list[str]) -> None:
    plan = make_plan(scenario_name, spec_json)
    cols = st.columns(4)
    fmt = cols[0].selectbox("Format", list(plan.formats), key="run_format")
    xs = sorted(set(plan.points[:, 0]))
    ys = sorted(set(plan.points[:, 1]))
    xv = cols[1].selectbox(axes[0], xs, key="run_x", format_func=lambda v: f"{v:.3g}")
    yv = cols[2].selectbox(axes[1], ys, key="run_y", format_func=lambda v: f"{v:.3g}")
    replicate = cols[3].number_input("Replicate", min_value=0,
                                     max_value=plan.spec.replicates - 1, value=0,
                                     key="run_replicate")
    cell = int(np.flatnonzero((plan.points[:, 0] == xv) & (plan.points[:, 1] == yv))[0])
    summary, series, members, shocks = one_run(scenario_name, spec_json, fmt, cell,
                                               int(replicate))
    rounds = np.arange(plan.spec.steps)
    rules = pd.DataFrame([{"round": s, "shock": f"{k} {g}"} for s, k, g in shocks
                          if s < plan.spec.steps])
    marks = (alt.Chart(rules).mark_rule(color="#D55E00", strokeDash=[4, 3]).encode(
        x="round:Q", tooltip=["shock"]) if len(rules) else None)

    def with_shocks(chart):
        return chart + marks if marks is not None else chart

    outcome = pd.DataFrame({"round": rounds,
                            "outcome": [REGIME_NAMES[int(v)] for v in series["outcome"][0]]})
    st.altair_chart(with_shocks(alt.Chart(outcome, title="Outcome per round").mark_tick(
        thickness=3).encode(x="round:Q", y=alt.Y("outcome:N", sort=list(REGIME_NAMES[:3])),
                            color=alt.Color("outcome:N", scale=alt.Scale(
                                domain=list(REGIME_NAMES), range=REGIME_COLOURS)))),
        width="stretch")
    if members:
        beliefs = pd.DataFrame(series["belief"][0], columns=members).assign(round=rounds)
        st.altair_chart(with_shocks(alt.Chart(
            beliefs.melt("round", var_name="guarantor", value_name="belief"),
            title="Russia's belief that each guarantor honours").mark_line().encode(
            x="round:Q", y=alt.Y("belief:Q", scale=alt.Scale(domain=[0, 1])),
            color=alt.Color("guarantor:N", scale=alt.Scale(scheme="tableau10")))),
            width="stretch")
    stocks = pd.DataFrame(series["stocks"][0][:, :2],
                          columns=["Ukraine's capability", "Russia's capability"])
    st.altair_chart(with_shocks(alt.Chart(
        stocks.assign(round=rounds).melt("round", var_name="stock", value_name="USD bn"),
        title="Capabilities (USD bn)").mark_line().encode(
        x="round:Q", y="USD bn:Q", color="stock:N")), width="stretch")
    st.caption(f"How to read this: one run of the Mesa model — the same run as replicate "
               f"{replicate} of this point in the sweep (same random numbers). Escalation "
               f"frequency {summary['escalation_frequency'][0]:.2f}. Dashed lines mark "
               f"scheduled shocks.")


def save_view(scenario_name: str, spec_json: str) -> None:
    st.write("Write this sweep as an archive (data, configuration, provenance, checksums) "
             f"and its HTML report under `{api.results_dir()}`. One save runs at a time, "
             f"at least {SAVE_INTERVAL_S:g} s after the last one.")
    if not st.button("Save archive", key="save"):
        return
    gate = save_gate()
    refusal = gate.try_start()
    if refusal is not None:
        st.warning(refusal)
        return
    try:
        archive = write_archive(scenario_name, spec_json)
    finally:
        gate.finish()
    if archive is None:
        return
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(archive.rglob("*")):
            if path.is_file():
                zf.write(path, Path(archive.name) / path.relative_to(archive))
    st.download_button("Download the archive (.zip)", buffer.getvalue(),
                       file_name=f"{archive.name}.zip", mime="application/zip",
                       key="download")


def write_archive(scenario_name: str, spec_json: str) -> Path | None:
    """Run the sweep into a new archive with its report; the archive, or None (shown why)."""
    plan = make_plan(scenario_name, spec_json)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    target = api.results_dir() / f"dashboard-{stamp}"
    with st.spinner("Running the sweep into an archive…"):
        try:
            archive, failures = api.run_sweep(plan, target)
        except (ConfigError, OSError) as exc:  # e.g. the folder exists or is not writable
            st.error(f"Not saved: {exc}")
            return None
    if failures:
        st.error("Chunks failed: " + "; ".join(failures))
        return None
    report = api.write_report(archive)
    st.success(f"Archive: {archive} — report: {report}")
    return archive


def cli_hint(spec: dict) -> str:
    lines = ['name = "my_sweep"', f'scenario = "../scenarios/{spec["scenario"]}"',
             f"formats = {json.dumps(spec['formats'])}", 'method = "grid"',
             f"replicates = {spec['replicates']}", f"steps = {spec['steps']}"]
    for axis in spec["axes"]:
        lines += ["", "[[axes]]", f'path = "{axis["path"]}"', f"low = {axis['low']}",
                  f"high = {axis['high']}", f"count = {axis['count']}"]
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------
# Page


def main() -> None:
    st.set_page_config(page_title="deterrence", layout="wide")
    host = visitor_host()
    if host is not None and not host_allowed(host):
        st.error(f"Refused: this page asked for the dashboard as `{host.replace('`', '')}`; "
                 f"it answers only to localhost, 127.0.0.1 and [::1] — open "
                 f"http://127.0.0.1:{st.get_option('server.port')}/.")
        st.stop()
    st.title("Security guarantees for Ukraine: where does deterrence hold?")
    scenario_name, spec, problems = sidebar()
    spec_json = validated(scenario_name, spec, problems)
    if spec_json is None:
        return
    axes = [a["path"] for a in spec["axes"]]
    exact = exact_maps(scenario_name, spec_json)
    tabs = st.tabs(["Regime maps", "Credibility & multiplicity", "Simulated outcomes",
                    "Compare formats", "One run", "Save"])
    with tabs[0]:
        regime_view(exact, axes)
    with tabs[1]:
        credibility_view(exact, axes)
    size = (len(spec["formats"]) * spec["axes"][0]["count"] * spec["axes"][1]["count"]
            * spec["replicates"] * spec["steps"])
    sim = None
    if size > INTERACTIVE_LIMIT:
        message = (f"This sweep simulates {size:,} run-rounds, more than the "
                   f"{INTERACTIVE_LIMIT:,} run interactively. Run it headless: save the "
                   f"sweep below as configs/sweeps/my_sweep.toml and run `deterrence sweep "
                   f"configs/sweeps/my_sweep.toml --executor processes`.")
        for tab in tabs[2:4]:
            with tab:
                st.warning(message)
                st.code(cli_hint(spec), language="toml")
    else:
        sim = simulated_maps(scenario_name, spec_json, tabs[2])
        with tabs[2]:
            simulated_view(sim, axes)
        with tabs[3]:
            compare_view(sim, axes)
    with tabs[4]:
        run_view(scenario_name, spec_json, axes)
    with tabs[5]:
        save_view(scenario_name, spec_json)


if __name__ == "__main__":
    main()
