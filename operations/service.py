"""Operations handlers: stream reports, the dashboard's overview, DLQ listing and replay, and
the collectors that put broker and database figures into /metrics."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from prometheus_client import CollectorRegistry
from prometheus_client.core import Metric
from sqlalchemy.orm import Session, sessionmaker

from operations import repository as repo
from shared import metrics
from shared.config import Settings
from shared.consumer import ConsumerLoop
from shared.db import transaction
from shared.faults import Outage
from shared.kafka import AsyncProducer
from shared.ops.broker import DlqReader, StreamMonitor
from shared.ops.domain import streams
from shared.ops.domain.dlq import BadDlqId, DlqId, ParkedMessage

RATE_WINDOW_MS = 60_000
# A replay claimed this long ago and not recorded belongs to a replayer that died.
REPLAY_CLAIM_TIMEOUT = timedelta(minutes=5)


def _iso_ms(at_ms: int | None) -> str | None:
    if at_ms is None:
        return None
    return datetime.fromtimestamp(at_ms / 1000, UTC).isoformat().replace("+00:00", "Z")


def streams_report(*, monitor: StreamMonitor, replayed: dict[str, int]) -> dict[str, Any]:
    """Every topic and partition: end offset, each group's committed offset and lag, events/s
    over the last minute, the newest record's time, DLQ depth; and which broker this is."""
    sample = monitor.latest()
    history = monitor.history()
    settings = monitor.settings
    dlq_topics = {settings.dlq_topic(t): t for t in settings.main_topics}
    topics = []
    for topic in monitor.topics:
        readers = [g for g, ts in sample.groups.items() if topic in ts]
        partitions = []
        for partition in streams.partitions_of(sample, topic):
            key = (topic, partition)
            partitions.append(
                {
                    "partition": partition,
                    "beginning_offset": sample.beginning.get(key),
                    "end_offset": sample.end.get(key),
                    "events_per_s_1m": _round(
                        streams.rate_per_s(
                            history, topic=topic, partition=partition, window_ms=RATE_WINDOW_MS
                        )
                    ),
                    "last_event_at": _iso_ms(sample.last_event_ms.get(key)),
                    "groups": [
                        {
                            "group": group,
                            "committed_offset": sample.committed.get((group, topic, partition)),
                            "lag": streams.lag(
                                sample, group=group, topic=topic, partition=partition
                            ),
                        }
                        for group in readers
                    ],
                }
            )
        entry: dict[str, Any] = {
            "topic": topic,
            "kind": "dlq" if topic in dlq_topics else "main",
            "events_per_s_1m": _round(
                streams.rate_per_s(history, topic=topic, window_ms=RATE_WINDOW_MS)
            ),
            "last_event_at": _iso_ms(streams.newest_event_ms(sample, topic=topic)),
            "groups": [
                {"group": group, "lag": streams.topic_lag(sample, group=group, topic=topic)}
                for group in readers
            ],
            "partitions": partitions,
        }
        if topic in dlq_topics:
            depth = streams.topic_depth(sample, topic=topic)
            entry["source_topic"] = dlq_topics[topic]
            entry["dlq_depth"] = depth
            entry["replayed"] = replayed.get(topic, 0)
        else:
            entry["dlq_depth"] = streams.topic_depth(sample, topic=settings.dlq_topic(topic))
        topics.append(entry)
    return {
        "sampled_at": _iso_ms(sample.at_ms),
        "sample_error": sample.error,
        "broker": monitor.broker().as_dict(),
        "topics": topics,
    }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def overview(*, monitor: StreamMonitor, session: Session) -> dict[str, Any]:
    """What the /ops dashboard draws: throughput and lag over time, DLQs, actions, SLA breaches
    and leads per qualification."""
    settings = monitor.settings
    sample = monitor.latest()
    history = monitor.history()
    replayed = repo.replayed_counts(session)
    lag = [
        {
            "group": group,
            "topic": topic,
            "partition": partition,
            "points": streams.lag_series(history, group=group, topic=topic, partition=partition),
        }
        for group, topics in sample.groups.items()
        for topic in topics
        for partition in streams.partitions_of(sample, topic)
    ]
    return {
        "generated_at": _iso_ms(sample.at_ms),
        "window_s": settings.ops_history_s,
        "sample_interval_s": settings.ops_sample_interval_s,
        "broker": monitor.broker().as_dict(),
        "sample_error": sample.error,
        "throughput": [
            {"topic": topic, "points": streams.throughput_series(history, topic=topic)}
            for topic in settings.main_topics
        ],
        "lag": lag,
        "dlq": [
            {
                "topic": settings.dlq_topic(topic),
                "source_topic": topic,
                "depth": streams.topic_depth(sample, topic=settings.dlq_topic(topic)),
                "replayed": replayed.get(settings.dlq_topic(topic), 0),
            }
            for topic in settings.main_topics
        ],
        "actions": [
            {"kind": kind, "status": status, "count": count}
            for kind, status, count in sorted(repo.action_counts(session))
        ],
        "sla_breaches": [
            {"team": team, "count": count}
            for team, count in sorted(repo.sla_breach_counts(session).items())
        ],
        "leads": [
            {"qualification": q, "count": count}
            for q, count in sorted(repo.lead_counts(session).items())
        ],
    }


# --- the dead-letter queues ----------------------------------------------------------------


class DlqError(ValueError):
    """A DLQ request that names no dead-letter topic or a bad message id."""


def dlq_topic_of(*, settings: Settings, topic: str | None) -> list[str]:
    """The dead-letter topics a `topic` argument means: a DLQ topic itself, the DLQ of a main
    topic, or (None) every DLQ."""
    main = settings.main_topics
    dlqs = [settings.dlq_topic(t) for t in main]
    if topic is None:
        return dlqs
    if topic in dlqs:
        return [topic]
    if topic in main:
        return [settings.dlq_topic(topic)]
    raise DlqError(f"topic {topic!r} is neither a leadflow topic nor its DLQ: one of {main + dlqs}")


def list_dlq(
    *,
    settings: Settings,
    sessions: sessionmaker[Session],
    topic: str | None,
    limit: int,
    cursor: str | None,
    include_replayed: bool = True,
) -> dict[str, Any]:
    """Parked messages with error and origin, oldest first per partition, one page at a time."""
    topics = dlq_topic_of(settings=settings, topic=topic)
    after = _parse_id(cursor, "cursor") if cursor else None
    if after is not None and after.topic not in topics:
        raise DlqError(f"cursor: {cursor!r} is not a position in {topics}")
    with sessions() as session:
        done = {k: r for t in topics for k, r in repo.replays(session, dlq_topic=t).items()}
    items: list[dict[str, Any]] = []
    more = False
    with DlqReader(settings=settings) as reader:
        for dlq in topics:
            if after is not None and topics.index(dlq) < topics.index(after.topic):
                continue
            for message in reader.read(topic=dlq, after=after):
                row = done.get((dlq, message.id.partition, message.id.offset))
                replayed_at = (
                    row.replayed_at.isoformat() if row is not None and row.replayed_at else None
                )
                if replayed_at and not include_replayed:
                    continue
                if len(items) == limit:
                    more = True
                    break
                items.append(message.as_dict(replayed_at=replayed_at))
            if more:
                break
    return {"items": items, "next_cursor": items[-1]["id"] if more else None}


def _parse_id(text: str, what: str) -> DlqId:
    try:
        return DlqId.parse(text)
    except BadDlqId as exc:
        raise DlqError(f"{what}: {exc}") from None


@dataclass
class ReplayReport:
    """What a replay did: the ids re-published and those skipped, with why."""

    replayed: list[str] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """The JSON form."""
        return {
            "replayed": len(self.replayed),
            "ids": self.replayed,
            "skipped": self.skipped,
        }


def replay_dlq(
    *,
    settings: Settings,
    sessions: sessionmaker[Session],
    producer: AsyncProducer,
    topic: str | None,
    ids: Sequence[str] | None,
    now: Callable[[], datetime],
    progress: Callable[[int, int | None], None] | None = None,
) -> ReplayReport:
    """Re-publish parked messages (the listed ids, else every one not replayed yet in `topic`)
    to the topic they came from, each at most once; `progress(done, total)` after each one
    (total None when replaying every message, which are read as they go)."""
    report = ReplayReport()
    total: int | None = None
    with DlqReader(settings=settings) as reader:
        if ids:
            wanted = [_parse_id(i, "ids") for i in ids]
            # dlq_topic_of(topic=None) is every DLQ, so this also refuses foreign topics.
            allowed = set(dlq_topic_of(settings=settings, topic=topic))
            for w in wanted:
                if w.topic not in allowed:
                    raise DlqError(f"ids: {str(w)!r} is not in a leadflow dead-letter topic")
            found = reader.read_ids(wanted)
            listed = [found[w] for w in wanted if w in found]
            messages: Iterable[ParkedMessage] = listed
            report.skipped += [
                {"id": str(w), "reason": "no such message"} for w in wanted if w not in found
            ]
            total, done = len(wanted), len(wanted) - len(listed)
        else:
            messages = (
                m
                for dlq in dlq_topic_of(settings=settings, topic=topic)
                for m in reader.read(topic=dlq)
            )
            done = 0
        for message in messages:
            _replay_one(
                message=message,
                settings=settings,
                sessions=sessions,
                producer=producer,
                now=now,
                report=report,
            )
            done += 1
            if progress is not None:
                progress(done, total)
    return report


def _replay_one(
    *,
    message: ParkedMessage,
    settings: Settings,
    sessions: sessionmaker[Session],
    producer: AsyncProducer,
    now: Callable[[], datetime],
    report: ReplayReport,
) -> None:
    source = message.source_topic
    if source is None or source not in settings.main_topics:
        report.skipped.append({"id": str(message.id), "reason": "no known origin topic"})
        return
    at = now()
    # Claim (committed) before publishing: a concurrent or repeated replay then skips it.
    with transaction(sessions) as session:
        claimed = repo.claim_replay(
            session,
            dlq_topic=message.id.topic,
            partition=message.id.partition,
            offset=message.id.offset,
            source_topic=source,
            event_id=message.event_id,
            now=at,
            stale_before=at - REPLAY_CLAIM_TIMEOUT,
        )
    if not claimed:
        report.skipped.append({"id": str(message.id), "reason": "already replayed"})
        return
    try:
        producer.publish_sync(
            topic=source, key=message.key, value=message.value, headers=message.replay_headers()
        )
    except Exception:
        # Not published: release the claim, so a retry after the broker is back takes it.
        with transaction(sessions) as session:
            repo.release_replay(
                session,
                dlq_topic=message.id.topic,
                partition=message.id.partition,
                offset=message.id.offset,
            )
        raise
    with transaction(sessions) as session:
        repo.mark_replayed(
            session,
            dlq_topic=message.id.topic,
            partition=message.id.partition,
            offset=message.id.offset,
            now=now(),
        )
    metrics.DLQ_REPLAYED.labels(topic=source).inc()
    report.replayed.append(str(message.id))


# --- metrics computed at scrape time -------------------------------------------------------


def _stream_families(monitor: StreamMonitor) -> Iterable[Metric]:
    sample = monitor.latest()
    up = metrics.gauge(
        "leadflow_stream_monitor_up",
        "1 if the last reading of the broker's offsets succeeded, else 0 (offset and lag "
        "metrics are then left out rather than repeated stale).",
        [],
        [(0 if sample.error else 1,)],
    )
    if sample.error is not None:
        return [up]
    lag_rows, committed_rows = [], []
    for group, topics in sample.groups.items():
        for topic in topics:
            for partition in streams.partitions_of(sample, topic):
                value = streams.lag(sample, group=group, topic=topic, partition=partition)
                if value is not None:
                    lag_rows.append((group, topic, partition, value))
                committed = sample.committed.get((group, topic, partition))
                if committed is not None:
                    committed_rows.append((group, topic, partition, committed))
    settings = monitor.settings
    return [
        up,
        metrics.gauge(
            "leadflow_consumer_lag",
            "Records a consumer group has still to consume, per partition (a lower bound on "
            "Tansu, whose end offsets are under-reported).",
            ["group", "topic", "partition"],
            lag_rows,
        ),
        metrics.gauge(
            "leadflow_topic_end_offset",
            "End offset of each partition as the broker reports it.",
            ["topic", "partition"],
            [(t, p, o) for (t, p), o in sorted(sample.end.items())],
        ),
        metrics.gauge(
            "leadflow_consumer_committed_offset",
            "Committed offset of each consumer group per partition.",
            ["group", "topic", "partition"],
            committed_rows,
        ),
        metrics.gauge(
            "leadflow_dlq_depth",
            "Messages retained in each dead-letter topic (replayed ones included).",
            ["topic"],
            [
                (settings.dlq_topic(t), streams.topic_depth(sample, topic=settings.dlq_topic(t)))
                for t in settings.main_topics
            ],
        ),
    ]


def _routing_families(sessions: sessionmaker[Session]) -> Iterable[Metric]:
    with sessions() as session:
        actions = repo.action_counts(session)
        deferrals = repo.deferral_counts(session)
        breaches = repo.sla_breach_counts(session)
    return [
        metrics.gauge(
            "leadflow_actions",
            "Follow-up actions by kind and status (scheduled, sent, failed, cancelled, ...).",
            ["kind", "status"],
            actions,
        ),
        metrics.counter(
            "leadflow_action_deferrals",
            "Times actions were deferred (frequency cap), by kind.",
            ["kind"],
            sorted(deferrals.items()),
        ),
        metrics.counter(
            "leadflow_sla_breaches",
            "Assignments whose SLA was breached, by team.",
            ["team"],
            sorted(breaches.items()),
        ),
    ]


def _scoring_families(sessions: sessionmaker[Session]) -> Iterable[Metric]:
    with sessions() as session:
        counts = repo.lead_counts(session)
    return [
        metrics.gauge(
            "leadflow_leads",
            "Leads per qualification.",
            ["qualification"],
            sorted(counts.items()),
        )
    ]


class _MonitorCollector:
    def __init__(self, monitor: StreamMonitor) -> None:
        self._monitor = monitor

    def collect(self) -> Iterable[Metric]:
        return _stream_families(self._monitor)


class _OutageCollector:
    """`leadflow_consumer_paused{group, reason}` and `leadflow_outage{worker, dependency}`."""

    def __init__(self, consumers: Sequence[ConsumerLoop], outages: Sequence[Outage]) -> None:
        self._consumers, self._outages = consumers, outages

    def collect(self) -> Iterable[Metric]:
        paused = [(loop.group_id, loop.paused_reason()) for loop in self._consumers]
        yield metrics.gauge(
            "leadflow_consumer_paused",
            "1 while a consumer is paused, with the reason: operator, or the dependency whose "
            "outage it waits out (database, broker, smtp, webhook, network).",
            ["group", "reason"],
            [(group, reason, 1) for group, reason in paused if reason is not None]
            + [(group, "", 0) for group, reason in paused if reason is None],
        )
        trackers = [t for loop in self._consumers for t in loop.outages()] + list(self._outages)
        yield metrics.gauge(
            "leadflow_outage",
            "1 while a worker waits out a dependency's outage, by worker and dependency.",
            ["worker", "dependency"],
            [(t.worker, str(t.dependency), 1) for t in trackers if t.active and t.dependency],
        )


def runtime_registry(
    *,
    settings: Settings,
    monitor: StreamMonitor,
    sessions: sessionmaker[Session],
    services: Sequence[str],
    consumers: Sequence[ConsumerLoop] = (),
    outages: Sequence[Outage] = (),
) -> CollectorRegistry:
    """A registry with the scrape-time metrics of a process running `services`: stream health
    and outages always, actions and SLA breaches with routing, leads per qualification with
    scoring. `outages` may still grow after this call (workers started later)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_MonitorCollector(monitor))
    registry.register(_OutageCollector(consumers, outages))
    ttl = settings.metrics_db_cache_s
    if "routing" in services:
        registry.register(metrics.CachedCollector(lambda: _routing_families(sessions), ttl_s=ttl))
    if "scoring" in services:
        registry.register(metrics.CachedCollector(lambda: _scoring_families(sessions), ttl_s=ttl))
    return registry
