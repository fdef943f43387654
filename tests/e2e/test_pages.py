"""The pages for people as a salesperson uses them: `leadflow up`, some leads, headless Chromium.
The key goes in once (`#key=`, moved into sessionStorage) and never into a requested URL."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

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

# A name as the internet may send one: shown as text, never run.
HOSTILE = '<img src=x onerror="window.__xss=1"><script>window.__xss=2</script>'
ACCOUNT = "acme.example"
MEMBERS = {
    "ana@acme.example": ("VP Operations", "demo_requested"),
    "bo@acme.example": ("IT Manager", "pricing_viewed"),
    "cy@acme.example": ("Software Engineer", "content_download"),
    "di@acme.example": ("Head of Finance", "webinar_registered"),
}
FEEDBACK_LEADS = ("bo@acme.example", "cy@acme.example")


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Debian's Chromium (installed where missing, else a loud skip), headless."""
    with launch_browser() as launched:
        yield launched


def api(system: System) -> httpx.Client:
    """An API client with the dev key."""
    return httpx.Client(
        base_url=system.base, headers={"Authorization": f"Bearer {system.key}"}, timeout=10
    )


def wait_for(check: Callable[[], Any], *, what: str, timeout_s: float = 30.0) -> Any:
    """Poll `check` until it returns something truthy; fail naming `what`."""
    deadline = time.monotonic() + timeout_s
    last = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(0.2)
    raise AssertionError(f"{what} never held within {timeout_s} s; last: {last!r}")


def seed(system: System) -> None:
    """Four members of one account (the first named with markup), each scored and routed."""
    with api(system) as client:
        for n, (email, (title, kind)) in enumerate(MEMBERS.items()):
            lead: dict[str, Any] = {
                "email": email,
                "job_title": title,
                "company": {"name": "Acme", "domain": ACCOUNT, "employees": 250},
            }
            if n == 0:
                lead["first_name"] = HOSTILE
            body = {"type": kind, "lead": lead, "properties": {"budget": "50-100k"}}
            response = client.post("/v1/events", json=body)
            assert response.status_code == 202, response.text

        def routed() -> bool:
            items = client.get("/v1/leads", params={"account": ACCOUNT}).json()["items"]
            return len(items) == len(MEMBERS) and all(i["owner"] for i in items)

        wait_for(routed, what="every lead scored and routed")


@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    """`leadflow up` on a free port with the leads seeded; stopped with Ctrl-C at the end."""
    with leadflow_system(
        tmp_path_factory.mktemp("pages-up"), LEADFLOW_KAFKA_SESSION_TIMEOUT_MS="3000"
    ) as running:
        seed(running)
        yield running


@pytest.fixture
def tab(browser: Browser, system: System) -> Iterator[tuple[Page, PageLog]]:
    """A fresh browser tab that was given the key once, on `/#key=…`; closed after."""
    with open_tab(browser, viewport={"width": 1280, "height": 900}) as (page, log):
        page.goto(f"{system.base}/#key={system.key}")
        page.locator("#running").wait_for(timeout=15_000)
        try:
            yield page, log
        finally:
            assert not [url for url in log.requests if system.key in url], "the key went into a URL"


def lead_by_email(system: System, email: str) -> dict[str, Any]:
    """The lead with this email, from the API."""
    with api(system) as client:
        return client.get("/v1/leads/lookup", params={"email": email}).json()


def shown_rows(page: Page) -> list[tuple[str, int]]:
    """(lead id, score) of each row of the lead table."""
    page.locator("#leads-table, #no-leads").first.wait_for(timeout=10_000)
    rows = page.locator("#leads-table tbody tr")
    return [
        (
            rows.nth(i).get_attribute("data-lead-id") or "",
            int(rows.nth(i).locator("td.score").get_attribute("data-score") or -1),
        )
        for i in range(rows.count())
    ]


def test_every_page_shows_its_data_without_console_errors_or_the_key_in_a_url(
    tab: tuple[Page, PageLog], system: System, tmp_path: Path
) -> None:
    page, log = tab
    assert system.key not in page.url
    assert page.evaluate("() => sessionStorage.getItem('leadflow.pages.key')") == system.key
    expect(page.locator("#services")).to_have_text("ingest, scoring, routing")
    expect(page.locator("#broker-kind")).to_contain_text("tansu")
    ana = lead_by_email(system, "ana@acme.example")
    for path, ready in (
        ("/leads", "#leads-table"),
        (f"/leads/{ana['id']}", "#explain"),
        (f"/accounts/{ACCOUNT}", "#members-table"),
    ):
        page.goto(system.base + path)
        page.locator(ready).wait_for(timeout=15_000)
        page.screenshot(path=str(tmp_path / f"{path.strip('/').replace('/', '-')}.png"))
    assert page.locator("#error").is_hidden()
    assert log.problems() == []


def test_lead_list_matches_the_api_and_its_filters_and_next_page_work(
    tab: tuple[Page, PageLog], system: System
) -> None:
    page, log = tab
    params = {"limit": "2", "sort": "-score"}
    with api(system) as client:
        first = client.get("/v1/leads", params=params).json()
        second = client.get("/v1/leads", params={**params, "cursor": first["next_cursor"]}).json()
    page.goto(f"{system.base}/leads?limit=2&sort=-score")
    assert shown_rows(page) == [(i["id"], i["score"]) for i in first["items"]]

    page.click("#next-page")
    page.wait_for_url("**cursor=**")
    assert shown_rows(page) == [(i["id"], i["score"]) for i in second["items"]]

    target = lead_by_email(system, "cy@acme.example")
    page.fill("#filters input[name=q]", "cy@acme")
    page.select_option("#filters select[name=qualification]", target["qualification"])
    page.click("#filters button[type=submit]")
    page.wait_for_url("**q=cy%40acme**")
    assert "cursor=" not in page.url and "funnel_stage=" not in page.url
    assert shown_rows(page) == [(target["id"], target["score"])]
    assert log.problems() == []


def test_lead_page_shows_the_api_score_explanation_and_owner_and_escapes_the_name(
    tab: tuple[Page, PageLog], system: System
) -> None:
    page, log = tab
    lead = lead_by_email(system, "ana@acme.example")
    with api(system) as client:
        explained = client.get(f"/v1/leads/{lead['id']}/explain").json()
    page.goto(f"{system.base}/leads/{lead['id']}")
    page.locator("#explain").wait_for(timeout=15_000)
    expect(page.locator("#lead-name")).to_have_text(HOSTILE)
    assert page.evaluate("() => window.__xss") is None
    expect(page.locator("#score")).to_have_text(str(lead["score"]))
    expect(page.locator("#qualification")).to_have_text(lead["qualification"])
    expect(page.locator("#owner-team")).to_have_text(lead["owner"]["team"])
    sentences = page.locator("#explain li").all_inner_texts()
    assert [s.strip() for s in sentences] == explained["sentences"]
    met = page.locator("#bant tr[data-dimension=budget] td").nth(2).inner_text().strip()
    assert met == ("met" if lead["bant"]["budget"]["met"] else "not met")
    assert log.problems() == []


def test_feedback_buttons_change_the_lead_as_the_api_sees_it(
    tab: tuple[Page, PageLog], system: System
) -> None:
    page, log = tab
    bo, cy = (lead_by_email(system, email) for email in FEEDBACK_LEADS)

    page.goto(f"{system.base}/leads/{bo['id']}")
    page.locator("#feedback").wait_for(timeout=15_000)
    page.click("button[data-feedback=disqualified]")
    expect(page.locator("#qualification")).to_have_text("disqualified", timeout=30_000)
    expect(page.locator("#notice")).to_contain_text("recorded and scored")
    assert lead_by_email(system, "bo@acme.example")["qualification"] == "disqualified"

    page.goto(f"{system.base}/leads/{cy['id']}")
    page.locator("#feedback").wait_for(timeout=15_000)
    page.click("button[data-feedback=rejected]")
    page.fill("#reject-reason", "no budget this year")
    page.click("#reject-form button[type=submit]")
    expect(page.locator("#qualification")).to_have_text("recycled", timeout=30_000)
    expect(page.locator("#activity .feedback-type").first).to_have_text("rejected")
    assert "no budget this year" in page.locator("#activity").inner_text()
    with api(system) as client:
        timeline = client.get(f"/v1/leads/{cy['id']}/timeline").json()["items"]
    assert any(e["kind"] == "feedback" and e["type"] == "rejected" for e in timeline)
    assert lead_by_email(system, "cy@acme.example")["qualification"] == "recycled"
    assert log.problems() == []


def test_account_page_shows_every_member_of_the_buying_team(
    tab: tuple[Page, PageLog], system: System
) -> None:
    page, log = tab
    with api(system) as client:
        account = client.get(f"/v1/accounts/{ACCOUNT}").json()
    page.goto(f"{system.base}/accounts/{ACCOUNT}")
    page.locator("#members-table").wait_for(timeout=15_000)
    rows = page.locator("#members-table tbody tr")
    shown = {rows.nth(i).get_attribute("data-lead-id") for i in range(rows.count())}
    assert shown == {m["lead_id"] for m in account["members"]}
    assert len(shown) == len(MEMBERS)
    first = account["members"][0]
    row = page.locator(f"#members-table tr[data-lead-id='{first['lead_id']}']")
    expect(row.locator("td.involvement")).to_contain_text(first["involvement"].replace("_", " "))
    assert log.problems() == []


def test_a_tab_without_a_key_asks_for_one_and_shows_the_leads_once_given(
    browser: Browser, system: System
) -> None:
    with open_tab(browser) as (page, log):
        page.goto(f"{system.base}/leads")
        page.locator("#key-form").wait_for(state="visible", timeout=10_000)
        page.fill("#key-input", system.key)
        page.click("#key-form button[type=submit]")
        page.locator("#leads-table").wait_for(timeout=15_000)
        assert page.locator("#key-form").is_hidden()
        assert not [url for url in log.requests if system.key in url]
        assert log.problems(allowed=(EXPECTED_401,)) == []


def test_a_refused_key_is_asked_for_again_with_the_apis_reason(
    browser: Browser, system: System
) -> None:
    with open_tab(browser) as (page, log):
        page.goto(f"{system.base}/leads#key=lf_{'x' * 43}")
        page.locator("#key-form").wait_for(state="visible", timeout=10_000)
        # The problem's `detail`, as the API sent it.
        expect(page.locator("#error")).to_have_text(
            "The API refused this key (401): unknown or revoked API key"
        )
        assert log.problems(allowed=(EXPECTED_401,)) == []
