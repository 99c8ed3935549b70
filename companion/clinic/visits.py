"""A visit: recording and correcting it, its page (chart, check-ins, alerts, reminders), its patient link."""

from __future__ import annotations

import uuid

import segno
from flask import Response, abort, current_app, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from markupsafe import Markup

from companion import audit
from companion.alerts.queue import reason_text
from companion.api.views import patient_url
from companion.care import pgic, stretches
from companion.care.chart import soreness_chart
from companion.care.clinic_rules import rules_for
from companion.care.helped import HELPED
from companion.care.regions import BY_CODE as REGIONS
from companion.care.triage import SYMPTOMS
from companion.checkins.store import latest_checkin_time
from companion.clinic import (
    audit_visit,
    bp,
    current_clinic,
    fresh_token,
    hold_fresh_link,
    visit_or_404,
)
from companion.extensions import db
from companion.forms import ActionForm, VisitForm
from companion.models import Visit, therapist_names
from companion.reminders.deliveries import REMINDER_KINDS, delivery_summary
from companion.timeutil import (
    EARLIEST_YEAR,
    LATEST_YEAR,
    plausible_year,
    skipped,
    to_local,
    utcnow,
    wall_clock_to_utc,
)
from companion.visits import history as patient_history
from companion.visits import patient_data, stretch_done
from companion.visits.record import (
    PatientDetails,
    VisitDetails,
    find_or_create_patient,
    issue_link,
    record_visit,
    revoke_links,
    update_visit,
)


def _visit_form_page(form: VisitForm, visit: Visit | None = None) -> str:
    # Which stretches to tick when a region is chosen (static/js/visit-form.js).
    defaults = {code: stretches.defaults_for([code]) for code in REGIONS}
    return render_template(
        "clinic/visit_form.html", form=form, stretch_defaults=defaults, editing=visit
    )


def _details_from(form: VisitForm) -> tuple[PatientDetails, VisitDetails] | None:
    """The form's patient and visit details, or None after adding an error to the time field."""
    if not plausible_year(form.performed_at.data.year):
        form.performed_at.errors.append(
            _(
                "Give a date between the years %(first)d and %(last)d.",
                first=EARLIEST_YEAR,
                last=LATEST_YEAR,
            )
        )
        return None
    local, zone = form.performed_at.data, form.timezone.data
    if skipped(local, zone):
        form.performed_at.errors.append(
            _("That time does not exist in this time zone (the clocks changed). Pick another.")
        )
        return None
    patient = PatientDetails(
        form.ref.data.strip(),
        form.display_name.data.strip(),
        form.timezone.data,
        form.language.data,
        # Normalized by the form's validators; empty clears the stored value.
        phone=form.phone.data or None,
        email=form.email.data or None,
    )
    visit = VisitDetails(
        performed_at=wall_clock_to_utc(local.date(), local.time(), zone),
        regions=list(form.regions.data),
        stretches=[] if form.no_stretches.data else (list(form.stretches.data) or None),
        insertions=form.insertions.data,
        electrical_stimulation=form.electrical_stimulation.data,
        first_visit=form.first_visit.data,
        notes=(form.notes.data or "").strip() or None,
    )
    return patient, visit


@bp.route("/visits/new", methods=["GET", "POST"])
def new_visit() -> Response | str | tuple[str, int]:
    form = VisitForm()
    clinic = current_clinic()
    if request.method == "GET":
        existing = request.args.get("patient")
        patient = None
        if existing:
            try:
                patient = patient_history.patient_in_clinic(clinic.id, uuid.UUID(existing))
            except ValueError:
                patient = None
        if patient is not None:
            # The form shows who they are: a view of the patient like any other.
            audit.record(
                "patient.view", audit.current_actor(), ("patient", patient.id), now=utcnow()
            )
            db.session.commit()
            form.ref.data = patient.ref
            form.display_name.data = patient.display_name
            form.timezone.data = patient.timezone
            form.language.data = patient.language
            form.phone.data = patient.phone
            form.email.data = patient.email
        else:
            form.timezone.data = clinic.timezone
            # A new patient: the clinic's default language (its profile), changeable here.
            form.language.data = clinic.default_language
        zone = form.timezone.data or "UTC"
        form.performed_at.data = to_local(utcnow(), zone).replace(
            tzinfo=None, second=0, microsecond=0
        )
        return _visit_form_page(form)

    if not form.validate():
        return _visit_form_page(form), 422
    details = _details_from(form)
    if details is None:
        return _visit_form_page(form), 422
    now = utcnow()
    patient = find_or_create_patient(clinic, details[0])
    visit, issued = record_visit(
        clinic,
        patient,
        details[1],
        therapist_id=current_user.id,
        link_days=current_app.config["PATIENT_LINK_DAYS"],
        now=now,
    )
    audit_visit("visit.create", visit, now)
    db.session.commit()
    # The token travels in the signed session, never a URL (clinic.FRESH_LINKS).
    hold_fresh_link(visit.id, issued.token)
    return redirect(url_for("clinic.visit", visit_id=visit.id), code=303)


@bp.route("/visits/<uuid:visit_id>/edit", methods=["GET", "POST"])
def edit_visit(visit_id: uuid.UUID) -> Response | str | tuple[str, int]:
    """Correct a visit. Unsent reminders are planned again; sent ones are never sent twice."""
    visit = visit_or_404(visit_id)
    patient = visit.patient
    form = VisitForm()
    if request.method == "GET":
        form.ref.data = patient.ref
        form.display_name.data = patient.display_name
        form.timezone.data = patient.timezone
        form.language.data = patient.language
        form.phone.data = patient.phone
        form.email.data = patient.email
        form.performed_at.data = to_local(visit.performed_at, patient.timezone).replace(tzinfo=None)
        form.regions.data = list(visit.regions)
        form.stretches.data = list(visit.stretches)
        form.no_stretches.data = not visit.stretches
        form.insertions.data = visit.insertions
        form.electrical_stimulation.data = bool(visit.electrical_stimulation)
        form.first_visit.data = bool(visit.first_visit)
        form.notes.data = visit.notes
        audit_visit("visit.view", visit, utcnow())  # the form shows the whole visit record
        db.session.commit()
        return _visit_form_page(form, visit)
    if not form.validate():
        return _visit_form_page(form, visit), 422
    if form.ref.data.strip() != patient.ref:
        form.ref.errors.append(
            _("The patient reference cannot change here: record a new visit for another patient.")
        )
        return _visit_form_page(form, visit), 422
    details = _details_from(form)
    if details is None:
        return _visit_form_page(form, visit), 422
    now = utcnow()
    update_visit(visit, details[0], details[1], now)
    audit_visit("visit.update", visit, now)
    db.session.commit()
    return redirect(url_for("clinic.visit", visit_id=visit.id), code=303)


@bp.get("/visits/<uuid:visit_id>")
def visit(visit_id: uuid.UUID) -> str:
    visit = visit_or_404(visit_id)
    now = utcnow()
    token = fresh_token(visit, now)
    url = patient_url(token) if token else None
    qr = qr_svg(url) if url else None
    checkins, planned, history = patient_history.visit_record(visit)
    therapists = therapist_names(current_user.clinic_id)
    chart = soreness_chart(
        visit.performed_at,
        [(c.recorded_at, c.soreness, c.triage) for c in checkins],
        rules_for(visit.clinic),
        until=latest_checkin_time(visit),
    )
    live = [link for link in visit.links if link.usable(now)]
    audit_visit("visit.view", visit, now)
    db.session.commit()
    return render_template(
        "clinic/visit.html",
        visit=visit,
        patient=visit.patient,
        checkins=checkins,
        chart=chart,
        alerts=history,
        therapists=therapists,
        reason_text=reason_text,
        reminders=planned,
        reminder_kinds=REMINDER_KINDS,
        delivery_summary=delivery_summary,
        live_link=live[0] if live else None,
        patient_url=url,
        qr=qr,
        regions=REGIONS,
        stretches=stretches.BY_CODE,
        adherence=stretch_done.adherence(visit, now),
        symptoms=SYMPTOMS,
        helped=HELPED,
        pgic_summary=pgic.summary,
        to_local=to_local,
        action_form=ActionForm(),
        deletion_pending=patient_data.pending_request(visit.patient_id),
    )


@bp.post("/visits/<uuid:visit_id>/link")
def reissue_link(visit_id: uuid.UUID) -> Response:
    visit = visit_or_404(visit_id)
    form = ActionForm()
    if not form.validate_on_submit():
        abort(400)
    issue_new_link(visit)
    return redirect(url_for("clinic.visit", visit_id=visit.id), code=303)


def issue_new_link(visit: Visit) -> None:
    """Revoke the visit's links and issue a new one, audited, held for this session
    (clinic.FRESH_LINKS): the visit page's button and the handout's reissue both come here."""
    now = utcnow()
    issued = issue_link(visit, link_days=current_app.config["PATIENT_LINK_DAYS"], now=now)
    audit_visit("link.reissue", visit, now)
    db.session.commit()
    hold_fresh_link(visit.id, issued.token)


def qr_svg(url: str) -> Markup:
    """The link as an inline SVG QR code (no third-party origin), sized by the stylesheet."""
    # segno builds the SVG from the URL we made; nothing the user typed is in it.
    svg = segno.make(url, error="m").svg_inline(scale=5, dark="#000", light="#fff", omitsize=True)
    return Markup(svg)  # noqa: S704


@bp.post("/visits/<uuid:visit_id>/link/revoke")
def revoke_link(visit_id: uuid.UUID) -> Response:
    visit = visit_or_404(visit_id)
    form = ActionForm()
    if not form.validate_on_submit():
        abort(400)
    now = utcnow()
    revoke_links(visit, now)
    audit_visit("link.revoke", visit, now)
    db.session.commit()
    return redirect(url_for("clinic.visit", visit_id=visit.id), code=303)
