"""The patient's own check-ins, with their scores drawn against the expected course."""

from __future__ import annotations

from flask import (
    render_template,
)

from companion.care.chart import soreness_chart
from companion.care.clinic_rules import rules_for
from companion.care.helped import HELPED
from companion.care.triage import SYMPTOMS
from companion.checkins.store import (
    checkins_for_patient,
    visit_scores,
)
from companion.patient import bp, page_context, require_link


@bp.get("/check-ins")
def history() -> str:
    link = require_link()
    return render_template(
        "patient/history.html",
        chart=soreness_chart(
            link.visit.performed_at, visit_scores(link.visit), rules_for(link.visit.clinic)
        ),
        checkins=checkins_for_patient(link.visit.patient_id),
        symptoms=SYMPTOMS,
        helped=HELPED,
        **page_context(link),
    )
