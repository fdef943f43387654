"""A link to the broker slower than a poll: the consumer loop still joins its group, and
rejoins it when another member comes and goes during a database outage (CI once saw a routing
consumer stuck "rebalancing" for minutes under load; see `shared.group.JOIN_POLL_SLICE_MS`)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import psycopg
import pytest
import sqlalchemy.exc as sa_exc
from kafka import KafkaConsumer

from shared.config import Settings
from shared.consumer import ConsumerLoop
from shared.kafka import AsyncProducer, ensure_topics
from shared.records import Record
from tests.conftest import session_timeout_ms, unique_settings
from tests.faults.conftest import eventually, group_lag
from tests.faults.proxy import CutProxy

pytestmark = pytest.mark.integration

# Each chunk either way waits this long: a JoinGroup and SyncGroup round trip takes well over
# the loop's 50 ms poll.
LINK_DELAY_S = 0.1
POLL_MS = 50
ATTEMPT_S = 0.5


@pytest.fixture
def slow_settings(
    broker_kind: str, clean_db: str, proxied_broker: tuple[CutProxy, str]
) -> Iterator[tuple[Settings, CutProxy]]:
    """Settings whose broker is behind the proxy, with topics made before the link slows."""
    proxy, bootstrap = proxied_broker
    settings = unique_settings(
        bootstrap=bootstrap,
        database_url=clean_db,
        kafka_session_timeout_ms=session_timeout_ms(broker_kind),
        consumer_poll_timeout_ms=POLL_MS,
        # Retries close together, each spending ATTEMPT_S on a connection that fails: the
        # loop's polls are short and far apart while it waits the outage out.
        outage_backoff_max_s=0.01,
    )
    ensure_topics(settings=settings)
    yield settings, proxy


def _produce(producer: AsyncProducer, topic: str, values: list[bytes]) -> None:
    producer.publish_many_sync([(topic, v, v, [("event_id", v)]) for v in values])


def test_a_consumer_joins_and_rejoins_its_group_over_a_link_slower_than_its_poll(
    slow_settings: tuple[Settings, CutProxy],
):
    settings, proxy = slow_settings
    topic = settings.topic_touch_events
    database_down = threading.Event()
    handled: list[bytes] = []

    def store(records: list[Record]) -> None:
        if database_down.is_set():
            time.sleep(ATTEMPT_S)
            lost = psycopg.OperationalError("server closed the connection")
            raise sa_exc.OperationalError("INSERT INTO touches ...", {}, lost)
        handled.extend(r.value for r in records)

    producer = AsyncProducer(settings=settings)
    loop = ConsumerLoop(
        settings=settings,
        topics=[topic],
        group_id=settings.group_scoring,
        handler=lambda record: store([record]),
        batch_handler=store,
        dlq=producer,
    )
    proxy.delay_s = LINK_DELAY_S
    thread = threading.Thread(target=loop.run, daemon=True)
    thread.start()
    other: KafkaConsumer | None = None
    try:
        assert loop.assigned.wait(60), "never joined over the slow link"
        first = [f"a{n}".encode() for n in range(20)]
        _produce(producer, topic, first)
        eventually(lambda: len(handled) == len(first), timeout_s=60, what="first records")

        # A database outage holds the next records; meanwhile a second member joins the group
        # and leaves it again, so the loop has to rejoin twice while it waits the outage out.
        database_down.set()
        second = [f"b{n}".encode() for n in range(20)]
        _produce(producer, topic, second)
        eventually(lambda: loop.paused_reason() == "database", timeout_s=30, what="held")
        other = KafkaConsumer(
            topic,
            bootstrap_servers=settings.bootstrap_servers,
            group_id=settings.group_scoring,
            enable_auto_commit=False,
            session_timeout_ms=settings.kafka_session_timeout_ms,
        )
        eventually(
            lambda: _polled_assignment(other),
            timeout_s=60,
            what="the second member got partitions",
        )
        taken = set(other.assignment())
        other.close()
        other = None
        database_down.clear()

        eventually(
            lambda: sorted(handled) == sorted(first + second),
            timeout_s=60,
            what="every record handled after the outage and both rebalances",
        )
        # Then it owns every partition again: records on all of them are handled.
        third = [f"c{n}".encode() for n in range(30)]
        _produce(producer, topic, third)
        eventually(
            lambda: len(handled) == len(first + second + third),
            timeout_s=60,
            what="records on every partition after the second member left",
        )
        eventually(
            lambda: group_lag(settings, group=settings.group_scoring, topic=topic) == 0,
            timeout_s=60,
            what="every record committed",
        )
    finally:
        if other is not None:
            other.close()
        loop.stop()
        thread.join(30)
        producer.close()
    assert taken, "the second member took partitions, so the loop did rejoin"
    assert len(set(handled)) == len(handled), "each record once"
    assert len(taken) < 3, "the second member had taken part of the topic"
    assert loop.dead_lettered == 0


def _polled_assignment(consumer: KafkaConsumer | None) -> bool:
    """Poll `consumer` once (long enough to see a join through) and say if it owns partitions."""
    assert consumer is not None
    consumer.poll(timeout_ms=2_000)
    return bool(consumer.assignment())
