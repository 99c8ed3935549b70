"""Raising and handling alerts: what a therapist should look at in an episode (issue 5).

An alert is raised by a red or amber check-in (at once, in the same transaction as the check-in,
so it can never be lost), or by a check-in that did not come: none by 24 h, none by 48 h
(clinical.md / issue 5, "no check-in by 24 h or 48 h"). Reasons are kept as codes and numbers and
put into words when shown (`alerts.queue.reason_text`), so a Spanish-speaking therapist reads Spanish.

Chasing a silent patient (issue 12: "also covers a patient who checked in early and then went
silent"). A check-in only answers a mark when it tells about the part of the course that mark is
about, so each mark has a window:
- at 24 h, the patient is chased when no check-in came from 6 h after the visit on. The 2 h
  reminder's "how are you" comes before the hours where soreness peaks and drops (2-8 h, the
  largest drop between 6 and 12 h) and where delayed problems start to show (a pneumothorax can
  begin minutes to about 2 days later); the 6 h / evening and the next morning's check-ins are
  the ones the 24 h mark waits for (clinical.md, "Soreness after needling", "Adverse events" and
  "Reminder moments");
- at 48 h, when no check-in came from 24 h on: a patient who answered the evening (or the
  morning after) but not since has been silent for a day, through the 48 h reminder.
After a visit late in the day the evening reminder comes at 21:00 at the latest, less than 6 h
after it: that answer counts as early, and the next morning's check-in is the one that answers.
A check-in counts from the moment it existed: the patient's `recorded_at`, but never later than
when it reached us (`received_at`), so a phone whose clock runs ahead cannot answer a mark early,
and an offline check-in made at 3 h and uploaded at 30 h counts as made at 3 h.

Acknowledging says "I have seen it"; resolving, with an optional short note, takes it out of the
amber/red part of the queue. Both act only on the alerts the therapist was shown: one that arrived
since stays open.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, exists, func, literal_column, or_, select, union, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement

from companion.care.triage import TriageResult
from companion.extensions import db
from companion.models import Alert, AlertKind, AlertLevel, CheckIn, Clinic, Visit
from companion.timeutil import UTCDateTime

# clinical.md / issues 5 and 12: amber when, at a mark (hours after the visit), no check-in has
# come since a given hour after the visit: {mark: from hour}. At 24 h a check-in from 6 h on answers
# (the 2 h "how are you" is before the window where soreness peaks and delayed problems show); at
# 48 h one from 24 h on (a patient silent for a whole day since the morning after is chased). The
# reasoning is in the module docstring.
MISSING_AFTER_HOURS: dict[int, int] = {24: 6, 48: 24}
NOTE_MAX = 500


def raise_for_checkin(
    checkin: CheckIn, visit: Visit, result: TriageResult, now: datetime
) -> Alert | None:
    """Record what a new check-in means for the therapist. Call once, when it is first stored.

    A check-in closes the episode's open "no check-in by N h" alerts that it answers: the patient
    is in touch.
    """
    # An open "missing" alert exists only from its mark on, so a check-in made now is later than
    # any window and closes it. But a check-in arrives when the phone is online, not when it was
    # made: one recorded at 3 h and uploaded from the outbox at 30 h tells nothing about the hours
    # the 24 h alert is about, and must not silently close it. So it closes an alert only when the
    # moment it was made (recorded_at, never later than its arrival: raise_missing's rule) is in
    # that alert's window.
    made = min(checkin.recorded_at, now)
    answered = [
        _missing_key(mark, visit.id)
        for mark, since in MISSING_AFTER_HOURS.items()
        if made >= visit.performed_at + timedelta(hours=since)
    ]
    if answered:
        db.session.execute(
            update(Alert)
            .where(
                Alert.visit_id == visit.id,
                Alert.kind == AlertKind.MISSING,
                Alert.dedupe_key.in_(answered),
                Alert.resolved_at.is_(None),
            )
            .values(resolved_at=now)
        )
    if result.level not in (AlertLevel.RED, AlertLevel.AMBER):
        return None
    alert = Alert(
        clinic_id=visit.clinic_id,
        visit_id=visit.id,
        checkin_id=checkin.id,
        dedupe_key=f"checkin:{checkin.id}",
        kind=AlertKind.CHECKIN,
        level=result.level,
        reasons=[reason.as_record() for reason in result.reasons],
        raised_at=now,
    )
    db.session.add(alert)
    return alert


def open_episodes(clinic: Clinic, now: datetime) -> Any:
    """A subquery of the clinic's open episodes: each patient's newest visit, within the clinic's
    episode length. A newer visit of the same patient closes the earlier episode, as it takes
    over its reminders (reminders.planning.supersede_earlier_visits)."""
    ranked = (
        select(
            Visit.id.label("visit_id"),
            func.row_number()
            .over(partition_by=Visit.patient_id, order_by=(Visit.performed_at.desc(), Visit.id))
            .label("rank"),
        )
        .where(Visit.clinic_id == clinic.id, Visit.performed_at <= now)
        .subquery()
    )
    return (
        select(Visit.id)
        .join(ranked, ranked.c.visit_id == Visit.id)
        .where(
            ranked.c.rank == 1,
            Visit.performed_at > now - timedelta(days=clinic.episode_days),
        )
    )


def in_queue(clinic: Clinic, now: datetime) -> Any:
    """The visits the review queue shows: the open episodes, and any visit with a red alert nobody
    resolved yet. A warning sign stays in front of the therapists until one of them resolves it:
    neither the episode closing (or a shorter episode length) nor a newer visit may hide it.
    Amber items of a closed episode leave with it: the soreness or the gap they were about is
    over, and the patient's later course is in the newer episode."""
    unresolved_red = select(Alert.visit_id).where(
        Alert.clinic_id == clinic.id, Alert.level == AlertLevel.RED, Alert.resolved_at.is_(None)
    )
    return union(open_episodes(clinic, now), unresolved_red)


def _missing_key(mark: int, visit_id: uuid.UUID) -> str:
    return f"missing_{mark}:{visit_id}"


class _HoursAfter(FunctionElement[datetime]):
    """`moment + hours` in SQL, for a column compared in the database (PostgreSQL adds an
    interval; SQLite, which stores the timestamps as text, shifts the text the same way)."""

    type = UTCDateTime()
    name = "hours_after"
    inherit_cache = True


@compiles(_HoursAfter)
def _hours_after_sql(element: _HoursAfter, compiler: Any, **kw: Any) -> str:
    moment, hours = list(element.clauses)
    return (
        f"({compiler.process(moment, **kw)} + {compiler.process(hours, **kw)} * interval '1 hour')"
    )


@compiles(_HoursAfter, "sqlite")
def _hours_after_sqlite(element: _HoursAfter, compiler: Any, **kw: Any) -> str:
    moment, hours = list(element.clauses)
    # The stored text is "YYYY-MM-DD HH:MM:SS.ffffff"; this gives "... HH:MM:SS.fff", which
    # compares with it as the instants do (a stored value equal to the bound is not below it).
    shift = f"'+' || {compiler.process(hours, **kw)} || ' hours'"
    return f"strftime('%Y-%m-%d %H:%M:%f', {compiler.process(moment, **kw)}, {shift})"


def _heard_from(since: int) -> Any:
    """EXISTS: the visit has a check-in made `since` hours after the visit or later (made: the
    patient's recorded_at, never later than its arrival; see the module docstring)."""
    bound = _HoursAfter(Visit.performed_at, literal_column(str(int(since))))
    return exists().where(
        CheckIn.visit_id == Visit.id, CheckIn.recorded_at >= bound, CheckIn.received_at >= bound
    )


def raise_missing(clinic: Clinic, now: datetime) -> int:
    """Raise "no check-in by 24 h / 48 h" for the clinic's open episodes; returns how many.

    A patient is chased at a mark when no check-in came in that mark's window (MISSING_AFTER_HOURS:
    from 6 h on at 24 h, from 24 h on at 48 h), so one who checked in at 2 h and then went silent
    is chased too. An open "none by 24 h" alert becomes "none by 48 h" in place: it keeps its place
    in the queue and whoever acknowledged it, and the episode never shows two "missing" reasons at
    once. Idempotent and safe when the queue page and a worker run it at once: each alert has a
    fixed dedupe key and is inserted with ON CONFLICT DO NOTHING. Its cost does not grow with the
    number of patients: two SELECTs (the windows are correlated EXISTS on the check-ins' index) and
    at most one INSERT (none once every gap is on record), plus the in-place changes of the
    episodes that have just passed 48 h, flushed as one batch.
    """
    silent = {mark: ~_heard_from(since) for mark, since in MISSING_AFTER_HOURS.items()}
    candidates = db.session.execute(
        select(
            Visit.id,
            Visit.performed_at,
            Visit.created_at,
            *(condition.label(f"silent_{mark}") for mark, condition in silent.items()),
            exists().where(CheckIn.visit_id == Visit.id).label("heard"),
        ).where(
            Visit.id.in_(open_episodes(clinic, now)),
            Visit.recovered_at.is_(None),
            or_(
                *(
                    and_(Visit.performed_at <= now - timedelta(hours=mark), condition)
                    for mark, condition in silent.items()
                )
            ),
        )
    ).all()
    due: dict[uuid.UUID, int] = {}
    heard: set[uuid.UUID] = set()  # episodes with an earlier check-in: the patient went silent
    for row in candidates:
        if row.heard:
            heard.add(row.id)
        # A visit recorded after the fact: the patient could not check in before the link existed,
        # so the marks count from its recording. The windows stay on the clinical clock (hours
        # since the needling): they are about the course of the soreness.
        start = max(row.performed_at, min(row.created_at, now))
        passed = [
            mark
            for mark in MISSING_AFTER_HOURS
            if start + timedelta(hours=mark) <= now and getattr(row, f"silent_{mark}")
        ]
        if passed:
            due[row.id] = max(passed)
    if not due:
        return 0
    # Every "missing" alert of these episodes, handled or not: an open one is escalated in place,
    # and one a therapist already resolved is not raised again.
    known = db.session.scalars(
        select(Alert).where(Alert.visit_id.in_(list(due)), Alert.kind == AlertKind.MISSING)
    ).all()
    already = {alert.visit_id: alert for alert in known if alert.resolved_at is None}
    keys = {alert.dedupe_key for alert in known}
    rows: list[dict[str, Any]] = []
    for visit_id, by in due.items():
        key = _missing_key(by, visit_id)
        # since_hours, the window's start, only for a patient who checked in before it and then
        # went silent: the words say "no check-in from 6 h to 24 h" rather than "by 24 h".
        reasons: list[dict[str, Any]] = [{"code": AlertKind.MISSING, "by_hours": by}]
        if visit_id in heard:
            reasons[0]["since_hours"] = MISSING_AFTER_HOURS[by]
        current = already.get(visit_id)
        if current is not None:
            if current.dedupe_key != key and key not in keys:
                current.dedupe_key, current.reasons = key, reasons
            continue
        if key in keys:
            continue
        rows.append(
            {
                "id": uuid.uuid4(),
                "clinic_id": clinic.id,
                "visit_id": visit_id,
                "dedupe_key": key,
                "kind": AlertKind.MISSING,
                "level": AlertLevel.AMBER,
                "reasons": reasons,
                "raised_at": now,
            }
        )
    if not rows:
        db.session.flush()
        return 0
    dialect = db.session.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    statement = (
        insert(Alert)
        .values(rows)
        .on_conflict_do_nothing(index_elements=["dedupe_key"])
        .returning(Alert.id)
    )
    # RETURNING, not rowcount: drivers report -1 for a multi-row insert.
    return len(db.session.execute(statement).all())


def _shown(clinic_id: uuid.UUID, visit_id: uuid.UUID, alert_ids: Sequence[uuid.UUID]) -> Any:
    return and_(
        Alert.clinic_id == clinic_id,
        Alert.visit_id == visit_id,
        Alert.id.in_(list(alert_ids)),
        Alert.resolved_at.is_(None),
    )


def acknowledge(
    clinic_id: uuid.UUID,
    visit_id: uuid.UUID,
    alert_ids: Sequence[uuid.UUID],
    therapist_id: uuid.UUID,
    now: datetime,
) -> int:
    """Mark the shown, still open alerts as seen by this therapist; returns how many changed."""
    result = db.session.execute(
        update(Alert)
        .where(_shown(clinic_id, visit_id, alert_ids), Alert.acknowledged_at.is_(None))
        .values(acknowledged_at=now, acknowledged_by=therapist_id)
    )
    return result.rowcount or 0


def resolve(
    clinic_id: uuid.UUID,
    visit_id: uuid.UUID,
    alert_ids: Sequence[uuid.UUID],
    therapist_id: uuid.UUID,
    note: str | None,
    now: datetime,
) -> int:
    """Close the shown, still open alerts with an optional note; unacknowledged ones count as
    acknowledged by the same therapist at the same moment. Returns how many were closed."""
    if note is not None and len(note) > NOTE_MAX:
        raise ValueError("note too long")
    condition = _shown(clinic_id, visit_id, alert_ids)
    db.session.execute(
        update(Alert)
        .where(condition, Alert.acknowledged_at.is_(None))
        .values(acknowledged_at=now, acknowledged_by=therapist_id)
    )
    result = db.session.execute(
        update(Alert)
        .where(condition)
        .values(resolved_at=now, resolved_by=therapist_id, resolution_note=note or None)
    )
    return result.rowcount or 0
