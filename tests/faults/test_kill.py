"""`kill -9` of scoring and of routing at five random moments each while 2,000 events arrive,
each restarted at once: every touch stored once, every lead assigned once, no email sent twice,
nothing dead-lettered."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import time
import uuid
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select

from leadflow.embedded import free_port
from services.routing.repository import actions, assignments
from services.scoring.repository import touches
from shared.config import Settings
from shared.db import make_engine
from shared.events import TouchEnvelope, TouchEventIn
from shared.kafka import AsyncProducer, ensure_topics
from tests.e2e.test_leadflow_up import LEADFLOW, clean_env
from tests.faults.conftest import group_lag, records_in
from tests.integration.routing.conftest import Mailbox, routing_settings

pytestmark = pytest.mark.integration

EVENTS = 2_000
CARTS = 200  # every tenth lead adds to a cart: one abandoned-cart email each
WAVES = 40  # published over ~20 s
KILLS = 5  # of each service
CART = {"id": "cart-1", "value": 30.0, "items": [{"title": "Hat", "quantity": 1}]}


def _records(tag: str) -> list[tuple[bytes, bytes]]:
    now = datetime.now(UTC)
    out = []
    for n in range(EVENTS):
        email = f"k{n}-{tag}@buyer{n % 50}.example"
        cart = n % (EVENTS // CARTS) == 0
        event = TouchEventIn.model_validate(
            {
                "type": "cart_add" if cart else "page_view",
                "event_id": f"{tag}-{n}",
                "lead": {"email": email},
                "properties": {"cart": CART} if cart else {},
            }
        )
        out.append((email.encode(), TouchEnvelope.from_native(event, received_at=now).to_bytes()))
    return out


def _env(settings: Settings) -> dict[str, str]:
    return clean_env(
        LEADFLOW_DATABASE_URL=settings.database_url,
        LEADFLOW_KAFKA_BOOTSTRAP_SERVERS=settings.kafka_bootstrap_servers or "",
        # Out of process nothing starves the heartbeat: a short session, so the group drops
        # a killed member quickly.
        LEADFLOW_KAFKA_SESSION_TIMEOUT_MS="3000",
        LEADFLOW_TOPIC_TOUCH_EVENTS=settings.topic_touch_events,
        LEADFLOW_TOPIC_LEAD_CHANGES=settings.topic_lead_changes,
        LEADFLOW_TOPIC_ACTIONS=settings.topic_actions,
        LEADFLOW_GROUP_ROUTING=settings.group_routing,
        LEADFLOW_GROUP_SCORING=settings.group_scoring,
        LEADFLOW_ROUTING_CONFIG=settings.routing_config,
        LEADFLOW_SMTP_HOST="127.0.0.1",
        LEADFLOW_SMTP_PORT=str(settings.smtp_port),
        LEADFLOW_ACTIONS_POLL_INTERVAL_S="0.2",
        LEADFLOW_ACTIONS_RETRY_BASE_S="0.2",
        LEADFLOW_ACTIONS_CLAIM_TIMEOUT_S="2",
        LEADFLOW_CONSUMER_RETRY_BACKOFF_S="0.05",
        LEADFLOW_CONSUMER_POLL_TIMEOUT_MS="200",
        LEADFLOW_LOG_LEVEL="WARNING",
    )


class Services:
    """scoring and routing as their own processes, killed and restarted on demand."""

    def __init__(self, env: dict[str, str], cwd: Path) -> None:
        self.env, self.cwd = env, cwd
        self.running: dict[str, subprocess.Popen[bytes]] = {}
        self.logs = {name: open(cwd / f"{name}.log", "ab") for name in ("scoring", "routing")}  # noqa: SIM115
        self.kills: Counter[str] = Counter()

    def start(self, name: str) -> None:
        self.running[name] = subprocess.Popen(
            [LEADFLOW, name, "--port", str(free_port())],
            env=self.env,
            cwd=self.cwd,
            stdout=self.logs[name],
            stderr=subprocess.STDOUT,
        )

    def kill(self, name: str) -> None:
        process = self.running[name]
        assert process.poll() is None, f"{name} exited by itself: see {self.cwd / name}.log"
        os.kill(process.pid, signal.SIGKILL)
        process.wait(10)
        self.kills[name] += 1
        self.start(name)

    def stop(self) -> None:
        for process in self.running.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.running.values():
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
        for log in self.logs.values():
            log.close()


def _counts(database_url: str) -> dict[str, object]:
    engine = make_engine(database_url)
    try:
        with engine.connect() as conn:
            return {
                "touches": tuple(
                    conn.execute(
                        select(func.count(), func.count(func.distinct(touches.c.event_id)))
                    ).one()
                ),
                "assignments": tuple(
                    conn.execute(
                        select(func.count(), func.count(func.distinct(assignments.c.lead_id)))
                    ).one()
                ),
                "emails": dict(
                    conn.execute(
                        select(actions.c.status, func.count())
                        .where(actions.c.kind == "email")
                        .group_by(actions.c.status)
                    ).all()
                ),
            }
    finally:
        engine.dispose()


def _settled(settings: Settings) -> bool:
    counts = _counts(settings.database_url)
    emails = counts["emails"]
    assert isinstance(emails, dict)
    return (
        group_lag(settings, group=settings.group_scoring, topic=settings.topic_touch_events) == 0
        and group_lag(settings, group=settings.group_routing, topic=settings.topic_lead_changes)
        == 0
        and counts["assignments"] == (EVENTS, EVENTS)
        and sum(emails.values()) == CARTS
        and set(emails) <= {"sent", "uncertain"}
    )


def test_scoring_and_routing_killed_five_times_each_lose_and_double_nothing(
    settings: Settings, tmp_path: Path, mailbox: tuple[Mailbox, int]
):
    box, smtp_port = mailbox
    own = routing_settings(
        settings, tmp_path, smtp_port=smtp_port, receiver_url="http://127.0.0.1:9", cart_delay="1s"
    )
    ensure_topics(settings=own)
    records = _records(uuid.uuid4().hex[:8])
    seed = random.randrange(1_000_000)
    rng = random.Random(seed)
    # Each kill at a random wave, never two of one service in the same wave.
    kills = sorted(
        [(wave, "scoring") for wave in rng.sample(range(1, WAVES), KILLS)]
        + [(wave, "routing") for wave in rng.sample(range(1, WAVES), KILLS)]
    )
    services = Services(_env(own), tmp_path)
    producer = AsyncProducer(settings=own)
    try:
        services.start("scoring")
        services.start("routing")
        per_wave = EVENTS // WAVES
        for wave in range(WAVES):
            chunk = records[wave * per_wave : (wave + 1) * per_wave]
            producer.publish_many_sync([(own.topic_touch_events, k, v, []) for k, v in chunk])
            for _, name in [k for k in kills if k[0] == wave]:
                services.kill(name)
            time.sleep(0.5)
        deadline = time.monotonic() + 180
        while not _settled(own):
            left = _counts(own.database_url)
            assert time.monotonic() < deadline, f"not settled (seed {seed}): {left}"
            time.sleep(0.5)
        time.sleep(1.0)  # a few more delivery passes: nothing more goes out
        counts = _counts(own.database_url)
    finally:
        producer.close()
        services.stop()

    received = Counter(m["Message-ID"] for m in box.messages)
    emails = counts["emails"]
    assert isinstance(emails, dict)
    print(
        f"kill -9 (seed {seed}): kills {dict(services.kills)}, touches {counts['touches']}, "
        f"assignments {counts['assignments']}, emails {emails}, received {len(received)}"
    )
    assert services.kills == Counter({"scoring": KILLS, "routing": KILLS})
    assert counts["touches"] == (EVENTS, EVENTS), "every touch stored once"
    assert counts["assignments"] == (EVENTS, EVENTS), "every lead assigned once"
    assert all(n == 1 for n in received.values()), "no email went out twice"
    assert len(received) >= emails.get("sent", 0), "every email recorded as sent arrived"
    assert len(received) <= CARTS
    assert records_in(own, own.dlq_topic(own.topic_touch_events)) == 0
    assert records_in(own, own.dlq_topic(own.topic_lead_changes)) == 0
