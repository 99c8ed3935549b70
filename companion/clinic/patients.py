"""The patients: the clinic's list with each one's newest check-in, and one patient's visits,
contact details and alerts."""

from __future__ import annotations

import uuid

import phonenumbers
from flask import Response, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from companion import audit
from companion.alerts.queue import reason_text
from companion.alerts.records import alert_records
from companion.care.regions import BY_CODE as REGIONS
from companion.clinic import bp
from companion.extensions import db
from companion.forms import PatientForm, SearchForm
from companion.models import therapist_names
from companion.timeutil import to_local, utcnow
from companion.visits import history as patient_history
from companion.visits import patient_data
from companion.visits.record import PatientDetails, ref_taken, update_patient


@bp.app_template_filter("phone")
def readable_phone(e164: str) -> str:
    """A stored E.164 number as people read it ("+34 612 34 56 78"), for the link's text; the
    tel: link itself keeps the E.164 value. A number the library cannot read is shown as stored."""
    try:
        number = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return e164
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)


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
    """One patient: who they are for the app (zone, language), how to reach them, every visit of
    theirs and every alert those visits raised, handled or not."""
    clinic_id = current_user.clinic_id
    found = patient_history.patient_in_clinic(clinic_id, patient_id)
    if found is None:
        abort(404)
    audit.record("patient.view", audit.current_actor(), ("patient", found.id), now=utcnow())
    db.session.commit()
    return render_template(
        "clinic/patient.html",
        patient=found,
        visits=patient_history.visit_summaries(found),
        alerts=alert_records(clinic_id, patient_id=found.id),
        therapists=therapist_names(clinic_id),
        reason_text=reason_text,
        regions=REGIONS,
        deletion_pending=patient_data.pending_request(found.id),
    )


@bp.route("/patients/<uuid:patient_id>/edit", methods=["GET", "POST"])
def edit_patient(patient_id: uuid.UUID) -> Response | str | tuple[str, int]:
    """Change a patient's name, reference, contact details, time zone or language. Any therapist
    of the clinic may: these are the details they record on every visit anyway."""
    found = patient_history.patient_in_clinic(current_user.clinic_id, patient_id)
    if found is None:
        abort(404)
    form = PatientForm()
    if request.method == "GET":
        for name in ("ref", "display_name", "timezone", "language", "phone", "email"):
            getattr(form, name).data = getattr(found, name)
        # The form shows who they are and how to reach them: a view like the patient page.
        audit.record("patient.view", audit.current_actor(), ("patient", found.id), now=utcnow())
        db.session.commit()
        return render_template("clinic/patient_form.html", form=form, patient=found)
    if not form.validate():
        return render_template("clinic/patient_form.html", form=form, patient=found), 422
    ref = form.ref.data.strip()
    if ref_taken(found.clinic_id, ref, found.id):
        form.ref.errors.append(_("Another patient of the clinic already has this reference."))
        return render_template("clinic/patient_form.html", form=form, patient=found), 422
    now = utcnow()
    changed = update_patient(
        found,
        PatientDetails(
            ref,
            form.display_name.data.strip(),
            form.timezone.data,
            form.language.data,
            # Normalized by the form's validators; empty clears the stored value.
            phone=form.phone.data or None,
            email=form.email.data or None,
        ),
        now,
    )
    # Which fields changed, never their values (audit.py: no personal data in `detail`).
    audit.record(
        "patient.update",
        audit.current_actor(),
        ("patient", found.id),
        now=now,
        detail={"fields": changed},
    )
    db.session.commit()
    if "timezone" in changed:
        flash(_("Saved. Reminders not yet sent were planned again for the new time zone."))
    elif changed:
        flash(_("Saved."))
    return redirect(url_for("clinic.patient", patient_id=found.id), code=303)
