"""The native API's payloads: one event, or a batch as an array or `{"events": [...]}`."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import ValidationError

from services.ingest.domain.parsing import (
    FieldError,
    Parsed,
    PayloadError,
    first_error,
    parse_each,
)
from shared.events import TouchEnvelope, TouchEventIn


def batch_items(payload: Any, *, max_events: int) -> list[Any]:
    """The events of a batch body; PayloadError if it is not a batch or holds too many."""
    items = payload.get("events") if isinstance(payload, dict) else payload
    if isinstance(payload, dict) and "events" not in payload:
        raise PayloadError("events", "a batch object needs an 'events' array")
    if not isinstance(items, list):
        raise PayloadError("events", 'must be a JSON array of events or {"events": [...]}')
    if not items:
        raise PayloadError("events", "the batch holds no events")
    if len(items) > max_events:
        raise PayloadError(
            "events", f"holds {len(items)} events; at most {max_events} per batch", too_large=True
        )
    return items


def native_envelope(item: Any, *, received_at: datetime) -> TouchEnvelope:
    """Validate one native event and wrap it; FieldError naming the field otherwise."""
    if not isinstance(item, dict):
        raise FieldError("event", "must be a JSON object")
    try:
        event = TouchEventIn.model_validate(item)
    except ValidationError as exc:
        raise first_error(exc) from None
    return TouchEnvelope.from_native(event, received_at=received_at)


def parse_native_batch(
    payload: Any, *, max_events: int, received_at: datetime, max_event_bytes: int | None = None
) -> Parsed:
    """Every event of a batch body, the valid ones wrapped and the invalid ones rejected."""
    items = batch_items(payload, max_events=max_events)
    parsed = parse_each(
        items,
        lambda item: native_envelope(item, received_at=received_at),
        max_event_bytes=max_event_bytes,
    )
    sent_ids = {
        str(i["event_id"]).strip() for i in items if isinstance(i, dict) and i.get("event_id")
    }
    parsed.minted_ids = {env.event_id for env in parsed.accepted if env.event_id not in sent_ids}
    return parsed
