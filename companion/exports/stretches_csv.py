"""CSV of the "done today" ticks of a clinic's patients for a range of days (issue 15): one row per
tick, the patient's own day. The same file rules as the check-ins' (checkins_csv: RFC 4180, the
safe and exact forms, the audit row)."""

from __future__ import annotations

from collections.abc import Iterator

from sqlalchemy import select
from sqlalchemy.orm import joinedload

from companion.care.stretches import BY_CODE as STRETCHES
from companion.exports.checkins_csv import DateRange, Table
from companion.extensions import db
from companion.models import Clinic, StretchDone, Visit
from companion.timeutil import utc_instant

COLUMNS = (
    "visit_id",
    "patient_ref",
    "patient_name",
    "stretch",
    "stretch_title",
    "day",
    "recorded_at_utc",
)


def stretch_rows(clinic: Clinic, days: DateRange) -> Iterator[list[str]]:
    """The clinic's ticks whose (patient's) day falls within the days, oldest first."""
    ticks = db.session.scalars(
        select(StretchDone)
        .join(Visit, Visit.id == StretchDone.visit_id)
        .where(
            Visit.clinic_id == clinic.id,
            StretchDone.day >= days.first,
            StretchDone.day <= days.last,
        )
        .options(joinedload(StretchDone.visit).joinedload(Visit.patient))
        .order_by(StretchDone.day, StretchDone.recorded_at, StretchDone.id)
    )
    for tick in ticks:
        patient = tick.visit.patient
        stretch = STRETCHES.get(tick.stretch)
        yield [
            str(tick.visit_id),
            patient.ref,
            patient.display_name,
            tick.stretch,
            str(stretch.title) if stretch else "",
            tick.day.isoformat(),
            utc_instant(tick.recorded_at),
        ]


STRETCHES_DONE = Table("stretches", COLUMNS, frozenset({"visit_id", "day"}), stretch_rows)
