"""Opening hours where people see them: the clinic's settings page, and what the patient's red
screen says will happen next (care/hours.py decides open, closed or unknown)."""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, datetime
from html import unescape

import pytest
from sqlalchemy import select

from companion.extensions import db
from companion.models import AuditEvent

from .conftest import csrf_from, sign_in
from .test_patient import form_data

SETTINGS = "/settings/clinic"
HOURS = "/settings/clinic/hours"


@pytest.fixture
def admin(client, make_clinic, make_therapist, now):
    clinic = make_clinic(timezone="Europe/Madrid")
    therapist = make_therapist(clinic)
    sign_in(client, therapist.email)
    return client, clinic


def hours_form(client, **days: tuple[str, ...]) -> dict[str, str]:
    """The opening-hours form as the page sends it; `mon=("08:00", "14:00", "16:00", "20:00")`."""
    data = {"csrf_token": csrf_from(client.get(SETTINGS).get_data(as_text=True))}
    names = ("opens", "closes", "opens_again", "closes_again")
    for i, day in enumerate(("mon", "tue", "wed", "thu", "fri", "sat", "sun")):
        times = days.get(day, ())
        for name, value in zip(names, times + ("",) * (4 - len(times)), strict=True):
            data[f"days-{i}-{name}"] = value
    return data


def test_the_settings_page_shows_the_hours_in_the_clinics_zone(admin):
    client, clinic = admin
    clinic.opening_hours = {"mon": [["08:00", "14:00"], ["16:00", "24:00"]]}
    db.session.commit()
    html = client.get(SETTINGS).get_data(as_text=True)
    assert "Opening hours" in html and "Europe/Madrid" in html
    assert 'name="days-0-opens" type="time" value="08:00"' in html
    assert 'name="days-0-closes_again" type="time" value="00:00"' in html  # midnight
    assert 'name="days-1-opens" type="time" value=""' in html
    assert "No opening hours yet" not in html


BOTH_DATABASES = pytest.mark.parametrize(
    "database", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)


@BOTH_DATABASES
def test_saving_the_hours_stores_them_and_audits_the_change(admin, database):
    client, clinic = admin
    assert db.session.get_bind().dialect.name == database
    assert "No opening hours yet" in client.get(SETTINGS).get_data(as_text=True)
    data = hours_form(
        client,
        mon=("08:00", "14:00", "16:00", "20:00"),
        fri=("08:00", "00:00"),
        sat=("09:00", "13:00"),
    )
    response = client.post(HOURS, data=data)
    assert response.status_code == 303
    assert response.headers["Location"].endswith("/settings/clinic?saved=1#hours-h")
    db.session.refresh(clinic)
    assert clinic.opening_hours == {
        "mon": [["08:00", "14:00"], ["16:00", "20:00"]],
        "fri": [["08:00", "24:00"]],
        "sat": [["09:00", "13:00"]],
    }
    events = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "clinic.settings"))
    assert [e.detail for e in events] == [{"changed": "opening_hours"}]
    # The same hours again: nothing changed, nothing more to audit.
    assert client.post(HOURS, data=data).status_code == 303
    assert (
        db.session.scalar(
            select(db.func.count())
            .select_from(AuditEvent)
            .where(AuditEvent.action == "clinic.settings")
        )
        == 1
    )


def test_an_empty_week_means_no_hours_set(admin):
    client, clinic = admin
    clinic.opening_hours = {"mon": [["08:00", "20:00"]]}
    db.session.commit()
    assert client.post(HOURS, data=hours_form(client)).status_code == 303
    db.session.refresh(clinic)
    assert clinic.opening_hours is None


@pytest.mark.parametrize(
    ("times", "message"),
    [
        (("08:00", ""), "Give both an opening and a closing time, or neither."),
        (("20:00", "08:00"), "Choose a closing time after the opening time."),
        (("08:00", "08:00"), "Choose a closing time after the opening time."),
        (
            ("08:00", "14:00", "13:00", "20:00"),
            "Opening again must come after the first closing time.",
        ),
        (("", "", "16:00", "20:00"), "Fill in the first hours before the second."),
        (("8 o'clock", "14:00"), "Enter a time such as 22:00."),
    ],
)
def test_bad_hours_get_a_message_on_the_page_and_change_nothing(admin, times, message):
    client, clinic = admin
    clinic.opening_hours = {"tue": [["09:00", "17:00"]]}
    db.session.commit()
    response = client.post(HOURS, data=hours_form(client, wed=times))
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert message in html
    assert (
        'name="episode_days" required type="number" value="7"' in html
    )  # the rest of the page is intact
    db.session.refresh(clinic)
    assert clinic.opening_hours == {"tue": [["09:00", "17:00"]]}


def test_a_day_with_more_intervals_than_the_page_shows_is_kept_on_save(admin):
    client, clinic = admin
    clinic.opening_hours = {"mon": [["08:00", "10:00"], ["12:00", "14:00"], ["16:00", "20:00"]]}
    db.session.commit()
    html = client.get(SETTINGS).get_data(as_text=True)
    assert "08:00–10:00, 12:00–14:00, 16:00–20:00" in html
    assert 'name="days-0-opens"' not in html
    assert client.post(HOURS, data=hours_form(client, tue=("09:00", "13:00"))).status_code == 303
    db.session.refresh(clinic)
    assert clinic.opening_hours == {
        "mon": [["08:00", "10:00"], ["12:00", "14:00"], ["16:00", "20:00"]],
        "tue": [["09:00", "13:00"]],
    }


def test_the_hours_form_needs_its_csrf_token(admin):
    client, clinic = admin
    data = hours_form(client, mon=("08:00", "20:00"))
    del data["csrf_token"]
    assert client.post(HOURS, data=data).status_code in (400, 422)
    db.session.refresh(clinic)
    assert clinic.opening_hours is None


# --- the patient's red screen -----------------------------------------------------------------------

WEEKDAYS = {day: [["08:00", "20:00"]] for day in ("mon", "tue", "wed", "thu", "fri")}
# Sunday 29 November 2026, 23:00 in Madrid: the clinic opens on Monday at 08:00 (07:00 UTC).
SUNDAY_NIGHT = datetime(2026, 11, 29, 22, 0, tzinfo=UTC)
OPEN_TEXT = "Your clinic has been told."
UNKNOWN_TEXT = "Your clinic will see this the next time someone there checks. If you are worried, call 112 now."
OFFLINE_TEXT = (
    "This will reach your clinic when your phone is back online. Do not wait: call 112 now."
)


def next_step(html: str) -> str:
    """The red screen's last line, as the patient reads it."""
    match = re.search(r'<p id="result-red-next">(.*?)</p>', html, re.S)
    assert match, "the page has no red screen"
    return unescape(match.group(1)).replace("\u202f", " ").strip()


def reachable(app, clinic) -> None:
    """A red flag of the clinic reaches somebody: an on-call address, and e-mail on."""
    app.config["MAIL_SERVER"] = "127.0.0.1"  # nothing is sent here: it only has to be set up
    clinic.oncall_email = "duty@clinic.example"


@pytest.fixture
def red_result(app, client, make_clinic, make_visit):
    """The server's result page of a red check-in sent without JavaScript, at the clock's moment.
    `reach`: whether a red flag of the clinic would reach anybody (readiness)."""

    def send(
        hours, *, language: str = "en", timezone: str = "Europe/Madrid", reach: bool = True
    ) -> str:
        clinic = make_clinic(timezone="Europe/Madrid")
        clinic.opening_hours = hours
        if reach:
            reachable(app, clinic)
        db.session.commit()
        assert (
            client.get(make_visit(clinic, language=language, timezone=timezone).url).status_code
            == 303
        )
        data = form_data(client, soreness="1", red_flags=["chest_pain"])
        response = client.post("/me/check-in", data=data)
        assert response.status_code == 303
        return client.get(response.headers["Location"]).get_data(as_text=True)

    return send


def test_during_opening_hours_the_red_screen_says_the_clinic_has_been_told(red_result, now):
    page = red_result(WEEKDAYS)  # Wednesday 11:00 in Madrid
    assert next_step(page) == OPEN_TEXT
    assert "as soon as this check-in reaches it" not in page


def test_outside_opening_hours_it_says_when_the_clinic_will_see_it(red_result, now, time_machine):
    time_machine.move_to(SUNDAY_NIGHT)
    assert next_step(red_result(WEEKDAYS)) == (
        "Your clinic is closed now and will see this at 8:00 AM on Monday, November 30. "
        "If you are worried, call 112 now."
    )


def test_the_opening_time_is_in_the_patients_own_zone(red_result, now, time_machine):
    time_machine.move_to(SUNDAY_NIGHT)
    # Monday 08:00 in Madrid is 02:00 in New York.
    assert "at 2:00 AM on Monday, November 30." in next_step(
        red_result(WEEKDAYS, timezone="America/New_York")
    )


def test_the_red_screen_says_it_in_spanish(red_result, now, time_machine):
    assert next_step(red_result(WEEKDAYS, language="es")) == "Tu clínica ya está avisada."
    time_machine.move_to(SUNDAY_NIGHT)
    assert next_step(red_result(WEEKDAYS, language="es")) == (
        "Tu clínica está cerrada ahora y verá esto el lunes 30 de noviembre a las 8:00. "
        "Si te preocupa, llama al 112 ahora."
    )
    assert next_step(red_result(None, language="es")) == (
        "Tu clínica verá esto la próxima vez que alguien lo revise. Si te preocupa, llama al 112 "
        "ahora."
    )


def test_open_but_reaching_nobody_it_does_not_say_the_clinic_has_been_told(red_result, now):
    # No device with alerts on, no e-mail, no on-call contact: nobody hears of it until someone
    # opens the queue, so "has been told" would be false comfort.
    assert next_step(red_result(WEEKDAYS, reach=False)) == UNKNOWN_TEXT


@pytest.mark.parametrize("hours", [None, {}], ids=["never-set", "no-open-day"])
def test_without_opening_hours_it_never_claims_open_or_a_time(red_result, now, hours):
    page = red_result(hours)
    assert next_step(page) == UNKNOWN_TEXT
    assert OPEN_TEXT not in page and "closed now" not in page


def test_the_checkin_page_starts_offline_and_brings_every_sentence(
    client, make_clinic, make_visit, now, time_machine
):
    time_machine.move_to(SUNDAY_NIGHT)
    clinic = make_clinic(timezone="Europe/Madrid")
    clinic.opening_hours = WEEKDAYS
    db.session.commit()
    client.get(make_visit(clinic).url)
    html = client.get("/me/check-in").get_data(as_text=True)
    assert next_step(html) == OFFLINE_TEXT
    data = json.loads(re.search(r'id="page-data">(.*?)</script>', html).group(1))
    sentences = data["red_next"]
    assert (sentences["offline"], sentences["open"], sentences["unknown"]) == (
        OFFLINE_TEXT,
        OPEN_TEXT,
        UNKNOWN_TEXT,
    )
    closed = dict(sentences["closed"])
    assert len(closed) == 5  # Monday to Friday of the coming week
    assert (
        closed["2026-11-30T07:00:00Z"]
        .replace("\u202f", " ")
        .startswith(
            "Your clinic is closed now and will see this at 8:00 AM on Monday, November 30."
        )
    )


@BOTH_DATABASES
def test_the_checkin_answer_says_whether_the_clinic_is_open(
    app, client, make_clinic, make_visit, now, time_machine, database
):
    assert db.session.get_bind().dialect.name == database
    clinic = make_clinic(timezone="Europe/Madrid")
    clinic.opening_hours = WEEKDAYS
    reachable(app, clinic)
    db.session.commit()

    def send(moment: datetime) -> dict:
        time_machine.move_to(moment)
        client.get(make_visit(clinic).url)
        body = {"id": str(uuid.uuid4()), "recorded_at": moment.isoformat(), "soreness": 2}
        response = client.post("/api/v1/checkins", json=body)
        assert response.status_code == 201, response.get_json()
        return response.get_json()["clinic"]

    assert send(now) == {"status": "open", "opens_at": None}
    assert send(SUNDAY_NIGHT) == {"status": "closed", "opens_at": "2026-11-30T07:00:00Z"}
    app.config["MAIL_SERVER"] = None  # now a red flag would reach nobody: not "open"
    assert send(now) == {"status": "unknown", "opens_at": None}
    clinic.opening_hours = None
    db.session.commit()
    assert send(SUNDAY_NIGHT) == {"status": "unknown", "opens_at": None}
