"""Routing end to end: owners, SLAs and follow-ups through broker, database, SMTP and HTTP."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from services.routing.domain.webhooks import unsubscribe_token, verify
from tests.integration.routing.conftest import WEBHOOK_SECRET, body_of, json_body, wait_until

pytestmark = pytest.mark.integration

CART = {
    "id": "cart-77",
    "value": 149.5,
    "currency": "EUR",
    "checkout_url": "https://shop.example/checkout/cart-77",
    "items": [
        {"title": "Trail shoes", "quantity": 1, "price": 119.5},
        {"title": "Running socks", "quantity": 2, "price": 15.0},
    ],
}


def ago(seconds: float) -> str:
    return (datetime.now(UTC) - timedelta(seconds=seconds)).isoformat()


async def post(client, *events: dict[str, Any]) -> None:
    response = await client.post("/v1/events/batch", json=list(events))
    assert response.status_code == 202, response.text


async def lead_of(client, email: str, until=lambda lead: True) -> dict[str, Any]:
    async def check():
        items = (await client.get("/v1/leads", params={"email": email})).json()["items"]
        return items[0] if items and until(items[0]) else None

    return await wait_until(check)


async def actions_of(client, lead_id: str, **filters: str) -> list[dict[str, Any]]:
    params = {"lead_id": lead_id, **filters}
    return (await client.get("/v1/actions", params=params)).json()["items"]


async def test_abandoned_cart_email_arrives_with_the_cart_after_the_delay(pipeline, mailbox):
    box, _port = mailbox
    async with pipeline(cart_delay="1s") as (client, _rt):
        started = time.monotonic()
        await post(
            client,
            {
                "type": "checkout_started",
                "lead": {"email": "ada@buyer.example", "first_name": "Ada"},
                "properties": {"cart": CART},
            },
        )
        await wait_until(lambda: box.to("ada@buyer.example"))
        assert time.monotonic() - started >= 1.0, "the email went out before the delay"
        [message] = box.to("ada@buyer.example")
        text, html = body_of(message)
        for part in (text, html):
            assert "Trail shoes" in part and "Running socks" in part
            assert "149.5" in part and CART["checkout_url"] in part
        assert message["List-Unsubscribe"].startswith("<http://leadflow.test/v1/unsubscribe/")
        lead = await lead_of(client, "ada@buyer.example")
        [action] = await actions_of(client, lead["id"], kind="email")
        assert action["status"] == "sent" and action["playbook"] == "abandoned_cart"


async def test_no_cart_email_when_the_order_was_processed_before_the_cart(pipeline, mailbox):
    box, _port = mailbox
    async with pipeline(cart_delay="1s") as (client, _rt):
        email = "bo@buyer.example"
        # The order arrives first; the cart event (which happened before it) arrives late.
        await post(
            client,
            {"type": "order_completed", "lead": {"email": email}, "properties": {"cart": CART}},
        )
        await lead_of(client, email, lambda x: x["qualification"] == "customer")
        await post(
            client,
            {
                "type": "cart_add",
                "occurred_at": ago(60),
                "lead": {"email": email},
                "properties": {"cart": CART},
            },
        )
        lead = await lead_of(client, email)
        await asyncio.sleep(2.5)
        assert box.to(email) == []
        assert [a for a in await actions_of(client, lead["id"], kind="email")] == []


async def test_cart_email_is_cancelled_when_the_order_comes_within_the_delay(pipeline, mailbox):
    box, _port = mailbox
    async with pipeline(cart_delay="2s") as (client, _rt):
        email = "cy@buyer.example"
        await post(
            client, {"type": "cart_add", "lead": {"email": email}, "properties": {"cart": CART}}
        )
        lead = await lead_of(client, email)
        await wait_until(lambda: actions_of(client, lead["id"], kind="email"))
        await post(
            client,
            {"type": "order_completed", "lead": {"email": email}, "properties": {"cart": CART}},
        )
        await asyncio.sleep(3.0)
        assert box.to(email) == []
        [action] = await actions_of(client, lead["id"], kind="email")
        assert action["status"] == "cancelled" and action["cancel_reason"].startswith("ordered")


async def test_carts_of_one_lead_merge_into_one_email(pipeline, mailbox):
    box, _port = mailbox
    async with pipeline(cart_delay="1.5s") as (client, _rt):
        email = "di@buyer.example"
        other = {
            **CART,
            "id": "cart-78",
            "items": [{"title": "Headlamp", "quantity": 1, "price": 30.0}],
        }
        await post(
            client,
            {"type": "cart_add", "lead": {"email": email}, "properties": {"cart": CART}},
            {"type": "cart_add", "lead": {"email": email}, "properties": {"cart": other}},
        )
        await wait_until(lambda: box.to(email))
        await asyncio.sleep(1.5)
        assert len(box.to(email)) == 1
        lead = await lead_of(client, email)
        [action] = await actions_of(client, lead["id"], kind="email")
        assert sorted(action["payload"]["cart_ids"]) == ["cart-77", "cart-78"]


async def test_frequency_cap_defers_the_second_marketing_email(pipeline, mailbox):
    box, _port = mailbox
    async with pipeline(cart_delay="1s", trial_delay="1s", cap="1h") as (client, _rt):
        email = "eve@buyer.example"
        await post(
            client,
            {"type": "cart_add", "lead": {"email": email}, "properties": {"cart": CART}},
            {"type": "trial_started", "lead": {"email": email}},
        )
        lead = await lead_of(client, email)

        async def settled():
            emails = await actions_of(client, lead["id"], kind="email")
            return (
                emails
                if len(emails) == 2 and {a["status"] for a in emails} == {"sent", "scheduled"}
                else None
            )

        emails = await wait_until(settled)
        deferred = next(a for a in emails if a["status"] == "scheduled")
        sent = next(a for a in emails if a["status"] == "sent")
        assert deferred["deferrals"] >= 1
        due = datetime.fromisoformat(deferred["due_at"])
        assert due >= datetime.fromisoformat(sent["sent_at"]) + timedelta(minutes=59)
        assert len(box.to(email)) == 1


async def test_unsubscribed_lead_gets_no_marketing_email(pipeline, mailbox):
    box, _port = mailbox
    async with pipeline(cart_delay="1s") as (client, _rt):
        email = "fay@buyer.example"
        await post(client, {"type": "unsubscribe", "lead": {"email": email}})
        await lead_of(client, email)
        await post(
            client, {"type": "cart_add", "lead": {"email": email}, "properties": {"cart": CART}}
        )
        lead = await lead_of(client, email)

        async def cancelled():
            emails = await actions_of(client, lead["id"], kind="email")
            return emails and emails[0]["status"] == "cancelled" and emails

        [action] = await wait_until(cancelled)
        assert action["cancel_reason"] == "unsubscribed"
        assert box.to(email) == []


async def test_unsubscribe_link_stops_marketing_email(pipeline, mailbox):
    box, _port = mailbox
    async with pipeline(cart_delay="1s") as (client, runtime):
        email = "gus@buyer.example"
        await post(client, {"type": "page_view", "lead": {"email": email}})
        lead = await lead_of(client, email)
        secret = runtime.settings.secret_key.get_secret_value()
        token = unsubscribe_token(secret=secret, lead_id=lead["id"])
        assert (await client.get(f"/v1/unsubscribe/{token}x")).status_code == 404
        assert (await client.post(f"/v1/unsubscribe/{token}")).status_code == 200
        await post(
            client, {"type": "cart_add", "lead": {"email": email}, "properties": {"cart": CART}}
        )
        await asyncio.sleep(2.5)
        assert box.to(email) == []


async def test_sql_lead_fires_a_signed_sales_alert_and_round_robin_skips_the_away(
    pipeline, receiver
):
    async with pipeline() as (client, _rt):
        marked = await client.patch(
            "/v1/teams/sales/members/ben@seller.example", json={"away": True}
        )
        assert marked.status_code == 200
        owners = []
        for name in ("h1", "h2", "h3"):
            email = f"{name}@corp.example"
            await post(
                client,
                {
                    "type": "demo_requested",
                    "lead": {
                        "email": email,
                        "job_title": "VP Operations",
                        "company": {"domain": "corp.example", "employees": 400},
                    },
                    "properties": {"budget": "50-100k", "timeframe": "this quarter"},
                },
            )
            lead = await lead_of(client, email, lambda x: x["owner"] and x["owner"]["member"])
            owners.append(lead["owner"]["member"])
        assert owners == ["ana@seller.example", "cai@seller.example", "ana@seller.example"]

        await wait_until(lambda: len(receiver.requests) >= 3)
        path, headers, body = receiver.requests[0]
        assert path == "/alerts/sales"
        assert verify(
            secret=WEBHOOK_SECRET,
            msg_id=headers["webhook-id"],
            timestamp=int(headers["webhook-timestamp"]),
            body=body,
            header=headers["webhook-signature"],
            now=int(time.time()),
        )
        assert json_body(body)["qualification"] == "sql"
        ids = [h["webhook-id"] for _p, h, _b in receiver.requests]
        assert len(ids) == len(set(ids))


async def test_sla_breach_reassigns_the_lead_and_is_counted(pipeline):
    async with pipeline(sla="1s") as (client, _rt):
        email = "ivy@corp.example"
        await post(
            client,
            {
                "type": "demo_requested",
                "lead": {"email": email, "job_title": "CTO"},
                "properties": {"budget": "100k+", "timeframe": "this month"},
            },
        )
        first = await lead_of(client, email, lambda x: x["owner"] and x["owner"]["member"])
        moved = await lead_of(
            client, email, lambda x: x["owner"]["member"] != first["owner"]["member"]
        )
        assert moved["owner"]["team"] == "sales"
        teams = {t["team"]: t for t in (await client.get("/v1/teams")).json()["items"]}
        assert teams["sales"]["sla_breaches"] >= 1


async def test_contact_feedback_meets_the_sla(pipeline):
    async with pipeline(sla="2s") as (client, _rt):
        email = "jay@corp.example"
        await post(
            client,
            {
                "type": "demo_requested",
                "lead": {"email": email, "job_title": "CTO"},
                "properties": {"budget": "100k+", "timeframe": "this month"},
            },
        )
        lead = await lead_of(client, email, lambda x: x["owner"] and x["owner"]["member"])
        response = await client.post(f"/v1/leads/{lead['id']}/feedback", json={"type": "contacted"})
        assert response.status_code == 202
        await asyncio.sleep(3.0)
        again = await lead_of(client, email)
        assert again["owner"] == lead["owner"]
        queue = (await client.get("/v1/teams/sales/queue")).json()["items"]
        mine = next(q for q in queue if q["lead_id"] == lead["id"])
        assert mine["contacted_at"] and not mine["sla_breached"]


async def test_disqualified_feedback_reaches_scoring_and_changes_the_owner(pipeline):
    async with pipeline() as (client, _rt):
        email = "kai@corp.example"
        await post(
            client,
            {
                "type": "demo_requested",
                "lead": {"email": email, "job_title": "CTO"},
                "properties": {"budget": "100k+", "timeframe": "this month"},
            },
        )
        lead = await lead_of(client, email, lambda x: x["qualification"] == "sql" and x["owner"])
        bad = await client.post(f"/v1/leads/{lead['id']}/feedback", json={"type": "rejected"})
        assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "reason"
        response = await client.post(
            f"/v1/leads/{lead['id']}/feedback", json={"type": "disqualified", "reason": "no budget"}
        )
        assert response.status_code == 202
        done = await lead_of(client, email, lambda x: x["qualification"] == "disqualified")
        await lead_of(client, email, lambda x: x["owner"]["team"] == "marketing")
        assert done["qualification_reason"].startswith("disqualified: sales_disqualified")


async def test_actions_can_be_listed_and_cancelled(pipeline, mailbox):
    box, _port = mailbox
    async with pipeline(cart_delay="3s") as (client, _rt):
        email = "lu@buyer.example"
        await post(
            client, {"type": "cart_add", "lead": {"email": email}, "properties": {"cart": CART}}
        )
        lead = await lead_of(client, email)
        [action] = await wait_until(lambda: actions_of(client, lead["id"], kind="email"))
        cancelled = await client.post(f"/v1/actions/{action['id']}/cancel")
        assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
        again = await client.post(f"/v1/actions/{action['id']}/cancel")
        assert again.status_code == 409
        assert (await client.post("/v1/actions/nope/cancel")).status_code == 404
        await asyncio.sleep(3.5)
        assert box.to(email) == []


async def test_a_cart_added_before_identify_is_emailed_once_the_email_is_known(pipeline, mailbox):
    box, _port = mailbox
    async with pipeline(cart_delay="1s") as (client, _rt):
        browser, email = "ajs-before-identify", "cy@buyer.example"
        # Segment's "Product Added" from an anonymous browser, then `identify` on it.
        await post(
            client,
            {"type": "cart_add", "lead": {"anonymous_id": browser}, "properties": {"cart": CART}},
        )
        await asyncio.sleep(0.5)
        await post(client, {"type": "page_view", "lead": {"anonymous_id": browser, "email": email}})
        await wait_until(lambda: box.to(email))
        [message] = box.to(email)
        text, _html = body_of(message)
        assert "Trail shoes" in text and CART["checkout_url"] in text
        # More touches later: still one email for that cart.
        await post(client, {"type": "page_view", "lead": {"email": email}})
        lead = await lead_of(client, email)
        await asyncio.sleep(2.0)
        assert len(box.to(email)) == 1
        [action] = await actions_of(client, lead["id"], kind="email")
        assert action["playbook"] == "abandoned_cart" and action["status"] == "sent"
