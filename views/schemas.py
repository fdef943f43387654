"""What the read side's routes answer, as the OpenAPI documents it: a lead (the representation
sales tools read), an account and its buying committee, a timeline entry, the funnel report and
a lead's trace. The models describe the dicts `views` builds; they change nothing in the JSON.
Where a payload is open-ended (BANT evidence, traits, the funnel's matrices, a timeline entry's
fields per kind) they type what is stable and leave the rest a JSON object."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from shared.pages import Timestamp


class LeadAccount(BaseModel):
    """The account (buying committee) a lead belongs to, and the lead's place in it."""

    domain: str
    name: str | None
    role: str | None = Field(description="involvement in the committee; null until inferred")
    function: str | None


class Company(BaseModel):
    """The lead's company as scoring knows it."""

    name: str | None
    domain: str | None
    industry: str | None
    employees: int | None
    annual_revenue: float | None
    country: str | None


class Owner(BaseModel):
    """The team (and member) that owns a lead."""

    team: str
    member: str | None


class Lead(BaseModel):
    """A lead as sales tools read it: person, company, account, assessment, owner."""

    id: str
    email: str | None
    anonymous_ids: list[str]
    user_ids: list[str]
    first_name: str | None
    last_name: str | None
    job_title: str | None
    phone: str | None
    account: LeadAccount | None
    company: Company
    score: int
    fit_score: int
    engagement_score: int
    persona: str | None
    qualification: str
    funnel_stage: str | None
    journey_stage: str | None
    bant: dict[str, Any] | None = Field(
        description="per dimension (budget, authority, need, timing): score, met, evidence"
    )
    model_version: str | None
    qualification_reason: str | None
    traits: dict[str, Any]
    owner: Owner | None
    last_touch_at: Timestamp | None
    created_at: Timestamp | None
    updated_at: Timestamp | None


# A lead as the OpenAPI shows it (the lead routes' example).
LEAD_EXAMPLE: dict[str, Any] = {
    "id": "4f1c2a9e-7d1b-4a57-9c3e-1f0d2b6a8e11",
    "email": "ana@acme.example",
    "anonymous_ids": ["c-81f2"],
    "user_ids": [],
    "first_name": "Ana",
    "last_name": "Ruiz",
    "job_title": "VP Operations",
    "phone": None,
    "account": {"domain": "acme.example", "name": "Acme", "role": "driver", "function": "user"},
    "company": {
        "name": "Acme",
        "domain": "acme.example",
        "industry": "software",
        "employees": 250,
        "annual_revenue": None,
        "country": "DE",
    },
    "score": 72,
    "fit_score": 80,
    "engagement_score": 64,
    "persona": "economic_buyer",
    "qualification": "sql",
    "qualification_reason": "sql: 3 of 4 BANT dimensions met (budget, authority, need)",
    "funnel_stage": "intent",
    "journey_stage": "requirements_building",
    "bant": {
        "budget": {
            "score": 80,
            "met": True,
            "evidence": [
                {
                    "event_id": "evt-1",
                    "type": "form_submit",
                    "at": "2026-11-20T10:00:00+00:00",
                    "rule": "declared_budget",
                    "points": 40,
                }
            ],
        },
        "authority": {"score": 75, "met": True, "evidence": []},
        "need": {"score": 60, "met": True, "evidence": []},
        "timing": {"score": 20, "met": False, "evidence": []},
    },
    "model_version": "b2b-saas-2026.11",
    "traits": {"plan": "enterprise", "logins": 12},
    "owner": {"team": "sales", "member": "ana@seller.example"},
    "last_touch_at": "2026-11-22T10:14:00+00:00",
    "created_at": "2026-11-18T09:00:00+00:00",
    "updated_at": "2026-11-22T10:15:00+00:00",
}


class AccountMember(BaseModel):
    """A member of an account's buying committee. Besides these fields, what inference stored
    of it (reasons, involvement by stage, ...), which grows with the model."""

    model_config = ConfigDict(extra="allow")

    lead_id: str
    involvement: str | None
    function: str | None
    email: str | None
    job_title: str | None


class Account(BaseModel):
    """An account: its buying committee, BANT and stages."""

    domain: str
    name: str | None
    member_count: int
    members: list[AccountMember]
    bant: dict[str, Any] = Field(description="per dimension: score, met, evidence")
    funnel_stage: str | None
    journey_stage: str | None
    decision_maker_engaged: bool
    updated_at: Timestamp | None


class TimelineEntry(BaseModel):
    """Something that happened to a lead; the other fields depend on `kind` (touch,
    stage_transition, qualification_change, identity_merge, action, feedback, assignment)."""

    model_config = ConfigDict(extra="allow")

    at: str = Field(description="ISO 8601 time; empty when unknown")
    kind: str


class Funnel(BaseModel):
    """Funnel and journey analytics of the leads created in [from, to)."""

    model_config = ConfigDict(populate_by_name=True)

    from_: Timestamp = Field(alias="from")
    to: Timestamp
    team: str | None
    leads: int
    funnel: dict[str, int]
    journey: dict[str, int]
    conversion: list[dict[str, Any]]
    median_seconds_in_stage: dict[str, Any]
    journey_by_funnel: dict[str, dict[str, int]]
    sales: dict[str, Any]
    steps: list[dict[str, Any]]
    teams: dict[str, dict[str, Any]]
    personas: dict[str, dict[str, Any]]
    models: dict[str, dict[str, Any]]


class TraceRouting(BaseModel):
    """The routing rules tried on a lead, the decision and its owner now."""

    rules: list[dict[str, Any]]
    decision: str
    owner: Owner | None


class Trace(BaseModel):
    """Which scoring, routing and playbook rules matched a lead, and why the others did not."""

    lead_id: str
    model_version: str
    scoring: list[dict[str, Any]] = Field(description="per scoring rule: matched, and why")
    routing: TraceRouting
    playbooks: list[dict[str, Any]]
