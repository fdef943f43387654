"""Ingest's SQL: the event ids published within the idempotency window.

Every statement here is built once and takes the ids as bound values, so SQLAlchemy compiles
it once per process: on PostgreSQL the ids go as one JSON array, on SQLite as an expanding
`IN` list and an executemany insert.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

import orjson
from sqlalchemy import (
    JSON,
    Column,
    Connection,
    Index,
    String,
    Table,
    bindparam,
    cast,
    delete,
    func,
    select,
)
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

_c = ingest_event_ids.c
# SQLite caps the number of bound parameters in one statement.
_SQLITE_CHUNK = 500

# The ids go to PostgreSQL as one JSON array (orjson makes it in C; psycopg would adapt a Python
# list element by element, a regex search each, which costs more than the query on a busy
# process), unpacked by json_array_elements_text.
_PG_IDS = func.json_array_elements_text(cast(bindparam("ids", type_=String), JSON))
_PG_PUBLISHED_AT = select(_c.event_id, _c.received_at).where(
    _c.event_id.in_(select(_PG_IDS)),
    _c.received_at >= bindparam("since", type_=TZDateTime),
)
_SQLITE_PUBLISHED_AT = select(_c.event_id, _c.received_at).where(
    _c.event_id.in_(bindparam("ids", expanding=True)),
    _c.received_at >= bindparam("since", type_=TZDateTime),
)

_pg_insert = postgresql.insert(ingest_event_ids).from_select(
    ["event_id", "received_at"], select(_PG_IDS, bindparam("at", type_=TZDateTime))
)
_PG_REMEMBER = _pg_insert.on_conflict_do_update(
    index_elements=[_c.event_id], set_={"received_at": _pg_insert.excluded.received_at}
)
_sqlite_insert = sqlite.insert(ingest_event_ids)
_SQLITE_REMEMBER = _sqlite_insert.on_conflict_do_update(
    index_elements=[_c.event_id], set_={"received_at": _sqlite_insert.excluded.received_at}
)


def _is_postgresql(db: Session | Connection) -> bool:
    bind = db.get_bind() if isinstance(db, Session) else db
    return bind.dialect.name == "postgresql"


def seen_since(
    session: Session | Connection, *, event_ids: Sequence[str], since: datetime
) -> set[str]:
    """Which of `event_ids` were published at or after `since`."""
    return set(published_at(session, event_ids=event_ids, since=since))


def published_at(
    session: Session | Connection, *, event_ids: Sequence[str], since: datetime
) -> dict[str, datetime]:
    """When each of `event_ids` published at or after `since` was published."""
    if not event_ids:
        return {}
    if _is_postgresql(session):
        ids = orjson.dumps(list(event_ids)).decode()
        rows = session.execute(_PG_PUBLISHED_AT, {"ids": ids, "since": since})
        return {event_id: at for event_id, at in rows}
    found: dict[str, datetime] = {}
    for start in range(0, len(event_ids), _SQLITE_CHUNK):
        chunk = list(event_ids[start : start + _SQLITE_CHUNK])
        rows = session.execute(_SQLITE_PUBLISHED_AT, {"ids": chunk, "since": since})
        found.update({event_id: at for event_id, at in rows})
    return found


def remember(session: Session, *, event_ids: Iterable[str], at: datetime) -> None:
    """Record the ids as published at `at` (refreshing ids older than the window)."""
    # One row per id: an upsert may not touch the same row twice in one statement.
    ids = list(dict.fromkeys(event_ids))
    if not ids:
        return
    if _is_postgresql(session):
        session.execute(_PG_REMEMBER, {"ids": orjson.dumps(ids).decode(), "at": at})
    else:
        session.execute(_SQLITE_REMEMBER, [{"event_id": e, "received_at": at} for e in ids])


def forget_before(session: Session, *, before: datetime) -> int:
    """Drop ids published before `before` (outside the window); returns how many."""
    return session.execute(
        delete(ingest_event_ids).where(ingest_event_ids.c.received_at < before)
    ).rowcount
