"""Raising and handling alerts: what a therapist should look at in an episode (issue 5).

An alert is raised by a red or amber check-in (at once, in the same transaction as the check-in,
so it can never be lost), or by a check-in that did not come: none by 24 h, none by 48 h
(clinical.md / issue 5, "no check-in by 24 h or 48 h"). Reasons are kept as codes and numbers and
put into words when shown (`alerts.queue.reason_text`), so a Spanish-speaking therapist reads Spanish.

Acknowledging says "I have seen it"; resolving, with an optional short note, takes it out of the
amber/red part of the queue. Both act only on the alerts the therapist was shown: one that arrived
since stays open.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, exists, func, select, union, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from companion.care.triage import TriageResult
from companion.extensions import db
from companion.models import Alert, AlertKind, AlertLevel, CheckIn, Clinic, Visit

# clinical.md / issue 5: amber when no check-in has come by these hours after the visit.
MISSING_AFTER_HOURS = (24, 48)
NOTE_MAX = 500


def raise_for_checkin(
    checkin: CheckIn, visit: Visit, result: TriageResult, now: datetime
) -> Alert | None:
    """Record what a new check-in means for the therapist. Call once, when it is first stored.

    Any check-in closes the episode's open "no check-in yet" alerts: the patient is in touch.
    """
    db.session.execute(
        update(Alert)
        .where(
            Alert.visit_id == visit.id, Alert.kind == AlertKind.MISSING, Alert.resolved_at.is_(None)
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


def raise_missing(clinic: Clinic, now: datetime) -> int:
    """Raise "no check-in by 24 h / 48 h" for the clinic's open episodes; returns how many.

    An open "none by 24 h" alert becomes "none by 48 h" in place: it keeps its place in the queue
    and whoever acknowledged it, and the episode never shows two "missing" reasons at once.
    Idempotent and safe when the queue page and a worker run it at once: each alert has a fixed
    dedupe key and is inserted with ON CONFLICT DO NOTHING. Its cost does not grow with the
    number of patients: two SELECTs and at most one INSERT (none once every gap is on record),
    plus one UPDATE per episode that has just passed 48 h.
    """
    first = min(MISSING_AFTER_HOURS)
    candidates = db.session.execute(
        select(Visit.id, Visit.performed_at, Visit.created_at).where(
            Visit.id.in_(open_episodes(clinic, now)),
            Visit.recovered_at.is_(None),
            Visit.performed_at <= now - timedelta(hours=first),
            ~exists().where(CheckIn.visit_id == Visit.id),
        )
    ).all()
    due: dict[uuid.UUID, int] = {}
    for visit_id, performed_at, created_at in candidates:
        # A visit recorded after the fact: the patient could not check in before the link existed.
        start = max(performed_at, min(created_at, now))
        passed = [h for h in MISSING_AFTER_HOURS if start + timedelta(hours=h) <= now]
        if passed:
            due[visit_id] = max(passed)
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
        key = f"missing_{by}:{visit_id}"
        reasons = [{"code": AlertKind.MISSING, "by_hours": by}]
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
