"""Storing a patient's check-in idempotently and triaging it (domain functions, explicit `now`)."""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import asdict, dataclass, replace
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from companion.alerts.raising import raise_for_checkin
from companion.care.clinic_rules import rules_for
from companion.care.triage import EarlierScore, triage
from companion.extensions import db
from companion.models import CheckIn, Visit
from companion.reminders.planning import answer_reminders
from companion.timeutil import hours_since


@dataclass(frozen=True)
class CheckInDetails:
    client_id: uuid.UUID
    recorded_at: datetime
    soreness: int
    usual_pain: int | None
    symptoms: list[str]
    helped: list[str]
    note: str | None

    def digest(self) -> str:
        """A fingerprint of the body, so a replay can be told from a different entry with the same id.

        Lists are compared as sets of codes in order given; timestamps as instants, so the same
        moment written with another offset is the same entry.
        """
        data = asdict(self)
        data["client_id"] = str(self.client_id)
        data["recorded_at"] = self.recorded_at.timestamp()
        raw = json.dumps(data, sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(raw.encode("utf-8")).hexdigest()


class CheckInConflict(Exception):
    """The client id was already used for a different check-in."""


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
    digest = details.digest()

    earlier = [
        EarlierScore(hours_since(visit.performed_at, at), score)
        for at, score in visit_scores(visit)
    ]
    rules = rules_for(visit.clinic)
    hours = hours_since(visit.performed_at, details.recorded_at)
    result = triage(details.soreness, details.symptoms, hours, earlier, rules)
    checkin = CheckIn(
        patient_id=visit.patient_id,
        visit_id=visit.id,
        client_id=details.client_id,
        recorded_at=details.recorded_at,
        received_at=now,
        soreness=details.soreness,
        usual_pain=details.usual_pain,
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
    answer_reminders(visit, answered_at, now, usual_pain_given=details.usual_pain is not None)
    return checkin, True


def _find(patient_id: uuid.UUID, client_id: uuid.UUID) -> CheckIn | None:
    return db.session.scalar(
        select(CheckIn).where(CheckIn.patient_id == patient_id, CheckIn.client_id == client_id)
    )


def _replay(existing: CheckIn, digest: str) -> CheckIn:
    if existing.body_digest != digest:
        raise CheckInConflict
    return existing


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
