"""The e-mail channel against a real SMTP server on 127.0.0.1 (tests/smtpserver.py): what arrives,
one message per recipient, failures that come back as results (never exceptions), STARTTLS that
checks the certificate, and the MAIL_* settings' loud errors."""

from __future__ import annotations

import importlib
import logging
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

import config
from companion import channels
from companion.channels.email import (
    DISABLED,
    ERROR,
    SENT,
    EmailMessage,
    deliver,
    email_enabled,
    send_email,
)
from companion.extensions import db

from .conftest import build_app
from .smtpserver import SMTPServer, free_port, self_signed_certificate

SENDER = "Clinic alerts <alerts@clinic.example>"


@pytest.fixture
def smtp() -> Iterator[SMTPServer]:
    with SMTPServer() as server:
        yield server


def mail_app(tmp_path: Path, port: int, **overrides: Any) -> Flask:
    settings = {
        "MAIL_SERVER": "127.0.0.1",
        "MAIL_PORT": port,
        "MAIL_DEFAULT_SENDER": SENDER,
        "MAIL_TIMEOUT": 5,
        **overrides,
    }
    return build_app(tmp_path, **settings)


@pytest.fixture
def mailing(tmp_path: Path, smtp: SMTPServer) -> Iterator[Flask]:
    """An app whose MAIL_SERVER is the local SMTP server, inside an app context."""
    app = mail_app(tmp_path, smtp.port)
    with app.app_context():
        yield app
        db.session.remove()
        db.engine.dispose()


def test_a_message_goes_over_smtp_with_its_sender_recipient_subject_and_body(mailing, smtp):
    body = "Two check-ins need a look when you have a moment.\nSign in to see them.\n"
    html = "<p>Two check-ins need a look when you have a moment.</p>"

    result = send_email(["ana@clinic.example"], "Check-ins to review", body, html=html)

    assert result.outcome == SENT and result.detail is None
    assert result.sent == ("ana@clinic.example",) and result.failed == ()
    [received] = smtp.received
    assert received.mail_from == "alerts@clinic.example"
    assert received.rcpt_tos == ["ana@clinic.example"]
    message = received.message
    assert message["From"] == SENDER
    assert message["To"] == "ana@clinic.example"
    assert message["Subject"] == "Check-ins to review"
    assert message["Date"] and message["Message-ID"]
    assert received.text == body
    assert received.html is not None and html in received.html


def test_every_recipient_gets_a_message_of_their_own(mailing, smtp):
    result = send_email(
        ["ana@clinic.example", "ben@clinic.example", "ana@clinic.example"],
        "Check-ins to review",
        "Plain text only.",
    )

    assert result.outcome == SENT
    assert result.sent == ("ana@clinic.example", "ben@clinic.example")  # each address once
    assert [r.rcpt_tos for r in smtp.received] == [["ana@clinic.example"], ["ben@clinic.example"]]
    for received in smtp.received:
        # Nobody sees another's address, in any header.
        assert received.message["To"] == received.rcpt_tos[0]
        assert received.message["Cc"] is None
        assert received.message.get_content_type() == "text/plain"
        assert received.html is None


def test_non_ascii_subjects_and_bodies_arrive_intact(mailing, smtp):
    send_email(["ana@clinic.example"], "Revisión pendiente", "Un aviso de la clínica: ¿todo bien?")

    [received] = smtp.received
    assert received.message["Subject"] == "Revisión pendiente"
    assert received.text.strip() == "Un aviso de la clínica: ¿todo bien?"


def test_e_mail_is_off_without_mail_server(app, smtp):
    assert app.config["MAIL_SERVER"] is None
    assert email_enabled(app) is False

    result = send_email(["ana@clinic.example"], "Check-ins to review", "Body.")

    assert result.outcome == DISABLED
    assert smtp.received == []


def test_a_refused_recipient_is_an_error_result_and_the_others_still_get_theirs(
    mailing, smtp, caplog, monkeypatch
):
    smtp.refuse["ben@clinic.example"] = 550
    # Alembic's logging set-up (run by every migrated test app) disables the loggers that exist.
    monkeypatch.setattr(logging.getLogger("companion.channels.email"), "disabled", False)
    caplog.set_level(logging.WARNING)

    result = send_email(
        ["ana@clinic.example", "ben@clinic.example", "cai@clinic.example"], "Alert", "Body."
    )

    assert result.outcome == ERROR
    assert result.detail == "recipient refused (550)"
    assert result.sent == ("ana@clinic.example", "cai@clinic.example")
    assert result.failed == ("ben@clinic.example",)
    assert [r.rcpt_tos for r in smtp.received] == [["ana@clinic.example"], ["cai@clinic.example"]]
    # The log says what went wrong, not to whom.
    assert "recipient refused (550)" in caplog.text
    assert "clinic.example" not in caplog.text


def test_a_server_that_refuses_every_message_gives_an_error_result(mailing, smtp):
    smtp.data_status = "554 5.7.1 message rejected"

    result = send_email(["ana@clinic.example", "ben@clinic.example"], "Alert", "Body.")

    assert (result.outcome, result.detail) == (ERROR, "message refused (554)")
    assert result.sent == () and result.failed == ("ana@clinic.example", "ben@clinic.example")
    assert smtp.received == []


def test_a_server_that_is_down_gives_an_error_result(tmp_path):
    app = mail_app(tmp_path, free_port())  # nothing listens there
    with app.app_context():
        result = send_email(["ana@clinic.example"], "Alert", "Body.")

    assert (result.outcome, result.detail) == (ERROR, "connection refused")
    assert result.failed == ("ana@clinic.example",)


def test_a_server_that_never_answers_times_out_with_an_error_result(tmp_path):
    # Accepts the TCP connection (the kernel does) but never sends its greeting.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        app = mail_app(tmp_path, silent.getsockname()[1], MAIL_TIMEOUT=1)
        with app.app_context():
            result = send_email(["ana@clinic.example"], "Alert", "Body.")

    assert (result.outcome, result.detail) == (ERROR, "server timed out")


@pytest.fixture
def tls_smtp(tmp_path: Path) -> Iterator[tuple[SMTPServer, Path]]:
    cert, key = self_signed_certificate(tmp_path)
    with SMTPServer(tls=(cert, key)) as server:
        yield server, cert


def test_starttls_refuses_a_server_whose_certificate_is_not_trusted(tmp_path, tls_smtp):
    smtp, _cert = tls_smtp
    app = mail_app(tmp_path, smtp.port, MAIL_USE_TLS=True)
    with app.app_context():
        result = send_email(["ana@clinic.example"], "Alert", "Body.")

    assert (result.outcome, result.detail) == (ERROR, "server certificate not trusted")
    assert smtp.received == []


def test_starttls_sends_to_a_server_with_a_trusted_certificate(tmp_path, tls_smtp, monkeypatch):
    smtp, cert = tls_smtp
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))  # as if a CA had signed it
    app = mail_app(tmp_path, smtp.port, MAIL_USE_TLS=True)
    with app.app_context():
        result = send_email(["ana@clinic.example"], "Alert", "Body.")

    assert result.outcome == SENT
    assert [r.rcpt_tos for r in smtp.received] == [["ana@clinic.example"]]


def test_a_server_that_requires_starttls_refuses_plain_text(tmp_path, tls_smtp):
    smtp, _cert = tls_smtp
    app = mail_app(tmp_path, smtp.port)  # MAIL_USE_TLS off
    with app.app_context():
        result = send_email(["ana@clinic.example"], "Alert", "Body.")

    assert result.outcome == ERROR
    assert smtp.received == []


@pytest.mark.parametrize(
    ("subject", "body"),
    [("Two\nlines", "Body."), ("Alert", "  "), ("Alert", "")],
)
def test_a_callers_mistake_is_a_value_error(mailing, smtp, subject, body):
    with pytest.raises(ValueError):
        send_email(["ana@clinic.example"], subject, body)
    assert smtp.received == []


# --- settings ---------------------------------------------------------------------------------------

MAIL_NAMES = (
    "MAIL_SERVER",
    "MAIL_PORT",
    "MAIL_USE_TLS",
    "MAIL_USE_SSL",
    "MAIL_USERNAME",
    "MAIL_PASSWORD",
    "MAIL_DEFAULT_SENDER",
    "MAIL_TIMEOUT",
)


@pytest.fixture
def settings(tmp_path, monkeypatch):
    """config.py read afresh with only the MAIL_* variables a test sets."""
    monkeypatch.setenv("INSTANCE_PATH", str(tmp_path))
    for name in MAIL_NAMES:
        monkeypatch.delenv(name, raising=False)
    yield importlib.reload(config)
    monkeypatch.undo()
    importlib.reload(config)


def test_e_mail_settings_default_to_off(settings):
    mail = settings.from_environment()
    assert mail["MAIL_SERVER"] is None and mail["MAIL_DEFAULT_SENDER"] is None
    assert mail["MAIL_PORT"] == 25 and mail["MAIL_TIMEOUT"] == 10
    assert mail["MAIL_BACKEND"] == "companion.channels.email.EmailBackend"


def test_e_mail_settings_are_read_from_the_environment(settings, monkeypatch):
    for name, value in {
        "MAIL_SERVER": "smtp.clinic.example",
        "MAIL_USE_TLS": "true",
        "MAIL_USERNAME": "alerts",
        "MAIL_PASSWORD": "s3cret",
        "MAIL_DEFAULT_SENDER": SENDER,
        "MAIL_TIMEOUT": "20",
    }.items():
        monkeypatch.setenv(name, value)
    mail = settings.from_environment()
    assert mail["MAIL_SERVER"] == "smtp.clinic.example"
    assert mail["MAIL_PORT"] == 587  # the STARTTLS port unless told otherwise
    assert (mail["MAIL_USE_TLS"], mail["MAIL_USE_SSL"]) == (True, False)
    assert (mail["MAIL_USERNAME"], mail["MAIL_PASSWORD"]) == ("alerts", "s3cret")
    assert mail["MAIL_DEFAULT_SENDER"] == SENDER and mail["MAIL_TIMEOUT"] == 20
    monkeypatch.setenv("MAIL_USE_TLS", "false")
    monkeypatch.setenv("MAIL_USE_SSL", "true")
    assert settings.from_environment()["MAIL_PORT"] == 465


@pytest.mark.parametrize(
    ("values", "named"),
    [
        ({"MAIL_DEFAULT_SENDER": ""}, "MAIL_DEFAULT_SENDER"),  # required with a server
        ({"MAIL_DEFAULT_SENDER": "not an address"}, "MAIL_DEFAULT_SENDER"),
        ({"MAIL_DEFAULT_SENDER": "a@clinic.example, b@clinic.example"}, "MAIL_DEFAULT_SENDER"),
        ({"MAIL_SERVER": "smtp.clinic.example:587"}, "MAIL_SERVER"),
        ({"MAIL_SERVER": "smtp://smtp.clinic.example"}, "MAIL_SERVER"),
        ({"MAIL_PORT": "smtp"}, "MAIL_PORT"),
        ({"MAIL_PORT": "70000"}, "MAIL_PORT"),
        ({"MAIL_PORT": "0"}, "MAIL_PORT"),
        ({"MAIL_TIMEOUT": "0"}, "MAIL_TIMEOUT"),
        ({"MAIL_USE_TLS": "perhaps"}, "MAIL_USE_TLS"),
        ({"MAIL_USE_TLS": "true", "MAIL_USE_SSL": "true"}, "MAIL_USE_SSL"),
        ({"MAIL_USERNAME": "alerts", "MAIL_USE_TLS": "true"}, "MAIL_PASSWORD"),
        # A password must not cross the network in clear.
        ({"MAIL_USERNAME": "alerts", "MAIL_PASSWORD": "s3cret"}, "MAIL_USE_TLS"),
    ],
)
def test_a_bad_e_mail_setting_stops_start_up_with_a_clear_error(
    settings, monkeypatch, values, named
):
    monkeypatch.setenv("MAIL_SERVER", "smtp.clinic.example")
    monkeypatch.setenv("MAIL_DEFAULT_SENDER", SENDER)
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(settings.ConfigError, match=named):
        settings.from_environment()


def test_a_local_relay_may_take_a_login_without_tls(settings, monkeypatch):
    monkeypatch.setenv("MAIL_SERVER", "127.0.0.1")
    monkeypatch.setenv("MAIL_DEFAULT_SENDER", SENDER)
    monkeypatch.setenv("MAIL_USERNAME", "alerts")
    monkeypatch.setenv("MAIL_PASSWORD", "s3cret")
    assert settings.from_environment()["MAIL_USERNAME"] == "alerts"


def test_the_channel_gives_one_outcome_per_address_in_the_shared_vocabulary(mailing, smtp):
    smtp.refuse["ben@clinic.example"] = 550
    targets = [("t-ana", "ana@clinic.example"), ("t-ben", "ben@clinic.example")]

    outcomes = deliver(targets, lambda key: EmailMessage(f"For {key}", "Body."))

    assert [(o.target, o.kind, o.code) for o in outcomes] == [
        ("t-ana", channels.ACCEPTED, SENT),
        ("t-ben", channels.RETRY, ERROR),
    ]
    assert outcomes[1].detail == "recipient refused (550)"
    assert [(r.rcpt_tos, r.message["Subject"]) for r in smtp.received] == [
        (["ana@clinic.example"], "For t-ana")
    ]


def test_the_channel_sends_nothing_and_reports_nothing_while_e_mail_is_off(app, smtp):
    assert deliver([("t-ana", "ana@clinic.example")], EmailMessage("Alert", "Body.")) == []
    assert smtp.received == []
