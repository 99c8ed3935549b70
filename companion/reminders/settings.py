"""What a patient controls about their own reminders (the Reminders page): their quiet hours, and what
the page shows about them. Stopping and resuming ("I'm fully recovered") are planning.py's
`mark_recovered` and `resume_reminders`; this module only adds the patient's side of quiet hours.

Quiet hours belong to the patient, not to one visit, so changing them re-plans every visit of the
patient: a reminder of an earlier visit that is still ahead must not fire in the new quiet hours.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time

from sqlalchemy import select

from companion.extensions import db
from companion.models import Reminder, ReminderStatus, Visit
from companion.reminders.planning import QuietHours, quiet_hours_for, replan


@dataclass(frozen=True)
class ReminderSettings:
    quiet: QuietHours
    own_quiet_hours: bool  # False: the clinic's default applies
    recovered_at: datetime | None  # the patient said "fully recovered": reminders are stopped
    upcoming: list[datetime]  # due times (UTC) of this visit's reminders still to be sent


def settings_for(visit: Visit, now: datetime) -> ReminderSettings:
    patient = visit.patient
    upcoming = list(
        db.session.scalars(
            select(Reminder.due_at)
            .where(
                Reminder.visit_id == visit.id,
                Reminder.status == ReminderStatus.PLANNED,
                Reminder.expires_at > now,
            )
            .order_by(Reminder.due_at)
        )
    )
    return ReminderSettings(
        quiet=quiet_hours_for(patient),
        own_quiet_hours=patient.quiet_start is not None and patient.quiet_end is not None,
        recovered_at=visit.recovered_at,
        upcoming=upcoming,
    )


def set_quiet_hours(visit: Visit, start: time | None, end: time | None, now: datetime) -> None:
    """Save the patient's own quiet hours (None, None: back to the clinic's) and re-plan.

    The caller has validated them (both or neither, different, at most MAX_QUIET long).
    """
    if (start is None) != (end is None):
        raise ValueError("quiet hours need both a start and an end, or neither")
    patient = visit.patient
    patient.quiet_start = start
    patient.quiet_end = end
    db.session.flush()
    # Only unsent reminders move (planning.replan); a recovered visit stays stopped and picks the
    # new hours up if the patient starts its reminders again.
    for each in patient.visits:
        replan(each, now)
