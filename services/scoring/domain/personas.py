"""Personas as data: the kinds of buyer a scoring model names (conditions on title function and
seniority, industry, company size and segment), and which one a lead is."""

from __future__ import annotations

from services.scoring.domain.model import Persona
from services.scoring.domain.scoring_model import PersonaRule, ScoringModel
from services.scoring.domain.titles import normalize_title


def lead_segment(persona: Persona, *, model: ScoringModel) -> str:
    """b2b when the lead's facts name a company (domain, size or industry), else the segment
    the model assumes for leads whose facts do not say (its `segment`)."""
    if persona.company_domain or persona.employees is not None or persona.industry:
        return "b2b"
    return model.segment


def persona_matches(rule: PersonaRule, persona: Persona, *, segment: str) -> bool:
    """True if the lead meets every condition of the persona."""
    title = normalize_title(persona.job_title)
    checks = [
        not rule.functions or (title.function is not None and title.function in rule.functions),
        not rule.seniorities
        or (title.seniority is not None and title.seniority in rule.seniorities),
        not rule.industries
        or (
            persona.industry is not None
            and persona.industry.strip().casefold() in {i.casefold() for i in rule.industries}
        ),
        rule.min_employees is None
        or (persona.employees is not None and persona.employees >= rule.min_employees),
        rule.max_employees is None
        or (persona.employees is not None and persona.employees <= rule.max_employees),
        rule.segment is None or rule.segment == segment,
    ]
    return all(checks)


def match_persona(persona: Persona, *, model: ScoringModel) -> str | None:
    """The name of the model's first persona the lead matches; None if it matches none."""
    segment = lead_segment(persona, model=model)
    for rule in model.personas:
        if persona_matches(rule, persona, segment=segment):
            return rule.name
    return None
