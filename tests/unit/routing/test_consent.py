"""Consent gates marketing email: a refused purpose cancels it, opt-in needs a granted one,
and a non-marketing email (a task notice) does not ask."""

from __future__ import annotations

from dataclasses import replace

from services.routing.domain.config import PlaybooksConfig
from services.routing.domain.playbooks import check_due, consent_refusal
from tests.unit.routing._playbook_fixtures import LEAD, NOW, _cart_action

OPT_OUT = PlaybooksConfig()
OPT_IN = PlaybooksConfig(require_consent=True)


def test_a_refused_marketing_purpose_forbids_marketing_email():
    assert consent_refusal({"marketing": False}, config=OPT_OUT) == "no consent: marketing refused"
    assert consent_refusal({"email": False, "marketing": True}, config=OPT_OUT) == (
        "no consent: email refused"
    )


def test_without_a_statement_marketing_email_goes_unless_opt_in_is_required():
    assert consent_refusal({}, config=OPT_OUT) is None
    assert consent_refusal({"analytics": False}, config=OPT_OUT) is None
    assert consent_refusal({}, config=OPT_IN) == (
        "no consent: none of marketing, email, email_marketing granted"
    )
    assert consent_refusal({"email_marketing": True}, config=OPT_IN) is None


def test_the_purposes_are_the_configs():
    ads = PlaybooksConfig(consent_purposes=("advertising",))
    assert consent_refusal({"advertising": False}, config=ads) == (
        "no consent: advertising refused"
    )
    assert consent_refusal({"marketing": False}, config=ads) is None


def test_a_due_cart_email_is_cancelled_for_a_lead_who_refused_marketing():
    lead = replace(LEAD, consent={"marketing": False})
    verdict = check_due(
        action=_cart_action(),
        lead=lead,
        orders=[],
        activations=[],
        last_marketing_sent_at=None,
        config=OPT_OUT,
        marketing=True,
        now=NOW,
    )
    assert (verdict.decision, verdict.reason) == ("cancel", "no consent: marketing refused")
    task_notice = check_due(
        action=_cart_action(),
        lead=lead,
        orders=[],
        activations=[],
        last_marketing_sent_at=None,
        config=OPT_OUT,
        marketing=False,
        now=NOW,
    )
    assert task_notice.decision == "send"
