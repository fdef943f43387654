"""The event contract: the native touch event, its Kafka envelope, and the lead-change message."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

# The touch envelope's version.
SCHEMA_VERSION = 1
# The lead change's: 2 since `lead` and `changes` are typed (LeadSnapshot, LeadMoves); version 1
# records (same field names, more of them in `lead`) parse into the same models.
LEAD_CHANGE_SCHEMA_VERSION = 2

# Types the scoring model knows today; anything else is accepted and stored (marketing
# platforms invent new ones) but scores nothing unless the model names it.
KNOWN_TYPES = frozenset(
    {
        "page_view",
        "content_download",
        "email_open",
        "email_click",
        "form_submit",
        "webinar_registered",
        "webinar_attended",
        "demo_requested",
        "trial_started",
        "trial_activated",
        "pricing_viewed",
        "review_viewed",
        "cart_add",
        "checkout_started",
        "order_completed",
        "meeting_booked",
        "unsubscribe",
        "identify",
    }
)

# The touch type of a vendor's privacy request (Shopify `customers/redact`, HubSpot
# `contact.privacyDeletion`): scoring erases the person it names instead of scoring it. Only
# the signed vendor sources make it; the native API and Segment refuse it.
ERASURE_REQUESTED = "erasure_requested"

_TYPE_RE = re.compile(r"^[a-z0-9][a-z0-9_.:-]{0,63}$")
# Deliberately loose: one @, something either side, a dot in the domain. Real validation of
# a mailbox is the SMTP server's job; this catches typos such as a missing @.
_EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
# A lead's custom traits (facts a platform keeps beyond the lead's own fields): at most
# MAX_TRAITS, each a name of TRAIT_KEY's form and a text (up to MAX_TRAIT_CHARS), number or
# boolean, so every database can store, show and filter them the same way.
MAX_TRAITS = 50
MAX_TRAIT_CHARS = 500
TRAIT_KEY = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_ .$-]{0,63}$")
TraitValue = str | bool | int | float
MAX_CONSENT_PURPOSES = 20
CONSENT_PURPOSE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_ -]{0,63}$")


def normalize_email(email: str) -> str:
    """Canonical form of an email address: trimmed and lower-cased."""
    return email.strip().lower()


def lead_key_for(*, email: str | None, anonymous_id: str | None, user_id: str | None = None) -> str:
    """The Kafka key of a touch: the normalised email, else the user id, else the anonymous id."""
    if email:
        return f"email:{normalize_email(email)}"
    if user_id:
        return f"user:{user_id}"
    if anonymous_id:
        return f"anon:{anonymous_id}"
    raise ValueError("a lead needs an email or an anonymous_id")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class CompanyIn(_Strict):
    """Firmographics of the lead's company, as a marketing platform reports them."""

    name: str | None = Field(None, max_length=300)
    domain: str | None = Field(None, max_length=255)
    industry: str | None = Field(None, max_length=200)
    employees: int | None = Field(None, ge=0, le=10_000_000)
    annual_revenue: float | None = Field(None, ge=0)
    country: str | None = Field(None, max_length=64)

    @field_validator("domain")
    @classmethod
    def _normalize_domain(cls, value: str | None) -> str | None:
        """Lower-case the domain and drop a scheme or `www.` a form may have added."""
        if not value:
            return None
        value = value.lower().removeprefix("https://").removeprefix("http://")
        return value.split("/", 1)[0].removeprefix("www.") or None


class LeadIn(_Strict):
    """Who the touch is from; at least one of email and anonymous_id."""

    email: str | None = Field(None, max_length=320)
    anonymous_id: str | None = Field(None, max_length=200)
    # A platform's own id for the person (Segment userId, HubSpot contact, Shopify customer),
    # namespaced by the source, e.g. "hubspot:123:456".
    user_id: str | None = Field(None, max_length=200)
    first_name: str | None = Field(None, max_length=200)
    last_name: str | None = Field(None, max_length=200)
    job_title: str | None = Field(None, max_length=300)
    phone: str | None = Field(None, max_length=64)
    company: CompanyIn | None = None
    traits: dict[str, TraitValue] | None = None
    # What the person agreed to, per purpose (`marketing`, `email`, `advertising`, ...): true
    # granted, false refused. Segment's `context.consent.categoryPreferences` land here.
    consent: dict[str, bool] | None = None

    @field_validator("consent", mode="before")
    @classmethod
    def _bounded_consent(cls, value: Any) -> Any:
        """At most MAX_CONSENT_PURPOSES purposes, each named by 1-64 letters, digits, spaces
        or _-, with a boolean; names are kept in lower case."""
        if not isinstance(value, dict) or not value:
            return value or None
        if len(value) > MAX_CONSENT_PURPOSES:
            raise ValueError(f"holds {len(value)} purposes; at most {MAX_CONSENT_PURPOSES}")
        consent: dict[str, bool] = {}
        for key, granted in value.items():
            if not isinstance(key, str) or not CONSENT_PURPOSE.match(key):
                raise ValueError(
                    f"{str(key)[:70]!r} is not a purpose (1-64 letters, digits, spaces, _-)"
                )
            if not isinstance(granted, bool):
                raise ValueError(f"{key}: must be true or false")
            consent[key.strip().lower()] = granted
        return consent

    @field_validator("traits", mode="before")
    @classmethod
    def _bounded_traits(cls, value: Any) -> Any:
        """At most MAX_TRAITS traits, named like `plan` or `Plan Type`, each a short text, a
        number or a boolean."""
        if not isinstance(value, dict) or not value:
            return value or None
        if len(value) > MAX_TRAITS:
            raise ValueError(f"holds {len(value)} traits; at most {MAX_TRAITS}")
        for key, item in value.items():
            if not isinstance(key, str) or not TRAIT_KEY.match(key):
                raise ValueError(
                    f"{str(key)[:70]!r} is not a trait name (1-64 letters, digits, spaces, _.-$)"
                )
            if not isinstance(item, str | int | float):  # bool is an int
                raise ValueError(f"{key}: must be a text, a number or a boolean")
            if isinstance(item, str) and len(item) > MAX_TRAIT_CHARS:
                raise ValueError(f"{key}: at most {MAX_TRAIT_CHARS} characters")
        return value

    @field_validator("email")
    @classmethod
    def _valid_email(cls, value: str | None) -> str | None:
        """Normalise the email and refuse one without a mailbox and a domain."""
        if value is None or value == "":
            return None
        if not _EMAIL_RE.match(value):
            raise ValueError("is not an email address")
        return normalize_email(value)

    @field_validator("anonymous_id", "user_id")
    @classmethod
    def _blank_id(cls, value: str | None) -> str | None:
        """An empty id identifies nobody."""
        return value or None

    @model_validator(mode="after")
    def _needs_identity(self) -> LeadIn:
        """Refuse a touch that names nobody."""
        if not self.email and not self.anonymous_id and not self.user_id:
            raise ValueError("lead needs at least one of email or anonymous_id")
        return self


class TouchEventIn(_Strict):
    """A native touch event as clients post it to `POST /v1/events`."""

    model_config = ConfigDict(
        extra="forbid",
        str_strip_whitespace=True,
        json_schema_extra={
            "examples": [
                {
                    "event_id": "evt-2026-11-22-0001",
                    "type": "pricing_viewed",
                    "occurred_at": "2026-11-22T10:15:00Z",
                    "source": "web",
                    "lead": {
                        "email": "ana@acme.example",
                        "first_name": "Ana",
                        "job_title": "VP Operations",
                        "company": {"name": "Acme", "domain": "acme.example", "employees": 250},
                    },
                    "properties": {"url": "https://seller.example/pricing"},
                }
            ]
        },
    )

    event_id: str | None = Field(None, min_length=1, max_length=200)
    type: str = Field(..., min_length=1, max_length=64)
    occurred_at: datetime | None = None
    source: str = Field("api", min_length=1, max_length=64)
    lead: LeadIn
    properties: dict[str, Any] = Field(default_factory=dict)

    @field_validator("type")
    @classmethod
    def _valid_type(cls, value: str) -> str:
        """Event types are lower-case identifiers, so rules can name them."""
        if not _TYPE_RE.match(value):
            raise ValueError("must be a lower-case identifier such as 'page_view'")
        if value == ERASURE_REQUESTED:
            raise ValueError(
                f"{ERASURE_REQUESTED!r} is reserved for the vendors' privacy webhooks; erase a "
                "lead with DELETE /v1/leads/{id}"
            )
        return value

    @field_validator("occurred_at")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        """Read a time without an offset as UTC, the way most platforms mean it."""
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


class TouchEnvelope(BaseModel):
    """What ingest puts on `leadflow.touch-events`: the event plus the edge's facts about it."""

    # NaN and ±infinity are written as the (invalid JSON) tokens NaN/Infinity rather than as
    # null, so ingest spots one with a byte scan and refuses the event before it is published.
    model_config = ConfigDict(extra="ignore", ser_json_inf_nan="constants")

    schema_version: int = SCHEMA_VERSION
    event_id: str
    type: str
    occurred_at: datetime
    received_at: datetime
    source: str
    lead_key: str
    lead: LeadIn
    properties: dict[str, Any] = Field(default_factory=dict)

    @classmethod
    def from_native(cls, event: TouchEventIn, *, received_at: datetime) -> TouchEnvelope:
        """Wrap a validated native event; an event without an id gets a fresh one."""
        return cls(
            event_id=event.event_id or str(uuid.uuid4()),
            type=event.type,
            occurred_at=event.occurred_at or received_at,
            received_at=received_at,
            source=event.source,
            lead_key=lead_key_for(
                email=event.lead.email,
                anonymous_id=event.lead.anonymous_id,
                user_id=event.lead.user_id,
            ),
            lead=event.lead,
            properties=event.properties,
        )

    def to_bytes(self) -> bytes:
        """Serialise for Kafka."""
        return self.model_dump_json().encode()

    @classmethod
    def from_bytes(cls, raw: bytes) -> TouchEnvelope:
        """Parse a Kafka value; raises on malformed input (a poison message)."""
        return cls.model_validate_json(raw)


class CompanySnapshot(BaseModel):
    """The lead's company as scoring knows it."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    name: str | None = None
    domain: str | None = None
    industry: str | None = None
    employees: int | None = None
    annual_revenue: float | None = None
    country: str | None = None


class AccountSnapshot(BaseModel):
    """The account (buying committee) the lead belongs to, and the lead's place in it."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    domain: str
    name: str | None = None
    # Involvement in the committee (e.g. decision_maker, champion); None until inferred.
    role: str | None = None
    function: str | None = None


class LeadSnapshot(BaseModel):
    """The lead after a change, as scoring tells routing: its person, company, account and
    assessment. Not the REST view (which adds identities, owner and timestamps to it)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    id: str
    email: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    job_title: str | None = None
    phone: str | None = None
    account: AccountSnapshot | None = None
    company: CompanySnapshot = Field(default_factory=CompanySnapshot)
    score: int = 0
    # Fit (who the lead is) and engagement (what they did, fading), 0-100 each.
    fit_score: int = 0
    engagement_score: int = 0
    # The scoring model's persona the lead matches (e.g. technical_buyer).
    persona: str | None = None
    qualification: str = "unqualified"
    funnel_stage: str | None = None
    journey_stage: str | None = None
    bant: dict[str, Any] | None = None
    model_version: str | None = None
    qualification_reason: str | None = None


class StageTransition(BaseModel):
    """One move of the lead along a track that the change's cause made, and the rule."""

    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)

    track: str
    from_stage: str | None = Field(None, alias="from")
    to_stage: str | None = Field(None, alias="to")
    rule: str | None = None


Move = tuple[str | None, str | None]


class LeadMoves(BaseModel):
    """What a change moved: score, qualification, funnel and journey stage (`[from, to]`), the
    transitions behind them, and whether the lead was created, merged or only re-scored."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    score_delta: int = 0
    qualification: Move | None = None
    funnel: Move | None = None
    journey: Move | None = None
    transitions: list[StageTransition] = Field(default_factory=list)
    created: bool = False
    merged_from: str | None = None
    rescored: bool = False


class LeadChange(BaseModel):
    """What scoring puts on `leadflow.lead-changes` after a lead changed."""

    model_config = ConfigDict(extra="ignore")

    schema_version: int = LEAD_CHANGE_SCHEMA_VERSION
    event_id: str
    lead_id: str
    cause_event_id: str
    occurred_at: datetime
    changes: LeadMoves = Field(default_factory=LeadMoves)
    lead: LeadSnapshot
    # The touch that caused the change ({event_id, type, source, occurred_at, properties});
    # None for changes without one (a periodic re-score). Routing's playbooks react to it.
    touch: dict[str, Any] | None = None

    def to_bytes(self) -> bytes:
        """Serialise for Kafka (transitions keep their `from` and `to` names)."""
        return self.model_dump_json(by_alias=True).encode()

    @classmethod
    def from_bytes(cls, raw: bytes) -> LeadChange:
        """Parse a Kafka value of either schema version; raises on malformed input (a poison
        message)."""
        return cls.model_validate_json(raw)


def utcnow() -> datetime:
    """The current time, timezone-aware in UTC."""
    return datetime.now(UTC)
