"""Real worker processes (`flask --app wsgi reminders dispatch`) against one database and the local
push service: several at once deliver every reminder exactly once (PostgreSQL, SKIP LOCKED), and a
worker killed between send and finish leaves a lease that runs out, after which the reminder is
delivered again (at least once), with the same Topic and tag so the phone shows it once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import delete, func, select

from companion.extensions import db
from companion.models import Delivery, Reminder
from companion.reminders import dispatch as reminders
from companion.reminders.planning import AFTER_2H, DAY_7, KINDS
from companion.reminders.subscriptions import save_subscription
from companion.timeutil import utcnow
from tests.pushserver import PushService

ROOT = Path(__file__).resolve().parent.parent
# `flask` with the process clock moved first (time-machine) to the moment given as its first
# argument: the worker lives at the test's pinned moment, like the test itself.
FLASK_AT = (
    "import sys, time_machine; time_machine.travel(sys.argv.pop(1)).start(); "
    "from flask.cli import main; main()"
)
DISPATCH = ["--app", "wsgi", "reminders", "dispatch"]


def worker(app, tmp_path: Path, **env: str) -> subprocess.Popen[str]:
    """Start `flask reminders dispatch` as its own process, on the test's database and at the
    test's (pinned) moment."""
    environ = {
        **os.environ,
        "DATABASE_URL": app.config["SQLALCHEMY_DATABASE_URI"].replace("+psycopg", ""),
        "VAPID_PRIVATE_KEY": app.config["VAPID_PRIVATE_KEY"],
        "SECRET_KEY": app.config["SECRET_KEY"],
        "PUSH_ENDPOINT_ALLOWLIST": "127.0.0.1",
        "INSTANCE_PATH": str(tmp_path / "worker-instance"),
        **env,
    }
    return subprocess.Popen(
        [sys.executable, "-c", FLASK_AT, utcnow().isoformat(), *DISPATCH],
        cwd=ROOT,
        env=environ,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def make_due(visits, kinds, now) -> None:
    """Give these visits exactly one reminder of each kind, due now (the worker's clock is pinned
    to the test's). The rows are written here rather than planned, so that every kind is due at
    once."""
    ids = [v.id for v in visits]
    db.session.execute(delete(Reminder).where(Reminder.visit_id.in_(ids)))
    db.session.add_all(
        Reminder(
            visit_id=visit_id,
            kind=kind,
            due_at=now - timedelta(minutes=1),
            expires_at=now + timedelta(hours=1),
        )
        for visit_id in ids
        for kind in kinds
    )
    db.session.commit()


def test_a_worker_killed_between_send_and_finish_sends_again_after_the_lease(
    app, tmp_path, make_clinic, make_visit, now
):
    app.config["PUSH_ENDPOINT_ALLOWLIST"] = ("127.0.0.1",)
    visit = make_visit(make_clinic(), timezone="Europe/Madrid", now=now).visit  # 11:00 there
    make_due([visit], [AFTER_2H], now)
    with PushService(app_public_key=app.config["VAPID_PUBLIC_KEY"]) as push_service:
        browser = push_service.new_subscription()
        keys = browser.as_json()["keys"]
        save_subscription(visit.patient_id, browser.endpoint, keys["p256dh"], keys["auth"], now)
        db.session.commit()

        doomed = worker(app, tmp_path)
        # The push service has the message; the worker dies before it hears back or finishes.
        push_service.on_message = lambda _sub: os.kill(doomed.pid, signal.SIGKILL)
        assert doomed.wait(timeout=60) == -signal.SIGKILL
        push_service.on_message = None

        push_service.wait_for(1)  # recorded by the service, before it could answer
        row = db.session.scalar(select(Reminder))
        db.session.refresh(row)
        assert len(push_service.received) == 1
        assert row.status == "planned" and row.attempts == 1
        assert row.lease_until is not None and row.lease_until > now
        assert db.session.scalar(select(func.count()).select_from(Delivery)) == 0

        # Nobody may take it while the lease holds ...
        assert reminders.drain(app, now=row.lease_until - timedelta(seconds=1)) == {}
        # ... and once it has run out, the next worker delivers it again.
        assert reminders.drain(app, now=row.lease_until + timedelta(seconds=1)) == {"sent": 1}

    first, second = push_service.received
    assert first.headers["topic"] == second.headers["topic"] == row.id.hex
    assert first.payload["tag"] == second.payload["tag"] == row.id.hex
    db.session.refresh(row)
    assert row.status == "sent" and row.attempts == 2


@pytest.mark.postgres
def test_three_workers_deliver_2000_reminders_each_exactly_once(
    app, tmp_path, make_clinic, make_visit, now
):
    app.config["PUSH_ENDPOINT_ALLOWLIST"] = ("127.0.0.1",)
    clinic = make_clinic()
    # 11:00 in Madrid: outside quiet hours, which would hold reminders back.
    visits = [make_visit(clinic, timezone="Europe/Madrid", now=now).visit for _ in range(400)]
    kinds = [k for k in KINDS if k != DAY_7]  # five kinds x 400 visits
    make_due(visits, kinds, now)
    assert db.session.scalar(select(func.count()).select_from(Reminder)) == 2000

    with PushService(app_public_key=app.config["VAPID_PUBLIC_KEY"], latency=0.02) as service:
        for visit in visits:
            keys = (browser := service.new_subscription()).as_json()["keys"]
            save_subscription(visit.patient_id, browser.endpoint, keys["p256dh"], keys["auth"], now)
        db.session.commit()

        # Eight connections each, not the production 64: the stand-in push service decrypts every
        # message in this one Python process, and 192 connections at once on a loaded 2-core CI
        # machine made some sends time out (retried later, so not sent in this drain). What is
        # under test is that no reminder is sent twice or missed, not the service's throughput.
        workers = [
            worker(app, tmp_path, REMINDER_BATCH_SIZE="50", PUSH_CONCURRENCY="8") for _ in range(3)
        ]
        outputs = [w.communicate(timeout=300) for w in workers]

    assert [w.returncode for w in workers] == [0, 0, 0], [err for _, err in outputs]
    sent_by_worker = [_sent(out) for out, _ in outputs]
    retried = Counter(
        db.session.scalars(select(Reminder.last_error).where(Reminder.status != "sent"))
    )
    assert sum(sent_by_worker) == 2000, ([out for out, _ in outputs], retried)
    assert sum(1 for n in sent_by_worker if n) >= 2  # they really shared the work
    topics = Counter(m.headers["topic"] for m in service.received)
    assert len(service.received) == 2000 and len(topics) == 2000  # none twice
    assert all(m.error is None and m.status == 201 for m in service.received)
    statuses = dict(
        db.session.execute(select(Reminder.status, func.count()).group_by(Reminder.status)).all()
    )
    assert statuses == {"sent": 2000}
    per_reminder = db.session.execute(
        select(func.count(), func.count(func.distinct(Delivery.reminder_id))).select_from(Delivery)
    ).one()
    assert tuple(per_reminder) == (2000, 2000)
    print("sent by each worker:", sent_by_worker)


def _sent(output: str) -> int:
    for part in output.strip().split(", "):
        name, _, count = part.partition(": ")
        if name == "sent":
            return int(count)
    return 0


@pytest.mark.postgres
def test_workers_pass_over_reminders_waiting_for_a_device_and_send_each_once_one_comes(
    app, tmp_path, make_clinic, make_visit, now
):
    app.config["PUSH_ENDPOINT_ALLOWLIST"] = ("127.0.0.1",)
    clinic = make_clinic()
    visits = [make_visit(clinic, timezone="Europe/Madrid", now=now).visit for _ in range(40)]
    make_due(visits, [AFTER_2H], now)

    # Nobody has turned reminders on: every one waits, and the next round claims none of them.
    assert reminders.drain(app, now=now) == {"no_device": 40}
    assert reminders.drain(app, now=now + timedelta(minutes=1)) == {}
    assert set(db.session.scalars(select(Reminder.attempts))) == {0}

    with PushService(app_public_key=app.config["VAPID_PUBLIC_KEY"]) as service:
        late = visits[:20]  # half of the patients turn reminders on while theirs are valid
        for visit in late:
            keys = (browser := service.new_subscription()).as_json()["keys"]
            save_subscription(visit.patient_id, browser.endpoint, keys["p256dh"], keys["auth"], now)
        db.session.commit()

        workers = [worker(app, tmp_path, REMINDER_BATCH_SIZE="5") for _ in range(2)]
        outputs = [w.communicate(timeout=120) for w in workers]

    assert [w.returncode for w in workers] == [0, 0], [err for _, err in outputs]
    assert sum(_sent(out) for out, _ in outputs) == 20
    assert not any("no_device" in out for out, _ in outputs)  # the others were not even claimed
    topics = Counter(m.headers["topic"] for m in service.received)
    assert len(service.received) == 20 and len(topics) == 20  # each once
    db.session.rollback()
    status = dict(db.session.execute(select(Reminder.visit_id, Reminder.status)).all())
    assert {status[v.id] for v in late} == {"sent"}
    assert {status[v.id] for v in visits[20:]} == {"planned"}  # still waiting, not claimed
