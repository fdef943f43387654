"""Ingest's SQL: the event ids published within the idempotency window."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from sqlalchemy import Column, Index, String, Table, delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from shared.db import TZDateTime, metadata

ingest_event_ids = Table(
    "ingest_event_ids",
    metadata,
    Column("event_id", String(200), primary_key=True),
    Column("received_at", TZDateTime, nullable=False),
    Index("ix_ingest_event_ids_received_at", "received_at"),
)


def seen_since(session: Session, *, event_ids: Sequence[str], since: datetime) -> set[str]:
    """Which of `event_ids` were published at or after `since`."""
    return set(published_at(session, event_ids=event_ids, since=since))


def published_at(
    session: Session, *, event_ids: Sequence[str], since: datetime
) -> dict[str, datetime]:
    """When each of `event_ids` published at or after `since` was published."""
    found: dict[str, datetime] = {}
    # Chunked: SQLite caps the number of bound parameters in one statement.
    for start in range(0, len(event_ids), 500):
        chunk = list(event_ids[start : start + 500])
        rows = session.execute(
            select(ingest_event_ids.c.event_id, ingest_event_ids.c.received_at).where(
                ingest_event_ids.c.event_id.in_(chunk),
                ingest_event_ids.c.received_at >= since,
            )
        )
        found.update({event_id: at for event_id, at in rows})
    return found


def remember(session: Session, *, event_ids: Iterable[str], at: datetime) -> None:
    """Record the ids as published at `at` (refreshing ids older than the window)."""
    rows = [{"event_id": e, "received_at": at} for e in event_ids]
    if not rows:
        return
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    for start in range(0, len(rows), 500):
        statement = insert(ingest_event_ids).values(rows[start : start + 500])
        statement = statement.on_conflict_do_update(
            index_elements=[ingest_event_ids.c.event_id],
            set_={"received_at": statement.excluded.received_at},
        )
        session.execute(statement)


def forget_before(session: Session, *, before: datetime) -> int:
    """Drop ids published before `before` (outside the window); returns how many."""
    return session.execute(
        delete(ingest_event_ids).where(ingest_event_ids.c.received_at < before)
    ).rowcount
