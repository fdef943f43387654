"""A lead's timeline: its touches, stage and qualification moves, merges (scoring's) and its
assignments, actions and feedback (routing's), in time order, a page at a time."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from services.routing.public import actions_of_lead, assignments_of, feedback_of
from services.scoring import repository as repo
from services.scoring.shapes import iso
from shared.db import as_utc


def timeline(
    session: Session, *, lead_id: str, after: tuple[str, int, str] | None, limit: int
) -> tuple[list[dict[str, Any]], tuple[str, int, str] | None] | None:
    """A lead's touches, stage and qualification moves, merges and assignments in time order,
    one page after the position `after`; None if there is no such lead.

    Positions are (time, kind rank, id): stable while new entries arrive, so a page never
    repeats or skips an entry that was already there.
    """
    if repo.get_lead(session, lead_id=lead_id) is None:
        return None
    entries: list[tuple[tuple[str, int, str], dict[str, Any]]] = []

    def add(at: datetime | None, rank: int, key: str, entry: dict[str, Any]) -> None:
        when = as_utc(at)
        iso = when.isoformat() if when else ""
        entries.append(((iso, rank, key), {"at": iso, **entry}))

    for t in repo.touches_of(session, lead_id=lead_id):
        add(
            t.occurred_at,
            0,
            t.event_id,
            {
                "kind": "touch",
                "event_id": t.event_id,
                "type": t.type,
                "source": t.source,
                "properties": t.properties or {},
            },
        )
    for m in repo.merges_into(session, lead_id=lead_id):
        merge = {
            "kind": "identity_merge_refused" if m.refused else "identity_merge",
            "from_lead_id": m.from_lead_id,
            "cause_event_id": m.cause_event_id,
            "identities": m.identities,
        }
        add(m.at, 1, str(m.id), {**merge, "reason": m.refused} if m.refused else merge)
    for h in repo.stage_history_of(session, lead_id=lead_id):
        kind = "qualification_change" if h.track == "qualification" else "stage_transition"
        add(
            h.at,
            2,
            f"{h.track}:{h.id}",
            {
                "kind": kind,
                "track": h.track,
                "from": h.from_stage,
                "to": h.to_stage,
                "cause_event_id": h.cause_event_id,
                "rule": h.rule,
                "seconds_in_previous": h.seconds_in_previous,
            },
        )
    for act in actions_of_lead(session, lead_id=lead_id):
        add(
            act.created_at,
            4,
            act.id,
            {
                "kind": "action",
                "action_id": act.id,
                "action_kind": act.kind,
                "playbook": act.playbook,
                "status": act.status,
                "due_at": iso(act.due_at),
                "sent_at": iso(act.sent_at),
            },
        )
    for fb in feedback_of(session, lead_id=lead_id):
        add(
            fb.at,
            5,
            str(fb.id),
            {"kind": "feedback", "type": fb.kind, "reason": fb.reason, "by": fb.by},
        )
    for a in assignments_of(session, lead_id=lead_id):
        add(
            a.assigned_at,
            3,
            str(a.id),
            {
                "kind": "assignment",
                "team": a.team,
                "member": a.member,
                "rule": a.rule,
                "cause_event_id": a.cause_event_id,
            },
        )
    entries.sort(key=lambda e: e[0])
    if after is not None:
        entries = [e for e in entries if e[0] > after]
    page = entries[:limit]
    more = len(entries) > limit
    return [e[1] for e in page], (page[-1][0] if more and page else None)
