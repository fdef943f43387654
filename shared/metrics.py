"""Prometheus metrics: the process's counters and histograms, and the /metrics rendering.

Counters and histograms live in prometheus-client's default registry (in multiprocess mode,
its files). Values read from the broker or the database at scrape time (lag, DLQ depth,
actions, breaches, leads) come from collectors that a running process registers in its own
registry, so several runtimes in one process (the tests) never see each other's.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.registry import Collector
from starlette.responses import Response

# What /metrics answers: the text exposition format 0.0.4, which `generate_latest` writes (names
# escaped to underscores) and every Prometheus reads. prometheus-client's CONTENT_TYPE_LATEST
# names 1.0.0, which it sends only to a scraper asking for it.
CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4


class PrometheusText(Response):
    """A /metrics answer, with its media type in the OpenAPI as on the wire."""

    media_type = CONTENT_TYPE


# The `_created` series double every counter and histogram and no dashboard here reads them.
disable_created_metrics()

# Latency buckets from 1 ms to 10 s: publishes are acked in milliseconds, a slow database or
# a rebalance shows up in the upper buckets.
_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

INGEST_REQUESTS = Counter(
    "leadflow_ingest_requests_total",
    "Ingest HTTP requests by source (native, batch, segment, shopify, hubspot) and status code.",
    ["source", "status"],
)
PUBLISH_SECONDS = Histogram(
    "leadflow_publish_duration_seconds",
    "Time from handing records to the producer until the broker acknowledged them.",
    ["topic"],
    buckets=_LATENCY_BUCKETS,
)
EVENTS_CONSUMED = Counter(
    "leadflow_events_consumed_total",
    "Records a consumer processed successfully, by topic and consumer group.",
    ["topic", "group"],
)
PROCESSING_SECONDS = Histogram(
    "leadflow_processing_duration_seconds",
    "Time a consumer spent on one record (all attempts), by topic and consumer group.",
    ["topic", "group"],
    buckets=_LATENCY_BUCKETS,
)
DLQ_PARKED = Counter(
    "leadflow_dlq_messages_total",
    "Records this process parked in a dead-letter topic, by source topic.",
    ["topic"],
)
DLQ_REPLAYED = Counter(
    "leadflow_dlq_replayed_total",
    "Dead-lettered records re-published to their source topic, by source topic.",
    ["topic"],
)


class RequestCounter:
    """ASGI middleware counting responses to the ingest paths by source and status code."""

    def __init__(self, app: Any, *, paths: dict[str, str]) -> None:
        self.app, self.paths = app, paths

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        source = (
            self.paths.get(scope.get("path", "").rstrip("/")) if scope["type"] == "http" else None
        )
        if source is None:
            await self.app(scope, receive, send)
            return
        status = [500]  # what the client sees if the app fails before answering

        async def watch(message: Any) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, watch)
        finally:
            INGEST_REQUESTS.labels(source=source, status=str(status[0])).inc()


class CachedCollector(Collector):
    """A collector whose metric families are computed by `read` at most every `ttl_s`.

    A failing read (database or broker down) yields nothing rather than failing the scrape:
    `/readyz` says what is down, and the other metrics stay visible.
    """

    def __init__(self, read: Callable[[], Iterable[Metric]], *, ttl_s: float) -> None:
        self._read, self._ttl_s = read, ttl_s
        self._lock = threading.Lock()
        self._cached: list[Metric] = []
        self._at = float("-inf")

    def collect(self) -> Iterator[Metric]:
        """The families, read again when the cached ones are older than the TTL."""
        with self._lock:
            if time.monotonic() - self._at >= self._ttl_s:
                try:
                    self._cached = list(self._read())
                except Exception:
                    self._cached = []
                self._at = time.monotonic()
            return iter(self._cached)


def gauge(name: str, doc: str, labels: list[str], rows: Iterable[tuple[Any, ...]]) -> Metric:
    """A gauge family from `(label values..., value)` rows."""
    family = GaugeMetricFamily(name, doc, labels=labels)
    for *values, value in rows:
        family.add_metric([str(v) for v in values], float(value))
    return family


def counter(name: str, doc: str, labels: list[str], rows: Iterable[tuple[Any, ...]]) -> Metric:
    """A counter family (exposed as `<name>_total`) from `(label values..., value)` rows."""
    family = CounterMetricFamily(name, doc, labels=labels)
    for *values, value in rows:
        family.add_metric([str(v) for v in values], float(value))
    return family


def render(*, local: CollectorRegistry, multiproc_dir: str | None) -> bytes:
    """The Prometheus text exposition of the process metrics plus the runtime's collectors.

    In multiprocess mode the counters and histograms of every worker are read from their files
    in `multiproc_dir` and added up.
    """
    if multiproc_dir:
        shared = CollectorRegistry()
        multiprocess.MultiProcessCollector(shared, path=multiproc_dir)
    else:
        shared = REGISTRY
    return generate_latest(shared) + generate_latest(local)


# Names of the gauges and counters that running processes compute at scrape time (see
# `operations.service.runtime_collectors`); listed here so dashboards can be checked against them.
RUNTIME_METRIC_NAMES = (
    "leadflow_stream_monitor_up",
    "leadflow_consumer_lag",
    "leadflow_topic_end_offset",
    "leadflow_consumer_committed_offset",
    "leadflow_dlq_depth",
    "leadflow_actions",
    "leadflow_action_deferrals_total",
    "leadflow_sla_breaches_total",
    "leadflow_leads",
    "leadflow_consumer_paused",
    "leadflow_outage",
)
