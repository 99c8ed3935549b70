"""The patient's own check-ins, with their scores drawn against the expected course.

A red or amber check-in of this visit is marked with a symbol and words, and says what to do: the
emergency call for a red flag, "contact your therapist today" for amber (clinical.md, triage; the
same texts as the result screen, templates/patient/_triage.html), never reassurance (issue 12).
"""

from __future__ import annotations

from flask import render_template

from companion.care.chart import soreness_chart
from companion.care.clinic_rules import rules_for
from companion.care.helped import HELPED
from companion.care.triage import SYMPTOMS
from companion.checkins.store import checkins_for_patient, latest_checkin_time
from companion.patient import bp, local_moment, page_context, require_link


@bp.get("/check-ins")
def history() -> str:
    link = require_link()
    visit = link.visit
    checkins = checkins_for_patient(visit.patient_id)
    return render_template(
        "patient/history.html",
        chart=soreness_chart(
            visit.performed_at,
            [(c.recorded_at, c.soreness, c.triage) for c in checkins if c.visit_id == visit.id],
            rules_for(visit.clinic),
            until=latest_checkin_time(visit),
        ),
        checkins=checkins,
        symptoms=SYMPTOMS,
        helped=HELPED,
        moment=local_moment,  # "Saturday, November 21, 3:30 PM": to the minute, in the patient's zone
        **page_context(link),
    )
