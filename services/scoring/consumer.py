"""Scoring's Kafka entry: parse a touch envelope, run the handler in one transaction."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from sqlalchemy.orm import Session, sessionmaker

from services.scoring.handlers import score_touches
from services.scoring.service import load_models, rescore_due, rescore_stale
from shared import outbox
from shared.config import Settings
from shared.consumer import ConsumerLoop
from shared.db import transaction
from shared.events import TouchEnvelope, utcnow
from shared.faults import PoisonMessage
from shared.kafka import AsyncProducer
from shared.records import Record

# The decay sweep re-derives the stalest leads this many at a time, in at most this many
# transactions per sweep (10,000 leads every `scoring_rescore_interval_s`).
STALE_BATCH = 500
STALE_BATCHES_PER_SWEEP = 20


def build_consumer(
    *, settings: Settings, sessions: sessionmaker[Session], producer: AsyncProducer
) -> ConsumerLoop:
    """The scoring consumer: touch events in, lead changes out through the outbox."""
    models = load_models(settings.scoring_model)

    def parse(record: Record) -> TouchEnvelope:
        try:
            return TouchEnvelope.from_bytes(record.value)
        except ValueError as exc:
            # The cause's own text may echo the record's values; the DLQ header shows its
            # fields and rules only (shared.faults.dead_letter_reason).
            raise PoisonMessage("not a touch envelope") from exc

    def handle(record: Record) -> None:
        handle_batch([record])

    def handle_batch(records: Sequence[Record]) -> None:
        # One transaction for the poll batch, the touches decided in offset order (so in order
        # per lead, whose touches share a partition); any failure undoes it all.
        envelopes = [parse(r) for r in records]
        with transaction(sessions) as session:
            score_touches(
                session, envelopes=envelopes, settings=settings, models=models, now=utcnow()
            )

    return ConsumerLoop(
        settings=settings,
        topics=[settings.topic_touch_events],
        group_id=settings.group_scoring,
        handler=handle,
        batch_handler=handle_batch,
        dlq=producer,
        after_batch=lambda: outbox.flush(sessions=sessions, producer=producer),
        name="scoring",
    )


def build_rescorer(
    *, settings: Settings, sessions: sessionmaker[Session], producer: AsyncProducer
) -> Callable[[], int]:
    """One sweep of the re-score: quiet leads whose stage may fall back, then the leads whose
    stored score is stalest (a batch per transaction, up to STALE_BATCHES_PER_SWEEP); their
    moves are published."""
    models = load_models(settings.scoring_model)

    def sweep() -> int:
        now = utcnow()
        with transaction(sessions) as session:
            moved = rescore_due(session, settings=settings, models=models, now=now)
        for _ in range(STALE_BATCHES_PER_SWEEP):
            with transaction(sessions) as session:
                seen, stale_moved = rescore_stale(
                    session, settings=settings, models=models, now=now, limit=STALE_BATCH
                )
            moved += stale_moved
            outbox.flush(sessions=sessions, producer=producer)
            if seen < STALE_BATCH:
                break
        outbox.flush(sessions=sessions, producer=producer)
        return moved

    return sweep
