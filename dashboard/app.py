"""Streamlit dashboard: widgets and plots only; every number comes from the package's API.

Run with ``deterrence dashboard`` (bound to 127.0.0.1). The defaults are those of
``configs/sweeps/quickstart.toml``; the sweep is the same plan and code path as
``deterrence sweep``, validated as a sweep file is.

The page draws one view at a time (the view selector at the top; its name is in the page's
address with every other setting, so a link shows the same view). Simulations, analyses and
saves run as jobs off the page script (:mod:`deterrence.dashboard.jobs`): their progress and
a Cancel button show at the top of every view, two visitors asking for the same work share
one job, and Save writes the simulations already computed. It answers only a page opened
under a loopback name (:func:`host_allowed`), so a web page elsewhere cannot drive it by
having its own name resolve to this machine (DNS rebinding). Streamlit runs this file as
``__main__``; importing it (the tests do) defines the functions without drawing a page.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import streamlit as st

from deterrence import api
from deterrence.dashboard import analysis_view, archive_view, jobs, maps, params, run_view
from deterrence.dashboard.url_state import Choice, link_problems

DEFAULT_SWEEP = api.SWEEPS_DIR / "quickstart.toml"
#: The dashboard's own limits on what a visitor may ask for (the sweep file's schema allows
#: more; larger sweeps run headless with ``deterrence sweep``): points per axis (the exact
#: maps solve every point of every format at once), replicates and rounds.
AXIS_POINTS = (2, 60)
REPLICATES = (1, 1000)
ROUNDS = (1, 2000)
#: Most panels per row the page offers (each :data:`maps.PANEL_WIDTH` px wide).
MAX_COLUMNS = 6
#: The parameter panel's changes when nothing is changed.
NO_CHANGES = json.dumps({"formats": {}, "scenario": {}}, sort_keys=True)
#: The view shown first.
DEFAULT_VIEW = "Regime maps"
#: Seconds a view waits for a job it has just started before it shows the progress bar
#: instead (a small sweep is done by then, so its view shows at once).
QUICK_WAIT_S = 1.0
#: Base sample sizes offered for global sensitivity (powers of 2, Saltelli's design).
SENSITIVITY_SAMPLES = (32, 64, 128, 256)
#: Prior samples offered for the uncertainty study (powers of 2, a Sobol sample).
PRIOR_SAMPLES = (64, 128, 256, 512, 1024)
#: The bundled scenario whose assumptions are distributions.
UNCERTAIN_SCENARIO = "baseline_uncertain.toml"
#: Host headers the dashboard answers: the loopback names, with any port.
LOOPBACK_HOST = re.compile(r"(localhost|127\.0\.0\.1|\[::1\])(:[0-9]{1,5})?", re.IGNORECASE)


# ---------------------------------------------------------------------------------------
# Who may use the dashboard


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


# ---------------------------------------------------------------------------------------
# The sweep on the page: inputs -> plan -> exact maps; simulations and analyses as jobs


@st.cache_data(show_spinner=False)
def default_spec() -> dict:
    return api.load_plan(DEFAULT_SWEEP).spec.model_dump(mode="json")


@st.cache_data(show_spinner=False)
def scenario_files() -> list[str]:
    return sorted(p.name for p in api.SCENARIOS_DIR.glob("*.toml"))


@st.cache_resource(show_spinner=False, max_entries=64)
def make_plan(scenario_name: str, spec_json: str, changes_json: str = NO_CHANGES) -> api.Plan:
    """The sweep's plan with the parameter panel's changes, validated as a sweep file is
    (raises ConfigError naming the key, the value and what is allowed)."""
    spec, changes = json.loads(spec_json), json.loads(changes_json)
    scenario, formats = params.apply_changes(
        api.load_scenario(api.SCENARIOS_DIR / scenario_name), changes["scenario"],
        changes["formats"])
    plan = api.sweep_plan(
        scenario,
        {a["path"]: {k: a[k] for k in ("low", "high", "count")} for a in spec["axes"]},
        formats=spec["formats"], method=spec["method"], replicates=spec["replicates"],
        steps=spec["steps"], name=spec["name"])
    return api.with_formats(plan, formats) if formats else plan


@st.cache_data(show_spinner=False, max_entries=32)
def exact_maps(scenario_name: str, spec_json: str, changes_json: str):
    return api.exact_dataset(make_plan(scenario_name, spec_json, changes_json))


@dataclass(frozen=True)
class Sweep:
    """The sweep the page shows: its scenario file and inputs (as JSON: the cache keys)."""

    scenario_name: str
    spec_json: str
    changes_json: str = NO_CHANGES

    @cached_property
    def spec(self) -> dict:
        return json.loads(self.spec_json)

    @cached_property
    def plan(self) -> api.Plan:
        return make_plan(self.scenario_name, self.spec_json, self.changes_json)

    @property
    def axes(self) -> list[str]:
        return [a["path"] for a in self.spec["axes"]]

    @cached_property
    def names(self) -> dict[str, str]:
        return {f: spec.name for f, spec in self.plan.formats.items()}

    @cached_property
    def own(self) -> dict:
        return maps.own_values(self.plan, self.axes)

    def exact(self):
        return exact_maps(self.scenario_name, self.spec_json, self.changes_json)


def columns_per_row() -> int:
    return int(st.session_state.get("map_columns", maps.DEFAULT_COLUMNS))


def draw(chart) -> None:
    st.altair_chart(chart, width="content")


def map_of(sweep: Sweep, dataset, quantity: maps.Quantity, frame=None,
           outline: str | None = None) -> None:
    draw(maps.format_map(dataset, quantity, sweep.axes, sweep.names, own=sweep.own,
                         columns=columns_per_row(), frame=frame, outline=outline))


def simulation(sweep: Sweep):
    """The sweep's simulations if they are done; otherwise start (or join) the job, whose
    progress shows at the top of the page, and return None after saying why."""
    if isinstance(sweep, Opened):
        return sweep.stored
    board = jobs.job_board()
    previous = st.session_state.get("job_simulation")
    if previous is not None and previous.key == jobs.simulation_key(sweep.plan) \
            and previous.state in ("cancelled", "failed"):
        # a cancelled simulation stays cancelled until the visitor asks again
        st.info("The simulations of this sweep were cancelled or failed (see above).")
        if st.button("Simulate again", key="simulate_again"):
            st.session_state.pop("job_simulation")
            st.rerun()
        return None
    try:
        job = jobs.simulation_job(board, sweep.plan, previous)
    except jobs.Refused as exc:
        st.warning(str(exc))
        st.code(cli_hint(sweep.spec), language="toml")
        return None
    st.session_state["job_simulation"] = job
    if job.state != "done":
        if job.wait(QUICK_WAIT_S) and job.state == "done":  # small sweeps: no flicker
            return job.result
        st.info("Simulating: the progress bar at the top of the page shows how far; this "
                "view appears when it is done.")
        return None
    return job.result


def analysis(kind: str, key: tuple, work) -> object | None:
    """The result of the analysis job ``key`` (``work(progress, cancel)``), or None while it
    runs (its progress shows at the top of the page)."""
    board = jobs.job_board()
    try:
        job = board.submit((kind, *key), "analysis", work)
    except jobs.Refused as exc:
        st.warning(str(exc))
        return None
    st.session_state["job_analysis"] = job
    if job.state != "done" and not (job.wait(QUICK_WAIT_S) and job.state == "done"):
        if job.state == "failed":
            st.error(job.error)
        elif job.state != "cancelled":
            st.info("Computing: the progress bar at the top of the page shows how far.")
        return None
    return job.result


def cli_hint(spec: dict) -> str:
    lines = ['name = "my_sweep"', f'scenario = "../scenarios/{spec["scenario"]}"',
             f"formats = {json.dumps(spec['formats'])}", 'method = "grid"',
             f"replicates = {spec['replicates']}", f"steps = {spec['steps']}"]
    for axis in spec["axes"]:
        lines += ["", "[[axes]]", f'path = "{axis["path"]}"', f"low = {axis['low']}",
                  f"high = {axis['high']}", f"count = {axis['count']}"]
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------
# Inputs


def link_choices() -> list[Choice]:
    """The address's settings that are choices, for :func:`link_problems`."""
    return [Choice("view", lambda: list(VIEWS)),
            Choice("scenario", scenario_files),
            # a bound widget with labels keeps its labels in the address
            Choice("formats", lambda: [f.name for f in api.load_catalogue().values()],
                   many=True)]


def sidebar() -> tuple[str, dict, dict, list[str]]:
    """The scenario, the sweep as typed (None for numbers that cannot be read), the
    parameter panel's changes ({"scenario": {path: value}, "formats": {id: {path:
    value}}}) and the problems reading them."""
    defaults = default_spec()
    numbers = params.Numbers()
    st.sidebar.header("Sweep")
    files = scenario_files()
    scenario_name = st.sidebar.selectbox(
        "Scenario", files, index=files.index("baseline.toml") if "baseline.toml" in files
        else 0, key="scenario", bind="query-params")
    catalogue = api.load_catalogue()
    default_formats = list(catalogue) if defaults["formats"] == "all" else defaults["formats"]
    formats = st.sidebar.multiselect("Formats to compare", list(catalogue),
                                     default=default_formats, key="formats",
                                     format_func=lambda f: catalogue[f].name,
                                     bind="query-params")
    infos = params.catalogue(str(api.SCENARIOS_DIR / scenario_name), tuple(formats))
    by_path = {i.path: i for i in infos}
    axes = []
    for number, default in enumerate(defaults["axes"][:2]):
        name = f"Axis {'xy'[number]}"
        st.sidebar.subheader(name)
        path = params.axis_picker(st.sidebar, infos, f"axis{number}_path", default["path"],
                                  bind="query-params")
        low, high, count = params.axis_range(
            st.sidebar, by_path[path], f"axis{number}", numbers, name=name,
            spec_key=f"axes.{number}", limits=AXIS_POINTS, bind="query-params",
            initial=(default["low"], default["high"], default["count"])
            if path == default["path"] else None)
        axes.append({"path": path, "low": low, "high": high, "count": count})
    st.sidebar.subheader("Simulation")
    replicates = numbers.read(st.sidebar, "Replicates per point", defaults["replicates"],
                              "replicates", "replicates", whole=True, limits=REPLICATES,
                              bind="query-params")
    steps = numbers.read(st.sidebar, "Rounds per run", defaults["steps"], "steps", "steps",
                         whole=True, limits=ROUNDS, bind="query-params")
    st.sidebar.subheader("Every parameter")
    every = st.sidebar.toggle("Change any parameter of the scenario and formats",
                              key="every_parameter",
                              help="Each with its unit, limits, description and source; "
                                   "values typed stay when this is off.")
    with st.sidebar.container():
        panel = params.parameter_panel(st, infos, formats, shown=every)
    st.sidebar.subheader("Display")
    st.sidebar.select_slider("Maps per row", list(range(1, MAX_COLUMNS + 1)),
                             value=maps.DEFAULT_COLUMNS, key="map_columns",
                             bind="query-params",
                             help="How many formats' panels fit across your window.")
    spec = {"name": "dashboard", "scenario": scenario_name, "formats": formats,
            "method": "grid", "axes": axes, "replicates": replicates, "steps": steps}
    changes = {"scenario": panel.changes, "formats": panel.format_changes}
    return scenario_name, spec, changes, numbers.problems + panel.problems


def validated(scenario_name: str, spec: dict, changes_json: str,
              problems: list[str]) -> str | None:
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
            make_plan(scenario_name, json.dumps(spec), changes_json)
        except api.ConfigError as exc:
            problems.append(str(exc))
    for problem in problems:
        st.error(problem)
    return None if problems else json.dumps(spec)


# ---------------------------------------------------------------------------------------
# Views: each draws one part of the analysis of the sweep


def how_to_read(text: str) -> None:
    with st.expander("How to read this"):
        st.markdown(text)


def regime_view(sweep: Sweep) -> None:
    exact = sweep.exact()
    frame = maps.cell_frame(exact, sweep.axes, sweep.names)
    st.subheader("Regime of the exact game")
    map_of(sweep, exact, maps.Quantity("regime", "regime", "regime"), frame)
    st.subheader("P(Russia escalates)")
    map_of(sweep, exact, maps.Quantity("escalation_probability", "P(Russia escalates)"),
           frame)


def credibility_view(sweep: Sweep) -> None:
    exact = sweep.exact()
    frame = maps.cell_frame(exact, sweep.axes, sweep.names)
    frame["not proven complete"] = frame["equilibrium_set_complete"] == "no"
    st.subheader("Mean credibility of the members: P(member honours | escalation)")
    map_of(sweep, exact, maps.Quantity("mean_credibility", "mean credibility"), frame)
    st.subheader("Number of Bayesian equilibria of the members' subgame")
    map_of(sweep, exact, maps.Quantity("equilibrium_count", "equilibria", "count"), frame,
           outline="not proven complete")


def simulated_view(sweep: Sweep) -> None:
    sim = simulation(sweep)
    if sim is None:
        return
    mean = maps.mean_over_replicates(sim.dataset)
    frame = maps.cell_frame(mean, sweep.axes, sweep.names)
    for variable, title in (("escalation_frequency", "escalation frequency"),
                            ("abandoned_given_escalation", "P(abandoned | escalation)")):
        st.subheader(f"{title[:1].upper()}{title[1:]}, mean over replicates")
        map_of(sweep, mean, maps.Quantity(variable, title, "share"), frame)
    stability = api.stability_dataset(sim.dataset)
    horizon = float(stability.attrs["horizon_years"])
    stable = maps.cell_frame(stability, sweep.axes, sweep.names)
    st.subheader("Erosion time: median years until the first escalation")
    map_of(sweep, stability, maps.Quantity("erosion_years", "years", "years",
                                           (0.0, horizon)), stable)
    for variable, label in (("ongoing_deterred_share", "deterred throughout"),
                            ("defeated_share", "ended in Ukraine's defeat"),
                            ("settled_share", "ended in a settlement")):
        st.subheader(f"Where the runs end: share {label}")
        map_of(sweep, stability, maps.Quantity(variable, "share of runs", "share"), stable)


def compare_view(sweep: Sweep) -> None:
    sim = simulation(sweep)
    if sim is None:
        return
    formats = list(sweep.plan.formats)
    if len(formats) < 2:
        st.info("Choose at least two formats to compare.")
        return
    cols = st.columns(2)
    first = cols[0].selectbox("Format", formats, key="compare_a",
                              index=formats.index("nato_lite") if "nato_lite" in formats
                              else 0, format_func=sweep.names.get, bind="query-params")
    others = [f for f in formats if f != first]
    second = cols[1].selectbox("against", others, key="compare_b",
                               index=others.index("bilateral") if "bilateral" in others
                               else 0, format_func=sweep.names.get, bind="query-params")
    result = analysis_view.compute_comparison(sim.dataset, first, second)
    analysis_view.draw_comparison(result)
    for spec in result.maps:
        name = f"{sweep.names[first]} − {sweep.names[second]}"
        dataset = spec.dataset.expand_dims(format=[name])
        outline = None
        frame = maps.cell_frame(dataset, sweep.axes, {name: name})
        if spec.outline is not None:
            frame[spec.outline] = frame[spec.outline].astype(bool)
            outline = spec.outline
        draw(maps.format_map(dataset, maps.Quantity(
            spec.variable, spec.title, "difference" if spec.diverging else "value",
            spec.domain), sweep.axes, {name: name}, frame=frame, outline=outline))


def sensitivity_view(sweep: Sweep) -> None:
    cols = st.columns(2)
    method = cols[0].selectbox("Method", analysis_view.SENSITIVITY_METHODS,
                               key="sensitivity_method", bind="query-params")
    samples = cols[1].selectbox("Base samples", SENSITIVITY_SAMPLES,
                                index=SENSITIVITY_SAMPLES.index(
                                    analysis_view.DEFAULT_SENSITIVITY_SAMPLES),
                                key="sensitivity_samples", bind="query-params")
    st.caption("Over the two swept parameters and their ranges, every chosen format, "
               f"{sweep.plan.spec.replicates} replicates and {sweep.plan.spec.steps} rounds "
               "per run (the sidebar's).")
    if not st.button("Compute the indices", key="sensitivity_run") and not \
            st.session_state.get("sensitivity_asked") == (sweep.spec_json, method, samples):
        return
    st.session_state["sensitivity_asked"] = (sweep.spec_json, method, samples)
    plan = sweep.plan

    def work(progress, cancel):
        return analysis_view.compute_sensitivity(
            plan, method, int(samples), limit=jobs.INTERACTIVE_LIMIT,
            progress=lambda done, total: progress(done, total,
                                                  f"Sensitivity: chunk {done} of {total}"))

    result = analysis("sensitivity", (sweep.scenario_name, sweep.spec_json, method,
                                      samples), work)
    if result is not None:
        analysis_view.draw_sensitivity(result)


def discovery_view(sweep: Sweep) -> None:
    sim = simulation(sweep)
    if sim is None:
        return
    cols = st.columns(3)
    outcome = cols[0].selectbox("Failure of", api.DISCOVERY_OUTCOMES, key="prim_outcome",
                                bind="query-params")
    threshold = cols[1].slider("above", 0.05, 0.95, analysis_view.DEFAULT_THRESHOLD, 0.05,
                               key="prim_threshold", bind="query-params",
                               help="A point fails where the outcome's mean over "
                                    "replicates exceeds this (for the regime: not deterred).")
    density = cols[2].slider("least density of the box", 0.5, 1.0,
                             analysis_view.DEFAULT_MIN_DENSITY, 0.05, key="prim_density",
                             bind="query-params")
    dataset = sim.dataset.merge(sweep.exact(), compat="override")
    try:
        result = analysis_view.compute_prim(dataset, None, outcome, threshold, density)
    except api.ConfigError as exc:
        st.error(str(exc))
        return
    analysis_view.draw_prim(result)


def uncertainty_view(sweep: Sweep) -> None:
    files = scenario_files()
    default = UNCERTAIN_SCENARIO if UNCERTAIN_SCENARIO in files else files[0]
    cols = st.columns(3)
    name = cols[0].selectbox("Scenario with distributions", files,
                             index=files.index(default), key="uncertainty_scenario",
                             bind="query-params")
    samples = cols[1].selectbox("Prior samples", PRIOR_SAMPLES,
                                index=PRIOR_SAMPLES.index(
                                    analysis_view.DEFAULT_PRIOR_SAMPLES),
                                key="uncertainty_samples", bind="query-params")
    calibrated = cols[2].checkbox("Calibrated priors of the resolve scales", True,
                                  key="uncertainty_calibrated", bind="query-params")
    with_map = st.checkbox("Maps over the sweep's two parameters, the rest integrated "
                           "over the prior", False, key="uncertainty_map",
                           bind="query-params")
    formats = list(sweep.plan.formats)
    axes = [(a.path, np.linspace(a.low, a.high, a.count).tolist())
            for a in sweep.plan.spec.axes] if with_map else [None, None]

    def work(progress, cancel):
        progress(0, 1, "Solving the formats over the prior")
        return analysis_view.compute_uncertainty(
            api.load_scenario(api.SCENARIOS_DIR / name), formats, int(samples), calibrated,
            axes[0], axes[1])

    result = analysis("uncertainty", (name, tuple(formats), samples, calibrated,
                                      json.dumps(axes)), work)
    if result is None:
        return
    analysis_view.draw_uncertainty_table(result)
    for spec in result.maps:
        st.subheader(spec.title)
        draw(maps.format_map(spec.dataset, maps.Quantity(spec.variable, "probability"),
                             [spec.x_path, spec.y_path], sweep.names,
                             columns=columns_per_row()))


def one_run_view(sweep: Sweep) -> None:
    run_view.run_panel(sweep.plan, "run_")


class Opened:
    """An archive opened in the *Archives* view, shown with the views of a live sweep: the
    plan, names, own values and exact maps as a :class:`Sweep` has them, and its stored
    simulations in place of a job's."""

    def __init__(self, plan: api.Plan, exact, sim) -> None:
        self.plan, self._exact = plan, exact
        self.stored = jobs.Simulated(None, sim)
        self.axes = [a.path for a in plan.spec.axes]
        self.names = {f: spec.name for f, spec in plan.formats.items()}
        self.own = maps.own_values(plan, self.axes)

    def exact(self):
        return self._exact


#: The views an opened archive is shown in.
ARCHIVE_VIEWS = ("Regime maps", "Credibility", "Simulated outcomes")


def archives_view(_sweep) -> None:
    chosen = archive_view.archive_panel(api.results_dir(), "archive_")
    if chosen is None:
        return
    plan, exact, sim = chosen
    if plan.grid_shape is None or len(plan.spec.axes) != 2:
        st.info("Its maps are not drawn: maps need a grid over two parameters, and this "
                f"archive's design is a {plan.spec.method} sample of "
                f"{len(plan.spec.axes)} parameters (its report shows it).")
        return
    shown = st.segmented_control("Show the archive's", ARCHIVE_VIEWS, default=ARCHIVE_VIEWS[0],
                                 required=True, key="archive_view")
    VIEWS[shown](Opened(plan, exact, sim))


def save_view(sweep: Sweep) -> None:
    st.write("Write the simulations on this page as an archive (data, configuration, "
             f"provenance, checksums) and its HTML report under `{api.results_dir()}`: "
             "nothing is simulated again. One save runs at a time, at least "
             f"{jobs.SAVE_INTERVAL_S:g} s after the last one; `deterrence verify` re-runs "
             "an archive and compares it bit for bit.")
    sim_job = st.session_state.get("job_simulation")
    ready = sim_job is not None and sim_job.state == "done" and \
        sim_job.key == jobs.simulation_key(sweep.plan)
    if not ready:
        st.info("Open *Simulated outcomes* (or any view that simulates) first: Save writes "
                "the simulations already computed for this sweep.")
    if st.button("Save archive", key="save", disabled=not ready):
        try:
            st.session_state["job_save"] = jobs.save_job(jobs.job_board(), sweep.plan,
                                                     sim_job.result.summaries)
        except jobs.Refused as exc:
            st.warning(str(exc))
    jobs.saved_view(st.session_state.get("job_save"))


#: "How to read this", per view: what its numbers are, how they were computed, their limits.
HOW_TO_READ = {
    "Regime maps": (
        "Each panel is one format, each square one point of the two swept parameters; "
        "hover a square for every number computed there. **Regime**: *deterred* (Russia "
        "escalates with a probability below the scenario's threshold), *defended* (it "
        "escalates and the response leaves it less than the threshold chance of success), "
        "*abandoned*, or *mixed* (the equilibria of the members' subgame disagree). "
        "**P(Russia escalates)** at the selected equilibria, on one scale from 0 to 1 in "
        "every panel. The black point marks the format's own value of the swept parameters "
        "(its format file's, or the scenario's for a scenario parameter): where the format "
        "stands on the map as the catalogue defines it. docs/model.md gives the game."),
    "Credibility": (
        "After an escalation each member honours or not by its own private cost, so the "
        "members play a Bayesian equilibrium. **Credibility** is a member's probability of "
        "honouring at the selected equilibria (the mean over the format's members; hover "
        "for each member's). Where the subgame has several equilibria, the members deciding "
        "alone play the one least favourable to deterrence, and when they coordinate the "
        "most deterrent one that every member prefers to it. **A black outline**: the "
        "solver's search did not prove that it found every equilibrium there."),
    "Simulated outcomes": (
        "The agent-based simulations (vectorised engine; learning Russia and guarantors, "
        "persistent private types, evolving stocks, the scenario's shocks), "
        "the sidebar's replicates per point. Hover a square for the mean "
        "of every summary and its 95% interval over the replicates (± 1.96 standard "
        "errors; none with one replicate). Compare with the exact maps: where they "
        "differ, learning has not reached the equilibrium (docs/model.md §4). The "
        "**erosion time** is the Kaplan-Meier median of the time until the first "
        "escalation, every run starting deterred, on one scale from 0 to the horizon "
        "(hover for its interval); a blank square: not reached (more than half the runs "
        "never escalated). The **end-state shares** are the basins of the runs from the "
        "deterred start. docs/analysis.md#erosion-time-and-end-states defines them."),
    "Compare formats": analysis_view.HOW_TO_READ["comparison"],
    "Sensitivity": analysis_view.HOW_TO_READ["sensitivity"],
    "Scenario discovery": analysis_view.HOW_TO_READ["prim"],
    "Uncertainty": analysis_view.HOW_TO_READ["uncertainty"],
    "One run": (
        "One run of the Mesa model (the reference engine), the same run as the chosen "
        "replicate of this point in the sweep: the same random numbers, so the same "
        "numbers as the simulated maps. Step advances one round (a month by default), "
        "Play runs on at the chosen speed, Reset starts it again from its seed."),
    "Archives": (
        "The archives under the results folder: what was run (scenario, formats, axes, "
        "seed, code version) and its maps, drawn with the views of a live sweep. Verify "
        "re-runs an archive and compares every array bit for bit."),
    "Save": (
        "Save writes the simulations already on this page (no run again) with the exact "
        "maps and the analysis as an archive: data in NetCDF with units, the sweep's "
        "configuration, provenance and checksums, staged and renamed into place, so an "
        "archive is complete or absent; then its HTML report beside it. The zip holds "
        "both. `deterrence verify ARCHIVE` re-runs it on any machine."),
}


VIEWS = {
    "Regime maps": regime_view,
    "Credibility": credibility_view,
    "Simulated outcomes": simulated_view,
    "Compare formats": compare_view,
    "Sensitivity": sensitivity_view,
    "Scenario discovery": discovery_view,
    "Uncertainty": uncertainty_view,
    "One run": one_run_view,
    "Archives": archives_view,
    "Save": save_view,
}
#: Views that need no valid sweep in the sidebar.
FREE_VIEWS = ("Archives",)


# ---------------------------------------------------------------------------------------
# Page


def job_strips() -> None:
    """The progress and Cancel of this session's jobs, at the top of every view."""
    for name in ("simulation", "analysis", "save"):
        jobs.show_job(st.session_state.get(f"job_{name}"))


def main() -> None:
    st.set_page_config(page_title="deterrence", layout="wide",
                       menu_items={"About": "deterrence: security guarantees for Ukraine "
                                            "compared as games (docs/ in the repository)."})
    host = visitor_host()
    if host is not None and not host_allowed(host):
        st.error(f"Refused: this page asked for the dashboard as `{host.replace('`', '')}`; "
                 f"it answers only to localhost, 127.0.0.1 and [::1] — open "
                 f"http://127.0.0.1:{st.get_option('server.port')}/.")
        st.stop()
    st.title("Security guarantees for Ukraine: where does deterrence hold?")
    for problem in link_problems(link_choices(), {k: st.query_params.get_all(k)
                                                  for k in st.query_params},
                                 st.session_state):
        st.warning(problem)
    view = st.segmented_control("View", list(VIEWS), default=DEFAULT_VIEW, required=True,
                                key="view", bind="query-params",
                                label_visibility="collapsed")
    scenario_name, spec, changes, problems = sidebar()
    strips = st.container()  # filled last: the view may start a job
    how_to_read(HOW_TO_READ[view])
    try:
        if view in FREE_VIEWS:
            VIEWS[view](None)
            return
        changes_json = json.dumps(changes, sort_keys=True)
        spec_json = validated(scenario_name, spec, changes_json, problems)
        if spec_json is not None:
            VIEWS[view](Sweep(scenario_name, spec_json, changes_json))
    finally:
        with strips:
            job_strips()


if __name__ == "__main__":
    main()
