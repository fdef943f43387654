"""The sales API on a seeded database: filters, sort, stable pages, ETag, lookup, accounts,
funnel figures against hand-computed ones, export, scopes."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta

import pytest

from services.routing import repository as routing_repo
from services.scoring import repository as repo
from tests.conftest import make_key

pytestmark = pytest.mark.integration

T0 = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)

# id, email, first, company, score, qualification, funnel, journey, team, member, account
LEADS = [
    (
        "l1",
        "ana@acme.example",
        "Ana",
        "Acme",
        80,
        "sql",
        "intent",
        "supplier_selection",
        "sales",
        "ana@seller.example",
        "acme.example",
    ),
    (
        "l2",
        "bo@acme.example",
        "Bo",
        "Acme",
        55,
        "mql",
        "consideration",
        "solution_exploration",
        "sdr",
        "jo@seller.example",
        "acme.example",
    ),
    (
        "l3",
        "cy@globex.example",
        "Cy",
        "Globex",
        20,
        "unqualified",
        "awareness",
        "problem_identification",
        "marketing",
        None,
        "globex.example",
    ),
    (
        "l4",
        "di@initech.example",
        "Di",
        "Initech",
        95,
        "customer",
        "purchase",
        "validation",
        "customer-success",
        None,
        "initech.example",
    ),
    (
        "l5",
        "eve@gmail.com",
        "Eve",
        None,
        35,
        "mql",
        "interest",
        "problem_identification",
        "sdr",
        "kim@seller.example",
        None,
    ),
]

# Funnel transitions per lead: (from, to, seconds in previous), in order, an hour apart.
HISTORY = {
    "l1": [
        (None, "awareness", None),
        ("awareness", "interest", 100.0),
        ("interest", "intent", 300.0),
    ],
    "l2": [(None, "interest", None), ("interest", "consideration", 500.0)],
    "l3": [(None, "awareness", None)],
    "l4": [
        (None, "awareness", None),
        ("awareness", "intent", 200.0),
        ("intent", "purchase", 1000.0),
    ],
    "l5": [(None, "awareness", None), ("awareness", "interest", 600.0)],
}


@pytest.fixture
def seeded(runtime):
    with runtime.resources.sessions.begin() as session:
        for i, (
            lid,
            email,
            first,
            company,
            score,
            qual,
            funnel,
            journey,
            team,
            member,
            account,
        ) in enumerate(LEADS):
            at = T0 + timedelta(hours=i)
            repo.insert_lead(
                session,
                values={
                    "id": lid,
                    "email": email,
                    "first_name": first,
                    "company_name": company,
                    "company_domain": account,
                    "account_domain": account,
                    "score": score,
                    "qualification": qual,
                    "funnel_stage": funnel,
                    "journey_stage": journey,
                    "bant": {},
                    "model_version": "seed",
                    "created_at": at,
                    "updated_at": at,
                },
            )
            repo.add_identity(session, lead_id=lid, kind="email", value=email, at=at)
            routing_repo.assign(
                session,
                lead_id=lid,
                team=team,
                member=member,
                rule="seed",
                funnel_stage=funnel,
                qualification=qual,
                cause_event_id="seed",
                at=at,
            )
            for j, (old, new, spent) in enumerate(HISTORY[lid]):
                repo.add_transition(
                    session,
                    values={
                        "lead_id": lid,
                        "track": "funnel",
                        "from_stage": old,
                        "to_stage": new,
                        "at": at + timedelta(hours=j),
                        "cause_event_id": None,
                        "rule": "seed",
                        "seconds_in_previous": spent,
                    },
                )
    return runtime


async def ids(client, **params) -> list[str]:
    response = await client.get("/v1/leads", params={"limit": 500, **params})
    assert response.status_code == 200, response.text
    return [item["id"] for item in response.json()["items"]]


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"qualification": "mql"}, {"l2", "l5"}),
        ({"funnel_stage": "intent"}, {"l1"}),
        ({"journey_stage": "problem_identification"}, {"l3", "l5"}),
        ({"team": "sdr"}, {"l2", "l5"}),
        ({"owner": "ana@seller.example"}, {"l1"}),
        ({"min_score": 50}, {"l1", "l2", "l4"}),
        ({"max_score": 35}, {"l3", "l5"}),
        ({"min_score": 30, "max_score": 60}, {"l2", "l5"}),
        ({"account": "acme.example"}, {"l1", "l2"}),
        ({"updated_since": (T0 + timedelta(hours=3)).isoformat()}, {"l4", "l5"}),
        ({"q": "globex"}, {"l3"}),
        ({"q": "EVE"}, {"l5"}),
        ({"q": "acme", "qualification": "sql"}, {"l1"}),
        ({"q": "%"}, set()),
    ],
)
async def test_filters_narrow_the_lead_list(client, seeded, params, expected):
    assert set(await ids(client, **params)) == expected


async def test_sort_by_score_and_updated_at_both_ways_across_pages(client, seeded):
    for sort, expected in (
        ("-score", ["l4", "l1", "l2", "l5", "l3"]),
        ("score", ["l3", "l5", "l2", "l1", "l4"]),
        ("updated_at", ["l1", "l2", "l3", "l4", "l5"]),
        ("-updated_at", ["l5", "l4", "l3", "l2", "l1"]),
    ):
        seen, cursor = [], None
        while True:
            params = {"sort": sort, "limit": 2, **({"cursor": cursor} if cursor else {})}
            page = (await client.get("/v1/leads", params=params)).json()
            seen += [i["id"] for i in page["items"]]
            cursor = page["next_cursor"]
            if not cursor:
                break
        assert seen == expected, sort


async def test_pages_neither_skip_nor_repeat_while_leads_are_updated(client, seeded, runtime):
    seen, cursor, round_ = [], None, 0
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = (await client.get("/v1/leads", params=params)).json()
        seen += [i["id"] for i in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
        round_ += 1
        # Between pages every lead changes score, stage and update time.
        with runtime.resources.sessions.begin() as session:
            for lid, *_ in LEADS:
                repo.update_lead(
                    session,
                    lead_id=lid,
                    values={
                        "score": (round_ * 37) % 100,
                        "funnel_stage": "evaluation",
                        "updated_at": T0 + timedelta(days=round_),
                    },
                )
    assert sorted(seen) == sorted(lid for lid, *_ in LEADS)
    assert len(seen) == len(set(seen))


async def test_cursor_of_another_sort_is_refused(client, seeded):
    page = (await client.get("/v1/leads", params={"sort": "score", "limit": 1})).json()
    response = await client.get(
        "/v1/leads", params={"sort": "-updated_at", "cursor": page["next_cursor"]}
    )
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "cursor"


async def test_bad_filter_values_are_422_naming_the_field(client, seeded):
    bad = await client.get("/v1/leads", params={"qualification": "hot"})
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == ("query.qualification")
    inverted = await client.get("/v1/leads", params={"min_score": 60, "max_score": 10})
    assert inverted.status_code == 422


async def test_etag_gives_304_until_the_lead_changes(client, seeded, runtime):
    first = await client.get("/v1/leads/l1")
    etag = first.headers["etag"]
    same = await client.get("/v1/leads/l1", headers={"If-None-Match": etag})
    assert same.status_code == 304 and same.content == b""
    with runtime.resources.sessions.begin() as session:
        repo.update_lead(session, lead_id="l1", values={"score": 81})
    changed = await client.get("/v1/leads/l1", headers={"If-None-Match": etag})
    assert changed.status_code == 200 and changed.json()["score"] == 81
    assert changed.headers["etag"] != etag


async def test_lookup_by_email_and_404_with_the_common_body(client, seeded):
    found = await client.get("/v1/leads/lookup", params={"email": " Ana@ACME.example "})
    assert found.status_code == 200 and found.json()["id"] == "l1"
    missing = await client.get("/v1/leads/lookup", params={"email": "nobody@x.example"})
    assert missing.status_code == 404 and missing.json()["code"] == "not_found"


async def test_funnel_figures_match_the_hand_computed_ones(client, seeded):
    with seeded.resources.sessions.begin() as session:  # l1 (at intent) missed its SLA
        current = routing_repo.current_assignment(session, lead_id="l1")
        routing_repo.update_assignment(
            session, assignment_id=current.id, values={"sla_breached_at": T0}
        )
    params = {"from": T0.isoformat(), "to": (T0 + timedelta(days=1)).isoformat()}
    report = (await client.get("/v1/funnel", params=params)).json()
    assert report["leads"] == 5
    assert report["funnel"] == {
        "awareness": 1,
        "interest": 1,
        "consideration": 1,
        "intent": 1,
        "evaluation": 0,
        "purchase": 1,
    }
    # Furthest step reached: l1 intent, l2 consideration, l3 awareness, l4 purchase, l5 interest.
    rates = {
        (c["from"], c["to"]): (c["reached_from"], c["reached_to"], c["rate"])
        for c in report["conversion"]
    }
    assert rates[("awareness", "interest")] == (5, 4, 0.8)
    assert rates[("interest", "consideration")] == (4, 3, 0.75)
    assert rates[("consideration", "intent")] == (3, 2, round(2 / 3, 4))
    assert rates[("intent", "evaluation")] == (2, 1, 0.5)
    assert rates[("evaluation", "purchase")] == (1, 1, 1.0)
    medians = report["median_seconds_in_stage"]
    assert medians["awareness"] == 200.0  # 100, 200, 600
    assert medians["interest"] == 400.0  # 300, 500
    assert medians["intent"] == 1000.0 and medians["purchase"] is None
    assert report["journey_by_funnel"]["problem_identification"]["awareness"] == 1
    assert report["journey_by_funnel"]["problem_identification"]["interest"] == 1
    assert report["teams"]["sdr"]["leads"] == 2
    assert report["teams"]["sdr"]["funnel"]["interest"] == 1
    # Each step's owner (the bundled routing file) and its scorecard.
    steps = {s["step"]: s for s in report["steps"]}
    assert [s["step"] for s in report["steps"]] == list(report["funnel"])
    assert {k: v["owner"] for k, v in steps.items()} == {
        "awareness": "marketing",
        "interest": "marketing",
        "consideration": "sdr",
        "intent": "sdr",
        "evaluation": "sales",
        "purchase": "customer-success",
    }
    assert steps["awareness"] == {
        "step": "awareness",
        "owner": "marketing",
        "reached": 5,
        "conversion_to_next": 0.8,
        "median_seconds_in_step": 200.0,
        "sla_breaches": 0,
    }
    assert steps["intent"]["reached"] == 2 and steps["intent"]["conversion_to_next"] == 0.5
    assert steps["intent"]["sla_breaches"] == 1
    assert steps["purchase"]["reached"] == 1 and steps["purchase"]["conversion_to_next"] is None
    only_sdr = (await client.get("/v1/funnel", params={**params, "team": "sdr"})).json()
    assert only_sdr["leads"] == 2
    empty = (
        await client.get(
            "/v1/funnel",
            params={
                "from": (T0 - timedelta(days=9)).isoformat(),
                "to": (T0 - timedelta(days=8)).isoformat(),
            },
        )
    ).json()
    assert empty["leads"] == 0 and empty["conversion"][0]["rate"] is None


async def test_export_streams_every_matching_lead_as_csv_and_ndjson(client, seeded):
    as_csv = await client.get("/v1/leads/export", params={"format": "csv", "min_score": 30})
    assert as_csv.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(as_csv.text)))
    assert {r["id"] for r in rows} == {"l1", "l2", "l4", "l5"}
    assert next(r for r in rows if r["id"] == "l1")["owner_team"] == "sales"
    as_ndjson = await client.get("/v1/leads/export", params={"format": "ndjson"})
    lines = [json.loads(line) for line in as_ndjson.text.splitlines()]
    assert sorted(x["id"] for x in lines) == ["l1", "l2", "l3", "l4", "l5"]


async def test_accounts_are_listed_and_paged(client, seeded, runtime):
    from services.scoring.accounts_rollup import refresh_account
    from services.scoring.service import load_model
    from shared.events import utcnow

    with runtime.resources.sessions.begin() as session:
        for domain in ("acme.example", "globex.example", "initech.example"):
            refresh_account(session, domain=domain, model=load_model("b2b_saas"), now=utcnow())
    first = (await client.get("/v1/accounts", params={"limit": 2})).json()
    rest = (await client.get("/v1/accounts", params={"cursor": first["next_cursor"]})).json()
    domains = [a["domain"] for a in first["items"] + rest["items"]]
    assert domains == ["acme.example", "globex.example", "initech.example"]
    assert first["items"][0]["member_count"] == 2


async def test_timeline_shows_feedback_and_actions_in_time_order(client, seeded):
    response = await client.post("/v1/leads/l1/feedback", json={"type": "contacted"})
    assert response.status_code == 202
    items = (await client.get("/v1/leads/l1/timeline")).json()["items"]
    kinds = [i["kind"] for i in items]
    assert "feedback" in kinds and "assignment" in kinds and "stage_transition" in kinds
    assert [i["at"] for i in items] == sorted(i["at"] for i in items)


async def test_sales_endpoints_need_the_leads_read_scope(client, seeded, runtime):
    writer = {"Authorization": f"Bearer {make_key(runtime, 'events:write')}"}
    for path in (
        "/v1/leads",
        "/v1/leads/export",
        "/v1/funnel",
        "/v1/accounts",
        "/v1/leads/l1/timeline",
        "/v1/leads/lookup?email=ana@acme.example",
    ):
        assert (await client.get(path, headers=writer)).status_code == 403, path
    reader = {"Authorization": f"Bearer {make_key(runtime, 'leads:read')}"}
    assert (await client.get("/v1/funnel", headers=reader)).status_code == 200
    feedback = await client.post(
        "/v1/leads/l1/feedback", json={"type": "contacted"}, headers=reader
    )
    assert feedback.status_code == 403


async def test_openapi_shows_examples_for_the_sales_endpoints(client, seeded):
    spec = (await client.get("/openapi.json")).json()
    for path in ("/v1/leads", "/v1/leads/{lead_id}", "/v1/leads/lookup", "/v1/funnel"):
        content = spec["paths"][path]["get"]["responses"]["200"]["content"]["application/json"]
        assert content["example"], path
    assert (
        spec["paths"]["/v1/leads/{lead_id}"]["get"]["responses"]["200"]["content"][
            "application/json"
        ]["example"]["bant"]["budget"]["met"]
        is True
    )
