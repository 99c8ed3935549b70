"""Deletion requests: a patient's request to delete their data, confirmed or declined here."""

from __future__ import annotations

import uuid
from typing import Any

from flask import Response, abort, flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_babel import ngettext
from flask_login import current_user

from companion import audit
from companion.clinic import bp, visit_or_404
from companion.extensions import db
from companion.forms import ActionForm, ConfirmDeletionForm, DeclineDeletionForm
from companion.models import DeletionRequest, therapist_names
from companion.timeutil import utcnow
from companion.visits import history, patient_data


def _deletion_request_or_404(request_id: uuid.UUID) -> DeletionRequest:
    found = patient_data.request_in_clinic(request_id, current_user.clinic_id)
    if found is None:
        abort(404)
    return found


def _deletions_page(
    failed: tuple[uuid.UUID, ConfirmDeletionForm | DeclineDeletionForm] | None = None,
) -> str:
    clinic_id = current_user.clinic_id
    # The page names the patients who asked: a therapist read of patient data, audited first (a
    # commit after loading would expire the rows).
    audit.record("deletion.list", audit.current_actor(), now=utcnow())
    db.session.commit()
    pending = patient_data.pending_for_clinic(clinic_id)
    decided = patient_data.decided_for_clinic(clinic_id)
    confirm_forms: dict[uuid.UUID, ConfirmDeletionForm] = {
        row.request.id: ConfirmDeletionForm(formdata=None) for row in pending
    }
    decline_forms: dict[uuid.UUID, DeclineDeletionForm] = {
        row.request.id: DeclineDeletionForm(formdata=None) for row in pending
    }
    if failed is not None:
        request_id, form = failed
        forms: dict[uuid.UUID, Any] = (
            confirm_forms if isinstance(form, ConfirmDeletionForm) else decline_forms
        )
        forms[request_id] = form
    therapists = therapist_names(clinic_id)
    # Names for declined requests whose patient is still here; a deleted patient has none.
    names = history.names_of(clinic_id, [r.patient_id for r in decided])
    return render_template(
        "clinic/deletion_requests.html",
        pending=pending,
        decided=decided,
        confirm_forms=confirm_forms,
        decline_forms=decline_forms,
        failed_id=failed[0] if failed else None,
        therapists=therapists,
        names=names,
        zone=current_user.clinic.timezone,
    )


@bp.get("/deletion-requests")
def deletion_requests() -> str:
    return _deletions_page()


@bp.post("/deletion-requests/<uuid:request_id>/confirm")
def confirm_deletion(request_id: uuid.UUID) -> Response | tuple[str, int]:
    found = _deletion_request_or_404(request_id)
    form = ConfirmDeletionForm()
    if not form.validate():
        return _deletions_page((found.id, form)), 422
    try:
        removed = patient_data.confirm_deletion(found, current_user.id, utcnow())
    except patient_data.NotPending:
        db.session.rollback()
        flash(_("This request was already confirmed or declined."))
    except patient_data.ReminderInFlight:
        db.session.rollback()
        flash(
            _(
                "A reminder is being sent to this patient at this moment, so nothing was deleted. "
                "Please try again in a few minutes."
            )
        )
    else:
        db.session.commit()
        flash(
            _(
                "The patient's data was deleted: %(visits)s and %(checkins)s.",
                visits=ngettext("%(num)d visit", "%(num)d visits", removed.visits),
                checkins=ngettext("%(num)d check-in", "%(num)d check-ins", removed.checkins),
            )
        )
    return redirect(url_for("clinic.deletion_requests"), code=303)


@bp.post("/deletion-requests/<uuid:request_id>/decline")
def decline_deletion(request_id: uuid.UUID) -> Response | tuple[str, int]:
    found = _deletion_request_or_404(request_id)
    form = DeclineDeletionForm()
    if not form.validate():
        return _deletions_page((found.id, form)), 422
    try:
        patient_data.decline_deletion(found, current_user.id, form.reason.data or "", utcnow())
    except patient_data.NotPending:
        db.session.rollback()
        flash(_("This request was already confirmed or declined."))
    else:
        db.session.commit()
        flash(_("The request was declined. The patient sees your reason on their Your data page."))
    return redirect(url_for("clinic.deletion_requests"), code=303)


@bp.post("/visits/<uuid:visit_id>/deletion-request")
def request_deletion(visit_id: uuid.UUID) -> Response:
    """Record a request the patient made by phone or at the desk; it is confirmed like any other."""
    visit = visit_or_404(visit_id)
    if not ActionForm().validate_on_submit():
        abort(400)
    try:
        patient_data.request_deletion(visit.patient, utcnow(), therapist_id=current_user.id)
    except patient_data.AlreadyPending:
        flash(_("This patient already has a deletion request waiting."))
    else:
        db.session.commit()
        flash(_("The deletion request is recorded. Confirm or decline it here."))
    return redirect(url_for("clinic.deletion_requests"), code=303)
