"""The tables. Typed SQLAlchemy 2.0 models; every timestamp is a UTC-aware UTCDateTime."""

from __future__ import annotations

import uuid
from datetime import date, datetime, time
from typing import Any, Final

from flask_login import UserMixin
from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    Time,
    UniqueConstraint,
    Uuid,
    false,
    select,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from companion.extensions import db
from companion.timeutil import UTCDateTime, utcnow


class ReminderStatus:
    """Reminder.status: planned until a worker or the patient ends it, then one of the others."""

    PLANNED: Final = "planned"
    SENT: Final = "sent"  # a push service took it for at least one device
    ANSWERED: Final = "answered"  # a check-in came first
    SKIPPED: Final = "skipped"  # not needed when due (the conditional 72 h one)
    CANCELLED: Final = "cancelled"  # a newer visit, "fully recovered", or a revoked link
    EXPIRED: Final = "expired"  # its moment passed
    NO_DEVICE: Final = "no_device"  # no device had reminders on (the calendar still has it)
    FAILED: Final = "failed"  # no device could be reached


class Role:
    """Therapist.role: admins manage the clinic (settings, on-call, audit, colleagues); therapists
    review and record visits. Every admin is also a therapist."""

    ADMIN: Final = "admin"
    THERAPIST: Final = "therapist"
    ALL: Final = (ADMIN, THERAPIST)


class AlertLevel:
    RED: Final = "red"
    AMBER: Final = "amber"


class AlertKind:
    CHECKIN: Final = "checkin"  # raised by a red or amber check-in
    MISSING: Final = "missing"  # no check-in by 24 h or 48 h


def _id() -> Mapped[uuid.UUID]:
    # Random ids: nothing in a URL can be enumerated or counted.
    return mapped_column(Uuid, primary_key=True, default=uuid.uuid4)


def _created() -> Mapped[datetime]:
    return mapped_column(UTCDateTime, default=utcnow, nullable=False)


class Clinic(db.Model):
    __tablename__ = "clinic"
    id: Mapped[uuid.UUID] = _id()
    name: Mapped[str] = mapped_column(String(200), unique=True)
    phone: Mapped[str | None] = mapped_column(String(40))
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    # Reminders never fire in these local hours; they wait for the end (clinical.md default).
    quiet_start: Mapped[time] = mapped_column(Time, default=time(21, 30))
    quiet_end: Mapped[time] = mapped_column(Time, default=time(8, 0))
    # How long an episode stays in the review queue after its visit (design.md: default 7 days).
    episode_days: Mapped[int] = mapped_column(Integer, default=7)
    # The expected-soreness envelope as the clinic adjusted it: [[usual_max, amber_at], ...], one
    # pair per window of care.triage.ENVELOPE. None keeps the clinical.md defaults.
    envelope: Mapped[list[list[int]] | None] = mapped_column(JSON)
    # When the clinic is open, in its own zone: {"mon": [["08:00", "20:00"]], ...}; a day left out
    # is closed. None: never set, so the patient is not told when the clinic will see a red flag
    # (care/hours.py).
    opening_hours: Mapped[dict[str, list[list[str]]] | None] = mapped_column(JSON)
    # The on-call contact an unacknowledged red alert escalates to (alerts/escalation.py). The
    # therapist link adds push to that therapist's devices; the e-mail is used either way.
    oncall_name: Mapped[str | None] = mapped_column(String(200))
    oncall_phone: Mapped[str | None] = mapped_column(String(20))
    oncall_email: Mapped[str | None] = mapped_column(String(254))
    oncall_therapist_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("therapist.id", use_alter=True, name="fk_clinic_oncall_therapist")
    )
    # The clinic's profile, as patients see it (header, handout) and as its admins set it.
    address: Mapped[str | None] = mapped_column(String(300))
    # The number a patient calls in an emergency where the clinic is (112, 911, 999...); None
    # falls back to the app's EMERGENCY_NUMBER.
    emergency_number: Mapped[str | None] = mapped_column(String(20))
    # A new patient's language when the visit does not say.
    default_language: Mapped[str] = mapped_column(String(8), default="en", server_default="en")
    # The logo, re-encoded by the server as PNG (never the uploaded bytes); its time busts caches.
    logo_png: Mapped[bytes | None] = mapped_column(LargeBinary)
    logo_updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Every therapist of the clinic must use a second factor (TOTP) to sign in.
    require_two_factor: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    created_at: Mapped[datetime] = _created()


class Therapist(UserMixin, db.Model):
    __tablename__ = "therapist"
    id: Mapped[uuid.UUID] = _id()
    clinic_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("clinic.id"), index=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    display_name: Mapped[str | None] = mapped_column(String(200))
    # Least privilege by default: admin only when given (the CLI makes a clinic's first one admin).
    role: Mapped[str] = mapped_column(
        String(16), default=Role.THERAPIST, server_default="therapist"
    )
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = _created()
    last_sign_in_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # When this therapist was last sent an amber digest: at most one an hour (issue 5).
    last_digest_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Invited by an admin and not yet through the invite link: no password yet (password_hash is
    # empty, so no password can match), and not shown as a colleague who can sign in.
    invited_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Two-step sign-in (RFC 6238 TOTP): the base32 secret once enrolment is confirmed, and the
    # last time step a code was accepted for, so no code is accepted twice.
    totp_secret: Mapped[str | None] = mapped_column(String(64))
    totp_enabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    totp_last_step: Mapped[int | None] = mapped_column(BigInteger)
    # Sessions are signed cookies, which the server cannot delete: each carries the epoch it was
    # signed in under, and raising this number ends every session of the account at its next
    # request (a password change or reset, a deactivation, "sign out everywhere").
    session_epoch: Mapped[int] = mapped_column(Integer, default=0, server_default="0")

    # Named: the clinic also points at a therapist (its on-call contact).
    clinic: Mapped[Clinic] = relationship(foreign_keys=[clinic_id])

    @property
    def is_active(self) -> bool:  # Flask-Login refuses inactive accounts
        return self.active

    @property
    def is_admin(self) -> bool:
        return self.role == Role.ADMIN

    def end_sessions(self) -> None:
        """End every session of this account, on every device and host, at its next request
        (companion/auth checks the epoch each request signs in under)."""
        self.session_epoch += 1

    @property
    def is_pending(self) -> bool:
        """Invited, and has not set a password yet."""
        return not self.password_hash

    @property
    def has_two_factor(self) -> bool:
        return self.totp_enabled_at is not None


class AccountToken(db.Model):
    """A single-use link for a therapist account: an invite (72 h) or a password reset (1 h).
    Only the token's SHA-256 is stored (tokens.py); `used_at` makes it single-use."""

    __tablename__ = "account_token"
    id: Mapped[uuid.UUID] = _id()
    therapist_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("therapist.id"), index=True)
    purpose: Mapped[str] = mapped_column(String(16))  # TokenPurpose
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = _created()
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    therapist: Mapped[Therapist] = relationship()


class TokenPurpose:
    INVITE = "invite"
    RESET = "reset"


class RecoveryCode(db.Model):
    """One of a therapist's single-use recovery codes for two-step sign-in, stored hashed."""

    __tablename__ = "recovery_code"
    id: Mapped[uuid.UUID] = _id()
    therapist_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("therapist.id"), index=True)
    code_hash: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = _created()
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Patient(db.Model):
    __tablename__ = "patient"
    __table_args__ = (UniqueConstraint("clinic_id", "ref"),)
    id: Mapped[uuid.UUID] = _id()
    clinic_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("clinic.id"), index=True)
    ref: Mapped[str] = mapped_column(String(100))  # the clinic's own reference
    display_name: Mapped[str] = mapped_column(String(200))
    timezone: Mapped[str] = mapped_column(String(64))  # IANA name
    language: Mapped[str] = mapped_column(String(8), default="en")
    # Optional contact details: the phone in E.164 ("+34600111222"), so a red or amber item can be
    # called back from the queue. Never logged, never in a push payload.
    phone: Mapped[str | None] = mapped_column(String(20))
    email: Mapped[str | None] = mapped_column(String(254))
    # The patient's own quiet hours; None means the clinic's.
    quiet_start: Mapped[time | None] = mapped_column(Time)
    quiet_end: Mapped[time | None] = mapped_column(Time)
    created_at: Mapped[datetime] = _created()

    visits: Mapped[list[Visit]] = relationship(
        back_populates="patient", order_by="Visit.performed_at.desc()"
    )


class Visit(db.Model):
    __tablename__ = "visit"
    id: Mapped[uuid.UUID] = _id()
    clinic_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("clinic.id"), index=True)
    patient_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("patient.id"), index=True)
    therapist_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("therapist.id"))
    performed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    regions: Mapped[list[str]] = mapped_column(JSON, default=list)
    # Stretch codes from care/stretches.py that the therapist chose for this patient.
    stretches: Mapped[list[str]] = mapped_column(JSON, default=list)
    insertions: Mapped[int | None] = mapped_column(Integer)
    electrical_stimulation: Mapped[bool | None] = mapped_column(Boolean)
    first_visit: Mapped[bool | None] = mapped_column(Boolean)
    notes: Mapped[str | None] = mapped_column(Text)
    # Set when the patient says "I'm fully recovered": the remaining reminders are cancelled.
    recovered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    patient: Mapped[Patient] = relationship(back_populates="visits")
    clinic: Mapped[Clinic] = relationship()
    therapist: Mapped[Therapist | None] = relationship()
    links: Mapped[list[PatientLink]] = relationship(
        back_populates="visit", order_by="PatientLink.created_at.desc()"
    )


class PatientLink(db.Model):
    """A capability URL into one episode. Only the SHA-256 of the token is stored."""

    __tablename__ = "patient_link"
    id: Mapped[uuid.UUID] = _id()
    visit_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("visit.id"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = _created()
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    visit: Mapped[Visit] = relationship(back_populates="links")

    def usable(self, now: datetime) -> bool:
        return self.revoked_at is None and now < self.expires_at


class CheckIn(db.Model):
    __tablename__ = "checkin"
    __table_args__ = (UniqueConstraint("patient_id", "client_id"),)
    id: Mapped[uuid.UUID] = _id()
    patient_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("patient.id"))
    visit_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("visit.id"))
    client_id: Mapped[uuid.UUID] = mapped_column(Uuid)  # chosen by the patient's device
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime)
    received_at: Mapped[datetime] = _created()
    soreness: Mapped[int] = mapped_column(Integer)
    usual_pain: Mapped[int | None] = mapped_column(Integer)
    # Day 7: the patient's global impression of change of the usual pain, 1 (very much better) to
    # 7 (very much worse); care/pgic.py.
    pgic: Mapped[int | None] = mapped_column(Integer)
    symptoms: Mapped[list[str]] = mapped_column(JSON, default=list)
    helped: Mapped[list[str]] = mapped_column(JSON, default=list)
    note: Mapped[str | None] = mapped_column(Text)
    triage: Mapped[str] = mapped_column(String(8))
    triage_reasons: Mapped[list[str]] = mapped_column(JSON, default=list)
    # SHA-256 of the canonical submitted body: a replay with the same id must match it exactly.
    body_digest: Mapped[str] = mapped_column(String(64))

    visit: Mapped[Visit] = relationship()


Index("ix_checkin_patient_recorded", CheckIn.patient_id, CheckIn.recorded_at.desc())
# An episode's check-ins in time order: the review queue's count and newest score per episode are
# index lookups (it also serves every "check-ins of this visit" query).
Index("ix_checkin_visit_recorded", CheckIn.visit_id, CheckIn.recorded_at, CheckIn.received_at)


class StretchDone(db.Model):
    """A patient's "done today" tick for one of the visit's stretches (issue 15). Only the tick is
    kept: which stretch, which day in the patient's zone, and when it was ticked; one per day."""

    __tablename__ = "stretch_done"
    __table_args__ = (UniqueConstraint("visit_id", "stretch", "day"),)
    id: Mapped[uuid.UUID] = _id()
    visit_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("visit.id"), index=True)
    stretch: Mapped[str] = mapped_column(String(64))  # a code from care/stretches.py
    day: Mapped[date] = mapped_column(Date)  # the patient's local day
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime)

    visit: Mapped[Visit] = relationship()


class Reminder(db.Model):
    __tablename__ = "reminder"
    __table_args__ = (UniqueConstraint("visit_id", "kind"),)
    id: Mapped[uuid.UUID] = _id()
    visit_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("visit.id"))
    kind: Mapped[str] = mapped_column(String(32))
    due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # planned (waiting or leased) -> sent | failed | expired | cancelled | answered | skipped |
    # no_device. Only "planned" rows are ever claimed.
    status: Mapped[str] = mapped_column(String(16), default=ReminderStatus.PLANNED)
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Set with each claim: a worker whose lease ran out cannot finish a row another worker holds.
    claim_token: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Why it ended as it did, in words for the therapist (never health data).
    last_error: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = _created()

    visit: Mapped[Visit] = relationship()
    deliveries: Mapped[list[Delivery]] = relationship(
        order_by="Delivery.attempted_at", viewonly=True
    )


# The worker only ever looks at rows still to send: a partial index keeps that scan small as the
# finished history grows.
Index(
    "ix_reminder_planned_due",
    Reminder.due_at,
    postgresql_where=text("status = 'planned'"),
    sqlite_where=text("status = 'planned'"),
)


class PushSubscription(db.Model):
    __tablename__ = "push_subscription"
    id: Mapped[uuid.UUID] = _id()
    patient_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("patient.id"), index=True)
    endpoint: Mapped[str] = mapped_column(String(2048), unique=True)
    p256dh: Mapped[str] = mapped_column(String(255))
    auth: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = _created()
    last_success_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class TherapistDevice(db.Model):
    """A browser where a therapist turned on alerts (web push): the same keys as a patient's
    PushSubscription, plus what the alert needs and what the list of devices shows."""

    __tablename__ = "therapist_device"
    id: Mapped[uuid.UUID] = _id()
    therapist_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("therapist.id"), index=True)
    endpoint: Mapped[str] = mapped_column(String(2048), unique=True)
    p256dh: Mapped[str] = mapped_column(String(255))
    auth: Mapped[str] = mapped_column(String(255))
    # Coarse words from the User-Agent ("Chrome", "Android") so a therapist can tell devices
    # apart; the header itself is not kept (it is a fingerprint).
    browser: Mapped[str | None] = mapped_column(String(40))
    platform: Mapped[str | None] = mapped_column(String(40))
    # The page's language when alerts were turned on: alerts arrive in it.
    language: Mapped[str] = mapped_column(String(8), default="en")
    # SHA-256 of a token only this browser holds: its service worker re-registers a subscription
    # the browser replaced, long after the therapist's session ended (therapist_devices.renew).
    renewal_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = _created()
    last_success_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    therapist: Mapped[Therapist] = relationship()


class Delivery(db.Model):
    __tablename__ = "delivery"
    id: Mapped[uuid.UUID] = _id()
    reminder_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("reminder.id"), index=True)
    channel: Mapped[str] = mapped_column(String(16))
    subscription_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    attempted_at: Mapped[datetime] = _created()
    outcome: Mapped[str] = mapped_column(String(16))
    status_code: Mapped[int | None] = mapped_column(Integer)
    detail: Mapped[str | None] = mapped_column(String(500))


class ApiKey(db.Model):
    __tablename__ = "api_key"
    id: Mapped[uuid.UUID] = _id()
    clinic_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("clinic.id"), index=True)
    prefix: Mapped[str] = mapped_column(String(16))  # shown in lists so a key can be recognised
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str | None] = mapped_column(String(100))  # what the clinic uses it for
    created_at: Mapped[datetime] = _created()
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    clinic: Mapped[Clinic] = relationship()


class AuditEvent(db.Model):
    """Who did what to which record, when, from where. `detail` never holds health data."""

    __tablename__ = "audit_event"
    id: Mapped[uuid.UUID] = _id()
    clinic_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("clinic.id"), index=True)
    at: Mapped[datetime] = _created()
    actor_type: Mapped[str] = mapped_column(String(16))
    actor_id: Mapped[str | None] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(64))
    target_type: Mapped[str | None] = mapped_column(String(32))
    target_id: Mapped[str | None] = mapped_column(String(64))
    ip: Mapped[str | None] = mapped_column(String(64))
    detail: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class Alert(db.Model):
    """Something a therapist should look at in one episode: a red or amber check-in, or a missing one.

    Rows are never deleted when handled: who acknowledged and resolved them, and when, stays on
    record. `dedupe_key` makes raising idempotent ("checkin:<id>", "missing_24:<visit id>").
    """

    __tablename__ = "alert"
    id: Mapped[uuid.UUID] = _id()
    clinic_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("clinic.id"))
    visit_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("visit.id"), index=True)
    checkin_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("checkin.id"))
    dedupe_key: Mapped[str] = mapped_column(String(64), unique=True)
    kind: Mapped[str] = mapped_column(String(16))  # checkin | missing
    level: Mapped[str] = mapped_column(String(8))  # red | amber
    # What was found, as codes and numbers, put into words when shown (in the reader's language).
    reasons: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    raised_at: Mapped[datetime] = mapped_column(UTCDateTime)
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    acknowledged_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("therapist.id"))
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # None with resolved_at set: closed by the app (the patient checked in after all).
    resolved_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("therapist.id"))
    resolution_note: Mapped[str | None] = mapped_column(Text)
    # Red alerts go out at once: the dispatcher claims rows with notified_at NULL under a lease.
    # Set once every recipient was reached, or could not be (a device gone, attempts used up).
    notified_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # A worker's lease while it sends, or after a round some push service or the mail relay failed
    # for a moment, the time the next round may start (it tells only those not reached yet).
    notify_lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    notify_attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # Escalation to the clinic's on-call contact when nobody acknowledged a red alert within
    # ALERT_ESCALATE_MINUTES (alerts/escalation.py): the same lease-and-rounds scheme as above.
    escalated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    escalate_lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    escalate_attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


# The review queue reads the unresolved alerts of a clinic; handled ones only grow the history.
Index(
    "ix_alert_open",
    Alert.clinic_id,
    Alert.visit_id,
    postgresql_where=text("resolved_at IS NULL"),
    sqlite_where=text("resolved_at IS NULL"),
)
# The escalation loop looks only at red alerts nobody has acknowledged or escalated yet.
Index(
    "ix_alert_unescalated",
    Alert.raised_at,
    postgresql_where=text(
        "escalated_at IS NULL AND acknowledged_at IS NULL AND resolved_at IS NULL AND level = 'red'"
    ),
    sqlite_where=text(
        "escalated_at IS NULL AND acknowledged_at IS NULL AND resolved_at IS NULL AND level = 'red'"
    ),
)
# The dispatcher looks only for red alerts nobody has been told about yet.
Index(
    "ix_alert_unnotified",
    Alert.raised_at,
    postgresql_where=text("notified_at IS NULL AND level = 'red'"),
    sqlite_where=text("notified_at IS NULL AND level = 'red'"),
)


class AlertNotice(db.Model):
    """One attempt to tell one therapist: a red alert or an amber digest, by push or e-mail."""

    __tablename__ = "alert_notice"
    id: Mapped[uuid.UUID] = _id()
    clinic_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("clinic.id"), index=True)
    # None: the on-call contact is no therapist of the app (an e-mail address only).
    therapist_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("therapist.id"), index=True)
    # Who was told: the clinic's therapists, or the on-call contact (an escalation).
    audience: Mapped[str] = mapped_column(
        String(16), default="therapists", server_default="therapists"
    )
    # The red alert told about; None for a digest (it covers every amber item still open).
    alert_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("alert.id"), index=True)
    kind: Mapped[str] = mapped_column(String(8))  # red | digest
    channel: Mapped[str] = mapped_column(String(8))  # push | email
    device_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    attempted_at: Mapped[datetime] = mapped_column(UTCDateTime)
    outcome: Mapped[str] = mapped_column(String(16))
    status_code: Mapped[int | None] = mapped_column(Integer)
    detail: Mapped[str | None] = mapped_column(String(200))


class DeletionRequest(db.Model):
    """A patient's request that the clinic delete their data; a therapist confirms or declines it.

    `patient_id` is deliberately no foreign key: confirming deletes the patient row, and this row
    (with the audit rows) must outlive it as the record that the deletion was asked for and done.
    It keeps no name, reference or health data; the decline reason is cleared on deletion.
    """

    __tablename__ = "deletion_request"
    id: Mapped[uuid.UUID] = _id()
    clinic_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("clinic.id"), index=True)
    patient_id: Mapped[uuid.UUID] = mapped_column(Uuid, index=True)
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # None: the patient asked through their link; a therapist's id: asked on the patient's behalf
    # (by phone, at the desk).
    requested_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("therapist.id"))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    decided_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("therapist.id"))
    # None while pending, then "confirmed" or "declined".
    outcome: Mapped[str | None] = mapped_column(String(16))
    # Why the clinic declined (shown to the patient), e.g. records it must keep by law.
    reason: Mapped[str | None] = mapped_column(Text)


# At most one pending request per patient, enforced by the database as well as by the code: two
# taps (or a patient and a therapist at once) cannot open two.
Index(
    "ix_deletion_request_one_pending",
    DeletionRequest.patient_id,
    unique=True,
    postgresql_where=text("outcome IS NULL"),
    sqlite_where=text("outcome IS NULL"),
)


def therapist_names(clinic_id: uuid.UUID) -> dict[uuid.UUID, str]:
    """How the clinic's therapists are named on its pages: their display name, else their e-mail."""
    rows = db.session.execute(
        select(Therapist.id, Therapist.display_name, Therapist.email).where(
            Therapist.clinic_id == clinic_id
        )
    )
    return {therapist_id: name or email for therapist_id, name, email in rows}
