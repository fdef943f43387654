"""`leadflow import FILE`: existing leads and their history from a CRM export or a native file,
through ingest's validation, idempotency window and broker (`services.ingest.imports`)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated, Any

import typer

from leadflow.admin import migrated_sessions
from leadflow.clicommon import CliError, JsonOption, load_settings
from leadflow.output import print_json, print_table
from leadflow.progress import progress_bar, stderr_is_terminal

# Rows of the per-row error report printed without --json (all the stored ones with it).
SHOWN_ERRORS = 50


def cmd_import(
    file: Annotated[Path, typer.Argument(help="a .csv, .ndjson or .jsonl file", exists=True)],
    preset: Annotated[
        str, typer.Option(help="column names of: hubspot, salesforce, pipedrive or native")
    ] = "native",
    mapping: Annotated[
        list[str] | None,
        typer.Option(
            "--map",
            help="COLUMN=FIELD, adding to or overriding the preset (repeatable); FIELD is e.g. "
            "email, company.name, lifecycle_stage, owner, created_at, record_id, "
            "traits.NAME, properties.NAME, or - to drop the column",
        ),
    ] = None,
    file_format: Annotated[
        str | None, typer.Option("--format", help="csv or ndjson (default: from the suffix)")
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="validate every row, publish nothing")
    ] = False,
    resume: Annotated[
        str | None, typer.Option(help="an import id: continue after its last committed row")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Import leads and their history: one touch per row, original dates kept."""
    from services.ingest import imports
    from services.ingest.domain.imports import parse_mapping
    from shared.events import utcnow

    settings = load_settings()
    try:
        overrides = parse_mapping(mapping or [])
        fmt = imports.file_format(file.name, declared=file_format)
    except ValueError as exc:
        raise CliError(f"--map/--format: {exc}") from exc
    if not dry_run and settings.kafka_bootstrap_servers is None:
        raise CliError(
            "`leadflow import` needs LEADFLOW_KAFKA_BOOTSTRAP_SERVERS (or --dry-run): the "
            "broker the services use (`leadflow up` prints its embedded broker's address)"
        )
    with migrated_sessions(settings) as made:
        sessions: Any = made
        try:
            if resume:
                job = imports.resume_import(
                    sessions=sessions, import_id=resume, path=file, now=utcnow()
                )
                import_id = job["id"]
            else:
                import_id = imports.start_import(
                    sessions=sessions,
                    path=file,
                    file_name=file.name,
                    fmt=fmt,
                    preset=preset,
                    mapping=overrides,
                    dry_run=dry_run,
                    now=utcnow(),
                )
        except imports.ImportError_ as exc:
            raise CliError(str(exc)) from exc
        with progress_bar(
            "dry run" if dry_run else "import",
            unit="rows",
            enabled=not as_json or stderr_is_terminal(),
        ) as advance:
            result = _run(settings, sessions, import_id, file, advance)
    if as_json:
        print_json(result)
    else:
        _print_report(result)
    if result["status"] == "failed":
        raise CliError(f"import {import_id} failed: {result['failure']}; continue with --resume")


def _run(settings: Any, sessions: Any, import_id: str, file: Path, advance: Any) -> Any:
    """Run the job on a loop of its own, with a producer and idempotency store for it."""
    from services.ingest import imports
    from services.ingest.service import IdempotencyStore
    from shared.events import utcnow
    from shared.kafka import AsyncProducer, ensure_topics

    job = imports.get_import(sessions=sessions, import_id=import_id)
    dry_run = bool(job and job["dry_run"])
    producer = None
    if not dry_run:
        ensure_topics(settings=settings, topics=[settings.topic_touch_events])
        producer = AsyncProducer(settings=settings)
    store = IdempotencyStore(sessions=sessions, window_s=settings.dedupe_window_s)
    try:
        return asyncio.run(
            imports.run_import(
                sessions=sessions,
                import_id=import_id,
                path=file,
                producer=producer,
                store=store,
                settings=settings,
                now=utcnow,
                progress=advance,
            )
        )
    finally:
        store.flush()
        if producer is not None:
            producer.close()


def _print_report(result: dict[str, Any]) -> None:
    """The per-row errors (the first SHOWN_ERRORS) and the totals."""
    errors = result["errors"]
    if errors:
        print_table(
            ["row", "column", "error"],
            [(e["row"], e["column"], e["error"]) for e in errors[:SHOWN_ERRORS]],
            title="rows refused",
        )
        if result["rejected"] > SHOWN_ERRORS:
            print(f"... {result['rejected'] - SHOWN_ERRORS} more (--json lists up to 1000)")
    verb = "would publish" if result["dry_run"] else "published"
    print(
        f"import {result['id']} {result['status']}: {result['rows_read']} rows read, "
        f"{verb} {result['accepted']}, {result['duplicates']} already imported, "
        f"{result['rejected']} refused"
    )
