"""The pages' routes. Each page (`/`, `/leads`, `/leads/{id}`, `/accounts/{domain}`) is a shell
anyone may load: layout, navigation, the filter form, empty regions and one script. The script
takes the API key from the tab's sessionStorage (never from or into a URL) and fetches the
page's data as server-rendered HTML from a fragment route, which asks for the same scope as
the JSON API (`leads:read`) and renders what the API's own view functions return."""

from __future__ import annotations

from pathlib import Path as FilePath
from typing import Annotated
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import FileResponse, HTMLResponse

from shared.auth import LeadsReader
from shared.domain import FunnelStage, JourneyStage, Qualification
from shared.http import ApiError, ResourcesDep, SessionDep, SettingsDep
from shared.schemas import STORABLE_TEXT
from views import leads_api
from views.pages import context
from views.pages.render import render

router = APIRouter(include_in_schema=False)

STATIC = FilePath(__file__).resolve().parent / "static"
_ASSETS = {p.name for p in STATIC.iterdir() if p.is_file()} if STATIC.is_dir() else set()

LeadId = Annotated[str, Path(pattern=STORABLE_TEXT)]
Domain = Annotated[str, Path(pattern=STORABLE_TEXT)]

# The filter form's choices.
CHOICES = {
    "qualification": [q.value for q in Qualification],
    "funnel_stage": [s.value for s in FunnelStage],
    "journey_stage": [s.value for s in JourneyStage],
    "sort": ["id", "score", "-score", "updated_at", "-updated_at"],
}
FIELDS = (
    "q",
    "qualification",
    "funnel_stage",
    "journey_stage",
    "team",
    "min_score",
    "sort",
    "limit",
)


# ---- the shells: no key, no data ------------------------------------------------------------


@router.get("/", response_class=HTMLResponse)
def home_page() -> HTMLResponse:
    """What this process runs, and links (the data comes from /pages/fragments/home)."""
    return render("home.html", nav="home", fragment="/pages/fragments/home", title="leadflow")


@router.get("/leads", response_class=HTMLResponse)
def leads_page(request: Request) -> HTMLResponse:
    """The lead list with its filter form; filters and the page cursor are in the query."""
    values = {name: request.query_params.get(name, "") for name in FIELDS}
    return render(
        "leads.html",
        nav="leads",
        fragment="/pages/fragments/leads",
        title="Leads",
        values=values,
        choices=CHOICES,
    )


@router.get("/leads/{lead_id}", response_class=HTMLResponse)
def lead_page(lead_id: LeadId) -> HTMLResponse:
    """One lead: score and why, BANT, timelines, owner and SLA, actions, feedback buttons."""
    return render(
        "lead.html",
        nav="leads",
        fragment="/pages/fragments/leads/" + quote(lead_id, safe=""),
        title="Lead",
    )


@router.get("/accounts/{domain}", response_class=HTMLResponse)
def account_page(domain: Domain) -> HTMLResponse:
    """One account: its buying team per journey stage, BANT and stages."""
    return render(
        "account.html",
        nav="accounts",
        fragment="/pages/fragments/accounts/" + quote(domain, safe=""),
        title=domain,
    )


@router.get("/pages/static/{name}")
def page_asset(name: str) -> FileResponse:
    """The pages' script and style sheet."""
    if name not in _ASSETS:
        raise ApiError(404, "not_found", f"no page asset {name!r}")
    return FileResponse(STATIC / name, headers={"X-Content-Type-Options": "nosniff"})


# ---- the fragments: keyed like the API ---------------------------------------------------------


@router.get("/pages/fragments/home", response_class=HTMLResponse)
def home_fragment(
    request: Request, resources: ResourcesDep, _principal: LeadsReader
) -> HTMLResponse:
    """The services, consumers, broker and database kinds and versions of this process."""
    return render(
        "fragments/home.html", **context.home_context(app=request.app, resources=resources)
    )


@router.get("/pages/fragments/leads", response_class=HTMLResponse)
def leads_fragment(
    request: Request,
    session: SessionDep,
    principal: LeadsReader,
    filters: leads_api.LeadQueryDep,
    sort: Annotated[leads_api.SortParam, Query()] = "id",
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
) -> HTMLResponse:
    """A page of leads as `GET /v1/leads` answers it (same filters, order and cursor), with
    the link to the next page."""
    page = leads_api.list_leads(
        session=session,
        _principal=principal,
        filters=filters,
        sort=sort,
        limit=limit,
        cursor=cursor,
    )
    kept = [(k, v) for k, v in request.query_params.multi_items() if k != "cursor" and v != ""]
    next_url = None
    if page["next_cursor"]:
        next_url = "/leads?" + urlencode([*kept, ("cursor", page["next_cursor"])])
    first_url = "/leads?" + urlencode(kept) if cursor else None
    return render(
        "fragments/leads.html",
        items=page["items"],
        next_url=next_url,
        first_url=first_url,
    )


@router.get("/pages/fragments/leads/{lead_id}", response_class=HTMLResponse)
def lead_fragment(
    lead_id: LeadId, session: SessionDep, settings: SettingsDep, _principal: LeadsReader
) -> HTMLResponse:
    """The lead, its explanation, timelines, owner, SLA and actions; 404 if there is none."""
    found = context.lead_context(session, lead_id=lead_id, settings=settings)
    if found is None:
        raise ApiError(404, "not_found", f"lead {lead_id!r} not found")
    return render("fragments/lead.html", **found)


@router.get("/pages/fragments/accounts/{domain}", response_class=HTMLResponse)
def account_fragment(domain: Domain, session: SessionDep, _principal: LeadsReader) -> HTMLResponse:
    """The account's members with involvement and function per stage, BANT and stages."""
    found = context.account_context(session, domain=domain.strip().lower())
    if found is None:
        raise ApiError(404, "not_found", f"no account with domain {domain!r}")
    return render("fragments/account.html", **found)
