"""Per-address throttles on bad tokens (issue 14, finding 10): calendar feed tokens, API keys,
patient links and patient cookies. Only failures count; past the limit the address gets 429 with
Retry-After before its token is looked at; another address, and good requests, are untouched."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient

from companion.extensions import db
from companion.models import ApiKey
from companion.reminders.calendar import feed_url
from companion.visits.record import revoke_links
from tests.conftest import build_app

LIMIT = 3  # bad tokens an address may send in the window; the next is refused


@pytest.fixture
def app(tmp_path: Path) -> Iterator[Flask]:
    """The factories' app, with the limiter on and each throttle at LIMIT."""
    limit = f"{LIMIT} per 15 minutes"
    app = build_app(
        tmp_path,
        RATELIMIT_ENABLED=True,
        CALENDAR_TOKEN_FAILURE_LIMIT=limit,
        API_KEY_FAILURE_LIMIT=limit,
        PATIENT_LINK_FAILURE_LIMIT=limit,
    )
    with app.app_context():
        yield app
        db.session.remove()
        db.engine.dispose()


def at(app: Flask, address: str) -> FlaskClient:
    """A client whose requests come from `address`."""
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = address
    return client


def retry_after(response) -> int:
    value = int(response.headers["Retry-After"])
    assert 0 < value <= 15 * 60
    return value


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


# --- API keys ----------------------------------------------------------------------------------


def test_bad_api_keys_from_one_address_are_throttled_and_no_other_address(
    app, make_clinic, make_api_key, now
):
    clinic = make_clinic()
    good = make_api_key(clinic)
    revoked = make_api_key(clinic)
    db.session.execute(
        db.update(ApiKey).where(ApiKey.prefix == revoked[:10]).values(revoked_at=now)
    )
    db.session.commit()
    attacker = at(app, "203.0.113.7")

    tries = [
        attacker.get("/api/v1/alerts"),  # no key at all
        attacker.get("/api/v1/alerts", headers=bearer("ak_guessed")),
        attacker.get("/api/v1/alerts", headers=bearer(revoked)),
    ]
    refused = attacker.get("/api/v1/alerts", headers=bearer("ak_another_guess"))
    even_good = attacker.get("/api/v1/alerts", headers=bearer(good))
    elsewhere = at(app, "198.51.100.1").get("/api/v1/alerts", headers=bearer(good))

    assert [r.status_code for r in tries] == [401, 401, 401]
    assert refused.status_code == 429
    assert refused.get_json()["error"]["code"] == "too_many_failures"
    retry_after(refused)
    # Refused before the key is looked at: a guess past the limit learns nothing.
    assert even_good.status_code == 429
    assert elsewhere.status_code == 200


def test_good_api_calls_never_count(app, make_clinic, make_api_key, now):
    key = make_api_key(make_clinic())
    system = at(app, "192.0.2.10")  # a clinic system calling all day from one address

    good = [system.get("/api/v1/alerts", headers=bearer(key)).status_code for _ in range(20)]
    bad = [system.get("/api/v1/alerts", headers=bearer("ak_typo")).status_code for _ in range(4)]

    assert good == [200] * 20
    assert bad == [401] * LIMIT + [429]


def test_a_therapist_session_on_the_fhir_export_is_not_a_bad_key(
    app, make_clinic, make_therapist, make_visit, now
):
    from tests.conftest import sign_in

    clinic = make_clinic()
    visit = make_visit(clinic, now=now)
    browser = at(app, "192.0.2.20")
    sign_in(browser, make_therapist(clinic).email)

    answers = [
        browser.get(f"/api/v1/visits/{visit.visit.id}/fhir").status_code for _ in range(LIMIT + 2)
    ]

    assert answers == [200] * (LIMIT + 2)


# --- patient cookies (the API) ------------------------------------------------------------------


def test_forged_patient_cookies_are_throttled_and_a_real_patient_elsewhere_is_not(
    app, make_clinic, make_visit, now
):
    visit = make_visit(make_clinic(), now=now)
    attacker = at(app, "203.0.113.8")
    forged = []
    for i in range(LIMIT + 1):
        attacker.set_cookie("companion_patient", f"guess{i}", domain="companion.test")
        forged.append(attacker.get("/api/v1/checkins"))
    patient = at(app, "198.51.100.2")
    assert patient.get(visit.url).status_code == 303

    assert [r.status_code for r in forged] == [401] * LIMIT + [429]
    assert forged[-1].get_json()["error"]["code"] == "too_many_failures"
    retry_after(forged[-1])
    assert patient.get("/api/v1/checkins").status_code == 200


def test_a_patient_s_own_requests_and_an_ended_link_s_cookie_never_count(
    app, make_clinic, make_visit, now
):
    clinic = make_clinic()
    visit = make_visit(clinic, now=now)
    ended = make_visit(clinic, now=now)
    phone = at(app, "192.0.2.30")  # a clinic's Wi-Fi: this patient and another
    other = at(app, "192.0.2.30")
    assert phone.get(visit.url).status_code == 303
    assert other.get(ended.url).status_code == 303
    revoke_links(ended.visit, now)
    db.session.commit()

    good = [phone.get("/api/v1/checkins").status_code for _ in range(10)]
    # The other patient's outbox keeps sending with its ended link's cookie: a 401 each time,
    # but that cookie was ours, not a guess.
    outbox = [other.get("/api/v1/checkins").status_code for _ in range(LIMIT + 2)]

    assert good == [200] * 10
    assert outbox == [401] * (LIMIT + 2)
    assert phone.get("/api/v1/checkins").status_code == 200


# --- patient links (/p/<token>) ----------------------------------------------------------------


def test_bad_patient_links_are_throttled_in_the_reader_s_language(
    app, make_clinic, make_visit, now
):
    visit = make_visit(make_clinic(), now=now)
    attacker = at(app, "203.0.113.9")
    spanish = {"Accept-Language": "es"}

    tries = [attacker.get(f"/p/guess-{i}", headers=spanish) for i in range(LIMIT + 1)]
    good_here = attacker.get(visit.url, headers=spanish)
    good_elsewhere = at(app, "198.51.100.3").get(visit.url)

    assert [r.status_code for r in tries] == [404] * LIMIT + [429]
    page = tries[-1].get_data(as_text=True)
    assert "Demasiados intentos" in page and 'lang="es"' in page
    wait = retry_after(tries[-1])
    assert f"Espera {-(-wait // 60)} minuto" in page
    assert good_here.status_code == 429  # refused before the token is looked up
    assert good_elsewhere.status_code == 303


def test_redeeming_a_good_link_again_and_again_never_counts(app, make_clinic, make_visit, now):
    visit = make_visit(make_clinic(), now=now)
    phone = at(app, "192.0.2.40")

    good = [phone.get(visit.url).status_code for _ in range(10)]
    bad = [phone.get("/p/old-link").status_code for _ in range(LIMIT + 1)]

    assert good == [303] * 10
    assert bad == [404] * LIMIT + [429]


# --- calendar feeds ------------------------------------------------------------------------------


def test_forged_calendar_tokens_are_throttled_and_real_feeds_are_not(
    app, make_clinic, make_visit, now
):
    clinic = make_clinic()
    live = make_visit(clinic, now=now)
    ended = make_visit(clinic, now=now)
    live_path = urlsplit(feed_url(live.visit.links[0])).path
    ended_path = urlsplit(feed_url(ended.visit.links[0])).path
    revoke_links(ended.visit, now)
    db.session.commit()
    attacker = at(app, "203.0.113.10")
    provider = at(app, "198.51.100.4")  # a calendar provider, fetching every subscriber's feed

    forged = [attacker.get(f"/calendar/forged{i}.ics") for i in range(LIMIT + 1)]
    polls = [provider.get(live_path).status_code for _ in range(5)]
    # A revoked feed is polled for ever by the provider: it was ours, so it never counts.
    dead = [provider.get(ended_path).status_code for _ in range(LIMIT + 2)]

    assert [r.status_code for r in forged] == [404] * LIMIT + [429]
    retry_after(forged[-1])
    assert attacker.get(live_path).status_code == 429
    assert polls == [200] * 5
    assert dead == [404] * (LIMIT + 2)
    assert provider.get(live_path).status_code == 200


# --- the OpenAPI document -------------------------------------------------------------------------


def test_every_operation_behind_a_credential_documents_the_429(app):
    doc = app.test_client().get("/api/v1/openapi.json").get_json()
    secured = [
        (path, method, op)
        for path, ops in doc["paths"].items()
        for method, op in ops.items()
        if op.get("security")
    ]

    assert len(secured) >= 8
    for path, method, op in secured:
        answer = op["responses"].get("429")
        assert answer is not None, f"{method.upper()} {path} does not list its 429"
        assert "too_many_failures" in answer["description"], (method, path)
        assert "Retry-After" in answer["headers"], (method, path)
