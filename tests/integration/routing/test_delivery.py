"""Delivering follow-up actions end to end: SMTP retries and failures, event follow-ups, the
second cart reminder, stage-regression alerts, team availability and a missing webhook secret."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from tests.integration.routing.conftest import CONFIG, body_of, wait_until

pytestmark = pytest.mark.integration

CART = {
    "id": "cart-91",
    "value": 89.0,
    "currency": "EUR",
    "checkout_url": "https://shop.example/checkout/cart-91",
    "items": [{"title": "Rain jacket", "quantity": 1, "price": 89.0}],
}
WEBINAR = {"name": "Pipeline Clinic", "topic": "forecasting renewals"}
SQL_LEAD = {"job_title": "CTO"}
SQL_ANSWERS = {"budget": "100k+", "timeframe": "this month"}


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
    response = await client.get("/v1/actions", params=params)
    assert response.status_code == 200, response.text
    return response.json()["items"]


async def settled(client, lead_id: str, *, kind: str, status: str, count: int = 1):
    """Wait until the lead has `count` actions of the kind, all with the status."""

    async def check():
        found = await actions_of(client, lead_id, kind=kind)
        return found if len(found) == count and all(a["status"] == status for a in found) else None

    return await wait_until(check, timeout_s=20)


def refuse_recipients(box, *, reply: str, times: int | None = None) -> list[str]:
    """Make the SMTP server answer RCPT TO with `reply` (the first `times` times, or always);
    returns the list of refused recipients, which grows with every refusal."""
    refused: list[str] = []

    async def handle_RCPT(server, session, envelope, address, rcpt_options):
        if times is None or len(refused) < times:
            refused.append(address)
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    # aiosmtpd collects the handler's hooks for every new connection, instance attributes too.
    box.handle_RCPT = handle_RCPT
    return refused


def config_file(
    tmp_path: Path,
    *,
    receiver: str,
    cart_extra: str = "",
    extra: str = "",
    cap: str = "16h",
    cart_delay: str = "1s",
) -> str:
    """The test routing config with additions, written next to the pipeline's own."""
    marker = 'delay_s = "{cart_delay}"\n'
    assert marker in CONFIG
    text = CONFIG.replace(marker, marker + cart_extra + "\n", 1) + extra
    path = tmp_path / "routing-extended.toml"
    path.write_text(
        text.format(receiver=receiver, sla="4h", cap=cap, cart_delay=cart_delay, trial_delay="3d")
    )
    return str(path)


# --- SMTP failures ----------------------------------------------------------------------------


async def test_temporary_smtp_failure_is_retried_with_backoff_then_delivered(pipeline, mailbox):
    box, _port = mailbox
    refused = refuse_recipients(box, reply="451 4.3.0 try later", times=1)
    async with pipeline(cart_delay="1s") as (client, _rt):
        email = "mo@buyer.example"
        await post(
            client, {"type": "cart_add", "lead": {"email": email}, "properties": {"cart": CART}}
        )
        lead = await lead_of(client, email)
        [action] = await settled(client, lead["id"], kind="email", status="sent")
        assert refused == [email]
        assert action["attempts"] >= 2
        assert action["last_error"] is None
        await asyncio.sleep(1.0)
        assert len(box.to(email)) == 1
        assert len(box.messages) == 1


async def test_permanent_smtp_failure_is_recorded_and_not_retried(pipeline, mailbox):
    box, _port = mailbox
    refused = refuse_recipients(box, reply="550 5.1.1 no such user")
    async with pipeline(cart_delay="1s") as (client, _rt):
        email = "nia@buyer.example"
        await post(
            client, {"type": "cart_add", "lead": {"email": email}, "properties": {"cart": CART}}
        )
        lead = await lead_of(client, email)
        [action] = await settled(client, lead["id"], kind="email", status="failed")
        assert action["attempts"] == 1
        assert "550" in action["last_error"] and email in action["last_error"]
        await asyncio.sleep(1.5)  # several retry periods: nothing more happens
        [again] = await actions_of(client, lead["id"], kind="email")
        assert again["status"] == "failed" and again["attempts"] == 1
        assert refused == [email]
        failed = await client.get("/v1/actions", params={"status": "failed"})
        assert [a["id"] for a in failed.json()["items"]] == [action["id"]]
        assert box.messages == []


async def test_retries_stop_at_the_maximum_attempts(pipeline, mailbox):
    box, _port = mailbox
    refused = refuse_recipients(box, reply="451 4.3.0 try later")
    async with pipeline(cart_delay="1s", actions_max_attempts=3) as (client, _rt):
        email = "oz@buyer.example"
        await post(
            client, {"type": "cart_add", "lead": {"email": email}, "properties": {"cart": CART}}
        )
        lead = await lead_of(client, email)
        [action] = await settled(client, lead["id"], kind="email", status="failed")
        assert action["attempts"] == 3
        assert "451" in action["last_error"]
        await asyncio.sleep(1.5)
        [again] = await actions_of(client, lead["id"], kind="email")
        assert again["status"] == "failed" and again["attempts"] == 3
        assert refused == [email] * 3
        assert box.messages == []


# --- playbooks --------------------------------------------------------------------------------


async def test_webinar_attendees_get_a_follow_up_email_and_qualified_ones_a_task(
    pipeline, mailbox, receiver, tmp_path
):
    box, _port = mailbox
    routing_config = config_file(
        tmp_path, receiver=receiver.url, extra='\n[playbooks.event_followup]\ndelay_s = "1s"\n'
    )
    async with pipeline(routing_config=routing_config) as (client, _rt):
        hot, cold = "pat@corp.example", "quin@corp.example"
        await post(
            client,
            {
                "type": "demo_requested",
                "lead": {"email": hot, **SQL_LEAD},
                "properties": SQL_ANSWERS,
            },
        )
        await lead_of(client, hot, lambda x: x["qualification"] == "sql")
        await post(
            client,
            {
                "type": "webinar_attended",
                "lead": {"email": hot, "first_name": "Pat"},
                "properties": WEBINAR,
            },
            {"type": "webinar_attended", "lead": {"email": cold}, "properties": WEBINAR},
        )
        await wait_until(lambda: box.to(hot) and box.to(cold), timeout_s=20)
        for address in (hot, cold):
            [message] = box.to(address)
            assert "Pipeline Clinic" in message["Subject"]
            text, html = body_of(message)
            assert "forecasting renewals" in text and "forecasting renewals" in html

        hot_lead = await lead_of(client, hot)
        [task] = await settled(client, hot_lead["id"], kind="task", status="open")
        assert task["playbook"] == "event_task"
        assert task["payload"]["webinar"]["topic"] == "forecasting renewals"
        [followup] = await settled(client, hot_lead["id"], kind="email", status="sent")
        assert followup["playbook"] == "event_followup"

        cold_lead = await lead_of(client, cold)
        assert cold_lead["qualification"] == "unqualified"
        [followup] = await settled(client, cold_lead["id"], kind="email", status="sent")
        assert followup["playbook"] == "event_followup"
        assert await actions_of(client, cold_lead["id"], kind="task") == []


async def test_second_cart_reminder_goes_out_after_the_first_email(
    pipeline, mailbox, receiver, tmp_path
):
    box, _port = mailbox
    routing_config = config_file(
        tmp_path, receiver=receiver.url, cap="0s", cart_extra='second_reminder_after_s = "1s"'
    )
    async with pipeline(routing_config=routing_config) as (client, _rt):
        email = "rae@buyer.example"
        await post(
            client,
            {
                "type": "cart_add",
                "lead": {"email": email, "first_name": "Rae"},
                "properties": {"cart": CART},
            },
        )
        await wait_until(lambda: len(box.to(email)) >= 2, timeout_s=20)
        first, second = box.to(email)
        assert first["Subject"] == "Rae, you left something in your cart"
        assert second["Subject"] == "Your cart is still waiting, Rae"
        text, _html = body_of(second)
        assert "Rain jacket" in text and CART["checkout_url"] in text
        lead = await lead_of(client, email)
        emails = await settled(client, lead["id"], kind="email", status="sent", count=2)
        assert sorted(a["playbook"] for a in emails) == ["abandoned_cart", "cart_reminder"]
        await asyncio.sleep(1.5)
        assert len(box.to(email)) == 2, "only one reminder is sent"


async def test_an_order_after_the_first_cart_email_cancels_the_reminder(
    pipeline, mailbox, receiver, tmp_path
):
    box, _port = mailbox
    routing_config = config_file(
        tmp_path, receiver=receiver.url, cap="0s", cart_extra='second_reminder_after_s = "3s"'
    )
    async with pipeline(routing_config=routing_config) as (client, _rt):
        email = "sol@buyer.example"
        await post(
            client, {"type": "cart_add", "lead": {"email": email}, "properties": {"cart": CART}}
        )
        await wait_until(lambda: box.to(email))
        lead = await lead_of(client, email)

        async def reminder_planned():
            emails = {a["playbook"]: a for a in await actions_of(client, lead["id"], kind="email")}
            first, reminder = emails.get("abandoned_cart"), emails.get("cart_reminder")
            return first and first["status"] == "sent" and reminder

        reminder = await wait_until(reminder_planned)
        assert reminder["status"] == "scheduled"
        await post(
            client,
            {"type": "order_completed", "lead": {"email": email}, "properties": {"cart": CART}},
        )
        await lead_of(client, email, lambda x: x["qualification"] == "customer")
        await asyncio.sleep(4.0)
        assert len(box.to(email)) == 1
        emails = await actions_of(client, lead["id"], kind="email")
        reminder = next(a for a in emails if a["playbook"] == "cart_reminder")
        assert reminder["status"] == "cancelled"
        assert reminder["cancel_reason"].startswith("ordered")


async def test_a_lead_falling_back_from_intent_gets_a_stage_regression_task(pipeline):
    async with pipeline() as (client, _rt):
        email = "tam@corp.example"
        await post(client, {"type": "pricing_viewed", "lead": {"email": email}})
        lead = await lead_of(client, email, lambda x: x["funnel_stage"] == "intent")
        assert await actions_of(client, lead["id"], kind="task") == []
        await post(client, {"type": "committee_rejected", "lead": {"email": email}})
        await lead_of(client, email, lambda x: x["funnel_stage"] == "consideration")
        [task] = await settled(client, lead["id"], kind="task", status="open")
        assert task["playbook"] == "stage_regression"
        assert task["payload"]["funnel"] == ["intent", "consideration"]


# --- teams ------------------------------------------------------------------------------------


async def test_teams_list_members_and_a_past_away_until_makes_the_member_available(pipeline):
    async with pipeline() as (client, _rt):
        response = await client.get("/v1/teams")
        assert response.status_code == 200
        teams = {t["team"]: t for t in response.json()["items"]}
        assert set(teams) == {"marketing", "sales", "sdr"}
        members = {m["id"]: m for m in teams["sales"]["members"]}
        assert list(members) == ["ana@seller.example", "ben@seller.example", "cai@seller.example"]
        for member in members.values():
            assert member["capacity"] == 50
            assert member["open_leads"] == 0
            assert member["away"] is False

        url = "/v1/teams/sales/members/ana@seller.example"
        later = (datetime.now(UTC) + timedelta(hours=2)).isoformat()
        away = await client.patch(url, json={"away": True, "until": later})
        assert away.status_code == 200
        ana = next(m for m in away.json()["members"] if m["id"] == "ana@seller.example")
        assert ana["away"] is True and ana["away_until"] is not None

        earlier = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
        back = await client.patch(url, json={"away": True, "until": earlier})
        assert back.status_code == 200
        ana = next(m for m in back.json()["members"] if m["id"] == "ana@seller.example")
        assert ana["away"] is False and ana["away_until"] is None

        # The member is given leads again: the first SQL lead goes to ana.
        await post(
            client,
            {
                "type": "demo_requested",
                "lead": {"email": "uma@corp.example", **SQL_LEAD},
                "properties": SQL_ANSWERS,
            },
        )
        lead = await lead_of(
            client, "uma@corp.example", lambda x: x["owner"] and x["owner"]["member"]
        )
        assert lead["owner"]["team"] == "sales"
        assert lead["owner"]["member"] == "ana@seller.example"
        teams = {t["team"]: t for t in (await client.get("/v1/teams")).json()["items"]}
        members = {m["id"]: m for m in teams["sales"]["members"]}
        assert members["ana@seller.example"]["open_leads"] == 1

        unknown = await client.patch(
            "/v1/teams/sales/members/zed@seller.example", json={"away": True}
        )
        assert unknown.status_code == 404
        wrong_team = await client.patch(
            "/v1/teams/sdr/members/ana@seller.example", json={"away": True}
        )
        assert wrong_team.status_code == 404
        assert (await client.get("/v1/teams/nope/queue")).status_code == 404


async def test_a_past_away_until_in_another_time_zone_makes_the_member_available(pipeline):
    async with pipeline() as (client, _rt):
        # One hour ago, written as a local time nine hours ahead of UTC.
        earlier = datetime.now(UTC) - timedelta(hours=1)
        local = earlier.astimezone(timezone(timedelta(hours=9))).isoformat()
        response = await client.patch(
            "/v1/teams/sales/members/ana@seller.example", json={"away": True, "until": local}
        )
        assert response.status_code == 200
        ana = next(m for m in response.json()["members"] if m["id"] == "ana@seller.example")
        assert ana["away"] is False, ana


# --- webhooks ---------------------------------------------------------------------------------


async def test_sales_alert_fails_when_the_webhook_secret_is_missing(pipeline, receiver):
    async with pipeline(webhook_secret=None) as (client, _rt):
        email = "vi@corp.example"
        await post(
            client,
            {
                "type": "demo_requested",
                "lead": {"email": email, **SQL_LEAD},
                "properties": SQL_ANSWERS,
            },
        )
        lead = await lead_of(client, email, lambda x: x["qualification"] == "sql")
        [alert] = await settled(client, lead["id"], kind="webhook", status="failed")
        assert alert["playbook"] == "sales_alert"
        assert "LEADFLOW_WEBHOOK_SECRET" in alert["last_error"]
        assert alert["attempts"] == 1
        assert receiver.requests == []
