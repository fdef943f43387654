"""Fixtures of the fault tests: a cut-able proxy in front of PostgreSQL, and what they count.

These tests need PostgreSQL (LEADFLOW_TEST_DATABASE_URL, as `.ci/run` sets it): a proxy can
cut a TCP connection, not a SQLite file.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from kafka import KafkaConsumer
from kafka.structs import TopicPartition
from sqlalchemy.engine import make_url

from leadflow.embedded import free_port
from shared.config import Settings
from tests.conftest import new_broker
from tests.faults.proxy import CutProxy


@pytest.fixture
def proxied_broker(broker_kind: str, tmp_path: Path) -> Iterator[tuple[CutProxy, str]]:
    """A broker of the session's kind for this test alone, that tells clients to connect
    through a proxy in front of it; and the bootstrap servers that go through the proxy."""
    port = free_port("127.0.0.1")
    with CutProxy("127.0.0.1", port) as proxy:
        running = new_broker(
            broker_kind,
            log_path=tmp_path / f"{broker_kind}.log",
            port=port,
            advertised_port=proxy.port,
        )
        running.start()
        try:
            yield proxy, f"127.0.0.1:{proxy.port}"
        finally:
            running.stop()


@pytest.fixture
def postgres_proxy(clean_db: str) -> Iterator[tuple[CutProxy, str]]:
    """A proxy in front of the test PostgreSQL, and the database URL that goes through it."""
    if not os.environ.get("LEADFLOW_TEST_DATABASE_URL"):
        pytest.skip("fault tests cut a TCP connection: set LEADFLOW_TEST_DATABASE_URL (CI does)")
    url = make_url(clean_db)
    with CutProxy(url.host or "127.0.0.1", url.port or 5432) as proxy:
        proxied = url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
        yield proxy, proxied


def eventually(predicate: Callable[[], object], *, timeout_s: float, what: str) -> None:
    """Poll until `predicate` holds, or fail saying `what` did not happen in time."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"{what}: not within {timeout_s:.0f} s")


def end_offsets(settings: Settings, topic: str) -> dict[int, int]:
    """partition -> end offset of `topic` (empty when it does not exist)."""
    consumer = KafkaConsumer(bootstrap_servers=settings.bootstrap_servers)
    try:
        partitions = consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in partitions]
        return {tp.partition: offset for tp, offset in consumer.end_offsets(tps).items()}
    finally:
        consumer.close()


def records_in(settings: Settings, topic: str) -> int:
    """How many records `topic` holds (its topics are new for each test)."""
    return sum(end_offsets(settings, topic).values())


def group_lag(settings: Settings, *, group: str, topic: str) -> int:
    """Records of `topic` the group has not committed (a partition it never committed counts
    whole). Reads the group's offsets without joining it."""
    consumer = KafkaConsumer(bootstrap_servers=settings.bootstrap_servers, group_id=group)
    try:
        partitions = consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in partitions]
        ends = consumer.end_offsets(tps)
        return sum(end - (consumer.committed(tp) or 0) for tp, end in ends.items())
    finally:
        consumer.close(autocommit=False)


# The routing tests' real SMTP server and webhook receiver, for the delivery outage test.
from tests.integration.routing.conftest import mailbox, receiver  # noqa: E402, F401
