"""The database unavailable for a while during a burst of check-ins (issue 14, "Faults, with nothing
lost"): the real gunicorn (gunicorn.conf.py, wsgi:app, 3 workers) on 127.0.0.1, patients sending
check-ins over HTTP from several threads and retrying like the patient app's outbox.

- PostgreSQL, really gone: the server's database stops accepting connections
  (`ALTER DATABASE ... ALLOW_CONNECTIONS false`) and its connections are cut
  (`pg_terminate_backend`), then it is allowed again. Meanwhile every check-in is answered 503 with
  Retry-After and `/healthz` says 503 {"status": "unavailable"}; once it is back the same requests
  succeed.
- SQLite, held: another connection holds the write lock (BEGIN IMMEDIATE, as a long import or
  maintenance job would) past the server's busy timeout (lowered to 300 ms here). Writes are
  answered 503 with Retry-After; reads go on (WAL), so `/healthz` stays ok; once the lock is
  released the same requests succeed.

Either way no answer is a 500, and every acknowledged check-in is stored exactly once with what the
patient sent."""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import pytest
import requests
from flask import Flask
from sqlalchemy import create_engine
from sqlalchemy.engine import make_url

from companion.extensions import db
from companion.timeutil import utcnow
from tests.conftest import PG_URL, build_app
from tests.faults import Burst, Server, assert_stored_exactly_once, open_link, wait_until

# The server's busy timeout in the SQLite test: a write waits this long for the lock, then 503.
BUSY_TIMEOUT_MS = 300


def health(server: Server) -> requests.Response:
    return requests.get(f"{server.url}/healthz", timeout=10)


def run_outage(
    app: Flask,
    tmp_path: Any,
    make_clinic: Callable[..., Any],
    make_visit: Callable[..., Any],
    outage: Callable[[], Any],
    during: Callable[[Server, Burst], None],
    **server_env: str,
) -> dict[str, int]:
    """A burst of 12 patients x 10 check-ins against a fresh server; once 20 are acknowledged,
    `outage()` (a context manager) makes the database unavailable, `during` checks the server
    while it lasts, and the outage ends. Returns figures of the run."""
    clinic = make_clinic()
    visits = [make_visit(clinic) for _ in range(12)]
    server = Server(app, tmp_path, workers=3)
    server.env.update(server_env)
    try:
        server.start()
        patients = [open_link(server.url, v.token, v.visit.id) for v in visits]
        # The test's own connections would be cut too: nothing here reads until the outage ends.
        db.session.remove()
        db.engine.dispose()
        burst = Burst(server.url, patients, per_patient=10, threads=6)
        burst.start(recorded_at=utcnow() - timedelta(minutes=30))
        wait_until(lambda: burst.acknowledged_count() >= 20, 30, "20 acknowledged check-ins")
        with outage():
            acknowledged_at_start = burst.acknowledged_count()
            # A dozen refusals at least: the outage really caught the burst.
            wait_until(lambda: burst.statuses[503] >= 12, 30, "12 answers 503 in the outage")
            during(server, burst)
        burst.join(timeout=50)

        assert burst.failures == []
        assert len(burst.acknowledged) == burst.total
        # Only successes and "try again later": never a 500, never a lost connection.
        assert set(burst.statuses) <= {200, 201, 503}, burst.statuses
        assert burst.no_retry_after == 0
        # Check-ins refused in the outage were sent again and acknowledged once it ended.
        assert burst.unavailable and burst.unavailable <= set(burst.acknowledged)
        assert_stored_exactly_once(burst)

        # A phone whose outbox never heard the answers sends everything again: replays (200).
        for patient in patients[:3]:
            for checkin_id in patient.sent:
                again = patient.send(server.url, checkin_id)
                assert again.status_code == 200, again.text
        assert_stored_exactly_once(burst)
        assert health(server).json() == {"status": "ok"}
        figures = {
            "check-ins": burst.total,
            "acknowledged before the outage": acknowledged_at_start,
            "answers 503": burst.statuses[503],
            "check-ins refused then stored": len(burst.unavailable),
            "acknowledged as 201": sum(1 for s in burst.acknowledged.values() if s == 201),
            "acknowledged as 200 (replay)": sum(1 for s in burst.acknowledged.values() if s == 200),
            "connection errors": burst.connection_errors,
        }
        return figures
    finally:
        server.stop()


def assert_503_with_retry_after(answer: requests.Response) -> None:
    assert answer.status_code == 503, answer.status_code
    assert answer.headers["Retry-After"].isdigit()


# --- PostgreSQL ---------------------------------------------------------------------------------


@contextmanager
def postgres_database(name: str) -> Iterator[str]:
    """A database of its own for the server (the suite's own stays reachable), dropped after."""
    admin = create_engine(
        make_url(PG_URL).set(drivername="postgresql+psycopg", database="postgres"),
        isolation_level="AUTOCOMMIT",
    )
    url = make_url(PG_URL).set(drivername="postgresql+psycopg", database=name)
    with admin.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


@contextmanager
def postgres_down(name: str) -> Iterator[None]:
    """No new connection to `name` (superusers included), and every open one cut, until the end
    of the block: what a database restart, a failover or a network cut looks like to the app."""
    admin = create_engine(
        make_url(PG_URL).set(drivername="postgresql+psycopg", database="postgres"),
        isolation_level="AUTOCOMMIT",
    )
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
            conn.exec_driver_sql(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                (name,),
            )
        yield
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
        admin.dispose()


@pytest.mark.postgres
def test_postgresql_gone_for_a_while_answers_503_then_stores_everything_once(
    app, tmp_path, make_clinic, make_visit
):
    name = f"{make_url(PG_URL).database}_unavailable"
    with postgres_database(name) as url:
        server_app = build_app(tmp_path, postgres=True, SQLALCHEMY_DATABASE_URI=url)
        health_during: list[requests.Response] = []

        def during(server: Server, burst: Burst) -> None:
            # (A requests Response is false when its status is 4xx or 5xx: kept in a list.)
            wait_until(
                lambda: (
                    health_during.append(health(server)) or health_during[-1].status_code == 503
                ),
                10,
                "/healthz to say the database is unavailable",
            )
            # A page needing the database: the short "try again" page, not a 500.
            page = requests.get(f"{server.url}/p/{uuid.uuid4().hex}", timeout=10)
            assert_503_with_retry_after(page)
            assert page.headers["Content-Type"].startswith("text/html")

        with server_app.app_context():
            try:
                figures = run_outage(
                    server_app,
                    tmp_path,
                    make_clinic,
                    make_visit,
                    lambda: postgres_down(name),
                    during,
                )
            finally:
                db.session.remove()
                db.engine.dispose()  # before the database is dropped
    answer = health_during[-1]
    assert_503_with_retry_after(answer)
    assert answer.json() == {"status": "unavailable"}
    print(f"postgres: {figures}")


# --- SQLite -------------------------------------------------------------------------------------


@contextmanager
def sqlite_write_lock(path: str) -> Iterator[None]:
    """Another connection holds the write lock until the end of the block (as a long import or
    a maintenance job would). It waits its own turn for the lock first."""
    holder = sqlite3.connect(path, timeout=30, isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")
        yield
        holder.execute("ROLLBACK")
    finally:
        holder.close()


def test_sqlite_write_lock_held_past_the_busy_timeout_answers_503_then_stores_everything_once(
    app, tmp_path, make_clinic, make_visit
):
    path = make_url(app.config["SQLALCHEMY_DATABASE_URI"]).database
    assert path and path.endswith(".sqlite3")
    health_during: list[requests.Response] = []

    def during(server: Server, burst: Burst) -> None:
        # Reads go on in WAL mode: the server is up, only writes must wait.
        health_during.append(health(server))

    figures = run_outage(
        app,
        tmp_path,
        make_clinic,
        make_visit,
        lambda: sqlite_write_lock(path),
        during,
        SQLITE_BUSY_TIMEOUT_MS=str(BUSY_TIMEOUT_MS),
    )
    assert health_during[0].status_code == 200
    assert health_during[0].json() == {"status": "ok"}
    # The answers are read before the commit: no stored check-in was answered 503 (each was
    # acknowledged by its first success, a 201, not by a replay).
    assert figures["acknowledged as 200 (replay)"] == 0
    print(f"sqlite: {figures}")
