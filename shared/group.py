"""The consumer loop's side of group membership with kafka-python 3: seeing a (re)join through,
and noticing commits that wait for a rebalance too long."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from typing import Any

from kafka import KafkaConsumer
from kafka.structs import TopicPartition

from shared import kafka_join
from shared.config import Settings

log = logging.getLogger(__name__)

kafka_join.apply()  # see shared/kafka_join.py: a join that finished between polls is kept

# While the consumer (re)joins its group the loop polls back to back, JOIN_POLL_SLICE_MS at a
# time, doing nothing else: held records are retried after the join, on the partitions it
# leaves. After JOIN_WAIT_S the outer loop runs once, and polls again. (kafka-python 3.0.12 lost a
# join that finished between two polls, and never took up one that a metadata or subscription
# change started: either kept a group rebalancing for good; shared/kafka_join.py fixes both.)
JOIN_POLL_SLICE_MS = 100
JOIN_WAIT_S = 10.0
# How long a stopping loop waits for a join under way, so it can commit its durable work.
STOP_JOIN_WAIT_S = 5.0
# How often a consumer refreshes its metadata (kafka-python's default is 5 minutes): a member
# assigned nothing because a topic's partitions were not in its metadata yet rejoins when a
# refresh shows them.
METADATA_MAX_AGE_MS = 30_000
# How long a starting consumer waits for its topics' partitions to show in its metadata.
PARTITIONS_WAIT_S = 15.0


def await_partitions(
    consumer: KafkaConsumer,
    *,
    topics: Sequence[str],
    stop: threading.Event,
    name: str,
    wait_s: float = PARTITIONS_WAIT_S,
) -> bool:
    """Wait (at most `wait_s`) until the consumer's metadata has partitions for every topic, so
    that its group's leader assigns them: a topic another process created a moment ago may not
    be in it yet. False (and a warning) if some never showed."""
    deadline = time.monotonic() + wait_s
    waiting = list(topics)
    while True:
        waiting = [t for t in waiting if not consumer.partitions_for_topic(t)]
        if not waiting:
            return True
        if time.monotonic() >= deadline or stop.is_set():
            log.warning(
                "consumer %s: no partitions known for %s after %.0f s; joining anyway (the "
                "group rebalances when a metadata refresh shows them)",
                name,
                ",".join(waiting),
                wait_s,
            )
            return False
        stop.wait(0.2)
        consumer.topics()  # a fresh metadata request (partitions_for_topic uses the cache)


def joining_group(consumer: KafkaConsumer) -> bool:
    """True while `consumer` is (re)joining its group: the next poll should wait for the join."""
    coordinator = getattr(consumer, "_coordinator", None)  # kafka-python has no public call
    try:
        return bool(
            coordinator is not None
            and (coordinator.rebalance_in_progress() or coordinator.need_rejoin())
        )
    except Exception:  # an internal that changed must not stop the loop: poll as usual
        return False


def membership(consumer: KafkaConsumer) -> str:
    """The member's side of its group in one line (state, generation, join task), for a
    warning about a rebalance that does not end."""
    try:
        coordinator = consumer._coordinator  # kafka-python has no public call
        task = coordinator._join_task
        if task is None:
            join = "none"
        elif not task.is_done:
            join = "in flight"
        else:
            join = f"done ({task.exception!r})" if task.failed() else "done, not taken up"
        generation = coordinator._generation
        return (
            f"state={coordinator.state.name} generation={generation.generation_id} "
            f"member={generation.member_id} rejoin_needed={coordinator.rejoin_needed} "
            f"rejoining={coordinator.rejoining} join_task={join} "
            f"coordinator={coordinator.coordinator_id} assigned={len(consumer.assignment())}"
        )
    except Exception as exc:  # an internal that changed: say so rather than fail the warning
        return f"membership unknown ({exc!r})"


def poll_through_join(
    consumer: KafkaConsumer, *, stop: threading.Event | None = None, wait_s: float = JOIN_WAIT_S
) -> dict[TopicPartition, list[Any]]:
    """Poll back to back until the group join is done (see JOIN_POLL_SLICE_MS), records come,
    `stop` is set or `wait_s` pass; returns what the last poll fetched."""
    stop = stop or threading.Event()
    deadline = time.monotonic() + wait_s
    while True:
        batch: dict[TopicPartition, list[Any]] = consumer.poll(timeout_ms=JOIN_POLL_SLICE_MS)
        if batch or stop.is_set() or time.monotonic() >= deadline or not joining_group(consumer):
            return batch


class RebalanceWatch:
    """Warns once when a loop's commits keep waiting for a rebalance longer than a session."""

    def __init__(self, *, worker: str, group_id: str, settings: Settings) -> None:
        self.worker, self.group_id, self.settings = worker, group_id, settings
        self._since: float | None = None
        self._warned = False

    def deferred(self, consumer: KafkaConsumer) -> None:
        """A commit of `consumer` was deferred by a rebalance."""
        now = time.monotonic()
        if self._since is None:
            self._since, self._warned = now, False
            return
        waited = now - self._since
        if not self._warned and waited * 1000 > self.settings.kafka_session_timeout_ms:
            self._warned = True
            log.warning(
                "%s: group %s has been rebalancing for %.0f s with work to commit; "
                "a member that stopped polling is dropped after %d ms (%s)",
                self.worker,
                self.group_id,
                waited,
                self.settings.kafka_max_poll_interval_ms,
                membership(consumer),
            )

    def committed(self) -> None:
        """A commit went through."""
        self._since = None
