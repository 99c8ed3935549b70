"""A reminder worker outage of 2 h (issue 14, "Faults, with nothing lost"): no worker ran from T0
until now, 2 h later; then the real worker (`flask reminders run`) starts, reading the real clock.

What is still within its validity window (planning.VALID_FOR, from clinical.md: "each reminder
expires when its moment has passed") is sent, once; what is not is marked expired, not sent, and
the therapist sees "Expired, not sent" on the visit page; what is not due yet waits.

Every window is at least 3 h, so a reminder that fell due during a 2 h outage is still worth
sending when the worker returns. What expires is what was already owed when the outage began and
whose window closed during it: here the 2 h nudges of two visits the clinic system recorded at T0,
3.5 h and 4.25 h after they took place (due before T0, valid until 30 and 75 min before the
worker's return).

The visits are recorded at T0 with the planner (`now` given), so the reminders are exactly the
rows a real plan makes. The patients live in a fixed-offset zone chosen so that the worker's
return falls at about 13:00 their time, away from quiet hours, the 21:00 evening cap and the 09:00
morning, whatever date and hour the suite runs at (`make test-clock`).

On SQLite and, when TEST_DATABASE_URL is set, on PostgreSQL."""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import datetime, timedelta

import pytest
from sqlalchemy import select

from companion.extensions import db
from companion.models import Reminder, ReminderStatus
from companion.reminders.planning import AFTER_2H, AFTER_48H, EVENING
from companion.reminders.subscriptions import save_subscription
from companion.timeutil import utcnow
from tests.conftest import sign_in
from tests.faults import ReminderWorker, wait_until
from tests.pushserver import PushService

BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
OUTAGE = timedelta(hours=2)


def zone_where_it_is_about_13h(moment: datetime) -> str:
    """An IANA fixed-offset zone (Etc/GMT-N is N hours ahead of UTC) where `moment` is 13:xx."""
    offset = (13 - moment.hour + 12) % 24 - 12  # -12 .. 11
    if offset == 0:
        return "Etc/GMT"
    return f"Etc/GMT{'-' if offset > 0 else '+'}{abs(offset)}"


@pytest.mark.parametrize("backend", BACKENDS)
def test_after_a_2h_worker_outage_the_valid_are_sent_once_and_the_rest_expire_visibly(
    backend, app, client, tmp_path, make_clinic, make_therapist, make_visit
):
    back = utcnow()  # the worker comes back now, reading the real clock
    t0 = back - OUTAGE  # the last moment a worker ran
    zone = zone_where_it_is_about_13h(back)
    clinic = make_clinic(timezone=zone)
    therapist = make_therapist(clinic)
    # Recorded at T0, each this long after it took place (local times when the worker returns
    # at 13:xx):
    performed = {
        "late": t0 - timedelta(hours=3, minutes=30),  # 07:30; 2 h nudge due 09:30, valid to 12:30
        # 06:45; 2 h nudge due 08:45, valid to 11:45; the evening one due 12:45, in the outage
        "early": t0 - timedelta(hours=4, minutes=15),
        "morning": t0 - timedelta(hours=1),  # 10:00; 2 h nudge due 12:00, in the outage
        "at_t0": t0 - timedelta(hours=2),  # 09:00; 2 h nudge due 11:00, as the outage began
        "two_days": t0 - timedelta(hours=47),  # the 48 h check-in due at 12:00, in the outage
    }
    visits = {
        name: make_visit(clinic, timezone=zone, performed_at=at, now=t0).visit
        for name, at in performed.items()
    }

    with PushService(app_public_key=app.config["VAPID_PUBLIC_KEY"]) as service:
        for visit in visits.values():
            keys = (browser := service.new_subscription()).as_json()["keys"]
            save_subscription(visit.patient_id, browser.endpoint, keys["p256dh"], keys["auth"], t0)
        db.session.commit()
        planned = {r.id: r for r in db.session.scalars(select(Reminder))}
        assert all(r.status == ReminderStatus.PLANNED for r in planned.values())

        worker = ReminderWorker(app, tmp_path)
        started = utcnow()
        try:
            worker.start()
            # Its first tick: everything that was due is decided (sent or expired).
            wait_until(lambda: not _still_due(utcnow()), 30, "every due reminder sent or expired")
            settled = utcnow()
            # Another worker afterwards (a cron host, a second process) finds nothing to do,
            # while the first keeps ticking every second.
            again = ReminderWorker(app, tmp_path).start("dispatch")
            assert again.wait(timeout=30) == 0, again.output()
            assert "No reminders due." in again.output()
        finally:
            worker.stop()

    # What each reminder had to become, from its own window as planned at T0.
    expected: dict[uuid.UUID, str] = {}
    for reminder_id, row in planned.items():
        if row.expires_at <= started:
            expected[reminder_id] = ReminderStatus.EXPIRED
        elif row.due_at <= started and row.expires_at > settled:
            expected[reminder_id] = ReminderStatus.SENT
        elif row.due_at > settled:
            expected[reminder_id] = ReminderStatus.PLANNED
        else:
            raise AssertionError(f"{row.kind} due {row.due_at} lies on the worker's return")
    db.session.rollback()
    rows = {r.id: r for r in db.session.scalars(select(Reminder))}
    assert {i: r.status for i, r in rows.items()} == expected

    # The ones designed for each case are where they should be.
    for name in ("late", "early"):
        assert expected[_reminder(visits[name].id, AFTER_2H)] == ReminderStatus.EXPIRED, name
    for name, kind in (
        ("morning", AFTER_2H),
        ("at_t0", AFTER_2H),
        ("early", EVENING),
        ("two_days", AFTER_48H),
    ):
        assert expected[_reminder(visits[name].id, kind)] == ReminderStatus.SENT, name

    # Sent once: one message per valid reminder, none more from the worker's further ticks or
    # from the second worker.
    topics = Counter(m.headers["topic"] for m in service.received)
    sent = {i for i, status in expected.items() if status == ReminderStatus.SENT}
    assert topics == Counter({i.hex: 1 for i in sent})
    assert all(m.status == 201 and m.error is None for m in service.received)
    for reminder_id in sent:
        assert rows[reminder_id].attempts == 1 and rows[reminder_id].sent_at is not None
    # Expired: never claimed nor sent, ended with the moment the worker found them.
    for reminder_id, status in expected.items():
        if status == ReminderStatus.EXPIRED:
            row = rows[reminder_id]
            assert row.attempts == 0 and row.sent_at is None and row.deliveries == []
            assert row.finished_at is not None and started <= row.finished_at <= settled

    # Visible: the therapist's visit page says what happened to each.
    sign_in(client, therapist.email)
    late_page = client.get(f"/visits/{visits['late'].id}").get_data(as_text=True)
    assert '<tr class="reminder-expired">' in late_page
    assert "Expired, not sent" in late_page
    morning_page = client.get(f"/visits/{visits['morning'].id}").get_data(as_text=True)
    assert "Sent to 1 device" in morning_page

    counts = Counter(expected.values())
    print(
        f"{backend}: {len(expected)} reminders planned at T0; on return after 2 h: "
        f"{counts[ReminderStatus.SENT]} sent once, {counts[ReminderStatus.EXPIRED]} expired, "
        f"{counts[ReminderStatus.PLANNED]} not due yet; {len(service.received)} messages"
    )


def _still_due(now: datetime) -> list[uuid.UUID]:
    db.session.rollback()  # a fresh snapshot: the worker writes these rows
    return list(
        db.session.scalars(
            select(Reminder.id).where(
                Reminder.status == ReminderStatus.PLANNED, Reminder.due_at <= now
            )
        )
    )


def _reminder(visit_id: uuid.UUID, kind: str) -> uuid.UUID:
    found = db.session.scalar(
        select(Reminder.id).where(Reminder.visit_id == visit_id, Reminder.kind == kind)
    )
    assert found is not None, f"no {kind} reminder planned"
    return found
