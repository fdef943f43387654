"""Fit and engagement through the pipeline: stored on the lead, filterable in /v1/leads and
routable with `min_fit` / `min_engagement` rule conditions."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.routing.test_playbooks import lead_of, post

pytestmark = pytest.mark.integration

CONFIG = """
version = "fit-test"
default_team = "marketing"

[[rules]]
name = "good_fit_to_sales"
team = "sales"
min_fit = 50

[[rules]]
name = "engaged_to_sdr"
team = "sdr"
min_engagement = 30

[teams.marketing]
[teams.sales]
[teams.sdr]
"""


async def test_fit_and_engagement_are_stored_filterable_and_routable(pipeline, tmp_path: Path):
    config = tmp_path / "fit.toml"
    config.write_text(CONFIG)
    async with pipeline(routing_config=str(config)) as (client, _rt):
        await post(
            client,
            {
                "type": "page_view",
                "lead": {
                    "email": "cto@bigco.example",
                    "job_title": "CTO",
                    "company": {"name": "BigCo", "employees": 5000},
                },
            },
            {"type": "demo_requested", "lead": {"email": "busy@small.example"}},
            {
                "type": "page_view",
                "lead": {"email": "busy@small.example"},
                "properties": {"url": "https://seller.example/pricing"},
            },
            {"type": "webinar_attended", "lead": {"email": "busy@small.example"}},
        )
        fit = await lead_of(client, "cto@bigco.example", lambda x: x["owner"] is not None)
        busy = await lead_of(
            client, "busy@small.example", lambda x: x["owner"] and x["engagement_score"] >= 30
        )
        assert fit["fit_score"] >= 50 and fit["engagement_score"] < 30
        assert busy["fit_score"] < 50 and busy["engagement_score"] >= 30
        assert fit["owner"]["team"] == "sales"
        busy = await lead_of(client, "busy@small.example", lambda x: x["owner"]["team"] == "sdr")

        async def ids(**params: int) -> set[str]:
            response = await client.get("/v1/leads", params=params)
            assert response.status_code == 200, response.text
            return {item["email"] for item in response.json()["items"]}

        assert await ids(min_fit=50) == {"cto@bigco.example"}
        assert await ids(min_engagement=30) == {"busy@small.example"}
        assert await ids(min_fit=50, min_engagement=30) == set()
        bad = await client.get("/v1/leads", params={"min_fit": 101})
        assert bad.status_code == 422 and "min_fit" in bad.text
        explained = (await client.get(f"/v1/leads/{fit['id']}/explain")).json()
        assert explained["fit"] == fit["fit_score"]
        assert any(s.startswith(f"Fit {fit['fit_score']}/100") for s in explained["sentences"])
