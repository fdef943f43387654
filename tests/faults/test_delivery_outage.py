"""The SMTP server and the webhook receiver down for a minute: the follow-ups wait, without
using up their attempts, and each goes out once when they are back."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from leadflow.runtime import Runtime
from services.routing.repository import actions
from shared.config import Settings
from shared.db import make_engine
from tests.conftest import make_key
from tests.faults.conftest import eventually
from tests.faults.proxy import CutProxy
from tests.integration.routing.conftest import Mailbox, Receiver, routing_settings

pytestmark = pytest.mark.integration

DOWN_S = 60
CARTS = 8
HOT_LEADS = 4
CART = {"id": "cart-7", "value": 40.0, "items": [{"title": "Boots", "quantity": 1}]}
SQL_LEAD = {"job_title": "CTO"}
SQL_ANSWERS = {"budget": "100k+", "timeframe": "this month"}


def _events() -> list[dict[str, object]]:
    carts = [
        {"type": "cart_add", "lead": {"email": f"c{n}@buyer.example"}, "properties": {"cart": CART}}
        for n in range(CARTS)
    ]
    hot = [
        {
            "type": "demo_requested",
            "lead": {"email": f"hot{n}@corp{n}.example", **SQL_LEAD},
            "properties": SQL_ANSWERS,
        }
        for n in range(HOT_LEADS)
    ]
    return carts + hot


def _actions(database_url: str) -> list[tuple[str, str, int]]:
    """(kind, status, attempts) of every email and webhook action."""
    engine = make_engine(database_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                select(actions.c.kind, actions.c.status, actions.c.attempts).where(
                    actions.c.kind.in_(["email", "webhook"])
                )
            ).all()
    finally:
        engine.dispose()
    return [tuple(r) for r in rows]  # type: ignore[misc]


async def _post(runtime: Runtime, events: list[dict[str, object]]) -> None:
    assert runtime.app is not None
    headers = {"Authorization": f"Bearer {make_key(runtime, 'events:write')}"}
    transport = httpx.ASGITransport(app=runtime.app)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://leadflow.test", headers=headers
    ) as client:
        response = await client.post("/v1/events/batch", json=events)
        assert response.status_code == 202, response.text


def test_follow_ups_wait_out_a_minute_without_smtp_and_webhooks_and_go_out_once(
    settings: Settings,
    tmp_path: Path,
    mailbox: tuple[Mailbox, int],
    receiver: Receiver,
):
    box, smtp_port = mailbox
    receiver_port = int(receiver.url.rsplit(":", 1)[1])
    with (
        CutProxy("127.0.0.1", smtp_port) as smtp,
        CutProxy("127.0.0.1", receiver_port) as hooks,
    ):
        own = routing_settings(
            settings,
            tmp_path,
            smtp_port=smtp.port,
            receiver_url=f"http://127.0.0.1:{hooks.port}",
            cart_delay="1s",
            # Were an outage counted as attempts, three would be used up within seconds.
            actions_max_attempts=3,
            actions_retry_base_s=0.2,
            outage_backoff_max_s=5.0,
        )
        smtp.cut()
        hooks.cut()
        runtime = Runtime(settings=own, services=("ingest", "scoring", "routing"))
        runtime.start()
        try:
            assert runtime.wait_until_assigned(timeout_s=30)
            cut_at = time.monotonic()
            asyncio.run(_post(runtime, _events()))
            eventually(
                lambda: (
                    Counter(k for k, _, _ in _actions(own.database_url))
                    == Counter({"email": CARTS, "webhook": HOT_LEADS})
                ),
                timeout_s=30,
                what="every follow-up planned",
            )
            time.sleep(max(0.0, DOWN_S - (time.monotonic() - cut_at)))
            during = _actions(own.database_url)
            assert runtime.resources is not None
            waiting = {o.worker: o.attempts for o in runtime.resources.outages if o.active}
            smtp.restore()
            hooks.restore()
            eventually(
                lambda: all(s == "sent" for _, s, _ in _actions(own.database_url)),
                timeout_s=30,
                what="every follow-up sent after the outage",
            )
            time.sleep(2.0)  # several more delivery passes: nothing goes out again
            after = _actions(own.database_url)
        finally:
            runtime.stop(timeout_s=3)

    assert {s for _, s, _ in during} == {"scheduled"}, "waiting, not failed, during the outage"
    assert all(attempts == 0 for _, _, attempts in during), "the outage used no attempt"
    assert set(waiting) == {
        "action delivery (smtp)",
        f"action delivery (webhook 127.0.0.1:{hooks.port})",
    }
    assert min(waiting.values()) >= 3, "delivery was tried again and again during the outage"
    assert [(k, s, a) for k, s, a in after if (s, a) != ("sent", 1)] == []
    message_ids = Counter(m["Message-ID"] for m in box.messages)
    assert len(message_ids) == CARTS and set(message_ids.values()) == {1}, "one email per cart"
    webhook_ids = Counter(headers.get("webhook-id") for _, headers, _ in receiver.requests)
    assert len(webhook_ids) == HOT_LEADS and set(webhook_ids.values()) == {1}
