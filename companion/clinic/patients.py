"""The patients: the clinic's list with each one's newest check-in, and one patient's visits."""

from __future__ import annotations

import uuid

from flask import abort, render_template, request
from flask_login import current_user

from companion import audit
from companion.care.regions import BY_CODE as REGIONS
from companion.clinic import bp
from companion.extensions import db
from companion.forms import SearchForm
from companion.timeutil import to_local, utcnow
from companion.visits import history as patient_history
from companion.visits import patient_data


@bp.route("/patients", methods=["GET", "POST"])
def patients() -> str:
    """The clinic's patients, or those matching a search. The search is a POST: a name typed
    into it must not end up in URLs, browser history or access logs."""
    form = SearchForm()
    if request.method == "POST" and not form.validate_on_submit():
        abort(400)
    search = (form.q.data or "").strip() if request.method == "POST" else ""
    clinic_id = current_user.clinic_id
    # Audit first: a commit after loading would expire the rows and reload each one while rendering.
    audit.record("patient.list", audit.current_actor(), now=utcnow())
    db.session.commit()
    rows, latest_by_patient = patient_history.patient_list(clinic_id, search)
    return render_template(
        "clinic/patients.html",
        patients=rows,
        latest=latest_by_patient,
        to_local=to_local,
        search=search,
        form=form,
    )


@bp.get("/patients/<uuid:patient_id>")
def patient(patient_id: uuid.UUID) -> str:
    """One patient: who they are for the app (zone, language) and every visit of theirs."""
    found = patient_history.patient_in_clinic(current_user.clinic_id, patient_id)
    if found is None:
        abort(404)
    audit.record("patient.view", audit.current_actor(), ("patient", found.id), now=utcnow())
    db.session.commit()
    return render_template(
        "clinic/patient.html",
        patient=found,
        visits=patient_history.visit_summaries(found),
        regions=REGIONS,
        deletion_pending=patient_data.pending_request(found.id),
    )
