"""The therapists' pages in chromium, in English and Spanish: axe-core finds nothing (WCAG 2.1 A/AA
and best practices), and no English is left on a Spanish page. The review queue is filled with a
red flag, an amber item (acknowledged), a missing check-in and an on-track patient, so every part
of it is drawn; the visit page shows its chart and its alerts."""

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
            clinic_id=clinic.id, email=EMAIL, password_hash=hash_password(PASSWORD)
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
        checkin(red, 28, 3, ["breathless"])
        amber = visit("A-1", "Ana", 50)
        checkin(amber, 3, 4, [])
        checkin(amber, 48, 6, [])
        visit("S-1", "Sol", 30)
        fine = visit("F-1", "Fede", 26)
        checkin(fine, 24, 2, [])
        db.session.flush()
        for alert in db.session.query(Alert).filter(Alert.visit_id == amber.id):
            alert.acknowledged_at, alert.acknowledged_by = now, therapist.id
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
    assert page.locator("figure.chart svg").count() == 1
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
    page.locator("form button.primary").click()
    assert page.locator("#episode_days[aria-invalid=true]").count() == 1
    check("settings with an error")
    context.close()
