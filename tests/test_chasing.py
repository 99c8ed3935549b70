"""Chasing a patient who went silent (issue 12): "no check-in by 24 h / 48 h" also covers a
patient who checked in early and then said nothing, and a late upload of an early check-in
answers nothing it is not about."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from sqlalchemy import event, select

from companion.alerts import raising as alerts
from companion.checkins.store import CheckInDetails, submit_checkin
from companion.extensions import db
from companion.models import Alert, Clinic, Visit


def checkin(visit: Visit, hours: float, *, arrives: float | None = None) -> None:
    """A check-in made `hours` after the visit, reaching us `arrives` hours after it (the same
    moment unless it waited in the phone's outbox, or the phone's clock is off)."""
    made = visit.performed_at + timedelta(hours=hours)
    received = visit.performed_at + timedelta(hours=hours if arrives is None else arrives)
    submit_checkin(visit, CheckInDetails(uuid.uuid4(), made, 3, None, [], [], None), now=received)
    db.session.commit()


def chase(clinic: Clinic, visit: Visit, hours: float) -> int:
    """Run the chase `hours` after the visit, as the queue page or the worker would."""
    raised = alerts.raise_missing(clinic, visit.performed_at + timedelta(hours=hours))
    db.session.commit()
    return raised


def missing(visit: Visit) -> list[Alert]:
    return list(
        db.session.scalars(
            select(Alert).where(Alert.visit_id == visit.id, Alert.kind == "missing")
        ).all()
    )


def open_keys(visit: Visit) -> list[str]:
    return [a.dedupe_key.split(":")[0] for a in missing(visit) if a.resolved_at is None]


@pytest.fixture
def clinic(make_clinic):
    return make_clinic()


@pytest.fixture
def visit_at(clinic, make_visit, now):
    """A visit performed (and recorded) at `now`; the chase runs at explicit later moments."""

    def make(name: str = "Sam") -> Visit:
        return make_visit(clinic, name=name, performed_at=now, now=now).visit

    return make


def test_a_patient_silent_after_a_2h_checkin_is_chased_at_24h_and_again_at_48h_in_place(
    clinic, visit_at
):
    visit = visit_at()
    checkin(visit, 2)
    assert chase(clinic, visit, 23.9) == 0
    assert chase(clinic, visit, 24) == 1
    [first] = missing(visit)
    assert first.dedupe_key == f"missing_24:{visit.id}" and first.resolved_at is None
    assert first.reasons == [{"code": "missing", "by_hours": 24, "since_hours": 6}]
    # At 48 h the same alert says 48 h: nothing new is inserted, it keeps its place.
    assert chase(clinic, visit, 48) == 0
    db.session.expire_all()
    [same] = missing(visit)
    assert same.id == first.id and same.resolved_at is None
    assert same.dedupe_key == f"missing_48:{visit.id}"
    assert same.reasons == [{"code": "missing", "by_hours": 48, "since_hours": 24}]
    assert chase(clinic, visit, 49) == 0
    assert len(missing(visit)) == 1


def test_a_checkin_at_10h_answers_the_24h_mark_but_not_the_48h_one(clinic, visit_at):
    visit = visit_at()
    checkin(visit, 10)
    assert chase(clinic, visit, 24) == 0
    assert chase(clinic, visit, 47) == 0
    assert chase(clinic, visit, 48) == 1
    assert open_keys(visit) == ["missing_48"]


def test_a_checkin_at_30h_closes_the_24h_alert_and_answers_the_48h_mark(clinic, visit_at):
    visit = visit_at()
    checkin(visit, 2)
    assert chase(clinic, visit, 24) == 1
    checkin(visit, 30)
    assert open_keys(visit) == []
    [closed] = missing(visit)
    assert closed.resolved_at == visit.performed_at + timedelta(hours=30)
    assert closed.resolved_by is None  # the patient answered; no therapist did
    assert chase(clinic, visit, 48) == 0
    assert chase(clinic, visit, 60) == 0
    assert open_keys(visit) == []


def test_a_checkin_made_at_20h_and_uploaded_at_30h_closes_the_24h_alert_only(clinic, visit_at):
    visit = visit_at()
    assert chase(clinic, visit, 24) == 1
    checkin(visit, 20, arrives=30)  # it answers the 24 h mark: made after 6 h
    assert open_keys(visit) == []
    # Silent since 20 h: at 48 h that is a new gap, raised anew.
    assert chase(clinic, visit, 48) == 1
    assert open_keys(visit) == ["missing_48"]


def test_an_offline_checkin_made_at_3h_and_uploaded_at_30h_does_not_close_the_24h_alert(
    clinic, visit_at
):
    visit = visit_at()
    assert chase(clinic, visit, 24) == 1
    checkin(visit, 3, arrives=30)
    assert open_keys(visit) == ["missing_24"]
    assert chase(clinic, visit, 30) == 0
    assert chase(clinic, visit, 48) == 0
    db.session.expire_all()
    assert open_keys(visit) == ["missing_48"]
    # A check-in made after 24 h answers it.
    checkin(visit, 49)
    assert open_keys(visit) == []


def test_a_phone_whose_clock_runs_ahead_cannot_answer_the_48h_mark_early(clinic, visit_at):
    visit = visit_at()
    # "24 h 3 min" by a phone 4 minutes ahead (within the skew allowed), reaching us at 23 h 59:
    # the 48 h window (from 24 h) is not answered by it, the 24 h one is.
    checkin(visit, 24 + 3 / 60, arrives=24 - 1 / 60)
    assert chase(clinic, visit, 24) == 0  # made by 23 h 59 at the latest: after 6 h
    assert chase(clinic, visit, 48) == 1
    assert open_keys(visit) == ["missing_48"]


@pytest.mark.parametrize(
    "database", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def test_every_kind_of_silence_on_both_databases(clinic, visit_at, database):
    """The windows are compared in SQL (hours added to performed_at): the same answers on both."""
    assert db.session.get_bind().dialect.name == database
    visits = {name: visit_at(name) for name in ("none", "2h", "6h", "10h", "24h", "30h", "late")}
    checkin(visits["2h"], 2)
    checkin(visits["6h"], 6)  # exactly at the window's start: it counts
    checkin(visits["10h"], 10)
    checkin(visits["24h"], 2)
    checkin(visits["24h"], 24)
    checkin(visits["30h"], 30)
    checkin(visits["late"], 3, arrives=20)
    some = visits["none"]
    assert chase(clinic, some, 24) == 3
    assert {name for name, v in visits.items() if open_keys(v)} == {"none", "2h", "late"}
    assert chase(clinic, some, 48) == 2  # the 6 h and 10 h ones; the rest in place
    db.session.expire_all()
    assert {name: open_keys(v) for name, v in visits.items()} == {
        "none": ["missing_48"],
        "2h": ["missing_48"],
        "6h": ["missing_48"],
        "10h": ["missing_48"],
        "24h": [],
        "30h": [],
        "late": ["missing_48"],
    }
    assert chase(clinic, some, 48) == 0


# --- the chase's cost does not grow with the clinic -----------------------------------------------


def _count_statements(fn) -> int:
    statements: list[str] = []

    def before(conn, cursor, statement, *args):
        statements.append(statement)

    engine = db.engine
    event.listen(engine, "before_cursor_execute", before)
    try:
        fn()
    finally:
        event.remove(engine, "before_cursor_execute", before)
    return len(statements)


def test_chasing_reads_the_same_number_of_statements_for_5_or_60_patients(
    make_clinic, make_visit, now
):
    counts = []
    for size in (5, 60):
        clinic = make_clinic()
        for n in range(size):
            visit = make_visit(clinic, performed_at=now, now=now).visit
            if n % 4 == 1:
                checkin(visit, 2)  # chased at 24 h and 48 h
            elif n % 4 == 2:
                checkin(visit, 10)  # chased at 48 h only
            elif n % 4 == 3:
                checkin(visit, 30)  # not chased
        at = [now + timedelta(hours=h) for h in (24, 25, 48, 49)]
        # 24 h: raised; 25 h: on record already; 48 h: escalated in place and raised; 49 h: quiet.
        counts.append(
            [_count_statements(lambda t=t, c=clinic: alerts.raise_missing(c, t)) for t in at]
        )
        db.session.commit()
        chased = db.session.scalars(
            select(Alert.dedupe_key).where(
                Alert.clinic_id == clinic.id, Alert.resolved_at.is_(None)
            )
        ).all()
        assert len(chased) == sum(1 for n in range(size) if n % 4 != 3)
        assert all(key.startswith("missing_48:") for key in chased)
    assert counts[0] == counts[1], counts


def test_the_words_say_since_when_a_silent_patient_said_nothing(clinic, visit_at, app):
    from companion.alerts.queue import reason_text

    talked, never = visit_at("Talked"), visit_at("Never")
    checkin(talked, 2)
    chase(clinic, talked, 24)
    chase(clinic, never, 24)
    with app.test_request_context():
        assert [reason_text(r) for r in missing(talked)[0].reasons] == [
            "No check-in from 6 h to 24 h"
        ]
        assert [reason_text(r) for r in missing(never)[0].reasons] == ["No check-in by 24 h"]
    assert missing(never)[0].reasons == [{"code": "missing", "by_hours": 24}]
