"""The quick check-in (issue 15) in chromium on a small phone (360 x 640 CSS px): "None of these"
folds the red flags away, so the common check-in (none of these, a score, Send) takes at most two
screens; a ticked red flag always wins over "None of these"; the answers survive the language switch
(kept in this tab's sessionStorage until the entry is kept); and without scripts the form is the
long one it always was, and still works."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from .conftest import stored_checkins
from .test_accessibility import axe_page, axe_violations  # noqa: F401 (a fixture)
from .test_pwa import go_online_first, lose_network

pytestmark = pytest.mark.e2e

SCREEN = {"width": 360, "height": 640}
SMALL_PHONE = {"viewport": SCREEN, "device_scale_factor": 2, "is_mobile": True, "has_touch": True}
TWO_SCREENS = 2 * SCREEN["height"]
UUID = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"

NONE = {"en": "None of these", "es": "Ninguno de estos"}
ANSWER = {"en": "Your answer: none of these.", "es": "Tu respuesta: ninguno de estos."}
SHOW_LIST = {"en": "Show the list again", "es": "Ver la lista otra vez"}
MORE = {"en": "Add more (optional)", "es": "Añadir más (opcional)"}
SEND = {"en": "Send", "es": "Enviar"}
SENT = {"en": "Sent to your clinic.", "es": "Enviado a tu clínica."}
GREEN = {"en": "Thank you, that looks as expected", "es": "Gracias, todo parece normal"}
SWITCH_TO = {"en": "Español", "es": "English"}


@pytest.fixture
def small_phone(browser):  # type: ignore[no-untyped-def]
    context = browser.new_context(**SMALL_PHONE)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    yield page
    context.close()
    assert errors == [], errors  # no script on these pages may throw, whatever it restored


def open_checkin(page, base: str, link_path: str) -> None:
    page.goto(base + link_path)
    page.goto(base + "/me/check-in")
    expect(page.locator("#checkin-form")).to_be_visible()


def bottom_in_document(locator) -> float:
    """Where the element's box ends, in CSS px below the top of the document (not of the window):
    its bottom in the viewport plus how far the page is scrolled. So "within two screens" means the
    patient reaches it by scrolling down at most one screen from the top, wherever the page happens
    to be scrolled when we measure."""
    return locator.evaluate("(el) => el.getBoundingClientRect().bottom + window.scrollY")


def draft(page, visit_id) -> str | None:
    return page.evaluate("(key) => sessionStorage.getItem(key)", f"checkin-draft:{visit_id}")


def switch_language(page, to: str) -> None:
    page.get_by_role("button", name=SWITCH_TO["es" if to == "en" else "en"]).click()
    expect(page.locator("html")).to_have_attribute("lang", to)
    expect(page.locator("#checkin-form")).to_be_visible()


@pytest.mark.parametrize("language", ["en", "es"])
def test_the_common_check_in_takes_at_most_two_screens_and_is_sent(
    language, small_phone, server, live_app, patient_visit
):
    visit = patient_visit(language=language)
    page = small_phone
    open_checkin(page, server.url, visit.link_path)
    none = page.get_by_role("checkbox", name=NONE[language], exact=True)
    # "None of these" comes after the whole list (it answers the list, so the list is read first),
    # and is itself within the first two screens.
    assert bottom_in_document(none) <= TWO_SCREENS

    none.click()
    expect(page.locator("#red-flags-list")).to_be_hidden()
    expect(page.get_by_text(ANSWER[language], exact=True)).to_be_visible()
    # Folded: the score and Send follow at once, the optional part folded above Send.
    send = page.get_by_role("button", name=SEND[language], exact=True)
    expect(page.locator("#checkin-more")).not_to_have_attribute("open", "")
    assert bottom_in_document(send) <= TWO_SCREENS

    page.locator('label[for="soreness-2"]').click()
    send.click()
    expect(page.get_by_role("heading", name=GREEN[language])).to_be_visible()
    expect(page.locator("#checkin-state")).to_have_text(SENT[language])
    [stored] = stored_checkins(live_app, visit.visit_id)
    assert (stored.soreness, stored.symptoms, stored.triage) == (2, [], "green")
    assert draft(page, visit.visit_id) is None


def test_none_of_these_folds_the_list_and_a_ticked_flag_always_wins(
    small_phone, server, live_app, patient_visit
):
    visit = patient_visit()
    page = small_phone
    open_checkin(page, server.url, visit.link_path)
    flags = page.locator("#red-flags-list")
    none = page.get_by_role("checkbox", name=NONE["en"], exact=True)
    show = page.get_by_role("button", name=SHOW_LIST["en"])
    breathless = page.get_by_role("checkbox", name="New shortness of breath")

    none.click()
    expect(flags).to_be_hidden()
    expect(
        show
    ).to_be_focused()  # the box tapped is gone: the focus is on the line that replaced it
    expect(show).to_have_attribute("aria-expanded", "false")

    show.click()
    expect(flags).to_be_visible()
    expect(show).to_be_hidden()
    expect(none).to_be_checked()  # opening the list again changes no answer
    expect(page.locator('input[name="red_flags"]').first).to_be_focused()

    breathless.check()
    expect(none).not_to_be_checked()
    # "None of these" with a flag ticked: the flag stays, the list stays open, and a message says why.
    none.click()
    expect(none).not_to_be_checked()
    expect(breathless).to_be_checked()
    expect(flags).to_be_visible()
    expect(page.get_by_role("alert")).to_have_text(
        "You ticked a sign in this list, so the list stays open. If you do not have it, "
        "untick it first."
    )

    page.locator('label[for="soreness-1"]').click()
    page.get_by_role("button", name=SEND["en"], exact=True).click()
    expect(page.locator("#result-red")).to_be_visible()
    expect(page.locator("#checkin-state")).to_have_text(SENT["en"])
    [stored] = stored_checkins(live_app, visit.visit_id)
    assert (stored.symptoms, stored.triage) == (["breathless"], "red")

    # A new check-in starts from the open list, with nothing chosen.
    page.get_by_role("button", name="Make another check-in").click()
    expect(flags).to_be_visible()
    expect(breathless).not_to_be_checked()
    expect(none).not_to_be_checked()


def test_switching_language_keeps_every_answer_until_it_is_sent(
    small_phone, server, live_app, patient_visit
):
    visit = patient_visit(language="en")
    page = small_phone
    requests: list[tuple[str, str]] = []
    page.on("request", lambda r: requests.append((r.url, r.post_data or "")))
    open_checkin(page, server.url, visit.link_path)
    note = "Calf tight, walking helps"
    page.locator('input[name="red_flags"][value="racing_heart"]').check()
    page.locator('label[for="soreness-4"]').click()
    page.get_by_text(MORE["en"]).click()
    page.locator('input[name="symptoms"][value="tired"]').check()
    page.locator('label[for="usual_pain-5"]').click()
    page.locator('input[name="helped"][value="heat"]').check()
    page.get_by_label("Anything else? (optional)").fill(note)

    switch_language(page, "es")

    # The same page, drawn again in Spanish, with every answer back, and nothing of them in the
    # address or in any request so far (the patient has not pressed Send).
    assert page.url == server.url + "/me/check-in"
    assert stored_checkins(live_app, visit.visit_id) == []
    assert not [url for url, body in requests if note in body or "racing_heart" in body + url]
    checked = page.locator("#checkin-form input:checked")
    expect(checked).to_have_count(5)
    for selector in (
        'input[name="red_flags"][value="racing_heart"]',
        "#soreness-4",
        'input[name="symptoms"][value="tired"]',
        "#usual_pain-5",
        'input[name="helped"][value="heat"]',
    ):
        expect(page.locator(selector)).to_be_checked()
    expect(page.locator("#checkin-more")).to_have_attribute("open", "")
    expect(page.locator("#note")).to_have_value(note)
    expect(page.locator("#red-flags-list")).to_be_visible()

    page.get_by_role("button", name=SEND["es"], exact=True).click()
    expect(page.locator("#result-red")).to_be_visible()
    expect(page.locator("#checkin-state")).to_have_text(SENT["es"])
    [stored] = stored_checkins(live_app, visit.visit_id)
    assert (stored.soreness, stored.usual_pain, stored.helped, stored.note) == (
        4,
        5,
        ["heat"],
        note,
    )
    assert (stored.symptoms, stored.triage) == (["racing_heart", "tired"], "red")
    assert draft(page, visit.visit_id) is None


def test_none_of_these_and_the_score_survive_the_language_switch(
    small_phone, server, patient_visit
):
    visit = patient_visit(language="es")
    page = small_phone
    open_checkin(page, server.url, visit.link_path)
    page.get_by_role("checkbox", name=NONE["es"], exact=True).click()
    page.locator('label[for="soreness-0"]').click()

    switch_language(page, "en")

    expect(page.locator("#red-flags-list")).to_be_hidden()
    expect(page.get_by_text(ANSWER["en"], exact=True)).to_be_visible()
    expect(page.locator("#soreness-0")).to_be_checked()
    expect(page.locator("#checkin-more")).not_to_have_attribute("open", "")
    # Restoring moves no focus: the page starts as any page does.
    assert page.evaluate("document.activeElement === document.body")


def test_a_draft_is_restored_only_into_the_forms_own_options(small_phone, server, patient_visit):
    """sessionStorage is the page's own, but restore trusts nothing it reads: a value the form does
    not offer is never chosen, two values never go into one radio group, the note keeps the form's
    length limit, hidden fields are never written, and broken JSON is ignored."""
    visit = patient_visit()
    page = small_phone
    open_checkin(page, server.url, visit.link_path)
    page.evaluate(
        """([key, note]) => sessionStorage.setItem(key, JSON.stringify({
             fields: {
               red_flags: ["breathless", "not_a_flag", '"] input[name=x'],
               soreness: ["11"], usual_pain: ["3", "4"], symptoms: "tired", helped: [["heat"]],
               pgic: ["2"], client_id: ["forged"], note: note, csrf_token: "forged"
             },
             none: true
           }))""",
        [f"checkin-draft:{visit.visit_id}", "x" * 5000],
    )
    page.reload()

    expect(page.locator("#checkin-form input:checked")).to_have_count(1)
    expect(page.locator('input[name="red_flags"][value="breathless"]')).to_be_checked()
    expect(page.get_by_role("checkbox", name=NONE["en"], exact=True)).not_to_be_checked()
    expect(page.locator("#red-flags-list")).to_be_visible()  # a ticked flag wins over "none"
    expect(page.locator("#note")).to_have_value("x" * 1000)
    expect(page.locator('input[name="client_id"]')).to_have_value(re.compile(UUID))

    page.evaluate(
        "(key) => sessionStorage.setItem(key, '{not json')", f"checkin-draft:{visit.visit_id}"
    )
    page.reload()
    expect(page.locator("#checkin-form input:checked")).to_have_count(0)
    expect(page.get_by_role("checkbox", name=NONE["en"], exact=True)).to_be_visible()


def test_a_check_in_kept_on_the_phone_is_no_longer_kept_as_a_draft(
    small_phone, server, patient_visit
):
    visit = patient_visit()
    page = small_phone
    go_online_first(page, server.url, visit.link_path)
    lose_network(page, server)
    page.goto(server.url + "/me/check-in")
    page.get_by_role("checkbox", name=NONE["en"], exact=True).click()
    page.locator('label[for="soreness-3"]').click()
    assert draft(page, visit.visit_id) is not None

    page.get_by_role("button", name=SEND["en"], exact=True).click()
    expect(page.locator("#checkin-state")).to_contain_text("Saved on this phone")
    assert draft(page, visit.visit_id) is None
    [entry] = page.evaluate("() => Outbox.list()")
    assert entry["body"]["soreness"] == 3


def test_without_scripts_the_list_stays_open_and_the_form_is_sent(
    browser, server, live_app, patient_visit
):
    visit = patient_visit()
    context = browser.new_context(**SMALL_PHONE, java_script_enabled=False)
    page = context.new_page()
    open_checkin(page, server.url, visit.link_path)
    expect(page.locator('#red-flags-list input[name="red_flags"]')).to_have_count(11)
    for flag in page.locator('#red-flags-list input[name="red_flags"]').all():
        expect(flag).to_be_visible()
    expect(page.get_by_role("checkbox", name=NONE["en"], exact=True)).to_be_hidden()

    page.get_by_role("checkbox", name="Chest pain, or pain when you breathe in").check()
    page.locator('label[for="soreness-3"]').click()
    page.get_by_text(MORE["en"]).click()  # <details> opens without scripts
    page.get_by_label("Anything else? (optional)").fill("Hurts to breathe in")
    page.get_by_role("button", name=SEND["en"], exact=True).click()

    expect(page.get_by_role("heading", name="Call 112 now")).to_be_visible()
    [stored] = stored_checkins(live_app, visit.visit_id)
    assert (stored.symptoms, stored.note, stored.triage) == (
        ["chest_pain"],
        "Hurts to breathe in",
        "red",
    )
    context.close()


@pytest.mark.parametrize("language", ["en", "es"])
def test_the_states_only_the_script_draws_pass_axe(
    language,
    axe_page,  # noqa: F811 (a fixture)
    server,
    patient_visit,
):
    """The initial page is in test_accessibility; here the folded list, then the list open again
    with a flag ticked, the refusal message and "Add more" open."""
    visit = patient_visit(language=language)
    page = axe_page
    open_checkin(page, server.url, visit.link_path)
    page.get_by_role("checkbox", name=NONE[language], exact=True).click()
    expect(page.locator("#red-flags-list")).to_be_hidden()
    assert axe_violations(page) == [], "folded"

    page.get_by_role("button", name=SHOW_LIST[language]).click()
    page.locator('input[name="red_flags"][value="dry_cough"]').check()
    page.get_by_role("checkbox", name=NONE[language], exact=True).click()
    expect(page.locator("#red-flags-refused")).to_be_visible()
    page.get_by_text(MORE[language]).click()
    expect(page.locator("#note")).to_be_visible()
    assert axe_violations(page) == [], "refused, more open"
