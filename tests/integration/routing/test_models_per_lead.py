"""B2B and B2C in one deployment (`LEADFLOW_SCORING_MODEL=b2b_saas,b2c_ecommerce`), through
the whole pipeline: each lead is scored by the model that claims it, a lead that turns out to
be a company's moves to the B2B model, lists and the funnel tell the models apart, /explain
says why, and the B2C model reacts to sales feedback like the B2B one."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.scoring.service import load_model
from tests.integration.routing.conftest import wait_until
from tests.integration.routing.test_playbooks import lead_of, post

pytestmark = pytest.mark.integration

BOTH = "b2b_saas,b2c_ecommerce"
B2B, B2C = load_model("b2b_saas").version, load_model("b2c_ecommerce").version
CART = {"cart": {"id": "cart-mia-1", "value": 400.0, "currency": "EUR", "items": []}}


def shopping(email: str, **lead: object) -> list[dict[str, object]]:
    """A shopper who read reviews, added a 400 EUR cart and started the checkout."""
    person = {"email": email, **lead}
    return [
        {"type": "review_viewed", "source": "web", "lead": person},
        {"type": "cart_add", "source": "shop", "lead": person, "properties": CART},
        {"type": "checkout_started", "source": "shop", "lead": person, "properties": CART},
    ]


async def test_a_shopper_and_a_buyer_in_one_deployment_are_scored_by_their_own_models(pipeline):
    async with pipeline(scoring_model=BOTH) as (client, _rt):
        await post(client, *shopping("mia@gmail.com"))
        await post(
            client,
            {
                "type": "demo_requested",
                "lead": {"email": "rio@corp.example", "job_title": "CTO"},
                "properties": {"budget": "100k+", "timeframe": "this month"},
            },
        )
        mia = await lead_of(client, "mia@gmail.com", lambda x: x["score"] > 0 and x["owner"])
        rio = await lead_of(client, "rio@corp.example", lambda x: x["score"] > 0 and x["owner"])
        assert mia["model_version"] == B2C and rio["model_version"] == B2B
        # The B2C model reads a cart as budget and timing: the shopper is sales-ready.
        assert mia["qualification"] == "sql" and mia["persona"] == "shopper"
        assert rio["persona"] == "technical_buyer"

        listed = (await client.get("/v1/leads", params={"model": B2C})).json()["items"]
        assert [i["email"] for i in listed] == ["mia@gmail.com"]

        explained = (await client.get(f"/v1/leads/{mia['id']}/explain")).json()
        assert explained["model_version"] == B2C and explained["score"] == mia["score"]
        assert "free-mail domain (gmail.com)" in explained["model_reason"]
        assert explained["sentences"][0].startswith(f"Score {mia['score']}/100 under model {B2C}")

        now = datetime.now(UTC)
        params = {"from": (now - timedelta(hours=1)).isoformat(), "to": now.isoformat()}
        models = (await client.get("/v1/funnel", params=params)).json()["models"]
        assert {name: figures["leads"] for name, figures in models.items()} == {B2B: 1, B2C: 1}


async def test_a_shopper_who_names_a_company_is_rescored_by_the_b2b_model(pipeline):
    async with pipeline(scoring_model=BOTH) as (client, _rt):
        email = "lou@gmail.com"
        await post(client, *shopping(email))
        shopper = await lead_of(client, email, lambda x: x["model_version"] == B2C)
        await post(
            client,
            {
                "type": "form_submit",
                "lead": {
                    "email": email,
                    "job_title": "Office Manager",
                    "company": {"name": "Initech", "domain": "initech.example", "employees": 80},
                },
            },
        )
        buyer = await lead_of(client, email, lambda x: x["model_version"] == B2B)
        # The whole history is scored again by the B2B model: carts are not budget there.
        assert buyer["score"] < shopper["score"]
        assert buyer["qualification"] != "sql"
        explained = (await client.get(f"/v1/leads/{buyer['id']}/explain")).json()
        assert explained["model_version"] == B2B and explained["score"] == buyer["score"]
        assert "names a company" in explained["model_reason"]


async def test_a_rejected_b2c_lead_is_recycled_to_nurture(pipeline):
    async with pipeline(routing_config="default", scoring_model=BOTH) as (client, _rt):
        email = "ana.shop@gmail.com"
        await post(client, *shopping(email))
        lead = await lead_of(
            client,
            email,
            lambda x: x["qualification"] == "sql" and (x["owner"] or {}).get("team") == "sales",
        )
        assert lead["model_version"] == B2C
        rejected = await client.post(
            f"/v1/leads/{lead['id']}/feedback",
            json={"type": "rejected", "reason": "only browsing"},
        )
        assert rejected.status_code == 202
        recycled = await lead_of(
            client,
            email,
            lambda x: x["qualification"] == "recycled" and x["owner"]["team"] != "sales",
        )
        assert recycled["owner"]["team"] == "marketing-nurture"
        assert recycled["model_version"] == B2C
        assert recycled["qualification_reason"].endswith("(only browsing)")

        # A hand-raise after the rejection qualifies the shopper again.
        await post(client, {"type": "meeting_booked", "lead": {"email": email}})
        back = await wait_until(
            lambda: lead_of(client, email, lambda x: x["qualification"] == "sql")
        )
        assert back["model_version"] == B2C
