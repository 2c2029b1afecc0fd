"""The page's settings in its address, so that a view can be shared as a link and survives a
reload.

The widgets carry their own values in the address (Streamlit's ``bind="query-params"``:
the widget's key is the query parameter, a value equal to the default is left out). A value
a widget cannot show (a format that does not exist, a view that is not there) Streamlit
drops without a word; :func:`link_problems` names each such value once per session, in one
line, so that a visitor who follows a stale link knows what was not used.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, MutableMapping, Sequence
from dataclasses import dataclass

#: Session-state flag: the address was checked in this session.
CHECKED = "_link_checked"
#: How many allowed values a problem line lists before "…".
SHOWN_OPTIONS = 12


@dataclass(frozen=True)
class Choice:
    """A bound widget whose values are choices: its key (the query parameter) and the
    options it shows now; ``many`` for a multiselect (the parameter repeats)."""

    key: str
    options: Callable[[], Sequence[str]]
    many: bool = False


def link_problems(choices: Sequence[Choice], params: Mapping[str, Sequence[str]],
                  state: MutableMapping[str, object]) -> list[str]:
    """One line per value of the address that a widget cannot show, the first time the
    session runs (later runs: none); ``params`` maps each query parameter to its values
    (``st.query_params.get_all``)."""
    if state.get(CHECKED):
        return []
    state[CHECKED] = True
    problems = []
    for choice in choices:
        given = [v for v in params.get(choice.key, []) if v != ""]
        allowed = [str(o) for o in choice.options()]
        unknown = [v for v in given if v not in allowed]
        if not choice.many:
            unknown = unknown[-1:]
        for value in unknown:
            shown = ", ".join(allowed[:SHOWN_OPTIONS]) + (
                ", …" if len(allowed) > SHOWN_OPTIONS else "")
            problems.append(f"The link's setting {choice.key} = {value!r} was not used: "
                            f"allowed: {shown}.")
    return problems
