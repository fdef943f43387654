"""Ingest's handlers: drop repeats within the idempotency window, publish, remember."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from services.ingest import repository as repo
from shared.config import Settings
from shared.events import TouchEnvelope
from shared.kafka import AsyncProducer

log = logging.getLogger(__name__)

# Old ids are pruned at most this often per process; the window check never relies on it.
_PRUNE_EVERY_S = 60.0
_last_prune = 0.0


class DatabaseUnavailable(Exception):
    """The idempotency store could not be read, so nothing was published."""


@dataclass(frozen=True)
class Accepted:
    """What the broker now has: every valid event's id, how many were new, how many repeats."""

    ids: list[str]
    accepted: int
    duplicates: int


def _seen(sessions: sessionmaker[Session], ids: list[str], since: datetime) -> set[str]:
    with sessions() as session:
        return repo.seen_since(session, event_ids=ids, since=since)


def _remember(sessions: sessionmaker[Session], ids: list[str], now: datetime, window_s: float):
    global _last_prune
    with sessions.begin() as session:
        repo.remember(session, event_ids=ids, at=now)
        if time.monotonic() - _last_prune > _PRUNE_EVERY_S:
            _last_prune = time.monotonic()
            repo.forget_before(session, before=now - timedelta(seconds=window_s))


async def accept_envelopes(
    *,
    envelopes: Sequence[TouchEnvelope],
    producer: AsyncProducer,
    sessions: sessionmaker[Session],
    settings: Settings,
    now: datetime,
) -> Accepted:
    """Publish the events not seen within the window; returns once the broker acked them all.

    Raises PublishError when the broker did not acknowledge (the caller answers 503: the ids
    are not remembered, so a retry publishes again and consumers drop what already arrived).
    """
    unique: dict[str, TouchEnvelope] = {}
    for env in envelopes:
        unique.setdefault(env.event_id, env)
    repeats_in_request = len(envelopes) - len(unique)
    ids = list(unique)
    seen: set[str] = set()
    if settings.dedupe_window_s > 0 and ids:
        since = now - timedelta(seconds=settings.dedupe_window_s)
        try:
            seen = await asyncio.to_thread(_seen, sessions, ids, since)
        except SQLAlchemyError as exc:
            raise DatabaseUnavailable(str(exc.__class__.__name__)) from exc
    fresh = [env for event_id, env in unique.items() if event_id not in seen]
    if fresh:
        await producer.publish_many(
            topic=settings.topic_touch_events,
            records=[
                (env.lead_key.encode(), env.to_bytes(), [("event_id", env.event_id.encode())])
                for env in fresh
            ],
        )
        if settings.dedupe_window_s > 0:
            try:
                await asyncio.to_thread(
                    _remember, sessions, [e.event_id for e in fresh], now, settings.dedupe_window_s
                )
            except SQLAlchemyError:
                # The broker has the events, so the answer is still 202; a repeat would be
                # published again and dropped by the consumers' own dedupe.
                log.warning("published %d events but could not remember their ids", len(fresh))
    return Accepted(ids=ids, accepted=len(fresh), duplicates=repeats_in_request + len(seen))
