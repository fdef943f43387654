"""Routing rules: conditions, first match wins, the default team, explanations, round-robin
member choice, SLAs, funnel regressions and the qualification ladder."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from services.routing.domain.config import (
    MemberConfig,
    RoutingConfig,
    RoutingRule,
    TeamConfig,
    parse_config,
)
from services.routing.domain.rules import (
    QUALIFICATION_ORDER,
    LeadFacts,
    RoutingDecision,
    at_least,
    explain_rules,
    is_regression,
    pick_member,
    route,
    rule_matches,
    sla_seconds,
)

DEFAULT = Path(__file__).resolve().parents[3] / "services/routing/config/default.toml"
REGIONS = {"emea": ("DE", "FR"), "amer": ("US", "CA")}

LEAD = LeadFacts(
    qualification="sql",
    funnel_stage="intent",
    score=70,
    segment="b2b",
    country="DE",
    industry="Software",
    employees=500,
    account_role="driver",
)


def _rule(**conditions: Any) -> RoutingRule:
    return RoutingRule(name="r", team="t", **conditions)


def _matches(rule: RoutingRule, lead: LeadFacts = LEAD) -> bool:
    return rule_matches(rule, lead, regions=REGIONS)


def _config(*rules: RoutingRule) -> RoutingConfig:
    teams = {name: TeamConfig() for name in {"fallback", *(r.team for r in rules)}}
    return RoutingConfig(
        version="t", default_team="fallback", regions=REGIONS, rules=rules, teams=teams
    )


def _default() -> RoutingConfig:
    return parse_config(DEFAULT.read_text(), source=str(DEFAULT))


# --- conditions ---------------------------------------------------------------------------


def test_rule_without_conditions_matches_every_lead() -> None:
    assert _matches(_rule(), LeadFacts(qualification="unqualified", funnel_stage=None, score=0))


@pytest.mark.parametrize(
    ("conditions", "lead_change"),
    [
        ({"qualifications": ("mql", "sql")}, {"qualification": "customer"}),
        ({"funnel_stages": ("intent", "evaluation")}, {"funnel_stage": "awareness"}),
        ({"segment": "b2b"}, {"segment": "b2c"}),
        ({"countries": ("de", "AT")}, {"country": "US"}),
        ({"regions": ("amer", "emea")}, {"country": "JP"}),
        ({"industries": ("software", "SaaS")}, {"industry": "retail"}),
        ({"min_employees": 500}, {"employees": 499}),
        ({"max_employees": 500}, {"employees": 501}),
        ({"min_score": 70}, {"score": 69}),
        ({"max_score": 70}, {"score": 71}),
        ({"account_roles": ("driver", "participant")}, {"account_role": "gatekeeper"}),
    ],
)
def test_each_condition_matches_its_values_and_refuses_others(
    conditions: dict[str, Any], lead_change: dict[str, Any]
) -> None:
    rule = _rule(**conditions)
    assert _matches(rule, LEAD)
    assert not _matches(rule, replace(LEAD, **lead_change))


@pytest.mark.parametrize(
    ("conditions", "missing"),
    [
        ({"funnel_stages": ("intent",)}, "funnel_stage"),
        ({"segment": "b2b"}, "segment"),
        ({"countries": ("DE",)}, "country"),
        ({"regions": ("emea",)}, "country"),
        ({"industries": ("software",)}, "industry"),
        ({"min_employees": 1}, "employees"),
        ({"max_employees": 10_000}, "employees"),
        ({"account_roles": ("driver",)}, "account_role"),
    ],
)
def test_condition_on_a_fact_the_lead_lacks_does_not_match(
    conditions: dict[str, Any], missing: str
) -> None:
    rule = _rule(**conditions)
    assert _matches(rule, LEAD)
    assert not _matches(rule, replace(LEAD, **{missing: None}))


def test_lead_facts_are_compared_ignoring_case_and_spaces() -> None:
    rule = _rule(countries=("DE",), industries=("software",), segment="b2b")
    assert _matches(rule, replace(LEAD, country=" de ", industry="SOFTWARE", segment="B2B"))


def test_conditions_are_all_required() -> None:
    rule = _rule(qualifications=("sql",), min_employees=1000)
    assert not _matches(rule, LEAD)
    assert _matches(rule, replace(LEAD, employees=1000))


def test_region_not_in_the_given_mapping_matches_nobody() -> None:
    rule = _rule(regions=("apac",))
    assert not rule_matches(rule, replace(LEAD, country="JP"), regions=REGIONS)
    assert rule_matches(rule, replace(LEAD, country="JP"), regions={"apac": ("JP",)})


# --- route --------------------------------------------------------------------------------


def test_first_matching_rule_wins() -> None:
    broad = RoutingRule(name="broad", team="sales", qualifications=("sql",))
    narrow = RoutingRule(name="narrow", team="enterprise", qualifications=("sql",))
    assert route(LEAD, _config(broad, narrow)) == RoutingDecision(team="sales", rule="broad")
    assert route(LEAD, _config(narrow, broad)) == RoutingDecision(team="enterprise", rule="narrow")


def test_lead_no_rule_matches_goes_to_the_default_team() -> None:
    config = _config(RoutingRule(name="mql", team="sdr", qualifications=("mql",)))
    assert route(LEAD, config) == RoutingDecision(team="fallback", rule="default")


@pytest.mark.parametrize(
    ("lead", "team", "rule"),
    [
        (replace(LEAD, qualification="customer"), "customer-success", "customers_to_success"),
        (
            replace(LEAD, qualification="disqualified"),
            "marketing-nurture",
            "disqualified_to_nurture",
        ),
        (
            replace(LEAD, qualification="recycled", employees=5000),
            "marketing-nurture",
            "recycled_to_nurture",
        ),
        (replace(LEAD, employees=5000), "sales-enterprise", "enterprise_sql"),
        (replace(LEAD, employees=5000, segment="b2c"), "sales", "sql_to_sales"),
        (LEAD, "sales", "sql_to_sales"),
        (replace(LEAD, qualification="mql"), "sdr", "mql_to_sdr"),
        (replace(LEAD, qualification="unqualified"), "sdr", "consideration_intent_to_sdr"),
        (
            replace(LEAD, qualification="unqualified", funnel_stage="interest"),
            "marketing",
            "default",
        ),
        (
            replace(LEAD, qualification="unqualified", funnel_stage="evaluation"),
            "sales",
            "evaluation_to_sales",
        ),
        (
            replace(LEAD, qualification="mql", funnel_stage="purchase"),
            "customer-success",
            "purchase_to_success",
        ),
    ],
)
def test_default_config_routes_each_kind_of_lead(lead: LeadFacts, team: str, rule: str) -> None:
    assert route(lead, _default()) == RoutingDecision(team=team, rule=rule)


# --- explain_rules ------------------------------------------------------------------------


def test_explain_rules_judges_every_rule_in_order_with_reasons() -> None:
    config = _config(
        RoutingRule(name="mql", team="sdr", qualifications=("mql",)),
        RoutingRule(name="big", team="ent", qualifications=("sql",), min_employees=1000),
        RoutingRule(name="sql", team="sales", qualifications=("sql",), countries=("DE", "AT")),
        RoutingRule(name="all", team="sales"),
    )
    assert explain_rules(LEAD, config) == [
        ("mql", False, "qualification sql not in [mql]"),
        ("big", False, "employees 500 below 1000"),
        ("sql", True, "qualification sql in [sql]; country DE in [DE, AT]"),
        ("all", True, "no conditions, matches every lead"),
    ]


def test_explain_rules_names_every_failed_condition_and_missing_facts() -> None:
    rule = RoutingRule(
        name="r",
        team="t",
        funnel_stages=("evaluation",),
        regions=("emea",),
        max_score=50,
        account_roles=("driver",),
    )
    lead = replace(LEAD, country=None, account_role="gatekeeper")
    [(name, matched, reason)] = explain_rules(lead, _config(rule))
    assert (name, matched) == ("r", False)
    assert reason == (
        "funnel stage intent not in [evaluation]; country unknown, rule needs region [emea]; "
        "score 70 above 50; account role gatekeeper not in [driver]"
    )


def test_explain_rules_agrees_with_route() -> None:
    config = _default()
    lead = replace(LEAD, employees=2000)
    first = next(name for name, matched, _ in explain_rules(lead, config) if matched)
    assert first == route(lead, config).rule == "enterprise_sql"


# --- pick_member --------------------------------------------------------------------------

TEAM = (
    MemberConfig(id="ana@s.example", capacity=2),
    MemberConfig(id="ben@s.example", capacity=2),
    MemberConfig(id="cai@s.example", capacity=2),
)


def _pick(
    last: str | None, *, away: tuple[str, ...] = (), counts: dict[str, int] | None = None
) -> str | None:
    return pick_member(members=TEAM, open_counts=counts or {}, away=away, last_assigned=last)


def test_pick_member_starts_at_the_first_member_when_nobody_was_assigned() -> None:
    assert _pick(None) == "ana@s.example"


def test_pick_member_takes_the_member_after_the_last_assigned() -> None:
    assert _pick("ana@s.example") == "ben@s.example"
    assert _pick("ben@s.example") == "cai@s.example"


def test_pick_member_wraps_around_after_the_last_member() -> None:
    assert _pick("cai@s.example") == "ana@s.example"


def test_pick_member_starts_at_the_first_when_last_assigned_is_not_a_member() -> None:
    assert _pick("gone@s.example") == "ana@s.example"


def test_pick_member_skips_members_who_are_away() -> None:
    assert _pick("ana@s.example", away=("ben@s.example",)) == "cai@s.example"


def test_pick_member_skips_members_at_capacity() -> None:
    counts = {"ben@s.example": 2, "cai@s.example": 3}
    assert _pick("ana@s.example", counts=counts) == "ana@s.example"


def test_pick_member_gives_a_member_below_capacity_a_lead() -> None:
    assert _pick("ana@s.example", counts={"ben@s.example": 1}) == "ben@s.example"


def test_pick_member_never_picks_a_member_with_zero_capacity() -> None:
    members = (MemberConfig(id="off@s.example", capacity=0), TEAM[0])
    assert (
        pick_member(members=members, open_counts={}, away=(), last_assigned=None) == "ana@s.example"
    )


def test_pick_member_returns_none_when_everyone_is_busy_or_away() -> None:
    counts = {"ana@s.example": 2, "cai@s.example": 2}
    assert _pick("ana@s.example", away=("ben@s.example",), counts=counts) is None


def test_pick_member_returns_none_for_a_team_without_members() -> None:
    assert pick_member(members=(), open_counts={}, away=(), last_assigned=None) is None


# --- sla_seconds --------------------------------------------------------------------------

SLA_TEAM = TeamConfig(sla={"sql": 4 * 3600, "intent": 3600, "mql": 86400})


def test_sla_by_qualification_wins_over_the_funnel_stage() -> None:
    assert sla_seconds(SLA_TEAM, qualification="sql", funnel_stage="intent") == 4 * 3600


def test_sla_falls_back_to_the_funnel_stage() -> None:
    assert sla_seconds(SLA_TEAM, qualification="customer", funnel_stage="intent") == 3600


def test_no_sla_when_neither_qualification_nor_stage_has_one() -> None:
    assert sla_seconds(SLA_TEAM, qualification="customer", funnel_stage="awareness") is None
    assert sla_seconds(SLA_TEAM, qualification="customer", funnel_stage=None) is None
    assert sla_seconds(TeamConfig(), qualification="sql", funnel_stage="intent") is None


# --- is_regression ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("old", "new", "regressed"),
    [
        ("evaluation", "consideration", True),
        ("interest", "awareness", True),
        ("consideration", "evaluation", False),
        ("intent", "intent", False),
        (None, "awareness", False),
        ("intent", None, False),
        ("intent", "nowhere", False),
    ],
)
def test_is_regression_only_when_the_funnel_moves_back(
    old: str | None, new: str | None, regressed: bool
) -> None:
    assert is_regression(old, new) is regressed


# --- at_least -----------------------------------------------------------------------------


def test_qualification_order_is_the_ladder_without_disqualified() -> None:
    assert QUALIFICATION_ORDER == ("unqualified", "mql", "sql", "customer")


@pytest.mark.parametrize(
    ("qualification", "minimum", "reached"),
    [
        ("sql", "mql", True),
        ("mql", "mql", True),
        ("customer", "sql", True),
        ("unqualified", "mql", False),
        ("mql", "sql", False),
        ("disqualified", "unqualified", False),
        ("sql", "disqualified", False),
    ],
)
def test_at_least_follows_the_qualification_ladder(
    qualification: str, minimum: str, reached: bool
) -> None:
    assert at_least(qualification, minimum) is reached


def test_fit_and_engagement_conditions_route_on_the_lead_s_scores() -> None:
    engaged = replace(LEAD, fit=20, engagement=80)
    assert _matches(_rule(min_engagement=60), engaged)
    assert not _matches(_rule(min_fit=50), engaged)
    assert _matches(_rule(min_fit=20, min_engagement=80), engaged)
    [(_, matched, reason)] = explain_rules(
        engaged, _config(RoutingRule(name="fit", team="t", min_fit=50))
    )[:1]
    assert not matched and "fit 20" in reason and "50" in reason


def test_a_persona_condition_routes_on_the_lead_s_persona() -> None:
    assert _matches(_rule(personas=("technical_buyer",)), replace(LEAD, persona="technical_buyer"))
    assert not _matches(_rule(personas=("technical_buyer",)), replace(LEAD, persona="practitioner"))
    assert not _matches(_rule(personas=("technical_buyer",)), LEAD)  # none recorded
