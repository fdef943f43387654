"""The OpenAPI of the app `leadflow up` serves (every service on one app) is a description a
client generator can use: operation ids that are readable, unique and follow the route
functions; the bearer scheme on every keyed operation and none elsewhere, so /docs' Authorize
sends the key; every error status described as the problem it is; the media types of the
answers that are not JSON, as they are sent."""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import cache
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, routing
from fastapi.routing import APIRoute
from sqlalchemy import create_engine
from sqlalchemy.orm import sessionmaker

from leadflow.app import create_app
from shared.auth import SCOPES
from shared.config import Settings
from shared.db import metadata
from shared.http import Resources

METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}
# The operations anyone may call (probes, metrics, the signed unsubscribe link) and the vendor
# webhooks, which authenticate by their own signatures: no ApiKey scheme on them.
UNKEYED = {
    "GET /healthz",
    "GET /readyz",
    "GET /metrics",
    "GET /v1/unsubscribe/{token}",
    "POST /v1/unsubscribe/{token}",
    "POST /v1/sources/segment",
    "POST /v1/sources/shopify",
    "POST /v1/sources/hubspot",
}
# Error answers that are not problems: /readyz's 503 is its readiness report (the same body as
# its 200), and an unsubscribe link that is not valid is a page for the person who clicked it.
NOT_PROBLEMS = {
    ("GET /readyz", "503"): "application/json",
    ("GET /v1/unsubscribe/{token}", "404"): "text/html",
    ("POST /v1/unsubscribe/{token}", "404"): "text/html",
}
PROBLEM = {"schema": {"$ref": "#/components/schemas/Problem"}}


@cache
def app() -> FastAPI:
    """The app `leadflow up` serves, on an empty in-memory database."""
    engine = create_engine("sqlite://")
    resources = Resources(settings=Settings(), engine=engine, sessions=sessionmaker(engine))
    return create_app(resources=resources, services=["ingest", "scoring", "routing"])


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    return app().openapi()


def operations(spec: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """`METHOD /path` and the operation, for every operation of the paths."""
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            if method in METHODS:
                yield f"{method.upper()} {path}", operation


def test_operation_ids_are_the_route_functions_names_unique_across_the_app(spec) -> None:
    ids = [op["operationId"] for _, op in operations(spec)]
    ids += [op["operationId"] for item in spec["webhooks"].values() for op in item.values()]
    assert len(ids) == len(set(ids)), sorted(i for i in ids if ids.count(i) > 1)
    for operation_id in ids:
        # No path or method noise (FastAPI's default: `get_lead_v1_leads__lead_id__get`).
        assert re.fullmatch(r"[a-z][a-z0-9]*(_[a-z0-9]+)*", operation_id), operation_id
        assert not re.search(r"(^|_)v1(_|$)|_(get|post|put|patch|delete)$", operation_id)
    functions = {
        f"{method} {context.path}": context.endpoint.__name__
        for context in getattr(routing, "iter_route_contexts", iter)(app().routes)
        if isinstance(getattr(context, "original_route", context), APIRoute)
        and context.include_in_schema
        for method in context.methods
    }
    assert {label: op["operationId"] for label, op in operations(spec)} == functions


def test_operation_ids_clients_are_written_against_stay(spec) -> None:
    ids = {label: op["operationId"] for label, op in operations(spec)}
    assert ids["GET /v1/leads"] == "list_leads"
    assert ids["GET /v1/leads/{lead_id}"] == "get_lead"
    assert ids["GET /v1/leads/export"] == "export_leads"
    assert ids["POST /v1/events"] == "post_event"
    assert ids["POST /v1/events/batch"] == "post_batch"
    assert ids["GET /v1/teams/{team}/queue"] == "team_queue"
    assert ids["POST /v1/webhooks"] == "create_webhook"
    assert ids["GET /metrics"] == "prometheus_metrics"
    assert spec["webhooks"]["lead.created"]["post"]["operationId"] == "lead_created"


def test_keyed_operations_declare_the_bearer_scheme_with_their_scope(spec) -> None:
    assert spec["components"]["securitySchemes"] == {
        "ApiKey": {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "lf_ API key",
            "description": spec["components"]["securitySchemes"]["ApiKey"]["description"],
        }
    }
    security = {label: op.get("security") for label, op in operations(spec)}
    assert {label for label, required in security.items() if required is None} == UNKEYED
    for label, required in security.items():
        if label not in UNKEYED:
            assert len(required) == 1 and list(required[0]) == ["ApiKey"], label
            (scope,) = required[0]["ApiKey"]
            assert scope in set(SCOPES) - {"admin"}, label
    assert security["GET /v1/leads"] == [{"ApiKey": ["leads:read"]}]
    assert security["POST /v1/events"] == [{"ApiKey": ["events:write"]}]
    assert security["POST /v1/ops/dlq/replay"] == [{"ApiKey": ["ops:write"]}]
    assert security["DELETE /v1/leads/{lead_id}"] == [{"ApiKey": ["privacy"]}]


def test_every_error_status_is_described_as_a_problem(spec) -> None:
    problem = spec["components"]["schemas"]["Problem"]
    assert set(problem["required"]) == {
        "type",
        "title",
        "status",
        "detail",
        "instance",
        "code",
        "errors",
    }
    assert "HTTPValidationError" not in str(spec)
    described = 0
    for label, operation in operations(spec):
        for status, response in operation["responses"].items():
            if int(status) < 400:
                continue
            content = response["content"]
            if (label, status) in NOT_PROBLEMS:
                assert list(content) == [NOT_PROBLEMS[label, status]]
                continue
            assert list(content) == ["application/problem+json"], (label, status)
            media = content["application/problem+json"]
            assert media["schema"] == PROBLEM["schema"], (label, status)
            described += 1
    assert described > 100


def test_answers_that_are_not_json_declare_their_media_types(spec) -> None:
    ok = {label: op["responses"].get("200", {}).get("content") for label, op in operations(spec)}
    assert list(ok["GET /metrics"]) == ["text/plain; version=0.0.4; charset=utf-8"]
    assert list(ok["GET /v1/leads/export"]) == ["text/csv", "application/x-ndjson"]
    assert list(ok["GET /v1/unsubscribe/{token}"]) == ["text/html"]


async def test_answers_are_sent_with_the_media_types_declared(tmp_path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'leadflow.db'}")
    metadata.create_all(engine)
    settings = Settings(auth="off")
    resources = Resources(settings=settings, engine=engine, sessions=sessionmaker(engine))
    served = create_app(resources=resources, services=["ingest", "scoring", "routing"])
    transport = httpx.ASGITransport(app=served)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        metrics = await client.get("/metrics")
        csv = await client.get("/v1/leads/export", params={"format": "csv"})
        ndjson = await client.get("/v1/leads/export", params={"format": "ndjson"})
        docs = await client.get("/docs")
    engine.dispose()
    assert metrics.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    assert csv.headers["content-type"] == "text/csv; charset=utf-8"
    assert csv.text.startswith("id,")
    assert ndjson.headers["content-type"] == "application/x-ndjson"
    assert docs.status_code == 200 and "/openapi.json" in docs.text
