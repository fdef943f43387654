"""Bulk import mapping: CRM export rows as native touch events, or errors naming the column."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from services.ingest.domain.imports import (
    CUSTOMER_TYPE,
    DISQUALIFIED_TYPE,
    IMPORT_TYPE,
    columns_for,
    map_row,
    parse_date,
    parse_mapping,
    parse_number,
    read_rows,
)
from services.ingest.domain.parsing import FieldError

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "imports"


def rows(name: str) -> list[dict[str, Any]]:
    """The rows of a fixture export."""
    fmt = "ndjson" if name.endswith(".ndjson") else "csv"
    with (FIXTURES / name).open(encoding="utf-8-sig", newline="") as handle:
        return list(read_rows(handle, fmt=fmt))


def mapped(preset: str, row: dict[str, Any], **overrides: str) -> Any:
    """The event of a row under a preset."""
    return map_row(row, preset=preset, columns=columns_for(preset, overrides))


def test_hubspot_row_keeps_facts_create_date_lifecycle_and_owner():
    event = mapped("hubspot", rows("hubspot_contacts.csv")[0])
    assert event.event_id == "import:hubspot:51"
    assert event.type == IMPORT_TYPE
    assert event.occurred_at == datetime(2023, 4, 12, 9, 31, tzinfo=UTC)
    assert event.lead.email == "maria.johnson@brightwave.example"
    assert (event.lead.first_name, event.lead.last_name) == ("Maria", "Johnson")
    assert event.lead.company is not None
    assert event.lead.company.employees == 250
    assert event.lead.company.annual_revenue == 25_000_000
    assert event.lead.company.domain == "brightwave.example"
    assert event.lead.traits == {
        "lead_status": "OPEN",
        "crm_lifecycle_stage": "marketingqualifiedlead",
        "crm_owner": "Ana Lopez",
        "crm_record_id": "51",
    }
    assert event.properties["owner"] == "Ana Lopez"
    assert event.properties["last_activity_at"] == "2024-01-08 16:02"


def test_hubspot_customer_becomes_the_models_customer_event():
    event = mapped("hubspot", rows("hubspot_contacts.csv")[1])
    assert event.type == CUSTOMER_TYPE
    assert event.lead.company is not None and event.lead.company.employees == 1200


def test_row_without_email_is_keyed_by_its_record_id():
    event = mapped("hubspot", rows("hubspot_contacts.csv")[2])
    assert event.lead.email is None
    assert event.lead.user_id == "hubspot_import:151"


def test_bad_date_is_refused_naming_the_column():
    with pytest.raises(FieldError) as caught:
        mapped("hubspot", rows("hubspot_contacts.csv")[3])
    assert caught.value.field == "Create Date"


def test_salesforce_lead_with_us_date_and_currency_revenue():
    event = mapped("salesforce", rows("salesforce_leads.csv")[0])
    assert event.event_id == "import:salesforce:00Q5e00000AbCdE"
    assert event.occurred_at == datetime(2024, 3, 14, 10, 22, tzinfo=UTC)
    assert event.lead.job_title == "Director of IT"
    assert event.lead.company is not None
    assert event.lead.company.name == "Northwind Traders"
    assert event.lead.company.annual_revenue == 120_000_000
    assert event.properties["lifecycle_stage"] == "Working - Contacted"
    assert event.properties["owner"] == "Chris Park"


def test_salesforce_bad_employee_count_is_refused_naming_the_column():
    with pytest.raises(FieldError) as caught:
        mapped("salesforce", rows("salesforce_leads.csv")[1])
    assert caught.value.field == "No. of Employees"
    assert "many" in caught.value.error


def test_salesforce_closed_not_converted_disqualifies():
    event = mapped("salesforce", rows("salesforce_leads.csv")[1], **{"No. of Employees": "-"})
    assert event.type == DISQUALIFIED_TYPE


def test_pipedrive_full_name_is_split_and_label_customer_is_a_customer():
    first, second = (mapped("pipedrive", r) for r in rows("pipedrive_people.csv"))
    assert (first.lead.first_name, first.lead.last_name) == ("Lena", "Fischer")
    assert first.type == CUSTOMER_TYPE
    assert first.occurred_at == datetime(2022, 7, 19, 11, 45, 3, tzinfo=UTC)
    assert first.lead.traits is not None and first.lead.traits["crm_owner"] == "Tom Weber"
    assert (second.lead.first_name, second.lead.last_name) == ("Ole", None)
    assert second.type == IMPORT_TYPE


def test_native_ndjson_keeps_the_event_and_gives_one_without_id_a_stable_id():
    found = rows("native_events.ndjson")
    first, second = mapped("native", found[0]), mapped("native", found[1])
    assert first.event_id == "legacy-1" and first.type == "webinar_attended"
    assert second.event_id == mapped("native", found[1]).event_id
    assert second.event_id.startswith("import:native:")
    assert "__error__" in found[2]
    with pytest.raises(FieldError) as caught:
        mapped("native", found[3])
    assert caught.value.field == "lead.email"


def test_custom_map_sends_a_column_to_a_trait():
    row = {"E-Mail": "x@y.example", "Plan": "pro", "Signed up": "2024-01-02"}
    event = mapped(
        "native", row, **parse_mapping(["E-Mail=email", "Plan=traits.plan", "Signed up=created_at"])
    )
    assert event.lead.email == "x@y.example"
    assert event.lead.traits == {"plan": "pro"}
    assert event.occurred_at == datetime(2024, 1, 2, tzinfo=UTC)


def test_same_row_always_gets_the_same_event_id():
    row = {"email": "a@b.example", "first_name": "A"}
    assert mapped("native", row).event_id == mapped("native", dict(row)).event_id
    assert mapped("native", row).event_id != mapped("native", {**row, "first_name": "B"}).event_id


def test_map_to_an_unknown_field_is_refused_naming_it():
    with pytest.raises(ValueError, match=r"'lead\.shoe_size' is not a field"):
        parse_mapping(["Shoe=lead.shoe_size"])
    with pytest.raises(ValueError, match="not column=field"):
        parse_mapping(["Shoe"])


def test_unknown_preset_is_refused():
    with pytest.raises(ValueError, match="unknown preset"):
        columns_for("zoho")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-03-05T10:00:00Z", datetime(2024, 3, 5, 10, tzinfo=UTC)),
        ("2024-03-05 10:00", datetime(2024, 3, 5, 10, tzinfo=UTC)),
        ("3/5/2024 2:30 PM", datetime(2024, 3, 5, 14, 30, tzinfo=UTC)),
        ("1709632800000", datetime(2024, 3, 5, 10, tzinfo=UTC)),
    ],
)
def test_export_dates_are_read_as_utc(text: str, expected: datetime):
    assert parse_date(text) == expected


def test_numbers_as_exports_write_them():
    assert parse_number("$5,000,000.00", integer=False) == 5_000_000
    assert parse_number("51-200", integer=True) == 51
    assert parse_number("10000+", integer=True) == 10_000
    with pytest.raises(ValueError):
        parse_number("12.5", integer=True)


def test_columns_match_whatever_their_case_and_spacing():
    row = {"EMAIL": "a@b.example", "contact  OWNER": "Ana", "create date": "2024-01-02 10:00"}
    event = mapped("hubspot", row)
    assert event.lead.email == "a@b.example"
    assert event.properties["owner"] == "Ana"
    assert event.occurred_at == datetime(2024, 1, 2, 10, tzinfo=UTC)


def test_row_without_email_or_record_id_is_refused_naming_the_email_column():
    with pytest.raises(FieldError) as caught:
        mapped("hubspot", {"Email": "", "First Name": "Nobody"})
    assert caught.value.field == "Email"
