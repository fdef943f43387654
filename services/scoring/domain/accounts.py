"""The buying team: leads grouped into accounts, each member's role, and the account's view.

B2B purchases are made by a team, not a person (domain notes, "The buying team"). This module
groups leads by company domain, infers each member's involvement (driver, participant,
gatekeeper, not involved) and committee function (buyer, user, management, reviewer,
purchasing), and rolls the members' BANT and stages up into one assessment of the account.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from services.scoring.domain.free_mail import FREE_MAIL_DOMAINS
from services.scoring.domain.model import Bant, Dimension, Touch
from services.scoring.domain.titles import JobFunction, Seniority, Title
from shared.domain import FUNNEL_ORDER, JOURNEY_ORDER, FunnelStage, JourneyStage

# A dimension's threshold when the model names none.
DEFAULT_MET_THRESHOLD = 50

# A rejection by the committee or by sales; see assess_account for what it does to the journey.
REJECTION_TYPES: frozenset[str] = frozenset(
    {"committee_rejected", "deal_rejected", "sales_rejected"}
)

_REVIEWER_AREAS: dict[JobFunction, str] = {
    JobFunction.IT: "it",
    JobFunction.HR: "hr",
    JobFunction.EHS: "ehs",
    JobFunction.MAINTENANCE: "maintenance",
}
_AREA_LABELS: dict[str, str] = {"it": "IT", "hr": "HR", "ehs": "EHS", "maintenance": "maintenance"}
_LEVEL_LABELS: dict[Seniority, str] = {
    Seniority.C_LEVEL: "C-level",
    Seniority.VP: "VP",
    Seniority.DIRECTOR: "director",
}
_USER_FUNCTIONS = frozenset({JobFunction.ENGINEERING, JobFunction.OPERATIONS, JobFunction.PRODUCT})


def _clean_domain(domain: str) -> str:
    cleaned = domain.strip().lower().rstrip(".")
    return cleaned.removeprefix("www.")


def account_domain(*, email: str | None, company_domain: str | None) -> str | None:
    """The domain that names a lead's account, or None if only free mail is known."""
    if company_domain:
        cleaned = _clean_domain(company_domain)
        if cleaned and cleaned not in FREE_MAIL_DOMAINS:
            return cleaned
    if email and "@" in email:
        cleaned = _clean_domain(email.rsplit("@", 1)[1])
        if cleaned and cleaned not in FREE_MAIL_DOMAINS:
            return cleaned
    return None


class Involvement(StrEnum):
    """How much a member takes part in the current stage."""

    DRIVER = "driver"
    PARTICIPANT = "participant"
    GATEKEEPER = "gatekeeper"
    NOT_INVOLVED = "not_involved"


class CommitteeFunction(StrEnum):
    """The part a member plays in the buying committee."""

    BUYER = "buyer"
    USER = "user"
    MANAGEMENT = "management"
    REVIEWER = "reviewer"
    PURCHASING = "purchasing"


@dataclass(frozen=True)
class Activity:
    """What the committee rules need of a member's touches as of `now`: how many fall in the
    engagement window and the newest of them, the newest touch at all and the newest rejection
    (touches after `now` left out)."""

    recent_count: int = 0
    recent_last_at: datetime | None = None
    last_at: datetime | None = None
    last_rejection_at: datetime | None = None


def activity_of(touches: Sequence[Touch], *, now: datetime, window_start: datetime) -> Activity:
    """A member's activity from their touches."""
    history = [t for t in touches if t.occurred_at <= now]
    recent = [t.occurred_at for t in history if t.occurred_at >= window_start]
    rejections = [t.occurred_at for t in history if t.type in REJECTION_TYPES]
    return Activity(
        recent_count=len(recent),
        recent_last_at=max(recent, default=None),
        last_at=max((t.occurred_at for t in history), default=None),
        last_rejection_at=max(rejections, default=None),
    )


@dataclass(frozen=True)
class Member:
    """One lead of an account, with what scoring already knows about them: their touches, or
    (`activity`) the summary of them the committee rules need."""

    lead_id: str
    title: Title
    bant: Bant
    funnel_stage: FunnelStage | None
    journey_stage: JourneyStage | None
    touches: tuple[Touch, ...] = ()
    declared_decision_maker: bool = False
    involvement_override: Involvement | None = None
    function_override: CommitteeFunction | None = None
    activity: Activity | None = None


@dataclass(frozen=True)
class MemberRole:
    """A member's inferred (or overridden) involvement and committee function, with reasons."""

    lead_id: str
    involvement: Involvement
    function: CommitteeFunction
    reviewer_area: str | None
    decision_maker: bool
    overridden: bool
    reasons: tuple[str, ...]


@dataclass(frozen=True)
class AccountAssessment:
    """The buying team's roles and the account's combined BANT and stages."""

    domain: str
    members: tuple[MemberRole, ...]
    bant: Bant
    funnel_stage: FunnelStage | None
    journey_stage: JourneyStage | None
    decision_maker_engaged: bool


def _describe(title: Title) -> str:
    return f"Title {title.raw!r}" if title.raw.strip() else "An empty title"


def _classify(title: Title) -> tuple[CommitteeFunction, str | None, str]:
    """The committee function, reviewer area and the reason, for one title."""
    who = _describe(title)
    if title.function is JobFunction.PURCHASING:
        return (
            CommitteeFunction.PURCHASING,
            None,
            f"{who} is in purchasing, which negotiates the commercial terms.",
        )
    if title.function in _REVIEWER_AREAS:
        area = _REVIEWER_AREAS[title.function]
        return (
            CommitteeFunction.REVIEWER,
            area,
            f"{who} is in {_AREA_LABELS[area]}, an internal reviewer whose sign-off is needed.",
        )
    if title.decision_maker:
        level = _LEVEL_LABELS.get(title.seniority, "senior") if title.seniority else "senior"
        return (
            CommitteeFunction.MANAGEMENT,
            None,
            f"{who} is at {level} seniority, in the management chain with decision authority.",
        )
    if title.function in _USER_FUNCTIONS:
        return (
            CommitteeFunction.USER,
            None,
            f"{who} is in {title.function}, whose team will use and implement the solution.",
        )
    return (
        CommitteeFunction.BUYER,
        None,
        f"{who} fits no other committee role, so the member is read as the initiating buyer.",
    )


def committee_function(title: Title) -> tuple[CommitteeFunction, str | None]:
    """A title's committee function and, for reviewers, the area they review.

    Order of precedence, first match wins:
    1. purchasing function -> PURCHASING (even a purchasing director runs the commercial stage);
    2. it / hr / ehs / maintenance function -> REVIEWER with that area (an IT director reviews
       IT concerns rather than signing off the whole purchase);
    3. c_level / vp / director in any other function -> MANAGEMENT;
    4. engineering / operations / product -> USER;
    5. anyone else -> BUYER, the initiator.
    """
    function, area, _ = _classify(title)
    return function, area


def _zero_bant() -> Bant:
    zero = Dimension(score=0, met=False)
    return Bant(budget=zero, authority=zero, need=zero, timing=zero)


def _strongest(dimensions: Sequence[Dimension], met_threshold: int) -> Dimension:
    """The highest-scoring dimension, its evidence kept and `met` judged at the threshold."""
    best = max(dimensions, key=lambda d: d.score)
    return Dimension(score=best.score, met=best.score >= met_threshold, evidence=best.evidence)


def _plural(count: int) -> str:
    return f"{count} touch" if count == 1 else f"{count} touches"


def assess_account(
    *,
    domain: str,
    members: Sequence[Member],
    now: datetime,
    engaged_days: float,
    met_thresholds: Mapping[str, int],
) -> AccountAssessment:
    """Each member's role and the account's BANT and stages, as of `now`.

    Rules:
    - Touches after `now` have not happened yet and are ignored throughout.
    - A member is engaged if they have a touch within `engaged_days` before `now`.
    - Involvement: among engaged members without an involvement override, the one with the
      most touches in the window is the DRIVER (ties: newest touch, then lowest lead_id); no
      driver is inferred when a member was set to DRIVER by hand, so there is one driver
      unless people say otherwise. Other engaged members are PARTICIPANTs. A member who is
      not engaged but is a decision maker (by title or declared) or whose function is
      REVIEWER or PURCHASING is a GATEKEEPER: their approval is needed though they are not
      active. Everyone else is NOT_INVOLVED. Overrides win over inference, and the
      overridden function is the one gatekeeping is judged on.
    - Account BANT: budget, need and timing are each the strongest member's dimension,
      evidence kept, met at the dimension's `met_thresholds` (the model's; 50 if it names
      none). Authority is met only when a decision maker is engaged: then its score is the
      highest engaged decision maker's authority score, raised to at least its threshold;
      otherwise it is the highest authority score of any member capped just below it,
      because a senior title nobody hears from cannot sign.
    - Account funnel stage: the furthest funnel stage among engaged members (among all
      members if none is engaged).
    - Account journey stage: the furthest journey stage of the same members, except after a
      rejection. If an engaged member's newest rejection touch (committee_rejected,
      deal_rejected or sales_rejected) is newer than every other member's newest touch, the
      team is taken back to REQUIREMENTS_BUILDING: a rejection in consensus sends the team
      back to its requirements, and only activity by someone else after it shows the team
      has moved on. It never moves the journey forward.
    - No members: no roles, zero BANT, no stages.
    """
    if not members:
        return AccountAssessment(
            domain=domain,
            members=(),
            bant=_zero_bant(),
            funnel_stage=None,
            journey_stage=None,
            decision_maker_engaged=False,
        )

    window_start = now - timedelta(days=engaged_days)
    recent: dict[str, Activity] = {
        m.lead_id: m.activity or activity_of(m.touches, now=now, window_start=window_start)
        for m in members
    }
    engaged = [m for m in members if recent[m.lead_id].recent_count]
    engaged_ids = {m.lead_id for m in engaged}

    driver_id = _infer_driver(members, engaged, recent)
    days = f"{engaged_days:g}"
    roles = tuple(
        _role(
            m,
            driver_id=driver_id,
            recent=recent[m.lead_id],
            engaged=m.lead_id in engaged_ids,
            days=days,
        )
        for m in members
    )

    engaged_dms = [m for m in engaged if _is_decision_maker(m)]

    def threshold(name: str) -> int:
        return met_thresholds.get(name, DEFAULT_MET_THRESHOLD)

    bant = Bant(
        budget=_strongest([m.bant.budget for m in members], threshold("budget")),
        authority=_authority(members, engaged_dms, threshold("authority")),
        need=_strongest([m.bant.need for m in members], threshold("need")),
        timing=_strongest([m.bant.timing for m in members], threshold("timing")),
    )

    pool = engaged or list(members)
    funnel_stages = [m.funnel_stage for m in pool if m.funnel_stage is not None]
    journey_stages = [m.journey_stage for m in pool if m.journey_stage is not None]
    funnel = max(funnel_stages, key=FUNNEL_ORDER.index) if funnel_stages else None
    journey = max(journey_stages, key=JOURNEY_ORDER.index) if journey_stages else None
    if _rejected_last(members, engaged_ids, recent):
        back = JourneyStage.REQUIREMENTS_BUILDING
        if journey is None or JOURNEY_ORDER.index(journey) > JOURNEY_ORDER.index(back):
            journey = back

    return AccountAssessment(
        domain=domain,
        members=roles,
        bant=bant,
        funnel_stage=funnel,
        journey_stage=journey,
        decision_maker_engaged=bool(engaged_dms),
    )


def _is_decision_maker(member: Member) -> bool:
    return member.title.decision_maker or member.declared_decision_maker


def _infer_driver(
    members: Sequence[Member], engaged: Sequence[Member], recent: dict[str, Activity]
) -> str | None:
    """The lead_id of the inferred driver, or None when there is none to infer."""
    if any(m.involvement_override is Involvement.DRIVER for m in members):
        return None
    candidates = [m for m in engaged if m.involvement_override is None]
    if not candidates:
        return None
    # Sort by lead_id first so the stable sort below breaks full ties on the lowest lead_id.
    candidates.sort(key=lambda m: m.lead_id)
    candidates.sort(
        key=lambda m: (recent[m.lead_id].recent_count, recent[m.lead_id].recent_last_at),
        reverse=True,
    )
    return candidates[0].lead_id


def _role(
    member: Member, *, driver_id: str | None, recent: Activity, engaged: bool, days: str
) -> MemberRole:
    """One member's role: function first, since gatekeeping depends on it."""
    reasons: list[str] = []
    function, area, why = _classify(member.title)
    reasons.append(why)
    if member.function_override is not None and member.function_override is not function:
        reasons.append(
            f"Committee function set by hand to {member.function_override}, "
            f"overriding the inferred {function}."
        )
        function = member.function_override
        # Only a reviewer has an area; a hand-set reviewer keeps the one the title shows, if any.
        title_function = member.title.function
        area = (
            _REVIEWER_AREAS.get(title_function)
            if function is CommitteeFunction.REVIEWER and title_function is not None
            else None
        )

    decision_maker = _is_decision_maker(member)
    if member.declared_decision_maker:
        reasons.append("The member declared they are a decision maker.")

    if member.lead_id == driver_id:
        involvement = Involvement.DRIVER
        reasons.append(
            f"Most active engaged member: {_plural(recent.recent_count)} in the last {days} days."
        )
    elif engaged:
        involvement = Involvement.PARTICIPANT
        reasons.append(
            f"Engaged with {_plural(recent.recent_count)} in the last {days} days, "
            "but not the member leading the stage."
        )
    elif decision_maker or function in (CommitteeFunction.REVIEWER, CommitteeFunction.PURCHASING):
        involvement = Involvement.GATEKEEPER
        if decision_maker:
            because = "a decision maker"
        elif area is not None:
            because = f"the {_AREA_LABELS[area]} reviewer"
        else:
            because = f"the {function} function"
        reasons.append(
            f"No touch in the last {days} days, but their approval is needed as {because}."
        )
    else:
        involvement = Involvement.NOT_INVOLVED
        reasons.append(f"No touch in the last {days} days and no approval role.")

    if member.involvement_override is not None and member.involvement_override is not involvement:
        reasons.append(
            f"Involvement set by hand to {member.involvement_override}, "
            f"overriding the inferred {involvement}."
        )
        involvement = member.involvement_override

    return MemberRole(
        lead_id=member.lead_id,
        involvement=involvement,
        function=function,
        reviewer_area=area,
        decision_maker=decision_maker,
        overridden=member.involvement_override is not None or member.function_override is not None,
        reasons=tuple(reasons),
    )


def _authority(
    members: Sequence[Member], engaged_dms: Sequence[Member], met_threshold: int
) -> Dimension:
    """Authority is met only through an engaged decision maker."""
    if engaged_dms:
        best = max((m.bant.authority for m in engaged_dms), key=lambda d: d.score)
        return Dimension(score=max(best.score, met_threshold), met=True, evidence=best.evidence)
    best = max((m.bant.authority for m in members), key=lambda d: d.score)
    capped = max(0, min(best.score, met_threshold - 1))
    return Dimension(score=capped, met=False, evidence=best.evidence)


def _rejected_last(
    members: Sequence[Member], engaged_ids: set[str], activity: dict[str, Activity]
) -> bool:
    """Whether an engaged member's newest rejection is newer than anyone else's newest touch."""
    for member in members:
        if member.lead_id not in engaged_ids:
            continue
        rejected_at = activity[member.lead_id].last_rejection_at
        if rejected_at is None:
            continue
        others = [
            seen
            for other in members
            if other.lead_id != member.lead_id
            and (seen := activity[other.lead_id].last_at) is not None
        ]
        if all(rejected_at > seen for seen in others):
            return True
    return False


_INVOLVEMENT_RANK = {
    Involvement.NOT_INVOLVED: 0,
    Involvement.GATEKEEPER: 1,
    Involvement.PARTICIPANT: 2,
    Involvement.DRIVER: 3,
}


def involvement_by_stage(
    previous: Mapping[str, str], *, stage: JourneyStage | None, role: MemberRole
) -> dict[str, str]:
    """A member's involvement at each journey stage the team has been at (seed: driver,
    participant and gatekeeper differ by stage): `previous` with the team's current `stage`
    set to the strongest involvement the member had while the team was there, or to the
    member's override, which wins."""
    found = {k: v for k, v in previous.items() if v in {i.value for i in Involvement}}
    if stage is None:
        return found
    before = found.get(stage.value)
    if (
        before is None
        or role.overridden
        or _INVOLVEMENT_RANK[role.involvement] > _INVOLVEMENT_RANK[Involvement(before)]
    ):
        found[stage.value] = role.involvement.value
    return found
