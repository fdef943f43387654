"""Scoring's tables and SQL: leads, their identities, touches, stage history and merges."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    delete,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.engine import Row
from sqlalchemy.orm import Session

from services.scoring.privacy_tables import erased_identities, erasures  # noqa: F401
from shared.db import AutoId, TZDateTime, metadata

leads = Table(
    "leads",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("email", String(320), nullable=True, unique=True),
    Column("first_name", String(200)),
    Column("last_name", String(200)),
    Column("job_title", String(300)),
    Column("phone", String(64)),
    Column("company_name", String(300)),
    Column("company_domain", String(255), index=True),
    Column("industry", String(200)),
    Column("employees", Integer),
    Column("annual_revenue", Float),
    Column("country", String(64)),
    Column("score", Integer, nullable=False, default=0),
    Column("qualification", String(20), nullable=False),  # ix_leads_qualification_id covers it
    Column("funnel_stage", String(32), index=True),
    Column("journey_stage", String(32)),
    Column("bant", JSON, nullable=False),
    Column("model_version", String(50), nullable=False),
    Column("last_touch_at", TZDateTime),
    Column("created_at", TZDateTime, nullable=False),
    Column("updated_at", TZDateTime, nullable=False),  # ix_leads_updated_at_id covers it
    Column("account_domain", String(255), index=True),
    Column("qualification_reason", String(500)),
    # When score, qualification and stages were derived for (the decay sweep refreshes the
    # stalest; updated_at moves only when they change).
    Column("scored_at", TZDateTime, index=True),
    # Fit (who the lead is) and engagement (what they did, fading), 0-100 each.
    Column("fit_score", Integer, nullable=False, default=0, server_default="0"),
    Column("engagement_score", Integer, nullable=False, default=0, server_default="0"),
    # The scoring model's persona the lead matches.
    Column("persona", String(64), index=True),
    # Custom traits its sources report (shared.events.LeadIn.traits), merged on each touch.
    Column("traits", JSON),
    Index("ix_leads_score_id", "score", "id"),
    Index("ix_leads_updated_at_id", "updated_at", "id"),
    Index("ix_leads_created_at", "created_at"),
    Index("ix_leads_journey_stage", "journey_stage"),
    Index("ix_leads_qualification_id", "qualification", "id"),
    Index("ix_leads_fit_score_id", "fit_score", "id"),
    Index("ix_leads_engagement_score_id", "engagement_score", "id"),
)

accounts = Table(
    "accounts",
    metadata,
    Column("domain", String(255), primary_key=True),
    Column("name", String(300)),
    Column("member_count", Integer, nullable=False),
    Column("members", JSON, nullable=False),
    Column("bant", JSON, nullable=False),
    Column("funnel_stage", String(32)),
    Column("journey_stage", String(32)),
    Column("decision_maker_engaged", Boolean, nullable=False),
    Column("updated_at", TZDateTime, nullable=False),
)

account_member_overrides = Table(
    "account_member_overrides",
    metadata,
    Column("lead_id", String(36), ForeignKey("leads.id", ondelete="CASCADE"), primary_key=True),
    Column("involvement", String(20)),
    Column("function", String(20)),
    Column("updated_at", TZDateTime, nullable=False),
)

lead_identities = Table(
    "lead_identities",
    metadata,
    Column("kind", String(20), primary_key=True),  # "email" | "anonymous_id"
    Column("value", String(320), primary_key=True),
    Column(
        "lead_id",
        String(36),
        ForeignKey("leads.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    Column("created_at", TZDateTime, nullable=False),
)

touches = Table(
    "touches",
    metadata,
    Column("event_id", String(200), primary_key=True),
    Column("lead_id", String(36), ForeignKey("leads.id", ondelete="CASCADE"), nullable=False),
    Column("type", String(64), nullable=False),
    Column("source", String(64), nullable=False),
    Column("occurred_at", TZDateTime, nullable=False),
    Column("received_at", TZDateTime, nullable=False),
    Column("properties", JSON, nullable=False),
    Index("ix_touches_lead_id_occurred_at", "lead_id", "occurred_at"),
)

stage_history = Table(
    "stage_history",
    metadata,
    Column("id", AutoId, primary_key=True, autoincrement=True),
    Column("lead_id", String(36), ForeignKey("leads.id", ondelete="CASCADE"), nullable=False),
    Column("track", String(20), nullable=False),  # "funnel" | "journey" | "qualification"
    Column("from_stage", String(32)),
    Column("to_stage", String(32)),
    Column("at", TZDateTime, nullable=False),
    Column("cause_event_id", String(200)),
    Column("rule", String(100)),
    Column("seconds_in_previous", Float),
    Index("ix_stage_history_lead_id_at", "lead_id", "at"),
    Index("ix_stage_history_lead_id_track", "lead_id", "track"),
)

lead_states = Table(
    "lead_states",
    metadata,
    Column("lead_id", String(36), ForeignKey("leads.id", ondelete="CASCADE"), primary_key=True),
    Column("state", JSON, nullable=False),  # folding.to_json
    Column("qualified_at", TZDateTime),  # the last qualification move
    # Set when the stored stage history ends in fall-backs due after this time (the newest
    # touch): the next touch re-derives them.
    Column("pending_after", TZDateTime),
    Column("updated_at", TZDateTime, nullable=False),
)

lead_merges = Table(
    "lead_merges",
    metadata,
    Column("id", AutoId, primary_key=True, autoincrement=True),
    Column(
        "into_lead_id",
        String(36),
        ForeignKey("leads.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    Column("from_lead_id", String(36), nullable=False),
    Column("cause_event_id", String(200), nullable=False),
    Column("identities", JSON, nullable=False),
    # Set when the leads were left apart (two people tied by a shared id): why.
    Column("refused", String(200)),
    Column("at", TZDateTime, nullable=False),
)


def get_lead(session: Session, *, lead_id: str, for_update: bool = False) -> Row | None:
    """One lead row, locked for update where the database supports it."""
    query = select(leads).where(leads.c.id == lead_id)
    if for_update:
        query = query.with_for_update()
    return session.execute(query).first()


def insert_lead(session: Session, *, values: dict[str, Any]) -> None:
    """Create a lead row."""
    session.execute(insert(leads).values(**values))


def update_lead(session: Session, *, lead_id: str, values: dict[str, Any]) -> None:
    """Change columns of a lead row."""
    session.execute(update(leads).where(leads.c.id == lead_id).values(**values))


def add_identity(session: Session, *, lead_id: str, kind: str, value: str, at: datetime) -> None:
    """Attach an identity to a lead."""
    session.execute(
        insert(lead_identities).values(kind=kind, value=value, lead_id=lead_id, created_at=at)
    )


def identities_of(session: Session, *, lead_ids: Sequence[str]) -> dict[str, list[Row]]:
    """Every identity of each lead, oldest first."""
    rows = session.execute(
        select(lead_identities)
        .where(lead_identities.c.lead_id.in_(lead_ids))
        .order_by(lead_identities.c.created_at, lead_identities.c.value)
    ).all()
    found: dict[str, list[Row]] = {lead_id: [] for lead_id in lead_ids}
    for row in rows:
        found[row.lead_id].append(row)
    return found


def move_lead_history(session: Session, *, from_lead_id: str, into_lead_id: str) -> list[Row]:
    """Move identities, touches and stage history to another lead; returns the identities moved."""
    moved = session.execute(
        select(lead_identities).where(lead_identities.c.lead_id == from_lead_id)
    ).all()
    for table in (lead_identities, touches, stage_history):
        session.execute(
            update(table).where(table.c.lead_id == from_lead_id).values(lead_id=into_lead_id)
        )
    session.execute(
        update(lead_merges)
        .where(lead_merges.c.into_lead_id == from_lead_id)
        .values(into_lead_id=into_lead_id)
    )
    return moved


def unrecorded_refusals(
    session: Session, *, rows: Sequence[dict[str, Any]]
) -> list[dict[str, Any]]:
    """The refused-merge rows whose pair of leads has no refusal stored yet (one per pair)."""
    into = {r["into_lead_id"] for r in rows}
    stored = {
        (row.into_lead_id, row.from_lead_id)
        for row in session.execute(
            select(lead_merges.c.into_lead_id, lead_merges.c.from_lead_id).where(
                lead_merges.c.into_lead_id.in_(into), lead_merges.c.refused.is_not(None)
            )
        )
    }
    return [r for r in rows if (r["into_lead_id"], r["from_lead_id"]) not in stored]


def delete_lead(session: Session, *, lead_id: str) -> None:
    """Remove a lead row (after its history was moved)."""
    session.execute(delete(leads).where(leads.c.id == lead_id))


def record_merge(
    session: Session,
    *,
    into_lead_id: str,
    from_lead_id: str,
    cause_event_id: str,
    identities: list[dict[str, str]],
    at: datetime,
) -> None:
    """Keep the fact that two leads became one."""
    session.execute(
        insert(lead_merges).values(
            into_lead_id=into_lead_id,
            from_lead_id=from_lead_id,
            cause_event_id=cause_event_id,
            identities=identities,
            at=at,
        )
    )


def touches_of_types(session: Session, *, lead_id: str, types: Sequence[str]) -> list[Row]:
    """A lead's touches of these types in the order they happened."""
    return list(
        session.execute(
            select(touches)
            .where(touches.c.lead_id == lead_id, touches.c.type.in_(list(types)))
            .order_by(touches.c.occurred_at, touches.c.event_id)
        )
    )


def touches_of(session: Session, *, lead_id: str) -> list[Row]:
    """A lead's touches in the order they happened."""
    return session.execute(
        select(touches)
        .where(touches.c.lead_id == lead_id)
        .order_by(touches.c.occurred_at, touches.c.event_id)
    ).all()


def add_transition(session: Session, *, values: dict[str, Any]) -> None:
    """Store one stage or qualification transition."""
    session.execute(insert(stage_history).values(**values))


def list_accounts(session: Session, *, after: str | None, limit: int) -> list[Row]:
    """A page of accounts in domain order."""
    query = select(accounts).order_by(accounts.c.domain).limit(limit)
    if after is not None:
        query = query.where(accounts.c.domain > after)
    return list(session.execute(query))


def stage_history_of(session: Session, *, lead_id: str) -> list[Row]:
    """A lead's transitions in time order."""
    return list(
        session.execute(
            select(stage_history)
            .where(stage_history.c.lead_id == lead_id)
            .order_by(stage_history.c.at, stage_history.c.id)
        )
    )


def account_members(session: Session, *, domain: str) -> list[Row]:
    """Every lead of an account."""
    return list(
        session.execute(select(leads).where(leads.c.account_domain == domain).order_by(leads.c.id))
    )


def set_override(
    session: Session, *, lead_id: str, involvement: str | None, function: str | None, at: datetime
) -> None:
    """Store (replace) a lead's committee override."""
    session.execute(
        delete(account_member_overrides).where(account_member_overrides.c.lead_id == lead_id)
    )
    session.execute(
        insert(account_member_overrides).values(
            lead_id=lead_id, involvement=involvement, function=function, updated_at=at
        )
    )


def get_account(session: Session, *, domain: str) -> Row | None:
    """One account row."""
    return session.execute(select(accounts).where(accounts.c.domain == domain)).first()


def lead_ids_active_since(session: Session, *, since: datetime | None) -> list[str]:
    """Ids of leads with a touch at or after `since` (all leads when None), in id order."""
    query = select(leads.c.id).order_by(leads.c.id)
    if since is not None:
        query = query.where(
            leads.c.id.in_(select(touches.c.lead_id).where(touches.c.occurred_at >= since))
        )
    return list(session.execute(query).scalars())


def merges_into(session: Session, *, lead_id: str) -> list[Row]:
    """The identity merges a lead absorbed, and the ones it refused, oldest first."""
    return list(
        session.execute(
            select(lead_merges)
            .where(lead_merges.c.into_lead_id == lead_id)
            .order_by(lead_merges.c.at, lead_merges.c.id)
        )
    )


def leads_quiet_in_stages(
    session: Session,
    *,
    funnel_stages: Sequence[str],
    journey_stages: Sequence[str],
    quiet_since: datetime,
    limit: int,
) -> list[str]:
    """Leads in one of these stages with no touch since `quiet_since` (oldest first)."""
    in_stage = []
    if funnel_stages:
        in_stage.append(leads.c.funnel_stage.in_(list(funnel_stages)))
    if journey_stages:
        in_stage.append(leads.c.journey_stage.in_(list(journey_stages)))
    if not in_stage:
        return []
    query = (
        select(leads.c.id)
        .where(or_(*in_stage), leads.c.last_touch_at < quiet_since)
        .order_by(leads.c.last_touch_at)
        .limit(limit)
    )
    return list(session.execute(query).scalars())


def leads_scored_before(session: Session, *, before: datetime, limit: int) -> list[str]:
    """Leads with a score to lose (or a recycling to run out) whose stored score was derived
    before `before` (stalest first)."""
    query = (
        select(leads.c.id)
        .where(
            or_(leads.c.score > 0, leads.c.qualification == "recycled"),
            or_(leads.c.scored_at < before, leads.c.scored_at.is_(None)),
        )
        .order_by(leads.c.scored_at.asc().nulls_first())
        .limit(limit)
    )
    return list(session.execute(query).scalars())


def mark_scored(session: Session, *, lead_ids: Sequence[str], at: datetime) -> None:
    """Note that these leads' stored scores were derived at `at` (nothing else changes)."""
    if lead_ids:
        session.execute(update(leads).where(leads.c.id.in_(list(lead_ids))).values(scored_at=at))


def leads_created_between(session: Session, *, since: datetime, until: datetime) -> list[Row]:
    """Leads created in [since, until)."""
    return list(
        session.execute(
            select(leads).where(leads.c.created_at >= since, leads.c.created_at < until)
        )
    )


def funnel_history_of(
    session: Session, *, lead_ids: Sequence[str], tracks: Sequence[str] = ("funnel",)
) -> dict[str, list[Row]]:
    """The transitions of these leads on `tracks` (funnel, journey, qualification, sales), by
    lead, in time order."""
    found: dict[str, list[Row]] = {i: [] for i in lead_ids}
    for start in range(0, len(lead_ids), 500):
        chunk = list(lead_ids[start : start + 500])
        rows = session.execute(
            select(stage_history)
            .where(stage_history.c.lead_id.in_(chunk), stage_history.c.track.in_(list(tracks)))
            .order_by(stage_history.c.at, stage_history.c.id)
        )
        for row in rows:
            found[row.lead_id].append(row)
    return found
