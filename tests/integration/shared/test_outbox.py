"""The transactional outbox against the real database and broker."""

from __future__ import annotations

import threading

import pytest
from kafka import KafkaConsumer
from sqlalchemy import func, select

from shared import outbox
from shared.config import Settings
from shared.db import make_engine, make_session_factory, transaction
from shared.db import outbox as outbox_table
from shared.faults import PublishError
from shared.kafka import AsyncProducer, ensure_topics
from tests.conftest import Broker

pytestmark = pytest.mark.integration


def pending(sessions) -> int:  # type: ignore[no-untyped-def]
    """Messages still waiting in the outbox."""
    with sessions() as session:
        return session.execute(select(func.count()).select_from(outbox_table)).scalar_one()


def test_message_of_a_rolled_back_transaction_is_never_published(settings: Settings):
    sessions = make_session_factory(make_engine(settings.database_url))
    with pytest.raises(RuntimeError), transaction(sessions) as session:
        outbox.enqueue(session, topic=settings.topic_lead_changes, key=b"k", value=b"v")
        raise RuntimeError("the state change failed")
    assert pending(sessions) == 0


def test_committed_messages_are_published_in_order_and_removed(settings: Settings):
    ensure_topics(settings=settings)
    sessions = make_session_factory(make_engine(settings.database_url))
    producer = AsyncProducer(settings=settings)
    try:
        with transaction(sessions) as session:
            for i in range(3):
                outbox.enqueue(
                    session,
                    topic=settings.topic_lead_changes,
                    key=b"lead-1",
                    value=f"change-{i}".encode(),
                    headers=[("event_id", b"e%d" % i)],
                )
        assert outbox.flush(sessions=sessions, producer=producer) == 3
        assert pending(sessions) == 0
    finally:
        producer.close()
    consumer = KafkaConsumer(
        settings.topic_lead_changes,
        bootstrap_servers=settings.bootstrap_servers,
        auto_offset_reset="earliest",
        consumer_timeout_ms=10_000,
    )
    values = []
    for message in consumer:
        values.append((message.value, dict(message.headers)["event_id"]))
        if len(values) == 3:
            break
    consumer.close()
    assert values == [(b"change-0", b"e0"), (b"change-1", b"e1"), (b"change-2", b"e2")]


def test_two_flushes_side_by_side_publish_each_message_once(settings: Settings):
    # Scoring's after-batch step and the re-score sweep flush from their own threads.
    ensure_topics(settings=settings)
    sessions = make_session_factory(make_engine(settings.database_url))
    with transaction(sessions) as session:
        outbox.enqueue_many(
            session,
            messages=[
                (settings.topic_lead_changes, b"lead-%d" % i, b"change-%d" % i, [])
                for i in range(300)
            ],
        )
    producer = AsyncProducer(settings=settings)
    start = threading.Barrier(2)
    sent: list[int] = []

    def flush() -> None:
        start.wait()
        sent.append(outbox.flush(sessions=sessions, producer=producer, limit=100))

    try:
        threads = [threading.Thread(target=flush) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
    finally:
        producer.close()
    assert sorted(sent) == [0, 300]
    consumer = KafkaConsumer(
        settings.topic_lead_changes,
        bootstrap_servers=settings.bootstrap_servers,
        auto_offset_reset="earliest",
        consumer_timeout_ms=5_000,
    )
    try:
        values = [message.value for message in consumer]
    finally:
        consumer.close()
    assert sorted(values) == sorted(b"change-%d" % i for i in range(300))


def test_messages_stay_in_the_outbox_when_the_broker_is_unreachable(
    settings: Settings, private_broker: Broker
):
    sessions = make_session_factory(make_engine(settings.database_url))
    # A broker of this test's own, so stopping it does not disturb the shared one.
    own = settings.model_copy(
        update={
            "kafka_bootstrap_servers": private_broker.bootstrap_servers,
            "kafka_publish_timeout_s": 2.0,
        }
    )
    producer = AsyncProducer(settings=own)
    private_broker.stop(timeout_s=1.0)
    with transaction(sessions) as session:
        outbox.enqueue(session, topic=settings.topic_lead_changes, key=None, value=b"v")
    try:
        with pytest.raises(PublishError):
            outbox.flush(sessions=sessions, producer=producer)
    finally:
        producer._producer.close(timeout=1)
    assert pending(sessions) == 1
