"""`leadflow backtest`: a candidate model re-scores stored histories without side effects."""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
from pathlib import Path

import pytest
from sqlalchemy import select

from services.scoring.repository import leads
from shared.db import make_engine
from tests.e2e.test_leadflow_up import LEADFLOW, clean_env

pytestmark = pytest.mark.e2e

MODELS = Path(__file__).resolve().parents[2] / "services" / "scoring" / "models"


def stored_state(db: str) -> dict[str, tuple[str, str | None]]:
    engine = make_engine(db)
    try:
        with engine.connect() as conn:
            rows = conn.execute(select(leads.c.email, leads.c.qualification, leads.c.funnel_stage))
            return {r.email: (r.qualification, r.funnel_stage) for r in rows}
    finally:
        engine.dispose()


def backtest(*args: str, db: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [LEADFLOW, "backtest", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=clean_env(LEADFLOW_DATABASE_URL=db),
    )


async def seed(client, count: int) -> None:
    events = [
        {"type": "pricing_viewed", "lead": {"email": f"bt{i}@acme.example"}} for i in range(count)
    ]
    assert (await client.post("/v1/events/batch", json=events)).status_code == 202
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        page = (await client.get("/v1/leads", params={"limit": 500})).json()["items"]
        if len(page) == count and all(item["owner"] for item in page):
            return
        await asyncio.sleep(0.2)
    raise AssertionError("the seeded leads were not all scored and routed")


async def test_backtest_reports_what_a_stricter_model_changes_and_writes_nothing(
    client, clean_db, tmp_path
):
    await seed(client, 60)
    before = stored_state(clean_db)
    assert {q for q, _ in before.values()} == {"unqualified"}
    # A candidate that makes anyone with a score of 1 an SQL and weakens the pricing signal.
    text = (MODELS / "b2b_saas.toml").read_text()
    text = text.replace("mql_score = 35", "mql_score = 1").replace(
        "sql_score = 65", "sql_score = 1"
    )
    text = text.replace('pricing_viewed = "intent"', 'pricing_viewed = "consideration"')
    candidate = tmp_path / "candidate.toml"
    candidate.write_text(text.replace('version = "b2b-saas-2026.11"', 'version = "candidate-1"'))

    result = backtest("--model", str(candidate), "--json", db=clean_db)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["model_version"] == "candidate-1"
    assert report["leads"] == 60 and report["changed_leads"] == 60
    assert report["changes"]["qualification"] == 60
    assert report["moves"]["qualification"] == {"unqualified -> sql": 60}
    assert report["moves"]["funnel_stage"] == {"intent -> consideration": 60}
    assert report["changes"]["owner_team"] == 60  # intent -> sdr, sql -> sales
    assert len(report["examples"]["qualification"]) == 5
    assert stored_state(clean_db) == before, "a backtest must not change stored leads"

    text_run = backtest("--model", str(candidate), db=clean_db)
    assert "60 leads" in text_run.stdout and "unqualified -> sql: 60" in text_run.stdout
    assert "60/60 leads" in text_run.stderr  # the progress bar


async def test_backtest_with_the_current_model_changes_nothing(client, clean_db):
    await seed(client, 3)
    result = backtest("--model", "b2b_saas", "--json", "--since", "2000-01-01", db=clean_db)
    report = json.loads(result.stdout)
    assert report["leads"] == 3 and report["changed_leads"] == 0


def test_backtest_refuses_a_bad_model_naming_file_place_and_reason(clean_db, tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text(
        (MODELS / "b2b_saas.toml")
        .read_text()
        .replace('dimension = "need"', 'dimension = "desire"', 1)
    )
    result = backtest("--model", str(bad), db=clean_db)
    assert result.returncode == 1
    assert (
        "bad.toml" in result.stderr and "dimension" in result.stderr and "desire" in result.stderr
    )


def test_service_refuses_to_start_with_a_bad_model(broker, clean_db, tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('version = "x"\n[qualification]\nmql_score = 50\nsql_score = 10\n')
    result = subprocess.run(
        [LEADFLOW, "scoring", "--port", "0"],
        capture_output=True,
        text=True,
        timeout=60,
        env=clean_env(
            LEADFLOW_DATABASE_URL=clean_db,
            LEADFLOW_KAFKA_BOOTSTRAP_SERVERS=broker.bootstrap_servers,
            LEADFLOW_SCORING_MODEL=str(bad),
        ),
    )
    assert result.returncode == 1
    assert "bad.toml" in result.stderr and "qualification" in result.stderr
