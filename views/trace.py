"""`/v1/leads/{id}/trace`: which scoring, routing and playbook rules matched a lead, which did
not, and why."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Row
from sqlalchemy.orm import Session

from services.routing.public import (
    TRIGGERS,
    RoutingConfig,
    actions_of_lead,
    explain_rules,
    facts_of,
    is_suppressed,
    why_not_fired,
)
from services.scoring import repository as repo
from services.scoring.domain.model import Touch
from services.scoring.domain.model_set import ModelSet
from services.scoring.domain.trace import trace_scoring
from services.scoring.shapes import persona_of, touch_of
from shared.events import LeadSnapshot
from views.leads import lead_view


def trace_lead(
    session: Session,
    *,
    lead_id: str,
    models: ModelSet,
    routing: RoutingConfig,
    now: datetime,
) -> dict[str, Any] | None:
    """Which scoring, routing and playbook rules matched a lead, which did not, and why (its
    scoring under the model that scores it now)."""
    row = repo.get_lead(session, lead_id=lead_id)
    if row is None:
        return None
    model = models.for_lead(persona_of(row))
    history = [touch_of(r) for r in repo.touches_of(session, lead_id=lead_id)]
    view = lead_view(session, row=row)
    routing_rules = [
        {"rule": name, "matched": matched, "reason": reason}
        for name, matched, reason in explain_rules(
            facts_of(LeadSnapshot.model_validate(view)), routing
        )
    ]
    first = next((r["rule"] for r in routing_rules if r["matched"]), None)
    return {
        "lead_id": lead_id,
        "model_version": model.version,
        "scoring": trace_scoring(model=model, persona=persona_of(row), touches=history, now=now),
        "routing": {
            "rules": routing_rules,
            "decision": first or f"default ({routing.default_team})",
            "owner": view["owner"],
        },
        "playbooks": _trace_playbooks(session, row=row, history=history, routing=routing),
    }


def _trace_playbooks(
    session: Session, *, row: Row, history: Sequence[Touch], routing: RoutingConfig
) -> list[dict[str, Any]]:
    """What each playbook did for the lead, and for one that did nothing, why not."""
    actions = actions_of_lead(session, lead_id=row.id)
    suppressed = is_suppressed(session, lead_id=row.id)
    result = []
    for trigger in TRIGGERS:
        name = trigger.playbook
        mine = [a for a in actions if a.playbook == name]
        if mine:
            for a in mine:
                result.append(
                    {
                        "playbook": name,
                        "fired": True,
                        "action_id": a.id,
                        "status": a.status,
                        "reason": a.cancel_reason or a.last_error or f"action {a.status}",
                    }
                )
            continue
        why = why_not_fired(
            trigger,
            config=routing.playbooks,
            qualification=row.qualification,
            email=row.email,
            history=history,
            suppressed=suppressed,
        )
        result.append({"playbook": name, "fired": False, "reason": why})
    return result
