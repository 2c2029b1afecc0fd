"""The dashboard in a real browser: ``deterrence dashboard`` serves it on 127.0.0.1 and
Playwright drives Debian's Chromium (headless) through a visitor's session: the maps are
drawn, a changed input re-runs the page with new maps, a reload shows the page again, an
entry the browser cannot hold as a number gets one error line, and no Streamlit exception
appears. Who it answers: http://localhost:P/ as well as http://127.0.0.1:P/; a page under a
foreign name that resolves to 127.0.0.1 (DNS rebinding, through Chromium's host resolver
rules) gets only the refusal; a WebSocket from another origin is refused although the
server's environment turns Streamlit's CORS protection off, which the command's flags
outrank. Screenshots go to the test's tmp_path.

Skipped (with the reason) without playwright or /usr/bin/chromium; under ``CI=true`` the
skip is a failure (tests/conftest.py): .ci/run installs Chromium, the test extra installs
playwright. ``playwright install`` is not needed: the system Chromium is used.
"""

from __future__ import annotations

import base64
import http.client
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from deterrence.game.config import load_catalogue

try:
    from playwright import sync_api
except ModuleNotFoundError as exc:  # not installed (ImportError of a broken one is raised)
    sync_api, NO_PLAYWRIGHT = None, str(exc)

CHROMIUM = Path("/usr/bin/chromium")
ROOT = Path(__file__).resolve().parent.parent
TIMEOUT_MS = 60_000  # generous: a shared 2-core machine, a cold sweep on the first load
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu",
                 "--disable-background-networking"]
# A name of someone else's that resolves to this machine, as a rebinding attacker's would.
FOREIGN = "evil.example"
# A user's Streamlit settings that would open the WebSocket to every origin; the command's
# flags must outrank them (docs/cli.md, Security).
OPEN_SETTINGS = {"STREAMLIT_SERVER_ENABLE_CORS": "false",
                 "STREAMLIT_SERVER_ENABLE_XSRF_PROTECTION": "false"}
MAPS = ".vega-embed svg, .vega-embed canvas"  # a drawn Vega-Lite chart
# Settled: the page shows a Streamlit exception, or the script is not running and the first
# tab ("Regime maps": per format its regime and its P(escalate)) has drawn `expected` maps.
SETTLED = """expected => {
    if (document.querySelector('[data-testid="stException"]')) return true;
    const app = document.querySelector('[data-testid="stApp"]');
    const panel = document.querySelector('[data-testid="stTabPanel"]');
    return Boolean(app && app.getAttribute('data-test-script-state') === 'notRunning'
        && app.getAttribute('data-test-connection-state') === 'CONNECTED'
        && panel && panel.querySelectorAll('.vega-embed svg, .vega-embed canvas').length
            === expected);
}"""
# Finished: the page is connected and its script is not running (whatever it shows).
FINISHED = """() => {
    const app = document.querySelector('[data-testid="stApp"]');
    return Boolean(app && app.getAttribute('data-test-script-state') === 'notRunning'
        && app.getAttribute('data-test-connection-state') === 'CONNECTED'
        && document.querySelector('[data-testid="stAlert"], [data-testid="stTabPanel"], '
                                  + '[data-testid="stException"]'));
}"""
# Records whether Streamlit started a script run after this point (a re-run may be too
# short to catch by polling).
WATCH_RERUN = """() => {
    window.__reran = false;
    const app = document.querySelector('[data-testid="stApp"]');
    new MutationObserver(() => {
        if (app.getAttribute('data-test-script-state') === 'running') window.__reran = true;
    }).observe(app, {attributes: true});
}"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def healthy(url: str) -> bool:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # no proxy
    try:
        with opener.open(f"{url}/_stcore/health", timeout=5) as response:
            return response.status == 200
    except OSError:
        return False


def stop(proc: subprocess.Popen) -> None:
    """End the server's process group (the CLI and the Streamlit process it started)."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    proc.wait(timeout=30)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            os.killpg(proc.pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)


@pytest.fixture(scope="module")
def tools() -> None:
    """Skip (a failure under CI=true) without playwright or Chromium."""
    if sync_api is None:
        pytest.skip(f"playwright is not installed ({NO_PLAYWRIGHT}; pip install -e "
                    "'.[test]' installs it)")
    if not CHROMIUM.is_file():
        pytest.skip(f"{CHROMIUM} is missing (Debian: apt-get install chromium; .ci/run "
                    "installs it)")


@pytest.fixture(scope="module")
def server(tools, tmp_path_factory):
    """``deterrence dashboard --port P`` in its own process group, with Streamlit's
    protections turned off in its environment (OPEN_SETTINGS); its URL once healthy."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path_factory.mktemp("dashboard") / "server.log"
    with log.open("w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "deterrence", "dashboard", "--port",
                                 str(port)], cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
                                env={**os.environ, **OPEN_SETTINGS}, start_new_session=True)
    try:
        deadline = time.monotonic() + TIMEOUT_MS / 1000
        while not healthy(url):
            if proc.poll() is not None:
                pytest.fail(f"the dashboard exited ({proc.returncode}):\n{log.read_text()}")
            if time.monotonic() > deadline:
                pytest.fail(f"{url}/_stcore/health not OK after {TIMEOUT_MS / 1000:g} s:\n"
                            f"{log.read_text()}")
            time.sleep(0.3)
        yield url
    finally:
        stop(proc)


@pytest.fixture(scope="module")
def playwright(tools):
    with sync_api.sync_playwright() as playwright:  # one per thread
        yield playwright


@pytest.fixture(scope="module")
def browser(playwright):
    chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
    yield chromium
    chromium.close()


@pytest.fixture(scope="module")
def rebinding_browser(playwright):
    """Chromium in which FOREIGN resolves to 127.0.0.1, as after DNS rebinding."""
    chromium = playwright.chromium.launch(
        executable_path=str(CHROMIUM),
        args=[*CHROMIUM_ARGS, f"--host-resolver-rules=MAP {FOREIGN} 127.0.0.1"])
    yield chromium
    chromium.close()


def new_page(browser):
    context = browser.new_context(viewport={"width": 1600, "height": 1200})
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    return context, page


@pytest.fixture
def page(browser, tmp_path):
    context, page = new_page(browser)
    yield page
    page.screenshot(path=str(tmp_path / "last.png"), full_page=True)
    context.close()


@pytest.fixture
def foreign_page(rebinding_browser, tmp_path):
    context, page = new_page(rebinding_browser)
    yield page
    page.screenshot(path=str(tmp_path / "last.png"), full_page=True)
    context.close()


def alerts(page) -> list[str]:
    return [a.inner_text().strip() for a in page.locator('[data-testid="stAlert"]').all()]


def with_name(url: str, name: str) -> str:
    """``url`` with its host name replaced by ``name`` (same port)."""
    return f"http://{name}:{urllib.parse.urlsplit(url).port}"


def websocket_handshake(url: str, host: str, origin: str) -> int:
    """The HTTP status with which the server answers a WebSocket handshake on its stream
    (101: accepted) sent with these Host and Origin headers."""
    parts = urllib.parse.urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    try:
        connection.request("GET", "/_stcore/stream", headers={
            "Host": host, "Origin": origin, "Upgrade": "websocket", "Connection": "Upgrade",
            "Sec-WebSocket-Version": "13", "Sec-WebSocket-Protocol": "streamlit",
            "Sec-WebSocket-Key": base64.b64encode(os.urandom(16)).decode()})
        return connection.getresponse().status
    finally:
        connection.close()


def settle(page, maps: int, when: str) -> None:
    """Wait until the page has re-run and drawn `maps` maps in its first tab; fail on an
    exception."""
    page.wait_for_function(SETTLED, arg=maps, timeout=TIMEOUT_MS)
    shown = page.locator('[data-testid="stException"]')
    if shown.count():
        pytest.fail(f"{when}: the page shows an exception:\n{shown.first.inner_text()}")


def test_maps_render_and_rerun_after_a_change(server, page, tmp_path):
    formats = len(load_catalogue())
    page.goto(server, timeout=TIMEOUT_MS)
    settle(page, 2 * formats, "first load")
    page.screenshot(path=str(tmp_path / "first.png"), full_page=True)

    # type a new number of rounds and press Enter: the page re-runs the simulations
    page.evaluate(WATCH_RERUN)
    rounds = page.get_by_label("Rounds per run")
    rounds.fill("30")
    rounds.press("Enter")
    page.wait_for_function("() => window.__reran === true", timeout=TIMEOUT_MS)
    settle(page, 2 * formats, "after changing 'Rounds per run'")
    assert rounds.input_value() == "30"

    # drop a format: two maps fewer
    page.evaluate(WATCH_RERUN)
    page.get_by_role("button", name="Remove three_tier").click()
    page.wait_for_function("() => window.__reran === true", timeout=TIMEOUT_MS)
    settle(page, 2 * (formats - 1), "after removing a format")

    # the simulated maps are drawn when their tab is opened (six per format: escalation,
    # abandonment, erosion time and the three end-state shares)
    page.get_by_role("tab", name="Simulated outcomes").click()
    panel = page.locator('[data-testid="stTabPanel"]').nth(2)
    page.wait_for_function(
        "n => document.querySelectorAll('[data-testid=\"stTabPanel\"]')[2]"
        ".querySelectorAll('.vega-embed svg, .vega-embed canvas').length === n",
        arg=6 * (formats - 1), timeout=TIMEOUT_MS)
    assert panel.locator(MAPS).count() == 6 * (formats - 1)
    assert page.locator('[data-testid="stException"]').count() == 0
    page.screenshot(path=str(tmp_path / "after-change.png"), full_page=True)
    assert (tmp_path / "after-change.png").stat().st_size > 0


def test_a_second_visit_and_a_reload_show_the_page(server, page, tmp_path):
    """A second visitor or a reload re-runs the page with its sweep already in the cache."""
    formats = len(load_catalogue())
    page.goto(server, timeout=TIMEOUT_MS)
    settle(page, 2 * formats, "opening the page (a second visit if another test ran first)")
    page.reload(timeout=TIMEOUT_MS)
    try:
        settle(page, 2 * formats, "after a reload")
    finally:
        page.screenshot(path=str(tmp_path / "reloaded.png"), full_page=True)
    assert page.locator('[data-testid="stException"]').count() == 0
    assert (tmp_path / "reloaded.png").stat().st_size > 0


def test_localhost_is_served_as_127_0_0_1_is(server, page):
    formats = len(load_catalogue())
    page.goto(with_name(server, "localhost"), timeout=TIMEOUT_MS)
    settle(page, 2 * formats, "opening http://localhost:P/")
    assert alerts(page) == []


def test_a_page_under_a_foreign_name_gets_only_the_refusal(server, foreign_page, tmp_path):
    """DNS rebinding: the browser treats the page and the dashboard as one origin, so
    Streamlit accepts the WebSocket; the dashboard refuses before drawing or computing."""
    page = foreign_page
    page.goto(with_name(server, FOREIGN), timeout=TIMEOUT_MS)
    page.wait_for_function(FINISHED, timeout=TIMEOUT_MS)
    port = urllib.parse.urlsplit(server).port
    assert alerts(page) == [
        f"Refused: this page asked for the dashboard as {FOREIGN}:{port}; it answers only "
        f"to localhost, 127.0.0.1 and [::1] — open http://127.0.0.1:{port}/."]
    page.screenshot(path=str(tmp_path / "refused.png"), full_page=True)
    # nothing else: no title, no sidebar, no tabs, no maps, no exception
    for nothing in ('[data-testid="stHeading"]', '[data-testid="stSidebar"] input',
                    '[data-testid="stTabPanel"]', ".vega-embed",
                    '[data-testid="stException"]'):
        assert page.locator(nothing).count() == 0, nothing


def test_a_websocket_from_another_origin_is_refused(server):
    """The server's environment turns CORS protection off (OPEN_SETTINGS); the command's
    flags turn it on again, so a page on another origin cannot connect."""
    own = urllib.parse.urlsplit(server).netloc
    assert websocket_handshake(server, own, f"http://{own}") == 101  # the page's own origin
    assert websocket_handshake(server, own, f"http://{FOREIGN}") == 403


def test_an_entry_the_browser_cannot_hold_gives_one_error_line(server, page):
    """1e400 overflows a double: a number box would drop it without a word."""
    formats = len(load_catalogue())
    page.goto(server, timeout=TIMEOUT_MS)
    settle(page, 2 * formats, "first load")
    page.evaluate(WATCH_RERUN)
    high = page.get_by_label("to", exact=True).first
    high.fill("1e400")
    high.press("Enter")
    page.wait_for_function("() => window.__reran === true", timeout=TIMEOUT_MS)
    page.wait_for_function(FINISHED, timeout=TIMEOUT_MS)
    assert alerts(page) == [
        "Axis x 'to' (key 'axes.0.high') = '1e400': not a finite number; allowed: a finite "
        "decimal number such as 0.25 or 1e-3"]
    assert high.input_value() == "1e400"
    assert page.locator('[data-testid="stTabPanel"]').count() == 0
    assert page.locator('[data-testid="stException"]').count() == 0
