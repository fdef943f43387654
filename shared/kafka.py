"""Kafka plumbing on kafka-python: topics, an asyncio-safe producer, the one consumer loop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from kafka import KafkaConsumer, KafkaProducer
from kafka.admin import KafkaAdminClient, NewTopic
from kafka.errors import KafkaError, TopicAlreadyExistsError
from kafka.partitioner.default import DefaultPartitioner, murmur2
from kafka.structs import OffsetAndMetadata, TopicPartition

from shared import metrics
from shared.config import Settings

log = logging.getLogger(__name__)

Headers = list[tuple[str, bytes]]


class PublishError(Exception):
    """The broker did not acknowledge a record in time (or refused it)."""


class PoisonMessage(Exception):
    """A record that can never be processed (malformed, invalid): straight to the DLQ."""


def ensure_topics(
    *, settings: Settings, topics: Iterable[str] | None = None, timeout_s: float = 15.0
) -> None:
    """Create leadflow's topics where missing (existing ones are left as they are), and return
    once the broker's metadata shows every partition of each with a leader."""
    wanted = list(topics or settings.topics)
    admin = KafkaAdminClient(
        bootstrap_servers=settings.bootstrap_servers, client_id=f"{settings.kafka_client_id}-admin"
    )
    try:
        existing = set(admin.list_topics())
        missing = [
            NewTopic(t, settings.kafka_topic_partitions, settings.kafka_replication_factor)
            for t in wanted
            if t not in existing
        ]
        # Another process may win the race to create them; that is the state we wanted.
        if missing:
            with contextlib.suppress(TopicAlreadyExistsError):
                admin.create_topics(missing)
            # Kafka answers CreateTopics before every broker's metadata has the new topics; a
            # consumer that joins its group in between is assigned nothing and waits for its
            # next metadata refresh (minutes). Wait for the partitions and their leaders.
            _wait_for_leaders(admin, [t.name for t in missing], timeout_s=timeout_s)
    finally:
        admin.close()


def _wait_for_leaders(admin: KafkaAdminClient, topics: list[str], *, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        described = admin.describe_topics(topics)
        if len(described) == len(topics) and all(
            t.get("error_code", 0) == 0
            and t.get("partitions")
            and all(p.get("leader_id", -1) >= 0 for p in t["partitions"])
            for t in described
        ):
            return
        if time.monotonic() >= deadline:
            log.warning("topics %s have no leader yet after %.0f s", ",".join(topics), timeout_s)
            return
        time.sleep(0.05)


def broker_reachable(*, settings: Settings, timeout_s: float = 1.0) -> bool:
    """True if any bootstrap server accepts a TCP connection."""
    for server in settings.bootstrap_servers:
        host, _, port = server.rpartition(":")
        try:
            with socket.create_connection(
                (host.strip("[]") or "localhost", int(port)), timeout=timeout_s
            ):
                return True
        except (OSError, ValueError):
            continue
    return False


def make_producer(*, settings: Settings) -> KafkaProducer:
    """An idempotent, acks=all producer: a send is durable once its future resolves."""
    return KafkaProducer(
        bootstrap_servers=settings.bootstrap_servers,
        client_id=f"{settings.kafka_client_id}-producer",
        acks="all",
        enable_idempotence=True,
        linger_ms=settings.kafka_linger_ms,
        request_timeout_ms=int(settings.kafka_publish_timeout_s * 1000),
        max_block_ms=int(settings.kafka_publish_timeout_s * 1000),
        # With idempotence a partition has one batch in flight at a time, so a batch carries
        # what arrived during the previous round trip; 16 kB (the default, ~45 events) split a
        # busy ingest's records into several round trips. A quarter of a request's 1 MB.
        batch_size=256 * 1024,
    )


class AsyncProducer:
    """Publishes from asyncio code without blocking the loop or awaiting kafka-python futures.

    kafka-python's futures resolve on its sender thread; each one is bridged to an asyncio
    future with `call_soon_threadsafe`. Concurrent requests share the producer's batches
    (linger_ms), so the per-record network work is paid once per batch, not per request.
    """

    # How many key hashes `_partitioner` remembers before it starts over (a few MB at most).
    KEY_HASHES_MAX = 100_000

    def __init__(self, *, settings: Settings, producer: KafkaProducer | None = None) -> None:
        self._settings = settings
        self._producer = producer or make_producer(settings=settings)
        self._acked: dict[tuple[str, int], int] = {}
        self._acked_lock = threading.Lock()
        self._histograms: dict[str, Any] = {}
        self._key_hashes: dict[bytes, int] = {}

    def _note_ack(self, metadata: object) -> None:
        """Remember the offset after the newest acknowledged record of each partition."""
        topic = getattr(metadata, "topic", None)
        partition = getattr(metadata, "partition", None)
        offset = getattr(metadata, "offset", None)
        if topic is None or partition is None or offset is None or offset < 0:
            return
        with self._acked_lock:
            key = (topic, partition)
            if offset + 1 > self._acked.get(key, 0):
                self._acked[key] = offset + 1

    def acked_offsets(self) -> dict[tuple[str, int], int]:
        """(topic, partition) -> the offset after the newest record this producer had acked.

        Exact on any broker, Tansu too, since the offsets come from the produce responses.
        """
        with self._acked_lock:
            return dict(self._acked)

    async def publish(
        self, *, topic: str, key: bytes | None, value: bytes, headers: Headers | None = None
    ) -> None:
        """Send one record and return once the broker has acknowledged it."""
        await self.publish_many(topic=topic, records=[(key, value, headers or [])])

    async def publish_many(
        self, *, topic: str, records: Sequence[tuple[bytes | None, bytes, Headers]]
    ) -> None:
        """Send records and return once the broker acknowledged every one; raise otherwise.

        The request's records share one asyncio future: the sender thread counts the acks and
        wakes the event loop once for the whole request (or at the first failure), so a batch
        of a thousand events costs one loop wake-up, not a thousand.
        """
        if not records:
            return
        loop = asyncio.get_running_loop()
        started = time.perf_counter()
        done = loop.create_future()
        pending = [len(records)]
        lock = threading.Lock()

        def succeed() -> None:
            if not done.done():
                done.set_result(None)

        def fail(message: str) -> None:
            if not done.done():
                done.set_exception(PublishError(message))

        def on_ack(metadata: object) -> None:
            self._note_ack(metadata)
            with lock:
                pending[0] -= 1
                last = pending[0] == 0
            if last:
                loop.call_soon_threadsafe(succeed)

        def on_error(exc: BaseException) -> None:
            loop.call_soon_threadsafe(fail, str(exc) or type(exc).__name__)

        send = self._producer.send
        try:
            partition_of = self._partitioner(topic)
            for key, value, headers in records:
                partition = None if key is None or partition_of is None else partition_of(key)
                future = send(topic, key=key, value=value, headers=headers, partition=partition)
                future.add_callback(on_ack)
                future.add_errback(on_error)
        except KafkaError as exc:  # e.g. metadata not available within max_block_ms
            raise PublishError(str(exc) or type(exc).__name__) from exc
        # A plain timer rather than asyncio.timeout(): nothing to cancel and uncancel per call.
        timer = loop.call_later(
            self._settings.kafka_publish_timeout_s, fail, "broker did not acknowledge in time"
        )
        try:
            await done
        finally:
            timer.cancel()
            if not done.done():
                done.cancel()
        self._publish_seconds(topic).observe(time.perf_counter() - started)

    def _publish_seconds(self, topic: str) -> Any:
        """The publish-duration histogram of `topic` (its labelled child, looked up once)."""
        child = self._histograms.get(topic)
        if child is None:
            child = self._histograms[topic] = metrics.PUBLISH_SECONDS.labels(topic=topic)
        return child

    def _partitioner(self, topic: str) -> Callable[[bytes], int] | None:
        """Key -> partition exactly as kafka-python's DefaultPartitioner picks it (murmur2 of
        the key over the sorted partitions), with the hashes of recent keys remembered: the
        pure-Python murmur2 is a large part of a send, and a lead's key comes back often.
        None when the producer has another partitioner: it then chooses."""
        if type(self._producer.config.get("partitioner")) is not DefaultPartitioner:
            return None
        partitions = sorted(self._producer.partitions_for(topic))
        count, hashes = len(partitions), self._key_hashes
        if len(hashes) > self.KEY_HASHES_MAX:
            hashes.clear()

        def partition_of(key: bytes) -> int:
            hashed = hashes.get(key)
            if hashed is None:
                hashed = hashes[key] = murmur2(key) & 0x7FFFFFFF
            return partitions[hashed % count]

        return partition_of

    def publish_sync(
        self, *, topic: str, key: bytes | None, value: bytes, headers: Headers | None = None
    ) -> None:
        """Send one record from a plain thread and block until it is acknowledged."""
        started = time.perf_counter()
        try:
            metadata = self._producer.send(topic, key=key, value=value, headers=headers or []).get(
                timeout=self._settings.kafka_publish_timeout_s
            )
            self._note_ack(metadata)
            metrics.PUBLISH_SECONDS.labels(topic=topic).observe(time.perf_counter() - started)
        except KafkaError as exc:
            raise PublishError(str(exc) or type(exc).__name__) from exc

    def publish_many_sync(
        self, records: Sequence[tuple[str, bytes | None, bytes, Headers]]
    ) -> None:
        """Send (topic, key, value, headers) records from a thread; block until all are acked."""
        started = time.perf_counter()
        try:
            futures = [
                self._producer.send(topic, key=key, value=value, headers=headers)
                for topic, key, value, headers in records
            ]
            deadline = time.monotonic() + self._settings.kafka_publish_timeout_s
            for future in futures:
                self._note_ack(future.get(timeout=max(0.0, deadline - time.monotonic())))
            elapsed = time.perf_counter() - started
            for topic in {r[0] for r in records}:
                metrics.PUBLISH_SECONDS.labels(topic=topic).observe(elapsed)
        except KafkaError as exc:
            raise PublishError(str(exc) or type(exc).__name__) from exc

    def close(self) -> None:
        """Flush what is buffered and close; records the broker never acked are dropped."""
        timeout = self._settings.kafka_publish_timeout_s
        try:
            self._producer.close(timeout=timeout)
        except KafkaError as exc:
            # kafka-python's close() flushes first and gives up on a timeout without stopping
            # its sender thread. Those records were never acknowledged, so no caller was told
            # they were accepted; stop the sender so nothing retries in the background.
            log.warning("producer closed with unacknowledged records: %s", exc)
            sender = getattr(self._producer, "_sender", None)
            if sender is not None and sender.is_alive():
                sender.force_close()
            self._producer._closed = True  # so its __del__ does not try (and fail) again


@dataclass(frozen=True)
class Record:
    """One consumed Kafka record, as handlers see it."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    headers: Headers = field(default_factory=list)
    timestamp_ms: int | None = None

    def header(self, name: str) -> bytes | None:
        """The first header of that name, or None."""
        return next((v for k, v in self.headers if k == name), None)


Handler = Callable[[Record], None]
# Makes a whole poll batch durable in one transaction, records in offset order per partition.
BatchHandler = Callable[[Sequence[Record]], None]


def _ids_of(value: bytes) -> tuple[str, str | None]:
    """Best-effort event id and lead id for log lines, even from a value that does not parse."""
    try:
        import orjson

        parsed = orjson.loads(value)
    except Exception:
        return "?", None
    if not isinstance(parsed, dict):
        return "?", None
    lead_id = parsed.get("lead_id")
    return str(parsed.get("event_id", "?")), str(lead_id) if lead_id is not None else None


def _event_id_of(value: bytes) -> str:
    """Best-effort event id for log lines."""
    return _ids_of(value)[0]


class ConsumerLoop:
    """The consumer loop every service uses.

    Poll a batch (at most `consumer_max_poll_records`, waiting at most
    `consumer_poll_timeout_ms`). With a `batch_handler`, the whole batch is made durable in one
    transaction; if that fails for any reason, nothing of it was kept, and the records are
    handed one by one to the handler, so a poison record still goes to the DLQ alone. Without
    one (or for a batch of one), each record goes to the handler, which makes its work durable
    in its own transaction. Then `after_batch` runs (e.g. flush an outbox), and only then are
    the offsets committed. Error policy per record: a `PoisonMessage` goes to `<topic>.dlq` at
    once; any other exception is retried `consumer_max_attempts` times with exponential backoff,
    then the record goes to the DLQ with headers naming the error and its origin. The loop
    never stops on a bad record.
    """

    def __init__(
        self,
        *,
        settings: Settings,
        topics: Sequence[str],
        group_id: str,
        handler: Handler,
        dlq: AsyncProducer,
        after_batch: Callable[[], None] | None = None,
        name: str | None = None,
        batch_handler: BatchHandler | None = None,
    ) -> None:
        self.settings = settings
        self.topics = list(topics)
        self.group_id = group_id
        self.handler = handler
        self.batch_handler = batch_handler
        self.batches = 0  # poll batches made durable whole by the batch handler
        self.batch_fallbacks = 0  # batches that failed whole and went record by record
        self.after_batch = after_batch
        self.name = name or group_id
        self._dlq = dlq
        self._stop = threading.Event()
        self._consumer: KafkaConsumer | None = None
        self.assigned = threading.Event()
        self.processed = 0
        self._after_batch_pending = True
        self.dead_lettered = 0
        self._paused = threading.Event()
        # (topic, partition) -> the offset this loop last committed (the next one to read).
        self._committed: dict[tuple[str, int], int] = {}

    def _make_consumer(self) -> KafkaConsumer:
        session_ms = self.settings.kafka_session_timeout_ms
        consumer = KafkaConsumer(
            bootstrap_servers=self.settings.bootstrap_servers,
            client_id=f"{self.settings.kafka_client_id}-{self.name}",
            group_id=self.group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            session_timeout_ms=session_ms,
            heartbeat_interval_ms=max(100, session_ms // 3),
            max_poll_records=self.settings.consumer_max_poll_records,
        )
        # Know the topics' partitions before joining. Kafka forms a group at once
        # (group.initial.rebalance.delay.ms=0 in tests); a leader that assigns before its first
        # metadata answer assigns nothing, and kafka-python 3 then may not rejoin until its next
        # metadata refresh (metadata.max.age.ms, 5 min): seen here as consumers without
        # partitions in ~1 of 12 joins. Tansu's slow joins hid it.
        for topic in self.topics:
            consumer.partitions_for_topic(topic)
        consumer.subscribe(self.topics)
        return consumer

    def stop(self) -> None:
        """Ask the loop to finish its current batch and leave the group."""
        self._stop.set()

    def pause(self) -> None:
        """Stop fetching records but stay in the group (operations: let lag build, drain a
        dependency); the loop keeps polling, so the group does not rebalance."""
        self._paused.set()

    def resume(self) -> None:
        """Fetch records again after `pause`."""
        self._paused.clear()

    @property
    def paused(self) -> bool:
        """True between `pause` and `resume`."""
        return self._paused.is_set()

    def committed_offsets(self) -> dict[tuple[str, int], int]:
        """(topic, partition) -> the offset this loop committed last (the next to read)."""
        return dict(self._committed)

    @property
    def after_batch_pending(self) -> bool:
        """True while the after-batch step (e.g. the outbox) still has work to retry."""
        return self.after_batch is not None and self._after_batch_pending

    def behind(self, published: dict[tuple[str, int], int]) -> int:
        """How many records of `published` (topic, partition -> offset after its newest
        record) in the topics this loop reads it has not committed yet."""
        committed = self._committed
        return sum(
            max(0, end - committed.get(tp, 0))
            for tp, end in published.items()
            if tp[0] in self.topics
        )

    def caught_up_with(self, published: dict[tuple[str, int], int]) -> bool:
        """True once this loop committed past every record in `published` of the topics it
        reads, and its after-batch work (e.g. the outbox) is done."""
        return not self.after_batch_pending and self.behind(published) == 0

    @property
    def stopping(self) -> bool:
        """True once `stop` was called."""
        return self._stop.is_set()

    def run(self) -> None:
        """Consume until `stop` is called; safe to run in a thread."""
        consumer = None
        while consumer is None:
            try:
                consumer = self._make_consumer()
            except KafkaError as exc:
                log.error("consumer %s cannot reach the broker: %s; retrying", self.name, exc)
                if self._stop.wait(2.0):
                    return
        self._consumer = consumer
        log.info("consumer %s started on %s", self.name, ",".join(self.topics))
        try:
            while not self._stop.is_set():
                try:
                    self._poll_once(consumer)
                except Exception:
                    # A broker or commit failure must not kill the service: uncommitted
                    # records come back and are deduplicated by event id.
                    log.exception("consumer %s: poll/commit failed; retrying", self.name)
                    self._stop.wait(1.0)
        finally:
            try:
                consumer.close(autocommit=False)
            except Exception:  # closing must never mask why the loop ended
                log.exception("consumer %s did not close cleanly", self.name)
            log.info("consumer %s stopped", self.name)

    def _poll_once(self, consumer: KafkaConsumer) -> None:
        # Pausing is applied on this thread: kafka-python's consumer is not thread-safe.
        assignment = consumer.assignment()
        if self._paused.is_set() and assignment - consumer.paused():
            consumer.pause(*assignment)
        elif not self._paused.is_set() and consumer.paused():
            consumer.resume(*consumer.paused())
        batch = consumer.poll(timeout_ms=self.settings.consumer_poll_timeout_ms)
        # Readiness follows the assignment: lost in a rebalance, not ready until it is back.
        if consumer.assignment():
            self.assigned.set()
        else:
            self.assigned.clear()
        if not batch:
            if self._after_batch_pending:
                self._run_after_batch()
            return
        records = [
            Record(
                topic=message.topic,
                partition=message.partition,
                offset=message.offset,
                key=message.key,
                value=message.value if message.value is not None else b"",
                headers=list(message.headers or []),
                timestamp_ms=message.timestamp,
            )
            for messages in batch.values()
            for message in messages
        ]
        done: list[Record] = []
        if len(records) > 1 and self.batch_handler is not None and self._process_batch(records):
            done = records
        else:
            for record in records:
                if self._stop.is_set():
                    break  # leave the rest uncommitted; it is redelivered after restart
                self._process(record)
                done.append(record)
        offsets: dict[TopicPartition, OffsetAndMetadata] = {}
        for record in done:
            offsets[TopicPartition(record.topic, record.partition)] = OffsetAndMetadata(
                record.offset + 1, "", -1
            )
        self._run_after_batch()
        if offsets:
            consumer.commit(offsets)
            for tp, position in offsets.items():
                self._committed[(tp.topic, tp.partition)] = position.offset

    def _run_after_batch(self) -> None:
        # Work that after_batch does (e.g. publishing an outbox) is already durable in the
        # database, so a failure here only delays it: it is retried after the next poll.
        if self.after_batch is None:
            return
        try:
            self.after_batch()
            self._after_batch_pending = False
        except Exception:
            self._after_batch_pending = True
            log.exception("consumer %s: after-batch step failed; will retry", self.name)

    def _sleep_backoff(self, attempt: int) -> None:
        self._stop.wait(self.settings.consumer_retry_backoff_s * (2 ** (attempt - 1)))

    def _context(self, record: Record) -> dict[str, object]:
        """The structured-log fields naming a record."""
        event_id, lead_id = _ids_of(record.value)
        context: dict[str, object] = {
            "topic": record.topic,
            "partition": record.partition,
            "offset": record.offset,
            "event_id": event_id,
            "group": self.group_id,
        }
        if lead_id is not None:
            context["lead_id"] = lead_id
        return context

    def _process_batch(self, records: Sequence[Record]) -> bool:
        """Hand the whole batch to the batch handler; False (nothing kept) if it failed."""
        assert self.batch_handler is not None
        started = time.perf_counter()
        try:
            self.batch_handler(records)
        except Exception as exc:
            self.batch_fallbacks += 1
            first, last = records[0], records[-1]
            log.warning(
                "consumer %s: a batch of %d records (%s[%d] offset=%d to %s[%d] offset=%d) "
                "failed as a whole (%s: %s); handling them one by one",
                self.name,
                len(records),
                first.topic,
                first.partition,
                first.offset,
                last.topic,
                last.partition,
                last.offset,
                type(exc).__name__,
                exc,
            )
            return False
        each = (time.perf_counter() - started) / len(records)
        self.batches += 1
        self.processed += len(records)
        for record in records:
            metrics.EVENTS_CONSUMED.labels(topic=record.topic, group=self.group_id).inc()
            metrics.PROCESSING_SECONDS.labels(topic=record.topic, group=self.group_id).observe(each)
        return True

    def _process(self, record: Record) -> None:
        where = f"{record.topic}[{record.partition}] offset={record.offset}"
        started = time.perf_counter()
        last_error: BaseException | None = None
        for attempt in range(1, self.settings.consumer_max_attempts + 1):
            try:
                self.handler(record)
                self.processed += 1
                metrics.EVENTS_CONSUMED.labels(topic=record.topic, group=self.group_id).inc()
                metrics.PROCESSING_SECONDS.labels(topic=record.topic, group=self.group_id).observe(
                    time.perf_counter() - started
                )
                return
            except PoisonMessage as exc:
                last_error = exc
                log.error(
                    "%s event_id=%s poison message: %s",
                    where,
                    _event_id_of(record.value),
                    exc,
                    extra=self._context(record),
                )
                break
            except Exception as exc:
                last_error = exc
                log.warning(
                    "%s event_id=%s attempt %d/%d failed: %s",
                    where,
                    _event_id_of(record.value),
                    attempt,
                    self.settings.consumer_max_attempts,
                    exc,
                    exc_info=attempt == self.settings.consumer_max_attempts,
                    extra=self._context(record),
                )
                if attempt < self.settings.consumer_max_attempts:
                    self._sleep_backoff(attempt)
        self._dead_letter(record, last_error)
        metrics.PROCESSING_SECONDS.labels(topic=record.topic, group=self.group_id).observe(
            time.perf_counter() - started
        )

    def _dead_letter(self, record: Record, error: BaseException | None) -> None:
        where = f"{record.topic}[{record.partition}] offset={record.offset}"
        message = f"{type(error).__name__}: {error}" if error else "unknown error"
        headers: Headers = [h for h in record.headers if not h[0].startswith("leadflow.dlq.")] + [
            ("leadflow.dlq.error", message[:2000].encode()),
            ("leadflow.dlq.topic", record.topic.encode()),
            ("leadflow.dlq.partition", str(record.partition).encode()),
            ("leadflow.dlq.offset", str(record.offset).encode()),
            ("leadflow.dlq.group", self.group_id.encode()),
            ("leadflow.dlq.at", str(int(time.time() * 1000)).encode()),
        ]
        dlq_topic = self.settings.dlq_topic(record.topic)
        # Losing the DLQ write would lose the record: keep trying until it lands or we stop,
        # in which case the offset stays uncommitted and the record comes back.
        attempt = 0
        while True:
            attempt += 1
            try:
                self._dlq.publish_sync(
                    topic=dlq_topic, key=record.key, value=record.value, headers=headers
                )
                self.dead_lettered += 1
                metrics.DLQ_PARKED.labels(topic=record.topic).inc()
                log.error(
                    "%s event_id=%s parked in %s: %s",
                    where,
                    _event_id_of(record.value),
                    dlq_topic,
                    message,
                    extra=self._context(record),
                )
                return
            except PublishError as exc:
                log.error(
                    "%s event_id=%s could not reach %s (attempt %d): %s",
                    where,
                    _event_id_of(record.value),
                    dlq_topic,
                    attempt,
                    exc,
                    extra=self._context(record),
                )
                if self._stop.is_set():
                    raise
                self._sleep_backoff(min(attempt, 6))
