"""An account as sales tools read it: its buying committee with each member's involvement and
function, the account's BANT and stages."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from services.scoring import repository as repo
from services.scoring.shapes import iso


def account_view(session: Session, *, domain: str) -> dict[str, Any] | None:
    """An account with its members' involvement and function, BANT and stages, or None."""
    account = repo.get_account(session, domain=domain)
    if account is None:
        return None
    members = {m.id: m for m in repo.account_members(session, domain=domain)}
    return {
        "domain": account.domain,
        "name": account.name,
        "member_count": account.member_count,
        "members": [
            {
                **role,
                "email": members[role["lead_id"]].email if role["lead_id"] in members else None,
                "job_title": (
                    members[role["lead_id"]].job_title if role["lead_id"] in members else None
                ),
            }
            for role in account.members
        ],
        "bant": account.bant,
        "funnel_stage": account.funnel_stage,
        "journey_stage": account.journey_stage,
        "decision_maker_engaged": account.decision_maker_engaged,
        "updated_at": iso(account.updated_at),
    }
