"""The handout in chromium: issued from the visit page, printed with no navigation and no buttons,
its QR code read back by a real decoder (zbar) to a link that opens the patient's guide in another
browser; a Spanish patient's handout is in Spanish; axe finds nothing on the handout, the page that
offers a new link, or the patient's edit form, in English and Spanish."""

from __future__ import annotations

import io
import uuid
from datetime import timedelta

import pytest
from flask import Flask
from PIL import Image
from pyzbar.pyzbar import decode

from companion.auth import hash_password
from companion.extensions import db
from companion.models import Clinic, Therapist, Visit
from companion.reminders.calendar import feed_reminders
from companion.timeutil import utcnow
from companion.visits.record import (
    PatientDetails,
    VisitDetails,
    find_or_create_patient,
    record_visit,
)

from ..conftest import PASSWORD
from .test_accessibility import AXE, axe_violations, english_fragments

pytestmark = pytest.mark.e2e

EMAIL = "ines@harbour.example"
MM = 96 / 25.4  # CSS pixels in a millimetre


def clinic_with_visit(app: Flask, language: str) -> tuple[str, str]:
    """A clinic, its therapist and a visit of an hour ago whose link went elsewhere (the
    therapist's browser does not hold it). Returns (visit id, patient id)."""
    now = utcnow()
    with app.app_context():
        clinic = Clinic(name="Harbour Physio", timezone="Europe/Madrid", phone="+34 910 000 000")
        db.session.add(clinic)
        db.session.flush()
        db.session.add(
            Therapist(
                clinic_id=clinic.id,
                email=EMAIL,
                password_hash=hash_password(PASSWORD),
                role="therapist",
            )
        )
        patient = find_or_create_patient(
            clinic, PatientDetails("R-7", "Robin", "Europe/Madrid", language)
        )
        visit, _issued = record_visit(
            clinic,
            patient,
            VisitDetails(performed_at=now - timedelta(hours=1), regions=["calf", "neck"]),
            therapist_id=None,
            link_days=7,
            now=now,
        )
        db.session.commit()
        ids = str(visit.id), str(patient.id)
        db.session.remove()
    return ids


def signed_in(browser, base: str, language: str, axe: bool = False):  # type: ignore[no-untyped-def]
    # axe is injected as a script of its own: only those tests bypass the CSP for it.
    context = browser.new_context(bypass_csp=axe, locale="es-ES" if language == "es" else "en-GB")
    page = context.new_page()
    page.goto(base + "/sign-in")
    page.locator("#email").fill(EMAIL)
    page.locator("#password").fill(PASSWORD)
    page.locator("form button[type=submit]").click()
    page.wait_for_url(base + "/")
    return context, page


def axe_clean(page, name: str, language: str, fragments: list[str]) -> None:  # type: ignore[no-untyped-def]
    assert page.locator("html").get_attribute("lang") == language, name
    assert axe_violations(page) == [], name
    if fragments:
        text = page.evaluate("document.documentElement.textContent")
        left = [f for f in fragments if f in text]
        assert left == [], f"English on the Spanish {name} page: {left}"


@pytest.mark.parametrize("language", ["en", "es"])
def test_the_handout_prints_without_navigation_and_its_qr_code_opens_the_guide(
    language, browser, server, live_app
):
    visit_id, _patient_id = clinic_with_visit(live_app, language)
    base = server.url
    context, page = signed_in(browser, base, language)
    page.goto(f"{base}/visits/{visit_id}")
    # Issue a link on the visit page: it then offers the handout.
    page.locator(f'form[action="/visits/{visit_id}/link"] button').click()
    page.wait_for_url(f"{base}/visits/{visit_id}")
    link = page.locator("#patient-url").input_value()
    assert link.startswith(base + "/p/")
    page.locator(f'a[href="/visits/{visit_id}/handout"].button').click()
    page.wait_for_url(f"{base}/visits/{visit_id}/handout")

    assert page.locator("html").get_attribute("lang") == language
    assert page.locator(".handout-url").inner_text().strip() == link
    assert page.locator("nav").count() == 0  # no navigation at all, on screen either
    if language == "es":
        assert page.locator("#normal-h").inner_text() == "Qué es normal"
        assert page.locator("#moments-h").inner_text() == "Sus momentos para revisar cómo está"
    else:
        assert page.locator("#normal-h").inner_text() == "What is normal"
    assert page.locator("#print-button").is_visible()  # on screen, the therapist's Print button
    # One box per moment still planned. How many that is depends on the hour the visit was
    # (quiet hours move and merge moments) and this test runs at the real hour, so the count
    # comes from the reminders the visit holds, never a fixed number.
    with live_app.app_context():
        moments = len(feed_reminders(db.session.get(Visit, uuid.UUID(visit_id))))
        db.session.remove()
    assert moments >= 3
    assert page.locator(".checklist li").count() == moments

    page.emulate_media(media="print")
    for selector in ("button", "a.button", "form", ".handout-tools", "nav"):
        for element in page.locator(selector).all():
            assert not element.is_visible(), selector
    colours = page.evaluate(
        "[getComputedStyle(document.body).backgroundColor, getComputedStyle(document.body).color]"
    )
    assert colours == ["rgb(255, 255, 255)", "rgb(0, 0, 0)"]
    qr = page.locator(".qr svg")
    box = qr.bounding_box()
    assert box is not None and box["width"] >= 35 * MM and box["height"] >= 35 * MM
    # Letter and A4 both print; a real PDF comes out of chromium.
    for paper in ("A4", "Letter"):
        assert page.pdf(format=paper).startswith(b"%PDF")

    decoded = decode(Image.open(io.BytesIO(qr.screenshot())))
    assert [d.data.decode() for d in decoded] == [link]

    # The patient's phone: a browser of its own, with nothing of the therapist's.
    patient = browser.new_context()
    phone = patient.new_page()
    phone.goto(decoded[0].data.decode())
    phone.wait_for_url(base + "/me/")
    assert phone.locator("h1").inner_text() == (
        "Hola, Robin" if language == "es" else "Hello Robin"
    )
    patient.close()
    context.close()


@pytest.mark.parametrize("language", ["en", "es"])
def test_the_handout_reissue_and_patient_edit_pages_pass_axe(language, browser, server, live_app):
    if not AXE.exists():
        pytest.skip("axe-core is not installed: run `make test` (it runs `npm ci`)")
    visit_id, patient_id = clinic_with_visit(live_app, language)
    base = server.url
    context, page = signed_in(browser, base, language, axe=True)
    fragments = english_fragments() if language == "es" else []

    # Without a link held: the warning and the offer of a new one.
    page.goto(f"{base}/visits/{visit_id}/handout")
    assert page.locator("#reissue-warning").is_visible()
    axe_clean(page, "handout without a link", language, fragments)
    page.locator(f'form[action="/visits/{visit_id}/handout/link"] button').click()
    page.wait_for_url(f"{base}/visits/{visit_id}/handout")
    assert page.locator(".qr svg").count() == 1
    axe_clean(page, "handout", language, fragments)
    # The visit page with the link held, its Print handout link and (no e-mail) no send button.
    page.goto(f"{base}/visits/{visit_id}")
    axe_clean(page, "visit with the link", language, fragments)

    page.goto(f"{base}/patients/{patient_id}")
    page.locator(f'a[href="/patients/{patient_id}/edit"]').click()
    page.wait_for_url(f"{base}/patients/{patient_id}/edit")
    axe_clean(page, "patient edit", language, fragments)
    page.locator("#phone").fill("612")
    page.locator("#timezone").fill("Mars/Olympus")
    page.locator("form.stack button[type=submit]").click()
    assert page.locator("#phone[aria-invalid=true]").count() == 1
    assert page.locator("#timezone[aria-invalid=true]").count() == 1
    axe_clean(page, "patient edit with errors", language, fragments)
    context.close()


def test_the_handout_fits_a_narrow_phone_screen(browser, server, live_app):
    visit_id, _patient_id = clinic_with_visit(live_app, "en")
    base = server.url
    context, page = signed_in(browser, base, "en")
    page.set_viewport_size({"width": 360, "height": 740})
    page.goto(f"{base}/visits/{visit_id}")
    page.locator(f'form[action="/visits/{visit_id}/link"] button').click()
    page.wait_for_url(f"{base}/visits/{visit_id}")
    page.goto(f"{base}/visits/{visit_id}/handout")
    assert page.evaluate("document.documentElement.scrollWidth") <= 360
    context.close()
