"""What each page shows, gathered from the same functions the JSON API answers with (the lead
and account views, the timeline, scoring's explanation, routing's owners and actions): the
pages decide nothing and query nothing of their own."""

from __future__ import annotations

from importlib import metadata
from typing import Any

from fastapi import FastAPI
from sqlalchemy.orm import Session

from services.routing.public import action_view, actions_of_lead, config_for, current_owners
from services.scoring.service import explain_lead, load_models
from services.scoring.shapes import iso
from shared.config import Settings
from shared.domain import FunnelStage, JourneyStage
from shared.events import utcnow
from shared.http import Resources
from views import accounts as accounts_view
from views import leads as leads_view
from views import timeline as timeline_view

# The most timeline entries a lead page reads (the API pages through the rest).
TIMELINE_CAP = 5000
# The most activity entries (newest first) a lead page lists.
ACTIVITY_SHOWN = 200
FEEDBACK = ("contacted", "accepted", "rejected", "disqualified", "won", "lost")
BANT = ("budget", "authority", "need", "timing")


def _version() -> str:
    try:
        return metadata.version("leadflow")
    except metadata.PackageNotFoundError:  # run from a checkout that was never installed
        return "unknown"


def home_context(*, app: FastAPI, resources: Resources) -> dict[str, Any]:
    """What this process runs: its services and consumers, broker and database kinds, the
    versions of the app, the scoring models and the routing file (no address, no secret)."""
    settings = resources.settings
    broker = {
        "kind": resources.broker_details.get("kind")
        or (resources.monitor.broker().kind if resources.monitor is not None else "kafka"),
        "embedded": bool(resources.broker_details.get("embedded")),
        "persistent": resources.broker_details.get("persistent", True),
        "note": resources.broker_details.get("note"),
    }
    return {
        "services": list(getattr(app.state, "services", ())),
        "consumers": [
            {"name": loop.name, "problems": loop.problems()} for loop in resources.consumers
        ],
        "broker": broker,
        "database": resources.engine.dialect.name,
        "app_version": app.version,
        "package_version": _version(),
        "models": [m.version for m in load_models(settings.scoring_model)],
        "routing_version": config_for(settings).version,
        "auth": settings.auth,
    }


def _stage_track(
    stages: list[str], moves: list[dict[str, Any]], current: str | None
) -> list[dict[str, Any]]:
    """Each stage of a track in order: when the lead first reached it and whether it is there."""
    reached: dict[str, str] = {}
    for move in moves:
        if move["to"] and move["to"] not in reached:
            reached[move["to"]] = move["at"]
    return [{"stage": s, "reached_at": reached.get(s), "current": s == current} for s in stages]


def lead_context(session: Session, *, lead_id: str, settings: Settings) -> dict[str, Any] | None:
    """The lead (as `GET /v1/leads/{id}`), its explanation (`/explain`), its funnel and journey
    moves and activity (`/timeline`), its owner with the SLA, and its actions; None if none."""
    lead = leads_view.get_lead(session, lead_id=lead_id)
    if lead is None:
        return None
    explained = explain_lead(
        session, lead_id=lead_id, models=load_models(settings.scoring_model), now=utcnow()
    )
    found = timeline_view.timeline(session, lead_id=lead_id, after=None, limit=TIMELINE_CAP)
    entries, more = found if found is not None else ([], None)
    moves = [e for e in entries if e["kind"] == "stage_transition"]
    funnel = [e for e in moves if e["track"] == "funnel"]
    journey = [e for e in moves if e["track"] == "journey"]
    assignment = current_owners(session, lead_ids=[lead_id]).get(lead_id)
    sla = None
    if assignment is not None:
        sla = {
            "assigned_at": iso(assignment.assigned_at),
            "due_at": iso(assignment.sla_due_at),
            "breached_at": iso(assignment.sla_breached_at),
            "contacted_at": iso(assignment.contacted_at),
        }
    return {
        "lead": lead,
        "bant_names": BANT,
        "explained": explained,
        "funnel": _stage_track([s.value for s in FunnelStage], funnel, lead["funnel_stage"]),
        "journey": _stage_track([s.value for s in JourneyStage], journey, lead["journey_stage"]),
        "funnel_moves": funnel,
        "journey_moves": journey,
        "activity": list(reversed(entries))[:ACTIVITY_SHOWN],
        "activity_total": len(entries),
        "activity_more": more is not None,
        "touches": sum(1 for e in entries if e["kind"] == "touch"),
        "sla": sla,
        "actions": [action_view(a) for a in actions_of_lead(session, lead_id=lead_id)],
        "feedback": FEEDBACK,
    }


def account_context(session: Session, *, domain: str) -> dict[str, Any] | None:
    """The account (as `GET /v1/accounts/{domain}`) and its buying team per journey stage: each
    member's involvement at every stage the team has been at; None if there is no account."""
    account = accounts_view.account_view(session, domain=domain)
    if account is None:
        return None
    seen = {stage for m in account["members"] for stage in m.get("involvement_by_stage") or {}}
    stages = [s.value for s in JourneyStage if s.value in seen]
    return {"account": account, "stages": stages, "bant_names": BANT}
