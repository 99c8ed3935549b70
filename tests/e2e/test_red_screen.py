"""The red screen says what happens next, honestly, in a real browser on a phone (issue 12): the
clinic has been told while it is open; when closed, when it will see the check-in; while the
check-in waits on the phone, that nothing has reached anyone yet. In English and Spanish.

These run on the real clock, so the clinic's hours are chosen around it: open all week for "open",
one hour on the day three days ahead for "closed" (closed now whatever the time)."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from babel.dates import format_datetime, format_time
from playwright.sync_api import expect

from companion.care.hours import DAYS
from companion.extensions import db
from companion.models import Visit
from companion.timeutil import utcnow, wall_clock_to_utc

from .conftest import stored_checkins
from .test_pwa import check_in, go_online_first, lose_network

pytestmark = pytest.mark.e2e

PATIENT_ZONE = ZoneInfo("Europe/Madrid")  # the patient_visit fixture's
CLINIC_ZONE = "UTC"  # the patient_visit fixture's clinic keeps the default zone
ALWAYS_OPEN = {day: [["00:00", "24:00"]] for day in DAYS}
OPEN = {"en": "Your clinic has been told.", "es": "Tu clínica ya está avisada."}
OFFLINE = {
    "en": "This will reach your clinic when your phone is back online. Do not wait: call 112 now.",
    "es": "Esto llegará a tu clínica cuando tu teléfono vuelva a tener conexión. No esperes: "
    "llama al 112 ahora.",
}


def closed_in_three_days() -> tuple[dict[str, list[list[str]]], datetime]:
    """Hours with one opening, 10:00-11:00 three days from now, and that opening (UTC)."""
    day = utcnow().astimezone(ZoneInfo(CLINIC_ZONE)).date() + timedelta(days=3)
    opens = wall_clock_to_utc(day, time(10, 0), CLINIC_ZONE)
    return {DAYS[day.weekday()]: [["10:00", "11:00"]]}, opens


def closed_text(language: str, opens: datetime) -> str:
    """What the patient should read: the opening in their own zone and language (babel, as the
    server formats it)."""
    clock = format_time(opens, "short", tzinfo=PATIENT_ZONE, locale=language)
    pattern = {"en": "EEEE, MMMM d", "es": "EEEE d 'de' MMMM"}[language]
    day = format_datetime(opens, pattern, tzinfo=PATIENT_ZONE, locale=language)
    if language == "es":
        return (
            f"Tu clínica está cerrada ahora y verá esto el {day} a las {clock}. "
            "Si te preocupa, llama al 112 ahora."
        )
    return (
        f"Your clinic is closed now and will see this at {clock} on {day}. "
        "If you are worried, call 112 now."
    )


def set_hours(live_app, visit_id, hours) -> None:
    """The clinic's hours, and an on-call address with e-mail set up, so a red flag reaches
    somebody (otherwise the screen never says the clinic has been told)."""
    live_app.config["MAIL_SERVER"] = "127.0.0.1"  # nothing is sent: no worker runs here
    with live_app.app_context():
        clinic = db.session.get(Visit, visit_id).clinic
        clinic.opening_hours = hours
        clinic.oncall_email = "duty@clinic.example"
        db.session.commit()


def send_a_red_flag(phone) -> None:
    check_in(phone, soreness=1, red_flags=("breathless",))
    expect(phone.locator("#result-red")).to_be_visible()


@pytest.mark.parametrize("language", ["en", "es"])
def test_while_the_clinic_is_open_the_red_screen_says_it_has_been_told(
    language, phone, server, live_app, patient_visit
):
    visit = patient_visit(language=language)
    set_hours(live_app, visit.visit_id, ALWAYS_OPEN)
    phone.goto(server.url + visit.link_path)
    phone.goto(server.url + "/me/check-in")
    send_a_red_flag(phone)
    expect(phone.locator("#result-red-next")).to_have_text(OPEN[language])
    [stored] = stored_checkins(live_app, visit.visit_id)
    assert stored.triage == "red"


@pytest.mark.parametrize("language", ["en", "es"])
def test_while_the_clinic_is_closed_it_says_when_the_clinic_will_see_it(
    language, phone, server, live_app, patient_visit
):
    visit = patient_visit(language=language)
    hours, opens = closed_in_three_days()
    set_hours(live_app, visit.visit_id, hours)
    phone.goto(server.url + visit.link_path)
    phone.goto(server.url + "/me/check-in")
    send_a_red_flag(phone)
    line = phone.locator("#result-red-next")
    expect(line).to_have_text(closed_text(language, opens))
    assert "told" not in line.inner_text()


@pytest.mark.parametrize("language", ["en", "es"])
def test_offline_it_says_nothing_has_reached_the_clinic_until_the_phone_sends_it(
    language, phone, server, live_app, patient_visit
):
    visit = patient_visit(language=language)
    hours, opens = closed_in_three_days()
    set_hours(live_app, visit.visit_id, hours)  # before the page is kept for offline use
    go_online_first(phone, server.url, visit.link_path)
    lose_network(phone, server)
    phone.goto(server.url + "/me/check-in")
    send_a_red_flag(phone)
    line = phone.locator("#result-red-next")
    expect(line).to_have_text(OFFLINE[language])
    expect(phone.get_by_role("alert").locator('a[href="tel:112"]')).to_be_visible()

    # Back online: the outbox is sent and the line says what the clinic will do with it.
    server.start()
    phone.context.set_offline(False)
    expect(line).to_have_text(closed_text(language, opens))
    assert [c.triage for c in stored_checkins(live_app, visit.visit_id)] == ["red"]
