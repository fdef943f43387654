"""Shopify webhooks (carts, checkouts, orders, customers) as touches."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from services.ingest.domain.parsing import FieldError, Ignored
from services.ingest.domain.shopify import shop_domain, shopify_envelope
from shared.events import TouchEnvelope

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "shopify"
RECEIVED = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
MARIA = "maria.lopez@globex.example"
CART_TOKEN = "9f1c2d3e4b5a69788796a5b4c3d2e1f0"
CUSTOMER = "shopify:customer:7301928475610"
CHECKOUT_URL = (
    "https://shop.acme.example/71234560/checkouts/b7d3e1f2a4c6089e1d2c3b4a59687f60/recover"
    "?key=example-recovery-key"
)
EST = timezone(timedelta(hours=-5))


def _load(topic: str) -> dict[str, Any]:
    return json.loads((FIXTURES / f"{topic.replace('/', '__')}.json").read_text())


def _map(topic: str, payload: Any = None, event_id: str = "wh-1") -> TouchEnvelope:
    return shopify_envelope(
        topic=topic,
        payload=_load(topic) if payload is None else payload,
        event_id=event_id,
        received_at=RECEIVED,
    )


@pytest.mark.parametrize(
    ("topic", "expected"),
    [
        ("carts/create", "cart_add"),
        ("carts/update", "cart_add"),
        ("checkouts/create", "checkout_started"),
        ("checkouts/update", "checkout_started"),
        ("orders/create", "order_completed"),
        ("orders/paid", "order_completed"),
        ("customers/create", "identify"),
    ],
)
def test_shopify_topic_fixture_maps_to_type(topic: str, expected: str) -> None:
    env = _map(topic)
    assert env.type == expected
    assert env.source == "shopify"
    assert env.properties["shopify_topic"] == topic


@pytest.mark.parametrize(
    "topic", ["carts/create", "carts/update", "checkouts/create", "checkouts/update", "orders/paid"]
)
def test_shopify_cart_token_is_the_anonymous_id_so_cart_checkout_and_order_stitch(
    topic: str,
) -> None:
    assert _map(topic).lead.anonymous_id == f"shopify-cart:{CART_TOKEN}"


def test_shopify_anonymous_cart_keys_on_the_cart_token() -> None:
    env = _map("carts/create")
    assert env.lead.email is None
    assert env.lead.user_id is None
    assert env.lead_key == f"anon:shopify-cart:{CART_TOKEN}"


def test_shopify_checkout_messy_email_is_normalised() -> None:
    assert _load("checkouts/create")["email"] != MARIA
    env = _map("checkouts/create")
    assert env.lead.email == MARIA
    assert env.lead_key == f"email:{MARIA}"


@pytest.mark.parametrize("topic", ["checkouts/create", "orders/create", "customers/create"])
def test_shopify_customer_id_becomes_user_id(topic: str) -> None:
    assert _map(topic).lead.user_id == CUSTOMER


def test_shopify_customer_create_is_identify_with_names_and_company() -> None:
    env = _map("customers/create")
    lead = env.lead
    assert lead.email == MARIA
    assert (lead.first_name, lead.last_name) == ("Maria", "Lopez")
    assert lead.anonymous_id is None
    assert lead.company is not None
    assert lead.company.name == "Globex"
    assert lead.company.country == "US"
    assert "cart" not in env.properties


def test_shopify_cart_value_sums_line_prices_and_currency_comes_from_money_sets() -> None:
    cart = _map("carts/update").properties["cart"]
    assert cart["value"] == pytest.approx(2598.0 + 349.0)
    assert cart["currency"] == "USD"
    assert cart["id"] == CART_TOKEN
    assert [(i["sku"], i["quantity"]) for i in cart["items"]] == [
        ("EGW-PRO-01", 2),
        ("SNS-PK10", 1),
    ]
    assert cart["items"][0]["price"] == pytest.approx(1299.0)


def test_shopify_checkout_cart_has_total_currency_items_and_recovery_url() -> None:
    cart = _map("checkouts/create").properties["cart"]
    assert cart["value"] == pytest.approx(2753.88)
    assert cart["currency"] == "USD"
    assert cart["checkout_url"] == CHECKOUT_URL
    assert cart["id"] == CART_TOKEN
    assert cart["checkout_token"] == "b7d3e1f2a4c6089e1d2c3b4a59687f60"
    assert [i["sku"] for i in cart["items"]] == ["EGW-PRO-01"]


def test_shopify_order_carries_order_fields_and_total() -> None:
    env = _map("orders/paid")
    assert env.properties["order_id"] == 5829104731842
    assert env.properties["order_name"] == "#1042"
    assert env.properties["financial_status"] == "paid"
    cart = env.properties["cart"]
    assert cart["value"] == pytest.approx(3123.82)
    assert cart["checkout_token"] == "b7d3e1f2a4c6089e1d2c3b4a59687f60"
    assert len(cart["items"]) == 2


def test_shopify_order_without_cart_token_keys_on_checkout_token() -> None:
    payload = _load("orders/create")
    payload["cart_token"] = None
    assert _map("orders/create", payload).lead.anonymous_id == (
        "shopify-checkout:b7d3e1f2a4c6089e1d2c3b4a59687f60"
    )


def test_shopify_occurred_at_uses_the_topic_time_field() -> None:
    assert _map("checkouts/update").occurred_at == datetime(2026, 11, 12, 10, 12, 19, tzinfo=EST)
    assert _map("checkouts/create").occurred_at == datetime(2026, 11, 12, 10, 9, 43, tzinfo=EST)
    assert _map("orders/paid").occurred_at == datetime(2026, 11, 12, 10, 14, 1, tzinfo=EST)


def test_shopify_event_id_is_prefixed_given_id() -> None:
    assert _map("orders/create", event_id="b54557e4-bdd9").event_id == "shopify:b54557e4-bdd9"


@pytest.mark.parametrize("topic", ["products/create", "orders/cancelled", "app/uninstalled"])
def test_shopify_unsupported_topic_is_ignored_naming_the_topic_header(topic: str) -> None:
    with pytest.raises(Ignored) as exc:
        _map(topic, payload={"id": 1})
    assert exc.value.field == "X-Shopify-Topic"
    assert topic in exc.value.reason


def test_shopify_non_object_body_is_rejected() -> None:
    with pytest.raises(FieldError) as exc:
        _map("carts/create", payload=[1, 2])
    assert exc.value.field == "body"


def test_shopify_webhook_naming_nobody_is_rejected() -> None:
    with pytest.raises(FieldError) as exc:
        _map("orders/create", payload={"id": 1, "total_price": "1.00"})
    assert exc.value.field == "email"


def test_shopify_invalid_email_is_rejected_naming_email() -> None:
    payload = _load("checkouts/create")
    payload["email"] = "maria at globex"
    with pytest.raises(FieldError) as exc:
        _map("checkouts/create", payload)
    assert exc.value.field == "email"


def test_shopify_non_numeric_total_is_rejected_naming_total_price() -> None:
    payload = _load("orders/create")
    payload["total_price"] = "lots"
    with pytest.raises(FieldError) as exc:
        _map("orders/create", payload)
    assert exc.value.field == "total_price"


# --- shops ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("acme-eu.myshopify.com", "acme-eu.myshopify.com"),
        ("  Acme-EU.MyShopify.com ", "acme-eu.myshopify.com"),
        (None, None),
        ("", None),
    ],
)
def test_shop_domain_is_the_lower_cased_header(header: str | None, expected: str | None) -> None:
    assert shop_domain(header) == expected


@pytest.mark.parametrize("header", ["acme", "acme .myshopify.com", "-acme.myshopify.com", "a/b.c"])
def test_shop_domain_that_is_no_host_name_names_the_header(header: str) -> None:
    with pytest.raises(FieldError) as exc:
        shop_domain(header)
    assert exc.value.field == "X-Shopify-Shop-Domain"


def test_the_shop_goes_on_the_touch() -> None:
    env = shopify_envelope(
        topic="orders/create",
        payload=_load("orders/create"),
        event_id="wh-9",
        received_at=RECEIVED,
        shop="acme-eu.myshopify.com",
    )
    assert env.properties["shop_domain"] == "acme-eu.myshopify.com"
    assert env.source == "shopify"  # routing's per-source delays keep working


def test_a_touch_without_a_known_shop_has_no_shop_domain() -> None:
    assert "shop_domain" not in _map("carts/create").properties
