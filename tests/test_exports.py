"""CSV export of a clinic's check-ins (issue 5): RFC 4180 that Python's csv module reads back,
every note round-tripping, UTC and local times, whole days in the clinic's zone, clinic scoping,
bad ranges refused, every export audited."""

from __future__ import annotations

import csv
import io
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from companion.checkins.store import CheckInDetails, submit_checkin
from companion.exports.checkins_csv import COLUMNS
from companion.extensions import db
from companion.models import AuditEvent
from tests.conftest import sign_in

# Madrid is UTC+1 in November.
VISIT_AT = datetime(2026, 11, 10, 9, 0, tzinfo=UTC)

NOTES = [
    "plain",
    "commas, and more, commas",
    'she said "it pulls" and "burns"',
    "two lines\nsecond line\r\nthird line",
    "dolor muy fuerte — ñandú, acción",
    "首の痛みが少し残っています",
    "ألم خفيف في الرقبة",
    "=SUM(A1:A2)",
    "",
]


def checkin(visit, at: datetime, score: int, note: str | None) -> None:
    details = CheckInDetails(uuid.uuid4(), at, score, None, ["small_bruise"], ["heat"], note)
    submit_checkin(visit, details, now=at)
    db.session.commit()


def parse(response) -> list[dict[str, str]]:
    text = response.get_data(as_text=True)
    return list(csv.DictReader(io.StringIO(text, newline="")))


@pytest.fixture
def clinic_with_checkins(make_clinic, make_visit):
    clinic = make_clinic(timezone="Europe/Madrid")
    visit = make_visit(
        clinic, name="Ana Ruiz", ref="P-1", performed_at=VISIT_AT, now=VISIT_AT
    ).visit
    for i, note in enumerate(NOTES):
        checkin(visit, VISIT_AT + timedelta(hours=2 + i), i % 11, note or None)
    return clinic, visit


def get_csv(client, key, first="2026-11-10", last="2026-11-10", extra=""):
    return client.get(
        f"/api/v1/checkins.csv?from={first}&to={last}{extra}",
        headers={"Authorization": f"Bearer {key}"},
    )


def test_the_csv_parses_and_round_trips_every_note(client, make_api_key, clinic_with_checkins):
    clinic, _ = clinic_with_checkins

    # The exact form (?raw=1); the default defuses formulas (tests/test_csv_injection.py).
    response = get_csv(client, make_api_key(clinic), extra="&raw=1")

    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/csv; charset=utf-8")
    assert "attachment" in response.headers["Content-Disposition"]
    assert response.headers["Cache-Control"] == "no-store"
    raw = response.get_data(as_text=True)
    assert raw.startswith(",".join(COLUMNS) + "\r\n")  # a header row, CRLF (RFC 4180)
    rows = parse(response)
    assert [r["note"] for r in rows] == NOTES
    assert {r["patient_ref"] for r in rows} == {"P-1"}
    assert rows[0]["symptoms"] == "small_bruise" and rows[0]["helped"] == "heat"


def test_times_are_given_in_utc_and_in_the_patients_local_time(
    client, make_api_key, clinic_with_checkins
):
    clinic, _ = clinic_with_checkins

    first = parse(get_csv(client, make_api_key(clinic)))[0]

    assert first["recorded_at_utc"] == "2026-11-10T11:00:00Z"
    assert first["recorded_at_local"] == "2026-11-10T12:00:00+01:00"
    assert first["patient_timezone"] == "Europe/Madrid"
    assert first["visit_performed_at_utc"] == "2026-11-10T09:00:00Z"
    assert first["hours_since_visit"] == "2.0"


def test_days_are_whole_days_in_the_clinics_zone(client, make_api_key, make_clinic, make_visit):
    clinic = make_clinic(timezone="Europe/Madrid")
    visit = make_visit(clinic, performed_at=VISIT_AT, now=VISIT_AT).visit
    checkin(visit, datetime(2026, 11, 10, 22, 59, tzinfo=UTC), 3, "23:59 in Madrid")
    checkin(visit, datetime(2026, 11, 10, 23, 0, tzinfo=UTC), 3, "00:00 the next day in Madrid")

    notes = [r["note"] for r in parse(get_csv(client, make_api_key(clinic)))]

    assert notes == ["23:59 in Madrid"]


def test_another_clinics_checkins_are_never_exported(
    client, make_api_key, make_clinic, make_visit, clinic_with_checkins
):
    other = make_clinic()
    stranger = make_visit(other, performed_at=VISIT_AT, now=VISIT_AT).visit
    checkin(stranger, VISIT_AT + timedelta(hours=3), 5, "not yours")

    rows = parse(get_csv(client, make_api_key(clinic_with_checkins[0])))

    assert "not yours" not in [r["note"] for r in rows] and len(rows) == len(NOTES)


@pytest.mark.parametrize(
    ("first", "last", "field"),
    [
        ("", "2026-11-10", "from"),
        ("2026-11-31", "2026-12-01", "from"),
        ("yesterday", "2026-11-10", "from"),
        ("2026-11-10", "2026-11-09", "to"),
        ("2025-01-01", "2026-11-10", "to"),
    ],
)
def test_a_bad_range_is_a_422_and_exports_nothing(
    client, make_api_key, make_clinic, first, last, field
):
    response = get_csv(client, make_api_key(make_clinic()), first, last)

    assert response.status_code == 422
    assert response.get_json()["error"]["field"] == field
    assert db.session.scalars(select(AuditEvent.action)).all() == []


def test_the_csv_needs_a_clinic_key(client):
    assert client.get("/api/v1/checkins.csv?from=2026-11-10&to=2026-11-10").status_code == 401


def test_every_export_is_audited_without_the_data(client, make_api_key, clinic_with_checkins):
    clinic, _ = clinic_with_checkins

    get_csv(client, make_api_key(clinic))

    event = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "export.csv"))
    assert event.actor_type == "api_key" and event.clinic_id == clinic.id
    assert event.detail == {
        "table": "checkins",
        "from": "2026-11-10",
        "to": "2026-11-10",
        "rows": len(NOTES),
        "form": "safe",
    }


def test_a_therapist_downloads_the_same_csv_from_the_exports_page(
    client, make_therapist, clinic_with_checkins
):
    clinic, _ = clinic_with_checkins
    sign_in(client, make_therapist(clinic).email)

    page = client.get("/exports").get_data(as_text=True)
    response = client.get("/exports/checkins.csv?from=2026-11-10&to=2026-11-10&raw=1")

    assert 'type="date"' in page
    assert response.status_code == 200
    assert [r["note"] for r in parse(response)] == NOTES
    event = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "export.csv"))
    assert event.actor_type == "therapist"


def test_the_exports_page_says_what_is_wrong_with_a_range(client, make_therapist, make_clinic):
    sign_in(client, make_therapist(make_clinic()).email)

    response = client.get("/exports/checkins.csv?from=2026-11-10&to=2026-11-01")

    assert response.status_code == 422
    assert "Choose a last day on or after the first" in response.get_data(as_text=True)


def test_the_global_impression_is_the_last_column_and_empty_when_not_given(
    client, make_api_key, make_clinic, make_visit, now
):
    clinic = make_clinic(timezone="Europe/Madrid")
    visit_at = now - timedelta(days=7)
    visit = make_visit(clinic, performed_at=visit_at, now=visit_at).visit
    checkin(visit, visit_at + timedelta(hours=3), 4, "=1+1")
    details = CheckInDetails(uuid.uuid4(), now, 0, 2, [], [], None, pgic=2)
    submit_checkin(visit, details, now=now)
    db.session.commit()

    response = get_csv(
        client, make_api_key(clinic), visit_at.date().isoformat(), now.date().isoformat()
    )

    assert COLUMNS[-1] == "pgic"  # added last: the older columns keep their positions
    rows = parse(response)
    assert [r["pgic"] for r in rows] == ["", "2"]
    # The safe form by default (tests/test_csv_injection.py); the pgic column is a number, kept.
    assert rows[0]["note"] == "'=1+1"
