"""The e-mail channel: plain-text (optionally also HTML) messages over SMTP, through Flask-Mailman.

E-mail is on when MAIL_SERVER is set (config.py checks the rest at start-up). `send_email` never
raises for what the SMTP server or the network does: it returns an `EmailResult` the caller turns
into delivery records. Each recipient gets a message of their own, so nobody sees another's address.
Like a push payload, an e-mail crosses servers we do not run: callers put no health data in it.
"""

from __future__ import annotations

import logging
import smtplib
import ssl
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from flask import Flask, current_app
from flask_mailman import BadHeaderError, EmailMultiAlternatives
from flask_mailman.backends import smtp

from companion import channels
from companion.extensions import mail

log = logging.getLogger(__name__)

K = TypeVar("K", bound=Hashable)

SENT = "sent"  # the SMTP server accepted the message for every recipient
ERROR = "error"  # not for every recipient: see `failed` and `detail`
DISABLED = "disabled"  # MAIL_SERVER is not set: nothing was tried


@dataclass(frozen=True)
class EmailResult:
    outcome: str
    detail: str | None = (
        None  # why, in a few words: never a server's own text (it may echo addresses)
    )
    sent: tuple[str, ...] = ()  # recipients whose message the server accepted
    failed: tuple[str, ...] = ()  # recipients whose message it did not


def email_enabled(app: Flask) -> bool:
    return bool(app.config.get("MAIL_SERVER"))


class _VerifiedSMTP(smtplib.SMTP):
    """STARTTLS that checks the server's certificate and name. smtplib's default context checks
    neither, so a machine in the middle could read the password and every message."""

    def starttls(self, *args: Any, context: ssl.SSLContext | None = None, **kwargs: Any) -> Any:
        return super().starttls(*args, context=context or ssl.create_default_context(), **kwargs)


class EmailBackend(smtp.EmailBackend):  # type: ignore[misc]
    """Flask-Mailman's SMTP backend with verified STARTTLS (MAIL_BACKEND names it: config.py).
    MAIL_USE_SSL already uses a verifying context."""

    @property
    def connection_class(self) -> type[smtplib.SMTP]:
        return smtplib.SMTP_SSL if self.use_ssl else _VerifiedSMTP


def _describe(exc: BaseException) -> str:
    """A short reason without the server's words (which may quote an address back)."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = sorted({str(code) for code, _text in exc.recipients.values()})
        return f"recipient refused ({', '.join(codes)})"
    if isinstance(exc, smtplib.SMTPSenderRefused):
        return f"sender refused ({exc.smtp_code})"
    if isinstance(exc, smtplib.SMTPDataError):
        return f"message refused ({exc.smtp_code})"
    if isinstance(exc, smtplib.SMTPAuthenticationError):
        return f"authentication failed ({exc.smtp_code})"
    if isinstance(exc, smtplib.SMTPConnectError):
        return f"server refused the connection ({exc.smtp_code})"
    if isinstance(exc, smtplib.SMTPResponseException):
        return f"server answered {exc.smtp_code}"
    if isinstance(exc, smtplib.SMTPNotSupportedError):
        return "server does not offer STARTTLS or login"
    if isinstance(exc, smtplib.SMTPServerDisconnected):
        # smtplib reports a read that timed out as a lost connection; the timeout is its context.
        if isinstance(exc.__context__, TimeoutError):
            return "server timed out"
        return "server closed the connection"
    if isinstance(exc, ssl.SSLCertVerificationError):
        return "server certificate not trusted"
    if isinstance(exc, ssl.SSLError):
        return "TLS failed"
    if isinstance(exc, TimeoutError):
        return "server timed out"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, OSError):
        return "server unreachable"
    return "not sent"


def _close_quietly(connection: EmailBackend) -> None:
    try:
        connection.close()
    except (smtplib.SMTPException, OSError):
        # The messages are sent or not by now; a failed goodbye changes nothing.
        connection.connection = None


def send_email(to: list[str], subject: str, body: str, *, html: str | None = None) -> EmailResult:
    """Send `body` (plain text, required) and optionally `html` as an alternative, one message per
    recipient, from MAIL_DEFAULT_SENDER, over one connection. Needs an app context.

    Raises ValueError only for a caller's mistake (an empty body, a subject over several lines);
    everything the server or the network does comes back in the result.
    """
    if not body.strip():
        raise ValueError("an e-mail needs a plain-text body")
    if "\n" in subject or "\r" in subject:
        raise ValueError("the subject must be one line")
    recipients = list(dict.fromkeys(to))  # each address once, in the order given
    if not email_enabled(current_app):
        return EmailResult(DISABLED, "e-mail is not configured (MAIL_SERVER)")
    if not recipients:
        return EmailResult(SENT)
    connection = mail.get_connection()
    try:
        connection.open()
    except (smtplib.SMTPException, OSError) as exc:
        _close_quietly(connection)  # a refused STARTTLS or login leaves a socket open
        detail = _describe(exc)
        log.warning("e-mail not sent to %d recipient(s): %s", len(recipients), detail)
        return EmailResult(ERROR, detail, (), tuple(recipients))
    sent: list[str] = []
    failed: list[str] = []
    reasons: list[str] = []
    try:
        for address in recipients:
            message = EmailMultiAlternatives(subject, body, to=[address], connection=connection)
            if html is not None:
                message.attach_alternative(html, "text/html")
            try:
                connection.send_messages([message])  # opens a connection when there is none
            except (BadHeaderError, ValueError):
                failed.append(address)
                reasons.append("not a valid address")
            except (smtplib.SMTPException, OSError) as exc:
                failed.append(address)
                reasons.append(_describe(exc))
                # After a refusal smtplib has reset the session and the connection goes on; after
                # anything else it is unusable, and the next message opens a new one.
                if not isinstance(
                    exc, smtplib.SMTPRecipientsRefused | smtplib.SMTPResponseException
                ):
                    _close_quietly(connection)
            else:
                sent.append(address)
    finally:
        _close_quietly(connection)
    if not failed:
        return EmailResult(SENT, None, tuple(sent))
    detail = "; ".join(sorted(set(reasons)))
    # Counts and reasons only: the addresses are the caller's to record where it keeps them.
    log.warning(
        "e-mail not sent to %d of %d recipient(s): %s", len(failed), len(recipients), detail
    )
    return EmailResult(ERROR, detail, tuple(sent), tuple(failed))


@dataclass(frozen=True)
class EmailMessage:
    subject: str
    body: str  # plain text
    html: str | None = None


def deliver(
    targets: Sequence[tuple[K, str]], message: EmailMessage | Callable[[K], EmailMessage]
) -> list[channels.Outcome]:
    """E-mail each (key, address): one outcome each, in order; none at all while e-mail is off
    (MAIL_SERVER unset). A failure of any kind is worth another try later (RETRY): a relay that
    is down now may take it in a minute, and a refusal is told apart only by its detail."""
    if not email_enabled(current_app):
        return []
    compose = message if callable(message) else (lambda _key: message)
    outcomes: list[channels.Outcome] = []
    for key, address in targets:
        composed = compose(key)
        result = send_email([address], composed.subject, composed.body, html=composed.html)
        kind = channels.ACCEPTED if result.outcome == SENT else channels.RETRY
        outcomes.append(channels.Outcome(key, kind, result.outcome, detail=result.detail))
    return outcomes
