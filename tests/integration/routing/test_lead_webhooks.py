"""Outbound lead events end to end: a lead scored and routed through the pipeline reaches a
CRM's endpoint as signed Standard Webhooks, once each, with the actions' retry policy, and
every attempt is in the subscription's delivery log."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from sqlalchemy import delete

from services.routing.batch import handle_changes
from services.routing.domain.webhooks import verify
from services.routing.service import config_for
from services.scoring.shapes import lead_change_id
from shared.db import processed_events, transaction
from shared.events import LeadChange, LeadMoves, LeadSnapshot, utcnow
from tests.integration.routing.conftest import free_port, wait_until

pytestmark = pytest.mark.integration

SQL_TOUCH = {
    "type": "demo_requested",
    "lead": {"email": "ada@corp.example", "job_title": "CTO"},
    "properties": {"budget": "100k+", "timeframe": "this month"},
}
SQL_EVENTS = {"lead.created", "lead.qualified", "lead.owner_assigned"}


@dataclass
class Crm:
    """A CRM's webhook endpoint on a real local HTTP server: what it got, and how it answers
    (`statuses`, one per request, then 204)."""

    port: int
    statuses: list[int] = field(default_factory=list)
    got: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/leadflow"

    def start(self) -> None:
        crm = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                crm.got.append(({k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(crm.statuses.pop(0) if crm.statuses else 204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()

    def events(self) -> list[dict[str, Any]]:
        return [json.loads(body) for _h, body in self.got]

    def verified_with(self, secret: str) -> list[bool]:
        """For each request, whether a receiver holding `secret` accepts its signature."""
        return [
            verify(
                secret=secret,
                msg_id=headers["webhook-id"],
                timestamp=int(headers["webhook-timestamp"]),
                body=body,
                header=headers["webhook-signature"],
                now=int(time.time()),
            )
            for headers, body in self.got
        ]


@pytest.fixture
def crm() -> Iterator[Crm]:
    """A CRM endpoint on a free port, not started yet."""
    endpoint = Crm(port=free_port())
    yield endpoint
    endpoint.stop()


async def subscribe(client, url: str, **body: Any) -> dict[str, Any]:
    response = await client.post("/v1/webhooks", json={"url": url, **body})
    assert response.status_code == 201, response.text
    return response.json()


async def log_of(client, sub_id: str) -> list[dict[str, Any]]:
    response = await client.get(f"/v1/webhooks/{sub_id}/deliveries")
    assert response.status_code == 200, response.text
    return response.json()["items"]


async def test_a_lead_becoming_sql_reaches_the_crm_signed_once_per_event(pipeline, crm):
    crm.start()
    async with pipeline() as (client, _rt):
        sub = await subscribe(client, crm.url)
        await client.post("/v1/events", json=SQL_TOUCH)
        await wait_until(lambda: len(crm.got) >= 3, timeout_s=20)
        await asyncio.sleep(1.0)  # nothing more comes
        events = crm.events()
        assert sorted(e["type"] for e in events) == sorted(SQL_EVENTS)
        assert all(crm.verified_with(sub["secret"]))
        ids = [h["webhook-id"] for h, _b in crm.got]
        assert len(set(ids)) == 3 and all(i.startswith("msg_") for i in ids)
        by_type = {e["type"]: e for e in events}
        lead = by_type["lead.created"]["data"]["lead"]
        assert lead["email"] == "ada@corp.example" and lead["qualification"] == "sql"
        assert lead["owner"]["team"] == "sales"
        assert by_type["lead.qualified"]["data"]["qualification"] == {
            "from": "unqualified",
            "to": "sql",
        }
        assigned = by_type["lead.owner_assigned"]["data"]
        assert assigned["owner"] == lead["owner"] and assigned["previous_owner"] is None
        assert assigned["rule"] == "sql_to_sales"

        log = await log_of(client, sub["id"])
        assert len(log) == 3
        assert {a["outcome"] for a in log} == {"delivered"}
        assert {a["status_code"] for a in log} == {204}
        assert sorted(a["webhook_id"] for a in log) == sorted(ids)
        assert all(a["duration_ms"] >= 0 and a["error"] is None for a in log)
        assert [a["id"] for a in log] == sorted((a["id"] for a in log), reverse=True)


async def test_a_subscription_gets_only_the_events_it_wants(pipeline, crm):
    crm.start()
    async with pipeline() as (client, _rt):
        await subscribe(client, crm.url, event_types=["lead.qualified"])
        await client.post("/v1/events", json=SQL_TOUCH)
        await wait_until(lambda: crm.got, timeout_s=20)
        await asyncio.sleep(1.0)
        assert [e["type"] for e in crm.events()] == ["lead.qualified"]


async def test_a_crm_down_then_up_gets_each_event_once_without_an_attempt_counted(pipeline, crm):
    async with pipeline(outage_backoff_max_s=1.0) as (client, _rt):
        sub = await subscribe(client, crm.url, event_types=["lead.created"])
        await client.post("/v1/events", json=SQL_TOUCH)
        unreachable = await wait_until(lambda: log_of(client, sub["id"]), timeout_s=20)
        assert unreachable[0]["outcome"] == "unreachable"
        assert unreachable[0]["status_code"] is None and unreachable[0]["error"]
        crm.start()
        await wait_until(lambda: crm.got, timeout_s=20)
        await asyncio.sleep(1.0)
        assert [e["type"] for e in crm.events()] == ["lead.created"]
        assert all(crm.verified_with(sub["secret"]))
        log = await log_of(client, sub["id"])
        assert log[0]["outcome"] == "delivered"
        assert {a["outcome"] for a in log[1:]} == {"unreachable"}
        [action] = (await client.get("/v1/actions", params={"kind": "lead_webhook"})).json()[
            "items"
        ]
        assert action["status"] == "sent" and action["attempts"] == 1


async def test_a_failing_crm_is_retried_with_backoff_then_the_log_shows_each_attempt(pipeline, crm):
    crm.statuses = [500, 500]  # two server errors (not a gateway's "down"), then 204
    crm.start()
    async with pipeline() as (client, _rt):
        sub = await subscribe(client, crm.url, event_types=["lead.created"])
        await client.post("/v1/events", json=SQL_TOUCH)

        async def delivered():
            log = await log_of(client, sub["id"])
            return log if log and log[0]["outcome"] == "delivered" else None

        log = await wait_until(delivered, timeout_s=20)
        assert [(a["outcome"], a["status_code"]) for a in log] == [
            ("delivered", 204),
            ("retrying", 500),
            ("retrying", 500),
        ]
        assert "answered 500" in log[-1]["error"]
        assert len({h["webhook-id"] for h, _b in crm.got}) == 1  # one message, three attempts


async def test_a_crm_refusing_for_good_is_failed_after_one_attempt(pipeline, crm):
    crm.statuses = [410]
    crm.start()
    async with pipeline() as (client, _rt):
        sub = await subscribe(client, crm.url, event_types=["lead.created"])
        await client.post("/v1/events", json=SQL_TOUCH)
        [attempt] = await wait_until(lambda: log_of(client, sub["id"]), timeout_s=20)
        assert (attempt["outcome"], attempt["status_code"]) == ("failed", 410)
        [action] = (await client.get("/v1/actions", params={"kind": "lead_webhook"})).json()[
            "items"
        ]
        assert action["status"] == "failed" and "410" in action["last_error"]


async def test_after_a_rotation_pending_and_new_deliveries_verify_with_both_secrets(pipeline, crm):
    crm.start()
    async with pipeline() as (client, _rt):
        sub = await subscribe(client, crm.url, event_types=["lead.created"])
        rotated = (await client.post(f"/v1/webhooks/{sub['id']}/rotate")).json()
        await client.post("/v1/events", json=SQL_TOUCH)
        await wait_until(lambda: crm.got, timeout_s=20)
        assert crm.verified_with(sub["secret"]) == [True]  # the old one, in its grace period
        assert crm.verified_with(rotated["secret"]) == [True]

        again = await client.post(f"/v1/webhooks/{sub['id']}/rotate", json={"grace_period_s": 0})
        newest = again.json()["secret"]
        other = {**SQL_TOUCH, "lead": {"email": "bo@corp.example"}}
        await client.post("/v1/events", json=other)
        await wait_until(lambda: len(crm.got) >= 2, timeout_s=20)
        # The first secret is still in its grace period; the second was retired without one.
        assert crm.verified_with(newest) == [False, True]
        assert crm.verified_with(rotated["secret"]) == [True, False]
        assert crm.verified_with(sub["secret"]) == [True, True]


async def test_a_lead_change_handled_again_plans_each_delivery_once(pipeline):
    async with pipeline(actions_poll_interval_s=600) as (client, runtime):
        await subscribe(client, "https://crm.example/h")
        await client.post("/v1/events", json={**SQL_TOUCH, "event_id": "touch-again"})

        async def planned():
            found = (await client.get("/v1/actions", params={"kind": "lead_webhook"})).json()
            return found["items"] if len(found["items"]) >= 3 else None

        first = await wait_until(planned, timeout_s=20)
        lead = (await client.get("/v1/leads", params={"email": "ada@corp.example"})).json()
        [lead] = lead["items"]
        change = LeadChange(
            event_id=lead_change_id("touch-again"),
            lead_id=lead["id"],
            cause_event_id="touch-again",
            occurred_at=utcnow(),
            changes=LeadMoves(created=True, qualification=("unqualified", "sql")),
            lead=LeadSnapshot(id=lead["id"], email=lead["email"], qualification="sql"),
        )
        config = config_for(runtime.settings)
        assert runtime.resources is not None
        sessions = runtime.resources.sessions
        with transaction(sessions) as session:  # the Kafka record redelivered
            handle_changes(session, changes=[change], config=config, now=utcnow())
        with transaction(sessions) as session:  # handled anew, as if never seen
            session.execute(
                delete(processed_events).where(processed_events.c.event_id == change.event_id)
            )
            handle_changes(session, changes=[change, change], config=config, now=utcnow())
        again = (await client.get("/v1/actions", params={"kind": "lead_webhook"})).json()
        assert sorted(a["id"] for a in again["items"]) == sorted(a["id"] for a in first)
        assert sorted(a["playbook"] for a in first) == sorted(SQL_EVENTS)


async def test_an_erased_lead_reaches_the_crm_as_lead_erased_with_nothing_personal(pipeline, crm):
    crm.start()
    async with pipeline() as (client, _rt):
        sub = await subscribe(client, crm.url, event_types=["lead.created", "lead.erased"])
        await client.post("/v1/events", json=SQL_TOUCH)
        await wait_until(lambda: len(crm.got) >= 1, timeout_s=20)
        [created] = crm.events()
        lead_id = created["data"]["lead"]["id"]

        erased = await client.delete(f"/v1/leads/{lead_id}")
        assert erased.status_code == 200, erased.text
        await wait_until(lambda: len(crm.got) >= 2, timeout_s=20)
        await asyncio.sleep(1.0)  # nothing more comes
        [_, gone] = crm.events()
        assert gone["type"] == "lead.erased"
        assert gone["data"] == {"lead_id": lead_id, "erasure_id": f"erase:{erased.json()['id']}"}
        assert "ada@corp.example" not in crm.got[1][1].decode()
        assert all(crm.verified_with(sub["secret"]))
