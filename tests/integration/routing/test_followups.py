"""Every action has a next step, checked through the whole pipeline with the bundled routing
file: `GET /v1/ops/followups` lists the leads that acted and got no follow-up and no contact in
time, and the touch types nothing answers; `leadflow followups` prints the same."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from leadflow.admin import followup_lines
from tests.integration.routing.conftest import wait_until
from tests.integration.routing.test_playbooks import lead_of, post

pytestmark = pytest.mark.integration


def touch(type_: str, email: str, *, hours_ago: float) -> dict:
    at = datetime.now(UTC) - timedelta(hours=hours_ago)
    return {"type": type_, "lead": {"email": email}, "occurred_at": at.isoformat()}


async def test_leads_that_acted_and_got_no_next_step_are_listed_with_the_gaps(pipeline):
    async with pipeline(routing_config="default") as (client, _rt):
        await post(
            client,
            touch("pricing_viewed", "lost@corp.example", hours_ago=72),  # nothing after it
            touch("pricing_viewed", "called@corp.example", hours_ago=72),  # contacted since
            touch("webinar_attended", "webinar@corp.example", hours_ago=72),  # follow-up email
            touch("pricing_viewed", "fresh@corp.example", hours_ago=1),  # inside its SLA
            touch("content_download", "reader@corp.example", hours_ago=5),  # not an action
        )
        leads = {}
        for email in ("lost", "called", "webinar", "fresh"):
            leads[email] = await lead_of(
                client, f"{email}@corp.example", lambda x: x["owner"] is not None
            )
        assert leads["lost"]["owner"]["team"] == "sdr"  # intent: the SDRs' step, SLA 1 day
        response = await client.post(
            f"/v1/leads/{leads['called']['id']}/feedback", json={"type": "contacted"}
        )
        assert response.status_code == 202

        async def report() -> dict | None:
            got = await client.get("/v1/ops/followups", params={"days": 7})
            assert got.status_code == 200, got.text
            body = got.json()
            emails = {u["email"] for u in body["unanswered"]}
            return body if emails == {"lost@corp.example"} else None

        body = await wait_until(report)
        [lost] = body["unanswered"]
        assert lost["lead_id"] == leads["lost"]["id"] and lost["touch_type"] == "pricing_viewed"
        assert lost["window_s"] == 86400.0 and lost["waiting_s"] >= 72 * 3600 - 60
        assert lost["owner"]["team"] == "sdr"
        assert lost["reason"].startswith("pricing_viewed 72 h ago: no follow-up planned")
        coverage = {c["type"]: c for c in body["coverage"]}
        assert "content_download" in body["unanswered_types"]
        assert coverage["content_download"]["seen"] == 1
        assert coverage["webinar_attended"]["playbooks"] == ["event_followup"]
        assert "sales_contacted" not in coverage  # sales feedback is not a buyer's touch
        text = "\n".join(followup_lines(body))
        assert "with no next step: 1" in text and "lost@corp.example  [sdr/" in text
        assert "content_download (signals interest): seen 1 times" in text
        bad = await client.get("/v1/ops/followups", params={"days": 0})
        assert bad.status_code == 422
