"""The one phone / e-mail normalizer (companion/visits/contact.py) used by the visit form, the API
and the clinic's on-call contact."""

from __future__ import annotations

import logging
from datetime import datetime

import pytest
from sqlalchemy import func, select

from companion.extensions import db
from companion.models import Patient, Visit
from companion.visits.contact import (
    normalize_email,
    normalize_phone,
    optional_email,
    optional_phone,
)
from tests.conftest import csrf_from, sign_in


@pytest.mark.parametrize(
    ("typed", "e164"),
    [
        ("+34 612 345 678", "+34612345678"),
        ("+34-612-34-56-78", "+34612345678"),
        (" +44 20 7946 0958 ", "+442079460958"),
        ("tel:+34612345678", "+34612345678"),
    ],
)
def test_phone_is_stored_in_e164(now: datetime, typed: str, e164: str) -> None:
    assert normalize_phone(typed) == e164


@pytest.mark.parametrize(
    "typed",
    ["612 345 678", "+34 1", "+999 612 345 678", "call me", "+34612345678" + "9" * 30, ""],
)
def test_phone_without_country_code_or_invalid_is_refused_without_echoing_it(
    now: datetime, typed: str
) -> None:
    with pytest.raises(ValueError) as raised:
        normalize_phone(typed)
    if typed:
        assert typed not in str(raised.value)


def test_email_is_normalized(now: datetime) -> None:
    assert normalize_email(" ana@Example.COM ") == "ana@example.com"


@pytest.mark.parametrize("typed", ["ana@", "ana", "ana@localhost", "a" * 250 + "@example.com"])
def test_bad_email_is_refused_without_echoing_it(now: datetime, typed: str) -> None:
    with pytest.raises(ValueError) as raised:
        normalize_email(typed)
    assert typed not in str(raised.value)


def test_empty_optional_contact_is_none(now: datetime) -> None:
    assert optional_phone("  ") is None
    assert optional_phone(None) is None
    assert optional_email("") is None
    assert optional_phone("+34 612 345 678") == "+34612345678"
    assert optional_email("ana@example.com") == "ana@example.com"


# --- on the visit form, in the API, never in the logs ---------------------------------------------

PHONE_TYPED, PHONE = "+34 612 345 678", "+34612345678"
EMAIL_TYPED, EMAIL = "Ana.Ruiz@Example.COM", "Ana.Ruiz@example.com"
VISIT_BODY = {
    "patient": {"ref": "P-1", "display_name": "Ana", "timezone": "Europe/Madrid", "language": "es"},
    "performed_at": "2026-11-25T11:00:00+01:00",  # the `now` fixture's moment
    "regions": ["neck"],
}


def _with_contact(**contact: object) -> dict:
    return {**VISIT_BODY, "patient": {**VISIT_BODY["patient"], **contact}}


def _post(client, key: str, body: dict):
    return client.post("/api/v1/visits", json=body, headers={"Authorization": f"Bearer {key}"})


def _put(client, key: str, visit_id: str, body: dict):
    return client.put(
        f"/api/v1/visits/{visit_id}", json=body, headers={"Authorization": f"Bearer {key}"}
    )


def _patient() -> Patient:
    db.session.expire_all()
    return db.session.scalar(select(Patient))


@pytest.fixture
def key(make_clinic, make_api_key) -> str:
    return make_api_key(make_clinic())


def test_the_api_stores_the_phone_in_e164_and_the_email_normalized(client, key, now):
    response = _post(client, key, _with_contact(phone=PHONE_TYPED, email=EMAIL_TYPED))

    assert response.status_code == 201, response.get_json()
    assert (_patient().phone, _patient().email) == (PHONE, EMAIL)


@pytest.mark.parametrize(
    ("contact", "field", "code"),
    [
        ({"phone": "612 345 678"}, "patient.phone", "invalid_phone"),  # no country code
        ({"phone": "+34 12"}, "patient.phone", "invalid_phone"),
        ({"phone": 34612345678}, "patient.phone", "wrong_type"),
        ({"email": "ana@"}, "patient.email", "invalid_email"),
        ({"email": "ana at example.com"}, "patient.email", "invalid_email"),
        ({"email": True}, "patient.email", "wrong_type"),
    ],
)
def test_a_bad_phone_or_email_is_a_422_naming_the_field_and_stores_nothing(
    client, key, now, contact, field, code
):
    response = _post(client, key, _with_contact(**contact))

    assert response.status_code == 422
    error = response.get_json()["error"]
    assert (error["field"], error["code"]) == (field, code)
    assert error["message"].startswith(f"{field}: ")
    assert str(next(iter(contact.values()))) not in response.get_data(as_text=True)
    assert db.session.scalar(select(func.count()).select_from(Visit)) == 0


def test_put_replaces_the_contact_details_and_omitting_them_clears_them(client, key, now):
    body = _with_contact(phone=PHONE_TYPED, email=EMAIL_TYPED)
    visit_id = _post(client, key, body).get_json()["visit_id"]

    changed = _put(client, key, visit_id, _with_contact(phone="+44 20 7946 0958", email=EMAIL))
    assert changed.status_code == 200, changed.get_json()
    assert (_patient().phone, _patient().email) == ("+442079460958", EMAIL)

    # The body is the patient's details as they are now, as for the name and zone.
    assert _put(client, key, visit_id, VISIT_BODY).status_code == 200
    assert (_patient().phone, _patient().email) == (None, None)

    _put(client, key, visit_id, _with_contact(phone=PHONE, email=EMAIL))
    assert _put(client, key, visit_id, _with_contact(phone="", email=None)).status_code == 200
    assert (_patient().phone, _patient().email) == (None, None)


def test_a_bad_phone_on_put_is_a_422_and_keeps_the_stored_one(client, key, now):
    visit_id = _post(client, key, _with_contact(phone=PHONE)).get_json()["visit_id"]

    response = _put(client, key, visit_id, _with_contact(phone="0034"))

    assert response.status_code == 422
    assert response.get_json()["error"]["field"] == "patient.phone"
    assert _patient().phone == PHONE


def test_the_openapi_document_shows_the_contact_fields(client, now):
    doc = client.get("/api/v1/openapi.json").get_json()
    fields = doc["components"]["schemas"]["PatientIn"]["properties"]

    assert {"phone", "email"} <= set(fields)
    assert "E.164" in fields["phone"]["description"]
    assert "clears it" in fields["email"]["description"]
    assert "patient.phone" not in doc["components"]["schemas"]["PatientIn"].get("required", [])


def _visit_form(client, url: str, **changes: str):
    page = client.get(url).get_data(as_text=True)
    data = {
        "csrf_token": csrf_from(page),
        "ref": "R-100",
        "display_name": "Maria",
        "timezone": "Europe/Madrid",
        "language": "es",
        "performed_at": "2026-11-25T10:30",
        "regions": ["neck"],
    }
    data.update(changes)
    return page, client.post(url, data=data)


@pytest.fixture
def therapist_client(client, make_clinic, make_therapist, now):
    clinic = make_clinic()
    sign_in(client, make_therapist(clinic).email)
    return client


def test_the_visit_form_stores_the_contact_details_normalized(therapist_client, now):
    page, response = _visit_form(
        therapist_client, "/visits/new", phone=PHONE_TYPED, email=EMAIL_TYPED
    )

    assert 'type="tel"' in page and 'name="email"' in page
    assert response.status_code == 303
    assert (_patient().phone, _patient().email) == (PHONE, EMAIL)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"phone": "612 345 678"}, "with + and the country code"),
        ({"email": "maria@"}, "such as name@example.com"),
    ],
)
def test_the_visit_form_refuses_a_bad_phone_or_email_with_a_message(
    therapist_client, now, changes, message
):
    _, response = _visit_form(therapist_client, "/visits/new", **changes)

    assert response.status_code == 422
    assert message in response.get_data(as_text=True)
    assert 'aria-invalid="true"' in response.get_data(as_text=True)
    assert db.session.scalar(select(func.count()).select_from(Visit)) == 0


def test_the_edit_form_shows_changes_and_clears_the_contact_details(therapist_client, now):
    _visit_form(therapist_client, "/visits/new", phone=PHONE_TYPED, email=EMAIL_TYPED)
    visit = db.session.scalar(select(Visit))
    edit = f"/visits/{visit.id}/edit"

    page, response = _visit_form(therapist_client, edit, phone="+44 20 7946 0958", email=EMAIL)
    assert f'value="{PHONE}"' in page and f'value="{EMAIL}"' in page  # prefilled
    assert response.status_code == 303
    assert _patient().phone == "+442079460958"

    _, response = _visit_form(therapist_client, edit, phone="", email="  ")
    assert response.status_code == 303
    assert (_patient().phone, _patient().email) == (None, None)


def test_a_new_visit_for_a_known_patient_keeps_their_contact_details(therapist_client, now):
    _visit_form(therapist_client, "/visits/new", phone=PHONE_TYPED, email=EMAIL_TYPED)
    patient = _patient()

    page = therapist_client.get(f"/visits/new?patient={patient.id}").get_data(as_text=True)

    assert f'value="{PHONE}"' in page and f'value="{EMAIL}"' in page


def test_contact_details_never_reach_the_logs(therapist_client, key, now, caplog):
    caplog.set_level(logging.DEBUG)
    secrets = (PHONE, "612 345 678", "612345678", EMAIL, EMAIL.lower(), "Ana.Ruiz")

    _visit_form(therapist_client, "/visits/new", phone=PHONE_TYPED, email=EMAIL_TYPED)
    visit = db.session.scalar(select(Visit))
    _visit_form(therapist_client, f"/visits/{visit.id}/edit", phone=PHONE_TYPED, email=EMAIL)
    _visit_form(therapist_client, f"/visits/{visit.id}/edit", phone="612 345 678", email="x@")
    therapist_client.get(f"/visits/{visit.id}")
    body = {**_with_contact(phone=PHONE_TYPED, email=EMAIL_TYPED)}
    visit_id = _post(therapist_client, key, body).get_json()["visit_id"]
    _put(therapist_client, key, visit_id, body)
    _put(therapist_client, key, visit_id, _with_contact(phone="612 345 678", email="ana@"))

    assert _patient().phone == PHONE  # the paths ran
    logged = caplog.text + " ".join(str(r.args) for r in caplog.records)
    assert not [s for s in secrets if s in logged]
