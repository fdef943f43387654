"""Schemathesis over the whole OpenAPI of the app `leadflow up` serves: who may call each route.

Every route needs a scope, or is a vendor webhook, a public or a hidden route listed with a
reason. Every operation without a key, with an unknown key and with a key of each single scope:
each route that needs a key refuses with 401, each that needs another scope with 403, a key is
no credential for a vendor webhook (401), and the refusal says nothing but a problem (RFC 9457)
with its code.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from urllib.parse import unquote, urlsplit

import orjson
import pytest
import schemathesis
from fastapi import FastAPI, routing
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from schemathesis import Case
from schemathesis.core.transport import Response

from leadflow.runtime import Runtime
from shared.auth import SCOPES, require
from tests.conftest import make_key
from tests.integration._openapi_fuzz_fixtures import (
    AUTH_EXAMPLES,
    CHECKS,
    FuzzReport,
    operations,
    run_cases,
)
from tests.integration._openapi_fuzz_fixtures import settings as settings  # a fixture

pytestmark = pytest.mark.integration

# Routes anyone may call, and why.
PUBLIC = {
    "GET /healthz": "liveness probe: says only that the process is up",
    "GET /readyz": "readiness probe for orchestrators, which hold no key",
    "GET /metrics": "Prometheus scrapes without a key; it holds counts, never lead data",
    "GET /v1/unsubscribe/{token}": "the link in an email: its signed token is the credential",
    "POST /v1/unsubscribe/{token}": "one-click unsubscribe (RFC 8058): the signed token again",
}
# Routes a vendor calls, authenticated by the request's signature: a key is no credential there.
SIGNED = {
    "POST /v1/sources/segment": "Segment signs with X-Signature or sends its write key",
    "POST /v1/sources/shopify": "Shopify signs with X-Shopify-Hmac-Sha256",
    "POST /v1/sources/hubspot": "HubSpot signs with X-HubSpot-Signature-v3",
}
# Routes outside the OpenAPI (include_in_schema=False), and why they need no key (or which
# scope they need: the pages' HTML fragments; tests/integration/views/test_pages.py).
HIDDEN = {
    "GET /ops": "the dashboard's static page; its data comes from /v1/ops/overview (ops:read)",
    "GET /ops/static/{name}": "the dashboard's script and style sheet",
    "GET /": "a page's shell; its data comes from /pages/fragments/home (leads:read)",
    "GET /leads": "a page's shell; its data comes from /pages/fragments/leads (leads:read)",
    "GET /leads/{lead_id}": "a page's shell; its data comes from its fragment (leads:read)",
    "GET /accounts/{domain}": "a page's shell; its data comes from its fragment (leads:read)",
    "GET /pages/static/{name}": "the pages' script and style sheet",
    "GET /pages/fragments/home": "HTML for people: leads:read, like the API",
    "GET /pages/fragments/leads": "HTML for people: leads:read, like GET /v1/leads",
    "GET /pages/fragments/leads/{lead_id}": "HTML for people: leads:read, like the API",
    "GET /pages/fragments/accounts/{domain}": "HTML for people: leads:read, like the API",
}


def required_scope(dependant: Dependant) -> str | None:
    """The scope a `require(scope)` dependency among the route's demands, at any depth; None
    if there is none."""
    pending = list(dependant.dependencies)
    while pending:
        dependency = pending.pop()
        call = dependency.call
        if getattr(call, "__qualname__", "").startswith(f"{require.__qualname__}.<locals>."):
            return inspect.getclosurevars(call).nonlocals["scope"]
        pending.extend(dependency.dependencies)
    return None


def route_table(app: FastAPI) -> tuple[dict[str, str | None], set[str]]:
    """`METHOD /path` -> the scope it requires (None: no key), for the routes in the OpenAPI;
    and the labels of the routes left out of it (FastAPI's own /docs and /openapi.json aside)."""
    scopes: dict[str, str | None] = {}
    hidden: set[str] = set()
    # Recent FastAPI includes routers lazily: walk them as its OpenAPI generator does (older
    # ones list the routes themselves).
    iterate = getattr(routing, "iter_route_contexts", iter)
    for context in iterate(app.routes):
        if not isinstance(getattr(context, "original_route", context), APIRoute):
            continue
        for method in sorted(context.methods or ()):
            label = f"{method} {context.path}"
            if context.include_in_schema:
                scopes[label] = required_scope(context.dependant)
            else:
                hidden.add(label)
    return scopes, hidden


PROBLEM_MEMBERS = {"type", "title", "status", "detail", "instance", "code", "errors"}


def is_problem(response: Response, code: str) -> bool:
    """True if `response` is a problem (RFC 9457, `application/problem+json`) with `code` about
    the request, and nothing else."""
    if response.headers.get("content-type") != ["application/problem+json"]:
        return False
    try:
        parsed = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        return False
    return (
        isinstance(parsed, dict)
        and set(parsed) == PROBLEM_MEMBERS
        and parsed["code"] == code
        and parsed["type"] == f"https://leadflow.dev/problems/{code}"
        and parsed["status"] == response.status_code
        and isinstance(parsed["detail"], str)
        and unquote(parsed["instance"]) == unquote(urlsplit(response.request.url).path)
        and isinstance(parsed["errors"], list)
    )


def test_every_route_is_classified_as_keyed_signed_public_or_hidden(runtime: Runtime) -> None:
    """Each route needs a scope, or is a vendor webhook or a public route listed with a reason;
    the OpenAPI lists exactly the routes in the schema."""
    assert runtime.app is not None
    scopes, hidden = route_table(runtime.app)
    schema = schemathesis.openapi.from_asgi("/openapi.json", runtime.app)
    assert {op.label for op in operations(schema)} == set(scopes)
    assert hidden == set(HIDDEN)
    unkeyed = {label for label, scope in scopes.items() if scope is None}
    assert unkeyed == set(PUBLIC) | set(SIGNED), "a route without a scope must be listed"
    assert {scope for scope in scopes.values() if scope} <= set(SCOPES)


@pytest.mark.parametrize("credential", ["no key", "an unknown key"])
def test_every_non_health_route_refuses_a_request_without_key(
    runtime: Runtime, credential: str
) -> None:
    """Without a valid key, every route but the public ones answers 401 with only the error
    body; the public ones do not ask for a key."""
    assert runtime.app is not None
    schema = schemathesis.openapi.from_asgi("/openapi.json", runtime.app)
    headers = {} if credential == "no key" else {"Authorization": "Bearer lf_" + "x" * 43}
    report = FuzzReport()

    def send(case: Case) -> None:
        # Schemathesis makes up a bearer key for an operation under the ApiKey scheme: none here.
        case.headers = {k: v for k, v in (case.headers or {}).items() if k != "Authorization"}
        response = case.call(headers=headers)
        assert (response.request.headers.get("Authorization") is None) == (not headers)
        case.validate_response(response, checks=CHECKS)
        label = case.operation.label
        if label in PUBLIC:
            assert response.status_code not in (401, 403), f"{label} asked for a key"
        else:
            assert response.status_code == 401, f"{label} answered {response.status_code}"
            assert is_problem(response, "unauthorized"), response.text

    for operation in operations(schema):
        run_cases(
            operation.as_strategy(),
            max_examples=AUTH_EXAMPLES,
            label=operation.label,
            report=report,
            send=send,
        )
    assert not report.failures, report.summary()


def scoped_sender(*, scope: str, key: str, needed: str | None) -> Callable[[Case], None]:
    """Sends a case with a key of `scope` alone to a route needing `needed`, and checks that
    the route refuses it (403, or 401 for a vendor webhook) or not, as it must."""

    def send(case: Case) -> None:
        response = case.call(headers={"Authorization": f"Bearer {key}"})
        case.validate_response(response, checks=CHECKS)
        label, status = case.operation.label, response.status_code
        if label in SIGNED:
            assert status == 401, f"{label} took a {scope} key for a signature: {status}"
            assert is_problem(response, "unauthorized"), response.text
        elif needed is None or scope in (needed, "admin"):
            assert status not in (401, 403), f"{label} refused a {scope} key: {status}"
        else:
            assert status == 403, f"{label} let a {scope} key in: {status}"
            assert is_problem(response, "forbidden"), response.text

    return send


def test_every_route_refuses_a_key_without_its_scope(runtime: Runtime) -> None:
    """With a key of each single scope, each route that needs another scope answers 403 with
    only the error body, and one that needs this scope does not refuse; a key is no credential
    for a vendor webhook (401)."""
    assert runtime.app is not None
    scopes, _ = route_table(runtime.app)
    schema = schemathesis.openapi.from_asgi("/openapi.json", runtime.app)
    keys = {scope: make_key(runtime, scope) for scope in SCOPES}
    report = FuzzReport()
    for operation in operations(schema):
        for scope, key in keys.items():
            run_cases(
                operation.as_strategy(),
                max_examples=AUTH_EXAMPLES,
                label=f"{operation.label} with a {scope} key",
                report=report,
                send=scoped_sender(scope=scope, key=key, needed=scopes[operation.label]),
            )
    assert not report.failures, report.summary()
