"""API keys: hashed, scoped, revocable; rate-limited per key; `LEADFLOW_AUTH=off` for play."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from shared.auth import api_keys, revoke_key
from tests.conftest import make_key

pytestmark = pytest.mark.integration

EVENT = {"type": "page_view", "lead": {"email": "keys@acme.example"}}


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def test_missing_or_malformed_authorization_is_401_naming_the_header(ingest):
    async with ingest() as (client, _rt):
        missing = await client.post("/v1/events", json=EVENT)
        basic = await client.post("/v1/events", json=EVENT, headers={"Authorization": "Basic x"})
    assert missing.status_code == 401 and basic.status_code == 401
    assert "Authorization" in missing.json()["detail"]
    assert missing.headers["www-authenticate"] == "Bearer"


async def test_unknown_key_is_401(ingest):
    async with ingest() as (client, _rt):
        response = await client.post("/v1/events", json=EVENT, headers=bearer("lf_made_up"))
    assert response.status_code == 401


async def test_key_without_the_scope_is_403_naming_the_scope(ingest):
    async with ingest() as (client, runtime):
        reader = make_key(runtime, "leads:read")
        response = await client.post("/v1/events", json=EVENT, headers=bearer(reader))
    assert response.status_code == 403
    assert "events:write" in response.json()["detail"]


async def test_scopes_guard_reads_and_writes(runtime, client):
    writer, reader = make_key(runtime, "events:write"), make_key(runtime, "leads:read")
    assert (await client.get("/v1/leads", headers=bearer(writer))).status_code == 403
    assert (await client.get("/v1/teams", headers=bearer(writer))).status_code == 403
    assert (await client.get("/v1/leads", headers=bearer(reader))).status_code == 200
    assert (await client.post("/v1/events", json=EVENT, headers=bearer(writer))).status_code == 202
    assert (await client.post("/v1/events", json=EVENT, headers=bearer(reader))).status_code == 403
    assert (await client.get("/healthz")).status_code == 200  # health needs no key


async def test_revoked_key_stops_working(ingest):
    async with ingest() as (client, runtime):
        key = make_key(runtime, "events:write", name="crm")
        assert (await client.post("/v1/events", json=EVENT, headers=bearer(key))).status_code == 202
        with runtime.resources.sessions.begin() as session:
            revoke_key(session, name="crm")
        response = await client.post("/v1/events", json=EVENT, headers=bearer(key))
    assert response.status_code == 401


async def test_keys_are_stored_hashed(ingest):
    async with ingest() as (_client, runtime):
        key = make_key(runtime, "admin", name="stored")
        with runtime.resources.sessions() as session:
            row = session.execute(select(api_keys).where(api_keys.c.name == "stored")).one()
    assert key not in (row.key_hash, row.hint)
    assert len(row.key_hash) == 64 and key.startswith(row.hint)


async def test_key_over_its_rate_limit_gets_429_with_retry_after(ingest):
    async with ingest(rate_limit_key_per_s=0.5, rate_limit_key_burst=2) as (client, runtime):
        busy, other = make_key(runtime, "events:write"), make_key(runtime, "events:write")
        codes = [
            (await client.post("/v1/events", json=EVENT, headers=bearer(busy))).status_code
            for _ in range(3)
        ]
        limited = await client.post("/v1/events", json=EVENT, headers=bearer(busy))
        fresh = await client.post("/v1/events", json=EVENT, headers=bearer(other))
    assert codes == [202, 202, 429]
    assert int(limited.headers["retry-after"]) >= 1
    assert fresh.status_code == 202  # the limit is per key


async def test_auth_off_admits_requests_without_a_key(ingest):
    async with ingest(auth="off") as (client, _rt):
        response = await client.post("/v1/events", json=EVENT)
    assert response.status_code == 202
