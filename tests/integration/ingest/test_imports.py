"""Bulk import through the real broker and database: `leadflow import` and `POST /v1/imports`."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import typer
from kafka import KafkaConsumer
from sqlalchemy import select, update

from leadflow.cli import app, main
from leadflow.clicommon import CliError
from leadflow.runtime import Runtime
from services.ingest import imports
from services.ingest.imports_repository import imports as imports_table
from services.ingest.service import IdempotencyStore
from services.scoring.repository import touches
from shared.config import Settings
from shared.db import make_engine, make_session_factory
from shared.events import utcnow
from shared.kafka import AsyncProducer, ensure_topics
from tests.integration.ingest.conftest import FIXTURES, read_topic
from tests.integration.test_pipeline import wait_for_lead

pytestmark = pytest.mark.integration

HUBSPOT = FIXTURES / "imports" / "hubspot_contacts.csv"
SALESFORCE = FIXTURES / "imports" / "salesforce_leads.csv"


def use_settings(monkeypatch: pytest.MonkeyPatch, settings: Settings) -> None:
    """Point `leadflow` commands at the test's broker, database and topics."""
    for name in (
        "kafka_bootstrap_servers",
        "database_url",
        "topic_touch_events",
        "topic_lead_changes",
        "topic_actions",
    ):
        monkeypatch.setenv(f"LEADFLOW_{name.upper()}", str(getattr(settings, name)))


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict[str, Any]]:
    """Run `leadflow import ... --json`; the exit code and the printed report."""
    capsys.readouterr()
    command = typer.main.get_command(app)
    try:
        command.main(args=["import", *argv, "--json"], standalone_mode=False)
        code = 0
    except CliError:
        code = 1
    out = capsys.readouterr().out
    return code, json.loads(out) if out.strip() else {}


def published(settings: Settings) -> list[dict[str, Any]]:
    """What reached the touch topic (nothing when the topic was never written to)."""
    consumer = KafkaConsumer(bootstrap_servers=settings.bootstrap_servers)
    try:
        if not consumer.partitions_for_topic(settings.topic_touch_events):
            return []
    finally:
        consumer.close()
    return read_topic(settings, topic=settings.topic_touch_events)


def big_csv(path: Path, rows: int) -> Path:
    """A native CSV of `rows` leads."""
    lines = ["email,first_name,created_at,lifecycle_stage"]
    lines += [f"p{i}@bulk.example,P{i},2022-01-{1 + i % 28:02d},lead" for i in range(rows)]
    path.write_text("\n".join(lines) + "\n")
    return path


async def test_cli_import_makes_leads_with_original_dates_and_lifecycle(
    runtime: Runtime,
    client: httpx.AsyncClient,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
):
    use_settings(monkeypatch, runtime.settings)
    code, report = await asyncio.to_thread(run_cli, capsys, str(HUBSPOT), "--preset", "hubspot")
    assert code == 0, report
    assert (report["status"], report["rows_read"], report["accepted"]) == ("done", 4, 3)
    assert report["errors"] == [
        {"row": 4, "column": "Create Date", "error": report["errors"][0]["error"]}
    ]
    maria = await wait_for_lead(client, "maria.johnson@brightwave.example")
    brian = await wait_for_lead(
        client, "bh@hubspot.example", until=lambda lead: lead["qualification"] == "customer"
    )
    assert brian["qualification"] == "customer"
    engine = make_engine(runtime.settings.database_url)
    try:
        with engine.connect() as conn:
            row = conn.execute(
                select(touches.c.occurred_at, touches.c.type, touches.c.properties).where(
                    touches.c.event_id == "import:hubspot:51"
                )
            ).one()
    finally:
        engine.dispose()
    assert row.occurred_at.replace(tzinfo=None) == datetime(2023, 4, 12, 9, 31)
    assert row.properties["lifecycle_stage"] == "marketingqualifiedlead"
    assert row.properties["owner"] == "Ana Lopez"
    lead = (await client.get(f"/v1/leads/{maria['id']}")).json()
    assert lead["traits"]["crm_owner"] == "Ana Lopez"


def test_dry_run_publishes_nothing_and_reports_row_errors(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
):
    use_settings(monkeypatch, settings)
    code, report = run_cli(capsys, str(SALESFORCE), "--preset", "salesforce", "--dry-run")
    assert code == 0
    assert report["status"] == "dry_run"
    assert (report["rows_read"], report["accepted"], report["rejected"]) == (2, 1, 1)
    assert report["errors"][0]["row"] == 2
    assert report["errors"][0]["column"] == "No. of Employees"
    assert published(settings) == []


def test_reimport_of_the_same_file_publishes_nothing_new(
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
):
    use_settings(monkeypatch, settings)
    path = big_csv(tmp_path / "leads.csv", 30)
    first = run_cli(capsys, str(path))[1]
    again = run_cli(capsys, str(path))[1]
    assert (first["accepted"], first["duplicates"]) == (30, 0)
    assert (again["accepted"], again["duplicates"]) == (0, 30)
    records = published(settings)
    assert len(records) == 30
    assert records[0]["occurred_at"].startswith("2022-01-01")


class Stop(Exception):
    """Stands for the process dying after a batch was committed."""


def _cut_short(settings: Settings, path: Path, *, rows_done: int) -> str:
    """An import of `path` that stopped (as its process would) after `rows_done` rows."""
    engine = make_engine(settings.database_url)
    sessions = make_session_factory(engine)
    import_id = imports.start_import(
        sessions=sessions,
        path=path,
        file_name=path.name,
        fmt="csv",
        preset="native",
        mapping={},
        dry_run=False,
        now=utcnow(),
    )

    def die(done: int, _total: int | None) -> None:
        raise Stop(done)

    ensure_topics(settings=settings, topics=[settings.topic_touch_events])
    producer = AsyncProducer(settings=settings)
    store = IdempotencyStore(sessions=sessions, window_s=settings.dedupe_window_s)
    try:
        with pytest.raises(Stop):
            asyncio.run(
                imports.run_import(
                    sessions=sessions,
                    import_id=import_id,
                    path=path,
                    producer=producer,
                    store=store,
                    settings=settings,
                    now=utcnow,
                    progress=die,
                    batch_rows=rows_done,
                )
            )
    finally:
        store.flush()
        producer.close()
        engine.dispose()
    return import_id


def test_resume_continues_after_the_last_committed_row(
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
):
    path = big_csv(tmp_path / "leads.csv", 25)
    import_id = _cut_short(settings, path, rows_done=10)
    engine = make_engine(settings.database_url)
    interrupted = imports.get_import(sessions=make_session_factory(engine), import_id=import_id)
    engine.dispose()
    assert interrupted is not None
    assert (interrupted["status"], interrupted["last_row"]) == ("running", 10)

    use_settings(monkeypatch, settings)
    code, report = run_cli(capsys, str(path), "--resume", import_id)
    assert code == 0
    assert (report["status"], report["rows_read"], report["accepted"]) == ("done", 25, 25)
    assert report["duplicates"] == 0
    assert len(published(settings)) == 25


def test_resume_with_another_file_is_refused(
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
):
    use_settings(monkeypatch, settings)
    first = run_cli(capsys, str(big_csv(tmp_path / "a.csv", 3)), "--dry-run")[1]
    code = main(["import", str(big_csv(tmp_path / "b.csv", 4)), "--resume", first["id"]])
    assert code == 1
    assert "dry_run; nothing to resume" in capsys.readouterr().err


async def test_api_import_job_reaches_done_with_counts(ingest: Any):
    async with ingest(auth="off") as (client, _runtime):
        response = await client.post(
            "/v1/imports",
            params={"preset": "salesforce", "file_name": "leads.csv"},
            content=SALESFORCE.read_bytes(),
            headers={"Content-Type": "text/csv"},
        )
        assert response.status_code == 202, response.text
        import_id = response.json()["id"]
        deadline = time.monotonic() + 20
        job = response.json()
        while job["status"] == "running" and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
            job = (await client.get(f"/v1/imports/{import_id}")).json()
        assert job["status"] == "done", job
        assert (job["rows_read"], job["accepted"], job["rejected"]) == (2, 1, 1)
        errors = (await client.get(f"/v1/imports/{import_id}/errors")).json()
        assert errors["errors"][0]["column"] == "No. of Employees"


async def test_api_import_refuses_multipart_bad_preset_and_unknown_id(ingest: Any):
    async with ingest(auth="off") as (client, _runtime):
        multipart = await client.post("/v1/imports", files={"file": ("a.csv", b"email\n")})
        assert multipart.status_code == 415
        preset = await client.post(
            "/v1/imports",
            params={"preset": "zoho"},
            content=b"email\n",
            headers={"Content-Type": "text/csv"},
        )
        assert preset.status_code == 422
        assert "preset: must be one of" in preset.text
        assert (await client.get("/v1/imports/nope")).status_code == 404


def _age(settings: Settings, import_id: str, *, by: timedelta) -> None:
    """Move the job's last progress `by` into the past."""
    engine = make_engine(settings.database_url)
    with engine.begin() as connection:
        connection.execute(
            update(imports_table)
            .where(imports_table.c.id == import_id)
            .values(updated_at=utcnow() - by)
        )
    engine.dispose()


async def _wait_done(client: httpx.AsyncClient, import_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 20
    job = (await client.get(f"/v1/imports/{import_id}")).json()
    while job["status"] == "running" and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
        job = (await client.get(f"/v1/imports/{import_id}")).json()
    return job


async def test_an_api_import_cut_short_is_reported_interrupted_and_resumes_with_its_file(
    ingest: Any, settings: Settings, tmp_path: Path
):
    path = big_csv(tmp_path / "leads.csv", 25)
    import_id = await asyncio.to_thread(_cut_short, settings, path, rows_done=10)
    async with ingest(auth="off") as (client, _runtime):
        # Still making progress, as far as anyone can tell: not resumable yet.
        fresh = await client.get(f"/v1/imports/{import_id}")
        assert (fresh.json()["status"], fresh.json()["last_row"]) == ("running", 10)
        send = {"headers": {"Content-Type": "text/csv"}, "params": {"resume": import_id}}
        busy = await client.post("/v1/imports", content=path.read_bytes(), **send)
        assert busy.status_code == 409, busy.text
        assert "is running" in busy.json()["detail"]

        _age(settings, import_id, by=timedelta(minutes=6))
        stale = (await client.get(f"/v1/imports/{import_id}")).json()
        assert stale["status"] == "interrupted"
        assert f"resume={import_id}" in stale["failure"]

        other = await client.post(
            "/v1/imports", content=big_csv(tmp_path / "b.csv", 4).read_bytes(), **send
        )
        assert other.status_code == 409
        assert "not the file import" in other.json()["detail"]

        resumed = await client.post("/v1/imports", content=path.read_bytes(), **send)
        assert resumed.status_code == 202, resumed.text
        assert resumed.json()["id"] == import_id
        job = await _wait_done(client, import_id)
        assert (job["status"], job["rows_read"], job["accepted"]) == ("done", 25, 25), job
        assert job["failure"] is None

        again = await client.post("/v1/imports", content=path.read_bytes(), **send)
        assert again.status_code == 409
        assert "is done; nothing to resume" in again.json()["detail"]
        unknown = await client.post(
            "/v1/imports", content=path.read_bytes(), **send | {"params": {"resume": "nope"}}
        )
        assert unknown.status_code == 404
    assert len(published(settings)) == 25
