"""Consent through the whole pipeline: a lead who refused marketing gets no cart email (the
action is cancelled, saying why), one who did not is emailed as before."""

from __future__ import annotations

import pytest

from tests.integration.routing.conftest import wait_until
from tests.integration.routing.test_playbooks import CART, actions_of, lead_of, post

pytestmark = pytest.mark.integration


async def test_a_lead_who_refused_marketing_gets_no_cart_email(pipeline, mailbox):
    box, _port = mailbox
    async with pipeline(cart_delay="1s") as (client, _rt):
        refused = {"email": "noel@buyer.example", "consent": {"Marketing": False}}
        agreed = {"email": "yves@buyer.example", "consent": {"marketing": True}}
        for lead in (refused, agreed):
            await post(client, {"type": "cart_add", "lead": lead, "properties": {"cart": CART}})
        no = await lead_of(client, refused["email"])
        yes = await lead_of(client, agreed["email"])

        async def settled(lead_id: str, status: str):
            emails = await actions_of(client, lead_id, kind="email")
            return emails and emails[0]["status"] == status and emails

        [cancelled] = await wait_until(lambda: settled(no["id"], "cancelled"))
        assert cancelled["cancel_reason"] == "no consent: marketing refused"
        await wait_until(lambda: settled(yes["id"], "sent"))
        assert box.to(refused["email"]) == []
        assert len(box.to(agreed["email"])) == 1
