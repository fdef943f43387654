"""kafka-python 3.0.12's group join with leadflow's fix (shared/kafka_join.py)."""

from __future__ import annotations

import time
import uuid

import pytest
from kafka import KafkaConsumer

from shared.config import Settings
from shared.group import membership  # importing it applies the fix, as every loop does
from shared.kafka import ensure_topics

pytestmark = pytest.mark.integration


def joined(consumer: KafkaConsumer) -> bool:
    """True once the consumer holds partitions and is neither rebalancing nor due to rejoin."""
    coordinator = consumer._coordinator
    return bool(
        consumer.assignment()
        and not coordinator.rebalance_in_progress()
        and not coordinator.need_rejoin()
    )


def described(consumer: KafkaConsumer, topic: str) -> str:
    """The member's side of the group and the topic's partitions, for a failure message."""
    return f"{membership(consumer)} partitions={consumer.partitions_for_topic(topic)}"


def test_a_consumer_that_polls_briefly_with_long_gaps_still_joins_its_group(
    settings: Settings,
):
    # 5 ms polls 200 ms apart: the join round trip finishes between two polls. Unpatched,
    # kafka-python threw that result away and sent a new JoinGroup each time (on Apache Kafka
    # 4.1 it never joined in 20 s, 3 tries out of 3); with the fix it joins in about a second.
    ensure_topics(settings=settings)
    session_timeout = settings.kafka_session_timeout_ms
    consumer = KafkaConsumer(
        bootstrap_servers=settings.bootstrap_servers,
        group_id=f"join-{uuid.uuid4().hex[:8]}",
        enable_auto_commit=False,
        session_timeout_ms=session_timeout,
        heartbeat_interval_ms=max(100, session_timeout // 3),
    )
    topic = settings.topic_touch_events
    try:
        # The topic's partitions in the member's metadata first: a leader that knows none
        # assigns none, which is not what this test is about.
        deadline = time.monotonic() + 10
        while not consumer.partitions_for_topic(topic) and time.monotonic() < deadline:
            time.sleep(0.1)
        consumer.subscribe([topic])
        deadline = time.monotonic() + 30
        while not joined(consumer) and time.monotonic() < deadline:
            consumer.poll(timeout_ms=5)
            time.sleep(0.2)
        assert joined(consumer), f"the consumer never joined: {described(consumer, topic)}"
        # And it stays joined: no rebalance of its own making on the next polls.
        generation = consumer._coordinator._generation.generation_id
        for _ in range(10):
            consumer.poll(timeout_ms=5)
            time.sleep(0.2)
        assert joined(consumer), described(consumer, topic)
        assert consumer._coordinator._generation.generation_id == generation
    finally:
        consumer.close(autocommit=False)


def test_a_rejoin_after_a_subscription_change_is_taken_up_by_the_next_poll(settings: Settings):
    # The rejoin a subscription change starts (here: a second topic) finishes between two polls,
    # as above. Unpatched, the JoinGroup it sent recorded the new subscription as joined, so no
    # later poll saw a rejoin to do and took the finished join up: the member stayed
    # rebalancing without partitions, its heartbeat off, until the group expelled it. (A
    # leader's metadata change, a topic given more partitions, went the same way.)
    ensure_topics(settings=settings)
    first, second = settings.topic_touch_events, settings.topic_lead_changes
    session_timeout = settings.kafka_session_timeout_ms
    consumer = KafkaConsumer(
        bootstrap_servers=settings.bootstrap_servers,
        group_id=f"grow-{uuid.uuid4().hex[:8]}",
        enable_auto_commit=False,
        session_timeout_ms=session_timeout,
        heartbeat_interval_ms=max(100, session_timeout // 3),
    )
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not (
            consumer.partitions_for_topic(first) and consumer.partitions_for_topic(second)
        ):
            time.sleep(0.1)
        consumer.subscribe([first])
        deadline = time.monotonic() + 30
        while not joined(consumer) and time.monotonic() < deadline:
            consumer.poll(timeout_ms=5)
            time.sleep(0.2)
        assert joined(consumer), described(consumer, first)
        generation = consumer._coordinator._generation.generation_id
        expected = {
            (topic, partition)
            for topic in (first, second)
            for partition in consumer.partitions_for_topic(topic)
        }

        consumer.subscribe([first, second])

        def holds_both() -> bool:
            held = {(tp.topic, tp.partition) for tp in consumer.assignment()}
            return joined(consumer) and held == expected

        deadline = time.monotonic() + 30
        while not holds_both() and time.monotonic() < deadline:
            consumer.poll(timeout_ms=5)
            time.sleep(0.2)
        assert holds_both(), f"the rejoin was never taken up: {described(consumer, second)}"
        assert consumer._coordinator._generation.generation_id != generation
    finally:
        consumer.close(autocommit=False)
