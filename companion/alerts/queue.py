"""The review queue: the clinic's open episodes ordered by need, each with its reasons in words.

Red first, then amber, then on track (issue 5). Within red and amber, items nobody has acknowledged
come first, then the longest waiting; on-track episodes are listed newest visit first.

`build_queue` reads a whole clinic in a fixed number of queries however many patients it has
(tests/test_review.py counts them): the open episodes with their patients, their open alerts,
one summary row of check-ins per episode, and the clinic's therapists.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from flask_babel import gettext as _
from sqlalchemy import func, select

from companion.alerts.raising import in_queue
from companion.care.triage import SYMPTOMS, envelope_window
from companion.extensions import db
from companion.models import Alert, AlertLevel, CheckIn, Clinic, Patient, Visit, therapist_names
from companion.timeutil import hours_since

LEVELS = (AlertLevel.RED, AlertLevel.AMBER, "on_track")


@dataclass
class LatestCheckIn:
    hours: int
    soreness: int
    expected_max: int
    recorded_at: datetime


@dataclass
class QueueItem:
    visit_id: uuid.UUID
    patient_id: uuid.UUID
    name: str
    ref: str
    timezone: str
    performed_at: datetime
    recovered: bool
    level: str = "on_track"
    alerts: list[Alert] = field(default_factory=list)
    checkins: int = 0
    latest: LatestCheckIn | None = None

    @property
    def reasons(self) -> list[dict[str, Any]]:
        return [reason for alert in self.alerts for reason in alert.reasons]

    @property
    def alert_ids(self) -> str:
        return " ".join(str(a.id) for a in self.alerts)

    @property
    def waiting_since(self) -> datetime | None:
        return min((a.raised_at for a in self.alerts), default=None)

    @property
    def acknowledgement(self) -> Alert | None:
        """The latest acknowledgement when every open alert has one; None while any is unseen."""
        if not self.alerts or any(a.acknowledged_at is None for a in self.alerts):
            return None
        return max(self.alerts, key=lambda a: a.acknowledged_at or a.raised_at)


@dataclass
class Queue:
    items: list[QueueItem]
    therapists: dict[uuid.UUID, str]

    def of_level(self, level: str) -> list[QueueItem]:
        return [item for item in self.items if item.level == level]

    def therapist_name(self, therapist_id: uuid.UUID | None) -> str:
        if therapist_id is None:
            return ""
        return self.therapists.get(therapist_id, "")


def build_queue(clinic: Clinic, rules: dict[str, Any], now: datetime) -> Queue:
    # The open episodes, and older visits whose red alert nobody has resolved (alerts.raising.in_queue).
    episodes = in_queue(clinic, now)
    items: dict[uuid.UUID, QueueItem] = {}
    for row in db.session.execute(
        select(
            Visit.id,
            Visit.patient_id,
            Visit.performed_at,
            Visit.recovered_at,
            Patient.display_name,
            Patient.ref,
            Patient.timezone,
        )
        .join(Patient, Patient.id == Visit.patient_id)
        .where(Visit.id.in_(episodes))
    ):
        items[row.id] = QueueItem(
            visit_id=row.id,
            patient_id=row.patient_id,
            name=row.display_name,
            ref=row.ref,
            timezone=row.timezone,
            performed_at=row.performed_at,
            recovered=row.recovered_at is not None,
        )

    for alert in db.session.scalars(
        select(Alert)
        .where(
            Alert.clinic_id == clinic.id,
            Alert.resolved_at.is_(None),
            Alert.visit_id.in_(episodes),
        )
        .order_by(Alert.raised_at, Alert.id)
    ):
        item = items.get(alert.visit_id)
        if item is None:
            continue
        item.alerts.append(alert)
        if alert.level == AlertLevel.RED or item.level == "on_track":
            item.level = alert.level

    # One row per episode: its number of check-ins and its newest score, as index lookups on
    # (visit_id, recorded_at, received_at); a window over every check-in was 2-3 times slower.
    newest = (
        select(CheckIn.id)
        .where(CheckIn.visit_id == Visit.id)
        .order_by(CheckIn.recorded_at.desc(), CheckIn.received_at.desc())
        .limit(1)
        .correlate(Visit)
        .scalar_subquery()
    )
    total = (
        select(func.count())
        .select_from(CheckIn)
        .where(CheckIn.visit_id == Visit.id)
        .correlate(Visit)
        .scalar_subquery()
    )
    summary = (
        select(Visit.id.label("visit_id"), total.label("total"), newest.label("newest_id"))
        .where(Visit.id.in_(episodes))
        .subquery()
    )
    for row in db.session.execute(
        select(summary.c.visit_id, summary.c.total, CheckIn.soreness, CheckIn.recorded_at).join(
            CheckIn, CheckIn.id == summary.c.newest_id
        )
    ):
        item = items.get(row.visit_id)
        if item is None:
            continue
        hours = hours_since(item.performed_at, row.recorded_at)
        item.checkins = row.total
        item.latest = LatestCheckIn(
            hours=max(0, round(hours)),
            soreness=row.soreness,
            expected_max=envelope_window(rules, max(hours, 0))["usual_max"],
            recorded_at=row.recorded_at,
        )

    therapists = therapist_names(clinic.id)

    def order(item: QueueItem) -> tuple[Any, ...]:
        rank = LEVELS.index(item.level)
        if item.level == "on_track":
            return (rank, -item.performed_at.timestamp())
        seen = item.acknowledgement is not None
        waiting = item.waiting_since or item.performed_at
        return (rank, seen, waiting.timestamp())

    return Queue(sorted(items.values(), key=order), therapists)


def reason_text(reason: dict[str, Any]) -> str:
    """One reason in words for the therapist, in their language."""
    code = reason.get("code")
    hours = reason.get("hours")
    score = reason.get("soreness")
    if code == "symptom":
        symptom = SYMPTOMS.get(reason.get("symptom", ""))
        label = str(symptom.label) if symptom else reason.get("symptom", "")
        return _("%(hours)s h: %(symptom)s", hours=hours, symptom=label)
    if code == "above_envelope":
        return _(
            "%(hours)s h: soreness %(score)s, expected %(max)s or less",
            hours=hours,
            score=score,
            max=reason.get("expected_max"),
        )
    if code == "rising":
        return _(
            "%(hours)s h: soreness up from %(previous)s to %(score)s",
            hours=hours,
            previous=reason.get("previous"),
            score=score,
        )
    if code == "above_first":
        return _(
            "%(hours)s h: soreness %(score)s, 2 or more above the first score (%(first)s)",
            hours=hours,
            score=score,
            first=reason.get("first"),
        )
    if code == "no_drop":
        if reason.get("previous") is None:
            return _("%(hours)s h: soreness %(score)s, not easing", hours=hours, score=score)
        return _(
            "%(hours)s h: soreness %(score)s, no drop since the day before (%(previous)s)",
            hours=hours,
            score=score,
            previous=reason.get("previous"),
        )
    if code == "missing":
        return _("No check-in by %(hours)s h", hours=reason.get("by_hours"))
    return str(code)
