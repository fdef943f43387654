"""Segment's Webhooks (Actions) destination: a JSON array of events per request, and the custom
traits of a person kept as `lead.traits`."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from services.ingest.domain.parsing import Parsed, PayloadError
from services.ingest.domain.segment import custom_traits, parse_segment, segment_envelope
from shared.config import DEFAULT_SEGMENT_EVENT_MAP
from shared.events import MAX_TRAIT_CHARS, MAX_TRAITS

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "segment"
RECEIVED = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)


def _load(name: str) -> Any:
    return json.loads((FIXTURES / f"{name}.json").read_text())


def _parse(payload: Any, *, max_events: int = 4_000) -> Parsed:
    return parse_segment(
        payload, event_map=DEFAULT_SEGMENT_EVENT_MAP, max_events=max_events, received_at=RECEIVED
    )


def test_actions_array_batch_maps_every_event_in_order() -> None:
    batch = _load("actions_batch")
    parsed = _parse(batch)
    assert parsed.rejected == []
    assert [e.type for e in parsed.accepted] == ["identify", "demo_requested", "page_view"]
    assert [e.event_id for e in parsed.accepted] == [f"segment:{m['messageId']}" for m in batch]
    assert {e.lead.user_id for e in parsed.accepted} == {"segment:usr_4f8b2c1d9e"}


def test_actions_array_batch_reports_a_bad_event_by_index_and_keeps_the_rest() -> None:
    batch = _load("actions_batch")
    batch[1] = {"type": "track", "messageId": "m-no-name", "userId": "u1"}
    parsed = _parse(batch)
    assert [e.type for e in parsed.accepted] == ["identify", "page_view"]
    assert [(r.index, r.field) for r in parsed.rejected] == [(1, "event")]


def test_actions_array_of_4000_events_is_taken_and_one_more_is_too_large() -> None:
    page = _load("page")
    batch = [{**page, "messageId": f"m-{i}"} for i in range(4_000)]
    assert len(_parse(batch).accepted) == 4_000
    with pytest.raises(PayloadError) as exc:
        _parse([*batch, page])
    assert exc.value.too_large is True
    assert exc.value.field == "body"
    assert "4001" in exc.value.error


def test_identify_keeps_custom_traits_and_drops_mapped_and_unstorable_ones() -> None:
    identify = _load("actions_batch")[0]
    env = segment_envelope(identify, event_map=DEFAULT_SEGMENT_EVENT_MAP, received_at=RECEIVED)
    assert env.lead.traits == {
        "plan": "enterprise",
        "logins": 14,
        "trial_active": True,
        "seats_requested": 25.5,
        "preferred_language": "es",
    }
    assert env.lead.first_name == "Maria"  # mapped traits stay lead fields


def test_track_keeps_custom_context_traits() -> None:
    track = _load("actions_batch")[1]
    env = segment_envelope(track, event_map=DEFAULT_SEGMENT_EVENT_MAP, received_at=RECEIVED)
    assert env.lead.traits == {"plan": "enterprise"}
    assert env.lead.email == "maria.lopez@globex.example"


def test_group_traits_are_company_facts_not_lead_traits() -> None:
    env = segment_envelope(
        _load("group"), event_map=DEFAULT_SEGMENT_EVENT_MAP, received_at=RECEIVED
    )
    assert env.lead.traits is None


def test_a_message_without_custom_traits_has_none() -> None:
    assert custom_traits({"email": "a@b.example", "firstName": "A", "company": "Acme"}) is None


def test_custom_traits_are_capped_at_max_traits_in_the_order_sent() -> None:
    traits = {f"t{i}": i for i in range(MAX_TRAITS + 10)}
    kept = custom_traits(traits)
    assert kept is not None and list(kept) == [f"t{i}" for i in range(MAX_TRAITS)]


@pytest.mark.parametrize(
    "value",
    [None, "", "   ", "x" * (MAX_TRAIT_CHARS + 1), {"a": 1}, [1, 2], 2**70],
)
def test_custom_trait_values_the_lead_cannot_hold_are_left_out(value: Any) -> None:
    assert custom_traits({"odd": value, "plan": "pro"}) == {"plan": "pro"}


@pytest.mark.parametrize("key", ["a:b", "", "x" * 65, "with/slash", " lead"])
def test_custom_traits_with_names_a_filter_cannot_address_are_left_out(key: str) -> None:
    assert custom_traits({key: "v", "plan": "pro"}) == {"plan": "pro"}
