"""Stream health from offset samples: lag per group and partition, rates, DLQ depth.

Pure: the samples are read from the broker elsewhere (`shared.ops.broker`).
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

TopicPartitionKey = tuple[str, int]
GroupPartitionKey = tuple[str, str, int]

TANSU_NOTE = (
    "Tansu reports a partition's end offset as the base offset of its newest record batch + 1, "
    "not the offset after its last record: end offsets, lag and rates are lower bounds here "
    "(exact on Apache Kafka)."
)


@dataclass(frozen=True)
class BrokerInfo:
    """Which broker the process talks to, and whether its end offsets can be trusted."""

    bootstrap_servers: str
    cluster_id: str | None
    kind: str
    broker_ids: tuple[int, ...] = ()

    @property
    def end_offsets_exact(self) -> bool:
        """False on Tansu, whose end offsets are under-reported (design.md); true on Kafka.

        Only the embedded mode runs on Tansu; the caveat (and TANSU_NOTE) exists for it.
        """
        return self.kind != "tansu"

    def as_dict(self) -> dict[str, Any]:
        """The JSON form, with the caveat spelled out when offsets are not exact."""
        return {
            "bootstrap_servers": self.bootstrap_servers,
            "cluster_id": self.cluster_id,
            "kind": self.kind,
            "broker_ids": list(self.broker_ids),
            "end_offsets_exact": self.end_offsets_exact,
            "note": None if self.end_offsets_exact else TANSU_NOTE,
        }


def broker_kind(cluster_id: str | None) -> str:
    """`tansu` for Tansu's cluster id, else `kafka` (any Kafka-protocol broker)."""
    return "tansu" if (cluster_id or "").lower().startswith("tansu") else "kafka"


@dataclass(frozen=True)
class Sample:
    """One reading of the broker: offsets per partition and per consumer group."""

    at_ms: int
    beginning: Mapping[TopicPartitionKey, int]
    end: Mapping[TopicPartitionKey, int]
    # group -> topics it consumes; committed offsets by (group, topic, partition).
    groups: Mapping[str, Sequence[str]]
    committed: Mapping[GroupPartitionKey, int]
    last_event_ms: Mapping[TopicPartitionKey, int] = field(default_factory=dict)
    error: str | None = None


def lag(sample: Sample, *, group: str, topic: str, partition: int) -> int | None:
    """Records the group has still to consume on that partition, never negative.

    A group that committed nothing starts at the beginning (leadflow's consumers reset to
    `earliest`), so its lag is the whole retained partition.
    """
    end = sample.end.get((topic, partition))
    if end is None:
        return None
    committed = sample.committed.get((group, topic, partition))
    start = committed if committed is not None else sample.beginning.get((topic, partition), 0)
    # Kafka's end offset is never behind a committed offset; the clamp is for Tansu (embedded
    # mode), whose under-reported end can be.
    return max(0, end - start)


def topic_lag(sample: Sample, *, group: str, topic: str) -> int:
    """A group's lag over every partition of a topic."""
    return sum(
        lag(sample, group=group, topic=topic, partition=p) or 0
        for p in partitions_of(sample, topic)
    )


def newest_event_ms(sample: Sample, *, topic: str) -> int | None:
    """The newest record time seen on any partition of a topic, or None."""
    return max((at for (t, _), at in sample.last_event_ms.items() if t == topic), default=None)


def topic_depth(sample: Sample, *, topic: str) -> int:
    """Records retained in a topic (end minus beginning, over its partitions)."""
    return sum(
        max(0, end - sample.beginning.get(tp, 0))
        for tp, end in sample.end.items()
        if tp[0] == topic
    )


def partitions_of(sample: Sample, topic: str) -> list[int]:
    """The partition numbers of `topic` in the sample, in order."""
    return sorted(p for t, p in sample.end if t == topic)


def rate_per_s(
    history: Sequence[Sample], *, topic: str, partition: int | None = None, window_ms: int
) -> float | None:
    """Records per second appended over the last `window_ms` (or the history there is).

    None when fewer than two readings span any time. `partition=None` adds up the topic.
    """
    usable = [s for s in history if s.error is None and s.end]
    if len(usable) < 2:
        return None
    newest = usable[-1]
    oldest = next((s for s in usable if s.at_ms >= newest.at_ms - window_ms), newest)
    if oldest is newest:
        oldest = usable[-2]
    elapsed_s = (newest.at_ms - oldest.at_ms) / 1000
    if elapsed_s <= 0:
        return None
    return max(0, _appended(oldest, newest, topic, partition)) / elapsed_s


def _appended(old: Sample, new: Sample, topic: str, partition: int | None) -> int:
    return sum(
        end - old.end.get(tp, new.beginning.get(tp, 0))
        for tp, end in new.end.items()
        if tp[0] == topic and (partition is None or tp[1] == partition)
    )


def throughput_series(history: Sequence[Sample], *, topic: str) -> list[list[float]]:
    """`[time ms, records/s]` between consecutive readings of a topic, oldest first."""
    usable = [s for s in history if s.error is None and s.end]
    points: list[list[float]] = []
    for old, new in itertools.pairwise(usable):
        elapsed_s = (new.at_ms - old.at_ms) / 1000
        if elapsed_s > 0:
            points.append(
                [new.at_ms, round(max(0, _appended(old, new, topic, None)) / elapsed_s, 3)]
            )
    return points


def lag_series(
    history: Sequence[Sample], *, group: str, topic: str, partition: int
) -> list[list[float]]:
    """`[time ms, lag]` of a group on a partition at each reading, oldest first."""
    points: list[list[float]] = []
    for sample in history:
        if sample.error is not None:
            continue
        value = lag(sample, group=group, topic=topic, partition=partition)
        if value is not None:
            points.append([sample.at_ms, value])
    return points
