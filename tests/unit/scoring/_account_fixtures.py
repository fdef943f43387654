"""Shared by the account tests: members with titles, BANT and touches, and assessing them."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from services.scoring.domain.accounts import (
    AccountAssessment,
    CommitteeFunction,
    Involvement,
    Member,
    MemberRole,
    assess_account,
)
from services.scoring.domain.model import Bant, Dimension, Evidence, Touch
from services.scoring.domain.titles import JobFunction, Seniority, Title
from shared.domain import FunnelStage, JourneyStage

NOW = datetime(2026, 11, 30, tzinfo=UTC)


def _evidence(rule: str) -> tuple[Evidence, ...]:
    return (Evidence(event_id=None, type="declared", at=None, rule=rule, points=1),)


def _dim(score: int, rule: str | None = None) -> Dimension:
    return Dimension(score=score, met=score >= 50, evidence=_evidence(rule) if rule else ())


def _bant(
    *,
    budget: int = 0,
    authority: int = 0,
    need: int = 0,
    timing: int = 0,
    rule: str | None = None,
) -> Bant:
    return Bant(
        budget=_dim(budget, rule and f"{rule}-budget"),
        authority=_dim(authority, rule and f"{rule}-authority"),
        need=_dim(need, rule and f"{rule}-need"),
        timing=_dim(timing, rule and f"{rule}-timing"),
    )


def _title(
    raw: str = "Specialist",
    seniority: Seniority | None = Seniority.INDIVIDUAL,
    function: JobFunction | None = JobFunction.OTHER,
) -> Title:
    return Title(raw=raw, seniority=seniority, function=function)


def _touches(lead_id: str, *days_ago: float, type_: str = "page_view") -> tuple[Touch, ...]:
    return tuple(
        Touch(event_id=f"{lead_id}-{i}", type=type_, occurred_at=NOW - timedelta(days=d))
        for i, d in enumerate(days_ago)
    )


def _member(
    lead_id: str,
    *,
    title: Title | None = None,
    bant: Bant | None = None,
    funnel: FunnelStage | None = None,
    journey: JourneyStage | None = None,
    touches: Sequence[Touch] = (),
    declared_decision_maker: bool = False,
    involvement_override: Involvement | None = None,
    function_override: CommitteeFunction | None = None,
) -> Member:
    return Member(
        lead_id=lead_id,
        title=title or _title(),
        bant=bant or _bant(),
        funnel_stage=funnel,
        journey_stage=journey,
        touches=tuple(touches),
        declared_decision_maker=declared_decision_maker,
        involvement_override=involvement_override,
        function_override=function_override,
    )


def _assess(
    *members: Member, engaged_days: float = 30.0, met_thresholds: dict[str, int] | None = None
) -> AccountAssessment:
    return assess_account(
        domain="acme.com",
        members=members,
        now=NOW,
        engaged_days=engaged_days,
        met_thresholds=met_thresholds or {},
    )


def _role(assessment: AccountAssessment, lead_id: str) -> MemberRole:
    return next(r for r in assessment.members if r.lead_id == lead_id)


VP_SALES = _title("VP Sales", Seniority.VP, JobFunction.SALES)
ENGINEER = _title("Process Engineer", Seniority.INDIVIDUAL, JobFunction.ENGINEERING)
