"""The domain's scenarios (../shared/domain.md) through the real broker and database."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.integration


def at(days_ago: float) -> str:
    return (datetime.now(UTC) - timedelta(days=days_ago)).isoformat()


async def post(client: httpx.AsyncClient, *events: dict[str, Any]) -> None:
    response = await client.post("/v1/events/batch", json=list(events))
    assert response.status_code == 202, response.text
    assert response.json()["accepted"] == len(events)


async def lead_when(client: httpx.AsyncClient, email: str, until, timeout_s: float = 20.0):
    deadline, last = time.monotonic() + timeout_s, None
    while time.monotonic() < deadline:
        items = (await client.get("/v1/leads", params={"email": email})).json()["items"]
        if items:
            last = items[0]
            if until(last):
                return last
        await asyncio.sleep(0.1)
    raise AssertionError(f"{email} never reached the expected state; last: {last}")


async def account_when(client: httpx.AsyncClient, domain: str, until, timeout_s: float = 20.0):
    deadline, last = time.monotonic() + timeout_s, None
    while time.monotonic() < deadline:
        response = await client.get(f"/v1/accounts/{domain}")
        if response.status_code == 200:
            last = response.json()
            if until(last):
                return last
        await asyncio.sleep(0.1)
    raise AssertionError(f"account {domain} never reached the expected state; last: {last}")


async def test_buyer_with_intent_still_researching_the_problem(client):
    email = "ria@initech.example"
    await post(
        client,
        {"type": "pricing_viewed", "occurred_at": at(2), "lead": {"email": email}},
        {
            "type": "content_download",
            "occurred_at": at(1),
            "lead": {"email": email},
            "properties": {"topic": "problem"},
        },
    )
    lead = await lead_when(client, email, lambda x: x["journey_stage"] is not None and x["owner"])
    # Funnel D (intent) while the journey is still at 1 (problem identification).
    assert lead["funnel_stage"] == "intent"
    assert lead["journey_stage"] == "problem_identification"
    explained = (await client.get(f"/v1/leads/{lead['id']}/explain")).json()
    text = " ".join(explained["sentences"])
    assert "Funnel stage intent" in text and "viewed pricing 2 days ago" in text


async def test_committee_member_evaluates_then_rejects_in_consensus(client):
    domain = "umbrella.example"
    champion, cio = f"sam@{domain}", f"cio@{domain}"
    company = {"name": "Umbrella", "domain": domain, "employees": 1200}
    await post(
        client,
        {
            "type": "trial_started",
            "occurred_at": at(6),
            "lead": {"email": champion, "job_title": "Operations Engineer", "company": company},
        },
        {
            "type": "meeting_booked",
            "occurred_at": at(4),
            "lead": {"email": cio, "job_title": "CIO", "company": company},
        },
        {
            "type": "committee_review",
            "occurred_at": at(3),
            "lead": {"email": cio, "job_title": "CIO", "company": company},
        },
        {"type": "trial_activated", "occurred_at": at(2), "lead": {"email": champion}},
    )
    account = await account_when(
        client,
        domain,
        lambda a: a["member_count"] == 2 and a["journey_stage"] == "consensus_creation",
    )
    roles = {m["email"]: m for m in account["members"]}
    assert roles[cio]["function"] == "reviewer" and roles[cio]["reviewer_area"] == "it"
    assert roles[cio]["decision_maker"] is True
    assert roles[champion]["function"] == "user"
    assert account["decision_maker_engaged"] is True
    assert account["bant"]["authority"]["met"] is True

    # The CIO rejects for a missing feature: the team goes back to requirements.
    await post(
        client, {"type": "committee_rejected", "occurred_at": at(0.5), "lead": {"email": cio}}
    )
    account = await account_when(
        client, domain, lambda a: a["journey_stage"] == "requirements_building"
    )
    cio_lead = await lead_when(client, cio, lambda x: x["journey_stage"] == "requirements_building")
    assert cio_lead["funnel_stage"] == "consideration"
    assert cio_lead["account"]["domain"] == domain
    assert cio_lead["account"]["function"] == "reviewer"


async def test_cart_abandoner_has_intent_and_cart_budget_evidence(client):
    email = "cat@shopper.example"
    cart = {"id": "c-1", "value": 249.0, "currency": "EUR", "checkout_url": "https://shop/c-1"}
    await post(
        client,
        {
            "type": "cart_add",
            "occurred_at": at(0.2),
            "lead": {"email": email},
            "properties": {"cart": cart},
        },
        {
            "type": "checkout_started",
            "occurred_at": at(0.1),
            "lead": {"email": email},
            "properties": {"cart": cart},
        },
    )
    lead = await lead_when(client, email, lambda x: x["funnel_stage"] == "intent" and x["owner"])
    rules = [e["rule"] for e in lead["bant"]["budget"]["evidence"]]
    assert rules == ["cart_value"]
    assert lead["qualification"] != "customer"


async def test_anonymous_visitor_who_fills_a_form_keeps_their_history(client):
    anon, email = "anon-scn-1", "vic@hooli.example"
    await post(
        client, {"type": "pricing_viewed", "occurred_at": at(3), "lead": {"anonymous_id": anon}}
    )
    await asyncio.sleep(0.5)
    await post(
        client,
        {
            "type": "form_submit",
            "occurred_at": at(1),
            "lead": {"anonymous_id": anon, "email": email, "job_title": "Head of IT"},
            "properties": {"timeframe": "this quarter"},
        },
    )
    lead = await lead_when(client, email, lambda x: x["funnel_stage"] == "intent")
    assert lead["anonymous_ids"] == [anon]
    timing = {e["rule"] for e in lead["bant"]["timing"]["evidence"]}
    assert {"pricing_page", "declared_timeframe"} <= timing
    assert lead["bant"]["authority"]["evidence"][0]["rule"] == "title_vp"


async def test_explain_of_an_unknown_lead_is_404(client):
    response = await client.get("/v1/leads/nope/explain")
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


async def test_member_override_wins_over_inference(client):
    domain = "wayne.example"
    company = {"domain": domain, "name": "Wayne"}
    await post(
        client,
        {
            "type": "demo_requested",
            "lead": {"email": f"bruce@{domain}", "job_title": "CEO", "company": company},
        },
        {
            "type": "page_view",
            "lead": {"email": f"alfred@{domain}", "job_title": "Butler", "company": company},
        },
    )
    account = await account_when(client, domain, lambda a: a["member_count"] == 2)
    alfred = next(m for m in account["members"] if m["email"] == f"alfred@{domain}")
    assert alfred["function"] != "purchasing"
    response = await client.patch(
        f"/v1/accounts/{domain}/members/{alfred['lead_id']}",
        json={"function": "purchasing", "involvement": "gatekeeper"},
    )
    assert response.status_code == 200, response.text
    alfred = next(m for m in response.json()["members"] if m["lead_id"] == alfred["lead_id"])
    assert (alfred["function"], alfred["involvement"], alfred["overridden"]) == (
        "purchasing",
        "gatekeeper",
        True,
    )
    bad = await client.patch(
        f"/v1/accounts/{domain}/members/{alfred['lead_id']}", json={"function": "wizard"}
    )
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "function"
    elsewhere = await client.patch(
        f"/v1/accounts/other.example/members/{alfred['lead_id']}", json={"function": "buyer"}
    )
    assert elsewhere.status_code == 404


async def test_free_mail_leads_form_no_account(client):
    await post(client, {"type": "page_view", "lead": {"email": "someone@gmail.com"}})
    lead = await lead_when(client, "someone@gmail.com", lambda x: x["owner"])
    assert lead["account"] is None
    assert (await client.get("/v1/accounts/gmail.com")).status_code == 404


async def test_merge_of_an_anonymous_history_shows_in_the_timeline(client):
    anon, email = "anon-merge-1", "mo@globex.example"
    await post(
        client, {"type": "pricing_viewed", "occurred_at": at(3), "lead": {"anonymous_id": anon}}
    )
    await post(client, {"type": "page_view", "occurred_at": at(2), "lead": {"email": email}})
    await lead_when(client, email, lambda x: x["owner"])
    # Both leads exist now; this event ties them, so the anonymous one merges into the person.
    await post(
        client,
        {
            "type": "form_submit",
            "occurred_at": at(1),
            "lead": {"anonymous_id": anon, "email": email},
        },
    )
    lead = await lead_when(client, email, lambda x: x["anonymous_ids"] == [anon])

    entries, cursor, pages = [], None, 0
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = (await client.get(f"/v1/leads/{lead['id']}/timeline", params=params)).json()
        entries += page["items"]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages > 1
    kinds = [e["kind"] for e in entries]
    merge = next(e for e in entries if e["kind"] == "identity_merge")
    assert {"kind": "anonymous_id", "value": anon} in merge["identities"]
    assert kinds.count("touch") == 3
    assert "stage_transition" in kinds and "assignment" in kinds
    times = [e["at"] for e in entries]
    assert times == sorted(times)
    # Two assignments may share a time and rule (the merged lead's and the person's, made in
    # one routing batch); the change that caused each tells them apart.
    keys = [
        (
            e["kind"],
            e.get("event_id"),
            e.get("cause_event_id"),
            e["at"],
            e.get("rule"),
            e.get("track"),
        )
        for e in entries
    ]
    assert len(keys) == len(set(keys)), "a page repeated an entry"


async def test_timeline_of_an_unknown_lead_is_404_and_a_bad_cursor_400(client):
    assert (await client.get("/v1/leads/nope/timeline")).status_code == 404
    await post(client, {"type": "page_view", "lead": {"email": "tl@acme.example"}})
    lead = await lead_when(client, "tl@acme.example", lambda x: x["owner"])
    bad = await client.get(f"/v1/leads/{lead['id']}/timeline", params={"cursor": "!!"})
    assert bad.status_code == 400 and bad.json()["errors"][0]["field"] == "cursor"


async def test_quiet_intent_falls_back_to_consideration_on_the_rescore_sweep(client, runtime):
    from services.scoring.service import load_models, rescore_due
    from shared import outbox
    from shared.db import transaction
    from shared.events import utcnow

    email = "quinn@acme.example"
    await post(client, {"type": "pricing_viewed", "occurred_at": at(20), "lead": {"email": email}})
    lead = await lead_when(client, email, lambda x: x["funnel_stage"] == "intent" and x["owner"])
    model = load_models(runtime.settings.scoring_model)
    resources = runtime.resources
    later = utcnow() + timedelta(days=11)  # 31 days without an intent signal
    with transaction(resources.sessions) as session:
        moved = rescore_due(session, settings=runtime.settings, models=model, now=later)
    assert moved == 1
    outbox.flush(sessions=resources.sessions, producer=resources.producer)
    lead = await lead_when(client, email, lambda x: x["funnel_stage"] == "consideration")
    timeline = (await client.get(f"/v1/leads/{lead['id']}/timeline")).json()["items"]
    fallback = [
        e for e in timeline if e["kind"] == "stage_transition" and e["to"] == "consideration"
    ]
    assert [e["rule"] for e in fallback] == ["no_intent_signal_for_30d"]
    with transaction(resources.sessions) as session:
        assert rescore_due(session, settings=runtime.settings, models=model, now=later) == 0


async def test_trace_says_why_the_abandoned_cart_email_did_not_go_out(client):
    cart = {"id": "c-trace", "value": 80.0, "currency": "EUR"}
    await post(
        client,
        {"type": "cart_add", "lead": {"anonymous_id": "anon-trace"}, "properties": {"cart": cart}},
    )
    await post(
        client,
        {"type": "pricing_viewed", "lead": {"email": "tr@acme.example", "job_title": "Head of IT"}},
    )
    anon_lead = None
    for _ in range(100):
        items = (await client.get("/v1/leads", params={"limit": 500})).json()["items"]
        anon_lead = next((i for i in items if i["anonymous_ids"] == ["anon-trace"]), None)
        if anon_lead and anon_lead["owner"]:
            break
        await asyncio.sleep(0.1)
    assert anon_lead is not None
    trace = (await client.get(f"/v1/leads/{anon_lead['id']}/trace")).json()
    cart_entry = next(p for p in trace["playbooks"] if p["playbook"] == "abandoned_cart")
    assert cart_entry["fired"] is False and cart_entry["reason"] == "the lead has no email address"
    scoring = {e["rule"]: e for e in trace["scoring"]}
    assert scoring["cart_value"]["matched"] is True
    assert scoring["demo_request"]["matched"] is False
    assert scoring["demo_request"]["reason"] == "no touch of type demo_requested"
    assert scoring["title_seniority"]["reason"] == "the lead has no job title"
    # A cart is intent: the SDRs' funnel step in the bundled routing file.
    assert trace["routing"]["decision"] == "consideration_intent_to_sdr"
    rules = {r["rule"]: r for r in trace["routing"]["rules"]}
    assert rules["consideration_intent_to_sdr"]["matched"] is True
    assert all(r["reason"] for r in trace["routing"]["rules"])
    assert not any(
        r["matched"] for name, r in rules.items() if name != "consideration_intent_to_sdr"
    )

    known = await lead_when(client, "tr@acme.example", lambda x: x["owner"])
    trace = (await client.get(f"/v1/leads/{known['id']}/trace")).json()
    scoring = {e["rule"]: e for e in trace["scoring"]}
    assert scoring["pricing_page"]["matched"] is True
    assert "vp" in scoring["title_seniority"]["reason"]
    cart_entry = next(p for p in trace["playbooks"] if p["playbook"] == "abandoned_cart")
    assert cart_entry["reason"] == "no cart_add or checkout_started touch"
    assert (await client.get("/v1/leads/nope/trace")).status_code == 404
