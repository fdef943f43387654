"""The webhook subscription routes: a secret shown once, validation naming the field, 404s,
paging, scopes, rotation, and what disabling or deleting does to pending deliveries."""

from __future__ import annotations

import base64
from datetime import datetime, timedelta

import httpx
import pytest

from tests.conftest import make_key
from tests.integration.routing.conftest import wait_until

pytestmark = pytest.mark.integration

ALL = [
    "lead.created",
    "lead.qualified",
    "lead.stage_changed",
    "lead.owner_assigned",
    "lead.merged",
    "lead.erased",
]
SQL_TOUCH = {
    "type": "demo_requested",
    "lead": {"email": "ada@corp.example", "job_title": "CTO"},
    "properties": {"budget": "100k+", "timeframe": "this month"},
}


async def create(client, **body) -> dict:
    response = await client.post("/v1/webhooks", json={"url": "https://crm.example/h", **body})
    assert response.status_code == 201, response.text
    return response.json()


def error_fields(response: httpx.Response) -> list[str]:
    return [d["field"] for d in response.json()["errors"]]


async def test_create_returns_the_secret_once_and_reads_never_show_it(pipeline):
    async with pipeline() as (client, _rt):
        made = await create(client, description="HubSpot sync")
        secret = made["secret"]
        assert secret.startswith("whsec_")
        assert len(base64.b64decode(secret.removeprefix("whsec_"))) == 32
        assert made["event_types"] == ALL  # none named: all of them
        assert made["enabled"] is True and made["previous_secret_expires_at"] is None
        got = (await client.get(f"/v1/webhooks/{made['id']}")).json()
        listed = (await client.get("/v1/webhooks")).json()
        assert listed["next_cursor"] is None
        assert [s["id"] for s in listed["items"]] == [made["id"]]
        for view in (got, listed["items"][0]):
            assert "secret" not in view
            assert secret not in str(view)
            assert view["description"] == "HubSpot sync"


async def test_event_types_are_kept_once_each_in_the_documented_order(pipeline):
    async with pipeline() as (client, _rt):
        made = await create(client, event_types=["lead.merged", "lead.created", "lead.merged"])
        assert made["event_types"] == ["lead.created", "lead.merged"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"url": "ftp://crm.example/h"}, "url"),
        ({"url": "crm.example/h"}, "url"),
        ({"url": "https://"}, "url"),
        ({"url": "https://user:pw@crm.example/h"}, "url"),
        ({"url": "https://crm.example:99999/h"}, "url"),
        ({"url": "https://crm.example/a b"}, "url"),
        ({"url": "https://crm.example/h", "event_types": ["lead.deleted"]}, "event_types.0"),
        ({"url": "https://crm.example/h", "event_types": []}, "event_types"),
        ({"url": "https://crm.example/h", "secret": "whsec_mine"}, "secret"),
        ({}, "url"),
    ],
)
async def test_an_invalid_subscription_is_a_422_naming_the_field(pipeline, body, field):
    async with pipeline() as (client, _rt):
        response = await client.post("/v1/webhooks", json=body)
        assert response.status_code == 422, response.text
        assert field in error_fields(response)
        assert field in response.json()["detail"]


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "", None),
        ("PATCH", "", {"enabled": False}),
        ("DELETE", "", None),
        ("POST", "/rotate", None),
        ("GET", "/deliveries", None),
    ],
)
async def test_an_unknown_subscription_is_a_404(pipeline, method, path, body):
    async with pipeline() as (client, _rt):
        response = await client.request(method, f"/v1/webhooks/nope{path}", json=body)
        assert response.status_code == 404, response.text
        assert response.json()["code"] == "not_found"


async def test_subscriptions_are_listed_a_page_at_a_time_and_a_forged_cursor_is_a_400(pipeline):
    async with pipeline() as (client, _rt):
        made = sorted([(await create(client))["id"] for _ in range(3)])
        first = (await client.get("/v1/webhooks", params={"limit": 2})).json()
        assert [s["id"] for s in first["items"]] == made[:2]
        rest = (
            await client.get("/v1/webhooks", params={"limit": 2, "cursor": first["next_cursor"]})
        ).json()
        assert [s["id"] for s in rest["items"]] == made[2:]
        assert rest["next_cursor"] is None
        for cursor in ("not-a-cursor", "WzFd", "W10"):
            bad = await client.get("/v1/webhooks", params={"cursor": cursor})
            assert bad.status_code == 400, bad.text
            assert bad.json()["code"] == "bad_cursor"


async def test_the_routes_need_the_webhooks_manage_scope(pipeline):
    async with pipeline() as (client, runtime):
        reader = {"Authorization": f"Bearer {make_key(runtime, 'leads:read', 'leads:write')}"}
        refused = await client.get("/v1/webhooks", headers=reader)
        assert refused.status_code == 403
        assert "webhooks:manage" in refused.json()["detail"]
        manager = {"Authorization": f"Bearer {make_key(runtime, 'webhooks:manage')}"}
        created = await client.post(
            "/v1/webhooks", json={"url": "https://crm.example/h"}, headers=manager
        )
        assert created.status_code == 201, created.text


async def test_rotation_issues_a_new_secret_and_says_until_when_the_old_one_signs(pipeline):
    async with pipeline() as (client, _rt):
        made = await create(client)
        rotated = await client.post(f"/v1/webhooks/{made['id']}/rotate")
        assert rotated.status_code == 200, rotated.text
        new = rotated.json()
        assert new["secret"].startswith("whsec_") and new["secret"] != made["secret"]
        expires = datetime.fromisoformat(new["previous_secret_expires_at"])
        created = datetime.fromisoformat(made["created_at"])
        assert timedelta(hours=23) < expires - created < timedelta(hours=25)
        assert "secret" not in (await client.get(f"/v1/webhooks/{made['id']}")).json()

        at_once = await client.post(f"/v1/webhooks/{made['id']}/rotate", json={"grace_period_s": 0})
        # The first rotation's secret still signs until it expires; none was added now.
        assert at_once.json()["previous_secret_expires_at"] == new["previous_secret_expires_at"]
        too_long = await client.post(
            f"/v1/webhooks/{made['id']}/rotate", json={"grace_period_s": 8 * 86_400}
        )
        assert too_long.status_code == 422
        assert "grace_period_s" in error_fields(too_long)


async def pending_deliveries(client) -> list[dict]:
    actions = (await client.get("/v1/actions", params={"kind": "lead_webhook"})).json()["items"]
    return actions


async def test_deleting_a_subscription_cancels_its_pending_deliveries(pipeline):
    # No delivery pass runs in this test: what is planned stays pending.
    async with pipeline(actions_poll_interval_s=600) as (client, _rt):
        doomed = await create(client)
        response = await client.post("/v1/events", json=SQL_TOUCH)
        assert response.status_code == 202, response.text

        async def waiting():
            found = await pending_deliveries(client)
            kinds = {a["playbook"] for a in found}
            ready = {"lead.created", "lead.qualified", "lead.owner_assigned"} <= kinds
            return found if ready and all(a["status"] == "scheduled" for a in found) else None

        before = await wait_until(waiting, timeout_s=20)
        deleted = await client.delete(f"/v1/webhooks/{doomed['id']}")
        assert deleted.status_code == 200, deleted.text
        assert deleted.json() == {
            "id": doomed["id"],
            "deleted": True,
            "cancelled_deliveries": len(before),
        }
        after = await pending_deliveries(client)
        assert {a["status"] for a in after} == {"cancelled"}
        assert {a["cancel_reason"] for a in after} == {"the subscription was deleted"}
        assert (await client.get(f"/v1/webhooks/{doomed['id']}")).status_code == 404


async def test_disabling_a_subscription_cancels_its_pending_deliveries_and_plans_no_more(
    pipeline,
):
    async with pipeline(actions_poll_interval_s=600) as (client, _rt):
        sub = await create(client, event_types=["lead.created"])
        await client.post("/v1/events", json=SQL_TOUCH)
        await wait_until(lambda: pending_deliveries(client))
        patched = await client.patch(
            f"/v1/webhooks/{sub['id']}", json={"enabled": False, "description": None}
        )
        assert patched.status_code == 200, patched.text
        assert patched.json()["enabled"] is False
        [cancelled] = await pending_deliveries(client)
        assert cancelled["status"] == "cancelled"
        assert cancelled["cancel_reason"] == "the subscription is disabled"
        other = {**SQL_TOUCH, "lead": {"email": "bo@corp.example"}}
        await client.post("/v1/events", json=other)
        await wait_until(lambda: _owned(client, "bo@corp.example"))
        assert len(await pending_deliveries(client)) == 1


async def _owned(client, email: str) -> bool:
    items = (await client.get("/v1/leads", params={"email": email})).json()["items"]
    return bool(items and items[0]["owner"])


async def test_the_openapi_documents_each_event_body_and_its_headers_under_webhooks(pipeline):
    async with pipeline() as (client, _rt):
        spec = (await client.get("/openapi.json")).json()
        assert list(spec["webhooks"]) == ALL
        schemas = spec["components"]["schemas"]
        for event_type in ALL:
            operation = spec["webhooks"][event_type]["post"]
            headers = {p["name"] for p in operation["parameters"] if p["in"] == "header"}
            assert headers == {"webhook-id", "webhook-timestamp", "webhook-signature"}
            ref = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
            body = schemas[ref.rsplit("/", 1)[1]]
            assert body["properties"]["type"]["const"] == event_type
            assert body["required"] == ["type", "timestamp", "data"]
        qualified = schemas["QualifiedData"]["properties"]
        assert {"lead", "cause_event_id", "qualification"} <= set(qualified)
