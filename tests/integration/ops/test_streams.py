"""/v1/ops/streams against the real broker (Apache Kafka or Tansu): which broker, every topic
and partition, rates, the newest record's time, and each consumer group's committed offsets."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from shared.config import Settings
from tests.integration.ops.conftest import eventually, group_lag, streams, topic_entry

pytestmark = pytest.mark.integration


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


async def test_streams_names_the_broker_and_lists_every_topic_with_its_partitions(
    client: httpx.AsyncClient, settings: Settings, broker_kind: str
):
    async def described() -> dict[str, Any] | None:
        report = await streams(client)
        return report if report["broker"]["kind"] != "?" else None

    report = await eventually(described, what="the monitor describing the broker")
    broker = report["broker"]
    assert broker["kind"] == broker_kind
    assert broker["bootstrap_servers"] == settings.kafka_bootstrap_servers
    if broker_kind == "kafka":
        assert broker["end_offsets_exact"] is True
        assert broker["note"] is None
    else:
        assert broker["end_offsets_exact"] is False
        assert "Tansu" in broker["note"] and "lower bound" in broker["note"]
    assert report["sample_error"] is None
    assert parse_time(report["sampled_at"]) > datetime.now(UTC) - timedelta(seconds=30)

    main = [settings.topic_touch_events, settings.topic_lead_changes, settings.topic_actions]
    assert sorted(t["topic"] for t in report["topics"]) == sorted(settings.topics)
    for topic in main:
        entry = topic_entry(report, topic)
        assert entry["kind"] == "main"
        assert entry["dlq_depth"] == 0
        assert "source_topic" not in entry
        dlq = topic_entry(report, settings.dlq_topic(topic))
        assert dlq["kind"] == "dlq"
        assert dlq["source_topic"] == topic
        assert (dlq["dlq_depth"], dlq["replayed"]) == (0, 0)
    for entry in report["topics"]:
        partitions = [p["partition"] for p in entry["partitions"]]
        assert partitions == list(range(settings.kafka_topic_partitions)), entry["topic"]
        for p in entry["partitions"]:
            assert (p["beginning_offset"], p["end_offset"]) == (0, 0)
            assert p["last_event_at"] is None
        assert entry["last_event_at"] is None
    # Only the topics leadflow's groups consume list a group.
    assert [g["group"] for g in topic_entry(report, main[0])["groups"]] == [settings.group_scoring]
    assert [g["group"] for g in topic_entry(report, main[1])["groups"]] == [settings.group_routing]
    assert topic_entry(report, main[2])["groups"] == []


async def test_after_events_streams_and_overview_show_rates_last_event_and_offsets(
    client: httpx.AsyncClient, settings: Settings, broker_kind: str
):
    touch, changes = settings.topic_touch_events, settings.topic_lead_changes
    started = datetime.now(UTC)
    emails = [f"s{i}@acme.example" for i in range(4)]
    for email in emails:
        body = {"type": "page_view", "lead": {"email": email}}
        assert (await client.post("/v1/events", json=body)).status_code == 202

    async def settled() -> dict[str, Any] | None:
        # Scoring has committed past every touch, and routing past every lead change.
        report = await streams(client)
        t, c = topic_entry(report, touch), topic_entry(report, changes)
        ends = sum(p["end_offset"] or 0 for p in t["partitions"])
        committed = [
            g["committed_offset"] for p in t["partitions"] for g in p["groups"] if p["end_offset"]
        ]
        done = (
            ends == len(emails)
            and all(o is not None for o in committed)
            and group_lag(t, settings.group_scoring) == 0
            and any(p["end_offset"] for p in c["partitions"])
            and group_lag(c, settings.group_routing) == 0
            and (t["events_per_s_1m"] or 0) > 0
        )
        return report if done else None

    report = await eventually(settled, what="touches sampled, consumed and committed")
    entry = topic_entry(report, touch)
    newest = parse_time(entry["last_event_at"])
    assert started - timedelta(seconds=1) <= newest <= datetime.now(UTC) + timedelta(seconds=1)
    assert entry["events_per_s_1m"] > 0
    for p in entry["partitions"]:
        (scoring,) = p["groups"]
        assert scoring["group"] == settings.group_scoring
        if p["end_offset"]:
            # Each touch was its own batch, so even Tansu's end offset is exact: scoring
            # committed exactly up to it.
            assert scoring["committed_offset"] == p["end_offset"]
            assert scoring["lag"] == 0
            assert p["last_event_at"] is not None
            assert p["events_per_s_1m"] > 0
        else:
            assert p["last_event_at"] is None
    lead_changes = topic_entry(report, changes)
    for p in lead_changes["partitions"]:
        (routing,) = p["groups"]
        assert routing["group"] == settings.group_routing
        if p["end_offset"]:
            assert routing["committed_offset"] is not None
            if broker_kind == "kafka":
                assert routing["committed_offset"] == p["end_offset"]
            else:
                # The outbox may publish several changes in one batch, so Tansu's end offset
                # can be below the committed offset; the lag is never negative.
                assert routing["committed_offset"] >= p["end_offset"]
            assert routing["lag"] == 0
    assert lead_changes["last_event_at"] is not None

    # The dashboard's data tells the same story.
    response = await client.get("/v1/ops/overview")
    assert response.status_code == 200, response.text
    overview = response.json()
    assert overview["broker"]["kind"] == broker_kind
    assert overview["sample_interval_s"] == settings.ops_sample_interval_s
    throughput = {t["topic"]: t["points"] for t in overview["throughput"]}
    assert sorted(throughput) == sorted([touch, changes, settings.topic_actions])
    assert any(rate > 0 for _, rate in throughput[touch])
    lag_series = {(s["group"], s["topic"], s["partition"]): s["points"] for s in overview["lag"]}
    partitions = range(settings.kafka_topic_partitions)
    assert set(lag_series) == {(settings.group_scoring, touch, p) for p in partitions} | {
        (settings.group_routing, changes, p) for p in partitions
    }
    assert all(points and points[-1][1] == 0 for points in lag_series.values())
    assert [(d["source_topic"], d["depth"]) for d in overview["dlq"]] == [
        (touch, 0),
        (changes, 0),
        (settings.topic_actions, 0),
    ]
    assert sum(row["count"] for row in overview["leads"]) == len(emails)
