"""The patient's Reminders page: calendar links, quiet hours (saved, validated, re-planned), "fully
recovered" and "start again", in English and Spanish, with CSRF; and what the service worker is
built with for notifications."""

from __future__ import annotations

import json
from datetime import datetime, time, timedelta
from html import unescape
from zoneinfo import ZoneInfo

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from companion.extensions import db
from companion.models import Patient, PatientLink, Reminder, Visit
from companion.patient.reminders import webcal
from companion.reminders.calendar import feed_url
from companion.reminders.planning import AFTER_2H, AFTER_48H, AFTER_72H, DAY_7, quiet_length

from .conftest import csrf_from
from .test_patient import open_link
from .test_pwa import build_of

# No daylight-saving time in Tokyo: "10:00 local" is the same UTC moment on every date, so the
# expected due times below are plain arithmetic.
ZONE = "Asia/Tokyo"
TOKYO = ZoneInfo(ZONE)


def local_morning(days_ago: int, now: datetime) -> datetime:
    """10:00 in Tokyo, `days_ago` days before `now`'s date there, as UTC."""
    today = now.astimezone(TOKYO).date()
    day = today - timedelta(days=days_ago)
    return datetime(day.year, day.month, day.day, 10, 0, tzinfo=TOKYO).astimezone(ZoneInfo("UTC"))


def reminders_of(visit: Visit) -> dict[str, Reminder]:
    db.session.expire_all()
    rows = db.session.scalars(select(Reminder).where(Reminder.visit_id == visit.id))
    return {row.kind: row for row in rows}


def local(moment: datetime) -> datetime:
    return moment.astimezone(TOKYO)


def readable(html: str) -> str:
    """The page as a reader sees it: entities decoded, Babel's narrow no-break space ("9:30 PM")
    as a plain space."""
    return unescape(html).replace("\u202f", " ")


def page(client: FlaskClient) -> str:
    response = client.get("/me/reminders")
    assert response.status_code == 200
    return readable(response.get_data(as_text=True))


def post_quiet(client: FlaskClient, start: str | None, end: str | None) -> tuple[int, str]:
    data = {"csrf_token": csrf_from(page(client))}
    if start is not None:
        data["start"] = start
    if end is not None:
        data["end"] = end
    response = client.post("/me/reminders/quiet-hours", data=data)
    return response.status_code, readable(response.get_data(as_text=True))


def post_action(client: FlaskClient, path: str) -> int:
    token = csrf_from(page(client))
    return client.post(path, data={"csrf_token": token}).status_code


# --- the page --------------------------------------------------------------------------------------


def test_the_reminders_page_offers_the_calendar_quiet_hours_and_recovered_without_javascript(
    app: Flask, client, make_clinic, make_visit
):
    visit = make_visit(make_clinic(), timezone="Europe/Madrid")
    open_link(client, visit)
    html = page(client)
    link = db.session.scalar(select(PatientLink).where(PatientLink.visit_id == visit.visit.id))
    with app.test_request_context():
        feed = feed_url(link)
    assert feed.startswith("http") and feed.endswith(".ics")
    # Subscribe (webcal://, opens the calendar app) and download (https) the same feed.
    assert f'href="{webcal(feed)}"' in html and webcal(feed).startswith("webcal://")
    assert f'href="{feed}"' in html
    # The clinic's default quiet hours, in the patient's locale, and the server forms.
    assert "Your clinic's usual quiet hours apply: from 9:30 PM to 8:00 AM." in html
    assert 'value="21:30"' in html and 'value="08:00"' in html
    assert 'action="/me/reminders/quiet-hours"' in html
    assert 'action="/me/reminders/recovered"' in html
    assert "I'm fully recovered, stop reminders" in html
    # Without scripts the push part says why it cannot work and points to the calendar.
    assert "needs JavaScript" in html
    # The push button exists for the script, hidden until it knows the state.
    assert 'id="push-on" class="primary" hidden' in html
    # The next reminders are listed (times in the patient's zone).
    assert html.count("<time datetime=") == len(
        [r for r in reminders_of(visit.visit).values() if r.status == "planned"]
    )


def test_the_guide_and_every_patient_page_link_to_the_reminders_page(patient_client):
    for path in ("/me/", "/me/check-in", "/me/check-ins"):
        html = patient_client.get(path).get_data(as_text=True)
        assert 'href="/me/reminders"' in html, path
    guide = patient_client.get("/me/").get_data(as_text=True)
    assert 'id="reminders-card"' in guide and "Set up reminders" in guide


def test_the_reminders_page_speaks_spanish(client, make_clinic, make_visit):
    open_link(client, make_visit(make_clinic(), language="es", timezone="Europe/Madrid"))
    html = page(client)
    assert '<html lang="es">' in html
    assert "<h1>Recordatorios</h1>" in html
    assert "Se aplican las horas de silencio habituales de tu clínica: de 21:30 a 8:00." in html
    assert "Estoy totalmente recuperado, parar los recordatorios" in html
    assert "Quiet hours" not in html and "Reminders on this phone" not in html
    # The script's texts come translated in the page data.
    data = json.loads(html.split('id="page-data">')[1].split("</script>")[0])
    assert data["strings"]["push_on"] == "Los recordatorios están activados en este teléfono."
    assert data["lang"] == "es"


def test_the_reminders_page_needs_the_patient_cookie(client, make_clinic, make_visit):
    response = client.get("/me/reminders")
    assert response.status_code == 401
    assert "This link does not work any more" in response.get_data(as_text=True)
    visit = make_visit(make_clinic())
    for path in ("/me/reminders/quiet-hours", "/me/reminders/recovered", "/me/reminders/resume"):
        assert client.post(path, data={"start": "09:00", "end": "12:00"}).status_code in (400, 401)
    assert visit.visit.recovered_at is None
    assert all(r.status == "planned" for r in reminders_of(visit.visit).values())


def test_the_reminders_page_is_never_cached(patient_client):
    response = patient_client.get("/me/reminders")
    assert response.headers["Cache-Control"] == "no-store"
    assert "unsafe-inline" not in response.headers["Content-Security-Policy"]


# --- quiet hours -----------------------------------------------------------------------------------


def test_saving_quiet_hours_stores_them_and_moves_the_planned_reminders_out_of_them(
    client, make_clinic, make_visit, now
):
    visit = make_visit(make_clinic(), timezone=ZONE, performed_at=local_morning(1, now))
    open_link(client, visit)
    before = reminders_of(visit.visit)
    # Planned from a 10:00 visit: 48 h, 72 h and a week later, all at 10:00 Tokyo time.
    for kind, days in ((AFTER_48H, 2), (AFTER_72H, 3), (DAY_7, 7)):
        assert local(before[kind].due_at).time() == time(10, 0)
        assert local(before[kind].due_at).date() == local(visit.visit.performed_at).date() + (
            timedelta(days=days)
        )

    response = client.post(
        "/me/reminders/quiet-hours",
        data={"csrf_token": csrf_from(page(client)), "start": "09:00", "end": "12:00"},
    )
    assert response.status_code == 303
    assert response.headers["Location"] == "/me/reminders#quiet-h"

    patient = db.session.get(Patient, visit.visit.patient_id)
    db.session.refresh(patient)
    assert (patient.quiet_start, patient.quiet_end) == (time(9, 0), time(12, 0))
    after = reminders_of(visit.visit)
    for kind in (AFTER_48H, AFTER_72H, DAY_7):
        # Deferred to the end of the new quiet hours on the same day, never dropped; same row.
        assert local(after[kind].due_at).time() == time(12, 0)
        assert local(after[kind].due_at).date() == local(before[kind].due_at).date()
        assert after[kind].id == before[kind].id and after[kind].status == "planned"
    html = page(client)
    assert "Quiet hours saved." in html
    assert "Your quiet hours: from 9:00 AM to 12:00 PM." in html
    assert "Use my clinic's usual quiet hours" in html


def test_quiet_hours_move_the_latest_visits_reminders_and_leave_earlier_ones_ended(
    client, make_clinic, make_visit, now
):
    clinic = make_clinic()
    earlier = make_visit(clinic, ref="P-7", timezone=ZONE, performed_at=local_morning(2, now))
    latest = make_visit(clinic, ref="P-7", timezone=ZONE, performed_at=local_morning(0, now))
    assert earlier.visit.patient_id == latest.visit.patient_id
    open_link(client, latest)
    assert post_quiet(client, "09:30", "11:00")[0] == 303
    assert local(reminders_of(latest.visit)[DAY_7].due_at).time() == time(11, 0)
    # The newer visit took over the reminders; new quiet hours do not bring the old ones back.
    assert reminders_of(earlier.visit)[DAY_7].status == "cancelled"


def test_the_clinics_quiet_hours_can_be_taken_back(client, make_clinic, make_visit, now):
    visit = make_visit(make_clinic(), timezone=ZONE, performed_at=local_morning(1, now))
    open_link(client, visit)
    assert post_quiet(client, "09:00", "12:00")[0] == 303
    assert post_action(client, "/me/reminders/quiet-hours/clinic") == 303
    patient = db.session.get(Patient, visit.visit.patient_id)
    db.session.refresh(patient)
    assert (patient.quiet_start, patient.quiet_end) == (None, None)
    assert local(reminders_of(visit.visit)[DAY_7].due_at).time() == time(10, 0)
    assert "Your clinic's usual quiet hours apply again." in page(client)


@pytest.mark.parametrize(
    ("start", "end", "message"),
    [
        (None, "07:00", "Escribe una hora, por ejemplo 22:00."),
        ("", "07:00", "Escribe una hora, por ejemplo 22:00."),
        ("22:00", "", "Escribe una hora, por ejemplo 07:30."),
        ("25:00", "07:00", "Escribe una hora, por ejemplo 22:00."),
        ("ten", "07:00", "Escribe una hora, por ejemplo 22:00."),
        ("22:00", "7", "Escribe una hora, por ejemplo 22:00."),
        ("22:00", "22:00", "Elige una hora de fin distinta de la hora de inicio."),
        ("08:00", "07:00", "pueden durar como mucho 14 horas"),
    ],
)
def test_bad_quiet_hours_are_refused_in_the_patients_language_and_change_nothing(
    start, end, message, client, make_clinic, make_visit, now
):
    visit = make_visit(
        make_clinic(), language="es", timezone=ZONE, performed_at=local_morning(1, now)
    )
    open_link(client, visit)
    before = {kind: row.due_at for kind, row in reminders_of(visit.visit).items()}
    status, html = post_quiet(client, start, end)
    assert status == 422
    assert message in html
    assert "Tus horas de silencio no han cambiado." in html
    assert 'aria-invalid="true"' in html
    patient = db.session.get(Patient, visit.visit.patient_id)
    db.session.refresh(patient)
    assert (patient.quiet_start, patient.quiet_end) == (None, None)
    assert {kind: row.due_at for kind, row in reminders_of(visit.visit).items()} == before


def test_quiet_hours_accept_seconds_and_wrap_midnight(client, make_clinic, make_visit, now):
    open_link(client, make_visit(make_clinic(), timezone=ZONE, performed_at=local_morning(1, now)))
    assert post_quiet(client, "23:15:00", "07:45")[0] == 303
    assert "from 11:15 PM to 7:45 AM" in page(client)


def test_quiet_hours_length_wraps_midnight():
    assert quiet_length(time(21, 30), time(8, 0)) == timedelta(hours=10, minutes=30)
    assert quiet_length(time(9, 0), time(12, 0)) == timedelta(hours=3)


def test_the_forms_need_their_csrf_token(client, make_clinic, make_visit, now):
    visit = make_visit(make_clinic(), timezone=ZONE, performed_at=local_morning(1, now))
    open_link(client, visit)
    page(client)  # the session has a CSRF token; the posts below leave it out
    before = {kind: row.due_at for kind, row in reminders_of(visit.visit).items()}
    quiet = client.post("/me/reminders/quiet-hours", data={"start": "09:00", "end": "12:00"})
    assert quiet.status_code == 400
    assert client.post("/me/reminders/recovered").status_code == 400
    assert client.post("/me/reminders/quiet-hours/clinic").status_code == 400
    forged = client.post("/me/reminders/recovered", data={"csrf_token": "forged"})
    assert forged.status_code == 400
    db.session.expire_all()
    assert db.session.get(Visit, visit.visit.id).recovered_at is None
    assert db.session.get(Patient, visit.visit.patient_id).quiet_start is None
    after = reminders_of(visit.visit)
    assert {kind: row.due_at for kind, row in after.items()} == before
    assert all(row.status == "planned" for row in after.values())


# --- fully recovered, and back ---------------------------------------------------------------------


def test_fully_recovered_stops_the_reminders_and_start_again_brings_back_those_still_ahead(
    client, make_clinic, make_visit, now
):
    performed = local_morning(2, now)
    # Recorded at the visit, so every reminder was stored; no worker ran since.
    visit = make_visit(make_clinic(), timezone=ZONE, performed_at=performed, now=performed)
    open_link(client, visit)
    assert len(reminders_of(visit.visit)) == 6

    assert post_action(client, "/me/reminders/recovered") == 303
    rows = reminders_of(visit.visit)
    assert {row.status for row in rows.values()} == {"cancelled"}
    assert db.session.get(Visit, visit.visit.id).recovered_at is not None
    html = page(client)
    assert "Reminders are stopped" in html and "Start reminders again" in html
    assert 'action="/me/reminders/recovered"' not in html
    assert "<time datetime=" not in html  # no "next reminders" while stopped
    assert "you told us you are fully recovered" in client.get("/me/").get_data(as_text=True)

    # Changing quiet hours while stopped keeps them stopped.
    assert post_quiet(client, "09:00", "12:00")[0] == 303
    assert {row.status for row in reminders_of(visit.visit).values()} == {"cancelled"}

    assert post_action(client, "/me/reminders/resume") == 303
    rows = reminders_of(visit.visit)
    assert db.session.get(Visit, visit.visit.id).recovered_at is None
    for kind, row in rows.items():
        # Back if still worth sending; a moment that passed while stopped stays unsent.
        assert row.status == ("planned" if row.expires_at > now else "expired"), kind
    assert rows[AFTER_2H].status == "expired"
    assert rows[AFTER_72H].status == rows[DAY_7].status == "planned"
    # The quiet hours saved while stopped apply to what came back.
    assert local(rows[DAY_7].due_at).time() == time(12, 0)
    html = page(client)
    assert "Reminders are on again for this visit." in html
    assert 'action="/me/reminders/recovered"' in html


def test_saying_recovered_twice_keeps_the_first_moment(client, make_clinic, make_visit):
    visit = make_visit(make_clinic())
    open_link(client, visit)
    assert post_action(client, "/me/reminders/recovered") == 303
    first = db.session.get(Visit, visit.visit.id).recovered_at
    assert post_action(client, "/me/reminders/recovered") == 303
    db.session.expire_all()
    assert db.session.get(Visit, visit.visit.id).recovered_at == first


# --- the service worker's notification texts ---------------------------------------------------


def test_the_service_worker_knows_a_neutral_notification_text_in_each_language(client):
    build = build_of(client.get("/sw.js").get_data(as_text=True))
    notice = build["notice"]
    assert set(notice) == {"en", "es"} and build["default_lang"] == "en"
    assert notice["en"] == {
        "title": "Aftercare reminder",
        "body": "You have a new aftercare reminder. Tap to open your guide.",
    }
    assert notice["es"]["title"] == "Recordatorio de cuidados"
    assert (
        notice["es"]["body"] == "Tienes un nuevo recordatorio de cuidados. Toca para abrir tu guía."
    )
    # A tap opens the guide, which the worker keeps for offline use: never a blank page.
    assert build["home"] == "/me/" and build["home"] in build["install_pages"]
    for image in (build["icon"], build["badge"]):
        response = client.get(image)
        assert response.status_code == 200 and response.data[:8] == b"\x89PNG\r\n\x1a\n"
    # The same worker for every language: a language switch must not look like a new release.
    english = client.get("/sw.js", headers={"Accept-Language": "en"}).get_data()
    spanish = client.get("/sw.js", headers={"Accept-Language": "es"}).get_data()
    assert english == spanish


def test_the_service_worker_includes_the_push_code(client):
    body = client.get("/sw.js").get_data(as_text=True)
    assert "root.Push = " in body
    assert body.index("root.Push = ") < body.index('addEventListener("push"')


def test_webcal_keeps_everything_but_the_scheme():
    assert webcal("https://a.example/calendar/x.ics") == "webcal://a.example/calendar/x.ics"
    assert (
        webcal("http://127.0.0.1:5000/calendar/x.ics") == "webcal://127.0.0.1:5000/calendar/x.ics"
    )


def test_turning_on_gives_up_after_20_seconds_and_says_so_in_the_patients_language(
    client, make_clinic, make_visit
):
    # The limit as the phone gets it (the browser test runs it on a test clock): 20 s, by name.
    script = client.get("/static/js/push-toggle.js").get_data(as_text=True)
    assert "var TURN_ON_LIMIT_MS = 20000;" in script
    assert "withinLimit(work, TURN_ON_LIMIT_MS)" in script
    # Its message, and the calendar offered after it, come translated in the page data.
    open_link(client, make_visit(make_clinic(), language="es"))
    html = page(client)
    data = json.loads(html.split('id="page-data">')[1].split("</script>")[0])
    assert data["strings"]["push_failed_timeout"] == (
        "No hubo respuesta a tiempo, así que dejamos de esperar."
    )
    assert data["strings"]["push_failed_hint"] == "Puedes añadir los recordatorios a tu calendario."
    assert 'href="#calendar-h"' in html
