"""Kill the routing process in the middle of a batch of due emails, restart it: every email
goes out at most once, and only one whose send was under way can be left uncertain."""

from __future__ import annotations

import re
import signal
import subprocess
import time
import uuid
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import select

from leadflow.embedded import free_port
from leadflow.runtime import Runtime
from services.routing import repository as routing_repo
from shared.events import utcnow
from tests.conftest import make_key
from tests.e2e.test_leadflow_up import LEADFLOW, clean_env
from tests.integration.routing.conftest import mailbox  # noqa: F401 (the SMTP fixture)

pytestmark = pytest.mark.e2e

COUNT = 6


def env_for(settings, smtp_port: int) -> dict[str, str]:
    return clean_env(
        LEADFLOW_DATABASE_URL=settings.database_url,
        LEADFLOW_KAFKA_BOOTSTRAP_SERVERS=settings.kafka_bootstrap_servers,
        LEADFLOW_KAFKA_SESSION_TIMEOUT_MS=str(settings.kafka_session_timeout_ms),
        LEADFLOW_TOPIC_TOUCH_EVENTS=settings.topic_touch_events,
        LEADFLOW_TOPIC_LEAD_CHANGES=settings.topic_lead_changes,
        LEADFLOW_TOPIC_ACTIONS=settings.topic_actions,
        LEADFLOW_GROUP_ROUTING=settings.group_routing,
        LEADFLOW_GROUP_SCORING=settings.group_scoring,
        LEADFLOW_SMTP_HOST="127.0.0.1",
        LEADFLOW_SMTP_PORT=str(smtp_port),
        LEADFLOW_ACTIONS_POLL_INTERVAL_S="0.2",
        LEADFLOW_ACTIONS_CLAIM_TIMEOUT_S="1",
        LEADFLOW_ACTIONS_BATCH_SIZE="50",
    )


def statuses(runtime_sessions) -> dict[str, str]:
    with runtime_sessions() as session:
        rows = session.execute(
            select(routing_repo.actions.c.idempotency_key, routing_repo.actions.c.status)
        )
        return {key: status for key, status in rows if key.startswith("crash:")}


async def test_killed_routing_sends_no_email_twice_after_restart(
    settings,
    mailbox,  # noqa: F811 - the fixture imported above
    tmp_path,
):
    box, smtp_port = mailbox
    box.delay_s = 0.6  # slow enough to kill the worker with sends still to do
    seeding = Runtime(settings=settings, services=("ingest", "scoring"))
    app = seeding.start()
    try:
        assert seeding.wait_until_assigned(timeout_s=30)
        headers = {"Authorization": f"Bearer {make_key(seeding, 'admin')}"}
        transport = httpx.ASGITransport(app=app)
        emails = [f"crash{i}@buyer.example" for i in range(COUNT)]
        async with httpx.AsyncClient(
            transport=transport, base_url="http://t", headers=headers
        ) as c:
            events = [{"type": "page_view", "lead": {"email": e}} for e in emails]
            assert (await c.post("/v1/events/batch", json=events)).status_code == 202
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                leads = (await c.get("/v1/leads", params={"limit": 100})).json()["items"]
                if len(leads) == COUNT:
                    break
                time.sleep(0.1)
        now = utcnow() - timedelta(seconds=1)
        with seeding.resources.sessions.begin() as session:
            for lead in leads:
                routing_repo.insert_action(
                    session,
                    values={
                        "id": str(uuid.uuid4()),
                        "lead_id": lead["id"],
                        "kind": "email",
                        "playbook": "event_followup",
                        "idempotency_key": f"crash:{lead['id']}",
                        "status": "scheduled",
                        "due_at": now,
                        "attempts": 0,
                        "deferrals": 0,
                        "marketing": False,
                        "payload": {"template": "event_followup"},
                        "created_at": now,
                        "updated_at": now,
                    },
                )
        sessions = seeding.resources.sessions

        def start() -> subprocess.Popen:
            return subprocess.Popen(
                [LEADFLOW, "routing", "--port", str(free_port())],
                env=env_for(settings, smtp_port),
                cwd=tmp_path,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )

        first = start()
        box.wait_for(2, timeout_s=30)
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        killed_at = len(box.messages)
        assert killed_at < COUNT, "the worker finished before it could be killed"

        second = start()
        try:
            deadline = time.monotonic() + 40
            while time.monotonic() < deadline:
                if set(statuses(sessions).values()) <= {"sent", "uncertain"}:
                    break
                time.sleep(0.2)
        finally:
            second.send_signal(signal.SIGTERM)
            second.wait(15)
        final = statuses(sessions)
        assert set(final.values()) <= {"sent", "uncertain"}, final
        assert list(final.values()).count("uncertain") <= 1
        received = [m["Message-ID"] for m in box.messages]
        assert len(received) == len(set(received)), "an email went out twice"
        sent_keys = {k for k, s in final.items() if s == "sent"}

        def plain(text: str) -> str:
            return re.sub(r"[^A-Za-z0-9]", "", text)

        got = {plain(mid.strip("<>").split("@")[0]) for mid in received}
        assert {plain(k) for k in sent_keys} <= got, "a recorded email never arrived"
    finally:
        seeding.stop()
