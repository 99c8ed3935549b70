"""Telling therapists: red alerts at once, amber items in at most one digest an hour (issue 5).

Runs in the worker process (`flask reminders run` ticks it every ALERT_TICK_SECONDS; `flask
alerts dispatch` runs it once), never in a web request: the patient's check-in stores the alert in
its own transaction and returns; sending is the worker's job, like reminders.

- **Red**: each alert is claimed with a lease (SKIP LOCKED, so several workers never send the same
  one), the claim is committed before any network I/O, then every enabled device of every active
  therapist of the clinic gets one push, and every active therapist one e-mail when SMTP is
  configured. `notified_at` is set with a conditional update on the lease: a worker that died
  mid-way lets the lease run out and the alert goes out again (at-least-once, as reminders; the
  push Topic and tag are the alert id, so a phone shows it once). An alert somebody acknowledged
  before the worker reached it is marked notified without sending. When a push service or the
  mail relay fails for a moment (5xx, 429, timeout, connection refused), the alert is not marked:
  its lease becomes the time of the next round, with the reminders' backoff (or the service's
  Retry-After when longer), and that round tells only the devices and addresses not reached yet,
  until ALERT_MAX_ATTEMPTS rounds were made.
- **Amber digest**: per therapist, when amber items are waiting that arrived after their last
  digest and that digest is at least an hour old. The hour is claimed first with a conditional
  update of `therapist.last_digest_at`, so two workers cannot both send it.

Every attempt is an `alert_notice` row. Nothing sent carries health data (alerts/devices.py
alert_message; the e-mails below name no patient, score or symptom).
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from flask import Flask, current_app
from flask_babel import force_locale, ngettext
from flask_babel import gettext as _
from sqlalchemy import func, or_, select, update

from companion import channels
from companion.alerts import devices as therapist_devices
from companion.alerts.raising import open_episodes, raise_missing
from companion.channels import email, webpush
from companion.delivery.lease import lease_statement, retry_wait
from companion.delivery.outcomes import record
from companion.extensions import db
from companion.models import Alert, AlertLevel, AlertNotice, Clinic, Therapist, TherapistDevice
from companion.timeutil import utcnow

log = logging.getLogger(__name__)

DIGEST_EVERY = timedelta(hours=1)
RED_BATCH = 50
# Long enough for one round of pushes (each bounded by PUSH_TIMEOUT_SECONDS) and the e-mails.
LEASE = timedelta(minutes=2)


@dataclass
class AlertReport:
    red_alerts: int = 0  # told everyone they could
    red_retries: int = 0  # some not reached yet: another round later
    digests: int = 0
    notices: dict[str, int] = field(default_factory=dict)

    def count(self, outcome: str) -> None:
        self.notices[outcome] = self.notices.get(outcome, 0) + 1


def claim_statement(now: datetime, limit: int = RED_BATCH) -> Any:
    """UPDATE ... RETURNING id: lease a batch of red alerts nobody has been told about yet."""
    candidates = (
        select(Alert.id)
        .where(
            Alert.level == AlertLevel.RED,
            Alert.notified_at.is_(None),
            or_(Alert.notify_lease_until.is_(None), Alert.notify_lease_until <= now),
        )
        .order_by(Alert.raised_at)
        .limit(limit)
    )
    return lease_statement(Alert, candidates, notify_lease_until=now + LEASE)


def claim_red(now: datetime, limit: int = RED_BATCH) -> list[uuid.UUID]:
    """Lease a batch of red alerts; the caller commits before sending."""
    return list(db.session.execute(claim_statement(now, limit)).scalars())


def _language_of(therapist_id: uuid.UUID, devices: list[TherapistDevice]) -> str:
    """Therapists have no language setting of their own: the one their newest device uses."""
    own = [d for d in devices if d.therapist_id == therapist_id]
    if not own:
        return current_app.config.get("BABEL_DEFAULT_LOCALE", "en")
    return max(own, key=lambda d: d.created_at).language


def _queue_link() -> str:
    base = current_app.config.get("PUBLIC_URL")
    return f"{base}/" if base else ""


@dataclass
class Recipients:
    """Who is told about one clinic's alert, read before any network I/O."""

    clinic_name: str
    # Detached from the session with their fields (and `therapist`) loaded: sending reads them
    # after the commit without a query, and without a transaction left open meanwhile.
    devices: list[TherapistDevice]
    therapists: list[tuple[uuid.UUID, str]]  # (id, e-mail) of the active therapists


def _recipients(clinic_id: uuid.UUID, therapist_id: uuid.UUID | None = None) -> Recipients:
    """The clinic's recipients, or one therapist's (a digest). Commits: call it before sending."""
    devices = therapist_devices.devices_for_clinic(clinic_id)
    query = select(Therapist.id, Therapist.email).where(
        Therapist.clinic_id == clinic_id, Therapist.active.is_(True)
    )
    if therapist_id is not None:
        devices = [d for d in devices if d.therapist_id == therapist_id]
        query = query.where(Therapist.id == therapist_id)
    found = Recipients(
        clinic_name=db.session.scalar(select(Clinic.name).where(Clinic.id == clinic_id)) or "",
        devices=devices,
        therapists=[(row.id, row.email) for row in db.session.execute(query)],
    )
    for loaded in {*devices, *(d.therapist for d in devices)}:
        db.session.expunge(loaded)
    db.session.commit()  # no transaction stays open while we wait on push services or SMTP
    return found


def _red_email(clinic_name: str, language: str) -> tuple[str, str]:
    with force_locale(language):
        subject = _("Aftercare: a check-in needs attention now")
        lines = [
            _(
                "A patient of %(clinic)s reported a warning sign in their aftercare check-in.",
                clinic=clinic_name,
            ),
            _("Sign in to see who and what, and acknowledge it in the review queue."),
        ]
    link = _queue_link()
    return subject, "\n\n".join(lines + ([link] if link else [])) + "\n"


def _digest_email(clinic_name: str, language: str, count: int) -> tuple[str, str]:
    with force_locale(language):
        subject = _("Aftercare: patients to review")
        lines = [
            ngettext(
                "%(num)d patient of %(clinic)s needs a look when you have a moment.",
                "%(num)d patients of %(clinic)s need a look when you have a moment.",
                count,
                clinic=clinic_name,
            ),
            _("Sign in to the review queue to see them."),
        ]
    link = _queue_link()
    return subject, "\n\n".join(lines + ([link] if link else [])) + "\n"


def _send_emails(
    report: AlertReport,
    recipients: Recipients,
    compose: partial[tuple[str, str]],
    clinic_id: uuid.UUID,
    alert_id: uuid.UUID | None,
    kind: str,
    now: datetime,
) -> list[channels.Outcome]:
    """E-mail every therapist of `recipients`, each in their language, and record an
    `alert_notice` row per address; the outcomes, in order (none while e-mail is off)."""

    def message(therapist_id: uuid.UUID) -> email.EmailMessage:
        subject, body = compose(_language_of(therapist_id, recipients.devices))
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
        },
    )
    for outcome in outcomes:
        report.count(f"email {outcome.code}")
    return outcomes


def _count_pushes(report: AlertReport, outcomes: list[channels.Outcome]) -> None:
    for outcome in outcomes:
        report.count(f"push {outcome.code}")


def _reached(alert_ids: list[uuid.UUID]) -> dict[uuid.UUID, tuple[set[uuid.UUID], set[uuid.UUID]]]:
    """For each alert, (devices whose push service took it, therapists whose e-mail went out)."""
    found: dict[uuid.UUID, tuple[set[uuid.UUID], set[uuid.UUID]]] = {
        alert_id: (set(), set()) for alert_id in alert_ids
    }
    rows = db.session.execute(
        select(
            AlertNotice.alert_id,
            AlertNotice.channel,
            AlertNotice.device_id,
            AlertNotice.therapist_id,
        ).where(
            AlertNotice.alert_id.in_(alert_ids),
            AlertNotice.outcome.in_([webpush.ACCEPTED, email.SENT]),
        )
    )
    for alert_id, channel, device_id, therapist_id in rows:
        devices, therapists = found[alert_id]
        if channel == "push":
            devices.add(device_id)
        else:
            therapists.add(therapist_id)
    return found


def _not_reached(
    recipients: Recipients, devices: set[uuid.UUID], therapists: set[uuid.UUID]
) -> Recipients:
    return Recipients(
        clinic_name=recipients.clinic_name,
        devices=[d for d in recipients.devices if d.id not in devices],
        therapists=[t for t in recipients.therapists if t[0] not in therapists],
    )


def _next_round(
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


def send_red(now: datetime, sender: webpush.PushSender, report: AlertReport) -> None:
    ids = claim_red(now)
    db.session.commit()  # the lease is visible to every other worker before we touch the network
    if not ids:
        return
    claimed = db.session.execute(
        select(
            Alert.id,
            Alert.clinic_id,
            Alert.visit_id,
            Alert.notify_lease_until,
            Alert.notify_attempts,
            (Alert.acknowledged_at.is_not(None) | Alert.resolved_at.is_not(None)).label("seen"),
        ).where(Alert.id.in_(ids))
    ).all()
    reached = _reached([alert.id for alert in claimed])  # by earlier rounds
    by_clinic: dict[uuid.UUID, Recipients] = {}
    done: list[uuid.UUID] = []
    for alert in claimed:
        if alert.seen:
            done.append(alert.id)  # somebody is on it already: no need to wake anyone
            continue
        if alert.clinic_id not in by_clinic:
            by_clinic[alert.clinic_id] = _recipients(alert.clinic_id)
        recipients = _not_reached(by_clinic[alert.clinic_id], *reached[alert.id])
        message = partial(
            therapist_devices.alert_message,
            therapist_devices.RED,
            tag=alert.id.hex,
            url=f"/visits/{alert.visit_id}",
        )
        outcomes = therapist_devices.push_to_devices(
            recipients.devices, message, sender, now, kind="red", alert_id=alert.id
        )
        _count_pushes(report, outcomes)
        emails = _send_emails(
            report,
            recipients,
            partial(_red_email, recipients.clinic_name),
            alert.clinic_id,
            alert.id,
            "red",
            now,
        )
        attempts = alert.notify_attempts + 1
        retry_at = _next_round(outcomes, emails, attempts, now)
        ended = {"notified_at": now} if retry_at is None else {"notify_lease_until": retry_at}
        # Only the worker still holding the lease marks it: a late one must not.
        db.session.execute(
            update(Alert)
            .where(Alert.id == alert.id, Alert.notify_lease_until == alert.notify_lease_until)
            .values(notify_attempts=attempts, **ended)
            .execution_options(synchronize_session=False)
        )
        db.session.commit()
        if retry_at is None:
            report.red_alerts += 1
        else:
            report.red_retries += 1
    if done:
        db.session.execute(
            update(Alert)
            .where(Alert.id.in_(done))
            .values(notified_at=now)
            .execution_options(synchronize_session=False)
        )
        db.session.commit()


def waiting_amber(now: datetime) -> list[tuple[uuid.UUID, uuid.UUID, int]]:
    """(therapist, clinic, patients waiting) for every therapist a digest is due to: their last
    digest is an hour old or more, and an amber item nobody has acknowledged arrived since. The
    count is every such patient still waiting in the queue (open episodes only, as the queue
    shows amber items), not only the new ones. One query per clinic."""
    last = Therapist.last_digest_at
    found: list[tuple[uuid.UUID, uuid.UUID, int]] = []
    for clinic in db.session.scalars(select(Clinic)).all():
        rows = db.session.execute(
            select(Therapist.id, Therapist.clinic_id, func.count(func.distinct(Alert.visit_id)))
            .join(Alert, Alert.clinic_id == Therapist.clinic_id)
            .where(
                Therapist.clinic_id == clinic.id,
                Therapist.active.is_(True),
                or_(last.is_(None), last <= now - DIGEST_EVERY),
                Alert.level == AlertLevel.AMBER,
                Alert.resolved_at.is_(None),
                Alert.acknowledged_at.is_(None),
                Alert.visit_id.in_(open_episodes(clinic, now)),
            )
            .group_by(Therapist.id, Therapist.clinic_id, last)
            .having(or_(last.is_(None), func.max(Alert.raised_at) > last))
        ).all()
        found.extend((therapist_id, clinic_id, count) for therapist_id, clinic_id, count in rows)
    return found


def claim_digest(therapist_id: uuid.UUID, now: datetime) -> bool:
    """Take this therapist's digest hour; False when another worker took it first."""
    result = db.session.execute(
        update(Therapist)
        .where(
            Therapist.id == therapist_id,
            or_(
                Therapist.last_digest_at.is_(None),
                Therapist.last_digest_at <= now - DIGEST_EVERY,
            ),
        )
        .values(last_digest_at=now)
        .execution_options(synchronize_session=False)
    )
    return (result.rowcount or 0) == 1


def send_digests(now: datetime, sender: webpush.PushSender, report: AlertReport) -> None:
    for therapist_id, clinic_id, count in waiting_amber(now):
        if not claim_digest(therapist_id, now):
            db.session.rollback()
            continue
        db.session.commit()  # the hour is ours before anything is sent
        recipients = _recipients(clinic_id, therapist_id)
        message = partial(
            therapist_devices.alert_message,
            therapist_devices.AMBER,
            # One tag per therapist and hour: the next digest replaces this one on the phone.
            tag=uuid.uuid5(uuid.NAMESPACE_URL, f"digest:{therapist_id}").hex,
            url="/",
            count=count,
        )
        outcomes = therapist_devices.push_to_devices(
            recipients.devices, message, sender, now, kind="digest"
        )
        _count_pushes(report, outcomes)
        _send_emails(
            report,
            recipients,
            partial(_digest_email, recipients.clinic_name, count=count),
            clinic_id,
            None,
            "digest",
            now,
        )
        db.session.commit()
        report.digests += 1


def raise_missing_everywhere(now: datetime) -> None:
    """Missing check-ins are noticed here too, so they reach the digest while nobody has the
    queue open."""
    for clinic in db.session.scalars(select(Clinic)).all():
        raise_missing(clinic, now)
    db.session.commit()


def dispatch_alerts(now: datetime, sender: webpush.PushSender) -> AlertReport:
    report = AlertReport()
    raise_missing_everywhere(now)
    send_red(now, sender, report)
    send_digests(now, sender, report)
    if report.red_alerts or report.red_retries or report.digests:
        log.info(
            "alerts: %s red, %s red to retry, %s digests (%s)",
            report.red_alerts,
            report.red_retries,
            report.digests,
            ", ".join(f"{k} {v}" for k, v in sorted(report.notices.items())),
        )
    return report


def dispatch_once(
    app: Flask, now: datetime | None = None, sender: webpush.PushSender | None = None
) -> AlertReport:
    """One round for the worker's scheduler or `flask alerts dispatch`."""
    with app.app_context():
        try:
            return dispatch_alerts(now or utcnow(), sender or webpush.make_sender(app))
        finally:
            db.session.remove()
