"""One patient's visits at a glance, for the therapist's patient page: each visit with its
check-ins counted, the newest soreness, the worst triage reported and the alerts still open.

Four queries whatever the number of visits or check-ins (the visits, then one aggregate each), so
a patient with a long history opens as fast as a new one.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import case, func, select

from .extensions import db
from .models import Alert, CheckIn, Patient, Visit


@dataclass(frozen=True)
class VisitSummary:
    visit: Visit
    checkins: int
    latest_soreness: int | None
    latest_at: datetime | None
    worst_triage: str | None  # red | amber | green; None before the first check-in
    open_alerts: int  # raised and not resolved yet


def patient_in_clinic(clinic_id: uuid.UUID, patient_id: uuid.UUID) -> Patient | None:
    """The patient, when they belong to this clinic: another clinic's id finds nothing."""
    return db.session.scalar(
        select(Patient).where(Patient.id == patient_id, Patient.clinic_id == clinic_id)
    )


def visit_summaries(patient: Patient) -> list[VisitSummary]:
    """The patient's visits, newest first, each with what its check-ins and alerts say."""
    visits = db.session.scalars(
        select(Visit).where(Visit.patient_id == patient.id).order_by(Visit.performed_at.desc())
    ).all()
    # 2 for red, 1 for amber, 0 for green: the worst one reported is the maximum.
    severity = case((CheckIn.triage == "red", 2), (CheckIn.triage == "amber", 1), else_=0)
    totals = {
        visit_id: (count, worst)
        for visit_id, count, worst in db.session.execute(
            select(CheckIn.visit_id, func.count(), func.max(severity))
            .where(CheckIn.patient_id == patient.id)
            .group_by(CheckIn.visit_id)
        )
    }
    ranked = (
        select(
            CheckIn.visit_id,
            CheckIn.soreness,
            CheckIn.recorded_at,
            func.row_number()
            .over(
                partition_by=CheckIn.visit_id,
                order_by=(CheckIn.recorded_at.desc(), CheckIn.received_at.desc()),
            )
            .label("rank"),
        )
        .where(CheckIn.patient_id == patient.id)
        .subquery()
    )
    latest = {
        visit_id: (soreness, at)
        for visit_id, soreness, at in db.session.execute(
            select(ranked.c.visit_id, ranked.c.soreness, ranked.c.recorded_at).where(
                ranked.c.rank == 1
            )
        )
    }
    open_alerts = dict(
        db.session.execute(
            select(Alert.visit_id, func.count())
            .join(Visit, Visit.id == Alert.visit_id)
            .where(Visit.patient_id == patient.id, Alert.resolved_at.is_(None))
            .group_by(Alert.visit_id)
        ).all()
    )
    levels = ("green", "amber", "red")
    summaries = []
    for visit in visits:
        count, worst = totals.get(visit.id, (0, None))
        soreness, at = latest.get(visit.id, (None, None))
        summaries.append(
            VisitSummary(
                visit=visit,
                checkins=count,
                latest_soreness=soreness,
                latest_at=at,
                worst_triage=None if worst is None else levels[worst],
                open_alerts=open_alerts.get(visit.id, 0),
            )
        )
    return summaries
