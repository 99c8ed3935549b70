"""The alerts of a visit or of a patient, handled or not, for the visit and patient pages.

Alerts are never deleted when handled (models.Alert), and the pages keep listing them: a resolved
red flag leaves a visible trace of who acknowledged and resolved it, when, and the note (issue 12).
Two queries (the alerts, then their escalation steps), scoped to the clinic, however many visits
and alerts.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select

from companion.alerts.queue import marked_reasons
from companion.alerts.steps import Step, steps_of
from companion.extensions import db
from companion.models import Alert, Visit


@dataclass(frozen=True)
class AlertRecord:
    alert: Alert
    visit_performed_at: datetime  # the patient page says which visit each alert belongs to
    steps: list[Step] = field(default_factory=list)  # who was told, when, how (alerts/steps.py)

    @property
    def marked_reasons(self) -> list[tuple[str, dict[str, Any]]]:
        """(level, reason), red first."""
        return marked_reasons([self.alert])


def alert_records(
    clinic_id: uuid.UUID,
    *,
    visit_id: uuid.UUID | None = None,
    patient_id: uuid.UUID | None = None,
) -> list[AlertRecord]:
    """Every alert of one visit, or of every visit of one patient, newest first. Another clinic's
    visit or patient finds nothing."""
    if (visit_id is None) == (patient_id is None):
        raise ValueError("give a visit or a patient")
    query = (
        select(Alert, Visit.performed_at)
        .join(Visit, Visit.id == Alert.visit_id)
        .where(Alert.clinic_id == clinic_id, Visit.clinic_id == clinic_id)
        .order_by(Alert.raised_at.desc(), Alert.id)
    )
    if visit_id is not None:
        query = query.where(Visit.id == visit_id)
    else:
        query = query.where(Visit.patient_id == patient_id)
    rows = db.session.execute(query).all()
    steps = steps_of([alert.id for alert, _at in rows])  # one more query
    return [AlertRecord(alert, performed_at, steps[alert.id]) for alert, performed_at in rows]
