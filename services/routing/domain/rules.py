"""Routing rules: which team owns a lead at its current qualification and funnel step.

Foundation rule table (the routing issue replaces it with a validated config file): first
match wins, with a default team so every lead has an owner.
"""

from __future__ import annotations

from dataclasses import dataclass

from shared.domain import Qualification


@dataclass(frozen=True)
class LeadFacts:
    """What routing knows of a lead when it decides."""

    qualification: str
    funnel_stage: str | None
    score: int


@dataclass(frozen=True)
class RoutingDecision:
    """The owning team and the rule that chose it."""

    team: str
    rule: str


@dataclass(frozen=True)
class Rule:
    """Route leads with one of these qualifications (and optionally stages) to a team."""

    name: str
    team: str
    qualifications: frozenset[str]
    funnel_stages: frozenset[str] | None = None

    def matches(self, lead: LeadFacts) -> bool:
        """True when the lead is at one of the rule's qualifications and stages."""
        if lead.qualification not in self.qualifications:
            return False
        return self.funnel_stages is None or lead.funnel_stage in self.funnel_stages


DEFAULT_RULES: tuple[Rule, ...] = (
    Rule("customers_to_success", "customer-success", frozenset({Qualification.CUSTOMER})),
    Rule("disqualified_to_nurture", "marketing-nurture", frozenset({Qualification.DISQUALIFIED})),
    Rule("sql_to_sales", "sales", frozenset({Qualification.SQL})),
    Rule("mql_to_sdr", "sdr", frozenset({Qualification.MQL})),
)
DEFAULT_TEAM = RoutingDecision(team="marketing", rule="default")


def route(lead: LeadFacts, rules: tuple[Rule, ...] = DEFAULT_RULES) -> RoutingDecision:
    """The first rule the lead matches decides its team; otherwise the default team."""
    for rule in rules:
        if rule.matches(lead):
            return RoutingDecision(team=rule.team, rule=rule.name)
    return DEFAULT_TEAM
