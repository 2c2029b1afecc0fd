"""Print the parameter table of docs/model.md §5 from the schema in deterrence/game/config.py.

    python docs/parameter_table.py

The test suite checks that docs/model.md holds exactly this table.
"""

from pydantic_core import PydanticUndefined

from deterrence.game.config import (
    AnalysisParameters,
    DynamicsParameters,
    FormatSpec,
    GuarantorParameters,
    ResponseSpec,
    RussiaParameters,
    UkraineParameters,
)

SYMBOL = {"gt": ">", "ge": "≥", "lt": "<", "le": "≤"}
SECTIONS = (("russia", RussiaParameters), ("ukraine", UkraineParameters),
            ("guarantors[]", GuarantorParameters), ("analysis", AnalysisParameters),
            ("dynamics", DynamicsParameters), ("format", FormatSpec),
            ("format.response", ResponseSpec))


def allowed(info) -> str:
    return ", ".join(f"{SYMBOL[k]} {getattr(rule, k):g}" for rule in info.metadata
                     for k in SYMBOL if getattr(rule, k, None) is not None)


def default(info) -> str:
    value = info.default
    if value is PydanticUndefined:
        return "required"
    return ("true" if value else "false") if isinstance(value, bool) else f"{value:g}"


def table() -> str:
    lines = ["| parameter (TOML path) | unit | default (allowed) | source | meaning |",
             "|---|---|---|---|---|"]
    for prefix, model in SECTIONS:
        for name, info in model.model_fields.items():
            extra = info.json_schema_extra
            if not isinstance(extra, dict) or "unit" not in extra:
                continue
            mark = " **(A)**" if "assumption" in extra["source"] else ""
            limits = f" ({allowed(info)})" if allowed(info) else ""
            lines.append(f"| `{prefix}.{name}` | {extra['unit']} | {default(info)}{limits} | "
                         f"{extra['source']}{mark} | {info.description} |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(table())
