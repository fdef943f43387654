"""Scoring's handlers: a batch of touches in, or leads to re-assess, in the caller's
transaction. The consumer and the re-score sweep call these; `batch.Batch` does the work."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from services.scoring import repository as repo
from services.scoring.batch import CONSUMER, Batch
from services.scoring.domain.model_set import ModelSet
from services.scoring.privacy import drop_erased, erase_requested, split_at_erasures
from shared.config import Settings
from shared.db import mark_processed_many
from shared.events import LeadChange, TouchEnvelope


def score_touches(
    session: Session,
    *,
    envelopes: list[TouchEnvelope],
    settings: Settings,
    models: ModelSet,
    now: datetime,
) -> list[LeadChange]:
    """Store a batch of touches, re-score their leads and queue the lead changes, in the
    caller's transaction; returns the lead changes (none for repeats and duplicates, nor for
    touches of a person erased after they were received). An erasure request (a vendor's
    privacy webhook) erases its person where it stands in the batch."""
    new = mark_processed_many(
        session, consumer=CONSUMER, event_ids=[e.event_id for e in envelopes], at=now
    )
    todo: list[TouchEnvelope] = []
    for envelope in envelopes:
        if envelope.event_id in new:
            new.discard(envelope.event_id)  # a repeat within the batch counts once
            todo.append(envelope)
    changes: list[LeadChange] = []
    for touches, erasure in split_at_erasures(todo):
        # The common case is one segment and no erasure. After an erasure, the touches that
        # follow are checked again: the ones of the person just erased drop out.
        touches = drop_erased(session, envelopes=touches)
        batch = Batch(session, settings=settings, models=models, now=now)
        batch.load_for(touches)
        for envelope in touches:
            batch.touch(envelope)
        batch.flush()
        changes += batch.changes
        if erasure is not None:
            erase_requested(session, envelope=erasure, settings=settings, models=models, now=now)
    return changes


def handle_touch(
    session: Session,
    *,
    envelope: TouchEnvelope,
    settings: Settings,
    models: ModelSet,
    now: datetime,
) -> LeadChange | None:
    """Store one touch, re-score its lead and queue the lead change; None for a duplicate."""
    changes = score_touches(
        session, envelopes=[envelope], settings=settings, models=models, now=now
    )
    return changes[0] if changes else None


def rescore_leads(
    session: Session,
    *,
    lead_ids: list[str],
    settings: Settings,
    models: ModelSet,
    now: datetime,
) -> int:
    """Re-assess these leads at `now`, queueing a lead change for each that moved; returns how
    many moved. Each one's `scored_at` becomes `now`, moved or not."""
    batch = Batch(session, settings=settings, models=models, now=now)
    batch.load_leads(lead_ids)
    moved = sum(batch.rescore(lead_id) for lead_id in lead_ids)
    batch.flush()
    repo.mark_scored(session, lead_ids=lead_ids, at=now)
    return moved
