"""The buying team's involvement per journey stage, kept across roll-ups and shown on the
account."""

from __future__ import annotations

import pytest

from tests.integration.routing.conftest import wait_until
from tests.integration.routing.test_playbooks import lead_of, post

pytestmark = pytest.mark.integration


async def account(client, domain: str, until) -> dict:
    async def check():
        response = await client.get(f"/v1/accounts/{domain}")
        body = response.json() if response.status_code == 200 else None
        return body if body and until(body) else None

    return await wait_until(check)


def by_email(body: dict) -> dict[str, dict]:
    return {m["email"]: m for m in body["members"]}


async def test_each_member_s_involvement_is_kept_for_every_journey_stage(client):
    await post(client, {"type": "content_download", "lead": {"email": "ana@acme.example"}})
    await lead_of(client, "ana@acme.example")
    first = await account(
        client, "acme.example", lambda b: b["journey_stage"] == "problem_identification"
    )
    assert by_email(first)["ana@acme.example"]["involvement_by_stage"] == {
        "problem_identification": "driver"
    }

    # Bob explores solutions, busier than Ana: he drives that stage, she takes part.
    await post(
        client,
        *[{"type": "webinar_registered", "lead": {"email": "bob@acme.example"}} for _ in range(3)],
    )
    later = await account(
        client, "acme.example", lambda b: b["journey_stage"] == "solution_exploration"
    )
    members = by_email(later)
    assert members["ana@acme.example"]["involvement"] == "participant"
    assert members["ana@acme.example"]["involvement_by_stage"] == {
        "problem_identification": "driver",
        "solution_exploration": "participant",
    }
    assert members["bob@acme.example"]["involvement_by_stage"] == {"solution_exploration": "driver"}

    # A correction by hand wins for the stage the team is at now.
    corrected = await client.patch(
        f"/v1/accounts/acme.example/members/{members['ana@acme.example']['lead_id']}",
        json={"involvement": "gatekeeper"},
    )
    assert corrected.status_code == 200
    ana = by_email(corrected.json())["ana@acme.example"]
    assert ana["involvement_by_stage"] == {
        "problem_identification": "driver",
        "solution_exploration": "gatekeeper",
    }
