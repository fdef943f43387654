"""Schemathesis over every operation `leadflow up` serves: no answer is a 5xx or breaks its schema.

Every operation gets bounded generated requests (the schema's own examples, valid data and
invalid data, some aimed at seeded leads, accounts, teams and actions): no answer is a 5xx or
breaks the schema it documents, and afterwards every consumer and background worker is alive and
reports no problem. Text, times and cursors no store can hold are refused, never a 500. (Without
a key, or with a key of a single scope: test_openapi_auth.py.)

Vendor webhooks authenticate by signature, not by key: a wrapper in front of the app signs each
of their requests over the exact bytes sent, as the vendor would, so the fuzz reaches their
parsers.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import logging
import re
import socket
import tempfile
import time
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import schemathesis
from fastapi import FastAPI
from schemathesis import Case, GenerationMode
from schemathesis.schemas import APIOperation

from leadflow.runtime import Runtime
from services.ingest.domain.shopify import TOPICS as SHOPIFY_TOPICS
from services.ingest.imports import start_import
from services.routing.domain.webhooks import unsubscribe_token
from shared.events import utcnow
from tests.conftest import make_key
from tests.integration._openapi_fuzz_fixtures import (
    CHECKS,
    FUZZ_EXAMPLES,
    HUBSPOT_URL,
    SEEDED_EXAMPLES,
    VENDOR_SECRETS,
    FuzzReport,
    operations,
    run_cases,
)
from tests.integration._openapi_fuzz_fixtures import settings as settings  # a fixture

pytestmark = pytest.mark.integration

# The outage trackers of webhook receivers (the default routing config names none: these are
# the fuzz's own subscriptions).
LEAD_WEBHOOK_OUTAGES = "action delivery (webhook "


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


def path_parameters(operation: APIOperation) -> list[str]:
    """The names of the operation's path parameters."""
    return re.findall(r"{(\w+)}", operation.path)


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


@pytest.fixture
def admin_key(runtime: Runtime) -> str:
    """A key that holds every scope."""
    return make_key(runtime, "admin")


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
