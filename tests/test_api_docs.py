"""The Python walk-through of docs/api.md, and README's Python snippet, run as written."""

from __future__ import annotations

import re
from pathlib import Path

import matplotlib
import pytest

matplotlib.use("Agg")  # figures are drawn, never shown

ROOT = Path(__file__).resolve().parent.parent
PYTHON_BLOCK = re.compile(r"^```python\n(.*?)^```", re.DOTALL | re.MULTILINE)


def python_blocks(page: Path) -> list[str]:
    return PYTHON_BLOCK.findall(page.read_text())


@pytest.mark.parametrize("page", ["docs/api.md", "README.md"])
def test_python_blocks_run_in_order(page, monkeypatch, capsys):
    import matplotlib.pyplot as plt

    blocks = python_blocks(ROOT / page)
    assert blocks, f"{page} has no python blocks"
    monkeypatch.chdir(ROOT)  # the pages' paths are relative to the repository's root
    namespace: dict = {"__name__": "__main__"}
    try:
        for number, code in enumerate(blocks, 1):
            exec(compile(code, f"{page} python block {number}", "exec"), namespace)
    finally:
        plt.close("all")
    assert capsys.readouterr().out  # the walk-through shows its results


def test_the_printed_errors_are_the_ones_the_page_shows(capsys, monkeypatch):
    """The page quotes what its second block prints; it must be the real errors."""
    page = (ROOT / "docs/api.md").read_text()
    monkeypatch.chdir(ROOT)
    first, second = python_blocks(ROOT / "docs/api.md")[:2]
    namespace: dict = {}
    exec(first, namespace)
    capsys.readouterr()
    exec(second, namespace)
    printed = capsys.readouterr().out.splitlines()
    assert len(printed) == 2
    for line in printed:
        assert f"\n{line}\n" in page, line
