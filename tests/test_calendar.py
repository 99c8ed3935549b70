"""The calendar fallback: an iCalendar feed of a visit's reminders behind its own capability URL."""

from __future__ import annotations

import importlib.util
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import pytest
from flask_babel import force_locale
from icalendar import Calendar
from itsdangerous import URLSafeSerializer
from sqlalchemy import select

from companion.care.regions import BY_CODE as REGIONS
from companion.checkins.store import CheckInDetails, submit_checkin
from companion.extensions import db
from companion.models import Clinic, PatientLink, Reminder, Visit
from companion.reminders.calendar import build_feed, event_uid, feed_reminders, feed_token, feed_url
from companion.reminders.notices import NOTICES
from companion.reminders.planning import mark_recovered, replan
from companion.visits.record import (
    PatientDetails,
    VisitDetails,
    find_or_create_patient,
    record_visit,
)

ROOT = Path(__file__).resolve().parent.parent
# A fixed moment for domain tests: 08:00 UTC (09:00 in Madrid) on a plain Monday, far from DST.
FIXED_NOW = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


def second(moment: datetime) -> datetime:
    """iCalendar keeps whole seconds."""
    return moment.replace(microsecond=0)


def rows(visit: Visit) -> list[Reminder]:
    return list(
        db.session.scalars(
            select(Reminder).where(Reminder.visit_id == visit.id).order_by(Reminder.due_at)
        )
    )


def link_of(visit: Visit) -> PatientLink:
    return db.session.scalar(select(PatientLink).where(PatientLink.visit_id == visit.id))


def feed_path(link: PatientLink) -> str:
    return urlsplit(feed_url(link)).path


def parse(body: bytes) -> Calendar:
    return Calendar.from_ical(body)


def events_by_uid(calendar: Calendar) -> dict[str, object]:
    return {str(event["UID"]): event for event in calendar.walk("VEVENT")}


def domain_feed(visit: Visit, now: datetime = FIXED_NOW) -> bytes:
    return build_feed(visit, feed_reminders(visit), base_url="https://care.example", now=now)


@pytest.fixture
def fixed_visit(make_clinic, make_visit) -> Visit:
    """A visit at 10:00 Madrid time, recorded an hour before, so every reminder is still ahead."""
    return make_visit(
        make_clinic(), performed_at=FIXED_NOW + timedelta(hours=1), now=FIXED_NOW
    ).visit


# --- the feed over HTTP ---------------------------------------------------------------------------


def test_feed_has_one_event_with_one_alarm_per_reminder_at_its_utc_due_time(
    client, make_clinic, make_visit, now
):
    # 10:00 in Madrid an hour ago: no reminder merges with another or falls in quiet hours.
    assert now.astimezone(ZoneInfo("Europe/Madrid")).hour == 11
    visit = make_visit(
        make_clinic(), timezone="Europe/Madrid", performed_at=now - timedelta(hours=1), now=now
    ).visit
    planned = rows(visit)
    assert len(planned) >= 5  # the whole episode is ahead, so the comparison below means something

    response = client.get(feed_path(link_of(visit)))

    assert response.status_code == 200
    events = events_by_uid(parse(response.data))
    assert set(events) == {event_uid(r) for r in planned}
    for reminder in planned:
        event = events[event_uid(reminder)]
        assert event.start == second(reminder.due_at)
        assert event.start.utcoffset() == timedelta(0)
        alarms = event.walk("VALARM")
        assert len(alarms) == 1
        assert str(alarms[0]["ACTION"]) == "DISPLAY"
        assert alarms[0]["TRIGGER"].dt == timedelta(0)  # rings at the reminder's due time
        assert str(alarms[0]["DESCRIPTION"])


def test_feed_times_are_written_in_utc(client, make_clinic, make_visit, now):
    visit = make_visit(
        make_clinic(), timezone="America/New_York", performed_at=now - timedelta(hours=1), now=now
    ).visit
    text = client.get(feed_path(link_of(visit))).get_data(as_text=True)
    moments = [
        line for line in text.splitlines() if line.startswith(("DTSTART", "DTSTAMP", "LAST-MOD"))
    ]
    assert moments
    assert all(line.endswith("Z") and "TZID" not in line for line in moments)
    assert "VTIMEZONE" not in text


def test_feed_response_is_a_calendar_that_is_never_cached(client, make_clinic, make_visit):
    visit = make_visit(make_clinic()).visit
    response = client.get(feed_path(link_of(visit)))
    assert response.headers["Content-Type"] == "text/calendar; charset=utf-8"
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Content-Disposition"] == "inline; filename=aftercare.ics"
    # The strict headers of every response stay in place.
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_feed_tells_subscribed_calendars_to_refresh_hourly(client, make_clinic, make_visit):
    visit = make_visit(make_clinic()).visit
    response = client.get(feed_path(link_of(visit)))
    calendar = parse(response.data)
    assert str(calendar["VERSION"]) == "2.0"
    assert str(calendar["METHOD"]) == "PUBLISH"
    assert str(calendar["CALSCALE"]) == "GREGORIAN"
    assert str(calendar["PRODID"]).startswith("-//")
    assert str(calendar["X-WR-CALNAME"]) == "Aftercare reminder"
    text = response.get_data(as_text=True)
    assert "REFRESH-INTERVAL;VALUE=DURATION:PT1H" in text.splitlines()
    assert "X-PUBLISHED-TTL:PT1H" in text.splitlines()


def test_events_open_the_patient_page_of_their_notice(client, app, make_clinic, make_visit, now):
    app.config["PUBLIC_URL"] = "https://care.example"
    visit = make_visit(make_clinic(), performed_at=now - timedelta(hours=1), now=now).visit
    by_uid = {event_uid(r): r for r in rows(visit)}
    calendar = parse(client.get(feed_path(link_of(visit))).data)
    for event in calendar.walk("VEVENT"):
        page = "https://care.example" + NOTICES[by_uid[str(event["UID"])].kind].path
        assert str(event["URL"]) == page
        assert page in str(event["DESCRIPTION"])  # for calendar apps that hide URL


def test_a_revoked_link_ends_its_feed(client, make_clinic, make_visit, now):
    visit = make_visit(make_clinic()).visit
    link = link_of(visit)
    path = feed_path(link)
    assert client.get(path).status_code == 200
    link.revoked_at = now
    db.session.commit()
    response = client.get(path)
    assert response.status_code == 404
    assert b"VCALENDAR" not in response.data and b"revoked" not in response.data.lower()


def test_an_expired_link_ends_its_feed(client, make_clinic, make_visit, now):
    visit = make_visit(make_clinic()).visit
    link = link_of(visit)
    link.expires_at = now - timedelta(seconds=1)
    db.session.commit()
    assert client.get(feed_path(link)).status_code == 404


def test_tampered_forged_or_unknown_tokens_are_not_found(app, client, make_clinic, make_visit):
    visit = make_visit(make_clinic()).visit
    token = feed_token(link_of(visit))
    # A character inside the signature (the last one carries padding bits, so changing it may not
    # change the decoded bytes).
    flipped = token[:-5] + ("A" if token[-5] != "A" else "B") + token[-4:]
    other_key = URLSafeSerializer("not-our-secret", salt="calendar-feed").dumps(
        link_of(visit).id.hex
    )
    unknown = URLSafeSerializer(app.secret_key, salt="calendar-feed").dumps(uuid.uuid4().hex)
    # A patient-link-style signature (another salt) must not open the feed either.
    other_salt = URLSafeSerializer(app.secret_key, salt="patient-link").dumps(link_of(visit).id.hex)
    responses = [
        client.get(f"/calendar/{bad}.ics") for bad in (flipped, other_key, unknown, other_salt)
    ]
    assert [r.status_code for r in responses] == [404, 404, 404, 404]
    assert responses[0].data == responses[2].data  # bad signature and unknown link look the same
    assert client.get(f"/calendar/{token}.ics").status_code == 200


def test_the_patient_link_token_does_not_open_the_feed(client, make_clinic, make_visit):
    made = make_visit(make_clinic())
    assert client.get(f"/calendar/{made.token}.ics").status_code == 404


def test_feed_carries_no_patient_details(client, make_clinic, make_visit, now):
    made = make_visit(
        make_clinic(),
        ref="REF-77310",
        name="Zebediah Quixote",
        regions=["neck", "shoulder"],
        performed_at=now - timedelta(hours=1),
        now=now,
    )
    visit = made.visit
    visit.notes = "Clinic note: trigger point very irritable"
    submit_checkin(
        visit,
        CheckInDetails(
            client_id=uuid.uuid4(),
            recorded_at=now - timedelta(minutes=30),
            soreness=9,
            usual_pain=6,
            symptoms=[],
            helped=["heat"],
            note="ached badly after the gym",
        ),
        now=now,
    )
    db.session.commit()
    text = client.get(feed_path(link_of(visit))).get_data(as_text=True)
    assert "VEVENT" in text  # later reminders are still there to inspect
    lowered = text.lower()
    for secret in ("zebediah", "quixote", "ref-77310", "irritable", "ached badly", made.token):
        assert secret.lower() not in lowered
    for code in ("neck", "shoulder"):
        assert code not in lowered
        with force_locale("en"):
            assert str(REGIONS[code].label).lower() not in lowered
    for word in ("soreness", "score", "/10", "amber", "triage", "heat"):
        assert word not in lowered


def test_a_spanish_patient_gets_spanish_text(client, make_clinic, make_visit, now):
    visit = make_visit(
        make_clinic(), language="es", performed_at=now - timedelta(hours=1), now=now
    ).visit
    by_uid = {event_uid(r): r for r in rows(visit)}
    calendar = parse(client.get(feed_path(link_of(visit))).data)
    assert str(calendar["X-WR-CALNAME"]) == "Recordatorio de cuidados"
    for event in calendar.walk("VEVENT"):
        notice = NOTICES[by_uid[str(event["UID"])].kind]
        with force_locale("es"):
            body, title = str(notice.body), str(notice.title)
        with force_locale("en"):
            assert body != str(notice.body)  # the Spanish text really differs from the English one
        assert str(event["SUMMARY"]) == title
        assert str(event["DESCRIPTION"]).startswith(body)
        assert str(event.walk("VALARM")[0]["DESCRIPTION"]) == body


# --- re-planning and ended reminders (domain, explicit now) ---------------------------------------


def test_replan_moves_events_but_keeps_their_uids(fixed_visit):
    visit = fixed_visit
    before = events_by_uid(parse(domain_feed(visit)))
    assert set(before) == {event_uid(r) for r in rows(visit)}

    # The therapist corrects the visit time by an hour; the visit's edit time moves on too.
    edited_at = FIXED_NOW + timedelta(minutes=30)
    visit.performed_at = visit.performed_at + timedelta(hours=1)
    visit.updated_at = edited_at
    replan(visit, edited_at)
    db.session.commit()

    after = events_by_uid(parse(domain_feed(visit, edited_at)))
    assert set(after) == set(before)  # an update, not a second set of events
    moved = [uid for uid in after if after[uid].start != before[uid].start]
    assert len(moved) >= 4  # the elapsed moments all moved by the hour
    for reminder in rows(visit):
        event = after[event_uid(reminder)]
        assert event.start == second(reminder.due_at)
        assert event["LAST-MODIFIED"].dt == edited_at
    for uid in moved:
        assert after[uid].start - before[uid].start == timedelta(hours=1)
        assert int(after[uid]["SEQUENCE"]) > int(before[uid]["SEQUENCE"])


def test_answered_cancelled_and_skipped_reminders_leave_the_feed(fixed_visit):
    visit = fixed_visit
    reminders = rows(visit)
    statuses = ["answered", "cancelled", "skipped", "sent", "expired", "failed"]
    for reminder, status in zip(reminders, statuses, strict=False):
        reminder.status = status
    db.session.commit()

    uids = set(events_by_uid(parse(domain_feed(visit))))

    kept = {event_uid(r) for r in reminders if r.status not in ("answered", "cancelled", "skipped")}
    assert uids == kept
    assert len(kept) == len(reminders) - 3


def test_fully_recovered_empties_the_feed_of_reminders_still_ahead(fixed_visit):
    visit = fixed_visit
    first = rows(visit)[0]
    first.status = "sent"  # already went out: it stays as a past moment
    mark_recovered(visit, FIXED_NOW + timedelta(hours=4))
    db.session.commit()

    events = events_by_uid(parse(domain_feed(visit)))

    assert set(events) == {event_uid(first)}


def test_dtstamp_is_the_moment_the_feed_was_made(fixed_visit):
    moment = FIXED_NOW + timedelta(hours=5, minutes=7)
    calendar = parse(domain_feed(fixed_visit, moment))
    stamps = {event["DTSTAMP"].dt for event in calendar.walk("VEVENT")}
    assert stamps == {moment}


# --- the API and the rate limit -------------------------------------------------------------------


def test_creating_a_visit_returns_a_calendar_url_that_serves_the_feed(
    client, app, make_clinic, make_api_key, now
):
    app.config["PUBLIC_URL"] = "https://care.example"
    key = make_api_key(make_clinic())
    body = {
        "patient": {
            "ref": "P-9",
            "display_name": "Ana",
            "timezone": "Europe/Madrid",
            "language": "es",
        },
        "performed_at": (now - timedelta(hours=1)).isoformat(),
        "regions": ["neck"],
    }
    response = client.post("/api/v1/visits", json=body, headers={"Authorization": f"Bearer {key}"})
    assert response.status_code == 201
    data = response.get_json()
    calendar_url = urlsplit(data["calendar_url"])
    assert (calendar_url.scheme, calendar_url.netloc) == ("https", "care.example")
    assert calendar_url.path.startswith("/calendar/") and calendar_url.path.endswith(".ics")
    patient_token = data["patient_url"].rsplit("/p/", 1)[1]
    assert patient_token not in data["calendar_url"]  # a capability of its own

    feed = client.get(calendar_url.path)

    assert feed.status_code == 200
    visit = db.session.get(Visit, uuid.UUID(data["visit_id"]))
    assert set(events_by_uid(parse(feed.data))) == {event_uid(r) for r in rows(visit)}
    schema = client.get("/api/v1/openapi.json").get_json()["components"]["schemas"]
    assert "calendar_url" in schema["VisitCreated"]["required"]


def test_the_feed_is_rate_limited_per_feed_not_per_address(tmp_path, now):
    from .conftest import build_app

    app = build_app(tmp_path, RATELIMIT_ENABLED=True, CALENDAR_RATE_LIMIT="2 per minute")
    client = app.test_client()
    with app.app_context():
        clinic = Clinic(name="Rate clinic", timezone="Europe/Madrid")
        db.session.add(clinic)
        paths = []
        for ref in ("A", "B"):
            patient = find_or_create_patient(
                clinic, PatientDetails(ref, "X", "Europe/Madrid", "en")
            )
            _, issued = record_visit(
                clinic,
                patient,
                VisitDetails(performed_at=now, regions=["calf"]),
                therapist_id=None,
                link_days=7,
                now=now,
            )
            paths.append(feed_path(issued.link))
        db.session.commit()
        first = [client.get(paths[0]).status_code for _ in range(3)]
        second = client.get(paths[1]).status_code
        db.session.remove()
        db.engine.dispose()
    assert first == [200, 200, 429]
    assert second == 200  # the same address, another feed: not blocked


# --- access log -----------------------------------------------------------------------------------


def gunicorn_conf() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gunicorn_conf", ROOT / "gunicorn.conf.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (
            "GET /calendar/ab-C_9.Xy-z.ics HTTP/1.1",
            "GET /calendar/[redacted].ics HTTP/1.1",
        ),
        ("GET /calendar/ab.cd.ics?x=1 HTTP/1.1", "GET /calendar/[redacted].ics?x=1 HTTP/1.1"),
        ("/calendar/ab.cd", "/calendar/[redacted]"),  # a mistyped feed URL leaks nothing either
        ("https://h.example/p/tok-EN_123", "https://h.example/p/[redacted]"),
        ("GET /me/check-in HTTP/1.1", "GET /me/check-in HTTP/1.1"),
    ],
)
def test_access_log_redacts_capability_tokens(line, expected):
    assert gunicorn_conf().redact(line) == expected


def test_access_log_atoms_have_the_calendar_token_redacted(app, make_clinic, make_visit):
    from gunicorn.config import Config

    conf = gunicorn_conf()
    token = feed_token(link_of(make_visit(make_clinic()).visit))
    logger = conf.RedactingLogger(Config())

    class Resp:
        status = "200 OK"
        headers = [("Content-Type", "text/calendar")]
        response_length = 10
        sent = 10

    class Req:
        headers = [("USER-AGENT", "cal")]

    environ = {
        "REQUEST_METHOD": "GET",
        "RAW_URI": f"/calendar/{token}.ics",
        "PATH_INFO": f"/calendar/{token}.ics",
        "QUERY_STRING": "",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "HTTP_REFERER": f"https://x.example/calendar/{token}.ics",
    }
    atoms = logger.atoms(Resp(), Req(), environ, timedelta(milliseconds=3))
    assert token not in " ".join(str(v) for v in atoms.values())
    assert atoms["r"] == "GET /calendar/[redacted].ics HTTP/1.1"
