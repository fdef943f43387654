"""Several scoring models in one deployment: which model scores a lead, why, and which sets
of models are refused."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from services.scoring.domain.model import Persona, Touch
from services.scoring.domain.model_set import ModelSet, ModelSetError
from services.scoring.domain.qualification import assess
from services.scoring.domain.scoring_model import ModelError, parse_model
from services.scoring.service import BUNDLED_MODELS, load_model, load_models

B2B, B2C = load_model("b2b_saas"), load_model("b2c_ecommerce")
BOTH = load_models("b2b_saas,b2c_ecommerce")
NOW = datetime(2026, 12, 7, 12, tzinfo=UTC)


def _variant(name: str, *, version: str | None = None, applies_to: str | None = None) -> str:
    """A bundled model's TOML with another version, or another `[applies_to]` table body."""
    text = (BUNDLED_MODELS / f"{name}.toml").read_text()
    if version is not None:
        text = re.sub(r'(?m)^version = ".*"$', f'version = "{version}"', text, count=1)
    if applies_to is not None:
        text, found = re.subn(
            r"(?m)^\[applies_to\]\n(?:[a-z_]+ = .*\n)*", f"[applies_to]\n{applies_to}\n", text
        )
        assert found == 1, "the bundled model has no [applies_to] table"
    return text


def test_a_free_mail_lead_is_scored_by_the_b2c_model_and_a_work_email_lead_by_the_b2b_one():
    assert BOTH.for_lead(Persona(email_domain="gmail.com")) is B2C
    assert BOTH.for_lead(Persona(email_domain="GMAIL.com")) is B2C
    assert BOTH.for_lead(Persona(email_domain="acme.example")) is B2B


def test_company_facts_make_a_free_mail_lead_b2b():
    assert BOTH.for_lead(Persona(email_domain="gmail.com", company_domain="acme.example")) is B2B
    assert BOTH.for_lead(Persona(email_domain="gmail.com", employees=40)) is B2B
    assert BOTH.for_lead(Persona(email_domain="gmail.com", industry="retail")) is B2B


def test_a_lead_that_says_nothing_goes_to_the_default_model_whichever_it_is():
    assert BOTH.for_lead(Persona()) is B2B
    b2c_first = load_models("b2c_ecommerce, b2b_saas")
    assert b2c_first.default is B2C
    assert b2c_first.for_lead(Persona()) is B2C
    # The bundled B2B model claims b2b leads, so the order does not change who scores them.
    assert b2c_first.for_lead(Persona(email_domain="acme.example")) is B2B
    assert b2c_first.for_lead(Persona(email_domain="gmail.com")) is B2C


def test_one_model_scores_every_lead_whatever_its_facts():
    alone = load_models("b2b_saas")
    assert alone.for_lead(Persona(email_domain="gmail.com")) is B2B
    assert alone.choose(Persona())[1] == f"Model {B2B.version}: the deployment's only model."


def test_the_two_models_score_the_same_shopping_history_differently():
    cart = {"cart": {"id": "c1", "value": 400.0, "currency": "EUR", "items": []}}
    history = [
        Touch("1", "review_viewed", NOW, "web", {}),
        Touch("2", "checkout_started", NOW, "shop", cart),
        Touch("3", "cart_add", NOW, "shop", cart),
    ]
    shopper = Persona(email_domain="gmail.com")
    as_b2c = assess(model=BOTH.for_lead(shopper), persona=shopper, touches=history, now=NOW)
    as_b2b = assess(model=B2B, persona=shopper, touches=history, now=NOW)
    assert as_b2c.model_version == B2C.version
    assert as_b2c.qualification.value == "sql" and as_b2c.persona == "shopper"
    assert as_b2b.qualification.value == "unqualified"
    assert as_b2c.score > as_b2b.score


def test_a_model_can_claim_leads_by_one_of_its_personas():
    exec_model = parse_model(
        _variant(
            "b2b_saas",
            version="exec-2026.12",
            applies_to='personas = ["economic_buyer"]',
        ),
        source="exec.toml",
    )
    models = ModelSet((B2B, exec_model))
    cfo = Persona(job_title="CFO", company_domain="acme.example", employees=500)
    engineer = Persona(job_title="Software Engineer", company_domain="acme.example")
    assert models.for_lead(cfo) is exec_model
    assert models.for_lead(engineer) is B2B
    model, why = models.choose(cfo)
    assert model is exec_model and "economic_buyer" in why


def test_the_reason_names_the_segment_and_what_decided_it():
    _, why = BOTH.choose(Persona(email_domain="gmail.com"))
    assert why.startswith(f"Model {B2C.version}: it scores b2c leads")
    assert "free-mail domain (gmail.com)" in why
    _, why = BOTH.choose(Persona(company_domain="acme.example"))
    assert why.startswith(f"Model {B2B.version}: the default")
    assert "names a company" in why


def test_a_second_model_that_claims_nothing_is_refused():
    idle = parse_model(_variant("b2c_ecommerce", applies_to=""), source="idle.toml")
    with pytest.raises(ModelSetError, match="needs `applies_to`"):
        ModelSet((B2B, idle))


def test_two_models_with_one_version_are_refused():
    twin = parse_model(_variant("b2c_ecommerce", version=B2B.version), source="twin.toml")
    with pytest.raises(ModelSetError, match="share the version"):
        ModelSet((B2B, twin))


def test_the_setting_names_the_problem_when_the_models_cannot_go_together(tmp_path: Path):
    path = tmp_path / "idle.toml"
    path.write_text(_variant("b2c_ecommerce", version="idle-1", applies_to=""))
    with pytest.raises(ModelError, match="needs `applies_to`"):
        load_models(f"b2b_saas,{path}")


def test_a_model_claiming_a_persona_it_does_not_define_is_refused():
    with pytest.raises(ModelError, match=r"applies_to\.personas: 'astronaut'"):
        parse_model(_variant("b2b_saas", applies_to='personas = ["astronaut"]'), source="bad.toml")


def test_fall_back_rules_of_every_model_are_swept():
    funnel = BOTH.regressions("funnel")
    expected = [*B2B.stages.funnel.regress, *B2C.stages.funnel.regress]
    assert funnel == expected
    assert BOTH.by_version(B2C.version) is B2C and BOTH.by_version("gone-1") is None


def test_the_buying_team_is_judged_by_the_model_of_leads_with_a_company():
    assert BOTH.for_accounts() is B2B
    assert load_models("b2c_ecommerce,b2b_saas").for_accounts() is B2B
