"""Reminders on the phone, in Debian's chromium: the "turn on" button (permission asked only from the
tap, the subscription stored and removed on the server, every state shown and announced), the
iPhone and unsupported-browser explanations, and the service worker's push, notificationclick and
pushsubscriptionchange handlers.

Headless chromium here has no reachable push service (no network beyond 127.0.0.1), so a real
`pushManager.subscribe()` fails: one test checks that this failure is shown honestly. The tests of a
working subscription replace `PushManager.prototype.subscribe`/`getSubscription` in the page with a
fake that returns a subscription shaped like the browser's (endpoint on an allowlisted push host,
real P-256 keys); everything else (permission, the API calls, the cookie, the database) is real.
Pushes are delivered to the real service worker through the DevTools protocol
(`ServiceWorker.deliverPushMessage`), and the notifications it shows are read back with
`registration.getNotifications()`.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from flask import Flask
from playwright.sync_api import expect
from sqlalchemy import select

from companion.extensions import db
from companion.models import PushSubscription

from ..test_push import browser_keys
from .conftest import PHONE
from .test_pwa import SW_CONTROLS, go_online_first

pytestmark = pytest.mark.e2e

STATE_SETTLED = """() => {
  const state = document.getElementById("push").dataset.state;
  return !!state && ["checking", "turning_on", "turning_off"].indexOf(state) === -1;
}"""
IPHONE_SAFARI = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"
)

# Counts every permission request, so a test can prove none happens before the tap.
COUNT_PERMISSION_REQUESTS = """
(() => {
  if (!("Notification" in window)) return;
  window.__permissionRequests = 0;
  const ask = Notification.requestPermission.bind(Notification);
  Notification.requestPermission = function (callback) {
    window.__permissionRequests += 1;
    return ask(callback);
  };
})();
"""

# A push service for the page: subscribe() returns a subscription like the browser's (kept in
# localStorage, so it survives a reload as a real one would) and records the options it was given.
FAKE_PUSH_SERVICE = """
(() => {
  const STORE = "e2e-fake-subscription";
  const KEYS = %s;
  function subscription(saved) {
    return {
      endpoint: saved.json.endpoint,
      options: { userVisibleOnly: true, applicationServerKey: new Uint8Array(saved.key).buffer },
      toJSON() { return saved.json; },
      unsubscribe() { localStorage.removeItem(STORE); return Promise.resolve(true); },
    };
  }
  PushManager.prototype.getSubscription = function () {
    const saved = localStorage.getItem(STORE);
    return Promise.resolve(saved ? subscription(JSON.parse(saved)) : null);
  };
  PushManager.prototype.subscribe = function (options) {
    const key = Array.from(new Uint8Array(options.applicationServerKey));
    window.__subscribedWith = { userVisibleOnly: options.userVisibleOnly, key: key };
    const saved = {
      key: key,
      json: {
        endpoint: "https://fcm.googleapis.com/fcm/send/e2e-" + Date.now(),
        expirationTime: null,
        keys: KEYS,
      },
    };
    localStorage.setItem(STORE, JSON.stringify(saved));
    return Promise.resolve(subscription(saved));
  };
})();
"""

NO_PUSH_MANAGER = "delete window.PushManager;"


# Playwright's wait_for_function does not await a promise (a pending one counts as truthy), so
# conditions that need an async browser API are polled inside the page, up to a deadline.
DELIVERIES = 3
DELIVERY_WAIT_MS = 15000  # generous: a busy CI machine is slow
NOTIFICATION_SHOWN = """async ([tag, wait]) => {
  const registration = await navigator.serviceWorker.ready;
  const deadline = Date.now() + wait;
  while (Date.now() < deadline) {
    if ((await registration.getNotifications({ tag: tag })).length > 0) return true;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  return false;
}"""
GUIDE_KEPT = """async () => {
  const deadline = Date.now() + 30000;  // generous: a busy CI machine is slow
  while (Date.now() < deadline) {
    const pages = await caches.open("pages");
    if (await pages.match("/me/") && await pages.match("/me/check-in")) return true;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  return false;
}"""


def online_once(page, base: str, link_path: str) -> None:  # type: ignore[no-untyped-def]
    """go_online_first, and really wait until the guide and check-in are kept for offline use."""
    go_online_first(page, base, link_path)
    assert page.evaluate(GUIDE_KEPT), "the service worker did not keep the patient pages"


def fake_push_service() -> str:
    return FAKE_PUSH_SERVICE % json.dumps(browser_keys())


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def subscriptions(app: Flask) -> list[dict[str, Any]]:
    with app.app_context():
        rows = db.session.scalars(select(PushSubscription)).all()
        found = [
            {"endpoint": r.endpoint, "p256dh": r.p256dh, "patient_id": r.patient_id} for r in rows
        ]
        db.session.remove()
        return found


def settle(page) -> str:  # type: ignore[no-untyped-def]
    page.wait_for_function(STATE_SETTLED)
    return page.locator("#push").get_attribute("data-state") or ""


def open_reminders(page, base: str, link_path: str) -> str:  # type: ignore[no-untyped-def]
    online_once(page, base, link_path)
    page.goto(base + "/me/reminders")
    return settle(page)


# --- the button and its states ---------------------------------------------------------------------


def test_permission_is_asked_only_from_the_tap(phone, server, patient_visit):
    visit = patient_visit()
    phone.add_init_script(COUNT_PERMISSION_REQUESTS)
    assert open_reminders(phone, server.url, visit.link_path) == "off"
    # Loaded, worker ready, state shown: and nothing was asked.
    assert phone.evaluate("window.__permissionRequests") == 0
    assert phone.evaluate("Notification.permission") == "default"
    expect(phone.locator("#push-state")).to_have_text("Reminders are off on this phone.")
    expect(phone.locator("#push-nojs")).to_be_hidden()

    # Keyboard only: the button is reachable and works with Enter.
    button = phone.get_by_role("button", name="Turn on reminders on this phone")
    button.focus()
    phone.keyboard.press("Enter")
    # Headless chromium answers the question itself with "denied": the page must say so and how
    # to change it, and offer the calendar.
    assert settle(phone) == "blocked"
    assert phone.evaluate("window.__permissionRequests") == 1
    expect(phone.locator("#push-state")).to_have_text(
        "This browser blocks notifications from this app."
    )
    expect(phone.locator("#push-blocked")).to_be_visible()
    expect(phone.locator("#push-calendar a")).to_be_visible()
    expect(phone.locator("#live-status")).to_contain_text("blocks notifications")


def test_a_browser_that_already_blocks_notifications_is_explained_on_arrival(
    phone, server, patient_visit
):
    visit = patient_visit()
    online_once(phone, server.url, visit.link_path)
    cdp = phone.context.new_cdp_session(phone)
    context_id = cdp.send("Target.getTargetInfo")["targetInfo"]["browserContextId"]
    cdp.send(
        "Browser.setPermission",
        {
            "permission": {"name": "notifications"},
            "setting": "denied",
            "origin": server.url,
            "browserContextId": context_id,
        },
    )
    phone.add_init_script(COUNT_PERMISSION_REQUESTS)
    phone.goto(server.url + "/me/reminders")
    assert settle(phone) == "blocked"
    assert phone.evaluate("window.__permissionRequests") == 0
    expect(phone.locator("#push-blocked")).to_be_visible()
    expect(phone.get_by_role("button", name="Turn on reminders on this phone")).to_be_visible()


def test_turning_on_stores_the_subscription_and_turning_off_removes_it(
    phone, server, live_app, patient_visit
):
    visit = patient_visit()
    phone.context.grant_permissions(["notifications"], origin=server.url)
    phone.add_init_script(fake_push_service())
    assert open_reminders(phone, server.url, visit.link_path) == "off"
    assert subscriptions(live_app) == []

    phone.get_by_role("button", name="Turn on reminders on this phone").click()
    assert settle(phone) == "on"
    expect(phone.locator("#push-state")).to_have_text("Reminders are on for this phone.")
    expect(phone.locator("#live-status")).to_contain_text("Reminders are on for this phone.")
    # The pressed button is gone; focus stays in the section, not lost to the page.
    expect(phone.locator("#push-h")).to_be_focused()
    expect(phone.get_by_role("button", name="Turn on reminders on this phone")).to_be_hidden()

    # Subscribed with the server's own key, for notifications the patient sees.
    used = phone.evaluate("window.__subscribedWith")
    assert used["userVisibleOnly"] is True
    assert b64url(bytes(used["key"])) == live_app.config["VAPID_PUBLIC_KEY"]
    [stored] = subscriptions(live_app)
    endpoint = phone.evaluate(
        "navigator.serviceWorker.ready.then(r => r.pushManager.getSubscription()).then(s => s.endpoint)"
    )
    assert stored["endpoint"] == endpoint

    # A later visit finds it on, without asking anything.
    phone.reload()
    assert settle(phone) == "on"
    assert len(subscriptions(live_app)) == 1

    phone.get_by_role("button", name="Turn off on this phone").click()
    assert settle(phone) == "off"
    expect(phone.locator("#push-state")).to_have_text("Reminders are off on this phone.")
    expect(phone.locator("#push-h")).to_be_focused()
    assert subscriptions(live_app) == []
    assert phone.evaluate("localStorage.getItem('e2e-fake-subscription')") is None


def test_a_failed_subscription_says_why_and_offers_the_calendar(phone, server, patient_visit):
    # No stub: chromium has no push service it can reach here, so subscribing really fails.
    visit = patient_visit(language="es")
    phone.context.grant_permissions(["notifications"], origin=server.url)
    assert open_reminders(phone, server.url, visit.link_path) == "off"
    phone.get_by_role("button", name="Activar los recordatorios en este teléfono").click()
    assert settle(phone) == "failed"
    expect(phone.locator("#push-state")).to_have_text(
        "No se pudieron activar los recordatorios. El navegador no pudo contactar con su "
        "servicio de notificaciones. Puedes añadir los recordatorios a tu calendario."
    )
    expect(phone.locator("#push-calendar a")).to_be_visible()
    # "Try again" stays possible.
    expect(phone.locator("#push-on")).to_be_visible()


def test_an_ended_link_is_named_as_the_reason(phone, server, live_app, patient_visit):
    visit = patient_visit()
    phone.context.grant_permissions(["notifications"], origin=server.url)
    phone.add_init_script(fake_push_service())
    assert open_reminders(phone, server.url, visit.link_path) == "off"
    phone.context.clear_cookies()  # as if the clinic revoked the link meanwhile
    phone.get_by_role("button", name="Turn on reminders on this phone").click()
    assert settle(phone) == "failed"
    expect(phone.locator("#push-state")).to_contain_text(
        "Your link has ended or was replaced. Ask your clinic for a new link."
    )
    assert subscriptions(live_app) == []


def test_iphone_safari_outside_the_home_screen_gets_the_home_screen_steps(
    browser, server, patient_visit
):
    visit = patient_visit()
    context = browser.new_context(**PHONE, user_agent=IPHONE_SAFARI)
    page = context.new_page()
    # Safari outside a Home Screen app has no PushManager and no navigator.standalone === true.
    page.add_init_script(NO_PUSH_MANAGER)
    page.add_init_script(COUNT_PERMISSION_REQUESTS)
    page.goto(server.url + visit.link_path)
    page.goto(server.url + "/me/reminders")
    assert settle(page) == "ios"
    expect(page.locator("#push-ios")).to_be_visible()
    expect(page.locator("#push-ios")).to_contain_text("Add to Home Screen")
    expect(page.locator("#push-on")).to_be_hidden()
    expect(page.locator("#push-off")).to_be_hidden()
    expect(page.get_by_role("link", name="Subscribe in my calendar app")).to_be_visible()
    assert page.evaluate("window.__permissionRequests") == 0
    context.close()


def test_a_browser_without_web_push_offers_the_calendar(phone, server, patient_visit):
    visit = patient_visit()
    phone.add_init_script(NO_PUSH_MANAGER)
    phone.goto(server.url + visit.link_path)
    phone.goto(server.url + "/me/reminders")
    assert settle(phone) == "unsupported"
    expect(phone.locator("#push-state")).to_contain_text("Add them to your calendar instead")
    expect(phone.locator("#push-calendar a")).to_be_visible()
    expect(phone.locator("#push-on")).to_be_hidden()


def test_the_calendar_links_and_server_forms_work_without_javascript(
    browser, server, live_app, patient_visit
):
    visit = patient_visit()
    context = browser.new_context(**PHONE, java_script_enabled=False)
    page = context.new_page()
    page.goto(server.url + visit.link_path)
    page.goto(server.url + "/me/reminders")
    expect(page.locator("#push-nojs")).to_be_visible()
    subscribe = page.get_by_role("link", name="Subscribe in my calendar app")
    assert (subscribe.get_attribute("href") or "").startswith("webcal://")
    download = page.get_by_role("link", name="Download the calendar file")
    feed = page.request.get(download.get_attribute("href") or "")
    assert feed.ok and "BEGIN:VCALENDAR" in feed.text()

    page.get_by_label("Quiet from").fill("22:00")
    page.get_by_label("Quiet until").fill("07:00")
    page.get_by_role("button", name="Save quiet hours").click()
    expect(page.locator("p.notice[role=status]")).to_contain_text("Quiet hours saved.")
    expect(page.locator("#quiet")).to_contain_text("Your quiet hours: from")

    page.get_by_role("button", name="I'm fully recovered, stop reminders").click()
    expect(page.get_by_role("heading", name="Reminders are stopped")).to_be_visible()
    page.get_by_role("button", name="Start reminders again").click()
    expect(page.get_by_role("heading", name="Your next reminders")).to_be_visible()
    context.close()


# --- the service worker ----------------------------------------------------------------------------

NOTIFICATIONS = """async (tag) => {
  const registration = await navigator.serviceWorker.ready;
  const shown = await registration.getNotifications(tag ? { tag: tag } : undefined);
  return shown.map((n) => ({
    title: n.title, body: n.body, tag: n.tag, url: n.data && n.data.url, lang: n.lang,
    icon: n.icon, badge: n.badge,
  }));
}"""


class PushDevice:
    """The phone's service worker, reached through the DevTools protocol."""

    def __init__(self, page, origin: str) -> None:  # type: ignore[no-untyped-def]
        self.page = page
        self.origin = origin
        self.cdp = page.context.new_cdp_session(page)
        registrations: list[dict[str, Any]] = []
        self.cdp.on(
            "ServiceWorker.workerRegistrationUpdated",
            lambda event: registrations.extend(event["registrations"]),
        )
        self.cdp.send("ServiceWorker.enable")
        page.wait_for_function(SW_CONTROLS)  # the worker is active and controls the page
        # The event arrives once the protocol domain is enabled; let the driver deliver it.
        for _ in range(100):
            if registrations:
                break
            self.page.evaluate("() => new Promise((resolve) => setTimeout(resolve, 0))")
        assert registrations, "DevTools reported no service worker registration"
        self.registration_id = registrations[0]["registrationId"]

    def push(self, data: str) -> None:
        self.last_pushed = data
        self.cdp.send(
            "ServiceWorker.deliverPushMessage",
            {"origin": self.origin, "registrationId": self.registration_id, "data": data},
        )

    def shown(self, tag: str | None = None) -> list[dict[str, Any]]:
        return self.page.evaluate(NOTIFICATIONS, tag)

    def wait_for(self, tag: str) -> dict[str, Any]:
        """The notification the last push showed. DevTools discards the outcome of a delivery
        (Chromium's handler passes a no-op callback), so one dropped while the worker starts on a
        loaded machine looks like silence; a real push service retries such a message. So does
        this: the same message, twice more at most, which the tag makes harmless (a resend
        replaces the notification, as the dedupe test below checks)."""
        for _ in range(DELIVERIES):
            if self.page.evaluate(NOTIFICATION_SHOWN, [tag, DELIVERY_WAIT_MS]):
                break
            self.push(self.last_pushed)
        else:
            raise AssertionError(f"no notification tagged {tag!r} after {DELIVERIES} deliveries")
        [notification] = self.shown(tag)
        return notification

    def worker(self):  # type: ignore[no-untyped-def]
        [worker] = self.page.context.service_workers
        return worker


def message(**fields: str) -> str:
    body = {"title": "Aftercare reminder", "body": "Good morning.", "url": "/me/check-in"}
    body.update(fields)
    return json.dumps(body)


def test_a_push_shows_its_notification_with_title_body_tag_and_page(phone, server, patient_visit):
    visit = patient_visit()
    phone.context.grant_permissions(["notifications"], origin=server.url)
    online_once(phone, server.url, visit.link_path)
    device = PushDevice(phone, server.url)

    device.push(message(title="Aftercare reminder", body="Two days on.", tag="a1b2"))
    shown = device.wait_for("a1b2")
    assert shown["title"] == "Aftercare reminder" and shown["body"] == "Two days on."
    assert shown["url"] == server.url + "/me/check-in"
    assert shown["lang"] == "en"
    assert "/static/icons/icon-192.png" in shown["icon"]
    assert "/static/icons/badge-96.png" in shown["badge"]

    # The same reminder again (delivery is at least once): one notification, not two.
    device.push(message(title="Aftercare reminder", body="Two days on.", tag="a1b2"))
    device.push(message(tag="c3d4"))
    device.wait_for("c3d4")
    assert len(device.shown("a1b2")) == 1


@pytest.mark.parametrize(
    "payload",
    ["", "not json", "[1, 2]", json.dumps({"title": 7, "body": None, "url": "/me/"})],
    ids=["empty", "not-json", "not-an-object", "wrong-types"],
)
def test_a_push_without_a_usable_message_still_shows_a_neutral_one_in_the_patients_language(
    payload, phone, server, patient_visit
):
    visit = patient_visit(language="es")
    phone.context.grant_permissions(["notifications"], origin=server.url)
    online_once(phone, server.url, visit.link_path)
    device = PushDevice(phone, server.url)
    device.push(payload)
    shown = device.wait_for("reminder")
    assert shown["title"] == "Recordatorio de cuidados"
    assert shown["body"] == "Tienes un nuevo recordatorio de cuidados. Toca para abrir tu guía."
    assert shown["url"] == server.url + "/me/"
    assert shown["lang"] == "es"


def test_a_push_never_leads_off_our_patient_pages(phone, server, patient_visit):
    visit = patient_visit()
    phone.context.grant_permissions(["notifications"], origin=server.url)
    online_once(phone, server.url, visit.link_path)
    device = PushDevice(phone, server.url)
    for tag, url in [
        ("elsewhere", "https://evil.example/me/check-in"),
        ("clinic", "/clinic/"),
        ("script", "javascript:alert(1)"),
    ]:
        device.push(message(tag=tag, url=url))
        assert device.wait_for(tag)["url"] == server.url + "/me/"


CLICK = """async (tag) => {
  const [notification] = await self.registration.getNotifications({ tag: tag });
  const event = new NotificationEvent("notificationclick", { notification: notification });
  let handled = null;
  event.waitUntil = (promise) => { handled = promise; };  // to wait for the handler's work
  self.dispatchEvent(event);
  await handled;
}"""


def test_a_tap_on_the_notification_opens_its_page_signed_in(phone, server, patient_visit):
    visit = patient_visit()
    phone.context.grant_permissions(["notifications"], origin=server.url)
    online_once(phone, server.url, visit.link_path)
    device = PushDevice(phone, server.url)
    device.push(message(tag="morning", url="/me/check-in"))
    device.wait_for("morning")

    # The patient's window (on the guide) is taken to the check-in, signed in by the cookie.
    device.worker().evaluate(CLICK, "morning")
    expect(phone).to_have_url(server.url + "/me/check-in")
    expect(phone.get_by_role("heading", level=1)).to_have_text("How are you?")
    assert device.shown("morning") == []  # closed by the tap

    # A foreign address in a message opens the guide instead.
    device.push(message(tag="foreign", url="https://evil.example/"))
    device.wait_for("foreign")
    device.worker().evaluate(CLICK, "foreign")
    expect(phone).to_have_url(server.url + "/me/")
    expect(phone.get_by_role("heading", level=1)).to_have_text("Hello Robin")


def test_a_tap_while_offline_opens_the_kept_page_not_a_blank_one(phone, server, patient_visit):
    visit = patient_visit()
    phone.context.grant_permissions(["notifications"], origin=server.url)
    online_once(phone, server.url, visit.link_path)
    device = PushDevice(phone, server.url)
    device.push(message(tag="offline", url="/me/check-in"))
    device.wait_for("offline")
    server.stop()
    phone.context.set_offline(True)
    device.worker().evaluate(CLICK, "offline")
    expect(phone).to_have_url(server.url + "/me/check-in")
    expect(phone.get_by_role("heading", level=1)).to_have_text("How are you?")


RESUBSCRIBE = """async ([keys, oldEndpoint]) => {
  const renewed = {
    endpoint: "https://fcm.googleapis.com/fcm/send/e2e-renewed",
    toJSON() { return { endpoint: this.endpoint, expirationTime: null, keys: keys }; },
  };
  let usedKey = null;
  // The real push service is out of reach here; the worker's own code does everything else.
  self.registration.pushManager.getSubscription = async () => null;
  self.registration.pushManager.subscribe = async (options) => {
    usedKey = Array.from(new Uint8Array(options.applicationServerKey));
    return renewed;
  };
  const event = new ExtendableEvent("pushsubscriptionchange");
  Object.defineProperty(event, "oldSubscription", { value: { endpoint: oldEndpoint } });
  let handled = null;
  event.waitUntil = (promise) => { handled = promise; };
  self.dispatchEvent(event);
  await handled;
  return usedKey;
}"""


def test_a_replaced_subscription_is_renewed_by_the_worker_itself(
    phone, server, live_app, patient_visit
):
    visit = patient_visit()
    phone.context.grant_permissions(["notifications"], origin=server.url)
    phone.add_init_script(fake_push_service())
    assert open_reminders(phone, server.url, visit.link_path) == "off"
    phone.get_by_role("button", name="Turn on reminders on this phone").click()
    assert settle(phone) == "on"
    [old] = subscriptions(live_app)

    device = PushDevice(phone, server.url)
    key = device.worker().evaluate(RESUBSCRIBE, [browser_keys(), old["endpoint"]])
    assert b64url(bytes(key)) == live_app.config["VAPID_PUBLIC_KEY"]
    # The new endpoint is stored for the same patient (the worker's request carried the cookie),
    # and the old one is forgotten.
    [renewed] = subscriptions(live_app)
    assert renewed["endpoint"] == "https://fcm.googleapis.com/fcm/send/e2e-renewed"
    assert renewed["patient_id"] == old["patient_id"]


# --- a push service that does not answer -----------------------------------------------------------

# pushManager.subscribe() never settles, as with a push service that does not answer; the calls
# are counted so the test knows the page is waiting on it.
PUSH_SERVICE_NEVER_ANSWERS = """
(() => {
  window.__subscribeCalls = 0;
  PushManager.prototype.getSubscription = function () { return Promise.resolve(null); };
  PushManager.prototype.subscribe = function () {
    window.__subscribeCalls += 1;
    return new Promise(() => {});
  };
})();
"""


@pytest.mark.parametrize(
    ("language", "button", "turning_on", "message"),
    [
        (
            "en",
            "Turn on reminders on this phone",
            "Turning reminders on…",
            "Reminders could not be turned on. There was no answer in time, so we stopped "
            "waiting. You can add the reminders to your calendar instead.",
        ),
        (
            "es",
            "Activar los recordatorios en este teléfono",
            "Activando los recordatorios…",
            "No se pudieron activar los recordatorios. No hubo respuesta a tiempo, así que "
            "dejamos de esperar. Puedes añadir los recordatorios a tu calendario.",
        ),
    ],
)
def test_push_that_never_answers_gives_the_message_after_20_s(
    phone, server, patient_visit, language, button, turning_on, message
):
    visit = patient_visit(language=language)
    phone.context.grant_permissions(["notifications"], origin=server.url)
    phone.add_init_script(PUSH_SERVICE_NEVER_ANSWERS)
    # The page's clock is the test's (as in test_pwa.py): 20 s pass when the test says so, and the
    # page runs with its real limit; nothing in the app can shorten it.
    phone.clock.install()
    assert open_reminders(phone, server.url, visit.link_path) == "off"
    assert phone.evaluate("PushToggle.TURN_ON_LIMIT_MS") == 20_000
    phone.clock.pause_at(phone.evaluate("Date.now()") / 1000 + 1)

    phone.get_by_role("button", name=button).click()
    phone.wait_for_function("() => window.__subscribeCalls === 1", polling=50)
    panel, state = phone.locator("#push"), phone.locator("#push-state")
    expect(panel).to_have_attribute("data-state", "turning_on")
    expect(panel).to_have_attribute("aria-busy", "true")

    phone.clock.fast_forward(19_999)
    # Not a moment before the limit ...
    expect(panel).to_have_attribute("data-state", "turning_on")
    expect(state).to_have_text(turning_on)
    # ... and at it, the spinner's state ends with what happened and the way to the calendar.
    phone.clock.fast_forward(1)
    expect(panel).to_have_attribute("data-state", "failed")
    expect(panel).to_have_attribute("aria-busy", "false")
    expect(state).to_have_text(message)
    calendar = phone.locator("#push-calendar a")
    expect(calendar).to_be_visible()
    expect(calendar).to_have_attribute("href", "#calendar-h")
    # Trying again stays possible.
    expect(phone.get_by_role("button", name=button)).to_be_visible()
    phone.clock.resume()  # the announcement waits 100 ms (app.js) on the page's clock
    expect(phone.locator("#live-status")).to_contain_text(message)
    calendar.click()
    expect(phone.locator("#calendar-h")).to_be_in_viewport()


# The fake push service above, answering only when the test calls window.__answerNow().
PUSH_SERVICE_ANSWERS_LATE = """
(() => {
  const answer = PushManager.prototype.subscribe;
  PushManager.prototype.subscribe = function (options) {
    return new Promise((resolve) => {
      window.__answerNow = () => resolve(answer.call(this, options));
    });
  };
})();
"""


def test_a_push_service_that_answers_after_the_limit_still_turns_reminders_on(
    phone, server, live_app, patient_visit
):
    visit = patient_visit()
    phone.context.grant_permissions(["notifications"], origin=server.url)
    phone.add_init_script(fake_push_service())
    phone.add_init_script(PUSH_SERVICE_ANSWERS_LATE)
    phone.clock.install()
    assert open_reminders(phone, server.url, visit.link_path) == "off"
    phone.clock.pause_at(phone.evaluate("Date.now()") / 1000 + 1)
    phone.get_by_role("button", name="Turn on reminders on this phone").click()
    phone.wait_for_function("() => typeof window.__answerNow === 'function'", polling=50)
    phone.clock.fast_forward(20_000)
    expect(phone.locator("#push")).to_have_attribute("data-state", "failed")
    phone.clock.resume()

    # The push service answers at last, and the page registers the phone: it is on, and says so
    # instead of leaving "could not be turned on" on the screen.
    phone.evaluate("window.__answerNow()")
    expect(phone.locator("#push")).to_have_attribute("data-state", "on")
    expect(phone.locator("#push-state")).to_have_text("Reminders are on for this phone.")
    assert len(subscriptions(live_app)) == 1
