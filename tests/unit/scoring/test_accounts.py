"""The buying team: account domains, committee functions, involvement, overrides and the
reasons given for each role."""

from __future__ import annotations

from dataclasses import replace

import pytest

from services.scoring.domain.accounts import (
    CommitteeFunction,
    Involvement,
    Member,
    account_domain,
    committee_function,
    involvement_by_stage,
)
from services.scoring.domain.free_mail import FREE_MAIL_DOMAINS
from services.scoring.domain.titles import JobFunction, Seniority, Title
from shared.domain import JourneyStage
from tests.unit.scoring._account_fixtures import (
    ENGINEER,
    VP_SALES,
    _assess,
    _member,
    _role,
    _title,
    _touches,
)

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


# --- involvement per journey stage --------------------------------------------------------


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


# --- reasons ------------------------------------------------------------------------------


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
