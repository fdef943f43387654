"""Account routes: the buying committees sales tools read, and the hand overrides of a member's
place in one (a write, through scoring's service)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, ConfigDict

from services.scoring import repository as repo
from services.scoring import service
from services.scoring.cursors import bad_cursor, decode_cursor, encode_cursor
from services.scoring.domain.accounts import CommitteeFunction, Involvement
from shared.auth import LeadsReader, LeadsWriter
from shared.events import utcnow
from shared.http import ApiError, SessionDep, SettingsDep
from shared.pages import Page
from shared.schemas import KEYED, STORABLE_TEXT, WITH_BODY, error_responses
from views.accounts import account_view
from views.schemas import Account

# Path parameters matched against stored text.
LeadId = Annotated[str, Path(pattern=STORABLE_TEXT)]
Domain = Annotated[str, Path(pattern=STORABLE_TEXT)]

router = APIRouter(tags=["accounts"])


class MemberOverride(BaseModel):
    """A hand-set place in the buying committee; null clears that part of the override."""

    model_config = ConfigDict(extra="forbid")

    involvement: Involvement | None = None
    function: CommitteeFunction | None = None


@router.get(
    "/v1/accounts",
    response_model=Page[Account],
    summary="Accounts, a page at a time",
    responses=error_responses(*KEYED, 400, 422),
)
def list_accounts(
    session: SessionDep,
    _principal: LeadsReader,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
) -> dict[str, Any]:
    """Accounts in domain order with their committee, BANT and stages."""
    after = decode_cursor(cursor, size=1)[0] if cursor else None
    if cursor and not isinstance(after, str):
        raise bad_cursor()
    rows = repo.list_accounts(session, after=after, limit=limit + 1)
    page, more = rows[:limit], len(rows) > limit
    items = [account_view(session, domain=r.domain) for r in page]
    return {
        "items": items,
        "next_cursor": encode_cursor(page[-1].domain) if more and page else None,
    }


@router.get(
    "/v1/accounts/{domain}",
    response_model=Account,
    summary="An account and its buying committee",
    responses=error_responses(*KEYED, 404, 422),
)
def get_account(domain: Domain, session: SessionDep, _principal: LeadsReader) -> dict[str, Any]:
    """Members with involvement and function, account BANT and stages; 404 if unknown."""
    account = account_view(session, domain=domain.strip().lower())
    if account is None:
        raise ApiError(404, "not_found", f"no account with domain {domain!r}")
    return account


@router.patch(
    "/v1/accounts/{domain}/members/{lead_id}",
    response_model=Account,
    summary="Override a member's involvement or function",
    responses=error_responses(*KEYED, *WITH_BODY, 404),
)
def override_member(
    domain: Domain,
    lead_id: LeadId,
    body: MemberOverride,
    session: SessionDep,
    settings: SettingsDep,
    _principal: LeadsWriter,
) -> dict[str, Any]:
    """Set what inference got wrong; the account is re-assessed at once (leads:write)."""
    domain = domain.strip().lower()
    with session.begin():
        member = service.override_member(
            session,
            domain=domain,
            lead_id=lead_id,
            involvement=body.involvement.value if body.involvement else None,
            function=body.function.value if body.function else None,
            model=service.load_models(settings.scoring_model).for_accounts(),
            now=utcnow(),
        )
    account = account_view(session, domain=domain) if member else None
    if account is None:
        raise ApiError(404, "not_found", f"lead {lead_id!r} is not a member of {domain!r}")
    return account
