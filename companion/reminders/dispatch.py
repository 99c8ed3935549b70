"""The reminder worker: claim -> send -> finish (design.md, "The reminder pipeline").

The database is the queue and the lock. Any number of workers on any number of hosts may run
against one PostgreSQL:

1. **Claim**: one statement leases a batch of due rows (`UPDATE ... WHERE id IN (SELECT ... FOR UPDATE
   SKIP LOCKED LIMIT n) RETURNING id`) and commits, before any network I/O. A worker that dies keeps
   nothing locked: its lease simply runs out and another worker claims the row again.
2. **Send**: every push subscription of the patient, from a small thread pool (a push service takes
   tens of milliseconds to answer; the CPU work, encryption, is small).
3. **Finish**: a conditional update (`WHERE id = :id AND status = 'planned' AND claim_token = :mine`),
   so a worker whose lease ran out, or a row a check-in answered meanwhile, is never overwritten.
   Every attempt on every device is a `delivery` row.

Delivery is at least once: a worker killed between send and finish sends again after the lease; the
push `Topic` and the notification `tag` (both the reminder id) make the phone show it once.

A reminder whose patient has no device with reminders on is not ended: it stays planned, marked
`WAITING_FOR_DEVICE`, until a device appears (then it is sent, if still valid) or it expires (then
it ends as `no_device`). The claim passes such rows over while the patient has no device, so they
cost nothing per tick and are taken the first tick after one is added, by whichever worker.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from flask import Flask
from flask_babel import force_locale
from sqlalchemy import ColumnElement, and_, or_, select, update
from sqlalchemy.orm import selectinload

from companion import channels
from companion.care.clinic_rules import rules_for
from companion.care.triage import RULES, envelope_window
from companion.channels import webpush
from companion.delivery.lease import claim as lease_rows
from companion.delivery.lease import retry_wait
from companion.delivery.outcomes import record
from companion.extensions import db
from companion.models import (
    CheckIn,
    Clinic,
    Delivery,
    PatientLink,
    PushSubscription,
    Reminder,
    ReminderStatus,
    Visit,
)
from companion.reminders.notices import NOTICES
from companion.reminders.planning import AFTER_72H, end_planned, quiet_hours_for
from companion.timeutil import after_quiet_hours, hours_since, utcnow

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class WorkerSettings:
    """The worker's settings (config.py has their defaults and meaning)."""

    batch_size: int
    lease: timedelta
    max_attempts: int
    concurrency: int
    public_url: str

    @classmethod
    def from_app(cls, app: Flask) -> WorkerSettings:
        return cls(
            batch_size=app.config["REMINDER_BATCH_SIZE"],
            lease=timedelta(seconds=app.config["REMINDER_LEASE_SECONDS"]),
            max_attempts=app.config["REMINDER_MAX_ATTEMPTS"],
            concurrency=app.config["PUSH_CONCURRENCY"],
            public_url=app.config.get("PUBLIC_URL", ""),
        )


@dataclass
class Job:
    """One claimed reminder with everything needed to send it, read before any network I/O."""

    reminder_id: uuid.UUID
    claim_token: uuid.UUID
    attempts: int
    expires_at: datetime
    message: webpush.Message | None  # None: nothing to send (see `verdict`)
    # Decided without sending: skipped, cancelled, expired (final); defer, no_device (planned again)
    verdict: str | None
    why: str | None
    subscribers: list[tuple[uuid.UUID, webpush.Subscriber]] = field(default_factory=list)
    defer_to: datetime | None = None  # with verdict "defer": the end of the patient's quiet hours


# Why a reminder is still planned though its moment has come: the patient has no device with
# reminders on. It is the mark the claim looks for (see `_claimable`), so it is a constant.
WAITING_FOR_DEVICE = "waiting for a device with reminders turned on (the calendar has it)"
# Why one ended as no_device: it expired with no device to send it to.
NO_DEVICE_WHILE_VALID = "no device had reminders turned on while it was valid"


def _patient_has_device(added_before: ColumnElement[datetime] | None = None) -> ColumnElement[bool]:
    """Whether the reminder's patient has a push subscription (added before `added_before`), as a
    condition on the reminder row: it correlates with the enclosing statement's `reminder`."""
    devices = (
        select(PushSubscription.id)
        .join(Visit, Visit.patient_id == PushSubscription.patient_id)
        .where(Visit.id == Reminder.visit_id)
    )
    if added_before is not None:
        devices = devices.where(PushSubscription.created_at < added_before)
    return devices.exists()


def _claimable() -> ColumnElement[bool]:
    """Not waiting for a device, or the device it waited for is there now. Checked at every claim
    rather than set by the page that adds a device: a device added while a worker holds the row,
    in any order of commits, is seen at the next tick, and no row waits on a write that a race
    could undo."""
    return or_(
        Reminder.last_error.is_(None),
        Reminder.last_error != WAITING_FOR_DEVICE,
        _patient_has_device(),
    )


def expire_overdue(now: datetime, max_attempts: int) -> int:
    """End what may no longer be sent: reminders whose moment has passed (clinical.md: each one
    expires), and those whose attempts ran out without a worker finishing them (a worker that
    crashed on them again and again must not send them for ever). Rows a worker holds are left
    to it.

    One that waited for a device and never got one ends as `no_device`, as the therapist saw it
    before reminders waited ("Calendar only"): nothing failed, the patient uses the calendar. One
    whose device came in time but which no worker sent (all of them down) is `expired` like any
    other."""
    free = or_(Reminder.lease_until.is_(None), Reminder.lease_until <= now)
    overdue = Reminder.expires_at <= now
    never_had_a_device = and_(
        Reminder.last_error == WAITING_FOR_DEVICE,
        ~_patient_has_device(added_before=Reminder.expires_at),
    )
    return (
        end_planned(
            ReminderStatus.NO_DEVICE, NO_DEVICE_WHILE_VALID, now, free, overdue, never_had_a_device
        )
        + end_planned(ReminderStatus.EXPIRED, None, now, free, overdue)
        + end_planned(
            ReminderStatus.FAILED,
            "gave up: no worker finished sending it",
            now,
            free,
            Reminder.attempts >= max_attempts,
        )
    )


def claim(
    now: datetime, limit: int, lease: timedelta, max_attempts: int = 1_000
) -> tuple[uuid.UUID, list[uuid.UUID]]:
    """Lease up to `limit` due reminders in one statement; returns (claim token, their ids).

    `FOR UPDATE SKIP LOCKED` lets concurrent workers take disjoint batches on PostgreSQL; SQLite
    renders no lock clause and serialises writers itself. The caller commits at once.
    """
    token = uuid.uuid4()
    due = (
        select(Reminder.id)
        .where(
            Reminder.status == ReminderStatus.PLANNED,
            Reminder.due_at <= now,
            Reminder.expires_at > now,
            or_(Reminder.lease_until.is_(None), Reminder.lease_until <= now),
            or_(Reminder.next_attempt_at.is_(None), Reminder.next_attempt_at <= now),
            Reminder.attempts < max_attempts,
            _claimable(),
        )
        .order_by(Reminder.due_at)
        .limit(limit)
    )
    ids = lease_rows(
        Reminder, due, lease_until=now + lease, claim_token=token, attempts=Reminder.attempts + 1
    )
    return token, ids


def still_needed_72h(
    visit: Visit, scores: list[tuple[datetime, int]], rules: dict[str, Any] = RULES
) -> bool:
    """clinical.md: the 72 h check-in only if the last score was still above the envelope, or no
    check-in came. "No check-in came" is read as none since the 48 h one was asked (from 36 h,
    where the envelope's 48 h window starts): an early "fine" on the first evening says nothing
    about day 3."""
    recent = [(at, score) for at, score in scores if hours_since(visit.performed_at, at) >= 36]
    if not recent:
        return True
    at, score = max(recent)
    hours = hours_since(visit.performed_at, at)
    return score > envelope_window(rules, hours)["usual_max"]


def _patient_url(path: str, public_url: str) -> str:
    # The service worker opens this on a tap; a relative path stays on our own origin.
    return f"{public_url}{path}" if public_url else path


def prepare(
    ids: Iterable[uuid.UUID], token: uuid.UUID, now: datetime, settings: WorkerSettings
) -> list[Job]:
    """Read what the claimed reminders need: the visit, the patient's devices, the words to send."""
    reminders = db.session.scalars(
        select(Reminder)
        # Still planned: a check-in or "fully recovered" may have ended it since the claim.
        .where(
            Reminder.id.in_(list(ids)),
            Reminder.claim_token == token,
            Reminder.status == ReminderStatus.PLANNED,
        )
        .options(selectinload(Reminder.visit).selectinload(Visit.patient))
    ).all()
    patient_ids = {r.visit.patient_id for r in reminders}
    visit_ids = {r.visit_id for r in reminders}
    subscriptions: dict[uuid.UUID, list[PushSubscription]] = {}
    for sub in db.session.scalars(
        select(PushSubscription).where(PushSubscription.patient_id.in_(patient_ids))
    ):
        subscriptions.setdefault(sub.patient_id, []).append(sub)
    live_links = set(
        db.session.scalars(
            select(PatientLink.visit_id).where(
                PatientLink.visit_id.in_(visit_ids),
                PatientLink.revoked_at.is_(None),
                PatientLink.expires_at > now,
            )
        )
    )
    needs_scores = {r.visit_id for r in reminders if r.kind == AFTER_72H}
    scores: dict[uuid.UUID, list[tuple[datetime, int]]] = {}
    if needs_scores:
        for visit_id, at, score in db.session.execute(
            select(CheckIn.visit_id, CheckIn.recorded_at, CheckIn.soreness).where(
                CheckIn.visit_id.in_(needs_scores)
            )
        ):
            scores.setdefault(visit_id, []).append((at, score))

    clinics = {
        c.id: c
        for c in db.session.scalars(
            select(Clinic).where(Clinic.id.in_({r.visit.clinic_id for r in reminders}))
        )
    }

    jobs: list[Job] = []
    for reminder in reminders:
        visit = reminder.visit
        job = Job(reminder.id, token, reminder.attempts, reminder.expires_at, None, None, None)
        jobs.append(job)
        # Planning kept it out of quiet hours, but a retry or a worker that was down can bring it
        # back into them: it waits for their end again, or expires if that is too late.
        clinic = clinics[visit.clinic_id]
        quiet = quiet_hours_for(visit.patient, clinic)
        wake = after_quiet_hours(now, visit.patient.timezone, quiet.start, quiet.end)
        if wake > now:
            if wake < reminder.expires_at:
                job.verdict, job.why, job.defer_to = "defer", "waiting for quiet hours to end", wake
            else:
                job.verdict, job.why = (
                    ReminderStatus.EXPIRED,
                    "its moment passed during quiet hours",
                )
            continue
        if visit.id not in live_links:
            # A tap would open "this link is no longer valid": do not send the patient there.
            job.verdict, job.why = (
                ReminderStatus.CANCELLED,
                "the patient link was revoked or has expired",
            )
            continue
        if reminder.kind == AFTER_72H and not still_needed_72h(
            visit, scores.get(visit.id, []), rules_for(clinic)
        ):
            job.verdict, job.why = (
                ReminderStatus.SKIPPED,
                "not needed: the last score was within the expected range",
            )
            continue
        devices = subscriptions.get(visit.patient_id, [])
        if not devices:
            # Not the end of it: it waits for a device until it expires (see `decide`).
            job.verdict, job.why = ReminderStatus.NO_DEVICE, WAITING_FOR_DEVICE
            continue
        notice = NOTICES[reminder.kind]
        with force_locale(visit.patient.language):
            title, body = str(notice.title), str(notice.body)
        ttl = max(60, int((reminder.expires_at - now).total_seconds()))
        job.message = webpush.Message(
            title=title,
            body=body,
            url=_patient_url(notice.path, settings.public_url),
            tag=reminder.id.hex,
            topic=reminder.id.hex,
            ttl=ttl,
        )
        job.subscribers = [
            (sub.id, webpush.Subscriber(sub.endpoint, sub.p256dh, sub.auth)) for sub in devices
        ]
    return jobs


def send_all(
    jobs: list[Job], channel: webpush.WebPushChannel, deadline: float | None = None
) -> dict[uuid.UUID, list[channels.Outcome]]:
    """Send every job's message to each of its devices, through the web push channel (`deadline`
    as in `webpush.send_many`: what is not started by then is retried later). No database here.
    Returns each reminder's outcomes; an outcome's target is (reminder id, subscription id)."""
    messages = {job.reminder_id: job.message for job in jobs if job.message is not None}
    targets = [
        ((job.reminder_id, sub_id), subscriber)
        for job in jobs
        if job.message is not None
        for sub_id, subscriber in job.subscribers
    ]
    attempts: dict[uuid.UUID, list[channels.Outcome]] = {}
    for outcome in channel.deliver(targets, lambda key: messages[key[0]], deadline):
        attempts.setdefault(outcome.target[0], []).append(outcome)
    return attempts


@dataclass(frozen=True)
class Decision:
    status: str  # planned again (retry) or a final status
    why: str | None
    retry_at: datetime | None = None
    counts_as_attempt: bool = True
    tally: str | None = None  # how the round counts it, when not by its status


def _tally(decision: Decision) -> str:
    return decision.tally or decision.status


def decide(
    job: Job, attempts: list[channels.Outcome], now: datetime, max_attempts: int
) -> Decision:
    if job.verdict == "defer":
        return Decision(ReminderStatus.PLANNED, job.why, job.defer_to, counts_as_attempt=False)
    if job.verdict == ReminderStatus.NO_DEVICE:
        # Planned again, marked: the claim passes it over until the patient has a device, and
        # expire_overdue ends it as no_device if none comes while it is valid. Looking for a
        # device is not an attempt to send, so it spends none of max_attempts.
        return Decision(
            ReminderStatus.PLANNED,
            WAITING_FOR_DEVICE,
            counts_as_attempt=False,
            tally=ReminderStatus.NO_DEVICE,
        )
    if job.verdict is not None:
        return Decision(job.verdict, job.why)
    if any(a.kind == channels.ACCEPTED for a in attempts):
        return Decision(ReminderStatus.SENT, None)
    retryable = [a for a in attempts if a.kind == channels.RETRY]
    if not retryable:
        reasons = sorted({a.detail or a.code for a in attempts})
        return Decision(ReminderStatus.FAILED, "; ".join(reasons) or "no device could be reached")
    retry_at = now + retry_wait(job.attempts, (a.retry_after for a in retryable))
    if job.attempts >= max_attempts:
        return Decision(
            ReminderStatus.FAILED, f"gave up after {job.attempts} attempts: {retryable[0].detail}"
        )
    if retry_at >= job.expires_at:
        return Decision(
            ReminderStatus.FAILED, f"its moment passed while retrying: {retryable[0].detail}"
        )
    return Decision(ReminderStatus.PLANNED, retryable[0].detail, retry_at)


def finish(
    jobs: list[Job],
    attempts: dict[uuid.UUID, list[channels.Outcome]],
    now: datetime,
    max_attempts: int,
) -> dict[str, int]:
    """Record every attempt and end (or reschedule) each reminder we still hold. One transaction.

    A few statements whatever the batch size: one INSERT for all delivery rows, and one conditional
    UPDATE ... RETURNING per distinct decision (nearly always a single one, "sent"). A statement
    per reminder, each flushing the delivery rows added before it, was most of a worker's CPU.
    """
    counts: dict[str, int] = {}
    # Reminders that end the same way get the same values (a Decision is a frozen dataclass).
    groups: dict[Decision, list[uuid.UUID]] = {}
    for job in jobs:
        decision = decide(job, attempts.get(job.reminder_id, []), now, max_attempts)
        groups.setdefault(decision, []).append(job.reminder_id)
    record(
        Delivery,
        [outcome for tried in attempts.values() for outcome in tried],
        now,
        lambda o: {
            "reminder_id": o.target[0],
            "channel": "webpush",
            "subscription_id": o.target[1],
        },
        devices=PushSubscription,
        device_of=lambda o: o.target[1],
    )
    # Every job of a batch carries the token of the claim that leased it.
    tokens = {job.claim_token for job in jobs}
    for decision, ids in groups.items():
        status = decision.status
        values: dict[str, object] = {
            "lease_until": None,
            "claim_token": None,
            "last_error": decision.why,
        }
        if status == ReminderStatus.PLANNED:
            values["next_attempt_at"] = decision.retry_at
            if not decision.counts_as_attempt:
                values["attempts"] = Reminder.attempts - 1
        else:
            values["status"] = status
            values["finished_at"] = now
            if status == ReminderStatus.SENT:
                values["sent_at"] = now
        done = db.session.scalars(
            update(Reminder)
            .where(
                Reminder.id.in_(ids),
                Reminder.status == ReminderStatus.PLANNED,
                Reminder.claim_token.in_(tokens),
            )
            .values(**values)
            .returning(Reminder.id)
            .execution_options(synchronize_session=False)
        ).all()
        counts[_tally(decision)] = counts.get(_tally(decision), 0) + len(done)
        if len(done) < len(ids):
            # Our lease ran out and another worker holds them, or a check-in answered them.
            counts["lost"] = counts.get("lost", 0) + len(ids) - len(done)
    db.session.commit()
    return {status: n for status, n in counts.items() if n}


def dispatch_batch(
    now: datetime,
    channel: webpush.WebPushChannel,
    settings: WorkerSettings,
    finished_at: Callable[[], datetime] | None = None,
) -> dict[str, int]:
    """One claim -> send -> finish round. Returns counts by status (empty when nothing due):
    "planned" for a retry or a wait for quiet hours, "no_device" for one left to wait for a device.

    `finished_at` gives the time written when the round ends (the clock, after the sending);
    tests pass none, and the round's `now` is used throughout.
    """
    expire_overdue(now, settings.max_attempts)
    token, ids = claim(now, settings.batch_size, settings.lease, settings.max_attempts)
    db.session.commit()  # the lease is visible to every other worker before we touch the network
    if not ids:
        return {}
    # Stop starting new messages well before the lease ends: one in flight may still take a
    # connect and a read timeout.
    margin = 2 * channel.sender.timeout + 5
    deadline = time.monotonic() + settings.lease.total_seconds() - margin
    jobs = prepare(ids, token, now, settings)
    db.session.commit()  # no transaction stays open while we wait on push services
    attempts = send_all(jobs, channel, deadline)
    return finish(jobs, attempts, finished_at() if finished_at else now, settings.max_attempts)


def drain(
    app: Flask, now: datetime | None = None, sender: webpush.PushSender | None = None
) -> dict[str, int]:
    """Dispatch batches until nothing is due. `now` is fixed for the whole drain when given (tests);
    otherwise each batch reads the clock."""
    settings = WorkerSettings.from_app(app)
    sender = sender or webpush.make_sender(app)
    totals: dict[str, int] = {}
    # One pool for the whole drain: its threads, and with them their keep-alive connections to the
    # push services, outlive a batch (a pool per batch opened `concurrency` connections each time).
    pool = ThreadPoolExecutor(max_workers=settings.concurrency, thread_name_prefix="push")
    channel = webpush.WebPushChannel.from_app(app, sender, pool)
    with app.app_context(), pool:
        try:
            while True:
                counts = dispatch_batch(now or utcnow(), channel, settings, None if now else utcnow)
                if not counts:
                    break
                # Retried rows wait for their backoff and lost ones are leased elsewhere, so
                # neither is claimed again in this drain: the loop ends when nothing is due.
                for status, n in counts.items():
                    totals[status] = totals.get(status, 0) + n
        finally:
            db.session.remove()
    if totals:
        log.info(
            "reminders dispatched: %s", ", ".join(f"{k} {v}" for k, v in sorted(totals.items()))
        )
    return totals
