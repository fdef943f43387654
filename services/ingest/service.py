"""Ingest's handlers: drop repeats within the idempotency window, publish, remember."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from services.ingest import repository as repo
from services.ingest.domain.parsing import encode_envelope
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


# How many ids this process published recently it keeps in memory, so a repeat (a webhook
# redelivered seconds later) is answered without the database.
RECENT_IDS = 100_000

_Lookup = tuple[list[str], datetime, "asyncio.Future[set[str]]"]


class IdempotencyStore:
    """Event ids published within the window: the database, plus what this process published
    lately (the ids not yet written there, and a bounded cache of the newest ones).

    Reads are shared between concurrent requests: while one read runs, the ids of every
    request that arrives queue up and go to the database together in the next one, so a busy
    process makes one round trip per batch of requests, not one per request.
    """

    def __init__(
        self, *, sessions: sessionmaker[Session], window_s: float, recent: int = RECENT_IDS
    ) -> None:
        self._sessions, self.window_s = sessions, window_s
        self._pending: dict[str, datetime] = {}
        self._writing: dict[str, datetime] = {}
        self._recent: OrderedDict[str, datetime] = OrderedDict()
        self._recent_max = recent
        self._writer: asyncio.Task[None] | None = None
        self._lookups: list[_Lookup] = []
        self._reader: asyncio.Task[None] | None = None
        self._read_conn: Connection | None = None
        self._last_prune = 0.0
        self.reads = 0  # database reads made (a figure for tests and benchmarks)

    def _known(self, event_id: str) -> datetime | None:
        return (
            self._pending.get(event_id) or self._writing.get(event_id) or self._recent.get(event_id)
        )

    async def seen(self, event_ids: list[str], *, now: datetime) -> set[str]:
        """Which ids were published within the window before `now`."""
        since = now - timedelta(seconds=self.window_s)
        recent = {i for i in event_ids if (at := self._known(i)) is not None and at >= since}
        rest = [i for i in event_ids if i not in recent]
        if not rest:
            return recent
        future: asyncio.Future[set[str]] = asyncio.get_running_loop().create_future()
        self._lookups.append((rest, since, future))
        if self._reader is None or self._reader.done():
            self._reader = asyncio.get_running_loop().create_task(self._read_queued())
        return recent | await future

    async def _read_queued(self) -> None:
        """Answer every queued lookup with one read, until none is left."""
        while self._lookups:
            lookups, self._lookups = self._lookups, []
            ids = list(dict.fromkeys(i for wanted, _since, _f in lookups for i in wanted))
            earliest = min(since for _w, since, _f in lookups)
            try:
                stored = await asyncio.to_thread(self._read, ids, earliest)
            except SQLAlchemyError as exc:
                error = DatabaseUnavailable(type(exc).__name__)
                for _wanted, _since, future in lookups:
                    if not future.done():
                        future.set_exception(error)
                continue
            for wanted, since, future in lookups:
                if not future.done():  # a request that went away no longer waits
                    future.set_result(
                        {i for i in wanted if (at := stored.get(i)) is not None and at >= since}
                    )

    def remember(self, event_ids: list[str], *, now: datetime) -> None:
        """Note the ids as published; they reach the database within a few milliseconds."""
        recent = self._recent
        for event_id in event_ids:
            self._pending[event_id] = now
            recent[event_id] = now
            recent.move_to_end(event_id)
        while len(recent) > self._recent_max:
            recent.popitem(last=False)
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
        """Write what is pending now and close the read connection (at shutdown, from
        outside the event loop)."""
        pending, self._pending = self._pending, {}
        if pending:
            try:
                self._write(pending)
            except SQLAlchemyError:
                log.warning("could not remember %d published event ids", len(pending))
        self._close_read_connection()

    def _read(self, event_ids: list[str], since: datetime) -> dict[str, datetime]:
        self.reads += 1
        engine = self._sessions.kw.get("bind")
        if isinstance(engine, Engine) and engine.dialect.name == "postgresql":
            return self._read_on_kept_connection(engine, event_ids, since)
        with self._sessions() as session:
            return repo.published_at(session, event_ids=event_ids, since=since)

    def _read_on_kept_connection(
        self, engine: Engine, event_ids: list[str], since: datetime
    ) -> dict[str, datetime]:
        """A read in one round trip: on a connection kept for reads (no check-out ping) in
        autocommit (no BEGIN and ROLLBACK around the SELECT). Each round trip of a worker
        thread waits for the GIL on a busy process, so they count. Reads never overlap (one
        reader task), so one connection serves them all; a broken one is replaced once."""
        for attempt in (1, 2):
            if self._read_conn is None:
                conn = engine.connect().execution_options(isolation_level="AUTOCOMMIT")
                self._read_conn = conn
            try:
                return repo.published_at(self._read_conn, event_ids=event_ids, since=since)
            except DBAPIError as exc:
                self._close_read_connection()
                if attempt == 2 or not exc.connection_invalidated:
                    raise
        raise AssertionError("unreachable")

    def _close_read_connection(self) -> None:
        conn, self._read_conn = self._read_conn, None
        if conn is not None:
            try:
                conn.close()
            except SQLAlchemyError:
                log.debug("the idempotency store's read connection did not close cleanly")

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
    encoded: Mapping[str, bytes] | None = None,
    minted_ids: Collection[str] = (),
    producer: AsyncProducer,
    store: IdempotencyStore,
    settings: Settings,
    now: datetime,
) -> Accepted:
    """Publish the events not seen within the window; returns once the broker acked them all.

    `encoded` holds envelopes already encoded (and checked) by the parser, by event id; the
    others are encoded here, raising UnstorableText before anything is looked up.
    `minted_ids` are ids ingest generated for events that came without one: they cannot be
    repeats, so they skip the idempotency store. Raises PublishError when the broker did not
    acknowledge (the caller answers 503; the ids are not remembered, so a retry publishes
    again and consumers drop what already arrived).
    """
    unique: dict[str, TouchEnvelope] = {}
    data: dict[str, bytes] = {}
    done = encoded or {}
    for env in envelopes:
        if env.event_id not in unique:
            unique[env.event_id] = env
            data[env.event_id] = done.get(env.event_id) or encode_envelope(
                env, max_bytes=settings.max_event_bytes
            )
    repeats_in_request = len(envelopes) - len(unique)
    keyed = [i for i in unique if i not in minted_ids] if settings.dedupe_window_s > 0 else []
    seen = await store.seen(keyed, now=now) if keyed else set()
    fresh = [env for event_id, env in unique.items() if event_id not in seen]
    if fresh:
        await producer.publish_many(
            topic=settings.topic_touch_events,
            records=[
                (env.lead_key.encode(), data[i], [("event_id", i.encode())])
                for i, env in ((env.event_id, env) for env in fresh)
            ],
        )
        store.remember([i for i in keyed if i not in seen], now=now)
    return Accepted(
        ids=list(unique), accepted=len(fresh), duplicates=repeats_in_request + len(seen)
    )
