"""Reading the broker for operations: the offset sampler behind /v1/ops/streams, lag metrics
and the dashboard, and the reader of dead-letter topics."""

from __future__ import annotations

import collections
import contextlib
import logging
import threading
import time
from collections.abc import Iterator, Mapping, Sequence

from kafka import KafkaAdminClient, KafkaConsumer
from kafka.structs import TopicPartition

from shared.config import Settings
from shared.ops.domain.dlq import DlqId, ParkedMessage
from shared.ops.domain.streams import BrokerInfo, Sample, broker_kind

log = logging.getLogger(__name__)

# How long one read of a partition's tail or of a DLQ page may wait for the broker.
_FETCH_TIMEOUT_MS = 1_000


def consumer_groups(settings: Settings) -> dict[str, list[str]]:
    """leadflow's consumer groups and the topics each one reads."""
    return {
        settings.group_scoring: [settings.topic_touch_events],
        settings.group_routing: [settings.topic_lead_changes],
    }


def _reader(settings: Settings, name: str) -> KafkaConsumer:
    """A consumer outside any group, for reading offsets and records without committing."""
    return KafkaConsumer(
        bootstrap_servers=settings.bootstrap_servers,
        client_id=f"{settings.kafka_client_id}-{name}",
        group_id=None,
        enable_auto_commit=False,
        request_timeout_ms=max(5_000, int(settings.kafka_publish_timeout_s * 1000)),
    )


class StreamMonitor:
    """Samples end, beginning and committed offsets of leadflow's topics at an interval.

    kafka-python's clients are not thread-safe: every read happens under one lock, on the
    sampler thread or in a request that asks for a fresh sample.
    """

    def __init__(self, *, settings: Settings) -> None:
        self.settings = settings
        self.topics = list(settings.topics)
        self.groups = consumer_groups(settings)
        self._lock = threading.Lock()
        self._history: collections.deque[Sample] = collections.deque()
        self._consumer: KafkaConsumer | None = None
        self._admin: KafkaAdminClient | None = None
        self._broker: BrokerInfo | None = None
        self._last_event_ms: dict[tuple[str, int], int] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # --- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        """Sample every `ops_sample_interval_s` on a daemon thread until `stop`."""
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="ops-stream-monitor", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop sampling and close the broker clients."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        with self._lock:
            self._close_clients()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.settings.ops_sample_interval_s)

    # --- reading ---------------------------------------------------------------------------

    def broker(self) -> BrokerInfo:
        """The broker as last described (bootstrap servers only, before the first sample)."""
        return self._broker or BrokerInfo(
            bootstrap_servers=self.settings.kafka_bootstrap_servers or "", cluster_id=None, kind="?"
        )

    def history(self) -> list[Sample]:
        """The samples of the last `ops_history_s`, oldest first."""
        with self._lock:
            return list(self._history)

    def latest(self, *, max_age_s: float | None = None) -> Sample:
        """The newest sample, taken now if there is none younger than `max_age_s`."""
        max_age_s = self.settings.ops_sample_interval_s if max_age_s is None else max_age_s
        with self._lock:
            newest = self._history[-1] if self._history else None
        if newest is not None and time.time() * 1000 - newest.at_ms <= max_age_s * 1000:
            return newest
        return self.sample()

    def sample(self) -> Sample:
        """Read the broker now and keep the reading; a failed read is kept with its error."""
        with self._lock:
            try:
                sample = self._read()
            except Exception as exc:
                log.warning("stream monitor: cannot read the broker: %s", exc)
                self._close_clients()
                previous = self._history[-1] if self._history else None
                sample = Sample(
                    at_ms=int(time.time() * 1000),
                    beginning=previous.beginning if previous else {},
                    end=previous.end if previous else {},
                    groups=self.groups,
                    committed=previous.committed if previous else {},
                    last_event_ms=dict(self._last_event_ms),
                    error=f"{type(exc).__name__}: {exc}",
                )
            self._history.append(sample)
            horizon = sample.at_ms - self.settings.ops_history_s * 1000
            while self._history and self._history[0].at_ms < horizon:
                self._history.popleft()
            return sample

    def _clients(self) -> tuple[KafkaConsumer, KafkaAdminClient]:
        if self._consumer is None:
            self._consumer = _reader(self.settings, "ops-monitor")
        if self._admin is None:
            self._admin = KafkaAdminClient(
                bootstrap_servers=self.settings.bootstrap_servers,
                client_id=f"{self.settings.kafka_client_id}-ops-admin",
            )
            cluster = self._admin.describe_cluster()
            cluster_id = cluster.get("cluster_id")
            self._broker = BrokerInfo(
                bootstrap_servers=self.settings.kafka_bootstrap_servers or "",
                cluster_id=cluster_id,
                kind=broker_kind(cluster_id),
                broker_ids=tuple(sorted(b["broker_id"] for b in cluster.get("brokers", []))),
            )
        return self._consumer, self._admin

    def _close_clients(self) -> None:
        for client in (self._consumer, self._admin):
            if client is not None:
                with contextlib.suppress(Exception):
                    client.close()
        self._consumer = self._admin = None

    def _read(self) -> Sample:
        consumer, admin = self._clients()
        partitions = [
            TopicPartition(topic, p)
            for topic in self.topics
            for p in sorted(consumer.partitions_for_topic(topic) or ())
        ]
        end = {(tp.topic, tp.partition): o for tp, o in consumer.end_offsets(partitions).items()}
        beginning = {
            (tp.topic, tp.partition): o for tp, o in consumer.beginning_offsets(partitions).items()
        }
        committed: dict[tuple[str, str, int], int] = {}
        for group, topics in self.groups.items():
            offsets = admin.list_group_offsets(group).get(group, {})
            for tp, meta in offsets.items():
                if tp.topic in topics and meta.offset >= 0:
                    committed[(group, tp.topic, tp.partition)] = meta.offset
        previous = self._history[-1].end if self._history else {}
        for key, offset in end.items():
            if offset > beginning.get(key, 0) and (
                offset != previous.get(key) or key not in self._last_event_ms
            ):
                newest = _newest_timestamp(consumer, TopicPartition(*key), end=offset)
                if newest is not None:
                    self._last_event_ms[key] = newest
        return Sample(
            at_ms=int(time.time() * 1000),
            beginning=beginning,
            end=end,
            groups=self.groups,
            committed=committed,
            last_event_ms=dict(self._last_event_ms),
        )


def _newest_timestamp(consumer: KafkaConsumer, tp: TopicPartition, *, end: int) -> int | None:
    """The newest record timestamp at the partition's tail (reads its last batch)."""
    consumer.assign([tp])
    consumer.seek(tp, max(0, end - 1))
    batch = consumer.poll(timeout_ms=_FETCH_TIMEOUT_MS, max_records=500)
    stamps = [m.timestamp for m in batch.get(tp, []) if m.timestamp is not None]
    return max(stamps) if stamps else None


class DlqReader:
    """Reads parked messages from dead-letter topics, partition by partition, in offset order."""

    def __init__(self, *, settings: Settings) -> None:
        self.settings = settings
        self._consumer = _reader(settings, "ops-dlq")
        self._exact_end: bool | None = None

    def _end_offsets_exact(self) -> bool:
        """False on Tansu (whose end offsets fall short of the last record), read once."""
        if self._exact_end is None:
            admin = KafkaAdminClient(
                bootstrap_servers=self.settings.bootstrap_servers,
                client_id=f"{self.settings.kafka_client_id}-ops-dlq-admin",
            )
            try:
                cluster_id = admin.describe_cluster().get("cluster_id")
            finally:
                admin.close()
            self._exact_end = broker_kind(cluster_id) != "tansu"
        return self._exact_end

    def close(self) -> None:
        """Close the broker connection."""
        with contextlib.suppress(Exception):
            self._consumer.close()

    def __enter__(self) -> DlqReader:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def partitions(self, topic: str) -> list[int]:
        """The partitions of a topic (none if it does not exist)."""
        return sorted(self._consumer.partitions_for_topic(topic) or ())

    def read(self, *, topic: str, after: DlqId | None = None) -> Iterator[ParkedMessage]:
        """Every message of `topic`, by partition then offset, starting after `after`."""
        for partition in self.partitions(topic):
            if after is not None and after.topic == topic and partition < after.partition:
                continue
            start = (
                after.offset + 1
                if after is not None and after.topic == topic and partition == after.partition
                else 0
            )
            yield from self._read_partition(TopicPartition(topic, partition), start=start)

    def read_ids(self, ids: Sequence[DlqId]) -> Mapping[DlqId, ParkedMessage]:
        """The messages at those positions (a missing one is left out)."""
        found: dict[DlqId, ParkedMessage] = {}
        for wanted in ids:
            tp = TopicPartition(wanted.topic, wanted.partition)
            if wanted.partition not in self.partitions(wanted.topic):
                continue
            for message in self._read_partition(tp, start=wanted.offset):
                if message.id == wanted:
                    found[wanted] = message
                break
        return found

    def _read_partition(self, tp: TopicPartition, *, start: int) -> Iterator[ParkedMessage]:
        consumer = self._consumer
        end = consumer.end_offsets([tp])[tp]
        if end <= consumer.beginning_offsets([tp])[tp]:
            return  # nothing retained: no fetch to wait for
        consumer.assign([tp])
        consumer.seek(tp, start)
        # What was parked before this read began, never what is parked while it runs (a replay
        # of a still-broken message parks a new copy, which must wait for the next replay).
        # On Kafka the end offset read above is exact: stop there. Tansu workaround (embedded
        # mode only): its end offset can fall short of the last record (design.md), so there
        # read on until a poll comes back empty, and stop at a record younger than the read.
        exact = self._end_offsets_exact()
        began_ms = int(time.time() * 1000)
        while True:
            if exact and consumer.position(tp) >= end:
                return
            batch = consumer.poll(timeout_ms=_FETCH_TIMEOUT_MS if start < end else 100)
            messages = batch.get(tp, [])
            if not messages:
                return
            for m in messages:
                if m.offset < start:
                    continue
                if (exact and m.offset >= end) or (
                    not exact and m.timestamp is not None and m.timestamp > began_ms
                ):
                    return
                yield ParkedMessage(
                    id=DlqId(topic=tp.topic, partition=tp.partition, offset=m.offset),
                    key=m.key,
                    value=m.value if m.value is not None else b"",
                    headers=list(m.headers or []),
                    timestamp_ms=m.timestamp,
                )
                start = m.offset + 1
