"""Ingest's handlers: turn validated events into envelopes and put them on Kafka."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from shared.config import Settings
from shared.events import TouchEnvelope, TouchEventIn
from shared.kafka import AsyncProducer


@dataclass(frozen=True)
class Accepted:
    """What the broker acknowledged."""

    ids: list[str]
    duplicates: int = 0


async def accept_events(
    *,
    events: Sequence[TouchEventIn],
    producer: AsyncProducer,
    settings: Settings,
    received_at: datetime,
) -> Accepted:
    """Publish the events keyed by lead; returns only after the broker acknowledged all."""
    envelopes = [TouchEnvelope.from_native(e, received_at=received_at) for e in events]
    await producer.publish_many(
        topic=settings.topic_touch_events,
        records=[
            (env.lead_key.encode(), env.to_bytes(), [("event_id", env.event_id.encode())])
            for env in envelopes
        ],
    )
    return Accepted(ids=[env.event_id for env in envelopes])
