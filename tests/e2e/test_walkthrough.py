"""The whole loop in a real browser: a therapist records a visit, the patient checks in from a
phone, the therapist sees the score."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from companion.auth import hash_password
from companion.extensions import db
from companion.models import Clinic, Therapist

from ..conftest import PASSWORD

pytestmark = pytest.mark.e2e


@pytest.fixture
def therapist_email(live_app) -> str:
    with live_app.app_context():
        clinic = Clinic(name="Harbour Physio", timezone="Europe/Madrid")
        db.session.add(clinic)
        db.session.flush()
        db.session.add(
            Therapist(
                clinic_id=clinic.id,
                email="lena@harbour.example",
                password_hash=hash_password(PASSWORD),
                role="admin",
            )
        )
        db.session.commit()
    return "lena@harbour.example"


def record_visit(
    page, base: str, email: str, *, language: str = "en", regions: tuple[str, ...] = ("calf",)
) -> str:
    page.goto(f"{base}/sign-in")
    page.get_by_label("E-mail").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Review queue")).to_be_visible()

    page.get_by_role("link", name="Record a visit").first.click()
    page.get_by_label("Patient reference").fill("HX-42")
    page.get_by_label("Name shown to the patient").fill("Jordan")
    page.get_by_label("Patient's time zone").fill("Europe/Madrid")
    page.get_by_label("Language").select_option(language)
    for region in regions:
        page.locator(f"input[name=regions][value={region}]").check()
    page.get_by_label("Number of insertions").fill("5")
    page.get_by_role("button", name="Save visit and show the patient link").click()
    expect(page.get_by_role("heading", name="Patient link")).to_be_visible()
    expect(page.locator(".qr svg")).to_be_visible()
    return page.get_by_role("textbox", name="Link").input_value()


def test_therapist_records_patient_checks_in_therapist_sees_the_score(
    browser, phone, live_server, therapist_email
):
    desk = browser.new_context().new_page()
    link = record_visit(desk, live_server, therapist_email)
    assert re.fullmatch(rf"{re.escape(live_server)}/p/[A-Za-z0-9_-]{{40,}}", link)

    phone.goto(link)
    assert phone.url == f"{live_server}/me/"  # the token is gone from the address bar
    expect(phone.get_by_role("heading", name="Hello Jordan")).to_be_visible()
    phone.get_by_role("link", name="How are you? Check in").click()
    phone.locator("fieldset.scale").first.get_by_text("6", exact=True).click()
    phone.get_by_text("Add more (optional)").click()  # what helped and the note are optional
    phone.get_by_label("Heat").check()
    phone.get_by_label("Anything else? (optional)").fill("Calf tight, walking helps")
    phone.get_by_role("button", name="Send").click()
    expect(phone.get_by_role("heading", name="Thank you, that looks as expected")).to_be_visible()
    # The result shows as soon as the entry is on the phone; the server's history has it once sent.
    expect(phone.locator("#checkin-state")).to_have_text("Sent to your clinic.")
    phone.get_by_role("link", name="See all my check-ins").click()
    expect(phone.locator(".history").get_by_text("Soreness 6 out of 10")).to_be_visible()

    desk.reload()
    expect(desk.locator("td.score")).to_have_text("6/10")
    expect(desk.get_by_text("Calf tight, walking helps")).to_be_visible()
    desk.get_by_role("link", name="Patients").click()
    expect(desk.get_by_text("soreness 6/10")).to_be_visible()
    desk.get_by_role("link", name="Review queue").click()
    expect(desk.get_by_text("Red flags: 0 · Look at today: 0 · On track: 1")).to_be_visible()
    expect(desk.locator("tr", has_text="Jordan")).to_contain_text("6 at 0 h")


def test_a_red_flag_shows_the_emergency_screen_in_the_patients_language(
    browser, phone, live_server, therapist_email
):
    desk = browser.new_context().new_page()
    link = record_visit(desk, live_server, therapist_email, language="es", regions=("upper_back",))
    phone.goto(link)
    expect(phone.locator("html")).to_have_attribute("lang", "es")
    phone.locator("a[href='/me/check-in']").first.click()
    phone.locator("input[name=red_flags][value=breathless]").check()
    phone.locator("fieldset.scale").first.get_by_text("1", exact=True).click()
    phone.locator("button[type=submit].primary").click()
    alert = phone.get_by_role("alert")
    expect(alert).to_be_visible()
    expect(alert.locator("a[href='tel:112']")).to_be_visible()
    assert "112" in alert.inner_text() and "Call" not in alert.inner_text()
