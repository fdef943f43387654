"""Erasing a person and exporting what is held about them (GDPR articles 17 and 15, Shopify's
and HubSpot's privacy webhooks).

An erasure deletes the lead everywhere leadflow stores it: scoring's rows (the lead, its
identities, touches, stage history, state, merges, override), routing's (through its public
module: assignments, actions, feedback, suppression, webhook attempts), lead changes not yet
published, and the account roll-up is redone without the person. What is kept: the SHA-256 of
each erased identity with the time (so touches received before the erasure and still in flight,
or replayed, do not bring the person back) and a record of the erasure with row counts and no
personal data. A tombstone (the lead id as key, no value) is published on the lead-changes
topic so downstream consumers can follow; routing erases again on it.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from services.routing import public as routing_public
from services.scoring import privacy_repository as privacy_repo
from services.scoring import repository as repo
from services.scoring.accounts_rollup import refresh_accounts
from services.scoring.batch_state import identities_of_touch
from services.scoring.domain.model_set import ModelSet
from services.scoring.domain.privacy import erased_before_arrival, identity_hash
from shared import outbox
from shared.config import Settings
from shared.events import ERASURE_REQUESTED, TouchEnvelope

ERASED_EVENT = "lead.erased"
SHOP_REDACT = "shop/redact"


def find_lead(session: Session, *, kind: str, value: str) -> str | None:
    """The id of the lead holding this identity (email, user_id, anonymous_id), if any."""
    return privacy_repo.lead_of_identity(session, kind=kind, value=value)


def erase_lead(
    session: Session,
    *,
    lead_id: str,
    requested_by: str,
    reason: str | None,
    settings: Settings,
    models: ModelSet,
    now: datetime,
) -> dict[str, Any] | None:
    """Erase the lead everywhere and queue its tombstone, in the caller's transaction; returns
    the erasure's record (row counts by table), or None if there is no such lead."""
    row = repo.get_lead(session, lead_id=lead_id, for_update=True)
    if row is None:
        return None
    identities = repo.identities_of(session, lead_ids=[lead_id])[lead_id]
    hashes = [identity_hash(r.kind, r.value) for r in identities]
    if row.email:
        hashes.append(identity_hash("email", row.email))
    removed = privacy_repo.remove_lead(session, lead_id=lead_id)
    removed.update(routing_public.erase_lead(session, lead_id=lead_id))
    topic = settings.topic_lead_changes
    removed["outbox"] = outbox.discard(session, topic=topic, key=lead_id.encode())
    if row.account_domain:
        refresh_accounts(
            session, domains=[row.account_domain], model=models.for_accounts(), now=now
        )
    privacy_repo.remember_erased(session, hashes=hashes, at=now)
    record = {
        "id": str(uuid.uuid4()),
        "lead_id": lead_id,
        "requested_by": requested_by[:100],
        "reason": reason[:200] if reason else None,
        "removed": {table: n for table, n in sorted(removed.items()) if n},
        "at": now,
    }
    privacy_repo.record_erasure(session, values=record)
    outbox.enqueue_many(
        session,
        messages=[
            (
                topic,
                lead_id.encode(),
                None,
                [("event_id", f"erase:{record['id']}".encode()), ("type", ERASED_EVENT.encode())],
            )
        ],
    )
    return record


def export_lead(session: Session, *, lead_id: str) -> dict[str, Any] | None:
    """Everything leadflow holds about the lead, by table, or None if there is no such lead."""
    if repo.get_lead(session, lead_id=lead_id) is None:
        return None
    return {
        "lead_id": lead_id,
        "scoring": privacy_repo.held_about(session, lead_id=lead_id),
        "routing": routing_public.held_about(session, lead_id=lead_id),
    }


def drop_erased(session: Session, *, envelopes: list[TouchEnvelope]) -> list[TouchEnvelope]:
    """The touches that do not belong to a person erased after they were received (one read
    for the whole batch)."""
    named = {e.event_id: identities_of_touch(e) for e in envelopes}
    erased = privacy_repo.erased_at(
        session, hashes=[identity_hash(k, v) for pairs in named.values() for k, v in pairs]
    )
    if not erased:
        return envelopes
    return [
        e
        for e in envelopes
        if not erased_before_arrival(
            identities=named[e.event_id], received_at=e.received_at, erased=erased
        )
    ]


def split_at_erasures(
    envelopes: list[TouchEnvelope],
) -> list[tuple[list[TouchEnvelope], TouchEnvelope | None]]:
    """The batch cut after each erasure request: (the touches before it, the request); the
    last part has no request."""
    parts: list[tuple[list[TouchEnvelope], TouchEnvelope | None]] = []
    current: list[TouchEnvelope] = []
    for envelope in envelopes:
        if envelope.type == ERASURE_REQUESTED:
            parts.append((current, envelope))
            current = []
        else:
            current.append(envelope)
    if current or not parts:
        parts.append((current, None))
    return parts


def erase_requested(
    session: Session,
    *,
    envelope: TouchEnvelope,
    settings: Settings,
    models: ModelSet,
    now: datetime,
) -> list[dict[str, Any]]:
    """Carry out an erasure request a vendor sent (Shopify `customers/redact` and
    `shop/redact`, HubSpot `contact.privacyDeletion`): erase every lead holding one of its
    identities (for a shop, every lead with a touch from it), and remember the identities'
    hashes even when no lead holds them (touches in flight are dropped)."""
    pairs = identities_of_touch(envelope)
    request = str(envelope.properties.get("request") or ERASURE_REQUESTED)[:60]
    lead_ids = dict.fromkeys(
        lead_id
        for kind, value in pairs
        if (lead_id := find_lead(session, kind=kind, value=value)) is not None
    )
    shop = envelope.properties.get("shop_domain")
    if request == SHOP_REDACT and envelope.source == "shopify" and isinstance(shop, str):
        # A shop that uninstalled leadflow: every customer it sent is erased (a person who
        # also came through other sources goes whole; over-erasing is the safe side).
        lead_ids.update(dict.fromkeys(privacy_repo.leads_of_shop(session, shop=shop)))
    records = [
        record
        for lead_id in lead_ids
        if (
            record := erase_lead(
                session,
                lead_id=lead_id,
                requested_by=f"{envelope.source} {request}",
                reason=f"event {envelope.event_id}",
                settings=settings,
                models=models,
                now=now,
            )
        )
        is not None
    ]
    privacy_repo.remember_erased(
        session, hashes=[identity_hash(kind, value) for kind, value in pairs], at=now
    )
    return records
