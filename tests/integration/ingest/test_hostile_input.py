"""Hostile input at the edge: every malformed, oversized, ambiguous or slow request gets a clear
4xx naming what is wrong, never a 5xx, and never takes good events down with it."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import orjson
import pytest
import uvicorn
from pydantic import BaseModel
from sqlalchemy import update

from leadflow.embedded import free_port
from services.ingest.domain.parsing import MAX_DEPTH
from shared.auth import api_keys
from shared.events import CompanyIn, LeadIn, TouchEventIn
from tests.conftest import make_key
from tests.integration.ingest.conftest import read_topic
from tests.integration.ingest.test_sources import (
    HUBSPOT_URI,
    basic,
    hubspot_headers,
    shopify_headers,
)

pytestmark = pytest.mark.integration

JSON = {"Content-Type": "application/json"}
EVENT: dict[str, Any] = {"type": "pricing_viewed", "lead": {"email": "ana@acme.example"}}


def nested(levels: int) -> Any:
    """A value `levels` arrays deep."""
    value: Any = 1
    for _ in range(levels):
        value = [value]
    return value


def with_property(raw_value: bytes) -> bytes:
    """EVENT with a property `x` written as the raw JSON `raw_value`."""
    return (
        b'{"type":"pricing_viewed","lead":{"email":"ana@acme.example"},"properties":{"x":%s}}'
        % (raw_value)
    )


async def post(client: Any, path: str, body: bytes, key: str, **headers: str) -> Any:
    return await client.post(
        path, content=body, headers={**JSON, "Authorization": f"Bearer {key}", **headers}
    )


def assert_error(response: Any, status: int, *, names: str) -> None:
    """The response is `status` with a problem whose detail names `names`."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    error = response.json()
    assert error["status"] == status and names in error["detail"], error


# --- nesting ------------------------------------------------------------------------------------


async def test_nesting_past_the_limit_is_a_422_naming_the_property(ingest):
    body = orjson.dumps({**EVENT, "properties": {"x": nested(MAX_DEPTH + 5)}})
    async with ingest() as (client, runtime):
        response = await post(client, "/v1/events", body, make_key(runtime, "events:write"))
    assert_error(response, 422, names="properties.x.0")
    assert f"nested deeper than {MAX_DEPTH} levels" in response.text


async def test_nesting_within_the_limit_is_accepted(ingest):
    body = orjson.dumps({**EVENT, "properties": {"x": nested(MAX_DEPTH - 4)}})
    async with ingest() as (client, runtime):
        response = await post(client, "/v1/events", body, make_key(runtime, "events:write"))
    assert response.status_code == 202, response.text


@pytest.mark.parametrize("path", ["/v1/events", "/v1/events/batch"])
async def test_a_hundred_thousand_levels_of_nesting_is_a_400_not_a_crash(ingest, path):
    deep = b"[" * 100_000 + b"1" + b"]" * 100_000
    body = with_property(deep) if path == "/v1/events" else b"[" + with_property(deep) + b"]"
    async with ingest() as (client, runtime):
        response = await post(client, path, body, make_key(runtime, "events:write"))
    assert_error(response, 400, names="not valid JSON")


# --- size ---------------------------------------------------------------------------------------


def _string_fields(model: type[BaseModel], prefix: str = "") -> list[str]:
    """Dotted paths of every text field of a request model, nested models included."""
    paths = []
    for name, info in model.model_fields.items():
        text = str(info.annotation)
        if "CompanyIn" in text:
            paths += _string_fields(CompanyIn, f"{prefix}{name}.")
        elif "LeadIn" in text:
            paths += _string_fields(LeadIn, f"{prefix}{name}.")
        elif "str" in text and "dict" not in text:
            paths.append(prefix + name)
    return paths


STRING_FIELDS = _string_fields(TouchEventIn)


def _set(event: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    copy = orjson.loads(orjson.dumps(event))
    *parents, last = path.split(".")
    node = copy
    for part in parents:
        node = node.setdefault(part, {})
    node[last] = value
    return copy


def test_every_text_field_of_an_event_is_covered():
    assert {"type", "event_id", "source", "lead.email", "lead.company.name"} <= set(STRING_FIELDS)


async def test_a_two_megabyte_string_in_any_field_is_refused_naming_that_field(ingest):
    huge = "x" * 2_000_000
    async with ingest() as (client, runtime):
        key = make_key(runtime, "events:write")
        for path in [*STRING_FIELDS, "properties.note"]:
            body = orjson.dumps(_set(EVENT, path, huge))
            response = await post(client, "/v1/events", body, key)
            assert response.status_code in (413, 422), (path, response.text)
            named = "event" if path.startswith("properties") else path
            assert named in response.json()["detail"], (path, response.text)


async def test_an_event_larger_than_the_broker_takes_is_a_413_and_its_batch_neighbours_pass(
    ingest, settings
):
    big = {**EVENT, "properties": {"note": "x" * 1_100_000}}
    async with ingest() as (client, runtime):
        key = make_key(runtime, "events:write")
        single = await post(client, "/v1/events", orjson.dumps(big), key)
        batch = await post(client, "/v1/events/batch", orjson.dumps([EVENT, big, EVENT]), key)
    assert_error(single, 413, names="bytes once encoded; at most 1,000,000")
    assert batch.status_code == 202, batch.text
    assert batch.json()["accepted"] == 2
    assert [r["index"] for r in batch.json()["rejected"]] == [1]
    assert len(read_topic(settings, topic=settings.topic_touch_events)) == 2


async def test_a_body_over_the_limit_is_a_413_before_it_is_read(ingest):
    async with ingest(max_body_bytes=10_000) as (client, runtime):
        body = orjson.dumps([EVENT] * 500)
        response = await post(client, "/v1/events/batch", body, make_key(runtime, "events:write"))
    assert_error(response, 413, names="larger than 10000 bytes")


# --- encoding and values ------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/v1/events", "/v1/events/batch"])
@pytest.mark.parametrize("raw", [b'"\xff\xfe"', b'"caf\xc3"', b'"\xed\xa0\x80"'])
async def test_invalid_utf8_is_a_400(ingest, path, raw):
    body = with_property(raw) if path == "/v1/events" else b"[" + with_property(raw) + b"]"
    async with ingest() as (client, runtime):
        response = await post(client, path, body, make_key(runtime, "events:write"))
    if raw == b'"\xed\xa0\x80"' and path == "/v1/events":
        # A surrogate written as UTF-8 bytes: pydantic's parser reads it as the lone surrogate
        # it spells, which is then refused by name.
        assert_error(response, 422, names="properties.x is not valid Unicode")
    else:
        assert_error(response, 400, names="not valid JSON")


async def test_a_raw_nul_byte_is_a_400_and_an_escaped_one_a_422_naming_the_field(ingest):
    async with ingest() as (client, runtime):
        key = make_key(runtime, "events:write")
        raw = await post(client, "/v1/events", with_property(b'"a\x00b"'), key)
        escaped = await post(client, "/v1/events", with_property(b'"a\\u0000b"'), key)
    assert_error(raw, 400, names="not valid JSON")
    assert_error(escaped, 422, names="properties.x contains a NUL character")


@pytest.mark.parametrize("raw", [b"1e400", b"-1e400", b"NaN", b"Infinity", b"-Infinity"])
async def test_a_number_beyond_the_float_range_is_refused_not_stored_as_null(ingest, raw):
    async with ingest() as (client, runtime):
        key = make_key(runtime, "events:write")
        single = await post(client, "/v1/events", with_property(raw), key)
        batch = await post(client, "/v1/events/batch", b"[" + with_property(raw) + b"]", key)
    assert_error(single, 422, names="properties.x is not a finite number")
    assert_error(batch, 400, names="not valid JSON")


async def test_a_batch_rejects_unstorable_events_by_index_and_keeps_the_rest(ingest, settings):
    items = [
        orjson.dumps(EVENT),
        with_property(b'"a\\u0000b"'),
        with_property(orjson.dumps(nested(MAX_DEPTH + 1))),
        # (A lone surrogate escape makes orjson refuse the whole body: a 400, tested above.)
        with_property(b"123456789012345678901234"),
        orjson.dumps(EVENT),
    ]
    async with ingest() as (client, runtime):
        key = make_key(runtime, "events:write")
        response = await post(client, "/v1/events/batch", b"[" + b",".join(items) + b"]", key)
    assert response.status_code == 202, response.text
    rejected = {r["index"]: r for r in response.json()["rejected"]}
    assert sorted(rejected) == [1, 2, 3]
    assert rejected[1]["field"] == "properties.x" and "NUL" in rejected[1]["error"]
    assert rejected[2]["field"].startswith("properties.x.0") and "nested" in rejected[2]["error"]
    assert rejected[3]["field"] == "properties.x" and "64-bit" in rejected[3]["error"]
    assert response.json()["accepted"] == 2
    assert len(read_topic(settings, topic=settings.topic_touch_events)) == 2


async def test_a_duplicated_key_takes_its_last_value_on_every_path(ingest, settings):
    body = b'{"type":"pricing_viewed","type":"demo_requested","lead":{"email":"ana@acme.example"}}'
    async with ingest() as (client, runtime):
        key = make_key(runtime, "events:write")
        single = await post(client, "/v1/events", body, key)
        batch = await post(client, "/v1/events/batch", b"[" + body + b"]", key)
    assert single.status_code == 202 and batch.status_code == 202
    published = read_topic(settings, topic=settings.topic_touch_events)
    assert [r["type"] for r in published] == ["demo_requested", "demo_requested"]


async def test_a_shopify_webhook_without_an_id_and_with_a_huge_integer_gets_a_stable_id(ingest):
    body = (
        b'{"id": 1, "token": "c1", "email": "ana@acme.example", "n": 123456789012345678901234567}'
    )
    headers = shopify_headers(body, "carts/create", "unused")
    del headers["X-Shopify-Event-Id"]
    async with ingest() as (client, _runtime):
        first = await client.post("/v1/sources/shopify", content=body, headers=headers)
        again = await client.post("/v1/sources/shopify", content=body, headers=headers)
    # The number is not among what leadflow keeps of a cart; the content-derived id holds.
    assert first.status_code == 202 and first.json()["accepted"] == 1, first.text
    assert again.status_code == 202 and again.json()["duplicates"] == 1, again.text
    assert first.json()["ids"] == again.json()["ids"]


# --- content types ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "application/x-www-form-urlencoded", "application/xml", "multipart/form-data"],
)
@pytest.mark.parametrize("path", ["/v1/events", "/v1/events/batch"])
async def test_a_body_not_declared_as_json_is_a_415_naming_the_header(ingest, path, content_type):
    body = orjson.dumps(EVENT if path == "/v1/events" else [EVENT])
    async with ingest() as (client, runtime):
        key = make_key(runtime, "events:write")
        response = await post(client, path, body, key, **{"Content-Type": content_type})
        missing = await client.post(path, content=body, headers={"Authorization": f"Bearer {key}"})
    assert_error(response, 415, names="Content-Type must be application/json")
    assert response.json()["errors"] == [
        {"field": "Content-Type", "error": "must be application/json"}
    ]
    assert_error(missing, 415, names="it is missing")


async def test_json_with_a_charset_or_a_json_suffix_is_accepted(ingest):
    async with ingest() as (client, runtime):
        key = make_key(runtime, "events:write")
        for content_type in ["application/json; charset=utf-8", "application/vnd.api+json"]:
            response = await post(
                client, "/v1/events", orjson.dumps(EVENT), key, **{"Content-Type": content_type}
            )
            assert response.status_code == 202, (content_type, response.text)


async def test_a_signed_vendor_webhook_not_declared_as_json_is_a_415(ingest):
    body = orjson.dumps(
        {"type": "track", "event": "Demo Requested", "userId": "u1", "messageId": "m-1"}
    )
    async with ingest() as (client, _runtime):
        segment = await client.post(
            "/v1/sources/segment",
            content=body,
            headers={**basic("seg-write-key"), "Content-Type": "text/plain"},
        )
        hubspot = await client.post(
            "/v1/sources/hubspot",
            content=b"[]",
            headers={**hubspot_headers(b"[]", uri=HUBSPOT_URI), "Content-Type": "text/plain"},
        )
    assert_error(segment, 415, names="Content-Type")
    assert_error(hubspot, 415, names="Content-Type")


async def test_an_unsigned_vendor_webhook_is_refused_before_its_content_type_is_judged(ingest):
    async with ingest() as (client, _runtime):
        response = await client.post(
            "/v1/sources/segment", content=b"x", headers={"Content-Type": "text/plain"}
        )
    assert response.status_code == 401


# --- replays ------------------------------------------------------------------------------------


@pytest.mark.parametrize("age_s", [301, -301])
async def test_a_hubspot_signature_outside_its_window_is_refused_as_a_replay(ingest, age_s):
    body = b'[{"eventId": 1, "subscriptionType": "contact.creation", "objectId": 7, "portalId": 9}]'
    async with ingest() as (client, _runtime):
        response = await client.post(
            "/v1/sources/hubspot",
            content=body,
            headers=hubspot_headers(body, uri=HUBSPOT_URI, age_s=age_s),
        )
    assert_error(response, 401, names="a replay?")


async def test_a_replayed_hubspot_delivery_within_its_window_is_not_published_twice(
    ingest, settings
):
    body = (
        b'[{"eventId": 11, "subscriptionType": "contact.creation", "objectId": 7, "portalId": 9}]'
    )
    headers = hubspot_headers(body, uri=HUBSPOT_URI)
    async with ingest() as (client, _runtime):
        first = await client.post("/v1/sources/hubspot", content=body, headers=headers)
        again = await client.post("/v1/sources/hubspot", content=body, headers=headers)
    assert first.status_code == 202 and first.json()["accepted"] == 1, first.text
    assert again.status_code == 202 and again.json()["duplicates"] == 1, again.text
    assert len(read_topic(settings, topic=settings.topic_touch_events)) == 1


# --- API keys -----------------------------------------------------------------------------------


async def test_a_flood_of_unknown_keys_neither_grows_the_cache_nor_evicts_a_known_key(ingest):
    async with ingest(auth_cache_s=600.0, auth_cache_max_keys=50) as (client, runtime):
        good = make_key(runtime, "events:write", name="good")
        assert (await post(client, "/v1/events", orjson.dumps(EVENT), good)).status_code == 202
        # Revoked in the database: only the cached verification can still accept it.
        with runtime.resources.sessions.begin() as session:
            session.execute(update(api_keys).values(revoked_at=api_keys.c.created_at))
        for n in range(1_000):
            response = await post(client, "/v1/events", orjson.dumps(EVENT), f"lf_bad{n:04d}")
            assert response.status_code == 401
        cache = runtime.resources.key_cache
        assert len(cache) <= 50 + 1, len(cache)
        still = await post(client, "/v1/events", orjson.dumps(EVENT), good)
    assert still.status_code == 202, "the flood of bad keys evicted the known one"


# --- slow clients -------------------------------------------------------------------------------


@contextmanager
def serving(app: Any) -> Iterator[int]:
    """`app` served by uvicorn on a free port in a thread, as `leadflow up` serves it."""
    port = free_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, lifespan="off", log_config=None, access_log=False
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    assert server.started, "uvicorn did not start"
    try:
        yield port
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def _trickle(port: int, key: str, *, every_s: float, give_up_s: float) -> tuple[bytes, float]:
    """Send a request's headers, then its body a byte at a time; what the server answered and
    how long after the first byte."""
    body = orjson.dumps(EVENT)
    head = (
        f"POST /v1/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", port), timeout=give_up_s) as sock:
        sock.sendall(head)
        started = time.monotonic()
        sock.settimeout(every_s)
        answer = b""
        for byte in body:
            try:
                sock.sendall(bytes([byte]))
            except OSError:
                break
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                continue
            answer += chunk
            if not chunk or b"\r\n\r\n" in answer:
                break
            if time.monotonic() - started > give_up_s:
                break
        sock.settimeout(2)
        try:
            while chunk := sock.recv(65536):
                answer += chunk
        except (TimeoutError, OSError):
            pass
        return answer, time.monotonic() - started


async def test_a_body_trickled_byte_by_byte_is_cut_off_with_a_408(ingest):
    async with ingest(body_read_timeout_s=1.0) as (_client, runtime):
        key = make_key(runtime, "events:write")
        with serving(runtime.app) as port:
            answer, after_s = await asyncio.to_thread(
                _trickle, port, key, every_s=0.25, give_up_s=15
            )
            async_ok = await asyncio.to_thread(
                lambda: __import__("httpx").get(f"http://127.0.0.1:{port}/healthz").status_code
            )
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
    assert b"request body not received within 1 s" in answer
    assert after_s < 5, f"the server held the trickling client for {after_s:.1f} s"
    assert async_ok == 200
