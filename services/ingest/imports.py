"""Bulk import jobs: a CSV or NDJSON file read row by row, mapped to native touch events and
published in batches through the same path as `POST /v1/events/batch` (validation,
encoding checks, the idempotency window, the broker's acknowledgement).

After each batch the broker acknowledged, the job's row records the counts and the last row
done, so a resume continues after it; a row sent twice is harmless (its event id is
deterministic, and dropped as a repeat).
"""

from __future__ import annotations

import csv
import hashlib
import uuid
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from services.ingest import imports_repository as repo
from services.ingest.domain.imports import columns_for, map_row, read_rows
from services.ingest.domain.parsing import FieldError, UnstorableText, encode_envelope
from services.ingest.service import DatabaseUnavailable, IdempotencyStore, accept_envelopes
from shared.config import Settings
from shared.events import TouchEnvelope, utcnow
from shared.faults import PublishError
from shared.kafka import AsyncProducer

# Rows per published batch (and per progress commit).
BATCH_ROWS = 500
# Refused rows kept with the job (the counts cover them all).
MAX_ERRORS = 1_000
FORMATS = ("csv", "ndjson")
# A running job records progress every BATCH_ROWS rows; one that has not for this long was cut
# short (its process stopped) and is reported `interrupted`.
STALE_AFTER = timedelta(minutes=5)

Progress = Callable[[int, "int | None"], None]


class ImportError_(ValueError):
    """The import cannot start or resume (unknown id, another file, a bad format)."""


def file_format(name: str, *, declared: str | None = None) -> str:
    """`csv` or `ndjson`, from `declared` (a content type or format name) or the file name."""
    hint = (declared or "").lower()
    for fmt, words in (("ndjson", ("ndjson", "jsonl", "json")), ("csv", ("csv",))):
        if any(w in hint for w in words):
            return fmt
    suffix = Path(name).suffix.lower()
    if suffix in (".ndjson", ".jsonl"):
        return "ndjson"
    if suffix in (".csv", ".txt"):
        return "csv"
    raise ImportError_(f"{name!r}: give a .csv, .ndjson or .jsonl file (or say its format)")


def file_facts(path: Path) -> tuple[str, int]:
    """The file's SHA-256 and its number of lines, read in chunks."""
    digest, lines = hashlib.sha256(), 0
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
            lines += chunk.count(b"\n")
    return digest.hexdigest(), lines


def start_import(
    *,
    sessions: sessionmaker[Session],
    path: Path,
    file_name: str,
    fmt: str,
    preset: str,
    mapping: Mapping[str, str],
    dry_run: bool,
    now: datetime,
) -> str:
    """Record a new import job of the file and return its id."""
    try:
        columns_for(preset, mapping)
    except ValueError as exc:
        raise ImportError_(str(exc)) from exc
    file_hash, _lines = file_facts(path)
    import_id = str(uuid.uuid4())
    job = {
        "id": import_id,
        "file_name": file_name[:500],
        "file_hash": file_hash,
        "file_format": fmt,
        "preset": preset,
        "mapping": dict(mapping),
        "dry_run": dry_run,
    }
    with sessions.begin() as session:
        repo.create(session, job=job, now=now)
    return import_id


def resume_import(
    *, sessions: sessionmaker[Session], import_id: str, path: Path, now: datetime
) -> dict[str, Any]:
    """Ready a job to continue after its last committed row; refuses another file."""
    with sessions.begin() as session:
        job = repo.get(session, import_id=import_id)
        if job is None:
            raise ImportError_(f"no import {import_id!r}")
        if job["status"] in ("done", "dry_run"):
            raise ImportError_(f"import {import_id} is {job['status']}; nothing to resume")
        if file_facts(path)[0] != job["file_hash"]:
            raise ImportError_(f"{path.name} is not the file import {import_id} was started with")
        repo.finish(session, import_id=import_id, status="running", failure=None, now=now)
    return job


def get_import(
    *, sessions: sessionmaker[Session], import_id: str, now: datetime | None = None
) -> dict[str, Any] | None:
    """The job's status, counts and errors as plain JSON values, or None; a `running` job
    without progress for STALE_AFTER (before `now`) is reported `interrupted`."""
    with sessions() as session:
        job = repo.get(session, import_id=import_id)
    if job is None:
        return None
    if job["status"] == "running" and job["updated_at"] < (now or utcnow()) - STALE_AFTER:
        job["status"] = "interrupted"
        job["failure"] = (
            f"no progress since {job['updated_at'].isoformat()}: the process running it "
            f"stopped; resume it with the same file (POST /v1/imports?resume={job['id']}, or "
            f"leadflow import FILE --resume {job['id']})"
        )
    for key in ("created_at", "updated_at", "finished_at"):
        job[key] = job[key].isoformat() if job[key] else None
    return job


async def run_import(
    *,
    sessions: sessionmaker[Session],
    import_id: str,
    path: Path,
    producer: AsyncProducer | None,
    store: IdempotencyStore | None,
    settings: Settings,
    now: Callable[[], datetime],
    progress: Progress | None = None,
    batch_rows: int = BATCH_ROWS,
) -> dict[str, Any]:
    """Import the job's file from after its last committed row; returns the job at the end
    (status done, dry_run or failed). A dry run validates every row and publishes nothing."""
    with sessions() as session:
        job = repo.get(session, import_id=import_id)
    if job is None:
        raise ImportError_(f"no import {import_id!r}")
    dry_run = job["dry_run"]
    columns = columns_for(job["preset"], job["mapping"])
    counts = {k: job[k] for k in ("rows_read", "accepted", "duplicates", "rejected", "last_row")}
    errors: list[dict[str, Any]] = list(job["errors"])
    total = max(file_facts(path)[1] - (1 if job["file_format"] == "csv" else 0), 0)
    envelopes: list[TouchEnvelope] = []
    encoded: dict[str, bytes] = {}
    pending_rejected: list[dict[str, Any]] = []
    row_number = 0

    async def commit() -> None:
        nonlocal envelopes, encoded, pending_rejected
        if envelopes and not dry_run:
            assert producer is not None and store is not None
            result = await accept_envelopes(
                envelopes=envelopes,
                encoded=encoded,
                producer=producer,
                store=store,
                settings=settings,
                now=now(),
            )
            counts["accepted"] += result.accepted
            counts["duplicates"] += result.duplicates
        elif envelopes:
            counts["accepted"] += len(envelopes)
        counts["rejected"] += len(pending_rejected)
        errors.extend(pending_rejected[: max(MAX_ERRORS - len(errors), 0)])
        counts["rows_read"] = counts["last_row"] = row_number
        with sessions.begin() as session:
            repo.save_progress(
                session, import_id=import_id, counts=counts, errors=errors, now=now()
            )
        envelopes, encoded, pending_rejected = [], {}, []
        if progress is not None:
            progress(row_number, max(total, row_number))

    status, failure = ("dry_run" if dry_run else "done"), None
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            for row in read_rows(handle, fmt=job["file_format"]):
                row_number += 1
                if row_number <= job["last_row"]:
                    continue
                try:
                    env, data = _envelope(row, job["preset"], columns, settings, now())
                except FieldError as exc:
                    pending_rejected.append(
                        {"row": row_number, "column": exc.field, "error": exc.error}
                    )
                else:
                    envelopes.append(env)
                    encoded[env.event_id] = data
                if row_number - counts["last_row"] >= batch_rows:
                    await commit()
            await commit()
    except (PublishError, DatabaseUnavailable, OSError, UnicodeDecodeError, csv.Error) as exc:
        status, failure = "failed", f"{type(exc).__name__}: {exc}"
    with sessions.begin() as session:
        repo.finish(session, import_id=import_id, status=status, failure=failure, now=now())
    result = get_import(sessions=sessions, import_id=import_id)
    assert result is not None
    return result


def _envelope(
    row: dict[str, Any], preset: str, columns: Mapping[str, str], settings: Settings, at: datetime
) -> tuple[TouchEnvelope, bytes]:
    """One row as the envelope and bytes that go on the topic; FieldError naming the column."""
    if "__error__" in row:
        raise FieldError("line", str(row["__error__"]))
    event = map_row(row, preset=preset, columns=columns)
    env = TouchEnvelope.from_native(event, received_at=at)
    try:
        return env, encode_envelope(env, max_bytes=settings.max_event_bytes)
    except UnstorableText as exc:
        raise FieldError(exc.field, exc.problem) from None
