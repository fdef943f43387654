"""The SQL of outbound lead webhooks: subscriptions, their pending deliveries (actions of kind
`lead_webhook`) and the delivery log."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.engine import Row
from sqlalchemy.orm import Session

from services.routing.domain.actions import IN_FLIGHT, ActionStatus
from services.routing.domain.lead_events import ACTION_KIND
from services.routing.repository import actions
from services.routing.webhook_tables import webhook_attempts, webhook_subscriptions


def insert_subscription(session: Session, *, values: dict[str, Any]) -> None:
    """Store a new subscription."""
    session.execute(insert(webhook_subscriptions).values(**values))


def get_subscription(session: Session, *, subscription_id: str) -> Row | None:
    """One subscription by id."""
    return session.execute(
        select(webhook_subscriptions).where(webhook_subscriptions.c.id == subscription_id)
    ).first()


def update_subscription(session: Session, *, subscription_id: str, values: dict[str, Any]) -> None:
    """Change a subscription row."""
    session.execute(
        update(webhook_subscriptions)
        .where(webhook_subscriptions.c.id == subscription_id)
        .values(**values)
    )


def list_subscriptions(session: Session, *, after: str | None, limit: int) -> list[Row]:
    """Subscriptions in id order, after the id `after`."""
    query = select(webhook_subscriptions).order_by(webhook_subscriptions.c.id).limit(limit)
    if after is not None:
        query = query.where(webhook_subscriptions.c.id > after)
    return list(session.execute(query))


def enabled_subscriptions(session: Session) -> list[Row]:
    """The subscriptions that get events, in id order."""
    return list(
        session.execute(
            select(
                webhook_subscriptions.c.id,
                webhook_subscriptions.c.url,
                webhook_subscriptions.c.event_types,
            )
            .where(webhook_subscriptions.c.enabled)
            .order_by(webhook_subscriptions.c.id)
        )
    )


def delete_subscription(session: Session, *, subscription_id: str) -> None:
    """Remove a subscription and its delivery log."""
    session.execute(
        delete(webhook_attempts).where(webhook_attempts.c.subscription_id == subscription_id)
    )
    session.execute(
        delete(webhook_subscriptions).where(webhook_subscriptions.c.id == subscription_id)
    )


def _of_subscription(subscription_id: str) -> Any:
    """Actions delivering to the subscription (its id is in their payload)."""
    return actions.c.kind == ACTION_KIND, actions.c.payload["subscription_id"].as_string() == (
        subscription_id
    )


def cancel_pending(session: Session, *, subscription_id: str, reason: str, now: datetime) -> int:
    """Cancel the subscription's deliveries that have not gone out (scheduled, or claimed by a
    worker and not begun; one being sent finishes); returns how many."""
    kind, ours = _of_subscription(subscription_id)
    pending = list(
        session.execute(
            select(actions.c.id).where(
                kind,
                ours,
                actions.c.status.in_([ActionStatus.SCHEDULED, ActionStatus.CLAIMED]),
            )
        ).scalars()
    )
    if pending:
        session.execute(
            update(actions)
            .where(actions.c.id.in_(pending))
            .values(status=ActionStatus.CANCELLED, cancel_reason=reason[:200], updated_at=now)
        )
    return len(pending)


def pending_count(session: Session, *, subscription_id: str) -> int:
    """How many of the subscription's deliveries have not gone out yet."""
    kind, ours = _of_subscription(subscription_id)
    return int(
        session.execute(
            select(func.count()).where(
                kind, ours, actions.c.status.in_([ActionStatus.SCHEDULED, *IN_FLIGHT])
            )
        ).scalar_one()
    )


def record_attempt(session: Session, *, values: dict[str, Any]) -> None:
    """Add one delivery attempt to the log."""
    session.execute(insert(webhook_attempts).values(**values))


def attempts(
    session: Session, *, subscription_id: str, before: int | None, limit: int
) -> list[Row]:
    """The subscription's delivery attempts, newest first, older than the id `before`."""
    query = (
        select(webhook_attempts)
        .where(webhook_attempts.c.subscription_id == subscription_id)
        .order_by(webhook_attempts.c.id.desc())
        .limit(limit)
    )
    if before is not None:
        query = query.where(webhook_attempts.c.id < before)
    return list(session.execute(query))
