"""The patient app as an installable, offline-first web app, in Debian's chromium on a phone-sized
screen: installability, offline pages, the outbox across a browser restart, and offline triage."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from playwright.sync_api import expect

from companion.care.triage import EarlierScore, triage
from companion.timeutil import utcnow

from ..test_triage import ALL_CASES
from .conftest import stored_checkins

pytestmark = pytest.mark.e2e

SW_CONTROLS = "() => navigator.serviceWorker.controller !== null"
PAGES_KEPT = """async () => {
  const pages = await caches.open("pages");
  const kept = await Promise.all(["/me/", "/me/check-in"].map((url) => pages.match(url)));
  const offline = await (await caches.open("shell")).match("/me/offline");
  return kept.every(Boolean) && !!offline;
}"""
OUTBOX = "() => Outbox.list()"


def wait_until(page, predicate: str, arg: object = None, timeout_ms: int = 15000) -> None:
    """Wait until an async page predicate is true.

    Playwright's wait_for_function does not await a returned promise: the pending promise counts
    as truthy and the wait ends at once. So the polling happens inside one evaluate instead.
    """
    poll = f"""async (arg) => {{
      const predicate = {predicate};
      const deadline = Date.now() + {timeout_ms};
      while (Date.now() < deadline) {{
        if (await predicate(arg)) return true;
        await new Promise((resolve) => setTimeout(resolve, 25));
      }}
      return false;
    }}"""
    assert page.evaluate(poll, arg), f"not true within {timeout_ms} ms: {predicate}"


def go_online_first(page, base: str, link_path: str) -> None:
    """The one online visit: open the link, let the service worker install and keep the pages."""
    page.goto(base + link_path)
    expect(page).to_have_url(base + "/me/")
    page.wait_for_function(SW_CONTROLS)
    wait_until(page, PAGES_KEPT)


def lose_network(page_or_browser, server) -> None:
    """The phone loses its connection: the server is down and the browser knows it is offline."""
    server.stop()
    context = getattr(page_or_browser, "context", page_or_browser)
    context.set_offline(True)


def wait_until_kept(page, path: str, text: str) -> None:
    """Wait until the service worker keeps `path` for offline use with `text` in it."""
    wait_until(
        page,
        """async ([path, text]) => {
             const kept = await (await caches.open("pages")).match(path);
             return !!kept && (await kept.text()).includes(text);
           }""",
        [path, text],
    )


def check_in(page, *, soreness: int, red_flags: tuple[str, ...] = ()) -> None:
    for code in red_flags:
        page.locator(f'input[name="red_flags"][value="{code}"]').check()
    page.locator(f'label[for="soreness-{soreness}"]').click()
    page.locator("#checkin-form button[type=submit]").click()


def test_the_app_is_installable(open_phone, server, patient_visit):
    visit = patient_visit()
    # A profile on disk: chromium never offers to install from an incognito-like context.
    browser = open_phone()
    phone = browser.pages[0] if browser.pages else browser.new_page()
    go_online_first(phone, server.url, visit.link_path)

    cdp = phone.context.new_cdp_session(phone)
    errors = cdp.send("Page.getInstallabilityErrors")["installabilityErrors"]
    assert errors == []

    manifest = phone.request.get(server.url + "/manifest.webmanifest")
    assert manifest.headers["content-type"].startswith("application/manifest+json")
    data = manifest.json()
    assert data["display"] == "standalone" and data["start_url"] == "/me/"
    assert data["name"] and data["short_name"] and data["theme_color"]
    sizes = {(icon["sizes"], icon.get("purpose", "any")) for icon in data["icons"]}
    assert {("192x192", "any"), ("512x512", "any"), ("512x512", "maskable")} <= sizes
    for icon in data["icons"]:
        png = phone.request.get(server.url + icon["src"]).body()
        width = int.from_bytes(png[16:20], "big")
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and f"{width}x{width}" == icon["sizes"]

    worker = phone.evaluate(
        "navigator.serviceWorker.getRegistration().then(r => r.active.scriptURL)"
    )
    assert worker == server.url + "/sw.js"


def test_pages_load_offline_after_one_online_visit(phone, server, patient_visit):
    visit = patient_visit()
    go_online_first(phone, server.url, visit.link_path)
    phone.goto(server.url + "/me/check-in")
    check_in(phone, soreness=6)
    expect(phone.locator("#checkin-state")).to_have_text("Sent to your clinic.")
    # After a sync the phone keeps the history too, with the check-in just sent.
    wait_until_kept(phone, "/me/check-ins", "Soreness 6 out of 10")

    lose_network(phone, server)
    for path, heading in [
        ("/me/", "Hello Robin"),
        ("/me/check-in", "How are you?"),
        ("/me/check-ins", "My check-ins"),
    ]:
        phone.goto(server.url + path)
        expect(phone.get_by_role("heading", level=1)).to_have_text(heading)
    expect(phone.locator(".chart > svg")).to_be_visible()
    expect(phone.locator(".history").get_by_text("Soreness 6 out of 10")).to_be_visible()
    # A patient page never kept on the phone: the offline page, with the emergency number.
    phone.goto(server.url + "/me/check-in/2b0f7b1e-8a8e-4a47-9a34-4b1d8f0f6c11")
    expect(phone.get_by_role("heading", level=1)).to_have_text("You are offline")
    expect(phone.locator('a[href="tel:112"]')).to_be_visible()


def test_twenty_offline_checkins_arrive_exactly_once_after_a_browser_restart(
    open_phone, server, live_app, patient_visit
):
    visit = patient_visit()
    browser = open_phone()
    page = browser.pages[0] if browser.pages else browser.new_page()
    go_online_first(page, server.url, visit.link_path)

    lose_network(browser, server)
    for n in range(10):
        page.goto(server.url + "/me/check-in")
        check_in(page, soreness=n % 6)
        expect(page.locator("#checkin-state")).to_contain_text("Saved on this phone")
    assert len(page.evaluate(OUTBOX)) == 10
    browser.close()  # the phone's browser is closed with ten check-ins unsent

    browser = open_phone()
    browser.set_offline(True)
    page = browser.pages[0] if browser.pages else browser.new_page()
    page.goto(server.url + "/me/check-in")
    expect(page.locator("#outbox-list > li")).to_have_count(10)
    for n in range(10):
        page.goto(server.url + "/me/check-in")
        check_in(page, soreness=(n + 2) % 6)
        expect(page.locator("#checkin-state")).to_contain_text("Saved on this phone")
    page.goto(server.url + "/me/check-ins")
    expect(page.locator("#outbox-list > li")).to_have_count(20)
    expect(page.locator("#outbox-list")).to_contain_text("Saved on this phone.")
    waiting = page.evaluate(OUTBOX)
    assert stored_checkins(live_app, visit.visit_id) == []

    server.start()
    browser.set_offline(False)  # the `online` event flushes the outbox
    wait_until(page, "() => Outbox.list().then((entries) => entries.length === 0)")
    expect(page.locator("#outbox")).to_be_hidden()

    stored = stored_checkins(live_app, visit.visit_id)
    assert len(stored) == 20
    assert sorted(str(c.client_id) for c in stored) == sorted(e["id"] for e in waiting)
    by_id = {e["id"]: e["body"] for e in waiting}
    for checkin in stored:
        assert checkin.soreness == by_id[str(checkin.client_id)]["soreness"]


@pytest.mark.parametrize("online", [True, False], ids=["online", "offline"])
def test_a_red_flag_shows_the_emergency_screen(online, phone, server, live_app, patient_visit):
    visit = patient_visit()
    go_online_first(phone, server.url, visit.link_path)
    if not online:
        lose_network(phone, server)
    phone.goto(server.url + "/me/check-in")
    check_in(phone, soreness=1, red_flags=("breathless",))

    alert = phone.locator("#result-red")
    expect(alert).to_be_visible()
    expect(alert).to_have_attribute("role", "alert")
    expect(alert.get_by_role("heading", level=1)).to_be_focused()
    expect(alert.locator('a[href="tel:112"]')).to_be_visible()
    expect(alert.locator('a[href="tel:+34900111222"]')).to_be_visible()
    expect(phone.locator("#result-green")).to_be_hidden()
    if online:
        expect(phone.locator("#checkin-state")).to_have_text("Sent to your clinic.")
        [stored] = stored_checkins(live_app, visit.visit_id)
        assert stored.triage == "red"
    else:
        expect(phone.locator("#checkin-state")).to_contain_text("Saved on this phone")


def test_browser_and_server_give_the_same_triage_on_every_case(phone, server, patient_visit):
    visit = patient_visit()
    phone.goto(server.url + visit.link_path)
    phone.goto(server.url + "/me/check-in")
    rules = json.loads(phone.locator("#page-data").text_content())["checkin"]["rules"]
    cases = [
        {
            "id": param.id,
            "soreness": soreness,
            "symptoms": symptoms,
            "hours": hours,
            "earlier": [{"hours": e.hours, "soreness": e.soreness} for e in earlier],
        }
        for param in ALL_CASES
        for soreness, symptoms, hours, earlier, _level, _reasons in [param.values]
    ]
    assert len(cases) >= 40
    browser_results = phone.evaluate(
        """([rules, cases]) => cases.map((c) =>
             Triage.triage(rules, c.soreness, c.symptoms, c.hours, c.earlier))""",
        [rules, cases],
    )
    for case, in_browser in zip(cases, browser_results, strict=True):
        earlier = [EarlierScore(e["hours"], e["soreness"]) for e in case["earlier"]]
        on_server = triage(case["soreness"], case["symptoms"], case["hours"], earlier)
        assert (in_browser["level"], in_browser["reasons"]) == (
            on_server.level,
            on_server.keys,
        ), case["id"]


def test_a_new_release_offers_a_reload_and_takes_over_when_tapped(
    phone, server, patient_visit, monkeypatch
):
    visit = patient_visit()
    go_online_first(phone, server.url, visit.link_path)
    first = phone.evaluate("navigator.serviceWorker.controller.scriptURL")
    expect(phone.locator("#update-banner")).to_be_hidden()

    # A deploy: the shell's release changes, so /sw.js changes byte for byte.
    import companion.pwa

    monkeypatch.setattr(companion.pwa, "release", lambda: "next-release")
    phone.reload()
    banner = phone.locator("#update-banner")
    expect(banner).to_be_visible()
    expect(banner).to_contain_text("A new version of this app is ready.")

    with phone.expect_event("load"):
        banner.get_by_role("button", name="Reload").click()
    expect(phone.locator("#update-banner")).to_be_hidden()
    waiting = phone.evaluate("navigator.serviceWorker.getRegistration().then(r => !!r.waiting)")
    assert waiting is False
    assert phone.evaluate("navigator.serviceWorker.controller.scriptURL") == first
    assert phone.evaluate("caches.keys()").count("assets-next-release") == 1


@pytest.mark.parametrize("minutes", [25, -25], ids=["ahead", "behind"])
def test_a_red_flag_from_a_phone_whose_clock_is_wrong_still_reaches_the_clinic(
    minutes, phone, server, live_app, patient_visit
):
    """The server takes a check-in's time only within a few minutes of its own clock and of the
    visit. A phone whose clock is 25 minutes off gets its entry refused once; the outbox corrects
    the time by the difference it reads from the answer's Date header and sends it again."""
    visit = patient_visit(hours_ago=0.1)  # 6 minutes ago: 25 behind is before the visit
    phone.clock.install(time=utcnow() + timedelta(minutes=minutes))
    go_online_first(phone, server.url, visit.link_path)
    phone.goto(server.url + "/me/check-in")
    check_in(phone, soreness=1, red_flags=("breathless",))

    expect(phone.locator("#checkin-state")).to_have_text("Sent to your clinic.")
    [stored] = stored_checkins(live_app, visit.visit_id)
    assert stored.triage == "red"
    # Stored at the moment it was made, in the server's time (the Date header has whole seconds).
    assert abs(stored.recorded_at - stored.received_at) < timedelta(seconds=5)
    assert phone.evaluate("() => Outbox.list()") == []


def test_an_entry_the_server_refuses_stays_on_the_phone_and_is_shown(
    phone, server, live_app, patient_visit
):
    visit = patient_visit()
    go_online_first(phone, server.url, visit.link_path)
    # An entry saved under an earlier visit's link: the server answers 409 other_visit.
    phone.evaluate(
        """() => Outbox.add({id: crypto.randomUUID(), visit_id: "old", state: "pending",
             saved_at: new Date().toISOString(), error: null,
             body: {id: crypto.randomUUID(), visit_id: "5f0c6c55-7d43-4a4e-8f53-0e0b1a1f2c3d",
                    recorded_at: new Date().toISOString(), soreness: 4, usual_pain: null,
                    symptoms: [], helped: [], note: null}})"""
    )
    phone.reload()
    item = phone.locator("#outbox-list > li")
    expect(item).to_have_count(1)
    expect(item).to_contain_text("made with an earlier link")
    [entry] = phone.evaluate(OUTBOX)
    assert entry["state"] == "rejected" and entry["error"] == "other_visit"
    assert stored_checkins(live_app, visit.visit_id) == []

    # Only the patient removes it, by choice.
    item.get_by_role("button", name="Remove").click()
    expect(phone.locator("#outbox")).to_be_hidden()
    assert phone.evaluate(OUTBOX) == []


def test_a_revoked_link_keeps_waiting_entries_and_says_why(phone, server, live_app, patient_visit):
    from companion.extensions import db
    from companion.models import Visit
    from companion.timeutil import utcnow
    from companion.visits.record import revoke_links

    visit = patient_visit()
    go_online_first(phone, server.url, visit.link_path)
    lose_network(phone, server)
    phone.goto(server.url + "/me/check-in")
    check_in(phone, soreness=3)
    expect(phone.locator("#checkin-state")).to_contain_text("Saved on this phone")

    with live_app.app_context():
        revoke_links(db.session.get(Visit, visit.visit_id), utcnow())
        db.session.commit()
    server.start()
    phone.context.set_offline(False)
    notice = phone.locator("#outbox-notice")
    expect(notice).to_be_visible()
    expect(notice).to_contain_text("Ask your clinic for a new link")
    assert len(phone.evaluate(OUTBOX)) == 1
    assert stored_checkins(live_app, visit.visit_id) == []


def test_switching_language_also_switches_the_pages_kept_offline(phone, server, patient_visit):
    visit = patient_visit(language="en")
    go_online_first(phone, server.url, visit.link_path)
    phone.get_by_role("button", name="Español").click()
    expect(phone.locator("html")).to_have_attribute("lang", "es")
    wait_until_kept(phone, "/me/check-in", '<html lang="es">')
    lose_network(phone, server)
    phone.goto(server.url + "/me/check-in")
    expect(phone.locator("html")).to_have_attribute("lang", "es")


def test_a_double_tap_on_send_stores_one_checkin(phone, server, live_app, patient_visit):
    visit = patient_visit()
    go_online_first(phone, server.url, visit.link_path)
    phone.goto(server.url + "/me/check-in")
    phone.locator('label[for="soreness-4"]').click()
    send = phone.locator("#checkin-form button[type=submit]")
    # Two submits in the same task: the second arrives before the first has been stored.
    send.evaluate("(button) => { button.click(); button.click(); }")
    expect(phone.locator("#checkin-state")).to_have_text("Sent to your clinic.")
    assert len(stored_checkins(live_app, visit.visit_id)) == 1


def test_a_new_visits_link_refreshes_the_pages_kept_offline(phone, server, live_app, patient_visit):
    first = patient_visit(hours_ago=30)
    go_online_first(phone, server.url, first.link_path)
    second = patient_visit(hours_ago=1)
    phone.goto(server.url + second.link_path)  # online: the guide of the new visit
    wait_until_kept(phone, "/me/check-in", str(second.visit_id))
    lose_network(phone, server)
    phone.goto(server.url + "/me/check-in")
    check_in(phone, soreness=2)
    expect(phone.locator("#checkin-state")).to_contain_text("Saved on this phone")
    server.start()
    phone.context.set_offline(False)
    wait_until(phone, "() => Outbox.list().then((entries) => entries.length === 0)")
    assert len(stored_checkins(live_app, second.visit_id)) == 1
    assert stored_checkins(live_app, first.visit_id) == []


def test_the_offline_page_shows_a_waiting_check_in_in_the_patients_zone(
    browser, server, patient_visit
):
    """The phone is in Auckland, the patient's zone is Madrid (the clinic's and the reminders'):
    the offline page holds no link and so no zone, yet shows the time as the patient's pages do."""
    from .conftest import PHONE

    context = browser.new_context(**{**PHONE, "timezone_id": "Pacific/Auckland"})
    phone = context.new_page()
    try:
        visit = patient_visit()
        go_online_first(phone, server.url, visit.link_path)
        lose_network(phone, server)
        phone.goto(server.url + "/me/check-in")
        check_in(phone, soreness=5)
        expect(phone.locator("#outbox-list > li")).to_have_count(1)

        phone.goto(server.url + "/me/check-in/2b0f7b1e-8a8e-4a47-9a34-4b1d8f0f6c11")
        expect(phone.get_by_role("heading", level=1)).to_have_text("You are offline")
        [entry] = phone.evaluate(OUTBOX)
        assert entry["timezone"] == "Europe/Madrid"
        shown = {
            zone: phone.evaluate(
                """([iso, zone]) => new Intl.DateTimeFormat("en", {dateStyle: "medium",
                     timeStyle: "short", timeZone: zone}).format(new Date(iso))""",
                [entry["body"]["recorded_at"], zone],
            )
            for zone in ("Europe/Madrid", "Pacific/Auckland")
        }
        assert shown["Europe/Madrid"] != shown["Pacific/Auckland"]
        item = phone.locator("#outbox-list > li")
        expect(item).to_contain_text(shown["Europe/Madrid"])
        expect(item).not_to_contain_text(shown["Pacific/Auckland"])
    finally:
        context.close()
