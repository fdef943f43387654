"""Routing rules: which team owns a lead, which member gets it, and how fast they must act.

Rules come from the routing configuration (see config.py): the first rule a lead matches
decides its team, with a default team so every lead has an owner. Within a team leads go
round-robin to members who are present and below capacity.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass

from services.routing.domain.config import MemberConfig, RoutingConfig, RoutingRule, TeamConfig
from shared.domain import FUNNEL_ORDER

QUALIFICATION_ORDER: tuple[str, ...] = ("unqualified", "mql", "sql", "customer")
_FUNNEL_RANK = {stage.value: rank for rank, stage in enumerate(FUNNEL_ORDER)}
DEFAULT_RULE = "default"


@dataclass(frozen=True)
class LeadFacts:
    """What routing knows of a lead when it decides."""

    qualification: str
    funnel_stage: str | None
    score: int
    fit: int = 0
    engagement: int = 0
    persona: str | None = None
    segment: str | None = None
    country: str | None = None
    industry: str | None = None
    employees: int | None = None
    account_role: str | None = None


@dataclass(frozen=True)
class RoutingDecision:
    """The owning team and the rule that chose it; `member` when the decision names the owner
    too (a lead imported with its CRM owner), else the team's round robin picks one."""

    team: str
    rule: str
    member: str | None = None


IMPORTED_OWNER_RULE = "imported_owner"


def imported_owner(owner: str, config: RoutingConfig) -> RoutingDecision | None:
    """The decision that keeps an imported lead with its owner in the CRM it came from: the
    first team (in the file's order) with a member whose id or name is `owner` (case and outer
    spaces aside); None when no member is."""
    wanted = owner.strip().casefold()
    if not wanted:
        return None
    for name, team in config.teams.items():
        for member in team.members:
            if wanted in (member.id.casefold(), (member.name or "").strip().casefold()):
                return RoutingDecision(team=name, rule=IMPORTED_OWNER_RULE, member=member.id)
    return None


def _listed(values: Iterable[str]) -> str:
    return "[" + ", ".join(values) + "]"


def _member_of(label: str, value: str | None, allowed: tuple[str, ...]) -> tuple[bool, str]:
    if value is None:
        return False, f"{label} unknown, rule needs {_listed(allowed)}"
    if value in allowed:
        return True, f"{label} {value} in {_listed(allowed)}"
    return False, f"{label} {value} not in {_listed(allowed)}"


def _no_less(label: str, value: int | None, minimum: int) -> tuple[bool, str]:
    if value is None:
        return False, f"{label} unknown, rule needs at least {minimum}"
    if value >= minimum:
        return True, f"{label} {value} at least {minimum}"
    return False, f"{label} {value} below {minimum}"


def _no_more(label: str, value: int | None, maximum: int) -> tuple[bool, str]:
    if value is None:
        return False, f"{label} unknown, rule needs at most {maximum}"
    if value <= maximum:
        return True, f"{label} {value} at most {maximum}"
    return False, f"{label} {value} above {maximum}"


def _clean(value: str | None) -> str | None:
    # Upstream facts arrive as free text; blank means unknown.
    text = str(value).strip() if value is not None else ""
    return text or None


def _conditions(
    rule: RoutingRule, lead: LeadFacts, regions: Mapping[str, tuple[str, ...]]
) -> list[tuple[bool, str]]:
    """Each condition the rule sets, whether the lead meets it, and why in plain words."""
    checks: list[tuple[bool, str]] = []
    country = _clean(lead.country)
    country = country.upper() if country else None
    if rule.qualifications:
        checks.append(_member_of("qualification", _clean(lead.qualification), rule.qualifications))
    if rule.funnel_stages:
        checks.append(_member_of("funnel stage", _clean(lead.funnel_stage), rule.funnel_stages))
    if rule.segment is not None:
        segment = _clean(lead.segment)
        checks.append(_member_of("segment", segment.lower() if segment else None, (rule.segment,)))
    if rule.countries:
        checks.append(_member_of("country", country, rule.countries))
    if rule.regions:
        if country is None:
            checks.append((False, f"country unknown, rule needs region {_listed(rule.regions)}"))
        else:
            inside = [r for r in rule.regions if country in regions.get(r, ())]
            if inside:
                checks.append((True, f"country {country} in region {inside[0]}"))
            else:
                checks.append((False, f"country {country} not in region {_listed(rule.regions)}"))
    if rule.industries:
        industry = _clean(lead.industry)
        checks.append(
            _member_of("industry", industry.casefold() if industry else None, rule.industries)
        )
    if rule.min_employees is not None:
        checks.append(_no_less("employees", lead.employees, rule.min_employees))
    if rule.max_employees is not None:
        checks.append(_no_more("employees", lead.employees, rule.max_employees))
    if rule.min_score is not None:
        checks.append(_no_less("score", lead.score, rule.min_score))
    if rule.max_score is not None:
        checks.append(_no_more("score", lead.score, rule.max_score))
    if rule.personas:
        checks.append(_member_of("persona", _clean(lead.persona), rule.personas))
    if rule.min_fit is not None:
        checks.append(_no_less("fit", lead.fit, rule.min_fit))
    if rule.min_engagement is not None:
        checks.append(_no_less("engagement", lead.engagement, rule.min_engagement))
    if rule.account_roles:
        checks.append(_member_of("account role", _clean(lead.account_role), rule.account_roles))
    return checks


def rule_matches(
    rule: RoutingRule, lead: LeadFacts, *, regions: Mapping[str, tuple[str, ...]]
) -> bool:
    """True when the lead meets every condition the rule sets (a rule without any matches all)."""
    return all(met for met, _ in _conditions(rule, lead, regions))


def route(lead: LeadFacts, config: RoutingConfig) -> RoutingDecision:
    """The first rule the lead matches decides its team; otherwise the default team."""
    for rule in config.rules:
        if rule_matches(rule, lead, regions=config.regions):
            return RoutingDecision(team=rule.team, rule=rule.name)
    return RoutingDecision(team=config.default_team, rule=DEFAULT_RULE)


def explain_rules(lead: LeadFacts, config: RoutingConfig) -> list[tuple[str, bool, str]]:
    """Every rule in order with whether the lead matches it and why, each judged on its own."""
    explained: list[tuple[str, bool, str]] = []
    for rule in config.rules:
        checks = _conditions(rule, lead, config.regions)
        matched = all(met for met, _ in checks)
        if not checks:
            reason = "no conditions, matches every lead"
        else:
            reason = "; ".join(text for met, text in checks if met is matched)
        explained.append((rule.name, matched, reason))
    return explained


def pick_member(
    *,
    members: Sequence[MemberConfig],
    open_counts: Mapping[str, int],
    away: Collection[str],
    last_assigned: str | None,
) -> str | None:
    """The next present member below capacity after `last_assigned`; None sends it to the queue."""
    ids = [m.id for m in members]
    start = ids.index(last_assigned) + 1 if last_assigned in ids else 0
    for step in range(len(members)):
        member = members[(start + step) % len(members)]
        if member.id in away or open_counts.get(member.id, 0) >= member.capacity:
            continue
        return member.id
    return None


def sla_seconds(team: TeamConfig, *, qualification: str, funnel_stage: str | None) -> float | None:
    """How soon the team must contact the lead; a qualification's SLA beats its stage's."""
    if str(qualification) in team.sla:
        return team.sla[str(qualification)]
    if funnel_stage is not None and str(funnel_stage) in team.sla:
        return team.sla[str(funnel_stage)]
    return None


def is_regression(old_stage: str | None, new_stage: str | None) -> bool:
    """True when the funnel stage moved back; unknown or missing stages are no regression."""
    if old_stage is None or new_stage is None:
        return False
    old, new = _FUNNEL_RANK.get(str(old_stage)), _FUNNEL_RANK.get(str(new_stage))
    return old is not None and new is not None and new < old


def at_least(qualification: str, minimum: str) -> bool:
    """True when the qualification reaches `minimum`; disqualified never reaches anything."""
    if qualification not in QUALIFICATION_ORDER or minimum not in QUALIFICATION_ORDER:
        return False
    return QUALIFICATION_ORDER.index(qualification) >= QUALIFICATION_ORDER.index(minimum)
