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
  update of `therapist.last_digest_at`, so two workers cannot both send it. A round that reached
  nobody while some channel failed for a moment (issue 12) gives the hour back: `last_digest_at`
  returns to its previous value, and the same digest is tried again after the red alerts'
  backoff, up to ALERT_MAX_ATTEMPTS rounds (see `waiting_amber`).

Every attempt is an `alert_notice` row. Nothing sent carries health data (alerts/devices.py
alert_message; the e-mails below name no patient, score or symptom).
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from flask import Flask, current_app
from flask_babel import force_locale, ngettext
from flask_babel import gettext as _
from sqlalchemy import exists, func, or_, select, update

from companion import channels
from companion.alerts import devices as therapist_devices
from companion.alerts.escalation import escalate
from companion.alerts.notify import (
    AlertReport,
    Recipients,
    count_pushes,
    next_round,
    record_unreachable,
    send_emails,
)
from companion.alerts.raising import open_episodes, raise_missing
from companion.channels import email, webpush
from companion.delivery.lease import lease_statement, retry_wait
from companion.extensions import db
from companion.models import Alert, AlertLevel, AlertNotice, Clinic, Therapist
from companion.timeutil import utcnow

log = logging.getLogger(__name__)

DIGEST_EVERY = timedelta(hours=1)
RED_BATCH = 50
# Long enough for one round of pushes (each bounded by PUSH_TIMEOUT_SECONDS) and the e-mails.
LEASE = timedelta(minutes=2)


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


def _queue_link() -> str:
    base = current_app.config.get("PUBLIC_URL")
    return f"{base}/" if base else ""


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
        )
        .where(Alert.id.in_(ids))
        .order_by(Alert.raised_at, Alert.id)  # the longest waiting first, as claimed
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
        count_pushes(report, outcomes)
        emails = send_emails(
            report,
            recipients,
            partial(_red_email, recipients.clinic_name),
            alert.clinic_id,
            alert.id,
            "red",
            now,
        )
        if not outcomes and not emails and alert.notify_attempts == 0:
            record_unreachable(alert.clinic_id, alert.id, "therapists", now)
            report.count("nobody to tell")
        attempts = alert.notify_attempts + 1
        retry_at = next_round(outcomes, emails, attempts, now)
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


@dataclass(frozen=True)
class DueDigest:
    """A therapist a digest is due to, with what the claim compares against (read, then claimed
    with a conditional update, as two workers may read the same state)."""

    therapist_id: uuid.UUID
    clinic_id: uuid.UUID
    count: int  # patients waiting
    last_digest_at: datetime | None
    failed_rounds: int  # rounds of this digest that reached nobody (0: a new digest)
    last_round_at: datetime | None  # when the latest of those was made


def _failed_rounds(therapist_ids: list[uuid.UUID]) -> dict[uuid.UUID, tuple[int, datetime]]:
    """Per therapist: (rounds, latest) of the digest rounds that reached nobody since their last
    digest. No column holds this: a round that reached nobody gave `last_digest_at` back, so its
    `alert_notice` rows are the only ones later than it (a round that reached somebody, or that
    had nobody to try, keeps the hour: its rows are stamped with `last_digest_at` itself). One
    query for all of them."""
    if not therapist_ids:
        return {}
    last = Therapist.last_digest_at
    rows = db.session.execute(
        select(
            AlertNotice.therapist_id,
            func.count(func.distinct(AlertNotice.attempted_at)),
            func.max(AlertNotice.attempted_at),
        )
        .join(Therapist, Therapist.id == AlertNotice.therapist_id)
        .where(
            AlertNotice.therapist_id.in_(therapist_ids),
            AlertNotice.kind == "digest",
            or_(last.is_(None), AlertNotice.attempted_at > last),
        )
        .group_by(AlertNotice.therapist_id)
    ).all()
    return {therapist_id: (rounds, latest) for therapist_id, rounds, latest in rows}


def waiting_amber(now: datetime) -> list[DueDigest]:
    """Every therapist a digest is due to: their last digest is an hour old or more, and an
    amber item nobody has acknowledged arrived since. The count is every such patient still
    waiting in the queue (open episodes only, as the queue shows amber items), not only the new
    ones. One query per clinic, and one for the failed rounds.

    A digest whose last round reached nobody is due again once the backoff after that round has
    passed (delivery/lease.py `retry_wait`, as red alerts): its hour was given back, so the items
    it was about still count as new. The push services' Retry-After is not kept between rounds
    (no column holds it): the backoff alone sets the wait, and a service that asked for longer
    answers 429 again and costs a round."""
    last = Therapist.last_digest_at
    waiting: list[Any] = []
    for clinic in db.session.scalars(select(Clinic)).all():
        rows = db.session.execute(
            select(
                Therapist.id,
                Therapist.clinic_id,
                func.count(func.distinct(Alert.visit_id)),
                last,
            )
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
        waiting.extend(rows)
    failed = _failed_rounds([row[0] for row in waiting])
    found: list[DueDigest] = []
    for therapist_id, clinic_id, count, last_digest_at in waiting:
        rounds, latest = failed.get(therapist_id, (0, None))
        if latest is not None and now < latest + retry_wait(rounds, ()):
            continue  # the last round reached nobody: the next one waits for the backoff
        found.append(DueDigest(therapist_id, clinic_id, count, last_digest_at, rounds, latest))
    return found


def claim_digest(due: DueDigest, now: datetime) -> bool:
    """Take this therapist's digest hour; False when another worker took it first, or made a
    round since `due` was read (its hour given back: `last_digest_at` is as it was, but its
    notices are newer than anything `due` saw)."""
    last = Therapist.last_digest_at
    seen_until = due.last_round_at or due.last_digest_at
    newer_round = exists().where(
        AlertNotice.therapist_id == due.therapist_id,
        AlertNotice.kind == "digest",
        *([AlertNotice.attempted_at > seen_until] if seen_until is not None else []),
    )
    result = db.session.execute(
        update(Therapist)
        .where(
            Therapist.id == due.therapist_id,
            last.is_(None) if due.last_digest_at is None else last == due.last_digest_at,
            or_(last.is_(None), last <= now - DIGEST_EVERY),
            ~newer_round,
        )
        .values(last_digest_at=now)
        .execution_options(synchronize_session=False)
    )
    return (result.rowcount or 0) == 1


def _reached_nobody_for_now(outcomes: list[channels.Outcome]) -> bool:
    """Nobody took the digest, and at least one channel failed in a way worth another try (5xx,
    429, timeout, relay down). A device that is gone was deleted and a refusal will not change,
    but they do not stop a retry when another channel may work later: better the digest a few
    minutes late than never. No channel at all (no device, e-mail off) is nothing to retry."""
    return not any(o.kind == channels.ACCEPTED for o in outcomes) and any(
        o.kind == channels.RETRY for o in outcomes
    )


def send_digests(now: datetime, sender: webpush.PushSender, report: AlertReport) -> None:
    for due in waiting_amber(now):
        therapist_id, clinic_id, count = due.therapist_id, due.clinic_id, due.count
        if not claim_digest(due, now):
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
        count_pushes(report, outcomes)
        emails = send_emails(
            report,
            recipients,
            partial(_digest_email, recipients.clinic_name, count=count),
            clinic_id,
            None,
            "digest",
            now,
        )
        rounds = due.failed_rounds + 1
        if _reached_nobody_for_now(outcomes + emails):
            if rounds < current_app.config["ALERT_MAX_ATTEMPTS"]:
                # Give the hour back (only if it is still ours): the digest goes again after the
                # backoff, and this round's notices, later than the hour, count the rounds.
                db.session.execute(
                    update(Therapist)
                    .where(Therapist.id == therapist_id, Therapist.last_digest_at == now)
                    .values(last_digest_at=due.last_digest_at)
                    .execution_options(synchronize_session=False)
                )
                db.session.commit()
                report.count("digest to retry")
                continue
            log.warning("amber digest: gave up after %d rounds that reached nobody", rounds)
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
    report.escalated = escalate(now, sender, report)
    send_digests(now, sender, report)
    if (
        report.red_alerts
        or report.red_retries
        or report.digests
        or report.escalated
        or report.notices
    ):
        # Any attempt at all is worth a line (a digest to retry counts only in `notices`).
        log.info(
            "alerts: %s red, %s red to retry, %s escalated, %s digests (%s)",
            report.red_alerts,
            report.red_retries,
            report.escalated,
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
