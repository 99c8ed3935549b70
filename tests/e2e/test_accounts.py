"""Accounts in Debian's chromium, with the local SMTP server as the clinic's mail relay: an admin
invites a colleague, who sets a password from the e-mailed link and signs in; a therapist gets a
403 on every admin page and action; forgot password, reset and sign in, the link then refused;
wrong passwords lock one account and not another behind the same address; and the new pages pass
axe in English and Spanish."""

from __future__ import annotations

import re
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from playwright.sync_api import expect

from companion.auth import hash_password
from companion.clinic import admin_only
from companion.extensions import db
from companion.models import Clinic, Role, Therapist

from ..conftest import PASSWORD, build_app
from ..smtpserver import Received, SMTPServer
from .test_accessibility import AXE, axe_violations, english_fragments

pytestmark = pytest.mark.e2e

ADMIN = "ada@harbour.example"
THERAPIST = "theo@harbour.example"
NEW_PASSWORD = "lantern orchard pebble violin"
LINK = re.compile(r"http://127\.0\.0\.1:\d+/account/set-password/[\w-]+")


@pytest.fixture
def smtp() -> Iterator[SMTPServer]:
    with SMTPServer() as server:
        yield server


@pytest.fixture
def live_app(tmp_path: Path, smtp: SMTPServer) -> Flask:
    """The app with e-mail on (the local SMTP server) and the limits on, as in production."""
    app = build_app(
        tmp_path,
        SERVER_NAME=None,
        MAIL_SERVER="127.0.0.1",
        MAIL_PORT=smtp.port,
        MAIL_DEFAULT_SENDER="Aftercare <accounts@clinic.example>",
        MAIL_TIMEOUT=5,
        RATELIMIT_ENABLED=True,
        RATELIMIT_STORAGE_URI="memory://",
        SIGN_IN_ACCOUNT_LIMIT="3 per 15 minutes",
    )
    with app.app_context():
        clinic = Clinic(name="Harbour Physio", timezone="Europe/Madrid")
        db.session.add(clinic)
        db.session.flush()
        for email, role in ((ADMIN, Role.ADMIN), (THERAPIST, Role.THERAPIST)):
            db.session.add(
                Therapist(
                    clinic_id=clinic.id,
                    email=email,
                    password_hash=hash_password(PASSWORD),
                    role=role,
                )
            )
        db.session.commit()
        db.session.remove()
    return app


def mail_to(smtp: SMTPServer, address: str, count: int = 1, timeout: float = 15) -> Received:
    """The `count`-th message to `address`, waiting for it (a reset e-mail goes beside the answer)."""
    deadline = time.monotonic() + timeout
    pause = threading.Event()
    while time.monotonic() < deadline:
        found = [m for m in smtp.received if address in m.rcpt_tos]
        if len(found) >= count:
            return found[count - 1]
        pause.wait(0.02)
    raise AssertionError(f"no e-mail number {count} to {address} within {timeout} s")


def link_in(message: Received) -> str:
    match = LINK.search(message.text)
    assert match, message.text
    return match.group(0)


def sign_in(page: Any, base: str, email: str, password: str = PASSWORD) -> None:
    page.goto(base + "/sign-in")
    page.get_by_label("E-mail").fill(email)
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_role("button", name="Sign in").click()


def test_an_admin_invites_a_colleague_who_sets_a_password_and_signs_in(browser, server, smtp):
    base = server.url
    admin = browser.new_context().new_page()
    sign_in(admin, base, ADMIN)
    admin.wait_for_url(base + "/")
    admin.get_by_role("link", name="Therapists").click()
    admin.get_by_label("Email", exact=True).fill("ines@harbour.example")
    admin.get_by_label("Name (optional)").fill("Inés Ortega")
    admin.get_by_role("button", name="Invite", exact=True).click()
    expect(admin.get_by_text("Invite sent to ines@harbour.example.")).to_be_visible()
    expect(admin.locator("li.colleague.invited h3")).to_have_text("Inés Ortega")

    link = link_in(mail_to(smtp, "ines@harbour.example"))
    invitee = browser.new_context().new_page()
    invitee.goto(link)
    # The token is swapped for the session at once: the address bar no longer holds it.
    invitee.wait_for_url(base + "/account/set-password")
    expect(invitee.get_by_role("heading", name="Set your password")).to_be_visible()
    invitee.get_by_label("New password", exact=True).fill(NEW_PASSWORD)
    invitee.get_by_label("Confirm the new password").fill(NEW_PASSWORD)
    invitee.get_by_role("button", name="Save password").click()
    invitee.wait_for_url(base + "/sign-in")
    expect(invitee.get_by_text("Your password is set. Sign in.")).to_be_visible()
    sign_in(invitee, base, "ines@harbour.example", NEW_PASSWORD)
    invitee.wait_for_url(base + "/")
    expect(invitee.get_by_role("heading", name="Review queue")).to_be_visible()

    admin.reload()
    expect(admin.locator("li.colleague.active h3", has_text="Inés Ortega")).to_be_visible()


def admin_routes(app: Flask) -> list[tuple[str, str]]:
    """(method, path) of every page and action behind @admin_only, found in the app itself, so an
    admin page added later is checked too. A path's ids are random: the guard comes first."""
    guard = admin_only(lambda: None).__code__
    found = []
    for rule in app.url_map.iter_rules():
        view = app.view_functions[rule.endpoint]
        while view is not None and getattr(view, "__code__", None) is not guard:
            view = getattr(view, "__wrapped__", None)
        if view is None:
            continue
        path = re.sub(r"<uuid:\w+>", str(uuid.uuid4()), rule.rule)
        found.append(("GET" if "GET" in (rule.methods or ()) else "POST", path))
    return sorted(found)


def test_a_therapist_gets_403_on_every_admin_page_and_action(browser, server, live_app):
    routes = admin_routes(live_app)
    for named in (
        "/settings/clinic",
        "/settings/on-call",
        "/audit",
        "/settings/therapists",
    ):
        assert ("GET", named) in routes
    for named in ("/settings/clinic/hours", "/settings/therapists/invite"):
        assert ("POST", named) in routes
    base = server.url
    context = browser.new_context()
    page = context.new_page()
    sign_in(page, base, THERAPIST)
    page.wait_for_url(base + "/")
    csrf = page.locator('input[name="csrf_token"]').first.get_attribute("value")
    assert page.get_by_role("link", name="Therapists").count() == 0

    for method, path in routes:
        if method == "GET":
            answer = page.goto(base + path)
            assert answer is not None and answer.status == 403, path
            expect(page.get_by_text("You are not allowed to see this page.")).to_be_visible()
        else:
            answer = context.request.post(
                base + path, form={"csrf_token": csrf, "email": "eve@x.example", "role": "admin"}
            )
            assert answer.status == 403, path
    with live_app.app_context():
        assert db.session.query(Therapist).count() == 2
        theo = db.session.query(Therapist).filter_by(email=THERAPIST).one()
        assert theo.role == Role.THERAPIST
        db.session.remove()


def test_forgot_password_reset_and_sign_in_then_the_link_is_refused(browser, server, smtp):
    base = server.url
    page = browser.new_context().new_page()
    page.goto(base + "/sign-in")
    page.get_by_role("link", name="Forgot your password?").click()
    page.get_by_label("Email", exact=True).fill(THERAPIST)
    page.get_by_role("button", name="Send the link").click()
    expect(
        page.get_by_text("If that address has an account, we sent a link. It works for 1 hour.")
    ).to_be_visible()

    link = link_in(mail_to(smtp, THERAPIST))
    page.goto(link)
    page.wait_for_url(base + "/account/set-password")
    expect(page.get_by_role("heading", name="Choose a new password")).to_be_visible()
    page.get_by_label("New password", exact=True).fill(NEW_PASSWORD)
    page.get_by_label("Confirm the new password").fill(NEW_PASSWORD)
    page.get_by_role("button", name="Save password").click()
    page.wait_for_url(base + "/sign-in")
    sign_in(page, base, THERAPIST, PASSWORD)
    expect(page.get_by_text("That e-mail and password do not match.")).to_be_visible()
    sign_in(page, base, THERAPIST, NEW_PASSWORD)
    page.wait_for_url(base + "/")

    other = browser.new_context().new_page()
    answer = other.goto(link)
    assert answer is not None and answer.status == 404
    expect(other.get_by_role("heading", name="This link does not work any more")).to_be_visible()


def test_wrong_passwords_lock_one_account_and_not_another_behind_the_same_address(browser, server):
    base = server.url
    page = browser.new_context().new_page()
    for _ in range(3):
        sign_in(page, base, THERAPIST, "not the password at all")
        expect(page.get_by_text("That e-mail and password do not match.")).to_be_visible()
    sign_in(page, base, THERAPIST, PASSWORD)  # the right password, too late
    expect(page.get_by_text("Too many attempts for this account.")).to_be_visible()
    assert page.url == base + "/sign-in"

    sign_in(page, base, ADMIN, PASSWORD)  # the same browser and address, another account
    page.wait_for_url(base + "/")
    expect(page.get_by_role("heading", name="Review queue")).to_be_visible()


@pytest.mark.parametrize("language", ["en", "es"])
def test_the_account_pages_pass_axe_and_speak_one_language(
    language, browser, server, live_app, smtp
):
    if not AXE.exists():
        pytest.skip("axe-core is not installed: run `make test` (it runs `npm ci`)")
    base = server.url
    locale = "es-ES" if language == "es" else "en-GB"
    fragments = english_fragments() if language == "es" else []

    def check(page: Any, name: str) -> None:
        assert page.locator("html").get_attribute("lang") == language, name
        assert axe_violations(page) == [], name
        if fragments:
            text = page.evaluate("document.documentElement.textContent")
            left = [f for f in fragments if f in text]
            assert left == [], f"English on the Spanish {name} page: {left}"
        # No sideways scroll on a phone (360 CSS px).
        assert page.evaluate("document.documentElement.scrollWidth <= 360"), name

    viewport = {"viewport": {"width": 360, "height": 740}}
    admin = browser.new_context(bypass_csp=True, locale=locale, **viewport).new_page()
    admin.goto(base + "/sign-in")
    admin.locator("#email").fill(ADMIN)
    admin.locator("#password").fill(PASSWORD)
    admin.locator("form button[type=submit]").click()
    admin.wait_for_url(base + "/")
    admin.goto(base + "/settings/therapists")
    check(admin, "therapists")
    # An invite while e-mail is off: the link shown once; and a refused invite with its message.
    live_app.config["MAIL_SERVER"] = None
    admin.locator("#email").fill("ines@harbour.example")
    admin.locator('form[action$="/invite"] button[type=submit]').click()
    expect(admin.locator("#invite-url")).to_be_visible()
    check(admin, "therapists with the invite link")
    live_app.config["MAIL_SERVER"] = "127.0.0.1"
    admin.locator("#email").fill(THERAPIST)
    admin.locator('form[action$="/invite"] button[type=submit]').click()
    expect(admin.locator("#email[aria-invalid=true]")).to_be_visible()
    check(admin, "therapists with a refused invite")
    admin.goto(base + "/account/password")
    check(admin, "your password")
    admin.locator("#current_password").fill("not my password at all")
    admin.locator("#new_password").fill("short")
    admin.locator("#repeat_password").fill("short")
    admin.locator("form.stack button[type=submit]").click()
    expect(admin.locator("#current_password[aria-invalid=true]")).to_be_visible()
    check(admin, "your password with errors")

    visitor = browser.new_context(bypass_csp=True, locale=locale, **viewport).new_page()
    visitor.goto(base + "/account/forgot-password")
    check(visitor, "forgot password")
    visitor.locator("#email").fill("not an address")
    visitor.locator("form button[type=submit]").click()
    expect(visitor.locator("#email[aria-invalid=true]")).to_be_visible()
    check(visitor, "forgot password with an error")
    visitor.locator("#email").fill(THERAPIST)
    visitor.locator("form button[type=submit]").click()
    visitor.wait_for_url(base + "/account/forgot-password/sent")
    check(visitor, "reset link sent")
    link = link_in(mail_to(smtp, THERAPIST))
    visitor.goto(link)
    visitor.wait_for_url(base + "/account/set-password")
    check(visitor, "choose a new password")
    visitor.locator("#password").fill("password1234")
    visitor.locator("#confirm").fill("password1234")
    visitor.locator("form button[type=submit]").click()
    expect(visitor.locator("#password[aria-invalid=true]")).to_be_visible()
    check(visitor, "choose a new password with a weak one")
    visitor.goto(base + "/account/set-password/not-a-real-token")
    check(visitor, "link not valid")
