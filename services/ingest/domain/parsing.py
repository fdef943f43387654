"""What every source mapping shares: per-event rejections, building the envelope, and encoding
it as the bytes that go on the topic.

An envelope no store or consumer downstream could take is refused, naming the field: a lone
surrogate, a NUL, an integer beyond 64 bits, a number beyond the float range, nesting deeper than
MAX_DEPTH, or more bytes than the broker takes. Every check but the size first looks at the
encoded bytes for a cheap sign (an escape, a long number, `NaN` or `Infinity`, many brackets)
and only then walks the event to name the field.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
from pydantic import ValidationError
from pydantic_core import PydanticSerializationError

from shared.events import ERASURE_REQUESTED, LeadIn, TouchEnvelope, lead_key_for


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
    # The accepted envelopes as they go on the topic, by event id.
    encoded: dict[str, bytes] = field(default_factory=dict)
    # Events of a kind leadflow does not take (answered, not refused, so the platform keeps
    # its subscription), by index.
    ignored: list[Rejection] = field(default_factory=list)


class FieldError(ValueError):
    """An event is invalid; `field` is the path inside the event, as the sender wrote it."""

    def __init__(self, field: str, error: str) -> None:
        super().__init__(f"{field}: {error}")
        self.field, self.error = field, error


class Ignored(Exception):
    """A well-formed event of a kind leadflow does not take (a topic, subscription or object
    type it has no use for); `field` names what says so."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field, self.reason = field, reason


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


def parse_each(
    items: Sequence[Any],
    mapper: Callable[[Any], TouchEnvelope],
    *,
    max_event_bytes: int | None = None,
) -> Parsed:
    """Map and encode every item; an item that fails either is rejected by index (a value no
    store holds, or more than `max_event_bytes` encoded, included), one the mapper ignores is
    listed as ignored, the others are kept."""
    parsed = Parsed()
    for index, item in enumerate(items):
        try:
            env = mapper(item)
            data = encode_envelope(env, max_bytes=max_event_bytes)
        except FieldError as exc:
            parsed.rejected.append(Rejection(index=index, field=exc.field, error=exc.error))
        except Ignored as exc:
            parsed.ignored.append(Rejection(index=index, field=exc.field, error=exc.reason))
        else:
            parsed.accepted.append(env)
            parsed.encoded[env.event_id] = data
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
    try:
        text = orjson.dumps(parts, option=orjson.OPT_SORT_KEYS)
    except TypeError:  # e.g. an integer beyond 64 bits, which the envelope then refuses by name
        text = json.dumps(parts, sort_keys=True, default=str).encode()
    return hashlib.sha256(text).hexdigest()[:32]


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
    privacy_request: bool = False,
) -> TouchEnvelope:
    """The Kafka envelope for a mapped event; only a vendor's privacy webhook
    (`privacy_request`) may ask for an erasure."""
    if not type or len(type) > 64:
        raise FieldError("type", "event type must be 1-64 characters")
    if type == ERASURE_REQUESTED and not privacy_request:
        raise FieldError("type", f"{ERASURE_REQUESTED!r} is reserved for privacy webhooks")
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


# Levels of objects and arrays an event may nest (the envelope's own included). Consumers
# parse with pydantic, whose JSON parser stops at 200.
MAX_DEPTH = 32

_INT64 = range(-(2**63), 2**64)
# A JSON number of 19 digits or more (the widest 64-bit integers have 19 or 20): the only
# place an integer too large to store can be.
_LONG_NUMBER = re.compile(rb"[:\[,]-?\d{19,}")


class UnstorableText(FieldError):
    """An event holds a value that cannot be stored or sent on; `field` names it."""

    def __init__(self, *, event_id: str, field: str, problem: str, too_large: bool = False):
        super().__init__(field, problem)
        self.event_id, self.problem, self.too_large = event_id, problem, too_large

    def __str__(self) -> str:
        return f"event {self.event_id!r}: {self.field} {self.problem}"


def _bad_text(value: Any, path: str, *, nul: bool) -> str | None:
    """The path of the first string in `value` (keys included) holding a NUL (`nul`) or a lone
    surrogate, or None."""
    if isinstance(value, str):
        if nul:
            return path if "\x00" in value else None
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return path
        return None
    if isinstance(value, dict):
        for key, item in value.items():
            where = f"{path}.{key}" if path else str(key)
            found = _bad_text(key, where, nul=nul) or _bad_text(item, where, nul=nul)
            if found:
                return found
    elif isinstance(value, list | tuple):
        for n, item in enumerate(value):
            found = _bad_text(item, f"{path}.{n}", nul=nul)
            if found:
                return found
    return None


def _bad_value(value: Any, path: str, depth: int) -> tuple[str, str] | None:
    """(path, problem) of the first container nested deeper than MAX_DEPTH or number no JSON
    store holds (NaN, ±infinity, an integer beyond 64 bits) in `value`, or None."""
    if isinstance(value, float):
        return None if math.isfinite(value) else (path, "is not a finite number")
    if isinstance(value, int) and not isinstance(value, bool):
        if value in _INT64:
            return None
        return path, "is an integer beyond the 64-bit range (send it as a string)"
    if isinstance(value, dict):
        items: Any = value.items()
    elif isinstance(value, list | tuple):
        items = enumerate(value)
    else:
        return None
    if depth > MAX_DEPTH:
        parts = path.split(".")
        shown = path if len(parts) <= 6 else ".".join(parts[:6]) + ".…"
        return shown, f"is nested deeper than {MAX_DEPTH} levels"
    for key, item in items:
        found = _bad_value(item, f"{path}.{key}" if path else str(key), depth + 1)
        if found:
            return found
    return None


def encode_envelope(env: TouchEnvelope, *, max_bytes: int | None = None) -> bytes:
    """The envelope as it goes on the topic; UnstorableText names a field no store can hold
    (`too_large` when it is over `max_bytes` once encoded)."""

    def refuse(field: str, problem: str) -> UnstorableText:
        return UnstorableText(event_id=env.event_id, field=field, problem=problem)

    try:
        data = env.to_bytes()
    except PydanticSerializationError:
        # Serialization fails on a lone surrogate, and on nesting past its recursion limit.
        dumped = env.model_dump()
        bad = _bad_value(dumped, "", 1)
        if bad:
            raise refuse(*bad) from None
        where = _bad_text(dumped, "", nul=False) or "a field"
        raise refuse(where, "is not valid Unicode (a lone surrogate)") from None
    # The escape only appears in the JSON when some text holds a NUL (or, rarely, when a text
    # spells out a backslash and "u0000").
    if b"\\u0000" in data:
        field = _bad_text(env.model_dump(), "", nul=True)
        if field:
            raise refuse(field, "contains a NUL character")
    # The envelope writes NaN and ±infinity as the tokens NaN and Infinity (a text holding those
    # words costs a walk, nothing more); deep nesting needs many brackets.
    if (
        b"Infinity" in data
        or b"NaN" in data
        or _LONG_NUMBER.search(data)
        or data.count(b"{") + data.count(b"[") > MAX_DEPTH
    ):
        bad = _bad_value(env.model_dump(), "", 1)
        if bad:
            raise refuse(*bad)
    if max_bytes is not None and len(data) > max_bytes:
        raise UnstorableText(
            event_id=env.event_id,
            field="event",
            problem=f"is {len(data):,} bytes once encoded; at most {max_bytes:,}",
            too_large=True,
        )
    return data
