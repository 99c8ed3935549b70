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
from sqlalchemy import select

from companion.extensions import db
from companion.models import ApiKey, AuditEvent, Patient, Therapist, TherapistDevice

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


def trail(
    clinic_id: uuid.UUID, before: datetime | None, limit: int
) -> tuple[list[AuditEvent], bool]:
    """The clinic's audit rows, newest first: up to `limit` older than `before` (all when None),
    and whether there are more."""
    query = select(AuditEvent).where(AuditEvent.clinic_id == clinic_id)
    if before is not None:
        query = query.where(AuditEvent.at < before)
    events = db.session.scalars(
        query.order_by(AuditEvent.at.desc(), AuditEvent.id.desc()).limit(limit + 1)
    ).all()
    return list(events[:limit]), len(events) > limit


def key_prefixes(clinic_id: uuid.UUID) -> dict[uuid.UUID, str]:
    """How the clinic's API keys are named on its audit page: their first characters."""
    return dict(
        db.session.execute(
            select(ApiKey.id, ApiKey.prefix).where(ApiKey.clinic_id == clinic_id)
        ).all()
    )
