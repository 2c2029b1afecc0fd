"""Under CI (``CI=true``) a test that would skip for a missing tool fails instead: CI
installs everything the suite needs, so a skip there hides a broken set-up. Every test
ends with the process's real ``__main__`` module in place (AppTest replaces it)."""

from __future__ import annotations

import os

import pytest

IN_CI = os.environ.get("CI", "").lower() == "true"


def _fail_skip(report) -> None:
    if IN_CI and report.skipped and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        report.longrepr = f"skipped under CI=true, which must run every test: {report.longrepr}"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    _fail_skip(outcome.get_result())


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector):
    outcome = yield
    _fail_skip(outcome.get_result())


@pytest.fixture(autouse=True)
def _keep_the_main_module():
    """Streamlit's AppTest leaves the script it ran as ``sys.modules["__main__"]``; a later
    test's process pool (spawn) would run that script in every worker it starts, and a
    script made by ``AppTest.from_function`` fails there (its arguments are gone), so
    every worker dies. Each test ends with the real ``__main__`` back in place."""
    import sys

    main = sys.modules.get("__main__")
    yield
    if main is not None and sys.modules.get("__main__") is not main:
        sys.modules["__main__"] = main
