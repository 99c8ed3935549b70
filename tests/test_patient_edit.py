"""Editing a patient: their details saved and audited, bad input refused with messages and nothing
changed, a new time zone moving their unsent reminders, other clinics' patients out of reach."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from companion.extensions import db
from companion.models import AuditEvent, Patient, Reminder, ReminderStatus, Role

from .conftest import csrf_from, sign_in

GOOD = {
    "ref": "R-200",
    "display_name": "Maria José",
    "timezone": "America/New_York",
    "language": "es",
    "phone": "+34 612 345 678",
    "email": "Maria@Example.ORG",
}


@pytest.fixture
def desk(client, make_clinic, make_therapist, make_visit, now):
    """A signed-in therapist (not an admin) and a patient of their clinic seen an hour ago."""
    clinic = make_clinic()
    sign_in(client, make_therapist(clinic, role=Role.THERAPIST).email)
    return make_visit(clinic, ref="R-100", name="Maria", performed_at=now - timedelta(hours=1))


def post(client, patient: Patient, **changes):
    page = client.get(f"/patients/{patient.id}/edit")
    assert page.status_code == 200
    return client.post(
        f"/patients/{patient.id}/edit",
        data={"csrf_token": csrf_from(page.get_data(as_text=True)), **GOOD, **changes},
    )


def stored(patient_id) -> dict[str, object]:
    db.session.expire_all()
    patient = db.session.get(Patient, patient_id)
    return {name: getattr(patient, name) for name in GOOD}


def test_the_patient_page_links_to_the_edit_form_filled_in(client, desk):
    patient = desk.visit.patient
    page = client.get(f"/patients/{patient.id}").get_data(as_text=True)
    assert f'href="/patients/{patient.id}/edit">Edit</a>' in page
    form = client.get(f"/patients/{patient.id}/edit").get_data(as_text=True)
    assert 'value="R-100"' in form and 'value="Maria"' in form and 'value="Europe/Madrid"' in form


def test_edits_are_saved_normalized_and_audited_by_field_name(client, desk):
    patient = desk.visit.patient
    response = post(client, patient)
    assert response.status_code == 303
    assert response.headers["Location"] == f"/patients/{patient.id}"
    assert stored(patient.id) == {
        **GOOD,
        "phone": "+34612345678",
        "email": "Maria@example.org",
    }
    [event] = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "patient.update"))
    assert (event.target_type, event.target_id) == ("patient", str(patient.id))
    assert event.detail == {
        "fields": ["ref", "display_name", "timezone", "language", "phone", "email"]
    }
    assert "Maria" not in str(event.detail) and "612" not in str(event.detail)


def test_clearing_the_phone_and_e_mail_removes_them(client, desk):
    patient = desk.visit.patient
    post(client, patient)
    assert post(client, patient, phone="", email="").status_code == 303
    assert stored(patient.id)["phone"] is None and stored(patient.id)["email"] is None


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("phone", "612 345 678", "with + and the country code"),
        ("email", "maria@", "an e-mail address such as"),
        ("timezone", "Mars/Olympus", "Choose a time zone from the list"),
        ("timezone", "posixrules", "Choose a time zone from the list"),
        ("language", "fr", "Not a valid choice"),
        ("display_name", "  ", "This field is required"),
        ("ref", "", "This field is required"),
    ],
)
def test_bad_input_is_a_422_with_a_message_and_changes_nothing(client, desk, field, value, message):
    patient = desk.visit.patient
    before = stored(patient.id)
    response = post(client, patient, **{field: value})
    assert response.status_code == 422
    assert message in response.get_data(as_text=True)
    assert stored(patient.id) == before
    assert (
        db.session.scalar(select(AuditEvent).where(AuditEvent.action == "patient.update")) is None
    )


def test_another_patients_reference_is_refused(client, desk, make_visit):
    patient = desk.visit.patient
    make_visit(desk.visit.clinic, ref="R-300")
    before = stored(patient.id)
    response = post(client, patient, ref="R-300")
    assert response.status_code == 422
    assert "already has this reference" in response.get_data(as_text=True)
    assert stored(patient.id) == before


def test_a_new_time_zone_moves_the_unsent_reminders(client, desk):
    visit = desk.visit
    rows = db.session.scalars(select(Reminder).where(Reminder.visit_id == visit.id)).all()
    morning = next(r for r in rows if r.kind == "next_morning")
    # 09:00 the morning after in Madrid is 08:00 UTC; in New York the visit (10:00 UTC) was at
    # 05:00 on the 25th, so the next morning's 09:00 there is 14:00 UTC on the 26th.
    assert morning.due_at.isoformat() == "2026-11-26T08:00:00+00:00"
    sent = next(r for r in rows if r.kind == "after_2h")
    sent.status, sent.sent_at = ReminderStatus.SENT, sent.due_at
    sent_due = sent.due_at
    db.session.commit()

    response = post(client, visit.patient, timezone="America/New_York")
    assert response.status_code == 303
    db.session.expire_all()
    moved = db.session.get(Reminder, morning.id)
    assert moved.due_at.isoformat() == "2026-11-26T14:00:00+00:00"
    assert moved.status == ReminderStatus.PLANNED
    assert db.session.get(Reminder, sent.id).due_at == sent_due  # sent stays sent, unmoved
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "planned again for the new time zone" in page


def test_another_clinics_patient_is_not_found(client, desk, make_clinic, make_visit):
    other = make_visit(make_clinic(), ref="X-1", name="Zed").visit.patient
    assert client.get(f"/patients/{other.id}/edit").status_code == 404
    page = client.get(f"/patients/{desk.visit.patient.id}/edit").get_data(as_text=True)
    response = client.post(
        f"/patients/{other.id}/edit", data={"csrf_token": csrf_from(page), **GOOD}
    )
    assert response.status_code == 404
    db.session.expire_all()
    assert db.session.get(Patient, other.id).display_name == "Zed"


def test_signed_out_the_form_is_out_of_reach(app, desk):
    anonymous = app.test_client()
    response = anonymous.get(f"/patients/{desk.visit.patient.id}/edit")
    assert response.status_code == 302 and "/sign-in" in response.headers["Location"]
