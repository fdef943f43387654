"""Routing's handlers: decide the owning team for a changed lead and record the assignment."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from services.routing import repository as repo
from services.routing.domain.rules import LeadFacts, RoutingDecision, route
from shared.db import mark_processed
from shared.events import LeadChange

CONSUMER = "routing"


def handle_lead_change(
    session: Session, *, change: LeadChange, now: datetime
) -> RoutingDecision | None:
    """Assign the lead to the team that owns its step; None for a duplicate or no change."""
    if not mark_processed(session, consumer=CONSUMER, event_id=change.event_id, at=now):
        return None
    lead = change.lead
    decision = route(
        LeadFacts(
            qualification=lead.get("qualification") or "unqualified",
            funnel_stage=lead.get("funnel_stage"),
            score=int(lead.get("score") or 0),
        )
    )
    current = repo.current_assignment(session, lead_id=change.lead_id)
    if current is not None and current.team == decision.team:
        return None
    repo.assign(
        session,
        lead_id=change.lead_id,
        team=decision.team,
        member=None,
        rule=decision.rule,
        funnel_stage=lead.get("funnel_stage"),
        qualification=lead.get("qualification"),
        cause_event_id=change.event_id,
        at=now,
    )
    return decision


def list_teams(session: Session) -> list[dict[str, object]]:
    """Teams named by the rules, with their rules and how many leads each owns now."""
    from services.routing.domain.rules import DEFAULT_RULES, DEFAULT_TEAM

    counts = repo.open_lead_counts(session)
    teams: dict[str, list[str]] = {}
    for rule in DEFAULT_RULES:
        teams.setdefault(rule.team, []).append(rule.name)
    teams.setdefault(DEFAULT_TEAM.team, []).append(DEFAULT_TEAM.rule)
    return [
        {"team": team, "rules": rules, "open_leads": counts.get(team, 0)}
        for team, rules in teams.items()
    ]
