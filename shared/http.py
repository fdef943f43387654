"""HTTP plumbing shared by every service: the error answers, dependency aliases, health."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Annotated, Any, Literal
from urllib.parse import quote

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from prometheus_client import CollectorRegistry
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker
from starlette.exceptions import HTTPException as StarletteHTTPException

from shared.config import Settings
from shared.consumer import ConsumerLoop
from shared.faults import DEPENDENCY_ERRORS, Fault, Outage, classify, describe_error
from shared.kafka import AsyncProducer
from shared.ops.broker import StreamMonitor
from shared.ratelimit import RateLimiter
from shared.ttlcache import TTLCache

log = logging.getLogger(__name__)


@dataclass
class Resources:
    """What request handlers need from the running process."""

    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    producer: AsyncProducer | None = None
    consumers: list[ConsumerLoop] = field(default_factory=list)
    # The outage trackers of this process's other workers (outbox, actions, re-score).
    outages: list[Outage] = field(default_factory=list)
    monitor: StreamMonitor | None = None
    # What /readyz says of the broker besides reachability (e.g. the embedded one keeps
    # nothing across restarts).
    broker_details: dict[str, Any] = field(default_factory=dict)
    # The scrape-time metrics of this process (lag, DLQ depth, actions, leads).
    metrics: CollectorRegistry = field(default_factory=CollectorRegistry)
    # Per-service process state (e.g. ingest's idempotency store), created on first use.
    service_state: dict[str, Any] = field(default_factory=dict)
    key_cache: TTLCache[Any] = field(init=False)
    key_limiter: RateLimiter = field(init=False)
    source_limiter: RateLimiter = field(init=False)

    def __post_init__(self) -> None:
        s = self.settings
        self.key_cache = TTLCache(ttl_s=s.auth_cache_s, max_entries=s.auth_cache_max_keys)
        self.key_limiter = RateLimiter(rate=s.rate_limit_key_per_s, burst=s.rate_limit_key_burst)
        self.source_limiter = RateLimiter(
            rate=s.rate_limit_source_per_s, burst=s.rate_limit_source_burst
        )


class ApiError(Exception):
    """An error with a status, a stable code and a message for the client."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        details: list[Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.details = details or []
        self.headers = headers


ErrorFormat = Literal["problem", "legacy"]

PROBLEM_MEDIA_TYPE = "application/problem+json"
# A problem's `type` is this followed by its code: an identifier clients may compare, which the
# README's table of codes documents (RFC 9457 asks clients not to dereference it).
PROBLEM_TYPE_BASE = "https://leadflow.dev/problems/"
# Each code's `title`: one short summary per problem type, the same on every occurrence.
PROBLEM_TITLES = {
    "bad_request": "Bad request",
    "invalid_json": "Body is not valid JSON",
    "bad_cursor": "Cursor not issued by this API",
    "unauthorized": "Missing or invalid credentials",
    "forbidden": "API key lacks the scope",
    "not_found": "Not found",
    "method_not_allowed": "Method not allowed",
    "request_timeout": "Body not received in time",
    "conflict": "Not allowed in the resource's state",
    "payload_too_large": "Body too large",
    "unsupported_media_type": "Unsupported body media type",
    "validation_error": "Invalid request",
    "rate_limited": "Over the rate limit",
    "unavailable": "Dependency unavailable",
    "broker_unavailable": "Broker unavailable",
    "database_unavailable": "Database unavailable",
    "internal_error": "Internal error",
}


def problem_body(
    status: int, code: str, message: str, details: list[Any] | None = None, *, instance: str
) -> dict[str, Any]:
    """An RFC 9457 problem: `type` (from the code), `title`, `status`, `detail` (the message),
    `instance` (the request path), and the extension members `code` and `errors` (per field or
    dependency, e.g. `{"field", "error"}`)."""
    return {
        "type": PROBLEM_TYPE_BASE + code,
        "title": PROBLEM_TITLES.get(code) or HTTPStatus(status).phrase,
        "status": status,
        "detail": message,
        "instance": instance,
        "code": code,
        "errors": details or [],
    }


def error_body(code: str, message: str, details: list[Any] | None = None) -> dict[str, Any]:
    """The error body of releases before problem details (LEADFLOW_ERROR_FORMAT=legacy):
    `{"error": {"code", "message", "details"}}`."""
    return {"error": {"code": code, "message": message, "details": details or []}}


# What RFC 3986 lets a path hold unescaped, besides letters, digits and `-._~`.
_PATH_SAFE = "/:@!$&'()*+,;="


def request_path(scope: Any) -> str:
    """The path of the ASGI `scope`'s request, as a URI reference (a problem's `instance`)."""
    return quote(scope["path"], safe=_PATH_SAFE)


def field_path(loc: tuple[Any, ...] | list[Any]) -> str:
    """`body.lead.email` style path of a validation error, without the leading `body`."""
    parts = [str(p) for p in loc if p not in ("body",)]
    return ".".join(parts) or "body"


def validation_details(errors: list[dict[str, Any]]) -> list[dict[str, str]]:
    """Pydantic errors as `{"field", "error"}` pairs a client can act on."""
    return [
        {"field": field_path(e.get("loc", ())), "error": e.get("msg", "invalid")} for e in errors
    ]


def is_json_media_type(content_type: str | None) -> bool:
    """True for `application/json` and `application/*+json`, with any parameters."""
    if not content_type:
        return False
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )


def unsupported_media_type(content_type: str | None) -> ApiError:
    """The 415 for a body that is not declared as JSON."""
    given = f"not {content_type!r}" if content_type else "and it is missing"
    return ApiError(
        415,
        "unsupported_media_type",
        f"Content-Type must be application/json, {given}",
        details=[{"field": "Content-Type", "error": "must be application/json"}],
    )


def require_json(request: Request) -> None:
    """Refuse (415) a request whose body is not declared as JSON."""
    content_type = request.headers.get("content-type")
    if not is_json_media_type(content_type):
        raise unsupported_media_type(content_type)


# What FastAPI says of a body its JSON parser could not take (invalid UTF-8, nesting past the
# parser's recursion limit); answered as invalid JSON like every other parse failure.
_FASTAPI_PARSE_ERROR = "There was an error parsing the body"
# A body the route reads as an object or array (for a pydantic model) that was not one: with a
# non-JSON Content-Type, FastAPI does not parse it at all.
_NOT_A_DOCUMENT = frozenset({"model_attributes_type", "dict_type", "list_type"})


def api_error_response(exc: ApiError, *, scope: Any, error_format: ErrorFormat) -> JSONResponse:
    """Every error answer, with the ApiError's status and headers: a problem about the request
    of the ASGI `scope` (`application/problem+json`), or the legacy body (`application/json`)."""
    if error_format == "legacy":
        body = error_body(exc.code, exc.message, exc.details)
        return JSONResponse(body, exc.status, headers=exc.headers)
    path = request_path(scope)
    body = problem_body(exc.status, exc.code, exc.message, exc.details, instance=path)
    return JSONResponse(body, exc.status, headers=exc.headers, media_type=PROBLEM_MEDIA_TYPE)


_STATUS_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    408: "request_timeout",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "rate_limited",
    503: "unavailable",
}


# During an outage every request fails alike: one warning per dependency this often, with the
# count of requests refused since the last one, not one per request.
_UNAVAILABLE_LOG_EVERY_S = 10.0
_unavailable_logged: dict[str, tuple[float, int]] = {}
_unavailable_lock = threading.Lock()


def _log_unavailable(dependency: str, *, where: str, exc: BaseException) -> None:
    now = time.monotonic()
    with _unavailable_lock:
        last, refused = _unavailable_logged.get(dependency, (-_UNAVAILABLE_LOG_EVERY_S, 0))
        if now - last < _UNAVAILABLE_LOG_EVERY_S:
            _unavailable_logged[dependency] = (last, refused + 1)
            return
        _unavailable_logged[dependency] = (now, 0)
    since = f" ({refused} more requests refused since the last such line)" if refused else ""
    log.warning("%s: the %s is unavailable: %s%s", where, dependency, describe_error(exc), since)


def dependency_unavailable(exc: BaseException, *, where: str) -> ApiError | None:
    """The 503 to answer when `exc` is a dependency's outage (shared/faults.py), logged here
    (at most once per dependency every 10 s); None when it is not one. The client may retry; a
    500 would say the request itself broke something."""
    verdict = classify(exc)
    if verdict.fault is not Fault.OUTAGE:
        return None
    _log_unavailable(str(verdict.dependency), where=where, exc=exc)
    return ApiError(
        503,
        "unavailable",
        f"the {verdict.dependency} is unavailable; retry shortly",
        details=[{"dependency": str(verdict.dependency)}],
        headers={"Retry-After": "5"},
    )


def install_error_handlers(app: FastAPI, *, error_format: ErrorFormat = "problem") -> None:
    """Make every error, ours or the framework's, answer in `error_format` (api_error_response)."""

    def answer(request: Request, exc: ApiError) -> JSONResponse:
        return api_error_response(exc, scope=request.scope, error_format=error_format)

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        return answer(request, exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = list(exc.errors())
        content_type = request.headers.get("content-type")
        if not is_json_media_type(content_type) and any(
            tuple(e.get("loc", ())) == ("body",) and e.get("type") in _NOT_A_DOCUMENT
            for e in errors
        ):
            return answer(request, unsupported_media_type(content_type))
        if any(e.get("type") == "json_invalid" for e in errors):
            return answer(request, ApiError(400, "invalid_json", "request body is not valid JSON"))
        details = validation_details(errors)
        message = "; ".join(f"{d['field']}: {d['error']}" for d in details[:5])
        return answer(request, ApiError(422, "validation_error", message, details=details))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _STATUS_CODES.get(exc.status_code, "error")
        message = str(exc.detail)
        if exc.status_code == 400 and message == _FASTAPI_PARSE_ERROR:
            code, message = "invalid_json", "request body is not valid JSON"
        headers = dict(exc.headers) if exc.headers else None
        return answer(request, ApiError(exc.status_code, code, message, headers=headers))

    async def _dependency_error(request: Request, exc: Exception) -> JSONResponse:
        unavailable = dependency_unavailable(exc, where=f"{request.method} {request.url.path}")
        if unavailable is None:
            return await _unexpected(request, exc)
        return answer(request, unavailable)

    # Registered by class, so Starlette answers them without re-raising (a 500 handler's
    # exception is re-raised to the server, which logs it as a crash).
    for kind in DEPENDENCY_ERRORS:
        app.add_exception_handler(kind, _dependency_error)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return answer(request, ApiError(500, "internal_error", "internal error"))


class BodyLimitMiddleware:
    """Answers 413 to a request body over `max_bytes`, declared or streamed, before it is read
    whole into memory, and 408 (closing the connection) to one not received within
    `read_timeout_s` of the app's first read: a client trickling a body byte by byte holds a
    connection and a worker only that long. `path_max_bytes` gives some paths their own limit
    (the Segment source takes larger batches than any other route). `path_min_rate` gives
    upload paths a deadline that grows with what has arrived: `read_timeout_s` plus a second
    per `min_rate` bytes, so a large file sent at a fair speed gets through while a trickle
    is still cut off after about `read_timeout_s`."""

    def __init__(
        self,
        app: Any,
        *,
        max_bytes: int,
        read_timeout_s: float = 30.0,
        path_max_bytes: Mapping[str, int] | None = None,
        path_min_rate: Mapping[str, int] | None = None,
        error_format: ErrorFormat = "problem",
    ) -> None:
        self.app, self.max_bytes, self.read_timeout_s = app, max_bytes, read_timeout_s
        self.path_max_bytes = dict(path_max_bytes or {})
        self.path_min_rate = dict(path_min_rate or {})
        self.error_format: ErrorFormat = error_format

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        max_bytes = self.path_max_bytes.get(scope["path"], self.max_bytes)
        too_large = f"request body is larger than {max_bytes} bytes"
        if declared is not None:
            try:
                size = int(declared)
            except ValueError:
                size = -1
            if size < 0 or size > max_bytes:
                status, code = (400, "bad_request") if size < 0 else (413, "payload_too_large")
                message = "invalid Content-Length header" if size < 0 else too_large
                response = api_error_response(
                    ApiError(status, code, message), scope=scope, error_format=self.error_format
                )
                await response(scope, receive, send)
                return
        received = 0
        started: float | None = None
        body_done = False
        timeout_s = self.read_timeout_s
        min_rate = self.path_min_rate.get(scope["path"])

        async def limited_receive() -> Any:
            nonlocal received, started, body_done
            if body_done:
                # The body is in: what follows is a wait for the client to go away (Starlette
                # listens for it while streaming an answer), which may last as long as it must.
                return await receive()
            if started is None:
                started = asyncio.get_running_loop().time()
            deadline = started + timeout_s + (received / min_rate if min_rate else 0.0)
            try:
                async with asyncio.timeout_at(deadline):
                    message = await receive()
            except TimeoutError:
                within = f"within {timeout_s:g} s" + (
                    f" plus a second per {min_rate} bytes" if min_rate else ""
                )
                raise StarletteHTTPException(
                    408, f"request body not received {within}", headers={"Connection": "close"}
                ) from None
            if message["type"] != "http.request" or not message.get("more_body", False):
                body_done = True
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > max_bytes:
                    # Raised inside the route's body read, so the error handlers answer it.
                    raise StarletteHTTPException(413, too_large)
            return message

        await self.app(scope, limited_receive, send)


async def get_resources(request: Request) -> Resources:
    """The process resources the app was started with."""
    resources: Resources = request.app.state.resources  # app.state is untyped
    return resources


def get_settings_dep(resources: Annotated[Resources, Depends(get_resources)]) -> Settings:
    """The process settings."""
    return resources.settings


def get_session(resources: Annotated[Resources, Depends(get_resources)]) -> Iterator[Session]:
    """A database session for one request."""
    with resources.sessions() as session:
        yield session


def get_producer(resources: Annotated[Resources, Depends(get_resources)]) -> AsyncProducer:
    """The process's Kafka producer (ingest only)."""
    if resources.producer is None:
        raise HTTPException(503, "this process has no Kafka producer")
    return resources.producer


ResourcesDep = Annotated[Resources, Depends(get_resources)]
SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
SessionDep = Annotated[Session, Depends(get_session)]
ProducerDep = Annotated[AsyncProducer, Depends(get_producer)]
