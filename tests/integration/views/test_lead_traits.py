"""Custom traits from a vendor reach the stored lead, merged touch after touch, and the lead list
shows and filters them: Segment -> ingest -> Kafka -> scoring -> `/v1/leads?trait=key:value`,
on the test database (SQLite or PostgreSQL: their JSON operators differ)."""

from __future__ import annotations

import asyncio
import base64
from typing import Any

import httpx
import orjson
import pytest
from pydantic import SecretStr

from leadflow.runtime import Runtime
from tests.conftest import make_key
from tests.integration.ingest.conftest import fixture_json

pytestmark = pytest.mark.integration

WRITE_KEY = "seg-write-key"
MARIA = "maria.lopez@globex.example"


async def _lead_when(client: httpx.AsyncClient, key: str, ready: Any) -> dict[str, Any]:
    """Maria's lead once `ready(lead)` holds (scoring works behind the broker)."""
    for _ in range(150):
        found = await client.get(
            "/v1/leads", params={"email": MARIA}, headers={"Authorization": f"Bearer {key}"}
        )
        items = found.json()["items"]
        if items and ready(items[0]):
            return dict(items[0])
        await asyncio.sleep(0.1)
    raise AssertionError("the lead never got there")


async def test_traits_reach_the_lead_merge_newest_first_and_filter_the_list(settings):
    own = settings.model_copy(update={"segment_write_key": SecretStr(WRITE_KEY)})
    runtime = Runtime(settings=own, services=("ingest", "scoring", "routing"))
    app = runtime.start()
    try:
        assert runtime.wait_until_assigned(timeout_s=30)
        key = make_key(runtime, "leads:read")
        auth = {"Authorization": f"Bearer {key}"}
        segment = {
            "Authorization": "Basic " + base64.b64encode(f"{WRITE_KEY}:".encode()).decode(),
            "Content-Type": "application/json",
        }
        batch = fixture_json("segment/actions_batch.json")
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            sent = await client.post(
                "/v1/sources/segment", content=orjson.dumps(batch), headers=segment
            )
            assert sent.status_code == 202, sent.text
            # Someone else, without traits, so the filters have a lead to leave out.
            other = {**batch[2], "messageId": "m-other", "userId": "usr_other"}
            other["context"] = {**other["context"], "traits": {"email": "bo@initech.example"}}
            assert (
                await client.post(
                    "/v1/sources/segment", content=orjson.dumps(other), headers=segment
                )
            ).status_code == 202
            lead = await _lead_when(client, key, lambda lead: lead["traits"])
            assert lead["traits"] == {
                "plan": "enterprise",
                "logins": 14,
                "trial_active": True,
                "seats_requested": 25.5,
                "preferred_language": "es",
            }

            async def matching(*traits: str) -> list[str]:
                page = await client.get(
                    "/v1/leads", params=[("trait", t) for t in traits], headers=auth
                )
                assert page.status_code == 200, page.text
                return [item["email"] for item in page.json()["items"]]

            for wanted in (
                ["plan:enterprise"],
                ["logins:14"],
                ["trial_active:true"],
                ["seats_requested:25.5"],
                ["plan:enterprise", "preferred_language:es"],
            ):
                assert await matching(*wanted) == [MARIA], wanted
            for unwanted in (
                ["plan:starter"],
                ["trial_active:false"],
                ["plan:enterprise", "logins:3"],
            ):
                assert await matching(*unwanted) == [], unwanted

            # A newer identify: its value of a trait wins, the others stay, new ones are added.
            newer = {
                **batch[0],
                "messageId": "ajs-next-newer-identify",
                "timestamp": "2026-12-02T08:00:00.000Z",
                "traits": {"email": MARIA, "plan": "starter", "region": "emea"},
            }
            assert (
                await client.post(
                    "/v1/sources/segment", content=orjson.dumps(newer), headers=segment
                )
            ).status_code == 202
            lead = await _lead_when(client, key, lambda lead: lead["traits"].get("region"))
            assert lead["traits"]["plan"] == "starter"
            assert lead["traits"]["logins"] == 14
            assert await matching("plan:enterprise") == []
            assert await matching("plan:starter", "region:emea") == [MARIA]

            one = await client.get(f"/v1/leads/{lead['id']}", headers=auth)
            assert one.json()["traits"] == lead["traits"]
            bad = await client.get("/v1/leads", params={"trait": "plan"}, headers=auth)
            assert bad.status_code == 422
            assert bad.json()["errors"][0]["field"] == "trait"
    finally:
        runtime.stop(timeout_s=3)
