"""What vendors really send, end to end through the app, the broker and the idempotency store:
Segment Actions' array batches, several Shopify shops each with its own secret, Shopify topics
and HubSpot events leadflow does not take (answered 200, ignored), HubSpot's generic object.*
subscriptions."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

import orjson
import pytest
from pydantic import SecretStr

from tests.integration.ingest.conftest import SECRETS, fixture, fixture_json, read_topic

pytestmark = pytest.mark.integration

SEGMENT = "/v1/sources/segment"
SHOPIFY = "/v1/sources/shopify"
HUBSPOT = "/v1/sources/hubspot"
EU, US = "acme-eu.myshopify.com", "acme-us.myshopify.com"
SHOPS = {EU: "shpss_eu_0a1b2c3d4e5f6a7b", US: "shpss_us_9f8e7d6c5b4a3928"}
# As Settings holds them (the test runtimes' settings are copied, not validated again).
SHOP_SECRETS = {shop: SecretStr(secret) for shop, secret in SHOPS.items()}


def basic(write_key: str) -> dict[str, str]:
    token = base64.b64encode(f"{write_key}:".encode()).decode()
    return {"Authorization": f"Basic {token}", "Content-Type": "application/json"}


def shopify_headers(body: bytes, *, topic: str, secret: str, shop: str | None, event_id: str):
    digest = hmac.new(secret.encode(), body, hashlib.sha256).digest()
    headers = {
        "X-Shopify-Topic": topic,
        "X-Shopify-Hmac-Sha256": base64.b64encode(digest).decode(),
        "X-Shopify-Event-Id": event_id,
        "Content-Type": "application/json",
    }
    if shop is not None:
        headers["X-Shopify-Shop-Domain"] = shop
    return headers


def hubspot_headers(body: bytes) -> dict[str, str]:
    timestamp = str(int(time.time() * 1000))
    message = b"POST" + f"http://testserver{HUBSPOT}".encode() + body + timestamp.encode()
    key = SECRETS["hubspot_client_secret"].encode()
    signature = base64.b64encode(hmac.new(key, message, hashlib.sha256).digest()).decode()
    return {
        "X-HubSpot-Signature-v3": signature,
        "X-HubSpot-Request-Timestamp": timestamp,
        "Content-Type": "application/json",
    }


def js_stringify(value: object) -> bytes:
    """What Segment's JSON.stringify makes of a value: compact, non-ASCII kept."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


# --- Segment Actions ---------------------------------------------------------------------------


async def test_segment_actions_array_with_the_write_key_publishes_each_event_with_traits(
    ingest, settings
):
    batch = fixture_json("segment/actions_batch.json")
    async with ingest() as (client, _rt):
        response = await client.post(
            SEGMENT, content=js_stringify(batch), headers=basic(SECRETS["segment_write_key"])
        )
    assert response.status_code == 202, response.text
    assert response.json()["ids"] == [f"segment:{m['messageId']}" for m in batch]
    published = {r["event_id"]: r for r in read_topic(settings, topic=settings.topic_touch_events)}
    identify = published[f"segment:{batch[0]['messageId']}"]
    assert identify["lead"]["traits"] == {
        "plan": "enterprise",
        "logins": 14,
        "trial_active": True,
        "seats_requested": 25.5,
        "preferred_language": "es",
    }


async def test_segment_actions_array_signed_over_the_whole_body_is_accepted(ingest):
    body = js_stringify(fixture_json("segment/actions_batch.json"))
    signature = hmac.new(SECRETS["segment_shared_secret"].encode(), body, hashlib.sha1)
    headers = {"X-Signature": signature.hexdigest(), "Content-Type": "application/json"}
    async with ingest(segment_write_key=None) as (client, _rt):
        response = await client.post(SEGMENT, content=body, headers=headers)
    assert response.status_code == 202, response.text
    assert response.json()["accepted"] == 3


async def test_segment_actions_batch_signed_over_its_first_event_only_is_401_saying_why(ingest):
    # Segment's batching Webhooks (Actions) destination signs JSON.stringify of the first event:
    # the others could be anything, so that signature is not taken.
    batch = fixture_json("segment/actions_batch.json")
    first = hmac.new(SECRETS["segment_shared_secret"].encode(), js_stringify(batch[0]), "sha1")
    headers = {"X-Signature": first.hexdigest(), "Content-Type": "application/json"}
    async with ingest(segment_write_key=None) as (client, _rt):
        response = await client.post(SEGMENT, content=js_stringify(batch), headers=headers)
    assert response.status_code == 401
    assert "Authorization: Basic" in response.json()["detail"]


async def test_segment_actions_array_reports_a_bad_event_by_index(ingest, settings):
    batch = fixture_json("segment/actions_batch.json")
    batch[2] = {"type": "page", "messageId": "m-nobody"}
    async with ingest() as (client, _rt):
        response = await client.post(
            SEGMENT, content=js_stringify(batch), headers=basic(SECRETS["segment_write_key"])
        )
    assert response.status_code == 202
    assert response.json()["accepted"] == 2
    assert [(r["index"], r["field"]) for r in response.json()["rejected"]] == [(2, "userId")]


async def test_segment_takes_4000_events_over_the_general_body_limit_and_refuses_4001(
    ingest, settings
):
    page = fixture_json("segment/page.json")
    batch = [{**page, "messageId": f"ajs-next-bulk-{i:05d}"} for i in range(4_001)]
    full, over = js_stringify(batch[:4_000]), js_stringify(batch)
    assert len(full) > 2_000_000
    headers = basic(SECRETS["segment_write_key"])
    async with ingest(max_body_bytes=2_000_000) as (client, _rt):
        taken = await client.post(SEGMENT, content=full, headers=headers)
        refused = await client.post(SEGMENT, content=over, headers=headers)
        native = await client.post(
            "/v1/events/batch", content=full, headers={"Content-Type": "application/json"}
        )
    assert taken.status_code == 202, taken.text[:300]
    assert taken.json()["accepted"] == 4_000
    assert refused.status_code == 413
    assert "4001" in refused.json()["detail"]
    assert native.status_code == 413  # every other route keeps LEADFLOW_MAX_BODY_BYTES
    assert len(read_topic(settings, topic=settings.topic_touch_events)) == 4_000


# --- Shopify shops -----------------------------------------------------------------------------


async def test_each_shop_is_checked_with_its_own_secret_and_named_on_the_touch(ingest, settings):
    body = fixture("shopify/orders__create.json")
    async with ingest(shopify_webhook_secret=None, shopify_webhook_secrets=SHOP_SECRETS) as (
        client,
        _rt,
    ):
        eu = await client.post(
            SHOPIFY,
            content=body,
            headers=shopify_headers(
                body, topic="orders/create", secret=SHOPS[EU], shop=EU, event_id="eu-1"
            ),
        )
        us = await client.post(
            SHOPIFY,
            content=body,
            headers=shopify_headers(
                body, topic="orders/create", secret=SHOPS[US], shop=US.upper(), event_id="us-1"
            ),
        )
        crossed = await client.post(
            SHOPIFY,
            content=body,
            headers=shopify_headers(
                body, topic="orders/create", secret=SHOPS[US], shop=EU, event_id="x-1"
            ),
        )
    assert (eu.status_code, us.status_code, crossed.status_code) == (202, 202, 401)
    published = read_topic(settings, topic=settings.topic_touch_events)
    shops = {r["event_id"]: r["properties"]["shop_domain"] for r in published}
    assert shops == {"shopify:eu-1": EU, "shopify:us-1": US}


@pytest.mark.parametrize("shop", ["stranger.myshopify.com", None])
async def test_an_unknown_or_unnamed_shop_is_401_without_a_secret_for_every_shop(ingest, shop):
    body = fixture("shopify/carts__create.json")
    headers = shopify_headers(
        body, topic="carts/create", secret=SHOPS[EU], shop=shop, event_id="s-1"
    )
    async with ingest(shopify_webhook_secret=None, shopify_webhook_secrets=SHOP_SECRETS) as (
        client,
        _rt,
    ):
        response = await client.post(SHOPIFY, content=body, headers=headers)
    assert response.status_code == 401
    message = response.json()["detail"]
    assert ("unknown shop" if shop else "missing X-Shopify-Shop-Domain") in message


async def test_the_secret_for_every_shop_serves_unlisted_shops_but_not_listed_ones(ingest):
    body = fixture("shopify/carts__create.json")
    common = SECRETS["shopify_webhook_secret"]
    async with ingest(shopify_webhook_secrets=SHOP_SECRETS) as (client, _rt):
        unlisted = await client.post(
            SHOPIFY,
            content=body,
            headers=shopify_headers(
                body, topic="carts/create", secret=common, shop="other.myshopify.com", event_id="o"
            ),
        )
        listed = await client.post(
            SHOPIFY,
            content=body,
            headers=shopify_headers(
                body, topic="carts/create", secret=common, shop=EU, event_id="l"
            ),
        )
    assert (unlisted.status_code, listed.status_code) == (202, 401)


async def test_a_shop_header_that_is_no_domain_is_422_once_the_hmac_holds(ingest):
    body = fixture("shopify/carts__create.json")
    common = SECRETS["shopify_webhook_secret"]
    async with ingest() as (client, _rt):
        response = await client.post(
            SHOPIFY,
            content=body,
            headers=shopify_headers(
                body, topic="carts/create", secret=common, shop="not a domain", event_id="b"
            ),
        )
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "X-Shopify-Shop-Domain"


# --- topics and events leadflow does not take --------------------------------------------------


@pytest.mark.parametrize("topic", ["orders/cancelled", "products/update", "app/uninstalled"])
async def test_an_unsupported_shopify_topic_is_200_and_ignored_after_the_hmac(
    ingest, settings, topic
):
    body = fixture("shopify/orders__create.json")
    good = shopify_headers(body, topic=topic, secret=SHOPS[EU], shop=EU, event_id=f"t-{topic}")
    bad = {**good, "X-Shopify-Hmac-Sha256": base64.b64encode(b"x" * 32).decode()}
    async with ingest(shopify_webhook_secrets=SHOP_SECRETS) as (client, _rt):
        refused = await client.post(SHOPIFY, content=body, headers=bad)
        ignored = await client.post(SHOPIFY, content=body, headers=good)
    assert refused.status_code == 401
    assert ignored.status_code == 200
    answer = ignored.json()
    assert (answer["accepted"], answer["ids"]) == (0, [])
    assert topic in answer["ignored"][0]["reason"]
    assert read_topic(settings, topic=settings.topic_touch_events, settle_s=0.5) == []


async def test_a_handled_shopify_topic_is_unchanged_with_a_shop(ingest, settings):
    body = fixture("shopify/checkouts__create.json")
    headers = shopify_headers(
        body, topic="checkouts/create", secret=SHOPS[US], shop=US, event_id="c-1"
    )
    async with ingest(shopify_webhook_secrets=SHOP_SECRETS) as (client, _rt):
        response = await client.post(SHOPIFY, content=body, headers=headers)
    assert response.status_code == 202
    assert response.json() == {
        "accepted": 1,
        "ids": ["shopify:c-1"],
        "duplicates": 0,
        "rejected": [],
        "ignored": [],
    }
    [record] = read_topic(settings, topic=settings.topic_touch_events)
    assert record["type"] == "checkout_started"


# --- HubSpot object.* --------------------------------------------------------------------------


async def test_hubspot_object_events_of_contacts_are_taken_and_others_ignored(ingest, settings):
    created, changed = (
        fixture("hubspot/object_creation.json"),
        fixture("hubspot/object_property_change.json"),
    )
    async with ingest() as (client, _rt):
        first = await client.post(HUBSPOT, content=created, headers=hubspot_headers(created))
        second = await client.post(HUBSPOT, content=changed, headers=hubspot_headers(changed))
    assert (first.status_code, second.status_code) == (202, 202)
    assert (first.json()["accepted"], second.json()["accepted"]) == (1, 2)
    assert [(i["index"], i["field"]) for i in first.json()["ignored"]] == [(1, "objectTypeId")]
    assert [(i["index"], i["field"]) for i in second.json()["ignored"]] == [(2, "objectTypeId")]
    published = read_topic(settings, topic=settings.topic_touch_events)
    assert sorted(r["type"] for r in published) == ["crm_contact_created", "identify", "identify"]
    assert {r["lead"]["user_id"] for r in published} == {"hubspot:48151623:73519204817"}


async def test_a_hubspot_delivery_of_only_events_leadflow_does_not_take_is_200(ingest, settings):
    deal_only = orjson.dumps([fixture_json("hubspot/object_property_change.json")[2]])
    async with ingest() as (client, _rt):
        response = await client.post(HUBSPOT, content=deal_only, headers=hubspot_headers(deal_only))
    assert response.status_code == 200
    assert response.json()["accepted"] == 0
    assert "0-3" in response.json()["ignored"][0]["reason"]
    assert read_topic(settings, topic=settings.topic_touch_events, settle_s=0.5) == []
