"""The day-7 global impression of change in the browser: checkin.js sends it through the outbox,
online and offline, and the check-in page that asks it passes axe in English and Spanish.

Like the other browser tests, these run on the real clock (the `now` fixture cannot pin the
browser's: chromium judges the patient cookie's expiry by the machine's time). Every moment is
relative to it, so no test depends on the date or the hour."""

from __future__ import annotations

from datetime import timedelta

import pytest
from playwright.sync_api import expect

from companion.extensions import db
from companion.models import Visit
from companion.timeutil import utcnow

from .conftest import stored_checkins
from .test_accessibility import axe_page, axe_violations  # noqa: F401 (a fixture)
from .test_pwa import go_online_first, lose_network

pytestmark = pytest.mark.e2e

WEEK = 7 * 24


def answer_day_7(page, base: str) -> None:
    page.goto(base + "/me/check-in")
    question = page.get_by_role("group", name="Compared with before this visit")
    expect(question).to_be_visible()
    page.locator('label[for="soreness-1"]').click()
    question.get_by_label("Much better", exact=True).check()
    page.locator("#checkin-form button[type=submit]").click()


@pytest.mark.parametrize("online", [True, False], ids=["online", "offline"])
def test_the_day_7_answer_goes_through_the_outbox(online, phone, server, live_app, patient_visit):
    visit = patient_visit(hours_ago=WEEK)
    go_online_first(phone, server.url, visit.link_path)
    if not online:
        lose_network(phone, server)

    answer_day_7(phone, server.url)

    if online:
        expect(phone.locator("#checkin-state")).to_have_text("Sent to your clinic.")
        [stored] = stored_checkins(live_app, visit.visit_id)
        assert (stored.soreness, stored.pgic) == (1, 2)
    else:
        expect(phone.locator("#checkin-state")).to_contain_text("Saved on this phone")
        [entry] = phone.evaluate("() => Outbox.list()")
        assert entry["body"]["pgic"] == 2


def test_no_question_on_the_first_days(phone, server, patient_visit):
    visit = patient_visit(hours_ago=26)
    phone.goto(server.url + visit.link_path)
    phone.goto(server.url + "/me/check-in")
    expect(phone.locator("#checkin-form")).to_be_visible()
    expect(phone.locator('input[name="pgic"]')).to_have_count(0)


@pytest.mark.parametrize("language", ["en", "es"])
def test_the_page_that_asks_it_passes_axe(language, axe_page, server, patient_visit):  # noqa: F811
    visit = patient_visit(language=language, hours_ago=WEEK)
    axe_page.goto(server.url + visit.link_path)
    axe_page.goto(server.url + "/me/check-in")
    expect(axe_page.locator("fieldset.pgic legend")).to_be_visible()

    assert axe_violations(axe_page) == []


def test_a_red_flag_still_goes_when_the_server_refuses_the_day_7_answer(
    phone, server, live_app, patient_visit
):
    """The page asked the day-7 question, then the clinic moved the visit's time to two days ago:
    the server refuses the answer as too early. The entry, red flag included, is sent again
    without it rather than kept on the phone."""
    visit = patient_visit(hours_ago=WEEK)
    go_online_first(phone, server.url, visit.link_path)
    phone.goto(server.url + "/me/check-in")
    expect(phone.get_by_role("group", name="Compared with before this visit")).to_be_visible()
    with live_app.app_context():
        db.session.get(Visit, visit.visit_id).performed_at = utcnow() - timedelta(days=2)
        db.session.commit()

    phone.locator('input[name="red_flags"][value="breathless"]').check()
    phone.locator('label[for="soreness-1"]').click()
    phone.get_by_label("Much better", exact=True).check()
    phone.locator("#checkin-form button[type=submit]").click()

    expect(phone.locator("#checkin-state")).to_have_text("Sent to your clinic.")
    [stored] = stored_checkins(live_app, visit.visit_id)
    assert (stored.pgic, stored.symptoms, stored.triage) == (None, ["breathless"], "red")
    assert phone.evaluate("() => Outbox.list()") == []
