"""kafka-python 3.0.12's group join with leadflow's fix (shared/kafka_join.py)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable

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


def member(settings: Settings, *, topics: list[str]) -> KafkaConsumer:
    """A consumer of a group of its own, not subscribed yet, that knows `topics`' partitions
    (a leader that knows none assigns none, which is not what these tests are about)."""
    session_timeout = settings.kafka_session_timeout_ms
    consumer = KafkaConsumer(
        bootstrap_servers=settings.bootstrap_servers,
        group_id=f"join-{uuid.uuid4().hex[:8]}",
        enable_auto_commit=False,
        session_timeout_ms=session_timeout,
        heartbeat_interval_ms=max(100, session_timeout // 3),
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not all(map(consumer.partitions_for_topic, topics)):
        time.sleep(0.1)
    return consumer


def poll_briefly_with_gaps(consumer: KafkaConsumer, *, until: Callable[[], bool]) -> None:
    """5 ms polls 200 ms apart, until `until()` holds or 30 s pass: a join round trip
    finishes between two polls."""
    deadline = time.monotonic() + 30
    while not until() and time.monotonic() < deadline:
        consumer.poll(timeout_ms=5)
        time.sleep(0.2)


def test_a_consumer_that_polls_briefly_with_long_gaps_still_joins_its_group(
    settings: Settings,
):
    # Unpatched, kafka-python threw a join that finished between two polls away and sent a new
    # JoinGroup each time (on Apache Kafka 4.1 it never joined in 20 s, 3 tries out of 3); with
    # the fix it joins in about a second.
    ensure_topics(settings=settings)
    topic = settings.topic_touch_events
    consumer = member(settings, topics=[topic])
    try:
        consumer.subscribe([topic])
        poll_briefly_with_gaps(consumer, until=lambda: joined(consumer))
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
    consumer = member(settings, topics=[first, second])
    try:
        consumer.subscribe([first])
        poll_briefly_with_gaps(consumer, until=lambda: joined(consumer))
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

        poll_briefly_with_gaps(consumer, until=holds_both)
        assert holds_both(), f"the rejoin was never taken up: {described(consumer, second)}"
        assert consumer._coordinator._generation.generation_id != generation
    finally:
        consumer.close(autocommit=False)
