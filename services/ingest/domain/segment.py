"""Segment's Tracking API spec (track, identify, page, screen, group, alias, batch) as touches."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from services.ingest.domain.parsing import (
    FieldError,
    Parsed,
    PayloadError,
    build_lead,
    content_id,
    envelope,
    parse_each,
    parse_time,
    to_float,
    to_int,
)
from shared.events import (
    CONSENT_PURPOSE,
    MAX_CONSENT_PURPOSES,
    MAX_TRAIT_CHARS,
    MAX_TRAITS,
    TRAIT_KEY,
    TouchEnvelope,
)

SOURCE = "segment"
MESSAGE_TYPES = ("track", "identify", "page", "screen", "group", "alias")
COMMERCE_TYPES = frozenset({"cart_add", "checkout_started", "order_completed"})

# Where the lead's fields are in Segment's traits (first name wins): the spec's reserved
# traits in camelCase, and the snake_case many sources send.
_TRAIT_FIELDS = {
    "first_name": ("firstName", "first_name"),
    "last_name": ("lastName", "last_name"),
    "job_title": ("title", "jobTitle", "job_title"),
    "phone": ("phone",),
}
# Person traits read into the lead's fields (above, and by `_person`); every other one is a
# custom trait, kept as `lead.traits`.
_MAPPED_TRAITS = frozenset(
    {n for names in _TRAIT_FIELDS.values() for n in names}
    | {"email", "name", "company", "address", "industry", "employees", "employee_count"}
)
_INT64 = range(-(2**63), 2**63)


def _obj(value: Any, field: str) -> dict[str, Any]:
    """A JSON object field (absent is empty); FieldError naming it otherwise."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise FieldError(field, "must be a JSON object")
    return value


def _first(mapping: Mapping[str, Any], names: tuple[str, ...]) -> Any:
    """The first of `names` that holds a non-empty value."""
    return next((mapping[n] for n in names if mapping.get(n) not in (None, "")), None)


def _domain_of(website: Any) -> str | None:
    """The host of a website trait such as "https://www.acme.example/"."""
    return website if isinstance(website, str) and website else None


def _person(traits: dict[str, Any], *, where: str) -> dict[str, Any]:
    """Lead fields from a person's traits."""
    values: dict[str, Any] = {k: _first(traits, names) for k, names in _TRAIT_FIELDS.items()}
    name = traits.get("name")
    if isinstance(name, str) and name.strip() and not values["first_name"]:
        first, _, last = name.strip().partition(" ")
        values["first_name"], values["last_name"] = first, values["last_name"] or last or None
    company = traits.get("company")
    company_values: dict[str, Any] = {}
    if isinstance(company, str):
        company_values["name"] = company
    elif isinstance(company, dict):
        company_values = _company(company, where=f"{where}.company")
    address = traits.get("address")
    fallbacks = {
        "industry": traits.get("industry"),
        "employees": to_int(
            _first(traits, ("employees", "employee_count")), field=f"{where}.employees"
        ),
        "country": address.get("country") if isinstance(address, dict) else None,
    }
    for key, value in fallbacks.items():
        if company_values.get(key) is None and value is not None:
            company_values[key] = value
    values["company"] = company_values
    return values


def custom_traits(traits: Mapping[str, Any]) -> dict[str, Any] | None:
    """The person's traits that are not lead fields, as `lead.traits`: the first MAX_TRAITS
    with a usable name and a text, number or boolean value. What the lead could not hold (an
    object, a list, a null, a text over MAX_TRAIT_CHARS, an odd name) is left out rather than
    costing the touch."""
    kept: dict[str, Any] = {}
    for key, value in traits.items():
        if len(kept) == MAX_TRAITS:
            break
        if key in _MAPPED_TRAITS or not TRAIT_KEY.match(key):
            continue
        if isinstance(value, str):
            if value.strip() and len(value) <= MAX_TRAIT_CHARS:
                kept[key] = value
        elif isinstance(value, bool | float) or (isinstance(value, int) and value in _INT64):
            kept[key] = value
    return kept or None


def consent_of(context: Mapping[str, Any]) -> dict[str, bool] | None:
    """The person's consent per category from Segment's Consent Management
    (`context.consent.categoryPreferences`, e.g. {"Advertising": true}): the boolean entries
    with a usable name, at most MAX_CONSENT_PURPOSES; None when it says nothing."""
    consent = _obj(context.get("consent"), "context.consent")
    preferences = _obj(consent.get("categoryPreferences"), "context.consent.categoryPreferences")
    usable = [
        (name, granted)
        for name, granted in preferences.items()
        if isinstance(granted, bool) and isinstance(name, str) and CONSENT_PURPOSE.match(name)
    ]
    return dict(usable[:MAX_CONSENT_PURPOSES]) or None


def _company(traits: dict[str, Any], *, where: str) -> dict[str, Any]:
    """Company fields from a group's traits (or a person's `company` object)."""
    return {
        "name": traits.get("name"),
        "industry": traits.get("industry"),
        "employees": to_int(
            _first(traits, ("employees", "employee_count")), field=f"{where}.employees"
        ),
        "annual_revenue": to_float(
            _first(traits, ("annual_revenue", "annualRevenue", "revenue")),
            field=f"{where}.annual_revenue",
        ),
        "domain": _domain_of(_first(traits, ("website", "domain"))),
        "country": (traits.get("address") or {}).get("country")
        if isinstance(traits.get("address"), dict)
        else None,
    }


def _cart(properties: dict[str, Any]) -> dict[str, Any]:
    """The cart of an e-commerce spec event in the native `properties.cart` shape."""
    products = properties.get("products")
    if not isinstance(products, list):
        single = {
            k: properties[k]
            for k in ("product_id", "sku", "name", "price", "quantity")
            if k in properties
        }
        products = [single] if single else []
    value = _first(properties, ("value", "revenue", "total"))
    if value is None and "price" in properties:
        value = to_float(properties["price"], field="properties.price") or 0.0
        value *= to_float(properties.get("quantity", 1), field="properties.quantity") or 1
    return {
        "id": _first(properties, ("cart_id", "checkout_id", "order_id")),
        "value": to_float(value, field="properties.value"),
        "currency": properties.get("currency"),
        "items": products,
        "checkout_url": properties.get("checkout_url"),
    }


def segment_envelope(
    message: Any,
    *,
    event_map: Mapping[str, str],
    received_at: datetime,
    defaults: Mapping[str, Any] | None = None,
) -> TouchEnvelope:
    """One Segment message as a touch envelope; FieldError naming Segment's field otherwise."""
    if not isinstance(message, dict):
        raise FieldError("message", "must be a JSON object")
    if defaults:
        context = {
            **_obj(defaults.get("context"), "context"),
            **_obj(message.get("context"), "context"),
        }
        message = {**message, "context": context}
    kind = message.get("type")
    if kind not in MESSAGE_TYPES:
        raise FieldError("type", f"must be one of {', '.join(MESSAGE_TYPES)} (or batch)")
    context = _obj(message.get("context"), "context")
    properties = dict(_obj(message.get("properties"), "properties"))
    traits = _obj(message.get("traits"), "traits")
    context_traits = _obj(context.get("traits"), "context.traits")

    person_traits, where = (
        (traits, "traits") if kind == "identify" else (context_traits, "context.traits")
    )
    lead_values = _person(person_traits, where=where)
    lead_values["traits"] = custom_traits(person_traits)
    lead_values["consent"] = consent_of(context)
    email = person_traits.get("email") or context_traits.get("email") or properties.get("email")
    lead_values["email"] = email
    email_field = next(
        (
            field
            for field, source in (
                (f"{where}.email", person_traits),
                ("context.traits.email", context_traits),
                ("properties.email", properties),
            )
            if source.get("email")
        ),
        "traits.email",
    )
    rename = {"email": email_field}

    user_id = message.get("userId")
    anonymous_id = message.get("anonymousId")
    if kind == "alias":
        anonymous_id = message.get("previousId")
        if not anonymous_id or not user_id:
            raise FieldError("previousId", "an alias needs previousId and userId")
    lead_values["user_id"] = f"segment:{user_id}" if user_id not in (None, "") else None
    lead_values["anonymous_id"] = str(anonymous_id) if anonymous_id not in (None, "") else None
    if not (lead_values["email"] or lead_values["user_id"] or lead_values["anonymous_id"]):
        raise FieldError("userId", "a message needs userId, anonymousId or traits.email")

    if kind == "track":
        name = message.get("event")
        if not isinstance(name, str) or not name.strip():
            raise FieldError("event", "a track call needs the event name")
        native_type = event_map.get(name, name)
        if len(native_type) > 64:
            raise FieldError("event", "event names are at most 64 characters")
        properties["segment_event"] = name
        if native_type in COMMERCE_TYPES:
            properties["cart"] = _cart(properties)
    elif kind in ("page", "screen"):
        native_type = "page_view"
        page = _obj(context.get("page"), "context.page")
        properties.setdefault("url", page.get("url"))
        if message.get("name"):
            properties["screen" if kind == "screen" else "name"] = message["name"]
    elif kind == "group":
        native_type = "group"
        if not message.get("groupId"):
            raise FieldError("groupId", "a group call needs groupId")
        properties["group_id"] = message["groupId"]
        group = {k: v for k, v in _company(traits, where="traits").items() if v is not None}
        lead_values["company"] = {**lead_values["company"], **group}
    else:
        native_type = kind
    lead = build_lead(lead_values, rename=rename)

    message_id = message.get("messageId") or content_id(SOURCE, message)
    occurred = parse_time(
        _first(message, ("timestamp", "originalTimestamp", "sentAt")), field="timestamp"
    )
    return envelope(
        event_id=f"segment:{message_id}",
        type=native_type,
        occurred_at=occurred,
        received_at=received_at,
        source=SOURCE,
        lead=lead,
        properties=properties,
    )


def parse_segment(
    payload: Any,
    *,
    event_map: Mapping[str, str],
    max_events: int,
    received_at: datetime,
    max_event_bytes: int | None = None,
) -> Parsed:
    """A Segment request as envelopes and rejections: one message, a Tracking API batch
    (`{"batch": [...]}`), or the JSON array of messages a Webhooks (Actions) destination
    posts when it batches."""
    defaults: dict[str, Any] | None = None
    messages: Any
    field = "body"
    if isinstance(payload, list):
        messages = payload
    elif isinstance(payload, dict) and ("batch" in payload or payload.get("type") == "batch"):
        messages, field = payload.get("batch"), "batch"
        defaults = {"context": payload.get("context")}
    elif isinstance(payload, dict):
        messages = [payload]
    else:
        raise PayloadError("body", "must be a Segment message, a batch object or an array")
    if not isinstance(messages, list) or not messages:
        raise PayloadError(field, "must be a non-empty array of messages")
    if len(messages) > max_events:
        raise PayloadError(
            field, f"holds {len(messages)} messages; at most {max_events}", too_large=True
        )
    return parse_each(
        messages,
        lambda m: segment_envelope(
            m, event_map=event_map, received_at=received_at, defaults=defaults
        ),
        max_event_bytes=max_event_bytes,
    )
