"""Ingest-only runtimes with the settings a test needs, and a reader for what reached Kafka."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from kafka import KafkaConsumer, TopicPartition
from pydantic import SecretStr

from leadflow.runtime import Runtime
from shared.config import Settings

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
SECRETS = {
    "segment_write_key": "seg-write-key",
    "segment_shared_secret": "seg-shared-secret",
    "shopify_webhook_secret": "shpss_test_secret",
    "hubspot_client_secret": "hs-client-secret",
}


def fixture(path: str) -> bytes:
    """The raw bytes of a vendor sample under tests/fixtures/."""
    return (FIXTURES / path).read_bytes()


def fixture_json(path: str) -> Any:
    """A vendor sample under tests/fixtures/, parsed."""
    return json.loads(fixture(path))


@pytest.fixture
def ingest(settings: Settings) -> Iterator[Callable[..., Any]]:
    """`async with ingest(**overrides) as (client, runtime)`: an ingest-only app whose settings
    are the test's plus the source secrets plus `overrides`; the client has no key."""
    started: list[Runtime] = []

    @asynccontextmanager
    async def start(**overrides: Any) -> AsyncIterator[tuple[httpx.AsyncClient, Runtime]]:
        values: dict[str, Any] = {k: SecretStr(v) for k, v in SECRETS.items()}
        values.update(auth_cache_s=0.0)
        values.update(overrides)
        values = {
            k: SecretStr(v) if k in SECRETS and isinstance(v, str) else v for k, v in values.items()
        }
        runtime = Runtime(settings=settings.model_copy(update=values), services=("ingest",))
        started.append(runtime)
        app = runtime.start()
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield client, runtime

    yield start
    for runtime in started:
        runtime.stop(timeout_s=3)


def read_topic(settings: Settings, *, topic: str, settle_s: float = 1.5) -> list[dict[str, Any]]:
    """Every record on `topic` from the beginning, decoded, read until nothing new arrives."""
    consumer = KafkaConsumer(
        bootstrap_servers=settings.bootstrap_servers, enable_auto_commit=False, group_id=None
    )
    try:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or []]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        records: list[dict[str, Any]] = []
        quiet_since = time.monotonic()
        while time.monotonic() - quiet_since < settle_s:
            batch = consumer.poll(timeout_ms=200)
            for items in batch.values():
                records += [json.loads(r.value) for r in items]
                quiet_since = time.monotonic()
        return records
    finally:
        consumer.close()
