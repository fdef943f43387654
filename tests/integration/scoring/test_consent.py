"""Consent per purpose: each touch may state it, the newest statement per purpose is kept
(a late, older one does not override), and a merge hands it to the surviving lead."""

from __future__ import annotations

import asyncio

import pytest

from services.scoring.public import consents_of
from tests.integration.scoring.test_scenarios import at, lead_when, post

pytestmark = pytest.mark.integration


async def consent_rows(client, lead_id: str) -> dict[str, tuple[bool, str]]:
    held = (await client.get(f"/v1/leads/{lead_id}/export")).json()
    return {r["purpose"]: (r["granted"], r["event_id"]) for r in held["scoring"]["lead_consents"]}


async def test_the_newest_consent_statement_per_purpose_wins(client, runtime):
    lead = {"email": "cleo@consent.example"}
    await post(
        client,
        {
            "event_id": "c-2",
            "type": "form_submit",
            "occurred_at": at(2),
            "lead": {**lead, "consent": {"Marketing": True, "advertising": False}},
        },
    )
    found = await lead_when(client, lead["email"], lambda x: True)
    assert await consent_rows(client, found["id"]) == {
        "marketing": (True, "c-2"),
        "advertising": (False, "c-2"),
    }
    # A late event, made before the one stored: it says nothing new about `marketing`.
    await post(
        client,
        {
            "event_id": "c-1",
            "type": "page_view",
            "occurred_at": at(3),
            "lead": {**lead, "consent": {"marketing": False}},
        },
        {
            "event_id": "c-3",
            "type": "page_view",
            "occurred_at": at(1),
            "lead": {**lead, "consent": {"advertising": True}},
        },
    )
    await lead_when(client, lead["email"], lambda x: x["last_touch_at"] is not None)

    for _ in range(100):
        rows = await consent_rows(client, found["id"])
        if rows.get("advertising") == (True, "c-3"):
            break
        await asyncio.sleep(0.1)
    assert rows == {"marketing": (True, "c-2"), "advertising": (True, "c-3")}
    with runtime.resources.sessions() as session:
        assert consents_of(session, lead_ids=[found["id"]]) == {
            found["id"]: {"marketing": True, "advertising": True}
        }


async def test_a_merge_hands_the_visitors_consent_to_the_person(client, runtime):
    await post(
        client,
        {
            "event_id": "v-1",
            "type": "page_view",
            "occurred_at": at(2),
            "lead": {"anonymous_id": "visitor-consent-1", "consent": {"email": True}},
        },
    )

    await asyncio.sleep(0.5)
    await post(
        client,
        {
            "event_id": "v-2",
            "type": "form_submit",
            "occurred_at": at(1),
            "lead": {"email": "vera@consent.example", "anonymous_id": "visitor-consent-1"},
        },
    )
    person = await lead_when(client, "vera@consent.example", lambda x: True)
    with runtime.resources.sessions() as session:
        for _ in range(100):
            if consents_of(session, lead_ids=[person["id"]]):
                break
            await asyncio.sleep(0.1)
        assert consents_of(session, lead_ids=[person["id"]]) == {person["id"]: {"email": True}}


async def test_a_consent_that_is_not_a_boolean_is_refused_naming_the_field(client, runtime):
    answer = await client.post(
        "/v1/events",
        json={"type": "page_view", "lead": {"email": "x@consent.example", "consent": {"m": 1}}},
    )
    assert answer.status_code == 422
    assert "consent" in answer.text
