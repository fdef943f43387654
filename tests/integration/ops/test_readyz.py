"""Readiness against a real broker and database: /readyz names what is not ready."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from leadflow.app import create_app
from leadflow.runtime import Runtime
from shared.config import Settings
from shared.consumer import ConsumerLoop
from shared.db import make_engine, make_session_factory
from shared.http import Resources
from shared.kafka import AsyncProducer, ensure_topics
from tests.conftest import Broker
from tests.integration.ops.conftest import eventually, ops_settings, rows, scrape

pytestmark = pytest.mark.integration


@asynccontextmanager
async def serve(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """A keyless client on the app, in-process (health routes need no key)."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://leadflow.test") as http:
        yield http


def checks_of(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The readiness checks by name."""
    return {c["name"]: c for c in body["checks"]}


async def test_readiness_flips_to_503_naming_the_broker_when_it_stops(
    clean_db: str, private_broker: Broker
):
    # A broker of its own: stopping the session's broker would break every later test.
    own = private_broker
    runtime: Runtime | None = None
    try:
        settings = ops_settings(
            bootstrap=own.bootstrap_servers, database_url=clean_db, kafka_publish_timeout_s=3.0
        )
        runtime = Runtime(settings=settings, services=("ingest", "scoring", "routing"))
        app = runtime.start()
        async with serve(app) as http:

            async def ready() -> dict[str, Any] | None:
                response = await http.get("/readyz")
                return response.json() if response.status_code == 200 else None

            body = await eventually(ready, what="/readyz answering 200", timeout_s=30)
            assert body["status"] == "ready"
            names = set(checks_of(body))
            assert {"database", "migrations", "broker"} <= names
            assert {"consumer:scoring", "consumer:routing"} <= names
            assert all(c["ok"] for c in body["checks"])

            own.stop(timeout_s=1.0)  # a kill is as good as a clean stop here

            async def not_ready() -> dict[str, Any] | None:
                response = await http.get("/readyz")
                return response.json() if response.status_code == 503 else None

            body = await eventually(not_ready, what="/readyz answering 503")
            assert body["status"] == "not_ready"
            checks = checks_of(body)
            assert checks["broker"]["ok"] is False
            assert own.bootstrap_servers in checks["broker"]["error"]
            # Only the broker is down: the database checks still pass.
            assert checks["database"]["ok"] is True
            assert checks["migrations"]["ok"] is True

            live = await http.get("/healthz")
            assert live.status_code == 200
            assert live.json() == {"status": "ok"}

            # Offsets and lag are not repeated stale while the broker cannot be read.
            async def monitor_down() -> Any:
                samples = await scrape(http)
                up = rows(samples, "leadflow_stream_monitor_up")
                return samples if up == [({}, 0.0)] else None

            samples = await eventually(monitor_down, what="leadflow_stream_monitor_up 0")
            assert not rows(samples, "leadflow_consumer_lag")
            assert not rows(samples, "leadflow_topic_end_offset")
    finally:
        if runtime is not None:
            # The broker is gone: closing its clients may log errors; do not wait long.
            runtime.stop(timeout_s=3)
        own.stop(timeout_s=1.0)


async def test_readyz_names_a_consumer_that_has_no_partitions_yet(settings: Settings):
    # A real consumer loop that has not started yet has no partitions, deterministically; once
    # it runs and joins its group, readiness turns 200.
    ensure_topics(settings=settings)
    engine = make_engine(settings.database_url)
    producer = AsyncProducer(settings=settings)
    loop = ConsumerLoop(
        settings=settings,
        topics=[settings.topic_touch_events],
        group_id=settings.group_scoring,
        handler=lambda record: None,
        dlq=producer,
        name="scoring",
    )
    resources = Resources(
        settings=settings,
        engine=engine,
        sessions=make_session_factory(engine),
        producer=producer,
        consumers=[loop],
    )
    thread: threading.Thread | None = None
    try:
        async with serve(create_app(resources=resources, services=("ingest",))) as http:
            response = await http.get("/readyz")
            assert response.status_code == 503
            checks = checks_of(response.json())
            assert checks["consumer:scoring"] == {
                "name": "consumer:scoring",
                "ok": False,
                "error": "no partitions assigned yet",
            }
            assert checks["broker"]["ok"] and checks["database"]["ok"]

            thread = threading.Thread(target=loop.run, daemon=True)
            thread.start()

            async def ready() -> bool:
                return (await http.get("/readyz")).status_code == 200

            await eventually(ready, what="/readyz answering 200 once the consumer joined")
            assert loop.assigned.is_set()
    finally:
        loop.stop()
        if thread is not None:
            thread.join(10)
        producer.close()
        engine.dispose()
