"""Erasing a person: `DELETE /v1/leads/{id}` removes them from every table leadflow keeps,
publishes a tombstone routing follows, keeps only identity hashes and a record of the
erasure; touches received before the erasure never bring them back; `GET
/v1/leads/{id}/export` returns everything held about them first."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta

import httpx
import pytest
from kafka import KafkaConsumer, KafkaProducer
from sqlalchemy import text

from services.scoring.domain.privacy import identity_hash
from services.scoring.handlers import score_touches
from services.scoring.service import load_models
from shared.db import metadata, transaction
from shared.events import ERASURE_REQUESTED, TouchEnvelope, TouchEventIn, utcnow
from tests.conftest import make_key
from tests.integration.scoring.test_scenarios import lead_when, post

pytestmark = pytest.mark.integration

EVA = {
    "email": "eva@erase.example",
    "anonymous_id": "anon-eva-1",
    "first_name": "Eva",
    "job_title": "Head of Operations",
    "company": {"domain": "erase.example", "name": "Erase Co", "employees": 300},
}
CART = {"cart": {"id": "cart-eva", "value": 90.0, "currency": "EUR", "items": []}}


def rows_naming(runtime, lead_id: str, email: str) -> dict[str, int]:
    """For every table: the rows whose text holds the lead id or the email (zero rows left
    out), read straight from the database."""
    found: dict[str, int] = {}
    with runtime.resources.sessions() as session:
        for table in metadata.sorted_tables:
            columns = [c.name for c in table.columns if _textual(c)]
            if not columns:
                continue
            condition = " OR ".join(
                f'CAST("{c}" AS TEXT) LIKE :needle_id OR CAST("{c}" AS TEXT) LIKE :needle_email'
                for c in columns
            )
            count = session.execute(
                text(f'SELECT count(*) FROM "{table.name}" WHERE {condition}'),
                {"needle_id": f"%{lead_id}%", "needle_email": f"%{email}%"},
            ).scalar_one()
            if count:
                found[table.name] = count
    return found


def _textual(column) -> bool:
    try:
        return column.type.python_type in (str, dict, list)
    except NotImplementedError:
        return False


def tombstones(settings, lead_id: str) -> list:
    """The records on the lead-changes topic keyed by the lead with no value."""
    consumer = KafkaConsumer(
        settings.topic_lead_changes,
        bootstrap_servers=settings.bootstrap_servers,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        consumer_timeout_ms=3_000,
    )
    try:
        return [m for m in consumer if m.key == lead_id.encode() and m.value is None]
    finally:
        consumer.close()


async def wait_for(check, timeout_s: float = 20.0):
    deadline = time.monotonic() + timeout_s
    last = None
    while time.monotonic() < deadline:
        last = await check()
        if last:
            return last
        await asyncio.sleep(0.1)
    raise AssertionError(f"never happened; last: {last}")


async def test_an_erased_lead_is_gone_from_every_table_and_a_tombstone_is_published(
    client, runtime
):
    await post(
        client,
        {"type": "pricing_viewed", "lead": EVA},
        {"type": "cart_add", "lead": EVA, "properties": CART},
        {"type": "demo_requested", "lead": EVA},
    )
    lead = await lead_when(client, EVA["email"], lambda x: x["owner"] is not None)
    lead_id = lead["id"]
    await wait_for(lambda: _actions(client, lead_id))  # routing planned its follow-ups

    exported = await client.get(f"/v1/leads/{lead_id}/export")
    assert exported.status_code == 200, exported.text
    held = exported.json()
    assert [r["email"] for r in held["scoring"]["leads"]] == [EVA["email"]]
    assert {r["type"] for r in held["scoring"]["touches"]} == {
        "pricing_viewed",
        "cart_add",
        "demo_requested",
    }
    assert {(r["kind"], r["value"]) for r in held["scoring"]["lead_identities"]} >= {
        ("email", EVA["email"]),
        ("anonymous_id", EVA["anonymous_id"]),
    }
    assert held["routing"]["assignments"] and held["routing"]["actions"]

    touch_ids = [r["event_id"] for r in held["scoring"]["touches"]]
    erased = await client.delete(f"/v1/leads/{lead_id}", params={"reason": "GDPR art. 17"})
    assert erased.status_code == 200, erased.text
    record = erased.json()
    assert record["lead_id"] == lead_id and record["reason"] == "GDPR art. 17"
    assert record["removed"]["leads"] == 1 and record["removed"]["touches"] == 3
    assert record["removed"]["assignments"] >= 1 and record["removed"]["actions"] >= 1

    assert (await client.get(f"/v1/leads/{lead_id}")).status_code == 404
    assert (await client.get(f"/v1/leads/{lead_id}/export")).status_code == 404
    assert (await client.delete(f"/v1/leads/{lead_id}")).status_code == 404
    assert (await client.get("/v1/leads", params={"email": EVA["email"]})).json()["items"] == []
    # Nothing names the person any more, but the erasure's own record (by lead id only).
    assert rows_naming(runtime, lead_id, EVA["email"]) == {"erasures": 1}
    # The deduplication rows keep only hashes of the erased touches' ids.
    with runtime.resources.sessions() as session:
        dedupe = set(session.scalars(text("SELECT event_id FROM processed_events")))
    assert not dedupe & set(touch_ids)
    assert {"sha256:" + identity_hash("event", i) for i in touch_ids} <= dedupe
    account = await client.get("/v1/accounts/erase.example")
    assert account.status_code == 404  # its only member is gone, so is the account

    [tombstone] = await wait_for(lambda: _async(tombstones(runtime.settings, lead_id)))
    assert dict(tombstone.headers)["type"] == b"lead.erased"


async def test_touches_received_before_the_erasure_do_not_bring_the_person_back(client, runtime):
    await post(client, {"type": "pricing_viewed", "lead": EVA})
    lead = await lead_when(client, EVA["email"], lambda x: x["score"] > 0)
    before = utcnow() - timedelta(seconds=5)
    assert (await client.delete(f"/v1/leads/{lead['id']}")).status_code == 200

    settings = runtime.settings
    models = load_models(settings.scoring_model)

    def envelope(event_id: str, received_at) -> TouchEnvelope:
        event = TouchEventIn.model_validate(
            {"event_id": event_id, "type": "webinar_attended", "lead": EVA}
        )
        return TouchEnvelope.from_native(event, received_at=received_at)

    with transaction(runtime.resources.sessions) as session:
        # Received before the erasure (in flight at the time, or replayed from the DLQ).
        stale = score_touches(
            session,
            envelopes=[envelope("in-flight-1", before)],
            settings=settings,
            models=models,
            now=utcnow(),
        )
    assert stale == []
    assert (await client.get("/v1/leads", params={"email": EVA["email"]})).json()["items"] == []

    # The person coming back later is a new lead, with nothing of the erased one.
    await post(client, {"type": "content_download", "lead": {"email": EVA["email"]}})
    back = await lead_when(client, EVA["email"], lambda x: True)
    assert back["id"] != lead["id"]
    held = (await client.get(f"/v1/leads/{back['id']}/export")).json()
    assert [t["type"] for t in held["scoring"]["touches"]] == ["content_download"]


async def test_routing_erases_what_it_holds_when_a_tombstone_arrives(client, runtime):
    await post(client, {"type": "demo_requested", "lead": EVA})
    lead = await lead_when(client, EVA["email"], lambda x: x["owner"] is not None)
    producer = KafkaProducer(bootstrap_servers=runtime.settings.bootstrap_servers)
    try:
        producer.send(
            runtime.settings.topic_lead_changes,
            key=lead["id"].encode(),
            value=None,
            headers=[("type", b"lead.erased")],
        ).get(timeout=10)
    finally:
        producer.close()
    # Routing alone follows the tombstone: its owner and actions go, scoring's lead stays.
    await wait_for(lambda: _owner_gone(client, lead["id"]))
    assert await _actions(client, lead["id"]) == []


async def test_erasing_or_exporting_needs_the_privacy_scope(client, runtime):
    await post(client, {"type": "pricing_viewed", "lead": EVA})
    lead = await lead_when(client, EVA["email"], lambda x: True)
    key = make_key(runtime, "leads:read", "leads:write")
    headers = {"Authorization": f"Bearer {key}"}
    for method, path in (
        ("DELETE", f"/v1/leads/{lead['id']}"),
        ("GET", f"/v1/leads/{lead['id']}/export"),
    ):
        answer = await client.request(method, path, headers=headers)
        assert answer.status_code == 403, answer.text
        assert "privacy" in answer.text
    assert (await client.get(f"/v1/leads/{lead['id']}")).status_code == 200


async def _actions(client: httpx.AsyncClient, lead_id: str) -> list:
    return (await client.get("/v1/actions", params={"lead_id": lead_id})).json()["items"]


async def _owner_gone(client: httpx.AsyncClient, lead_id: str) -> bool:
    lead = (await client.get(f"/v1/leads/{lead_id}")).json()
    return lead["owner"] is None


async def _async(value):
    return value


async def test_an_erasure_request_in_a_batch_erases_its_person_where_it_stands(client, runtime):
    await post(client, {"type": "pricing_viewed", "lead": EVA})
    lead = await lead_when(client, EVA["email"], lambda x: x["score"] > 0)
    settings = runtime.settings
    now = utcnow()

    def envelope(event_id: str, kind: str, lead: dict, **properties) -> TouchEnvelope:
        # As a vendor's privacy webhook makes it (the native API refuses the erasure type).
        event = TouchEventIn.model_validate(
            {"event_id": event_id, "type": "page_view", "lead": lead, "properties": properties}
        )
        return TouchEnvelope.from_native(event, received_at=now).model_copy(
            update={"source": "shopify", "type": kind}
        )

    other = {"email": "otto@keep.example"}
    with transaction(runtime.resources.sessions) as session:
        score_touches(
            session,
            envelopes=[
                envelope("b-1", "webinar_attended", EVA),
                envelope("b-2", "webinar_attended", other),
                envelope("b-3", ERASURE_REQUESTED, {"email": EVA["email"]}, request="redact"),
                envelope("b-4", "demo_requested", EVA),  # received before the erasure: dropped
            ],
            settings=settings,
            models=load_models(settings.scoring_model),
            now=now,
        )
        records = session.execute(
            text("SELECT lead_id, requested_by FROM erasures WHERE lead_id = :id"),
            {"id": lead["id"]},
        ).all()
    assert [(r.lead_id, r.requested_by) for r in records] == [(lead["id"], "shopify redact")]
    assert (await client.get("/v1/leads", params={"email": EVA["email"]})).json()["items"] == []
    kept = await lead_when(client, other["email"], lambda x: True)
    assert kept["score"] > 0
