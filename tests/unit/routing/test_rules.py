"""Routing rules: first match wins, qualifications and stages, a default owner for the rest."""

from __future__ import annotations

import pytest

from services.routing.domain.rules import (
    DEFAULT_TEAM,
    LeadFacts,
    RoutingDecision,
    Rule,
    route,
)
from shared.domain import Qualification


def _lead(qualification: str, funnel_stage: str | None = None, score: int = 50) -> LeadFacts:
    return LeadFacts(qualification=qualification, funnel_stage=funnel_stage, score=score)


@pytest.mark.parametrize(
    ("qualification", "team", "rule"),
    [
        (Qualification.CUSTOMER, "customer-success", "customers_to_success"),
        (Qualification.DISQUALIFIED, "marketing-nurture", "disqualified_to_nurture"),
        (Qualification.SQL, "sales", "sql_to_sales"),
        (Qualification.MQL, "sdr", "mql_to_sdr"),
    ],
)
def test_each_qualification_routes_to_its_team(
    qualification: Qualification, team: str, rule: str
) -> None:
    assert route(_lead(qualification)) == RoutingDecision(team=team, rule=rule)


def test_plain_string_qualification_matches_like_the_enum() -> None:
    assert route(_lead("sql")).team == "sales"


def test_unqualified_lead_goes_to_the_default_team() -> None:
    decision = route(_lead(Qualification.UNQUALIFIED))
    assert decision == DEFAULT_TEAM
    assert decision == RoutingDecision(team="marketing", rule="default")


def test_unknown_qualification_goes_to_the_default_team() -> None:
    assert route(_lead("hot")) == DEFAULT_TEAM


def test_first_matching_rule_wins() -> None:
    rules = (
        Rule("enterprise", "enterprise-sales", frozenset({"sql"})),
        Rule("everyone_sql", "sales", frozenset({"sql", "mql"})),
    )
    assert route(_lead("sql"), rules) == RoutingDecision(team="enterprise-sales", rule="enterprise")
    assert route(_lead("mql"), rules) == RoutingDecision(team="sales", rule="everyone_sql")


def test_custom_rules_fall_back_to_the_default_team() -> None:
    rules = (Rule("only_customers", "cs", frozenset({"customer"})),)
    assert route(_lead("sql"), rules) == DEFAULT_TEAM


def test_empty_rule_tuple_routes_everyone_to_the_default_team() -> None:
    assert route(_lead("customer"), ()) == DEFAULT_TEAM


def test_stage_restricted_rule_only_matches_its_stages() -> None:
    rules = (
        Rule("intent_sql_to_closers", "closers", frozenset({"sql"}), frozenset({"intent"})),
        Rule("sql_to_sales", "sales", frozenset({"sql"})),
    )
    assert route(_lead("sql", "intent"), rules).team == "closers"
    assert route(_lead("sql", "evaluation"), rules).team == "sales"
    assert route(_lead("sql", None), rules).team == "sales"


def test_stage_restricted_rule_still_requires_its_qualification() -> None:
    rule = Rule("intent_sql", "closers", frozenset({"sql"}), frozenset({"intent"}))
    assert rule.matches(_lead("sql", "intent")) is True
    assert rule.matches(_lead("mql", "intent")) is False
    assert rule.matches(_lead("sql", "awareness")) is False


def test_rule_without_stages_matches_any_stage_including_none() -> None:
    rule = Rule("sql", "sales", frozenset({"sql"}))
    assert rule.matches(_lead("sql", None)) is True
    assert rule.matches(_lead("sql", "purchase")) is True
