"""Audit rows: every therapist read or change of patient data, every export, every key use that
changes data. `detail` must never carry health data (scores, symptoms, notes, names).

One way to write them: `record(action, actor, target, now=...)`. The actor says who acted and in
which clinic (the row's clinic); `current_actor()` takes it from the request: the API key the
request authenticated with, else the signed-in therapist.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from flask import g, has_request_context, request
from flask_login import current_user
from sqlalchemy import and_, or_, select

from companion.extensions import db
from companion.models import (
    Alert,
    ApiKey,
    AuditEvent,
    Patient,
    Therapist,
    TherapistDevice,
    Visit,
)

# Who can act (AuditEvent.actor_type).
THERAPIST: Final = "therapist"
API_KEY: Final = "api_key"
PATIENT: Final = "patient"
DEVICE: Final = "device"  # a therapist's browser renewing its own push subscription
SYSTEM: Final = "system"  # the app itself (a worker forgetting a device its push service dropped)

# What was acted on: (target type, id), e.g. ("visit", visit.id).
Target = tuple[str, object]


@dataclass(frozen=True)
class Actor:
    type: str
    id: object | None
    clinic_id: uuid.UUID | None

    @classmethod
    def therapist(cls, therapist: Therapist) -> Actor:
        return cls(THERAPIST, therapist.id, therapist.clinic_id)

    @classmethod
    def api_key(cls, key: ApiKey) -> Actor:
        return cls(API_KEY, key.id, key.clinic_id)

    @classmethod
    def patient(cls, patient: Patient) -> Actor:
        return cls(PATIENT, patient.id, patient.clinic_id)

    @classmethod
    def device(cls, device: TherapistDevice) -> Actor:
        return cls(DEVICE, device.id, device.therapist.clinic_id)

    @classmethod
    def system(cls, clinic_id: uuid.UUID | None) -> Actor:
        return cls(SYSTEM, None, clinic_id)


def current_actor() -> Actor:
    """Who the current request acts for: its API key (set by api.views.require_clinic_key), else
    the signed-in therapist. A request with neither has nobody to audit: that is a bug."""
    key = g.get("api_key")
    if key is not None:
        return Actor.api_key(key)
    if current_user.is_authenticated:
        return Actor.therapist(current_user)
    raise RuntimeError("no API key or signed-in therapist to audit this request for")


def record(
    action: str,
    actor: Actor,
    target: Target | None = None,
    *,
    now: datetime,
    detail: dict[str, Any] | None = None,
) -> AuditEvent:
    """Add an audit row to the current transaction (committed with the change it describes)."""
    event = AuditEvent(
        clinic_id=actor.clinic_id,
        at=now,
        actor_type=actor.type,
        actor_id=str(actor.id) if actor.id is not None else None,
        action=action,
        target_type=target[0] if target else None,
        target_id=str(target[1]) if target else None,
        ip=request.remote_addr if has_request_context() else None,
        detail=detail,
    )
    db.session.add(event)
    return event


@dataclass(frozen=True)
class TrailFilter:
    """Which rows of a clinic's trail to show: one action, one actor, a span of time [start, end)."""

    action: str | None = None
    actor_type: str | None = None
    # With actor_type: one therapist or key; None: every actor of that type.
    actor_id: str | None = None
    start: datetime | None = None
    end: datetime | None = None


# A position in the trail, newest first: (at, id) of the row a page starts after or before. The id
# breaks ties between rows written at the same moment (one request often writes several).
Cursor = tuple[datetime, uuid.UUID]


def trail(
    clinic_id: uuid.UUID,
    before: datetime | Cursor | None,
    limit: int,
    where: TrailFilter | None = None,
    *,
    after: Cursor | None = None,
) -> tuple[list[AuditEvent], bool]:
    """The clinic's audit rows that match `where`, newest first: up to `limit` older than `before`
    (or, with `after`, the `limit` just newer than it), and whether there are more that way."""
    where = where or TrailFilter()
    query = select(AuditEvent).where(AuditEvent.clinic_id == clinic_id)
    if where.action is not None:
        query = query.where(AuditEvent.action == where.action)
    if where.actor_type is not None:
        query = query.where(AuditEvent.actor_type == where.actor_type)
        if where.actor_id is not None:
            query = query.where(AuditEvent.actor_id == where.actor_id)
    if where.start is not None:
        query = query.where(AuditEvent.at >= where.start)
    if where.end is not None:
        query = query.where(AuditEvent.at < where.end)
    if isinstance(before, datetime):
        query = query.where(AuditEvent.at < before)
    elif before is not None:
        at, row = before
        query = query.where(or_(AuditEvent.at < at, and_(AuditEvent.at == at, AuditEvent.id < row)))
    if after is not None:
        at, row = after
        query = query.where(or_(AuditEvent.at > at, and_(AuditEvent.at == at, AuditEvent.id > row)))
        events = db.session.scalars(
            query.order_by(AuditEvent.at.asc(), AuditEvent.id.asc()).limit(limit + 1)
        ).all()
        return list(reversed(events[:limit])), len(events) > limit
    events = db.session.scalars(
        query.order_by(AuditEvent.at.desc(), AuditEvent.id.desc()).limit(limit + 1)
    ).all()
    return list(events[:limit]), len(events) > limit


def kinds_in(clinic_id: uuid.UUID) -> tuple[set[str], set[str]]:
    """The actions and the actor types that occur in the clinic's trail (what its filters offer),
    in one query."""
    rows = db.session.execute(
        select(AuditEvent.action, AuditEvent.actor_type)
        .where(AuditEvent.clinic_id == clinic_id)
        .distinct()
    ).all()
    return {action for action, _ in rows}, {actor for _, actor in rows}


@dataclass(frozen=True)
class KeyName:
    name: str | None
    prefix: str


def api_keys(clinic_id: uuid.UUID) -> dict[uuid.UUID, KeyName]:
    """The clinic's API keys (revoked ones too: they stay on the trail), by id."""
    rows = db.session.execute(
        select(ApiKey.id, ApiKey.name, ApiKey.prefix).where(ApiKey.clinic_id == clinic_id)
    )
    return {key_id: KeyName(name, prefix) for key_id, name, prefix in rows}


@dataclass(frozen=True)
class VisitName:
    """A visit as the trail names it: its patient's reference and when it was done."""

    id: uuid.UUID
    performed_at: datetime
    patient_id: uuid.UUID
    patient_ref: str


@dataclass(frozen=True)
class AlertName:
    level: str
    visit: VisitName


@dataclass(frozen=True)
class DeviceName:
    therapist_id: uuid.UUID
    browser: str | None
    platform: str | None


@dataclass
class Subjects:
    """What a page of audit rows is about (targets, and patients and devices that acted), as far
    as it still exists in the clinic: a deleted patient's rows find nothing here."""

    patients: dict[str, str]  # id (as the rows hold it) -> the clinic's reference
    visits: dict[str, VisitName]
    alerts: dict[str, AlertName]
    devices: dict[str, DeviceName]


def _ids(raw: set[str]) -> list[uuid.UUID]:
    out = []
    for value in raw:
        try:
            out.append(uuid.UUID(value))
        except ValueError:  # not an id of ours: names nothing
            continue
    return out


def subjects(clinic_id: uuid.UUID, events: list[AuditEvent]) -> Subjects:
    """Load what these rows are about in one query per kind (at most four, whatever the page
    holds), never one per row."""

    def wanted(kind: str) -> set[str]:
        ids = {e.target_id for e in events if e.target_type == kind and e.target_id}
        ids |= {e.actor_id for e in events if e.actor_type == ACTOR_KINDS.get(kind) and e.actor_id}
        return ids

    found = Subjects({}, {}, {}, {})
    if ids := _ids(wanted("patient")):
        found.patients = {
            str(pid): ref
            for pid, ref in db.session.execute(
                select(Patient.id, Patient.ref).where(
                    Patient.clinic_id == clinic_id, Patient.id.in_(ids)
                )
            )
        }
    if ids := _ids(wanted("visit")):
        found.visits = {
            str(v.id): v
            for v in (
                VisitName(*row)
                for row in db.session.execute(
                    select(Visit.id, Visit.performed_at, Patient.id, Patient.ref)
                    .join(Patient, Patient.id == Visit.patient_id)
                    .where(Visit.clinic_id == clinic_id, Visit.id.in_(ids))
                )
            )
        }
    if ids := _ids(wanted("alert")):
        found.alerts = {
            str(alert_id): AlertName(level, VisitName(visit_id, performed, patient_id, ref))
            for alert_id, level, visit_id, performed, patient_id, ref in db.session.execute(
                select(Alert.id, Alert.level, Visit.id, Visit.performed_at, Patient.id, Patient.ref)
                .join(Visit, Visit.id == Alert.visit_id)
                .join(Patient, Patient.id == Visit.patient_id)
                .where(Alert.clinic_id == clinic_id, Alert.id.in_(ids))
            )
        }
    if ids := _ids(wanted("therapist_device")):
        found.devices = {
            str(device_id): DeviceName(therapist_id, browser, platform)
            for device_id, therapist_id, browser, platform in db.session.execute(
                select(
                    TherapistDevice.id,
                    TherapistDevice.therapist_id,
                    TherapistDevice.browser,
                    TherapistDevice.platform,
                )
                .join(Therapist, Therapist.id == TherapistDevice.therapist_id)
                .where(Therapist.clinic_id == clinic_id, TherapistDevice.id.in_(ids))
            )
        }
    return found


# The actor type whose ids are rows of a target kind (a patient acts as "patient", a device as
# "device"): their names come from the same query.
ACTOR_KINDS: Final = {"patient": PATIENT, "therapist_device": DEVICE}
