"""A lead imported from a CRM keeps its owner there when the routing file has that member;
otherwise the rules route it as any lead."""

from __future__ import annotations

import pytest

from tests.integration.routing.test_playbooks import lead_of, post

pytestmark = pytest.mark.integration


def imported(email: str, owner: str) -> dict:
    return {
        "type": "crm_import",
        "source": "hubspot_import",
        "lead": {"email": email},
        "properties": {"owner": owner, "lifecycle_stage": "lead"},
    }


async def test_an_imported_lead_goes_to_its_crm_owner_and_an_unknown_owner_to_the_rules(
    pipeline,
):
    async with pipeline() as (client, _rt):
        await post(
            client,
            imported("kept@buyer.example", "JO@seller.example"),
            imported("routed@buyer.example", "Nobody Here"),
        )
        kept = await lead_of(client, "kept@buyer.example", lambda x: x["owner"] is not None)
        routed = await lead_of(client, "routed@buyer.example", lambda x: x["owner"] is not None)
        assert kept["owner"] == {"team": "sdr", "member": "jo@seller.example"}
        # Unqualified, nothing else known: the bundled test rules' default team.
        assert routed["owner"]["team"] == "marketing"
        actions = (await client.get("/v1/teams")).json()["items"]
        sdr = next(t for t in actions if t["team"] == "sdr")
        assert next(m for m in sdr["members"] if m["id"] == "jo@seller.example")["load"] == 1
