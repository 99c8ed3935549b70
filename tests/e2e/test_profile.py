"""The clinic profile and API keys pages in chromium (issue 13): the logo upload refuses SVG and
files over 200 KB and shows an accepted PNG on the profile page and in the patient app's header;
axe finds nothing on either page, in English and Spanish, with no English left on a Spanish page."""

from __future__ import annotations

import io
import os
import re
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from PIL import Image
from playwright.sync_api import expect

from companion.auth import hash_password
from companion.extensions import db
from companion.models import Clinic, Therapist
from companion.timeutil import utcnow
from companion.visits.record import (
    PatientDetails,
    VisitDetails,
    find_or_create_patient,
    record_visit,
)

from ..conftest import PASSWORD
from .conftest import PHONE
from .test_accessibility import AXE, axe_violations, english_fragments

pytestmark = pytest.mark.e2e

EMAIL = "ada@harbour.example"
SVG = (
    b'<svg xmlns="http://www.w3.org/2000/svg" width="40" height="40">'
    b'<script>alert(1)</script><circle cx="20" cy="20" r="18" fill="teal"/></svg>'
)


@pytest.fixture
def clinic_with_patient(live_app: Flask) -> str:
    """An admin of a clinic with a phone number, and one patient's link (returned)."""
    now = utcnow()
    with live_app.app_context():
        clinic = Clinic(name="Harbour Physio", timezone="Europe/Madrid", phone="+34612345678")
        db.session.add(clinic)
        db.session.flush()
        db.session.add(
            Therapist(
                clinic_id=clinic.id,
                email=EMAIL,
                password_hash=hash_password(PASSWORD),
                role="admin",
            )
        )
        patient = find_or_create_patient(
            clinic, PatientDetails("P-1", "Robin", "Europe/Madrid", "en")
        )
        _, issued = record_visit(
            clinic,
            patient,
            VisitDetails(performed_at=now - timedelta(hours=3), regions=["neck"]),
            therapist_id=None,
            link_days=7,
            now=now,
        )
        db.session.commit()
        db.session.remove()
    return f"/p/{issued.token}"


def sign_in(page: Any, base: str) -> None:
    page.goto(base + "/sign-in")
    page.locator("#email").fill(EMAIL)
    page.locator("#password").fill(PASSWORD)
    page.locator("form button[type=submit]").click()
    page.wait_for_url(base + "/")


def png() -> bytes:
    image = Image.new("RGB", (300, 120), (15, 95, 116))
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def upload(page: Any, name: str, mime: str, data: bytes) -> None:
    page.locator("#logo").set_input_files({"name": name, "mimeType": mime, "buffer": data})
    page.get_by_role("button", name="Upload logo").click()
    page.wait_for_load_state()


def test_the_logo_upload_refuses_svg_and_large_files_and_shows_a_png_to_patients(
    browser, server, clinic_with_patient
):
    base = server.url
    context = browser.new_context(locale="en-GB")
    page = context.new_page()
    sign_in(page, base)
    page.get_by_role("link", name="Clinic profile").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Clinic profile")

    upload(page, "logo.svg", "image/svg+xml", SVG)
    expect(page.locator("#logo-errors")).to_contain_text("Only PNG and JPEG images can be used.")
    expect(page.locator("#logo")).to_have_attribute("aria-invalid", "true")
    assert page.locator("main img").count() == 0

    # Over 200 KB, and noise so nothing along the way could shrink it.
    noise = os.urandom(300 * 1024)
    upload(page, "big.png", "image/png", b"\x89PNG\r\n\x1a\n" + noise)
    expect(page.get_by_role("heading", level=1)).to_have_text(
        "The logo must be 200 KB or smaller. Save it smaller and try again."
    )

    page.goto(base + "/settings/profile")
    upload(page, "logo.png", "image/png", png())
    expect(page.get_by_role("status")).to_have_text("The new logo is saved.")
    logo = page.get_by_role("img", name="Harbour Physio logo")
    expect(logo).to_be_visible()
    assert page.evaluate("(img) => img.complete && img.naturalWidth", logo.element_handle()) == 300
    context.close()

    # The patient, on a phone: the logo and the clinic's phone in the app's header.
    patient = browser.new_context(**PHONE)
    phone = patient.new_page()
    phone.goto(base + clinic_with_patient)
    header = phone.locator("header")
    header_logo = header.get_by_role("img", name="Harbour Physio logo")
    expect(header_logo).to_be_visible()
    assert phone.evaluate("(img) => img.complete && img.naturalWidth", header_logo.element_handle())
    expect(header.locator('a[href="tel:+34612345678"]')).to_be_visible()
    # Nothing scrolls sideways on the phone with the logo and phone in the header.
    assert phone.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    patient.close()


@pytest.mark.parametrize("language", ["en", "es"])
def test_the_profile_and_api_keys_pages_pass_axe(language, browser, server, clinic_with_patient):
    if not AXE.exists():
        pytest.skip("axe-core is not installed: run `make test` (it runs `npm ci`)")
    context = browser.new_context(
        **PHONE, bypass_csp=True, locale="es-ES" if language == "es" else "en-GB"
    )
    page = context.new_page()
    base = server.url
    sign_in(page, base)
    fragments = english_fragments() if language == "es" else []

    def check(name: str) -> None:
        assert page.locator("html").get_attribute("lang") == language, name
        assert axe_violations(page) == [], name
        if fragments:
            text = page.evaluate("document.documentElement.textContent")
            left = [f for f in fragments if f in text]
            assert left == [], f"English on the Spanish {name} page: {left}"
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), name

    page.goto(base + "/settings/profile")
    check("profile")
    page.locator("#emergency_number").fill("1")
    page.locator('form[action$="/settings/profile"] button.primary').click()
    expect(page.locator("#emergency_number")).to_have_attribute("aria-invalid", "true")
    check("profile with an error")
    page.locator("#logo").set_input_files(
        {"name": "logo.svg", "mimeType": "image/svg+xml", "buffer": SVG}
    )
    page.locator('form[action$="/settings/profile/logo"] button').click()
    expect(page.locator("#logo")).to_have_attribute("aria-invalid", "true")
    check("profile with a refused logo")
    page.locator("#logo").set_input_files(
        {"name": "logo.png", "mimeType": "image/png", "buffer": png()}
    )
    page.locator('form[action$="/settings/profile/logo"] button').click()
    expect(page.locator("main img")).to_be_visible()
    check("profile with a logo")

    page.goto(base + "/settings/api-keys")
    check("API keys, none yet")
    page.locator("#name").fill("Agenda")
    page.locator('form[action$="/settings/api-keys"] button.primary').click()
    expect(page.locator("#new-key")).to_have_value(re.compile(r"^ak_"))
    check("API keys with a new key")
    page.goto(base + "/settings/api-keys")
    page.locator('main a[href$="/revoke"]').click()
    check("revoke confirmation")
    page.locator("main form button").click()
    page.wait_for_url(base + "/settings/api-keys?revoked=1")
    check("API keys with a revoked key")
    context.close()
