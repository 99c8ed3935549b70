"""Therapist sessions (ASVS 5.0, V7): checked on the server, a new one at sign-in, cookie flags,
sign-out within reach on every page, and sessions the server ends (Therapist.session_epoch)."""

from __future__ import annotations

import pytest

from companion.extensions import db
from companion.models import Role

from .conftest import build_app, csrf_from, sign_in

DOMAIN = "companion.test"  # the test app's SERVER_NAME (tests/conftest.py)
PAGES = [
    "/",
    "/patients",
    "/visits/new",
    "/exports",
    "/settings/notifications",
    "/account/password",
]


def _cookie(client) -> str | None:
    cookie = client.get_cookie("session", domain=DOMAIN)
    return cookie.value if cookie else None


def test_sign_in_starts_a_new_session_and_a_planted_cookie_stays_signed_out(
    app, client, make_clinic, make_therapist
):
    therapist = make_therapist(make_clinic())
    client.get("/sign-in")
    with client.session_transaction() as session:
        session["planted"] = "by someone else"
    planted = _cookie(client)

    sign_in(client, therapist.email)

    assert _cookie(client) != planted
    with client.session_transaction() as session:
        assert "planted" not in session  # nothing from before sign-in survives
    # The cookie from before sign-in (an attacker's, fixed in the victim's browser) opens nothing.
    attacker = app.test_client()
    attacker.set_cookie("session", planted, domain=DOMAIN)
    assert attacker.get("/patients").status_code == 302


def test_a_session_cookie_altered_by_the_browser_is_refused(client, make_clinic, make_therapist):
    sign_in(client, make_therapist(make_clinic()).email)
    value = _cookie(client)
    tampered = value[:-2] + ("A" if value[-2] != "A" else "B") + value[-1]
    client.set_cookie("session", tampered, domain=DOMAIN)
    assert client.get("/patients").status_code == 302


@pytest.mark.parametrize("secure", [False, True])
def test_the_session_cookie_is_httponly_samesite_and_secure_when_asked(tmp_path, secure, now):
    app = build_app(tmp_path, SESSION_COOKIE_SECURE=secure)
    with app.app_context():
        from companion.auth import hash_password
        from companion.models import Clinic, Therapist

        clinic = Clinic(name="Harbour", timezone="Europe/Madrid")
        db.session.add(clinic)
        db.session.flush()
        db.session.add(
            Therapist(
                clinic_id=clinic.id,
                email="ana@harbour.example",
                password_hash=hash_password("correct horse battery"),
                role=Role.ADMIN,
            )
        )
        db.session.commit()
        client = app.test_client()
        response = sign_in(client, "ana@harbour.example")
    header = next(h for h in response.headers.getlist("Set-Cookie") if h.startswith("session="))
    assert "HttpOnly" in header and "SameSite=Lax" in header
    assert ("Secure" in header) is secure


@pytest.mark.parametrize("path", PAGES)
def test_every_signed_in_page_has_sign_out_within_reach(client, make_clinic, make_therapist, path):
    sign_in(client, make_therapist(make_clinic(), role=Role.THERAPIST).email)
    page = client.get(path, follow_redirects=True).get_data(as_text=True)
    assert 'action="/sign-out"' in page


def test_a_deactivated_account_is_signed_out_at_its_next_request(
    client, make_clinic, make_therapist
):
    therapist = make_therapist(make_clinic())
    sign_in(client, therapist.email)
    assert client.get("/patients").status_code == 200
    therapist.active = False
    db.session.commit()
    assert client.get("/patients").status_code == 302


def test_sign_out_needs_the_csrf_token(client, make_clinic, make_therapist):
    sign_in(client, make_therapist(make_clinic()).email)
    client.post("/sign-out", data={})
    assert client.get("/patients").status_code == 200  # a cross-site POST signs nobody out
    token = csrf_from(client.get("/patients").get_data(as_text=True))
    client.post("/sign-out", data={"csrf_token": token})
    assert client.get("/patients").status_code == 302


def test_sign_out_ends_the_session_and_every_copy_of_its_cookie(
    app, client, make_clinic, make_therapist
):
    therapist = make_therapist(make_clinic())
    sign_in(client, therapist.email)
    # A copy of the signed-in cookie, taken before sign-out (another browser, a stolen cookie).
    copied = app.test_client()
    copied.set_cookie("session", _cookie(client), domain=DOMAIN)
    assert copied.get("/patients").status_code == 200

    token = csrf_from(client.get("/patients").get_data(as_text=True))
    client.post("/sign-out", data={"csrf_token": token})

    assert client.get("/patients").status_code == 302
    response = copied.get("/patients")
    assert response.status_code == 302 and "/sign-in" in response.headers["Location"]
    # Signing in again works, and the old copy stays out.
    sign_in(client, therapist.email)
    assert client.get("/patients").status_code == 200
    assert copied.get("/patients").status_code == 302
