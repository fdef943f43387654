"""Segment, Shopify and HubSpot webhooks as the vendors send them, signed and unsigned."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import time

import httpx
import orjson
import pytest
from pydantic import SecretStr

from leadflow.runtime import Runtime
from tests.conftest import make_key
from tests.integration.ingest.conftest import SECRETS, fixture, fixture_json, read_topic

pytestmark = pytest.mark.integration


def basic(write_key: str) -> dict[str, str]:
    token = base64.b64encode(f"{write_key}:".encode()).decode()
    return {"Authorization": f"Basic {token}", "Content-Type": "application/json"}


def shopify_headers(body: bytes, topic: str, event_id: str, secret: str | None = None):
    digest = hmac.new(
        (secret or SECRETS["shopify_webhook_secret"]).encode(), body, hashlib.sha256
    ).digest()
    return {
        "X-Shopify-Topic": topic,
        "X-Shopify-Hmac-Sha256": base64.b64encode(digest).decode(),
        "X-Shopify-Event-Id": event_id,
        "Content-Type": "application/json",
    }


def hubspot_headers(body: bytes, *, uri: str, age_s: float = 0.0, secret: str | None = None):
    timestamp = str(int((time.time() - age_s) * 1000))
    message = b"POST" + uri.encode() + body + timestamp.encode()
    key = (secret or SECRETS["hubspot_client_secret"]).encode()
    signature = base64.b64encode(hmac.new(key, message, hashlib.sha256).digest()).decode()
    return {
        "X-HubSpot-Signature-v3": signature,
        "X-HubSpot-Request-Timestamp": timestamp,
        "Content-Type": "application/json",
    }


HUBSPOT_URI = "http://testserver/v1/sources/hubspot"

# --- Segment ---------------------------------------------------------------------------------


async def test_segment_batch_with_write_key_publishes_every_message(ingest, settings):
    body = fixture("segment/batch.json")
    async with ingest() as (client, _rt):
        response = await client.post(
            "/v1/sources/segment", content=body, headers=basic(SECRETS["segment_write_key"])
        )
    assert response.status_code == 202, response.text
    message_ids = [m["messageId"] for m in orjson.loads(body)["batch"]]
    assert response.json()["ids"] == [f"segment:{m}" for m in message_ids]
    published = read_topic(settings, topic=settings.topic_touch_events)
    assert sorted(r["event_id"] for r in published) == sorted(response.json()["ids"])
    assert {r["source"] for r in published} == {"segment"}


async def test_segment_track_is_mapped_through_the_configured_event_table(ingest, settings):
    body = fixture("segment/track_product_added.json")
    async with ingest(segment_event_map={"Product Added": "basket_add"}) as (client, _rt):
        response = await client.post(
            "/v1/sources/segment", content=body, headers=basic(SECRETS["segment_write_key"])
        )
    assert response.status_code == 202
    [record] = read_topic(settings, topic=settings.topic_touch_events)
    assert record["type"] == "basket_add"
    assert record["lead"]["email"] == "maria.lopez@globex.example"


async def test_segment_x_signature_is_accepted_and_a_bad_one_refused(ingest):
    body = fixture("segment/identify.json")
    good = hmac.new(SECRETS["segment_shared_secret"].encode(), body, hashlib.sha1).hexdigest()
    async with ingest(segment_write_key=None) as (client, _rt):
        signed = {"X-Signature": good, "Content-Type": "application/json"}
        ok = await client.post("/v1/sources/segment", content=body, headers=signed)
        bad = await client.post("/v1/sources/segment", content=body + b" ", headers=signed)
        wrong_key = await client.post(
            "/v1/sources/segment", content=body, headers=basic(SECRETS["segment_write_key"])
        )
    assert ok.status_code == 202
    assert bad.status_code == 401 and wrong_key.status_code == 401


async def test_segment_with_a_wrong_write_key_is_401(ingest):
    async with ingest() as (client, _rt):
        response = await client.post(
            "/v1/sources/segment", content=fixture("segment/page.json"), headers=basic("nope")
        )
    assert response.status_code == 401
    assert response.json()["code"] == "unauthorized"


async def test_unconfigured_source_answers_401_and_logs_why(ingest, caplog):
    async with ingest(segment_write_key=None, segment_shared_secret=None) as (client, _rt):
        response = await client.post(
            "/v1/sources/segment",
            content=fixture("segment/page.json"),
            headers=basic(SECRETS["segment_write_key"]),
        )
    assert response.status_code == 401
    assert "LEADFLOW_SEGMENT_WRITE_KEY" in caplog.text


async def test_segment_repeat_of_a_message_id_is_a_duplicate(ingest, settings):
    body = fixture("segment/track_order_completed.json")
    async with ingest() as (client, _rt):
        headers = basic(SECRETS["segment_write_key"])
        first = await client.post("/v1/sources/segment", content=body, headers=headers)
        again = await client.post("/v1/sources/segment", content=body, headers=headers)
    assert first.json()["accepted"] == 1
    assert again.json()["accepted"] == 0 and again.json()["duplicates"] == 1
    assert len(read_topic(settings, topic=settings.topic_touch_events)) == 1


async def test_segment_message_without_identity_is_422_naming_the_field(ingest):
    message = {"type": "track", "event": "Demo Requested", "messageId": "m-no-id"}
    async with ingest() as (client, _rt):
        response = await client.post(
            "/v1/sources/segment",
            content=orjson.dumps(message),
            headers=basic(SECRETS["segment_write_key"]),
        )
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "userId"


# --- Shopify ---------------------------------------------------------------------------------


async def test_shopify_checkout_with_a_valid_hmac_is_published_as_checkout_started(
    ingest, settings
):
    body = fixture("shopify/checkouts__create.json")
    async with ingest() as (client, _rt):
        response = await client.post(
            "/v1/sources/shopify",
            content=body,
            headers=shopify_headers(body, "checkouts/create", "evt-shop-1"),
        )
    assert response.status_code == 202, response.text
    assert response.json()["ids"] == ["shopify:evt-shop-1"]
    [record] = read_topic(settings, topic=settings.topic_touch_events)
    assert record["type"] == "checkout_started"
    assert record["lead"]["email"] == "maria.lopez@globex.example"
    payload = orjson.loads(body)
    assert record["properties"]["cart"]["checkout_url"] == payload["abandoned_checkout_url"]
    assert record["properties"]["cart"]["value"] == float(payload["total_price"])


async def test_shopify_redelivery_with_the_same_event_id_is_a_duplicate(ingest):
    body = fixture("shopify/orders__paid.json")
    async with ingest() as (client, _rt):
        headers = shopify_headers(body, "orders/paid", "evt-shop-2")
        first = await client.post("/v1/sources/shopify", content=body, headers=headers)
        again = await client.post("/v1/sources/shopify", content=body, headers=headers)
    assert (first.json()["accepted"], again.json()["duplicates"]) == (1, 1)


async def test_shopify_webhook_id_is_the_key_when_there_is_no_event_id(ingest):
    body = fixture("shopify/carts__create.json")
    headers = shopify_headers(body, "carts/create", "unused")
    del headers["X-Shopify-Event-Id"]
    headers["X-Shopify-Webhook-Id"] = "wh-77"
    async with ingest() as (client, _rt):
        response = await client.post("/v1/sources/shopify", content=body, headers=headers)
    assert response.json()["ids"] == ["shopify:wh-77"]


@pytest.mark.parametrize("tamper", ["body", "secret", "missing"])
async def test_shopify_bad_or_missing_hmac_is_401(ingest, tamper):
    body = fixture("shopify/orders__create.json")
    headers = shopify_headers(
        body, "orders/create", "evt-x", secret="other" if tamper == "secret" else None
    )
    if tamper == "missing":
        del headers["X-Shopify-Hmac-Sha256"]
    sent = body.replace(b"USD", b"EUR") if tamper == "body" else body
    async with ingest() as (client, _rt):
        response = await client.post("/v1/sources/shopify", content=sent, headers=headers)
    assert response.status_code == 401


async def test_shopify_unsupported_topic_is_answered_200_and_ignored(ingest, settings):
    body = b'{"id": 1}'
    async with ingest() as (client, _rt):
        response = await client.post(
            "/v1/sources/shopify",
            content=body,
            headers=shopify_headers(body, "products/create", "e"),
        )
    assert response.status_code == 200
    assert [i["field"] for i in response.json()["ignored"]] == ["X-Shopify-Topic"]
    assert read_topic(settings, topic=settings.topic_touch_events, settle_s=0.5) == []


# --- HubSpot ---------------------------------------------------------------------------------


async def test_hubspot_signed_delivery_is_published(ingest, settings):
    body = fixture("hubspot/contact_property_change.json")
    async with ingest() as (client, _rt):
        response = await client.post(
            "/v1/sources/hubspot", content=body, headers=hubspot_headers(body, uri=HUBSPOT_URI)
        )
    assert response.status_code == 202, response.text
    published = read_topic(settings, topic=settings.topic_touch_events)
    assert len(published) == len(orjson.loads(body))
    assert {r["lead"]["user_id"] for r in published} == {"hubspot:48151623:73519204817"}


async def test_hubspot_stale_timestamp_is_refused(ingest):
    body = fixture("hubspot/contact_creation.json")
    async with ingest() as (client, _rt):
        response = await client.post(
            "/v1/sources/hubspot",
            content=body,
            headers=hubspot_headers(body, uri=HUBSPOT_URI, age_s=301),
        )
    assert response.status_code == 401
    assert "X-HubSpot-Request-Timestamp" in response.json()["detail"]


async def test_hubspot_signature_over_another_uri_is_refused(ingest):
    body = fixture("hubspot/contact_creation.json")
    async with ingest() as (client, _rt):
        response = await client.post(
            "/v1/sources/hubspot",
            content=body,
            headers=hubspot_headers(body, uri="https://elsewhere.example/hook"),
        )
    assert response.status_code == 401


async def test_hubspot_configured_public_url_is_what_the_signature_covers(ingest):
    body = fixture("hubspot/contact_creation.json")
    public = "https://leadflow.example/v1/sources/hubspot"
    async with ingest(hubspot_webhook_url=public) as (client, _rt):
        response = await client.post(
            "/v1/sources/hubspot", content=body, headers=hubspot_headers(body, uri=public)
        )
    assert response.status_code == 202


async def test_hubspot_mixed_delivery_accepts_what_it_handles_and_names_the_rest(ingest):
    body = fixture("hubspot/mixed_batch.json")
    async with ingest() as (client, _rt):
        response = await client.post(
            "/v1/sources/hubspot", content=body, headers=hubspot_headers(body, uri=HUBSPOT_URI)
        )
    assert response.status_code == 202
    assert response.json()["accepted"] == 2
    assert response.json()["rejected"] == []
    assert [(r["index"], r["field"]) for r in response.json()["ignored"]] == [
        (2, "subscriptionType")
    ]


async def test_auth_off_opens_sources_without_credentials(ingest):
    async with ingest(auth="off", segment_write_key=None, segment_shared_secret=None) as (
        client,
        _rt,
    ):
        response = await client.post(
            "/v1/sources/segment",
            content=fixture("segment/page.json"),
            headers={"Content-Type": "application/json"},
        )
    assert response.status_code == 202


async def test_source_rate_limit_answers_429_with_retry_after(ingest):
    body = fixture("segment/page.json")
    async with ingest(rate_limit_source_per_s=0.5, rate_limit_source_burst=2) as (client, _rt):
        headers = basic(SECRETS["segment_write_key"])
        codes = [
            (await client.post("/v1/sources/segment", content=body, headers=headers)).status_code
            for _ in range(3)
        ]
        last = await client.post("/v1/sources/segment", content=body, headers=headers)
    assert codes == [202, 202, 429]
    assert int(last.headers["retry-after"]) >= 1


async def test_shopify_cart_then_checkout_become_one_lead_with_an_owner(settings):
    # The whole pipeline: Shopify -> ingest -> Kafka -> scoring -> routing -> the lead API.
    own = settings.model_copy(
        update={"shopify_webhook_secret": SecretStr(SECRETS["shopify_webhook_secret"])}
    )
    runtime = Runtime(settings=own, services=("ingest", "scoring", "routing"))
    app = runtime.start()
    try:
        assert runtime.wait_until_assigned(timeout_s=30)
        key = make_key(runtime, "events:write", "leads:read")
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            for topic, name in (
                ("carts/create", "carts__create"),
                ("checkouts/create", "checkouts__create"),
            ):
                body = fixture(f"shopify/{name}.json")
                response = await client.post(
                    "/v1/sources/shopify", content=body, headers=shopify_headers(body, topic, name)
                )
                assert response.status_code == 202
            lead = None
            for _ in range(100):
                found = await client.get(
                    "/v1/leads",
                    params={"email": "maria.lopez@globex.example"},
                    headers={"Authorization": f"Bearer {key}"},
                )
                items = found.json()["items"]
                if items and items[0]["owner"] and items[0]["anonymous_ids"]:
                    lead = items[0]
                    break
                await asyncio.sleep(0.1)
        assert lead is not None, "the Shopify buyer never became a routed lead"
        cart_token = fixture_json("shopify/carts__create.json")["token"]
        assert lead["anonymous_ids"] == [f"shopify-cart:{cart_token}"]
        assert lead["user_ids"] == ["shopify:customer:7301928475610"]
    finally:
        runtime.stop(timeout_s=3)
