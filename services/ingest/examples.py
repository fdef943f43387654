"""Request examples for the OpenAPI document, one or more per source."""

from __future__ import annotations

from typing import Any

_EVENT = {
    "event_id": "evt-2026-11-22-0001",
    "type": "pricing_viewed",
    "occurred_at": "2026-11-22T10:15:00Z",
    "source": "web",
    "lead": {"email": "ana@acme.example", "job_title": "VP Operations"},
    "properties": {"url": "https://seller.example/pricing"},
}

NATIVE_BATCH: dict[str, Any] = {
    "array": [
        _EVENT,
        {
            "event_id": "evt-2026-11-22-0002",
            "type": "cart_add",
            "lead": {"anonymous_id": "c-81f2"},
            "properties": {"cart": {"id": "cart-9", "value": 129.0, "currency": "EUR"}},
        },
    ],
    "object": {"events": [_EVENT]},
}

SEGMENT: dict[str, Any] = {
    "track": {
        "type": "track",
        "messageId": "ajs-next-1795105361057-4e0d8a7c",
        "event": "Checkout Started",
        "userId": "usr_4f8b2c1d9e",
        "anonymousId": "3f6d2b8a-9c41-4e7b-8a55-1d2c3b4a5e6f",
        "properties": {"checkout_id": "b7d3e1f2", "value": 129.0, "currency": "EUR"},
        "context": {"traits": {"email": "maria.lopez@globex.example"}},
        "timestamp": "2026-11-22T10:15:00.000Z",
    },
    "identify": {
        "type": "identify",
        "messageId": "ajs-next-1795105361058-91ab",
        "userId": "usr_4f8b2c1d9e",
        "traits": {
            "email": "maria.lopez@globex.example",
            "firstName": "Maria",
            "title": "VP, Operations",
            "company": {"name": "Globex", "industry": "Manufacturing", "employee_count": 420},
        },
    },
    "batch": {
        "batch": [
            {
                "type": "page",
                "messageId": "m-1",
                "anonymousId": "a-1",
                "name": "Pricing",
                "properties": {"url": "https://seller.example/pricing"},
            },
            {"type": "alias", "messageId": "m-2", "previousId": "a-1", "userId": "usr_1"},
        ]
    },
    "actions array": [
        {
            "type": "identify",
            "messageId": "ajs-next-7c1e5a9b",
            "userId": "usr_4f8b2c1d9e",
            "traits": {"email": "maria.lopez@globex.example", "plan": "enterprise", "logins": 14},
            "timestamp": "2026-12-01T09:12:03.240Z",
        }
    ],
}

SHOPIFY: dict[str, Any] = {
    "checkouts/create": {
        "id": 32919284793402,
        "token": "b7d3e1f2a4c6",
        "cart_token": "9f1c2d3e4b5a",
        "email": "maria.lopez@globex.example",
        "currency": "USD",
        "total_price": "129.00",
        "abandoned_checkout_url": "https://shop.example/checkouts/b7d3e1f2a4c6/recover",
        "line_items": [{"title": "Sensor kit", "quantity": 1, "price": "129.00"}],
        "customer": {"id": 7301928475610, "first_name": "Maria", "last_name": "Lopez"},
        "created_at": "2026-11-22T10:15:00-05:00",
    }
}

HUBSPOT: dict[str, Any] = {
    "property change": [
        {
            "eventId": 4102933900,
            "subscriptionId": 2410080,
            "portalId": 48151623,
            "appId": 2874519,
            "occurredAt": 1795105361057,
            "subscriptionType": "contact.propertyChange",
            "attemptNumber": 0,
            "objectId": 73519204817,
            "changeSource": "CRM",
            "propertyName": "email",
            "propertyValue": "maria.lopez@globex.example",
        }
    ]
}
