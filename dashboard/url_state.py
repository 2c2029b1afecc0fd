"""The page's settings in its address (``st.query_params``), so that a view can be shared as
a link and survives a reload.

Each setting is a widget key of the page. :func:`restore` copies the address's values into
``st.session_state`` once per session, before the widgets are drawn, keeping only values the
widget can show (a choice among its options; text as typed, which the page then checks as
it checks what a visitor types); what it cannot use is reported in one line each and left
out. :func:`publish` writes the settings that differ from their defaults back into the
address after each run, so the link names only what was changed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, MutableMapping, Sequence
from dataclasses import dataclass

#: Session-state flag: the address was read into this session.
RESTORED = "_url_restored"
#: Separator of a list's items in one query parameter (format ids never contain it).
LIST_SEPARATOR = ","
#: Longest value taken from the address, in characters (a link is typed or pasted by people).
MAX_VALUE_LENGTH = 200


@dataclass(frozen=True)
class Setting:
    """A widget whose value the address carries: ``key`` (the widget's key and the query
    parameter's name), ``kind`` ("text": a text box's string; "choice": one of
    ``options()``; "choices": a list of them), its default as the widget holds it, and for
    choices a function giving the options allowed now."""

    key: str
    kind: str
    default: object
    options: Callable[[], Sequence[str]] | None = None

    def parse(self, raw: str) -> object:
        """The widget value of ``raw``; ValueError (its message says what is allowed) if the
        widget cannot hold it."""
        if len(raw) > MAX_VALUE_LENGTH:
            raise ValueError(f"longer than {MAX_VALUE_LENGTH} characters")
        if self.kind == "text":
            return raw
        allowed = list(self.options()) if self.options else []
        items = [raw] if self.kind == "choice" else [i for i in raw.split(LIST_SEPARATOR) if i]
        unknown = [i for i in items if i not in allowed]
        if unknown or (self.kind == "choice" and not items):
            shown = ", ".join(allowed[:12]) + (", …" if len(allowed) > 12 else "")
            raise ValueError(f"{unknown[0] if unknown else raw!r} is not one of: {shown}")
        return items[0] if self.kind == "choice" else list(dict.fromkeys(items))

    def dump(self, value: object) -> str:
        if self.kind == "choices":
            return LIST_SEPARATOR.join(str(v) for v in value)  # type: ignore[union-attr]
        return str(value)


def restore(settings: Sequence[Setting], params: Mapping[str, str],
            state: MutableMapping[str, object]) -> list[str]:
    """Copy the address's settings into the session once (later runs keep what the visitor
    chose); the problems, one line per setting the address gives but the page cannot use.
    Settings are restored in order, so a choice whose options depend on an earlier one
    (an axis on the chosen formats) sees that one already restored."""
    if state.get(RESTORED):
        return []
    state[RESTORED] = True
    problems = []
    for setting in settings:
        if setting.key not in params:
            continue
        try:
            state[setting.key] = setting.parse(params[setting.key])
        except ValueError as exc:
            problems.append(f"The link's setting '{setting.key}' was not used: {exc}.")
    return problems


def publish(settings: Sequence[Setting], state: Mapping[str, object],
            params: MutableMapping[str, str]) -> None:
    """Write into the address every setting that differs from its default, and remove the
    others (unchanged parameters are not rewritten: each write is a message to the
    browser)."""
    wanted = {s.key: s.dump(state[s.key]) for s in settings
              if s.key in state and state[s.key] != s.default}
    for key in [k for k in params if k not in wanted]:
        del params[key]
    for key, value in wanted.items():
        if params.get(key) != value:
            params[key] = value
