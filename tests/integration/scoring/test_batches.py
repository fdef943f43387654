"""Scoring takes a poll batch as one unit of work: one transaction, then the offsets; a batch
that fails as a whole is handled record by record, so a poison record is parked alone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from leadflow.runtime import Runtime
from services.scoring.repository import leads, touches
from shared.config import Settings
from shared.consumer import ConsumerLoop
from shared.db import make_engine, processed_events
from shared.events import TouchEnvelope, TouchEventIn
from shared.kafka import AsyncProducer, ensure_topics
from tests.integration.shared.test_consumer_loop import read_all, wait_until

pytestmark = pytest.mark.integration

NOW = datetime.now(UTC)


def envelope(event_id: str, *, days_ago: float, **lead: str) -> bytes:
    event = TouchEventIn.model_validate(
        {
            "type": "pricing_viewed",
            "event_id": event_id,
            "occurred_at": (NOW - timedelta(days=days_ago)).isoformat(),
            "lead": lead,
        }
    )
    return TouchEnvelope.from_native(event, received_at=NOW).to_bytes()


def put(settings: Settings, values: list[bytes]) -> None:
    """One key, so every record lands on one partition in this order (one poll batch)."""
    ensure_topics(settings=settings)
    producer = AsyncProducer(settings=settings)
    try:
        producer.publish_many_sync(
            [(settings.topic_touch_events, b"one-key", v, []) for v in values]
        )
    finally:
        producer.close()


def scoring_of(runtime: Runtime) -> ConsumerLoop:
    assert runtime.resources is not None
    (loop,) = runtime.resources.consumers
    return loop


def counts(database_url: str) -> tuple[int, int, int]:
    """(touches, leads, processed touch events) in the database."""
    engine = make_engine(database_url)
    try:
        with engine.connect() as conn:
            return (
                conn.execute(select(func.count()).select_from(touches)).scalar_one(),
                conn.execute(select(func.count()).select_from(leads)).scalar_one(),
                conn.execute(select(func.count()).select_from(processed_events)).scalar_one(),
            )
    finally:
        engine.dispose()


def test_a_clean_batch_is_stored_in_one_transaction_with_duplicates_merges_and_late_events(
    settings: Settings,
):
    values = [
        envelope("anon-1", days_ago=3, anonymous_id="visitor-9"),
        envelope("ana-1", days_ago=2, email="ana@acme.example", anonymous_id="visitor-9"),
        envelope("ana-2", days_ago=1, email="ana@acme.example"),
        envelope("ana-1", days_ago=2, email="ana@acme.example", anonymous_id="visitor-9"),
        envelope("ana-late", days_ago=5, email="ana@acme.example"),  # older than the rest
        envelope("bo-1", days_ago=1, email="bo@acme.example"),
    ]
    put(settings, values)
    runtime = Runtime(settings=settings, services=("scoring",))
    runtime.start()
    try:
        loop = scoring_of(runtime)
        wait_until(lambda: loop.processed == len(values))
        # All six in one batch, made durable whole: no record went the one-by-one way.
        assert (loop.batches, loop.batch_fallbacks) == (1, 0)
    finally:
        runtime.stop()
    stored_touches, stored_leads, processed = counts(settings.database_url)
    assert stored_touches == 5, "the repeat of ana-1 is stored once"
    assert processed == 5
    assert stored_leads == 2, "the anonymous visitor was merged into Ana"
    assert sum(loop.committed_offsets().values()) == len(values)


def test_a_batch_with_a_poison_record_parks_it_alone_and_keeps_every_other_event(
    settings: Settings,
):
    values = [
        envelope("cy-1", days_ago=2, email="cy@acme.example"),
        b"{not json",
        envelope("cy-2", days_ago=1, email="cy@acme.example"),
        envelope("cy-1", days_ago=2, email="cy@acme.example"),
    ]
    put(settings, values)
    runtime = Runtime(settings=settings, services=("scoring",))
    runtime.start()
    try:
        loop = scoring_of(runtime)
        wait_until(lambda: loop.processed + loop.dead_lettered == len(values))
        assert loop.batch_fallbacks == 1 and loop.batches == 0
        assert loop.dead_lettered == 1
    finally:
        runtime.stop()
    parked = read_all(settings, settings.dlq_topic(settings.topic_touch_events), 1)
    assert [r.value for r in parked] == [b"{not json"]
    stored_touches, stored_leads, processed = counts(settings.database_url)
    assert (stored_touches, stored_leads, processed) == (2, 1, 2)
