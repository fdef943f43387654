"""The OpenAPI types what the routes answer: the components hold the Lead, Account, Action and
Team models and pages of them, and the routes' 200 answers refer to them (schemathesis checks
the answers against them: test_openapi_fuzz.py)."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.integration


def ref(spec: dict, path: str, method: str = "get", status: str = "200") -> str:
    """The component a route's answer refers to."""
    schema = spec["paths"][path][method]["responses"][status]["content"]["application/json"]
    return schema["schema"]["$ref"].rpartition("/")[2]


async def test_components_hold_the_lead_account_action_team_and_page_models(client):
    spec = (await client.get("/openapi.json")).json()
    components = spec["components"]["schemas"]
    for name in ("Lead", "Account", "Action", "Team", "Teams", "QueueItem", "Funnel"):
        assert name in components, name
    assert {"Page_Lead_", "Page_Account_", "Page_Action_", "Page_QueueItem_"} <= set(components)
    page = components["Page_Action_"]
    assert set(page["properties"]) == {"items", "next_cursor"}
    assert set(page["required"]) == {"items", "next_cursor"}
    lead = components["Lead"]
    assert {"id", "email", "score", "qualification", "bant", "owner", "account"} <= set(
        lead["required"]
    )
    assert "additionalProperties" not in lead  # exact: schemathesis checks every field


@pytest.mark.parametrize(
    ("path", "method", "status", "model"),
    [
        ("/v1/leads", "get", "200", "Page_Lead_"),
        ("/v1/leads/lookup", "get", "200", "Lead"),
        ("/v1/leads/{lead_id}", "get", "200", "Lead"),
        ("/v1/leads/{lead_id}/timeline", "get", "200", "Page_TimelineEntry_"),
        ("/v1/funnel", "get", "200", "Funnel"),
        ("/v1/accounts", "get", "200", "Page_Account_"),
        ("/v1/accounts/{domain}", "get", "200", "Account"),
        ("/v1/accounts/{domain}/members/{lead_id}", "patch", "200", "Account"),
        ("/v1/actions", "get", "200", "Page_Action_"),
        ("/v1/actions/{action_id}/cancel", "post", "200", "Action"),
        ("/v1/teams", "get", "200", "Teams"),
        ("/v1/teams/{team}/queue", "get", "200", "Page_QueueItem_"),
        ("/v1/teams/{team}/tasks", "get", "200", "Page_Action_"),
        ("/v1/teams/{team}/members/{member}", "patch", "200", "Team"),
        ("/v1/leads/{lead_id}/feedback", "post", "202", "FeedbackRecorded"),
    ],
)
async def test_each_route_answers_with_its_model(client, path, method, status, model):
    spec = (await client.get("/openapi.json")).json()
    assert ref(spec, path, method, status) == model


@pytest.mark.parametrize(
    "path", ["/v1/actions", "/v1/teams/{team}/queue", "/v1/teams/{team}/tasks"]
)
async def test_the_paged_routing_listings_take_a_cursor(client, path):
    spec = (await client.get("/openapi.json")).json()
    names = {p["name"] for p in spec["paths"][path]["get"]["parameters"]}
    assert {"limit", "cursor"} <= names
