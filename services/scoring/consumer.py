"""Scoring's Kafka entry: parse a touch envelope, run the handler in one transaction."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from sqlalchemy.orm import Session, sessionmaker

from services.scoring.handlers import score_touches
from services.scoring.service import load_model, rescore_due
from shared import outbox
from shared.config import Settings
from shared.consumer import ConsumerLoop
from shared.db import transaction
from shared.events import TouchEnvelope, utcnow
from shared.faults import PoisonMessage
from shared.kafka import AsyncProducer
from shared.records import Record


def build_consumer(
    *, settings: Settings, sessions: sessionmaker[Session], producer: AsyncProducer
) -> ConsumerLoop:
    """The scoring consumer: touch events in, lead changes out through the outbox."""
    model = load_model(settings.scoring_model)

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
                session, envelopes=envelopes, settings=settings, model=model, now=utcnow()
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
    """One sweep of the stage-regression re-score: re-assess quiet leads, publish their moves."""
    model = load_model(settings.scoring_model)

    def sweep() -> int:
        with transaction(sessions) as session:
            moved = rescore_due(session, settings=settings, model=model, now=utcnow())
        outbox.flush(sessions=sessions, producer=producer)
        return moved

    return sweep
