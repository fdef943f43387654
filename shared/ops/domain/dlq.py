"""Dead-lettered records: what the consumer loop wrote into their headers, read back."""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson

DLQ_HEADER_PREFIX = "leadflow.dlq."
REPLAYED_FROM_HEADER = "leadflow.replayed-from"


_NOT_JSON = object()


class BadDlqId(ValueError):
    """A DLQ message id that is not `<dlq topic>:<partition>:<offset>`."""


@dataclass(frozen=True)
class DlqId:
    """Where a parked message sits: its dead-letter topic, partition and offset."""

    topic: str
    partition: int
    offset: int

    def __str__(self) -> str:
        return f"{self.topic}:{self.partition}:{self.offset}"

    @classmethod
    def parse(cls, text: str) -> DlqId:
        """Read `<topic>:<partition>:<offset>`; raises BadDlqId naming what is wrong."""
        topic, sep1, rest = text.rpartition(":")
        topic, sep2, partition = topic.rpartition(":")
        if not (sep1 and sep2 and topic):
            raise BadDlqId(f"{text!r} is not <dlq topic>:<partition>:<offset>")
        # Digits only: int() would also take signs, spaces and underscores.
        if not (partition.isascii() and partition.isdigit() and rest.isascii() and rest.isdigit()):
            raise BadDlqId(f"{text!r}: partition and offset must be integers")
        return cls(topic=topic, partition=int(partition), offset=int(rest))


@dataclass(frozen=True)
class ParkedMessage:
    """One record in a dead-letter topic, with the error and origin from its headers."""

    id: DlqId
    key: bytes | None
    value: bytes
    headers: Sequence[tuple[str, bytes]]
    timestamp_ms: int | None

    def header(self, name: str) -> str | None:
        """A header's text, or None."""
        raw = next((v for k, v in self.headers if k == name), None)
        return None if raw is None else raw.decode("utf-8", "replace")

    @property
    def source_topic(self) -> str | None:
        """The topic the record was consumed from."""
        return self.header(DLQ_HEADER_PREFIX + "topic")

    @property
    def event_id(self) -> str | None:
        """The event id in the value, when the value is a JSON object that has one."""
        parsed = self._parsed()
        value = parsed.get("event_id") if isinstance(parsed, dict) else None
        return str(value) if value is not None else None

    def _parsed(self) -> Any:
        try:
            return orjson.loads(self.value)
        except orjson.JSONDecodeError:
            return _NOT_JSON

    def replay_headers(self) -> list[tuple[str, bytes]]:
        """The original headers without the DLQ's, plus where the replay came from."""
        kept = [
            (k, v)
            for k, v in self.headers
            if not k.startswith(DLQ_HEADER_PREFIX) and k != REPLAYED_FROM_HEADER
        ]
        return [*kept, (REPLAYED_FROM_HEADER, str(self.id).encode())]

    def as_dict(self, *, replayed_at: str | None = None) -> dict[str, Any]:
        """The JSON form: error, origin, the value (as JSON when it parses, else base64)."""
        parsed = self._parsed()
        origin_partition = self.header(DLQ_HEADER_PREFIX + "partition")
        origin_offset = self.header(DLQ_HEADER_PREFIX + "offset")
        at = _int_or_none(self.header(DLQ_HEADER_PREFIX + "at"))
        return {
            "id": str(self.id),
            "dlq_topic": self.id.topic,
            "partition": self.id.partition,
            "offset": self.id.offset,
            "error": self.header(DLQ_HEADER_PREFIX + "error"),
            "origin": {
                "topic": self.source_topic,
                "partition": _int_or_none(origin_partition),
                "offset": _int_or_none(origin_offset),
                "group": self.header(DLQ_HEADER_PREFIX + "group"),
            },
            "parked_at_ms": self.timestamp_ms if at is None else at,
            "event_id": self.event_id,
            "key": None if self.key is None else self.key.decode("utf-8", "replace"),
            "value": parsed
            if parsed is not _NOT_JSON
            else {"base64": base64.b64encode(self.value).decode()},
            "replayed_at": replayed_at,
        }


def _int_or_none(text: str | None) -> int | None:
    try:
        return int(text) if text is not None else None
    except ValueError:
        return None
