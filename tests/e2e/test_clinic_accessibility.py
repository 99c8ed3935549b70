"""The therapists' pages in chromium, in English and Spanish: axe-core finds nothing (WCAG 2.1 A/AA
and best practices), and no English is left on a Spanish page. The review queue is filled with a
red flag, an amber item (acknowledged), a missing check-in, an on-track patient and a red flag
resolved a few hours ago, so every part of it is drawn; the visit page shows its chart (with a red, an amber and a green check-in, marked
by shape) and its alerts."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from flask import Flask

from companion.auth import hash_password
from companion.checkins.store import CheckInDetails, submit_checkin
from companion.extensions import db
from companion.models import Alert, Clinic, Therapist
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


@pytest.fixture
def busy_clinic(live_app: Flask) -> str:
    """A clinic whose queue has every kind of item; returns the red patient's visit id."""
    now = utcnow()
    with live_app.app_context():
        clinic = Clinic(name="Harbour Physio", timezone="Europe/Madrid")
        db.session.add(clinic)
        db.session.flush()
        therapist = Therapist(
            clinic_id=clinic.id, email=EMAIL, password_hash=hash_password(PASSWORD), role="admin"
        )
        db.session.add(therapist)
        db.session.flush()

        def visit(ref: str, name: str, hours_ago: float):  # type: ignore[no-untyped-def]
            patient = find_or_create_patient(
                clinic, PatientDetails(ref, name, "Europe/Madrid", "en")
            )
            performed = now - timedelta(hours=hours_ago)
            made, _ = record_visit(
                clinic,
                patient,
                VisitDetails(performed_at=performed, regions=["neck"]),
                therapist_id=therapist.id,
                link_days=7,
                now=performed,
            )
            return made

        def checkin(v, hours: float, soreness: int, symptoms: list[str]) -> None:  # type: ignore[no-untyped-def]
            at = v.performed_at + timedelta(hours=hours)
            details = CheckInDetails(uuid.uuid4(), at, soreness, 3, symptoms, ["heat"], "ok")
            submit_checkin(v, details, now=at)

        red = visit("R-1", "Rosa", 30)
        checkin(red, 3, 4, [])
        checkin(red, 12, 8, [])  # amber: the chart and the card mark it beside the red flag
        checkin(red, 28, 3, ["breathless"])
        amber = visit("A-1", "Ana", 50)
        checkin(amber, 3, 4, [])
        checkin(amber, 48, 6, [])
        visit("S-1", "Sol", 30)
        fine = visit("F-1", "Fede", 26)
        checkin(fine, 24, 2, [])
        handled = visit("P-1", "Pau", 40)
        checkin(handled, 20, 2, ["chest_pain"])
        db.session.flush()
        for alert in db.session.query(Alert).filter(Alert.visit_id == amber.id):
            alert.acknowledged_at, alert.acknowledged_by = now, therapist.id
        # A red flag resolved with a note: the queue's "resolved in the last 48 h" lists it.
        for alert in db.session.query(Alert).filter(Alert.visit_id == handled.id):
            alert.acknowledged_at = alert.resolved_at = now - timedelta(hours=5)
            alert.acknowledged_by = alert.resolved_by = therapist.id
            alert.resolution_note = "Called: seen at the emergency department, all clear"
        db.session.commit()
        red_id = str(red.id)
        db.session.remove()
    return red_id


@pytest.mark.parametrize("language", ["en", "es"])
def test_every_therapist_page_passes_axe_and_speaks_one_language(
    language, browser, server, busy_clinic
):
    if not AXE.exists():
        pytest.skip("axe-core is not installed: run `make test` (it runs `npm ci`)")
    context = browser.new_context(bypass_csp=True, locale="es-ES" if language == "es" else "en-GB")
    page = context.new_page()
    base = server.url
    page.goto(base + "/sign-in")
    page.locator("#email").fill(EMAIL)
    page.locator("#password").fill(PASSWORD)
    page.locator("form button[type=submit]").click()
    page.wait_for_url(base + "/")
    fragments = english_fragments() if language == "es" else []

    def check(name: str) -> None:
        assert page.locator("html").get_attribute("lang") == language, name
        assert axe_violations(page) == [], name
        if fragments:
            text = page.evaluate("document.documentElement.textContent")
            left = [f for f in fragments if f in text]
            assert left == [], f"English on the Spanish {name} page: {left}"

    # The queue with a red, an acknowledged amber, a missing check-in and an on-track patient.
    assert page.locator(".queue-item.red").count() == 1
    assert page.locator(".queue-item.amber").count() == 2
    assert page.locator("#resolved-h + ol .alert-record.red").count() == 1
    check("review queue")
    for path, name in (
        (f"/visits/{busy_clinic}", "visit"),
        ("/patients", "patients"),
        ("/settings/clinic", "settings"),
        ("/exports", "exports"),
        ("/audit", "audit"),
        ("/deletion-requests", "deletion requests"),
        ("/visits/new", "record a visit"),
    ):
        page.goto(base + path)
        check(name)
    page.goto(base + f"/visits/{busy_clinic}")
    assert page.locator("figure.chart > svg").count() == 1
    # Red and amber check-ins are marked by shape (scanned by axe above, as the visit page).
    assert page.locator("figure.chart polygon.marker.red").count() == 1
    assert page.locator("figure.chart polygon.marker.amber").count() == 1
    assert page.locator("figure.chart circle.marker.green").count() == 1
    assert page.locator("figure.chart g.chart-point > title").count() == 3
    page.locator('main a[href^="/patients/"]').click()  # the patient's own page
    page.wait_for_url(base + "/patients/*")
    assert page.locator("tbody tr").count() == 1
    check("patient")
    # A search with its result count, and the settings form showing its errors.
    page.goto(base + "/patients")
    page.locator("#q").fill("ros")
    page.locator("form.search button").click()
    check("patients found")
    page.goto(base + "/settings/clinic")
    page.locator("#episode_days").fill("0")
    page.locator('form[action$="/settings/clinic"] button.primary').click()
    assert page.locator("#episode_days[aria-invalid=true]").count() == 1
    check("settings with an error")
    # The opening hours are a form of their own, with their own messages.
    page.locator("#days-2-opens").fill("20:00")
    page.locator("#days-2-closes").fill("08:00")
    page.locator('form[action$="/settings/clinic/hours"] button.primary').click()
    assert page.locator("#days-2-closes[aria-invalid=true]").count() == 1
    check("opening hours with an error")
    # The on-call page: the readiness warning (nothing reaches anyone in the test server), the
    # contact form with an error, and the test alert's report.
    page.goto(base + "/settings/on-call")
    assert page.locator("section.readiness[role=alert]").count() == 1
    check("on-call")
    page.locator("#name").fill("Ben")
    page.locator("#phone").fill("612")
    page.locator('form[action$="/settings/on-call"] button.primary').click()
    assert page.locator("#phone[aria-invalid=true]").count() == 1
    check("on-call with an error")
    page.locator('form[action*="/settings/on-call/test"] button').click()
    assert page.locator("#test-results li.channel-result").count() == 3
    check("test alert report")
    context.close()
