"""The /ops dashboard as an operator sees it: `leadflow up`, some events, headless Chromium."""

from __future__ import annotations

import re
import signal
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, expect, sync_playwright

from leadflow.embedded import free_port
from tests.e2e.browser import CHROMIUM_ARGS, ChromiumUnavailable, ensure_chromium
from tests.e2e.test_leadflow_up import LEADFLOW, Output, clean_env, wait_ready

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

EVENTS = 20
CHARTS = ("throughput", "lag", "dlq", "actions", "sla", "leads")
# What Chromium logs for the dashboard's first, keyless request; expected in the no-key test.
EXPECTED_401 = "Failed to load resource: the server responded with a status of 401"


@dataclass
class System:
    """A running `leadflow up`: its base URL and the dev key it printed."""

    base: str
    key: str


@dataclass
class PageLog:
    """What the page reported: console errors and warnings, uncaught errors, request URLs."""

    console: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)

    def attach(self, page: Page) -> None:
        """Start recording `page`'s console, uncaught errors and requests."""

        def on_console(message: ConsoleMessage) -> None:
            if message.type in ("error", "warning"):
                self.console.append(f"{message.type}: {message.text} @ {message.location}")

        page.on("console", on_console)
        page.on("pageerror", lambda error: self.errors.append(str(error)))
        page.on("request", lambda request: self.requests.append(request.url))

    def problems(self, *, allowed: tuple[str, ...] = ()) -> list[str]:
        """Console errors/warnings (minus those containing an `allowed` text) and page errors."""
        console = [line for line in self.console if not any(a in line for a in allowed)]
        return console + [f"pageerror: {e}" for e in self.errors]


@pytest.fixture(scope="module")
def chromium_executable() -> str:
    """Debian's Chromium, installed with apt-get first where it is missing (else a loud skip)."""
    try:
        return ensure_chromium()
    except ChromiumUnavailable as exc:
        pytest.skip(
            f"BROWSER TESTS SKIPPED, NOT PASSED: chromium could not be installed: {exc}",
        )


@pytest.fixture(scope="module")
def browser(chromium_executable: str) -> Iterator[Browser]:
    """One headless Chromium for this module, driven by Playwright's sync API."""
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=chromium_executable, headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield launched
        finally:
            launched.close()


def post_events(system: System, count: int) -> None:
    """Send `count` native page views for distinct leads, as a website integration would."""
    headers = {"Authorization": f"Bearer {system.key}"}
    with httpx.Client(base_url=system.base, headers=headers, timeout=10) as client:
        for n in range(count):
            event = {
                "type": "page_view",
                "lead": {"email": f"u{n}@acme.example"},
                "properties": {"url": "https://x.example/pricing"},
            }
            response = client.post("/v1/events", json=event)
            assert response.status_code == 202, response.text


@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    """`leadflow up` with fast ops sampling, fed some events; stopped with Ctrl-C at the end."""
    workdir = tmp_path_factory.mktemp("ops-up")
    port = free_port()
    process = subprocess.Popen(
        [LEADFLOW, "up", "--port", str(port)],
        cwd=workdir,
        env=clean_env(
            LEADFLOW_DATABASE_URL=f"sqlite:///{workdir / 'lf.db'}",
            LEADFLOW_OPS_SAMPLE_INTERVAL_S="0.5",
            LEADFLOW_KAFKA_SESSION_TIMEOUT_MS="3000",
        ),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    output = Output(process)
    try:
        wait_ready(port, process)
        running = System(base=f"http://127.0.0.1:{port}", key=output.dev_key())
        post_events(running, EVENTS)
        yield running
        process.send_signal(signal.SIGINT)
        process.wait(timeout=60)
        assert process.returncode in (0, 130), "".join(output.lines[-30:])
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=10)


@pytest.fixture
def tab(browser: Browser) -> Iterator[tuple[Page, PageLog]]:
    """A fresh browser context and page, recording what the page reports; closed after."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    log = PageLog()
    log.attach(page)
    try:
        yield page, log
    finally:
        context.close()


def wait_for_charts(page: Page, timeout_ms: float = 20_000) -> None:
    """Wait until the throughput and leads charts each draw at least one series."""
    page.wait_for_function(
        """() => ['#chart-throughput', '#chart-leads'].every((id) => {
            const svg = document.querySelector(id + ' svg[data-series]');
            return svg !== null && Number(svg.getAttribute('data-series')) >= 1;
        })""",
        timeout=timeout_ms,
        polling=250,
    )


def test_dashboard_draws_live_charts_from_the_key_in_the_fragment_without_console_errors(
    tab: tuple[Page, PageLog], system: System, tmp_path: Path
) -> None:
    page, log = tab
    page.goto(f"{system.base}/ops#key={system.key}")
    wait_for_charts(page)

    assert system.key not in page.url, "the key stayed in the address bar"
    assert not [url for url in log.requests if system.key in url], "the key went into a URL"
    assert page.evaluate("() => sessionStorage.getItem('leadflow.ops.key')") == system.key
    for name in CHARTS:
        assert page.locator(f"#chart-{name}").count() == 1, f"no #chart-{name}"
    lines = page.locator("#chart-throughput svg path[data-label]").count()
    assert lines >= 1, "the throughput chart has no line"
    assert page.locator("#chart-leads svg rect[data-label]").count() >= 1
    expect(page.locator("#status")).to_have_text(re.compile(r"updated \d\d:\d\d:\d\d"))
    assert "leadflow dlq replay" in page.locator("#section-dlq").inner_text()
    assert page.locator("#broker").inner_text().strip() != ""
    assert page.locator("#error").is_hidden()
    # Two more refreshes (every 2 s) must not raise anything either.
    page.wait_for_timeout(4_500)
    page.screenshot(path=str(tmp_path / "ops.png"), full_page=True)
    print(f"screenshot: {tmp_path / 'ops.png'}")
    assert log.problems() == []


def test_dashboard_without_a_key_asks_for_one_and_draws_charts_once_given(
    tab: tuple[Page, PageLog], system: System, tmp_path: Path
) -> None:
    page, log = tab
    page.goto(f"{system.base}/ops")
    form = page.locator("#key-form")
    form.wait_for(state="visible", timeout=10_000)
    page.screenshot(path=str(tmp_path / "ops-key-form.png"), full_page=True)

    page.fill("#key-input", system.key)
    page.click("#key-form button[type=submit]")
    wait_for_charts(page)

    assert form.is_hidden()
    assert not [url for url in log.requests if system.key in url], "the key went into a URL"
    assert log.problems(allowed=(EXPECTED_401,)) == []
