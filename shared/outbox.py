"""The transactional outbox: messages stored with the state change that caused them, sent after.

A consumer that changes the database and must also publish (scoring's lead changes) writes
the message in the same transaction, so a crash between commit and publish loses nothing:
the next flush sends it. A message may be published twice (crash after send, before marking);
every message carries an event id and consumers deduplicate by it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence

from sqlalchemy import delete, insert, select
from sqlalchemy.orm import Session, sessionmaker

from shared.db import outbox, transaction
from shared.events import utcnow
from shared.kafka import AsyncProducer, Headers

log = logging.getLogger(__name__)

# One flush at a time in a process: scoring's after-batch step and the re-score sweep both
# flush, and two flushes side by side would each read, and publish, the same pending rows.
# (Across processes a row may still go out twice; consumers deduplicate by event id.)
_FLUSHING = threading.Lock()


def enqueue(
    session: Session, *, topic: str, key: bytes | None, value: bytes, headers: Headers | None = None
) -> None:
    """Add a message to the outbox inside the caller's transaction."""
    session.execute(
        insert(outbox).values(
            topic=topic,
            key=key,
            value=value,
            headers=[[k, v.decode("latin-1")] for k, v in headers or []],
            created_at=utcnow(),
        )
    )


def enqueue_many(
    session: Session, *, messages: Sequence[tuple[str, bytes | None, bytes | None, Headers]]
) -> None:
    """Add (topic, key, value, headers) messages to the outbox in one multi-row insert, in
    order, inside the caller's transaction (a None value is a Kafka tombstone)."""
    if not messages:
        return
    at = utcnow()
    session.execute(
        insert(outbox),
        [
            {
                "topic": topic,
                "key": key,
                "value": value,
                "headers": [[k, v.decode("latin-1")] for k, v in headers],
                "created_at": at,
            }
            for topic, key, value, headers in messages
        ],
    )


def discard(session: Session, *, topic: str, key: bytes) -> int:
    """Drop the messages not published yet with this topic and key (they name an erased
    person); returns how many."""
    result = session.execute(delete(outbox).where(outbox.c.topic == topic, outbox.c.key == key))
    return int(result.rowcount)  # type: ignore[attr-defined]


def flush(*, sessions: sessionmaker[Session], producer: AsyncProducer, limit: int = 2_000) -> int:
    """Publish pending outbox messages in order and remove them; returns how many were sent
    (`limit` a round: a poll batch's lead changes usually go in one); one flush at a time
    in this process, so a row is not published twice by two of its threads."""
    with _FLUSHING:
        return _flush(sessions=sessions, producer=producer, limit=limit)


def _flush(*, sessions: sessionmaker[Session], producer: AsyncProducer, limit: int) -> int:
    sent = 0
    while True:
        with sessions() as session:
            rows = session.execute(
                select(outbox.c.id, outbox.c.topic, outbox.c.key, outbox.c.value, outbox.c.headers)
                .order_by(outbox.c.id)
                .limit(limit)
            ).all()
        if not rows:
            return sent
        producer.publish_many_sync(
            [
                (
                    row.topic,
                    row.key,
                    row.value,
                    [(k, v.encode("latin-1")) for k, v in row.headers or []],
                )
                for row in rows
            ]
        )
        with transaction(sessions) as session:
            # Published rows are deleted, so the table only ever holds what is pending.
            session.execute(delete(outbox).where(outbox.c.id.in_([row.id for row in rows])))
        sent += len(rows)
        if len(rows) < limit:
            return sent  # that was all of it (anything newer is its writer's to flush)
