"""Therapists open alerts on their phones (issue 13): at 360 CSS px wide no therapist page scrolls
sideways, with realistic data (long names and e-mail addresses, many regions, several check-ins
and alerts, a red flag), in English and Spanish (the longer words). The audit page with its filters
passes axe in both languages."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from flask import Flask

from companion import audit
from companion.auth import hash_password
from companion.checkins.store import CheckInDetails, submit_checkin
from companion.extensions import db
from companion.models import ApiKey, Clinic, Therapist, TherapistDevice
from companion.timeutil import utcnow
from companion.visits.patient_data import request_deletion
from companion.visits.record import (
    PatientDetails,
    VisitDetails,
    find_or_create_patient,
    record_visit,
)

from ..conftest import PASSWORD
from .test_accessibility import AXE, axe_violations

pytestmark = pytest.mark.e2e

EMAIL = "maria-jose.fernandez-de-la-fuente.fisioterapia@clinica-harbour-physiotherapy.example"
WIDTH = 360
SMALL_PHONE = {
    "viewport": {"width": WIDTH, "height": 740},
    "device_scale_factor": 2,
    "is_mobile": True,
    "has_touch": True,
}
ALL_REGIONS = [
    "neck",
    "levator_scapulae",
    "shoulder",
    "upper_back",
    "chest_wall",
    "thoracic_paraspinals",
    "low_back",
    "gluteals",
    "thigh",
    "calf",
    "foot",
    "forearm",
    "jaw",
    "head",
]

# Anything wider than the viewport (boxes, and text that overflows its box), named so a failure
# says where to look. What is hidden for screen readers only (1px, clipped) is no overflow.
WIDE_THINGS = """(width) => {
  const hidden = (el) => el.closest(".visually-hidden, .skip");
  const name = (el) => el.tagName.toLowerCase() + (el.id ? "#" + el.id : "") +
    (typeof el.className === "string" && el.className.trim() ? "." + el.className.trim().split(/\\s+/).join(".") : "");
  const wide = [];
  for (const el of document.querySelectorAll("body *")) {
    if (hidden(el)) continue;
    const box = el.getBoundingClientRect();
    if (box.right > width + 0.5) wide.push(name(el) + " right=" + Math.round(box.right));
  }
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    if (!node.textContent.trim() || hidden(node.parentElement)) continue;
    const range = document.createRange();
    range.selectNodeContents(node);
    for (const r of range.getClientRects()) {
      if (r.right > width + 0.5) {
        wide.push("text '" + node.textContent.trim().slice(0, 30) + "' in " + name(node.parentElement));
        break;
      }
    }
  }
  return wide.slice(0, 12);
}"""


@pytest.fixture
def crowded_clinic(live_app: Flask) -> dict[str, str]:
    """A clinic with long words everywhere; returns the paths of its visit and patient pages."""
    now = utcnow()
    with live_app.app_context():
        clinic = Clinic(
            name="Centro de Fisioterapia y Punción Seca Harbour Physiotherapy Barcelona",
            timezone="Europe/Madrid",
            phone="+34 900 111 222",
            oncall_name="Doctora Maximiliana Fernández-Villaverde",
            oncall_phone="+34600111222",
        )
        db.session.add(clinic)
        db.session.flush()
        therapist = Therapist(
            clinic_id=clinic.id,
            email=EMAIL,
            display_name="María José Fernández de la Fuente y Villaverde",
            password_hash=hash_password(PASSWORD),
            role="admin",
        )
        db.session.add(therapist)
        db.session.flush()
        db.session.add(
            ApiKey(
                clinic_id=clinic.id,
                prefix="ak_7Qm2Xw",
                key_hash=uuid.uuid4().hex * 2,
                name="Practice management system integration (front desk, Barcelona)",
            )
        )
        # Colleagues with long addresses for the Therapists page: one active, one invited.
        for i, invited in enumerate((None, now)):
            db.session.add(
                Therapist(
                    clinic_id=clinic.id,
                    email=f"guillermo.alejandro.{i}.rodriguez-de-castro@fisioterapia-barcelona.example",
                    display_name="Guillermo Alejandro Rodríguez de Castro y Montenegro",
                    password_hash="" if invited else hash_password(PASSWORD),
                    invited_at=invited,
                )
            )
        db.session.add(
            TherapistDevice(
                therapist_id=therapist.id,
                endpoint="https://fcm.googleapis.com/fcm/send/" + "x" * 150,
                p256dh="k",
                auth="a",
                renewal_hash=uuid.uuid4().hex * 2,
                browser="Chrome",
                platform="Android",
            )
        )

        def visit(ref: str, name: str, hours_ago: float, regions: list[str]):  # type: ignore[no-untyped-def]
            patient = find_or_create_patient(
                clinic, PatientDetails(ref, name, "America/Argentina/Buenos_Aires", "es")
            )
            patient.email = (
                "bartholomew.alexander.montgomery-featherstonehaugh@correo-largo.example"
            )
            patient.phone = "+34600111333"
            performed = now - timedelta(hours=hours_ago)
            made, _ = record_visit(
                clinic,
                patient,
                VisitDetails(performed_at=performed, regions=regions),
                therapist_id=therapist.id,
                link_days=7,
                now=performed,
            )
            return made

        def checkin(v, hours: float, soreness: int, symptoms: list[str], note: str) -> None:  # type: ignore[no-untyped-def]
            at = v.performed_at + timedelta(hours=hours)
            details = CheckInDetails(uuid.uuid4(), at, soreness, 3, symptoms, ["heat"], note)
            submit_checkin(v, details, now=at)

        long_name = "Bartholomew Alexander Montgomery-Featherstonehaugh Villanueva"
        red = visit("REF-2026-000123456789-BCN", long_name, 40, ALL_REGIONS)
        checkin(red, 3, 4, [], "https://example.org/" + "a-very-long-unbroken-path-" * 4)
        checkin(red, 12, 8, ["large_bruise", "numbness_tingling"], "Dolor " * 40)
        checkin(red, 30, 6, ["usual_pain_flare", "headache", "dizzy_drowsy"], "x" * 120)
        checkin(red, 38, 3, ["breathless", "chest_pain"], "Me cuesta respirar")
        amber = visit(
            "REF-2026-000123456790-BCN", "Guadalupe Concepción Ximénez", 50, ALL_REGIONS[:6]
        )
        checkin(amber, 48, 7, ["redness_increasing"], "")
        visit("REF-2026-000123456791-BCN", "Sol", 30, ["neck"])
        db.session.flush()
        request_deletion(amber.patient, now, therapist_id=therapist.id)
        me = audit.Actor.therapist(therapist)
        for i, action in enumerate(("visit.view", "patient.view", "export.csv", "link.reissue")):
            target = ("patient", red.patient_id) if action == "patient.view" else ("visit", red.id)
            detail = (
                {"from": "2026-11-01", "to": "2026-11-30", "rows": 1234}
                if action == "export.csv"
                else None
            )
            audit.record(action, me, target, now=now - timedelta(minutes=i), detail=detail)
        audit.record("patient.view", me, ("patient", uuid.uuid4()), now=now - timedelta(minutes=9))
        db.session.commit()
        paths = {
            "visit": f"/visits/{red.id}",
            "patient": f"/patients/{red.patient_id}",
            "edit patient": f"/patients/{red.patient_id}/edit",
            "handout": f"/visits/{red.id}/handout",
        }
        db.session.remove()
    return paths


def _signed_in(browser, base: str, language: str, **extra):  # type: ignore[no-untyped-def]
    context = browser.new_context(
        **SMALL_PHONE, locale="es-ES" if language == "es" else "en-GB", **extra
    )
    page = context.new_page()
    page.goto(base + "/sign-in")
    page.locator("#email").fill(EMAIL)
    page.locator("#password").fill(PASSWORD)
    page.locator("form button[type=submit]").click()
    page.wait_for_url(base + "/")
    return context, page


# The therapist pages (the named ones are the clinic's paths, from the fixture).
PAGES = [
    "/",
    "/patients",
    "visit",
    "patient",
    "/audit",
    "/audit?action=visit.view",
    "/settings/clinic",
    "/settings/on-call",
    "/settings/notifications",
    "/exports",
    "/deletion-requests",
    "/visits/new",
    # Issue 13's own pages.
    "/settings/therapists",
    "/settings/profile",
    "/settings/api-keys",
    "/account/two-step",
    "/account/password",
    "edit patient",
    "handout",
]


@pytest.mark.parametrize("language", ["en", "es"])
def test_no_therapist_page_scrolls_sideways_on_a_small_phone(
    language, browser, server, crowded_clinic
):
    context, page = _signed_in(browser, server.url, language)
    problems = {}
    for path in PAGES:
        path = crowded_clinic.get(path, path)
        response = page.goto(server.url + path)
        assert response is not None and response.status == 200, path
        assert page.locator("html").get_attribute("lang") == language
        width = page.evaluate("document.documentElement.scrollWidth")
        wide = page.evaluate(WIDE_THINGS, WIDTH)
        if width > WIDTH or wide:
            problems[path] = (width, wide)
    context.close()
    assert problems == {}, "\n".join(f"{p}: {w} px, {e}" for p, (w, e) in problems.items())


@pytest.mark.parametrize("language", ["en", "es"])
def test_the_audit_page_with_its_filters_passes_axe(language, browser, server, crowded_clinic):
    if not AXE.exists():
        pytest.skip("axe-core is not installed: run `make test` (it runs `npm ci`)")
    context, page = _signed_in(browser, server.url, language, bypass_csp=True)
    page.goto(server.url + "/audit")
    assert axe_violations(page) == []
    page.locator("#action").select_option("visit.view")
    page.locator("#from").fill("2026-01-01")
    page.locator("form.filters button[type=submit]").click()
    page.wait_for_url("**/audit?*action=visit.view*")
    assert page.locator("tbody tr").count() == 1
    assert axe_violations(page) == []
    # Drawn as a card, the row is still a table row to assistive technology: its five cells
    # under five column headers (what chromium gives screen readers).
    nodes = context.new_cdp_session(page).send("Accessibility.getFullAXTree")["nodes"]
    roles = [n.get("role", {}).get("value") for n in nodes if not n.get("ignored")]
    assert (roles.count("table"), roles.count("columnheader"), roles.count("cell")) == (1, 5, 5)
    # A day that is no date: the page says why, and axe still finds nothing.
    page.goto(server.url + "/audit?from=2026-02-30")
    assert page.locator("#filter-error").count() == 1
    assert axe_violations(page) == []
    context.close()
