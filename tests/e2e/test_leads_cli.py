"""`leadflow leads show`, `leadflow teams` and `leadflow actions` read what the API reads."""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
from typing import Any

import pytest

from shared.config import Settings
from tests.e2e.test_leadflow_up import LEADFLOW, clean_env

pytestmark = pytest.mark.e2e

EMAIL = "ana@acme.example"
DEMO = {
    "type": "demo_requested",
    "lead": {
        "email": EMAIL,
        "first_name": "Ana",
        "job_title": "VP Operations",
        "company": {"name": "Acme", "domain": "acme.example", "employees": 250},
    },
    "properties": {"budget": "50-100k", "timeframe": "this quarter"},
}
CHECKOUT = {
    "type": "checkout_started",
    "lead": {"email": EMAIL},
    "properties": {"cart": {"id": "cart-1", "value": 99.0, "currency": "EUR", "items": []}},
}


def cli(*args: str, settings: Settings) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [LEADFLOW, *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=clean_env(LEADFLOW_DATABASE_URL=settings.database_url),
    )


async def seeded_lead(client) -> dict[str, Any]:
    """Ana's lead once scored, routed and given her abandoned-cart email."""
    response = await client.post("/v1/events/batch", json=[DEMO, CHECKOUT])
    assert response.status_code == 202, response.text

    async def routed():
        items = (await client.get("/v1/leads", params={"email": EMAIL})).json()["items"]
        if not items or not items[0]["owner"]:
            return None
        actions = await client.get("/v1/actions", params={"lead_id": items[0]["id"]})
        return items[0] if actions.json()["items"] else None

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if found := await routed():
            return found
        await asyncio.sleep(0.2)
    raise AssertionError("the lead was not scored, routed and given its cart email in time")


async def test_leads_show_prints_score_stages_owner_bant_and_why(client, settings):
    lead = await seeded_lead(client)
    explained = (await client.get(f"/v1/leads/{lead['id']}/explain")).json()

    shown = cli("leads", "show", EMAIL, settings=settings)
    assert shown.returncode == 0, shown.stderr
    out = shown.stdout
    assert f"{EMAIL}  Ana  (id {lead['id']})" in out
    assert f"score {lead['score']} (fit {lead['fit_score']}, engagement " in out
    assert f"qualification {lead['qualification']}" in out
    assert f"funnel stage {lead['funnel_stage']}; journey stage {lead['journey_stage']}" in out
    assert f"owner {lead['owner']['team']}/" in out
    for dimension, facts in lead["bant"].items():
        [row] = [line for line in out.splitlines() if line.startswith(dimension)]
        assert ("not met" in row) != facts["met"], row
    assert explained["sentences"] and all(s in out for s in explained["sentences"])

    as_json = cli("leads", "show", EMAIL.upper(), "--json", settings=settings)
    assert as_json.returncode == 0, as_json.stderr
    report = json.loads(as_json.stdout)
    assert report["lead"] == (await client.get(f"/v1/leads/{lead['id']}")).json()
    assert report["explain"]["sentences"] == explained["sentences"]
    by_id = cli("leads", "show", lead["id"], "--json", settings=settings)
    assert json.loads(by_id.stdout)["lead"]["id"] == lead["id"]


def test_leads_show_of_an_unknown_lead_exits_1_saying_so(settings):
    result = cli("leads", "show", "nobody@nowhere.example", settings=settings)
    assert result.returncode == 1
    assert "no lead with email 'nobody@nowhere.example'" in result.stderr
    assert result.stdout == ""


async def test_teams_table_and_json_match_the_api(client, settings):
    lead = await seeded_lead(client)
    owner = lead["owner"]["team"]
    api = (await client.get("/v1/teams")).json()

    as_json = cli("teams", "--json", settings=settings)
    assert as_json.returncode == 0, as_json.stderr
    assert json.loads(as_json.stdout) == api
    assert next(t for t in api["items"] if t["team"] == owner)["open_leads"] == 1

    table = cli("teams", settings=settings)
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert lines[0].split()[:2] == ["team", "members"]
    for team in api["items"]:
        [row] = [line for line in lines if line.split()[:1] == [team["team"]]]
        for member in team["members"]:
            assert f"{member['name']} {member['load']}/{member['capacity']}" in row


async def test_actions_table_and_json_filter_by_lead_email_status_and_kind(client, settings):
    lead = await seeded_lead(client)
    api = (await client.get("/v1/actions", params={"lead_id": lead["id"]})).json()["items"]

    as_json = cli("actions", "--lead", EMAIL, "--json", settings=settings)
    assert as_json.returncode == 0, as_json.stderr
    items = json.loads(as_json.stdout)["items"]
    # The runtime may move an action (a task notified) between the two reads: same actions,
    # each in the API's shape.
    assert {a["id"] for a in items} == {a["id"] for a in api}
    assert all(set(a) == set(api[0]) and a["lead_id"] == lead["id"] for a in items)
    cart = [a for a in items if a["playbook"] == "abandoned_cart"]
    assert cart and cart[0]["status"] == "scheduled"

    table = cli("actions", "--lead", lead["id"], "--kind", "email", settings=settings)
    assert table.returncode == 0, table.stderr
    assert cart[0]["id"] in table.stdout and "abandoned_cart" in table.stdout

    none = cli("actions", "--lead", EMAIL, "--status", "failed", "--json", settings=settings)
    assert json.loads(none.stdout) == {"items": []}
    bad = cli("actions", "--status", "lost", settings=settings)
    assert bad.returncode == 2 and "lost" in bad.stderr
    unknown = cli("actions", "--lead", "nobody@nowhere.example", settings=settings)
    assert unknown.returncode == 1 and "no lead with email" in unknown.stderr


async def test_leads_erase_asks_for_yes_then_erases_the_person_everywhere(client, settings):
    lead = await seeded_lead(client)

    unasked = cli("leads", "erase", EMAIL, settings=settings)
    assert unasked.returncode == 1 and "--yes" in unasked.stderr
    assert (await client.get(f"/v1/leads/{lead['id']}")).status_code == 200

    erased = cli(
        "leads", "erase", EMAIL, "--yes", "--reason", "asked by mail", "--json", settings=settings
    )
    assert erased.returncode == 0, erased.stderr
    record = json.loads(erased.stdout)
    assert record["lead_id"] == lead["id"] and record["reason"] == "asked by mail"
    assert record["requested_by"] == "leadflow leads erase"
    assert record["removed"]["leads"] == 1 and record["removed"]["actions"] >= 1
    assert (await client.get(f"/v1/leads/{lead['id']}")).status_code == 404

    again = cli("leads", "erase", EMAIL, "--yes", settings=settings)
    assert again.returncode == 1 and "no lead with email" in again.stderr


async def test_leads_export_writes_what_the_api_exports_with_a_progress_bar(
    client, runtime, settings, tmp_path
):
    await seeded_lead(client)
    other = {"type": "page_view", "lead": {"email": "bo@globex.example"}}
    assert (await client.post("/v1/events", json=other)).status_code == 202
    # Both consumers done with every event, so the leads stay as they are while compared.
    assert await asyncio.to_thread(runtime.drain, timeout_s=30)
    listed = (await client.get("/v1/leads", params={"limit": 10})).json()["items"]
    assert len(listed) == 2

    for fmt in ("csv", "ndjson"):
        from_api = (await client.get("/v1/leads/export", params={"format": fmt})).content
        target = tmp_path / f"leads.{fmt}"
        written = cli("leads", "export", "-o", str(target), settings=settings)
        assert written.returncode == 0, written.stderr
        assert target.read_bytes() == from_api
        # Not a terminal: the bar prints its final state once, on stderr.
        assert "export" in written.stderr and "2/2 leads" in written.stderr
        assert f"exported 2 leads to {target}" in written.stderr

    # To stdout, filtered: only the qualified lead, and nothing but the export on stdout.
    piped = cli("leads", "export", "--format", "ndjson", "--min-score", "40", settings=settings)
    assert piped.returncode == 0, piped.stderr
    rows = [json.loads(line) for line in piped.stdout.splitlines()]
    assert [r["email"] for r in rows] == [EMAIL]


def test_leads_export_refuses_an_unknown_format_naming_the_option(settings):
    refused = cli("leads", "export", "--format", "xml", settings=settings)
    assert refused.returncode == 1
    assert "--format 'xml'" in refused.stderr
