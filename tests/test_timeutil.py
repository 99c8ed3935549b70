"""UTC-only timestamps, IANA zone names and secret tokens."""

from __future__ import annotations

import re
import string
from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo, available_timezones

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import StatementError

from companion.extensions import db
from companion.models import Clinic, Therapist
from companion.timeutil import is_iana_zone, to_local, utcnow
from companion.tokens import hash_token, new_token

# --- UTCDateTime ----------------------------------------------------------------------------------


def test_utcnow_is_timezone_aware_utc(now):
    moment = utcnow()
    assert moment.tzinfo is not None
    assert moment.utcoffset() == timedelta(0)
    assert now <= moment < now + timedelta(minutes=1)  # it reads the process clock, pinned here


def test_storing_a_naive_created_at_raises(app):
    naive = datetime(2026, 6, 1, 10, 0)  # noqa: DTZ001 - the point of the test
    db.session.add(Clinic(name="Naive Clinic", timezone="UTC", created_at=naive))
    with pytest.raises(StatementError) as raised:
        db.session.flush()
    assert isinstance(raised.value.orig, ValueError)
    assert "naive datetime" in str(raised.value.orig)
    db.session.rollback()
    assert db.session.scalar(select(Clinic).where(Clinic.name == "Naive Clinic")) is None


def test_storing_a_naive_visit_time_raises(make_clinic, make_visit):
    visit = make_visit(make_clinic()).visit
    visit.performed_at = datetime(2026, 6, 1, 10, 0)  # noqa: DTZ001 - the point of the test
    with pytest.raises(StatementError) as raised:
        db.session.commit()
    assert isinstance(raised.value.orig, ValueError)
    db.session.rollback()


def test_an_aware_time_in_another_zone_is_stored_as_utc_and_read_back_utc_aware(app):
    madrid = datetime(2026, 6, 1, 10, 0, tzinfo=ZoneInfo("Europe/Madrid"))  # 08:00 UTC
    db.session.add(Clinic(name="Madrid Clinic", timezone="Europe/Madrid", created_at=madrid))
    db.session.commit()

    raw = db.session.execute(
        text("SELECT created_at FROM clinic WHERE name = 'Madrid Clinic'")
    ).scalar_one()
    assert str(raw).startswith("2026-06-01 08:00:00"), raw

    db.session.expire_all()
    clinic = db.session.scalar(select(Clinic).where(Clinic.name == "Madrid Clinic"))
    assert clinic.created_at.tzinfo is not None
    assert clinic.created_at.utcoffset() == timedelta(0)
    assert clinic.created_at == madrid
    assert clinic.created_at == datetime(2026, 6, 1, 8, 0, tzinfo=UTC)


def test_a_fixed_offset_time_round_trips_to_the_same_instant_in_utc(make_clinic, make_visit):
    performed = datetime(2026, 11, 21, 23, 30, tzinfo=timezone(timedelta(hours=-5)))
    visit = make_visit(make_clinic(), performed_at=performed).visit
    visit_id = visit.id
    db.session.expire_all()

    again = db.session.get(type(visit), visit_id)
    assert again.performed_at == performed
    assert again.performed_at.tzinfo is not None and again.performed_at.utcoffset() == timedelta(0)
    assert (again.performed_at.date().isoformat(), again.performed_at.hour) == ("2026-11-22", 4)


def test_default_timestamps_come_back_utc_aware(make_clinic, now):
    clinic = make_clinic()
    db.session.expire_all()
    created = db.session.get(Clinic, clinic.id).created_at
    assert created.tzinfo is not None and created.utcoffset() == timedelta(0)
    assert now <= created < now + timedelta(minutes=5)


def test_a_null_timestamp_stays_null(make_clinic, make_therapist):
    therapist = make_therapist(make_clinic())
    db.session.expire_all()
    assert db.session.get(Therapist, therapist.id).last_sign_in_at is None


def test_to_local_shows_the_same_instant_in_the_patients_zone():
    moment = datetime(2026, 7, 1, 12, 0, tzinfo=UTC)
    local = to_local(moment, "Europe/Madrid")
    assert local == moment
    assert (local.hour, local.utcoffset()) == (14, timedelta(hours=2))


# --- IANA zone names ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["Europe/Madrid", "America/New_York", "Australia/Sydney", "UTC", "Asia/Kolkata"]
)
def test_is_iana_zone_accepts_canonical_names(name):
    assert is_iana_zone(name)


@pytest.mark.parametrize(
    "name",
    [
        pytest.param("Mars/Base", id="made-up"),
        pytest.param("", id="empty"),
        pytest.param("../etc/passwd", id="path-traversal"),
        pytest.param("/usr/share/zoneinfo/UTC", id="absolute-path"),
        pytest.param("europe/madrid", id="wrong-case"),
        pytest.param(" Europe/Madrid", id="leading-space"),
        pytest.param("posixrules", id="posixrules"),
        pytest.param("+01:00", id="offset"),
    ],
)
def test_is_iana_zone_rejects_names_outside_the_iana_list(name):
    assert not is_iana_zone(name)


def test_is_iana_zone_agrees_with_the_installed_list_for_est5edt():
    # EST5EDT is a legacy POSIX-style name, but it is in the IANA tz database (and so in
    # available_timezones()); is_iana_zone takes its names from that list.
    assert is_iana_zone("EST5EDT") == ("EST5EDT" in available_timezones())


# --- tokens ---------------------------------------------------------------------------------------

URL_SAFE = set(string.ascii_letters + string.digits + "-_")


def test_new_token_has_at_least_128_bits_of_url_safe_characters():
    token = new_token()
    assert len(token) >= 22  # 22 base64 characters carry 132 bits
    assert set(token) <= URL_SAFE


def test_new_token_differs_on_every_call():
    tokens = {new_token() for _ in range(50)}
    assert len(tokens) == 50


def test_hash_token_is_the_hex_sha256_of_the_token():
    digest = hash_token("abc")
    assert re.fullmatch(r"[0-9a-f]{64}", digest)
    assert digest == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    assert hash_token("abc") == digest
    assert hash_token("abd") != digest


def test_hash_token_of_a_new_token_is_64_hex_characters_and_not_the_token():
    token = new_token()
    digest = hash_token(token)
    assert len(digest) == 64 and re.fullmatch(r"[0-9a-f]{64}", digest)
    assert token not in digest
