"""The one consumer loop against the real broker: commit after work, retries, then the DLQ."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

import psycopg
import psycopg.errors
import pytest
import sqlalchemy.exc as sa_exc
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
from kafka.admin import NewPartitions

from shared.config import Settings
from shared.consumer import ConsumerLoop
from shared.faults import PoisonMessage
from shared.kafka import AsyncProducer, ensure_topics
from shared.records import Record

pytestmark = pytest.mark.integration


@pytest.fixture
def producer(settings: Settings) -> Iterator[AsyncProducer]:
    """A producer on the shared broker, with the test's topics created."""
    ensure_topics(settings=settings)
    running = AsyncProducer(settings=settings)
    yield running
    running.close()


def produce(producer: AsyncProducer, topic: str, values: list[bytes]) -> None:
    """Put values on partition-stable keys so they keep their order."""
    producer.publish_many_sync([(topic, b"same-key", v, [("event_id", v)]) for v in values])


def run_loop(loop: ConsumerLoop) -> threading.Thread:
    """Run a loop in a thread and wait for its partitions."""
    thread = threading.Thread(target=loop.run, daemon=True)
    thread.start()
    assert loop.assigned.wait(30), "consumer never joined its group"
    return thread


def wait_until(predicate: Callable[[], bool], timeout_s: float = 20.0) -> None:
    """Poll until the predicate holds or fail."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError("condition never held")


def read_all(settings: Settings, topic: str, expected: int) -> list:
    """Read `expected` records from a topic with a throwaway consumer."""
    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=settings.bootstrap_servers,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        consumer_timeout_ms=15_000,
    )
    records = []
    try:
        for message in consumer:
            records.append(message)
            if len(records) >= expected:
                break
    finally:
        consumer.close()
    return records


def test_poison_message_is_parked_in_dlq_and_the_loop_goes_on(
    settings: Settings, producer: AsyncProducer
):
    topic = settings.topic_touch_events
    handled: list[bytes] = []

    def handler(record: Record) -> None:
        if record.value == b"poison":
            raise PoisonMessage("cannot parse")
        handled.append(record.value)

    loop = ConsumerLoop(
        settings=settings,
        topics=[topic],
        group_id=settings.group_scoring,
        handler=handler,
        dlq=producer,
    )
    thread = run_loop(loop)
    produce(producer, topic, [b"good-1", b"poison", b"good-2"])
    wait_until(lambda: handled == [b"good-1", b"good-2"])
    loop.stop()
    thread.join(10)

    parked = read_all(settings, settings.dlq_topic(topic), expected=1)
    assert [m.value for m in parked] == [b"poison"]
    headers = dict(parked[0].headers)
    assert headers["leadflow.dlq.error"].startswith(b"PoisonMessage: cannot parse")
    assert headers["leadflow.dlq.topic"] == topic.encode()
    assert int(headers["leadflow.dlq.offset"]) == 1
    assert headers["event_id"] == b"poison"


def test_transient_failure_is_retried_and_then_succeeds(
    settings: Settings, producer: AsyncProducer
):
    attempts: list[int] = []

    def flaky(record: Record) -> None:
        attempts.append(record.offset)
        if len(attempts) < 3:
            raise ConnectionError("database went away")

    loop = ConsumerLoop(
        settings=settings,
        topics=[settings.topic_touch_events],
        group_id=settings.group_scoring,
        handler=flaky,
        dlq=producer,
    )
    thread = run_loop(loop)
    produce(producer, settings.topic_touch_events, [b"only"])
    wait_until(lambda: loop.processed == 1)
    loop.stop()
    thread.join(10)
    assert attempts == [0, 0, 0]
    assert loop.dead_lettered == 0


def test_a_database_outage_outlasting_every_attempt_is_waited_out_and_nothing_is_parked(
    settings: Settings, producer: AsyncProducer
):
    settings = settings.model_copy(update={"outage_backoff_max_s": 0.5})
    down_until = time.monotonic() + 3.0  # far longer than 3 attempts at 0.05 s, 0.1 s
    handled: list[bytes] = []
    tried_while_down: list[int] = []

    def store(records: list[Record]) -> None:
        if time.monotonic() < down_until:
            tried_while_down.append(len(records))
            lost = psycopg.OperationalError("server closed the connection")
            raise sa_exc.OperationalError("INSERT INTO touches ...", {}, lost)
        handled.extend(r.value for r in records)

    loop = ConsumerLoop(
        settings=settings,
        topics=[settings.topic_touch_events],
        group_id=settings.group_scoring,
        handler=lambda record: store([record]),
        batch_handler=store,
        dlq=producer,
    )
    values = [f"e{n}".encode() for n in range(20)]
    produce(producer, settings.topic_touch_events, values)
    thread = run_loop(loop)
    wait_until(lambda: loop.paused_reason() == "database", timeout_s=10)
    problems = loop.problems()
    try:
        wait_until(lambda: loop.processed >= len(values), timeout_s=30)
    except AssertionError:
        raise AssertionError(
            f"processed {loop.processed} of {len(values)} (handled {len(handled)}, "
            f"{len(tried_while_down)} tries while down); problems: {loop.problems()}"
        ) from None
    loop.stop()
    thread.join(10)
    assert handled == values, "every record once, in order, after the outage"
    assert loop.dead_lettered == 0
    assert len(tried_while_down) >= 3, "retried for as long as it lasted"
    assert any("database outage" in p for p in problems)
    assert loop.paused_reason() is None and loop.problems() == []


def test_records_after_an_outage_are_not_handled_before_the_held_ones(
    settings: Settings, producer: AsyncProducer
):
    settings = settings.model_copy(update={"outage_backoff_max_s": 0.3})
    failures = [0]
    handled: list[bytes] = []

    def store(record: Record) -> None:
        if record.value == b"e1" and failures[0] < 6:
            failures[0] += 1
            raise psycopg.errors.SerializationFailure("could not serialize access")
        handled.append(record.value)

    loop = ConsumerLoop(
        settings=settings,
        topics=[settings.topic_touch_events],
        group_id=settings.group_scoring,
        handler=store,
        dlq=producer,
    )
    thread = run_loop(loop)
    produce(producer, settings.topic_touch_events, [b"e0", b"e1", b"e2"])
    wait_until(lambda: failures[0] >= 2)
    produce(producer, settings.topic_touch_events, [b"e3", b"e4"])  # arrive during the wait
    wait_until(lambda: loop.processed == 5, timeout_s=20)
    loop.stop()
    thread.join(10)
    assert handled == [b"e0", b"e1", b"e2", b"e3", b"e4"]
    assert failures[0] == 6 and loop.dead_lettered == 0


def test_record_that_keeps_failing_goes_to_dlq_after_the_bounded_attempts(
    settings: Settings, producer: AsyncProducer
):
    attempts: list[bytes] = []

    def broken(record: Record) -> None:
        attempts.append(record.value)
        raise RuntimeError("bug in handler")

    loop = ConsumerLoop(
        settings=settings,
        topics=[settings.topic_touch_events],
        group_id=settings.group_scoring,
        handler=broken,
        dlq=producer,
    )
    thread = run_loop(loop)
    produce(producer, settings.topic_touch_events, [b"doomed"])
    wait_until(lambda: loop.dead_lettered == 1)
    loop.stop()
    thread.join(10)
    assert attempts == [b"doomed"] * settings.consumer_max_attempts
    parked = read_all(settings, settings.dlq_topic(settings.topic_touch_events), expected=1)
    assert dict(parked[0].headers)["leadflow.dlq.error"].startswith(b"RuntimeError: bug")


def test_records_not_yet_processed_are_redelivered_to_the_next_consumer(
    settings: Settings, producer: AsyncProducer
):
    topic, group = settings.topic_touch_events, settings.group_scoring
    first_seen: list[bytes] = []
    holder: dict[str, ConsumerLoop] = {}

    def stop_after_first(record: Record) -> None:
        first_seen.append(record.value)
        holder["loop"].stop()  # the process "dies" right after this record is durable

    produce(producer, topic, [b"one", b"two", b"three"])
    first = ConsumerLoop(
        settings=settings, topics=[topic], group_id=group, handler=stop_after_first, dlq=producer
    )
    holder["loop"] = first
    thread = threading.Thread(target=first.run, daemon=True)
    thread.start()
    thread.join(30)
    assert first_seen == [b"one"]

    second_seen: list[bytes] = []
    second = ConsumerLoop(
        settings=settings,
        topics=[topic],
        group_id=group,
        handler=lambda r: second_seen.append(r.value),
        dlq=producer,
    )
    thread = run_loop(second)
    wait_until(lambda: len(second_seen) >= 2)
    second.stop()
    thread.join(10)
    assert second_seen == [b"two", b"three"]


def test_after_batch_failure_does_not_stop_the_loop(settings: Settings, producer: AsyncProducer):
    handled: list[bytes] = []
    calls: list[bool] = []

    def after_batch() -> None:
        calls.append(True)
        if len(calls) == 1:
            raise ConnectionError("broker hiccup")

    loop = ConsumerLoop(
        settings=settings,
        topics=[settings.topic_touch_events],
        group_id=settings.group_scoring,
        handler=lambda r: handled.append(r.value),
        dlq=producer,
        after_batch=after_batch,
    )
    thread = run_loop(loop)
    produce(producer, settings.topic_touch_events, [b"a"])
    wait_until(lambda: handled == [b"a"] and len(calls) >= 2)
    produce(producer, settings.topic_touch_events, [b"b"])
    wait_until(lambda: handled == [b"a", b"b"])
    loop.stop()
    thread.join(10)
    assert not thread.is_alive()


def test_partitions_added_to_a_topic_are_consumed_within_a_minute(
    settings: Settings, producer: AsyncProducer, broker_kind: str
):
    # A topic grown to spread the load: the group learns of the new partitions at a metadata
    # refresh (kafka-python's default: every 5 minutes) and rebalances to take them on. The
    # same refresh ends a member's wait when it joined before its topic's partitions were in
    # its metadata (services starting side by side), which would leave it assigned nothing.
    if broker_kind != "kafka":
        pytest.skip("Tansu cannot add partitions to a topic (CreatePartitions); CI runs Kafka")
    topic = settings.topic_touch_events
    handled: list[bytes] = []
    loop = ConsumerLoop(
        settings=settings,
        topics=[topic],
        group_id=settings.group_scoring,
        handler=lambda record: handled.append(record.value),
        dlq=producer,
    )
    thread = run_loop(loop)
    try:
        before = settings.kafka_topic_partitions
        admin = KafkaAdminClient(bootstrap_servers=settings.bootstrap_servers)
        try:
            admin.create_partitions({topic: NewPartitions(total_count=before + 2)})
        finally:
            admin.close()
        sender = KafkaProducer(bootstrap_servers=settings.bootstrap_servers)
        try:
            for partition in (before, before + 1):
                sender.send(topic, value=f"p{partition}".encode(), partition=partition)
            sender.flush(30)
        finally:
            sender.close()
        wait_until(
            lambda: sorted(handled) == [f"p{before}".encode(), f"p{before + 1}".encode()], 60
        )
    finally:
        loop.stop()
        thread.join(10)
