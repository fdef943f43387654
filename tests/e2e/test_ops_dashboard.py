"""The /ops dashboard as an operator sees it: `leadflow up`, some events, headless Chromium."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from tests.e2e.browser import (
    EXPECTED_401,
    PageLog,
    System,
    launch_browser,
    leadflow_system,
    open_tab,
)

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

EVENTS = 20
CHARTS = ("throughput", "lag", "dlq", "actions", "sla", "leads")


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """One headless Chromium for this module, driven by Playwright's sync API."""
    with launch_browser() as launched:
        yield launched


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
    with leadflow_system(
        tmp_path_factory.mktemp("ops-up"),
        LEADFLOW_OPS_SAMPLE_INTERVAL_S="0.5",
        LEADFLOW_KAFKA_SESSION_TIMEOUT_MS="3000",
    ) as running:
        post_events(running, EVENTS)
        yield running


@pytest.fixture
def tab(browser: Browser) -> Iterator[tuple[Page, PageLog]]:
    """A fresh browser context and page, recording what the page reports; closed after."""
    with open_tab(browser, viewport={"width": 1280, "height": 900}) as opened:
        yield opened


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
