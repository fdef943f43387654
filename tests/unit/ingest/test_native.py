"""The native API's batches: an array or {"events": [...]}, each event validated on its own."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from services.ingest.domain.native import batch_items, native_envelope, parse_native_batch
from services.ingest.domain.parsing import FieldError, PayloadError

RECEIVED = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


def _event(**overrides: Any) -> dict[str, Any]:
    event: dict[str, Any] = {
        "event_id": "evt-1",
        "type": "pricing_viewed",
        "occurred_at": "2026-11-19T10:15:00Z",
        "lead": {"email": "Ana@Acme.example"},
    }
    event.update(overrides)
    return event


def test_batch_items_accepts_a_json_array() -> None:
    items = [_event(), _event(event_id="evt-2")]
    assert batch_items(items, max_events=10) == items


def test_batch_items_accepts_an_events_object() -> None:
    items = [_event()]
    assert batch_items({"events": items}, max_events=10) == items


def test_batch_items_refuses_an_object_without_events() -> None:
    with pytest.raises(PayloadError) as exc:
        batch_items({"items": [_event()]}, max_events=10)
    assert exc.value.field == "events"
    assert exc.value.too_large is False


@pytest.mark.parametrize("payload", ["events", 3, None, {"events": {"a": 1}}])
def test_batch_items_refuses_a_non_list(payload: Any) -> None:
    with pytest.raises(PayloadError) as exc:
        batch_items(payload, max_events=10)
    assert exc.value.too_large is False


@pytest.mark.parametrize("payload", [[], {"events": []}])
def test_batch_items_refuses_an_empty_batch(payload: Any) -> None:
    with pytest.raises(PayloadError) as exc:
        batch_items(payload, max_events=10)
    assert exc.value.too_large is False


def test_batch_items_refuses_too_many_as_too_large() -> None:
    with pytest.raises(PayloadError) as exc:
        batch_items([_event()] * 4, max_events=3)
    assert exc.value.too_large is True
    assert "4" in exc.value.error


def test_batch_items_allows_exactly_max_events() -> None:
    assert len(batch_items([_event()] * 3, max_events=3)) == 3


def test_native_envelope_wraps_a_valid_event() -> None:
    env = native_envelope(_event(), received_at=RECEIVED)
    assert env.event_id == "evt-1"
    assert env.lead.email == "ana@acme.example"
    assert env.lead_key == "email:ana@acme.example"
    assert env.occurred_at == datetime(2026, 11, 19, 10, 15, tzinfo=UTC)
    assert env.received_at == RECEIVED
    assert env.source == "api"


def test_native_envelope_non_object_is_rejected_naming_event() -> None:
    with pytest.raises(FieldError) as exc:
        native_envelope("pricing_viewed", received_at=RECEIVED)
    assert exc.value.field == "event"


def test_parse_native_batch_keeps_valid_and_rejects_invalid_by_index_with_field_path() -> None:
    payload = {
        "events": [
            _event(event_id="ok-0"),
            _event(lead={"email": "not-an-email"}),
            _event(type="Pricing Viewed"),
            _event(event_id="ok-3"),
            _event(lead={"first_name": "Ana"}),
            {"type": "page_view"},
            _event(lead={"email": "ana@acme.example", "company": {"employees": -1}}),
        ]
    }
    parsed = parse_native_batch(payload, max_events=10, received_at=RECEIVED)
    assert [e.event_id for e in parsed.accepted] == ["ok-0", "ok-3"]
    assert [(r.index, r.field) for r in parsed.rejected] == [
        (1, "lead.email"),
        (2, "type"),
        (4, "lead"),
        (5, "lead"),
        (6, "lead.company.employees"),
    ]
    assert all(r.error for r in parsed.rejected)


def test_parse_native_batch_unknown_field_is_rejected_naming_it() -> None:
    parsed = parse_native_batch([_event(colour="red")], max_events=10, received_at=RECEIVED)
    assert parsed.accepted == []
    assert parsed.rejected[0].field == "colour"


def test_parse_native_batch_too_large_raises_before_parsing() -> None:
    with pytest.raises(PayloadError) as exc:
        parse_native_batch([{"bad": 1}] * 3, max_events=2, received_at=RECEIVED)
    assert exc.value.too_large is True
