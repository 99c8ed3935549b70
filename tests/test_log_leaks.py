"""No health data and no secret in the logs (issue 14, "Logs"): a whole flow through the app with
every logger captured at DEBUG, then every line searched for the patient's name, note, scores,
phone and e-mail, and for every token (patient link, patient cookie, calendar feed, API key,
session cookie).

The flow: a therapist signs in and records a visit (name, phone, e-mail); the patient opens the
link, subscribes to push, checks in with a note, scores and a red-flag symptom, reads the history
and the calendar feed; the worker sends the red alert (push and e-mail) and the reminders; the
therapist reads the queue, the visit and the patient, and exports CSV and FHIR; a clinic system
uses the API with a key; and a few bad requests and error pages along the way.

In process, so gunicorn's access log is not here: it redacts the tokens in URLs itself, and
tests/test_calendar.py proves it.
"""

from __future__ import annotations

import logging
import re
import traceback
import uuid
from collections.abc import Iterable, Iterator
from datetime import timedelta
from pathlib import Path
from urllib.parse import quote, quote_plus, urlsplit

import pytest
from flask import Flask

from companion.alerts.devices import save_device
from companion.alerts.dispatch import dispatch_once
from companion.channels import webpush
from companion.extensions import db
from companion.models import Therapist
from companion.reminders.dispatch import drain

from .conftest import PG_URL, build_app, csrf_from, sign_in
from .pushserver import PushService
from .smtpserver import SMTPServer

NAME = "Rosalind Quintero-Leakwell"
PHONE_TYPED, PHONE = "+34 612 34 56 78", "+34612345678"
EMAIL = "rosalind.quintero@example.org"
# The scores as the patient wrote them in the note; the check-in's own scores are the same.
SCORES = "soreness 8 of 10, usual pain 3 of 10"
NOTE = f"marmalade zebra feeling in the calf, {SCORES}"


def variants(secret: str) -> set[str]:
    """The forms a value takes on its way into a log line: as is, lower-cased, in a URL."""
    return {secret, secret.lower(), quote(secret, safe=""), quote_plus(secret)}


def record_text(record: logging.LogRecord) -> str:
    """All a record would print: its message with the arguments put in, and any traceback."""
    parts = [record.getMessage()]
    if record.exc_info:
        parts.append("".join(traceback.format_exception(*record.exc_info)))
    if record.exc_text:
        parts.append(record.exc_text)
    if record.stack_info:
        parts.append(record.stack_info)
    return "\n".join(parts)


def leaks(records: Iterable[logging.LogRecord], secrets: dict[str, str]) -> list[str]:
    """`what: logger: line` for every record holding one of `secrets` (name -> value)."""
    found = []
    for record in records:
        text = record_text(record)
        for what, secret in secrets.items():
            if any(form in text or form in text.lower() for form in variants(secret)):
                found.append(f"{what}: {record.name}: {text[:300]}")
    return found


def test_the_search_finds_a_planted_leak():
    """The search can fail: a value in the arguments, in the message, or only in a traceback."""

    def record(msg: str, *args: object, exc: BaseException | None = None) -> logging.LogRecord:
        exc_info = (type(exc), exc, exc.__traceback__) if exc else None
        return logging.LogRecord("planted", logging.DEBUG, __file__, 1, msg, args, exc_info)

    try:
        raise ValueError(f"bad value {PHONE}")
    except ValueError as exc:
        in_traceback = record("request failed", exc=exc)
    planted = [
        record("check-in %s stored", NOTE),
        record(f"patient {NAME.upper()} seen"),  # another case
        record("GET /p/%s", "tok-123"),
        record("mailto %s", quote(EMAIL, safe="")),  # inside a URL
        in_traceback,
        record("check-in %s stored with triage %s", uuid.uuid4(), "red"),  # clean
    ]
    secrets = {"note": NOTE, "name": NAME, "token": "tok-123", "email": EMAIL, "phone": PHONE}

    found = leaks(planted, secrets)

    assert [line.split(":")[0] for line in found] == ["note", "name", "token", "email", "phone"]


@pytest.fixture
def smtp() -> Iterator[SMTPServer]:
    with SMTPServer() as server:
        yield server


@pytest.fixture
def push_service(app: Flask) -> Iterator[PushService]:
    with PushService(app_public_key=app.config["VAPID_PUBLIC_KEY"]) as service:
        yield service


@pytest.fixture
def app(request: pytest.FixtureRequest, tmp_path: Path, smtp: SMTPServer) -> Iterator[Flask]:
    postgres = request.node.get_closest_marker("postgres") is not None
    if postgres and not PG_URL:
        pytest.skip("PostgreSQL tests need TEST_DATABASE_URL")
    app = build_app(
        tmp_path,
        postgres=postgres,
        MAIL_SERVER="127.0.0.1",
        MAIL_PORT=smtp.port,
        MAIL_DEFAULT_SENDER="Aftercare <alerts@clinic.example>",
        MAIL_TIMEOUT=5,
        PUSH_ENDPOINT_ALLOWLIST=("127.0.0.1",),
        PUBLIC_URL="https://care.clinic.example",
        RATELIMIT_ENABLED=True,  # the limiter logs too
    )
    with app.app_context():
        yield app
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def every_log(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """Every logger at DEBUG, each one reaching the capture (loggers that do not propagate get
    the capture's handler themselves)."""
    caplog.set_level(logging.DEBUG)
    attached = []
    for name, logger in list(logging.root.manager.loggerDict.items()):
        if isinstance(logger, logging.Logger):
            caplog.set_level(logging.DEBUG, logger=name)
            logger.disabled = False
            if not logger.propagate:
                logger.addHandler(caplog.handler)
                attached.append(logger)
    for name in ("werkzeug", "sqlalchemy.engine", "sqlalchemy.pool", "urllib3", "flask_limiter"):
        caplog.set_level(logging.DEBUG, logger=name)
    yield caplog
    for logger in attached:
        logger.removeHandler(caplog.handler)


def cookie(client, name: str) -> str:
    found = client.get_cookie(name, domain="companion.test")
    assert found is not None, name
    return found.value


def run_the_whole_flow(app, client, make_clinic, make_therapist, make_api_key, push_service, now):
    """Everything a day of use does; returns the secrets it handled (name -> value)."""
    secrets: dict[str, str] = {}
    clinic = make_clinic(name="Harbour Physio")
    therapist = make_therapist(clinic)
    key = make_api_key(clinic)
    secrets["api key"] = key

    # The therapist signs in, turns on alerts on a phone, and records the visit.
    assert sign_in(client, therapist.email).status_code == 302
    secrets["session cookie"] = cookie(client, "session")
    phone = push_service.new_subscription()
    keys = phone.as_json()["keys"]
    save_device(
        db.session.get(Therapist, therapist.id),
        phone.endpoint,
        keys["p256dh"],
        keys["auth"],
        user_agent=None,
        language="en",
        now=now,
    )
    db.session.commit()
    form = client.get("/visits/new").get_data(as_text=True)
    recorded = client.post(
        "/visits/new",
        data={
            "csrf_token": csrf_from(form),
            "ref": "R-LEAK-1",
            "display_name": NAME,
            "timezone": "Europe/Madrid",
            "language": "en",
            "phone": PHONE_TYPED,
            "email": EMAIL,
            "performed_at": "2026-11-25T09:00",  # 08:00 UTC, two hours before `now`
            "regions": ["calf"],
            "insertions": "4",
        },
        follow_redirects=True,
    )
    assert recorded.status_code == 200
    page = recorded.get_data(as_text=True)
    token = re.search(r"/p/([A-Za-z0-9_-]{20,})", page)
    assert token, "the visit page shows the patient link"
    secrets["patient link token"] = token.group(1)
    visit_id = re.search(r"/visits/([0-9a-f-]{36})", recorded.request.path or "")
    assert visit_id
    visit_id_text = visit_id.group(1)

    # The patient opens the link on their phone, subscribes to push and checks in.
    patient = app.test_client()
    assert patient.get(f"/p/{secrets['patient link token']}").status_code == 303
    secrets["patient cookie"] = cookie(patient, "companion_patient")
    browser = push_service.new_subscription()
    assert patient.post("/api/v1/push-subscriptions", json=browser.as_json()).status_code == 201
    sent = patient.post(
        "/api/v1/checkins",
        json={
            "id": str(uuid.uuid4()),
            "recorded_at": now.isoformat(),
            "soreness": 8,
            "usual_pain": 3,
            "symptoms": ["breathless"],
            "helped": ["heat"],
            "note": NOTE,
        },
    )
    assert sent.status_code == 201 and sent.get_json()["triage"] == "red"
    assert NOTE in patient.get("/me/check-ins").get_data(as_text=True)
    reminders = patient.get("/me/reminders").get_data(as_text=True)
    feed = re.search(r"/calendar/([^\"'<>\s]+)\.ics", reminders)
    assert feed, "the reminders page offers the calendar feed"
    secrets["calendar token"] = feed.group(1)
    assert patient.get(f"/calendar/{secrets['calendar token']}.ics").status_code == 200
    assert patient.get("/me/nowhere").status_code == 404  # an error page, patient side
    assert patient.get("/p/not-a-real-link").status_code == 404

    # The worker: the red alert to the therapist's phone and mailbox, then the reminders.
    sender = webpush.make_sender(app)
    report = dispatch_once(app, now=now + timedelta(minutes=1), sender=sender)
    assert report.red_alerts == 1
    for hours in (20, 44, 70, 170):
        drain(app, now=now + timedelta(hours=hours), sender=sender)
    assert push_service.received, "the worker pushed to the phones"

    # The therapist reads everything and exports.
    for path in (
        "/",
        f"/visits/{visit_id_text}",
        "/patients",
        f"/api/v1/visits/{visit_id_text}/fhir",
        "/exports/checkins.csv?from=2026-11-24&to=2026-11-26",
        "/exports/checkins.csv?from=2026-11-24&to=2026-11-26&raw=1",
    ):
        answer = client.get(path)
        assert answer.status_code == 200, path
        assert NAME in answer.get_data(as_text=True) or path == "/", path
    secrets["session cookie (later)"] = cookie(client, "session")
    assert client.get("/visits/not-a-uuid").status_code == 404  # an error page
    assert client.post("/sign-out").status_code == 400  # no CSRF token

    # A clinic system with its key, good and bad requests.
    bearer = {"Authorization": f"Bearer {key}"}
    body = {
        "patient": {
            "ref": "R-LEAK-2",
            "display_name": NAME,
            "timezone": "Europe/Madrid",
            "language": "es",
            "phone": PHONE,
            "email": EMAIL,
        },
        "performed_at": (now - timedelta(hours=1)).isoformat(),
        "regions": ["calf"],
    }
    made = client.post("/api/v1/visits", json=body, headers=bearer)
    assert made.status_code == 201
    secrets["second patient link token"] = made.get_json()["patient_url"].rsplit("/p/", 1)[1]
    secrets["second calendar token"] = (
        urlsplit(made.get_json()["calendar_url"])
        .path.removeprefix("/calendar/")
        .removesuffix(".ics")
    )
    assert client.get("/api/v1/alerts", headers=bearer).status_code == 200
    csv = client.get("/api/v1/checkins.csv?from=2026-11-24&to=2026-11-26&raw=1", headers=bearer)
    assert NOTE in csv.get_data(as_text=True)
    bad_phone = {**body, "patient": {**body["patient"], "phone": f"{PHONE}x{NAME}"}}
    assert client.post("/api/v1/visits", json=bad_phone, headers=bearer).status_code == 422
    assert (
        client.post(
            "/api/v1/visits",
            data=f'{{"note": "{NOTE}"',
            content_type="application/json",
            headers=bearer,
        ).status_code
        == 400
    )
    nul = {**body, "patient": {**body["patient"], "display_name": f"{NAME}\u0000"}}
    assert client.post("/api/v1/visits", json=nul, headers=bearer).status_code == 400
    assert (
        client.get("/api/v1/alerts", headers={"Authorization": f"Bearer {key}x"}).status_code == 401
    )
    secrets.update(name=NAME, note=NOTE, scores=SCORES, phone=PHONE, email=EMAIL)
    secrets["phone as typed"] = PHONE_TYPED
    return secrets


def check_no_leaks(every_log, secrets: dict[str, str]) -> None:
    records = every_log.records
    names = {record.name for record in records}
    # The capture was live: the database, the worker and the web all logged at DEBUG or INFO.
    assert any(name.startswith("sqlalchemy.engine") for name in names), sorted(names)
    assert "companion.reminders.dispatch" in names, sorted(names)
    assert any(r.levelno == logging.DEBUG for r in records)
    found = leaks(records, secrets)
    assert found == [], "\n".join(found)


def test_a_whole_flow_logs_no_health_data_and_no_secret(
    app, client, make_clinic, make_therapist, make_api_key, push_service, every_log, now
):
    secrets = run_the_whole_flow(
        app, client, make_clinic, make_therapist, make_api_key, push_service, now
    )
    check_no_leaks(every_log, secrets)


@pytest.mark.postgres
def test_a_whole_flow_logs_no_health_data_and_no_secret_on_postgres(
    app, client, make_clinic, make_therapist, make_api_key, push_service, every_log, now
):
    secrets = run_the_whole_flow(
        app, client, make_clinic, make_therapist, make_api_key, push_service, now
    )
    check_no_leaks(every_log, secrets)
