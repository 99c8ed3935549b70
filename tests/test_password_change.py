"""A therapist changes their own password (ASVS 6.2.2, 6.2.3) and the server ends sessions it
cannot delete (Therapist.session_epoch): a copied session cookie stops working once the account's
password changes, on every device but the one that changed it (ASVS 7.4.3)."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from werkzeug.security import check_password_hash

from companion.extensions import db
from companion.models import AuditEvent, Therapist

from .conftest import PASSWORD, csrf_from, sign_in

PAGE = "/account/password"
NEW = "lantern orchard velvet quarry"
_DOMAIN = "companion.test"  # the test app's SERVER_NAME (tests/conftest.py)


@pytest.fixture
def ana(client, make_clinic, make_therapist, now):
    therapist = make_therapist(make_clinic(name="Harbour Physio"), "ana@harbour.example")
    sign_in(client, therapist.email)
    return therapist


def _change(client, current: str, new: str, repeat: str | None = None):
    token = csrf_from(client.get(PAGE).get_data(as_text=True))
    return client.post(
        PAGE,
        data={
            "csrf_token": token,
            "current_password": current,
            "new_password": new,
            "repeat_password": new if repeat is None else repeat,
        },
    )


def _copy_session(app, client):
    """Another browser holding the same session cookie (copied, or the same account elsewhere)."""
    other = app.test_client()
    cookie = client.get_cookie(app.config.get("SESSION_COOKIE_NAME", "session"), domain=_DOMAIN)
    other.set_cookie(cookie.key, cookie.value, domain=_DOMAIN)
    return other


def test_the_page_changes_the_password_with_the_current_one_and_audits_it(app, client, ana):
    response = _change(client, PASSWORD, NEW)
    assert response.status_code == 303

    db.session.refresh(ana)
    assert check_password_hash(ana.password_hash, NEW)
    assert not check_password_hash(ana.password_hash, PASSWORD)
    event = db.session.scalar(select(AuditEvent).where(AuditEvent.action.like("therapist.pass%")))
    assert event.action == "therapist.password_changed" and event.target_id == str(ana.id)
    # The person who changed it stays signed in here ...
    assert client.get("/patients").status_code == 200
    # ... and the new password is the one that signs in.
    fresh = app.test_client()
    assert sign_in(fresh, ana.email, NEW).status_code == 302
    assert sign_in(app.test_client(), ana.email, PASSWORD).status_code == 200


@pytest.mark.parametrize(
    ("current", "new", "repeat", "message"),
    [
        ("wrong password here", NEW, None, "That is not your current password."),
        (PASSWORD, "short pass", None, "Use at least 12 characters."),
        (PASSWORD, "password1234", None, "known from data breaches"),
        (PASSWORD, "ana@harbour.example", None, "known from data breaches"),
        (PASSWORD, NEW, NEW + " x", "The two new passwords are not the same."),
        (PASSWORD, "", None, "This field is required."),
    ],
)
def test_a_refused_change_says_why_and_changes_nothing(client, ana, current, new, repeat, message):
    before = ana.password_hash
    response = _change(client, current, new, repeat)
    assert response.status_code == 422
    assert message in response.get_data(as_text=True)
    db.session.refresh(ana)
    assert ana.password_hash == before
    assert (
        db.session.scalar(select(AuditEvent).where(AuditEvent.action.like("therapist.pass%")))
        is None
    )


def test_a_change_ends_every_other_session_of_the_account(app, client, ana):
    elsewhere = _copy_session(app, client)
    assert elsewhere.get("/patients").status_code == 200

    assert _change(client, PASSWORD, NEW).status_code == 303

    response = elsewhere.get("/patients")
    assert response.status_code == 302 and "/sign-in" in response.headers["Location"]
    assert client.get("/patients").status_code == 200


def test_ending_sessions_on_the_server_signs_out_a_copied_cookie_and_says_so(app, client, ana):
    copied = _copy_session(app, client)
    therapist = db.session.get(Therapist, ana.id)
    therapist.end_sessions()
    db.session.commit()

    for holder in (client, copied):
        response = holder.get("/patients")
        assert response.status_code == 302 and "/sign-in" in response.headers["Location"]
    page = client.get("/sign-in").get_data(as_text=True)
    assert "You were signed out. Please sign in again." in page
    # Signing in again starts a session under the new epoch.
    sign_in(client, ana.email)
    assert client.get("/patients").status_code == 200
    assert copied.get("/patients").status_code == 302


def test_the_page_needs_a_signed_in_therapist(client):
    response = client.get(PAGE)
    assert response.status_code == 302 and "/sign-in" in response.headers["Location"]
