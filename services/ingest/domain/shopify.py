"""Shopify webhooks (carts, checkouts, orders, customers) as touches."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from services.ingest.domain.parsing import (
    FieldError,
    build_lead,
    envelope,
    parse_time,
    to_float,
    to_int,
)
from shared.events import TouchEnvelope

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


def shopify_envelope(
    *, topic: str, payload: Any, event_id: str, received_at: datetime
) -> TouchEnvelope:
    """One Shopify webhook as a touch envelope; FieldError naming Shopify's field otherwise."""
    if topic not in TOPICS:
        raise FieldError(
            "X-Shopify-Topic", f"unsupported topic {topic!r}; supported: {', '.join(TOPICS)}"
        )
    if not isinstance(payload, dict):
        raise FieldError("body", "must be a JSON object")
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
