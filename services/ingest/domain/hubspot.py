"""HubSpot webhook subscriptions (contact creation, property changes, form submissions) as
touches.

HubSpot's webhooks have no form subscription: a form submission arrives as a change of the
contact's `recent_conversion_event_name` (changeSource FORM), which becomes a `form_submit`.
Contacts come from the legacy `contact.*` subscriptions and from the generic `object.*` ones
(objectTypeId `0-1`). Events of any other subscription or object type are ignored, not
refused: the delivery is answered with success, so HubSpot keeps the subscription.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from services.ingest.domain.parsing import (
    FieldError,
    Ignored,
    Parsed,
    PayloadError,
    build_lead,
    envelope,
    parse_each,
    parse_time,
    to_float,
    to_int,
)
from shared.events import ERASURE_REQUESTED, TouchEnvelope

SOURCE = "hubspot"
SUBSCRIPTIONS = (
    "contact.creation",
    "contact.propertyChange",
    "object.creation",
    "object.propertyChange",
    "contact.privacyDeletion",  # GDPR delete in HubSpot: erase the contact here too
)
# The objectTypeId of a contact in the generic `object.*` subscriptions.
CONTACT_TYPE_ID = "0-1"
FORM_PROPERTY = "recent_conversion_event_name"

# Contact properties that are lead fields: HubSpot's internal name -> (field, company field?)
_PERSON = {
    "email": "email",
    "firstname": "first_name",
    "lastname": "last_name",
    "jobtitle": "job_title",
    "phone": "phone",
    "mobilephone": "phone",
}
_COMPANY = {
    "company": "name",
    "industry": "industry",
    "numberofemployees": "employees",
    "annualrevenue": "annual_revenue",
    "country": "country",
    "website": "domain",
}


def hubspot_envelope(event: Any, *, received_at: datetime) -> TouchEnvelope:
    """One HubSpot webhook event as a touch envelope; FieldError naming its field otherwise."""
    if not isinstance(event, dict):
        raise FieldError("event", "must be a JSON object")
    kind = event.get("subscriptionType")
    if not isinstance(kind, str) or not kind:
        raise FieldError("subscriptionType", "is required")
    if kind not in SUBSCRIPTIONS:
        raise Ignored(
            "subscriptionType", f"{kind!r} is not taken; taken: {', '.join(SUBSCRIPTIONS)}"
        )
    if kind.startswith("object."):
        type_id = event.get("objectTypeId")
        if type_id in (None, ""):
            raise FieldError("objectTypeId", "is required on object.* events")
        if str(type_id) != CONTACT_TYPE_ID:
            raise Ignored("objectTypeId", f"{type_id!r} is not a contact ({CONTACT_TYPE_ID})")
    for required in ("eventId", "portalId", "objectId"):
        if event.get(required) in (None, ""):
            raise FieldError(required, "is required")
    portal, contact = event["portalId"], event["objectId"]
    lead_values: dict[str, Any] = {"user_id": f"hubspot:{portal}:{contact}", "company": {}}
    properties: dict[str, Any] = {
        "hubspot_subscription": kind,
        "change_source": event.get("changeSource"),
    }
    rename: dict[str, str] = {}

    if kind == "contact.privacyDeletion":
        native_type = ERASURE_REQUESTED
        properties["request"] = kind
    elif kind.endswith(".creation"):
        native_type = "crm_contact_created"
    else:
        name, value = event.get("propertyName"), event.get("propertyValue")
        if not isinstance(name, str) or not name:
            raise FieldError("propertyName", "a property change names the property")
        if name == FORM_PROPERTY:
            native_type = "form_submit"
            properties["form"] = value
        elif name in _PERSON:
            native_type = "identify"
            lead_values[_PERSON[name]] = value
            rename[_PERSON[name]] = "propertyValue"
        elif name in _COMPANY:
            native_type = "identify"
            field = _COMPANY[name]
            if field == "employees":
                value = to_int(value, field="propertyValue")
            elif field == "annual_revenue":
                value = to_float(value, field="propertyValue")
            lead_values["company"][field] = value
            rename[f"company.{field}"] = "propertyValue"
        else:
            native_type = "crm_property_changed"
        properties["property"], properties["value"] = name, value

    lead = build_lead(lead_values, rename=rename)
    return envelope(
        event_id=f"hubspot:{portal}:{event['eventId']}",
        type=native_type,
        occurred_at=parse_time(event.get("occurredAt"), field="occurredAt"),
        received_at=received_at,
        source=SOURCE,
        lead=lead,
        properties=properties,
        privacy_request=native_type == ERASURE_REQUESTED,
    )


def parse_hubspot(
    payload: Any, *, max_events: int, received_at: datetime, max_event_bytes: int | None = None
) -> Parsed:
    """A HubSpot delivery (an array of events; one object is taken as one event)."""
    events = [payload] if isinstance(payload, dict) else payload
    if not isinstance(events, list) or not events:
        raise PayloadError("body", "must be a non-empty array of HubSpot webhook events")
    if len(events) > max_events:
        raise PayloadError(
            "body", f"holds {len(events)} events; at most {max_events}", too_large=True
        )
    return parse_each(
        events,
        lambda e: hubspot_envelope(e, received_at=received_at),
        max_event_bytes=max_event_bytes,
    )
