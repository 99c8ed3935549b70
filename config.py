"""Settings from the environment, with loud errors for bad values.

Secrets (SECRET_KEY, VAPID keys) come from the environment or, when absent, from files generated once
under instance/ (never committed), so `make run` needs no setup and production can inject its own.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

from limits import parse_many

ROOT = Path(__file__).resolve().parent
INSTANCE = Path(os.environ.get("INSTANCE_PATH", ROOT / "instance"))


class ConfigError(RuntimeError):
    """A setting is missing or malformed; raised at start-up, never at request time."""


def _int(name: str, default: int, minimum: int = 0) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, got {raw!r}") from None
    if value < minimum:
        raise ConfigError(f"{name} must be at least {minimum}, got {value}")
    return value


def _rate(name: str, default: str) -> str:
    """A rate limit in the limiter's words ("10 per 15 minutes;50 per hour"), refused at start-up
    rather than at the first sign-in."""
    value = os.environ.get(name, default)
    try:
        if not parse_many(value):
            raise ValueError(value)
    except ValueError:
        raise ConfigError(
            f"{name} must be a rate limit such as '10 per 15 minutes;50 per hour', got {value!r}"
        ) from None
    return value


def _bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    if raw.lower() in {"1", "true", "yes", "on"}:
        return True
    if raw.lower() in {"0", "false", "no", "off"}:
        return False
    raise ConfigError(f"{name} must be true or false, got {raw!r}")


# The push services of the major browsers (Chrome/Edge via FCM, Firefox, Safari, Windows). A
# leading "*." also allows any subdomain. Anything else is refused: a patient could otherwise register
# an "endpoint" inside our network and make the server call it (SSRF).
DEFAULT_PUSH_HOSTS = (
    "fcm.googleapis.com",
    "updates.push.services.mozilla.com",
    "web.push.apple.com",
    "*.notify.windows.com",
)


def _hosts(name: str, default: tuple[str, ...]) -> tuple[str, ...]:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    hosts = tuple(h.strip().lower() for h in raw.split(",") if h.strip())
    for host in hosts:
        if any(c in host for c in "/:@ "):
            raise ConfigError(f"{name} takes host names only (no scheme, port or path): {host!r}")
    return hosts


def instance_secret(
    filename: str, make: Callable[[], str] = lambda: secrets.token_urlsafe(48)
) -> str:
    """Read a secret kept under instance/, creating it (mode 0600) on first use."""
    path = INSTANCE / filename
    if path.exists():
        return path.read_text().strip()
    INSTANCE.mkdir(parents=True, exist_ok=True)
    # Written whole to a private temporary file, then linked into place: processes starting at
    # once (web and worker under `make run`) all end up with the one value, never a half-written
    # file. Several hosts must share the value through the environment instead (README).
    value = make()
    tmp = INSTANCE / f".{filename}.{os.getpid()}.{secrets.token_hex(4)}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(value)
    try:
        os.link(tmp, path)
    except FileExistsError:
        value = path.read_text()
    finally:
        tmp.unlink()
    return value.strip()


def new_vapid_private_pem() -> str:
    """A P-256 private key in PEM: the VAPID identity of this server for web push (RFC 8292)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode("ascii")


def vapid_public_key(private_pem: str) -> str:
    """The application server key browsers need: the uncompressed point, base64url without '='."""
    import base64

    from cryptography.hazmat.primitives import serialization

    key = serialization.load_pem_private_key(private_pem.encode("ascii"), password=None)
    point = key.public_key().public_bytes(  # type: ignore[union-attr]
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    return base64.urlsafe_b64encode(point).rstrip(b"=").decode("ascii")


def _vapid_subject() -> str:
    # Push services contact this address about our traffic; Apple refuses localhost-style ones.
    subject = os.environ.get("VAPID_SUBJECT", "mailto:admin@example.org").strip()
    if not subject.startswith(("mailto:", "https://")) or "localhost" in subject:
        raise ConfigError(
            "VAPID_SUBJECT must be a mailto: or https: address push services can reach"
        )
    return subject


LOOPBACK_HOSTS = ("127.0.0.1", "::1", "localhost")


def _mail() -> dict[str, object]:
    """SMTP for e-mail alerts to therapists (companion/channels/email.py). No MAIL_SERVER, no
    e-mail: everything else is then only checked for form."""
    server = os.environ.get("MAIL_SERVER", "").strip()
    use_tls = _bool("MAIL_USE_TLS", False)
    use_ssl = _bool("MAIL_USE_SSL", False)
    if use_tls and use_ssl:
        raise ConfigError(
            "MAIL_USE_TLS (STARTTLS, usually port 587) and MAIL_USE_SSL (TLS from the start, "
            "usually port 465) exclude each other: set one"
        )
    port = _int("MAIL_PORT", 465 if use_ssl else 587 if use_tls else 25, minimum=1)
    if port > 65535:
        raise ConfigError(f"MAIL_PORT must be a port number (1-65535), got {port}")
    username = os.environ.get("MAIL_USERNAME", "").strip()
    password = os.environ.get("MAIL_PASSWORD", "")
    sender = os.environ.get("MAIL_DEFAULT_SENDER", "").strip()
    if server:
        if any(c in server for c in "/@ ") or (":" in server and not _ip_address(server)):
            raise ConfigError(
                f"MAIL_SERVER takes a host name only (the port goes in MAIL_PORT): {server!r}"
            )
        if not sender:
            raise ConfigError("MAIL_DEFAULT_SENDER is required when MAIL_SERVER is set")
        _check_sender(sender)
        if bool(username) != bool(password):
            raise ConfigError("MAIL_USERNAME and MAIL_PASSWORD go together: set both or neither")
        if username and not (use_tls or use_ssl) and server not in LOOPBACK_HOSTS:
            raise ConfigError(
                "MAIL_USERNAME needs MAIL_USE_TLS or MAIL_USE_SSL: the password would cross the "
                "network in clear"
            )
    return {
        "MAIL_SERVER": server or None,
        "MAIL_PORT": port,
        "MAIL_USE_TLS": use_tls,
        "MAIL_USE_SSL": use_ssl,
        "MAIL_USERNAME": username or None,
        "MAIL_PASSWORD": password or None,
        "MAIL_DEFAULT_SENDER": sender or None,
        "MAIL_TIMEOUT": _int("MAIL_TIMEOUT", 10, minimum=1),
        # Always real SMTP, with STARTTLS that checks certificates. (Flask-Mailman would otherwise
        # switch to an in-memory outbox whenever TESTING is on, and its STARTTLS checks nothing.)
        "MAIL_BACKEND": "companion.channels.email.EmailBackend",
    }


def _ip_address(value: str) -> bool:
    import ipaddress

    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def _check_sender(sender: str) -> None:
    """An address, or a name and an address ("Clinic alerts <alerts@clinic.example>")."""
    from email.utils import getaddresses

    from email_validator import EmailNotValidError, validate_email

    found = getaddresses([sender])
    address = found[0][1] if len(found) == 1 else ""
    problem = any(c in sender for c in "\r\n") or not address
    if not problem:
        try:
            # Syntax only: an internal relay may use a domain the public DNS does not know.
            validate_email(address, check_deliverability=False, globally_deliverable=False)
        except EmailNotValidError:
            problem = True
    if problem:
        raise ConfigError(
            "MAIL_DEFAULT_SENDER must be an e-mail address, optionally with a name: "
            f"'Clinic alerts <alerts@clinic.example>', got {sender!r}"
        )


def _database_url() -> str:
    url = os.environ.get("DATABASE_URL", "")
    if not url:
        INSTANCE.mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{INSTANCE / 'companion.sqlite3'}"
    # Hosting platforms still hand out postgres:// URLs; SQLAlchemy wants the driver named.
    if url.startswith("postgres://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgres://")
    elif url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    if not url.startswith(("sqlite:", "postgresql+psycopg://")):
        raise ConfigError("DATABASE_URL must be a sqlite: or postgresql:// URL")
    return url


def from_environment() -> dict[str, object]:
    """The settings mapping handed to create_app()."""
    secure_cookies = _bool("SECURE_COOKIES", False)
    vapid_pem = os.environ.get("VAPID_PRIVATE_KEY") or instance_secret(
        "vapid_private.pem", new_vapid_private_pem
    )
    try:
        vapid_public = vapid_public_key(vapid_pem)
    except ValueError:
        raise ConfigError("VAPID_PRIVATE_KEY must be a PEM-encoded P-256 private key") from None
    lease = _int("REMINDER_LEASE_SECONDS", 120, minimum=10)
    push_timeout = _int("PUSH_TIMEOUT_SECONDS", 10, minimum=1)
    # A worker stops starting messages 2 timeouts + 5 s before its lease ends; leave it time to send.
    if lease < 2 * push_timeout + 15:
        raise ConfigError(
            "REMINDER_LEASE_SECONDS must be at least 2 x PUSH_TIMEOUT_SECONDS + 15 "
            f"({2 * push_timeout + 15}), got {lease}"
        )
    return {
        "VAPID_PRIVATE_KEY": vapid_pem,
        "VAPID_PUBLIC_KEY": vapid_public,
        "VAPID_SUBJECT": _vapid_subject(),
        "SECRET_KEY": os.environ.get("SECRET_KEY") or instance_secret("secret_key"),
        "SQLALCHEMY_DATABASE_URI": _database_url(),
        # hide_parameters: a database error's text (logged, and in tracebacks) would otherwise carry
        # the statement's values: notes, scores, names.
        "SQLALCHEMY_ENGINE_OPTIONS": {"pool_pre_ping": True, "hide_parameters": True},
        # SQLite only: how long a write waits for another's lock before it answers 503 (with
        # Retry-After). Long enough to ride out a burst, short of gunicorn's 30 s worker timeout.
        "SQLITE_BUSY_TIMEOUT_MS": _int("SQLITE_BUSY_TIMEOUT_MS", 10_000, minimum=0),
        # The public base URL used in patient links and QR codes (behind a proxy, set it).
        "PUBLIC_URL": os.environ.get("PUBLIC_URL", "").rstrip("/"),
        "PATIENT_LINK_DAYS": _int("PATIENT_LINK_DAYS", 7, minimum=1),
        # How many proxies (the TLS proxy, a load balancer) stand in front of the app and append
        # to X-Forwarded-For / X-Forwarded-Proto. 0 trusts no such header: a client could forge it.
        "PROXY_COUNT": _int("PROXY_COUNT", 0, minimum=0),
        "MAX_CONTENT_LENGTH": _int("MAX_CONTENT_LENGTH", 64 * 1024, minimum=1024),
        "RATELIMIT_STORAGE_URI": os.environ.get("RATELIMIT_STORAGE_URI", "memory://"),
        "RATELIMIT_ENABLED": _bool("RATELIMIT_ENABLED", True),
        # Per address: wide enough for a clinic's staff behind one address (a NAT), since wrong
        # passwords are counted per account as well (auth.account_locked).
        "SIGN_IN_RATE_LIMIT": _rate("SIGN_IN_RATE_LIMIT", "30 per minute;300 per hour"),
        # Wrong passwords per account, across every worker and host sharing the limiter's store.
        "SIGN_IN_ACCOUNT_LIMIT": _rate("SIGN_IN_ACCOUNT_LIMIT", "10 per 15 minutes"),
        # "Forgot your password?": per address, and again per e-mail address asked about (every
        # address counts, known or not, so the answer says nothing about which accounts exist).
        "FORGOT_PASSWORD_RATE_LIMIT": _rate("FORGOT_PASSWORD_RATE_LIMIT", "5 per 15 minutes"),
        # Wrong two-step codes per account (the sign-in's second step), shared like the above.
        "SIGN_IN_CODE_LIMIT": _rate("SIGN_IN_CODE_LIMIT", "5 per 15 minutes"),
        # Per feed, not per address: calendar providers fetch many patients' feeds from few hosts.
        "CALENDAR_RATE_LIMIT": _rate("CALENDAR_RATE_LIMIT", "60 per hour"),
        # Bad tokens per address (companion.guessing): only failures count, and past the limit the
        # address gets 429 before its token is looked at. Calendar: feed tokens we never signed
        # (providers keep polling revoked and expired feeds from shared hosts: those do not count).
        "CALENDAR_TOKEN_FAILURE_LIMIT": _rate("CALENDAR_TOKEN_FAILURE_LIMIT", "20 per hour"),
        # Missing, unknown or revoked API keys.
        "API_KEY_FAILURE_LIMIT": _rate("API_KEY_FAILURE_LIMIT", "30 per 15 minutes"),
        # Unknown, revoked or expired patient links (/p/...), and, counted apart, patient cookies
        # we never signed or whose link is gone.
        "PATIENT_LINK_FAILURE_LIMIT": _rate("PATIENT_LINK_FAILURE_LIMIT", "10 per 15 minutes"),
        "SESSION_COOKIE_SECURE": secure_cookies,
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "PATIENT_COOKIE_SECURE": secure_cookies,
        "REMEMBER_COOKIE_DURATION": timedelta(seconds=0),
        "IDLE_TIMEOUT": timedelta(minutes=_int("IDLE_TIMEOUT_MINUTES", 30, minimum=1)),
        "ABSOLUTE_TIMEOUT": timedelta(hours=_int("ABSOLUTE_TIMEOUT_HOURS", 12, minimum=1)),
        "PERMANENT_SESSION_LIFETIME": timedelta(
            hours=_int("ABSOLUTE_TIMEOUT_HOURS", 12, minimum=1)
        ),
        "WTF_CSRF_TIME_LIMIT": None,  # the token lives as long as the signed-in session
        "EMERGENCY_NUMBER": os.environ.get("EMERGENCY_NUMBER", "112"),
        "PUSH_ENDPOINT_ALLOWLIST": _hosts("PUSH_ENDPOINT_ALLOWLIST", DEFAULT_PUSH_HOSTS),
        "REMINDER_TICK_SECONDS": _int("REMINDER_TICK_SECONDS", 30, minimum=1),
        # Red alerts go out "at once": the worker looks for them more often than for reminders.
        "ALERT_TICK_SECONDS": _int("ALERT_TICK_SECONDS", 10, minimum=1),
        # Rounds to reach a device or mail relay that failed for a moment with a red alert: with
        # the reminders' backoff (1, 2, 4 ... minutes, at most an hour), 8 rounds span about 2 h.
        "ALERT_MAX_ATTEMPTS": _int("ALERT_MAX_ATTEMPTS", 8, minimum=1),
        # A red alert nobody acknowledged within these minutes goes to the clinic's on-call contact
        # (alerts/escalation.py).
        "ALERT_ESCALATE_MINUTES": _int("ALERT_ESCALATE_MINUTES", 15, minimum=1),
        # Reminders one worker claims at a time, and how long it may hold them before another
        # worker may take them over (it must send a whole batch within the lease).
        "REMINDER_BATCH_SIZE": _int("REMINDER_BATCH_SIZE", 200, minimum=1),
        "REMINDER_LEASE_SECONDS": lease,
        "REMINDER_MAX_ATTEMPTS": _int("REMINDER_MAX_ATTEMPTS", 5, minimum=1),
        # Messages one worker has in flight to push services at once, and the wait for each.
        "PUSH_CONCURRENCY": _int("PUSH_CONCURRENCY", 64, minimum=1),
        "PUSH_TIMEOUT_SECONDS": push_timeout,
        "BABEL_DEFAULT_LOCALE": "en",
        "BABEL_DEFAULT_TIMEZONE": "UTC",
        **_mail(),
    }
