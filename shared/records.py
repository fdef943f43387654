"""A consumed record as handlers see it, and what a dead letter carries about where it was."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import orjson

from shared.kafka import Headers


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

    @property
    def where(self) -> str:
        """`topic[partition] offset=…`, as every log line about a record names it."""
        return f"{self.topic}[{self.partition}] offset={self.offset}"


Handler = Callable[[Record], None]
# Makes a whole poll batch durable in one transaction, records in offset order per partition.
BatchHandler = Callable[[Sequence[Record]], None]


def ids_of(value: bytes) -> tuple[str, str | None]:
    """Best-effort event id and lead id for log lines, even from a value that does not parse."""
    try:
        parsed = orjson.loads(value)
    except orjson.JSONDecodeError:
        return "?", None
    if not isinstance(parsed, dict):
        return "?", None
    lead_id = parsed.get("lead_id")
    return str(parsed.get("event_id", "?")), str(lead_id) if lead_id is not None else None


def event_id_of(value: bytes) -> str:
    """Best-effort event id for log lines."""
    return ids_of(value)[0]


def dead_letter_headers(record: Record, *, reason: str, group_id: str) -> Headers:
    """The record's own headers plus `leadflow.dlq.*`: why it was parked (`reason`, which must
    hold no personal data), where it sat, which group gave up on it and when."""
    kept = [h for h in record.headers if not h[0].startswith("leadflow.dlq.")]
    return [
        *kept,
        ("leadflow.dlq.error", reason.encode()),
        ("leadflow.dlq.topic", record.topic.encode()),
        ("leadflow.dlq.partition", str(record.partition).encode()),
        ("leadflow.dlq.offset", str(record.offset).encode()),
        ("leadflow.dlq.group", group_id.encode()),
        ("leadflow.dlq.at", str(int(time.time() * 1000)).encode()),
    ]


def log_context(record: Record, *, group_id: str) -> dict[str, object]:
    """The structured-log fields naming a record a group's consumer handles."""
    event_id, lead_id = ids_of(record.value)
    context: dict[str, object] = {
        "topic": record.topic,
        "partition": record.partition,
        "offset": record.offset,
        "event_id": event_id,
        "group": group_id,
    }
    if lead_id is not None:
        context["lead_id"] = lead_id
    return context
