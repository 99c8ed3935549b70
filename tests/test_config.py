"""Settings: secrets generated once into the instance folder, loud errors for bad values."""

from __future__ import annotations

import base64
import importlib
import stat

import pytest

import config


@pytest.fixture
def fresh_config(tmp_path, monkeypatch):
    monkeypatch.setenv("INSTANCE_PATH", str(tmp_path))
    for name in ("SECRET_KEY", "VAPID_PRIVATE_KEY", "DATABASE_URL", "PATIENT_LINK_DAYS"):
        monkeypatch.delenv(name, raising=False)
    module = importlib.reload(config)
    yield module, tmp_path
    monkeypatch.undo()
    importlib.reload(config)


def test_secrets_are_generated_once_into_the_instance_folder(fresh_config):
    module, folder = fresh_config
    first = module.from_environment()
    second = module.from_environment()
    assert first["SECRET_KEY"] == second["SECRET_KEY"] and len(first["SECRET_KEY"]) >= 48
    assert first["VAPID_PRIVATE_KEY"] == second["VAPID_PRIVATE_KEY"]
    for name in ("secret_key", "vapid_private.pem"):
        assert stat.S_IMODE((folder / name).stat().st_mode) == 0o600
    public = base64.urlsafe_b64decode(first["VAPID_PUBLIC_KEY"] + "==")
    assert len(public) == 65 and public[0] == 4  # an uncompressed P-256 point


def test_the_environment_wins_over_generated_secrets(fresh_config, monkeypatch):
    module, folder = fresh_config
    monkeypatch.setenv("SECRET_KEY", "from-the-environment")
    assert module.from_environment()["SECRET_KEY"] == "from-the-environment"
    assert not (folder / "secret_key").exists()


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("PATIENT_LINK_DAYS", "seven"),
        ("PATIENT_LINK_DAYS", "0"),
        ("DATABASE_URL", "mysql://db/x"),
        ("VAPID_PRIVATE_KEY", "not a key"),
        ("SECURE_COOKIES", "maybe"),
        ("PUSH_ENDPOINT_ALLOWLIST", "https://fcm.googleapis.com"),
        ("PUSH_ENDPOINT_ALLOWLIST", "127.0.0.1:9000"),
        ("SIGN_IN_ACCOUNT_LIMIT", "ten a minute"),
        ("SIGN_IN_RATE_LIMIT", ""),
        ("FORGOT_PASSWORD_RATE_LIMIT", "five a day"),
        ("SIGN_IN_CODE_LIMIT", "5 per fortnight"),
        ("CALENDAR_RATE_LIMIT", "often"),
        ("CALENDAR_TOKEN_FAILURE_LIMIT", "twenty an hour"),
        ("API_KEY_FAILURE_LIMIT", "30 per quarter"),
        ("PATIENT_LINK_FAILURE_LIMIT", ""),
    ],
)
def test_a_bad_setting_stops_start_up_with_a_clear_error(fresh_config, monkeypatch, name, value):
    module, _ = fresh_config
    monkeypatch.setenv(name, value)
    with pytest.raises(module.ConfigError, match=name):
        module.from_environment()


def test_postgres_urls_get_the_psycopg_driver(fresh_config, monkeypatch):
    module, _ = fresh_config
    monkeypatch.setenv("DATABASE_URL", "postgres://u@127.0.0.1/db")
    assert (
        module.from_environment()["SQLALCHEMY_DATABASE_URI"]
        == "postgresql+psycopg://u@127.0.0.1/db"
    )


def test_the_push_allowlist_defaults_to_the_major_push_services(fresh_config, monkeypatch):
    module, _ = fresh_config
    defaults = module.from_environment()["PUSH_ENDPOINT_ALLOWLIST"]
    assert "fcm.googleapis.com" in defaults and "web.push.apple.com" in defaults
    monkeypatch.setenv("PUSH_ENDPOINT_ALLOWLIST", " FCM.googleapis.com , 127.0.0.1 ")
    assert module.from_environment()["PUSH_ENDPOINT_ALLOWLIST"] == (
        "fcm.googleapis.com",
        "127.0.0.1",
    )
