"""The slice through the real broker and database: event in, scored lead with an owner out."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from leadflow.runtime import Runtime
from services.scoring.repository import stage_history, touches
from shared.db import make_engine

pytestmark = pytest.mark.integration


async def wait_for_lead(
    client: httpx.AsyncClient, email: str, *, until: Any = None, timeout_s: float = 20.0
) -> dict[str, Any]:
    """Poll the lead API until the lead exists (and `until(lead)` holds)."""
    deadline = time.monotonic() + timeout_s
    last: dict[str, Any] | None = None
    while time.monotonic() < deadline:
        response = await client.get("/v1/leads", params={"email": email})
        assert response.status_code == 200
        items = response.json()["items"]
        if items:
            last = items[0]
            if until is None or until(last):
                return last
        await asyncio.sleep(0.1)
    raise AssertionError(f"lead {email} never reached the expected state; last seen: {last}")


def event(type_: str, email: str | None = None, **extra: Any) -> dict[str, Any]:
    """A native touch event body."""
    lead = extra.pop("lead", {})
    if email:
        lead["email"] = email
    return {"type": type_, "lead": lead, **extra}


def count(runtime: Runtime, query: Any) -> int:
    """Run a count query against the runtime's database."""
    engine = make_engine(runtime.settings.database_url)
    try:
        with engine.connect() as conn:
            return conn.execute(query).scalar_one()
    finally:
        engine.dispose()


async def test_posted_event_becomes_a_scored_lead_with_an_owner(client: httpx.AsyncClient):
    body = event(
        "demo_requested",
        "Ana.Ruiz@Acme.example ",
        lead={
            "first_name": "Ana",
            "job_title": "VP Operations",
            "company": {"name": "Acme", "domain": "acme.example", "employees": 250},
        },
        properties={"budget": "50-100k", "timeframe": "this quarter"},
    )
    response = await client.post("/v1/events", json=body)
    assert response.status_code == 202
    accepted = response.json()
    assert accepted["accepted"] == 1 and len(accepted["ids"]) == 1

    lead = await wait_for_lead(client, "ana.ruiz@acme.example", until=lambda x: x["owner"])
    assert lead["email"] == "ana.ruiz@acme.example"
    assert lead["first_name"] == "Ana"
    assert lead["account"]["domain"] == "acme.example"
    assert lead["funnel_stage"] == "intent"
    assert lead["journey_stage"] == "requirements_building"
    assert lead["bant"]["budget"]["met"] is True
    declared = [e for e in lead["bant"]["budget"]["evidence"] if e["rule"] == "declared_budget"]
    assert [e["event_id"] for e in declared] == [accepted["ids"][0]]
    assert lead["bant"]["authority"]["met"] is True
    assert lead["qualification"] == "sql"
    assert lead["owner"]["team"] == "sales"
    assert lead["owner"]["member"] == "ana@seller.example"  # round-robin starts at the first

    single = await client.get(f"/v1/leads/{lead['id']}")
    assert single.status_code == 200
    assert single.json()["owner"] == lead["owner"]


async def test_lead_moves_to_the_team_of_its_new_qualification(client: httpx.AsyncClient):
    email = "bo@shop.example"
    assert (await client.post("/v1/events", json=event("page_view", email))).status_code == 202
    first = await wait_for_lead(client, email, until=lambda x: x["owner"])
    assert first["owner"]["team"] == "marketing"

    order = event("order_completed", email, properties={"order_id": "1001"})
    assert (await client.post("/v1/events", json=order)).status_code == 202
    later = await wait_for_lead(
        client, email, until=lambda x: x["owner"] and x["owner"]["team"] == "customer-success"
    )
    assert later["qualification"] == "customer"
    assert later["funnel_stage"] == "purchase"


async def test_same_event_id_twice_is_stored_once(client: httpx.AsyncClient, runtime: Runtime):
    email = "dup@acme.example"
    body = event("pricing_viewed", email, event_id="evt-dup-1")
    for _ in range(2):
        assert (await client.post("/v1/events", json=body)).status_code == 202
    follow_up = event("content_download", email, event_id="evt-dup-2")
    assert (await client.post("/v1/events", json=follow_up)).status_code == 202
    # The follow-up is behind the duplicate in the same partition, so once it is scored the
    # duplicate has been seen too.
    lead = await wait_for_lead(
        client,
        email,
        until=lambda x: any(e["event_id"] == "evt-dup-2" for e in x["bant"]["need"]["evidence"]),
    )
    stored = count(
        runtime, select(func.count()).select_from(touches).where(touches.c.lead_id == lead["id"])
    )
    assert stored == 2
    timing_events = [e["event_id"] for e in lead["bant"]["timing"]["evidence"]]
    assert timing_events == ["evt-dup-1"]


async def test_late_event_gives_the_same_state_as_in_order(client: httpx.AsyncClient):
    now = datetime.now(UTC)
    email = "late@acme.example"
    newer = event("content_download", email, occurred_at=now.isoformat())
    older = event("pricing_viewed", email, occurred_at=(now - timedelta(hours=2)).isoformat())
    assert (await client.post("/v1/events", json=newer)).status_code == 202
    assert (await client.post("/v1/events", json=older)).status_code == 202
    lead = await wait_for_lead(client, email, until=lambda x: x["funnel_stage"] == "intent")
    # In time order the content download came last, so the journey stage is the one it
    # signals, not the one of the late-arriving pricing view.
    assert lead["journey_stage"] == "problem_identification"


async def test_anonymous_visitor_is_stitched_to_their_email(
    client: httpx.AsyncClient, runtime: Runtime
):
    anon = "anon-7f3a"
    browse = {"type": "pricing_viewed", "lead": {"anonymous_id": anon}}
    assert (await client.post("/v1/events", json=browse)).status_code == 202
    form = {"type": "form_submit", "lead": {"anonymous_id": anon, "email": "cy@acme.example"}}
    assert (await client.post("/v1/events", json=form)).status_code == 202
    lead = await wait_for_lead(
        client, "cy@acme.example", until=lambda x: x["funnel_stage"] == "intent"
    )
    assert lead["anonymous_ids"] == [anon]
    stored = count(
        runtime, select(func.count()).select_from(touches).where(touches.c.lead_id == lead["id"])
    )
    assert stored == 2
    transitions = count(
        runtime,
        select(func.count())
        .select_from(stage_history)
        .where(stage_history.c.lead_id == lead["id"], stage_history.c.track == "funnel"),
    )
    assert transitions >= 1


async def test_event_without_identity_is_refused_naming_the_field(client: httpx.AsyncClient):
    response = await client.post("/v1/events", json={"type": "page_view", "lead": {}})
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    error = response.json()
    assert error["code"] == "validation_error"
    assert "lead" in error["detail"] and "email or anonymous_id" in error["detail"]
    assert error["errors"][0]["field"] == "lead"


async def test_bad_email_is_refused_naming_lead_email(client: httpx.AsyncClient):
    response = await client.post("/v1/events", json=event("page_view", "not-an-email"))
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "lead.email"


async def test_body_that_is_not_json_is_a_400(client: httpx.AsyncClient):
    response = await client.post(
        "/v1/events", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_json"


async def test_unknown_lead_is_a_404_problem(client: httpx.AsyncClient):
    response = await client.get("/v1/leads/no-such-lead")
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


async def test_lead_list_pages_without_skipping_or_repeating(client: httpx.AsyncClient):
    emails = [f"page{i}@acme.example" for i in range(5)]
    for email in emails:
        assert (await client.post("/v1/events", json=event("page_view", email))).status_code == 202
    await wait_for_lead(client, emails[-1])
    deadline = time.monotonic() + 20
    seen: list[str] = []
    while time.monotonic() < deadline:
        seen, cursor = [], None
        while True:
            params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
            page = (await client.get("/v1/leads", params=params)).json()
            seen += [item["email"] for item in page["items"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        if len(seen) == len(emails):
            break
        await asyncio.sleep(0.2)
    assert sorted(seen) == sorted(emails)


async def test_bad_cursor_is_a_400_naming_cursor(client: httpx.AsyncClient):
    response = await client.get("/v1/leads", params={"cursor": "%%%"})
    assert response.status_code == 400
    assert "cursor" in response.json()["detail"]


async def test_readiness_reports_every_part_ready(client: httpx.AsyncClient):
    response = await client.get("/readyz")
    assert response.status_code == 200
    names = {c["name"] for c in response.json()["checks"] if c["ok"]}
    assert {"database", "migrations", "broker", "consumer:scoring", "consumer:routing"} <= names


async def test_platform_user_id_joins_anonymous_history_to_the_person(
    client: httpx.AsyncClient, runtime: Runtime
):
    # Posted together they land on different partitions and may be processed in any order;
    # whatever the order, the identities end up on one lead with all four touches.
    bodies = [
        {"type": "pricing_viewed", "lead": {"anonymous_id": "a-dee"}},
        {"type": "page_view", "lead": {"user_id": "segment:u-dee"}},
        {"type": "alias", "lead": {"anonymous_id": "a-dee", "user_id": "segment:u-dee"}},
        {"type": "identify", "lead": {"user_id": "segment:u-dee", "email": "dee@acme.example"}},
    ]
    response = await client.post("/v1/events/batch", json=bodies)
    assert response.status_code == 202 and response.json()["accepted"] == 4

    def stitched(lead: dict[str, Any]) -> bool:
        touches_of_lead = count(
            runtime,
            select(func.count()).select_from(touches).where(touches.c.lead_id == lead["id"]),
        )
        return (
            lead["anonymous_ids"] == ["a-dee"]
            and lead["user_ids"] == ["segment:u-dee"]
            and touches_of_lead == 4
        )

    await wait_for_lead(client, "dee@acme.example", until=stitched)


async def test_one_platform_user_id_never_merges_two_emails(client: httpx.AsyncClient):
    for email in ("eve@acme.example", "eva@acme.example"):
        body = {"type": "identify", "lead": {"user_id": "shopify:customer:9", "email": email}}
        assert (await client.post("/v1/events", json=body)).status_code == 202
        await wait_for_lead(client, email)
    eve = await wait_for_lead(client, "eve@acme.example")
    eva = await wait_for_lead(client, "eva@acme.example")
    assert eve["id"] != eva["id"]
    assert eve["user_ids"] == ["shopify:customer:9"] and eva["user_ids"] == []
