"""The therapist's patient page: every visit of one patient at a glance, scoped to the clinic,
audited, and as cheap for a long history as for a short one."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import event, select

from companion.alerts import raising as alerts
from companion.checkins.store import CheckInDetails, submit_checkin
from companion.extensions import db
from companion.models import Alert, AuditEvent, Visit

from .conftest import sign_in

FIRST = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
SECOND = datetime(2026, 11, 16, 9, 0, tzinfo=UTC)


def checkin(visit: Visit, hours: int, soreness: int, symptoms: list[str] | None = None) -> None:
    at = visit.performed_at + timedelta(hours=hours)
    details = CheckInDetails(uuid.uuid4(), at, soreness, None, symptoms or [], [], None)
    submit_checkin(visit, details, now=at)
    db.session.commit()


def rows(page: str) -> list[str]:
    body = page[page.index("<tbody>") : page.index("</tbody>")]
    return [re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", r)).strip() for r in body.split("<tr>")[1:]]


def test_the_patient_page_lists_every_visit_newest_first_with_what_it_says(
    client, make_clinic, make_therapist, make_visit
):
    clinic = make_clinic()
    sign_in(client, make_therapist(clinic).email)
    first = make_visit(clinic, ref="P-9", name="Iris", regions=["neck"], performed_at=FIRST)
    second = make_visit(clinic, ref="P-9", name="Iris", regions=["calf"], performed_at=SECOND)
    assert first.visit.patient_id == second.visit.patient_id
    checkin(first.visit, 3, 5)
    checkin(first.visit, 24, 2)
    checkin(second.visit, 3, 4)
    checkin(second.visit, 26, 3, ["breathless"])  # a red flag, raised and not resolved

    response = client.get(f"/patients/{first.visit.patient_id}")

    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "Iris" in page and "P-9" in page and "Europe/Madrid" in page
    newest, oldest = rows(page)
    assert "Calf" in newest and "soreness 3/10" in newest and "Red flag" in newest
    assert "1 open" in newest
    assert "Neck" in oldest and "soreness 2/10" in oldest and "Green" in oldest
    assert "none" in oldest.split("Green")[1]
    assert page.index(f"/visits/{second.visit.id}") < page.index(f"/visits/{first.visit.id}")
    event_row = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "patient.view"))
    assert event_row.target_id == str(first.visit.patient_id)


def test_the_visit_page_and_the_patient_list_lead_to_the_patient_page(
    client, make_clinic, make_therapist, make_visit
):
    clinic = make_clinic()
    sign_in(client, make_therapist(clinic).email)
    visit = make_visit(clinic, ref="P-1", name="Olga").visit
    make_visit(clinic, ref="P-1", name="Olga")
    link = f'href="/patients/{visit.patient_id}"'
    visit_page = client.get(f"/visits/{visit.id}").get_data(as_text=True)
    assert link in visit_page and "This patient's visits (2)" in visit_page
    assert link in client.get("/patients").get_data(as_text=True)
    client.get(f"/patients/{visit.patient_id}")
    assert link in client.get("/audit").get_data(as_text=True)  # the audit row links back


def test_another_clinics_patient_is_not_found(client, make_clinic, make_therapist, make_visit):
    sign_in(client, make_therapist(make_clinic()).email)
    theirs = make_visit(make_clinic(), name="Zed").visit
    response = client.get(f"/patients/{theirs.patient_id}")
    assert response.status_code == 404 and "Zed" not in response.get_data(as_text=True)
    assert client.get(f"/patients/{uuid.uuid4()}").status_code == 404
    assert client.get("/patients/not-a-uuid").status_code == 404
    assert db.session.scalar(select(AuditEvent).where(AuditEvent.action == "patient.view")) is None


def test_a_long_history_costs_the_same_queries_as_a_short_one(
    client, make_clinic, make_therapist, make_visit
):
    clinic = make_clinic()
    sign_in(client, make_therapist(clinic).email)

    def statements(patient_id: uuid.UUID) -> int:
        seen: list[str] = []

        def count(conn, cursor, statement, *args):  # type: ignore[no-untyped-def]
            seen.append(statement)

        event.listen(db.engine, "before_cursor_execute", count)
        try:
            assert client.get(f"/patients/{patient_id}").status_code == 200
        finally:
            event.remove(db.engine, "before_cursor_execute", count)
        return len(seen)

    short = make_visit(clinic, ref="S", performed_at=FIRST).visit
    checkin(short, 3, 4)
    for n in range(6):
        long = make_visit(clinic, ref="L", performed_at=FIRST + timedelta(days=2 * n)).visit
        checkin(long, 3, 4)
        checkin(long, 24, 9)  # amber
    assert statements(long.patient_id) == statements(short.patient_id)


def test_signed_out_the_patient_page_asks_for_sign_in(client, make_clinic, make_visit):
    visit = make_visit(make_clinic()).visit
    response = client.get(f"/patients/{visit.patient_id}")
    assert response.status_code in (302, 303) and "/sign-in" in response.headers["Location"]


def test_the_forms_that_show_a_patient_are_audited_as_views(
    client, make_clinic, make_therapist, make_visit
):
    clinic = make_clinic()
    therapist = make_therapist(clinic)
    sign_in(client, therapist.email)
    visit = make_visit(clinic, name="Uma").visit

    assert "Uma" in client.get(f"/visits/{visit.id}/edit").get_data(as_text=True)
    assert "Uma" in client.get(f"/visits/new?patient={visit.patient_id}").get_data(as_text=True)

    seen = {
        (e.action, e.target_id, e.actor_id)
        for e in db.session.scalars(select(AuditEvent).where(AuditEvent.action.like("%.view")))
    }
    assert seen == {
        ("visit.view", str(visit.id), str(therapist.id)),
        ("patient.view", str(visit.patient_id), str(therapist.id)),
    }


def _alert_item(page: str, alert_id: uuid.UUID) -> str:
    item = page[page.index(f'<li id="alert-{alert_id}"') :]
    item = re.split(r'(?=<li id="alert-)|</ol>', item[1:])[0]
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", item))


def test_resolved_alerts_stay_listed_on_the_visit_and_patient_pages_with_who_when_and_the_note(
    client, make_clinic, make_therapist, make_visit, now
):
    clinic = make_clinic()
    therapist = make_therapist(clinic, email="ines@example.org")
    sign_in(client, therapist.email)
    performed = now - timedelta(hours=30)
    visit = make_visit(clinic, name="Iris", performed_at=performed, now=performed).visit
    alerts.raise_missing(clinic, now - timedelta(hours=3))  # none by 24 h
    db.session.commit()
    checkin(visit, 28, 2, ["breathless"])  # closes the gap; raises a red flag
    red = db.session.scalar(select(Alert).where(Alert.level == "red"))
    gap = db.session.scalar(select(Alert).where(Alert.kind == "missing"))
    alerts.acknowledge(clinic.id, visit.id, [red.id], therapist.id, now - timedelta(minutes=90))
    alerts.resolve(clinic.id, visit.id, [red.id], therapist.id, "Sent to A&E", now)
    db.session.commit()

    for path in (f"/visits/{visit.id}", f"/patients/{visit.patient_id}"):
        page = client.get(path).get_data(as_text=True)
        shown = _alert_item(page, red.id)
        assert "Red flag" in shown and "28 h: New shortness of breath" in shown, path
        assert "Acknowledged by ines@example.org" in shown, path
        assert "Resolved by ines@example.org" in shown and "Note: Sent to A&amp;E" in shown, path
        closed = _alert_item(page, gap.id)
        assert "Amber" in closed and "No check-in by 24 h" in closed, path
        assert "Closed by the app" in closed and "the patient checked in" in closed, path
        # Newest first: the red flag was raised after the gap.
        assert page.index(f'id="alert-{red.id}"') < page.index(f'id="alert-{gap.id}"'), path
    page = client.get(f"/patients/{visit.patient_id}").get_data(as_text=True)
    assert f'href="/visits/{visit.id}#alert-{red.id}"' in page
    actions = set(db.session.scalars(select(AuditEvent.action)))
    assert {"visit.view", "patient.view"} <= actions


def test_the_visit_and_patient_pages_show_how_to_reach_the_patient(
    client, make_clinic, make_therapist, make_visit, now
):
    clinic = make_clinic()
    sign_in(client, make_therapist(clinic).email)
    visit = make_visit(clinic, name="Iris").visit
    for path in (f"/visits/{visit.id}", f"/patients/{visit.patient_id}"):
        page = client.get(path).get_data(as_text=True)
        assert "No phone number on record." in page and "No e-mail address on record." in page
        assert "tel:" not in page and "mailto:" not in page
    visit.patient.phone, visit.patient.email = "+34612345678", "iris@example.org"
    db.session.commit()
    for path in (f"/visits/{visit.id}", f"/patients/{visit.patient_id}"):
        page = client.get(path).get_data(as_text=True)
        assert '<a href="tel:+34612345678">+34 612 34 56 78</a>' in page, path
        assert '<a href="mailto:iris@example.org">iris@example.org</a>' in page, path
