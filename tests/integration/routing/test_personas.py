"""Personas through the pipeline: recorded on the lead, filterable, routable and in the funnel
report."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.integration.routing.test_playbooks import lead_of, post

pytestmark = pytest.mark.integration

CONFIG = """
version = "persona-test"
default_team = "marketing"

[[rules]]
name = "technical_buyers_to_solutions"
team = "solutions"
personas = ["technical_buyer"]

[teams.marketing]
[teams.solutions]
"""


def visit(email: str, title: str) -> dict:
    return {
        "type": "page_view",
        "lead": {"email": email, "job_title": title, "company": {"name": "Acme", "employees": 300}},
    }


async def test_a_lead_s_persona_is_recorded_filterable_routable_and_reported(
    pipeline, tmp_path: Path
):
    config = tmp_path / "personas.toml"
    config.write_text(CONFIG)
    async with pipeline(routing_config=str(config)) as (client, _rt):
        await post(
            client,
            visit("cto@acme.example", "CTO"),
            visit("dev@acme.example", "Software Engineer"),
        )
        cto = await lead_of(client, "cto@acme.example", lambda x: x["owner"] is not None)
        dev = await lead_of(client, "dev@acme.example", lambda x: x["owner"] is not None)
        assert (cto["persona"], dev["persona"]) == ("technical_buyer", "practitioner")
        assert cto["owner"]["team"] == "solutions" and dev["owner"]["team"] == "marketing"
        listed = await client.get("/v1/leads", params={"persona": "technical_buyer"})
        assert [item["email"] for item in listed.json()["items"]] == ["cto@acme.example"]
        assert (await client.get("/v1/leads", params={"persona": "Bad One"})).status_code == 422
        now = datetime.now(UTC)
        params = {"from": (now - timedelta(hours=1)).isoformat(), "to": now.isoformat()}
        report = (await client.get("/v1/funnel", params=params)).json()
        assert report["personas"]["technical_buyer"]["leads"] == 1
        assert report["personas"]["practitioner"]["leads"] == 1
        explained = (await client.get(f"/v1/leads/{cto['id']}/explain")).json()
        assert "Persona technical_buyer: the model's first persona" in " ".join(
            explained["sentences"]
        )
