"""Recording visits and managing their patient links (domain functions, explicit `now`)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select

from companion.care import stretches
from companion.extensions import db
from companion.models import Clinic, Patient, PatientLink, Reminder, Visit
from companion.reminders.planning import replan, store_plan, supersede_earlier_visits
from companion.tokens import hash_token, new_token


@dataclass(frozen=True)
class PatientDetails:
    ref: str
    display_name: str
    timezone: str
    language: str
    # Already normalized (visits/contact.py) by the form or the API schema. The details replace
    # the stored ones: None clears the phone or e-mail, as the other details are replaced too.
    phone: str | None = None
    email: str | None = None


@dataclass(frozen=True)
class VisitDetails:
    performed_at: datetime
    regions: list[str]
    # None: the regions' default stretches (care/stretches.py); a list, even empty: exactly these.
    stretches: list[str] | None = None
    insertions: int | None = None
    electrical_stimulation: bool | None = None
    first_visit: bool | None = None
    notes: str | None = None


@dataclass(frozen=True)
class IssuedLink:
    link: PatientLink
    token: str  # shown once; only its hash is stored


def find_or_create_patient(clinic: Clinic, details: PatientDetails) -> Patient:
    """The same reference within a clinic is the same patient; their details are refreshed."""
    patient = db.session.scalar(
        select(Patient).where(Patient.clinic_id == clinic.id, Patient.ref == details.ref)
    )
    if patient is None:
        patient = Patient(clinic_id=clinic.id, ref=details.ref)
        db.session.add(patient)
    _refresh(patient, details)
    return patient


def _refresh(patient: Patient, details: PatientDetails) -> None:
    patient.display_name = details.display_name
    patient.timezone = details.timezone
    patient.language = details.language
    patient.phone = details.phone
    patient.email = details.email


# What a patient's page can change about them, in the order the form asks.
PATIENT_FIELDS = ("ref", "display_name", "timezone", "language", "phone", "email")


def ref_taken(clinic_id: uuid.UUID, ref: str, patient_id: uuid.UUID) -> bool:
    """Whether another patient of the clinic already has this reference (it names one patient)."""
    return (
        db.session.scalar(
            select(Patient.id).where(
                Patient.clinic_id == clinic_id, Patient.ref == ref, Patient.id != patient_id
            )
        )
        is not None
    )


def update_patient(patient: Patient, details: PatientDetails, now: datetime) -> list[str]:
    """Save a patient's details (the caller checked them, and that the reference is free); returns
    the names of the fields that changed.

    A new time zone moves the wall-clock moments and the quiet hours (they are local), so the
    unsent reminders of every visit of theirs are planned again (planning.replan: what was sent
    stays sent). A new language re-plans too, so nothing already planned keeps the old one.
    """
    before = {name: getattr(patient, name) for name in PATIENT_FIELDS}
    patient.ref = details.ref
    _refresh(patient, details)
    changed = [name for name in PATIENT_FIELDS if getattr(patient, name) != before[name]]
    if "timezone" in changed or "language" in changed:
        db.session.flush()
        for visit in patient.visits:
            replan(visit, now)
    return changed


def record_visit(
    clinic: Clinic,
    patient: Patient,
    details: VisitDetails,
    *,
    therapist_id: uuid.UUID | None,
    link_days: int,
    now: datetime,
) -> tuple[Visit, IssuedLink]:
    visit = Visit(
        clinic_id=clinic.id,
        patient=patient,
        therapist_id=therapist_id,
        performed_at=details.performed_at,
        regions=list(details.regions),
        stretches=chosen_stretches(details),
        insertions=details.insertions,
        electrical_stimulation=details.electrical_stimulation,
        first_visit=details.first_visit,
        notes=details.notes,
        created_at=now,
        updated_at=now,
    )
    db.session.add(visit)
    db.session.flush()
    supersede_earlier_visits(visit, now)
    store_plan(visit, now)
    db.session.flush()
    return visit, issue_link(visit, link_days=link_days, now=now)


def update_visit(
    visit: Visit, patient_details: PatientDetails, details: VisitDetails, now: datetime
) -> None:
    """Correct a recorded visit (and its patient's zone, name, language or contact details), then
    re-plan.

    Only unsent reminders move (reminders.planning.replan): whatever was already sent stays sent, so an
    edit never sends a reminder twice. The patient reference is the patient's identity and is not
    changed here.
    """
    _refresh(visit.patient, patient_details)
    visit.performed_at = details.performed_at
    visit.regions = list(details.regions)
    visit.stretches = chosen_stretches(details)
    visit.insertions = details.insertions
    visit.electrical_stimulation = details.electrical_stimulation
    visit.first_visit = details.first_visit
    visit.notes = details.notes
    visit.updated_at = now
    db.session.flush()
    replan(visit, now)
    db.session.flush()
    # A later visit time moves the last reminder: the live links must still be open for it.
    last_needed = link_expiry(visit, 0, now)
    for link in visit.links:
        if link.revoked_at is None and link.expires_at > now:
            link.expires_at = max(link.expires_at, last_needed)


def chosen_stretches(details: VisitDetails) -> list[str]:
    if details.stretches is None:
        return stretches.defaults_for(details.regions)
    return list(dict.fromkeys(details.stretches))


def link_expiry(visit: Visit, link_days: int, now: datetime) -> datetime:
    """The link lives as long as the episode: counted from the visit, never already expired on
    issue, and never ending before the visit's last reminder can be answered (the day-7 question
    is due a week after the visit and stays open a day)."""
    episode_end = max(visit.performed_at, now) + timedelta(days=link_days)
    last_reminder = db.session.scalar(
        select(func.max(Reminder.expires_at)).where(Reminder.visit_id == visit.id)
    )
    return max(episode_end, last_reminder) if last_reminder else episode_end


def revoke_links(visit: Visit, now: datetime) -> None:
    """End every link of the visit; a patient holding one is locked out at their next request."""
    for link in visit.links:
        if link.revoked_at is None:
            link.revoked_at = now


def issue_link(visit: Visit, *, link_days: int, now: datetime) -> IssuedLink:
    """Revoke the visit's live links and issue a fresh one."""
    revoke_links(visit, now)
    token = new_token()
    link = PatientLink(
        visit=visit,
        token_hash=hash_token(token),
        created_at=now,
        expires_at=link_expiry(visit, link_days, now),
    )
    db.session.add(link)
    db.session.flush()
    return IssuedLink(link, token)


def link_for_token(token: str) -> PatientLink | None:
    """The link a token names, live or not (None: a token we never issued)."""
    return db.session.scalar(select(PatientLink).where(PatientLink.token_hash == hash_token(token)))


def redeem_link(token: str, now: datetime) -> PatientLink | None:
    """The live link for a token, or None (unknown, revoked or expired: indistinguishable)."""
    link = db.session.scalar(select(PatientLink).where(PatientLink.token_hash == hash_token(token)))
    if link is None or not link.usable(now):
        return None
    return link
