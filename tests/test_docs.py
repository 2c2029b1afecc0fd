"""The documentation stays in step with the code."""

from __future__ import annotations

import runpy
from pathlib import Path

DOCS = Path(__file__).resolve().parent.parent / "docs"


def test_model_page_holds_the_generated_parameter_table():
    table = runpy.run_path(str(DOCS / "parameter_table.py"))["table"]()
    page = (DOCS / "model.md").read_text()
    assert table in page, "docs/model.md §4 is stale: paste `python docs/parameter_table.py`"
