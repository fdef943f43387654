"""Scoring's SQL for erasing a person: what is held about a lead, its removal, and the hashes
of erased identities that keep touches already in flight from bringing the person back."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert, or_, select
from sqlalchemy.orm import Session

from services.scoring.domain.privacy import identity_hash
from services.scoring.privacy_tables import erased_identities, erasures, lead_consents
from services.scoring.repository import (
    account_member_overrides,
    lead_identities,
    lead_merges,
    lead_states,
    leads,
    stage_history,
    touches,
)
from shared.db import among, dialect_insert, processed_events

_HISTORY = (
    touches,
    stage_history,
    lead_states,
    account_member_overrides,
    lead_consents,
    lead_identities,
)


def held_about(session: Session, *, lead_id: str) -> dict[str, list[dict[str, Any]]]:
    """Every row scoring holds about the lead, by table (the lead row under `leads`)."""
    found: dict[str, list[dict[str, Any]]] = {}
    for table in (leads, lead_identities, touches, stage_history, lead_states, lead_consents):
        column = table.c.id if table is leads else table.c.lead_id
        found[table.name] = [
            dict(r._mapping) for r in session.execute(select(table).where(column == lead_id))
        ]
    found["account_member_overrides"] = [
        dict(r._mapping)
        for r in session.execute(
            select(account_member_overrides).where(account_member_overrides.c.lead_id == lead_id)
        )
    ]
    found["lead_merges"] = [
        dict(r._mapping)
        for r in session.execute(
            select(lead_merges).where(
                or_(lead_merges.c.into_lead_id == lead_id, lead_merges.c.from_lead_id == lead_id)
            )
        )
    ]
    return found


def lead_of_identity(session: Session, *, kind: str, value: str) -> str | None:
    """The id of the lead holding this identity, if any."""
    return session.scalar(
        select(lead_identities.c.lead_id).where(
            lead_identities.c.kind == kind, lead_identities.c.value == value
        )
    )


def leads_of_shop(session: Session, *, shop: str) -> list[str]:
    """The leads with a touch from this Shopify shop (`properties.shop_domain`)."""
    return list(
        session.scalars(
            select(touches.c.lead_id)
            .where(
                touches.c.source == "shopify",
                touches.c.properties["shop_domain"].as_string() == shop,
            )
            .distinct()
        )
    )


def remove_lead(session: Session, *, lead_id: str) -> dict[str, int]:
    """Delete every row scoring holds about the lead, and keep only a hash of its touches' ids
    in the deduplication rows; returns how many rows went (or were hashed), by table."""
    event_ids = list(
        session.scalars(select(touches.c.event_id).where(touches.c.lead_id == lead_id))
    )
    removed: dict[str, int] = {"processed_events": _hash_dedupe_rows(session, event_ids=event_ids)}
    for table in _HISTORY:
        removed[table.name] = session.execute(
            delete(table).where(table.c.lead_id == lead_id)
        ).rowcount
    removed["lead_merges"] = session.execute(
        delete(lead_merges).where(
            or_(lead_merges.c.into_lead_id == lead_id, lead_merges.c.from_lead_id == lead_id)
        )
    ).rowcount
    removed["leads"] = session.execute(delete(leads).where(leads.c.id == lead_id)).rowcount
    return removed


def _hash_dedupe_rows(session: Session, *, event_ids: Sequence[str]) -> int:
    """Replace these event ids in every consumer's deduplication rows by their SHA-256."""
    if not event_ids:
        return 0
    rows = session.execute(
        select(processed_events).where(among(session, processed_events.c.event_id, event_ids))
    ).all()
    if rows:
        session.execute(
            delete(processed_events).where(
                among(session, processed_events.c.event_id, [r.event_id for r in rows])
            )
        )
        session.execute(
            insert(processed_events),
            [
                {
                    "consumer": r.consumer,
                    "event_id": "sha256:" + identity_hash("event", r.event_id),
                    "processed_at": r.processed_at,
                }
                for r in rows
            ],
        )
    return len(rows)


def remember_erased(session: Session, *, hashes: Sequence[str], at: datetime) -> None:
    """Keep the hashes of the erased identities (a repeat erasure moves their time on)."""
    known = set(
        session.scalars(
            select(erased_identities.c.hash).where(erased_identities.c.hash.in_(list(hashes)))
        )
    )
    if known:
        session.execute(delete(erased_identities).where(erased_identities.c.hash.in_(known)))
    if hashes:
        session.execute(
            insert(erased_identities), [{"hash": h, "erased_at": at} for h in set(hashes)]
        )


def erased_at(session: Session, *, hashes: Sequence[str]) -> dict[str, datetime]:
    """When each of these identity hashes was erased, for those that were."""
    if not hashes:
        return {}
    rows = session.execute(
        select(erased_identities.c.hash, erased_identities.c.erased_at).where(
            among(session, erased_identities.c.hash, list(dict.fromkeys(hashes)))
        )
    )
    return {row.hash: row.erased_at for row in rows}


def record_erasure(session: Session, *, values: dict[str, Any]) -> None:
    """Store the record of one erasure."""
    session.execute(insert(erasures).values(**values))


def erasures_of(session: Session, *, lead_id: str) -> list[dict[str, Any]]:
    """The erasures recorded for a lead id, oldest first."""
    rows = session.execute(
        select(erasures).where(erasures.c.lead_id == lead_id).order_by(erasures.c.at)
    )
    return [dict(r._mapping) for r in rows]


def save_consents(session: Session, *, rows: Sequence[dict[str, Any]]) -> None:
    """Store consent statements, per lead and purpose the newest (by `at`) winning, also over
    what is stored."""
    newest: dict[tuple[str, str], dict[str, Any]] = {}
    for row in rows:
        key = (row["lead_id"], row["purpose"])
        if key not in newest or row["at"] >= newest[key]["at"]:
            newest[key] = row
    if not newest:
        return
    statement = dialect_insert(session, lead_consents)
    statement = statement.on_conflict_do_update(
        index_elements=["lead_id", "purpose"],
        set_={c: statement.excluded[c] for c in ("granted", "source", "event_id", "at")},
        where=statement.excluded.at >= lead_consents.c.at,
    )
    session.execute(statement, list(newest.values()))


def move_consents(session: Session, *, from_lead_id: str, into_lead_id: str) -> None:
    """Give a merged lead's consent statements to the lead it merged into (newest wins)."""
    rows = [
        {**r._mapping, "lead_id": into_lead_id}
        for r in session.execute(
            select(lead_consents).where(lead_consents.c.lead_id == from_lead_id)
        )
    ]
    session.execute(delete(lead_consents).where(lead_consents.c.lead_id == from_lead_id))
    save_consents(session, rows=rows)


def consents_of(session: Session, *, lead_ids: Sequence[str]) -> dict[str, dict[str, bool]]:
    """Each lead's consent per purpose, for the leads that stated any."""
    found: dict[str, dict[str, bool]] = {}
    rows = session.execute(
        select(lead_consents.c.lead_id, lead_consents.c.purpose, lead_consents.c.granted).where(
            among(session, lead_consents.c.lead_id, list(lead_ids))
        )
    )
    for row in rows:
        found.setdefault(row.lead_id, {})[row.purpose] = row.granted
    return found
