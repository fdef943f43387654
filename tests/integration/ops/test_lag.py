"""Consumer lag as /v1/ops/streams and /metrics report it, while scoring is paused and after."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable

import httpx
import pytest

from leadflow.runtime import Runtime
from shared.config import Settings
from shared.consumer import ConsumerLoop
from tests.integration.ops.conftest import (
    eventually,
    group_lag,
    rows,
    scrape,
    streams,
    topic_entry,
    total,
)

pytestmark = pytest.mark.integration


def scoring_loop(runtime: Runtime) -> ConsumerLoop:
    """The runtime's scoring consumer."""
    assert runtime.resources is not None
    (loop,) = [c for c in runtime.resources.consumers if c.name == "scoring"]
    return loop


async def wait_until_paused(loop: ConsumerLoop) -> None:
    """`pause()` takes effect on the loop's own thread at its next poll: wait for that, so no
    record posted afterwards can still be fetched by a poll already in flight."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        consumer = loop._consumer  # read-only peek at kafka-python's subscription state
        if (
            consumer is not None
            and consumer.assignment()
            and (consumer.paused() == consumer.assignment())
        ):
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the scoring consumer never paused its partitions")


async def post_one_by_one(client: httpx.AsyncClient, emails: list[str]) -> None:
    """One request per event, each awaited: every record is its own batch on the broker."""
    for email in emails:
        body = {"type": "page_view", "lead": {"email": email}}
        response = await client.post("/v1/events", json=body)
        assert response.status_code == 202, response.text


async def test_lag_grows_while_the_consumer_is_paused_and_drains_after(
    client: httpx.AsyncClient, runtime: Runtime, settings: Settings
):
    touch, scoring = settings.topic_touch_events, settings.group_scoring
    loop = scoring_loop(runtime)

    async def scoring_lag() -> int | None:
        return group_lag(topic_entry(await streams(client), touch), scoring)

    async def lag_is(expected: int) -> bool:
        return await scoring_lag() == expected

    async def lag_settles_at(expected: int, what: str) -> None:
        await eventually(lambda: lag_is(expected), what=what)

    await lag_settles_at(0, "no lag before any event")
    loop.pause()
    assert loop.paused
    await wait_until_paused(loop)

    # Tansu reports a partition's end offset as the base offset of its newest batch + 1
    # (design.md), so records sharing a batch are under-counted. Each event here goes in its own
    # request, awaited before the next, so each is a batch of one and the end offsets (and so
    # the lag) are exact: the lag must reach exactly the number of events, then grow by exactly
    # the next wave. Waiting for equality (not just > 0) also catches a lag that overshoots.
    first = [f"lag{i}@acme.example" for i in range(3)]
    await post_one_by_one(client, first)
    await lag_settles_at(3, "scoring's lag reaching 3 while paused")

    second = [f"lag{i}@acme.example" for i in range(3, 5)]
    await post_one_by_one(client, second)
    await lag_settles_at(5, "scoring's lag growing to 5 while paused")
    assert loop.paused and loop.processed == 0

    async def metric_lag_is(expected: int) -> bool:
        samples = await scrape(client)
        lags = rows(samples, "leadflow_consumer_lag", group=scoring, topic=touch)
        return len(lags) == settings.kafka_topic_partitions and (
            total(samples, "leadflow_consumer_lag", group=scoring, topic=touch) == expected
        )

    await eventually(lambda: metric_lag_is(5), what="leadflow_consumer_lag summing to 5")
    per_partition = sum(
        p_group["lag"]
        for p in topic_entry(await streams(client), touch)["partitions"]
        for p_group in p["groups"]
        if p_group["group"] == scoring
    )
    assert per_partition == 5

    # Nothing was scored while paused.
    missing = await client.get("/v1/leads", params={"email": first[0]})
    assert missing.status_code == 200 and missing.json()["items"] == []

    loop.resume()
    await lag_settles_at(0, "scoring's lag draining to 0 after resume")
    await eventually(lambda: metric_lag_is(0), what="leadflow_consumer_lag back to 0")
    for email in first + second:
        response = await client.get("/v1/leads", params={"email": email})
        assert response.status_code == 200
        assert [lead["email"] for lead in response.json()["items"]] == [email]
    assert loop.processed == 5


async def test_lag_of_records_sharing_a_batch_is_exact_on_kafka_and_a_lower_bound_on_tansu(
    client: httpx.AsyncClient, runtime: Runtime, settings: Settings, broker_kind: str
):
    touch, scoring = settings.topic_touch_events, settings.group_scoring
    loop = scoring_loop(runtime)

    async def scoring_lag() -> int | None:
        return group_lag(topic_entry(await streams(client), touch), scoring)

    await eventually(lambda: _equals(scoring_lag(), 0), what="no lag before any event")
    loop.pause()
    await wait_until_paused(loop)
    # One request of 40 events: the producer sends them in a few record batches, so many
    # records share a batch (Tansu then reports only the base offset of its newest batch + 1).
    events = [{"type": "page_view", "lead": {"email": f"b{i}@acme.example"}} for i in range(40)]
    response = await client.post("/v1/events/batch", json=events)
    assert response.status_code == 202 and response.json()["accepted"] == 40

    if broker_kind == "kafka":
        await eventually(lambda: _equals(scoring_lag(), 40), what="scoring's lag of exactly 40")

        async def metric_says_40() -> bool:
            samples = await scrape(client)
            return total(samples, "leadflow_consumer_lag", group=scoring, topic=touch) == 40

        await eventually(metric_says_40, what="leadflow_consumer_lag summing to exactly 40")
        report = await streams(client)
        assert report["broker"]["end_offsets_exact"] is True
        ends = sum(p["end_offset"] for p in topic_entry(report, touch)["partitions"])
        assert ends == 40
    else:
        # Tansu: some lag shows, but never more than the truth, and the report says so.
        async def some_lag() -> bool:
            value = await scoring_lag()
            return value is not None and value > 0

        await eventually(some_lag, what="some lag on Tansu")
        assert 0 < (await scoring_lag() or 0) <= 40
        assert (await streams(client))["broker"]["end_offsets_exact"] is False

    loop.resume()
    await eventually(lambda: _equals(scoring_lag(), 0), what="scoring's lag draining to 0")
    assert loop.processed == 40


async def _equals(value: Awaitable[int | None], expected: int) -> bool:
    return await value == expected
