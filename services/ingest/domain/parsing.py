"""What every source mapping shares: per-event rejections and building the envelope."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
from pydantic import ValidationError

from shared.events import LeadIn, TouchEnvelope, lead_key_for


@dataclass(frozen=True)
class Rejection:
    """One event of a request that was not accepted: where it is, which field, and why."""

    index: int
    field: str
    error: str


@dataclass
class Parsed:
    """A request's events: the envelopes to publish and the events refused, by index."""

    accepted: list[TouchEnvelope] = field(default_factory=list)
    rejected: list[Rejection] = field(default_factory=list)
    # Ids ingest generated for events sent without one (they need no dedupe).
    minted_ids: set[str] = field(default_factory=set)


class FieldError(ValueError):
    """An event is invalid; `field` is the path inside the event, as the sender wrote it."""

    def __init__(self, field: str, error: str) -> None:
        super().__init__(f"{field}: {error}")
        self.field, self.error = field, error


class PayloadError(ValueError):
    """The request as a whole is unusable (not a list, too many events, ...)."""

    def __init__(self, field: str, error: str, *, too_large: bool = False) -> None:
        super().__init__(f"{field}: {error}")
        self.field, self.error, self.too_large = field, error, too_large


def loc_path(loc: Sequence[Any]) -> str:
    """`lead.company.employees` style path of a pydantic error location."""
    return ".".join(str(p) for p in loc) or "event"


def first_error(exc: ValidationError, *, rename: dict[str, str] | None = None) -> FieldError:
    """The first validation error as a FieldError, its path renamed to the sender's names."""
    error = exc.errors()[0]
    path = loc_path(error.get("loc", ()))
    for ours, theirs in (rename or {}).items():
        if path == ours or path.startswith(ours + "."):
            path = theirs + path[len(ours) :]
            break
    message = error.get("msg", "invalid").removeprefix("Value error, ")
    return FieldError(path, message)


def parse_each(items: Sequence[Any], mapper: Callable[[Any], TouchEnvelope]) -> Parsed:
    """Map every item; an item that fails is rejected by index, the others are kept."""
    parsed = Parsed()
    for index, item in enumerate(items):
        try:
            parsed.accepted.append(mapper(item))
        except FieldError as exc:
            parsed.rejected.append(Rejection(index=index, field=exc.field, error=exc.error))
    return parsed


def parse_time(value: Any, *, field: str) -> datetime | None:
    """An ISO-8601 string or epoch milliseconds as an aware UTC time; None stays None."""
    if value is None or value == "":
        return None
    try:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return datetime.fromtimestamp(value / 1000, tz=UTC)
        if isinstance(value, str):
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    except (ValueError, OverflowError, OSError):
        pass
    raise FieldError(field, "is not an ISO-8601 time")


def content_id(*parts: Any) -> str:
    """A stable id for a payload that carries none, so a redelivery deduplicates."""
    return hashlib.sha256(orjson.dumps(parts, option=orjson.OPT_SORT_KEYS)).hexdigest()[:32]


def to_float(value: Any, *, field: str) -> float | None:
    """A money amount or count as a float (platforms send "129.00" as well as 129.0)."""
    if value is None or value == "":
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        raise FieldError(field, "is not a number") from None


def to_int(value: Any, *, field: str) -> int | None:
    """A whole number from an int, a float or a numeric string."""
    number = to_float(value, field=field)
    return None if number is None else int(number)


def build_lead(values: dict[str, Any], *, rename: dict[str, str] | None = None) -> LeadIn:
    """A validated LeadIn from mapped values (None values dropped); FieldError otherwise."""
    company = {k: v for k, v in (values.pop("company", None) or {}).items() if v is not None}
    clean = {k: v for k, v in values.items() if v is not None and v != ""}
    if company:
        clean["company"] = company
    try:
        return LeadIn.model_validate(clean)
    except ValidationError as exc:
        raise first_error(exc, rename=rename) from None


def envelope(
    *,
    event_id: str,
    type: str,
    occurred_at: datetime | None,
    received_at: datetime,
    source: str,
    lead: LeadIn,
    properties: dict[str, Any],
) -> TouchEnvelope:
    """The Kafka envelope for a mapped event."""
    if not type or len(type) > 64:
        raise FieldError("type", "event type must be 1-64 characters")
    return TouchEnvelope(
        event_id=event_id,
        type=type,
        occurred_at=occurred_at or received_at,
        received_at=received_at,
        source=source,
        lead_key=lead_key_for(
            email=lead.email, anonymous_id=lead.anonymous_id, user_id=lead.user_id
        ),
        lead=lead,
        properties=properties,
    )
