"""What routing's rules look at, from the lead snapshot scoring sends: the one builder, used by
live routing, the backtest and `/trace`, so the three cannot drift apart."""

from __future__ import annotations

from services.routing.domain.rules import LeadFacts
from shared.events import LeadSnapshot


def facts_of(lead: LeadSnapshot) -> LeadFacts:
    """The routing facts of a lead: its assessment, its company, and its place in an account
    (a lead with an account is B2B, one without is B2C)."""
    company, account = lead.company, lead.account
    return LeadFacts(
        qualification=lead.qualification or "unqualified",
        funnel_stage=lead.funnel_stage,
        score=lead.score,
        fit=lead.fit_score,
        engagement=lead.engagement_score,
        persona=lead.persona,
        segment="b2b" if account is not None else "b2c",
        country=company.country,
        industry=company.industry,
        employees=company.employees,
        account_role=account.role if account is not None else None,
    )
