"""Sales feedback that moves the lead, through the whole pipeline with the bundled routing file:
a rejection recycles the lead to nurture with its reason and frees the rep; an acceptance is a
sales-accepted step (SAL) with its time; both count in /v1/funnel."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.integration.routing.conftest import wait_until
from tests.integration.routing.test_playbooks import lead_of, post

pytestmark = pytest.mark.integration

DEMO = {
    "type": "demo_requested",
    "lead": {"email": "rio@corp.example", "job_title": "CTO"},
    "properties": {"budget": "100k+", "timeframe": "this month"},
}


async def member_load(client, team: str, member: str) -> int:
    teams = {t["team"]: t for t in (await client.get("/v1/teams")).json()["items"]}
    return next(m["open_leads"] for m in teams[team]["members"] if m["id"] == member)


async def sales_steps(client, lead_id: str) -> list[dict[str, Any]]:
    items = (await client.get(f"/v1/leads/{lead_id}/timeline")).json()["items"]
    return [i for i in items if i.get("track") == "sales"]


async def test_a_rejected_lead_is_recycled_to_nurture_and_an_accepted_one_is_a_sal(pipeline):
    async with pipeline(routing_config="default") as (client, _rt):
        email = DEMO["lead"]["email"]
        await post(client, DEMO)
        lead = await lead_of(
            client,
            email,
            lambda x: x["qualification"] == "sql" and (x["owner"] or {}).get("member"),
        )
        owner = lead["owner"]
        assert owner["team"] == "sales"
        assert await member_load(client, "sales", owner["member"]) == 1

        accepted = await client.post(f"/v1/leads/{lead['id']}/feedback", json={"type": "accepted"})
        assert accepted.status_code == 202
        [step] = await wait_until(lambda: sales_steps(client, lead["id"]))
        assert step["to"] == "accepted" and step["from"] is None and step["at"]
        assert (await lead_of(client, email))["qualification"] == "sql"  # accepted: still sales'

        rejected = await client.post(
            f"/v1/leads/{lead['id']}/feedback",
            json={"type": "rejected", "reason": "no budget until Q3"},
        )
        assert rejected.status_code == 202
        recycled = await lead_of(
            client,
            email,
            lambda x: x["qualification"] == "recycled" and x["owner"]["team"] != "sales",
        )
        assert recycled["owner"]["team"] == "marketing-nurture"
        assert recycled["qualification_reason"].endswith("(no budget until Q3)")
        assert recycled["score"] == lead["score"]  # the evidence stays; only the owner moves
        assert await member_load(client, "sales", owner["member"]) == 0  # the rep is freed
        steps = await wait_until(
            lambda: _when(sales_steps(client, lead["id"]), lambda s: len(s) == 2)
        )
        assert [(s["from"], s["to"]) for s in steps] == [
            (None, "accepted"),
            ("accepted", "rejected"),
        ]

        now = datetime.now(UTC)
        params = {"from": (now - timedelta(hours=1)).isoformat(), "to": now.isoformat()}
        sales = (await client.get("/v1/funnel", params=params)).json()["sales"]
        assert sales["qualified"] == 1 and sales["accepted"] == 1 and sales["rejected"] == 1
        assert sales["recycled"] == 1 and sales["acceptance_rate"] == 1.0
        assert sales["median_seconds_to_accept"] is not None

        # Raising its hand again brings it back to sales.
        await post(client, {**DEMO, "properties": {}})
        back = await lead_of(
            client, email, lambda x: x["qualification"] == "sql" and x["owner"]["team"] == "sales"
        )
        assert back["qualification_reason"].startswith("sql")


async def _when(steps, condition):
    found = await steps
    return found if condition(found) else None
