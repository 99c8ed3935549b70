"""The patient's "done today" ticks for the stretches their therapist chose (issue 15).

Only the tick is kept (which stretch, which day in the patient's zone, when): no count, no
duration, nothing else. The patient's day decides what "today" is, so a tick at 23:30 in Madrid
counts for that evening, whatever the server's zone. Domain functions take an explicit `now`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError

from companion.care.stretches import BY_CODE as STRETCHES
from companion.extensions import db
from companion.models import StretchDone, Visit
from companion.timeutil import to_local


class NotChosen(LookupError):
    """The stretch is not one the therapist chose for this visit."""


def patient_day(visit: Visit, moment: datetime) -> date:
    return to_local(moment, visit.patient.timezone).date()


def _chosen(visit: Visit, code: str) -> str:
    if code not in visit.stretches or code not in STRETCHES:
        raise NotChosen(code)
    return code


def mark_done(visit: Visit, code: str, now: datetime) -> None:
    """Tick the stretch for the patient's today. Ticking twice (two taps, a resend) keeps one."""
    day = patient_day(visit, now)
    stretch = _chosen(visit, code)
    exists = select(StretchDone.id).where(
        StretchDone.visit_id == visit.id, StretchDone.stretch == stretch, StretchDone.day == day
    )
    if db.session.scalar(exists) is not None:
        return
    try:
        # A savepoint: a tick from another tab at the same moment hits the unique constraint,
        # which means "done" too, and must not undo the rest of the transaction.
        with db.session.begin_nested():
            db.session.add(
                StretchDone(visit_id=visit.id, stretch=stretch, day=day, recorded_at=now)
            )
    except IntegrityError:
        pass


def undo(visit: Visit, code: str, now: datetime) -> None:
    """Take back today's tick (a slip of the finger); earlier days stay as they were."""
    stretch = _chosen(visit, code)
    db.session.execute(
        delete(StretchDone).where(
            StretchDone.visit_id == visit.id,
            StretchDone.stretch == stretch,
            StretchDone.day == patient_day(visit, now),
        )
    )


def done_today(visit: Visit, now: datetime) -> frozenset[str]:
    day = patient_day(visit, now)
    return frozenset(
        db.session.scalars(
            select(StretchDone.stretch).where(
                StretchDone.visit_id == visit.id, StretchDone.day == day
            )
        )
    )


@dataclass(frozen=True)
class Adherence:
    """How one chosen stretch went: on how many of the days since the visit it was ticked."""

    code: str
    title: object
    days_done: int
    days: int  # the patient's days from the visit's day to today, both included
    last_done: date | None
    first_day: date  # the visit's day, in the patient's zone


def adherence(visit: Visit, now: datetime) -> list[Adherence]:
    """One row per chosen stretch, in the therapist's order: one query for the whole visit."""
    rows = db.session.execute(
        select(StretchDone.stretch, func.count(), func.max(StretchDone.day))
        .where(StretchDone.visit_id == visit.id)
        .group_by(StretchDone.stretch)
    ).all()
    ticks = {code: (count, last) for code, count, last in rows}
    first_day = patient_day(visit, visit.performed_at)
    days = max(1, (patient_day(visit, now) - first_day).days + 1)
    result = []
    for code in visit.stretches:
        if code not in STRETCHES:
            continue
        count, last = ticks.get(code, (0, None))
        result.append(Adherence(code, STRETCHES[code].title, count, days, last, first_day))
    return result
