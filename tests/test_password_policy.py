"""The password rules, as a therapist meets them (ASVS 5.0, V6.2): any characters, long
passphrases, checked exactly as typed, masked fields that password managers can fill, refused
when breached or built from the product's or the account's own words, and never expiring."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from werkzeug.security import generate_password_hash

from companion.auth import CONTEXT_WORDS, password_problem
from companion.extensions import db

from .conftest import sign_in

PASSPHRASE = "ñandú café 漢字 ☕ tarde de lluvia"  # spaces, accents, CJK, a symbol: all allowed
LONG = "river stone " * 8 + "and a heron that waits by the mill"  # 130 characters


@pytest.fixture
def ana(app, make_clinic, make_therapist):
    therapist = make_therapist(make_clinic(name="Harbour Physio"), "ana@harbour.example")
    return therapist


def _set_password(therapist, password: str) -> None:
    therapist.password_hash = generate_password_hash(password, method="scrypt")
    db.session.commit()


def test_any_composition_and_long_passphrases_are_accepted(app):
    with app.test_request_context():
        assert password_problem(PASSPHRASE, "ana@harbour.example") is None
        assert len(LONG) > 64 and password_problem(LONG, "ana@harbour.example") is None
        # No rule asks for digits, capitals or symbols: lower-case words alone are fine.
        assert password_problem("lantern orchard velvet quarry") is None


@pytest.mark.parametrize("password", [PASSPHRASE, LONG])
def test_such_a_password_signs_in_as_typed(client, ana, password):
    _set_password(ana, password)
    assert sign_in(client, ana.email, password).status_code == 302


@pytest.mark.parametrize(
    "variant",
    [
        lambda p: p.upper(),  # no case folding
        lambda p: p + " ",  # no trimming
        lambda p: " " + p,
        lambda p: p[:72],  # no truncation (bcrypt's 72 bytes): the whole password counts
        lambda p: p[:-1],
    ],
)
def test_the_password_is_checked_exactly_as_received(client, ana, variant):
    _set_password(ana, LONG)
    assert variant(LONG) != LONG
    response = sign_in(client, ana.email, variant(LONG))
    assert response.status_code == 200 and "do not match" in response.get_data(as_text=True)


@pytest.mark.parametrize(
    "password",
    [
        "aftercare companion",  # the product's name
        "harbourphysio2026",  # the clinic's name and a year
        "dryneedling123!",
        "ana.harbour.example",  # the account's e-mail
        "123456789012",  # breached lists
        "iloveyou1234",
        "qwertyuiop12",
    ],
)
def test_breached_and_context_passwords_are_refused(app, password):
    with app.test_request_context():
        problem = password_problem(password, "ana@harbour.example", "Ana", "Harbour Physio")
    assert problem is not None and "easy to guess" in problem


def test_the_context_list_names_the_product_and_its_trade():
    # The documented list (docs/SECURITY.md, ASVS 6.1.2) is the one the check uses.
    assert {"aftercare", "companion", "needling", "physio", "clinic"} <= set(CONTEXT_WORDS)


@pytest.mark.parametrize("path", ["/sign-in", "/account/password"])
def test_password_fields_are_masked_and_open_to_password_managers(client, ana, path):
    if path != "/sign-in":
        sign_in(client, ana.email)
    page = client.get(path).get_data(as_text=True)
    fields = re.findall(r"<input[^>]*password[^>]*>", page)
    assert fields, "no password field on " + path
    for field in fields:
        if 'type="hidden"' in field:
            continue
        assert 'type="password"' in field
        # Password managers may fill it and paste is allowed: no autocomplete="off", no handlers.
        assert re.search(r'autocomplete="(current|new)-password"', field)
        assert "onpaste" not in field and 'autocomplete="off"' not in field


def test_a_password_never_expires(app, client, ana, time_machine, now):
    time_machine.move_to(now + timedelta(days=800))
    response = sign_in(client, ana.email)
    assert response.status_code == 302
    assert client.get("/patients").status_code == 200
