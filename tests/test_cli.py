"""The flask commands: clinic, therapist, apikey and demo."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select

from companion.extensions import db
from companion.models import ApiKey, Clinic, Patient, Therapist, Visit
from companion.tokens import hash_token

from .conftest import sign_in
from .test_api import VISIT

LONG_PASSWORD = "a long password"


def count(model: type) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


def create_clinic(runner, name: str = "Sunrise Physio", *extra: str):
    return runner.invoke(args=["clinic", "create", name, *extra])


# --- clinic ---------------------------------------------------------------------------------------


def test_clinic_create_stores_the_clinic_with_its_timezone_and_phone(runner):
    result = create_clinic(
        runner, "Sunrise Physio", "--timezone", "Europe/Madrid", "--phone", "+34 600 000 000"
    )
    assert result.exit_code == 0, result.output
    assert "Sunrise Physio" in result.output
    clinic = db.session.scalar(select(Clinic).where(Clinic.name == "Sunrise Physio"))
    assert clinic is not None
    assert clinic.timezone == "Europe/Madrid"
    assert clinic.phone == "+34 600 000 000"


def test_clinic_create_defaults_to_utc(runner):
    assert create_clinic(runner).exit_code == 0
    assert db.session.scalar(select(Clinic.timezone)) == "UTC"


def test_clinic_create_refuses_a_duplicate_name_with_a_clear_message(runner):
    assert create_clinic(runner).exit_code == 0
    result = create_clinic(runner)
    assert result.exit_code != 0
    assert "already exists" in result.output
    assert count(Clinic) == 1


def test_clinic_create_refuses_a_non_iana_timezone(runner):
    result = create_clinic(runner, "Sunrise Physio", "--timezone", "Mars/Base")
    assert result.exit_code != 0
    assert "not an IANA time zone" in result.output
    assert count(Clinic) == 0


# --- therapist ------------------------------------------------------------------------------------


def create_therapist(runner, email: str, clinic: str = "Sunrise Physio", password=LONG_PASSWORD):
    return runner.invoke(
        args=["therapist", "create", email, "--clinic", clinic], input=f"{password}\n"
    )


def test_therapist_create_reads_the_password_from_stdin_and_stores_only_a_scrypt_hash(
    runner, client
):
    create_clinic(runner)
    result = create_therapist(runner, "Ana@Example.org")
    assert result.exit_code == 0, result.output
    assert LONG_PASSWORD not in result.output

    therapist = db.session.scalar(select(Therapist))
    assert therapist.email == "ana@example.org"  # stored lower-case
    assert therapist.password_hash.startswith("scrypt:")
    assert LONG_PASSWORD not in therapist.password_hash

    response = sign_in(client, "ana@example.org", LONG_PASSWORD)
    assert response.status_code == 302 and response.headers["Location"] == "/"
    assert client.get("/patients").status_code == 200


def test_a_therapist_created_on_the_command_line_cannot_sign_in_with_another_password(
    runner, client
):
    create_clinic(runner)
    assert create_therapist(runner, "ana@example.org").exit_code == 0
    response = sign_in(client, "ana@example.org", "a different password")
    assert response.status_code == 200
    assert client.get("/patients").status_code == 302


@pytest.mark.parametrize(
    ("password", "why"),
    [
        ("elevenchars", "at least 12 characters"),  # NIST SP 800-63B floor (issue 13)
        ("123qweasdzxc", "known from data breaches"),  # on the breached-password list
        ("password1234", "known from data breaches"),  # a pattern the list cannot hold
        ("aaaaaaaaaaaaaaaa", "known from data breaches"),
        ("sunrisephysio", "known from data breaches"),  # the clinic's own name (fine elsewhere)
        ("ana@example.org", "known from data breaches"),  # the account's own e-mail
    ],
)
def test_therapist_create_refuses_a_short_breached_or_guessable_password(runner, password, why):
    create_clinic(runner)
    result = create_therapist(runner, "ana@example.org", password=password)
    assert result.exit_code != 0
    assert why in result.output
    assert count(Therapist) == 0


def test_a_passphrase_without_digits_or_symbols_is_fine(runner):
    # No composition rules (NIST SP 800-63B): length and unguessability are what count.
    create_clinic(runner)
    assert (
        create_therapist(runner, "ana@example.org", password="trombone lantern quiet").exit_code
        == 0
    )


def test_therapist_create_refuses_an_unknown_clinic(runner):
    result = create_therapist(runner, "ana@example.org", clinic="Nowhere Clinic")
    assert result.exit_code != 0
    assert "No clinic named 'Nowhere Clinic'" in result.output
    assert count(Therapist) == 0


def test_therapist_create_refuses_an_e_mail_already_taken_in_any_case(runner):
    create_clinic(runner)
    assert create_therapist(runner, "ana@example.org").exit_code == 0
    result = create_therapist(runner, "ANA@example.org")
    assert result.exit_code != 0
    assert "already exists" in result.output
    assert count(Therapist) == 1


# --- apikey ---------------------------------------------------------------------------------------


def test_apikey_create_prints_a_key_once_stores_only_its_hash_and_the_key_works(runner, client):
    create_clinic(runner)
    result = runner.invoke(args=["apikey", "create", "--clinic", "Sunrise Physio"])
    assert result.exit_code == 0, result.output
    key = result.output.strip()
    assert key.startswith("ak_") and len(key) >= 3 + 22
    assert result.output.count(key) == 1

    stored = db.session.scalars(select(ApiKey)).all()
    assert len(stored) == 1
    assert stored[0].key_hash == hash_token(key)
    assert key not in (stored[0].key_hash, stored[0].prefix)

    response = client.post("/api/v1/visits", json=VISIT, headers={"Authorization": f"Bearer {key}"})
    assert response.status_code == 201, response.get_data(as_text=True)
    assert count(Visit) == 1


def test_two_api_keys_for_one_clinic_differ(runner):
    create_clinic(runner)
    first = runner.invoke(args=["apikey", "create", "--clinic", "Sunrise Physio"]).output.strip()
    second = runner.invoke(args=["apikey", "create", "--clinic", "Sunrise Physio"]).output.strip()
    assert first != second
    assert count(ApiKey) == 2


def test_apikey_create_refuses_an_unknown_clinic(runner):
    result = runner.invoke(args=["apikey", "create", "--clinic", "Nowhere Clinic"])
    assert result.exit_code != 0
    assert "No clinic named" in result.output
    assert count(ApiKey) == 0


# --- demo -----------------------------------------------------------------------------------------


def test_demo_on_an_empty_database_prints_a_working_sign_in_and_patient_link(runner, client):
    result = runner.invoke(args=["demo"])
    assert result.exit_code == 0, result.output

    email = re.search(r"e-mail:\s+(\S+)", result.output)
    password = re.search(r"password:\s+(\S+)", result.output)
    link = re.search(r"(/p/[A-Za-z0-9_-]+)", result.output)
    assert email and password and link, result.output
    assert count(Clinic) == 1 and count(Therapist) == 1
    assert count(Patient) == 5 and count(Visit) == 5

    assert client.get(link.group(1)).status_code == 303

    response = sign_in(client, email.group(1), password.group(1))
    assert response.status_code == 302 and response.headers["Location"] == "/"
    # The review queue shows each kind of item, raised by the app's own rules.
    queue = client.get("/").get_data(as_text=True)
    assert "Red flags: 1 · Look at today: 2 · On track: 2" in queue
    assert "New shortness of breath" in queue and "No check-in by 24 h" in queue


def test_demo_a_second_time_adds_nothing_and_says_so(runner):
    assert runner.invoke(args=["demo"]).exit_code == 0
    clinics, therapists, visits = count(Clinic), count(Therapist), count(Visit)

    again = runner.invoke(args=["demo"])
    assert again.exit_code == 0
    assert "nothing added" in again.output
    assert "password:" not in again.output and "/p/" not in again.output
    assert (count(Clinic), count(Therapist), count(Visit)) == (clinics, therapists, visits)


def test_demo_adds_nothing_to_a_database_that_already_has_a_clinic(runner):
    create_clinic(runner)
    result = runner.invoke(args=["demo"])
    assert result.exit_code == 0
    assert "nothing added" in result.output
    assert count(Clinic) == 1 and count(Therapist) == 0


def test_demo_prints_links_under_the_given_base_url(runner):
    result = runner.invoke(args=["demo", "--base-url", "https://demo.example.org/"])
    assert result.exit_code == 0
    assert "https://demo.example.org/sign-in" in result.output
    assert "https://demo.example.org/p/" in result.output


# --- quiet hours, reminders, push keys ------------------------------------------------------------


def test_clinic_quiet_hours_are_stored_and_open_visits_re_planned(runner, make_visit, time_machine):
    from datetime import UTC, datetime, time

    from companion.models import Reminder
    from companion.reminders.planning import NEXT_MORNING

    at = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)  # 09:00 Madrid
    time_machine.move_to(at)  # the command re-plans at the moment of the visit: nothing ended yet
    assert create_clinic(runner, "Quiet Physio", "--timezone", "Europe/Madrid").exit_code == 0
    clinic = db.session.scalar(select(Clinic).where(Clinic.name == "Quiet Physio"))
    assert (clinic.quiet_start, clinic.quiet_end) == (time(21, 30), time(8, 0))
    visit = make_visit(clinic, performed_at=at, now=at).visit

    result = runner.invoke(args=["clinic", "quiet-hours", "Quiet Physio", "21:00-09:30"])

    assert result.exit_code == 0, result.output
    assert "re-planned 1 open visit" in result.output
    db.session.expire_all()
    morning = db.session.scalar(
        select(Reminder).where(Reminder.visit_id == visit.id, Reminder.kind == NEXT_MORNING)
    )
    assert morning.due_at == datetime(2026, 11, 21, 8, 30, tzinfo=UTC)  # 09:30 Madrid


def test_bad_quiet_hours_are_refused_and_change_nothing(runner):
    create_clinic(runner, "Quiet Physio")
    result = runner.invoke(args=["clinic", "quiet-hours", "Quiet Physio", "late"])
    assert result.exit_code != 0 and "21:30-08:00" in result.output
    clinic = db.session.scalar(select(Clinic).where(Clinic.name == "Quiet Physio"))
    db.session.refresh(clinic)
    assert clinic.quiet_start.hour == 21


def test_reminders_dispatch_says_when_nothing_is_due(runner):
    result = runner.invoke(args=["reminders", "dispatch"])
    assert result.exit_code == 0 and "No reminders due." in result.output


def test_push_keygen_keeps_the_key_browsers_subscribed_to(runner, monkeypatch, tmp_path):
    import config

    monkeypatch.delenv("VAPID_PRIVATE_KEY", raising=False)
    monkeypatch.setattr(config, "INSTANCE", tmp_path / "keys")
    first = runner.invoke(args=["push", "keygen"])
    again = runner.invoke(args=["push", "keygen"])
    replaced = runner.invoke(args=["push", "keygen", "--force"])

    key = first.output.strip().splitlines()[-1]
    assert first.exit_code == 0 and "Wrote a new key" in first.output
    assert len(key) == 87  # 65-byte uncompressed P-256 point, base64url without padding
    assert "Keeping the existing key" in again.output and again.output.strip().endswith(key)
    assert not replaced.output.strip().endswith(key)
    assert oct((tmp_path / "keys" / "vapid_private.pem").stat().st_mode & 0o777) == "0o600"


def test_clinic_quiet_hours_longer_than_the_longest_allowed_are_refused(runner):
    create_clinic(runner, "Quiet Physio")
    result = runner.invoke(args=["clinic", "quiet-hours", "Quiet Physio", "08:00-07:00"])
    assert result.exit_code != 0
    clinic = db.session.scalar(select(Clinic).where(Clinic.name == "Quiet Physio"))
    db.session.refresh(clinic)
    assert clinic.quiet_start.hour == 21


# --- opening hours ---------------------------------------------------------------------------------


def _clinic(name: str) -> Clinic:
    db.session.expire_all()
    return db.session.scalar(select(Clinic).where(Clinic.name == name))


def test_clinic_hours_are_stored_in_the_clinics_zone_printed_and_audited(runner, now):
    from datetime import timedelta

    from companion.models import AuditEvent

    create_clinic(runner, "Open Physio", "--timezone", "Europe/Madrid")
    result = runner.invoke(
        args=["clinic", "hours", "Open Physio", "mon-fri 08:00-20:00", "sat 09:00-13:00"]
    )
    assert result.exit_code == 0, result.output
    assert "Europe/Madrid" in result.output
    assert "mon-fri 08:00-20:00, sat 09:00-13:00; other days closed" in result.output
    clinic = _clinic("Open Physio")
    assert clinic.opening_hours["fri"] == [["08:00", "20:00"]]
    assert clinic.opening_hours["sat"] == [["09:00", "13:00"]]
    assert "sun" not in clinic.opening_hours
    [event] = db.session.scalars(select(AuditEvent).where(AuditEvent.clinic_id == clinic.id)).all()
    assert (event.action, event.actor_type) == ("clinic.settings", "system")
    assert now <= event.at < now + timedelta(minutes=1)  # the pinned clock ticks on
    assert event.detail == {"changed": "opening_hours"}

    shown = runner.invoke(args=["clinic", "hours", "Open Physio"])
    assert shown.exit_code == 0
    assert "mon-fri 08:00-20:00, sat 09:00-13:00; other days closed" in shown.output
    assert count(AuditEvent) == 1  # printing changes nothing


def test_clinic_hours_replace_the_old_ones_and_clear_forgets_them(runner, now):
    create_clinic(runner, "Open Physio")
    runner.invoke(args=["clinic", "hours", "Open Physio", "mon-fri 08:00-20:00"])
    result = runner.invoke(args=["clinic", "hours", "Open Physio", "tue 08:00-12:00 16:00-20:00"])
    assert result.exit_code == 0, result.output
    assert _clinic("Open Physio").opening_hours == {"tue": [["08:00", "12:00"], ["16:00", "20:00"]]}

    cleared = runner.invoke(args=["clinic", "hours", "Open Physio", "--clear"])
    assert cleared.exit_code == 0 and "not set" in cleared.output
    assert _clinic("Open Physio").opening_hours is None
    assert "not set" in runner.invoke(args=["clinic", "hours", "Open Physio"]).output


def test_bad_clinic_hours_are_refused_with_the_reason_and_change_nothing(runner, now):
    create_clinic(runner, "Open Physio")
    runner.invoke(args=["clinic", "hours", "Open Physio", "mon-fri 08:00-20:00"])
    for specs, reason in [
        (["mon 20:00-08:00"], "closing time must come after the opening time"),
        (["mon 08:00-13:00", "mon 12:00-14:00"], "overlaps"),
        (["someday 08:00-13:00"], "give days as mon"),
    ]:
        result = runner.invoke(args=["clinic", "hours", "Open Physio", *specs])
        assert result.exit_code != 0
        assert reason in result.output
    refused = runner.invoke(args=["clinic", "hours", "Open Physio", "--clear", "mon 08:00-09:00"])
    assert refused.exit_code != 0 and "not both" in refused.output
    assert _clinic("Open Physio").opening_hours["mon"] == [["08:00", "20:00"]]
    assert runner.invoke(args=["clinic", "hours", "Nowhere", "mon 08:00-09:00"]).exit_code != 0
