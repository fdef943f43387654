"""Kafka plumbing on kafka-python: topics, an asyncio-safe producer, the one consumer loop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from kafka import KafkaProducer
from kafka.admin import KafkaAdminClient, NewTopic
from kafka.errors import KafkaError, TopicAlreadyExistsError
from kafka.partitioner.default import DefaultPartitioner, murmur2

from shared import metrics
from shared.config import Settings
from shared.faults import PublishError

log = logging.getLogger(__name__)

Headers = list[tuple[str, bytes]]


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
        # consumer that joins its group in between is assigned nothing and waits for its next
        # metadata refresh. Wait for the partitions and their leaders, of the topics that
        # existed too: another process (services start side by side) may have created them a
        # moment ago. Once they are there this is one DescribeTopics round trip.
        _wait_for_leaders(admin, wanted, timeout_s=timeout_s)
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
        partitions: list[int] = sorted(self._producer.partitions_for(topic))
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
        self, records: Sequence[tuple[str, bytes | None, bytes | None, Headers]]
    ) -> None:
        """Send (topic, key, value, headers) records from a thread; block until all are acked
        (a None value is a tombstone)."""
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
