"""Ingest's SQL for bulk imports: one row per import job, its counts and where it stands."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Column, Integer, String, Table, Text, select, update
from sqlalchemy.orm import Session

from shared.db import TZDateTime, metadata

imports = Table(
    "imports",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("file_name", String(500), nullable=False),
    Column("file_hash", String(64), nullable=False),
    Column("file_format", String(16), nullable=False),
    Column("preset", String(32), nullable=False),
    Column("mapping", JSON, nullable=False),
    Column("dry_run", Boolean, nullable=False),
    # running, done, failed or dry_run
    Column("status", String(16), nullable=False),
    Column("rows_read", Integer, nullable=False),
    Column("accepted", Integer, nullable=False),
    Column("duplicates", Integer, nullable=False),
    Column("rejected", Integer, nullable=False),
    # Every row up to this one (1-based, the header not counted) is published (or refused).
    Column("last_row", Integer, nullable=False),
    # The first MAX_ERRORS rows refused: [{row, column, error}].
    Column("errors", JSON, nullable=False),
    Column("failure", Text, nullable=True),
    Column("created_at", TZDateTime, nullable=False),
    Column("updated_at", TZDateTime, nullable=False),
    Column("finished_at", TZDateTime, nullable=True),
)

_COUNTS = ("rows_read", "accepted", "duplicates", "rejected", "last_row")


def create(session: Session, *, job: dict[str, Any], now: datetime) -> None:
    """Store a new import job (its id, file, preset, mapping and dry_run in `job`)."""
    session.execute(
        imports.insert().values(
            **job,
            status="running",
            errors=[],
            failure=None,
            created_at=now,
            updated_at=now,
            finished_at=None,
            **dict.fromkeys(_COUNTS, 0),
        )
    )


def get(session: Session, *, import_id: str) -> dict[str, Any] | None:
    """The import job as a dict, or None."""
    row = session.execute(select(imports).where(imports.c.id == import_id)).mappings().first()
    return dict(row) if row else None


def save_progress(
    session: Session, *, import_id: str, counts: dict[str, int], errors: list[Any], now: datetime
) -> None:
    """Record the counts and errors up to the last committed row."""
    session.execute(
        update(imports)
        .where(imports.c.id == import_id)
        .values(**{k: counts[k] for k in _COUNTS}, errors=errors, updated_at=now)
    )


def finish(
    session: Session, *, import_id: str, status: str, failure: str | None, now: datetime
) -> None:
    """Mark the job done, dry_run or failed (with why), or running again on a resume."""
    session.execute(
        update(imports)
        .where(imports.c.id == import_id)
        .values(
            status=status,
            failure=failure,
            updated_at=now,
            finished_at=None if status == "running" else now,
        )
    )
