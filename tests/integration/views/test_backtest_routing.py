"""The backtest routes a re-scored lead with the same facts live routing uses (one builder,
services/routing/domain/facts.py), so an `account_roles` rule decides alike in both."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from leadflow.runtime import Runtime
from services.routing.service import config_for
from services.scoring.service import load_models
from shared.config import Settings
from shared.events import utcnow
from tests.conftest import make_key
from views.backtest import backtest

pytestmark = pytest.mark.integration

ROUTING = """
version = "roles"
default_team = "marketing"

[[rules]]
name = "drivers_to_ae"
team = "ae"
account_roles = ["driver"]

[teams.marketing]

[teams.ae]
members = [{ id = "ae@seller.example" }]
"""


async def test_backtest_and_live_routing_pick_the_same_team_under_an_account_roles_rule(
    settings: Settings, tmp_path: Path
):
    config = tmp_path / "routing.toml"
    config.write_text(ROUTING)
    own = settings.model_copy(update={"routing_config": str(config)})
    runtime = Runtime(settings=own, services=("ingest", "scoring", "routing"))
    runtime.start()
    try:
        assert runtime.wait_until_assigned(timeout_s=30)

        transport = httpx.ASGITransport(app=runtime.app)
        headers = {"Authorization": f"Bearer {make_key(runtime, 'admin')}"}
        async with httpx.AsyncClient(
            transport=transport, base_url="http://t", headers=headers
        ) as client:
            lead = {"email": "ana@acme.example", "job_title": "VP Operations"}
            events = [
                {"type": kind, "lead": lead}
                for kind in ("pricing_viewed", "demo_requested", "webinar_attended")
            ]
            assert (await client.post("/v1/events/batch", json=events)).status_code == 202
            deadline, item = time.monotonic() + 30, None
            while time.monotonic() < deadline:
                items = (await client.get("/v1/leads")).json()["items"]
                item = items[0] if items else None
                if item and item["owner"] and item["account"] and item["account"]["role"]:
                    break
                await asyncio.sleep(0.2)
            assert item is not None, "the lead was never scored"
        assert item["account"]["role"] == "driver", item["account"]
        # Live routing saw the account role: the rule only a driver matches decided.
        assert item["owner"]["team"] == "ae", item["owner"]

        assert runtime.resources is not None
        with runtime.resources.sessions() as session:
            report = backtest(
                session,
                models=load_models(own.scoring_model),
                routing=config_for(own),
                since=None,
                now=utcnow(),
            )
        assert report.leads == 1
        assert report.changes.get("owner_team", 0) == 0, report.as_dict()
    finally:
        runtime.stop()


async def test_the_live_model_over_the_same_history_reports_no_change_even_weeks_later(
    client: httpx.AsyncClient, runtime: Runtime
):
    people = [
        {"email": "bo@initech.example", "job_title": "CTO"},
        {"email": "cy@initech.example", "job_title": "Analyst"},
    ]
    events = [
        {"type": kind, "lead": person}
        for person in people
        for kind in ("pricing_viewed", "demo_requested", "webinar_attended", "email_open")
    ]
    assert (await client.post("/v1/events/batch", json=events)).status_code == 202
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        items = (await client.get("/v1/leads")).json()["items"]
        if len(items) == 2 and all(i["owner"] and i["score"] > 0 for i in items):
            break
        await asyncio.sleep(0.2)
    else:
        raise AssertionError("the leads were never scored and routed")
    settings = runtime.settings
    assert runtime.resources is not None
    with runtime.resources.sessions() as session:
        report = backtest(
            session,
            models=load_models(settings.scoring_model),
            routing=config_for(settings),
            since=None,
            now=utcnow() + timedelta(days=45),  # the evidence has decayed a lot since
        )
    assert report.leads == 2
    assert report.changed_leads == 0, report.as_dict()


CANDIDATE_ROUTING = """
version = "candidate-routing-1"
default_team = "marketing"

[[rules]]
name = "sql_to_ae"
team = "ae"
qualifications = ["sql"]

[teams.marketing]
[teams.ae]

[playbooks.event_followup]
enabled = false
"""


async def test_a_candidate_routing_file_and_its_playbooks_are_simulated(
    client: httpx.AsyncClient, runtime: Runtime, tmp_path: Path
):
    events = [
        {
            "type": "demo_requested",
            "lead": {"email": "sam@corp.example", "job_title": "CTO"},
            "properties": {"budget": "100k+", "timeframe": "this month"},
        },
        {"type": "webinar_attended", "lead": {"email": "wen@corp.example"}},
    ]
    assert (await client.post("/v1/events/batch", json=events)).status_code == 202
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        items = (await client.get("/v1/leads")).json()["items"]
        if len(items) == 2 and all(i["owner"] for i in items):
            break
        await asyncio.sleep(0.2)
    else:
        raise AssertionError("the leads were never scored and routed")
    owners = {i["email"]: i["owner"]["team"] for i in items}
    settings = runtime.settings
    path = tmp_path / "candidate.toml"
    path.write_text(CANDIDATE_ROUTING)
    from services.routing.service import load_config

    assert runtime.resources is not None
    with runtime.resources.sessions() as session:
        model = load_models(settings.scoring_model)
        same = backtest(
            session, models=model, routing=config_for(settings), since=None, now=utcnow()
        )
        report = backtest(
            session,
            models=model,
            routing=config_for(settings),
            candidate_routing=load_config(str(path)),
            since=None,
            now=utcnow(),
        )
    # Like with like: the live files over the same history fire the same playbooks.
    assert all(c["current"] == c["candidate"] for c in same.as_dict()["playbooks"].values())
    assert same.changes["owner_team"] == 0
    data = report.as_dict()
    assert data["routing_version"] == "candidate-routing-1"
    assert data["playbooks"]["event_followup"] == {"current": 1, "candidate": 0}
    assert data["playbooks"]["sales_alert"] == {"current": 1, "candidate": 1}
    # The sql lead goes to "ae", the webinar lead to the default marketing team.
    expected = (owners["sam@corp.example"] != "ae") + (owners["wen@corp.example"] != "marketing")
    assert data["changes"]["owner_team"] == expected and expected >= 1
    text = "\n".join(report.lines())
    assert "routing candidate-routing-1" in text and "event_followup: 1 -> 0" in text
