"""Every action has a next step: which touch types something answers, and when a lead's action
went unanswered."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from services.routing.domain.config import parse_config
from services.routing.domain.coverage import Acted, action_types, touch_coverage, unanswered
from services.scoring.domain.scoring_model import parse_model

ROOT = Path(__file__).resolve().parents[3]
ROUTING = parse_config((ROOT / "services/routing/config/default.toml").read_text(), source="d")
B2B = parse_model((ROOT / "services/scoring/models/b2b_saas.toml").read_text(), source="b2b")
SIGNALS = B2B.stages.funnel.signals
NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)


def _acted(**changes: object) -> Acted:
    values: dict[str, object] = {
        "lead_id": "l1",
        "touch_type": "webinar_attended",
        "touched_at": NOW - timedelta(days=3),
        "window_s": 86400.0,
        "followed_up_at": None,
        "contacted_at": None,
    }
    return Acted(**{**values, **changes})  # type: ignore[arg-type]


def test_an_action_with_nothing_after_it_past_its_window_is_unanswered() -> None:
    assert unanswered(_acted(), now=NOW) == (
        "webinar_attended 72 h ago: no follow-up planned and no contact within 24 h"
    )


def test_a_follow_up_or_a_contact_after_the_action_answers_it() -> None:
    after = NOW - timedelta(days=2)
    assert unanswered(_acted(followed_up_at=after), now=NOW) is None
    assert unanswered(_acted(contacted_at=after), now=NOW) is None


def test_what_came_before_the_action_does_not_answer_it() -> None:
    before = NOW - timedelta(days=4)
    assert unanswered(_acted(followed_up_at=before, contacted_at=before), now=NOW) is not None


def test_an_action_inside_its_window_is_not_reported_yet() -> None:
    assert unanswered(_acted(window_s=4 * 86400.0), now=NOW) is None


def test_actions_are_the_touches_that_signal_consideration_or_later() -> None:
    types = action_types(SIGNALS)
    assert {"webinar_attended", "demo_requested", "cart_add", "trial_started"} <= types
    assert not {"page_view", "email_open", "content_download", "webinar_registered"} & types


def test_coverage_names_the_playbooks_and_rules_that_answer_each_touch_type() -> None:
    found = {
        c.type: c
        for c in touch_coverage(
            seen={"content_download": 7, "sales_contacted": 3, "custom_ping": 2},
            funnel_signals=SIGNALS,
            config=ROUTING,
            ignore={"sales_contacted"},
        )
    }
    assert found["webinar_attended"].playbooks == ("event_followup",)
    assert found["webinar_attended"].rules == ("consideration_intent_to_sdr",)
    assert found["cart_add"].playbooks == ("abandoned_cart",)
    assert found["trial_started"].rules == ("evaluation_to_sales",)
    # Interest goes to the default team and no playbook answers a download: a gap.
    assert not found["content_download"].answered and found["content_download"].seen == 7
    assert not found["custom_ping"].answered and found["custom_ping"].funnel_stage is None
    assert "sales_contacted" not in found
    ordered = list(found)
    assert ordered[:2] == ["content_download", "custom_ping"]  # gaps first, the most seen first


def test_a_disabled_playbook_does_not_answer_its_touches() -> None:
    cart = ROUTING.playbooks.abandoned_cart.model_copy(update={"enabled": False})
    playbooks = ROUTING.playbooks.model_copy(update={"abandoned_cart": cart})
    config = ROUTING.model_copy(update={"playbooks": playbooks})
    found = {c.type: c for c in touch_coverage(seen={}, funnel_signals=SIGNALS, config=config)}
    assert found["cart_add"].playbooks == ()
    assert found["cart_add"].rules == ("consideration_intent_to_sdr",)  # intent still routes
