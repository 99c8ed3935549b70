"""The reminder worker SIGKILLed in the middle of a batch (issue 14, "Faults, with nothing lost"):
the real worker (`flask reminders run`, as supervisord.conf runs it) sending 30 due reminders in
batches of 10 to a local push service on 127.0.0.1, killed when the 15th message arrives, while a
batch is in flight. A new worker then sends the rest.

Every reminder reaches the patient at least once. The only ones sent twice are from the batch the
dead worker held (so at most a batch), sent again only once its lease ran out, and each copy
carries the same push Topic and notification tag (the reminder id), so the phone replaces the
first with the second and shows it once.

On SQLite and, when TEST_DATABASE_URL is set, on PostgreSQL."""

from __future__ import annotations

import os
import signal
import threading
import uuid
from collections import Counter
from datetime import datetime, time, timedelta

import pytest
from sqlalchemy import delete, select

from companion.extensions import db
from companion.models import Reminder, ReminderStatus
from companion.reminders.planning import AFTER_2H
from companion.reminders.subscriptions import save_subscription
from companion.timeutil import utcnow
from tests.faults import ReminderWorker, wait_until
from tests.pushserver import PushService

BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
REMINDERS = 30
BATCH = 10
KILL_AT = 15  # the 15th message: the first batch is done, the second half sent
# The shortest lease the settings allow with a 1 s push timeout (2 x timeout + 15 s): the test
# waits for it to run out, as a real second worker would.
WORKER_ENV = {
    "REMINDER_BATCH_SIZE": str(BATCH),
    "PUSH_CONCURRENCY": "4",
    "PUSH_TIMEOUT_SECONDS": "1",
    "REMINDER_LEASE_SECONDS": "17",
}


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_worker_killed_mid_batch_sends_every_reminder_and_repeats_only_its_batch(
    backend, app, tmp_path, make_clinic, make_visit
):
    # The worker reads the real clock: the reminders are due at the real moment.
    start = utcnow()
    clinic = make_clinic()
    # No quiet hours: whatever the hour the suite runs at, nothing waits for the morning.
    clinic.quiet_start = clinic.quiet_end = time(0, 0)
    visits = [make_visit(clinic, now=start).visit for _ in range(REMINDERS)]
    ids = [v.id for v in visits]
    db.session.execute(delete(Reminder).where(Reminder.visit_id.in_(ids)))
    db.session.add_all(
        Reminder(
            visit_id=visit_id,
            kind=AFTER_2H,
            due_at=start - timedelta(minutes=1),
            expires_at=start + timedelta(hours=1),
        )
        for visit_id in ids
    )
    db.session.commit()

    arrivals: list[tuple[str, datetime]] = []  # (subscription id, when), every message
    lock = threading.Lock()
    with PushService(app_public_key=app.config["VAPID_PUBLIC_KEY"], latency=0.05) as service:
        subscription_of = {}
        for visit in visits:
            browser = service.new_subscription()
            keys = browser.as_json()["keys"]
            save_subscription(
                visit.patient_id, browser.endpoint, keys["p256dh"], keys["auth"], start
            )
            subscription_of[browser.id] = visit.id
        db.session.commit()

        doomed = ReminderWorker(app, tmp_path, **WORKER_ENV)
        second = ReminderWorker(app, tmp_path, **WORKER_ENV)

        def on_message(sub_id: str) -> None:
            with lock:
                arrivals.append((sub_id, utcnow()))
                if len(arrivals) == KILL_AT:
                    os.kill(doomed.pid, signal.SIGKILL)  # the message arrived; no answer heard

        service.on_message = on_message
        try:
            doomed.start()
            assert doomed.wait(timeout=40) == -signal.SIGKILL, doomed.output()
            db.session.rollback()
            rows = {r.id: r for r in db.session.scalars(select(Reminder))}
            in_flight = {
                r.id for r in rows.values() if r.status == "planned" and r.lease_until is not None
            }
            sent_before = {r.id for r in rows.values() if r.status == ReminderStatus.SENT}
            leases = {r.id: r.lease_until for r in rows.values() if r.id in in_flight}
            with lock:
                arrived_before = len(arrivals)
            # The dead worker held one batch, part of it already at the push service.
            assert 0 < len(in_flight) <= BATCH
            assert len(sent_before) == BATCH, "the first batch was finished before the kill"

            # The next worker sends the rest at once, and the dead one's batch after its lease.
            second.start()
            wait_until(
                lambda: _statuses() == {ReminderStatus.SENT: REMINDERS},
                45,
                "every reminder sent",
            )
        finally:
            second.stop()
            doomed.stop()
            service.on_message = None

    received = service.received
    assert all(m.error is None and m.status == 201 for m in received)
    topics = Counter(m.headers["topic"] for m in received)
    # At least once: every reminder reached its patient's device.
    assert set(topics) == {i.hex for i in rows}
    duplicates = {topic for topic, n in topics.items() if n > 1}
    # ... and only the batch in flight was sent again, each at most twice.
    assert duplicates <= {i.hex for i in in_flight}
    assert len(duplicates) <= BATCH and max(topics.values()) <= 2
    for topic in duplicates:
        copies = [m for m in received if m.headers["topic"] == topic]
        # The same Topic and the same tag: the push service and the phone keep one of them.
        assert {m.headers["topic"] for m in copies} == {topic}
        assert {m.payload["tag"] for m in copies} == {topic}
        assert len({(m.payload["title"], m.payload["body"], m.payload["url"]) for m in copies}) == 1
    # Nothing of the dead worker's batch was taken again before its lease ran out.
    for sub_id, at in arrivals[arrived_before:]:
        reminder_id = _reminder_of(subscription_of[sub_id])
        if reminder_id in in_flight:
            assert at >= leases[reminder_id]
    db.session.rollback()
    attempts = dict(db.session.execute(select(Reminder.id, Reminder.attempts)).all())
    assert all(attempts[i] == 2 for i in in_flight)
    assert all(n == 1 for i, n in attempts.items() if i not in in_flight)
    print(
        f"{backend}: {REMINDERS} reminders, batch {BATCH}, {arrived_before} messages before the "
        f"kill, {len(in_flight)} in flight, {len(received)} messages in all, "
        f"{len(duplicates)} delivered twice (same Topic and tag)"
    )


def _statuses() -> dict[str, int]:
    db.session.rollback()  # a fresh snapshot: the worker wrote these rows
    return Counter(db.session.scalars(select(Reminder.status)))


def _reminder_of(visit_id: uuid.UUID) -> uuid.UUID | None:
    return db.session.scalar(select(Reminder.id).where(Reminder.visit_id == visit_id))
