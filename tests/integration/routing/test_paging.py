"""Keyset paging of `/v1/actions`, a team's queue and its open tasks: walking the pages with
`next_cursor` gives every item once, in the order of one unpaged listing; a cursor this API did
not issue for the listing is a 400 naming `cursor`."""

from __future__ import annotations

import base64
import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from services.routing import repository as routing_repo

pytestmark = pytest.mark.integration

# Far in the future: the delivery worker never claims these actions while the test runs.
DUE = datetime(2099, 1, 1, tzinfo=UTC)
T0 = datetime(2026, 11, 1, tzinfo=UTC)


def action_row(i: int, *, kind: str, status: str, team: str | None) -> dict:
    """An action row; every third shares its due time (and creation time) with the previous,
    so the id breaks the tie."""
    at = timedelta(minutes=i - i % 3)
    return {
        "id": str(uuid.uuid4()),
        "lead_id": f"paging-lead-{i}",
        "kind": kind,
        "playbook": "paging",
        "idempotency_key": f"paging-{kind}-{i}",
        "status": status,
        "due_at": DUE + at,
        "attempts": 0,
        "deferrals": 0,
        "marketing": False,
        "payload": {"i": i},
        "team": team,
        "member": None,
        "created_at": T0 + at,
        "updated_at": T0 + at,
    }


@pytest.fixture
async def team(client) -> str:
    """A configured team."""
    teams = (await client.get("/v1/teams")).json()["items"]
    return teams[0]["team"]


@pytest.fixture
def seeded(runtime, team):
    """Actions, open tasks of `team`, and queued leads of `team` (some without an SLA, some
    sharing one), stored directly."""
    with runtime.resources.sessions.begin() as session:
        for i in range(11):
            routing_repo.insert_action(
                session, values=action_row(i, kind="email", status="scheduled", team=None)
            )
        for i in range(11, 20):
            routing_repo.insert_action(
                session, values=action_row(i, kind="task", status="open", team=team)
            )
        for i in range(13):
            sla = None if i % 4 == 0 else T0 + timedelta(hours=i // 2)
            routing_repo.assign(
                session,
                lead_id=f"paging-queued-{i}",
                team=team,
                member=None,
                rule="seed",
                funnel_stage="intent",
                qualification="sql",
                cause_event_id="seed",
                at=T0,
                sla_due_at=sla,
            )
    return runtime


async def walk(client, path: str, *, limit: int, **params) -> list[dict]:
    """Every item of a listing, page after page."""
    items: list[dict] = []
    cursor = None
    for _ in range(100):
        query = {"limit": limit, **params, **({"cursor": cursor} if cursor else {})}
        response = await client.get(path, params=query)
        assert response.status_code == 200, response.text
        page = response.json()
        assert set(page) == {"items", "next_cursor"}
        assert len(page["items"]) <= limit
        items += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            return items
    raise AssertionError(f"{path} never reached its last page")


def forged(*parts: object) -> str:
    """A cursor as this API encodes them, holding `parts` it never issued."""
    return base64.urlsafe_b64encode(json.dumps(list(parts)).encode()).decode().rstrip("=")


@pytest.mark.parametrize("limit", [1, 4, 500])
async def test_action_pages_give_every_action_once_in_due_order(client, seeded, limit):
    whole = (await client.get("/v1/actions", params={"limit": 500, "kind": "email"})).json()
    walked = await walk(client, "/v1/actions", limit=limit, kind="email")
    assert len(whole["items"]) == 11
    assert whole["next_cursor"] is None
    assert [a["id"] for a in walked] == [a["id"] for a in whole["items"]]
    assert [(a["due_at"], a["id"]) for a in walked] == sorted(
        (datetime.fromisoformat(a["due_at"]).isoformat(), a["id"]) for a in walked
    )


@pytest.mark.parametrize("limit", [1, 3, 500])
async def test_queue_pages_give_every_lead_once_soonest_sla_first_none_last(
    client, seeded, team, limit
):
    path = f"/v1/teams/{team}/queue"
    whole = (await client.get(path, params={"limit": 500})).json()["items"]
    walked = await walk(client, path, limit=limit)
    ours = [q["lead_id"] for q in walked if q["lead_id"].startswith("paging-queued-")]
    assert [q["lead_id"] for q in walked] == [q["lead_id"] for q in whole]
    assert sorted(ours) == sorted(f"paging-queued-{i}" for i in range(13))
    dues = [q["sla_due_at"] for q in walked]
    timed = [d for d in dues if d is not None]
    assert timed == sorted(timed)
    assert dues == timed + [None] * (len(dues) - len(timed))


@pytest.mark.parametrize("limit", [1, 2, 500])
async def test_task_pages_give_every_open_task_once_oldest_first(client, seeded, team, limit):
    path = f"/v1/teams/{team}/tasks"
    whole = (await client.get(path, params={"limit": 500})).json()["items"]
    walked = await walk(client, path, limit=limit)
    assert [t["id"] for t in walked] == [t["id"] for t in whole]
    assert sorted(t["lead_id"] for t in walked) == sorted(f"paging-lead-{i}" for i in range(11, 20))
    assert [t["created_at"] for t in walked] == sorted(t["created_at"] for t in walked)


async def test_a_cursor_not_issued_for_the_listing_is_a_400_naming_cursor(client, seeded, team):
    actions = (await client.get("/v1/actions", params={"limit": 1})).json()["next_cursor"]
    queue = (await client.get(f"/v1/teams/{team}/queue", params={"limit": 1})).json()
    tasks = (await client.get(f"/v1/teams/{team}/tasks", params={"limit": 1})).json()
    cases = [
        ("/v1/actions", queue["next_cursor"]),  # another listing's cursor
        ("/v1/actions", tasks["next_cursor"]),
        (f"/v1/teams/{team}/queue", actions),
        (f"/v1/teams/{team}/tasks", queue["next_cursor"]),
        ("/v1/actions", forged("actions", "not a time", "x")),
        ("/v1/actions", forged("actions", "2026-11-01T00:00:00+00:00", 7)),
        ("/v1/actions", forged("actions", "0001-01-01T00:00:00+01:00", "x")),
        (f"/v1/teams/{team}/queue", forged("queue", None, "7")),
        (f"/v1/teams/{team}/queue", forged("queue", None, 2**70)),
        (f"/v1/teams/{team}/queue", forged("queue", None, 2**63)),
        (f"/v1/teams/{team}/queue", forged("queue", None, True)),
        (f"/v1/teams/{team}/tasks", forged("tasks", "2026-11-01T00:00:00+00:00")),
        (f"/v1/teams/{team}/tasks", "not-base64!"),
    ]
    for path, cursor in cases:
        assert cursor is not None
        response = await client.get(path, params={"cursor": cursor})
        assert response.status_code == 400, (path, cursor, response.text)
        error = response.json()
        assert "cursor" in response.text, error


async def test_an_issued_cursor_still_pages_under_other_filters(client, seeded):
    first = (await client.get("/v1/actions", params={"limit": 2, "kind": "email"})).json()
    rest = await client.get(
        "/v1/actions",
        params={
            "limit": 500,
            "kind": "email",
            "status": "scheduled",
            "cursor": first["next_cursor"],
        },
    )
    assert rest.status_code == 200, rest.text
    assert len(rest.json()["items"]) == 9
