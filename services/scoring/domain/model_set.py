"""Several scoring models in one deployment (B2B and B2C side by side): which model scores a
lead. The first model is the default; each other one claims the leads its `applies_to` names
(a segment, or one of its own personas), the first claim in order winning."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from services.scoring.domain.free_mail import FREE_MAIL_DOMAINS
from services.scoring.domain.model import Persona
from services.scoring.domain.personas import match_persona
from services.scoring.domain.scoring_model import Regression, ScoringModel


class ModelSetError(ValueError):
    """Models that cannot be used together; the message says which and why."""


# A lead with company facts: what the account roll-up (a B2B notion) is judged as.
_COMPANY = Persona(company_domain="account.example")


@dataclass(frozen=True)
class ModelSet:
    """The deployment's scoring models, the default first."""

    models: tuple[ScoringModel, ...]

    def __post_init__(self) -> None:
        if not self.models:
            raise ModelSetError("at least one scoring model is needed")
        versions = [m.version for m in self.models]
        repeated = sorted({v for v in versions if versions.count(v) > 1})
        if repeated:
            raise ModelSetError(f"two models share the version {repeated[0]!r}")
        idle = [m.version for m in self.models[1:] if m.applies_to.is_empty()]
        if idle:
            raise ModelSetError(
                f"model {idle[0]!r} is not the first, so it needs `applies_to` (segments or "
                "personas) to score any lead"
            )

    @classmethod
    def of(cls, model: ScoringModel) -> ModelSet:
        """A deployment with one model."""
        return cls((model,))

    @property
    def default(self) -> ScoringModel:
        """The model for leads no other model claims."""
        return self.models[0]

    def __iter__(self) -> Iterator[ScoringModel]:
        return iter(self.models)

    def segment_of(self, persona: Persona) -> str:
        """The segment that picks a lead's model: b2b when its facts name a company (domain,
        size or industry) or its email is at a work domain, b2c when the email is at a
        free-mail one (gmail.com, ...), else the default model's `segment`."""
        if persona.company_domain or persona.employees is not None or persona.industry:
            return "b2b"
        if persona.email_domain:
            return "b2c" if persona.email_domain.casefold() in FREE_MAIL_DOMAINS else "b2b"
        return self.default.segment

    def for_lead(self, persona: Persona) -> ScoringModel:
        """The model that scores a lead with these facts: the first other model whose
        `applies_to` names the lead's segment or the persona it matches in that model, else the
        default."""
        return self.choose(persona)[0]

    def choose(self, persona: Persona) -> tuple[ScoringModel, str]:
        """The model that scores a lead with these facts, and a sentence saying why."""
        if len(self.models) == 1:
            return self.default, f"Model {self.default.version}: the deployment's only model."
        segment = self.segment_of(persona)
        for model in self.models[1:]:
            claims = model.applies_to
            if segment in claims.segments:
                because = _why(persona, segment)
                return model, f"Model {model.version}: it scores {segment} leads; {because}."
            matched = match_persona(persona, model=model) if claims.personas else None
            if matched in claims.personas:
                return model, f"Model {model.version}: it scores the {matched} persona."
        because = _why(persona, segment)
        return self.default, (
            f"Model {self.default.version}: the default, as no other model claims this lead "
            f"({segment}; {because})."
        )

    def for_accounts(self) -> ScoringModel:
        """The model whose thresholds judge an account's buying team: the one that scores a
        lead with company facts."""
        return self.for_lead(_COMPANY)

    def by_version(self, version: str) -> ScoringModel | None:
        """The model with this version, if the deployment has it."""
        return next((m for m in self.models if m.version == version), None)

    def regressions(self, track: str) -> list[Regression]:
        """Every model's fall-back rules for one track (funnel or journey)."""
        return [r for m in self.models for r in getattr(m.stages, track).regress]


def _why(persona: Persona, segment: str) -> str:
    if persona.company_domain or persona.employees is not None or persona.industry:
        return "the lead names a company"
    if persona.email_domain:
        kind = "a free-mail" if segment == "b2c" else "a work"
        return f"the lead's email is at {kind} domain ({persona.email_domain})"
    return f"a lead whose facts do not say is taken to be {segment}"
