"""The vendors' privacy webhooks through the whole pipeline: Shopify's `customers/redact` and
`shop/redact` and HubSpot's `contact.privacyDeletion` erase the person in leadflow too; a
customer's data request is kept on their timeline; nobody else can ask for an erasure."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import orjson
import pytest
from pydantic import SecretStr

from leadflow.runtime import Runtime
from tests.conftest import make_key
from tests.integration.ingest.conftest import SECRETS, fixture
from tests.integration.ingest.test_sources import HUBSPOT_URI, hubspot_headers, shopify_headers

pytestmark = pytest.mark.integration

MARIA = "maria.lopez@globex.example"  # the buyer of the Shopify fixtures
CUSTOMER_ID = 7301928475610


@pytest.fixture
async def system(settings) -> AsyncIterator[tuple[httpx.AsyncClient, dict[str, str]]]:
    """Every service, the vendors' secrets set; a client and an admin key's headers."""
    own = settings.model_copy(
        update={
            "shopify_webhook_secret": SecretStr(SECRETS["shopify_webhook_secret"]),
            "hubspot_client_secret": SecretStr(SECRETS["hubspot_client_secret"]),
        }
    )
    runtime = Runtime(settings=own, services=("ingest", "scoring", "routing"))
    app = runtime.start()
    try:
        assert runtime.wait_until_assigned(timeout_s=30)
        admin = {"Authorization": f"Bearer {make_key(runtime, 'admin')}"}
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield client, admin
    finally:
        runtime.stop(timeout_s=3)


async def shopify(client, topic: str, payload: dict | bytes, event_id: str, shop: str = ""):
    body = payload if isinstance(payload, bytes) else orjson.dumps(payload)
    headers = shopify_headers(body, topic, event_id)
    if shop:
        headers["X-Shopify-Shop-Domain"] = shop
    answer = await client.post("/v1/sources/shopify", content=body, headers=headers)
    assert answer.status_code in (200, 202), answer.text
    return answer


async def leads_named(client, admin, email: str) -> list[dict]:
    answer = await client.get("/v1/leads", params={"email": email}, headers=admin)
    return answer.json()["items"]


async def eventually(check, timeout_s: float = 20.0):
    for _ in range(int(timeout_s * 10)):
        found = await check()
        if found:
            return found
        await asyncio.sleep(0.1)
    raise AssertionError("never happened")


async def test_shopify_customers_redact_erases_the_customer(system):
    client, admin = system
    await shopify(client, "checkouts/create", fixture("shopify/checkouts__create.json"), "c-1")
    [lead] = await eventually(lambda: leads_named(client, admin, MARIA))

    redact = {
        "shop_id": 954889,
        "shop_domain": "globex.myshopify.com",
        "customer": {"id": CUSTOMER_ID, "email": MARIA, "phone": "+34600000000"},
        "orders_to_redact": [299938],
    }
    await shopify(client, "customers/redact", redact, "r-1")

    async def gone():
        return await leads_named(client, admin, MARIA) == []

    await eventually(gone)
    assert (await client.get(f"/v1/leads/{lead['id']}", headers=admin)).status_code == 404


async def test_shopify_shop_redact_erases_every_customer_of_the_shop(system):
    client, admin = system
    shop = "globex.myshopify.com"
    await shopify(
        client, "checkouts/create", fixture("shopify/checkouts__create.json"), "c-2", shop=shop
    )
    await eventually(lambda: leads_named(client, admin, MARIA))
    await shopify(client, "shop/redact", {"shop_id": 1, "shop_domain": shop}, "s-1", shop=shop)

    async def gone():
        return await leads_named(client, admin, MARIA) == []

    await eventually(gone)


async def test_a_customers_data_request_is_on_their_timeline(system):
    client, admin = system
    await shopify(client, "checkouts/create", fixture("shopify/checkouts__create.json"), "c-3")
    [lead] = await eventually(lambda: leads_named(client, admin, MARIA))
    request = {
        "shop_id": 954889,
        "shop_domain": "globex.myshopify.com",
        "customer": {"id": CUSTOMER_ID, "email": MARIA},
        "data_request": {"id": 9999},
    }
    await shopify(client, "customers/data_request", request, "d-1")

    async def asked():
        exported = await client.get(f"/v1/leads/{lead['id']}/export", headers=admin)
        touches = exported.json()["scoring"]["touches"]
        return [t for t in touches if t["type"] == "data_requested"]

    [touch] = await eventually(asked)
    assert touch["properties"]["data_request_id"] == 9999


async def test_hubspot_privacy_deletion_erases_the_contact(system):
    client, admin = system
    created = orjson.dumps(
        [
            {
                "eventId": 1,
                "subscriptionType": "contact.propertyChange",
                "portalId": 62515,
                "objectId": 512,
                "propertyName": "email",
                "propertyValue": "hugo@hub.example",
                "occurredAt": 1765000000000,
            }
        ]
    )
    answer = await client.post(
        "/v1/sources/hubspot", content=created, headers=hubspot_headers(created, uri=HUBSPOT_URI)
    )
    assert answer.status_code == 202, answer.text
    await eventually(lambda: leads_named(client, admin, "hugo@hub.example"))
    deletion = orjson.dumps(
        [
            {
                "eventId": 2,
                "subscriptionType": "contact.privacyDeletion",
                "portalId": 62515,
                "objectId": 512,
                "occurredAt": 1765000001000,
            }
        ]
    )
    answer = await client.post(
        "/v1/sources/hubspot", content=deletion, headers=hubspot_headers(deletion, uri=HUBSPOT_URI)
    )
    assert answer.status_code == 202, answer.text

    async def gone():
        return await leads_named(client, admin, "hugo@hub.example") == []

    await eventually(gone)


async def test_an_erasure_cannot_be_asked_for_as_a_plain_event(system):
    client, admin = system
    answer = await client.post(
        "/v1/events",
        json={"type": "erasure_requested", "lead": {"email": MARIA}},
        headers=admin,
    )
    assert answer.status_code == 422
    assert "type" in answer.text and "reserved" in answer.text
