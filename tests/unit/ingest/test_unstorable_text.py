"""Text no store can hold is refused at the edge, naming its field: a lone surrogate (not
UTF-8) or a NUL character (PostgreSQL's text and JSON refuse it)."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest

from services.ingest.domain.parsing import UnstorableText, encode_envelope
from shared.events import TouchEnvelope, TouchEventIn


def envelope(**event: object) -> TouchEnvelope:
    native = TouchEventIn.model_validate(
        {"type": "page_view", "lead": {"email": "ana@acme.example"}, **event}
    )
    return TouchEnvelope.from_native(native, received_at=datetime.now(UTC))


def test_a_lone_surrogate_in_a_property_is_refused_naming_the_field():
    with pytest.raises(UnstorableText) as caught:
        encode_envelope(envelope(properties={"page": {"title": "caf\ud800"}}))
    assert caught.value.field == "properties.page.title"
    assert "surrogate" in caught.value.problem


def test_a_nul_in_a_property_key_or_value_or_the_event_id_is_refused():
    for event, field in [
        ({"properties": {"note": "a\x00b"}}, "properties.note"),
        ({"properties": {"k\x00": 1}}, "properties.k\x00"),
        ({"event_id": "evt-\x001"}, "event_id"),
        ({"lead": {"email": "ana@acme.example", "first_name": "A\x00na"}}, "lead.first_name"),
    ]:
        with pytest.raises(UnstorableText) as caught:
            encode_envelope(envelope(**event))
        assert caught.value.field == field
        assert "NUL" in caught.value.problem


def test_an_integer_beyond_64_bits_is_refused_naming_the_field():
    with pytest.raises(UnstorableText) as caught:
        encode_envelope(envelope(properties={"order": {"lines": [1, 2**70]}}))
    assert caught.value.field == "properties.order.lines.1"
    assert "64-bit" in caught.value.problem


def test_text_that_only_spells_out_a_nul_escape_or_a_long_number_is_kept():
    kept = {"regex": "\\u0000", "id": ":12345678901234567890123", "max": 2**64 - 1}
    data = encode_envelope(envelope(properties=kept))
    assert orjson.loads(data)["properties"] == kept
