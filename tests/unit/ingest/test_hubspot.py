"""HubSpot webhook deliveries (contact creation, property changes, form submissions)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from services.ingest.domain.hubspot import hubspot_envelope, parse_hubspot
from services.ingest.domain.parsing import FieldError, Parsed, PayloadError

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "hubspot"
RECEIVED = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
CONTACT = "hubspot:48151623:73519204817"


def _load(name: str) -> list[dict[str, Any]]:
    return json.loads((FIXTURES / f"{name}.json").read_text())


def _parse(payload: Any, *, max_events: int = 100) -> Parsed:
    return parse_hubspot(payload, max_events=max_events, received_at=RECEIVED)


def _change(name: str, value: Any) -> dict[str, Any]:
    return {
        "eventId": 1,
        "portalId": 99,
        "objectId": 7,
        "occurredAt": 1794318425902,
        "subscriptionType": "contact.propertyChange",
        "propertyName": name,
        "propertyValue": value,
    }


def test_hubspot_contact_creation_becomes_crm_contact_created() -> None:
    parsed = _parse(_load("contact_creation"))
    assert parsed.rejected == []
    (env,) = parsed.accepted
    assert env.type == "crm_contact_created"
    assert env.source == "hubspot"
    assert env.lead.user_id == CONTACT
    assert env.lead_key == f"user:{CONTACT}"
    assert env.event_id == "hubspot:48151623:4102933871"
    assert env.properties["change_source"] == "FORM"


def test_hubspot_occurred_at_epoch_ms_becomes_occurred_at() -> None:
    (env,) = _parse(_load("contact_creation")).accepted
    assert env.occurred_at == datetime(2026, 11, 10, 13, 47, 5, 311000, tzinfo=UTC)
    assert env.received_at == RECEIVED


def test_hubspot_property_changes_map_to_lead_fields() -> None:
    parsed = _parse(_load("contact_property_change"))
    assert parsed.rejected == []
    email, first, last, title, company = parsed.accepted
    assert {e.type for e in parsed.accepted} == {"identify"}
    assert email.lead.email == "maria.lopez@globex.example"
    assert email.lead.user_id == CONTACT
    assert email.lead_key == "email:maria.lopez@globex.example"
    assert first.lead.first_name == "Maria"
    assert last.lead.last_name == "Lopez"
    assert title.lead.job_title == "VP, Operations"
    assert company.lead.company is not None
    assert company.lead.company.name == "Globex"
    assert title.properties["property"] == "jobtitle"
    assert title.properties["value"] == "VP, Operations"


def test_hubspot_email_property_change_is_normalised() -> None:
    env = hubspot_envelope(_change("email", " Ana@ACME.example"), received_at=RECEIVED)
    assert env.type == "identify"
    assert env.lead.email == "ana@acme.example"


def test_hubspot_form_conversion_becomes_form_submit_and_other_properties_crm_changes() -> None:
    parsed = _parse(_load("form_submission"))
    assert parsed.rejected == []
    form, date, count = parsed.accepted
    assert form.type == "form_submit"
    assert form.properties["form"] == "Request a demo: Demo request form"
    assert date.type == "crm_property_changed"
    assert date.properties["property"] == "recent_conversion_date"
    assert count.type == "crm_property_changed"
    assert count.properties["value"] == "2"
    assert "form" not in count.properties


def test_hubspot_mixed_batch_ignores_an_unhandled_subscription_by_index() -> None:
    parsed = _parse(_load("mixed_batch"))
    assert [e.type for e in parsed.accepted] == ["crm_contact_created", "identify"]
    assert parsed.accepted[1].lead.email == "jon.park@acme.example"
    assert parsed.rejected == []
    (ignored,) = parsed.ignored
    assert ignored.index == 2
    assert ignored.field == "subscriptionType"
    assert "company.creation" in ignored.error


def test_hubspot_invalid_email_value_is_rejected_naming_property_value() -> None:
    with pytest.raises(FieldError) as exc:
        hubspot_envelope(_change("email", "maria-at-globex"), received_at=RECEIVED)
    assert exc.value.field == "propertyValue"


def test_hubspot_non_numeric_employee_count_is_rejected_naming_property_value() -> None:
    with pytest.raises(FieldError) as exc:
        hubspot_envelope(_change("numberofemployees", "many"), received_at=RECEIVED)
    assert exc.value.field == "propertyValue"


def test_hubspot_numeric_company_property_is_converted() -> None:
    env = hubspot_envelope(_change("numberofemployees", "420"), received_at=RECEIVED)
    assert env.lead.company is not None
    assert env.lead.company.employees == 420


@pytest.mark.parametrize("missing", ["eventId", "portalId", "objectId"])
def test_hubspot_event_missing_an_id_is_rejected_naming_it(missing: str) -> None:
    event = _change("firstname", "Ana")
    del event[missing]
    with pytest.raises(FieldError) as exc:
        hubspot_envelope(event, received_at=RECEIVED)
    assert exc.value.field == missing


def test_hubspot_property_change_without_name_is_rejected() -> None:
    with pytest.raises(FieldError) as exc:
        hubspot_envelope(_change("", "x"), received_at=RECEIVED)
    assert exc.value.field == "propertyName"


def test_hubspot_single_object_is_taken_as_one_event() -> None:
    parsed = _parse(_load("contact_creation")[0])
    assert len(parsed.accepted) == 1


@pytest.mark.parametrize("payload", [[], "events", 42, None])
def test_hubspot_non_list_or_empty_payload_raises_payload_error(payload: Any) -> None:
    with pytest.raises(PayloadError) as exc:
        _parse(payload)
    assert exc.value.too_large is False


def test_hubspot_delivery_over_max_events_is_too_large() -> None:
    with pytest.raises(PayloadError) as exc:
        _parse(_load("contact_property_change"), max_events=4)
    assert exc.value.too_large is True


# --- generic object.* subscriptions -------------------------------------------------------------


def test_hubspot_object_creation_of_a_contact_becomes_crm_contact_created() -> None:
    parsed = _parse(_load("object_creation"))
    (env,) = parsed.accepted
    assert env.type == "crm_contact_created"
    assert env.lead.user_id == CONTACT
    assert env.properties["hubspot_subscription"] == "object.creation"
    assert env.event_id == "hubspot:48151623:4187720031"


def test_hubspot_object_creation_of_a_company_is_ignored_naming_the_object_type() -> None:
    parsed = _parse(_load("object_creation"))
    assert parsed.rejected == []
    (ignored,) = parsed.ignored
    assert (ignored.index, ignored.field) == (1, "objectTypeId")
    assert "0-2" in ignored.error


def test_hubspot_object_property_change_maps_contact_properties_like_the_legacy_one() -> None:
    parsed = _parse(_load("object_property_change"))
    assert [e.type for e in parsed.accepted] == ["identify", "identify"]
    assert parsed.accepted[0].lead.email == "maria.lopez@globex.example"
    assert parsed.accepted[1].lead.job_title == "VP, Operations"
    assert {e.lead.user_id for e in parsed.accepted} == {CONTACT}
    assert [(i.index, i.field) for i in parsed.ignored] == [(2, "objectTypeId")]


def test_hubspot_object_event_without_object_type_is_rejected_naming_it() -> None:
    event = _change("firstname", "Maria") | {"subscriptionType": "object.propertyChange"}
    with pytest.raises(FieldError) as exc:
        hubspot_envelope(event, received_at=RECEIVED)
    assert exc.value.field == "objectTypeId"


@pytest.mark.parametrize("kind", ["company.creation", "deal.creation", "object.merge"])
def test_hubspot_unhandled_subscription_types_are_ignored_not_rejected(kind: str) -> None:
    parsed = _parse([_change("firstname", "Maria") | {"subscriptionType": kind}])
    assert parsed.accepted == [] and parsed.rejected == []
    assert [(i.index, i.field) for i in parsed.ignored] == [(0, "subscriptionType")]


def test_hubspot_event_without_subscription_type_is_rejected() -> None:
    event = _change("firstname", "Maria")
    del event["subscriptionType"]
    parsed = _parse([event])
    assert [(r.index, r.field) for r in parsed.rejected] == [(0, "subscriptionType")]
