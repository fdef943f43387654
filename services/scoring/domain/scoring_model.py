"""The scoring model as data: rules, points, half-lives, thresholds and stage signals, read from
a versioned TOML file and checked before anything is scored with it."""

from __future__ import annotations

import tomllib
from typing import Annotated, Literal, cast

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from services.scoring.domain.title_words import JobFunction
from shared.domain import FUNNEL_ORDER, JOURNEY_ORDER, FunnelStage, JourneyStage

DimensionName = Literal["budget", "authority", "need", "timing"]
DIMENSIONS: tuple[DimensionName, ...] = ("budget", "authority", "need", "timing")
PersonaField = Literal["employees", "annual_revenue", "industry", "country", "company_domain"]
Points = Annotated[int, Field(ge=-100, le=100)]
HalfLife = Annotated[float, Field(gt=0, le=3650)]


class ModelError(ValueError):
    """A scoring model file that cannot be used: which file, where in it, and why."""

    def __init__(self, source: str, place: str, reason: str) -> None:
        super().__init__(f"{source}: {place}: {reason}")
        self.source, self.place, self.reason = source, place, reason


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class BehaviourRule(_Strict):
    """Points a kind of touch gives one dimension, fading with its half-life."""

    name: str = Field(min_length=1, max_length=100)
    dimension: DimensionName
    events: tuple[str, ...] = Field(min_length=1)
    points: Points
    half_life_days: HalfLife
    # "latest": only the newest matching touch counts; "each": every one adds (capped by max).
    count: Literal["latest", "each"] = "latest"
    max_points: Points | None = None
    url_contains: tuple[str, ...] = ()
    topics: tuple[str, ...] = ()
    min_cart_value: float | None = None


class DeclaredRule(_Strict):
    """A form answer (a property of a touch) that gives a dimension points."""

    name: str = Field(min_length=1, max_length=100)
    dimension: DimensionName
    field: str = Field(min_length=1, max_length=100)
    half_life_days: HalfLife
    default_points: Points = 0
    # Answers and their points (matched case-insensitively); others give default_points.
    values: dict[str, Points] = Field(default_factory=dict)

    @field_validator("values")
    @classmethod
    def _lower_keys(cls, value: dict[str, int]) -> dict[str, int]:
        """Answers are compared lower-cased, so the table's keys are too."""
        return {k.strip().lower(): v for k, v in value.items()}


class FirmographicRule(_Strict):
    """A fact about the company that gives a dimension points (it does not decay)."""

    name: str = Field(min_length=1, max_length=100)
    dimension: DimensionName
    field: PersonaField
    points: Points
    min: float | None = None
    max: float | None = None
    values: tuple[str, ...] = ()

    @model_validator(mode="after")
    def _one_condition(self) -> FirmographicRule:
        """A rule needs a range (numbers) or a list of values (text), not both or neither."""
        has_range, has_values = self.min is not None or self.max is not None, bool(self.values)
        if has_range == has_values:
            raise ValueError("give either min/max or values")
        return self


class Authority(_Strict):
    """Points the job title's seniority gives authority."""

    seniority_points: dict[
        Literal["c_level", "vp", "director", "manager", "individual"], Points
    ] = Field(default_factory=dict)


class Dimension(_Strict):
    """When a dimension counts as met, and its weight in the overall score."""

    met_threshold: int = Field(50, ge=1, le=100)
    weight: float = Field(1.0, ge=0, le=10)


DEFAULT_DIMENSION = Dimension()


class Qualification(_Strict):
    """Score and BANT thresholds, and the events that settle the outcome."""

    mql_score: int = Field(ge=0, le=100)
    mql_dimensions_met: int = Field(1, ge=0, le=4)
    sql_score: int = Field(ge=0, le=100)
    sql_dimensions_met: int = Field(3, ge=0, le=4)
    customer_events: tuple[str, ...] = ("order_completed", "closed_won")
    disqualify_events: tuple[str, ...] = ("disqualified",)
    # Persona facts that disqualify outright (e.g. competitors' domains).
    disqualify_rules: tuple[FirmographicRule, ...] = ()
    # Sales feedback that sends the lead back to marketing ("recycled", with the reason given),
    # until a requalify event comes after it or recycle_days pass; then it qualifies as usual.
    recycle_events: tuple[str, ...] = ("sales_rejected",)
    requalify_events: tuple[str, ...] = (
        "demo_requested",
        "meeting_booked",
        "trial_started",
        "sales_accepted",
    )
    recycle_days: float = Field(90, gt=0, le=3650)
    # Sales feedback recorded as a step on the lead's "sales" track, by touch type: accepted
    # (a sales-accepted lead, SAL) and rejected.
    sales_steps: dict[str, str] = Field(
        default_factory=lambda: {"sales_accepted": "accepted", "sales_rejected": "rejected"}
    )

    @model_validator(mode="after")
    def _ordered(self) -> Qualification:
        """An SQL must be harder to reach than an MQL."""
        if self.sql_score < self.mql_score:
            raise ValueError("sql_score must be at least mql_score")
        return self


class Regression(_Strict):
    """A stage falls back when nothing supports it for a while."""

    stage: str
    to: str
    after_days: float = Field(gt=0, le=3650)


class Track(_Strict):
    """How one stage track is inferred from touches."""

    signals: dict[str, str] = Field(default_factory=dict)
    url_signals: dict[str, str] = Field(default_factory=dict)
    topic_signals: dict[str, str] = Field(default_factory=dict)
    # Events that send the track back to a stage (e.g. a committee's rejection).
    regress_on: dict[str, str] = Field(default_factory=dict)
    regress: tuple[Regression, ...] = ()

    @field_validator("topic_signals")
    @classmethod
    def _lower_topics(cls, value: dict[str, str]) -> dict[str, str]:
        """Topics are compared lower-cased, so the table's keys are too."""
        return {k.strip().lower(): v for k, v in value.items()}

    def stages(self) -> list[tuple[str, str]]:
        """Every (place, stage name) the track refers to, for checking."""
        named = [
            *((f"signals.{k}", v) for k, v in self.signals.items()),
            *((f"url_signals.{k}", v) for k, v in self.url_signals.items()),
            *((f"topic_signals.{k}", v) for k, v in self.topic_signals.items()),
            *((f"regress_on.{k}", v) for k, v in self.regress_on.items()),
        ]
        for i, r in enumerate(self.regress):
            named += [(f"regress.{i}.stage", r.stage), (f"regress.{i}.to", r.to)]
        return named


class Stages(_Strict):
    """The two independent tracks."""

    funnel: Track
    journey: Track


class PersonaRule(_Strict):
    """A named kind of buyer: every condition it sets must hold (within a list, any value);
    the first persona of the model a lead matches is the lead's."""

    name: str = Field(min_length=1, max_length=64, pattern=r"^[a-z0-9_]+$")
    description: str = ""
    functions: tuple[str, ...] = ()  # title functions, e.g. it, finance (titles.py)
    seniorities: tuple[Literal["c_level", "vp", "director", "manager", "individual"], ...] = ()
    industries: tuple[str, ...] = ()  # compared ignoring case
    min_employees: int | None = Field(None, ge=0)
    max_employees: int | None = Field(None, ge=0)
    segment: Literal["b2b", "b2c"] | None = None

    @field_validator("functions")
    @classmethod
    def _known_functions(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        """A function the title reader never gives would make the persona unreachable."""
        known = {f.value for f in JobFunction}
        unknown = [f for f in value if f not in known]
        if unknown:
            raise ValueError(
                f"unknown title function {unknown[0]!r}; known: {', '.join(sorted(known))}"
            )
        return value


class AccountRules(_Strict):
    """How an account's buying team is read: a member is engaged with a touch within
    `engaged_days`; the account's BANT dimensions are met at the model's own thresholds."""

    engaged_days: float = Field(30, gt=0, le=3650)


class AppliesTo(_Strict):
    """Which leads a model scores when the deployment runs several (the first model scores
    every lead no other claims): leads in one of `segments`, or matching one of the model's
    own `personas`. Ignored for the first (default) model."""

    segments: tuple[Literal["b2b", "b2c"], ...] = ()
    personas: tuple[str, ...] = ()

    def is_empty(self) -> bool:
        """True if the model claims no lead by itself."""
        return not self.segments and not self.personas


class ScoreScale(_Strict):
    """How a category's evidence points become its 0-100 score: `full_points` make 100."""

    full_points: int = Field(100, ge=1, le=1000)


class ScoringModel(_Strict):
    """A whole scoring model; `version` is recorded on every lead it scores."""

    version: str = Field(min_length=1, max_length=64)
    description: str = ""
    # The segment a lead is taken to be in when its facts do not say (no company facts).
    segment: Literal["b2b", "b2c"] = "b2b"
    personas: tuple[PersonaRule, ...] = ()
    dimensions: dict[DimensionName, Dimension] = Field(
        default_factory=lambda: {d: Dimension() for d in DIMENSIONS}
    )
    qualification: Qualification
    authority: Authority = Authority()
    rules: tuple[BehaviourRule, ...] = ()
    declared: tuple[DeclaredRule, ...] = ()
    firmographics: tuple[FirmographicRule, ...] = ()
    stages: Stages
    # Fit: who the lead is (title, firmographics, declared answers); engagement: what they did
    # (behaviour rules, fading with their half-lives). Both from the BANT evidence.
    fit: ScoreScale = ScoreScale()
    engagement: ScoreScale = ScoreScale()
    accounts: AccountRules = AccountRules()
    applies_to: AppliesTo = AppliesTo()

    @model_validator(mode="after")
    def _consistent(self) -> ScoringModel:
        """Rule names are unique and every stage named is a real stage of its track."""
        every: tuple[BehaviourRule | DeclaredRule | FirmographicRule, ...] = (
            *self.rules,
            *self.declared,
            *self.firmographics,
        )
        names = [r.name for r in every]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"rules: rule names must be unique; repeated: {', '.join(duplicates)}")
        persona_names = {p.name for p in self.personas}
        unknown = [p for p in self.applies_to.personas if p not in persona_names]
        if unknown:
            raise ValueError(
                f"applies_to.personas: {unknown[0]!r} is not a persona of this model "
                f"({', '.join(sorted(persona_names)) or 'it names none'})"
            )
        for track, order in (("funnel", FUNNEL_ORDER), ("journey", JOURNEY_ORDER)):
            valid = {s.value for s in order}
            for place, stage in getattr(self.stages, track).stages():
                if stage not in valid:
                    raise ValueError(
                        f"stages.{track}.{place}: {stage!r} is not a {track} stage "
                        f"({', '.join(sorted(valid))})"
                    )
        return self

    def met_threshold(self, dimension: str) -> int:
        """The score at which `dimension` counts as met."""
        # Any other name is simply not a key: it gets the default.
        found = self.dimensions.get(cast(DimensionName, dimension), DEFAULT_DIMENSION)
        return found.met_threshold

    def funnel_stage(self, name: str) -> FunnelStage:
        """A funnel stage by name."""
        return FunnelStage(name)

    def journey_stage(self, name: str) -> JourneyStage:
        """A journey stage by name."""
        return JourneyStage(name)


def _place(loc: tuple[object, ...]) -> str:
    return ".".join(str(p) for p in loc) or "(top level)"


def parse_model(text: str, *, source: str) -> ScoringModel:
    """Read a model from TOML text; ModelError naming `source`, the place and the reason."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ModelError(source, "syntax", str(exc)) from None
    try:
        return ScoringModel.model_validate(data)
    except ValidationError as exc:
        error = exc.errors()[0]
        reason = error.get("msg", "invalid").removeprefix("Value error, ")
        place = _place(tuple(error.get("loc", ())))
        if not error.get("loc") and ": " in reason:
            # Whole-model checks name their place at the start of the message.
            place, reason = reason.split(": ", 1)
        given = error.get("input")
        if isinstance(given, str | int | float | bool) and error.get("type") != "value_error":
            reason = f"{reason} (got {given!r})"
        raise ModelError(source, place, reason) from None
