"""The patient's own data: a download of everything we hold about them in one clinic (GDPR access and
portability), and deletion, which the patient asks for and a therapist confirms (erasure).

Domain functions with an explicit `now`; the views only parse, call and render. Every download,
request, confirmation and refusal is an audit row whose detail holds ids and counts, never the data.

What deletion removes, children first so that no foreign key blocks it (SQLite with foreign keys on,
PostgreSQL): deliveries, reminders, check-ins, push subscriptions, patient links, stretch ticks, visits, then the
patient row itself (name and reference are personal data too). What stays: the deletion request row
and the audit rows, which name the patient only by its random id. A table added later that points at
a visit, a check-in or the patient must be added to `_delete_patient_rows` (before its parent).
"""

from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, time
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError

from companion import audit
from companion.extensions import db
from companion.models import (
    Alert,
    AlertNotice,
    CheckIn,
    Clinic,
    DeletionRequest,
    Delivery,
    Patient,
    PatientLink,
    PushSubscription,
    Reminder,
    ReminderStatus,
    StretchDone,
    Visit,
)
from companion.reminders.planning import quiet_hours_for
from companion.timeutil import utc_instant

FORMAT = "aftercare-patient-data/1"

CONFIRMED = "confirmed"
DECLINED = "declined"

# Room for a sentence or two; the patient reads it on a phone.
MAX_REASON = 500


class AlreadyPending(Exception):
    """The patient already has a deletion request waiting for the clinic."""

    def __init__(self, pending: DeletionRequest) -> None:
        super().__init__("a deletion request is already pending")
        self.pending = pending


class NotPending(Exception):
    """The request was already confirmed or declined (another therapist was quicker)."""


class ReminderInFlight(Exception):
    """A reminder worker holds one of the patient's reminders right now (it is being sent).

    Deleting under it would make the worker's delivery rows point at a deleted reminder; the lease
    is short (REMINDER_LEASE_SECONDS), so the therapist tries again in a minute or two.
    """


# --- download -------------------------------------------------------------------------------------


def _utc(moment: datetime | None) -> str | None:
    return None if moment is None else utc_instant(moment)


def _clock(moment: time) -> str:
    return moment.strftime("%H:%M")


def _push_service(endpoint: str) -> str:
    # Only the push service's host: the full endpoint and the keys are what lets anyone send to the
    # patient's phone, so they stay out of a file that may be mailed around. The host says which
    # browser vendor's service holds the subscription, which is the personal data in it.
    return urlsplit(endpoint).hostname or ""


def export_data(patient: Patient, now: datetime) -> dict[str, Any]:
    """Everything the app holds about `patient` (one clinic), as JSON-ready values.

    The therapist's free-text notes on each visit are included: they are the patient's personal
    data, and the right of access (GDPR art. 15) covers clinical notes. A clinic that must withhold
    something under a national exception handles that outside this app. The visit form says so.
    Codes (regions, stretches, symptoms, what helped, triage reasons) are given as codes: they are
    stable across languages and releases, which is what a portable format needs.
    """
    clinic = db.session.get(Clinic, patient.clinic_id)
    visits = list(
        db.session.scalars(
            select(Visit).where(Visit.patient_id == patient.id).order_by(Visit.performed_at)
        )
    )
    visit_ids = [v.id for v in visits]
    links = db.session.scalars(
        select(PatientLink)
        .where(PatientLink.visit_id.in_(visit_ids))
        .order_by(PatientLink.created_at)
    )
    reminders = list(
        db.session.scalars(
            select(Reminder)
            .where(Reminder.visit_id.in_(visit_ids))
            .order_by(Reminder.due_at, Reminder.kind)
        )
    )
    deliveries = db.session.scalars(
        select(Delivery)
        .where(Delivery.reminder_id.in_([r.id for r in reminders]))
        .order_by(Delivery.attempted_at)
    )
    attempts: dict[uuid.UUID, list[dict[str, Any]]] = {}
    for d in deliveries:
        attempts.setdefault(d.reminder_id, []).append(
            {"attempted_at": _utc(d.attempted_at), "channel": d.channel, "outcome": d.outcome}
        )
    checkins = db.session.scalars(
        select(CheckIn)
        .where(CheckIn.patient_id == patient.id)
        .order_by(CheckIn.recorded_at, CheckIn.received_at)
    )
    ticks = db.session.scalars(
        select(StretchDone)
        .where(StretchDone.visit_id.in_(visit_ids))
        .order_by(StretchDone.day, StretchDone.stretch)
    )
    subscriptions = db.session.scalars(
        select(PushSubscription)
        .where(PushSubscription.patient_id == patient.id)
        .order_by(PushSubscription.created_at)
    )
    requests = db.session.scalars(
        select(DeletionRequest)
        .where(DeletionRequest.patient_id == patient.id)
        .order_by(DeletionRequest.requested_at)
    )
    quiet = quiet_hours_for(patient)
    return {
        "format": FORMAT,
        "exported_at": _utc(now),
        "clinic": {
            "name": clinic.name if clinic else None,
            "phone": clinic.phone if clinic else None,
        },
        "patient": {
            "id": str(patient.id),
            "reference": patient.ref,
            "name": patient.display_name,
            "timezone": patient.timezone,
            "language": patient.language,
            # As the clinic recorded them (E.164 phone, normalized e-mail); None when not given.
            "phone": patient.phone,
            "email": patient.email,
            "quiet_hours": {
                "start": _clock(quiet.start),
                "end": _clock(quiet.end),
                # False: the clinic's usual quiet hours apply to this patient.
                "set_by_patient": patient.quiet_start is not None,
            },
            "created_at": _utc(patient.created_at),
        },
        "visits": [
            {
                "id": str(v.id),
                "performed_at": _utc(v.performed_at),
                "regions": list(v.regions),
                "stretches": list(v.stretches),
                "insertions": v.insertions,
                "electrical_stimulation": v.electrical_stimulation,
                "first_visit": v.first_visit,
                "notes": v.notes,
                "recovered_at": _utc(v.recovered_at),
                "created_at": _utc(v.created_at),
                "updated_at": _utc(v.updated_at),
            }
            for v in visits
        ],
        "patient_links": [
            {
                "visit_id": str(link.visit_id),
                "created_at": _utc(link.created_at),
                "expires_at": _utc(link.expires_at),
                "revoked_at": _utc(link.revoked_at),
            }
            for link in links
        ],
        "checkins": [
            {
                "id": str(c.id),
                "visit_id": str(c.visit_id),
                "recorded_at": _utc(c.recorded_at),
                "received_at": _utc(c.received_at),
                "soreness": c.soreness,
                "usual_pain": c.usual_pain,
                # Day 7's global impression of change, 1-7 (care/pgic.py); None when not asked.
                "pgic": c.pgic,
                "symptoms": list(c.symptoms),
                "helped": list(c.helped),
                "note": c.note,
                "triage": c.triage,
                "triage_reasons": list(c.triage_reasons),
            }
            for c in checkins
        ],
        # "Done today" ticks of the chosen stretches: the day (the patient's own) and nothing else.
        "stretches_done": [
            {
                "visit_id": str(t.visit_id),
                "stretch": t.stretch,
                "day": t.day.isoformat(),
                "recorded_at": _utc(t.recorded_at),
            }
            for t in ticks
        ],
        "reminders": [
            {
                "visit_id": str(r.visit_id),
                "kind": r.kind,
                "due_at": _utc(r.due_at),
                "expires_at": _utc(r.expires_at),
                "status": r.status,
                "sent_at": _utc(r.sent_at),
                "deliveries": attempts.get(r.id, []),
            }
            for r in reminders
        ],
        "push_subscriptions": [
            {
                "push_service": _push_service(s.endpoint),
                "created_at": _utc(s.created_at),
                "last_success_at": _utc(s.last_success_at),
            }
            for s in subscriptions
        ],
        "deletion_requests": [
            {
                "requested_at": _utc(r.requested_at),
                "decided_at": _utc(r.decided_at),
                "outcome": r.outcome,
                "reason": r.reason,
            }
            for r in requests
        ],
    }


def download_filename(now: datetime) -> str:
    # No name or reference in the file name: it shows in download lists and notifications.
    return f"aftercare-data-{now.astimezone(UTC).date().isoformat()}.json"


def record_download(patient: Patient, data: dict[str, Any], now: datetime) -> None:
    """Audit a download: who and how much, never what."""
    audit.record(
        "patient.data_download",
        audit.Actor.patient(patient),
        ("patient", patient.id),
        now=now,
        detail={"visits": len(data["visits"]), "checkins": len(data["checkins"])},
    )


# --- deletion requests ----------------------------------------------------------------------------


def pending_request(patient_id: uuid.UUID) -> DeletionRequest | None:
    return db.session.scalar(
        select(DeletionRequest).where(
            DeletionRequest.patient_id == patient_id, DeletionRequest.outcome.is_(None)
        )
    )


def latest_request(patient_id: uuid.UUID) -> DeletionRequest | None:
    """The patient's newest request, pending or decided (what their Your data page reports)."""
    return db.session.scalar(
        select(DeletionRequest)
        .where(DeletionRequest.patient_id == patient_id)
        .order_by(DeletionRequest.requested_at.desc())
        .limit(1)
    )


def request_deletion(
    patient: Patient, now: datetime, *, therapist_id: uuid.UUID | None = None
) -> DeletionRequest:
    """Open a deletion request for the patient: asked by the patient (`therapist_id` None) or by a
    therapist on the patient's behalf. Raises AlreadyPending when one is waiting already.

    Call it first in its transaction: a lost race with a second tap rolls the transaction back.
    """
    pending = pending_request(patient.id)
    if pending is not None:
        raise AlreadyPending(pending)
    request = DeletionRequest(
        clinic_id=patient.clinic_id,
        patient_id=patient.id,
        requested_at=now,
        requested_by=therapist_id,
    )
    db.session.add(request)
    try:
        db.session.flush()
    except IntegrityError:
        # Two taps at once: the unique index on pending requests let only the other one in.
        db.session.rollback()
        pending = pending_request(patient.id)
        if pending is None:
            raise
        raise AlreadyPending(pending) from None
    actor = (
        audit.Actor.patient(patient)
        if therapist_id is None
        else audit.Actor(audit.THERAPIST, therapist_id, patient.clinic_id)
    )
    audit.record(
        "deletion.request",
        actor,
        ("patient", patient.id),
        now=now,
        detail={"request": str(request.id)},
    )
    return request


def request_in_clinic(request_id: uuid.UUID, clinic_id: uuid.UUID) -> DeletionRequest | None:
    """A request of this clinic only: another clinic's id reads as unknown (a 404 for the view)."""
    return db.session.scalar(
        select(DeletionRequest).where(
            DeletionRequest.id == request_id, DeletionRequest.clinic_id == clinic_id
        )
    )


def _decide(request: DeletionRequest, outcome: str, therapist_id: uuid.UUID, now: datetime) -> None:
    """Mark the request decided, only if it is still pending. The conditional update makes two
    therapists deciding at once safe: the second one changes nothing and is told so."""
    changed = db.session.execute(
        update(DeletionRequest)
        .where(DeletionRequest.id == request.id, DeletionRequest.outcome.is_(None))
        .values(outcome=outcome, decided_at=now, decided_by=therapist_id)
        .execution_options(synchronize_session=False)
    ).rowcount
    if changed != 1:
        raise NotPending
    db.session.refresh(request)


def _audit_decision(
    action: str,
    request: DeletionRequest,
    therapist_id: uuid.UUID,
    now: datetime,
    detail: dict[str, Any],
) -> None:
    audit.record(
        action,
        audit.Actor(audit.THERAPIST, therapist_id, request.clinic_id),
        ("patient", request.patient_id),
        now=now,
        detail=detail,
    )


def decline_deletion(
    request: DeletionRequest, therapist_id: uuid.UUID, reason: str, now: datetime
) -> None:
    """The clinic keeps the data (records it must keep by law, say); the patient sees the reason."""
    reason = reason.strip()
    if not reason or len(reason) > MAX_REASON:
        raise ValueError(f"a decline needs a reason of 1 to {MAX_REASON} characters")
    _decide(request, DECLINED, therapist_id, now)
    request.reason = reason
    # The reason is free text about the patient: it stays on the request, out of the audit.
    _audit_decision("deletion.decline", request, therapist_id, now, {"request": str(request.id)})


@dataclass(frozen=True)
class Removed:
    """How many rows a deletion removed, per table (the only trace of the data in the audit)."""

    visits: int
    checkins: int
    reminders: int
    deliveries: int
    alerts: int
    push_subscriptions: int
    patient_links: int
    stretches_done: int

    def as_detail(self) -> dict[str, int]:
        return asdict(self)


def _count(statement: Any) -> int:
    return db.session.execute(statement.execution_options(synchronize_session=False)).rowcount or 0


def _delete_patient_rows(patient_id: uuid.UUID, now: datetime) -> Removed:
    """Delete the patient's rows, children before parents. Raises ReminderInFlight first if a
    worker is sending one of their reminders."""
    # Lock the patient, their visits and their reminders (PostgreSQL; SQLite has one writer anyway):
    # a visit recorded, a check-in stored or a reminder claimed at this moment waits for us and
    # then finds its parent gone, instead of making this deletion fail halfway. Claims use SKIP
    # LOCKED, so a worker passes over these reminders rather than waiting.
    db.session.execute(select(Patient.id).where(Patient.id == patient_id).with_for_update())
    visits = select(Visit.id).where(Visit.patient_id == patient_id)
    db.session.execute(visits.with_for_update())
    reminders = select(Reminder.id).where(Reminder.visit_id.in_(visits))
    leases = db.session.execute(
        select(Reminder.status, Reminder.lease_until)
        .where(Reminder.visit_id.in_(visits))
        .with_for_update()
    ).all()
    if any(
        status == ReminderStatus.PLANNED and until is not None and until > now
        for status, until in leases
    ):
        raise ReminderInFlight

    deliveries = _count(delete(Delivery).where(Delivery.reminder_id.in_(reminders)))
    # Alerts carry scores, symptoms and the therapist's notes on them: they go too, with the
    # record of who was told about each (digest notices name no patient and stay).
    alerts = select(Alert.id).where(Alert.visit_id.in_(visits))
    _count(delete(AlertNotice).where(AlertNotice.alert_id.in_(alerts)))
    alert_count = _count(delete(Alert).where(Alert.visit_id.in_(visits)))
    reminder_count = _count(delete(Reminder).where(Reminder.visit_id.in_(visits)))
    # Every check-in carries both ids; either one is enough to find it, and both are covered.
    checkins = _count(
        delete(CheckIn).where((CheckIn.patient_id == patient_id) | CheckIn.visit_id.in_(visits))
    )
    subscriptions = _count(
        delete(PushSubscription).where(PushSubscription.patient_id == patient_id)
    )
    links = _count(delete(PatientLink).where(PatientLink.visit_id.in_(visits)))
    ticks = _count(delete(StretchDone).where(StretchDone.visit_id.in_(visits)))
    visit_count = _count(delete(Visit).where(Visit.patient_id == patient_id))
    _count(delete(Patient).where(Patient.id == patient_id))
    return Removed(
        visits=visit_count,
        checkins=checkins,
        reminders=reminder_count,
        deliveries=deliveries,
        alerts=alert_count,
        push_subscriptions=subscriptions,
        patient_links=links,
        stretches_done=ticks,
    )


def confirm_deletion(request: DeletionRequest, therapist_id: uuid.UUID, now: datetime) -> Removed:
    """Delete the patient's data for good, in the caller's transaction. Raises NotPending, or
    ReminderInFlight, after which the caller must roll back (the request was marked already)."""
    if request.outcome is not None:
        raise NotPending
    # The request's row is written first: that makes this the one transaction deciding it (a second
    # therapist waits, then finds it decided), and on SQLite it takes the write lock, so no worker
    # can lease one of the patient's reminders between the check below and the deletion.
    _decide(request, CONFIRMED, therapist_id, now)
    removed = _delete_patient_rows(request.patient_id, now)
    # Reasons written on the patient's earlier, declined requests are about the patient: they go
    # with the rest. The rows stay, as the record of what was asked and decided when.
    db.session.execute(
        update(DeletionRequest)
        .where(DeletionRequest.patient_id == request.patient_id)
        .values(reason=None)
        .execution_options(synchronize_session=False)
    )
    _audit_decision("deletion.confirm", request, therapist_id, now, removed.as_detail())
    return removed


@dataclass(frozen=True)
class PendingRow:
    request: DeletionRequest
    patient: Patient
    latest_visit_id: uuid.UUID | None


def pending_for_clinic(clinic_id: uuid.UUID) -> list[PendingRow]:
    """The clinic's pending requests, oldest first (the one waiting longest comes first)."""
    rows = db.session.execute(
        select(DeletionRequest, Patient)
        .join(Patient, Patient.id == DeletionRequest.patient_id)
        .where(DeletionRequest.clinic_id == clinic_id, DeletionRequest.outcome.is_(None))
        .order_by(DeletionRequest.requested_at)
    ).all()
    latest = dict(
        db.session.execute(
            select(Visit.patient_id, Visit.id)
            .where(Visit.patient_id.in_([p.id for _r, p in rows]))
            .order_by(Visit.performed_at)
        ).all()
    )  # ordered ascending, so the dict keeps each patient's newest visit
    return [PendingRow(r, p, latest.get(p.id)) for r, p in rows]


def pending_count(clinic_id: uuid.UUID) -> int:
    return (
        db.session.scalar(
            select(func.count())
            .select_from(DeletionRequest)
            .where(DeletionRequest.clinic_id == clinic_id, DeletionRequest.outcome.is_(None))
        )
        or 0
    )


def decided_for_clinic(clinic_id: uuid.UUID, limit: int = 50) -> list[DeletionRequest]:
    return list(
        db.session.scalars(
            select(DeletionRequest)
            .where(DeletionRequest.clinic_id == clinic_id, DeletionRequest.outcome.is_not(None))
            .order_by(DeletionRequest.decided_at.desc())
            .limit(limit)
        )
    )
