"""The dashboard's parameters: the sweep's axes and every value a visitor may change, built
from the package's parameter catalogue (:func:`deterrence.api.parameter_catalogue`: each
parameter's group, label, unit, description, source, value, default and limits).

* :func:`axis_picker` -- a selectbox of the sweepable parameters shown as
  "Group · Label (unit)" (the value is the path); Streamlit's selectbox filters as one types.
* :func:`axis_range` -- the axis' from/to/points, typed as text (:class:`Numbers`); they
  reset to :func:`default_range` of the parameter whenever the axis' parameter changes.
* :func:`parameter_panel` -- every scenario, dynamics, analysis and format parameter,
  grouped in expanders, with a search box; a value that cannot be the parameter's is
  explained right under its box and returned among the problems, and is not applied.
  Returns a :class:`Panel` ``(changes, format_changes, problems)``: ``changes`` maps the
  scenario's paths to new values, ``format_changes`` maps a format id to its own changed
  ``format.*`` paths (``{format_id: {path: value}}``), only values that differ from the
  current ones.
* :func:`apply_changes` -- the changed scenario and formats, validated by
  :func:`deterrence.api.with_parameters`; the app builds the sweep with
  ``api.sweep_plan(scenario, ...)`` and then ``api.with_formats(plan, formats)``.

Typed text is kept in the session under the widgets' keys and, for boxes hidden by the
search, under :data:`KEPT` (Streamlit forgets a widget not drawn in a run), so a filter
never drops a change.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import streamlit as st

from deterrence import api

#: Separator of a parameter's group and label in the axis picker.
GROUP_SEPARATOR = " · "
#: Default points per axis when the range resets.
DEFAULT_POINTS = 9
#: A parameter's limits are its default range when they are finite and span at most this
#: many times its current value's size (else the range is around its current value).
SPAN_AS_RANGE = 10.0
#: Half-width of a range around a current value, relative to the value's size.
HALF_WIDTH = 1.0
#: The size of a value for the two rules above is at least this (a value of 0 or 1e-9
#: gets a range of width 2 around it).
UNIT_SIZE = 1.0
#: A strict limit (``gt``/``lt``) is kept this share of the range inside.
STRICT_MARGIN = 0.01
#: Significant digits of a number written into a text box.
DIGITS = 6
#: Session key of the text typed into the panel's boxes, by widget key.
KEPT = "_params_typed"


class Panel(NamedTuple):
    """What :func:`parameter_panel` read: scenario changes ``{path: value}``, format changes
    ``{format_id: {path: value}}`` and the problems, one line each."""

    changes: dict[str, float]
    format_changes: dict[str, dict[str, float]]
    problems: list[str]


def as_text(value: float, whole: bool = False) -> str:
    """A number as a text box shows it."""
    return str(int(value)) if whole else f"{float(value):.{DIGITS}g}"


class Numbers:
    """Numbers typed as text and read here, so that every entry reaches the checks (a
    number box would drop, without a word, what the browser cannot hold, such as 1e400).
    Each is a key of the sweep file or a parameter path; what cannot be read is kept as a
    problem."""

    def __init__(self) -> None:
        self.problems: list[str] = []

    def read(self, place, label: str, default: float, key: str, spec_key: str, *,
             whole: bool = False, limits: tuple[int, int] | None = None,
             title: str | None = None, help: str | None = None,
             bind: str | None = None) -> float | None:
        """The number typed in the box ``label`` (widget ``key``) for the sweep file's key
        ``spec_key``: finite, whole if ``whole``, within the dashboard's ``limits`` if
        given; otherwise None, and the problem is kept, named by ``title`` (default: the
        label) and the key. A box whose text is in the session keeps it (``default`` is
        its first text); ``bind`` is Streamlit's (``"query-params"``: kept in the address)."""
        text = place.text_input(label, value=None if key in st.session_state
                                else as_text(default, whole), key=key, help=help, bind=bind)
        return self.parse(text or "", f"{title or label} (key '{spec_key}')", whole=whole,
                          limits=limits)

    def parse(self, text: str, name: str, *, whole: bool = False,
              limits: tuple[int, int] | None = None) -> float | None:
        """``text`` as a number (see :meth:`read`); ``name`` names it in a problem."""
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


@st.cache_data(show_spinner=False, max_entries=32)
def catalogue(scenario_file: str, formats: tuple[str, ...]) -> list[api.ParameterInfo]:
    """The parameter catalogue of the scenario file under the formats (ids), cached."""
    return api.parameter_catalogue(api.load_scenario(scenario_file), list(formats) or None)


def option_label(info: api.ParameterInfo) -> str:
    """"Group · Label (unit)"."""
    unit = f" ({info.unit})" if info.unit else ""
    return f"{info.group}{GROUP_SEPARATOR}{info.label}{unit}"


def current(info: api.ParameterInfo) -> float | None:
    """The value a parameter has now: the scenario's, or the mean of the formats' own."""
    if info.value is not None:
        return info.value
    if info.values:
        return sum(info.values.values()) / len(info.values)
    return info.default


def describe(info: api.ParameterInfo) -> str:
    """The help text of a parameter: description, limits, default and source."""
    default = "none (the scenario gives it)" if info.default is None else f"{info.default:g}"
    own = (" The scenario or format gives a value of its own, not the default."
           if info.own_value else "")
    return (f"{info.description}\n\nAllowed: {info.allowed}. Default: {default}. "
            f"Source of the default: {info.source or 'not given'}.{own}\n\nKey: `{info.path}`")


def axis_picker(place, infos: list[api.ParameterInfo], key: str, default_path: str,
                label: str = "Parameter", bind: str | None = None) -> str:
    """A selectbox of the sweepable parameters of ``infos`` (the catalogue), shown as
    "Group · Label (unit)", whose value is the path (``default_path`` first, if there; a
    path the catalogue lacks falls back to it). ``bind`` as for :meth:`Numbers.read`."""
    shown = {i.path: option_label(i) for i in infos if i.sweepable}
    paths = list(shown)
    chosen = place.selectbox(label, paths, key=key, format_func=shown.__getitem__,
                             index=paths.index(default_path) if default_path in shown else 0,
                             help="Type to search the parameters.", bind=bind)
    by_path = {i.path: i for i in infos}
    if chosen in by_path:
        place.caption(f"`{chosen}` · allowed {by_path[chosen].allowed} · "
                      f"{by_path[chosen].description}")
    return chosen


def default_range(info: api.ParameterInfo) -> tuple[float, float]:
    """A sweep range for a parameter: its limits when finite and not far wider than its
    value (:data:`SPAN_AS_RANGE`), else its value +- :data:`HALF_WIDTH` of its size, cut
    to the limits; a strict limit is kept :data:`STRICT_MARGIN` of the range inside."""
    centre = current(info) or 0.0
    size = max(abs(centre), UNIT_SIZE)
    low = info.low if info.low is not None else -math.inf
    high = info.high if info.high is not None else math.inf
    if high - low > SPAN_AS_RANGE * size:
        low, high = max(low, centre - HALF_WIDTH * size), min(high, centre + HALF_WIDTH * size)
    margin = STRICT_MARGIN * (high - low)
    if info.low_strict and low == info.low:
        low += margin
    if info.high_strict and high == info.high:
        high -= margin
    return low, high


def axis_range(place, info: api.ParameterInfo, key: str, numbers: Numbers, *,
               name: str = "Axis", spec_key: str = "axes.0",
               initial: tuple[float, float, int] | None = None,
               limits: tuple[int, int] | None = None,
               bind: str | None = None) -> tuple[float | None, ...]:
    """The axis' (low, high, count) typed in three boxes (widget keys ``<key>_low``,
    ``<key>_high``, ``<key>_count``; problems in ``numbers``, named ``name`` and the sweep
    file's keys ``<spec_key>.low`` ...). The first time, the boxes hold ``initial`` (else
    :func:`default_range` and :data:`DEFAULT_POINTS`); whenever the axis' parameter
    changes they are reset to the new parameter's :func:`default_range` (on the first
    run a box whose text the session already has, e.g. from the address, keeps it).
    ``limits``: the dashboard's limits on the points; ``bind`` as for :meth:`Numbers.read`."""
    marker = f"{key}__path"
    seen = st.session_state.get(marker)
    if seen != info.path:
        low, high = default_range(info)
        count = DEFAULT_POINTS
        if seen is None and initial is not None:
            low, high, count = initial
        for field, value in (("low", low), ("high", high), ("count", count)):
            if seen is not None or f"{key}_{field}" not in st.session_state:
                st.session_state[f"{key}_{field}"] = as_text(value, field == "count")
        st.session_state[marker] = info.path
    cols = place.columns(3)
    return tuple(
        numbers.read(col, label, 0, f"{key}_{field}", f"{spec_key}.{field}",
                     title=f"{name} '{label}'", whole=field == "count",
                     limits=limits if field == "count" else None, bind=bind)
        for col, field, label in zip(cols, ("low", "high", "count"), ("from", "to", "points"),
                                     strict=True))


def matches(info: api.ParameterInfo, query: str) -> bool:
    """Whether the search ``query`` (words, any case) is in the label, path, group, unit or
    description: every word somewhere."""
    text = " ".join((info.label, info.path, info.group, info.unit, info.description)).lower()
    return all(word in text for word in query.lower().split())


def _entries(info: api.ParameterInfo, formats: list[str]):
    """(format id or None, current value) of each box of a parameter: one for a scenario
    parameter, one per chosen format having a format parameter."""
    if info.path.startswith("format."):
        return [(fid, info.values[fid]) for fid in formats if fid in info.values]
    return [(None, info.value)]


def _read_entry(place, numbers: Numbers, info: api.ParameterInfo, fid: str | None,
                now: float | None, key: str, shown: bool) -> float | None:
    """The new value typed for one box (None: unchanged or invalid); the box is drawn if
    ``shown``, with an error right under it for a value it cannot take."""
    kept = st.session_state.setdefault(KEPT, {})
    first = as_text(now) if now is not None else ""
    unit = f" ({info.unit})" if info.unit else ""
    label = f"{info.label}{unit}" + (f" — {fid}" if fid else "")
    if shown:
        if key not in st.session_state:
            st.session_state[key] = kept.get(key, first)
        text = place.text_input(label, key=key, help=describe(info),
                                placeholder="varies by guarantor" if now is None else None)
        kept[key] = text
        now_text = "varies" if now is None else as_text(now)
        place.caption(f"`{info.path}` · now {now_text} · allowed {info.allowed}")
    else:
        text = kept.get(key, first)
    if text.strip() in ("", first):
        return None
    title = f"{fid}: {info.label}" if fid else info.label
    before = len(numbers.problems)
    value = numbers.parse(text.strip(), f"{title} (key '{info.path}')")
    if value is not None:
        problem = api.parameter_problem(info, value)
        if problem is not None:
            numbers.problems.append(f"{fid}: {problem}" if fid else problem)
            value = None
    if len(numbers.problems) > before and shown:
        place.error(numbers.problems[-1])
    return None if value is None or value == now else value


def parameter_panel(place, infos: list[api.ParameterInfo], formats: list[str],
                    key_prefix: str = "p", shown: bool = True) -> Panel:
    """Every parameter of ``infos`` (the catalogue) in an expander per group, with a search
    box (``<key_prefix>_search``) that shows only the parameters whose label, path, group,
    unit or description has every word typed. A scenario parameter has one box, a format
    parameter one per chosen format in ``formats`` (each showing that format's value). Each
    box (key ``<key_prefix>:<path>`` or ``<key_prefix>:<format>:<path>``) is labelled with
    the parameter's label and unit, holds its current value, has its description, limits,
    default and source as help and its path, value and limits as a caption; a value it
    cannot take is explained under it."""
    numbers = Numbers()
    if not shown:  # not drawn (its 170-odd boxes cost a rerun time): the values typed stay
        return _kept_changes(infos, formats, key_prefix, numbers)
    query = place.text_input("Search parameters", key=f"{key_prefix}_search",
                             placeholder="e.g. war cost, sanctions, dynamics.belief")
    changes: dict[str, float] = {}
    format_changes: dict[str, dict[str, float]] = {}
    groups: dict[str, list[api.ParameterInfo]] = {}
    for info in infos:
        groups.setdefault(info.group, []).append(info)
    shown_any = False
    for group, members in groups.items():
        visible = [i for i in members if matches(i, query)] if query.strip() else members
        box = place.expander(f"{group} ({len(visible)})", expanded=bool(query.strip())) \
            if visible else None
        shown_any = shown_any or bool(visible)
        shown = {id(i) for i in visible}
        for info in members:
            for fid, now in _entries(info, formats):
                key = f"{key_prefix}:{fid}:{info.path}" if fid else f"{key_prefix}:{info.path}"
                value = _read_entry(box, numbers, info, fid, now, key, id(info) in shown)
                if value is None:
                    continue
                if fid:
                    format_changes.setdefault(fid, {})[info.path] = value
                else:
                    changes[info.path] = value
    if not shown_any:
        place.caption(f"No parameter matches {query!r}.")
    return Panel(changes, format_changes, numbers.problems)


def _kept_changes(infos: list[api.ParameterInfo], formats: list[str], key_prefix: str,
                  numbers: Numbers) -> Panel:
    """The panel's changes from the values typed before, none drawn."""
    changes: dict[str, float] = {}
    format_changes: dict[str, dict[str, float]] = {}
    for info in infos:
        for fid, now in _entries(info, formats):
            key = f"{key_prefix}:{fid}:{info.path}" if fid else f"{key_prefix}:{info.path}"
            value = _read_entry(None, numbers, info, fid, now, key, False)
            if value is not None:
                if fid:
                    format_changes.setdefault(fid, {})[info.path] = value
                else:
                    changes[info.path] = value
    return Panel(changes, format_changes, numbers.problems)


def apply_changes(scenario, changes: dict[str, float],
                  format_changes: dict[str, dict[str, float]]):
    """The scenario with ``changes`` and each changed format (``{format_id: {path:
    value}}``) as ``(scenario, {format_id: FormatSpec})``, validated by
    :func:`deterrence.api.with_parameters` (the formats against the changed scenario).
    Raises :class:`deterrence.api.ConfigError`, one line naming the key, the value and
    what is allowed."""
    changed = api.with_parameters(scenario, changes)
    formats = {}
    for fid, paths in format_changes.items():
        _, formats[fid] = api.with_parameters(changed, paths, fmt=fid)
    return changed, formats
