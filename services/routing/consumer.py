"""Routing's Kafka entry: parse a lead change, run the handler in one transaction."""

from __future__ import annotations

from sqlalchemy.orm import Session, sessionmaker

from services.routing.service import handle_lead_change
from shared.config import Settings
from shared.db import transaction
from shared.events import LeadChange, utcnow
from shared.kafka import AsyncProducer, ConsumerLoop, PoisonMessage, Record


def build_consumer(
    *, settings: Settings, sessions: sessionmaker[Session], producer: AsyncProducer
) -> ConsumerLoop:
    """The routing consumer: lead changes in, assignments stored."""

    def handle(record: Record) -> None:
        try:
            change = LeadChange.from_bytes(record.value)
        except ValueError as exc:
            raise PoisonMessage(f"not a lead change: {exc}") from exc
        with transaction(sessions) as session:
            handle_lead_change(session, change=change, now=utcnow())

    return ConsumerLoop(
        settings=settings,
        topics=[settings.topic_lead_changes],
        group_id=settings.group_routing,
        handler=handle,
        dlq=producer,
        name="routing",
    )
