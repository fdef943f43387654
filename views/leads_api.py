"""The lead routes: list, look up, export and read leads, a lead's timeline, and the funnel.
Each joins scoring's leads with routing's owners and actions, so they are the read side's."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Depends, Header, Path, Query, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel

from services.routing.public import config_for
from services.scoring.cursors import bad_cursor, decode_cursor, encode_cursor
from shared.auth import LeadsReader
from shared.domain import FunnelStage, JourneyStage, Qualification
from shared.events import normalize_email, utcnow
from shared.http import ApiError, SessionDep, SettingsDep
from shared.pages import Page
from shared.schemas import (
    KEYED,
    STORABLE_TEXT,
    UtcDateTime,
    error_responses,
    utc_time,
)
from views import export as export_view
from views import funnel as funnel_view
from views import leads as leads_view
from views import timeline as timeline_view
from views.schemas import LEAD_EXAMPLE, Funnel, Lead, TimelineEntry

router = APIRouter(tags=["leads"])

# Path parameters matched against stored text.
LeadId = Annotated[str, Path(pattern=STORABLE_TEXT)]


def _example(example: Any, model: Any = None) -> dict[int | str, dict[str, Any]]:
    documented: dict[str, Any] = {"content": {"application/json": {"example": example}}}
    return {200: documented | ({"model": model} if model is not None else {})}


SortParam = Literal["id", "score", "-score", "updated_at", "-updated_at"]


class LeadQuery(BaseModel):
    """The filters of the lead list and export."""

    email: str | None = None
    qualification: Qualification | None = None
    funnel_stage: FunnelStage | None = None
    journey_stage: JourneyStage | None = None
    team: str | None = None
    owner: str | None = None
    min_score: int | None = None
    max_score: int | None = None
    min_fit: int | None = None
    min_engagement: int | None = None
    persona: str | None = None
    model: str | None = None
    account: str | None = None
    updated_since: datetime | None = None  # in UTC
    q: str | None = None
    traits: tuple[tuple[str, str], ...] = ()

    def to_filter(self) -> leads_view.LeadFilter:
        """The repository's filter."""
        return leads_view.LeadFilter(
            email=normalize_email(self.email) if self.email else None,
            qualification=self.qualification.value if self.qualification else None,
            funnel_stage=self.funnel_stage.value if self.funnel_stage else None,
            journey_stage=self.journey_stage.value if self.journey_stage else None,
            team=self.team,
            owner=normalize_email(self.owner) if self.owner else None,
            min_score=self.min_score,
            max_score=self.max_score,
            min_fit=self.min_fit,
            min_engagement=self.min_engagement,
            persona=self.persona,
            model=self.model,
            account=self.account.strip().lower() if self.account else None,
            updated_since=self.updated_since,
            q=self.q.strip() if self.q and self.q.strip() else None,
            traits=self.traits,
        )


def lead_query(
    email: Annotated[str | None, Query(max_length=320, pattern=STORABLE_TEXT)] = None,
    qualification: Annotated[Qualification | None, Query()] = None,
    funnel_stage: Annotated[FunnelStage | None, Query()] = None,
    journey_stage: Annotated[JourneyStage | None, Query()] = None,
    team: Annotated[str | None, Query(max_length=100, pattern=STORABLE_TEXT)] = None,
    owner: Annotated[str | None, Query(max_length=320, pattern=STORABLE_TEXT)] = None,
    min_score: Annotated[int | None, Query(ge=0, le=100)] = None,
    max_score: Annotated[int | None, Query(ge=0, le=100)] = None,
    min_fit: Annotated[
        int | None, Query(ge=0, le=100, description="fit (title, company, answers) at least")
    ] = None,
    min_engagement: Annotated[
        int | None, Query(ge=0, le=100, description="engagement (recent behaviour) at least")
    ] = None,
    persona: Annotated[str | None, Query(max_length=64, pattern=r"^[a-z0-9_]+$")] = None,
    model: Annotated[
        str | None,
        Query(
            max_length=64,
            pattern=STORABLE_TEXT,
            description="the version of the scoring model that scores the lead",
        ),
    ] = None,
    account: Annotated[str | None, Query(max_length=255, pattern=STORABLE_TEXT)] = None,
    updated_since: Annotated[UtcDateTime | None, Query()] = None,
    q: Annotated[
        str | None,
        Query(max_length=200, pattern=STORABLE_TEXT, description="text in name, email, company"),
    ] = None,
    trait: Annotated[
        list[str] | None,
        Query(description="key:value: a custom trait equals value (as text); repeat: all hold"),
    ] = None,
) -> LeadQuery:
    """The lead filters from the query string."""
    if min_score is not None and max_score is not None and min_score > max_score:
        raise ApiError(
            422,
            "validation_error",
            "min_score: must not be above max_score",
            details=[{"field": "min_score", "error": "must not be above max_score"}],
        )
    try:
        traits = leads_view.trait_filters(trait or ())
    except ValueError as exc:
        raise ApiError(
            422,
            "validation_error",
            f"trait: {exc}",
            details=[{"field": "trait", "error": str(exc)}],
        ) from exc
    return LeadQuery(
        email=email,
        qualification=qualification,
        funnel_stage=funnel_stage,
        journey_stage=journey_stage,
        team=team,
        owner=owner,
        min_score=min_score,
        max_score=max_score,
        min_fit=min_fit,
        min_engagement=min_engagement,
        persona=persona,
        model=model,
        account=account,
        updated_since=updated_since,
        q=q,
        traits=traits,
    )


LeadQueryDep = Annotated[LeadQuery, Depends(lead_query)]


# What the leads table can compare a score with (an Integer column).
_SCORE_RANGE = range(-(2**31), 2**31)


def _decode_page(cursor: str, sort: str) -> tuple[Any, str]:
    """The (sort key, id) position a lead-list cursor holds; 400 unless it is one this API
    issued for `sort`, with a sort key of the column's type."""
    issued_for, value, last_id = decode_cursor(cursor, size=3)
    wrong = bad_cursor("not a cursor this API issued for this sort")
    if issued_for != sort or not isinstance(last_id, str):
        raise wrong
    key = sort.lstrip("-")
    if key == "updated_at":
        try:
            value = utc_time(datetime.fromisoformat(value))
        except (TypeError, ValueError):
            raise wrong from None
    elif key == "score":
        if not isinstance(value, int) or isinstance(value, bool) or value not in _SCORE_RANGE:
            raise wrong
    elif not isinstance(value, str):  # id: the id itself
        raise wrong
    return value, last_id


@router.get(
    "/v1/leads",
    response_model=Page[Lead],
    summary="List and filter leads",
    responses=_example({"items": [LEAD_EXAMPLE], "next_cursor": "WyJpZCIsImwxIiwibDEiXQ"})
    | error_responses(*KEYED, 400, 422),
)
def list_leads(
    session: SessionDep,
    _principal: LeadsReader,
    filters: LeadQueryDep,
    sort: Annotated[
        SortParam, Query(description="id (default), score or updated_at; - = desc")
    ] = "id",
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
) -> dict[str, Any]:
    """A page of leads, `{"items": [...], "next_cursor": ...}`, in keyset order."""
    items, last = leads_view.list_leads(
        session,
        filters=filters.to_filter(),
        sort=sort.lstrip("-"),
        descending=sort.startswith("-"),
        after=_decode_page(cursor, sort) if cursor else None,
        limit=limit,
    )
    return {"items": items, "next_cursor": encode_cursor(sort, *last) if last else None}


@router.get(
    "/v1/leads/lookup",
    response_model=Lead,
    summary="The lead with an email address",
    responses=_example(LEAD_EXAMPLE) | error_responses(*KEYED, 404, 422),
)
def lookup_lead(
    session: SessionDep,
    _principal: LeadsReader,
    email: Annotated[str, Query(min_length=3, max_length=320, pattern=STORABLE_TEXT)],
) -> dict[str, Any]:
    """The lead that owns this email (normalised); 404 if none does."""
    items, _ = leads_view.list_leads(
        session, filters=leads_view.LeadFilter(email=normalize_email(email)), after=None, limit=1
    )
    if not items:
        raise ApiError(404, "not_found", f"no lead with email {normalize_email(email)!r}")
    return items[0]


@router.get(
    "/v1/leads/export",
    summary="Every matching lead as CSV or NDJSON, streamed",
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "The leads: CSV with a header row, or one JSON object per line",
            "content": {
                "text/csv": {"schema": {"type": "string"}},
                "application/x-ndjson": {"schema": {"type": "string"}},
            },
        }
    }
    | error_responses(*KEYED, 422),
)
def export_leads(
    session: SessionDep,
    _principal: LeadsReader,
    filters: LeadQueryDep,
    format: Annotated[Literal["csv", "ndjson"], Query()] = "ndjson",
) -> StreamingResponse:
    """Streams the leads in id order, a thousand at a time, for CRM import."""
    chunks = export_view.export_chunks(session, filters=filters.to_filter(), fmt=format)
    return StreamingResponse(
        chunks,
        media_type=export_view.MEDIA_TYPES[format],
        headers={"Content-Disposition": f'attachment; filename="leads.{format}"'},
    )


@router.get(
    "/v1/leads/{lead_id}",
    summary="One lead with BANT, stages and owner",
    responses=_example(LEAD_EXAMPLE, Lead)
    | {304: {"description": "Not modified: If-None-Match names the lead's current ETag"}}
    | error_responses(*KEYED, 404, 422),
)
def get_lead(
    lead_id: LeadId,
    session: SessionDep,
    _principal: LeadsReader,
    if_none_match: Annotated[str | None, Header()] = None,
) -> Response:
    """The lead as sales tools see it, with an ETag (304 when it has not changed); 404 if none."""
    lead = leads_view.get_lead(session, lead_id=lead_id)
    if lead is None:
        raise ApiError(404, "not_found", f"lead {lead_id!r} not found")
    body = orjson.dumps(lead)
    etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
    tags = {t.strip().removeprefix("W/") for t in (if_none_match or "").split(",")}
    if etag in tags or "*" in tags:
        return Response(status_code=304, headers={"ETag": etag})
    return Response(body, media_type="application/json", headers={"ETag": etag})


def _decode_position(cursor: str) -> tuple[str, int, str]:
    at, rank, key = decode_cursor(cursor, size=3)
    try:
        return str(at), int(rank), str(key)
    except (TypeError, ValueError):
        raise bad_cursor() from None


@router.get(
    "/v1/leads/{lead_id}/timeline",
    response_model=Page[TimelineEntry],
    summary="Everything that happened to a lead",
    responses=error_responses(*KEYED, 400, 404, 422),
)
def lead_timeline(
    lead_id: LeadId,
    session: SessionDep,
    _principal: LeadsReader,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
) -> dict[str, Any]:
    """Touches, stage and qualification moves, identity merges and assignments, oldest first."""
    result = timeline_view.timeline(
        session,
        lead_id=lead_id,
        after=_decode_position(cursor) if cursor else None,
        limit=limit,
    )
    if result is None:
        raise ApiError(404, "not_found", f"no lead with id {lead_id!r}")
    items, last = result
    return {"items": items, "next_cursor": encode_cursor(*last) if last else None}


FUNNEL_WINDOW = timedelta(days=90)  # the funnel's default span, up to `to`


def _before(moment: datetime, span: timedelta) -> datetime:
    """`span` before `moment`, or the earliest time there is."""
    earliest = datetime.min.replace(tzinfo=UTC)
    return moment - span if moment - earliest > span else earliest


@router.get(
    "/v1/funnel",
    response_model=Funnel,
    summary="Funnel and journey analytics",
    responses=_example(
        {
            "from": "2026-08-25T00:00:00+00:00",
            "to": "2026-11-23T00:00:00+00:00",
            "team": None,
            "leads": 5,
            "funnel": {
                "awareness": 1,
                "interest": 1,
                "consideration": 1,
                "intent": 1,
                "evaluation": 0,
                "purchase": 1,
            },
            "journey": {"problem_identification": 2, "solution_exploration": 1},
            "conversion": [
                {
                    "from": "awareness",
                    "to": "interest",
                    "reached_from": 5,
                    "reached_to": 4,
                    "rate": 0.8,
                }
            ],
            "median_seconds_in_stage": {"awareness": 200.0},
            "journey_by_funnel": {"problem_identification": {"awareness": 1, "interest": 1}},
            "steps": [
                {
                    "step": "awareness",
                    "owner": "marketing",
                    "reached": 5,
                    "conversion_to_next": 0.8,
                    "median_seconds_in_step": 200.0,
                    "sla_breaches": 0,
                }
            ],
            "sales": {
                "qualified": 4,
                "accepted": 3,
                "rejected": 1,
                "recycled": 1,
                "acceptance_rate": 0.75,
                "median_seconds_to_accept": 5400.0,
            },
            "teams": {},
            "personas": {},
            "models": {},
        }
    )
    | error_responses(*KEYED, 422),
)
def funnel(
    session: SessionDep,
    settings: SettingsDep,
    _principal: LeadsReader,
    from_: Annotated[UtcDateTime | None, Query(alias="from")] = None,
    to: Annotated[UtcDateTime | None, Query()] = None,
    team: Annotated[str | None, Query(max_length=100, pattern=STORABLE_TEXT)] = None,
) -> dict[str, Any]:
    """For leads created in [from, to) (default: the last 90 days): leads per funnel and
    journey stage, conversion from each funnel step to the next, median time in stage, per
    owning team, the journey x funnel matrix, and sales' verdicts: leads that reached mql/sql,
    were accepted (SAL) or rejected by sales, are recycled to nurture now, the acceptance rate
    and the median time from qualifying to acceptance; `steps` scores each funnel step's
    owning team (reached, conversion to the next step, median time in step, missed SLAs)."""
    until = to or utcnow()
    since = from_ or _before(until, FUNNEL_WINDOW)
    if since >= until:
        raise ApiError(
            422,
            "validation_error",
            "from: must be before to",
            details=[{"field": "from", "error": "must be before to"}],
        )
    return funnel_view.funnel_report(
        session, since=since, until=until, team=team, config=config_for(settings)
    )
