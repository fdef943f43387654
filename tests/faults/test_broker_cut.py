"""The broker cut for 15 s under continuous ingest: every answer is a 202 or a 503 with
Retry-After, every event that got a 202 is on the topic, and a client's retry of a 503'd event
with the same id is stored once downstream."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter

import httpx
import orjson
import pytest
from kafka import KafkaConsumer
from kafka.structs import TopicPartition
from sqlalchemy import func, select

from leadflow.runtime import Runtime
from services.scoring.repository import touches
from shared.config import Settings
from shared.db import make_engine
from tests.conftest import make_key, session_timeout_ms, unique_settings
from tests.faults.proxy import CutProxy

pytestmark = pytest.mark.integration

BEFORE_S, CUT_S, AFTER_S = 4.0, 15.0, 4.0
EVERY_S = 0.02  # a request every 20 ms, not waiting for the one before


def _event(event_id: str) -> dict[str, object]:
    return {
        "type": "page_view",
        "event_id": event_id,
        "lead": {"email": f"{event_id}@reader.example"},
        "properties": {"url": "https://shop.example/pricing"},
    }


async def _drive(app: object, key: str, proxy: CutProxy, tag: str) -> dict[str, list]:
    """Send events for the whole run, cutting the broker in the middle; then retry every
    503'd one with the same id until it is accepted. Returns what each id was answered."""
    answers: dict[str, list] = {}
    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(
        transport=transport, base_url="http://leadflow.test", headers=headers, timeout=60
    ) as client:

        async def send(event_id: str) -> None:
            response = await client.post("/v1/events", json=_event(event_id))
            answers.setdefault(event_id, []).append(
                (response.status_code, response.headers.get("retry-after"), response.text)
            )

        started = time.monotonic()
        tasks, n, cut, restored = [], 0, False, False
        while (elapsed := time.monotonic() - started) < BEFORE_S + CUT_S + AFTER_S:
            if not cut and elapsed >= BEFORE_S:
                proxy.cut()
                cut = True
            if not restored and elapsed >= BEFORE_S + CUT_S:
                proxy.restore()
                restored = True
            tasks.append(asyncio.create_task(send(f"{tag}-{n}")))
            n += 1
            await asyncio.sleep(EVERY_S)
        await asyncio.gather(*tasks)
        for _ in range(20):  # the client's retries, as Retry-After invites
            refused = [i for i, a in answers.items() if a[-1][0] != 202]
            if not refused:
                break
            await asyncio.gather(*(send(i) for i in refused))
            await asyncio.sleep(1)
    return answers


def _ids_on_topic(settings: Settings, topic: str) -> Counter[str]:
    """How often each event id is on `topic`, read from the start to its end offsets."""
    consumer = KafkaConsumer(bootstrap_servers=settings.bootstrap_servers, enable_auto_commit=False)
    found: Counter[str] = Counter()
    try:
        tps = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        ends = consumer.end_offsets(tps)
        deadline = time.monotonic() + 30
        while any(consumer.position(tp) < end for tp, end in ends.items()):
            assert time.monotonic() < deadline, "could not read the topic to its end"
            for messages in consumer.poll(timeout_ms=500).values():
                for message in messages:
                    found[orjson.loads(message.value)["event_id"]] += 1
    finally:
        consumer.close()
    return found


def _stored(database_url: str) -> tuple[int, int]:
    engine = make_engine(database_url)
    try:
        with engine.connect() as conn:
            return tuple(  # type: ignore[return-value]
                conn.execute(
                    select(func.count(), func.count(func.distinct(touches.c.event_id)))
                ).one()
            )
    finally:
        engine.dispose()


def test_a_broker_cut_under_ingest_answers_202_or_503_and_loses_or_doubles_nothing(
    broker_kind: str, clean_db: str, proxied_broker: tuple[CutProxy, str]
):
    proxy, bootstrap = proxied_broker
    settings = unique_settings(
        bootstrap=bootstrap,
        database_url=clean_db,
        kafka_session_timeout_ms=session_timeout_ms(broker_kind),
        kafka_publish_timeout_s=2.0,
        outage_backoff_max_s=2.0,
        # The retries come in bursts; this test is about the broker, not the rate limit.
        rate_limit_key_burst=100_000,
        rate_limit_key_per_s=100_000,
    )
    runtime = Runtime(settings=settings, services=("ingest", "scoring"))
    runtime.start()
    try:
        assert runtime.wait_until_assigned(timeout_s=30)
        key = make_key(runtime, "events:write")
        answers = asyncio.run(_drive(runtime.app, key, proxy, uuid.uuid4().hex[:8]))
        accepted = [i for i, a in answers.items() if a[-1][0] == 202]
        deadline = time.monotonic() + 60
        while _stored(settings.database_url)[1] < len(answers) and time.monotonic() < deadline:
            time.sleep(0.2)
        stored = _stored(settings.database_url)
        on_topic = _ids_on_topic(settings, settings.topic_touch_events)
    finally:
        runtime.stop()

    every = [answer for a in answers.values() for answer in a]
    statuses = Counter(status for status, _, _ in every)
    print(
        f"broker cut: {len(answers)} events, answers {dict(statuses)}, "
        f"on the topic twice: {sum(1 for n in on_topic.values() if n > 1)}, stored {stored}"
    )
    assert set(statuses) <= {202, 503}, statuses
    assert statuses[503] > 0, "the cut was felt"
    assert all(retry for status, retry, _ in every if status == 503), "503s carry Retry-After"
    assert all("broker" in body for status, _, body in every if status == 503)
    assert len(accepted) == len(answers), "every refused event was accepted on a retry"
    assert set(accepted) <= set(on_topic), "every event that got a 202 is on the topic"
    assert stored == (len(answers), len(answers)), "each event stored once, retries included"
