"""The dashboard in a real browser: ``deterrence dashboard`` serves it on 127.0.0.1 and
Playwright drives Debian's Chromium (headless, 1280 px wide) through a visitor's session:
the maps are drawn and readable (no title, header or axis title cut off or running into
another, checked from the drawn SVG; axis titles with units; one colour legend per
quantity), a changed input re-runs the page, the settings survive a reload through the
address, Cancel stops a long simulation and a save (no partial archive), Save writes the
computed simulations without simulating again, an archive opens with its maps, one run
steps, an entry the browser cannot hold as a number gets one error line, and no Streamlit
exception appears. Who it answers: http://localhost:P/ as well as http://127.0.0.1:P/; a
page under a foreign name that resolves to 127.0.0.1 (DNS rebinding, through Chromium's host
resolver rules) gets only the refusal; a WebSocket from another origin is refused although the
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
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from deterrence import api

try:
    from playwright import sync_api
except ModuleNotFoundError as exc:  # not installed (ImportError of a broken one is raised)
    sync_api, NO_PLAYWRIGHT = None, str(exc)

CHROMIUM = Path("/usr/bin/chromium")
WIDTH = 1280  # the narrowest window the page is designed for
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
# Settled: the page shows a Streamlit exception, or the script is not running and the view
# has drawn `expected` charts (the regime maps: two, the regime and P(escalate)).
SETTLED = """expected => {
    if (document.querySelector('[data-testid="stException"]')) return true;
    const app = document.querySelector('[data-testid="stApp"]');
    const main = document.querySelector('[data-testid="stMain"]');
    return Boolean(app && app.getAttribute('data-test-script-state') === 'notRunning'
        && app.getAttribute('data-test-connection-state') === 'CONNECTED'
        && main && main.querySelectorAll('.vega-embed svg').length === expected);
}"""
# Finished: the page is connected and its script is not running (whatever it shows).
FINISHED = """() => {
    const app = document.querySelector('[data-testid="stApp"]');
    return Boolean(app && app.getAttribute('data-test-script-state') === 'notRunning'
        && app.getAttribute('data-test-connection-state') === 'CONNECTED'
        && document.querySelector('[data-testid="stAlert"], [data-testid="stMain"] .vega-embed, '
                                  + '[data-testid="stException"]'));
}"""
# Records whether Streamlit started a script run after this point (a re-run may be too
# short to catch by polling).
WATCH_RERUN = """() => {
    window.__reran = false;
    const app = document.querySelector('[data-testid="stApp"]');
    new MutationObserver(records => {
        // a record per change: a run that started and ended between two callbacks still
        // left one whose old value was 'running'
        if (app.getAttribute('data-test-script-state') === 'running'
            || records.some(r => r.oldValue === 'running')) window.__reran = true;
    }).observe(app, {attributes: true, attributeOldValue: true,
                     attributeFilter: ['data-test-script-state']});
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
def results(tmp_path_factory) -> Path:
    """The server's results folder, holding one small archive to open."""
    folder = tmp_path_factory.mktemp("results")
    plan = api.sweep_plan("baseline", {"format.commitment_bindingness": [0.2, 0.6, 1.0],
                                       "russia.war_cost": [0.2, 0.5]},
                          formats=["bilateral", "nato"], replicates=2, steps=12,
                          name="browsed")
    archive, failures = api.run_sweep(plan, folder / "browsed")
    assert failures == [] and archive is not None
    return folder


@pytest.fixture(scope="module")
def server(tools, tmp_path_factory, results):
    """``deterrence dashboard --port P`` in its own process group, with Streamlit's
    protections turned off in its environment (OPEN_SETTINGS) and archives under
    ``results``; its URL once healthy."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path_factory.mktemp("dashboard") / "server.log"
    with log.open("w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "deterrence", "dashboard", "--port",
                                 str(port)], cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
                                env={**os.environ, **OPEN_SETTINGS,
                                     "DETERRENCE_RESULTS_DIR": str(results)},
                                start_new_session=True)
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
    context = browser.new_context(viewport={"width": WIDTH, "height": 1000})
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


# Every text of each drawn chart in the main area, with its box relative to the chart's
# SVG and the role Vega gives it (axis-title, title-text: a panel's header, legend-...).
TEXTS = """() => Array.from(document.querySelectorAll('[data-testid="stMain"] .vega-embed svg'))
    .map(svg => {
        const box = svg.getBoundingClientRect();
        return {width: box.width, height: box.height,
                texts: Array.from(svg.querySelectorAll('text')).map(t => {
                    const r = t.getBoundingClientRect();
                    const g = t.closest('g[class*="role-"]');
                    return {text: t.textContent, role: g ? g.getAttribute('class') : '',
                            left: r.left - box.left, right: r.right - box.left,
                            top: r.top - box.top, bottom: r.bottom - box.top};
                })};
    })"""
# The panel headers of the first chart drawn are exactly the argument (sorted names).
HEADERS_ARE = """names => {
    const svg = document.querySelector('[data-testid="stMain"] .vega-embed svg');
    if (!svg) return false;
    const shown = Array.from(svg.querySelectorAll('g[class*="role-title"] text'))
        .map(t => t.textContent).filter((v, i, a) => a.indexOf(v) === i).sort();
    return JSON.stringify(shown) === JSON.stringify(names);
}"""
# Overlap allowed between two boxes, in pixels (anti-aliasing of glyph boxes).
TOUCH_PX = 1.0


def settle(page, charts: int, when: str) -> None:
    """Wait until the page has run and its view drawn ``charts`` charts; fail on an
    exception or a chart Streamlit could not draw."""
    page.wait_for_function(SETTLED, arg=charts, timeout=TIMEOUT_MS)
    shown = page.locator('[data-testid="stException"]')
    if shown.count():
        pytest.fail(f"{when}: the page shows an exception:\n{shown.first.inner_text()}")


def view(page, name: str) -> None:
    page.evaluate(WATCH_RERUN)
    page.locator('[data-testid="stButtonGroup"] button').filter(
        has_text=re.compile(rf"^{re.escape(name)}$")).first.click()
    page.wait_for_function("() => window.__reran === true", timeout=TIMEOUT_MS)


def overlapping(a: dict, b: dict) -> bool:
    return (min(a["right"], b["right"]) - max(a["left"], b["left"]) > TOUCH_PX
            and min(a["bottom"], b["bottom"]) - max(a["top"], b["top"]) > TOUCH_PX)


def assert_readable(page, when: str) -> None:
    """Every title, panel header, axis title and legend text of every chart lies inside its
    chart and clear of every other; axis titles carry a unit; one colour legend a chart."""
    for number, chart in enumerate(page.evaluate(TEXTS)):
        texts = [t for t in chart["texts"]
                 if t["text"].strip() and "role-axis-label" not in t["role"]]
        for t in texts:
            assert -TOUCH_PX <= t["left"] and t["right"] <= chart["width"] + TOUCH_PX \
                and -TOUCH_PX <= t["top"] and t["bottom"] <= chart["height"] + TOUCH_PX, (
                    f"{when}, chart {number}: {t['text']!r} is cut off", t, chart["width"])
        for k, a in enumerate(texts):
            for b in texts[k + 1:]:
                assert not overlapping(a, b), f"{when}, chart {number}: {a} runs into {b}"
        axis_titles = " ".join(t["text"] for t in texts if "role-axis-title" in t["role"])
        assert re.search(r"\(.+\)", axis_titles), f"{when}, chart {number}: no unit"
        headers = [t["text"] for t in texts if "role-title-text" in t["role"]]
        assert len(headers) == len(set(headers)), headers  # each panel's format once
        legend_titles = [t["text"] for t in texts if "role-legend-title" in t["role"]]
        assert len(legend_titles) == 1, (when, number, legend_titles)


def test_the_maps_are_readable_at_1280_px(server, page, tmp_path):
    page.goto(server, timeout=TIMEOUT_MS)
    settle(page, 2, "first load")
    page.screenshot(path=str(tmp_path / "regime.png"), full_page=True)
    assert_readable(page, "regime maps")
    names = {t["text"] for c in page.evaluate(TEXTS) for t in c["texts"]
             if "role-title-text" in t["role"]}
    assert names == {f.name for f in api.load_catalogue().values()}
    view(page, "Credibility")
    settle(page, 2, "credibility")
    assert_readable(page, "credibility")
    view(page, "Simulated outcomes")
    settle(page, 6, "simulated outcomes")
    assert_readable(page, "simulated outcomes")
    page.screenshot(path=str(tmp_path / "simulated.png"), full_page=True)


def test_the_settings_survive_a_reload_through_the_address(server, page):
    page.goto(server, timeout=TIMEOUT_MS)
    settle(page, 2, "first load")
    page.evaluate(WATCH_RERUN)
    rounds = page.get_by_label("Rounds per run")
    rounds.fill("30")
    rounds.press("Enter")
    page.wait_for_function("() => window.__reran === true", timeout=TIMEOUT_MS)
    view(page, "Credibility")
    settle(page, 2, "credibility")
    page.wait_for_function("() => location.search.includes('steps=30') "
                           "&& location.search.includes('view=Credibility')",
                           timeout=TIMEOUT_MS)
    link = page.url
    page.reload(timeout=TIMEOUT_MS)
    settle(page, 2, "after a reload")
    assert page.get_by_label("Rounds per run").input_value() == "30"
    assert page.locator('[data-testid="stMain"]').get_by_text(
        "Mean credibility of the members").count() == 1
    # the link opens the same view in another window
    other = page.context.new_page()
    other.goto(link, timeout=TIMEOUT_MS)
    settle(other, 2, "the link in a new window")
    assert other.get_by_label("Rounds per run").input_value() == "30"
    other.close()


def strip_text(page) -> str:
    bars = page.locator('[data-testid="stProgress"]')
    return bars.first.inner_text() if bars.count() else ""


def test_cancel_stops_a_long_simulation(server, page):
    """About 2.6 M run-rounds (250 replicates): Cancel in the strip at the top stops it."""
    page.goto(f"{server}/?replicates=250&view=Simulated+outcomes", timeout=TIMEOUT_MS)
    cancel = page.get_by_role("button", name="Cancel")
    cancel.wait_for(timeout=TIMEOUT_MS)
    assert "Simulating" in strip_text(page)
    cancel.click()
    page.get_by_text("Cancelled: nothing was written.").wait_for(timeout=TIMEOUT_MS)
    assert page.locator('[data-testid="stException"]').count() == 0
    assert page.locator('[data-testid="stMain"] .vega-embed').count() == 0


def archives_in(results: Path) -> set[str]:
    return {p.name for p in results.iterdir() if p.name != "browsed"}


def test_save_writes_what_was_simulated_and_cancel_leaves_nothing(server, page, results,
                                                                  tmp_path):
    page.goto(f"{server}/?view=Simulated+outcomes&steps=24", timeout=TIMEOUT_MS)
    settle(page, 6, "simulated outcomes")
    view(page, "Save")
    before = archives_in(results)
    # a save cancelled at once (its report alone takes seconds) leaves nothing
    page.get_by_role("button", name="Save archive").click()
    page.get_by_role("button", name="Cancel").click(timeout=TIMEOUT_MS)
    page.get_by_text("Cancelled: nothing was written.").wait_for(timeout=TIMEOUT_MS)
    assert archives_in(results) == before
    # a save after the interval between saves writes the archive and its report, and
    # never simulates: the strip shows only the save's steps
    time.sleep(jobs_interval())
    started = time.monotonic()
    page.get_by_role("button", name="Save archive").click()
    texts = set()
    while not page.locator('[data-testid="stAlertContentSuccess"]').count():
        texts.add(strip_text(page))
        assert time.monotonic() - started < TIMEOUT_MS / 1000, texts
        time.sleep(0.1)
    seconds = time.monotonic() - started
    assert not [t for t in texts if "Simulating" in t], texts
    new = archives_in(results) - before
    (archive,) = [n for n in new if not n.endswith(".report")]
    assert new == {archive, f"{archive}.report"}
    assert api.verify(results / archive) == []
    print(f"save from the computed simulations: {seconds:.1f} s")
    page.screenshot(path=str(tmp_path / "saved.png"), full_page=True)
    page.get_by_text("Download the archive and its report (.zip)").wait_for(
        timeout=TIMEOUT_MS)


def jobs_interval() -> float:
    from deterrence.dashboard import jobs

    return jobs.SAVE_INTERVAL_S


def test_an_archive_opens_with_its_maps(server, page, tmp_path):
    page.goto(f"{server}/?view=Archives", timeout=TIMEOUT_MS)
    main = page.locator('[data-testid="stMain"]')
    main.get_by_text("Archive", exact=True).wait_for(timeout=TIMEOUT_MS)
    # the archive made for this test, whatever the other tests saved since (it may be
    # chosen already: then choosing it runs nothing)
    main.locator('[data-testid="stSelectbox"]').first.click()
    page.get_by_role("option").filter(has_text=re.compile(r"^browsed")).click()
    page.wait_for_function(HEADERS_ARE, arg=sorted(
        api.load_catalogue()[f].name for f in ("bilateral", "nato")), timeout=TIMEOUT_MS)
    settle(page, 2, "the archive's regime maps")
    assert main.get_by_text("browsed", exact=False).count() >= 1
    assert main.get_by_text("seed ", exact=False).count() >= 1
    assert_readable(page, "an archive's regime maps")
    names = {t["text"] for c in page.evaluate(TEXTS) for t in c["texts"]
             if "role-title-text" in t["role"]}
    assert names == {api.load_catalogue()[f].name for f in ("bilateral", "nato")}
    page.screenshot(path=str(tmp_path / "archive.png"), full_page=True)


# The round the one-run panel shows has reached the argument.
ROUND_AT_LEAST = """n => {
    const m = document.body.innerText.match(/Round (\\d+) of/);
    return Boolean(m && Number(m[1]) >= n);
}"""


def test_one_run_steps_and_resets(server, page, tmp_path):
    # full NATO membership at a binding pledge: deterred, so the run goes on
    page.goto(f"{server}/?view=One+run&formats=Full+NATO+membership&axis0_low=0.9"
              "&axis0_high=1", timeout=TIMEOUT_MS)
    main = page.locator('[data-testid="stMain"]')
    main.get_by_text("Round 0 of", exact=False).wait_for(timeout=TIMEOUT_MS)
    page.get_by_role("button", name="Step", exact=True).click()
    main.get_by_text("Round 1 of", exact=False).wait_for(timeout=TIMEOUT_MS)
    page.get_by_role("button", name="Play", exact=True).click()
    # playing: the round goes on by itself
    page.wait_for_function(ROUND_AT_LEAST, arg=3, timeout=TIMEOUT_MS)
    page.get_by_role("button", name="Reset", exact=True).click()
    main.get_by_text("Round 0 of", exact=False).wait_for(timeout=TIMEOUT_MS)
    assert page.locator('[data-testid="stException"]').count() == 0
    page.screenshot(path=str(tmp_path / "one-run.png"), full_page=True)


def test_localhost_is_served_as_127_0_0_1_is(server, page):
    page.goto(with_name(server, "localhost"), timeout=TIMEOUT_MS)
    settle(page, 2, "opening http://localhost:P/")
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
    for nothing in ('[data-testid="stHeading"]', '[data-testid="stSidebar"] input',
                    ".vega-embed", '[data-testid="stException"]'):
        assert page.locator(nothing).count() == 0, nothing


def test_a_websocket_from_another_origin_is_refused(server):
    """The server's environment turns CORS protection off (OPEN_SETTINGS); the command's
    flags turn it on again, so a page on another origin cannot connect."""
    own = urllib.parse.urlsplit(server).netloc
    assert websocket_handshake(server, own, f"http://{own}") == 101  # the page's own origin
    assert websocket_handshake(server, own, f"http://{FOREIGN}") == 403


def test_an_entry_the_browser_cannot_hold_gives_one_error_line(server, page):
    """1e400 overflows a double: a number box would drop it without a word."""
    page.goto(server, timeout=TIMEOUT_MS)
    settle(page, 2, "first load")
    high = page.get_by_label("to", exact=True).first
    high.fill("1e400")
    high.press("Enter")
    page.get_by_text("= '1e400': not a finite number").first.wait_for(timeout=TIMEOUT_MS)
    page.wait_for_function(FINISHED, timeout=TIMEOUT_MS)
    assert alerts(page) == [
        "Axis x 'to' (key 'axes.0.high') = '1e400': not a finite number; allowed: a finite "
        "decimal number such as 0.25 or 1e-3"]
    assert high.input_value() == "1e400"
    assert page.locator('[data-testid="stMain"] .vega-embed').count() == 0
    assert page.locator('[data-testid="stException"]').count() == 0
