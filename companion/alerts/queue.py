"""The review queue: the clinic's open episodes ordered by need, each with its reasons in words.

Red first, then amber, then on track (issue 5). Within red and amber, items nobody has acknowledged
come first, then the longest waiting; on-track episodes are listed newest visit first.

`build_queue` reads a whole clinic in a fixed number of queries however many patients it has
(tests/test_review.py counts them): the open episodes with their patients, their open alerts,
one summary row of check-ins per episode, the alerts resolved in the last 48 hours, and the
clinic's therapists.

On a card, red reasons come first and every reason carries its own level (`reason_level`), so the
page can mark each one with a shape and words, not colour alone (issue 12).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from flask_babel import gettext as _
from sqlalchemy import func, select

from companion.alerts.raising import in_queue
from companion.alerts.steps import Step, steps_of
from companion.care.triage import SYMPTOMS, envelope_window
from companion.extensions import db
from companion.models import Alert, AlertLevel, CheckIn, Clinic, Patient, Visit, therapist_names
from companion.timeutil import hours_since

LEVELS = (AlertLevel.RED, AlertLevel.AMBER, "on_track")
# The queue keeps what was handled lately in sight (issue 12): a colleague starting a shift sees
# what was resolved overnight and the note, and a resolved red flag leaves a visible trace.
RESOLVED_WINDOW = timedelta(hours=48)


def reason_level(reason: dict[str, Any], alert_level: str) -> str:
    """The level of one reason of an alert: "red" or "amber".

    A red alert can carry amber reasons too (a red symptom and a score above the envelope in the
    same check-in); only its red-flag symptoms are red. Every reason of an amber alert is amber.
    An unknown symptom code in a red alert counts as red: never play a warning sign down.
    """
    if alert_level != AlertLevel.RED:
        return AlertLevel.AMBER
    if reason.get("code") != "symptom":
        return AlertLevel.AMBER
    symptom = SYMPTOMS.get(reason.get("symptom", ""))
    return AlertLevel.AMBER if symptom is not None and symptom.level == "amber" else AlertLevel.RED


def marked_reasons(alerts: list[Alert]) -> list[tuple[str, dict[str, Any]]]:
    """(level, reason) of these alerts, red reasons first, otherwise in the alerts' order."""
    marked = [(reason_level(r, alert.level), r) for alert in alerts for r in alert.reasons]
    return sorted(marked, key=lambda pair: pair[0] != AlertLevel.RED)


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
    phone: str | None = None  # E.164; shown as a tel: link on red and amber cards
    level: str = "on_track"
    alerts: list[Alert] = field(default_factory=list)
    checkins: int = 0
    latest: LatestCheckIn | None = None

    @property
    def marked_reasons(self) -> list[tuple[str, dict[str, Any]]]:
        """(level, reason) pairs, red first: what the card lists."""
        return marked_reasons(self.alerts)

    @property
    def reasons(self) -> list[dict[str, Any]]:
        return [reason for _level, reason in self.marked_reasons]

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
class ResolvedItem:
    """An alert resolved within RESOLVED_WINDOW, with whose it was."""

    alert: Alert
    name: str
    ref: str
    steps: list[Step] = field(default_factory=list)

    @property
    def marked_reasons(self) -> list[tuple[str, dict[str, Any]]]:
        return marked_reasons([self.alert])


@dataclass
class Queue:
    items: list[QueueItem]
    therapists: dict[uuid.UUID, str]
    resolved: list[ResolvedItem] = field(default_factory=list)  # newest first
    # The escalation steps of the open red alerts: who was told, when, how (alerts/steps.py).
    steps: dict[uuid.UUID, list[Step]] = field(default_factory=dict)

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
            Patient.phone,
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
            phone=row.phone,
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

    # The clinic's alerts resolved in the last 48 hours, whatever their episode: one query.
    resolved = [
        ResolvedItem(alert, name, ref)
        for alert, name, ref in db.session.execute(
            select(Alert, Patient.display_name, Patient.ref)
            .join(Visit, Visit.id == Alert.visit_id)
            .join(Patient, Patient.id == Visit.patient_id)
            .where(
                Alert.clinic_id == clinic.id,
                Alert.resolved_at > now - RESOLVED_WINDOW,
                # Resolved by a therapist: "no check-in yet" alerts the app closed when the
                # patient checked in would otherwise fill the section with nothing done.
                Alert.resolved_by.is_not(None),
                Alert.resolved_at <= now,
            )
            .order_by(Alert.resolved_at.desc(), Alert.id)
        )
    ]

    # Who was told of each red alert, open or just resolved: one query.
    steps = steps_of(
        [a.id for item in items.values() for a in item.alerts if a.level == AlertLevel.RED]
        + [r.alert.id for r in resolved if r.alert.level == AlertLevel.RED]
    )
    for r in resolved:
        r.steps = steps.get(r.alert.id, [])
    therapists = therapist_names(clinic.id)

    def order(item: QueueItem) -> tuple[Any, ...]:
        rank = LEVELS.index(item.level)
        if item.level == "on_track":
            return (rank, -item.performed_at.timestamp())
        seen = item.acknowledgement is not None
        waiting = item.waiting_since or item.performed_at
        return (rank, seen, waiting.timestamp())

    return Queue(sorted(items.values(), key=order), therapists, resolved, steps)


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
        if reason.get("since_hours"):
            # The patient may have checked in early and then gone silent (alerts/raising.py).
            return _(
                "No check-in from %(since)s h to %(hours)s h",
                since=reason.get("since_hours"),
                hours=reason.get("by_hours"),
            )
        return _("No check-in by %(hours)s h", hours=reason.get("by_hours"))
    return str(code)
