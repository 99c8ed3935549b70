"""Planning a visit's reminders: concrete UTC moments from the clinical defaults (clinical.md,
"Reminder moments"), in the patient's IANA zone. The first step of the reminder pipeline
(design.md); claiming and sending are in reminders/dispatch.py.

Elapsed moments ("visit + 2 h") are counted in real hours, so a clock change does not stretch them;
wall-clock moments ("09:00 the morning after", "the same time a week later") are found on the local
calendar and converted with `wall_clock_to_utc`, so they stay at 09:00 on both sides of a change.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, or_, select, update

from companion.extensions import db
from companion.models import Clinic, Patient, Reminder, ReminderStatus, Visit
from companion.timeutil import after_quiet_hours, wall_clock_to_utc

# The kinds, in the order of the episode. Their meaning (clinical.md):
AFTER_2H = "after_2h"  # gentle movement, drink as usual, optional quick check-in
EVENING = "evening"  # visit + 6 h, no later than 21:00: heat, stretches, check-in (6-12 h point)
NEXT_MORNING = "next_morning"  # 09:00 the morning after: check-in (about the 24 h point)
AFTER_48H = "after_48h"  # check-in
AFTER_72H = "after_72h"  # check-in only if still above the envelope, or no check-in came
DAY_7 = "day_7"  # how is your usual pain (global impression of change)
KINDS = (AFTER_2H, EVENING, NEXT_MORNING, AFTER_48H, AFTER_72H, DAY_7)

# Same-day nudges: deferred by quiet hours into the next day, they are dropped, not sent late.
SAME_DAY_ONLY = frozenset({AFTER_2H, EVENING})

EVENING_LATEST = time(21, 0)
MORNING_AT = time(9, 0)
# Reminders that land this close together after deferral become one (clinical.md).
MERGE_WITHIN = timedelta(hours=2)
# How long after its due time a reminder is still worth sending: a "drink as usual" nudge is
# worthless the next day. The 72 h and day-7 questions keep longer.
VALID_FOR: dict[str, timedelta] = {
    AFTER_2H: timedelta(hours=3),
    EVENING: timedelta(hours=3),
    NEXT_MORNING: timedelta(hours=6),
    AFTER_48H: timedelta(hours=12),
    AFTER_72H: timedelta(hours=12),
    DAY_7: timedelta(hours=24),
}


# A check-in answers a reminder due this soon after it (clinical.md: "a check-in made shortly before
# a reminder answers it"), and any still unsent one that was due before it.
ANSWERS_WITHIN = timedelta(hours=2)


@dataclass(frozen=True)
class QuietHours:
    start: time = time(21, 30)  # clinical.md default: 21:30-08:00 local
    end: time = time(8, 0)


# Quiet hours are for sleep. Longer ones would push every reminder of the day into one short window
# (and merge them, clinical.md), so a slip of the thumb (08:00 to 07:00) cannot silence a whole day.
MAX_QUIET_HOURS = 14
MAX_QUIET = timedelta(hours=MAX_QUIET_HOURS)


def quiet_length(start: time, end: time) -> timedelta:
    """How long quiet hours from `start` to `end` last; they may wrap midnight (21:30 to 08:00)."""
    length = datetime.combine(date.min, end) - datetime.combine(date.min, start)
    return length if length >= timedelta(0) else length + timedelta(days=1)


def parse_quiet_hours(text: str) -> QuietHours:
    """ "21:30-08:00" -> QuietHours; "off" means none. Raises ValueError otherwise, also for
    quiet hours longer than MAX_QUIET."""
    if text.strip().lower() == "off":
        return QuietHours(time(0, 0), time(0, 0))
    start, sep, end = text.partition("-")
    if not sep:
        raise ValueError("quiet hours look like 21:30-08:00")
    quiet = QuietHours(time.fromisoformat(start.strip()), time.fromisoformat(end.strip()))
    if quiet_length(quiet.start, quiet.end) > MAX_QUIET:
        raise ValueError(f"quiet hours of at most {MAX_QUIET_HOURS} hours")
    return quiet


def replan_clinic_default(clinic: Clinic, now: datetime) -> int:
    """After the clinic's default quiet hours change: re-plan the open visits of its patients who
    use that default. Returns how many visits were re-planned."""
    visits = db.session.scalars(
        select(Visit)
        .join(Patient, Patient.id == Visit.patient_id)
        .where(
            Visit.clinic_id == clinic.id,
            Patient.quiet_start.is_(None),
            Visit.id.in_(
                select(Reminder.visit_id).where(Reminder.status == ReminderStatus.PLANNED)
            ),
        )
    ).all()
    for visit in visits:
        replan(visit, now, QuietHours(clinic.quiet_start, clinic.quiet_end))
    return len(visits)


def quiet_hours_for(patient: Patient, clinic: Clinic | None = None) -> QuietHours:
    """The patient's own quiet hours if they set them, else their clinic's default."""
    if patient.quiet_start is not None and patient.quiet_end is not None:
        return QuietHours(patient.quiet_start, patient.quiet_end)
    clinic = clinic or db.session.get(Clinic, patient.clinic_id)
    if clinic is None:
        return QuietHours()
    return QuietHours(clinic.quiet_start, clinic.quiet_end)


@dataclass(frozen=True)
class PlannedReminder:
    kind: str
    due_at: datetime  # UTC, after quiet-hours deferral
    expires_at: datetime  # UTC
    conditional: bool = False  # decided when it falls due (the 72 h reminder)


def _moments(performed_at: datetime, zone: str) -> list[tuple[str, datetime]]:
    tz = ZoneInfo(zone)
    local_visit = performed_at.astimezone(tz)
    moments: list[tuple[str, datetime]] = [(AFTER_2H, performed_at + timedelta(hours=2))]

    six = performed_at + timedelta(hours=6)
    latest = wall_clock_to_utc(local_visit.date(), EVENING_LATEST, zone)
    evening = min(six, latest)
    # A late visit has no evening left: its 2 h nudge is the evening one.
    if evening > performed_at + timedelta(hours=2):
        moments.append((EVENING, evening))

    morning = wall_clock_to_utc(local_visit.date() + timedelta(days=1), MORNING_AT, zone)
    moments.append((NEXT_MORNING, morning))
    moments.append((AFTER_48H, performed_at + timedelta(hours=48)))
    moments.append((AFTER_72H, performed_at + timedelta(hours=72)))
    week = wall_clock_to_utc(
        local_visit.date() + timedelta(days=7), local_visit.time().replace(tzinfo=None), zone
    )
    moments.append((DAY_7, week))
    return moments


def plan_reminders(
    performed_at: datetime, zone: str, quiet: QuietHours | None = None
) -> list[PlannedReminder]:
    """The reminders for a visit, earliest first, each at most once."""
    quiet = quiet or QuietHours()
    tz = ZoneInfo(zone)
    planned: list[PlannedReminder] = []
    for kind, moment in _moments(performed_at, zone):
        due = after_quiet_hours(moment, zone, quiet.start, quiet.end)
        if (
            kind in SAME_DAY_ONLY
            and due > moment
            and due.astimezone(tz).date() > moment.astimezone(tz).date()
        ):
            # clinical.md: "the 2 h nudge is not sent the next day". Quiet hours pushed this one
            # into tomorrow, where the morning check-in already asks how the patient is.
            continue
        planned.append(
            PlannedReminder(kind, due, due + VALID_FOR[kind], conditional=kind == AFTER_72H)
        )
    planned.sort(key=lambda r: (r.due_at, KINDS.index(r.kind)))
    merged: list[PlannedReminder] = []
    for reminder in planned:
        # "Within 2 hours of each other" (clinical.md): exactly 2 hours apart is within.
        if merged and reminder.due_at - merged[-1].due_at <= MERGE_WITHIN:
            # Keep the later purpose (it asks for the check-in that matters more) at the earlier
            # time, so the patient is nudged once, as soon as it is allowed, and never twice.
            earlier = merged[-1]
            merged[-1] = replace(
                reminder,
                due_at=earlier.due_at,
                expires_at=max(earlier.expires_at, reminder.expires_at),
            )
            continue
        merged.append(reminder)
    return merged


def _plan_for(visit: Visit, quiet: QuietHours | None) -> list[PlannedReminder]:
    patient = visit.patient
    return plan_reminders(visit.performed_at, patient.timezone, quiet or quiet_hours_for(patient))


def store_plan(visit: Visit, now: datetime, quiet: QuietHours | None = None) -> list[Reminder]:
    """Plan a newly recorded visit's reminders and add them as rows, one per (visit, kind).

    A visit recorded late (in the clinic system days after) gets only the reminders whose moment has
    not passed: expired nudges are never stored, so they can never be sent.
    """
    rows = [
        Reminder(
            visit_id=visit.id,
            kind=planned.kind,
            due_at=planned.due_at,
            expires_at=planned.expires_at,
            status=ReminderStatus.PLANNED,
            created_at=now,
        )
        for planned in _plan_for(visit, quiet)
        if planned.expires_at > now
    ]
    db.session.add_all(rows)
    return rows


def replan(visit: Visit, now: datetime, quiet: QuietHours | None = None) -> None:
    """Plan again after the visit (its time, the patient's zone or quiet hours) changed.

    Only unsent reminders move: a row that was sent, answered or ended stays as it is, so an edit
    never sends anything twice. Rows keep their id (and so their calendar UID and push tag), so a
    calendar that subscribed sees the event move rather than a second one appear. A row being sent
    right now (leased) is left to its worker.
    """
    if visit.recovered_at is not None or _superseded(visit):
        return
    rows = {
        r.kind: r for r in db.session.scalars(select(Reminder).where(Reminder.visit_id == visit.id))
    }
    wanted = {p.kind: p for p in _plan_for(visit, quiet)}
    for kind, row in rows.items():
        if row.lease_until is not None and row.lease_until > now:
            continue  # a worker is sending it right now
        if row.last_error in ENDED_BY_REPLAN and row.sent_at is None and kind in wanted:
            # Ended only because of the old details (a mistyped time): the new plan decides.
            row.status, row.finished_at, row.last_error = ReminderStatus.PLANNED, None, None
            row.attempts, row.claim_token = 0, None
        if row.status != ReminderStatus.PLANNED:
            continue
        planned = wanted.get(kind)
        if planned is None:
            _end(row, ReminderStatus.CANCELLED, NO_LONGER_PLANNED, now)
        elif planned.expires_at <= now:
            _end(row, ReminderStatus.EXPIRED, PASSED_WHEN_CHANGED, now)
        else:
            row.due_at = planned.due_at
            row.expires_at = planned.expires_at
            row.next_attempt_at = None
    for kind, planned in wanted.items():
        if kind not in rows and planned.expires_at > now:
            db.session.add(
                Reminder(
                    visit_id=visit.id,
                    kind=kind,
                    due_at=planned.due_at,
                    expires_at=planned.expires_at,
                    status=ReminderStatus.PLANNED,
                    created_at=now,
                )
            )


# Why a re-plan ended a row. Only these come back when the visit is corrected again (a mistyped
# time put right); a reminder cancelled for another reason (recovered, a newer visit, a revoked
# link) stays cancelled.
NO_LONGER_PLANNED = "no longer planned after the visit changed"
PASSED_WHEN_CHANGED = "its moment had passed when the visit changed"
ENDED_BY_REPLAN = frozenset({NO_LONGER_PLANNED, PASSED_WHEN_CHANGED})


def _superseded(visit: Visit) -> bool:
    """A later visit of the same patient has taken over the reminders (supersede_earlier_visits)."""
    later = select(Visit.id).where(
        Visit.patient_id == visit.patient_id,
        Visit.id != visit.id,
        Visit.performed_at > visit.performed_at,
    )
    return db.session.scalar(select(later.exists())) or False


def _end(row: Reminder, status: str, why: str, now: datetime) -> None:
    row.status = status
    row.last_error = why
    row.finished_at = now
    row.lease_until = None


def answer_reminders(
    visit: Visit, recorded_at: datetime, now: datetime, *, usual_pain_given: bool
) -> int:
    """A check-in answers the unsent reminders of its visit due up to ANSWERS_WITHIN after it.

    "Due" is either time a reminder has: its moment (visit + 48 h) or the time it is sent at
    (`due_at`), which quiet hours may have moved hours later (to 08:00) and a merge earlier. A
    check-in at 49 h answers the 48 h question even while its nudge waits for the morning;
    otherwise the patient would be asked at 08:00 what they told us at 49 h.

    The day-7 question is about usual pain, so only a check-in that gave it answers that one.
    Returns how many were marked answered. A row a worker is sending right now is included: the
    worker's finish only updates rows still planned, so "answered" stands and its delivery rows
    still show the push that went out.
    """
    kinds = list(KINDS) if usual_pain_given else [k for k in KINDS if k != DAY_7]
    reach = recorded_at + ANSWERS_WITHIN
    # The moments from the visit as it is now: a re-plan (new zone, new time) moved due_at the same way.
    moment_reached = [
        kind
        for kind, moment in _moments(visit.performed_at, visit.patient.timezone)
        if moment <= reach
    ]
    return end_planned(
        ReminderStatus.ANSWERED,
        "answered by a check-in",
        now,
        Reminder.visit_id == visit.id,
        or_(Reminder.due_at <= reach, Reminder.kind.in_(moment_reached)),
        Reminder.kind.in_(kinds),
    )


def end_planned(
    status: str, why: str | None, now: datetime, *conditions: ColumnElement[bool]
) -> int:
    """End every still-planned reminder matching `conditions` in one statement; returns how many.

    The one way reminders end outside the worker's finish: answered, recovered, superseded,
    expired, given up. A leased row is released too (its worker's finish then changes nothing).
    """
    result = db.session.execute(
        update(Reminder)
        .where(Reminder.status == ReminderStatus.PLANNED, *conditions)
        .values(status=status, finished_at=now, lease_until=None, claim_token=None, last_error=why)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount or 0


def supersede_earlier_visits(visit: Visit, now: datetime) -> int:
    """A newer visit opens a new episode: the patient's earlier visits stop reminding, so two
    episodes never nudge at once (and a tap, which opens the newest visit, never answers an old
    question). Returns how many reminders were cancelled."""
    earlier = select(Visit.id).where(
        Visit.patient_id == visit.patient_id,
        Visit.id != visit.id,
        Visit.performed_at <= visit.performed_at,
    )
    return end_planned(
        ReminderStatus.CANCELLED,
        "a newer visit took over its reminders",
        now,
        Reminder.visit_id.in_(earlier),
    )


def mark_recovered(visit: Visit, now: datetime) -> int:
    """The patient says they are fully recovered: no more reminders for this visit."""
    visit.recovered_at = now
    return end_planned(
        ReminderStatus.CANCELLED,
        "the patient said they are fully recovered",
        now,
        Reminder.visit_id == visit.id,
    )


def resume_reminders(visit: Visit, now: datetime) -> None:
    """Undo "fully recovered": the reminders still ahead are planned again."""
    visit.recovered_at = None
    db.session.flush()
    for row in db.session.scalars(
        select(Reminder).where(
            Reminder.visit_id == visit.id, Reminder.status == ReminderStatus.CANCELLED
        )
    ):
        row.status = ReminderStatus.PLANNED
        row.finished_at = None
        row.last_error = None
    replan(visit, now)
