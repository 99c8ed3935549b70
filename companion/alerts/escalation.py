"""Escalation: a red alert nobody acknowledged goes to the clinic's on-call contact (issue 12).

The first step is alerts/dispatch.py: every enabled device and every therapist's e-mail, at once.
When nobody has acknowledged the alert ALERT_ESCALATE_MINUTES after it was raised, this module tells
the on-call contact (clinic.oncall_*): by e-mail to the contact's address (or, when the contact is
a therapist with no address of its own, the therapist's), and by push to that therapist's devices.
Anchors: MedBridge Pathways and the RMH home-monitoring tiers escalate unanswered alerts to a named
person.

It is sent once, with the same lease-and-rounds scheme as red alerts: a claim with SKIP LOCKED
committed before any network I/O, a round that failed for a moment (5xx, 429, timeout, relay down)
becomes the time of the next round for those not reached yet, up to ALERT_MAX_ATTEMPTS rounds, and
`escalated_at` is set by the worker still holding the lease. Acknowledging (or resolving) stops it:
the claim only takes alerts nobody has acknowledged, so a round after an acknowledgement never
starts. A clinic without an on-call contact, or one that cannot be reached (no e-mail set up and
no device), gets a step on record that says so (the readiness warning tells the clinic to fix it).

Like every alert, the message carries no name and no health data: it links to the visit page,
which opens after sign-in.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from flask import current_app
from flask_babel import force_locale
from flask_babel import gettext as _
from sqlalchemy import or_, select, update

from companion import audit
from companion.alerts import devices as therapist_devices
from companion.alerts.notify import (
    AlertReport,
    Recipients,
    count_pushes,
    next_round,
    record_unreachable,
    send_emails,
)
from companion.channels import email, webpush
from companion.delivery.lease import lease_statement
from companion.extensions import db
from companion.models import Alert, AlertLevel, AlertNotice, Clinic, Therapist, TherapistDevice

ON_CALL = "on_call"
BATCH = 50
LEASE = timedelta(minutes=2)


@dataclass
class OnCall:
    """The clinic's on-call contact as the escalation needs it, read before any network I/O."""

    clinic_name: str
    name: str | None
    email: str | None  # the contact's own address, else its therapist's
    therapist_id: uuid.UUID | None  # only when that therapist is active in the clinic
    devices: list[TherapistDevice]

    @property
    def reachable(self) -> bool:
        return bool(self.devices) or (bool(self.email) and email.email_enabled(current_app))


def escalate_after() -> timedelta:
    return timedelta(minutes=current_app.config["ALERT_ESCALATE_MINUTES"])


def claim_statement(now: datetime, wait: timedelta, limit: int = BATCH) -> Any:
    """UPDATE ... RETURNING id: lease the red alerts nobody acknowledged within `wait`."""
    candidates = (
        select(Alert.id)
        .where(
            Alert.level == AlertLevel.RED,
            Alert.escalated_at.is_(None),
            Alert.acknowledged_at.is_(None),
            Alert.resolved_at.is_(None),
            Alert.raised_at <= now - wait,
            or_(Alert.escalate_lease_until.is_(None), Alert.escalate_lease_until <= now),
        )
        .order_by(Alert.raised_at)
        .limit(limit)
    )
    return lease_statement(Alert, candidates, escalate_lease_until=now + LEASE)


def on_call_therapist(clinic: Clinic) -> Therapist | None:
    """The therapist the on-call contact is linked to, while an active therapist of the clinic."""
    if clinic.oncall_therapist_id is None:
        return None
    return db.session.scalar(
        select(Therapist).where(
            Therapist.id == clinic.oncall_therapist_id,
            Therapist.clinic_id == clinic.id,
            Therapist.active.is_(True),
        )
    )


def contact_details(clinic: Clinic, therapist: Therapist | None) -> tuple[str | None, str | None]:
    """(name, e-mail) of the on-call contact: the clinic's own, else the linked therapist's."""
    return (
        clinic.oncall_name or (therapist.display_name if therapist else None),
        clinic.oncall_email or (therapist.email if therapist else None),
    )


def on_call_of(clinic_id: uuid.UUID) -> OnCall:
    """The clinic's on-call contact, detached from the session (sending reads it after commit)."""
    clinic = db.session.get(Clinic, clinic_id)
    assert clinic is not None
    therapist = on_call_therapist(clinic)
    name, address = contact_details(clinic, therapist)
    devices = []
    if therapist is not None:
        devices = [
            d
            for d in therapist_devices.devices_for_clinic(clinic_id)
            if d.therapist_id == therapist.id
        ]
    found = OnCall(
        clinic_name=clinic.name,
        name=name,
        email=address,
        therapist_id=therapist.id if therapist else None,
        devices=devices,
    )
    for loaded in {*devices, *(d.therapist for d in devices)}:
        db.session.expunge(loaded)
    db.session.commit()  # no transaction stays open while we wait on push services or SMTP
    return found


def _escalation_email(
    clinic_name: str, visit_id: uuid.UUID, minutes: int, language: str
) -> tuple[str, str]:
    with force_locale(language):
        subject = _("Aftercare: a warning sign is still unanswered")
        lines = [
            _(
                "A patient of %(clinic)s reported a warning sign %(minutes)s minutes ago, and "
                "nobody has acknowledged it yet. You are the clinic's on-call contact.",
                clinic=clinic_name,
                minutes=minutes,
            ),
            _("Sign in to see who and what, and acknowledge it."),
        ]
    base = current_app.config.get("PUBLIC_URL")
    link = f"{base}/visits/{visit_id}" if base else ""
    return subject, "\n\n".join(lines + ([link] if link else [])) + "\n"


def _reached_on_call(alert_id: uuid.UUID) -> tuple[set[uuid.UUID], bool]:
    """Devices of the on-call contact that took this escalation, and whether its e-mail went."""
    rows = db.session.execute(
        select(AlertNotice.channel, AlertNotice.device_id).where(
            AlertNotice.alert_id == alert_id,
            AlertNotice.audience == ON_CALL,
            AlertNotice.outcome.in_([webpush.ACCEPTED, email.SENT]),
        )
    ).all()
    devices = {device_id for channel, device_id in rows if channel == "push"}
    return devices, any(channel == "email" for channel, _device in rows)


def escalate(now: datetime, sender: webpush.PushSender, report: AlertReport) -> int:
    """One round: tell the on-call contact of every red alert still unacknowledged after
    ALERT_ESCALATE_MINUTES. Returns how many alerts were escalated for good this round."""
    wait = escalate_after()
    ids = list(db.session.execute(claim_statement(now, wait)).scalars())
    db.session.commit()  # the lease is visible to every other worker before we touch the network
    if not ids:
        return 0
    claimed = db.session.execute(
        select(
            Alert.id,
            Alert.clinic_id,
            Alert.visit_id,
            Alert.raised_at,
            Alert.escalate_lease_until,
            Alert.escalate_attempts,
        )
        .where(Alert.id.in_(ids))
        .order_by(Alert.raised_at, Alert.id)  # the longest waiting first, as claimed
    ).all()
    contacts: dict[uuid.UUID, OnCall] = {}
    done = 0
    for alert in claimed:
        if alert.clinic_id not in contacts:
            contacts[alert.clinic_id] = on_call_of(alert.clinic_id)
        contact = contacts[alert.clinic_id]
        # Read again just before sending: somebody may have acknowledged it since the claim (a
        # batch takes a while). The claim never takes an acknowledged alert again.
        seen = db.session.scalar(
            select(Alert.acknowledged_at.is_not(None) | Alert.resolved_at.is_not(None)).where(
                Alert.id == alert.id
            )
        )
        devices_reached, emailed = _reached_on_call(alert.id)
        db.session.commit()  # no transaction stays open while we wait on push services or SMTP
        if seen:
            continue
        attempts = alert.escalate_attempts + 1
        if not contact.reachable:
            record_unreachable(alert.clinic_id, alert.id, ON_CALL, now)
            retry_at = None
        else:
            devices = [d for d in contact.devices if d.id not in devices_reached]
            outcomes = therapist_devices.push_to_devices(
                devices,
                partial(
                    therapist_devices.alert_message,
                    therapist_devices.ESCALATION,
                    # A tag of its own: the on-call therapist's phone may still show the first
                    # notice, and one with the same tag would replace it without a sound.
                    tag=uuid.uuid5(uuid.NAMESPACE_URL, f"escalation:{alert.id}").hex,
                    url=f"/visits/{alert.visit_id}",
                ),
                sender,
                now,
                kind="red",
                alert_id=alert.id,
                audience=ON_CALL,
            )
            count_pushes(report, outcomes)
            minutes = max(1, int((now - alert.raised_at).total_seconds() // 60))
            emails = send_emails(
                report,
                Recipients(
                    clinic_name=contact.clinic_name,
                    devices=contact.devices,
                    therapists=[]
                    if emailed or not contact.email
                    else [(contact.therapist_id, contact.email)],
                ),
                partial(_escalation_email, contact.clinic_name, alert.visit_id, minutes),
                alert.clinic_id,
                alert.id,
                "red",
                now,
                audience=ON_CALL,
            )
            retry_at = next_round(outcomes, emails, attempts, now)
        ended = {"escalated_at": now} if retry_at is None else {"escalate_lease_until": retry_at}
        # Only the worker still holding the lease marks it: a late one must not.
        db.session.execute(
            update(Alert)
            .where(
                Alert.id == alert.id,
                Alert.escalate_lease_until == alert.escalate_lease_until,
            )
            .values(escalate_attempts=attempts, **ended)
            .execution_options(synchronize_session=False)
        )
        db.session.commit()
        if retry_at is None:
            done += 1
    return done


# --- setting the on-call contact (the on-call page and `flask clinic on-call`) ----------------


@dataclass(frozen=True)
class OnCallContact:
    """Already normalized (visits/contact.py) by the form or the command that took it."""

    name: str | None
    phone: str | None
    email: str | None
    therapist_id: uuid.UUID | None


def set_on_call(clinic: Clinic, contact: OnCallContact, actor: audit.Actor, now: datetime) -> bool:
    """Store the clinic's on-call contact; an audit row names the fields that changed (not their
    values). ValueError when the linked therapist is not an active therapist of this clinic.
    Returns whether anything changed. The caller commits."""
    if contact.therapist_id is not None:
        therapist = db.session.get(Therapist, contact.therapist_id)
        if therapist is None or therapist.clinic_id != clinic.id or not therapist.active:
            raise ValueError("the on-call therapist must be an active therapist of the clinic")
    wanted = {
        "oncall_name": contact.name or None,
        "oncall_phone": contact.phone or None,
        "oncall_email": contact.email or None,
        "oncall_therapist_id": contact.therapist_id,
    }
    changed = sorted(name for name, value in wanted.items() if getattr(clinic, name) != value)
    for name in changed:
        setattr(clinic, name, wanted[name])
    if changed:
        audit.record("clinic.on_call", actor, now=now, detail={"changed": changed})
    return bool(changed)
