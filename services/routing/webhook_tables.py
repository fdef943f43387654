"""Routing's tables of outbound lead webhooks: the subscriptions (with their signing secrets)
and the log of every delivery attempt. The deliveries themselves are actions."""

from __future__ import annotations

from sqlalchemy import JSON, Boolean, Column, Index, Integer, String, Table

from shared.db import AutoId, TZDateTime, metadata

webhook_subscriptions = Table(
    "webhook_subscriptions",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("url", String(2048), nullable=False),
    # The event types it wants (a subset of services.routing.domain.lead_events.EVENT_TYPES).
    Column("event_types", JSON, nullable=False),
    Column("description", String(500)),
    Column("enabled", Boolean, nullable=False),
    # Stored as issued: they must sign (see the README on what protects them).
    Column("secret", String(100), nullable=False),
    # Secrets retired by a rotation that still sign until they expire:
    # [{"secret": ..., "expires_at": ISO 8601}].
    Column("retired_secrets", JSON, nullable=False),
    Column("created_at", TZDateTime, nullable=False),
    Column("updated_at", TZDateTime, nullable=False),
)

webhook_attempts = Table(
    "webhook_attempts",
    metadata,
    Column("id", AutoId, primary_key=True, autoincrement=True),
    Column("subscription_id", String(36), nullable=False),
    Column("action_id", String(36), nullable=False),
    Column("msg_id", String(64), nullable=False),
    Column("event_type", String(40), nullable=False),
    Column("lead_id", String(36), nullable=False),
    Column("attempted_at", TZDateTime, nullable=False),
    # delivered | retrying | failed | unreachable (the receiver is down: not an attempt)
    Column("outcome", String(20), nullable=False),
    Column("status_code", Integer),
    Column("error", String(1000)),
    Column("duration_ms", Integer, nullable=False),
    Index("ix_webhook_attempts_subscription_id_id", "subscription_id", "id"),
)
