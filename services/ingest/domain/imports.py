"""Bulk import: a row of a CRM export (HubSpot, Salesforce, Pipedrive) or of a native file, as
the native touch event it stands for.

A row is a mapping of column name -> text (a CSV line) or value (an NDJSON line). A preset
says which column holds which lead fact; `--map column=field` adds to or overrides it. Each
row becomes one event: `occurred_at` is the record's own create date, the lead facts come from
its columns, and the CRM's lifecycle stage, owner and record id are kept as traits and
properties. The event id is deterministic (`import:<preset>:<record id or row hash>`), so a
re-run is dropped by ingest's and scoring's dedupe. A lifecycle that clearly means a
qualification becomes the scoring model's event for it (customer -> `closed_won`,
disqualified -> `disqualified`); MQL/SQL stay a trait: a score is derived, never imported.
A row that cannot be mapped raises FieldError naming the column.
"""

from __future__ import annotations

import csv
import hashlib
import json
import re
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from services.ingest.domain.parsing import FieldError
from shared.events import TouchEventIn

# The touch type of an imported record, and those of a lifecycle that means a qualification.
IMPORT_TYPE = "crm_import"
CUSTOMER_TYPE = "closed_won"
DISQUALIFIED_TYPE = "disqualified"

_CUSTOMER = {"customer", "closed won", "closed - won", "won", "evangelist"}
_DISQUALIFIED = {
    "disqualified",
    "unqualified",
    "closed - not converted",
    "closed lost",
    "closed - lost",
    "lost",
    "junk",
}

# Where a column's value goes: a field of the lead (`email`, `company.name`, ...), one of the
# import's own (`lifecycle_stage`, `owner`, `record_id`, `created_at`, `full_name`, `type`,
# `event_id`, `source`), `traits.<name>` or `properties.<name>`; `-` drops the column.
LEAD_FIELDS = (
    "email",
    "anonymous_id",
    "user_id",
    "first_name",
    "last_name",
    "job_title",
    "phone",
)
COMPANY_FIELDS = ("name", "domain", "industry", "employees", "annual_revenue", "country")
OWN_FIELDS = ("lifecycle_stage", "owner", "record_id", "created_at", "full_name")
EVENT_FIELDS = ("type", "event_id", "source", "occurred_at")
TARGETS = frozenset(
    [*LEAD_FIELDS, *(f"company.{f}" for f in COMPANY_FIELDS), *OWN_FIELDS, *EVENT_FIELDS, "-"]
)

PRESETS: dict[str, dict[str, str]] = {
    "hubspot": {
        "Email": "email",
        "First Name": "first_name",
        "Last Name": "last_name",
        "Job Title": "job_title",
        "Phone Number": "phone",
        "Company Name": "company.name",
        "Website URL": "company.domain",
        "Company Domain Name": "company.domain",
        "Industry": "company.industry",
        "Number of Employees": "company.employees",
        "Annual Revenue": "company.annual_revenue",
        "Country/Region": "company.country",
        "Lifecycle Stage": "lifecycle_stage",
        "Email Address": "email",
        "Contact owner": "owner",
        "HubSpot Owner": "owner",
        "Create Date": "created_at",
        "Record ID": "record_id",
        "Last Activity Date": "properties.last_activity_at",
        "Lead Status": "traits.lead_status",
    },
    "salesforce": {
        "Email": "email",
        "First Name": "first_name",
        "Last Name": "last_name",
        "Title": "job_title",
        "Phone": "phone",
        "Company": "company.name",
        "Company / Account": "company.name",
        "Account Name": "company.name",
        "Website": "company.domain",
        "Industry": "company.industry",
        "No. of Employees": "company.employees",
        "Annual Revenue": "company.annual_revenue",
        "Country": "company.country",
        "Lead Status": "lifecycle_stage",
        "Lead Owner": "owner",
        "Contact Owner": "owner",
        "Created Date": "created_at",
        "Lead ID": "record_id",
        "Contact ID": "record_id",
        "Lead Source": "traits.lead_source",
        "Rating": "traits.rating",
    },
    "pipedrive": {
        "Person - Email": "email",
        "Person - Email - Work": "email",
        "Person - Name": "full_name",
        "Person - First name": "first_name",
        "Person - Last name": "last_name",
        "Person - Job title": "job_title",
        "Person - Phone": "phone",
        "Person - Phone - Work": "phone",
        "Organization - Name": "company.name",
        "Person - Organization": "company.name",
        "Person - Owner": "owner",
        "Person - Label": "lifecycle_stage",
        "Person - Person created": "created_at",
        "Person - ID": "record_id",
    },
    "native": {
        **{f: f for f in LEAD_FIELDS},
        **{f"lead.{f}": f for f in LEAD_FIELDS},
        **{f"company.{f}": f"company.{f}" for f in COMPANY_FIELDS},
        **{f"lead.company.{f}": f"company.{f}" for f in COMPANY_FIELDS},
        **{f: f for f in OWN_FIELDS},
        **{f: f for f in EVENT_FIELDS},
    },
}

_DATE_FORMATS = (
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%d %H:%M",
    "%m/%d/%Y %I:%M %p",
    "%m/%d/%Y, %I:%M %p",
    "%m/%d/%Y %H:%M",
    "%m/%d/%Y",
    "%d.%m.%Y %H:%M",
    "%d.%m.%Y",
)
_NUMBER_JUNK = re.compile(r"[\s,$€£¥]|^[A-Z]{3}\s*")
_RANGE = re.compile(r"^(\d+)\s*[-\u2013]\s*(\d+)$")


def parse_mapping(pairs: Iterable[str]) -> dict[str, str]:
    """`column=field` overrides as a dict; ValueError naming a pair that is not one."""
    mapping: dict[str, str] = {}
    for pair in pairs:
        column, sep, target = pair.rpartition("=")
        column, target = column.strip(), target.strip()
        if not sep or not column:
            raise ValueError(f"{pair!r} is not column=field")
        check_target(target)
        mapping[column] = target
    return mapping


def check_target(target: str) -> None:
    """ValueError unless `target` is a field a column can go to."""
    if target in TARGETS or re.match(
        r"^(traits|properties)\.[A-Za-z0-9_][A-Za-z0-9_ .$-]*$", target
    ):
        return
    raise ValueError(
        f"{target!r} is not a field; use one of {', '.join(sorted(TARGETS))}, "
        "traits.<name> or properties.<name>"
    )


def column_key(name: Any) -> str:
    """A column name as matched: case and runs of spaces do not matter (exports of one CRM
    write `Contact owner` or `Contact Owner` depending on its version)."""
    return " ".join(str(name).split()).lower()


def columns_for(preset: str, overrides: Mapping[str, str] | None = None) -> dict[str, str]:
    """The column -> field mapping of a preset with the overrides applied, by `column_key`."""
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; one of {', '.join(PRESETS)}")
    return {column_key(k): v for k, v in {**PRESETS[preset], **(overrides or {})}.items()}


def parse_date(text: str) -> datetime:
    """An export's date as an aware time (UTC when it names no offset); ValueError otherwise.
    Slashed dates are read month first, as US-locale exports write them."""
    text = text.strip()
    if text.isdigit() and len(text) >= 12:  # epoch milliseconds
        return datetime.fromtimestamp(int(text) / 1000, tz=UTC)
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        for fmt in _DATE_FORMATS:
            try:
                parsed = datetime.strptime(text, fmt)
                break
            except ValueError:
                continue
        else:
            raise ValueError(f"{text[:40]!r} is not a date (ISO 8601 or MM/DD/YYYY)") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def parse_number(text: str, *, integer: bool) -> int | float:
    """A number as exports write it (`1,200`, `$5,000,000.00`, a range `51-200` as its lower
    bound); ValueError otherwise."""
    cleaned = _NUMBER_JUNK.sub("", text.strip())
    if match := _RANGE.match(cleaned):
        cleaned = match.group(1)
    cleaned = cleaned.rstrip("+")
    try:
        value = float(cleaned)
    except ValueError:
        raise ValueError(f"{text[:40]!r} is not a number") from None
    if integer:
        if value != int(value):
            raise ValueError(f"{text[:40]!r} is not a whole number")
        return int(value)
    return value


def lifecycle_type(stage: str | None) -> str:
    """The touch type a CRM lifecycle stage or status stands for."""
    normal = (stage or "").strip().lower().replace("_", " ")
    if normal in _CUSTOMER:
        return CUSTOMER_TYPE
    if normal in _DISQUALIFIED:
        return DISQUALIFIED_TYPE
    return IMPORT_TYPE


def row_hash(row: Mapping[str, Any]) -> str:
    """A stable short hash of a row's content (the id of a record without one)."""
    data = json.dumps(sorted((str(k), str(v)) for k, v in row.items()), ensure_ascii=False)
    return hashlib.sha256(data.encode()).hexdigest()[:24]


def _text(value: Any) -> str | None:
    if value is None:
        return None
    text = (
        value
        if isinstance(value, str)
        else json.dumps(value)
        if isinstance(value, dict | list)
        else str(value)
    )
    return text.strip() or None


def map_row(row: Mapping[str, Any], *, preset: str, columns: Mapping[str, str]) -> TouchEventIn:
    """The touch event a row stands for; FieldError naming the column when it has none."""
    if preset == "native" and isinstance(row.get("lead"), dict):
        return _native_event(row)
    lead: dict[str, Any] = {}
    company: dict[str, Any] = {}
    own: dict[str, str] = {}
    traits: dict[str, Any] = {}
    properties: dict[str, Any] = {}
    source_of: dict[str, str] = {}
    for column, raw in row.items():
        target = columns.get(column_key(column))
        value = _text(raw)
        if target is None or target == "-" or value is None:
            continue
        source_of[target] = column
        try:
            if target.startswith("company."):
                name = target.removeprefix("company.")
                if name in ("employees", "annual_revenue"):
                    company[name] = parse_number(value, integer=name == "employees")
                else:
                    company[name] = value
            elif target.startswith("traits."):
                traits[target.removeprefix("traits.")] = value[:500]
            elif target.startswith("properties."):
                properties[target.removeprefix("properties.")] = value
            elif target in LEAD_FIELDS:
                lead[target] = value
            else:
                own[target] = value
        except ValueError as exc:
            raise FieldError(column, str(exc)) from None
    if "full_name" in own and not ("first_name" in lead or "last_name" in lead):
        first, _, last = own["full_name"].partition(" ")
        lead["first_name"], lead["last_name"] = first, last.strip() or None
    occurred = own.get("occurred_at") or own.get("created_at")
    date_key = "occurred_at" if "occurred_at" in own else "created_at"
    try:
        occurred_at = parse_date(occurred) if occurred else None
    except ValueError as exc:
        raise FieldError(source_of[date_key], str(exc)) from None
    record_id = own.get("record_id")
    if not lead.get("email") and not lead.get("anonymous_id") and not lead.get("user_id"):
        if not record_id:
            email_col = next((c for c in row if columns.get(column_key(c)) == "email"), "email")
            raise FieldError(email_col, "is empty; a lead needs an email (or a record id)")
        lead["user_id"] = f"{preset}_import:{record_id}"
    stage = own.get("lifecycle_stage")
    for key in ("lifecycle_stage", "owner", "record_id"):
        if key in own:
            traits[f"crm_{key}"] = own[key][:500]
            properties[key] = own[key]
    if company:
        lead["company"] = company
    if traits:
        lead["traits"] = traits
    properties["import_preset"] = preset
    event = {
        "event_id": own.get("event_id") or f"import:{preset}:{record_id or row_hash(row)}",
        "type": own.get("type") or lifecycle_type(stage),
        "occurred_at": occurred_at,
        "source": own.get("source") or f"{preset}_import",
        "lead": lead,
        "properties": properties,
    }
    return _validated(event, source_of)


def _native_event(row: Mapping[str, Any]) -> TouchEventIn:
    event = dict(row)
    event.setdefault("event_id", f"import:native:{row_hash(row)}")
    event.setdefault("source", "native_import")
    return _validated(event, {})


def _validated(event: dict[str, Any], source_of: Mapping[str, str]) -> TouchEventIn:
    try:
        return TouchEventIn.model_validate(event)
    except ValidationError as exc:
        error = exc.errors()[0]
        loc = [str(p) for p in error.get("loc", ())]
        path = ".".join(p for p in loc if p != "lead") or "event"
        column = source_of.get(path) or source_of.get(".".join(loc[1:3])) or ".".join(loc)
        raise FieldError(
            column or "event", error.get("msg", "invalid").removeprefix("Value error, ")
        ) from None


def read_rows(lines: Iterable[str], *, fmt: str) -> Iterator[dict[str, Any]]:
    """The rows of a CSV or NDJSON text, one at a time (never the whole file); a line of
    NDJSON that is not a JSON object yields `{"__error__": why}`."""
    if fmt == "csv":
        reader = csv.DictReader(iter(lines))
        for row in reader:
            yield {k.strip().lstrip("\ufeff"): v for k, v in row.items() if k is not None}
        return
    for line in lines:
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except (ValueError, RecursionError) as exc:
            yield {"__error__": f"not JSON: {exc}"[:300]}
            continue
        yield value if isinstance(value, dict) else {"__error__": "must be a JSON object"}
