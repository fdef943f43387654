"""Outbound lead webhooks: subscriptions (create, change, delete, rotate their secret), the
deliveries a batch or an assignment plans for them, the send step the action worker runs, and
the delivery log it writes."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

import httpx
from sqlalchemy.engine import Row
from sqlalchemy.orm import Session

from services.routing import webhook_repository as repo
from services.routing.domain import lead_events as le
from services.routing.domain import playbooks as pb
from services.routing.domain.webhooks import RetiredSecret, new_secret, rotate, signing_secrets
from services.routing.senders import DeliveryError, send_webhook
from services.scoring import public as scoring
from shared.db import as_utc
from shared.events import AccountSnapshot, CompanySnapshot, LeadSnapshot

# What the delivery log says of each attempt.
DELIVERED, RETRYING, FAILED, UNREACHABLE = "delivered", "retrying", "failed", "unreachable"


def _iso(value: datetime | None) -> str | None:
    value = as_utc(value)
    return value.isoformat() if value else None


def _retired(row: Row) -> list[RetiredSecret]:
    return [
        RetiredSecret(r["secret"], datetime.fromisoformat(r["expires_at"]))
        for r in row.retired_secrets or []
    ]


def subscription_view(row: Row, *, now: datetime, secret: str | None = None) -> dict[str, Any]:
    """A subscription as the API shows it: never its secret, but when the secret retired by
    the last rotation stops signing; `secret` only on create and rotate."""
    expiries = [r.expires_at for r in _retired(row) if r.expires_at > now]
    view = {
        "id": row.id,
        "url": row.url,
        "event_types": list(row.event_types),
        "description": row.description,
        "enabled": row.enabled,
        "created_at": _iso(row.created_at),
        "updated_at": _iso(row.updated_at),
        "previous_secret_expires_at": _iso(max(expiries)) if expiries else None,
    }
    if secret is not None:
        view["secret"] = secret
    return view


def create_subscription(
    session: Session,
    *,
    url: str,
    event_types: Sequence[str],
    description: str | None,
    enabled: bool,
    now: datetime,
) -> dict[str, Any]:
    """Store a subscription with a new secret; the view with the secret (shown only now)."""
    secret = new_secret()
    values = {
        "id": str(uuid.uuid4()),
        "url": url,
        "event_types": list(event_types),
        "description": description,
        "enabled": enabled,
        "secret": secret,
        "retired_secrets": [],
        "created_at": now,
        "updated_at": now,
    }
    repo.insert_subscription(session, values=values)
    row = repo.get_subscription(session, subscription_id=values["id"])
    assert row is not None
    return subscription_view(row, now=now, secret=secret)


def list_subscriptions(
    session: Session, *, after: str | None, limit: int, now: datetime
) -> tuple[list[dict[str, Any]], str | None]:
    """A page of subscriptions in id order, and the id the next page starts after (None on
    the last page)."""
    rows = repo.list_subscriptions(session, after=after, limit=limit + 1)
    more = len(rows) > limit
    rows = rows[:limit]
    return [subscription_view(r, now=now) for r in rows], (rows[-1].id if more else None)


def get_subscription(
    session: Session, *, subscription_id: str, now: datetime
) -> dict[str, Any] | None:
    """One subscription's view; None if there is none."""
    row = repo.get_subscription(session, subscription_id=subscription_id)
    return None if row is None else subscription_view(row, now=now)


def update_subscription(
    session: Session, *, subscription_id: str, values: dict[str, Any], now: datetime
) -> dict[str, Any] | None:
    """Change a subscription's url, event types, description or enabled flag; None if there is
    none. Disabling it cancels its pending deliveries (Stripe's and Svix's disabled endpoints
    get nothing); pending ones go to the new url and are signed as it is now."""
    row = repo.get_subscription(session, subscription_id=subscription_id)
    if row is None:
        return None
    if values:
        if "event_types" in values:
            values = {**values, "event_types": list(values["event_types"])}
        repo.update_subscription(
            session, subscription_id=subscription_id, values={**values, "updated_at": now}
        )
    if values.get("enabled") is False:
        repo.cancel_pending(
            session, subscription_id=subscription_id, reason="the subscription is disabled", now=now
        )
    return get_subscription(session, subscription_id=subscription_id, now=now)


def delete_subscription(session: Session, *, subscription_id: str, now: datetime) -> int | None:
    """Delete a subscription and its log and cancel its pending deliveries; how many were
    cancelled, or None if there is no such subscription."""
    if repo.get_subscription(session, subscription_id=subscription_id) is None:
        return None
    cancelled = repo.cancel_pending(
        session, subscription_id=subscription_id, reason="the subscription was deleted", now=now
    )
    repo.delete_subscription(session, subscription_id=subscription_id)
    return cancelled


def rotate_secret(
    session: Session, *, subscription_id: str, grace: timedelta, now: datetime
) -> dict[str, Any] | None:
    """Issue a new secret; the current one keeps signing for `grace`. The view with the new
    secret (shown only now); None if there is no such subscription."""
    row = repo.get_subscription(session, subscription_id=subscription_id)
    if row is None:
        return None
    secret, retired = rotate(current=row.secret, retired=_retired(row), now=now, grace=grace)
    repo.update_subscription(
        session,
        subscription_id=subscription_id,
        values={
            "secret": secret,
            "retired_secrets": [
                {"secret": r.secret, "expires_at": r.expires_at.isoformat()} for r in retired
            ],
            "updated_at": now,
        },
    )
    updated = repo.get_subscription(session, subscription_id=subscription_id)
    assert updated is not None
    return subscription_view(updated, now=now, secret=secret)


def attempt_view(row: Row) -> dict[str, Any]:
    """One delivery attempt as the delivery log shows it."""
    return {
        "id": row.id,
        "webhook_id": row.msg_id,
        "event_type": row.event_type,
        "lead_id": row.lead_id,
        "action_id": row.action_id,
        "attempted_at": _iso(row.attempted_at),
        "outcome": row.outcome,
        "status_code": row.status_code,
        "error": row.error,
        "duration_ms": row.duration_ms,
    }


def delivery_log(
    session: Session, *, subscription_id: str, before: int | None, limit: int
) -> tuple[list[dict[str, Any]], int | None]:
    """A page of the subscription's delivery attempts, newest first, and the id the next page
    starts before (None on the last page)."""
    rows = repo.attempts(session, subscription_id=subscription_id, before=before, limit=limit + 1)
    more = len(rows) > limit
    rows = rows[:limit]
    return [attempt_view(r) for r in rows], (int(rows[-1].id) if more else None)


# --- planning -------------------------------------------------------------------------------


def planning_subscriptions(session: Session) -> list[le.Subscription]:
    """The enabled subscriptions, as planning sees them."""
    return [
        le.Subscription(id=r.id, url=r.url, event_types=frozenset(r.event_types))
        for r in repo.enabled_subscriptions(session)
    ]


def snapshot_of_lead(row: Row) -> LeadSnapshot:
    """A stored lead as a lead change carries it (for events outside a lead change)."""
    return LeadSnapshot(
        id=row.id,
        email=row.email,
        first_name=row.first_name,
        last_name=row.last_name,
        job_title=row.job_title,
        phone=row.phone,
        account=AccountSnapshot(domain=row.account_domain) if row.account_domain else None,
        company=CompanySnapshot(
            name=row.company_name,
            domain=row.company_domain,
            industry=row.industry,
            employees=row.employees,
            annual_revenue=row.annual_revenue,
            country=row.country,
        ),
        score=row.score,
        fit_score=row.fit_score,
        engagement_score=row.engagement_score,
        persona=row.persona,
        qualification=row.qualification,
        funnel_stage=row.funnel_stage,
        journey_stage=row.journey_stage,
        bant=row.bant,
        model_version=row.model_version,
        qualification_reason=row.qualification_reason,
    )


def owner_assigned_actions(
    session: Session,
    *,
    lead_id: str,
    owner: le.Owner,
    previous: le.Owner | None,
    rule: str,
    cause_event_id: str,
    now: datetime,
) -> list[pb.NewAction]:
    """The deliveries of `lead.owner_assigned` for an assignment made outside a lead change
    (a queue hand-out, an SLA reassignment)."""
    subscriptions = [
        s for s in planning_subscriptions(session) if le.OWNER_ASSIGNED in s.event_types
    ]
    lead = scoring.get_lead(session, lead_id=lead_id) if subscriptions else None
    if lead is None:
        return []
    event = le.owner_assigned(
        lead=snapshot_of_lead(lead),
        owner=owner,
        previous=previous,
        rule=rule,
        cause_event_id=cause_event_id,
        at=now,
    )
    return le.deliveries(
        [event], subscriptions=subscriptions, source_id=f"assignment:{cause_event_id}", now=now
    )


# --- delivery -------------------------------------------------------------------------------


def prepare_send(
    session: Session, *, row: Row, http: httpx.Client, now: datetime
) -> Callable[[], int] | str:
    """The send step of a lead webhook delivery, signed with the subscription's secrets as
    they are now (a rotation applies to pending deliveries); or why it is not sent any more
    (the subscription is gone or disabled)."""
    payload = row.payload or {}
    sub = repo.get_subscription(session, subscription_id=str(payload.get("subscription_id")))
    if sub is None:
        return "the subscription was deleted"
    if not sub.enabled:
        return "the subscription is disabled"
    secret, also = signing_secrets(current=sub.secret, retired=_retired(sub), now=now)
    url, body, msg_id = sub.url, payload.get("body") or {}, str(payload.get("msg_id"))

    def post() -> int:
        return send_webhook(
            client=http,
            url=url,
            secret=secret,
            msg_id=msg_id,
            payload=body,
            timestamp=int(time.time()),
            also_signed_by=also,
        )

    return post


def log_attempt(
    session: Session,
    *,
    row: Row,
    at: datetime,
    duration_s: float,
    status: int | None,
    error: DeliveryError | None,
    outcome: str,
) -> None:
    """Add one attempt of a lead webhook delivery to its subscription's log."""
    payload = row.payload or {}
    repo.record_attempt(
        session,
        values={
            "subscription_id": str(payload.get("subscription_id")),
            "action_id": row.id,
            "msg_id": str(payload.get("msg_id"))[:64],
            "event_type": row.playbook[:40],
            "lead_id": row.lead_id,
            "attempted_at": at,
            "outcome": outcome,
            "status_code": status if error is None else error.status,
            "error": str(error)[:1000] if error is not None else None,
            "duration_ms": round(duration_s * 1000),
        },
    )
