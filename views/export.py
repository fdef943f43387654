"""Leads exported as CSV or NDJSON, a thousand at a time: the body of `GET /v1/leads/export`
and of `leadflow leads export`."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator
from typing import Any, Literal

import orjson
from sqlalchemy.orm import Session

from views import leads as leads_view

ExportFormat = Literal["csv", "ndjson"]

# A CSV export's columns: the lead flattened (company, account and owner as their own columns).
EXPORT_COLUMNS = (
    "id",
    "email",
    "first_name",
    "last_name",
    "job_title",
    "phone",
    "company_name",
    "company_domain",
    "account_domain",
    "score",
    "qualification",
    "funnel_stage",
    "journey_stage",
    "owner_team",
    "owner_member",
    "model_version",
    "created_at",
    "updated_at",
)

MEDIA_TYPES: dict[str, str] = {"csv": "text/csv", "ndjson": "application/x-ndjson"}


def _flat(view: dict[str, Any]) -> list[Any]:
    """One lead as a CSV row of EXPORT_COLUMNS."""
    owner = view["owner"] or {}
    company = view["company"] or {}
    account = view["account"] or {}
    flat = {
        **view,
        "company_name": company.get("name"),
        "company_domain": company.get("domain"),
        "account_domain": account.get("domain"),
        "owner_team": owner.get("team"),
        "owner_member": owner.get("member"),
    }
    return [flat.get(column) for column in EXPORT_COLUMNS]


def export_chunks(
    session: Session,
    *,
    filters: leads_view.LeadFilter,
    fmt: ExportFormat,
    progress: Callable[[int], None] | None = None,
) -> Iterator[bytes]:
    """The export's bytes, one chunk per thousand leads in id order (a CSV starts with its
    header row); `progress(leads_so_far)` after each chunk."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    if fmt == "csv":
        writer.writerow(EXPORT_COLUMNS)
    done = 0
    for batch in leads_view.iter_lead_rows(session, filters=filters):
        views = leads_view.lead_views(session, rows=batch)
        if fmt == "ndjson":
            chunk = b"".join(orjson.dumps(v) + b"\n" for v in views)
        else:
            writer.writerows(_flat(v) for v in views)
            chunk = buffer.getvalue().encode()
            buffer.seek(0)
            buffer.truncate()
        done += len(batch)
        yield chunk
        if progress is not None:
            progress(done)
    if buffer.getvalue():  # a CSV export of no leads is its header alone
        yield buffer.getvalue().encode()
