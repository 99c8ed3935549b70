"""Audit rows: every therapist read or change of patient data, every export, every key use that
changes data. `detail` must never carry health data (scores, symptoms, notes, names)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from flask import has_request_context, request
from flask_login import current_user

from .extensions import db
from .models import AuditEvent


def record(
    action: str,
    *,
    now: datetime,
    clinic_id: uuid.UUID | None,
    actor_type: str,
    actor_id: object | None = None,
    target_type: str | None = None,
    target_id: object | None = None,
    detail: dict[str, Any] | None = None,
) -> AuditEvent:
    """Add an audit row to the current transaction (committed with the change it describes)."""
    event = AuditEvent(
        clinic_id=clinic_id,
        at=now,
        actor_type=actor_type,
        actor_id=str(actor_id) if actor_id is not None else None,
        action=action,
        target_type=target_type,
        target_id=str(target_id) if target_id is not None else None,
        ip=request.remote_addr if has_request_context() else None,
        detail=detail,
    )
    db.session.add(event)
    return event


def by_therapist(action: str, *, now: datetime, **target: Any) -> AuditEvent:
    """An audit row for the signed-in therapist's action in their own clinic (therapist pages)."""
    return record(
        action,
        now=now,
        clinic_id=current_user.clinic_id,
        actor_type="therapist",
        actor_id=current_user.id,
        **target,
    )
