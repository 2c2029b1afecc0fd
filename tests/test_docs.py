"""The documentation stays in step with the code."""

from __future__ import annotations

import re
import runpy
from pathlib import Path

from deterrence.game.config import (
    AnalysisParameters,
    DynamicsParameters,
    FormatSpec,
    GuarantorParameters,
    ResponseSpec,
    RussiaParameters,
    UkraineParameters,
)

DOCS = Path(__file__).resolve().parent.parent / "docs"
MODEL_PAGE = DOCS / "model.md"

#: The prefix of each table of the schema in the page's TOML paths.
TABLES = {"russia": RussiaParameters, "ukraine": UkraineParameters,
          "guarantors[]": GuarantorParameters, "analysis": AnalysisParameters,
          "dynamics": DynamicsParameters, "format.response": ResponseSpec,
          "format": FormatSpec}
#: The tables whose parameters are the crisis game's (model.md §2 gives each a symbol).
CRISIS_TABLES = (RussiaParameters, UkraineParameters, GuarantorParameters, FormatSpec,
                 ResponseSpec)


def section(page: str, number: int) -> str:
    """The text of section ``number`` (``## number. ...``) of the page."""
    start = page.index(f"\n## {number}. ")
    end = page.find("\n## ", start + 1)
    return page[start:end if end >= 0 else None]


def test_model_page_holds_the_generated_parameter_table():
    table = runpy.run_path(str(DOCS / "parameter_table.py"))["table"]()
    page = MODEL_PAGE.read_text()
    assert table in page, "docs/model.md §5 is stale: paste `python docs/parameter_table.py`"


def test_every_parameter_path_on_the_model_page_exists():
    """A path such as `russia.war_cost` or `format.response.cost_share` names a field of the
    schema: a removed or renamed parameter leaves no trace on the page."""
    page = MODEL_PAGE.read_text()
    prefixes = "|".join(re.escape(p) for p in sorted(TABLES, key=len, reverse=True))
    found = re.findall(rf"`({prefixes})\.([a-z_]+)", page)
    assert found
    missing = sorted({f"{prefix}.{name}" for prefix, name in found
                      if name not in TABLES[prefix].model_fields
                      and not (prefix == "format" and name == "response")})
    assert not missing, f"docs/model.md names parameters the schema does not have: {missing}"


def test_every_crisis_parameter_has_a_symbol_in_the_equations():
    """Every parameter of the crisis game appears in §2 (its notation table), so each
    equation's symbols can be traced to the schema."""
    equations = section(MODEL_PAGE.read_text(), 2)
    absent = []
    for model in CRISIS_TABLES:
        for name, info in model.model_fields.items():
            extra = info.json_schema_extra
            if not isinstance(extra, dict) or "unit" not in extra:
                continue
            if not re.search(rf"`(?:[\w\[\]]+)?(?:\.[\w\[\]]+)*\.?{name}`", equations):
                absent.append(f"{model.__name__}.{name}")
    assert not absent, f"docs/model.md §2 gives no symbol for: {absent}"
