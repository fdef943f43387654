"""Ingest's handlers: drop repeats within the idempotency window, publish, remember."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Collection, Sequence
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
# Ids of acknowledged events are written in one transaction per this interval, not one per
# request: concurrent requests share the write, as they share the producer's batches.
_REMEMBER_EVERY_S = 0.05


class DatabaseUnavailable(Exception):
    """The idempotency store could not be read, so nothing was published."""


@dataclass(frozen=True)
class Accepted:
    """What the broker now has: every valid event's id, how many were new, how many repeats."""

    ids: list[str]
    accepted: int
    duplicates: int


class IdempotencyStore:
    """Event ids published within the window: the database, plus the ids of the last few
    milliseconds not yet written there (so a quick repeat is caught before the write)."""

    def __init__(self, *, sessions: sessionmaker[Session], window_s: float) -> None:
        self._sessions, self.window_s = sessions, window_s
        self._pending: dict[str, datetime] = {}
        self._writing: dict[str, datetime] = {}
        self._writer: asyncio.Task[None] | None = None
        self._last_prune = 0.0

    async def seen(self, event_ids: list[str], *, now: datetime) -> set[str]:
        """Which ids were published within the window before `now`."""
        since = now - timedelta(seconds=self.window_s)
        recent = {
            i
            for i in event_ids
            if (at := self._pending.get(i) or self._writing.get(i)) is not None and at >= since
        }
        rest = [i for i in event_ids if i not in recent]
        if not rest:
            return recent
        try:
            stored = await asyncio.to_thread(self._read, rest, since)
        except SQLAlchemyError as exc:
            raise DatabaseUnavailable(type(exc).__name__) from exc
        return recent | stored

    def remember(self, event_ids: list[str], *, now: datetime) -> None:
        """Note the ids as published; they reach the database within a few milliseconds."""
        for event_id in event_ids:
            self._pending[event_id] = now
        if self._writer is None or self._writer.done():
            self._writer = asyncio.get_running_loop().create_task(self._write_soon())

    async def _write_soon(self) -> None:
        while self._pending:
            await asyncio.sleep(_REMEMBER_EVERY_S)
            self._writing, self._pending = self._pending, {}
            try:
                await asyncio.to_thread(self._write, self._writing)
            except SQLAlchemyError:
                # The broker has these events, so their 202 stands; a repeat would be
                # published again and dropped by the consumers' own dedupe.
                log.warning("could not remember %d published event ids", len(self._writing))
            finally:
                self._writing = {}

    def flush(self) -> None:
        """Write what is pending now (at shutdown, from outside the event loop)."""
        pending, self._pending = self._pending, {}
        if pending:
            try:
                self._write(pending)
            except SQLAlchemyError:
                log.warning("could not remember %d published event ids", len(pending))

    def _read(self, event_ids: list[str], since: datetime) -> set[str]:
        with self._sessions() as session:
            return repo.seen_since(session, event_ids=event_ids, since=since)

    def _write(self, ids: dict[str, datetime]) -> None:
        by_time: dict[datetime, list[str]] = {}
        for event_id, at in ids.items():
            by_time.setdefault(at, []).append(event_id)
        with self._sessions.begin() as session:
            for at, batch in by_time.items():
                repo.remember(session, event_ids=batch, at=at)
            if time.monotonic() - self._last_prune > _PRUNE_EVERY_S:
                self._last_prune = time.monotonic()
                latest = max(ids.values())
                repo.forget_before(session, before=latest - timedelta(seconds=self.window_s))


async def accept_envelopes(
    *,
    envelopes: Sequence[TouchEnvelope],
    minted_ids: Collection[str] = (),
    producer: AsyncProducer,
    store: IdempotencyStore,
    settings: Settings,
    now: datetime,
) -> Accepted:
    """Publish the events not seen within the window; returns once the broker acked them all.

    `minted_ids` are ids ingest generated for events that came without one: they cannot be
    repeats, so they skip the idempotency store. Raises PublishError when the broker did not
    acknowledge (the caller answers 503; the ids are not remembered, so a retry publishes
    again and consumers drop what already arrived).
    """
    unique: dict[str, TouchEnvelope] = {}
    for env in envelopes:
        unique.setdefault(env.event_id, env)
    repeats_in_request = len(envelopes) - len(unique)
    keyed = [i for i in unique if i not in minted_ids] if settings.dedupe_window_s > 0 else []
    seen = await store.seen(keyed, now=now) if keyed else set()
    fresh = [env for event_id, env in unique.items() if event_id not in seen]
    if fresh:
        await producer.publish_many(
            topic=settings.topic_touch_events,
            records=[
                (env.lead_key.encode(), env.to_bytes(), [("event_id", env.event_id.encode())])
                for env in fresh
            ],
        )
        store.remember([i for i in keyed if i not in seen], now=now)
    return Accepted(
        ids=list(unique), accepted=len(fresh), duplicates=repeats_in_request + len(seen)
    )
