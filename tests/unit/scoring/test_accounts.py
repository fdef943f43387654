"""The buying team: account domains, committee roles, and the account's BANT and stages."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from services.scoring.domain.accounts import (
    AccountAssessment,
    CommitteeFunction,
    Involvement,
    Member,
    MemberRole,
    account_domain,
    assess_account,
    committee_function,
    involvement_by_stage,
)
from services.scoring.domain.free_mail import FREE_MAIL_DOMAINS
from services.scoring.domain.model import Bant, Dimension, Evidence, Touch
from services.scoring.domain.titles import JobFunction, Seniority, Title
from shared.domain import FunnelStage, JourneyStage

NOW = datetime(2026, 11, 30, tzinfo=UTC)


# --- helpers ------------------------------------------------------------------------------


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


# --- account domain -----------------------------------------------------------------------


def test_company_domain_wins_over_the_email_domain() -> None:
    assert account_domain(email="jo@acme-mail.com", company_domain="acme.com") == "acme.com"


def test_company_domain_is_lower_cased_and_loses_www() -> None:
    assert account_domain(email=None, company_domain="  WWW.Acme.COM ") == "acme.com"


def test_email_domain_is_used_when_no_company_domain_is_given() -> None:
    assert account_domain(email="Jo@Acme.com", company_domain=None) == "acme.com"


def test_free_mail_email_gives_no_account() -> None:
    assert account_domain(email="jo@gmail.com", company_domain=None) is None


def test_free_mail_is_recognised_regardless_of_case() -> None:
    assert account_domain(email="Jo@GMail.COM", company_domain=None) is None
    assert account_domain(email=None, company_domain="Hotmail.Com") is None


def test_free_mail_company_domain_is_ignored_in_favour_of_the_email_domain() -> None:
    assert account_domain(email="jo@acme.com", company_domain="yahoo.com") == "acme.com"


def test_no_email_and_no_company_domain_gives_no_account() -> None:
    assert account_domain(email=None, company_domain=None) is None
    assert account_domain(email="not-an-address", company_domain="") is None


def test_free_mail_list_covers_the_common_providers() -> None:
    assert len(FREE_MAIL_DOMAINS) >= 40
    for domain in ("gmail.com", "outlook.com", "gmx.de", "web.de", "proton.me", "qq.com"):
        assert domain in FREE_MAIL_DOMAINS


# --- committee function -------------------------------------------------------------------


def test_purchasing_title_is_purchasing_even_when_senior() -> None:
    title = _title("Director of Procurement", Seniority.DIRECTOR, JobFunction.PURCHASING)
    assert committee_function(title) == (CommitteeFunction.PURCHASING, None)


@pytest.mark.parametrize(
    ("function", "area"),
    [
        (JobFunction.IT, "it"),
        (JobFunction.HR, "hr"),
        (JobFunction.EHS, "ehs"),
        (JobFunction.MAINTENANCE, "maintenance"),
    ],
)
def test_reviewer_functions_are_reviewers_with_their_area_even_when_senior(
    function: JobFunction, area: str
) -> None:
    title = _title("Director", Seniority.DIRECTOR, function)
    assert committee_function(title) == (CommitteeFunction.REVIEWER, area)


@pytest.mark.parametrize("seniority", [Seniority.C_LEVEL, Seniority.VP, Seniority.DIRECTOR])
def test_senior_titles_in_other_functions_are_management(seniority: Seniority) -> None:
    title = _title("Head of Engineering", seniority, JobFunction.ENGINEERING)
    assert committee_function(title) == (CommitteeFunction.MANAGEMENT, None)


@pytest.mark.parametrize(
    "function", [JobFunction.ENGINEERING, JobFunction.OPERATIONS, JobFunction.PRODUCT]
)
def test_engineering_operations_and_product_staff_are_users(function: JobFunction) -> None:
    title = _title("Manager", Seniority.MANAGER, function)
    assert committee_function(title) == (CommitteeFunction.USER, None)


@pytest.mark.parametrize(
    "title",
    [
        _title("Marketing Manager", Seniority.MANAGER, JobFunction.MARKETING),
        _title("Finance Analyst", Seniority.INDIVIDUAL, JobFunction.FINANCE),
        _title("", None, None),
    ],
)
def test_anyone_else_is_the_initiating_buyer(title: Title) -> None:
    assert committee_function(title) == (CommitteeFunction.BUYER, None)


# --- involvement --------------------------------------------------------------------------


def test_engaged_member_with_most_recent_touches_drives_and_others_participate() -> None:
    assessment = _assess(
        _member("a", touches=_touches("a", 1, 2)),
        _member("b", touches=_touches("b", 1, 2, 3)),
    )
    assert _role(assessment, "b").involvement == Involvement.DRIVER
    assert _role(assessment, "a").involvement == Involvement.PARTICIPANT


def test_touches_outside_the_window_do_not_count_towards_driving() -> None:
    assessment = _assess(
        _member("old", touches=_touches("old", 1, 40, 41, 42, 43)),
        _member("new", touches=_touches("new", 1, 2)),
    )
    assert _role(assessment, "new").involvement == Involvement.DRIVER
    assert _role(assessment, "old").involvement == Involvement.PARTICIPANT


def test_engagement_window_is_configurable() -> None:
    assessment = _assess(_member("a", touches=_touches("a", 10)), engaged_days=5)
    assert _role(assessment, "a").involvement == Involvement.NOT_INVOLVED


def test_touches_after_now_are_ignored() -> None:
    assessment = _assess(_member("a", touches=_touches("a", -1)))
    assert _role(assessment, "a").involvement == Involvement.NOT_INVOLVED


def test_driver_tie_goes_to_the_newest_touch() -> None:
    assessment = _assess(
        _member("a", touches=_touches("a", 5, 6)),
        _member("b", touches=_touches("b", 1, 9)),
    )
    assert _role(assessment, "b").involvement == Involvement.DRIVER
    assert _role(assessment, "a").involvement == Involvement.PARTICIPANT


def test_driver_full_tie_goes_to_the_lowest_lead_id() -> None:
    assessment = _assess(
        _member("z", touches=_touches("z", 1)),
        _member("m", touches=_touches("m", 1)),
    )
    assert _role(assessment, "m").involvement == Involvement.DRIVER
    assert _role(assessment, "z").involvement == Involvement.PARTICIPANT


@pytest.mark.parametrize(
    "member",
    [
        _member("x", title=VP_SALES),
        _member("x", declared_decision_maker=True),
        _member("x", title=_title("IT Security Analyst", Seniority.INDIVIDUAL, JobFunction.IT)),
        _member("x", title=_title("Buyer", Seniority.INDIVIDUAL, JobFunction.PURCHASING)),
    ],
    ids=["title-decision-maker", "declared-decision-maker", "reviewer", "purchasing"],
)
def test_inactive_member_whose_approval_is_needed_is_a_gatekeeper(member: Member) -> None:
    assessment = _assess(_member("a", touches=_touches("a", 1)), member)
    assert _role(assessment, "x").involvement == Involvement.GATEKEEPER


@pytest.mark.parametrize("title", [ENGINEER, _title("Marketing Manager", Seniority.MANAGER)])
def test_inactive_member_without_an_approval_role_is_not_involved(title: Title) -> None:
    assessment = _assess(_member("a", touches=_touches("a", 1)), _member("x", title=title))
    assert _role(assessment, "x").involvement == Involvement.NOT_INVOLVED


def test_engaged_decision_maker_participates_rather_than_gatekeeps() -> None:
    assessment = _assess(
        _member("a", touches=_touches("a", 1, 2)),
        _member("vp", title=VP_SALES, touches=_touches("vp", 3)),
    )
    role = _role(assessment, "vp")
    assert role.involvement == Involvement.PARTICIPANT
    assert role.decision_maker is True


def test_member_function_and_decision_maker_flag_are_reported() -> None:
    it_lead = _title("IT Manager", Seniority.MANAGER, JobFunction.IT)
    assessment = _assess(_member("it", title=it_lead), _member("vp", title=VP_SALES))
    it_role, vp_role = _role(assessment, "it"), _role(assessment, "vp")
    assert (it_role.function, it_role.reviewer_area, it_role.decision_maker) == (
        CommitteeFunction.REVIEWER,
        "it",
        False,
    )
    assert (vp_role.function, vp_role.reviewer_area, vp_role.decision_maker) == (
        CommitteeFunction.MANAGEMENT,
        None,
        True,
    )


# --- overrides ----------------------------------------------------------------------------


def test_involvement_override_wins_and_is_marked() -> None:
    assessment = _assess(
        _member("a", touches=_touches("a", 1)),
        _member("x", title=ENGINEER, involvement_override=Involvement.GATEKEEPER),
    )
    role = _role(assessment, "x")
    assert role.involvement == Involvement.GATEKEEPER
    assert role.overridden is True
    assert _role(assessment, "a").overridden is False


def test_driver_override_makes_the_inferred_driver_a_participant() -> None:
    assessment = _assess(
        _member("busy", touches=_touches("busy", 1, 2, 3)),
        _member("boss", touches=_touches("boss", 1), involvement_override=Involvement.DRIVER),
    )
    assert _role(assessment, "boss").involvement == Involvement.DRIVER
    assert _role(assessment, "busy").involvement == Involvement.PARTICIPANT


def test_driver_override_on_an_inactive_member_leaves_no_inferred_driver() -> None:
    assessment = _assess(
        _member("busy", touches=_touches("busy", 1, 2, 3)),
        _member("boss", involvement_override=Involvement.DRIVER),
    )
    assert _role(assessment, "boss").involvement == Involvement.DRIVER
    assert _role(assessment, "busy").involvement == Involvement.PARTICIPANT


def test_function_override_wins_and_decides_gatekeeping() -> None:
    assessment = _assess(
        _member("a", touches=_touches("a", 1)),
        _member("x", title=ENGINEER, function_override=CommitteeFunction.PURCHASING),
    )
    role = _role(assessment, "x")
    assert role.function == CommitteeFunction.PURCHASING
    assert role.reviewer_area is None
    assert role.involvement == Involvement.GATEKEEPER
    assert role.overridden is True


def test_function_override_away_from_reviewer_drops_the_area() -> None:
    it_lead = _title("IT Manager", Seniority.MANAGER, JobFunction.IT)
    assessment = _assess(_member("x", title=it_lead, function_override=CommitteeFunction.USER))
    role = _role(assessment, "x")
    assert (role.function, role.reviewer_area) == (CommitteeFunction.USER, None)


# --- account BANT -------------------------------------------------------------------------


def test_authority_is_met_when_a_decision_maker_is_engaged() -> None:
    assessment = _assess(
        _member("a", bant=_bant(authority=10), touches=_touches("a", 1)),
        _member("vp", title=VP_SALES, bant=_bant(authority=30), touches=_touches("vp", 2)),
    )
    assert assessment.decision_maker_engaged is True
    assert assessment.bant.authority.met is True
    assert assessment.bant.authority.score == 50


def test_authority_keeps_the_engaged_decision_makers_higher_score() -> None:
    assessment = _assess(
        _member(
            "vp", title=VP_SALES, bant=_bant(authority=80, rule="vp"), touches=_touches("vp", 2)
        ),
    )
    assert assessment.bant.authority.score == 80
    assert assessment.bant.authority.evidence == _evidence("vp-authority")


def test_declared_decision_maker_engaged_meets_authority() -> None:
    assessment = _assess(_member("a", declared_decision_maker=True, touches=_touches("a", 1)))
    assert assessment.decision_maker_engaged is True
    assert assessment.bant.authority.met is True


def test_authority_is_not_met_when_the_only_decision_maker_is_inactive() -> None:
    assessment = _assess(
        _member("a", bant=_bant(authority=20), touches=_touches("a", 1)),
        _member("vp", title=VP_SALES, bant=_bant(authority=90), touches=_touches("vp", 60)),
    )
    assert assessment.decision_maker_engaged is False
    assert assessment.bant.authority.met is False
    assert assessment.bant.authority.score == 49


def test_authority_below_the_cap_is_kept_when_no_decision_maker_is_engaged() -> None:
    assessment = _assess(_member("a", bant=_bant(authority=20), touches=_touches("a", 1)))
    assert assessment.bant.authority.score == 20
    assert assessment.bant.authority.met is False


def test_budget_need_and_timing_each_take_the_strongest_member() -> None:
    assessment = _assess(
        _member("a", bant=_bant(budget=70, need=10, timing=40, rule="a"), touches=_touches("a", 1)),
        _member("b", bant=_bant(budget=20, need=60, timing=30, rule="b")),
        _member("c", bant=_bant(budget=10, need=5, timing=55, rule="c")),
    )
    bant = assessment.bant
    assert (bant.budget.score, bant.budget.evidence) == (70, _evidence("a-budget"))
    assert (bant.need.score, bant.need.evidence) == (60, _evidence("b-need"))
    assert (bant.timing.score, bant.timing.evidence) == (55, _evidence("c-timing"))
    assert bant.budget.met and bant.need.met and bant.timing.met


def test_met_is_judged_at_each_dimension_s_threshold() -> None:
    member = _member("a", bant=_bant(budget=60, need=60), touches=_touches("a", 1))
    assessment = _assess(member, met_thresholds={"budget": 70})
    assert assessment.bant.budget.score == 60
    assert assessment.bant.budget.met is False
    assert assessment.bant.need.met is True  # not named: the default 50


def test_involvement_is_kept_per_journey_stage_the_strongest_or_the_override() -> None:
    role = _assess(_member("a", touches=_touches("a", 3))).members[0]
    assert role.involvement is Involvement.DRIVER
    first = involvement_by_stage({}, stage=JourneyStage.SOLUTION_EXPLORATION, role=role)
    assert first == {"solution_exploration": "driver"}
    quieter = replace(role, involvement=Involvement.PARTICIPANT)
    kept = involvement_by_stage(first, stage=JourneyStage.SOLUTION_EXPLORATION, role=quieter)
    assert kept == {"solution_exploration": "driver"}  # the strongest at that stage stays
    later = involvement_by_stage(kept, stage=JourneyStage.VALIDATION, role=quieter)
    assert later == {"solution_exploration": "driver", "validation": "participant"}
    corrected = replace(role, involvement=Involvement.GATEKEEPER, overridden=True)
    fixed = involvement_by_stage(later, stage=JourneyStage.VALIDATION, role=corrected)
    assert fixed["validation"] == "gatekeeper"  # a person's correction wins
    assert involvement_by_stage(fixed, stage=None, role=role) == fixed


# --- stages -------------------------------------------------------------------------------


def test_account_funnel_stage_is_the_furthest_among_engaged_members() -> None:
    assessment = _assess(
        _member("a", funnel=FunnelStage.INTEREST, touches=_touches("a", 1)),
        _member("b", funnel=FunnelStage.INTENT, touches=_touches("b", 2)),
        _member("gone", funnel=FunnelStage.PURCHASE, touches=_touches("gone", 90)),
    )
    assert assessment.funnel_stage == FunnelStage.INTENT


def test_account_funnel_stage_uses_all_members_when_none_is_engaged() -> None:
    assessment = _assess(
        _member("a", funnel=FunnelStage.INTEREST),
        _member("b", funnel=FunnelStage.EVALUATION, touches=_touches("b", 90)),
    )
    assert assessment.funnel_stage == FunnelStage.EVALUATION


def test_account_journey_stage_is_the_furthest_among_engaged_members() -> None:
    assessment = _assess(
        _member("a", journey=JourneyStage.SOLUTION_EXPLORATION, touches=_touches("a", 1)),
        _member("b", journey=JourneyStage.VALIDATION, touches=_touches("b", 2)),
        _member("gone", journey=JourneyStage.CONSENSUS_CREATION, touches=_touches("gone", 90)),
    )
    assert assessment.journey_stage == JourneyStage.VALIDATION


@pytest.mark.parametrize("rejection", ["committee_rejected", "deal_rejected", "sales_rejected"])
def test_newest_rejection_sends_the_account_back_to_requirements_building(rejection: str) -> None:
    assessment = _assess(
        _member("a", journey=JourneyStage.CONSENSUS_CREATION, touches=_touches("a", 3, 5)),
        _member(
            "b",
            journey=JourneyStage.CONSENSUS_CREATION,
            touches=_touches("b", 1, type_=rejection),
        ),
    )
    assert assessment.journey_stage == JourneyStage.REQUIREMENTS_BUILDING


def test_rejection_followed_by_another_members_activity_does_not_send_the_account_back() -> None:
    assessment = _assess(
        _member("a", journey=JourneyStage.CONSENSUS_CREATION, touches=_touches("a", 1)),
        _member(
            "b",
            journey=JourneyStage.VALIDATION,
            touches=_touches("b", 3, type_="committee_rejected"),
        ),
    )
    assert assessment.journey_stage == JourneyStage.CONSENSUS_CREATION


def test_rejection_never_moves_the_journey_forward() -> None:
    assessment = _assess(
        _member(
            "a",
            journey=JourneyStage.PROBLEM_IDENTIFICATION,
            touches=_touches("a", 1, type_="committee_rejected"),
        ),
    )
    assert assessment.journey_stage == JourneyStage.PROBLEM_IDENTIFICATION


# --- reasons and the empty account ----------------------------------------------------------


def test_every_role_has_reasons_written_as_sentences() -> None:
    assessment = _assess(
        _member("d", touches=_touches("d", 1, 2)),
        _member("p", title=ENGINEER, touches=_touches("p", 1)),
        _member("g", title=VP_SALES),
        _member("n", title=ENGINEER),
        _member("o", involvement_override=Involvement.PARTICIPANT),
    )
    assert {r.involvement for r in assessment.members} == set(Involvement)
    for role in assessment.members:
        assert role.reasons
        for reason in role.reasons:
            assert reason[0].isupper()
            assert reason.endswith(".")


def test_override_is_explained_in_the_reasons() -> None:
    assessment = _assess(_member("o", involvement_override=Involvement.DRIVER))
    assert any("by hand" in reason for reason in _role(assessment, "o").reasons)


def test_account_without_members_has_zero_bant_and_no_stages() -> None:
    assessment = _assess()
    zero = Dimension(score=0, met=False)
    assert assessment.members == ()
    assert assessment.bant == Bant(budget=zero, authority=zero, need=zero, timing=zero)
    assert assessment.funnel_stage is None
    assert assessment.journey_stage is None
    assert assessment.decision_maker_engaged is False
    assert assessment.domain == "acme.com"
