"""Ingest's routes: the webhook edge marketing platforms post touch events to."""

from __future__ import annotations

import json
import logging
import re
import time
from typing import Any

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from services.ingest import examples
from services.ingest.domain import signatures
from services.ingest.domain.hubspot import parse_hubspot
from services.ingest.domain.native import parse_native_batch
from services.ingest.domain.parsing import (
    FieldError,
    Ignored,
    Parsed,
    PayloadError,
    Rejection,
    UnstorableText,
    content_id,
)
from services.ingest.domain.segment import parse_segment
from services.ingest.domain.shopify import TOPICS, check_topic, shop_domain, shopify_envelope
from services.ingest.imports_api import router as imports_router
from services.ingest.schemas import (
    COMMON_ERRORS,
    IGNORED_ANSWER,
    AcceptedOut,
    IgnoredEvent,
    Rejected,
    SourceAcceptedOut,
    error_example,
    request_body,
)
from services.ingest.service import (
    DatabaseUnavailable,
    IdempotencyStore,
    accept_envelopes,
)
from shared.auth import EventsWriter
from shared.config import Settings
from shared.events import TouchEnvelope, TouchEventIn, utcnow
from shared.faults import PublishError
from shared.http import ApiError, Resources, ResourcesDep, require_json

log = logging.getLogger(__name__)
router = APIRouter(tags=["ingest"])

# The `source` label of leadflow_ingest_requests_total for each ingest path.
METRIC_SOURCES = {
    "/v1/events": "native",
    "/v1/events/batch": "batch",
    "/v1/sources/segment": "segment",
    "/v1/sources/shopify": "shopify",
    "/v1/sources/hubspot": "hubspot",
}


# A JSON number of 19 digits or more: orjson would read an integer beyond 64 bits as a float.
_LONG_NUMBER = re.compile(rb"[:\[,]\s*-?\d{19,}")


def read_json(body: bytes) -> Any:
    """The body as JSON; 400 if it is empty or not JSON. A body holding a very long number is
    read by the standard library, so integers keep their value and the event holding one too
    large to store is refused by name (`parsing.encode_envelope`) instead of losing digits."""
    if not body.strip():
        raise ApiError(400, "invalid_json", "request body is empty; send a JSON document")
    try:
        if _LONG_NUMBER.search(body):
            return json.loads(body)
        return orjson.loads(body)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError and UnicodeDecodeError too
        raise ApiError(400, "invalid_json", f"request body is not valid JSON: {exc}") from exc


def _check_source_rate(resources: Resources, source: str) -> None:
    wait = resources.source_limiter.check(source)
    if wait:
        raise ApiError(
            429,
            "rate_limited",
            f"the {source} source is over its rate limit; retry in {wait} s",
            headers={"Retry-After": str(wait)},
        )


def _unauthorized(source: str, why: str) -> ApiError:
    log.warning("refused a %s webhook: %s", source, why)
    return ApiError(401, "unauthorized", f"{source}: {why}")


def _rejected_error(parsed: Parsed, *, prefix: str) -> ApiError:
    first = parsed.rejected[0]
    return ApiError(
        422,
        "validation_error",
        f"no event is valid; {prefix}[{first.index}].{first.field}: {first.error}",
        details=[{"index": r.index, "field": r.field, "error": r.error} for r in parsed.rejected],
    )


def _payload_error(exc: PayloadError) -> ApiError:
    if exc.too_large:
        return ApiError(413, "payload_too_large", f"{exc.field}: {exc.error}")
    return ApiError(
        422,
        "validation_error",
        f"{exc.field}: {exc.error}",
        details=[{"field": exc.field, "error": exc.error}],
    )


def _store(resources: Resources) -> IdempotencyStore:
    store = resources.service_state.get("ingest.idempotency")
    if store is None:
        store = resources.service_state["ingest.idempotency"] = IdempotencyStore(
            sessions=resources.sessions, window_s=resources.settings.dedupe_window_s
        )
    return store


async def _publish(
    resources: Resources,
    envelopes: list[TouchEnvelope],
    rejected: list[Any] | None = None,
    *,
    minted_ids: set[str] | frozenset[str] = frozenset(),
    encoded: dict[str, bytes] | None = None,
) -> AcceptedOut:
    """Publish and answer 202, or 503 when the broker or the database did not answer."""
    assert resources.producer is not None
    try:
        result = await accept_envelopes(
            envelopes=envelopes,
            encoded=encoded,
            minted_ids=minted_ids,
            producer=resources.producer,
            store=_store(resources),
            settings=resources.settings,
            now=utcnow(),
        )
    except PublishError as exc:
        raise ApiError(
            503,
            "broker_unavailable",
            f"the events were not accepted: {exc}",
            headers={"Retry-After": "5"},
        ) from exc
    except UnstorableText as exc:
        status, code = (413, "payload_too_large") if exc.too_large else (422, "validation_error")
        raise ApiError(
            status, code, str(exc), details=[{"field": exc.field, "error": exc.problem}]
        ) from exc
    except DatabaseUnavailable as exc:
        raise ApiError(
            503,
            "database_unavailable",
            "the events were not accepted: the database did not answer",
            headers={"Retry-After": "5"},
        ) from exc
    return AcceptedOut(
        accepted=result.accepted,
        ids=result.ids,
        duplicates=result.duplicates,
        rejected=[Rejected(index=r.index, field=r.field, error=r.error) for r in rejected or []],
    )


def _ignored_answer(source: str, ignored: list[Rejection]) -> JSONResponse:
    """200: nothing to take, every event of a kind leadflow does not take."""
    log.info("ignored a %s webhook: %s: %s", source, ignored[0].field, ignored[0].error)
    body = SourceAcceptedOut(accepted=0, ids=[], ignored=_ignored_out(ignored))
    return JSONResponse(body.model_dump(), status_code=200)


def _ignored_out(ignored: list[Rejection]) -> list[IgnoredEvent]:
    return [IgnoredEvent(index=i.index, field=i.field, reason=i.error) for i in ignored]


async def _publish_parsed(resources: Resources, parsed: Parsed, *, prefix: str) -> AcceptedOut:
    if not parsed.accepted:
        raise _rejected_error(parsed, prefix=prefix)
    return await _publish(
        resources,
        parsed.accepted,
        parsed.rejected,
        minted_ids=parsed.minted_ids,
        encoded=parsed.encoded,
    )


@router.post(
    "/v1/events",
    status_code=202,
    response_model=AcceptedOut,
    summary="Post one native touch event",
    responses={k: v for k, v in COMMON_ERRORS.items() if k != 422}
    | {
        422: {
            "description": "The event does not match the schema; the message names the field",
            **error_example(
                422,
                "validation_error",
                "lead: lead needs at least one of email or anonymous_id",
                [{"field": "lead", "error": "lead needs at least one of email or anonymous_id"}],
            ),
        }
    },
)
async def post_event(
    event: TouchEventIn, resources: ResourcesDep, _principal: EventsWriter
) -> AcceptedOut:
    """Accept one touch event; 202 means the broker has it (scope events:write)."""
    return await accept_native(resources, event)


async def accept_native(resources: Resources, event: TouchEventIn) -> AcceptedOut:
    """Publish one validated native event: what `POST /v1/events` answers with 202, from the
    route above or from `fastpath.NativeEventFastPath` in front of it."""
    envelope = TouchEnvelope.from_native(event, received_at=utcnow())
    minted = frozenset() if event.event_id else frozenset({envelope.event_id})
    return await _publish(resources, [envelope], minted_ids=minted)


@router.post(
    "/v1/events/batch",
    status_code=202,
    response_model=AcceptedOut,
    summary="Post many native touch events",
    responses=COMMON_ERRORS,
    openapi_extra=request_body(
        examples.NATIVE_BATCH,
        'A JSON array of native events, or {"events": [...]}; at most '
        "LEADFLOW_BATCH_MAX_EVENTS events and LEADFLOW_MAX_BODY_BYTES bytes.",
    ),
)
async def post_batch(
    request: Request, resources: ResourcesDep, _principal: EventsWriter
) -> AcceptedOut:
    """Accept the valid events of a batch and report the invalid ones by index (events:write)."""
    require_json(request)
    payload = read_json(await request.body())
    try:
        parsed = parse_native_batch(
            payload,
            max_events=resources.settings.batch_max_events,
            received_at=utcnow(),
            max_event_bytes=resources.settings.max_event_bytes,
        )
    except PayloadError as exc:
        raise _payload_error(exc) from exc
    return await _publish_parsed(resources, parsed, prefix="events")


@router.post(
    "/v1/sources/segment",
    status_code=202,
    response_model=AcceptedOut,
    summary="Segment Tracking API (track, identify, page, screen, group, alias, batch)",
    responses=COMMON_ERRORS,
    openapi_extra=request_body(
        examples.SEGMENT,
        'A Segment message, a Tracking API batch ({"batch": [...]}) or the JSON array a '
        "Webhooks (Actions) destination posts (up to LEADFLOW_SEGMENT_BATCH_MAX_EVENTS events). "
        "Authenticate with HTTP Basic (the write key as user name) or X-Signature (hex "
        "HMAC-SHA1 of the body).",
    ),
)
async def post_segment(request: Request, resources: ResourcesDep) -> AcceptedOut:
    """Accept Segment calls; messageId is the idempotency key."""
    settings = resources.settings
    body = await request.body()
    if settings.auth != "off":
        write_key, secret = settings.segment_write_key, settings.segment_shared_secret
        if write_key is None and secret is None:
            raise _unauthorized(
                "segment",
                "the source is not configured; set LEADFLOW_SEGMENT_WRITE_KEY or "
                "LEADFLOW_SEGMENT_SHARED_SECRET",
            )
        verdicts = []
        if write_key is not None:
            verdicts.append(
                signatures.segment_basic_auth(
                    request.headers.get("authorization"), write_key=write_key.get_secret_value()
                )
            )
        if secret is not None:
            verdicts.append(
                signatures.segment_signature(
                    body, request.headers.get("x-signature"), secret=secret.get_secret_value()
                )
            )
        if signatures.Verdict.OK not in verdicts:
            why = (
                "bad write key or X-Signature"
                if signatures.Verdict.BAD in verdicts
                else "missing credentials: HTTP Basic with the write key, or X-Signature"
            )
            if body.lstrip().startswith(b"[") and request.headers.get("x-signature"):
                why += (
                    " (a batching Webhooks (Actions) destination signs only the first event: "
                    "send the write key in an Authorization: Basic header instead)"
                )
            raise _unauthorized("segment", why)
    _check_source_rate(resources, "segment")
    require_json(request)
    try:
        parsed = parse_segment(
            read_json(body),
            event_map=settings.segment_event_map,
            max_events=settings.segment_batch_max_events,
            received_at=utcnow(),
            max_event_bytes=settings.max_event_bytes,
        )
    except PayloadError as exc:
        raise _payload_error(exc) from exc
    return await _publish_parsed(resources, parsed, prefix="batch")


def _shopify_secret(settings: Settings, *, shop: str | None, header: str | None) -> str:
    """The secret the webhook of `shop` (as its X-Shopify-Shop-Domain `header` names it) must
    be signed with; 401 when the source is not configured or the shop is unknown."""
    shops = {k: v.get_secret_value() for k, v in settings.shopify_webhook_secrets.items()}
    default = settings.shopify_webhook_secret
    if not shops and default is None:
        raise _unauthorized(
            "shopify",
            "the source is not configured; set LEADFLOW_SHOPIFY_WEBHOOK_SECRET or "
            "LEADFLOW_SHOPIFY_WEBHOOK_SECRETS",
        )
    secret = signatures.shopify_secret(
        shop, shops=shops, default=default.get_secret_value() if default else None
    )
    if secret is None:
        raise _unauthorized(
            "shopify",
            f"unknown shop {header[:255]!r} (not in LEADFLOW_SHOPIFY_WEBHOOK_SECRETS)"
            if header
            else "missing X-Shopify-Shop-Domain (needed to pick the shop's secret)",
        )
    return secret


@router.post(
    "/v1/sources/shopify",
    status_code=202,
    response_model=SourceAcceptedOut,
    summary="Shopify webhooks: carts, checkouts, orders, customers",
    responses=COMMON_ERRORS | IGNORED_ANSWER,
    openapi_extra=request_body(
        examples.SHOPIFY,
        "The webhook body; the topic in X-Shopify-Topic (" + ", ".join(TOPICS) + "; any other "
        "is answered 200 and ignored), the shop in X-Shopify-Shop-Domain, the signature in "
        "X-Shopify-Hmac-Sha256 (with the shop's secret), the idempotency key in "
        "X-Shopify-Event-Id (else X-Shopify-Webhook-Id).",
    ),
)
async def post_shopify(request: Request, resources: ResourcesDep) -> AcceptedOut | JSONResponse:
    """Accept a Shopify webhook, verified by its HMAC with the shop's secret."""
    settings = resources.settings
    body = await request.body()
    header = request.headers.get("x-shopify-shop-domain")
    try:
        shop, shop_error = shop_domain(header), None
    except FieldError as exc:
        shop, shop_error = None, exc
    if settings.auth != "off":
        secret = _shopify_secret(settings, shop=shop, header=header)
        verdict = signatures.shopify_hmac(
            body, request.headers.get("x-shopify-hmac-sha256"), secret=secret
        )
        if verdict is not signatures.Verdict.OK:
            raise _unauthorized("shopify", f"{verdict.value} X-Shopify-Hmac-Sha256")
    _check_source_rate(resources, "shopify")
    topic = request.headers.get("x-shopify-topic")
    if not topic:
        raise ApiError(
            422,
            "validation_error",
            "X-Shopify-Topic: the header is required",
            details=[{"field": "X-Shopify-Topic", "error": "is required"}],
        )
    try:
        check_topic(topic)
    except Ignored as exc:
        return _ignored_answer("shopify", [Rejection(index=0, field=exc.field, error=exc.reason)])
    if shop_error is not None:
        raise ApiError(
            422,
            "validation_error",
            f"{shop_error.field}: {shop_error.error}",
            details=[{"field": shop_error.field, "error": shop_error.error}],
        )
    require_json(request)
    payload = read_json(body)
    event_id = (
        request.headers.get("x-shopify-event-id")
        or request.headers.get("x-shopify-webhook-id")
        or content_id(topic, payload)
    )
    try:
        env = shopify_envelope(
            topic=topic, payload=payload, event_id=event_id, received_at=utcnow(), shop=shop
        )
    except FieldError as exc:
        raise ApiError(
            422,
            "validation_error",
            f"{exc.field}: {exc.error}",
            details=[{"field": exc.field, "error": exc.error}],
        ) from exc
    return await _publish(resources, [env])


# HubSpot decodes these in the URI before it signs it (%3A -> ":", ...).
_HUBSPOT_DECODED = {f"%{ord(char):02X}": char for char in ":/?@!$'()*,;"}


def _hubspot_uri(request: Request, configured: str | None) -> str:
    uri = configured or str(request.url)
    for encoded, char in _HUBSPOT_DECODED.items():
        uri = uri.replace(encoded, char).replace(encoded.lower(), char)
    return uri


@router.post(
    "/v1/sources/hubspot",
    status_code=202,
    response_model=SourceAcceptedOut,
    summary="HubSpot webhook subscriptions: contact creation, property changes, form submissions",
    responses=COMMON_ERRORS | IGNORED_ANSWER,
    openapi_extra=request_body(
        examples.HUBSPOT,
        "HubSpot's array of webhook events (contact.creation and contact.propertyChange, or "
        "object.creation and object.propertyChange of contacts, objectTypeId 0-1; events of "
        "other kinds are listed in `ignored`), signed with X-HubSpot-Signature-v3 and "
        "X-HubSpot-Request-Timestamp (refused when more than 5 minutes old).",
    ),
)
async def post_hubspot(request: Request, resources: ResourcesDep) -> AcceptedOut | JSONResponse:
    """Accept HubSpot webhook events, verified by the v3 signature and its time window."""
    settings = resources.settings
    body = await request.body()
    if settings.auth != "off":
        secret = settings.hubspot_client_secret
        if secret is None:
            raise _unauthorized(
                "hubspot", "the source is not configured; set LEADFLOW_HUBSPOT_CLIENT_SECRET"
            )
        verdict = signatures.hubspot_v3(
            method=request.method,
            uri=_hubspot_uri(request, settings.hubspot_webhook_url),
            body=body,
            timestamp=request.headers.get("x-hubspot-request-timestamp"),
            signature=request.headers.get("x-hubspot-signature-v3"),
            secret=secret.get_secret_value(),
            now_ms=int(time.time() * 1000),
            max_age_ms=int(settings.hubspot_max_age_s * 1000),
        )
        if verdict is signatures.Verdict.STALE:
            raise _unauthorized(
                "hubspot",
                "X-HubSpot-Request-Timestamp is more than "
                f"{settings.hubspot_max_age_s:.0f} s from now (a replay?)",
            )
        if verdict is not signatures.Verdict.OK:
            raise _unauthorized("hubspot", f"{verdict.value} X-HubSpot-Signature-v3")
    _check_source_rate(resources, "hubspot")
    require_json(request)
    try:
        parsed = parse_hubspot(
            read_json(body),
            max_events=settings.batch_max_events,
            received_at=utcnow(),
            max_event_bytes=settings.max_event_bytes,
        )
    except PayloadError as exc:
        raise _payload_error(exc) from exc
    if parsed.ignored and not parsed.accepted and not parsed.rejected:
        return _ignored_answer("hubspot", parsed.ignored)
    answer = await _publish_parsed(resources, parsed, prefix="events")
    return SourceAcceptedOut(**answer.model_dump(), ignored=_ignored_out(parsed.ignored))


router.include_router(imports_router)  # POST /v1/imports and its status
