"""The API keys page (issue 13): create a key (shown once), list with name, prefix, creation and
last use, revoke; the CLI makes keys the same way."""

from __future__ import annotations

import re
from datetime import timedelta
from html import unescape

import pytest
from sqlalchemy import func, select

from companion.extensions import db
from companion.models import ApiKey, AuditEvent, Role

from .conftest import csrf_from, sign_in

PAGE = "/settings/api-keys"
KEY = re.compile(
    r'id="new-key"[^>]*value="(ak_[A-Za-z0-9_-]+)"|value="(ak_[A-Za-z0-9_-]+)"[^>]*id="new-key"'
)


@pytest.fixture
def admin_client(client, make_clinic, make_therapist, now):
    clinic = make_clinic(name="Harbour Physio")
    admin = make_therapist(clinic, "ada@harbour.example", role=Role.ADMIN)
    sign_in(client, admin.email)
    client.clinic = clinic
    return client


def create(client, name: str = "Booking system"):
    token = csrf_from(client.get(PAGE).get_data(as_text=True))
    return client.post(PAGE, data={"csrf_token": token, "name": name})


def key_in(html: str) -> str:
    match = KEY.search(html)
    assert match, "the page shows no new key"
    return match.group(1) or match.group(2)


def alerts_api(client, key: str):
    return client.get("/api/v1/alerts", headers={"Authorization": f"Bearer {key}"})


def revoke(client, row: ApiKey):
    url = f"{PAGE}/{row.id}/revoke"
    confirm = client.get(url)
    return confirm, client.post(url, data={"csrf_token": csrf_from(confirm.get_data(as_text=True))})


def test_a_new_key_is_shown_once_works_and_is_audited(admin_client, now):
    response = create(admin_client)
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    key = key_in(html)
    assert "shown only this once" in html
    row = db.session.scalar(select(ApiKey))
    assert (row.name, row.prefix, row.clinic_id) == (
        "Booking system",
        key[:10],
        admin_client.clinic.id,
    )
    assert key not in (row.key_hash, row.prefix)
    assert alerts_api(admin_client, key).status_code == 200
    # Never again: the list names the key by its prefix only.
    listing = admin_client.get(PAGE).get_data(as_text=True)
    assert key not in listing and key[:10] in listing and "Booking system" in listing
    event = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "api_key.create"))
    assert event.target_id == str(row.id)


def test_a_key_needs_a_name(admin_client, now):
    response = create(admin_client, name="  ")
    assert response.status_code == 422
    assert "Give the key a name." in response.get_data(as_text=True)
    assert db.session.scalar(select(func.count()).select_from(ApiKey)) == 0


def test_revoking_asks_first_then_the_key_gets_401(admin_client, now):
    key = key_in(create(admin_client).get_data(as_text=True))
    row = db.session.scalar(select(ApiKey))
    confirm, response = revoke(admin_client, row)
    assert "stops working at once" in unescape(confirm.get_data(as_text=True))
    db.session.refresh(row)
    assert response.status_code == 303
    assert row.revoked_at is not None
    assert alerts_api(admin_client, key).status_code == 401
    listing = admin_client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Revoked on" in listing and "The key is revoked." in listing
    assert db.session.scalar(select(AuditEvent).where(AuditEvent.action == "api_key.revoke"))


def test_a_get_of_the_revoke_page_changes_nothing(admin_client, now):
    create(admin_client)
    row = db.session.scalar(select(ApiKey))
    admin_client.get(f"{PAGE}/{row.id}/revoke")
    db.session.refresh(row)
    assert row.revoked_at is None


def test_last_used_is_noted_at_most_once_a_minute(admin_client, now, time_machine):
    key = key_in(create(admin_client).get_data(as_text=True))
    row = db.session.scalar(select(ApiKey))
    assert row.last_used_at is None
    assert "Never" in admin_client.get(PAGE).get_data(as_text=True)
    assert alerts_api(admin_client, key).status_code == 200
    db.session.refresh(row)
    first = row.last_used_at
    assert first is not None and abs(first - now) < timedelta(seconds=5)
    time_machine.move_to(now + timedelta(seconds=30))
    alerts_api(admin_client, key)
    db.session.refresh(row)
    assert row.last_used_at == first  # no write within the minute
    time_machine.move_to(now + timedelta(minutes=2))
    alerts_api(admin_client, key)
    db.session.refresh(row)
    assert row.last_used_at > first + timedelta(minutes=1)
    assert "Never" not in admin_client.get(PAGE).get_data(as_text=True)


def test_another_clinics_key_cannot_be_revoked_or_seen(
    admin_client, make_clinic, make_api_key, now
):
    other = make_clinic(name="Seaside Physio")
    other_key = make_api_key(other)
    row = db.session.scalar(select(ApiKey).where(ApiKey.clinic_id == other.id))
    assert other_key[:10] not in admin_client.get(PAGE).get_data(as_text=True)
    token = csrf_from(admin_client.get(PAGE).get_data(as_text=True))
    assert admin_client.get(f"{PAGE}/{row.id}/revoke").status_code == 404
    assert (
        admin_client.post(f"{PAGE}/{row.id}/revoke", data={"csrf_token": token}).status_code == 404
    )
    db.session.refresh(row)
    assert row.revoked_at is None
    assert alerts_api(admin_client, other_key).status_code == 200


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", PAGE), ("POST", PAGE), ("GET", "revoke"), ("POST", "revoke")],
)
def test_a_therapist_gets_403_and_nothing_changes(
    client, make_clinic, make_therapist, make_api_key, now, method, path
):
    clinic = make_clinic(name="Harbour Physio")
    key = make_api_key(clinic)
    row = db.session.scalar(select(ApiKey))
    therapist = make_therapist(clinic, "theo@harbour.example", role=Role.THERAPIST)
    sign_in(client, therapist.email)
    token = csrf_from(client.get("/").get_data(as_text=True))
    url = f"{PAGE}/{row.id}/revoke" if path == "revoke" else path
    data = {"csrf_token": token, "name": "Mine now"} if method == "POST" else None
    events = db.session.scalar(select(func.count()).select_from(AuditEvent))
    assert client.open(url, method=method, data=data).status_code == 403
    assert db.session.scalar(select(func.count()).select_from(ApiKey)) == 1
    db.session.refresh(row)
    assert row.revoked_at is None
    assert db.session.scalar(select(func.count()).select_from(AuditEvent)) == events
    assert alerts_api(client, key).status_code == 200


def test_the_cli_creates_a_named_key_that_the_page_lists(admin_client, runner, now):
    result = runner.invoke(
        args=["apikey", "create", "--clinic", "Harbour Physio", "--name", "Records export"]
    )
    assert result.exit_code == 0, result.output
    key = result.output.strip()
    assert key.startswith("ak_")
    row = db.session.scalar(select(ApiKey))
    assert row.name == "Records export"
    assert db.session.scalar(select(AuditEvent).where(AuditEvent.action == "api_key.create"))
    assert "Records export" in admin_client.get(PAGE).get_data(as_text=True)
    assert alerts_api(admin_client, key).status_code == 200


def test_the_page_is_in_spanish_for_a_spanish_reader(admin_client, now):
    html = admin_client.get(PAGE, headers={"Accept-Language": "es"}).get_data(as_text=True)
    assert "Claves de API" in html and "Crear una clave" in html


@pytest.mark.postgres
def test_on_postgresql_keys_list_live_first_and_last_use_is_kept(admin_client, now):
    first = key_in(create(admin_client, "Old system").get_data(as_text=True))
    new = key_in(create(admin_client, "New system").get_data(as_text=True))
    assert alerts_api(admin_client, new).status_code == 200
    assert db.session.scalar(select(ApiKey.last_used_at).where(ApiKey.name == "New system"))
    old = db.session.scalar(select(ApiKey).where(ApiKey.name == "Old system"))
    revoke(admin_client, old)
    listing = admin_client.get(PAGE).get_data(as_text=True)
    assert listing.index("New system") < listing.index("Old system")
    assert alerts_api(admin_client, first).status_code == 401
