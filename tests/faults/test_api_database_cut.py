"""PostgreSQL cut under the ingest idempotency store and the read API: a 503 with a body that
names the database, never a 500; and answers as before once it is back, without a restart."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter

import httpx
import pytest

from leadflow.runtime import Runtime
from shared.config import Settings
from tests.conftest import make_key
from tests.faults.proxy import CutProxy

pytestmark = pytest.mark.integration

CUT_S = 6.0


async def _round(client: httpx.AsyncClient, tag: str, n: int) -> list[httpx.Response]:
    """One of each: an event with a client id, a batch with ids, a lead search, the actions."""
    event = {"type": "page_view", "event_id": f"{tag}-{n}", "lead": {"email": f"r{n}@x.example"}}
    batch = [{**event, "event_id": f"{tag}-b{n}-{i}"} for i in range(3)]
    return list(
        await asyncio.gather(
            client.post("/v1/events", json=event),
            client.post("/v1/events/batch", json=batch),
            client.get("/v1/leads", params={"email": f"r{n}@x.example"}),
            client.get("/v1/actions"),
        )
    )


async def _drive(app: object, key: str, proxy: CutProxy) -> tuple[list, list, list]:
    tag = uuid.uuid4().hex[:8]
    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(
        transport=transport, base_url="http://leadflow.test", headers=headers, timeout=60
    ) as client:
        before = await _round(client, tag, 0)
        proxy.cut()
        during: list[httpx.Response] = []
        started, n = time.monotonic(), 1
        while time.monotonic() - started < CUT_S:
            during += await _round(client, tag, n)
            n += 1
            await asyncio.sleep(0.2)
        proxy.restore()
        after: list[httpx.Response] = []
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # back within the pool's next connection attempt
            after = await _round(client, tag, n)
            n += 1
            if all(r.status_code < 300 for r in after):
                break
            await asyncio.sleep(0.5)
    return before, during, after


def test_a_database_cut_under_the_api_answers_503_naming_it_and_recovers_without_restart(
    settings: Settings, postgres_proxy: tuple[CutProxy, str]
):
    proxy, proxied_url = postgres_proxy
    # The key is checked before the cut and then cached: the requests reach the idempotency
    # store and the read routes, each of which needs the database.
    settings = settings.model_copy(update={"database_url": proxied_url, "auth_cache_s": 600.0})
    runtime = Runtime(settings=settings, services=("ingest", "scoring", "routing"))
    runtime.start()
    try:
        assert runtime.wait_until_assigned(timeout_s=30)
        key = make_key(runtime, "admin")
        before, during, after = asyncio.run(_drive(runtime.app, key, proxy))
    finally:
        runtime.stop()

    ok = {202, 200}
    assert [r.status_code in ok for r in before] == [True] * 4, [r.text for r in before]
    statuses = Counter(r.status_code for r in during)
    print(f"API during a {CUT_S:.0f} s database cut: {dict(statuses)}")
    assert statuses[503] > 0
    assert set(statuses) <= {503}, "no 500, and no request that needs the database went through"
    for response in during:
        assert response.headers["content-type"] == "application/problem+json"
        body = response.json()
        assert body["code"] in {"unavailable", "database_unavailable"}
        assert "database" in body["detail"] or "idempotency" in body["detail"], body
        assert response.headers.get("retry-after")
    assert [r.status_code in ok for r in after] == [True] * 4, [r.text for r in after]
