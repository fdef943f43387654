"""Routing's Kafka entry: parse a poll batch of lead changes, handle it in one transaction."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Callable, Sequence

from sqlalchemy.orm import Session, sessionmaker

from services.routing.batch import handle_changes
from services.routing.delivery import Delivery, DeliveryOutages, deliver_due
from services.routing.privacy import follow_tombstone
from services.routing.queue import hand_out_queued
from services.routing.service import config_for
from shared import outbox
from shared.config import Settings
from shared.consumer import ConsumerLoop
from shared.db import transaction
from shared.events import LeadChange, utcnow
from shared.faults import Outage, PoisonMessage
from shared.kafka import AsyncProducer
from shared.records import Record


def build_consumer(
    *, settings: Settings, sessions: sessionmaker[Session], producer: AsyncProducer
) -> ConsumerLoop:
    """The routing consumer: lead changes in, assignments and planned actions stored."""
    config = config_for(settings)

    def parse(record: Record) -> LeadChange:
        try:
            return LeadChange.from_bytes(record.value)
        except ValueError as exc:
            # The cause's own text may echo the record's values; the DLQ header shows its
            # fields and rules only (shared.faults.dead_letter_reason).
            raise PoisonMessage("not a lead change") from exc

    def handle(record: Record) -> None:
        handle_batch([record])

    def handle_batch(records: Sequence[Record]) -> None:
        # The poll batch is one unit of work: set-based loads, decisions in offset order in
        # memory, bulk writes, one commit; any failure undoes it all.
        # A record with no value is a tombstone: scoring erased that lead (see
        # services/scoring/privacy.py); erase what routing holds of it too, after the batch's
        # changes (an erasure is the last word on a lead).
        erased = [
            (r.key.decode(), (r.header("event_id") or f"tombstone:{r.where}".encode()).decode())
            for r in records
            if not r.value and r.key
        ]
        changes = [parse(r) for r in records if r.value]
        now = utcnow()
        with transaction(sessions) as session:
            handle_changes(session, changes=changes, config=config, now=now)
            for lead_id, erasure_id in erased:
                follow_tombstone(session, lead_id=lead_id, erasure_id=erasure_id, now=now)

    return ConsumerLoop(
        settings=settings,
        topics=[settings.topic_lead_changes],
        group_id=settings.group_routing,
        handler=handle,
        batch_handler=handle_batch,
        dlq=producer,
        name="routing",
    )


def build_deliverer(
    *,
    settings: Settings,
    sessions: sessionmaker[Session],
    producer: AsyncProducer,
    outages: list[Outage],
) -> Callable[[], int]:
    """One pass of the action worker: claim due actions, check, send, record; then publish
    what the API queued in the outbox (sales feedback becomes touches for scoring). The
    trackers of unreachable destinations are added to `outages` as they are first used."""
    config = config_for(settings)
    delivery = Delivery.from_settings(settings)
    destinations = DeliveryOutages(settings=settings, registry=outages)
    worker = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"

    def run_once() -> int:
        delivered = deliver_due(
            sessions=sessions,
            settings=settings,
            config=config,
            delivery=delivery,
            outages=destinations,
            worker=worker,
            now=utcnow,
        )
        with transaction(sessions) as session:
            handed = hand_out_queued(session, config=config, now=utcnow())
        outbox.flush(sessions=sessions, producer=producer)
        return delivered + handed

    return run_once
