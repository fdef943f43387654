"""The routing configuration as data: teams, members, SLAs, routing rules and playbooks, read
from a versioned TOML file and checked before any lead is routed with it."""

from __future__ import annotations

import re
import tomllib
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from shared.domain import FUNNEL_ORDER, Qualification
from shared.durations import Duration

QUALIFICATIONS: tuple[str, ...] = tuple(q.value for q in Qualification)
FUNNEL_STAGES: tuple[str, ...] = tuple(s.value for s in FUNNEL_ORDER)
ACCOUNT_ROLES: tuple[str, ...] = ("driver", "participant", "gatekeeper", "not_involved")
# A minimum qualification must be on the ladder; "disqualified" and "recycled" are off it.
_LADDER: tuple[str, ...] = tuple(
    q for q in QUALIFICATIONS if q not in (Qualification.DISQUALIFIED, Qualification.RECYCLED)
)

_ERROR_TYPE = "routing_config"
_MEMBER_ID_RE = re.compile(r"^[^@\s]+@[^@\s]+$")
_COUNTRY_RE = re.compile(r"^[A-Z]{2}$")
_MAX_DURATION_S = 365 * 86_400.0


class ConfigError(ValueError):
    """A routing configuration that cannot be used: which file, where in it, and why."""

    def __init__(self, source: str, place: str, reason: str) -> None:
        super().__init__(f"{source}: {place}: {reason}")
        self.source, self.place, self.reason = source, place, reason


def _refuse(reason: str, place: str = "") -> PydanticCustomError:
    # The place (relative to the model being checked) travels in the context, so parse_config
    # can name the exact key even for checks that span several fields.
    return PydanticCustomError(_ERROR_TYPE, "{reason}", {"reason": reason, "place": place})


def _one_of(value: str, allowed: tuple[str, ...], what: str) -> str:
    text = str(value)
    if text not in allowed:
        raise _refuse(f"{text!r} is not {what} (one of: {', '.join(allowed)})")
    return text


def _qualification(value: str) -> str:
    return _one_of(value, QUALIFICATIONS, "a qualification")


def _funnel_stage(value: str) -> str:
    return _one_of(value, FUNNEL_STAGES, "a funnel stage")


def _sla_key(value: str) -> str:
    return _one_of(value, QUALIFICATIONS + FUNNEL_STAGES, "a qualification or funnel stage")


def _account_role(value: str) -> str:
    return _one_of(value, ACCOUNT_ROLES, "an account role")


def _ladder_step(value: str) -> str:
    return _one_of(value, _LADDER, "a qualification on the ladder")


def _country(value: str) -> str:
    code = value.strip().upper()
    if not _COUNTRY_RE.fullmatch(code):
        raise _refuse(f"{value!r} is not a two-letter ISO country code (e.g. DE, US)")
    return code


def _industry(value: str) -> str:
    name = value.strip().casefold()
    if not name:
        raise _refuse("an industry cannot be blank")
    return name


QualificationName = Annotated[str, AfterValidator(_qualification)]
FunnelStageName = Annotated[str, AfterValidator(_funnel_stage)]
SlaKey = Annotated[str, AfterValidator(_sla_key)]
AccountRole = Annotated[str, AfterValidator(_account_role)]
CountryCode = Annotated[str, AfterValidator(_country)]
Industry = Annotated[str, AfterValidator(_industry)]
Name = Annotated[str, Field(min_length=1, max_length=100)]
Delay = Annotated[Duration, Field(ge=0, le=_MAX_DURATION_S)]
Within = Annotated[Duration, Field(gt=0, le=_MAX_DURATION_S)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class MemberConfig(_Strict):
    """A seller who can own leads, and how many open leads they take at most."""

    id: str = Field(min_length=1, max_length=320)
    name: str | None = None
    # 0 keeps the member on the team but gives them no new leads.
    capacity: int = Field(50, ge=0)

    @field_validator("id")
    @classmethod
    def _email_ish(cls, value: str) -> str:
        """Member ids are the address sales tools know the seller by."""
        if not _MEMBER_ID_RE.fullmatch(value):
            raise _refuse(f"{value!r} is not an email-style id such as ana@seller.example")
        return value


class TeamConfig(_Strict):
    """A team: its members, where its alerts go, how fast it must reach out, what happens late."""

    members: tuple[MemberConfig, ...] = ()
    webhook_url: str | None = None
    sla: dict[SlaKey, Within] = Field(default_factory=dict)
    # "reassign": a missed SLA moves the lead to the next member; "notify": only alerts.
    escalation: Literal["reassign", "notify"] = "notify"
    # The team's shared inbox, and who a task (an escalation, a regression alert, a sales alert
    # without a webhook, an event follow-up) is emailed to: "member" (the lead's owner, else
    # the team inbox), "team" (the inbox) or "none" (listed in the API only).
    email: str | None = Field(None, max_length=320)
    tasks_to: Literal["member", "team", "none"] = "member"

    @field_validator("email")
    @classmethod
    def _inbox(cls, value: str | None) -> str | None:
        """A team inbox is an email address."""
        if value is not None and not _MEMBER_ID_RE.fullmatch(value):
            raise _refuse(f"{value!r} is not an email address such as sales@seller.example")
        return value

    def task_recipient(self, member: str | None) -> str | None:
        """Where a task for a lead owned by `member` (None: queued) is emailed; None: nowhere."""
        if self.tasks_to == "none":
            return None
        if self.tasks_to == "member" and member is not None:
            return member
        return self.email

    @field_validator("webhook_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        """Alerts are posted over HTTP, so the URL must be an absolute http(s) URL."""
        if value is None:
            return value
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise _refuse(f"{value!r} is not an http:// or https:// URL")
        return value

    @model_validator(mode="after")
    def _unique_members(self) -> TeamConfig:
        """A member listed twice would get twice the share of the round-robin."""
        seen: dict[str, int] = {}
        for i, member in enumerate(self.members):
            if member.id in seen:
                raise _refuse(
                    f"member {member.id!r} is already listed at members.{seen[member.id]}",
                    f"members.{i}.id",
                )
            seen[member.id] = i
        return self


class RoutingRule(_Strict):
    """Send leads that meet every condition to a team; an empty condition matches anyone."""

    name: Name
    team: Name
    qualifications: tuple[QualificationName, ...] = ()
    funnel_stages: tuple[FunnelStageName, ...] = ()
    segment: Literal["b2b", "b2c"] | None = None
    countries: tuple[CountryCode, ...] = ()
    regions: tuple[Name, ...] = ()
    industries: tuple[Industry, ...] = ()
    min_employees: int | None = Field(None, ge=0)
    max_employees: int | None = Field(None, ge=0)
    min_score: int | None = Field(None, ge=0, le=100)
    max_score: int | None = Field(None, ge=0, le=100)
    # Fit (who the lead is) and engagement (what they did), 0-100 each.
    personas: tuple[str, ...] = ()  # the scoring model's persona names
    min_fit: int | None = Field(None, ge=0, le=100)
    min_engagement: int | None = Field(None, ge=0, le=100)
    account_roles: tuple[AccountRole, ...] = ()

    @model_validator(mode="after")
    def _ranges(self) -> RoutingRule:
        """A range whose minimum is above its maximum would match nobody."""
        for field in ("employees", "score"):
            low, high = getattr(self, f"min_{field}"), getattr(self, f"max_{field}")
            if low is not None and high is not None and low > high:
                raise _refuse(f"min_{field} {low} is more than max_{field} {high}", f"max_{field}")
        return self


class AbandonedCartConfig(_Strict):
    """Email a lead who left a cart, after a delay, and optionally once more."""

    enabled: bool = True
    delay_s: Delay = 3600
    # The delay for carts from one source instead (e.g. shopify = "10h", Shopify's own timing).
    delay_by_source: dict[str, Delay] = {}
    second_reminder_after_s: Within | None = None

    def delay_for(self, source: str | None) -> float:
        """Seconds to wait after a cart from `source` before its email."""
        return self.delay_by_source.get(source or "", self.delay_s)


class EventFollowupConfig(_Strict):
    """Follow up event attendees; leads at the minimum qualification also get a sales task."""

    enabled: bool = True
    delay_s: Delay = 86400
    task_min_qualification: Annotated[str, AfterValidator(_ladder_step)] = "mql"


class TrialNudgeConfig(_Strict):
    """Nudge a trial that has not been activated after a delay."""

    enabled: bool = True
    delay_s: Delay = 259200


class AlertConfig(_Strict):
    """An alert playbook that is either on or off."""

    enabled: bool = True


class PlaybooksConfig(_Strict):
    """The follow-up playbooks and the cap on marketing email."""

    abandoned_cart: AbandonedCartConfig = AbandonedCartConfig()
    event_followup: EventFollowupConfig = EventFollowupConfig()
    trial_nudge: TrialNudgeConfig = TrialNudgeConfig()
    sales_alert: AlertConfig = AlertConfig()
    stage_regression_alert: AlertConfig = AlertConfig()
    # At most one marketing email per lead per this long, so playbooks cannot pile up.
    marketing_cap_s: Delay = 57600
    # Consent (the lead's newest statement per purpose): a marketing email is cancelled when
    # the lead refused any of these purposes; with `require_consent`, also unless it granted
    # one of them (opt-in, as GDPR/CASL deployments need).
    consent_purposes: tuple[str, ...] = ("marketing", "email", "email_marketing")
    require_consent: bool = False


class RoutingConfig(_Strict):
    """A whole routing configuration; `version` is recorded on every assignment made with it."""

    version: str = Field(min_length=1, max_length=64)
    default_team: Name
    regions: dict[Name, tuple[CountryCode, ...]] = Field(default_factory=dict)
    rules: tuple[RoutingRule, ...] = ()
    teams: dict[Name, TeamConfig] = Field(default_factory=dict)
    playbooks: PlaybooksConfig = PlaybooksConfig()

    @model_validator(mode="after")
    def _consistent(self) -> RoutingConfig:
        """Rule names are unique, and every team and region named is defined."""
        known_teams = ", ".join(sorted(self.teams)) or "none"
        if self.default_team not in self.teams:
            raise _refuse(
                f"team {self.default_team!r} is not defined under [teams] (defined: {known_teams})",
                "default_team",
            )
        seen: dict[str, int] = {}
        for i, rule in enumerate(self.rules):
            if rule.name == "default":
                raise _refuse(
                    "rule name 'default' is reserved for leads no rule matches", f"rules.{i}.name"
                )
            if rule.name in seen:
                raise _refuse(
                    f"rule name {rule.name!r} is already used by rules.{seen[rule.name]}; "
                    "names must be unique",
                    f"rules.{i}.name",
                )
            seen[rule.name] = i
            if rule.team not in self.teams:
                raise _refuse(
                    f"team {rule.team!r} is not defined under [teams] (defined: {known_teams})",
                    f"rules.{i}.team",
                )
            for k, region in enumerate(rule.regions):
                if region not in self.regions:
                    defined = ", ".join(sorted(self.regions)) or "none"
                    raise _refuse(
                        f"region {region!r} is not defined under [regions] (defined: {defined})",
                        f"rules.{i}.regions.{k}",
                    )
        return self

    def team(self, name: str) -> TeamConfig:
        """The team's config, or an empty TeamConfig for an unconfigured team."""
        return self.teams.get(name, TeamConfig())


def _place(loc: tuple[Any, ...], relative: str) -> str:
    # Pydantic marks a dict key's own error with "[key]"; the key before it is the place.
    parts = [str(p) for p in loc if p != "[key]"]
    if relative:
        parts.append(relative)
    return ".".join(parts) or "(top level)"


def parse_config(text: str, *, source: str) -> RoutingConfig:
    """Read a configuration from TOML text; ConfigError naming `source`, the place and why."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(source, "syntax", str(exc)) from None
    try:
        return RoutingConfig.model_validate(data)
    except ValidationError as exc:
        error = exc.errors()[0]
        context = error.get("ctx") or {}
        loc = tuple(error.get("loc", ()))
        if error.get("type") == _ERROR_TYPE:
            raise ConfigError(source, _place(loc, context["place"]), context["reason"]) from None
        reason = error.get("msg", "invalid").removeprefix("Value error, ")
        given = error.get("input")
        if isinstance(given, str | int | float | bool):
            reason = f"{reason} (got {given!r})"
        raise ConfigError(source, _place(loc, ""), reason) from None
