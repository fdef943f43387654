"""The native API through a real broker: 202 only for what Kafka has, clear errors otherwise."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

import httpx
import pytest

from leadflow.runtime import Runtime
from services.ingest import repository
from shared.config import Settings
from tests.conftest import Broker, make_key
from tests.integration.ingest.conftest import read_topic

pytestmark = pytest.mark.integration


def event(**overrides: object) -> dict[str, object]:
    """A valid native event with a fresh id."""
    return {
        "event_id": f"evt-{uuid.uuid4().hex}",
        "type": "page_view",
        "lead": {"email": "ops@acme.example"},
        **overrides,
    }


def auth(runtime: Runtime, *scopes: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {make_key(runtime, *(scopes or ('events:write',)))}"}


async def test_repeated_event_id_is_published_once_and_counted_as_duplicate(ingest, settings):
    async with ingest() as (client, runtime):
        headers, body = auth(runtime), event()
        first = await client.post("/v1/events", json=body, headers=headers)
        again = await client.post("/v1/events", json=body, headers=headers)
    assert first.status_code == 202 and again.status_code == 202
    assert first.json() == {
        "accepted": 1,
        "ids": [body["event_id"]],
        "duplicates": 0,
        "rejected": [],
    }
    assert again.json()["accepted"] == 0 and again.json()["duplicates"] == 1
    published = [r["event_id"] for r in read_topic(settings, topic=settings.topic_touch_events)]
    assert published == [body["event_id"]]


async def test_event_id_is_published_again_after_the_dedupe_window(ingest, settings):
    async with ingest(dedupe_window_s=0.5) as (client, runtime):
        headers, body = auth(runtime), event()
        assert (await client.post("/v1/events", json=body, headers=headers)).json()["accepted"] == 1
        await asyncio.sleep(0.7)
        assert (await client.post("/v1/events", json=body, headers=headers)).json()["accepted"] == 1
    published = [r["event_id"] for r in read_topic(settings, topic=settings.topic_touch_events)]
    assert published == [body["event_id"], body["event_id"]]


async def test_batch_accepts_valid_events_and_reports_invalid_ones_by_index(ingest, settings):
    good_a, good_b = event(), event(type="pricing_viewed")
    bad = event(lead={"email": "not-an-email"})
    async with ingest() as (client, runtime):
        response = await client.post(
            "/v1/events/batch", json=[good_a, bad, good_b], headers=auth(runtime)
        )
    assert response.status_code == 202
    body = response.json()
    assert body["accepted"] == 2 and body["ids"] == [good_a["event_id"], good_b["event_id"]]
    assert body["rejected"] == [
        {"index": 1, "field": "lead.email", "error": "is not an email address"}
    ]
    published = {r["event_id"] for r in read_topic(settings, topic=settings.topic_touch_events)}
    assert published == {good_a["event_id"], good_b["event_id"]}


async def test_batch_object_form_and_repeats_inside_one_batch(ingest):
    one = event()
    async with ingest() as (client, runtime):
        response = await client.post(
            "/v1/events/batch", json={"events": [one, one, event()]}, headers=auth(runtime)
        )
    assert response.status_code == 202
    assert response.json()["accepted"] == 2 and response.json()["duplicates"] == 1


async def test_batch_with_no_valid_event_is_422_naming_each(ingest):
    async with ingest() as (client, runtime):
        response = await client.post(
            "/v1/events/batch",
            json=[event(type="Bad Type"), {"type": "page_view", "lead": {}}],
            headers=auth(runtime),
        )
    assert response.status_code == 422
    details = response.json()["errors"]
    assert [(d["index"], d["field"]) for d in details] == [(0, "type"), (1, "lead")]
    assert "events[0].type" in response.json()["detail"]


async def test_batch_over_the_event_limit_is_413(ingest):
    async with ingest(batch_max_events=3) as (client, runtime):
        response = await client.post(
            "/v1/events/batch", json=[event() for _ in range(4)], headers=auth(runtime)
        )
    assert response.status_code == 413
    assert "at most 3" in response.json()["detail"]


@pytest.mark.parametrize("path", ["/v1/events", "/v1/events/batch", "/v1/sources/segment"])
async def test_body_over_the_byte_limit_is_413(ingest, path):
    # The Segment source has its own limit (it takes Segment Actions' 4,000-event batches).
    async with ingest(max_body_bytes=2_000, segment_max_body_bytes=2_000) as (client, runtime):
        big = event(properties={"blob": "x" * 3_000})
        response = await client.post(path, json=big, headers=auth(runtime))
    assert response.status_code == 413
    assert response.json()["code"] == "payload_too_large"


async def test_streamed_body_over_the_limit_is_413_without_content_length(ingest):
    async def chunks():
        for _ in range(10):
            yield b" " * 500

    async with ingest(max_body_bytes=2_000) as (client, runtime):
        response = await client.post(
            "/v1/events/batch",
            content=chunks(),
            headers={**auth(runtime), "Content-Type": "application/json"},
        )
    assert response.status_code == 413


@pytest.mark.parametrize("path", ["/v1/events", "/v1/events/batch"])
async def test_body_that_is_not_json_is_400(ingest, path):
    async with ingest() as (client, runtime):
        response = await client.post(
            path,
            content=b'{"type": "page_view",',
            headers={**auth(runtime), "Content-Type": "application/json"},
        )
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_json"


async def test_schema_error_on_one_event_is_422_naming_the_field(ingest):
    async with ingest() as (client, runtime):
        response = await client.post(
            "/v1/events", json=event(occurred_at="yesterday"), headers=auth(runtime)
        )
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "occurred_at"


async def test_openapi_documents_every_ingest_path_with_examples(ingest):
    async with ingest() as (client, _runtime):
        spec = (await client.get("/openapi.json")).json()
        docs = await client.get("/docs")
    assert docs.status_code == 200
    for path in (
        "/v1/events/batch",
        "/v1/sources/segment",
        "/v1/sources/shopify",
        "/v1/sources/hubspot",
    ):
        body = spec["paths"][path]["post"]["requestBody"]["content"]["application/json"]
        assert body["examples"], path
    assert "examples" in str(spec["components"]["schemas"]["TouchEventIn"])


async def test_event_is_refused_with_503_when_the_broker_is_gone(
    settings: Settings, private_broker: Broker
):
    # A broker of this test's own: stopping the shared one would break the other tests.
    private = private_broker
    own = settings.model_copy(
        update={
            "kafka_bootstrap_servers": private.bootstrap_servers,
            "kafka_publish_timeout_s": 2.0,
        }
    )
    runtime = Runtime(settings=own, services=("ingest",))
    app = runtime.start()
    try:
        headers = auth(runtime)
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://leadflow.test"
        ) as client:
            body = event()
            assert (await client.post("/v1/events", json=body, headers=headers)).status_code == 202
            private.stop(timeout_s=1.0)
            batch = [event(), event()]
            response = await client.post("/v1/events/batch", json=batch, headers=headers)
            assert response.status_code == 503
            assert response.headers["retry-after"]
            assert response.json()["code"] == "broker_unavailable"
            ready = await client.get("/readyz")
            assert ready.status_code == 503
            failing = [c["name"] for c in ready.json()["checks"] if not c["ok"]]
            assert failing == ["broker"]
        # Nothing of the refused batch was remembered as accepted: a retry is not a duplicate.
        with runtime.resources.sessions() as session:
            seen = repository.seen_since(
                session,
                event_ids=[e["event_id"] for e in batch],
                since=datetime(2000, 1, 1, tzinfo=UTC),
            )
        assert seen == set()
    finally:
        private.stop()
        runtime.stop(timeout_s=3)


async def test_repeat_is_a_duplicate_after_ingest_restarts(ingest, settings):
    body = event()
    async with ingest() as (client, runtime):
        key = make_key(runtime, "events:write")
        headers = {"Authorization": f"Bearer {key}"}
        assert (await client.post("/v1/events", json=body, headers=headers)).status_code == 202
    runtime.stop()  # a restart: the in-memory ids are gone, the stored ones stay
    async with ingest() as (client, _runtime):
        again = await client.post("/v1/events", json=body, headers=headers)
    assert again.json()["duplicates"] == 1 and again.json()["accepted"] == 0
    published = [r["event_id"] for r in read_topic(settings, topic=settings.topic_touch_events)]
    assert published == [body["event_id"]]


async def test_events_without_an_id_get_distinct_ids_and_are_never_duplicates(ingest):
    bare = {"type": "page_view", "lead": {"email": "ops@acme.example"}}
    async with ingest() as (client, runtime):
        headers = auth(runtime)
        first = (await client.post("/v1/events", json=bare, headers=headers)).json()
        second = (await client.post("/v1/events/batch", json=[bare, bare], headers=headers)).json()
    assert first["accepted"] == 1 and second["accepted"] == 2
    assert len({*first["ids"], *second["ids"]}) == 3


async def test_text_no_store_can_hold_is_a_422_naming_the_field_not_a_500(ingest, settings):
    lead = b'"lead": {"email": "s@x.example"}'
    surrogate = b'{"type": "page_view", ' + lead + b', "properties": {"t": "\\ud800"}}'
    nul_id = b'{"type": "page_view", "event_id": "e\\u00001", "lead": {"email": "n@x.example"}}'
    async with ingest() as (client, runtime):
        headers = {**auth(runtime), "content-type": "application/json"}
        answers = [
            await client.post("/v1/events", content=body, headers=headers)
            for body in (surrogate, nul_id)
        ]
        fine = await client.post("/v1/events", json=event(), headers=auth(runtime))
    assert [a.status_code for a in answers] == [422, 422]
    fields = [a.json()["errors"][0]["field"] for a in answers]
    assert fields == ["properties.t", "event_id"]
    assert fine.status_code == 202, "the idempotency store still answers for everyone else"
