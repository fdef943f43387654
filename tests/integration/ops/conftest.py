"""Operations tests: a runtime whose stream monitor samples every 0.3 s and whose database
metrics are never cached, plus readers for /metrics, /v1/ops/streams and raw topics."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import httpx
import pytest
from kafka import KafkaConsumer
from kafka.structs import TopicPartition
from prometheus_client.parser import text_string_to_metric_families

from shared.config import Settings
from tests.conftest import Broker, session_timeout_ms, unique_settings

T = TypeVar("T")

# The monitor samples at this interval, so a poll of a few seconds sees several readings.
SAMPLE_INTERVAL_S = 0.3


@pytest.fixture
def settings(broker: Broker, clean_db: str) -> Settings:
    """The shared broker and clean database; a fast stream monitor, uncached DB metrics."""
    return ops_settings(
        bootstrap=broker.bootstrap_servers,
        database_url=clean_db,
        kafka_session_timeout_ms=session_timeout_ms(broker.kind),
    )


def ops_settings(*, bootstrap: str, database_url: str, **overrides: Any) -> Settings:
    """Fresh topics and groups with the operations settings these tests rely on."""
    values: dict[str, Any] = {"ops_sample_interval_s": SAMPLE_INTERVAL_S, "metrics_db_cache_s": 0}
    values.update(overrides)
    return unique_settings(bootstrap=bootstrap, database_url=database_url, **values)


async def eventually(
    probe: Callable[[], Awaitable[T | None]], *, what: str, timeout_s: float = 20.0
) -> T:
    """Await `probe` until it returns something truthy and return that; fail naming `what`
    and the last value seen."""
    deadline = time.monotonic() + timeout_s
    last: Any = None
    while time.monotonic() < deadline:
        last = await probe()
        if last:
            return last
        await asyncio.sleep(0.1)
    raise AssertionError(f"{what} never held within {timeout_s} s; last probe: {last!r}")


Samples = list[tuple[str, dict[str, str], float]]


async def scrape(client: httpx.AsyncClient) -> Samples:
    """Every sample of /metrics as (name, labels, value)."""
    response = await client.get("/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return [
        (s.name, dict(s.labels), s.value)
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
    ]


def rows(samples: Samples, name: str, **labels: str) -> list[tuple[dict[str, str], float]]:
    """The samples called `name` whose labels include `labels`."""
    return [
        (have, value)
        for sample_name, have, value in samples
        if sample_name == name and all(have.get(k) == v for k, v in labels.items())
    ]


def total(samples: Samples, name: str, **labels: str) -> float:
    """The sum of the matching samples (0 when there is none)."""
    return sum(value for _, value in rows(samples, name, **labels))


async def streams(client: httpx.AsyncClient) -> dict[str, Any]:
    """GET /v1/ops/streams with the client's key."""
    response = await client.get("/v1/ops/streams")
    assert response.status_code == 200, response.text
    return response.json()


def topic_entry(report: dict[str, Any], topic: str) -> dict[str, Any]:
    """One topic of a streams report."""
    found = [t for t in report["topics"] if t["topic"] == topic]
    assert len(found) == 1, f"{topic} listed {len(found)} times in {report['topics']}"
    return found[0]


def group_lag(entry: dict[str, Any], group: str) -> int | None:
    """A group's total lag on a topic entry, None if the group is not listed."""
    lags = [g["lag"] for g in entry["groups"] if g["group"] == group]
    return lags[0] if lags else None


def read_topic(settings: Settings, topic: str, *, idle_ms: int = 1_500) -> list[Any]:
    """Every record of every partition of `topic`, read from the beginning outside any group
    until nothing more arrives for `idle_ms`."""
    consumer = KafkaConsumer(
        bootstrap_servers=settings.bootstrap_servers,
        group_id=None,
        enable_auto_commit=False,
        consumer_timeout_ms=idle_ms,
    )
    try:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        return sorted(consumer, key=lambda m: (m.partition, m.offset))
    finally:
        consumer.close()
