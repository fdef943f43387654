"""Operations' SQL: which dead-lettered messages were replayed, and the counts the metrics and
the dashboard show (read from scoring's and routing's tables, in the one schema)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

from sqlalchemy import (
    Column,
    Integer,
    Row,
    String,
    Table,
    and_,
    delete,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.engine import CursorResult
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from services.routing.repository import actions
from services.routing.repository import sla_breach_counts as sla_breach_counts  # re-exported
from services.scoring.repository import leads
from shared.db import TZDateTime, metadata

dlq_replays = Table(
    "dlq_replays",
    metadata,
    # Where the parked message sits: one row per message, so it is replayed at most once.
    Column("dlq_topic", String(255), primary_key=True),
    Column("partition", Integer, primary_key=True, autoincrement=False),
    Column("offset", Integer, primary_key=True, autoincrement=False),
    Column("source_topic", String(255), nullable=False),
    Column("event_id", String(200)),
    Column("status", String(20), nullable=False),  # replaying | replayed
    Column("claimed_at", TZDateTime, nullable=False),
    Column("replayed_at", TZDateTime),
)


def _at(dlq_topic: str, partition: int, offset: int) -> Any:
    """The WHERE clause naming one parked message's row."""
    return and_(
        dlq_replays.c.dlq_topic == dlq_topic,
        dlq_replays.c.partition == partition,
        dlq_replays.c.offset == offset,
    )


def replays(
    session: Session, *, dlq_topic: str | None = None
) -> dict[tuple[str, int, int], Row[*tuple[Any, ...]]]:
    """Replay rows by (dlq topic, partition, offset)."""
    query = select(dlq_replays)
    if dlq_topic is not None:
        query = query.where(dlq_replays.c.dlq_topic == dlq_topic)
    return {(r.dlq_topic, r.partition, r.offset): r for r in session.execute(query)}


def claim_replay(
    session: Session,
    *,
    dlq_topic: str,
    partition: int,
    offset: int,
    source_topic: str,
    event_id: str | None,
    now: datetime,
    stale_before: datetime,
) -> bool:
    """Claim a parked message for replay; False if it was replayed or is being replayed."""
    try:
        with session.begin_nested():
            session.execute(
                insert(dlq_replays).values(
                    dlq_topic=dlq_topic,
                    partition=partition,
                    offset=offset,
                    source_topic=source_topic,
                    event_id=event_id,
                    status="replaying",
                    claimed_at=now,
                )
            )
        return True
    except IntegrityError:
        pass
    # A claim whose replayer died before recording the outcome may be taken again: the
    # consumers deduplicate by event id, so a second publish has no second effect.
    # An UPDATE gives a CursorResult (with rowcount); Session.execute is typed as any Result.
    taken = cast(
        "CursorResult[Any]",
        session.execute(
            update(dlq_replays)
            .where(
                _at(dlq_topic, partition, offset),
                dlq_replays.c.status == "replaying",
                dlq_replays.c.claimed_at < stale_before,
            )
            .values(claimed_at=now)
        ),
    )
    return taken.rowcount == 1


def release_replay(session: Session, *, dlq_topic: str, partition: int, offset: int) -> None:
    """Drop a claim whose publish failed, so the message can be replayed later."""
    session.execute(
        delete(dlq_replays).where(
            _at(dlq_topic, partition, offset), dlq_replays.c.status == "replaying"
        )
    )


def mark_replayed(
    session: Session, *, dlq_topic: str, partition: int, offset: int, now: datetime
) -> None:
    """Record that the message was re-published."""
    session.execute(
        update(dlq_replays)
        .where(_at(dlq_topic, partition, offset))
        .values(status="replayed", replayed_at=now)
    )


def replayed_counts(session: Session) -> dict[str, int]:
    """How many messages of each dead-letter topic were replayed."""
    rows = session.execute(
        select(dlq_replays.c.dlq_topic, func.count())
        .where(dlq_replays.c.status == "replayed")
        .group_by(dlq_replays.c.dlq_topic)
    ).all()
    return {topic: count for topic, count in rows}


def action_counts(session: Session) -> list[tuple[str, str, int]]:
    """`(kind, status, count)` over every action."""
    rows = session.execute(
        select(actions.c.kind, actions.c.status, func.count()).group_by(
            actions.c.kind, actions.c.status
        )
    ).all()
    return [(kind, status, count) for kind, status, count in rows]


def deferral_counts(session: Session) -> dict[str, int]:
    """How many times actions of each kind were deferred (frequency cap, quiet hours)."""
    rows = session.execute(
        select(actions.c.kind, func.coalesce(func.sum(actions.c.deferrals), 0)).group_by(
            actions.c.kind
        )
    ).all()
    return {kind: int(total) for kind, total in rows}


def lead_counts(session: Session) -> dict[str, int]:
    """How many leads are at each qualification."""
    rows = session.execute(
        select(leads.c.qualification, func.count()).group_by(leads.c.qualification)
    ).all()
    return {qualification: count for qualification, count in rows}
