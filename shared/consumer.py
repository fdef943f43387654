"""The consumer loop every service uses: poll a batch, make it durable, then commit its offsets.

Its error policy is `shared.faults`: a poison record goes to `<topic>.dlq` at once, a record
whose handling fails on its own is retried `consumer_max_attempts` times and then dead-lettered
alone, and a dependency's outage holds the records in memory, pauses every assigned partition
(the loop keeps polling, so the group does not rebalance) and retries them with capped
exponential backoff for as long as it lasts, committing nothing meanwhile.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Literal

from kafka import KafkaConsumer
from kafka.errors import CommitFailedError, KafkaError, RebalanceInProgressError
from kafka.structs import OffsetAndMetadata, TopicPartition

from shared import group, metrics
from shared.config import Settings
from shared.faults import (
    Dependency,
    Fault,
    Outage,
    PublishError,
    classify,
    dead_letter_reason,
)
from shared.group import STOP_JOIN_WAIT_S, RebalanceWatch, joining_group, poll_through_join
from shared.kafka import AsyncProducer
from shared.records import (
    BatchHandler,
    Handler,
    Record,
    dead_letter_headers,
    event_id_of,
    log_context,
)

log = logging.getLogger(__name__)


class ConsumerLoop:
    """The consumer loop every service uses.

    Poll a batch (at most `consumer_max_poll_records`, waiting at most
    `consumer_poll_timeout_ms`). With a `batch_handler`, the whole batch is made durable in one
    transaction; if that fails with the records' own error, nothing of it was kept, and the
    records are handed one by one to the handler, so a poison record still goes to the DLQ
    alone. Without one (or for a batch of one), each record goes to the handler, which makes
    its work durable in its own transaction. Then `after_batch` runs (e.g. flush an outbox),
    and only then are the offsets committed. A dependency's outage, at any of these steps, is
    waited out (see the module's doc); `/readyz` and `/metrics` say so meanwhile.
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
        # Offsets of durable work not committed yet (a commit failed): retried each round.
        self._to_commit: dict[TopicPartition, OffsetAndMetadata] = {}
        # Records polled but not made durable because a dependency is down: retried in order.
        self._held: list[Record] = []
        # How long commits have waited for a rebalance (warns past a session).
        self._rebalance = RebalanceWatch(
            worker=f"consumer {self.name}", group_id=group_id, settings=settings
        )
        # Handling records; the after-batch step; polling and committing (the broker).
        self.outage = Outage.from_settings(worker=f"consumer {self.name}", settings=settings)
        self.after_batch_outage = Outage.from_settings(
            worker=f"consumer {self.name} after-batch", settings=settings
        )
        self.broker_outage = Outage.from_settings(
            worker=f"consumer {self.name} broker", settings=settings
        )

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
            max_poll_interval_ms=self.settings.kafka_max_poll_interval_ms,
            max_poll_records=self.settings.consumer_max_poll_records,
            # A member assigned nothing because a topic's partitions were not in its metadata
            # yet rejoins when a refresh shows them: every 30 s, not kafka-python's 5 minutes.
            metadata_max_age_ms=group.METADATA_MAX_AGE_MS,
        )
        # Know the topics' partitions before joining. Kafka forms a group at once
        # (group.initial.rebalance.delay.ms=0 in tests); a leader that assigns before its first
        # metadata answer assigns nothing, and kafka-python 3 then may not rejoin until its next
        # metadata refresh (metadata.max.age.ms, 5 min by default; 30 s here): seen as
        # consumers without partitions in ~1 of 12 joins. Tansu's slow joins hid it.
        group.await_partitions(consumer, topics=self.topics, stop=self._stop, name=self.name)
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

    def paused_reason(self) -> str | None:
        """Why consumption is paused: `operator`, or the dependency being waited out; None
        while it runs."""
        if self._paused.is_set():
            return "operator"
        for outage in (self.outage, self.broker_outage):
            dependency = outage.dependency
            if outage.active and dependency is not None:
                return str(dependency)
        return None

    def outages(self) -> list[Outage]:
        """This loop's outage trackers: handling records, the broker, the after-batch step."""
        return [self.outage, self.broker_outage, self.after_batch_outage]

    def problems(self) -> list[str]:
        """What keeps this loop from working, as `/readyz` names it (empty when it works)."""
        found = [] if self.assigned.is_set() else ["no partitions assigned yet"]
        for outage in self.outages():
            described = outage.describe()
            if described:
                found.append(f"{outage.worker}: {described}")
        return found

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
                wait = self.broker_outage.failed(exc, Dependency.BROKER, where="start")
                if self._stop.wait(wait):
                    return
        self._consumer = consumer
        log.info("consumer %s started on %s", self.name, ",".join(self.topics))
        try:
            while not self._stop.is_set():
                try:
                    self._poll_once(consumer)
                except Exception as exc:
                    # Never let a failure end the loop: what was not committed comes back and
                    # is deduplicated by event id.
                    verdict = classify(exc)
                    if verdict.fault is Fault.OUTAGE and verdict.dependency is not None:
                        wait = self.broker_outage.failed(exc, verdict.dependency, where="poll")
                    else:
                        log.exception("consumer %s: poll/commit failed; retrying", self.name)
                        wait = 1.0
                    self._stop.wait(wait)
        finally:
            try:
                if self._to_commit and joining_group(consumer):
                    # A rebalance under way refuses commits: see it through (briefly) first.
                    poll_through_join(consumer, wait_s=STOP_JOIN_WAIT_S)
                self._commit(consumer)  # what was made durable since the last commit
            except Exception as exc:  # its records come back to the next owner, deduplicated
                log.warning("consumer %s: final commit failed: %s", self.name, exc)
            try:
                consumer.close(autocommit=False)
            except Exception:  # closing must never mask why the loop ended
                log.exception("consumer %s did not close cleanly", self.name)
            log.info("consumer %s stopped", self.name)

    def _apply_pause(self, consumer: KafkaConsumer) -> None:
        # Applied on this thread: kafka-python's consumer is not thread-safe. Held records
        # (an outage) keep every partition paused until they are done, so nothing newer
        # overtakes them.
        hold = self._paused.is_set() or bool(self._held)
        assignment = consumer.assignment()
        if hold and assignment - consumer.paused():
            consumer.pause(*assignment)
        elif not hold and consumer.paused():
            consumer.resume(*consumer.paused())

    def _poll_once(self, consumer: KafkaConsumer) -> None:
        self._apply_pause(consumer)
        if joining_group(consumer):
            # Held records wait for the join: they are retried on the partitions it leaves here.
            batch = poll_through_join(consumer, stop=self._stop)
        elif self._held and self.outage.due() and not self._paused.is_set():
            # Retry what the outage interrupted, on the partitions this loop still owns (a
            # revoked one's records are its new owner's to read from the committed offset).
            assignment = consumer.assignment()
            records = [r for r in self._held if TopicPartition(r.topic, r.partition) in assignment]
            self._held = []
            self._work(consumer, records)
            return
        elif self._held:
            # Waiting out an outage: poll (every partition is paused, so this only keeps the
            # group membership and the rebalance protocol going) until the retry, at most half
            # a second at a time; no busy loop, whatever poll does when paused.
            wait = min(0.5, self.outage.seconds_to_retry())
            started = time.monotonic()
            batch = consumer.poll(timeout_ms=max(10, int(wait * 1000)))
            self._stop.wait(max(0.0, wait - (time.monotonic() - started)))
        else:
            batch = consumer.poll(timeout_ms=self.settings.consumer_poll_timeout_ms)
        # Readiness follows the assignment: lost in a rebalance, not ready until it is back.
        if consumer.assignment():
            self.assigned.set()
        else:
            self.assigned.clear()
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
        if self._held:
            # Fetched before the pause took effect, or fetched again from the committed offset
            # after a rebalance gave the partition back: after the rest, each offset once.
            held = {(r.topic, r.partition, r.offset) for r in self._held}
            self._held.extend(r for r in records if (r.topic, r.partition, r.offset) not in held)
            return
        if not records:
            if self._after_batch_pending and self.after_batch_outage.due():
                self._run_after_batch()
            self._commit(consumer)
            return
        self._work(consumer, records)

    def _work(self, consumer: KafkaConsumer, records: list[Record]) -> None:
        """Make `records` durable, run the after-batch step, commit; hold the rest on an
        outage."""
        done, outage = self._handle(records)
        for record in done:
            self._to_commit[TopicPartition(record.topic, record.partition)] = OffsetAndMetadata(
                record.offset + 1, "", -1
            )
        if outage is not None:
            held = records[len(done) :]
            self._held = held
            verdict = classify(outage)
            first = held[0]
            self.outage.failed(
                outage,
                verdict.dependency or Dependency.NETWORK,
                where=f"{first.where} event_id={event_id_of(first.value)}",
            )
            self._apply_pause(consumer)
        else:
            self.outage.recovered()
        if self.after_batch_outage.due():
            self._run_after_batch()
        self._commit(consumer)

    def _commit(self, consumer: KafkaConsumer) -> None:
        """Commit the offsets of durable work; on a broker failure keep them for next round."""
        if not self._to_commit:
            self.broker_outage.recovered()
            return
        offsets, self._to_commit = self._to_commit, {}
        try:
            consumer.commit(offsets)
        except (CommitFailedError, RebalanceInProgressError) as exc:
            # The group rebalanced (or is rebalancing; the next poll takes part). Partitions
            # this member kept are committed at the next try; one that went to another member
            # is read by it from the last committed offset, its repeats dropped by event id.
            kept = consumer.assignment()
            for tp, position in offsets.items():
                if tp in kept:
                    self._to_commit.setdefault(tp, position)
            log.info("consumer %s: commit deferred by a rebalance: %s", self.name, exc)
            self._rebalance.deferred(consumer)
            return
        except KafkaError:
            for tp, position in offsets.items():
                self._to_commit.setdefault(tp, position)
            raise
        for tp, position in offsets.items():
            self._committed[(tp.topic, tp.partition)] = position.offset
        self.broker_outage.recovered()
        self._rebalance.committed()

    def _handle(self, records: list[Record]) -> tuple[list[Record], BaseException | None]:
        """The prefix of `records` made durable (or dead-lettered), and the outage that
        stopped the rest (None if nothing did)."""
        if len(records) > 1 and self.batch_handler is not None:
            outage = self._process_batch(records)
            if outage is None:
                return records, None
            if outage is not False:
                return [], outage
        done: list[Record] = []
        for record in records:
            if self._stop.is_set():
                break  # leave the rest uncommitted; it is redelivered after restart
            outage = self._process(record)
            if outage is not None:
                return done, outage
            done.append(record)
        return done, None

    def _run_after_batch(self) -> None:
        # Work that after_batch does (e.g. publishing an outbox) is already durable in the
        # database, so a failure here only delays it: it is retried with backoff.
        if self.after_batch is None:
            return
        try:
            self.after_batch()
        except Exception as exc:
            self._after_batch_pending = True
            verdict = classify(exc)
            if verdict.fault is not Fault.OUTAGE:
                log.exception("consumer %s: after-batch step failed; will retry", self.name)
            self.after_batch_outage.failed(exc, verdict.dependency or Dependency.NETWORK)
            return
        self._after_batch_pending = False
        self.after_batch_outage.recovered()

    def _sleep_backoff(self, attempt: int) -> None:
        self._stop.wait(self.settings.consumer_retry_backoff_s * (2 ** (attempt - 1)))

    def _process_batch(self, records: Sequence[Record]) -> BaseException | Literal[False] | None:
        """Hand the whole batch to the batch handler: None when it is durable, the exception
        when a dependency is down, False when it failed on its records (nothing kept)."""
        assert self.batch_handler is not None
        started = time.perf_counter()
        try:
            self.batch_handler(records)
        except Exception as exc:
            if classify(exc).fault is Fault.OUTAGE:
                return exc
            self.batch_fallbacks += 1
            first, last = records[0], records[-1]
            log.warning(
                "consumer %s: a batch of %d records (%s to %s) failed as a whole (%s: %s); "
                "handling them one by one",
                self.name,
                len(records),
                first.where,
                last.where,
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
        return None

    def _process(self, record: Record) -> BaseException | None:
        """Handle one record under the error policy; returns the outage that stopped it, or
        None once it is durable or dead-lettered."""
        started = time.perf_counter()
        last_error: BaseException | None = None
        attempts = self.settings.consumer_max_attempts
        for attempt in range(1, attempts + 1):
            try:
                self.handler(record)
            except Exception as exc:
                last_error = exc
                verdict = classify(exc)
                if verdict.fault is Fault.OUTAGE:
                    return exc
                if verdict.fault is Fault.POISON:
                    log.error(
                        "%s event_id=%s poison message: %s",
                        record.where,
                        event_id_of(record.value),
                        exc,
                        extra=log_context(record, group_id=self.group_id),
                    )
                    break
                log.warning(
                    "%s event_id=%s attempt %d/%d failed: %s",
                    record.where,
                    event_id_of(record.value),
                    attempt,
                    attempts,
                    exc,
                    exc_info=attempt == attempts,
                    extra=log_context(record, group_id=self.group_id),
                )
                if attempt < attempts:
                    self._sleep_backoff(attempt)
                continue
            self.processed += 1
            metrics.EVENTS_CONSUMED.labels(topic=record.topic, group=self.group_id).inc()
            metrics.PROCESSING_SECONDS.labels(topic=record.topic, group=self.group_id).observe(
                time.perf_counter() - started
            )
            return None
        try:
            self._dead_letter(record, last_error)
        except PublishError as exc:
            return exc  # the broker is down: the record is held and tried again after
        metrics.PROCESSING_SECONDS.labels(topic=record.topic, group=self.group_id).observe(
            time.perf_counter() - started
        )
        return None

    def _dead_letter(self, record: Record, error: BaseException | None) -> None:
        message = dead_letter_reason(error)
        headers = dead_letter_headers(record, reason=message, group_id=self.group_id)
        dlq_topic = self.settings.dlq_topic(record.topic)
        # Raises PublishError when the broker does not take it: the caller holds the record.
        self._dlq.publish_sync(topic=dlq_topic, key=record.key, value=record.value, headers=headers)
        self.dead_lettered += 1
        metrics.DLQ_PARKED.labels(topic=record.topic).inc()
        log.error(
            "%s event_id=%s parked in %s: %s",
            record.where,
            event_id_of(record.value),
            dlq_topic,
            message,
            extra=log_context(record, group_id=self.group_id),
        )
