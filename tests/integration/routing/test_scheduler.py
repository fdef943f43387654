"""The durable scheduler: concurrent workers never claim the same action, on either database."""

from __future__ import annotations

import threading
import uuid
from datetime import timedelta

import pytest

from services.routing import repository as repo
from shared.db import make_engine, make_session_factory, transaction
from shared.events import utcnow

pytestmark = pytest.mark.integration


def test_concurrent_workers_claim_disjoint_actions(clean_db):
    engine = make_engine(clean_db)
    sessions = make_session_factory(engine)
    now = utcnow()
    with transaction(sessions) as session:
        for i in range(200):
            repo.insert_action(
                session,
                values={
                    "id": str(uuid.uuid4()),
                    "lead_id": f"lead-{i}",
                    "kind": "task",
                    "playbook": "test",
                    "idempotency_key": f"claim:{i}",
                    "status": "scheduled",
                    "due_at": now - timedelta(seconds=1),
                    "attempts": 0,
                    "deferrals": 0,
                    "marketing": False,
                    "payload": {},
                    "created_at": now,
                    "updated_at": now,
                },
            )
    claimed: dict[str, list[str]] = {}
    errors: list[BaseException] = []

    def worker(name: str) -> None:
        mine: list[str] = []
        try:
            while True:
                with transaction(sessions) as session:
                    rows = repo.claim_due(session, now=utcnow(), worker=name, limit=7)
                if not rows:
                    break
                mine += [r.id for r in rows]
        except BaseException as exc:  # surfaced below: a thread's exception is otherwise lost
            errors.append(exc)
        claimed[name] = mine

    threads = [threading.Thread(target=worker, args=(f"w{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    engine.dispose()
    assert errors == []
    every = [a for ids in claimed.values() for a in ids]
    assert len(every) == 200, "some due actions were never claimed"
    assert len(set(every)) == 200, "two workers claimed the same action"


def test_a_stale_claim_goes_back_to_the_schedule_and_a_stale_send_is_uncertain(clean_db, settings):
    from services.routing.delivery import recover_stale_claims

    engine = make_engine(clean_db)
    sessions = make_session_factory(engine)
    long_ago = utcnow() - timedelta(hours=1)
    with transaction(sessions) as session:
        for key, status, kind in (
            ("a", "claimed", "email"),
            ("b", "sending", "email"),
            ("c", "sending", "webhook"),
        ):
            repo.insert_action(
                session,
                values={
                    "id": key,
                    "lead_id": "l",
                    "kind": kind,
                    "playbook": "test",
                    "idempotency_key": f"stale:{key}",
                    "status": status,
                    "due_at": long_ago,
                    "attempts": 0,
                    "deferrals": 0,
                    "marketing": False,
                    "payload": {},
                    "claimed_by": "dead",
                    "claimed_at": long_ago,
                    "created_at": long_ago,
                    "updated_at": long_ago,
                },
            )
    with transaction(sessions) as session:
        assert recover_stale_claims(session, settings=settings, now=utcnow()) == 3
    with sessions() as session:
        status = {k: repo.get_action(session, action_id=k).status for k in "abc"}
    engine.dispose()
    assert status == {"a": "scheduled", "b": "uncertain", "c": "scheduled"}
