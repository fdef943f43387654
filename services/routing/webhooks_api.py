"""Outbound lead webhooks for CRMs: the subscription routes under `/v1/webhooks` (the events
they deliver are documented by `webhook_events.py`)."""

from __future__ import annotations

import base64
import binascii
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

import orjson
from fastapi import APIRouter, Body, Path, Query
from pydantic import BaseModel, ConfigDict, Field, field_validator

from services.routing import webhooks as service
from services.routing.domain import lead_events as le
from services.routing.domain.webhooks import ROTATION_GRACE
from shared.auth import WebhooksManager
from shared.events import utcnow
from shared.http import ApiError, SessionDep
from shared.schemas import KEYED, STORABLE_TEXT, WITH_BODY, error_responses

router = APIRouter(tags=["webhooks"])

EventType = Literal[
    "lead.created",
    "lead.qualified",
    "lead.stage_changed",
    "lead.owner_assigned",
    "lead.merged",
    "lead.erased",
]
WebhookId = Annotated[str, Path(max_length=36, pattern=STORABLE_TEXT)]
MAX_GRACE_S = 7 * 86_400


def _check_url(value: str) -> str:
    """An absolute http(s) URL with a host, as given; ValueError saying what is wrong."""
    if value != value.strip() or any(c.isspace() or ord(c) < 32 for c in value):
        raise ValueError("must not contain spaces or control characters")
    parts = urlsplit(value)
    if parts.scheme.lower() not in ("http", "https"):
        raise ValueError("must be an http:// or https:// URL")
    if not parts.hostname:
        raise ValueError("must name a host")
    if parts.username is not None or parts.password is not None:
        raise ValueError("must not carry credentials; the signature authenticates the sender")
    try:
        parts.port  # noqa: B018 - raises for a port that is not a number in range
    except ValueError:
        raise ValueError("has an invalid port") from None
    return value


def _event_types(value: list[str] | None) -> list[str] | None:
    """The event types without repeats, in the documented order."""
    return None if value is None else [t for t in le.EVENT_TYPES if t in value]


URL_FIELD = Field(
    max_length=2048,
    description="Where to POST the events: an http:// or https:// URL",
    examples=["https://crm.example/hooks/leadflow"],
)


class SubscriptionIn(BaseModel):
    """A new subscription: where to send which lead events."""

    model_config = ConfigDict(extra="forbid")

    url: str = URL_FIELD
    event_types: list[EventType] | None = Field(
        None, min_length=1, description="the events it wants; omitted or null: all of them"
    )
    description: str | None = Field(None, max_length=500, pattern=STORABLE_TEXT)
    enabled: bool = True

    @field_validator("url")
    @classmethod
    def _valid_url(cls, value: str) -> str:
        """An absolute http(s) URL with a host."""
        return _check_url(value)

    @field_validator("event_types")
    @classmethod
    def _known_types(cls, value: list[str] | None) -> list[str] | None:
        """Each type once, in the documented order."""
        return _event_types(value)


class SubscriptionPatch(BaseModel):
    """What to change of a subscription; fields left out stay as they are."""

    model_config = ConfigDict(extra="forbid")

    url: str | None = Field(None, max_length=2048)
    event_types: list[EventType] | None = Field(None, min_length=1)
    description: str | None = Field(None, max_length=500, pattern=STORABLE_TEXT)
    enabled: bool | None = None

    @field_validator("url")
    @classmethod
    def _valid_url(cls, value: str | None) -> str | None:
        """The same rule as on create."""
        return None if value is None else _check_url(value)

    @field_validator("event_types")
    @classmethod
    def _known_types(cls, value: list[str] | None) -> list[str] | None:
        """Each type once, in the documented order."""
        return _event_types(value)


class RotateIn(BaseModel):
    """How long the secret being replaced keeps signing."""

    model_config = ConfigDict(extra="forbid")

    grace_period_s: int = Field(
        int(ROTATION_GRACE.total_seconds()),
        ge=0,
        le=MAX_GRACE_S,
        description="seconds the previous secret keeps signing beside the new one (0: none)",
    )


class SubscriptionOut(BaseModel):
    """A subscription (never its secret)."""

    id: str
    url: str
    event_types: list[str]
    description: str | None
    enabled: bool
    created_at: datetime
    updated_at: datetime
    previous_secret_expires_at: datetime | None = Field(
        description="until when the secret replaced by the last rotation still signs"
    )


class SubscriptionWithSecret(SubscriptionOut):
    """A subscription with its signing secret: answered only by create and rotate."""

    secret: str = Field(description="`whsec_` + base64 of 32 random bytes; shown only now")


class SubscriptionPage(BaseModel):
    """A page of subscriptions."""

    items: list[SubscriptionOut]
    next_cursor: str | None


class DeletedOut(BaseModel):
    """A deleted subscription and how many of its deliveries were still pending."""

    id: str
    deleted: bool
    cancelled_deliveries: int


class AttemptOut(BaseModel):
    """One delivery attempt."""

    id: int
    webhook_id: str = Field(description="the message's `webhook-id`, the same on every attempt")
    event_type: str
    lead_id: str
    action_id: str = Field(description="the delivery in `/v1/actions?kind=lead_webhook`")
    attempted_at: datetime
    outcome: Literal["delivered", "retrying", "failed", "unreachable"] = Field(
        description="unreachable: not connected, retried without counting an attempt"
    )
    status_code: int | None
    error: str | None
    duration_ms: int


class AttemptPage(BaseModel):
    """A page of the delivery log, newest first."""

    items: list[AttemptOut]
    next_cursor: str | None


def _bad_cursor() -> ApiError:
    why = "not a cursor this API issued"
    return ApiError(
        400, "bad_cursor", f"cursor: {why}", details=[{"field": "cursor", "error": why}]
    )


def _encode(value: Any) -> str:
    return base64.urlsafe_b64encode(orjson.dumps([value])).decode().rstrip("=")


def _decode(cursor: str, kind: type) -> Any:
    """The position a cursor holds; 400 unless this API issued it for this listing."""
    try:
        parts = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, binascii.Error, orjson.JSONDecodeError):
        raise _bad_cursor() from None
    if not isinstance(parts, list) or len(parts) != 1:
        raise _bad_cursor()
    value = parts[0]
    if type(value) is not kind or (isinstance(value, str) and "\x00" in value):
        raise _bad_cursor()
    if isinstance(value, int) and not 0 < value < 2**63:
        raise _bad_cursor()
    return value


def _not_found(webhook_id: str) -> ApiError:
    return ApiError(404, "not_found", f"no webhook subscription with id {webhook_id!r}")


Cursor = Annotated[str | None, Query(max_length=200)]
Limit = Annotated[int, Query(ge=1, le=500)]


@router.post(
    "/v1/webhooks",
    status_code=201,
    response_model=SubscriptionWithSecret,
    summary="Subscribe a URL to lead events (the answer holds its secret, shown only now)",
    responses=error_responses(*KEYED, *WITH_BODY),
)
def create_webhook(
    body: SubscriptionIn, session: SessionDep, _principal: WebhooksManager
) -> dict[str, Any]:
    """Store the subscription with a new signing secret."""
    with session.begin():
        return service.create_subscription(
            session,
            url=body.url,
            event_types=body.event_types or list(le.EVENT_TYPES),
            description=body.description,
            enabled=body.enabled,
            now=utcnow(),
        )


@router.get(
    "/v1/webhooks",
    response_model=SubscriptionPage,
    summary="Webhook subscriptions",
    responses=error_responses(*KEYED, 400, 422),
)
def list_webhooks(
    session: SessionDep, _principal: WebhooksManager, limit: Limit = 100, cursor: Cursor = None
) -> dict[str, Any]:
    """The subscriptions in id order, a page at a time; their secrets are never listed."""
    after = _decode(cursor, str) if cursor else None
    items, last = service.list_subscriptions(session, after=after, limit=limit, now=utcnow())
    return {"items": items, "next_cursor": _encode(last) if last is not None else None}


@router.get(
    "/v1/webhooks/{webhook_id}",
    response_model=SubscriptionOut,
    summary="One webhook subscription",
    responses=error_responses(*KEYED, 404, 422),
)
def get_webhook(
    webhook_id: WebhookId, session: SessionDep, _principal: WebhooksManager
) -> dict[str, Any]:
    """The subscription; 404 for an unknown id."""
    found = service.get_subscription(session, subscription_id=webhook_id, now=utcnow())
    if found is None:
        raise _not_found(webhook_id)
    return found


@router.patch(
    "/v1/webhooks/{webhook_id}",
    response_model=SubscriptionOut,
    summary="Change a webhook subscription's URL, events, description or enabled flag",
    responses=error_responses(*KEYED, *WITH_BODY, 404),
)
def update_webhook(
    webhook_id: WebhookId,
    body: SubscriptionPatch,
    session: SessionDep,
    _principal: WebhooksManager,
) -> dict[str, Any]:
    """Pending deliveries go to the new URL; disabling cancels them."""
    given = body.model_dump(exclude_unset=True)
    values = {k: v for k, v in given.items() if v is not None or k == "description"}
    with session.begin():
        found = service.update_subscription(
            session, subscription_id=webhook_id, values=values, now=utcnow()
        )
    if found is None:
        raise _not_found(webhook_id)
    return found


@router.delete(
    "/v1/webhooks/{webhook_id}",
    response_model=DeletedOut,
    summary="Delete a webhook subscription and cancel its pending deliveries",
    responses=error_responses(*KEYED, 404, 422),
)
def delete_webhook(
    webhook_id: WebhookId, session: SessionDep, _principal: WebhooksManager
) -> dict[str, Any]:
    """Delete the subscription and its delivery log; a delivery being sent right now ends."""
    with session.begin():
        cancelled = service.delete_subscription(session, subscription_id=webhook_id, now=utcnow())
    if cancelled is None:
        raise _not_found(webhook_id)
    return {"id": webhook_id, "deleted": True, "cancelled_deliveries": cancelled}


@router.post(
    "/v1/webhooks/{webhook_id}/rotate",
    response_model=SubscriptionWithSecret,
    summary="Issue a new signing secret (the answer holds it, shown only now)",
    responses=error_responses(*KEYED, *WITH_BODY, 404),
)
def rotate_webhook_secret(
    webhook_id: WebhookId,
    session: SessionDep,
    _principal: WebhooksManager,
    body: Annotated[RotateIn | None, Body()] = None,
) -> dict[str, Any]:
    """The previous secret keeps signing beside the new one for the grace period (24 h unless
    the body says), pending deliveries included, then expires."""
    grace = timedelta(seconds=(body or RotateIn()).grace_period_s)
    with session.begin():
        found = service.rotate_secret(
            session, subscription_id=webhook_id, grace=grace, now=utcnow()
        )
    if found is None:
        raise _not_found(webhook_id)
    return found


@router.get(
    "/v1/webhooks/{webhook_id}/deliveries",
    response_model=AttemptPage,
    summary="A subscription's delivery log: every attempt, the newest first",
    responses=error_responses(*KEYED, 400, 404, 422),
)
def list_webhook_deliveries(
    webhook_id: WebhookId,
    session: SessionDep,
    _principal: WebhooksManager,
    limit: Limit = 100,
    cursor: Cursor = None,
) -> dict[str, Any]:
    """Each attempt's time, outcome, HTTP status or error, and duration; 404 for an unknown
    subscription."""
    before = _decode(cursor, int) if cursor else None
    if service.get_subscription(session, subscription_id=webhook_id, now=utcnow()) is None:
        raise _not_found(webhook_id)
    items, last = service.delivery_log(
        session, subscription_id=webhook_id, before=before, limit=limit
    )
    return {"items": items, "next_cursor": _encode(last) if last is not None else None}
