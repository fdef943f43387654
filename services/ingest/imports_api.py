"""`POST /v1/imports` and its status: a bulk import run as a job in the ingest process.

The body is the file itself (`text/csv`, or `application/x-ndjson`), streamed to a temporary
file rather than memory, up to LEADFLOW_IMPORT_MAX_BYTES. The job runs on a thread of its own
(its own event loop and idempotency store, the process's producer) through the same path as
`leadflow import` (`services.ingest.imports`).
"""

from __future__ import annotations

import asyncio
import logging
import os
import tempfile
import threading
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel

from services.ingest import imports
from services.ingest.domain.imports import PRESETS, parse_mapping
from services.ingest.schemas import error_example
from services.ingest.service import IdempotencyStore
from shared.auth import EventsWriter
from shared.events import utcnow
from shared.http import ApiError, Resources, ResourcesDep
from shared.schemas import KEYED, error_responses

log = logging.getLogger(__name__)
router = APIRouter(tags=["imports"])

_KEY_ERRORS: dict[int | str, dict[str, Any]] = error_responses(*KEYED) | {
    401: {
        "description": "Missing or bad API key",
        **error_example(401, "unauthorized", "unknown or revoked API key"),
    },
    403: {
        "description": "The key lacks the scope",
        **error_example(403, "forbidden", "API key 'crm' lacks the scope 'events:write'"),
    },
}
_NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"description": "No such import", **error_example(404, "not_found", "no import 'x'")}
}
_POST_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {
        "description": "The body is empty",
        **error_example(400, "bad_request", "request body is empty; send the file as the body"),
    },
    408: {
        "description": "The body did not arrive within LEADFLOW_BODY_READ_TIMEOUT_S",
        **error_example(408, "request_timeout", "request body not received within 30 s"),
    },
    413: {
        "description": "The file is over LEADFLOW_IMPORT_MAX_BYTES",
        **error_example(413, "payload_too_large", "the file is larger than 1000000000 bytes"),
    },
    415: {
        "description": "The body is not declared as text/csv or application/x-ndjson",
        **error_example(415, "unsupported_media_type", "send the file itself as the body"),
    },
    422: {
        "description": "A bad preset or --map pair, named",
        **error_example(422, "validation_error", "preset: must be one of hubspot, ..."),
    },
    409: {
        "description": "The import to resume is done, still running, or of another file",
        **error_example(409, "conflict", "import 3f2c… is done; nothing to resume"),
    },
    503: {
        "description": "No broker to publish to, or the database is unavailable",
        **error_example(503, "broker_unavailable", "no broker to publish to"),
    },
}


class ImportOut(BaseModel):
    """An import job: its file, status and counts so far."""

    id: str
    file_name: str
    file_format: str
    preset: str
    mapping: dict[str, str]
    dry_run: bool
    status: str
    rows_read: int
    accepted: int
    duplicates: int
    rejected: int
    last_row: int
    failure: str | None
    created_at: str
    updated_at: str
    finished_at: str | None


class ImportRowError(BaseModel):
    """One refused row: its number (1 is the first after a CSV's header), column and why."""

    row: int
    column: str
    error: str


class ImportErrorsOut(BaseModel):
    """The rows an import refused (the first 1000), each with its column and why."""

    id: str
    rejected: int
    errors: list[ImportRowError]


async def _job(resources: Resources, import_id: str) -> dict[str, Any]:
    job = await asyncio.to_thread(
        imports.get_import, sessions=resources.sessions, import_id=import_id
    )
    if job is None:
        raise ApiError(404, "not_found", f"no import {import_id!r}")
    return job


async def _spool(request: Request, limit: int) -> Path:
    """The request body in a temporary file, written chunk by chunk."""
    fd, name = tempfile.mkstemp(prefix="leadflow-import-")
    size = 0
    try:
        with os.fdopen(fd, "wb") as handle:
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise ApiError(
                        413, "payload_too_large", f"the file is larger than {limit} bytes"
                    )
                await asyncio.to_thread(handle.write, chunk)
    except BaseException:
        os.unlink(name)
        raise
    if size == 0:
        os.unlink(name)
        raise ApiError(400, "bad_request", "request body is empty; send the file as the body")
    return Path(name)


def _run_in_thread(resources: Resources, import_id: str, path: Path) -> None:
    """Run the job on a thread with its own loop; the temporary file goes when it ends."""

    def work() -> None:
        store = IdempotencyStore(
            sessions=resources.sessions, window_s=resources.settings.dedupe_window_s
        )
        try:
            asyncio.run(
                imports.run_import(
                    sessions=resources.sessions,
                    import_id=import_id,
                    path=path,
                    producer=resources.producer,
                    store=store,
                    settings=resources.settings,
                    now=utcnow,
                )
            )
        except Exception:
            log.exception("import %s stopped", import_id)
        finally:
            store.flush()
            path.unlink(missing_ok=True)

    threading.Thread(target=work, name=f"import-{import_id[:8]}", daemon=True).start()


@router.post(
    "/v1/imports",
    status_code=202,
    response_model=ImportOut,
    summary="Import existing leads from a CSV or NDJSON file (a job)",
    responses=_KEY_ERRORS | _POST_ERRORS | _NOT_FOUND,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "text/csv": {"schema": {"type": "string"}},
                "application/x-ndjson": {"schema": {"type": "string"}},
            },
        }
    },
)
async def post_import(
    request: Request,
    resources: ResourcesDep,
    _principal: EventsWriter,
    preset: Annotated[str, Query(description=f"one of {', '.join(PRESETS)}")] = "native",
    dry_run: bool = False,
    file_name: Annotated[str, Query(max_length=500)] = "upload",
    mapping: Annotated[
        list[str] | None, Query(alias="map", description="COLUMN=FIELD overrides")
    ] = None,
    resume: Annotated[
        str | None,
        Query(
            max_length=36,
            description="the id of an interrupted or failed import to continue: send its "
            "file again (the same bytes) and it goes on after the last row it recorded",
        ),
    ] = None,
) -> ImportOut:
    """Start an import of the body (text/csv or application/x-ndjson), or resume one; 202 with
    its id, then poll `GET /v1/imports/{id}` (scope events:write)."""
    if preset not in PRESETS:
        raise ApiError(
            422,
            "validation_error",
            f"preset: must be one of {', '.join(PRESETS)}",
            details=[{"field": "preset", "error": f"must be one of {', '.join(PRESETS)}"}],
        )
    try:
        overrides = parse_mapping(mapping or [])
    except ValueError as exc:
        raise ApiError(
            422, "validation_error", f"map: {exc}", details=[{"field": "map", "error": str(exc)}]
        ) from exc
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type not in ("text/csv", "application/x-ndjson", "application/jsonl"):
        raise ApiError(
            415,
            "unsupported_media_type",
            "send the file itself as the body with Content-Type text/csv or "
            "application/x-ndjson (not multipart)",
        )
    if resume is not None:
        job = await _job(resources, resume)
        if job["status"] == "running":
            raise ApiError(
                409,
                "conflict",
                f"import {resume} is running (it recorded progress within the last "
                f"{imports.STALE_AFTER.seconds // 60} minutes)",
            )
        dry_run = job["dry_run"]
    if not dry_run and resources.producer is None:
        raise ApiError(503, "broker_unavailable", "no broker to publish to")
    path = await _spool(request, resources.settings.import_max_bytes)
    if resume is not None:
        return await _resume(resources, resume, path)
    try:
        import_id = await asyncio.to_thread(
            imports.start_import,
            sessions=resources.sessions,
            path=path,
            file_name=file_name,
            fmt=imports.file_format(file_name, declared=content_type),
            preset=preset,
            mapping=overrides,
            dry_run=dry_run,
            now=utcnow(),
        )
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    _run_in_thread(resources, import_id, path)
    return ImportOut(**await _job(resources, import_id))


async def _resume(resources: Resources, import_id: str, path: Path) -> ImportOut:
    """Continue the job with the uploaded file (409 if it is done or another file)."""
    try:
        await asyncio.to_thread(
            imports.resume_import,
            sessions=resources.sessions,
            import_id=import_id,
            path=path,
            now=utcnow(),
        )
    except BaseException as exc:
        path.unlink(missing_ok=True)
        if isinstance(exc, imports.ImportError_):
            raise ApiError(409, "conflict", str(exc)) from exc
        raise
    _run_in_thread(resources, import_id, path)
    return ImportOut(**await _job(resources, import_id))


@router.get(
    "/v1/imports/{import_id}",
    response_model=ImportOut,
    summary="An import's status",
    responses=_KEY_ERRORS | _NOT_FOUND,
)
async def get_import(
    import_id: str, resources: ResourcesDep, _principal: EventsWriter
) -> ImportOut:
    """The import's status (running, done, failed, dry_run) and counts (scope events:write)."""
    return ImportOut(**await _job(resources, import_id))


@router.get(
    "/v1/imports/{import_id}/errors",
    response_model=ImportErrorsOut,
    summary="The rows an import refused",
    responses=_KEY_ERRORS | _NOT_FOUND,
)
async def get_import_errors(
    import_id: str, resources: ResourcesDep, _principal: EventsWriter
) -> ImportErrorsOut:
    """Each refused row with its column and why, the first 1000 (scope events:write)."""
    job = await _job(resources, import_id)
    return ImportErrorsOut(id=job["id"], rejected=job["rejected"], errors=job["errors"])
