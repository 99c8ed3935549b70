"""The whole server killed under load, then started again on the same database (issue 14, "Faults,
with nothing lost"): gunicorn's master and all its workers SIGKILLed at once (their process group)
while patients send check-ins over HTTP, retrying like the patient app's outbox; a new server on
the same port and database. Every acknowledged check-in is stored exactly once, the ones retried
across the restart are not duplicated, and the restarted server answers.

On SQLite and, when TEST_DATABASE_URL is set, on PostgreSQL."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
import requests

from companion.timeutil import utcnow
from tests.faults import Burst, Server, assert_stored_exactly_once, open_link, wait_until

BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_whole_server_killed_under_load_and_restarted_loses_and_doubles_nothing(
    backend, app, tmp_path, make_clinic, make_visit
):
    # The server reads the real clock, so the visits are made at the real moment too.
    clinic = make_clinic()
    visits = [make_visit(clinic) for _ in range(12)]
    first = Server(app, tmp_path, workers=2)
    second = Server(app, tmp_path, workers=2, port=first.port)
    try:
        first.start()
        patients = [open_link(first.url, v.token, v.visit.id) for v in visits]
        burst = Burst(first.url, patients, per_patient=10, threads=6)
        burst.start(recorded_at=utcnow() - timedelta(minutes=30))

        wait_until(lambda: burst.acknowledged_count() >= 20, 30, "20 acknowledged check-ins")
        first.kill_everything()
        acknowledged_at_kill = burst.acknowledged_count()
        # The clients find nobody there and keep their check-ins, retrying.
        wait_until(lambda: burst.connection_errors > 0, 10, "a refused connection")

        second.start()
        burst.join(timeout=50)
        assert burst.failures == []
        assert len(burst.acknowledged) == burst.total
        assert burst.acknowledged_count() > acknowledged_at_kill
        assert burst.retried, "no check-in was caught by the kill"

        assert_stored_exactly_once(burst)

        # Every phone's outbox sends everything again (none heard its answers, say): replays
        # (200) of the stored rows, nothing added.
        for patient in patients:
            for checkin_id in patient.sent:
                again = patient.send(second.url, checkin_id)
                assert again.status_code == 200, again.text
        assert_stored_exactly_once(burst)

        # The restarted server answers: health, and a new check-in stored.
        assert requests.get(f"{second.url}/healthz", timeout=5).json() == {"status": "ok"}
        patient = patients[0]
        fresh = uuid.uuid4()
        patient.sent[fresh] = (4, utcnow().isoformat())
        assert patient.send(second.url, fresh).status_code == 201
        burst.acknowledged[fresh] = 201
        assert_stored_exactly_once(burst)
        replays = sum(1 for status in burst.acknowledged.values() if status == 200)
        print(
            f"{backend}: {burst.total} check-ins, {acknowledged_at_kill} acknowledged before the "
            f"kill, {len(burst.retried)} retried, {burst.connection_errors} connection errors, "
            f"{replays} first acknowledged as a replay (stored before the kill, answer lost)"
        )
    finally:
        first.stop()
        second.stop()
