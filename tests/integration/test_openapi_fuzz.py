"""Schemathesis over the whole OpenAPI of the app `leadflow up` serves.

First pass: every operation, with a key that holds every scope, gets bounded generated requests
(the schema's own examples, valid data and invalid data, some aimed at seeded leads, accounts,
teams and actions): no answer is a 5xx or breaks the schema it documents, and afterwards every
consumer and background worker is alive and reports no problem. Second pass: every operation
without a key, with an unknown key and with a key of each single scope: each route that needs a
key refuses with 401, each that needs another scope with 403, and the refusal says nothing but
a problem (RFC 9457) with its code.

Vendor webhooks authenticate by signature, not by key: in the first pass a wrapper in front of
the app signs each of their requests over the exact bytes sent, as the vendor would, so the
fuzz reaches their parsers.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import inspect
import json
import logging
import os
import re
import socket
import tempfile
import time
import zlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import httpx
import hypothesis
import orjson
import pytest
import schemathesis
from fastapi import FastAPI, routing
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from hypothesis import HealthCheck, Phase
from hypothesis.strategies import SearchStrategy
from pydantic import SecretStr
from schemathesis import Case, GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    ignored_auth,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.core.transport import Response
from schemathesis.schemas import APIOperation, BaseSchema

from leadflow.runtime import Runtime
from services.ingest.domain.shopify import TOPICS as SHOPIFY_TOPICS
from services.ingest.imports import start_import
from services.routing.domain.webhooks import unsubscribe_token
from shared.auth import SCOPES, require
from shared.config import Settings
from shared.events import utcnow
from tests.conftest import Broker, make_key, session_timeout_ms, unique_settings

pytestmark = pytest.mark.integration

# Generated requests per operation and generation mode (valid data, invalid data), and per
# operation aimed at the seeded resources: bounded, so the file runs in well under 2 minutes.
# LEADFLOW_FUZZ_EXAMPLES=200 makes a deeper run by hand, drawing new requests each time; the
# suite's run sends the same ones every time, so a failure there reproduces.
DEEP = "LEADFLOW_FUZZ_EXAMPLES" in os.environ
FUZZ_EXAMPLES = int(os.environ.get("LEADFLOW_FUZZ_EXAMPLES", "12"))
SEEDED_EXAMPLES = max(6, FUZZ_EXAMPLES // 2)
AUTH_EXAMPLES = 3

HYPOTHESIS = hypothesis.settings(
    deadline=None,
    database=None,  # nothing saved between runs, nothing replayed from an earlier one
    derandomize=not DEEP,
    phases=[Phase.explicit, Phase.generate],  # no shrinking: it can multiply the run time
    suppress_health_check=list(HealthCheck),
    print_blob=False,
)

# What every response is checked against: no 5xx, and the status, content type, headers and
# body its operation documents, and (`ignored_auth`) that an operation declaring the ApiKey
# security scheme refuses a request without a key or with a bad one. Left out, as questions of
# API design rather than bugs:
# `negative_data_rejection` (FastAPI parses leniently: a time may be sent as Unix seconds, a
# boolean as "yes", an unknown query parameter is ignored; invalid data is still fuzzed and must
# get no 5xx and a documented answer), `positive_data_acceptance` (a valid request for a lead or
# team that does not exist is a 404, as it must be), and the stateful and method checks
# (`use_after_free`, `ensure_resource_availability`, `unsupported_method`): the schema declares
# no links, and the second pass tests authentication route by route.
CHECKS = [
    ignored_auth,
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]

VENDOR_SECRETS = {
    "segment_shared_secret": "fuzz-segment-secret",
    "shopify_webhook_secret": "fuzz-shopify-secret",
    "hubspot_client_secret": "fuzz-hubspot-secret",
}
HUBSPOT_URL = "http://testserver/v1/sources/hubspot"
# The outage trackers of webhook receivers (the default routing config names none: these are
# the fuzz's own subscriptions).
LEAD_WEBHOOK_OUTAGES = "action delivery (webhook "

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


@pytest.fixture
def settings(broker: Broker, clean_db: str) -> Settings:
    """The suite's test settings, plus secrets for the vendor webhooks so the fuzz can sign."""
    return unique_settings(
        bootstrap=broker.bootstrap_servers,
        database_url=clean_db,
        kafka_session_timeout_ms=session_timeout_ms(broker.kind),
        hubspot_webhook_url=HUBSPOT_URL,
        **{name: SecretStr(value) for name, value in VENDOR_SECRETS.items()},
    )


def _b64_hmac(secret: str, message: bytes, digest: Callable[..., Any]) -> bytes:
    """The base64 HMAC of `message`."""
    return base64.b64encode(hmac.new(secret.encode(), message, digest).digest())


def vendor_headers(path: str, body: bytes, headers: dict[bytes, bytes]) -> dict[bytes, bytes]:
    """The headers the vendor posting to `path` would add to `body`; empty for other paths."""
    if path == "/v1/sources/segment":
        secret = VENDOR_SECRETS["segment_shared_secret"].encode()
        return {b"x-signature": hmac.new(secret, body, hashlib.sha1).hexdigest().encode()}
    if path == "/v1/sources/shopify":
        signed = {
            b"x-shopify-hmac-sha256": _b64_hmac(
                VENDOR_SECRETS["shopify_webhook_secret"], body, hashlib.sha256
            )
        }
        if b"x-shopify-topic" not in headers:  # not in the schema: a topic Shopify sends
            topics = sorted(SHOPIFY_TOPICS)
            signed[b"x-shopify-topic"] = topics[zlib.crc32(body) % len(topics)].encode()
        return signed
    if path == "/v1/sources/hubspot":
        timestamp = str(int(time.time() * 1000)).encode()
        message = b"POST" + HUBSPOT_URL.encode() + body + timestamp
        signature = _b64_hmac(VENDOR_SECRETS["hubspot_client_secret"], message, hashlib.sha256)
        return {b"x-hubspot-request-timestamp": timestamp, b"x-hubspot-signature-v3": signature}
    return {}


class SignedLikeTheVendors:
    """ASGI wrapper: signs requests to the vendor webhooks over the bytes sent, as the vendor
    would; every other request passes unchanged."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        """Read the body, add the vendor's headers, hand the request on."""
        if scope["type"] != "http" or not scope["path"].startswith("/v1/sources/"):
            await self.app(scope, receive, send)
            return
        messages: list[Any] = []
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request" or not message.get("more_body", False):
                break
        body = b"".join(m.get("body", b"") for m in messages)
        headers = dict(scope["headers"])
        added = vendor_headers(scope["path"], body, headers)
        scope = {
            **scope,
            "headers": [(k, v) for k, v in scope["headers"] if k not in added]
            + list(added.items()),
        }

        async def replay() -> Any:
            return messages.pop(0) if messages else await receive()

        await self.app(scope, replay, send)


def operations(schema: BaseSchema) -> list[APIOperation]:
    """Every operation of the schema; fails on one schemathesis cannot read."""
    return [result.ok() for result in schema.get_all_operations()]


def path_parameters(operation: APIOperation) -> list[str]:
    """The names of the operation's path parameters."""
    return re.findall(r"{(\w+)}", operation.path)


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


@dataclass
class FuzzReport:
    """What a pass sent and what failed, per operation label."""

    examples: Counter[str] = field(default_factory=Counter)
    valid: set[str] = field(default_factory=set)  # operations sent at least one valid request
    failures: dict[str, list[str]] = field(default_factory=dict)

    def failed(self, label: str, error: BaseException) -> None:
        """Record a failure of the operation `label`."""
        notes = "".join(f"\n{note}" for note in getattr(error, "__notes__", ()))
        self.failures.setdefault(label, []).append(f"{type(error).__name__}: {error}{notes}")

    def summary(self) -> str:
        """Every failure, grouped by operation."""
        return "\n\n".join(
            f"== {label}\n" + "\n".join(errors) for label, errors in sorted(self.failures.items())
        )


def run_cases(
    strategy: SearchStrategy[Case],
    *,
    max_examples: int,
    label: str,
    report: FuzzReport,
    send: Callable[[Case], None],
) -> None:
    """Send up to `max_examples` cases drawn from `strategy`; failures go to `report`."""

    @hypothesis.settings(HYPOTHESIS, max_examples=max_examples)
    @hypothesis.given(case=strategy)
    def each(case: Case) -> None:
        report.examples[label] += 1
        if case.meta is None or case.meta.generation.mode.is_positive:
            report.valid.add(label)
        send(case)

    try:
        each()
    except hypothesis.errors.Unsatisfiable:
        pass  # nothing to generate (e.g. invalid data for a route without parameters)
    except (Exception, BaseExceptionGroup) as exc:  # schemathesis's failures are a group
        report.failed(label, exc)


def request(
    app: Any, method: str, url: str, *, key: str | None = None, body: bytes | None = None
) -> httpx.Response:
    """One request to the app in this process; a 5xx is answered, not raised."""
    headers = {"Content-Type": "application/json"}
    if key:
        headers["Authorization"] = f"Bearer {key}"

    async def send() -> httpx.Response:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            return await client.request(method, url, headers=headers, content=body)

    return asyncio.run(send())


def seed(runtime: Runtime, key: str) -> dict[str, str]:
    """Post a few touches, wait until they are scored and routed, and return the path values
    of real resources: a lead, its account, its team and member, an action, an unsubscribe
    token, a webhook subscription (to a port nobody serves: its deliveries wait, logged), an
    import job (recorded, never run)."""
    assert runtime.app is not None
    company = {"name": "Acme", "domain": "acme.example", "employees": 250}
    events = [
        {
            "type": "demo_requested",
            "lead": {"email": f"{name}@acme.example", "job_title": title, "company": company},
            "properties": {"budget": "50-100k", "timeframe": "this quarter"},
        }
        for name, title in (("ana", "VP Operations"), ("ben", "Head of IT"))
    ] + [{"type": "pricing_viewed", "lead": {"anonymous_id": "anon-1"}}]
    app = runtime.app
    subscription = {"url": f"http://127.0.0.1:{closed_port()}/hooks", "description": "fuzz"}
    made = request(app, "POST", "/v1/webhooks", key=key, body=orjson.dumps(subscription))
    assert made.status_code == 201, made.text
    accepted = request(app, "POST", "/v1/events/batch", key=key, body=orjson.dumps(events))
    assert accepted.status_code == 202, accepted.text
    deadline = time.monotonic() + 30
    while True:
        leads = request(app, "GET", "/v1/leads?account=acme.example", key=key).json()["items"]
        actions = request(app, "GET", "/v1/actions", key=key).json()["items"]
        if len(leads) == 2 and all(lead["owner"] for lead in leads) and actions:
            break
        assert time.monotonic() < deadline, f"seeded leads never routed: {leads}"
        time.sleep(0.2)
    teams = request(app, "GET", "/v1/teams", key=key).json()["items"]
    assert runtime.resources is not None
    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / "fuzz.csv").write_text("email\nfuzz@acme.example\n")
        import_id = start_import(
            sessions=runtime.resources.sessions,
            path=Path(folder) / "fuzz.csv",
            file_name="fuzz.csv",
            fmt="csv",
            preset="native",
            mapping={},
            dry_run=True,
            now=utcnow(),
        )
    lead = leads[0]
    team = next(t for t in teams if t["team"] == lead["owner"]["team"])
    secret = runtime.settings.secret_key.get_secret_value()
    return {
        "lead_id": lead["id"],
        "domain": lead["account"]["domain"],
        "team": team["team"],
        "member": lead["owner"]["member"] or team["members"][0]["id"],
        "action_id": actions[0]["id"],
        "token": unsubscribe_token(secret=secret, lead_id=leads[1]["id"]),
        "webhook_id": made.json()["id"],
        "import_id": import_id,
    }


def closed_port() -> int:
    """A local port nothing listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def worker_problems(runtime: Runtime, logged: list[logging.LogRecord]) -> list[str]:
    """What is wrong with the runtime's consumers and background workers: a thread that ended,
    a consumer reporting a problem or that dead-lettered a record, a worker in an outage, an
    error leadflow's own code logged (a consumer's failed poll is logged and retried)."""
    resources = runtime.resources
    assert resources is not None
    # The runtime's worker threads: its consumers, action delivery, the re-score sweep.
    found = [f"{name}: thread ended" for name in runtime.stopped_workers()]
    for loop in resources.consumers:
        found += [f"{loop.name}: {problem}" for problem in loop.problems()]
        if loop.dead_lettered:
            found.append(f"{loop.name}: dead-lettered {loop.dead_lettered} record(s)")
    # A webhook receiver the fuzz subscribed (the seeded one, or any URL it generated) serves
    # nothing: its deliveries are rescheduled as the receiver's outage, which is as it must be.
    found += [
        f"{o.worker}: {o.describe()}"
        for o in resources.outages
        if o.describe() and not o.worker.startswith(LEAD_WEBHOOK_OUTAGES)
    ]
    found += [
        f"{r.name} logged: {r.getMessage()}"
        for r in logged
        if r.levelno >= logging.ERROR and r.name.startswith(("leadflow", "services.", "shared."))
    ]
    return found


def backlog(runtime: Runtime) -> list[str]:
    """Each consumer's records not committed yet, pending after-batch work and problems."""
    resources = runtime.resources
    assert resources is not None and resources.producer is not None
    published = resources.producer.acked_offsets()
    return [
        f"{loop.name}: {loop.behind(published)} behind, after-batch pending "
        f"{loop.after_batch_pending}, processed {loop.processed}, problems {loop.problems()}"
        for loop in resources.consumers
    ]


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


@pytest.fixture
def admin_key(runtime: Runtime) -> str:
    """A key that holds every scope."""
    return make_key(runtime, "admin")


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


def test_no_operation_answers_5xx_or_breaks_its_schema(
    runtime: Runtime,
    admin_key: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Every operation, fuzzed with a key that holds every scope: no 5xx, no answer outside its
    documented schema; afterwards every consumer and worker is alive and reports no problem."""
    assert runtime.app is not None
    known = seed(runtime, admin_key)
    schema = schemathesis.openapi.from_asgi("/openapi.json", SignedLikeTheVendors(runtime.app))
    headers = {"Authorization": f"Bearer {admin_key}"}
    report = FuzzReport()
    every = operations(schema)

    def send(case: Case) -> None:
        case.call_and_validate(headers=headers, checks=CHECKS)

    for operation in every:
        label = operation.label
        for example in operation.get_strategies_from_examples():
            run_cases(example, max_examples=1, label=label, report=report, send=send)
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            run_cases(
                operation.as_strategy(generation_mode=mode),
                max_examples=FUZZ_EXAMPLES,
                label=label,
                report=report,
                send=send,
            )
        names = path_parameters(operation)
        if names:
            run_cases(
                operation.as_strategy(path_parameters={n: known[n] for n in names}),
                max_examples=SEEDED_EXAMPLES,
                label=label,
                report=report,
                send=send,
            )
    assert report.valid == {op.label for op in every}, "an operation got no valid request"
    assert not report.failures, report.summary()
    assert runtime.drain(timeout_s=60), f"consumers never caught up: {backlog(runtime)}"
    assert worker_problems(runtime, caplog.get_records("call")) == []
    ready = request(runtime.app, "GET", "/readyz")
    assert ready.status_code == 200, ready.text


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


def forged_cursor(*parts: Any) -> str:
    """A cursor as this API encodes them, holding `parts` it never issued."""
    return base64.urlsafe_b64encode(json.dumps(list(parts)).encode()).decode().rstrip("=")


def test_text_times_and_cursors_no_store_can_hold_are_refused_not_a_500(
    runtime: Runtime, admin_key: str
) -> None:
    """What the fuzz found (text with a NUL, which PostgreSQL refuses) on every route it
    reaches, and what reading the code behind it found (a time UTC cannot hold, forged cursors,
    which the fuzz does not generate): a 400 or 422, never a 500."""
    known = seed(runtime, admin_key)
    lead, team, member = known["lead_id"], known["team"], known["member"]
    webhook = known["webhook_id"]
    nul = "a\x00b"
    nul_reason = b'{"type": "contacted", "reason": "a\\u0000b"}'
    too_early = "0001-01-01T00:00:00%2B01:00"  # before year 1 in UTC
    cases: list[tuple[str, str, bytes | None]] = [
        *(("GET", f"/v1/leads?{name}=a%00b", None) for name in ("email", "team", "owner", "q")),
        ("GET", "/v1/leads?account=a%00b", None),
        ("GET", f"/v1/leads?updated_since={too_early}", None),
        ("GET", "/v1/leads/lookup?email=a%00b", None),
        *(("GET", f"/v1/leads/a%00b{tail}", None) for tail in ("", "/trace", "/explain")),
        ("GET", "/v1/leads/a%00b/timeline", None),
        ("GET", f"/v1/funnel?from={too_early}", None),
        ("GET", "/v1/funnel?team=a%00b", None),
        ("GET", "/v1/accounts/a%00b", None),
        ("PATCH", "/v1/accounts/acme.example/members/a%00b", b"{}"),
        (
            "PATCH",
            f"/v1/teams/{team}/members/{member}",
            b'{"away": true, "until": "0001-01-01T00:00:00+01:00"}',
        ),
        ("POST", f"/v1/leads/{lead}/feedback", nul_reason),
        ("POST", "/v1/leads/a%00b/feedback", b'{"type": "contacted"}'),
        ("GET", "/v1/actions?lead_id=a%00b", None),
        ("POST", "/v1/actions/a%00b/cancel", None),
        *(
            ("GET", f"/v1/leads?sort={sort}&cursor={forged_cursor(sort, value, 'x')}", None)
            for sort, value in (
                ("score", "abc"),
                ("score", 2**70),
                ("score", [1]),
                ("id", {"a": 1}),
                ("updated_at", "0001-01-01T00:00:00+01:00"),
            )
        ),
        ("GET", f"/v1/leads?cursor={forged_cursor('id', 'x', nul)}", None),
        ("GET", f"/v1/accounts?cursor={forged_cursor(nul)}", None),
        ("GET", f"/v1/accounts?cursor={forged_cursor(7)}", None),
        ("GET", f"/v1/leads/{lead}/timeline?cursor={forged_cursor(nul, 1, 'b')}", None),
        *((method, "/v1/webhooks/a%00b", None) for method in ("GET", "DELETE")),
        ("POST", "/v1/webhooks/a%00b/rotate", None),
        ("POST", "/v1/webhooks", b'{"url": "https://crm.example/a\\u0000b"}'),
        ("POST", "/v1/webhooks", b'{"url": "https://crm.example/", "description": "a\\u0000b"}'),
        ("PATCH", f"/v1/webhooks/{webhook}", b'{"url": "https://crm.example/a\\u0000b"}'),
        *(("GET", f"/v1/webhooks?cursor={forged_cursor(value)}", None) for value in (nul, 7, [1])),
        *(
            ("GET", f"/v1/webhooks/{webhook}/deliveries?cursor={forged_cursor(value)}", None)
            for value in (2**70, -1, "x", nul, True, 1.5)
        ),
    ]
    answers = [
        (request(runtime.app, method, url, key=admin_key, body=body), method, url)
        for method, url, body in cases
    ]
    wrong = [f"{r.status_code} {m} {u}: {r.text}" for r, m, u in answers if r.status_code >= 500]
    assert wrong == [], "\n".join(wrong)
    refused = [r.status_code for r, _, _ in answers]
    assert set(refused) <= {400, 422}, refused
