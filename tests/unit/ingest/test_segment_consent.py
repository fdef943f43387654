"""Segment's Consent Management reaches the lead as its consent per purpose, and a Segment
event cannot ask for an erasure."""

from __future__ import annotations

import pytest

from services.ingest.domain.parsing import FieldError
from tests.unit.ingest.test_segment import MARIA, _one


def track(**context) -> dict:
    return {
        "type": "track",
        "event": "Product Viewed",
        "messageId": "m-1",
        "timestamp": "2026-11-20T08:00:00Z",
        "context": {"traits": {"email": MARIA}, **context},
    }


def test_consent_category_preferences_become_the_leads_consent():
    consent = {"categoryPreferences": {"Advertising": False, "Marketing": True}}
    envelope = _one(track(consent=consent))
    assert envelope.lead.consent == {"advertising": False, "marketing": True}


def test_preferences_that_are_not_booleans_are_left_out_and_none_means_no_statement():
    consent = {"categoryPreferences": {"Analytics": "yes", "Functional": True, "": False}}
    assert _one(track(consent=consent)).lead.consent == {"functional": True}
    assert _one(track()).lead.consent is None


def test_consent_that_is_not_an_object_is_refused_naming_the_field():
    with pytest.raises(FieldError) as refused:
        _one(track(consent={"categoryPreferences": ["Advertising"]}))
    assert refused.value.field == "context.consent.categoryPreferences"


def test_a_segment_event_named_like_an_erasure_request_is_refused():
    message = track()
    message["event"] = "erasure_requested"
    with pytest.raises(FieldError) as refused:
        _one(message)
    assert refused.value.field == "type" and "reserved" in refused.value.error
