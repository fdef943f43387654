"""Two platform users on one browser stay two leads, and the timeline says why."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx

from tests.integration.scoring.test_scenarios import post


async def _lead_of_user(client: httpx.AsyncClient, user_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        items = (await client.get("/v1/leads", params={"limit": 500})).json()["items"]
        found = [i for i in items if user_id in i["user_ids"]]
        if found and found[0]["owner"]:
            return found[0]
        await asyncio.sleep(0.1)
    raise AssertionError(f"no routed lead with user id {user_id}")


async def test_two_segment_users_sharing_an_anonymous_id_are_never_merged(client):
    browser = "ajs-shared-browser"
    await post(
        client,
        {"type": "page_view", "lead": {"user_id": "segment:u1", "anonymous_id": browser}},
    )
    first = await _lead_of_user(client, "segment:u1")
    for _ in range(2):  # the second user comes back: still apart, refused once
        await post(
            client,
            {"type": "page_view", "lead": {"user_id": "segment:u2", "anonymous_id": browser}},
        )
    second = await _lead_of_user(client, "segment:u2")

    assert second["id"] != first["id"]
    assert first["user_ids"] == ["segment:u1"] and second["user_ids"] == ["segment:u2"]
    assert browser in first["anonymous_ids"] and browser not in second["anonymous_ids"]
    timeline = (await client.get(f"/v1/leads/{second['id']}/timeline")).json()["items"]
    refused = [e for e in timeline if e["kind"] == "identity_merge_refused"]
    assert len(refused) == 1, timeline
    assert refused[0]["from_lead_id"] == first["id"]
    assert refused[0]["identities"] == [{"kind": "anonymous_id", "value": browser}]
    assert "segment:u1" in refused[0]["reason"] and "segment:u2" in refused[0]["reason"]
    touches = [e for e in timeline if e["kind"] == "touch"]
    assert len(touches) == 2, "both of the second user's touches are theirs"
