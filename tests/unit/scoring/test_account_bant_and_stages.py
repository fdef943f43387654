"""The account as a whole: its BANT and its funnel and journey stages, taken from its buying
team, and the account without members."""

from __future__ import annotations

import pytest

from services.scoring.domain.model import Bant, Dimension
from shared.domain import FunnelStage, JourneyStage
from tests.unit.scoring._account_fixtures import (
    VP_SALES,
    _assess,
    _bant,
    _evidence,
    _member,
    _touches,
)

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


# --- the empty account --------------------------------------------------------------------


def test_account_without_members_has_zero_bant_and_no_stages() -> None:
    assessment = _assess()
    zero = Dimension(score=0, met=False)
    assert assessment.members == ()
    assert assessment.bant == Bant(budget=zero, authority=zero, need=zero, timing=zero)
    assert assessment.funnel_stage is None
    assert assessment.journey_stage is None
    assert assessment.decision_maker_engaged is False
    assert assessment.domain == "acme.com"
