"""/metrics of a running pipeline: request counters, consumer and publish figures, and the
gauges read from the broker and the database at scrape time."""

from __future__ import annotations

import collections
from typing import Any

import httpx
import pytest

from leadflow.runtime import Runtime
from shared.config import Settings
from tests.integration.ops.conftest import Samples, eventually, rows, scrape, total

pytestmark = pytest.mark.integration


async def wait_for_lead(client: httpx.AsyncClient, email: str, *, until: Any = None) -> dict:
    """Poll the lead API until the lead exists (and `until(lead)` holds)."""

    async def probe() -> dict | None:
        response = await client.get("/v1/leads", params={"email": email})
        assert response.status_code == 200, response.text
        items = response.json()["items"]
        if items and (until is None or until(items[0])):
            return items[0]
        return None

    return await eventually(probe, what=f"lead {email} in the expected state")


async def test_metrics_count_requests_consumption_publishes_and_leads(
    client: httpx.AsyncClient, runtime: Runtime, settings: Settings
):
    touch, scoring = settings.topic_touch_events, settings.group_scoring
    before = await scrape(client)
    assert rows(before, "leadflow_leads") == []  # a clean database: no lead yet
    emails = [f"m{i}@acme.example" for i in range(3)]
    for email in emails:
        body = {"type": "page_view", "lead": {"email": email}}
        response = await client.post("/v1/events", json=body)
        assert response.status_code == 202, response.text
    assert runtime.app is not None
    transport = httpx.ASGITransport(app=runtime.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://leadflow.test") as keyless:
        refused = await keyless.post("/v1/events", json={"type": "page_view", "lead": {}})
        assert refused.status_code == 401
        # /metrics itself needs no key.
        assert (await keyless.get("/metrics")).status_code == 200
    for email in emails:
        await wait_for_lead(client, email)

    def delta(after: Samples, name: str, **labels: str) -> float:
        return total(after, name, **labels) - total(before, name, **labels)

    async def caught_up() -> Samples | None:
        # The counter moves just after the handler's transaction (which the lead API sees);
        # the offsets come from the monitor's latest sample, up to one interval old.
        after = await scrape(client)
        counted = total(after, "leadflow_events_consumed_total", topic=touch, group=scoring)
        ends = total(after, "leadflow_topic_end_offset", topic=touch)
        return after if counted >= len(emails) and ends >= len(emails) else None

    after = await eventually(caught_up, what="3 events consumed and sampled at the tail")
    assert total(after, "leadflow_events_consumed_total", topic=touch, group=scoring) == 3
    assert delta(after, "leadflow_ingest_requests_total", source="native", status="202") == 3
    assert delta(after, "leadflow_ingest_requests_total", source="native", status="401") == 1
    # One publish per request, each timed once.
    assert total(after, "leadflow_publish_duration_seconds_count", topic=touch) == 3
    assert total(after, "leadflow_publish_duration_seconds_sum", topic=touch) > 0
    buckets = rows(after, "leadflow_publish_duration_seconds_bucket", topic=touch, le="+Inf")
    assert [value for _, value in buckets] == [3]
    assert total(after, "leadflow_processing_duration_seconds_count", topic=touch, group=scoring)
    assert total(after, "leadflow_dlq_messages_total", topic=touch) == 0

    # Scrape-time gauges read the database at each scrape (metrics_db_cache_s is 0 here): it
    # holds exactly these three leads, counted under the qualification the lead API shows.
    assert settings.metrics_db_cache_s == 0
    leads = {labels["qualification"]: v for labels, v in rows(after, "leadflow_leads")}
    assert sum(leads.values()) == 3, leads
    lead = await wait_for_lead(client, emails[0])
    assert leads[lead["qualification"]] >= 1

    # One lag row (and one end offset) per partition of the touch topic for scoring.
    partitions = sorted(
        int(labels["partition"])
        for labels, _ in rows(after, "leadflow_consumer_lag", group=scoring, topic=touch)
    )
    assert partitions == list(range(settings.kafka_topic_partitions))
    ends = rows(after, "leadflow_topic_end_offset", topic=touch)
    assert len(ends) == settings.kafka_topic_partitions
    assert sum(v for _, v in ends) == 3  # each event was its own batch, so Tansu is exact here


async def test_actions_metric_matches_the_scheduled_actions(
    client: httpx.AsyncClient, settings: Settings
):
    email = "ana.metrics@acme.example"
    demo = {
        "type": "demo_requested",
        "lead": {
            "email": email,
            "job_title": "VP Operations",
            "company": {"name": "Acme", "domain": "acme.example", "employees": 250},
        },
        "properties": {"budget": "50-100k", "timeframe": "this quarter"},
    }
    assert (await client.post("/v1/events", json=demo)).status_code == 202
    lead = await wait_for_lead(client, email, until=lambda x: x["owner"])
    assert lead["qualification"] == "sql" and lead["owner"]["team"] == "sales"

    async def matching() -> tuple[dict, Samples] | None:
        # Delivery may move an action on between two reads: wait for two reads that agree.
        listed = await client.get("/v1/actions", params={"limit": 500})
        assert listed.status_code == 200, listed.text
        expected = collections.Counter((a["kind"], a["status"]) for a in listed.json()["items"])
        samples = await scrape(client)
        shown = {
            (labels["kind"], labels["status"]): value
            for labels, value in rows(samples, "leadflow_actions")
        }
        return (expected, samples) if expected and shown == dict(expected) else None

    expected, samples = await eventually(matching, what="leadflow_actions matching /v1/actions")
    # A sql lead owned by sales has at least its SLA check scheduled.
    assert any(kind == "sla" for kind, _ in expected), expected
    # Deferrals are counted per kind of action, zero while nothing hit a frequency cap.
    deferrals = {
        labels["kind"]: v for labels, v in rows(samples, "leadflow_action_deferrals_total")
    }
    assert set(deferrals) == {kind for kind, _ in expected}
    assert set(deferrals.values()) == {0}
    assert rows(samples, "leadflow_sla_breaches_total") == []  # no SLA has run out yet
