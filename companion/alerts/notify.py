"""What every step of telling someone about an alert shares: the recipients read before any
network I/O, e-mails with one `alert_notice` row per address, the record of a step that reached
nobody, and when the next round is due for those a round did not reach.

Used by the first step (alerts/dispatch.py: red alerts and amber digests) and by the escalation
to the on-call contact (alerts/escalation.py).
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial

from flask import current_app

from companion import channels
from companion.channels import email
from companion.delivery.lease import retry_wait
from companion.delivery.outcomes import record
from companion.extensions import db
from companion.models import AlertNotice, TherapistDevice

log = logging.getLogger(__name__)


@dataclass
class AlertReport:
    red_alerts: int = 0  # told everyone they could
    red_retries: int = 0  # some not reached yet: another round later
    digests: int = 0
    escalated: int = 0  # red alerts the on-call contact was told of (or could not be)
    notices: dict[str, int] = field(default_factory=dict)

    def count(self, outcome: str) -> None:
        self.notices[outcome] = self.notices.get(outcome, 0) + 1


def language_of(therapist_id: uuid.UUID | None, devices: list[TherapistDevice]) -> str:
    """Therapists have no language setting of their own: the one their newest device uses."""
    own = [d for d in devices if d.therapist_id == therapist_id]
    if not own:
        return current_app.config.get("BABEL_DEFAULT_LOCALE", "en")
    return max(own, key=lambda d: d.created_at).language


@dataclass
class Recipients:
    """Who is told about one clinic's alert, read before any network I/O."""

    clinic_name: str
    # Detached from the session with their fields (and `therapist`) loaded: sending reads them
    # after the commit without a query, and without a transaction left open meanwhile.
    devices: list[TherapistDevice]
    # (id, e-mail) of the active therapists; for an escalation, the on-call contact (id None when
    # the contact is no therapist of the app).
    therapists: list[tuple[uuid.UUID | None, str]]


def send_emails(
    report: AlertReport,
    recipients: Recipients,
    compose: partial[tuple[str, str]],
    clinic_id: uuid.UUID,
    alert_id: uuid.UUID | None,
    kind: str,
    now: datetime,
    audience: str = "therapists",
) -> list[channels.Outcome]:
    """E-mail every address of `recipients`, each in its reader's language, and record an
    `alert_notice` row per address; the outcomes, in order (none while e-mail is off). An
    on-call contact who is no therapist of the app has None for a therapist id."""

    def message(therapist_id: uuid.UUID | None) -> email.EmailMessage:
        subject, body = compose(language_of(therapist_id, recipients.devices))
        return email.EmailMessage(subject, body)

    outcomes = email.deliver(recipients.therapists, message)
    record(
        AlertNotice,
        outcomes,
        now,
        lambda o: {
            "clinic_id": clinic_id,
            "therapist_id": o.target,
            "alert_id": alert_id,
            "kind": kind,
            "channel": "email",
            "audience": audience,
        },
    )
    for outcome in outcomes:
        report.count(f"email {outcome.code}")
    return outcomes


NO_CHANNEL = "no_channel"  # alert_notice.outcome: there was nobody and nothing to try


def record_unreachable(
    clinic_id: uuid.UUID, alert_id: uuid.UUID, audience: str, now: datetime
) -> None:
    """Put on record that a step of an alert reached nobody (no device has alerts on, e-mail is
    off, no on-call contact), so the alert's history says so rather than staying silent."""
    db.session.add(
        AlertNotice(
            clinic_id=clinic_id,
            therapist_id=None,
            alert_id=alert_id,
            kind="red",
            channel="none",
            audience=audience,
            attempted_at=now,
            outcome=NO_CHANNEL,
        )
    )


def count_pushes(report: AlertReport, outcomes: list[channels.Outcome]) -> None:
    for outcome in outcomes:
        report.count(f"push {outcome.code}")


def next_round(
    outcomes: list[channels.Outcome],
    emails: list[channels.Outcome],
    attempts: int,
    now: datetime,
) -> datetime | None:
    """When to try again for those a round did not reach, or None: everyone was reached, what
    failed will not get better by trying (a device gone, a refusal), or the rounds are used up."""
    failed_for_now = [o for o in outcomes if o.kind == channels.RETRY]
    emails_failed = [o for o in emails if o.kind == channels.RETRY]
    if not failed_for_now and not emails_failed:
        return None
    if attempts >= current_app.config["ALERT_MAX_ATTEMPTS"]:
        log.warning(
            "red alert: gave up after %d rounds with %d device(s) and %d address(es) not reached",
            attempts,
            len(failed_for_now),
            len(emails_failed),
        )
        return None
    return now + retry_wait(attempts, (o.retry_after for o in failed_for_now))
