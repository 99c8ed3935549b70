"""A web worker SIGKILLed in the middle of a burst of check-ins (issue 14, "Faults, with nothing
lost"): the real gunicorn (gunicorn.conf.py, wsgi:app, 3 workers) on 127.0.0.1, patients sending
check-ins over HTTP from several threads and retrying like the patient app's outbox. Every
check-in the server acknowledged is stored exactly once, with what the patient sent.

On SQLite and, when TEST_DATABASE_URL is set, on PostgreSQL."""

from __future__ import annotations

import os
import signal
from datetime import timedelta

import pytest

from companion.timeutil import utcnow
from tests.faults import Burst, Server, assert_stored_exactly_once, open_link, wait_until

BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_worker_killed_mid_burst_loses_no_acknowledged_checkin(
    backend, app, tmp_path, make_clinic, make_visit
):
    # The server reads the real clock, so the visits are made at the real moment too.
    clinic = make_clinic()
    visits = [make_visit(clinic) for _ in range(12)]
    server = Server(app, tmp_path, workers=3)
    try:
        server.start()
        patients = [open_link(server.url, v.token, v.visit.id) for v in visits]
        burst = Burst(server.url, patients, per_patient=10, threads=6)
        burst.start(recorded_at=utcnow() - timedelta(minutes=30))

        # Mid-burst: some check-ins acknowledged, most still to come.
        wait_until(lambda: burst.acknowledged_count() >= 20, 30, "20 acknowledged check-ins")
        before = server.worker_pids()
        victim = min(before)
        os.kill(victim, signal.SIGKILL)
        acknowledged_at_kill = burst.acknowledged_count()

        burst.join(timeout=50)
        # The master replaced the dead worker, and the burst went on after the kill.
        wait_until(
            lambda: victim not in server.worker_pids() and len(server.worker_pids()) == 3,
            30,
            "a new worker in place of the killed one",
        )
        assert burst.acknowledged_count() > acknowledged_at_kill
        assert burst.failures == []
        assert len(burst.acknowledged) == burst.total

        assert_stored_exactly_once(burst)

        # A phone whose outbox never heard the answers sends everything again: each one is a
        # replay (200) of the stored check-in, and nothing is added.
        for patient in patients[:3]:
            for checkin_id in patient.sent:
                again = patient.send(server.url, checkin_id)
                assert again.status_code == 200, again.text
        assert_stored_exactly_once(burst)
        print(
            f"{backend}: {burst.total} check-ins, {len(burst.retried)} retried, "
            f"{burst.connection_errors} connection errors, {burst.server_errors} 5xx, "
            f"{acknowledged_at_kill} acknowledged before the kill"
        )
    finally:
        server.stop()
