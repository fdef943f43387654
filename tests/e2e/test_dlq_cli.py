"""`leadflow dlq list|replay` as an operator runs them, against the services' broker and DB."""

from __future__ import annotations

import json
import subprocess
import time

import pytest

from leadflow.runtime import Runtime
from shared.config import Settings
from tests.e2e.test_leadflow_up import LEADFLOW, clean_env

pytestmark = pytest.mark.e2e


def dlq(*args: str, settings: Settings) -> subprocess.CompletedProcess[str]:
    """Run `leadflow dlq ...` with the runtime's broker, database and topic names."""
    return subprocess.run(
        [LEADFLOW, "dlq", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=clean_env(
            LEADFLOW_KAFKA_BOOTSTRAP_SERVERS=settings.kafka_bootstrap_servers or "",
            LEADFLOW_DATABASE_URL=settings.database_url,
            LEADFLOW_TOPIC_TOUCH_EVENTS=settings.topic_touch_events,
            LEADFLOW_TOPIC_LEAD_CHANGES=settings.topic_lead_changes,
            LEADFLOW_TOPIC_ACTIONS=settings.topic_actions,
            LEADFLOW_LOG_LEVEL="WARNING",
        ),
    )


def parked(settings: Settings, *, count: int, timeout_s: float = 30.0) -> list[dict]:
    """The DLQ items as `leadflow dlq list --json` prints them, once there are `count`."""
    deadline = time.monotonic() + timeout_s
    while True:
        listed = dlq("list", "--json", settings=settings)
        assert listed.returncode == 0, listed.stderr
        items = json.loads(listed.stdout)["items"]
        if len(items) >= count or time.monotonic() > deadline:
            return items
        time.sleep(0.5)


def test_poison_message_is_listed_then_replayed_once_from_the_shell(
    runtime: Runtime, settings: Settings
):
    assert runtime.resources is not None and runtime.resources.producer is not None
    runtime.resources.producer.publish_sync(
        topic=settings.topic_touch_events, key=b"k1", value=b"{broken json"
    )
    items = parked(settings, count=1)
    assert len(items) == 1
    item = items[0]
    assert item["origin"]["topic"] == settings.topic_touch_events
    assert item["origin"]["group"] == settings.group_scoring
    assert "not a touch envelope" in item["error"]

    text = dlq("list", settings=settings)
    assert item["id"] in text.stdout and "parked" in text.stdout

    replayed = dlq("replay", item["id"], settings=settings)
    assert replayed.returncode == 0, replayed.stderr
    assert "replayed 1 message(s)" in replayed.stdout

    # Still broken, so the replayed copy is parked again, as a new message; the first one is
    # marked as replayed.
    items = parked(settings, count=2)
    assert len(items) == 2
    first, second = sorted(items, key=lambda i: i["offset"])
    assert first["id"] == item["id"] and first["replayed_at"] is not None
    assert second["replayed_at"] is None
    assert second["value"] == item["value"]

    # --all takes what was not replayed yet (the new copy), never the first one again.
    again = dlq("replay", "--all", "--topic", settings.topic_touch_events, settings=settings)
    assert again.returncode == 0, again.stderr
    assert f"skipped {item['id']}: already replayed" in again.stdout
    assert "replayed 1 message(s)" in again.stdout
    items = parked(settings, count=3)
    assert [i["replayed_at"] is not None for i in sorted(items, key=lambda i: i["offset"])] == [
        True,
        True,
        False,
    ]


def test_replay_without_ids_or_broker_fails_clearly(settings: Settings):
    no_ids = dlq("replay", settings=settings)
    assert no_ids.returncode == 1 and "needs message ids or --all" in no_ids.stderr
    bad_topic = dlq("list", "--topic", "nope", settings=settings)
    assert bad_topic.returncode == 1 and "'nope'" in bad_topic.stderr
    no_broker = subprocess.run(
        [LEADFLOW, "dlq", "list"],
        capture_output=True,
        text=True,
        timeout=60,
        env=clean_env(LEADFLOW_DATABASE_URL=settings.database_url),
    )
    assert no_broker.returncode == 1
    assert "LEADFLOW_KAFKA_BOOTSTRAP_SERVERS" in no_broker.stderr
