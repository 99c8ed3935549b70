"""Correcting a visit re-plans its unsent reminders only (design.md, reminder pipeline step 1), and
the therapist sees each reminder's fate on the visit page. Times are explicit."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from companion.extensions import db
from companion.models import AuditEvent, Delivery, Reminder, Visit
from companion.reminders.planning import AFTER_2H, AFTER_48H, EVENING, NEXT_MORNING, replan
from companion.visits.record import PatientDetails, VisitDetails, update_visit
from tests.conftest import csrf_from, sign_in

# 09:00 in Madrid (UTC+1 in November).
VISIT_AT = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)
# When the therapist uses the pages below: the process clock is pinned there (the views read it).
THAT_MORNING = VISIT_AT + timedelta(hours=3)


def rows(visit) -> dict[str, Reminder]:
    db.session.expire_all()
    return {
        r.kind: r for r in db.session.scalars(select(Reminder).where(Reminder.visit_id == visit.id))
    }


def move(visit, performed_at, now) -> None:
    patient = visit.patient
    update_visit(
        visit,
        PatientDetails(patient.ref, patient.display_name, patient.timezone, patient.language),
        VisitDetails(performed_at=performed_at, regions=list(visit.regions)),
        now,
    )
    db.session.commit()


def test_an_edit_moves_unsent_reminders_and_never_resends_a_sent_one(make_clinic, make_visit):
    visit = make_visit(make_clinic(), performed_at=VISIT_AT, now=VISIT_AT).visit
    before = rows(visit)
    sent = before[AFTER_2H]
    sent.status, sent.sent_at = "sent", VISIT_AT + timedelta(hours=2)
    db.session.commit()

    # The therapist typed 09:00 but the needling was at 10:30.
    move(visit, VISIT_AT + timedelta(hours=1, minutes=30), now=VISIT_AT + timedelta(hours=3))

    after = rows(visit)
    assert after[AFTER_2H].status == "sent"
    assert after[AFTER_2H].due_at == VISIT_AT + timedelta(hours=2)  # history is not rewritten
    assert after[EVENING].due_at == VISIT_AT + timedelta(hours=7, minutes=30)
    assert after[AFTER_48H].due_at == VISIT_AT + timedelta(hours=49, minutes=30)
    # Same rows, so the same push tag and calendar UID: a calendar sees the event move.
    assert {k: r.id for k, r in after.items()} == {k: r.id for k, r in before.items()}
    assert all(r.status in ("planned", "sent") for r in after.values())


def test_an_edit_ends_reminders_no_longer_planned_or_already_past(make_clinic, make_visit):
    visit = make_visit(make_clinic(), performed_at=VISIT_AT, now=VISIT_AT).visit
    assert EVENING in rows(visit)

    # Really 19:30 local: 21:00 is too close for an evening reminder, and the 2 h one (21:30)
    # falls in quiet hours and would be sent tomorrow: a same-day nudge is dropped instead.
    move(visit, VISIT_AT + timedelta(hours=10, minutes=30), now=VISIT_AT + timedelta(hours=11))

    after = rows(visit)
    assert after[EVENING].status == "cancelled"
    assert after[AFTER_2H].status == "cancelled"
    assert after[NEXT_MORNING].status == "planned"
    assert after[NEXT_MORNING].due_at == datetime(2026, 11, 21, 8, 0, tzinfo=UTC)  # 09:00 local


def test_an_edit_made_after_a_reminders_moment_expires_it(make_clinic, make_visit):
    visit = make_visit(make_clinic(), performed_at=VISIT_AT, now=VISIT_AT).visit

    # Corrected to 10:00 local, but only at 17:30: the 12:00 nudge (valid 3 h) is past.
    move(visit, VISIT_AT + timedelta(hours=1), now=VISIT_AT + timedelta(hours=8, minutes=30))

    after = rows(visit)
    assert after[AFTER_2H].status == "expired"
    assert after[EVENING].status == "planned"


def test_correcting_a_mistyped_time_back_brings_its_reminders_back(make_clinic, make_visit):
    visit = make_visit(make_clinic(), performed_at=VISIT_AT, now=VISIT_AT).visit
    wrong = VISIT_AT + timedelta(hours=10, minutes=30)  # 19:30 typed for 09:00
    move(visit, wrong, now=VISIT_AT + timedelta(minutes=5))
    assert rows(visit)[EVENING].status == "cancelled"

    move(visit, VISIT_AT, now=VISIT_AT + timedelta(minutes=10))

    after = rows(visit)
    assert after[AFTER_2H].status == after[EVENING].status == "planned"
    assert after[AFTER_2H].due_at == VISIT_AT + timedelta(hours=2)


def test_replanning_with_nothing_changed_changes_nothing(make_clinic, make_visit):
    visit = make_visit(make_clinic(), performed_at=VISIT_AT, now=VISIT_AT).visit
    before = {k: (r.due_at, r.expires_at, r.status) for k, r in rows(visit).items()}

    replan(visit, VISIT_AT + timedelta(minutes=5))
    db.session.commit()

    assert {k: (r.due_at, r.expires_at, r.status) for k, r in rows(visit).items()} == before


def _edit_form(client, visit, **changes):
    page = client.get(f"/visits/{visit.id}/edit").get_data(as_text=True)
    data = {
        "csrf_token": csrf_from(page),
        "ref": visit.patient.ref,
        "display_name": visit.patient.display_name,
        "timezone": visit.patient.timezone,
        "language": visit.patient.language,
        "performed_at": "2026-11-20T10:30",
        "regions": list(visit.regions),
    }
    data.update(changes)
    return page, client.post(f"/visits/{visit.id}/edit", data=data)


def test_the_edit_form_corrects_the_time_and_re_plans(
    client, make_clinic, make_therapist, make_visit, time_machine
):
    time_machine.move_to(THAT_MORNING)
    clinic = make_clinic()
    sign_in(client, make_therapist(clinic).email)
    visit = make_visit(clinic, performed_at=VISIT_AT, now=VISIT_AT).visit

    page, response = _edit_form(client, visit)

    assert 'value="2026-11-20T09:00"' in page  # prefilled in the patient's local time
    assert response.status_code == 303
    db.session.expire_all()
    assert db.session.get(Visit, visit.id).performed_at == VISIT_AT + timedelta(hours=1, minutes=30)
    assert rows(visit)[AFTER_48H].due_at == VISIT_AT + timedelta(hours=49, minutes=30)
    actions = db.session.scalars(select(AuditEvent.action)).all()
    assert "visit.update" in actions


def test_the_edit_form_refuses_a_new_reference_and_changes_nothing(
    client, make_clinic, make_therapist, make_visit, time_machine
):
    time_machine.move_to(THAT_MORNING)
    clinic = make_clinic()
    sign_in(client, make_therapist(clinic).email)
    visit = make_visit(clinic, performed_at=VISIT_AT, now=VISIT_AT).visit
    before = {k: r.due_at for k, r in rows(visit).items()}

    _, response = _edit_form(client, visit, ref="SOMEONE-ELSE")

    assert response.status_code == 422
    assert "cannot change here" in response.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(Visit, visit.id).performed_at == VISIT_AT
    assert {k: r.due_at for k, r in rows(visit).items()} == before


def test_another_clinics_visit_cannot_be_edited(
    client, make_clinic, make_therapist, make_visit, time_machine
):
    time_machine.move_to(THAT_MORNING)
    sign_in(client, make_therapist(make_clinic()).email)
    other = make_visit(make_clinic(), performed_at=VISIT_AT, now=VISIT_AT).visit

    assert client.get(f"/visits/{other.id}/edit").status_code == 404


def test_the_visit_page_shows_each_reminder_in_the_patients_time_and_what_happened(
    client, make_clinic, make_therapist, make_visit, time_machine
):
    time_machine.move_to(THAT_MORNING)
    clinic = make_clinic()
    sign_in(client, make_therapist(clinic).email)
    visit = make_visit(clinic, performed_at=VISIT_AT, now=VISIT_AT).visit
    by_kind = rows(visit)
    sent, failed = by_kind[AFTER_2H], by_kind[EVENING]
    sent.status, sent.sent_at = "sent", VISIT_AT + timedelta(hours=2)
    failed.status, failed.last_error = "failed", "the browser unsubscribed"
    for outcome, sub in (("accepted", "a"), ("accepted", "b")):
        db.session.add(
            Delivery(
                reminder_id=sent.id,
                channel="webpush",
                subscription_id=uuid.uuid5(uuid.NAMESPACE_DNS, sub),
                attempted_at=VISIT_AT + timedelta(hours=2),
                outcome=outcome,
                status_code=201,
            )
        )
    db.session.commit()

    page = client.get(f"/visits/{visit.id}").get_data(as_text=True)

    assert "Sent to 2 devices" in page
    assert "Not delivered · the browser unsubscribed" in page
    # 11:00 in Madrid, not 10:00 UTC.
    assert "11:00" in page.split("Sent to 2 devices")[0].rsplit("<tr", 1)[1]
    assert "Next morning: check-in" in page and "Planned" in page
