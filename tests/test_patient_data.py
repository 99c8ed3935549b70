"""The patient's own data (issue 5): the JSON download, the deletion request, and the therapist's
confirmation (which removes every health row and keeps audit rows without the data) or refusal."""

from __future__ import annotations

import html
import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import event, func, select, text
from sqlalchemy.exc import IntegrityError

from companion.checkins.store import CheckInDetails, submit_checkin
from companion.extensions import db
from companion.models import (
    Alert,
    AlertNotice,
    AuditEvent,
    CheckIn,
    DeletionRequest,
    Delivery,
    Patient,
    PatientLink,
    PushSubscription,
    Reminder,
    Visit,
)
from companion.visits import patient_data
from companion.visits.record import (
    PatientDetails,
    VisitDetails,
    find_or_create_patient,
    record_visit,
)

from .conftest import csrf_from, sign_in

NAME = "Valentina Quist"
REF = "REF-7731"
NOTE = "sharp ache near the scapula after gardening"
CLINICAL_NOTE = "very irritable trigger point, left upper trapezius"


@pytest.fixture
def foreign_keys_on(app):
    """SQLite only enforces foreign keys when asked, per connection: ask on every new connection,
    so a deletion in the wrong order fails here as it would on PostgreSQL."""

    def on_connect(connection, _record):  # type: ignore[no-untyped-def]
        connection.execute("PRAGMA foreign_keys=ON")

    if db.engine.dialect.name != "sqlite":  # PostgreSQL always enforces them
        yield
        return
    db.session.remove()
    event.listen(db.engine, "connect", on_connect)
    db.engine.dispose()
    assert db.session.execute(text("PRAGMA foreign_keys")).scalar() == 1
    yield
    db.session.remove()
    event.remove(db.engine, "connect", on_connect)
    db.engine.dispose()


def add_checkin(visit: Visit, *, hours: float, soreness: int, note: str | None = None) -> CheckIn:
    at = visit.performed_at + timedelta(hours=hours)
    checkin, _created = submit_checkin(
        visit,
        CheckInDetails(
            client_id=uuid.uuid4(),
            recorded_at=at,
            soreness=soreness,
            usual_pain=4,
            symptoms=["small_bruise"],
            helped=["heat"],
            note=note,
        ),
        now=at,
    )
    db.session.commit()
    return checkin


def rich_patient(clinic, now: datetime):  # type: ignore[no-untyped-def]
    """A patient with two visits, three check-ins, reminders, a delivery, a push subscription."""
    patient = find_or_create_patient(clinic, PatientDetails(REF, NAME, "Europe/Madrid", "en"))
    first, _ = record_visit(
        clinic,
        patient,
        VisitDetails(performed_at=now - timedelta(days=10), regions=["calf"], notes=CLINICAL_NOTE),
        therapist_id=None,
        link_days=7,
        now=now - timedelta(days=10),
    )
    second, issued = record_visit(
        clinic,
        patient,
        VisitDetails(
            performed_at=now - timedelta(hours=3),
            regions=["neck", "upper_back"],
            insertions=6,
            electrical_stimulation=True,
            first_visit=False,
        ),
        therapist_id=None,
        link_days=7,
        now=now - timedelta(hours=2),
    )
    db.session.commit()
    add_checkin(first, hours=2, soreness=5)
    add_checkin(first, hours=24, soreness=3, note=NOTE)
    add_checkin(second, hours=1, soreness=7)
    reminder = db.session.scalars(select(Reminder).where(Reminder.visit_id == second.id)).first()
    assert reminder is not None
    subscription = PushSubscription(
        patient_id=patient.id,
        endpoint="https://fcm.googleapis.com/fcm/send/secret-device-path",
        p256dh="p256dh-key",
        auth="auth-secret",
    )
    db.session.add(subscription)
    db.session.flush()
    db.session.add(
        Delivery(
            reminder_id=reminder.id,
            channel="webpush",
            subscription_id=subscription.id,
            outcome="accepted",
            status_code=201,
        )
    )
    db.session.commit()
    return patient, first, second, issued.token


def patient_rows(patient_id: uuid.UUID) -> dict[str, int]:
    """How many rows of each table belong to the patient."""
    visits = select(Visit.id).where(Visit.patient_id == patient_id)
    reminders = select(Reminder.id).where(Reminder.visit_id.in_(visits))

    def count(model, *where):  # type: ignore[no-untyped-def]
        return db.session.scalar(select(func.count()).select_from(model).where(*where))

    return {
        "patient": count(Patient, Patient.id == patient_id),
        "visit": count(Visit, Visit.patient_id == patient_id),
        "checkin": count(CheckIn, CheckIn.patient_id == patient_id),
        "reminder": count(Reminder, Reminder.visit_id.in_(visits)),
        "delivery": count(Delivery, Delivery.reminder_id.in_(reminders)),
        "push_subscription": count(PushSubscription, PushSubscription.patient_id == patient_id),
        "patient_link": count(PatientLink, PatientLink.visit_id.in_(visits)),
        "alert": count(Alert, Alert.visit_id.in_(visits)),
    }


def ask_for_deletion(client) -> object:  # type: ignore[no-untyped-def]
    page = client.get("/me/data/delete")
    assert page.status_code == 200
    return client.post(
        "/me/data/delete", data={"csrf_token": csrf_from(page.get_data(as_text=True))}
    )


def pending_form_token(client) -> str:  # type: ignore[no-untyped-def]
    return csrf_from(client.get("/deletion-requests").get_data(as_text=True))


def confirm(client, request_id, **data):  # type: ignore[no-untyped-def]
    data = {"csrf_token": pending_form_token(client), **data}
    return client.post(f"/deletion-requests/{request_id}/confirm", data=data)


def decline(client, request_id, reason: str):  # type: ignore[no-untyped-def]
    data = {"csrf_token": pending_form_token(client), "reason": reason}
    return client.post(f"/deletion-requests/{request_id}/decline", data=data)


def text_of(response) -> str:  # type: ignore[no-untyped-def]
    """The page as a reader sees it: entities decoded ("patient&#39;s" is "patient's")."""
    return html.unescape(response.get_data(as_text=True))


def only_request(patient_id: uuid.UUID) -> DeletionRequest:
    rows = db.session.scalars(
        select(DeletionRequest).where(DeletionRequest.patient_id == patient_id)
    ).all()
    assert len(rows) == 1
    return rows[0]


# --- the download ---------------------------------------------------------------------------------


def test_the_download_is_a_json_attachment_of_everything_about_the_patient(
    client, make_clinic, make_visit, now
):
    clinic = make_clinic()
    _patient, first, second, token = rich_patient(clinic, now)
    other = make_visit(clinic, name="Someone Else").visit
    add_checkin(other, hours=1, soreness=9, note="not yours")
    assert client.get(f"/p/{token}").status_code == 303

    response = client.get("/me/data.json")

    assert response.status_code == 200
    assert response.mimetype == "application/json"
    disposition = response.headers["Content-Disposition"]
    assert disposition.startswith("attachment;") and ".json" in disposition
    assert NAME not in disposition and REF not in disposition
    assert response.headers["Cache-Control"] == "no-store"
    data = response.get_json()
    assert data["format"] == "aftercare-patient-data/1"
    assert data["clinic"]["name"] == clinic.name
    assert data["patient"]["name"] == NAME and data["patient"]["reference"] == REF
    assert data["patient"]["timezone"] == "Europe/Madrid" and data["patient"]["language"] == "en"
    assert data["patient"]["quiet_hours"] == {
        "start": "21:30",
        "end": "08:00",
        "set_by_patient": False,
    }
    assert [v["id"] for v in data["visits"]] == [str(first.id), str(second.id)]
    assert data["visits"][0]["notes"] == CLINICAL_NOTE
    assert data["visits"][1]["regions"] == ["neck", "upper_back"]
    assert data["visits"][1]["insertions"] == 6
    assert data["visits"][1]["electrical_stimulation"] is True
    assert data["visits"][1]["first_visit"] is False
    assert [c["soreness"] for c in data["checkins"]] == [5, 3, 7]
    assert data["checkins"][1]["note"] == NOTE
    assert data["checkins"][1]["symptoms"] == ["small_bruise"] and data["checkins"][1][
        "helped"
    ] == ["heat"]
    assert {c["triage"] for c in data["checkins"]} <= {"green", "amber", "red"}
    stored = db.session.scalar(
        select(func.count())
        .select_from(Reminder)
        .where(Reminder.visit_id.in_([first.id, second.id]))
    )
    assert len(data["reminders"]) == stored > 0
    assert {"kind", "due_at", "status"} <= set(data["reminders"][0])
    assert sum(len(r["deliveries"]) for r in data["reminders"]) == 1
    assert data["push_subscriptions"] == [
        {
            "push_service": "fcm.googleapis.com",
            "created_at": data["push_subscriptions"][0]["created_at"],
            "last_success_at": None,
        }
    ]
    assert len(data["patient_links"]) == 2
    # Times are ISO 8601 in UTC, marked Z.
    performed = datetime.fromisoformat(data["visits"][1]["performed_at"])
    assert data["visits"][1]["performed_at"].endswith("Z")
    assert performed == second.performed_at.replace(microsecond=0)
    assert all(c["recorded_at"].endswith("Z") for c in data["checkins"])
    # Nothing of another patient, and no secret of the push subscription.
    raw = response.get_data(as_text=True)
    assert "Someone Else" not in raw and "not yours" not in raw
    assert "secret-device-path" not in raw and "auth-secret" not in raw


def test_the_download_is_audited_without_the_data(patient_client):
    client = patient_client
    client.get("/me/data.json")

    row = db.session.scalars(
        select(AuditEvent).where(AuditEvent.action == "patient.data_download")
    ).one()
    patient_id = client.visit.patient_id
    assert row.actor_type == "patient" and row.actor_id == str(patient_id)
    assert row.target_type == "patient" and row.target_id == str(patient_id)
    assert row.clinic_id == client.visit.clinic_id
    assert row.detail == {"visits": 1, "checkins": 0}


def test_export_data_takes_the_moment_it_is_given(make_clinic, make_visit):
    visit = make_visit(make_clinic()).visit
    moment = datetime(2026, 11, 21, 17, 5, 9, 123456, tzinfo=UTC)
    data = patient_data.export_data(visit.patient, moment)
    assert data["exported_at"] == "2026-11-21T17:05:09Z"
    assert patient_data.download_filename(moment) == "aftercare-data-2026-11-21.json"


def test_the_data_pages_need_the_patient_cookie(client):
    for path in ("/me/data", "/me/data.json", "/me/data/delete"):
        response = client.get(path)
        assert response.status_code == 401, path
        assert "does not work any more" in response.get_data(as_text=True)
    token = csrf_from(client.get("/sign-in").get_data(as_text=True))
    assert client.post("/me/data/delete", data={"csrf_token": token}).status_code == 401
    assert db.session.scalar(select(func.count()).select_from(DeletionRequest)) == 0


def test_the_data_page_is_linked_from_the_patient_pages_and_never_cached(patient_client):
    client = patient_client
    for path in ("/me/", "/me/check-in", "/me/check-ins", "/me/reminders"):
        assert 'href="/me/data"' in client.get(path).get_data(as_text=True), path
    response = client.get("/me/data")
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    page = response.get_data(as_text=True)
    assert 'href="/me/data.json"' in page and 'href="/me/data/delete"' in page


def test_the_data_page_speaks_spanish(client, make_clinic, make_visit):
    client.get(make_visit(make_clinic(), language="es").url)
    page = client.get("/me/data").get_data(as_text=True)
    assert "Tus datos" in page and "Descargar mis datos" in page


# --- the request ----------------------------------------------------------------------------------


def test_the_confirmation_step_says_what_is_removed_and_offers_the_download(patient_client):
    page = text_of(patient_client.get("/me/data/delete"))
    assert "Your clinic confirms the deletion" in page
    assert "all your check-ins" in page and "your therapist's notes" in page
    assert "this link stops working" in page
    assert 'href="/me/data.json"' in page
    # Only the page: nothing is asked until the patient presses the button.
    assert db.session.scalar(select(func.count()).select_from(DeletionRequest)) == 0


def test_a_patient_asks_for_deletion_once_and_sees_it_pending(patient_client):
    client = patient_client
    patient_id = client.visit.patient_id

    response = ask_for_deletion(client)

    assert response.status_code == 303 and response.headers["Location"] == "/me/data"
    request = only_request(patient_id)
    assert request.outcome is None and request.requested_by is None
    page = client.get("/me/data").get_data(as_text=True)
    assert "Your request was sent" in page and "Your clinic will look at your request" in page
    assert "You asked for your data to be deleted" in client.get("/me/").get_data(as_text=True)
    row = db.session.scalars(
        select(AuditEvent).where(AuditEvent.action == "deletion.request")
    ).one()
    assert row.actor_type == "patient" and row.target_id == str(patient_id)

    # The confirmation page leads back while one is pending, and a second ask opens nothing new.
    assert client.get("/me/data/delete").headers["Location"] == "/me/data"
    token = csrf_from(client.get("/me/data").get_data(as_text=True))
    again = client.post("/me/data/delete", data={"csrf_token": token})
    assert again.status_code == 303
    assert "already asked" in client.get("/me/data").get_data(as_text=True)
    only_request(patient_id)


def test_the_database_allows_one_pending_request_per_patient(make_clinic, make_visit, now):
    patient = make_visit(make_clinic()).visit.patient
    db.session.add(
        DeletionRequest(clinic_id=patient.clinic_id, patient_id=patient.id, requested_at=now)
    )
    db.session.commit()
    # A second tap that got past the check in the code (a race) still opens nothing new.
    db.session.add(
        DeletionRequest(clinic_id=patient.clinic_id, patient_id=patient.id, requested_at=now)
    )
    with pytest.raises(IntegrityError):
        db.session.commit()
    db.session.rollback()


def test_asking_for_deletion_needs_the_csrf_token(patient_client):
    client = patient_client
    client.get("/me/data/delete")  # the session has a token; the posts below leave it out
    assert client.post("/me/data/delete").status_code == 400
    assert client.post("/me/data/delete", data={"csrf_token": "forged"}).status_code == 400
    assert db.session.scalar(select(func.count()).select_from(DeletionRequest)) == 0


# --- the therapist's decision ---------------------------------------------------------------------


@pytest.fixture
def therapist_client(app, make_clinic, make_therapist):  # type: ignore[no-untyped-def]
    def make(clinic=None):  # type: ignore[no-untyped-def]
        therapist = make_therapist(clinic or make_clinic())
        browser = app.test_client()
        sign_in(browser, therapist.email)
        browser.therapist = therapist
        return browser

    return make


def test_confirming_removes_every_health_row_and_keeps_audit_rows_without_the_data(
    client, therapist_client, make_clinic, make_visit, now, foreign_keys_on
):
    clinic = make_clinic()
    patient, _first, second, token = rich_patient(clinic, now)
    patient_id = patient.id
    bystander = make_visit(clinic, name="Bystander")
    add_checkin(bystander.visit, hours=1, soreness=2)
    bystander_rows = patient_rows(bystander.visit.patient_id)
    client.get(f"/p/{token}")
    client.get("/me/data.json")
    ask_for_deletion(client)
    request_id = only_request(patient_id).id
    therapist = therapist_client(clinic)
    # A red alert about the patient, with the record of the therapist told about it.
    alert = Alert(
        clinic_id=clinic.id,
        visit_id=second.id,
        dedupe_key=f"test:{second.id}",
        kind="checkin",
        level="red",
        reasons=[{"code": "symptom", "symptom": "chest_pain", "hours": 1}],
        raised_at=now,
        resolution_note=CLINICAL_NOTE,
    )
    db.session.add(alert)
    db.session.flush()
    db.session.add(
        AlertNotice(
            clinic_id=clinic.id,
            therapist_id=therapist.therapist.id,
            alert_id=alert.id,
            kind="red",
            channel="email",
            attempted_at=now,
            outcome="sent",
        )
    )
    db.session.commit()
    client_visit_page = therapist.get(f"/visits/{second.id}").get_data(as_text=True)
    assert "asked on" in client_visit_page and f"request-{request_id}" in client_visit_page
    page = therapist.get("/deletion-requests").get_data(as_text=True)
    assert NAME in page and REF in page and "Deletion requests (1)" in page
    before = patient_rows(patient_id)
    assert before == {
        "patient": 1,
        "visit": 2,
        "checkin": 3,
        "reminder": before["reminder"],
        "delivery": 1,
        "push_subscription": 1,
        "patient_link": 2,
        "alert": 1,
    }

    response = confirm(therapist, request_id, understood="y")

    assert response.status_code == 303
    assert patient_rows(patient_id) == dict.fromkeys(before, 0)
    assert patient_rows(bystander.visit.patient_id) == bystander_rows
    request = only_request(patient_id)
    assert request.outcome == "confirmed" and request.decided_by == therapist.therapist.id
    assert "data was deleted: 2 visits and 3 check-ins" in therapist.get(
        "/deletion-requests"
    ).get_data(as_text=True)
    confirmed = db.session.scalars(
        select(AuditEvent).where(AuditEvent.action == "deletion.confirm")
    ).one()
    assert confirmed.target_type == "patient" and confirmed.target_id == str(patient_id)
    assert confirmed.actor_id == str(therapist.therapist.id)
    assert confirmed.detail == {
        "visits": 2,
        "checkins": 3,
        "reminders": before["reminder"],
        "deliveries": 1,
        "alerts": 1,
        "push_subscriptions": 1,
        "patient_links": 2,
        "stretches_done": 0,
    }
    assert db.session.scalar(select(func.count()).select_from(AlertNotice)) == 0
    # Every audit row stays (download, request, views, confirmation), and none holds the data.
    actions = set(db.session.scalars(select(AuditEvent.action)))
    assert {
        "patient.data_download",
        "deletion.request",
        "visit.view",
        "deletion.confirm",
    } <= actions
    details = json.dumps([e.detail for e in db.session.scalars(select(AuditEvent))])
    for secret in (
        NAME,
        REF,
        NOTE,
        CLINICAL_NOTE,
        "small_bruise",
        "heat",
        "soreness",
        "upper_back",
    ):
        assert secret not in details
    # The patient's link is dead: the "link not valid" page, never a 500.
    for path in ("/me/", "/me/data", "/me/data.json", "/me/check-ins"):
        response = client.get(path)
        assert response.status_code == 401, path
        assert "does not work any more" in response.get_data(as_text=True)
    assert client.get("/api/v1/checkins").status_code == 401
    assert client.get(f"/p/{token}").status_code == 404
    # The audit page still reads, and names no one.
    audit_page = text_of(therapist.get("/audit"))
    assert "Deleted a patient's data (2 visits, 3 check-ins)" in audit_page
    assert "patient (data deleted)" in audit_page and "visit (deleted)" in audit_page
    assert "the patient" in audit_page and NAME not in audit_page


def test_confirming_needs_the_box_ticked(patient_client, therapist_client):
    patient_client.get("/me/data")
    ask_for_deletion(patient_client)
    patient_id = patient_client.visit.patient_id
    therapist = therapist_client(patient_client.visit.clinic)

    response = confirm(therapist, only_request(patient_id).id)

    assert response.status_code == 422
    assert "Tick the box" in response.get_data(as_text=True)
    assert only_request(patient_id).outcome is None
    assert patient_rows(patient_id)["visit"] == 1


def test_confirming_and_declining_need_the_csrf_token(patient_client, therapist_client):
    ask_for_deletion(patient_client)
    request_id = only_request(patient_client.visit.patient_id).id
    therapist = therapist_client(patient_client.visit.clinic)
    therapist.get("/deletion-requests")
    url = f"/deletion-requests/{request_id}"
    assert therapist.post(f"{url}/confirm", data={"understood": "y"}).status_code == 400
    assert therapist.post(f"{url}/decline", data={"reason": "We keep it."}).status_code == 400
    assert only_request(patient_client.visit.patient_id).outcome is None


def test_declining_keeps_the_data_and_tells_the_patient_why(patient_client, therapist_client):
    client = patient_client
    patient_id = client.visit.patient_id
    ask_for_deletion(client)
    therapist = therapist_client(client.visit.clinic)
    request_id = only_request(patient_id).id
    reason = "We must keep treatment records for 5 years by law."

    assert decline(therapist, request_id, "   ").status_code == 422
    assert only_request(patient_id).outcome is None
    response = decline(therapist, request_id, reason)

    assert response.status_code == 303
    request = only_request(patient_id)
    assert request.outcome == "declined" and request.reason == reason
    assert patient_rows(patient_id)["visit"] == 1
    row = db.session.scalars(
        select(AuditEvent).where(AuditEvent.action == "deletion.decline")
    ).one()
    assert row.target_id == str(patient_id) and "5 years" not in json.dumps(row.detail)
    page = client.get("/me/data").get_data(as_text=True)
    assert "Your clinic did not delete your data" in page and reason in page
    assert "You asked for your data" not in client.get("/me/").get_data(as_text=True)
    # A decided request cannot be decided again.
    confirm(therapist, request_id, understood="y")
    assert only_request(patient_id).outcome == "declined"
    assert patient_rows(patient_id)["patient"] == 1
    # The patient may ask again; deleting then also clears the reason written about them.
    ask_for_deletion(client)
    pending = patient_data.pending_request(patient_id)
    assert pending is not None
    assert confirm(therapist, pending.id, understood="y").status_code == 303
    reasons = db.session.scalars(
        select(DeletionRequest.reason).where(DeletionRequest.patient_id == patient_id)
    ).all()
    assert reasons == [None, None]


def test_another_clinics_therapist_gets_404(patient_client, therapist_client, make_clinic):
    ask_for_deletion(patient_client)
    request_id = only_request(patient_client.visit.patient_id).id
    stranger = therapist_client(make_clinic())

    assert NAME not in stranger.get("/deletion-requests").get_data(as_text=True)
    assert confirm(stranger, request_id, understood="y").status_code == 404
    assert decline(stranger, request_id, "no").status_code == 404
    token = pending_form_token(stranger)
    visit_id = patient_client.visit.id
    response = stranger.post(f"/visits/{visit_id}/deletion-request", data={"csrf_token": token})
    assert response.status_code == 404
    assert only_request(patient_client.visit.patient_id).outcome is None


def test_a_therapist_records_a_request_made_by_phone(patient_client, therapist_client):
    visit = patient_client.visit
    therapist = therapist_client(visit.clinic)
    page = therapist.get(f"/visits/{visit.id}").get_data(as_text=True)
    assert "Record the patient's deletion request" in html.unescape(page)

    response = therapist.post(
        f"/visits/{visit.id}/deletion-request", data={"csrf_token": csrf_from(page)}
    )

    assert response.status_code == 303 and response.headers["Location"] == "/deletion-requests"
    request = only_request(visit.patient_id)
    assert request.requested_by == therapist.therapist.id
    row = db.session.scalars(
        select(AuditEvent).where(AuditEvent.action == "deletion.request")
    ).one()
    assert row.actor_type == "therapist" and row.actor_id == str(therapist.therapist.id)
    assert "Recorded by" in therapist.get("/deletion-requests").get_data(as_text=True)
    assert "Your clinic will look at your request" in patient_client.get("/me/data").get_data(
        as_text=True
    )


def test_deletion_waits_while_a_reminder_is_being_sent(patient_client, therapist_client, now):
    visit = patient_client.visit
    ask_for_deletion(patient_client)
    reminder = db.session.scalars(select(Reminder).where(Reminder.visit_id == visit.id)).first()
    reminder.lease_until = now + timedelta(minutes=2)  # a worker holds it
    reminder.claim_token = uuid.uuid4()
    db.session.commit()
    therapist = therapist_client(visit.clinic)

    response = confirm(therapist, only_request(visit.patient_id).id, understood="y")

    assert response.status_code == 303
    assert "being sent" in therapist.get("/deletion-requests").get_data(as_text=True)
    assert only_request(visit.patient_id).outcome is None
    assert patient_rows(visit.patient_id)["reminder"] > 0


def test_confirm_deletion_refuses_a_decided_request(make_clinic, make_therapist, make_visit, now):
    clinic = make_clinic()
    therapist = make_therapist(clinic)
    patient = make_visit(clinic).visit.patient
    request = patient_data.request_deletion(patient, now)
    patient_data.decline_deletion(request, therapist.id, "Kept by law.", now)
    db.session.commit()
    with pytest.raises(patient_data.NotPending):
        patient_data.confirm_deletion(request, therapist.id, now)
    with pytest.raises(patient_data.NotPending):
        patient_data.decline_deletion(request, therapist.id, "again", now)


@pytest.mark.postgres
def test_confirming_deletes_everything_on_postgres(client, therapist_client, make_clinic, now):
    clinic = make_clinic()
    patient, _first, _second, token = rich_patient(clinic, now)
    client.get(f"/p/{token}")
    ask_for_deletion(client)
    therapist = therapist_client(clinic)

    response = confirm(therapist, only_request(patient.id).id, understood="y")

    assert response.status_code == 303
    assert set(patient_rows(patient.id).values()) == {0}
    assert client.get("/me/").status_code == 401


def test_the_download_has_the_contact_details_and_the_global_impression(client, make_clinic, now):
    clinic = make_clinic()
    patient, first, _second, token = rich_patient(clinic, now)
    patient.phone, patient.email = "+34612345678", "ana@example.com"
    day_7 = first.performed_at + timedelta(days=7)
    details = CheckInDetails(uuid.uuid4(), day_7, 0, 1, [], [], None, pgic=3)
    submit_checkin(first, details, now=day_7)
    db.session.commit()
    assert client.get(f"/p/{token}").status_code == 303

    data = client.get("/me/data.json").get_json()

    assert (data["patient"]["phone"], data["patient"]["email"]) == (
        "+34612345678",
        "ana@example.com",
    )
    assert [c["pgic"] for c in data["checkins"]] == [None, None, 3, None]
    page = client.get("/me/data").get_data(as_text=True)
    assert "your phone number and e-mail address if the clinic noted them" in page


def test_without_contact_details_the_download_says_null(client, make_clinic, now):
    _patient, _first, _second, token = rich_patient(make_clinic(), now)
    assert client.get(f"/p/{token}").status_code == 303

    patient = client.get("/me/data.json").get_json()["patient"]

    assert patient["phone"] is None and patient["email"] is None
