"""The therapist's Notifications page in Debian's chromium: the "turn on alerts" button and its
states (permission only from the tap, the device stored, marked and removed), the page without
JavaScript, axe in English and Spanish, and the service worker's side: a therapist's alert opens a
therapist page, a replaced subscription is renewed with the device token when nobody is signed in,
and no therapist page is ever kept in its caches.

As in test_reminders.py, `PushManager.prototype.subscribe` is replaced in the page (no push service
is reachable from here); the permission, the requests, the session, the CSRF token, IndexedDB and
the database are real. Pushes reach the real service worker through the DevTools protocol.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from flask import Flask
from playwright.sync_api import expect
from sqlalchemy import select

from companion.auth import hash_password
from companion.extensions import db
from companion.models import Clinic, Therapist, TherapistDevice

from ..conftest import PASSWORD
from ..test_push import browser_keys
from .conftest import PHONE
from .test_accessibility import AXE, axe_violations, english_fragments
from .test_pwa import SW_CONTROLS, wait_until
from .test_reminders import (
    CLICK,
    COUNT_PERMISSION_REQUESTS,
    IPHONE_SAFARI,
    NO_PUSH_MANAGER,
    RESUBSCRIBE,
    STATE_SETTLED,
    PushDevice,
    fake_push_service,
)

pytestmark = pytest.mark.e2e

EMAIL = "lena@harbour.example"
PAGE = "/settings/notifications"
DEVICE_RECORD = "() => Push.Device.load()"


@pytest.fixture
def therapist(live_app: Flask) -> uuid.UUID:
    with live_app.app_context():
        clinic = Clinic(name="Harbour Physio", timezone="Europe/Madrid")
        db.session.add(clinic)
        db.session.flush()
        row = Therapist(clinic_id=clinic.id, email=EMAIL, password_hash=hash_password(PASSWORD))
        db.session.add(row)
        db.session.commit()
        therapist_id = row.id
        db.session.remove()
    return therapist_id


def stored_devices(app: Flask) -> list[dict[str, Any]]:
    with app.app_context():
        rows = db.session.scalars(select(TherapistDevice)).all()
        found = [
            {"id": r.id, "endpoint": r.endpoint, "therapist_id": r.therapist_id, "lang": r.language}
            for r in rows
        ]
        db.session.remove()
        return found


def sign_in(page, base: str) -> None:  # type: ignore[no-untyped-def]
    page.goto(base + "/sign-in")
    page.locator("#email").fill(EMAIL)
    page.locator("#password").fill(PASSWORD)
    page.locator("form button[type=submit]").click()
    page.wait_for_url(base + "/")


def settle(page) -> str:  # type: ignore[no-untyped-def]
    page.wait_for_function(STATE_SETTLED)
    return page.locator("#push").get_attribute("data-state") or ""


def open_notifications(page, base: str) -> str:  # type: ignore[no-untyped-def]
    sign_in(page, base)
    page.locator("nav details.menu > summary").click()  # on a phone the menu is a disclosure
    page.get_by_role("link", name="Notifications").click()
    page.wait_for_url(base + PAGE)
    return settle(page)


def test_turning_alerts_on_and_off_on_this_device(phone, server, live_app, therapist):
    phone.context.grant_permissions(["notifications"], origin=server.url)
    phone.add_init_script(COUNT_PERMISSION_REQUESTS)
    phone.add_init_script(fake_push_service())
    assert open_notifications(phone, server.url) == "off"
    assert phone.evaluate("window.__permissionRequests") == 0
    expect(phone.locator("#push-state")).to_have_text("Alerts are off on this device.")
    expect(phone.locator("#push-nojs")).to_be_hidden()
    expect(phone.locator("#devices")).to_contain_text("No device has alerts turned on yet.")

    phone.get_by_role("button", name="Turn on alerts on this device").click()
    assert settle(phone) == "on"
    expect(phone.locator("#push-state")).to_have_text("Alerts are on for this device.")
    expect(phone.locator("#push-h")).to_be_focused()
    # Stored for this therapist, in the page's language, with the endpoint the browser holds.
    [device] = stored_devices(live_app)
    assert device["therapist_id"] == therapist and device["lang"] == "en"
    record = phone.evaluate(DEVICE_RECORD)
    assert record["id"] == str(device["id"]) and record["endpoint"] == device["endpoint"]
    assert len(record["token"]) >= 40
    # The list shows it at once, marked as this device.
    row = phone.locator(f"#device-{device['id']}")
    expect(row).to_contain_text("Linux · This device")  # headless chromium names no browser
    expect(row.locator(".this-device")).to_be_visible()

    # A later visit finds it on, without asking anything.
    phone.reload()
    assert settle(phone) == "on"
    expect(phone.locator(f"#device-{device['id']} .this-device")).to_be_visible()

    phone.get_by_role("button", name="Turn off on this device").click()
    assert settle(phone) == "off"
    expect(phone.locator("#push-h")).to_be_focused()
    assert stored_devices(live_app) == []
    assert phone.evaluate(DEVICE_RECORD) is None
    expect(phone.locator("#devices")).to_contain_text("No device has alerts turned on yet.")


def test_a_device_removed_from_the_list_shows_off_on_that_device(
    phone, server, live_app, therapist
):
    phone.context.grant_permissions(["notifications"], origin=server.url)
    phone.add_init_script(fake_push_service())
    open_notifications(phone, server.url)
    phone.get_by_role("button", name="Turn on alerts on this device").click()
    assert settle(phone) == "on"
    [device] = stored_devices(live_app)

    phone.locator(f"#device-{device['id']}").get_by_role("button", name="Remove").click()
    expect(phone.locator("p.notice[role=status]")).to_have_text(
        "Alerts are turned off for that device."
    )
    assert settle(phone) == "off"
    assert stored_devices(live_app) == []
    # Turning on again makes a new device of it.
    phone.get_by_role("button", name="Turn on alerts on this device").click()
    assert settle(phone) == "on"
    assert len(stored_devices(live_app)) == 1


def test_a_browser_that_blocks_notifications_is_told_how_to_allow_them(phone, server, therapist):
    phone.add_init_script(COUNT_PERMISSION_REQUESTS)
    assert open_notifications(phone, server.url) == "off"
    phone.get_by_role("button", name="Turn on alerts on this device").click()
    # Headless chromium answers the question itself with "denied".
    assert settle(phone) == "blocked"
    assert phone.evaluate("window.__permissionRequests") == 1
    expect(phone.locator("#push-blocked")).to_be_visible()


def test_a_browser_without_web_push_says_so(phone, server, therapist):
    phone.add_init_script(NO_PUSH_MANAGER)
    assert open_notifications(phone, server.url) == "unsupported"
    expect(phone.locator("#push-on")).to_be_hidden()


def test_the_list_and_its_remove_buttons_work_without_javascript(
    browser, server, live_app, therapist
):
    with live_app.app_context():
        keys = browser_keys()
        db.session.add(
            TherapistDevice(
                therapist_id=therapist,
                endpoint="https://fcm.googleapis.com/fcm/send/desk",
                p256dh=keys["p256dh"],
                auth=keys["auth"],
                browser="Firefox",
                platform="Windows",
                renewal_hash="0" * 64,
            )
        )
        db.session.commit()
        db.session.remove()
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    sign_in(page, server.url)
    page.goto(server.url + PAGE)
    expect(page.locator("#push-nojs")).to_be_visible()
    expect(page.locator("#devices")).to_contain_text("Firefox on Windows")
    page.get_by_role("button", name="Remove").click()
    expect(page.locator("p.notice[role=status]")).to_have_text(
        "Alerts are turned off for that device."
    )
    assert stored_devices(live_app) == []
    context.close()


# --- accessibility ------------------------------------------------------------------------------


@pytest.mark.parametrize("language", ["en", "es"])
def test_the_notifications_page_passes_axe_in_every_state_and_speaks_one_language(
    language, browser, server, therapist
):
    if not AXE.exists():
        pytest.skip("axe-core is not installed: run `make test` (it runs `npm ci`)")
    locale = {"en": "en-GB", "es": "es-ES"}[language]
    context = browser.new_context(**PHONE, bypass_csp=True, locale=locale)
    page = context.new_page()
    fragments = english_fragments() if language == "es" else []

    def check(expected_state: str) -> None:
        assert settle(page) == expected_state
        assert page.locator("html").get_attribute("lang") == language
        assert axe_violations(page) == [], expected_state
        text = page.evaluate("document.documentElement.textContent")
        assert [f for f in fragments if f in text] == [], expected_state

    sign_in(page, server.url)
    page.goto(server.url + PAGE)
    check("off")
    page.locator("#push-on").click()  # headless chromium answers "denied" by itself
    check("blocked")
    context.grant_permissions(["notifications"], origin=server.url)
    page.add_init_script(fake_push_service())
    page.reload()
    page.locator("#push-on").click()
    check("on")  # with a device in the list, marked as this one
    context.close()

    iphone = browser.new_context(**PHONE, user_agent=IPHONE_SAFARI, bypass_csp=True, locale=locale)
    page = iphone.new_page()
    page.add_init_script(NO_PUSH_MANAGER)
    sign_in(page, server.url)
    page.goto(server.url + PAGE)
    check("ios")
    expect(page.locator("#push-ios")).to_be_visible()
    iphone.close()


# --- the service worker ----------------------------------------------------------------------


def therapist_message(**fields: str) -> str:
    body = {
        "title": "A check-in needs attention now",
        "body": "A patient reported a warning sign.",
        "url": "/review",
        "tag": "alert-1",
        "audience": "therapist",
        "lang": "en",
    }
    body.update(fields)
    return json.dumps(body)


def alerts_on(page, base: str) -> PushDevice:  # type: ignore[no-untyped-def]
    page.context.grant_permissions(["notifications"], origin=base)
    page.add_init_script(fake_push_service())
    open_notifications(page, base)
    page.get_by_role("button", name="Turn on alerts on this device").click()
    assert settle(page) == "on"
    return PushDevice(page, base)


def test_a_therapists_alert_opens_the_therapist_page_it_names(phone, server, therapist):
    device = alerts_on(phone, server.url)
    visit_id = uuid.uuid4()
    device.push(therapist_message(tag="red1", url=f"/visits/{visit_id}"))
    shown = device.wait_for("red1")
    assert shown["title"] == "A check-in needs attention now"
    assert shown["url"] == f"{server.url}/visits/{visit_id}"
    assert shown["lang"] == "en"

    # The therapist's window (on Notifications) is taken to the visit (404 here: none recorded).
    device.worker().evaluate(CLICK, "red1")
    expect(phone).to_have_url(f"{server.url}/visits/{visit_id}")


@pytest.mark.parametrize(
    ("audience", "url", "opens"),
    [
        ("therapist", "/me/check-in", "/"),  # a patient page is not a therapist's to open
        ("therapist", "https://evil.example/review", "/"),
        ("therapist", "/settings/notifications", "/"),
        ("therapist", "/review", "/review"),
        (None, "/visits/00000000-0000-0000-0000-000000000000", "/me/"),  # the patient rule
        (None, "/", "/me/"),
    ],
)
def test_a_notification_opens_only_pages_of_its_own_side(
    phone, server, therapist, audience, url, opens
):
    device = alerts_on(phone, server.url)
    fields = {"tag": "t", "url": url}
    message = json.loads(therapist_message(**fields))
    if audience is None:
        del message["audience"]
    device.push(json.dumps(message))
    assert device.wait_for("t")["url"] == server.url + opens


def test_an_unreadable_push_on_a_therapist_device_shows_the_therapist_fallback(
    phone, server, therapist
):
    device = alerts_on(phone, server.url)
    device.push("not json")
    shown = device.wait_for("alert")
    assert shown["title"] == "Clinic alert"
    assert shown["body"] == "Something in your clinic needs your attention. Tap to open it."
    assert shown["url"] == server.url + "/"


def test_a_replaced_subscription_is_renewed_with_the_device_token_without_a_session(
    phone, server, live_app, therapist
):
    device = alerts_on(phone, server.url)
    [before] = stored_devices(live_app)
    # Hours later: the session is long gone (and there is no patient cookie either).
    phone.context.clear_cookies()

    device.worker().evaluate(RESUBSCRIBE, [browser_keys(), before["endpoint"]])

    [after] = stored_devices(live_app)
    assert after["id"] == before["id"] and after["therapist_id"] == therapist
    assert after["endpoint"] == "https://fcm.googleapis.com/fcm/send/e2e-renewed"
    assert phone.evaluate(DEVICE_RECORD)["endpoint"] == after["endpoint"]


THERAPIST_PAGES_KEPT = """async () => {
  const kept = [];
  for (const name of await caches.keys()) {
    for (const request of await (await caches.open(name)).keys()) {
      const path = new URL(request.url).pathname;
      if (!path.startsWith("/static/") && !path.startsWith("/me/")) kept.push(name + " " + path);
    }
  }
  return kept;
}"""


def test_the_service_worker_never_keeps_a_therapist_page(phone, server, therapist):
    alerts_on(phone, server.url)
    phone.wait_for_function(SW_CONTROLS)
    for path in ("/", "/patients", "/visits/new", "/audit", PAGE):
        phone.goto(server.url + path)
        phone.wait_for_function(SW_CONTROLS)
    wait_until(phone, "async () => (await caches.keys()).length > 0")
    kept = phone.evaluate(THERAPIST_PAGES_KEPT)
    # Only the web app manifest may be there besides static files and patient pages.
    assert [k for k in kept if not k.endswith("/manifest.webmanifest")] == []


def test_the_review_app_is_installable_on_its_own(open_phone, server, therapist):
    """A therapist adds the review queue to the Home Screen (an iPhone shows web push only to such
    an app): its pages name their own manifest, and the browser finds nothing missing."""
    browser = open_phone()  # a profile on disk: chromium never installs from incognito
    page = browser.pages[0] if browser.pages else browser.new_page()
    sign_in(page, server.url)
    page.goto(server.url + PAGE)  # registers the service worker, as turning alerts on needs
    page.wait_for_function(SW_CONTROLS)
    page.goto(server.url + "/")
    page.wait_for_function(SW_CONTROLS)

    cdp = page.context.new_cdp_session(page)
    assert cdp.send("Page.getInstallabilityErrors")["installabilityErrors"] == []
    manifest = cdp.send("Page.getAppManifest")
    assert manifest["url"] == server.url + "/review.webmanifest"
    assert manifest["errors"] == []
    data = json.loads(manifest["data"])
    assert data["start_url"] == "/" and data["scope"] == "/" and data["display"] == "standalone"
    assert data["name"] == "Aftercare review"
