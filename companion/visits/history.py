"""One patient's visits at a glance, for the therapist's patient page: each visit with its
check-ins counted, the newest soreness, the worst triage reported and the alerts still open.

Four queries whatever the number of visits or check-ins (the visits, then one aggregate each), so
a patient with a long history opens as fast as a new one.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import case, func, or_, select
from sqlalchemy.orm import selectinload

from companion.alerts.records import AlertRecord, alert_records
from companion.extensions import db
from companion.models import Alert, CheckIn, Patient, Reminder, Visit


@dataclass(frozen=True)
class VisitSummary:
    visit: Visit
    checkins: int
    latest_soreness: int | None
    latest_at: datetime | None
    worst_triage: str | None  # red | amber | green; None before the first check-in
    open_alerts: int  # raised and not resolved yet


def visit_in_clinic(clinic_id: uuid.UUID, visit_id: uuid.UUID) -> Visit | None:
    """The visit, when it belongs to this clinic: another clinic's id finds nothing."""
    return db.session.scalar(
        select(Visit).where(Visit.id == visit_id, Visit.clinic_id == clinic_id)
    )


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


def patient_list(
    clinic_id: uuid.UUID, search: str = ""
) -> tuple[list[Patient], dict[uuid.UUID, CheckIn]]:
    """The clinic's patients by name (those whose reference or name contains `search`, when
    given) with their visits, and each one's newest check-in by patient id: two queries (and the
    visits' one) however many patients, no N+1."""
    ranked = (
        select(
            CheckIn.id,
            func.row_number()
            .over(
                partition_by=CheckIn.patient_id,
                order_by=(CheckIn.recorded_at.desc(), CheckIn.received_at.desc()),
            )
            .label("rank"),
        )
        .join(Patient, Patient.id == CheckIn.patient_id)
        .where(Patient.clinic_id == clinic_id)
        .subquery()
    )
    latest = select(CheckIn).join(ranked, ranked.c.id == CheckIn.id).where(ranked.c.rank == 1)
    latest_by_patient = {c.patient_id: c for c in db.session.scalars(latest)}
    query = select(Patient).where(Patient.clinic_id == clinic_id)
    if search:
        query = query.where(matches(search, Patient.ref, Patient.display_name))
    rows = db.session.scalars(
        query.options(selectinload(Patient.visits)).order_by(Patient.display_name)
    ).all()
    return list(rows), latest_by_patient


def matches(text: str, *columns: Any) -> Any:
    """Case-insensitive "contains" on any of the columns; % and _ typed by the user are literal."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    pattern = f"%{escaped}%"
    return or_(*(func.lower(c).like(func.lower(pattern), escape="\\") for c in columns))


def visit_record(visit: Visit) -> tuple[list[CheckIn], list[Reminder], list[AlertRecord]]:
    """What the visit page shows under the visit: its check-ins (newest first), its reminders with
    every delivery attempt (in due order) and its alerts, handled or not (newest first)."""
    checkins = db.session.scalars(
        select(CheckIn).where(CheckIn.visit_id == visit.id).order_by(CheckIn.recorded_at.desc())
    ).all()
    reminders = db.session.scalars(
        select(Reminder)
        .where(Reminder.visit_id == visit.id)
        .options(selectinload(Reminder.deliveries))
        .order_by(Reminder.due_at)
    ).all()
    alerts = alert_records(visit.clinic_id, visit_id=visit.id)
    return list(checkins), list(reminders), alerts


def checkins_of(visit: Visit) -> list[CheckIn]:
    """The visit's check-ins, oldest first (the FHIR export)."""
    return list(
        db.session.scalars(
            select(CheckIn).where(CheckIn.visit_id == visit.id).order_by(CheckIn.recorded_at)
        )
    )


def reminders_of(visit: Visit) -> list[Reminder]:
    """The visit's reminders in due order (the API's answer to a corrected visit)."""
    return list(
        db.session.scalars(
            select(Reminder).where(Reminder.visit_id == visit.id).order_by(Reminder.due_at)
        )
    )


def names_of(clinic_id: uuid.UUID, patient_ids: list[uuid.UUID]) -> dict[uuid.UUID, str]:
    """The display names of those of these patients who are still in the clinic."""
    return dict(
        db.session.execute(
            select(Patient.id, Patient.display_name).where(
                Patient.clinic_id == clinic_id, Patient.id.in_(patient_ids)
            )
        ).all()
    )
