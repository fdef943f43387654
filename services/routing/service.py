"""Routing's handlers: assign each changed lead to the team (and member) that owns its step,
and plan its follow-up actions (delivering them is `services.routing.delivery`)."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Row
from sqlalchemy.orm import Session

from services.routing import queue_repository as queue_repo
from services.routing import repository as repo
from services.routing import webhooks as lead_webhooks
from services.routing.domain import lead_events as le
from services.routing.domain import playbooks as pb
from services.routing.domain.actions import CANCELLABLE, ActionStatus
from services.routing.domain.config import ConfigError, RoutingConfig, parse_config
from services.routing.domain.rules import (
    LeadFacts,
    RoutingDecision,
    pick_member,
    route,
    sla_seconds,
)
from services.routing.paging import Position, split_page
from services.scoring import public as scoring
from shared import outbox
from shared.config import Settings, read_toml_setting
from shared.db import as_utc
from shared.domain import FunnelStage
from shared.events import LeadIn, TouchEnvelope

log = logging.getLogger(__name__)

CONSUMER = "routing"
BUNDLED_CONFIGS = Path(__file__).resolve().parent / "config"
FEEDBACK_TOUCHES = {
    "contacted": "sales_contacted",
    "accepted": "sales_accepted",
    "rejected": "sales_rejected",
    "disqualified": "sales_disqualified",
    "won": "closed_won",
    "lost": "closed_lost",
}


@lru_cache(maxsize=8)
def load_config(spec: str, abandoned_cart_delay_s: float | None = None) -> RoutingConfig:
    """The routing config named by a setting (a bundled name or a TOML path), with the
    abandoned-cart delay from the environment when given (it wins for every source). Raises
    ConfigError."""
    try:
        path, text = read_toml_setting(spec, bundled=BUNDLED_CONFIGS)
    except OSError as exc:
        raise ConfigError(spec, "file", str(exc)) from None
    config = parse_config(text, source=str(path))
    if abandoned_cart_delay_s is not None:
        cart = config.playbooks.abandoned_cart.model_copy(
            update={"delay_s": abandoned_cart_delay_s, "delay_by_source": {}}
        )
        playbooks = config.playbooks.model_copy(update={"abandoned_cart": cart})
        config = config.model_copy(update={"playbooks": playbooks})
    return config


def config_for(settings: Settings) -> RoutingConfig:
    """The routing config these settings select."""
    return load_config(settings.routing_config, settings.abandoned_cart_delay)


def touches_of(session: Session, *, lead_id: str, types: set[str]) -> list[pb.Touch]:
    # Routing reads scoring's touch history (one schema; scoring owns the table).
    return [
        pb.Touch(r.event_id, r.type, as_utc(r.occurred_at), r.properties or {})  # type: ignore[arg-type]
        for r in scoring.touches_of_types(session, lead_id=lead_id, types=sorted(types))
    ]


def as_action(row: Row) -> pb.Action:
    """A stored action as playbooks see it."""
    return pb.Action(
        id=row.id,
        kind=row.kind,
        playbook=row.playbook,
        idempotency_key=row.idempotency_key,
        status=row.status,
        due_at=as_utc(row.due_at),  # type: ignore[arg-type]
        payload=row.payload or {},
    )


def lead_state(session: Session, *, lead_id: str) -> pb.LeadState | None:
    row = scoring.get_lead(session, lead_id=lead_id)
    if row is None:
        return None
    owner = repo.current_assignment(session, lead_id=lead_id)
    return pb.LeadState(
        lead_id=lead_id,
        email=row.email,
        first_name=row.first_name,
        qualification=row.qualification,
        funnel_stage=row.funnel_stage,
        owner_team=owner.team if owner else None,
        owner_member=owner.member if owner else None,
        unsubscribed=repo.is_suppressed(session, lead_id=lead_id),
        consent=scoring.consents_of(session, lead_ids=[lead_id]).get(lead_id, {}),
    )


def assign(
    session: Session,
    *,
    lead_id: str,
    decision: RoutingDecision,
    config: RoutingConfig,
    qualification: str | None,
    funnel_stage: str | None,
    cause_event_id: str,
    now: datetime,
    exclude: Sequence[str] = (),
    member: str | None = None,
    previous: le.Owner | None = None,
) -> Row:
    """Assign the lead to the team: to `member` when given, else round-robin to an available
    member under capacity (else the team queue), with the SLA clock started, and plan the
    `lead.owner_assigned` webhooks; returns the new assignment. `previous`: the owner before,
    when its assignment is closed already (a queue hand-out)."""
    if previous is None:
        current = repo.current_assignment(session, lead_id=lead_id)
        previous = le.Owner(current.team, current.member) if current is not None else None
    team = config.team(decision.team)
    if member is None:
        member = pick_member(
            members=team.members,
            open_counts=queue_repo.capacity_loads(session, team=decision.team),
            away={*repo.away_members(session, team=decision.team, now=now), *exclude},
            last_assigned=repo.last_assigned(session, team=decision.team),
        )
    if member is not None:
        repo.set_last_assigned(session, team=decision.team, member=member)
    sla = sla_seconds(team, qualification=qualification or "unqualified", funnel_stage=funnel_stage)
    sla_due = now + timedelta(seconds=sla) if sla else None
    assignment_id = repo.assign(
        session,
        lead_id=lead_id,
        team=decision.team,
        member=member,
        rule=decision.rule,
        funnel_stage=funnel_stage,
        qualification=qualification,
        cause_event_id=cause_event_id,
        at=now,
        sla_due_at=sla_due,
    )
    if sla_due is not None:
        store_action(
            session,
            lead_id=lead_id,
            action=pb.NewAction(
                kind="sla",
                playbook="sla",
                idempotency_key=f"sla:{assignment_id}",
                due_at=sla_due,
                payload={"assignment_id": assignment_id, "sla_s": sla},
            ),
            team=decision.team,
            member=member,
            now=now,
        )
    for action in lead_webhooks.owner_assigned_actions(
        session,
        lead_id=lead_id,
        owner=le.Owner(decision.team, member),
        previous=previous,
        rule=decision.rule,
        cause_event_id=cause_event_id,
        now=now,
    ):
        store_action(
            session, lead_id=lead_id, action=action, team=decision.team, member=member, now=now
        )
    row = repo.get_assignment(session, assignment_id=assignment_id)
    assert row is not None
    return row


def new_action_row(
    *, lead_id: str, action: pb.NewAction, team: str | None, member: str | None, now: datetime
) -> dict[str, Any]:
    """The stored row of a newly planned action (every column, so rows batch together)."""
    return {
        "id": str(uuid.uuid4()),
        "lead_id": lead_id,
        "kind": action.kind,
        "playbook": action.playbook,
        "idempotency_key": action.idempotency_key,
        "status": ActionStatus.SCHEDULED,
        "due_at": action.due_at,
        "attempts": 0,
        "deferrals": 0,
        "marketing": action.marketing,
        "payload": action.payload,
        "team": team,
        "member": member,
        "last_error": None,
        "cancel_reason": None,
        "claimed_by": None,
        "claimed_at": None,
        "sent_at": None,
        "created_at": now,
        "updated_at": now,
    }


def store_action(
    session: Session,
    *,
    lead_id: str,
    action: pb.NewAction,
    team: str | None,
    member: str | None,
    now: datetime,
) -> bool:
    return repo.insert_action(
        session,
        values=new_action_row(lead_id=lead_id, action=action, team=team, member=member, now=now),
    )


# --- delivery --------------------------------------------------------------------------------


def record_feedback(
    session: Session,
    *,
    lead_id: str,
    kind: str,
    reason: str | None,
    by: str,
    settings: Settings,
    now: datetime,
) -> bool:
    """Store a sales tool's feedback and queue it as a touch for scoring; False if no lead."""
    lead = scoring.get_lead(session, lead_id=lead_id)
    if lead is None:
        return False
    repo.add_feedback(session, lead_id=lead_id, kind=kind, reason=reason, by=by, at=now)
    current = repo.current_assignment(session, lead_id=lead_id)
    if kind in ("contacted", "accepted") and current is not None and current.contacted_at is None:
        repo.update_assignment(session, assignment_id=current.id, values={"contacted_at": now})
    identities = scoring.identities_of(session, lead_ids=[lead_id])[lead_id]
    ids = {i.kind: i.value for i in identities}
    who = LeadIn(
        email=lead.email,
        anonymous_id=None if lead.email else ids.get("anonymous_id"),
        user_id=None if lead.email else ids.get("user_id"),
    )
    envelope = TouchEnvelope(
        event_id=f"feedback:{uuid.uuid4()}",
        type=FEEDBACK_TOUCHES[kind],
        occurred_at=now,
        received_at=now,
        source="crm",
        lead_key=f"email:{lead.email}" if lead.email else f"lead:{lead_id}",
        lead=who,
        properties={"feedback": kind, "reason": reason, "by": by},
    )
    # Through the outbox, so the feedback and its touch are stored or lost together.
    outbox.enqueue(
        session,
        topic=settings.topic_touch_events,
        key=envelope.lead_key.encode(),
        value=envelope.to_bytes(),
        headers=[("event_id", envelope.event_id.encode())],
    )
    return True


def unsubscribe(session: Session, *, lead_id: str, now: datetime) -> bool:
    """Stop marketing email to a lead; False if there is no such lead."""
    if scoring.get_lead(session, lead_id=lead_id) is None:
        return False
    repo.suppress(session, lead_id=lead_id, reason="unsubscribe link", at=now)
    return True


def _iso(value: datetime | None) -> str | None:
    value = as_utc(value)
    return value.isoformat() if value else None


def list_teams(session: Session, *, config: RoutingConfig, now: datetime) -> list[dict[str, Any]]:
    """Every configured team with its members (capacity, load, availability), SLAs, rules,
    open leads and SLA breaches."""
    counts = repo.open_lead_counts(session)
    queued = queue_repo.queued_counts(session)
    breaches = repo.sla_breach_counts(session)
    availability = repo.availability(session)
    result = []
    for name, team in config.teams.items():
        load = repo.member_open_counts(session, team=name)
        counted = queue_repo.capacity_loads(session, team=name)
        away = repo.away_members(session, team=name, now=now)
        result.append(
            {
                "team": name,
                "rules": [r.name for r in config.rules if r.team == name]
                + (["default"] if name == config.default_team else []),
                "open_leads": counts.get(name, 0),
                "queued": queued.get(name, 0),
                "sla_breaches": breaches.get(name, 0),
                "sla": {k: v for k, v in team.sla.items()},
                "escalation": team.escalation,
                "webhook_url": team.webhook_url,
                "members": [
                    {
                        "id": m.id,
                        "name": m.name,
                        "capacity": m.capacity,
                        "open_leads": load.get(m.id, 0),
                        # Owned and not contacted yet: what counts against `capacity`.
                        "load": counted.get(m.id, 0),
                        "away": m.id in away,
                        "away_until": _iso(
                            availability[(name, m.id)].away_until
                            if (name, m.id) in availability and m.id in away
                            else None
                        ),
                    }
                    for m in team.members
                ],
            }
        )
    return result


def team_queue(
    session: Session, *, team: str, limit: int, after: Position | None = None
) -> tuple[list[dict[str, Any]], Position | None]:
    """A page of the team's current leads, the soonest SLA first, after `after`; and the
    position it ends at (None on the last page)."""
    fetched = repo.team_queue(session, team=team, limit=limit + 1, after=after)
    rows, last = split_page(fetched, limit=limit, key="sla_due_at")
    leads = {r.lead_id: scoring.get_lead(session, lead_id=r.lead_id) for r in rows}
    items = [
        {
            "lead_id": r.lead_id,
            "email": leads[r.lead_id].email if leads.get(r.lead_id) else None,
            "qualification": r.qualification,
            "funnel_stage": r.funnel_stage,
            "member": r.member,
            "assigned_at": _iso(r.assigned_at),
            "sla_due_at": _iso(r.sla_due_at),
            "contacted_at": _iso(r.contacted_at),
            "sla_breached": r.sla_breached_at is not None,
        }
        for r in rows
    ]
    return items, last


def set_availability(
    session: Session,
    *,
    config: RoutingConfig,
    team: str,
    member: str,
    away: bool,
    until: datetime | None,
    now: datetime,
) -> bool:
    """Mark a configured member away or back; False if there is no such member."""
    if team not in config.teams or member not in {m.id for m in config.teams[team].members}:
        return False
    repo.set_availability(session, team=team, member=member, away=away, until=until, at=now)
    return True


def action_view(row: Row) -> dict[str, Any]:
    """An action as the API shows it."""
    return {
        "id": row.id,
        "lead_id": row.lead_id,
        "kind": row.kind,
        "playbook": row.playbook,
        "status": row.status,
        "due_at": _iso(row.due_at),
        "attempts": row.attempts,
        "deferrals": row.deferrals,
        "team": row.team,
        "member": row.member,
        "payload": row.payload,
        "last_error": row.last_error,
        "cancel_reason": row.cancel_reason,
        "sent_at": _iso(row.sent_at),
        "created_at": _iso(row.created_at),
    }


def step_owners(*, config: RoutingConfig) -> dict[str, str]:
    """The team owning each funnel step: where the rules send a lead at that step when nothing
    else is known of it (unqualified, no firmographics)."""
    return {
        stage.value: route(
            LeadFacts(qualification="unqualified", funnel_stage=stage.value, score=0), config
        ).team
        for stage in FunnelStage
    }


def sla_breaches_by_stage(session: Session, *, lead_ids: Sequence[str]) -> dict[str, int]:
    """Missed SLAs of these leads' assignments, by the funnel step the lead was at when
    assigned."""
    return queue_repo.sla_breaches_by_stage(session, lead_ids=lead_ids)


def open_tasks(
    session: Session, *, team: str, member: str | None, limit: int, after: Position | None = None
) -> tuple[list[dict[str, Any]], Position | None]:
    """A page of the team's tasks not closed yet (scheduled or open), the oldest first, after
    `after`; and the position it ends at (None on the last page)."""
    fetched = repo.open_tasks(session, team=team, member=member, limit=limit + 1, after=after)
    rows, last = split_page(fetched, limit=limit, key="created_at")
    return [action_view(r) for r in rows], last


def cancel_action(session: Session, *, action_id: str, now: datetime) -> dict[str, Any] | None:
    """Cancel a scheduled action (or close an open task); None if there is no such action.
    Raises ValueError if it already went out."""
    row = repo.get_action(session, action_id=action_id)
    if row is None:
        return None
    if row.status not in CANCELLABLE:
        raise ValueError(f"the action is {row.status} and can no longer be cancelled")
    repo.update_action(
        session,
        action_id=action_id,
        values={
            "status": ActionStatus.CANCELLED,
            "cancel_reason": "cancelled through the API",
            "updated_at": now,
        },
    )
    updated = repo.get_action(session, action_id=action_id)
    assert updated is not None
    return action_view(updated)
