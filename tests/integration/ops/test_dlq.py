"""Dead-letter queues through the real broker and database: listing parked messages with
their error and origin, paging, and replaying each one at most once."""

from __future__ import annotations

import base64
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest

from leadflow.runtime import Runtime
from operations import service
from shared.config import Settings
from shared.consumer import ConsumerLoop
from shared.db import make_engine, make_session_factory
from shared.events import utcnow
from shared.faults import PublishError
from shared.kafka import AsyncProducer, ensure_topics
from shared.records import Record
from tests.conftest import make_key
from tests.integration.ops.conftest import (
    eventually,
    read_topic,
    scrape,
    streams,
    topic_entry,
    total,
)

pytestmark = pytest.mark.integration


async def dlq_page(client: httpx.AsyncClient, **params: Any) -> dict[str, Any]:
    """GET /v1/ops/dlq, asserting a 200."""
    response = await client.get("/v1/ops/dlq", params=params)
    assert response.status_code == 200, response.text
    return response.json()


async def parked(client: httpx.AsyncClient, topic: str, count: int) -> list[dict[str, Any]]:
    """Wait until `topic`'s DLQ lists `count` messages, and return them."""

    async def probe() -> list[dict[str, Any]] | None:
        items = (await dlq_page(client, topic=topic))["items"]
        return items if len(items) >= count else None

    items = await eventually(probe, what=f"{count} parked message(s) in {topic}'s DLQ")
    assert len(items) == count, items
    return items


def publish_raw(runtime: Runtime, topic: str, key: bytes, value: bytes) -> None:
    """Put bytes straight on a topic with the runtime's producer, bypassing ingest."""
    assert runtime.resources is not None and runtime.resources.producer is not None
    runtime.resources.producer.publish_sync(topic=topic, key=key, value=value)


async def test_a_dead_letter_s_error_names_the_field_but_never_echoes_an_email(
    client: httpx.AsyncClient, runtime: Runtime, settings: Settings
):
    touch = settings.topic_touch_events
    envelope = {
        "event_id": "e-1",
        "type": "pricing_viewed",
        # The bad value is an email: pydantic's own message would quote it.
        "occurred_at": "jane.doe@acme.example",
        "received_at": "2026-01-01T00:00:00Z",
        "source": "api",
        "lead_key": "email:x",
        "lead": {"email": "jane.doe@acme.example"},
    }
    publish_raw(runtime, touch, b"k1", orjson.dumps(envelope))

    (item,) = await parked(client, touch, 1)
    assert item["error"].startswith("PoisonMessage: not a touch envelope: 1 validation error(s)")
    assert "occurred_at:" in item["error"]
    assert "jane.doe" not in item["error"] and "acme.example" not in item["error"]


async def test_poison_message_is_listed_with_its_error_and_origin(
    client: httpx.AsyncClient, runtime: Runtime, settings: Settings
):
    touch, dlq = settings.topic_touch_events, settings.dlq_topic(settings.topic_touch_events)
    publish_raw(runtime, touch, b"k1", b"not json")

    (item,) = await parked(client, touch, 1)
    # Where the record really sat on the touch topic, read back independently.
    (original,) = read_topic(settings, touch)
    assert item["id"] == f"{dlq}:{item['partition']}:{item['offset']}"
    assert item["dlq_topic"] == dlq
    assert item["offset"] == 0
    assert item["error"].startswith("PoisonMessage: not a touch envelope")
    assert item["origin"] == {
        "topic": touch,
        "partition": original.partition,
        "offset": original.offset,
        "group": settings.group_scoring,
    }
    assert item["key"] == "k1"
    assert item["value"] == {"base64": base64.b64encode(b"not json").decode()}
    assert item["event_id"] is None
    assert item["replayed_at"] is None
    assert isinstance(item["parked_at_ms"], int) and item["parked_at_ms"] > 0
    # The DLQ of a main topic and the DLQ topic itself name the same queue.
    assert (await dlq_page(client, topic=dlq))["items"] == [item]

    async def depth_in_streams() -> dict[str, Any] | None:
        report = await streams(client)
        entry = topic_entry(report, dlq)
        return report if entry["dlq_depth"] == 1 else None

    report = await eventually(depth_in_streams, what="the DLQ's depth of 1 in /v1/ops/streams")
    entry = topic_entry(report, dlq)
    assert entry["kind"] == "dlq"
    assert entry["source_topic"] == touch
    assert entry["replayed"] == 0
    assert topic_entry(report, touch)["dlq_depth"] == 1
    assert topic_entry(report, settings.topic_lead_changes)["dlq_depth"] == 0

    async def depth_in_metrics() -> bool:
        return total(await scrape(client), "leadflow_dlq_depth", topic=dlq) == 1

    await eventually(depth_in_metrics, what="leadflow_dlq_depth of 1")
    samples = await scrape(client)
    assert total(samples, "leadflow_dlq_messages_total", topic=touch) == 1
    assert (
        total(samples, "leadflow_dlq_depth", topic=settings.dlq_topic(settings.topic_actions)) == 0
    )


@pytest.fixture
def producer(settings: Settings) -> Iterator[AsyncProducer]:
    """A producer on the shared broker, with the test's topics created."""
    ensure_topics(settings=settings)
    running = AsyncProducer(settings=settings)
    yield running
    running.close()


def event_value(event_id: str) -> bytes:
    """A valid JSON value with an event id (the handler below does not need more)."""
    return orjson.dumps({"event_id": event_id, "type": "page_view"})


def _true(predicate: Any) -> Any:
    """An async probe from a plain predicate."""

    async def probe() -> bool:
        return bool(predicate())

    return probe


async def test_replayed_message_is_processed_once_after_the_fix(
    settings: Settings, producer: AsyncProducer
):
    settings = settings.model_copy(update={"consumer_max_attempts": 1})
    topic = settings.topic_touch_events
    engine = make_engine(settings.database_url)
    sessions = make_session_factory(engine)
    broken = threading.Event()
    broken.set()
    attempts: list[str] = []  # every call, failed or not
    seen: list[str] = []  # the calls that succeeded
    replayed_from: list[bytes | None] = []
    dlq_headers: list[list[str]] = []

    def handler(record: Record) -> None:
        attempts.append(orjson.loads(record.value)["event_id"])
        if broken.is_set():
            raise Exception("downstream bug")
        seen.append(orjson.loads(record.value)["event_id"])
        replayed_from.append(record.header("leadflow.replayed-from"))
        dlq_headers.append([k for k, _ in record.headers if k.startswith("leadflow.dlq.")])

    loop = ConsumerLoop(
        settings=settings,
        topics=[topic],
        group_id=settings.group_scoring,
        handler=handler,
        dlq=producer,
    )
    thread = threading.Thread(target=loop.run, daemon=True)
    thread.start()
    try:
        assert loop.assigned.wait(30), "consumer never joined its group"
        producer.publish_sync(topic=topic, key=b"lead-1", value=event_value("e1"))
        await eventually(_true(lambda: loop.dead_lettered == 1), what="e1 parked in the DLQ")
        assert seen == []

        listed = service.list_dlq(
            settings=settings, sessions=sessions, topic=topic, limit=10, cursor=None
        )
        (item,) = listed["items"]
        assert item["event_id"] == "e1"
        assert item["error"] == "Exception: downstream bug"

        broken.clear()  # the fix is deployed
        report = service.replay_dlq(
            settings=settings,
            sessions=sessions,
            producer=producer,
            topic=topic,
            ids=None,
            now=utcnow,
        )
        assert report.as_dict() == {"replayed": 1, "ids": [item["id"]], "skipped": []}
        await eventually(_true(lambda: seen == ["e1"]), what="the replayed e1 being processed")
        assert replayed_from == [item["id"].encode()]
        assert dlq_headers == [[]]  # the DLQ's own headers are not carried back

        again = service.replay_dlq(
            settings=settings,
            sessions=sessions,
            producer=producer,
            topic=topic,
            ids=None,
            now=utcnow,
        )
        by_id = service.replay_dlq(
            settings=settings,
            sessions=sessions,
            producer=producer,
            topic=topic,
            ids=[item["id"]],
            now=utcnow,
        )
        for repeat in (again, by_id):
            assert repeat.as_dict() == {
                "replayed": 0,
                "ids": [],
                "skipped": [{"id": item["id"], "reason": "already replayed"}],
            }

        # A sentinel on the same key lands behind anything a repeat could have re-published,
        # so once it is processed, a second e1 would have been seen already.
        producer.publish_sync(topic=topic, key=b"lead-1", value=event_value("e2"))
        await eventually(_true(lambda: seen[-1:] == ["e2"]), what="the sentinel e2 processed")
        assert seen == ["e1", "e2"]
        assert attempts == ["e1", "e1", "e2"]  # once broken (max attempts 1), once replayed
        records = read_topic(settings, topic)
        assert [orjson.loads(r.value)["event_id"] for r in records] == ["e1", "e1", "e2"]

        hidden = service.list_dlq(
            settings=settings,
            sessions=sessions,
            topic=topic,
            limit=10,
            cursor=None,
            include_replayed=False,
        )
        assert hidden == {"items": [], "next_cursor": None}
    finally:
        loop.stop()
        thread.join(10)
        engine.dispose()


async def test_replay_via_api_needs_ops_write_scope(
    client: httpx.AsyncClient, runtime: Runtime, settings: Settings
):
    touch = settings.topic_touch_events
    publish_raw(runtime, touch, b"k", b"{broken")
    (item,) = await parked(client, touch, 1)
    assert runtime.app is not None
    transport = httpx.ASGITransport(app=runtime.app)
    reader_key, writer_key = make_key(runtime, "ops:read"), make_key(runtime, "ops:write")
    async with httpx.AsyncClient(transport=transport, base_url="http://leadflow.test") as http:
        as_reader = {"Authorization": f"Bearer {reader_key}"}
        listed = await http.get("/v1/ops/dlq", params={"topic": touch}, headers=as_reader)
        assert listed.status_code == 200
        assert [i["id"] for i in listed.json()["items"]] == [item["id"]]

        refused = await http.post(
            "/v1/ops/dlq/replay", json={"ids": [item["id"]]}, headers=as_reader
        )
        assert refused.status_code == 403
        error = refused.json()
        assert error["code"] == "forbidden" and "ops:write" in error["detail"]
        anonymous = await http.post("/v1/ops/dlq/replay", json={"ids": [item["id"]]})
        assert anonymous.status_code == 401

        # Nothing was replayed by the refused calls: the writer's replay is the first.
        as_writer = {"Authorization": f"Bearer {writer_key}"}
        done = await http.post("/v1/ops/dlq/replay", json={"ids": [item["id"]]}, headers=as_writer)
        assert done.status_code == 200, done.text
        assert done.json() == {"replayed": 1, "ids": [item["id"]], "skipped": []}
        twice = await http.post("/v1/ops/dlq/replay", json={"ids": [item["id"]]}, headers=as_writer)
        assert twice.status_code == 200, twice.text
        assert twice.json() == {
            "replayed": 0,
            "ids": [],
            "skipped": [{"id": item["id"], "reason": "already replayed"}],
        }
    # The replayed (still malformed) record went back to scoring and was parked again, as a
    # new message of its own.
    items = await parked(client, touch, 2)
    assert items[0]["id"] == item["id"] and items[0]["replayed_at"] is not None
    assert items[1]["origin"]["offset"] == item["origin"]["offset"] + 1
    assert items[1]["replayed_at"] is None
    samples = await scrape(client)
    assert total(samples, "leadflow_dlq_replayed_total", topic=touch) == 1


async def test_unknown_dlq_topic_is_a_422_naming_it(client: httpx.AsyncClient):
    listed = await client.get("/v1/ops/dlq", params={"topic": "no.such.topic"})
    assert listed.status_code == 422
    assert listed.json()["code"] == "validation_error"
    assert "no.such.topic" in listed.json()["detail"]

    replay = await client.post("/v1/ops/dlq/replay", json={"all": True, "topic": "no.such.topic"})
    assert replay.status_code == 422
    assert "no.such.topic" in replay.json()["detail"]

    bad_cursor = await client.get("/v1/ops/dlq", params={"cursor": "nonsense"})
    assert bad_cursor.status_code == 422
    assert "cursor" in bad_cursor.json()["detail"]

    foreign = await client.post("/v1/ops/dlq/replay", json={"ids": ["other.dlq:0:0"]})
    assert foreign.status_code == 422
    assert "other.dlq:0:0" in foreign.json()["detail"]


async def test_dlq_pages_with_a_cursor(
    client: httpx.AsyncClient, runtime: Runtime, settings: Settings
):
    touch = settings.topic_touch_events
    # Keys spread over partitions, so paging crosses from one partition to the next.
    for i in range(3):
        publish_raw(runtime, touch, f"key-{i}".encode(), f"bad-{i}".encode())
    everything = await parked(client, touch, 3)

    first = await dlq_page(client, topic=touch, limit=2)
    assert len(first["items"]) == 2
    assert first["next_cursor"] == first["items"][-1]["id"]
    second = await dlq_page(client, topic=touch, limit=2, cursor=first["next_cursor"])
    assert len(second["items"]) == 1
    assert second["next_cursor"] is None

    paged = [i["id"] for i in first["items"] + second["items"]]
    assert len(set(paged)) == 3
    assert paged == [i["id"] for i in everything]
    values = sorted(base64.b64decode(i["value"]["base64"]) for i in everything)
    assert values == [b"bad-0", b"bad-1", b"bad-2"]
    # A page that ends exactly at the last message says there is no more.
    exact = await dlq_page(client, topic=touch, limit=3)
    assert [i["id"] for i in exact["items"]] == paged and exact["next_cursor"] is None


class _BrokerDown:
    """A producer whose publishes fail, as when the broker is unreachable mid-replay."""

    def publish_sync(self, **_record: Any) -> None:
        raise PublishError("broker did not acknowledge in time")


async def test_a_replay_whose_publish_failed_can_be_retried_at_once(
    client: httpx.AsyncClient, runtime: Runtime, settings: Settings, producer: AsyncProducer
):
    touch = settings.topic_touch_events
    publish_raw(runtime, touch, b"k9", b"still not json")
    (item,) = await parked(client, touch, 1)
    engine = make_engine(settings.database_url)
    sessions = make_session_factory(engine)
    try:
        with pytest.raises(PublishError):
            service.replay_dlq(
                settings=settings,
                sessions=sessions,
                producer=_BrokerDown(),  # type: ignore[arg-type]
                topic=touch,
                ids=[item["id"]],
                now=utcnow,
            )
        (listed,) = (await dlq_page(client, topic=touch))["items"]
        assert listed["replayed_at"] is None
        retried = service.replay_dlq(
            settings=settings,
            sessions=sessions,
            producer=producer,
            topic=touch,
            ids=[item["id"]],
            now=utcnow,
        )
        assert retried.as_dict() == {"replayed": 1, "ids": [item["id"]], "skipped": []}
    finally:
        engine.dispose()
