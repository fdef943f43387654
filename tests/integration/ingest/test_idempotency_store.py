"""The idempotency store against the real database: concurrent requests share one read, the
newest ids are answered from memory, and an unreachable database fails every waiting request."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import create_engine

from services.ingest import repository as repo
from services.ingest.service import DatabaseUnavailable, IdempotencyStore
from shared.db import make_engine, make_session_factory

pytestmark = pytest.mark.integration

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)


def store_on(database_url: str, *, window_s: float = 3600.0, recent: int = 1000):
    sessions = make_session_factory(make_engine(database_url))
    return sessions, IdempotencyStore(sessions=sessions, window_s=window_s, recent=recent)


def stored(sessions, ids: list[str], *, at: datetime) -> None:  # type: ignore[no-untyped-def]
    with sessions.begin() as session:
        repo.remember(session, event_ids=ids, at=at)


async def test_concurrent_requests_share_database_reads_and_each_gets_its_own_answer(clean_db):
    sessions, store = store_on(clean_db)
    stored(sessions, [f"old-{i}" for i in range(50)], at=NOW - timedelta(minutes=5))
    stored(sessions, ["expired"], at=NOW - timedelta(hours=2))  # outside the 1 h window
    requests = [[f"old-{i}", f"new-{i}", "expired"] for i in range(50)]

    answers = await asyncio.gather(*(store.seen(ids, now=NOW) for ids in requests))

    assert answers == [{f"old-{i}"} for i in range(50)]
    # The first request reads alone; the other 49 queue behind it and share the next read.
    assert 1 <= store.reads <= 3, store.reads


async def test_an_id_published_by_this_process_is_a_repeat_without_a_database_read(clean_db):
    _sessions, store = store_on(clean_db)
    store.remember(["e-1", "e-2"], now=NOW)
    await asyncio.sleep(0.2)  # written to the database by now, and still in memory
    assert await store.seen(["e-1", "e-2"], now=NOW + timedelta(seconds=1)) == {"e-1", "e-2"}
    assert store.reads == 0
    # Outside the window the cached time says it is no repeat; the database agrees.
    later = NOW + timedelta(hours=2)
    assert await store.seen(["e-1"], now=later) == set()
    assert store.reads == 1


async def test_the_memory_keeps_only_the_newest_ids_and_the_database_answers_for_the_rest(
    clean_db,
):
    _sessions, store = store_on(clean_db, recent=2)
    store.remember(["a", "b", "c"], now=NOW)
    await asyncio.sleep(0.2)
    assert await store.seen(["b", "c"], now=NOW) == {"b", "c"}
    assert store.reads == 0
    assert await store.seen(["a"], now=NOW) == {"a"}  # evicted from memory, found stored
    assert store.reads == 1


async def test_every_waiting_request_gets_database_unavailable_when_the_read_fails(tmp_path):
    # A SQLite file whose table was never created: each read fails as a broken database does.
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    create_engine(url).dispose()
    _sessions, store = store_on(url)
    results = await asyncio.gather(
        *(store.seen([f"x-{i}"], now=NOW) for i in range(5)), return_exceptions=True
    )
    assert all(isinstance(r, DatabaseUnavailable) for r in results), results
