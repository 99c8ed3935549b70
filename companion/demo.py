"""Demo data for `make run`: one clinic, one therapist, a visit with a live patient link, and a
few earlier patients so the review queue shows each kind of item (red, amber, a missing check-in,
on track). The demo patients' check-ins go through the app's own check-in path, so their triage
and alerts are exactly what a real patient's would raise."""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select

from companion.auth import hash_password
from companion.care.hours import parse_specs
from companion.checkins.store import CheckInDetails, submit_checkin
from companion.extensions import db
from companion.models import Clinic, Role, Therapist
from companion.visits.record import (
    PatientDetails,
    VisitDetails,
    find_or_create_patient,
    record_visit,
)

DEMO_EMAIL = "therapist@demo.clinic"


@dataclass(frozen=True)
class DemoCreated:
    email: str
    password: str
    token: str


def seed_demo(*, now: datetime, link_days: int) -> DemoCreated | None:
    if db.session.scalar(select(func.count()).select_from(Clinic)):
        return None
    clinic = Clinic(
        name="Demo Clinic",
        timezone="Europe/Madrid",
        phone="+34 900 000 000",
        # Weekdays 08:00-20:00 and Saturday morning: the red screen says when the clinic will see
        # a check-in. No on-call contact: the queue shows the readiness warning until one is set.
        opening_hours=parse_specs(["mon-fri 08:00-20:00", "sat 09:00-13:00"]),
    )
    db.session.add(clinic)
    password = secrets.token_urlsafe(9)  # printed once; a known demo password would be a risk
    therapist = Therapist(
        clinic=clinic,
        email=DEMO_EMAIL,
        display_name="Demo Therapist",
        password_hash=hash_password(password),
        role=Role.ADMIN,  # the demo clinic's only therapist runs it
    )
    db.session.add(therapist)
    db.session.flush()
    patient = find_or_create_patient(
        clinic, PatientDetails("DEMO-001", "Alex", "Europe/Madrid", "en")
    )
    _, issued = record_visit(
        clinic,
        patient,
        VisitDetails(
            performed_at=now - timedelta(hours=3),
            regions=["neck", "shoulder"],
            insertions=6,
            electrical_stimulation=False,
            first_visit=True,
        ),
        therapist_id=therapist.id,
        link_days=link_days,
        now=now,
    )
    _earlier_patients(clinic, therapist.id, now, link_days)
    db.session.commit()
    return DemoCreated(DEMO_EMAIL, password, issued.token)


# (reference, name, hours since the visit, regions, check-ins as (hours after, soreness, symptoms))
EARLIER: tuple[tuple[str, str, float, list[str], list[tuple[float, int, list[str]]]], ...] = (
    ("DEMO-002", "Blanca", 30, ["upper_back"], [(3, 4, []), (27, 3, ["breathless"])]),
    ("DEMO-003", "Carlos", 50, ["low_back"], [(4, 5, []), (24, 4, []), (48, 6, [])]),
    ("DEMO-004", "Dana", 30, ["calf"], []),
    ("DEMO-005", "Eli", 50, ["shoulder"], [(3, 4, ["tired"]), (24, 2, []), (48, 1, [])]),
)


def _earlier_patients(clinic: Clinic, therapist_id: uuid.UUID, now: datetime, days: int) -> None:
    for number, (ref, name, hours_ago, regions, checkins) in enumerate(EARLIER, start=1):
        # A phone for each (fictional), so a red or amber card can be called back from the queue.
        phone = f"+3460000000{number}"
        patient = find_or_create_patient(
            clinic, PatientDetails(ref, name, "Europe/Madrid", "en", phone=phone)
        )
        performed = now - timedelta(hours=hours_ago)
        visit, _ = record_visit(
            clinic,
            patient,
            VisitDetails(performed_at=performed, regions=regions, insertions=4),
            therapist_id=therapist_id,
            link_days=days,
            now=performed,
        )
        for after, soreness, symptoms in checkins:
            at = performed + timedelta(hours=after)
            details = CheckInDetails(uuid.uuid4(), at, soreness, None, symptoms, [], None)
            submit_checkin(visit, details, now=at)
