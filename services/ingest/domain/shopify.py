"""Shopify webhooks (carts, checkouts, orders, customers) as touches."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from services.ingest.domain.parsing import (
    FieldError,
    Ignored,
    build_lead,
    envelope,
    parse_time,
    to_float,
    to_int,
)
from shared.events import ERASURE_REQUESTED, TouchEnvelope

SOURCE = "shopify"
TOPICS = {
    "carts/create": "cart_add",
    "carts/update": "cart_add",
    "checkouts/create": "checkout_started",
    "checkouts/update": "checkout_started",
    "orders/create": "order_completed",
    "orders/paid": "order_completed",
    "customers/create": "identify",
}
# Shopify's mandatory privacy webhooks: a customer's erasure, a shop's erasure (48 h after it
# uninstalls), a customer's request for their data (answered with GET /v1/leads/{id}/export).
PRIVACY_TOPICS = {
    "customers/redact": ERASURE_REQUESTED,
    "shop/redact": ERASURE_REQUESTED,
    "customers/data_request": "data_requested",
}
SHOP_HEADER = "X-Shopify-Shop-Domain"
_HOST = re.compile(
    r"^(?=.{1,255}$)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)+$"
)


def shop_domain(header: str | None) -> str | None:
    """The shop a webhook comes from (`X-Shopify-Shop-Domain`, e.g. `acme.myshopify.com`),
    lower-cased; None when the header is absent; FieldError naming it when it is no host name."""
    if header is None or not header.strip():
        return None
    shop = header.strip().lower()
    if not _HOST.match(shop):
        raise FieldError(SHOP_HEADER, "is not a shop domain such as acme.myshopify.com")
    return shop


def _money_currency(line: dict[str, Any]) -> str | None:
    """The shop currency of a cart line's `*_set` price, where Shopify gives one."""
    for key in ("line_price_set", "price_set", "original_line_price_set"):
        money = (line.get(key) or {}).get("shop_money") if isinstance(line.get(key), dict) else None
        if isinstance(money, dict) and money.get("currency_code"):
            currency: str = money["currency_code"]  # Shopify's ISO 4217 code
            return currency
    return None


def _items(payload: dict[str, Any]) -> list[dict[str, Any]]:
    """The line items in the native cart shape."""
    lines = payload.get("line_items") or []
    if not isinstance(lines, list):
        raise FieldError("line_items", "must be an array")
    items = []
    for i, line in enumerate(lines):
        if not isinstance(line, dict):
            raise FieldError(f"line_items.{i}", "must be an object")
        items.append(
            {
                "product_id": line.get("product_id"),
                "variant_id": line.get("variant_id"),
                "sku": line.get("sku") or None,
                "title": line.get("title"),
                "quantity": to_int(line.get("quantity"), field=f"line_items.{i}.quantity"),
                "price": to_float(line.get("price"), field=f"line_items.{i}.price"),
            }
        )
    return items


def _cart(topic: str, payload: dict[str, Any], items: list[dict[str, Any]]) -> dict[str, Any]:
    """The native `properties.cart` of a cart, checkout or order."""
    value: float | None
    if topic.startswith("carts/"):
        cart_id = payload.get("token") or payload.get("id")
        value = sum(
            to_float(line.get("line_price"), field="line_items.line_price") or 0.0
            for line in payload.get("line_items") or []
            if isinstance(line, dict)
        )
        lines = [line for line in payload.get("line_items") or [] if isinstance(line, dict)]
        currency = payload.get("currency") or next(
            (c for line in lines if (c := _money_currency(line))), None
        )
    else:
        cart_id = payload.get("cart_token") or payload.get("checkout_token") or payload.get("token")
        value = to_float(payload.get("total_price"), field="total_price")
        currency = payload.get("currency") or payload.get("presentment_currency")
    cart: dict[str, Any] = {
        "id": cart_id,
        "value": value,
        "currency": currency,
        "items": items,
        "checkout_url": payload.get("abandoned_checkout_url"),
    }
    if topic.startswith("checkouts/"):
        cart["checkout_token"] = payload.get("token")
    if topic.startswith("orders/"):
        cart["checkout_token"] = payload.get("checkout_token")
        cart["order_id"] = payload.get("id")
    return cart


def _anonymous_id(topic: str, payload: dict[str, Any]) -> str | None:
    """The cart (else checkout) token as the anonymous id, so cart, checkout and order of one
    buyer stitch together even before Shopify knows the email."""
    if topic.startswith("carts/"):
        token = payload.get("token") or payload.get("id")
        return f"shopify-cart:{token}" if token else None
    if payload.get("cart_token"):
        return f"shopify-cart:{payload['cart_token']}"
    token = (
        payload.get("token") if topic.startswith("checkouts/") else payload.get("checkout_token")
    )
    return f"shopify-checkout:{token}" if token else None


def check_topic(topic: str) -> None:
    """Ignored when leadflow takes nothing from the topic (Shopify deletes a subscription whose
    deliveries keep failing, so it is answered, not refused)."""
    if topic not in TOPICS and topic not in PRIVACY_TOPICS:
        taken = ", ".join([*TOPICS, *PRIVACY_TOPICS])
        raise Ignored("X-Shopify-Topic", f"topic {topic!r} is not taken; taken: {taken}")


def shopify_envelope(
    *,
    topic: str,
    payload: Any,
    event_id: str,
    received_at: datetime,
    shop: str | None = None,
) -> TouchEnvelope:
    """One Shopify webhook (from `shop`, when known) as a touch envelope; FieldError naming
    Shopify's field otherwise, Ignored for a topic leadflow does not take."""
    check_topic(topic)
    if not isinstance(payload, dict):
        raise FieldError("body", "must be a JSON object")
    if topic in PRIVACY_TOPICS:
        return _privacy_envelope(
            topic=topic, payload=payload, event_id=event_id, received_at=received_at, shop=shop
        )
    customer = payload if topic == "customers/create" else payload.get("customer") or {}
    if not isinstance(customer, dict):
        raise FieldError("customer", "must be an object")
    address = payload.get("billing_address") or payload.get("default_address") or {}
    if not isinstance(address, dict):
        address = {}
    email = payload.get("email") or payload.get("contact_email") or customer.get("email")
    customer_id = customer.get("id")
    lead_values: dict[str, Any] = {
        "email": email,
        "anonymous_id": None if topic == "customers/create" else _anonymous_id(topic, payload),
        "user_id": f"shopify:customer:{customer_id}" if customer_id else None,
        "first_name": customer.get("first_name") or address.get("first_name"),
        "last_name": customer.get("last_name") or address.get("last_name"),
        "phone": customer.get("phone") or payload.get("phone"),
        "company": {"name": address.get("company"), "country": address.get("country_code")},
    }
    if not (lead_values["email"] or lead_values["anonymous_id"] or lead_values["user_id"]):
        raise FieldError("email", "the webhook names no customer email, cart token or customer")
    lead = build_lead(lead_values, rename={"email": "email", "user_id": "customer.id"})

    properties: dict[str, Any] = {"shopify_topic": topic}
    if shop:
        properties["shop_domain"] = shop
    if topic != "customers/create":
        properties["cart"] = _cart(topic, payload, _items(payload))
    if topic.startswith("orders/"):
        properties["order_id"] = payload.get("id")
        properties["order_name"] = payload.get("name")
        properties["financial_status"] = payload.get("financial_status")
    time_field = "updated_at" if topic.endswith("/update") else "created_at"
    if topic == "orders/paid":
        time_field = "processed_at" if payload.get("processed_at") else "updated_at"
    occurred = parse_time(payload.get(time_field) or payload.get("created_at"), field=time_field)
    return envelope(
        event_id=f"shopify:{event_id}",
        type=TOPICS[topic],
        occurred_at=occurred,
        received_at=received_at,
        source=SOURCE,
        lead=lead,
        properties=properties,
    )


def _privacy_envelope(
    *, topic: str, payload: dict[str, Any], event_id: str, received_at: datetime, shop: str | None
) -> TouchEnvelope:
    """A privacy webhook as the touch scoring acts on: an erasure request naming the customer
    (or, for `shop/redact`, the shop), or a data request on the customer's timeline."""
    shop = shop or shop_domain(
        payload.get("shop_domain") if isinstance(payload.get("shop_domain"), str) else None
    )
    properties: dict[str, Any] = {"request": topic, "shopify_topic": topic, "shop_domain": shop}
    if topic == "shop/redact":
        if not shop:
            raise FieldError("shop_domain", "shop/redact names the shop to erase")
        lead_values: dict[str, Any] = {"anonymous_id": f"shopify-shop:{shop}"}
    else:
        customer = payload.get("customer")
        if not isinstance(customer, dict):
            raise FieldError("customer", "must be an object")
        customer_id = customer.get("id")
        lead_values = {
            "email": customer.get("email"),
            "user_id": f"shopify:customer:{customer_id}" if customer_id else None,
        }
        if not (lead_values["email"] or lead_values["user_id"]):
            raise FieldError("customer", "names no email and no id")
        if topic == "customers/data_request":
            request = payload.get("data_request")
            properties["data_request_id"] = request.get("id") if isinstance(request, dict) else None
        else:
            properties["orders_to_redact"] = payload.get("orders_to_redact") or []
    lead = build_lead(lead_values, rename={"email": "customer.email", "user_id": "customer.id"})
    return envelope(
        event_id=f"shopify:{event_id}",
        type=PRIVACY_TOPICS[topic],
        occurred_at=received_at,
        received_at=received_at,
        source=SOURCE,
        lead=lead,
        properties=properties,
        privacy_request=True,
    )
