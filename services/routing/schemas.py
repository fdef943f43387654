"""What routing's routes answer, as the OpenAPI documents it: actions (and the tasks among
them), teams with their members, a team's queue, and a page of any of them. The models describe
the dicts `service` builds; they change nothing in the JSON."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from services.routing.domain.actions import ActionStatus
from shared.pages import Timestamp

ActionKind = Literal["email", "webhook", "task", "sla", "lead_webhook"]


class Action(BaseModel):
    """A follow-up action: an email, a webhook, a task, an SLA check, a lead webhook delivery."""

    id: str
    lead_id: str
    kind: ActionKind
    playbook: str
    status: ActionStatus
    due_at: Timestamp
    attempts: int
    deferrals: int
    team: str | None
    member: str | None
    payload: dict[str, Any] = Field(description="what the action sends; its shape per kind")
    last_error: str | None
    cancel_reason: str | None
    sent_at: Timestamp | None
    created_at: Timestamp


class Member(BaseModel):
    """A team member: capacity, load and whether they are away."""

    id: str
    name: str | None
    capacity: int
    open_leads: int
    load: int = Field(description="owned leads not contacted yet: what counts against capacity")
    away: bool
    away_until: Timestamp | None


class Team(BaseModel):
    """A configured team: the rules sending it leads, its load, SLAs and members."""

    team: str
    rules: list[str]
    open_leads: int
    queued: int
    sla_breaches: int
    sla: dict[str, float] = Field(description="seconds to reach out, per qualification or step")
    escalation: Literal["reassign", "notify"]
    webhook_url: str | None
    members: list[Member]


class Teams(BaseModel):
    """Every configured team."""

    items: list[Team]


class QueueItem(BaseModel):
    """A lead in a team's queue: its current assignment and SLA."""

    lead_id: str
    email: str | None
    qualification: str | None
    funnel_stage: str | None
    member: str | None
    assigned_at: Timestamp
    sla_due_at: Timestamp | None
    contacted_at: Timestamp | None
    sla_breached: bool


class FeedbackRecorded(BaseModel):
    """Feedback on a lead, recorded."""

    lead_id: str
    type: str
    recorded: bool
