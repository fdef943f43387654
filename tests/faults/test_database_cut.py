"""PostgreSQL cut for 20 s while scoring and routing work: the outage is waited out, not
dead-lettered, and every event is stored, and every lead assigned, exactly once."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import func, select

from leadflow.runtime import Runtime
from services.routing.repository import assignments
from services.scoring.repository import leads, touches
from shared.config import Settings
from shared.db import make_engine, processed_events
from shared.events import TouchEnvelope, TouchEventIn
from shared.kafka import AsyncProducer, ensure_topics
from tests.faults.conftest import eventually, group_lag, records_in
from tests.faults.proxy import CutProxy

pytestmark = pytest.mark.integration

LEADS = 1_200
BEFORE_CUT = 300
REPEATS = 150  # events sent a second time during the cut: stored once all the same
CUT_S = 20


def _envelopes(count: int, *, tag: str) -> list[tuple[bytes, bytes]]:
    """(key, value) of one pricing view for each of `count` new leads."""
    now = datetime.now(UTC)
    out = []
    for n in range(count):
        email = f"p{n}-{tag}@acme{n % 40}.example"
        event = TouchEventIn.model_validate(
            {
                "type": "pricing_viewed",
                "event_id": f"{tag}-{n}",
                "occurred_at": (now - timedelta(seconds=count - n)).isoformat(),
                "lead": {"email": email},
            }
        )
        out.append((email.encode(), TouchEnvelope.from_native(event, received_at=now).to_bytes()))
    return out


def _publish(settings: Settings, records: list[tuple[bytes, bytes]]) -> None:
    producer = AsyncProducer(settings=settings)
    try:
        producer.publish_many_sync([(settings.topic_touch_events, k, v, []) for k, v in records])
    finally:
        producer.close()


def _get(app: object, path: str) -> httpx.Response:
    """GET `path` from the runtime's app in-process (the health routes need no key)."""

    async def get() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
        async with httpx.AsyncClient(transport=transport, base_url="http://leadflow.test") as c:
            return await c.get(path)

    return asyncio.run(get())


def _caught_up(settings: Settings) -> bool:
    """Scoring and routing committed every record of their topics."""
    return (
        group_lag(settings, group=settings.group_scoring, topic=settings.topic_touch_events) == 0
        and group_lag(settings, group=settings.group_routing, topic=settings.topic_lead_changes)
        == 0
    )


def test_a_database_cut_is_waited_out_with_every_event_stored_and_routed_once(
    settings: Settings, postgres_proxy: tuple[CutProxy, str]
):
    proxy, proxied_url = postgres_proxy
    settings = settings.model_copy(
        update={
            "database_url": proxied_url,
            "outage_backoff_max_s": 2.0,
            # The catch-up after the cut keeps this process's CPU busy; a longer session keeps
            # a heartbeat starved of the GIL from expelling a consumer (this test is about
            # the database, not group membership).
            "kafka_session_timeout_ms": 30_000,
        }
    )
    ensure_topics(settings=settings)
    events = _envelopes(LEADS, tag=uuid.uuid4().hex[:6])
    _publish(settings, events[:BEFORE_CUT])

    runtime = Runtime(settings=settings, services=("scoring", "routing"))
    runtime.start()
    try:
        assert runtime.resources is not None and runtime.app is not None
        scoring, routing = runtime.resources.consumers
        eventually(lambda: scoring.processed >= 50, timeout_s=60, what="scoring started")

        proxy.cut()
        cut_at = time.monotonic()
        _publish(settings, events[BEFORE_CUT:])
        _publish(settings, events[:REPEATS])
        eventually(
            lambda: scoring.paused_reason() == "database",
            timeout_s=CUT_S,
            what="scoring paused on the database",
        )
        ready = _get(runtime.app, "/readyz")
        scraped = _get(runtime.app, "/metrics").text
        time.sleep(max(0.0, CUT_S - (time.monotonic() - cut_at)))
        proxy.restore()

        eventually(
            lambda: _caught_up(settings) and not scoring.after_batch_pending,
            timeout_s=120,
            what="both groups caught up after the cut",
        )
        recovered = _get(runtime.app, "/readyz")
        dead = (scoring.dead_lettered, routing.dead_lettered)
    finally:
        runtime.stop()

    assert ready.status_code == 503
    checks = {c["name"]: c for c in ready.json()["checks"]}
    assert not checks["database"]["ok"]
    assert "database outage" in checks["consumer:scoring"]["error"]
    paused = f'leadflow_consumer_paused{{group="{settings.group_scoring}",reason="database"}}'
    assert f"{paused} 1.0" in scraped
    assert recovered.status_code == 200, recovered.json()

    engine = make_engine(proxied_url)
    try:
        with engine.connect() as conn:
            stored = conn.execute(select(func.count()).select_from(touches)).scalar_one()
            distinct = conn.execute(
                select(func.count(func.distinct(touches.c.event_id)))
            ).scalar_one()
            processed = dict(
                conn.execute(
                    select(processed_events.c.consumer, func.count()).group_by(
                        processed_events.c.consumer
                    )
                ).all()
            )
            lead_count = conn.execute(select(func.count()).select_from(leads)).scalar_one()
            routed = conn.execute(
                select(func.count(), func.count(func.distinct(assignments.c.lead_id)))
            ).one()
    finally:
        engine.dispose()
    assert (stored, distinct) == (LEADS, LEADS), "every touch stored exactly once"
    assert processed == {"scoring": LEADS, "routing": LEADS}, "each event handled once"
    assert lead_count == LEADS
    assert tuple(routed) == (LEADS, LEADS), "every lead assigned, none twice"
    assert dead == (0, 0)
    assert records_in(settings, settings.dlq_topic(settings.topic_touch_events)) == 0
    assert records_in(settings, settings.dlq_topic(settings.topic_lead_changes)) == 0
    assert proxy.dropped > 0, "the cut was felt: open connections were reset"
