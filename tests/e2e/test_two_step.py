"""Two-step sign-in in chromium: enrolment reads the key off the page and answers with a code from
it; signing in then asks for a code, takes one from the app or a recovery code, and refuses a
recovery code the second time. axe finds nothing on the enrolment and code pages, in English and
Spanish, and they fit a 360 px wide phone. The browser runs on the real clock: codes are computed for it."""

from __future__ import annotations

import re
import time
from typing import Any

import pyotp
import pytest
from flask import Flask

from companion.auth import hash_password
from companion.extensions import db
from companion.models import Clinic, Therapist

from ..conftest import PASSWORD
from .test_accessibility import AXE, axe_violations, english_fragments

pytestmark = pytest.mark.e2e

EMAIL = "ines@harbour.example"
CODE = re.compile(r"^([A-Z2-7]{5}-){4}[A-Z2-7]{5}$")


@pytest.fixture
def therapist(live_app: Flask) -> str:
    with live_app.app_context():
        clinic = Clinic(name="Harbour Physio", timezone="Europe/Madrid")
        db.session.add(clinic)
        db.session.flush()
        db.session.add(
            Therapist(clinic_id=clinic.id, email=EMAIL, password_hash=hash_password(PASSWORD))
        )
        db.session.commit()
        db.session.remove()
    return EMAIL


def password_step(page: Any, base: str) -> None:
    page.goto(base + "/sign-in")
    page.locator("#email").fill(EMAIL)
    page.locator("#password").fill(PASSWORD)
    page.locator("form button[type=submit]").click()


def code_step(page: Any, base: str, code: str) -> None:
    page.wait_for_url(base + "/sign-in/code")
    page.get_by_label("Code", exact=True).fill(code)
    page.locator('form[action$="/sign-in/code"] button[type=submit]').click()


def sign_out(page: Any, base: str) -> None:
    page.locator('form[action$="/sign-out"] button').click()
    page.wait_for_url(base + "/sign-in")


def enrol(page: Any, base: str) -> tuple[str, list[str]]:
    """Turn two-step sign-in on from the menu; returns the key and the recovery codes shown."""
    page.locator("nav").get_by_role("link", name="Two-step sign-in").click()
    page.wait_for_url(base + "/account/two-step")
    page.locator('form[action$="/account/two-step/start"] button').click()
    assert page.locator(".qr svg").count() == 1
    secret = page.locator("#secret").inner_text().replace(" ", "")
    page.get_by_label("Code", exact=True).fill(pyotp.TOTP(secret).now())
    page.locator('form[action$="/account/two-step/confirm"] button').click()
    codes = [c.strip() for c in page.locator(".recovery-codes code").all_inner_texts()]
    return secret, codes


def test_enrol_then_sign_in_with_a_code_and_with_a_recovery_code_once(browser, server, therapist):
    base = server.url
    context = browser.new_context()
    page = context.new_page()
    blocked: list[str] = []
    page.on(
        "console", lambda m: blocked.append(m.text) if "Content Security Policy" in m.text else None
    )

    password_step(page, base)
    page.wait_for_url(base + "/")
    secret, codes = enrol(page, base)
    assert len(codes) == 10 and all(CODE.match(code) for code in codes)
    assert page.get_by_text("Save these now").is_visible()
    assert page.get_by_text("Two-step sign-in is on").is_visible()
    sign_out(page, base)

    # The password alone opens nothing now: the code page asks for the second step.
    password_step(page, base)
    page.wait_for_url(base + "/sign-in/code")
    assert page.goto(base + "/patients").url.startswith(base + "/sign-in")
    password_step(page, base)
    # The enrolment code's step is used: the app's next code (one step ahead) is accepted.
    code_step(page, base, pyotp.TOTP(secret).at(time.time() + 30))
    page.wait_for_url(base + "/")
    assert page.locator("h1").count() == 1
    sign_out(page, base)

    # A recovery code, typed in lower case without its dashes, works once.
    password_step(page, base)
    code_step(page, base, codes[0].replace("-", "").lower())
    page.wait_for_url(base + "/")
    assert page.get_by_text("9 recovery codes are left").is_visible()
    sign_out(page, base)
    password_step(page, base)
    code_step(page, base, codes[0])
    assert page.url == base + "/sign-in/code"
    assert page.locator("#code[aria-invalid=true]").count() == 1
    assert page.get_by_text("it was used already").is_visible()
    assert blocked == []
    context.close()


@pytest.mark.parametrize("language", ["en", "es"])
def test_the_enrolment_and_code_pages_pass_axe(language, browser, server, therapist):
    if not AXE.exists():
        pytest.skip("axe-core is not installed: run `make test` (it runs `npm ci`)")
    base = server.url
    context = browser.new_context(
        bypass_csp=True,
        locale="es-ES" if language == "es" else "en-GB",
        viewport={"width": 360, "height": 740},  # the narrowest phone the pages must fit
    )
    page = context.new_page()
    fragments = english_fragments() if language == "es" else []

    def check(name: str) -> None:
        assert page.locator("html").get_attribute("lang") == language, name
        assert axe_violations(page) == [], name
        assert page.evaluate("document.documentElement.scrollWidth") <= 360, name
        if fragments:
            text = page.evaluate("document.documentElement.textContent")
            left = [f for f in fragments if f in text]
            assert left == [], f"English on the Spanish {name} page: {left}"

    password_step(page, base)
    page.wait_for_url(base + "/")
    page.goto(base + "/account/two-step")
    check("two-step, off")
    page.locator('form[action$="/account/two-step/start"] button').click()
    secret = page.locator("#secret").inner_text().replace(" ", "")
    check("two-step, set-up")
    page.locator("#code").fill("000000")
    page.locator('form[action$="/account/two-step/confirm"] button').click()
    assert page.locator("#code[aria-invalid=true]").count() == 1
    check("two-step, a wrong code")
    page.locator("#code").fill(pyotp.TOTP(secret).now())
    page.locator('form[action$="/account/two-step/confirm"] button').click()
    assert page.locator(".recovery-codes li").count() == 10
    check("two-step, recovery codes")
    page.goto(base + "/account/two-step")
    check("two-step, on")
    # At 360 px the menu is folded away: sign out through its form.
    page.locator('form[action$="/sign-out"]').evaluate("form => form.requestSubmit()")
    page.wait_for_url(base + "/sign-in")
    password_step(page, base)
    page.wait_for_url(base + "/sign-in/code")
    check("sign-in code")
    page.locator("#code").fill("not a code")
    page.locator('form[action$="/sign-in/code"] button[type=submit]').click()
    assert page.locator("#code[aria-invalid=true]").count() == 1
    check("sign-in code, refused")
    context.close()
