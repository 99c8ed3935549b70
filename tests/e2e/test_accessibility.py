"""Every patient page, in English and Spanish, checked by axe-core in chromium (WCAG 2.1 A and AA
plus axe's best practices), and no English left on a Spanish page. Also the states that only the
scripts draw (the offline outbox, the in-page triage result, the reminder button's states) and a
320 px wide screen."""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import pytest
from babel.messages.pofile import read_po
from playwright.sync_api import expect

from .conftest import PHONE
from .test_pwa import check_in, go_online_first, lose_network
from .test_reminders import (
    IPHONE_SAFARI,
    NO_PUSH_MANAGER,
    fake_push_service,
    open_reminders,
    settle,
)

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
CATALOG = ROOT / "companion" / "translations" / "es" / "LC_MESSAGES" / "messages.po"
RUN_AXE = """async () => {
  const result = await axe.run(document, {
    runOnly: { type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"] },
  });
  return result.violations.map((v) => ({
    id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map((n) => n.target.join(" ")),
  }));
}"""


@pytest.fixture
def axe_page(browser):  # type: ignore[no-untyped-def]
    if not AXE.exists():
        pytest.skip("axe-core is not installed: run `make test` (it runs `npm ci`)")
    # axe is injected as a script; our CSP (rightly) forbids that, so only this context bypasses it.
    context = browser.new_context(**PHONE, bypass_csp=True)
    page = context.new_page()
    yield page
    context.close()


def axe_violations(page) -> list[dict]:  # type: ignore[no-untyped-def]
    page.add_script_tag(path=str(AXE))
    return page.evaluate(RUN_AXE)


def english_fragments() -> list[str]:
    """English texts of the catalogue whose Spanish differs, cut at placeholders and markup."""
    with CATALOG.open("rb") as handle:
        catalog = read_po(handle)
    fragments: set[str] = set()
    for message in catalog:
        if not message.id:
            continue
        ids = message.id if isinstance(message.id, tuple) else (message.id,)
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        # An untranslated message (empty string) would show its English: it must be caught too.
        for english in ids:
            if english in strings:
                continue
            for piece in re.split(r"%\(\w+\)[sd]|%[sd]|<[^>]+>", english):
                piece = piece.strip(" .,:;·")
                # Short pieces ("Remove", "Heat") may also be Spanish words or names: skip them.
                if len(piece) >= 14:
                    fragments.add(piece)
    return sorted(fragments)


def page_states(page, base: str, link_path: str) -> list[tuple[str, callable]]:  # type: ignore[valid-type]
    """Each patient page and state, as (name, how to reach it)."""

    def visit(path: str):  # type: ignore[no-untyped-def]
        return lambda: page.goto(base + path)

    def missing_score():  # type: ignore[no-untyped-def]
        # Without scripts the form posts to the server, which answers with the messages.
        page.goto(base + "/me/check-in")
        page.evaluate("document.getElementById('checkin-form').submit()")

    def result(level_soreness: int, red: tuple[str, ...] = ()):  # type: ignore[no-untyped-def]
        def go() -> None:
            page.goto(base + "/me/check-in")
            check_in(page, soreness=level_soreness, red_flags=red)
            expect(page.locator("#checkin-state")).not_to_be_empty()

        return go

    def quiet_hours_error():  # type: ignore[no-untyped-def]
        # Sent to the server as the form is (no script handles it): the page answers with messages.
        page.goto(base + "/me/reminders")
        page.locator("#start").fill("")
        page.locator("#quiet button[type=submit]").click()
        expect(page.locator("#start-errors")).to_be_visible()

    def reminders_stopped():  # type: ignore[no-untyped-def]
        page.goto(base + "/me/reminders")
        page.locator("#recovered button[type=submit]").click()
        expect(page.locator("#stopped")).to_be_visible()

    def stored_result():  # type: ignore[no-untyped-def]
        page.goto(base + "/me/check-in")
        check_in(page, soreness=3)
        expect(page.locator("#checkin-state")).not_to_be_empty()
        entry = page.evaluate("fetch('/api/v1/checkins').then((r) => r.json())")["checkins"][0]
        page.goto(f"{base}/me/check-in/{entry['id']}")

    def history_with_flags():  # type: ignore[no-untyped-def]
        # After the amber and red results above: both marked on the chart by shape, and in the list.
        page.goto(base + "/me/check-ins")
        expect(page.locator("figure.chart polygon.marker.red")).to_have_count(1)
        expect(page.locator("figure.chart polygon.marker.amber")).to_have_count(1)
        expect(page.locator(".history .flag.red")).to_have_count(1)
        expect(page.locator(".history .flag.amber")).to_have_count(1)

    def deletion_asked():  # type: ignore[no-untyped-def]
        page.goto(base + "/me/data/delete")
        page.locator("main form button[type=submit]").click()
        expect(page.locator("#delete .state")).to_be_visible()

    return [
        ("home", visit("/me/")),
        ("check-in", visit("/me/check-in")),
        ("check-in with a missing score", missing_score),
        ("green result", result(2)),
        ("amber result", result(9)),
        ("red result", result(1, ("chest_pain",))),
        ("stored result page", stored_result),
        ("history with chart, a red and an amber check-in", history_with_flags),
        ("reminders", visit("/me/reminders")),
        ("reminders with a quiet-hours error", quiet_hours_error),
        ("offline page", visit("/me/offline")),
        ("unknown page", visit(f"/me/check-in/{uuid.uuid4()}")),
        ("your data", visit("/me/data")),
        ("ask to delete", visit("/me/data/delete")),
        ("deletion asked", deletion_asked),
        ("home with a deletion pending", visit("/me/")),
        # Last: it stops the visit's reminders, which changes the guide too.
        ("reminders stopped", reminders_stopped),
    ]


@pytest.mark.parametrize("language", ["en", "es"])
def test_every_patient_page_passes_axe_and_speaks_one_language(
    language, axe_page, server, patient_visit
):
    visit = patient_visit(language=language)
    page = axe_page
    page.goto(server.url + visit.link_path)
    fragments = english_fragments() if language == "es" else []
    assert language == "en" or len(fragments) > 100
    checked = []
    for name, reach in page_states(page, server.url, visit.link_path):
        reach()
        assert page.locator("html").get_attribute("lang") == language, name
        assert axe_violations(page) == [], name
        if language == "es":
            text = page.evaluate("document.documentElement.textContent")
            left = [f for f in fragments if f in text]
            assert left == [], f"English on the Spanish {name} page: {left}"
        checked.append(name)
    # The link page after the link was revoked or never valid: no cookie, no patient.
    page.context.clear_cookies()
    page.goto(server.url + "/me/")
    assert axe_violations(page) == [], "link not valid"
    assert len(checked) == 17


@pytest.mark.parametrize("language", ["en", "es"])
def test_the_offline_outbox_passes_axe(language, axe_page, server, patient_visit):
    visit = patient_visit(language=language)
    page = axe_page
    go_online_first(page, server.url, visit.link_path)
    lose_network(page, server)
    page.goto(server.url + "/me/check-in")
    check_in(page, soreness=4)
    expect(page.locator("#checkin-state")).not_to_be_empty()
    page.goto(server.url + "/me/check-ins")
    expect(page.locator("#outbox-list > li")).to_have_count(1)
    assert axe_violations(page) == []


def test_patient_pages_fit_a_320_px_screen_and_200_percent_zoom(browser, server, patient_visit):
    visit = patient_visit()
    # 320 CSS px wide, as WCAG 1.4.10 asks; 640 px at 200% zoom is the same layout width.
    context = browser.new_context(viewport={"width": 320, "height": 640}, is_mobile=True)
    page = context.new_page()
    page.goto(server.url + visit.link_path)
    paths = ("/me/", "/me/check-in", "/me/check-ins", "/me/reminders", "/me/offline", "/me/data")
    for path in (*paths, "/me/data/delete"):
        page.goto(server.url + path)
        overflow = page.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 0, path
    context.close()


@pytest.mark.parametrize("language", ["en", "es"])
def test_the_reminder_button_states_pass_axe_and_speak_one_language(
    language, axe_page, browser, server, patient_visit
):
    visit = patient_visit(language=language)
    page = axe_page
    fragments = english_fragments() if language == "es" else []

    def check(expected_state: str) -> None:
        assert settle(page) == expected_state
        assert axe_violations(page) == [], expected_state
        text = page.evaluate("document.documentElement.textContent")
        assert [f for f in fragments if f in text] == [], expected_state

    open_reminders(page, server.url, visit.link_path)
    page.locator("#push-on").click()  # headless chromium answers "denied" by itself
    check("blocked")
    page.context.grant_permissions(["notifications"], origin=server.url)
    page.reload()
    page.locator("#push-on").click()  # no push service reachable here
    check("failed")
    page.add_init_script(fake_push_service())
    page.reload()
    page.locator("#push-on").click()
    check("on")

    iphone = browser.new_context(**PHONE, user_agent=IPHONE_SAFARI, bypass_csp=True)
    page = iphone.new_page()
    page.add_init_script(NO_PUSH_MANAGER)
    page.goto(server.url + visit.link_path)
    page.goto(server.url + "/me/reminders")
    check("ios")
    iphone.close()
