"""A clinic's alerts, open or resolved, with their escalation steps: what a clinic system reads
from `GET /api/v1/alerts` to follow red flags in its own tools."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Literal

from sqlalchemy import select

from companion.alerts.steps import Step, steps_of
from companion.extensions import db
from companion.models import Alert, Patient, Visit

Status = Literal["open", "resolved"]


@dataclass(frozen=True)
class ListedAlert:
    alert: Alert
    patient_ref: str
    steps: list[Step]


def reason_code(reason: dict[str, object]) -> str:
    """A stable code for one stored reason, as check-ins' triage_reasons spell them
    ("symptom:breathless", "soreness:rising"), and "missing:24h" for a check-in that did not come."""
    code = reason.get("code")
    if code == "symptom":
        return f"symptom:{reason.get('symptom')}"
    if code == "missing":
        return f"missing:{reason.get('by_hours')}h"
    return f"soreness:{code}"


def clinic_alerts(clinic_id: uuid.UUID, status: Status, limit: int) -> list[ListedAlert]:
    """The clinic's open (not resolved) or resolved alerts, newest first, at most `limit`. Two
    queries: the alerts with their patients' references, then every step of them."""
    rows = db.session.execute(
        select(Alert, Patient.ref)
        .join(Visit, Visit.id == Alert.visit_id)
        .join(Patient, Patient.id == Visit.patient_id)
        .where(
            Alert.clinic_id == clinic_id,
            Visit.clinic_id == clinic_id,
            Alert.resolved_at.is_(None) if status == "open" else Alert.resolved_at.is_not(None),
        )
        .order_by(Alert.raised_at.desc(), Alert.id)
        .limit(limit)
    ).all()
    steps = steps_of([alert.id for alert, _ref in rows])
    return [ListedAlert(alert, ref, steps[alert.id]) for alert, ref in rows]
