"""Capacity that frees up: contacted leads stop counting against a rep's capacity, and queued
leads are handed out in queue order when a slot frees or a rep comes back."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.routing.conftest import wait_until
from tests.integration.routing.test_playbooks import lead_of, post

pytestmark = pytest.mark.integration

CONFIG = """
version = "queue-test"
default_team = "marketing"

[[rules]]
name = "sql_to_sales"
team = "sales"
qualifications = ["sql"]

[teams.marketing]

[teams.sales]
members = [{ id = "ana@seller.example", capacity = 1 }]
"""


def demo(email: str) -> dict:
    return {
        "type": "demo_requested",
        "lead": {"email": email, "job_title": "CTO"},
        "properties": {"budget": "100k+", "timeframe": "this month"},
    }


async def owner_of(client, email: str) -> dict:
    lead = await lead_of(client, email, lambda x: x["owner"] is not None)
    return lead["owner"]


async def test_queued_leads_are_handed_out_in_order_as_capacity_frees(pipeline, tmp_path: Path):
    config = tmp_path / "queue.toml"
    config.write_text(CONFIG)
    async with pipeline(routing_config=str(config)) as (client, _rt):
        emails = [f"q{i}@corp.example" for i in range(4)]
        for email in emails:  # one at a time, so the queue order is known
            await post(client, demo(email))
            await owner_of(client, email)
        owners = [await owner_of(client, e) for e in emails]
        assert (owners[0]["team"], owners[0]["member"]) == ("sales", "ana@seller.example")
        assert [o["member"] for o in owners[1:]] == [None, None, None]  # ana is at capacity
        team = next(
            t for t in (await client.get("/v1/teams")).json()["items"] if t["team"] == "sales"
        )
        assert team["queued"] == 3 and team["members"][0]["load"] == 1

        # Contacting the first lead frees ana's slot: the longest waiting lead is hers.
        first = await lead_of(client, emails[0])
        await client.post(f"/v1/leads/{first['id']}/feedback", json={"type": "contacted"})
        await lead_of(client, emails[1], lambda x: x["owner"]["member"] == "ana@seller.example")
        assert (await owner_of(client, emails[2]))["member"] is None
        assert (await owner_of(client, emails[0]))["member"] == "ana@seller.example"  # still hers

        # Away, a free slot hands nothing out; back, the queue moves on in order.
        away = await client.patch("/v1/teams/sales/members/ana@seller.example", json={"away": True})
        assert away.status_code == 200
        second = await lead_of(client, emails[1])
        await client.post(f"/v1/leads/{second['id']}/feedback", json={"type": "accepted"})
        await wait_until(
            lambda: _team_load(client, "sales", "ana@seller.example", expected=0), timeout_s=10
        )
        assert (await owner_of(client, emails[2]))["member"] is None
        back = await client.patch(
            "/v1/teams/sales/members/ana@seller.example", json={"away": False}
        )
        assert back.status_code == 200
        await lead_of(client, emails[2], lambda x: x["owner"]["member"] == "ana@seller.example")
        assert (await owner_of(client, emails[3]))["member"] is None  # one slot, one lead


async def _team_load(client, team: str, member: str, *, expected: int) -> bool:
    teams = {t["team"]: t for t in (await client.get("/v1/teams")).json()["items"]}
    return next(m["load"] for m in teams[team]["members"] if m["id"] == member) == expected
