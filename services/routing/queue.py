"""Team queues that empty as capacity frees up: a lead no member could take (everyone away or
at capacity) waits in its team's queue, and is handed out, the longest waiting first, as soon
as a member is back or has a free slot (a lead contacted, accepted, closed or moved away)."""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy.orm import Session

from services.routing import queue_repository as queue_repo
from services.routing import repository as repo
from services.routing.domain.config import RoutingConfig
from services.routing.domain.lead_events import Owner
from services.routing.domain.rules import RoutingDecision, pick_member
from services.routing.service import assign

log = logging.getLogger(__name__)

# At most this many queued leads are handed out per team and pass.
HAND_OUT_BATCH = 200


def hand_out_queued(
    session: Session, *, config: RoutingConfig, now: datetime, limit: int = HAND_OUT_BATCH
) -> int:
    """Give queued leads to members who have room, in queue order, round-robin; returns how
    many were handed out. Each becomes a new assignment with its own SLA clock; a queued row
    another worker already handed out is skipped."""
    staffed = [name for name, team in config.teams.items() if team.members]
    handed = 0
    for name in queue_repo.teams_with_queue(session, teams=staffed) if staffed else []:
        team = config.team(name)
        loads = queue_repo.capacity_loads(session, team=name)
        away = repo.away_members(session, team=name, now=now)
        last = repo.last_assigned(session, team=name)
        for waiting in queue_repo.queued(session, team=name, limit=limit):
            member = pick_member(
                members=team.members, open_counts=loads, away=away, last_assigned=last
            )
            if member is None:
                break  # nobody has room: the rest wait, in order
            if not queue_repo.close_queued(session, assignment_id=waiting.id):
                continue
            assign(
                session,
                lead_id=waiting.lead_id,
                decision=RoutingDecision(team=name, rule=waiting.rule),
                config=config,
                qualification=waiting.qualification,
                funnel_stage=waiting.funnel_stage,
                cause_event_id=f"queue:{waiting.id}",
                now=now,
                member=member,
                previous=Owner(name, None),
            )
            loads[member] = loads.get(member, 0) + 1
            last = member
            handed += 1
    if handed:
        log.info("handed out %d queued lead(s)", handed)
    return handed
