"""Every error answer is an RFC 9457 problem (`application/problem+json`: type, title, status,
detail, instance, and leadflow's `code` and `errors`), whoever answers: the routes, FastAPI's
validation, Starlette's routing, the body limit, the key check, ingest's fast path; and with
LEADFLOW_ERROR_FORMAT=legacy, the body of earlier releases, exactly.

The apps are the ones `leadflow.app.create_app` builds, on a SQLite file and no broker: every
answer here is given before anything would be published.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine
from sqlalchemy.orm import sessionmaker

from leadflow.app import create_app
from shared.auth import create_key
from shared.config import Settings
from shared.db import metadata
from shared.http import PROBLEM_TITLES, Resources
from shared.schemas import Problem

ROOT = Path(__file__).resolve().parents[3]
EVENT = {"type": "page_view", "lead": {"email": "ana@acme.example"}}

Client = Callable[..., Any]


@pytest.fixture
def served(tmp_path: Path) -> Client:
    """`async with served(**settings) as (client, key)`: the whole app on a fresh SQLite file,
    and a key with `scopes` (default admin) in it."""

    @asynccontextmanager
    async def start(
        *, scopes: tuple[str, ...] = ("admin",), database: Path | None = None, **settings: Any
    ) -> AsyncIterator[tuple[httpx.AsyncClient, str]]:
        engine = create_engine(f"sqlite:///{database or tmp_path / 'leadflow.db'}")
        key = ""
        if database is None:
            metadata.create_all(engine)
            with sessionmaker(engine).begin() as session:
                key = create_key(session, name="k", scopes=scopes)
        resources = Resources(
            settings=Settings(**settings), engine=engine, sessions=sessionmaker(engine)
        )
        app = create_app(resources=resources, services=["ingest", "scoring", "routing"])
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield client, key
        engine.dispose()

    return start


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """The problem `response` carries, checked member by member against its request."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    Problem.model_validate(body)
    assert set(body) == {"type", "title", "status", "detail", "instance", "code", "errors"}
    assert body["type"] == f"https://leadflow.dev/problems/{code}"
    assert body["title"] == PROBLEM_TITLES[code]
    assert (body["status"], body["code"]) == (status, code)
    assert body["instance"] == response.request.url.path
    return body


async def test_a_validation_error_is_a_422_problem_naming_the_field(served: Client) -> None:
    async with served() as (client, key):
        query = await client.get("/v1/leads", params={"limit": 0}, headers=bearer(key))
        event = await client.post("/v1/events/batch", json=[{"type": "x"}], headers=bearer(key))
    body = problem(query, 422, "validation_error")
    assert body["errors"][0]["field"] == "query.limit" and "query.limit" in body["detail"]
    body = problem(event, 422, "validation_error")
    assert body["errors"][0]["field"] == "lead" and body["errors"][0]["index"] == 0


async def test_no_key_is_a_401_problem_and_a_bad_scope_a_403_naming_it(served: Client) -> None:
    async with served(scopes=("events:write",)) as (client, key):
        missing = await client.get("/v1/leads")
        unknown = await client.get("/v1/leads", headers=bearer("lf_" + "x" * 43))
        wrong_scope = await client.get("/v1/leads", headers=bearer(key))
    assert "Authorization" in problem(missing, 401, "unauthorized")["detail"]
    assert missing.headers["www-authenticate"] == "Bearer"
    assert problem(unknown, 401, "unauthorized")["detail"] == "unknown or revoked API key"
    body = problem(wrong_scope, 403, "forbidden")
    assert body["errors"] == [{"field": "scope", "error": "requires leads:read"}]


async def test_routings_404_and_405_and_a_missing_resource_are_problems(served: Client) -> None:
    async with served() as (client, key):
        no_route = await client.get("/v1/nothing-here")
        no_lead = await client.get("/v1/leads/l-nobody", headers=bearer(key))
        no_method = await client.put("/v1/leads", headers=bearer(key))
    assert problem(no_route, 404, "not_found")["instance"] == "/v1/nothing-here"
    assert "l-nobody" in problem(no_lead, 404, "not_found")["detail"]
    problem(no_method, 405, "method_not_allowed")
    assert no_method.headers["allow"] == "GET"


async def test_a_body_over_the_limit_is_a_413_problem_declared_or_streamed(served: Client) -> None:
    big = b"[" + b"1," * 1_000 + b"1]"

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(big), 500):
            yield big[start : start + 500]

    async with served(max_body_bytes=1_000) as (client, key):
        headers = {**bearer(key), "Content-Type": "application/json"}
        declared = await client.post("/v1/events/batch", content=big, headers=headers)
        streamed = await client.post("/v1/events/batch", content=chunks(), headers=headers)
    for response in (declared, streamed):
        assert "larger than 1000 bytes" in problem(response, 413, "payload_too_large")["detail"]


async def test_a_key_over_its_rate_limit_is_a_429_problem_with_retry_after(
    served: Client,
) -> None:
    async with served(rate_limit_key_per_s=0.01, rate_limit_key_burst=1) as (client, key):
        first = await client.get("/v1/leads", headers=bearer(key))
        second = await client.get("/v1/leads", headers=bearer(key))
    assert first.status_code == 200, first.text
    problem(second, 429, "rate_limited")
    assert int(second.headers["retry-after"]) >= 1


async def test_an_unavailable_database_is_a_503_problem_with_retry_after(
    served: Client, tmp_path: Path
) -> None:
    async with served(database=tmp_path / "missing" / "leadflow.db") as (client, _key):
        response = await client.get("/v1/leads", headers=bearer("lf_" + "x" * 43))
    body = problem(response, 503, "unavailable")
    assert body["errors"] == [{"dependency": "database"}]
    assert response.headers["retry-after"] == "5"


async def test_ingests_fast_path_refuses_with_a_problem_too(served: Client) -> None:
    async with served() as (client, _key):
        response = await client.post("/v1/events", json=EVENT)  # valid: the fast path answers
    problem(response, 401, "unauthorized")


async def test_legacy_format_is_the_earlier_body_exactly(served: Client) -> None:
    async with served(error_format="legacy", max_body_bytes=1_000) as (client, key):
        answers = {
            401: await client.post("/v1/events", json=EVENT),
            404: await client.get("/v1/nothing-here"),
            413: await client.post(
                "/v1/events/batch", content=b"[" + b" " * 2_000 + b"]", headers=bearer(key)
            ),
            422: await client.get("/v1/leads", params={"limit": 0}, headers=bearer(key)),
        }
        spec = (await client.get("/openapi.json")).json()
    for status, response in answers.items():
        assert response.status_code == status, response.text
        assert response.headers["content-type"] == "application/json"
        body = response.json()
        assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "details"}
    assert answers[422].json()["error"]["code"] == "validation_error"
    assert answers[422].json()["error"]["details"][0]["field"] == "query.limit"
    assert answers[401].headers["www-authenticate"] == "Bearer"
    # The OpenAPI describes what is sent: the legacy body, as JSON.
    not_found = spec["paths"]["/v1/leads/{lead_id}"]["get"]["responses"]["404"]["content"]
    assert not_found == {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}
    assert "Problem" not in spec["components"]["schemas"]


def test_the_readme_documents_every_problem_code() -> None:
    readme = (ROOT / "README.md").read_text()
    documented = set(re.findall(r"^\| `([a-z_]+)` \| \d{3}", readme, flags=re.MULTILINE))
    assert documented == set(PROBLEM_TITLES)
