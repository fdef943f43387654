"""The pages for people through the in-process app: shells without a key, fragments keyed like
the API (401, 403), showing what the API answers, escaping what came from the internet."""

from __future__ import annotations

import html
import re

import httpx
import pytest

from leadflow.runtime import Runtime
from tests.conftest import make_key
from tests.integration.test_pipeline import event, wait_for_lead

pytestmark = pytest.mark.integration

HOSTILE = "<script>alert('x')</script>"
PAGES = ("/", "/leads", "/leads/some-id", "/accounts/acme.example")
FRAGMENTS = (
    "/pages/fragments/home",
    "/pages/fragments/leads",
    "/pages/fragments/leads/some-id",
    "/pages/fragments/accounts/acme.example",
)


def keyed(client: httpx.AsyncClient, key: str | None) -> dict[str, str]:
    """Headers that replace the client's admin key with `key` (none when None)."""
    return {"Authorization": f"Bearer {key}"} if key else {"Authorization": ""}


async def post(client: httpx.AsyncClient, body: dict) -> None:
    """Post one native touch event."""
    response = await client.post("/v1/events", json=body)
    assert response.status_code == 202, response.text


async def seed(client: httpx.AsyncClient) -> dict[str, dict]:
    """Three leads of one account, one of them named with a script tag; scored and routed."""
    await post(
        client,
        event(
            "demo_requested",
            "ana@acme.example",
            lead={
                "first_name": HOSTILE,
                "job_title": "VP Operations",
                "company": {"name": "Acme", "domain": "acme.example", "employees": 250},
            },
            properties={"budget": "50-100k", "timeframe": "this quarter"},
        ),
    )
    for email, title in (("bo@acme.example", "IT Manager"), ("cy@acme.example", "Engineer")):
        await post(
            client,
            event(
                "content_download",
                email,
                lead={"job_title": title, "company": {"name": "Acme", "domain": "acme.example"}},
            ),
        )
    return {
        email: await wait_for_lead(client, email, until=lambda lead: lead["owner"] is not None)
        for email in ("ana@acme.example", "bo@acme.example", "cy@acme.example")
    }


async def test_page_shells_load_without_a_key_and_hold_no_inline_script(
    client: httpx.AsyncClient,
) -> None:
    for path in PAGES:
        response = await client.get(path, headers=keyed(client, None))
        assert response.status_code == 200, (path, response.text)
        assert response.headers["content-type"].startswith("text/html")
        csp = response.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp
        scripts = re.findall(r"<script\b[^>]*>", response.text)
        assert scripts == ['<script src="/pages/static/pages.js" defer>'], path
        assert "data-fragment=" in response.text
    script = await client.get("/pages/static/pages.js", headers=keyed(client, None))
    assert script.status_code == 200 and "sessionStorage" in script.text
    assert (await client.get("/pages/static/nope.js")).status_code == 404


@pytest.mark.parametrize("path", FRAGMENTS)
async def test_fragment_refuses_a_request_without_a_key(
    client: httpx.AsyncClient, path: str
) -> None:
    response = await client.get(path, headers=keyed(client, None))
    assert response.status_code == 401
    assert response.json()["code"] == "unauthorized"


async def test_fragments_refuse_a_key_without_leads_read(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    writer_only = make_key(runtime, "events:write", "leads:write", "ops:read")
    for path in FRAGMENTS:
        response = await client.get(path, headers=keyed(client, writer_only))
        assert response.status_code == 403, (path, response.text)
    reader = make_key(runtime, "leads:read")
    home = await client.get("/pages/fragments/home", headers=keyed(client, reader))
    assert home.status_code == 200


async def test_lead_named_with_a_script_tag_is_shown_as_text_everywhere(
    client: httpx.AsyncClient,
) -> None:
    leads = await seed(client)
    ana = leads["ana@acme.example"]
    for path in (
        "/pages/fragments/leads",
        f"/pages/fragments/leads/{ana['id']}",
        "/pages/fragments/accounts/acme.example",
        "/pages/fragments/leads?q=" + HOSTILE,
    ):
        response = await client.get(path)
        assert response.status_code == 200, (path, response.text)
        assert "<script" not in response.text, path
    lead_page = await client.get(f"/pages/fragments/leads/{ana['id']}")
    assert html.unescape(lead_page.text).count(HOSTILE) >= 1
    assert "&lt;script&gt;alert(" in lead_page.text
    shell = await client.get("/leads", params={"q": HOSTILE})
    assert "<script>alert" not in shell.text and "&lt;script&gt;alert(" in shell.text


async def test_leads_fragment_shows_the_leads_and_scores_of_the_api_page_by_page(
    client: httpx.AsyncClient,
) -> None:
    await seed(client)
    params = {"account": "acme.example", "sort": "-score", "limit": "2"}
    api = (await client.get("/v1/leads", params=params)).json()
    page = await client.get("/pages/fragments/leads", params=params)
    assert page.status_code == 200
    shown = re.findall(r'<tr data-lead-id="([^"]+)">', page.text)
    scores = [int(s) for s in re.findall(r'data-score="(\d+)"', page.text)]
    assert shown == [lead["id"] for lead in api["items"]]
    assert scores == [lead["score"] for lead in api["items"]]
    assert api["next_cursor"]
    found = re.search(r'href="([^"]+)" id="next-page"', page.text)
    assert found and found.group(1), page.text
    next_url = html.unescape(found.group(1))
    assert next_url.startswith("/leads?") and "cursor=" + api["next_cursor"] in next_url
    second_api = (
        await client.get("/v1/leads", params={**params, "cursor": api["next_cursor"]})
    ).json()
    second = await client.get("/pages/fragments" + next_url)
    assert re.findall(r'<tr data-lead-id="([^"]+)">', second.text) == [
        lead["id"] for lead in second_api["items"]
    ]
    assert 'id="next-page"' not in second.text and 'id="first-page"' in second.text


async def test_lead_fragment_shows_the_api_score_explanation_owner_and_bant(
    client: httpx.AsyncClient,
) -> None:
    leads = await seed(client)
    lead_id = leads["ana@acme.example"]["id"]
    lead = (await client.get(f"/v1/leads/{lead_id}")).json()
    explained = (await client.get(f"/v1/leads/{lead_id}/explain")).json()
    page = await client.get(f"/pages/fragments/leads/{lead_id}")
    assert page.status_code == 200
    text = html.unescape(page.text)
    assert f'<span id="score">{lead["score"]}</span>' in text
    assert f'id="qualification">{lead["qualification"]}<' in text
    assert f'<strong id="owner-team">{lead["owner"]["team"]}</strong>' in text
    assert explained["sentences"]
    for sentence in explained["sentences"]:
        assert f"<li>{sentence}</li>" in text
    for name in ("budget", "authority", "need", "timing"):
        assert f'data-dimension="{name}"' in text
    for rule in {e["rule"] for dim in lead["bant"].values() for e in dim["evidence"]}:
        assert f"<code>{rule}</code>" in text
    for kind in ("contacted", "accepted", "rejected", "disqualified", "won", "lost"):
        assert f'data-feedback="{kind}"' in text
    assert 'data-stage="intent"' in text or 'data-stage="awareness"' in text


async def test_account_fragment_shows_every_member_of_the_api_account(
    client: httpx.AsyncClient,
) -> None:
    await seed(client)
    account = (await client.get("/v1/accounts/acme.example")).json()
    page = await client.get("/pages/fragments/accounts/ACME.example")
    assert page.status_code == 200
    shown = re.findall(r'<tr data-lead-id="([^"]+)">', page.text)
    assert sorted(shown) == sorted(m["lead_id"] for m in account["members"])
    assert len(shown) == 3


async def test_fragments_answer_a_clear_4xx_for_bad_filters_and_unknown_ids(
    client: httpx.AsyncClient,
) -> None:
    bad = await client.get("/pages/fragments/leads", params={"qualification": "hot"})
    assert bad.status_code == 422 and "qualification" in bad.text
    cursor = await client.get("/pages/fragments/leads", params={"cursor": "nonsense"})
    assert cursor.status_code == 400
    assert (await client.get("/pages/fragments/leads/no-such-lead")).status_code == 404
    assert (await client.get("/pages/fragments/accounts/nowhere.example")).status_code == 404


async def test_home_fragment_names_what_runs_without_addresses_or_secrets(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    page = await client.get("/pages/fragments/home")
    assert page.status_code == 200
    services = re.search(r'<td id="services">([^<]*)</td>', page.text)
    assert services and services.group(1) == "ingest, scoring, routing"
    dialect = runtime.resources.engine.dialect.name
    assert f'<td id="database-kind">{dialect}</td>' in page.text
    assert runtime.settings.kafka_bootstrap_servers not in page.text
    assert runtime.settings.database_url not in page.text
