"""Every action has a next step: leads that acted (a touch that signals consideration or later)
with no follow-up planned and no owner contact within the owner's SLA, and which touch types
no playbook or rule answers. `leadflow followups` and `GET /v1/ops/followups` report both."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from services.routing import bulk
from services.routing import repository as repo
from services.routing.domain.config import RoutingConfig
from services.routing.domain.coverage import Acted, action_types, touch_coverage, unanswered
from services.routing.domain.rules import sla_seconds
from services.routing.service import FEEDBACK_TOUCHES
from services.scoring import public as scoring
from shared.db import as_utc

# How long a lead that acted may wait for a next step when its owner's team sets no SLA.
DEFAULT_WINDOW_S = 2 * 86400.0


def followup_report(
    session: Session,
    *,
    config: RoutingConfig,
    funnel_signals: Mapping[str, str],
    now: datetime,
    days: int = 30,
    limit: int = 200,
    default_window_s: float = DEFAULT_WINDOW_S,
) -> dict[str, Any]:
    """Leads that acted in the last `days` and got neither a follow-up nor a contact in time
    (the longest waiting first, at most `limit`), and the touch types' coverage."""
    since = now - timedelta(days=days)
    acted = scoring.latest_touches(session, types=sorted(action_types(funnel_signals)), since=since)
    ids = sorted(acted)
    owners = repo.current_owners(session, lead_ids=ids)
    leads = scoring.lead_rows(session, lead_ids=ids)
    followed = bulk.latest_followups(session, lead_ids=ids)
    feedback = bulk.latest_feedback(session, lead_ids=ids)
    found = []
    for lead_id in ids:
        touch_type, touched_at = acted[lead_id]
        owner, lead = owners.get(lead_id), leads.get(lead_id)
        window = None
        if owner is not None and owner.team in config.teams:
            window = sla_seconds(
                config.teams[owner.team],
                qualification=lead.qualification if lead else "unqualified",
                funnel_stage=lead.funnel_stage if lead else None,
            )
        contacts = [
            as_utc(at) for at in (owner.contacted_at if owner else None, feedback.get(lead_id))
        ]
        fact = Acted(
            lead_id=lead_id,
            touch_type=touch_type,
            touched_at=as_utc(touched_at),  # type: ignore[arg-type]
            window_s=window or default_window_s,
            followed_up_at=as_utc(followed.get(lead_id)),
            contacted_at=max((at for at in contacts if at is not None), default=None),
        )
        why = unanswered(fact, now=now)
        if why is not None:
            found.append(
                {
                    "lead_id": lead_id,
                    "email": lead.email if lead else None,
                    "touch_type": touch_type,
                    "touched_at": fact.touched_at.isoformat(),
                    "waiting_s": round((now - fact.touched_at).total_seconds()),
                    "window_s": fact.window_s,
                    "owner": {"team": owner.team, "member": owner.member} if owner else None,
                    "reason": why,
                }
            )
    found.sort(key=lambda f: -f["waiting_s"])
    coverage = touch_coverage(
        seen=scoring.touch_type_counts(session, since=since),
        funnel_signals=funnel_signals,
        config=config,
        ignore=set(FEEDBACK_TOUCHES.values()),
    )
    return {
        "days": days,
        "default_window_s": default_window_s,
        "unanswered": found[:limit],
        "unanswered_total": len(found),
        "coverage": [
            {
                "type": c.type,
                "seen": c.seen,
                "funnel_stage": c.funnel_stage,
                "playbooks": list(c.playbooks),
                "rules": list(c.rules),
                "answered": c.answered,
            }
            for c in coverage
        ],
        "unanswered_types": [c.type for c in coverage if not c.answered],
    }
