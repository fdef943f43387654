"""Prometheus metrics: cached collectors, gauges, the ingest request counter, rendering."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import REGISTRY, CollectorRegistry
from prometheus_client.core import Metric
from prometheus_client.parser import text_string_to_metric_families

from shared import metrics
from shared.metrics import CachedCollector, RequestCounter, gauge, render

PROJECT_ROOT = Path(__file__).resolve().parents[3]


class CountingRead:
    """A collector's read function that counts its calls and can be made to fail."""

    def __init__(self, *, fail: bool = False) -> None:
        self.calls = 0
        self.fail = fail

    def __call__(self) -> Iterable[Metric]:
        self.calls += 1
        if self.fail:
            raise ConnectionError("database is down")
        return [gauge("leadflow_test_reads", "Reads so far.", [], [(self.calls,)])]


def values_of(collector: CachedCollector) -> list[float]:
    return [s.value for family in collector.collect() for s in family.samples]


# --- CachedCollector ------------------------------------------------------------------------


def test_cached_collector_reads_once_within_the_ttl() -> None:
    read = CountingRead()
    collector = CachedCollector(read, ttl_s=3_600)
    assert values_of(collector) == [1.0]
    assert values_of(collector) == [1.0]
    assert values_of(collector) == [1.0]
    assert read.calls == 1


def test_cached_collector_reads_again_once_the_ttl_has_passed() -> None:
    read = CountingRead()
    collector = CachedCollector(read, ttl_s=0)
    assert values_of(collector) == [1.0]
    assert values_of(collector) == [2.0]
    assert values_of(collector) == [3.0]
    assert read.calls == 3


def test_cached_collector_is_not_read_when_registered() -> None:
    read = CountingRead()
    CollectorRegistry().register(CachedCollector(read, ttl_s=3_600))
    assert read.calls == 0


def test_a_failing_read_yields_no_families_and_does_not_break_collect() -> None:
    read = CountingRead(fail=True)
    collector = CachedCollector(read, ttl_s=0)
    assert list(collector.collect()) == []
    assert list(collector.collect()) == []
    assert read.calls == 2


def test_a_failing_read_does_not_break_the_scrape_of_the_other_metrics() -> None:
    registry = CollectorRegistry()
    registry.register(CachedCollector(CountingRead(fail=True), ttl_s=0))
    registry.register(CachedCollector(CountingRead(), ttl_s=0))
    assert registry.get_sample_value("leadflow_test_reads") == 1.0


def test_a_read_that_recovers_is_visible_after_the_ttl() -> None:
    read = CountingRead(fail=True)
    collector = CachedCollector(read, ttl_s=0)
    assert values_of(collector) == []
    read.fail = False
    assert values_of(collector) == [2.0]


def test_a_failing_read_is_not_retried_within_the_ttl() -> None:
    read = CountingRead(fail=True)
    collector = CachedCollector(read, ttl_s=3_600)
    assert values_of(collector) == []
    read.fail = False
    assert values_of(collector) == []
    assert read.calls == 1


def test_a_read_failing_midway_through_a_generator_yields_no_families() -> None:
    def read() -> Iterable[Metric]:
        yield gauge("leadflow_test_partial", "Half a read.", [], [(1,)])
        raise TimeoutError("broker went away")

    assert list(CachedCollector(read, ttl_s=0).collect()) == []


# --- gauge ----------------------------------------------------------------------------------


def test_gauge_builds_a_family_with_label_values_as_text_and_float_values() -> None:
    family = gauge(
        "leadflow_consumer_lag",
        "Records behind.",
        ["group", "topic", "partition"],
        [("scoring", "leadflow.touch-events", 0, 12), ("routing", "leadflow.actions", 3, 0)],
    )
    assert family.name == "leadflow_consumer_lag"
    assert family.type == "gauge"
    assert family.documentation == "Records behind."
    assert [(s.labels, s.value) for s in family.samples] == [
        ({"group": "scoring", "topic": "leadflow.touch-events", "partition": "0"}, 12.0),
        ({"group": "routing", "topic": "leadflow.actions", "partition": "3"}, 0.0),
    ]
    assert all(isinstance(s.value, float) for s in family.samples)


def test_gauge_without_rows_has_no_samples() -> None:
    assert gauge("leadflow_leads", "Leads.", ["stage"], []).samples == []


def test_gauge_without_labels_takes_a_value_per_row() -> None:
    family = gauge("leadflow_leads", "Leads.", [], [(7,)])
    assert [(s.labels, s.value) for s in family.samples] == [({}, 7.0)]


# --- RequestCounter -------------------------------------------------------------------------


def requests_counted(source: str, status: str) -> float:
    value = REGISTRY.get_sample_value(
        "leadflow_ingest_requests_total", {"source": source, "status": status}
    )
    return value or 0.0


def unique_source() -> str:
    return f"test-{uuid.uuid4().hex[:8]}"


def answering(status: int) -> Any:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})

    return app


class Exchange:
    """Fake ASGI receive and send, recording what the app sent."""

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    async def receive(self) -> dict[str, Any]:
        return {"type": "http.request", "body": b"{}", "more_body": False}

    async def send(self, message: dict[str, Any]) -> None:
        self.sent.append(message)


def http_scope(path: str) -> dict[str, Any]:
    return {"type": "http", "method": "POST", "path": path, "headers": []}


async def test_requests_to_a_mapped_path_are_counted_by_source_and_status() -> None:
    source = unique_source()
    exchange = Exchange()
    middleware = RequestCounter(answering(202), paths={"/v1/events": source})
    await middleware(http_scope("/v1/events"), exchange.receive, exchange.send)
    await middleware(http_scope("/v1/events"), exchange.receive, exchange.send)
    assert requests_counted(source, "202") == 2.0
    assert requests_counted(source, "500") == 0.0


async def test_the_response_is_passed_through_unchanged() -> None:
    exchange = Exchange()
    middleware = RequestCounter(answering(201), paths={"/v1/events": unique_source()})
    await middleware(http_scope("/v1/events"), exchange.receive, exchange.send)
    assert exchange.sent == [
        {"type": "http.response.start", "status": 201, "headers": []},
        {"type": "http.response.body", "body": b"{}"},
    ]


async def test_each_status_and_source_is_counted_separately() -> None:
    native, batch = unique_source(), unique_source()
    paths = {"/v1/events": native, "/v1/events/batch": batch}
    exchange = Exchange()
    await RequestCounter(answering(202), paths=paths)(
        http_scope("/v1/events"), exchange.receive, exchange.send
    )
    await RequestCounter(answering(422), paths=paths)(
        http_scope("/v1/events"), exchange.receive, exchange.send
    )
    await RequestCounter(answering(429), paths=paths)(
        http_scope("/v1/events/batch"), exchange.receive, exchange.send
    )
    assert requests_counted(native, "202") == 1.0
    assert requests_counted(native, "422") == 1.0
    assert requests_counted(batch, "429") == 1.0
    assert requests_counted(batch, "202") == 0.0


async def test_a_trailing_slash_counts_as_the_mapped_path() -> None:
    source = unique_source()
    exchange = Exchange()
    middleware = RequestCounter(answering(202), paths={"/v1/sources/segment": source})
    await middleware(http_scope("/v1/sources/segment/"), exchange.receive, exchange.send)
    assert requests_counted(source, "202") == 1.0


async def test_an_app_failing_before_answering_counts_500_and_the_error_propagates() -> None:
    source = unique_source()

    async def failing(scope: Any, receive: Any, send: Any) -> None:
        raise RuntimeError("handler crashed")

    exchange = Exchange()
    with pytest.raises(RuntimeError, match="handler crashed"):
        await RequestCounter(failing, paths={"/v1/events": source})(
            http_scope("/v1/events"), exchange.receive, exchange.send
        )
    assert requests_counted(source, "500") == 1.0


async def test_an_app_failing_after_answering_counts_the_status_it_sent() -> None:
    source = unique_source()

    async def failing_late(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 202, "headers": []})
        raise RuntimeError("body failed")

    exchange = Exchange()
    with pytest.raises(RuntimeError):
        await RequestCounter(failing_late, paths={"/v1/events": source})(
            http_scope("/v1/events"), exchange.receive, exchange.send
        )
    assert requests_counted(source, "202") == 1.0
    assert requests_counted(source, "500") == 0.0


async def test_other_paths_are_not_counted_but_still_served() -> None:
    source = unique_source()
    exchange = Exchange()
    middleware = RequestCounter(answering(200), paths={"/v1/events": source})
    for path in ("/healthz", "/v1/events/other", "/v1", "/metrics"):
        await middleware(http_scope(path), exchange.receive, exchange.send)
    assert requests_counted(source, "200") == 0.0
    assert requests_counted(source, "500") == 0.0
    assert sum(1 for m in exchange.sent if m["type"] == "http.response.start") == 4


async def test_non_http_scopes_are_passed_through_uncounted() -> None:
    source = unique_source()
    seen: list[str] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append(scope["type"])
        await send({"type": "websocket.close"} if scope["type"] == "websocket" else {})

    exchange = Exchange()
    middleware = RequestCounter(app, paths={"/v1/events": source})
    await middleware({"type": "lifespan"}, exchange.receive, exchange.send)
    await middleware({"type": "websocket", "path": "/v1/events"}, exchange.receive, exchange.send)
    assert seen == ["lifespan", "websocket"]
    assert requests_counted(source, "500") == 0.0
    assert exchange.sent == [{}, {"type": "websocket.close"}]


async def test_counter_reads_the_same_through_the_label_api() -> None:
    source = unique_source()
    counter = metrics.INGEST_REQUESTS.labels(source=source, status="202")
    before = counter._value.get()
    exchange = Exchange()
    await RequestCounter(answering(202), paths={"/v1/events": source})(
        http_scope("/v1/events"), exchange.receive, exchange.send
    )
    assert counter._value.get() == before + 1


# --- render ---------------------------------------------------------------------------------


def family_names(text: bytes) -> set[str]:
    return {family.name for family in text_string_to_metric_families(text.decode())}


def test_render_includes_the_process_metrics_and_the_local_collectors() -> None:
    local = CollectorRegistry()
    local.register(
        CachedCollector(
            lambda: [gauge("leadflow_dlq_depth", "Parked.", ["topic"], [("t.dlq", 4)])],
            ttl_s=0,
        )
    )
    text = render(local=local, multiproc_dir=None)
    names = family_names(text)
    # prometheus-client's parser drops the `_total` suffix from counter family names.
    assert {
        "leadflow_ingest_requests",
        "leadflow_publish_duration_seconds",
        "leadflow_events_consumed",
        "leadflow_processing_duration_seconds",
        "leadflow_dlq_messages",
        "leadflow_dlq_replayed",
        "leadflow_dlq_depth",
    } <= names
    assert b'leadflow_dlq_depth{topic="t.dlq"} 4.0' in text


def test_render_does_not_include_another_runtime_s_local_collectors() -> None:
    mine, theirs = CollectorRegistry(), CollectorRegistry()
    theirs.register(
        CachedCollector(lambda: [gauge("leadflow_leads", "Leads.", [], [(1,)])], ttl_s=0)
    )
    assert "leadflow_leads" not in family_names(render(local=mine, multiproc_dir=None))


def test_render_has_no_created_series() -> None:
    source = unique_source()
    metrics.INGEST_REQUESTS.labels(source=source, status="202").inc()
    text = render(local=CollectorRegistry(), multiproc_dir=None).decode()
    assert f'leadflow_ingest_requests_total{{source="{source}",status="202"}} 1.0' in text
    assert "_created" not in text


# --- multiprocess mode ----------------------------------------------------------------------


def run_python(code: str, env: dict[str, str]) -> str:
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env=env,
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_metrics_of_several_worker_processes_add_up_in_multiprocess_mode(tmp_path: Path) -> None:
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    for amount in (1, 2):
        run_python(
            f"""
            from shared import metrics
            metrics.EVENTS_CONSUMED.labels(topic="t", group="g").inc({amount})
            """,
            env,
        )
    assert len(list(tmp_path.glob("counter_*.db"))) == 2  # one file per worker process
    text = run_python(
        f"""
        import sys
        from prometheus_client import CollectorRegistry
        from shared import metrics
        sys.stdout.write(
            metrics.render(local=CollectorRegistry(), multiproc_dir={str(tmp_path)!r}).decode()
        )
        """,
        env,
    )
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    key = ("leadflow_events_consumed_total", (("group", "g"), ("topic", "t")))
    assert samples[key] == 3.0
