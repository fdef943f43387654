"""Segment Tracking API messages (track, identify, page, screen, group, alias, batch) as touches."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from services.ingest.domain.parsing import FieldError, Parsed, PayloadError
from services.ingest.domain.segment import parse_segment, segment_envelope
from shared.config import DEFAULT_SEGMENT_EVENT_MAP
from shared.events import TouchEnvelope

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "segment"
RECEIVED = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
MARIA = "maria.lopez@globex.example"
ANON = "3f6d2b8a-9c41-4e7b-8a55-1d2c3b4a5e6f"


def _load(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / f"{name}.json").read_text())


def _one(message: dict[str, Any], event_map: dict[str, str] | None = None) -> TouchEnvelope:
    return segment_envelope(
        message,
        event_map=DEFAULT_SEGMENT_EVENT_MAP if event_map is None else event_map,
        received_at=RECEIVED,
    )


def _parse(payload: Any, *, max_events: int = 100) -> Parsed:
    return parse_segment(
        payload, event_map=DEFAULT_SEGMENT_EVENT_MAP, max_events=max_events, received_at=RECEIVED
    )


# --- track --------------------------------------------------------------------------------


def test_segment_track_product_added_becomes_cart_add_with_cart_value() -> None:
    env = _one(_load("track_product_added"))
    assert env.type == "cart_add"
    assert env.source == "segment"
    cart = env.properties["cart"]
    assert cart["value"] == pytest.approx(1299.0)
    assert cart["currency"] == "USD"
    assert cart["id"] == "9f1c2d3e4b5a69788796a5b4c3d2e1f0"
    assert cart["items"][0]["sku"] == "EGW-PRO-01"
    assert env.properties["segment_event"] == "Product Added"


def test_segment_track_checkout_started_maps_with_products_and_value() -> None:
    env = _one(_load("track_checkout_started"))
    assert env.type == "checkout_started"
    cart = env.properties["cart"]
    assert cart["value"] == pytest.approx(2947.0)
    assert [item["sku"] for item in cart["items"]] == ["EGW-PRO-01", "SNS-PK10"]


def test_segment_track_order_completed_maps_to_order_completed() -> None:
    env = _one(_load("track_order_completed"))
    assert env.type == "order_completed"
    assert env.properties["cart"]["currency"] == "USD"
    assert env.properties["cart"]["id"] == "b7d3e1f2a4c6089e1d2c3b4a59687f60"


def test_segment_track_demo_requested_maps_and_keeps_properties() -> None:
    env = _one(_load("track_demo_requested"))
    assert env.type == "demo_requested"
    assert env.properties["budget"] == "50-100k"
    assert "cart" not in env.properties
    assert env.lead.anonymous_id == "a1d4c7e0-5b38-4f2a-9e61-7c0b3d6f9a24"
    assert env.lead.user_id is None
    assert env.lead_key == "anon:a1d4c7e0-5b38-4f2a-9e61-7c0b3d6f9a24"


def test_segment_unknown_track_name_is_kept_as_the_type() -> None:
    env = _one(_load("track_unknown_event"))
    assert env.type == "Newsletter Signed Up"
    assert env.lead.email == "sam.okafor@acme.example"
    assert env.lead.user_id == "segment:usr_9a7c5e3b1d"


def test_segment_configured_event_map_overrides_the_default() -> None:
    message = _load("track_unknown_event")
    env = _one(message, event_map={"Newsletter Signed Up": "newsletter_signup"})
    assert env.type == "newsletter_signup"
    product = _one(_load("track_product_added"), event_map={"Product Added": "product_added"})
    assert product.type == "product_added"
    assert "cart" not in product.properties


def test_segment_message_id_becomes_event_id() -> None:
    env = _one(_load("track_product_added"))
    assert env.event_id == "segment:ajs-next-5c1e9a7f3b2d4e60a8c7b1f2d3e4a5b6"


def test_segment_timestamp_becomes_occurred_at() -> None:
    env = _one(_load("track_product_added"))
    assert env.occurred_at == datetime(2026, 11, 12, 15, 2, 11, 31000, tzinfo=UTC)
    assert env.received_at == RECEIVED


def test_segment_missing_message_id_gives_a_stable_derived_id() -> None:
    message = _load("track_product_added")
    del message["messageId"]
    first = _one(message)
    second = _one(copy.deepcopy(message))
    assert first.event_id == second.event_id
    assert first.event_id.startswith("segment:")
    assert len(first.event_id) > len("segment:")
    other = copy.deepcopy(message)
    other["properties"]["quantity"] = 2
    assert _one(other).event_id != first.event_id


def test_segment_track_email_from_context_traits_is_normalised() -> None:
    message = _load("track_product_added")
    message["context"]["traits"]["email"] = "  Maria.Lopez@GLOBEX.example "
    env = _one(message)
    assert env.lead.email == MARIA
    assert env.lead_key == f"email:{MARIA}"


def test_segment_identity_from_user_id_and_anonymous_id() -> None:
    env = _one(_load("track_product_added"))
    assert env.lead.user_id == "segment:usr_4f8b2c1d9e"
    assert env.lead.anonymous_id == ANON


def test_segment_track_without_event_name_is_rejected_naming_event() -> None:
    message = _load("track_product_added")
    del message["event"]
    with pytest.raises(FieldError) as exc:
        _one(message)
    assert exc.value.field == "event"


def test_segment_event_name_longer_than_64_is_rejected() -> None:
    message = _load("track_unknown_event")
    message["event"] = "X" * 65
    with pytest.raises(FieldError) as exc:
        _one(message)
    assert exc.value.field == "event"


def test_segment_unknown_type_is_rejected_naming_type() -> None:
    message = _load("track_product_added")
    message["type"] = "purchase"
    with pytest.raises(FieldError) as exc:
        _one(message)
    assert exc.value.field == "type"


def test_segment_message_without_identity_is_rejected_naming_user_id() -> None:
    message = {"type": "track", "event": "Demo Requested", "messageId": "m-1"}
    with pytest.raises(FieldError) as exc:
        _one(message)
    assert exc.value.field == "userId"


def test_segment_invalid_properties_email_is_rejected_naming_properties_email() -> None:
    message = {
        "type": "track",
        "event": "Demo Requested",
        "messageId": "m-2",
        "properties": {"email": "not-an-email"},
    }
    with pytest.raises(FieldError) as exc:
        _one(message)
    assert exc.value.field == "properties.email"


# --- identify, page, screen, group, alias --------------------------------------------------


def test_segment_identify_maps_traits_onto_the_lead() -> None:
    env = _one(_load("identify"))
    assert env.type == "identify"
    lead = env.lead
    assert lead.email == MARIA
    assert (lead.first_name, lead.last_name) == ("Maria", "Lopez")
    assert lead.job_title == "VP, Operations"
    assert lead.phone == "+1-202-555-0142"
    assert lead.user_id == "segment:usr_4f8b2c1d9e"
    assert lead.company is not None
    assert lead.company.name == "Globex"
    assert lead.company.industry == "Manufacturing"
    assert lead.company.employees == 420
    assert lead.company.country == "USA"


def test_segment_identify_company_as_string_becomes_company_name() -> None:
    message = {
        "type": "identify",
        "userId": "u-1",
        "traits": {"email": "ana@acme.example", "company": "Acme", "jobTitle": "CTO"},
    }
    env = _one(message)
    assert env.lead.company is not None
    assert env.lead.company.name == "Acme"
    assert env.lead.job_title == "CTO"


def test_segment_identify_name_trait_is_split_into_first_and_last() -> None:
    message = {"type": "identify", "userId": "u-2", "traits": {"name": "Ana Silva"}}
    env = _one(message)
    assert (env.lead.first_name, env.lead.last_name) == ("Ana", "Silva")


def test_segment_identify_email_falls_back_to_context_traits() -> None:
    message = {
        "type": "identify",
        "anonymousId": "a-1",
        "traits": {"firstName": "Ana"},
        "context": {"traits": {"email": "ANA@Acme.Example"}},
    }
    env = _one(message)
    assert env.lead.email == "ana@acme.example"


def test_segment_identify_bad_traits_email_is_rejected_naming_traits_email() -> None:
    message = _load("identify")
    message["traits"]["email"] = "maria.lopez-at-globex"
    with pytest.raises(FieldError) as exc:
        _one(message)
    assert exc.value.field == "traits.email"


def test_segment_page_becomes_page_view_with_url_and_name() -> None:
    env = _one(_load("page"))
    assert env.type == "page_view"
    assert env.properties["url"].startswith("https://www.acme.example/pricing")
    assert env.properties["name"] == "Pricing"
    assert env.lead.anonymous_id == ANON
    assert env.lead_key == f"anon:{ANON}"


def test_segment_page_without_url_property_takes_context_page_url() -> None:
    message = {
        "type": "page",
        "anonymousId": "a-2",
        "context": {"page": {"url": "https://acme.example/pricing"}},
    }
    assert _one(message).properties["url"] == "https://acme.example/pricing"


def test_segment_screen_becomes_page_view_with_screen_name() -> None:
    env = _one(_load("screen"))
    assert env.type == "page_view"
    assert env.properties["screen"] == "Order Tracking"
    assert env.lead.email == MARIA
    assert env.lead.anonymous_id == "5C1E6F2A-8B3D-4E7F-9A0B-1C2D3E4F5A6B"


def test_segment_group_puts_company_traits_onto_the_lead() -> None:
    env = _one(_load("group"))
    assert env.type == "group"
    assert env.properties["group_id"] == "grp_globex"
    company = env.lead.company
    assert company is not None
    assert company.name == "Globex"
    assert company.industry == "Manufacturing"
    assert company.employees == 420
    assert company.domain == "globex.example"
    assert company.country == "USA"
    assert env.lead.user_id == "segment:usr_4f8b2c1d9e"


def test_segment_group_without_group_id_is_rejected() -> None:
    message = _load("group")
    del message["groupId"]
    with pytest.raises(FieldError) as exc:
        _one(message)
    assert exc.value.field == "groupId"


def test_segment_alias_links_previous_id_to_user_id() -> None:
    env = _one(_load("alias"))
    assert env.type == "alias"
    assert env.lead.anonymous_id == ANON
    assert env.lead.user_id == "segment:usr_4f8b2c1d9e"
    assert env.lead_key == "user:segment:usr_4f8b2c1d9e"


def test_segment_alias_without_previous_id_is_rejected() -> None:
    message = _load("alias")
    del message["previousId"]
    with pytest.raises(FieldError) as exc:
        _one(message)
    assert exc.value.field == "previousId"


# --- requests and batches -----------------------------------------------------------------


def test_segment_single_message_request_gives_one_envelope() -> None:
    parsed = _parse(_load("identify"))
    assert len(parsed.accepted) == 1
    assert parsed.rejected == []
    assert parsed.accepted[0].event_id == "segment:ajs-next-4e6a8c0b2d4f6e8a0c2b4d6f8a0e2c4b"


def test_segment_batch_maps_each_message() -> None:
    parsed = _parse(_load("batch"))
    assert parsed.rejected == []
    assert [e.type for e in parsed.accepted] == ["identify", "cart_add", "page_view"]
    identify, cart, page = parsed.accepted
    assert identify.lead.email == "ana.silva@acme.example"
    assert identify.lead.job_title == "Head of Procurement"
    assert identify.lead.company is not None
    assert identify.lead.company.employees == 250
    assert cart.properties["cart"]["value"] == pytest.approx(349.0 * 3)
    assert cart.lead.user_id == "segment:usr_2d4f6a8c0e"
    assert page.properties["name"] == "Customer Stories"


def test_segment_batch_level_context_is_applied_to_messages() -> None:
    payload = {
        "batch": [{"type": "track", "event": "Trial Started", "messageId": "m-3"}],
        "context": {"traits": {"email": "Jon.Park@Acme.Example"}},
    }
    parsed = _parse(payload)
    assert parsed.rejected == []
    assert parsed.accepted[0].lead.email == "jon.park@acme.example"
    assert parsed.accepted[0].type == "trial_started"


def test_segment_message_context_wins_over_batch_context() -> None:
    payload = {
        "batch": [
            {
                "type": "page",
                "anonymousId": "a-3",
                "context": {"page": {"url": "https://acme.example/mine"}},
            }
        ],
        "context": {"page": {"url": "https://acme.example/batch"}},
    }
    assert _parse(payload).accepted[0].properties["url"] == "https://acme.example/mine"


@pytest.mark.parametrize(
    ("bad", "field"),
    [
        ({"type": "identify", "userId": "u", "traits": {"email": "nope"}}, "traits.email"),
        ({"type": "track", "userId": "u"}, "event"),
        ({"type": "purchase", "userId": "u"}, "type"),
        ({"type": "track", "event": "Demo Requested"}, "userId"),
    ],
)
def test_segment_invalid_batch_message_is_rejected_by_index_with_segment_field(
    bad: dict[str, Any], field: str
) -> None:
    payload = _load("batch")
    payload["batch"].insert(1, bad)
    parsed = _parse(payload)
    assert len(parsed.accepted) == 3
    assert len(parsed.rejected) == 1
    assert parsed.rejected[0].index == 1
    assert parsed.rejected[0].field == field
    assert parsed.rejected[0].error


def test_segment_batch_over_max_events_is_too_large() -> None:
    with pytest.raises(PayloadError) as exc:
        _parse(_load("batch"), max_events=2)
    assert exc.value.too_large is True
    assert exc.value.field == "batch"


@pytest.mark.parametrize("payload", [{"batch": []}, {"type": "batch"}, [], "x", 3])
def test_segment_unusable_request_raises_payload_error(payload: Any) -> None:
    with pytest.raises(PayloadError) as exc:
        _parse(payload)
    assert exc.value.too_large is False
