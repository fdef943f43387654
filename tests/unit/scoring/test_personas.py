"""Personas as data: the model names them, the first a lead matches is the lead's."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.scoring.domain.model import Persona
from services.scoring.domain.personas import lead_segment, match_persona
from services.scoring.domain.scoring_model import ModelError, parse_model

MODELS = Path(__file__).resolve().parents[3] / "services/scoring/models"
B2B = parse_model((MODELS / "b2b_saas.toml").read_text(), source="b2b_saas.toml")
B2C = parse_model((MODELS / "b2c_ecommerce.toml").read_text(), source="b2c_ecommerce.toml")
COMPANY = {"company_domain": "acme.example", "employees": 400}


@pytest.mark.parametrize(
    ("title", "expected"),
    [
        ("CTO", "technical_buyer"),
        ("VP Engineering", "technical_buyer"),
        ("Chief Financial Officer", "economic_buyer"),
        ("Head of Procurement", "economic_buyer"),
        ("Marketing Manager", "practitioner"),
        ("Software Engineer", "practitioner"),
        (None, None),
    ],
)
def test_the_b2b_model_s_personas_by_title(title: str | None, expected: str | None) -> None:
    assert match_persona(Persona(job_title=title, **COMPANY), model=B2B) == expected  # type: ignore[arg-type]


def test_a_lead_without_company_facts_is_in_the_model_s_segment() -> None:
    assert lead_segment(Persona(), model=B2B) == "b2b"
    assert lead_segment(Persona(), model=B2C) == "b2c"
    assert lead_segment(Persona(employees=12), model=B2C) == "b2b"
    assert match_persona(Persona(), model=B2C) == "shopper"
    assert match_persona(Persona(company_domain="shop.example"), model=B2C) == "business_buyer"


def _model(personas: str):
    text = (
        'version = "p"\n[qualification]\nmql_score = 1\nsql_score = 2\n'
        f"{personas}\n[stages.funnel.signals]\n[stages.journey.signals]\n"
    )
    return parse_model(text, source="p.toml")


def test_every_condition_must_hold_and_the_first_match_wins() -> None:
    model = _model(
        """
[[personas]]
name = "big_it"
functions = ["it"]
min_employees = 1000
industries = ["Software"]

[[personas]]
name = "any_it"
functions = ["it"]
"""
    )
    big = Persona(job_title="IT Director", employees=5000, industry=" software ")
    assert match_persona(big, model=model) == "big_it"
    assert match_persona(Persona(job_title="IT Director", employees=50), model=model) == "any_it"
    assert match_persona(Persona(job_title="IT Director"), model=model) == "any_it"
    assert match_persona(Persona(job_title="CFO", employees=5000), model=model) is None


def test_a_persona_with_an_unknown_title_function_is_refused_with_its_place() -> None:
    with pytest.raises(ModelError) as caught:
        _model('[[personas]]\nname = "x"\nfunctions = ["wizardry"]\n')
    assert "personas.0.functions" in str(caught.value) and "wizardry" in str(caught.value)
