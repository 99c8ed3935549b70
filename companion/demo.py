"""Demo data for `make run`: one clinic, one therapist, one visit with a live patient link."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select

from .auth import hash_password
from .extensions import db
from .models import Clinic, Therapist
from .visits import PatientDetails, VisitDetails, find_or_create_patient, record_visit

DEMO_EMAIL = "therapist@demo.clinic"


@dataclass(frozen=True)
class DemoCreated:
    email: str
    password: str
    token: str


def seed_demo(*, now: datetime, link_days: int) -> DemoCreated | None:
    if db.session.scalar(select(func.count()).select_from(Clinic)):
        return None
    clinic = Clinic(name="Demo Clinic", timezone="Europe/Madrid", phone="+34 900 000 000")
    db.session.add(clinic)
    password = secrets.token_urlsafe(9)  # printed once; a known demo password would be a risk
    therapist = Therapist(
        clinic=clinic,
        email=DEMO_EMAIL,
        display_name="Demo Therapist",
        password_hash=hash_password(password),
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
    db.session.commit()
    return DemoCreated(DEMO_EMAIL, password, issued.token)
