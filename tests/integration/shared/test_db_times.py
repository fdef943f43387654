"""Timestamps keep their instant on both databases, whatever offset they came with."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from services.ingest.repository import ingest_event_ids, remember, seen_since
from shared.db import make_engine, make_session_factory

pytestmark = pytest.mark.integration


def test_a_time_with_an_offset_reads_back_as_the_same_instant_in_utc(clean_db):
    engine = make_engine(clean_db)
    sessions = make_session_factory(engine)
    tokyo = datetime(2026, 11, 23, 9, 0, tzinfo=timezone(timedelta(hours=9)))
    with sessions.begin() as session:
        remember(session, event_ids=["tz-1"], at=tokyo)
    with sessions() as session:
        stored = session.execute(
            select(ingest_event_ids.c.received_at).where(ingest_event_ids.c.event_id == "tz-1")
        ).scalar_one()
        # Compared in UTC: midnight UTC is the same instant as 09:00 in Tokyo.
        found_after = seen_since(
            session, event_ids=["tz-1"], since=datetime(2026, 11, 22, 23, 59, tzinfo=UTC)
        )
        found_late = seen_since(
            session, event_ids=["tz-1"], since=datetime(2026, 11, 23, 0, 1, tzinfo=UTC)
        )
    engine.dispose()
    assert stored == tokyo and stored.tzinfo is not None
    assert stored.utcoffset() == timedelta(0)
    assert found_after == {"tz-1"} and found_late == set()
