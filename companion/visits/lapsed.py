"""What the page for a link that no longer works shows (issue 15): never only "this link does not
work". A patient whose link expired (or was replaced) may still be sore, or worse, at 11 pm: the
page gives their clinic's phone, the emergency number and the guide's general advice, which holds
no health data. Which clinic comes from the link itself, live or not; a token we never issued
gets the app's emergency number and the guide alone. Nothing of the patient (name, regions,
check-ins) is shown: the holder of a dead link is not known to be the patient.
"""

from __future__ import annotations

from typing import Any

from companion.care import guidance
from companion.models import PatientLink
from companion.visits.contact import emergency_number


def lapsed_link_context(link: PatientLink | None) -> dict[str, Any]:
    clinic = link.visit.clinic if link is not None else None
    return {
        "clinic": clinic,
        "clinic_phone": clinic.phone if clinic is not None else None,
        "emergency_number": emergency_number(clinic),
        "emergency": guidance.EMERGENCY,
        "normal": guidance.NORMAL,
        "call_clinic": guidance.CALL_CLINIC,
        # The stages without a region: the general advice of each day.
        "stages": [(stage, stage.advice_for(())) for stage in guidance.STAGES],
    }
