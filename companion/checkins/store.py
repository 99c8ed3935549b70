"""Storing a patient's check-in idempotently and triaging it (domain functions, explicit `now`)."""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from companion.alerts.raising import raise_for_checkin
from companion.care import pgic as pgic_scale
from companion.care.clinic_rules import rules_for
from companion.care.triage import EarlierScore, triage
from companion.extensions import db
from companion.models import CheckIn, Visit
from companion.reminders.planning import answer_reminders
from companion.timeutil import hours_since

# How far a check-in's `recorded_at` may lie ahead of its arrival (or before its visit): phone
# clocks drift a little, and an entry typed at the visit's minute on a phone a bit behind is real.
# More than this is a wrong clock or a forged time, and a time in 2099 would hide the patient's
# real newest score in every list (issue 14, finding 2).
CLOCK_SKEW = timedelta(minutes=5)
CLOCK_SKEW_MINUTES = int(CLOCK_SKEW.total_seconds() // 60)
# At most this many check-ins per visit: more than anyone in a week's aftercare sends (the page
# asks a few times a day), and a bound on what every page, export and triage of the visit reads.
MAX_CHECKINS_PER_VISIT = 200


@dataclass(frozen=True)
class CheckInDetails:
    client_id: uuid.UUID
    recorded_at: datetime
    soreness: int
    usual_pain: int | None
    symptoms: list[str]
    helped: list[str]
    note: str | None
    # Day 7's global impression of change, 1-7 (care/pgic.py); None when not asked or not given.
    pgic: int | None = None

    def digest(self) -> str:
        """A fingerprint of the body, so a replay can be told from a different entry with the same id.

        Lists are compared as sets of codes in order given; timestamps as instants, so the same
        moment written with another offset is the same entry. A check-in without a global
        impression leaves `pgic` out, so its fingerprint is the one stored before the field
        existed: an entry waiting in a phone's outbox since then still replays, not a 409.
        """
        data = asdict(self)
        data["client_id"] = str(self.client_id)
        data["recorded_at"] = self.recorded_at.timestamp()
        if self.pgic is None:
            del data["pgic"]
        raw = json.dumps(data, sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(raw.encode("utf-8")).hexdigest()


class CheckInConflict(Exception):
    """The client id was already used for a different check-in."""


class PgicTooEarly(Exception):
    """A global impression of change sent before it is asked (care/pgic.py, ASKED_FROM)."""


class RecordedInFuture(Exception):
    """`recorded_at` lies more than CLOCK_SKEW after the check-in's arrival."""


class RecordedBeforeVisit(Exception):
    """`recorded_at` lies more than CLOCK_SKEW before the visit's `performed_at`."""


class VisitFull(Exception):
    """The visit already holds MAX_CHECKINS_PER_VISIT check-ins."""


def submit_checkin(
    visit: Visit, details: CheckInDetails, *, now: datetime, timed_by_server: bool = False
) -> tuple[CheckIn, bool]:
    """Store a check-in; returns (check-in, created). A replay returns the stored one unchanged.

    `timed_by_server`: the form path stamps `recorded_at` on arrival, so a second tap on "Send"
    carries a later time; it is still the same entry, judged on everything else.
    """
    existing = _find(visit.patient_id, details.client_id)
    if existing is not None:
        if timed_by_server:
            details = replace(details, recorded_at=existing.recorded_at)
        return _replay(existing, details.digest()), False
    # Checked only for a new entry: a replay of a stored one gets its stored result, even after the
    # visit was moved or filled up, so the phone's outbox can clear it.
    if details.recorded_at > now + CLOCK_SKEW:
        raise RecordedInFuture
    if details.recorded_at < visit.performed_at - CLOCK_SKEW:
        raise RecordedBeforeVisit
    if checkin_count(visit) >= MAX_CHECKINS_PER_VISIT:
        raise VisitFull
    digest = details.digest()
    # Judged on the recorded time, as the triage's hours since the visit are: an entry made on
    # day 6 and sent from the outbox later is still a day-6 entry. Never later than its arrival:
    # a phone whose clock runs a little ahead must not answer the day-7 question early.
    asked_at = min(details.recorded_at, now)
    if details.pgic is not None and not pgic_scale.asked(visit.performed_at, asked_at):
        raise PgicTooEarly

    rules = rules_for(visit.clinic)
    hours = hours_since(visit.performed_at, details.recorded_at)
    earlier = triage_scores(visit, details.recorded_at, rules)
    result = triage(details.soreness, details.symptoms, hours, earlier, rules)
    checkin = CheckIn(
        patient_id=visit.patient_id,
        visit_id=visit.id,
        client_id=details.client_id,
        recorded_at=details.recorded_at,
        received_at=now,
        soreness=details.soreness,
        usual_pain=details.usual_pain,
        pgic=details.pgic,
        symptoms=list(details.symptoms),
        helped=list(details.helped),
        note=details.note,
        triage=result.level,
        triage_reasons=result.keys,
        body_digest=digest,
    )
    db.session.add(checkin)
    try:
        db.session.flush()
    except IntegrityError:
        # Two requests with the same id raced (a flush from the outbox while the form posts):
        # the other one won, so this is a replay of it.
        db.session.rollback()
        existing = _find(visit.patient_id, details.client_id)
        if existing is None:
            raise
        if timed_by_server:
            details = replace(details, recorded_at=existing.recorded_at)
        return _replay(existing, details.digest()), False
    raise_for_checkin(checkin, visit, result, now)
    # A phone whose clock runs ahead must not answer tomorrow's questions today.
    answered_at = min(details.recorded_at, now)
    # The day-7 question is about the usual pain: a score for it, or the global impression of its
    # change, answers it.
    answer_reminders(
        visit,
        answered_at,
        now,
        usual_pain_given=details.usual_pain is not None or details.pgic is not None,
    )
    return checkin, True


def _find(patient_id: uuid.UUID, client_id: uuid.UUID) -> CheckIn | None:
    return db.session.scalar(
        select(CheckIn).where(CheckIn.patient_id == patient_id, CheckIn.client_id == client_id)
    )


def _replay(existing: CheckIn, digest: str) -> CheckIn:
    if existing.body_digest != digest:
        raise CheckInConflict
    return existing


def latest_checkin_time(visit: Visit) -> datetime:
    """The latest `recorded_at` a check-in of this visit can carry: the end of its episode (the
    review queue's days after the visit, or later while a patient link lets the patient in), plus
    the clock skew allowed. The chart ends there (care/chart.py)."""
    ends = [visit.performed_at + timedelta(days=visit.clinic.episode_days)]
    ends += [link.expires_at for link in visit.links]
    return max(ends) + CLOCK_SKEW


def checkin_count(visit: Visit) -> int:
    return db.session.scalar(
        select(func.count()).select_from(CheckIn).where(CheckIn.visit_id == visit.id)
    )


def triage_scores(visit: Visit, before: datetime, rules: dict[str, Any]) -> list[EarlierScore]:
    """The earlier scores triage compares a check-in recorded at `before` with: at most three rows
    (index lookups on ix_checkin_visit_recorded), not every check-in of the visit.

    care.triage reads, among the scores recorded before this one, only the first, the latest, and
    the latest of the day-one window (rules["no_drop"]); giving it just those judges exactly as
    giving it all of them would (tests/test_checkin_bounds.py compares both).
    """
    earlier = (CheckIn.visit_id == visit.id, CheckIn.recorded_at < before)
    newest_first = (CheckIn.recorded_at.desc(), CheckIn.received_at.desc())
    columns = (CheckIn.recorded_at, CheckIn.soreness)
    window = rules["no_drop"]
    day_one_from = visit.performed_at + timedelta(hours=window["compare_from"])
    day_one_to = visit.performed_at + timedelta(hours=window["compare_to"])
    queries = [
        select(*columns).where(*earlier).order_by(*newest_first).limit(1),
        select(*columns)
        .where(*earlier)
        .order_by(CheckIn.recorded_at, CheckIn.received_at)
        .limit(1),
        select(*columns)
        .where(*earlier, CheckIn.recorded_at >= day_one_from, CheckIn.recorded_at < day_one_to)
        .order_by(*newest_first)
        .limit(1),
    ]
    found: dict[tuple[datetime, int], None] = {}
    for query in queries:
        row = db.session.execute(query).first()
        if row is not None:
            found[(row[0], row[1])] = None
    return [EarlierScore(hours_since(visit.performed_at, at), score) for at, score in found]


def visit_scores(visit: Visit) -> list[tuple[datetime, int]]:
    """(recorded_at, soreness) of every check-in of the visit: what triage and the chart need."""
    rows = db.session.execute(
        select(CheckIn.recorded_at, CheckIn.soreness).where(CheckIn.visit_id == visit.id)
    )
    return [(at, score) for at, score in rows]


def checkins_for_patient(patient_id: uuid.UUID) -> list[CheckIn]:
    return list(
        db.session.scalars(
            select(CheckIn)
            .where(CheckIn.patient_id == patient_id)
            .order_by(CheckIn.recorded_at.desc(), CheckIn.received_at.desc())
        )
    )
