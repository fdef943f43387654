"""Tasks reach a person: a sales alert without a webhook (any task) is emailed to the lead's
owner, or the team inbox while the lead is queued, and open tasks are listed per team."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.integration.routing.conftest import body_of, wait_until
from tests.integration.routing.test_playbooks import lead_of, post

pytestmark = pytest.mark.integration

CONFIG = """
version = "tasks-test"
default_team = "marketing"

[[rules]]
name = "sql_to_sales"
team = "sales"
qualifications = ["sql"]

[teams.marketing]

[teams.sales]
email = "sales-desk@seller.example"
members = [{ id = "ana@seller.example", capacity = 1 }]
"""


def demo(email: str) -> dict:
    return {
        "type": "demo_requested",
        "lead": {"email": email, "job_title": "CTO", "company": {"name": "Corp"}},
        "properties": {"budget": "100k+", "timeframe": "this month"},
    }


async def test_a_sales_alert_without_a_webhook_is_emailed_and_listed_until_closed(
    pipeline, mailbox, tmp_path: Path
):
    box, _port = mailbox
    config = tmp_path / "tasks.toml"
    config.write_text(CONFIG)
    async with pipeline(routing_config=str(config)) as (client, _rt):
        await post(client, demo("owned@corp.example"))
        owned = await lead_of(client, "owned@corp.example", lambda x: x["owner"] is not None)
        await post(client, demo("queued@corp.example"))  # ana is at capacity: queued
        queued = await lead_of(client, "queued@corp.example", lambda x: x["owner"] is not None)
        assert owned["owner"]["member"] == "ana@seller.example"
        assert queued["owner"]["member"] is None

        box.wait_for(2)
        to_ana, to_desk = box.to("ana@seller.example"), box.to("sales-desk@seller.example")
        assert len(to_ana) == 1 and len(to_desk) == 1
        assert "A lead became sales-qualified" in to_ana[0]["Subject"]
        assert "owned@corp.example" in to_ana[0]["Subject"]
        text, html = body_of(to_ana[0])
        assert f"/v1/leads/{owned['id']}" in text and f"/v1/leads/{owned['id']}" in html
        assert "Owner: ana@seller.example" in text
        assert "queued@corp.example" in to_desk[0]["Subject"]
        assert "the sales queue" in body_of(to_desk[0])[0]
        assert to_ana[0]["List-Unsubscribe"] is None  # an internal notification

        async def listed() -> list[dict]:
            response = await client.get("/v1/teams/sales/tasks")
            assert response.status_code == 200
            return response.json()["items"]

        tasks = await wait_until(
            lambda: _when(listed(), lambda items: {t["status"] for t in items} == {"open"})
        )
        assert sorted(t["lead_id"] for t in tasks) == sorted([owned["id"], queued["id"]])
        assert all(t["playbook"] == "sales_alert" and t["kind"] == "task" for t in tasks)
        mine = await client.get("/v1/teams/sales/tasks", params={"member": "ana@seller.example"})
        assert [t["lead_id"] for t in mine.json()["items"]] == [owned["id"]]

        closed = await client.post(f"/v1/actions/{tasks[0]['id']}/cancel")
        assert closed.status_code == 200
        assert [t["id"] for t in await listed()] == [tasks[1]["id"]]
        assert (await client.get("/v1/teams/nobody/tasks")).status_code == 404
        await asyncio.sleep(0.5)
        assert len(box.messages) == 2  # each task emailed once


async def _when(found, condition):
    items = await found
    return items if items and condition(items) else None
