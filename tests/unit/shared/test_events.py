"""The event contract: native touch validation, the Kafka envelope and the lead-change message."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone

import orjson
import pytest
from pydantic import ValidationError

from shared.events import (
    LEAD_CHANGE_SCHEMA_VERSION,
    SCHEMA_VERSION,
    LeadChange,
    TouchEnvelope,
    TouchEventIn,
    lead_key_for,
)

RECEIVED = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def _event(**overrides: object) -> TouchEventIn:
    payload: dict[str, object] = {"type": "page_view", "lead": {"email": "ana@acme.example"}}
    payload.update(overrides)
    return TouchEventIn.model_validate(payload)


def _error_locs(exc: pytest.ExceptionInfo[ValidationError]) -> list[tuple[object, ...]]:
    return [tuple(err["loc"]) for err in exc.value.errors()]


# --- TouchEventIn -----------------------------------------------------------------------


def test_email_is_lower_cased_and_trimmed() -> None:
    event = _event(lead={"email": "  Ana.Silva@ACME.Example "})
    assert event.lead.email == "ana.silva@acme.example"


def test_lead_with_only_an_anonymous_id_is_accepted() -> None:
    event = _event(lead={"anonymous_id": "cookie-123"})
    assert event.lead.email is None
    assert event.lead.anonymous_id == "cookie-123"


def test_lead_without_email_or_anonymous_id_is_rejected() -> None:
    with pytest.raises(ValidationError) as exc:
        _event(lead={"first_name": "Ana"})
    assert _error_locs(exc) == [("lead",)]
    assert "email or anonymous_id" in str(exc.value)


def test_blank_email_and_blank_anonymous_id_do_not_identify_a_lead() -> None:
    with pytest.raises(ValidationError):
        _event(lead={"email": "", "anonymous_id": ""})


@pytest.mark.parametrize(
    "email", ["ana.acme.example", "ana@acme", "ana@@acme.example", "a na@x.io"]
)
def test_malformed_email_is_rejected_and_the_error_names_lead_email(email: str) -> None:
    with pytest.raises(ValidationError) as exc:
        _event(lead={"email": email, "anonymous_id": "cookie-123"})
    assert _error_locs(exc) == [("lead", "email")]
    assert "lead.email" in str(exc.value)


def test_unknown_but_well_formed_type_is_accepted() -> None:
    event = _event(type="partner.referral:v2")
    assert event.type == "partner.referral:v2"


@pytest.mark.parametrize("bad_type", ["Page_View", "PAGE_VIEW", "page view", "_page_view", ""])
def test_upper_case_or_spaced_type_is_rejected(bad_type: str) -> None:
    with pytest.raises(ValidationError) as exc:
        _event(type=bad_type)
    assert _error_locs(exc) == [("type",)]


def test_type_longer_than_64_characters_is_rejected() -> None:
    with pytest.raises(ValidationError):
        _event(type="a" * 65)


def test_naive_occurred_at_is_read_as_utc() -> None:
    event = _event(occurred_at="2026-11-01T10:15:00")
    assert event.occurred_at == datetime(2026, 11, 1, 10, 15, tzinfo=UTC)
    assert event.occurred_at.utcoffset() == timedelta(0)


def test_occurred_at_with_an_offset_keeps_its_instant() -> None:
    event = _event(occurred_at="2026-11-01T12:15:00+02:00")
    assert event.occurred_at == datetime(2026, 11, 1, 10, 15, tzinfo=UTC)
    assert event.occurred_at.utcoffset() == timedelta(hours=2)


def test_company_domain_is_stripped_of_scheme_www_and_path_and_lower_cased() -> None:
    event = _event(
        lead={"email": "ana@acme.example", "company": {"domain": "https://www.Acme.example/x"}}
    )
    assert event.lead.company is not None
    assert event.lead.company.domain == "acme.example"


def test_blank_company_domain_becomes_none() -> None:
    event = _event(lead={"email": "ana@acme.example", "company": {"domain": "  "}})
    assert event.lead.company is not None
    assert event.lead.company.domain is None


def test_negative_employee_count_is_rejected() -> None:
    with pytest.raises(ValidationError) as exc:
        _event(lead={"email": "ana@acme.example", "company": {"employees": -1}})
    assert _error_locs(exc) == [("lead", "company", "employees")]


def test_extra_top_level_field_is_forbidden() -> None:
    with pytest.raises(ValidationError) as exc:
        _event(campaign="black-friday")
    assert _error_locs(exc) == [("campaign",)]


def test_extra_lead_field_is_forbidden() -> None:
    with pytest.raises(ValidationError) as exc:
        _event(lead={"email": "ana@acme.example", "shoe_size": 42})
    assert _error_locs(exc) == [("lead", "shoe_size")]


def test_source_defaults_to_api_and_properties_to_empty() -> None:
    event = _event()
    assert event.source == "api"
    assert event.properties == {}
    assert event.occurred_at is None
    assert event.event_id is None


# --- lead_key_for -----------------------------------------------------------------------


def test_lead_key_is_the_normalised_email() -> None:
    assert lead_key_for(email=" Ana@ACME.example ", anonymous_id=None) == "email:ana@acme.example"


def test_lead_key_prefers_email_over_anonymous_id() -> None:
    assert lead_key_for(email="ana@acme.example", anonymous_id="c-1") == "email:ana@acme.example"


def test_lead_key_falls_back_to_anonymous_id() -> None:
    assert lead_key_for(email=None, anonymous_id="c-1") == "anon:c-1"
    assert lead_key_for(email="", anonymous_id="c-1") == "anon:c-1"


def test_lead_key_without_any_identity_raises() -> None:
    with pytest.raises(ValueError, match="email or an anonymous_id"):
        lead_key_for(email=None, anonymous_id=None)


# --- TouchEnvelope ----------------------------------------------------------------------


def test_envelope_generates_a_uuid_event_id_when_the_client_sent_none() -> None:
    first = TouchEnvelope.from_native(_event(), received_at=RECEIVED)
    second = TouchEnvelope.from_native(_event(), received_at=RECEIVED)
    assert uuid.UUID(first.event_id).version == 4
    assert first.event_id != second.event_id


def test_envelope_keeps_the_client_event_id() -> None:
    envelope = TouchEnvelope.from_native(_event(event_id="evt-1"), received_at=RECEIVED)
    assert envelope.event_id == "evt-1"


def test_envelope_occurred_at_defaults_to_received_at() -> None:
    envelope = TouchEnvelope.from_native(_event(), received_at=RECEIVED)
    assert envelope.occurred_at == RECEIVED
    assert envelope.received_at == RECEIVED


def test_envelope_keeps_the_client_occurred_at() -> None:
    occurred = datetime(2026, 10, 30, 8, 0, tzinfo=UTC)
    envelope = TouchEnvelope.from_native(_event(occurred_at=occurred), received_at=RECEIVED)
    assert envelope.occurred_at == occurred
    assert envelope.received_at == RECEIVED


def test_envelope_carries_lead_key_source_properties_and_schema_version() -> None:
    event = _event(
        source="hubspot",
        lead={"email": "Ana@Acme.example", "anonymous_id": "c-1"},
        properties={"url": "https://seller.example/pricing"},
    )
    envelope = TouchEnvelope.from_native(event, received_at=RECEIVED)
    assert envelope.lead_key == "email:ana@acme.example"
    assert envelope.source == "hubspot"
    assert envelope.properties == {"url": "https://seller.example/pricing"}
    assert envelope.schema_version == SCHEMA_VERSION


def test_anonymous_envelope_is_keyed_by_anonymous_id() -> None:
    envelope = TouchEnvelope.from_native(_event(lead={"anonymous_id": "c-9"}), received_at=RECEIVED)
    assert envelope.lead_key == "anon:c-9"


def test_envelope_survives_a_bytes_round_trip() -> None:
    event = _event(
        event_id="evt-7",
        type="pricing_viewed",
        occurred_at=datetime(2026, 10, 31, 23, 30, tzinfo=timezone(timedelta(hours=-5))),
        lead={
            "email": "ana@acme.example",
            "job_title": "VP Operations",
            "company": {"name": "Acme", "domain": "acme.example", "employees": 250},
        },
        properties={"url": "https://seller.example/pricing", "cart": {"total": 120.5}},
    )
    envelope = TouchEnvelope.from_native(event, received_at=RECEIVED)

    raw = envelope.to_bytes()
    back = TouchEnvelope.from_bytes(raw)

    assert isinstance(raw, bytes)
    assert back == envelope
    assert back.occurred_at == datetime(2026, 11, 1, 4, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    "raw",
    [
        b"not json at all",
        b"",
        b"[1, 2, 3]",
        b'{"event_id": "evt-1"}',
        b'{"event_id": "e", "type": "page_view", "occurred_at": "yesterday",'
        b' "received_at": "2026-11-01T00:00:00Z", "source": "api", "lead_key": "anon:x",'
        b' "lead": {"anonymous_id": "x"}}',
    ],
)
def test_from_bytes_raises_on_garbage(raw: bytes) -> None:
    with pytest.raises(ValueError):
        TouchEnvelope.from_bytes(raw)


def test_from_bytes_refuses_an_envelope_whose_lead_names_nobody() -> None:
    envelope = TouchEnvelope.from_native(_event(), received_at=RECEIVED)
    data = envelope.model_dump(mode="json")
    data["lead"] = {"first_name": "Ana"}
    with pytest.raises(ValidationError):
        TouchEnvelope.from_bytes(orjson.dumps(data))


# --- LeadChange -------------------------------------------------------------------------


def test_lead_change_survives_a_bytes_round_trip() -> None:
    change = LeadChange(
        event_id="chg-1",
        lead_id="lead-42",
        cause_event_id="evt-7",
        occurred_at=RECEIVED,
        changes={
            "qualification": ["mql", "sql"],
            "transitions": [{"track": "funnel", "from": "interest", "to": "intent", "rule": "r"}],
        },
        lead={"id": "lead-42", "score": 71, "funnel_stage": "intent"},
    )
    data = orjson.loads(change.to_bytes())
    assert data["changes"]["transitions"][0]["from"] == "interest"
    back = LeadChange.from_bytes(change.to_bytes())
    assert back == change
    assert back.schema_version == LEAD_CHANGE_SCHEMA_VERSION == 2


def test_a_version_1_lead_change_still_parses_into_the_typed_snapshot_and_moves() -> None:
    # As scoring wrote it before the contract was typed: the REST view as `lead`, a dict of
    # moves as `changes` (records of that shape may still sit in topics and DLQs).
    v1 = {
        "schema_version": 1,
        "event_id": "chg-1",
        "lead_id": "lead-42",
        "cause_event_id": "evt-7",
        "occurred_at": "2026-11-01T00:00:00Z",
        "changes": {
            "score_delta": 12,
            "qualification": ["mql", "sql"],
            "funnel": ["interest", "intent"],
            "transitions": [{"track": "funnel", "from": "interest", "to": "intent", "rule": "r"}],
            "created": True,
        },
        "lead": {
            "id": "lead-42",
            "email": "ana@acme.example",
            "anonymous_ids": ["anon-1"],
            "user_ids": [],
            "account": {"domain": "acme.example", "name": "Acme", "role": "champion"},
            "company": {"name": "Acme", "country": "DE", "employees": 250},
            "score": 71,
            "qualification": "sql",
            "funnel_stage": "intent",
            "owner": {"team": "sales", "member": None},
            "last_touch_at": "2026-11-01T00:00:00+00:00",
        },
        "touch": None,
    }
    change = LeadChange.from_bytes(orjson.dumps(v1))
    assert change.schema_version == 1
    assert change.lead.account is not None and change.lead.account.role == "champion"
    assert change.lead.company.country == "DE" and change.lead.company.employees == 250
    assert (change.lead.score, change.lead.qualification) == (71, "sql")
    assert change.changes.qualification == ("mql", "sql")
    assert change.changes.funnel == ("interest", "intent")
    assert change.changes.transitions[0].from_stage == "interest"
    assert change.changes.created and change.changes.score_delta == 12


def test_lead_change_from_bytes_raises_without_a_lead() -> None:
    with pytest.raises(ValidationError):
        LeadChange.from_bytes(
            b'{"event_id": "c", "lead_id": "l", "cause_event_id": "e",'
            b' "occurred_at": "2026-11-01T00:00:00Z"}'
        )


# --- lead.traits ---------------------------------------------------------------------------------


def test_lead_traits_keep_texts_numbers_and_booleans() -> None:
    traits = {"plan": "enterprise", "logins": 14, "trial_active": True, "Seats Requested": 2.5}
    event = _event(lead={"email": "ana@acme.example", "traits": traits})
    assert event.lead.traits == traits


def test_empty_lead_traits_are_none() -> None:
    assert _event(lead={"email": "ana@acme.example", "traits": {}}).lead.traits is None


@pytest.mark.parametrize(
    ("traits", "message"),
    [
        ({"plan": {"tier": "pro"}}, "plan: must be a text, a number or a boolean"),
        ({"plan": None}, "plan: must be a text, a number or a boolean"),
        ({"a:b": "x"}, "'a:b' is not a trait name"),
        ({"plan": "x" * 501}, "plan: at most 500 characters"),
        ({f"t{i}": i for i in range(51)}, "holds 51 traits; at most 50"),
    ],
)
def test_lead_traits_a_lead_cannot_hold_are_refused_naming_the_trait(
    traits: dict[str, object], message: str
) -> None:
    with pytest.raises(ValidationError) as exc:
        _event(lead={"email": "ana@acme.example", "traits": traits})
    assert _error_locs(exc) == [("lead", "traits")]
    assert message in str(exc.value)


def test_lead_traits_travel_in_the_envelope() -> None:
    event = _event(lead={"email": "ana@acme.example", "traits": {"plan": "pro", "logins": 3}})
    env = TouchEnvelope.from_native(event, received_at=RECEIVED)
    assert TouchEnvelope.from_bytes(env.to_bytes()).lead.traits == {"plan": "pro", "logins": 3}
