"""Ingest's promise: 202 only when the broker has the event, 503 with Retry-After otherwise."""

from __future__ import annotations

import httpx
import pytest

from leadflow.embedded import EmbeddedBroker, resolve_tansu_bin
from leadflow.runtime import Runtime
from shared.config import Settings

pytestmark = pytest.mark.integration

EVENT = {"type": "page_view", "lead": {"email": "ops@acme.example"}}


async def test_event_is_refused_with_503_when_the_broker_is_gone(settings: Settings, tmp_path):
    # A broker of this test's own: stopping the shared one would break the other tests.
    private = EmbeddedBroker(binary=resolve_tansu_bin(None), log_path=tmp_path / "tansu.log")
    own = settings.model_copy(
        update={"kafka_bootstrap_servers": private.start(), "kafka_publish_timeout_s": 2.0}
    )
    runtime = Runtime(settings=own, services=("ingest",))
    app = runtime.start()
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://leadflow.test"
        ) as client:
            assert (await client.post("/v1/events", json=EVENT)).status_code == 202
            private.stop()
            response = await client.post("/v1/events", json=EVENT)
            assert response.status_code == 503
            assert response.headers["retry-after"]
            assert response.json()["error"]["code"] == "broker_unavailable"
            ready = await client.get("/readyz")
            assert ready.status_code == 503
            failing = [c["name"] for c in ready.json()["checks"] if not c["ok"]]
            assert failing == ["broker"]
    finally:
        private.stop()
        runtime.stop(timeout_s=3)
