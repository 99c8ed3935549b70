"""Fixtures: a fresh, migrated database per test (SQLite by default; PostgreSQL for tests marked
`postgres` when TEST_DATABASE_URL is set), a test client, a CLI runner and small factories."""

from __future__ import annotations

import contextvars
import os
import re
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from flask_migrate import upgrade
from sqlalchemy import text
from time_machine import TimeMachineFixture

from companion import create_app
from companion.auth import hash_password
from companion.extensions import db
from companion.models import ApiKey, Clinic, Patient, Role, Therapist, Visit
from companion.timeutil import utcnow
from companion.tokens import hash_token, new_token
from companion.visits.record import (
    PatientDetails,
    VisitDetails,
    find_or_create_patient,
    record_visit,
)

PG_URL = os.environ.get("TEST_DATABASE_URL", "")
# The moment the `now` fixture pins: a Wednesday, 10:00 UTC (11:00 in Madrid), far from any
# daylight-saving change. No test reads the real clock; `make test-clock` runs them at other ones.
NOW = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
PASSWORD = "correct horse battery"


def _config(tmp_path: Path, database_url: str) -> dict[str, Any]:
    return {
        "TESTING": True,
        "SECRET_KEY": "test-secret-key",
        "SQLALCHEMY_DATABASE_URI": database_url,
        "SERVER_NAME": "companion.test",
        "PUBLIC_URL": "",
        "RATELIMIT_ENABLED": False,
    }


def _pg_url() -> str:
    url = PG_URL
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url.removeprefix(prefix)
    return url


class IsolatedClient(FlaskClient):
    """Runs each request in a fresh context, as a real server would.

    Flask reuses an app context that a test has pushed, so `g` (CSRF token cache, for one) and the
    database session would leak from one request into the next and hide real bugs.
    """

    def open(self, *args: Any, **kwargs: Any) -> Any:
        return contextvars.Context().run(super().open, *args, **kwargs)


def build_app(tmp_path: Path, *, postgres: bool = False, **overrides: Any) -> Flask:
    url = _pg_url() if postgres else f"sqlite:///{tmp_path / 'test.sqlite3'}"
    os.environ.setdefault("INSTANCE_PATH", str(tmp_path / "instance"))
    app = create_app({**_config(tmp_path, url), **overrides})
    app.test_client_class = IsolatedClient
    with app.app_context():
        if postgres:
            with db.engine.begin() as conn:
                conn.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
        upgrade()
    return app


@pytest.fixture
def app(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Flask]:
    postgres = request.node.get_closest_marker("postgres") is not None
    if postgres and not PG_URL:
        pytest.skip(
            "PostgreSQL tests need TEST_DATABASE_URL (set by .ci/run when PostgreSQL answers)"
        )
    app = build_app(tmp_path, postgres=postgres)
    with app.app_context():
        yield app
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def runner(app: Flask) -> FlaskCliRunner:
    return app.test_cli_runner()


@pytest.fixture
def now(time_machine: TimeMachineFixture) -> datetime:
    """NOW, with the whole process clock moved there: what views, CLI commands and workers in this
    process read (`utcnow()`, `time.time()`) starts at NOW and ticks on from it. A test with a
    moment of its own calls `time_machine.move_to(moment)` instead."""
    time_machine.move_to(NOW)
    return NOW


# --- factories ------------------------------------------------------------------------------------


@dataclass
class VisitWithToken:
    visit: Visit
    token: str

    @property
    def url(self) -> str:
        return f"/p/{self.token}"


@pytest.fixture
def make_clinic(app: Flask) -> Callable[..., Clinic]:
    def make(name: str | None = None, timezone: str = "Europe/Madrid") -> Clinic:
        clinic = Clinic(name=name or f"Clinic {uuid.uuid4().hex[:6]}", timezone=timezone)
        db.session.add(clinic)
        db.session.commit()
        return clinic

    return make


@pytest.fixture
def make_therapist(app: Flask) -> Callable[..., Therapist]:
    # An admin unless asked otherwise: most pages' tests need the whole menu; tests/test_roles.py
    # checks what a therapist who is not an admin may not do.
    def make(clinic: Clinic, email: str | None = None, role: str = Role.ADMIN) -> Therapist:
        therapist = Therapist(
            clinic_id=clinic.id,
            email=email or f"t{uuid.uuid4().hex[:6]}@example.org",
            password_hash=hash_password(PASSWORD),
            role=role,
        )
        db.session.add(therapist)
        db.session.commit()
        return therapist

    return make


@pytest.fixture
def make_visit(app: Flask) -> Callable[..., VisitWithToken]:
    def make(
        clinic: Clinic,
        *,
        ref: str | None = None,
        name: str = "Sam",
        timezone: str = "Europe/Madrid",
        language: str = "en",
        performed_at: datetime | None = None,
        regions: list[str] | None = None,
        now: datetime | None = None,
    ) -> VisitWithToken:
        now = now or utcnow()
        patient: Patient = find_or_create_patient(
            clinic, PatientDetails(ref or uuid.uuid4().hex[:8], name, timezone, language)
        )
        visit, issued = record_visit(
            clinic,
            patient,
            VisitDetails(
                performed_at=performed_at or now - timedelta(hours=3), regions=regions or ["calf"]
            ),
            therapist_id=None,
            link_days=7,
            now=now,
        )
        db.session.commit()
        return VisitWithToken(visit, issued.token)

    return make


@pytest.fixture
def make_api_key(app: Flask) -> Callable[[Clinic], str]:
    def make(clinic: Clinic) -> str:
        key = "ak_" + new_token()
        db.session.add(ApiKey(clinic_id=clinic.id, prefix=key[:10], key_hash=hash_token(key)))
        db.session.commit()
        return key

    return make


_CSRF = re.compile(
    r'name="csrf_token" type="hidden" value="([^"]+)"|name="csrf_token" value="([^"]+)"'
)


def csrf_from(html: str) -> str:
    match = _CSRF.search(html)
    assert match, "the page has no CSRF token"
    return match.group(1) or match.group(2)


def sign_in(client: FlaskClient, email: str, password: str = PASSWORD) -> Any:
    page = client.get("/sign-in")
    token = csrf_from(page.get_data(as_text=True))
    return client.post("/sign-in", data={"email": email, "password": password, "csrf_token": token})


@pytest.fixture
def patient_client(client, make_clinic, make_visit, now):
    """A client holding a patient cookie for a visit 3 hours before `now` (the clock is pinned)."""
    visit = make_visit(make_clinic(), now=now)
    assert client.get(visit.url).status_code == 303
    client.visit = visit.visit
    return client
