"""Therapist pages: patients with their latest check-in, recording a visit, the visit page."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import segno
from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import gettext as _
from flask_login import current_user, login_required
from markupsafe import Markup
from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from . import audit, exports
from .api import patient_url
from .audit_view import AUDIT_ACTIONS, audit_actor
from .care import stretches
from .care.helped import HELPED
from .care.regions import BY_CODE as REGIONS
from .care.triage import SYMPTOMS
from .extensions import db
from .forms import ActionForm, VisitForm
from .models import ApiKey, AuditEvent, CheckIn, Clinic, Patient, Reminder, Therapist, Visit
from .reminder_view import REMINDER_KINDS, delivery_summary
from .timeutil import to_local, utcnow
from .visits import (
    PatientDetails,
    VisitDetails,
    find_or_create_patient,
    issue_link,
    record_visit,
    revoke_links,
    update_visit,
)

bp = Blueprint("clinic", __name__)

FRESH_LINK = "fresh_link"


@bp.before_request
@login_required
def _signed_in() -> None:
    """Every page here needs a signed-in therapist (login_required runs before this body)."""


def _clinic() -> Clinic:
    return current_user.clinic


def _visit_or_404(visit_id: uuid.UUID) -> Visit:
    visit = db.session.scalar(
        select(Visit).where(Visit.id == visit_id, Visit.clinic_id == current_user.clinic_id)
    )
    if visit is None:
        abort(404)
    return visit


def _audit_visit(action: str, visit: Visit, now: datetime) -> None:
    audit.record(
        action,
        now=now,
        clinic_id=visit.clinic_id,
        actor_type="therapist",
        actor_id=current_user.id,
        target_type="visit",
        target_id=visit.id,
    )


@bp.get("/")
def index() -> Response:
    return redirect(url_for("clinic.patients"))


@bp.get("/patients")
def patients() -> str:
    clinic_id = current_user.clinic_id
    # Audit first: a commit after loading would expire the rows and reload each one while rendering.
    audit.record(
        "patient.list",
        now=utcnow(),
        clinic_id=clinic_id,
        actor_type="therapist",
        actor_id=current_user.id,
    )
    db.session.commit()
    # The newest check-in per patient, fetched with the patients in one query (no N+1).
    ranked = (
        select(
            CheckIn.id,
            func.row_number()
            .over(
                partition_by=CheckIn.patient_id,
                order_by=(CheckIn.recorded_at.desc(), CheckIn.received_at.desc()),
            )
            .label("rank"),
        )
        .join(Patient, Patient.id == CheckIn.patient_id)
        .where(Patient.clinic_id == clinic_id)
        .subquery()
    )
    latest = select(CheckIn).join(ranked, ranked.c.id == CheckIn.id).where(ranked.c.rank == 1)
    latest_by_patient = {c.patient_id: c for c in db.session.scalars(latest)}
    rows = db.session.scalars(
        select(Patient)
        .where(Patient.clinic_id == clinic_id)
        .options(selectinload(Patient.visits))
        .order_by(Patient.display_name)
    ).all()
    return render_template(
        "clinic/patients.html", patients=rows, latest=latest_by_patient, to_local=to_local
    )


def _local_to_utc(local: datetime, zone: str) -> datetime | None:
    """A wall-clock time in `zone` as UTC, or None when that time does not exist there (DST gap)."""
    aware = local.replace(tzinfo=ZoneInfo(zone))
    round_trip = aware.astimezone(ZoneInfo("UTC")).astimezone(ZoneInfo(zone))
    if round_trip.replace(tzinfo=None) != local:
        return None
    return aware.astimezone(ZoneInfo("UTC"))


def _visit_form_page(form: VisitForm, visit: Visit | None = None) -> str:
    # Which stretches to tick when a region is chosen (static/js/visit-form.js).
    defaults = {code: stretches.defaults_for([code]) for code in REGIONS}
    return render_template(
        "clinic/visit_form.html", form=form, stretch_defaults=defaults, editing=visit
    )


def _details_from(form: VisitForm) -> tuple[PatientDetails, VisitDetails] | None:
    """The form's patient and visit details, or None after adding an error to the time field."""
    performed_at = _local_to_utc(form.performed_at.data, form.timezone.data)
    if performed_at is None:
        form.performed_at.errors.append(
            _("That time does not exist in this time zone (the clocks changed). Pick another.")
        )
        return None
    patient = PatientDetails(
        form.ref.data.strip(),
        form.display_name.data.strip(),
        form.timezone.data,
        form.language.data,
    )
    visit = VisitDetails(
        performed_at=performed_at,
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
    clinic = _clinic()
    if request.method == "GET":
        existing = request.args.get("patient")
        patient = None
        if existing:
            try:
                patient = db.session.scalar(
                    select(Patient).where(
                        Patient.id == uuid.UUID(existing), Patient.clinic_id == clinic.id
                    )
                )
            except ValueError:
                patient = None
        if patient is not None:
            form.ref.data = patient.ref
            form.display_name.data = patient.display_name
            form.timezone.data = patient.timezone
            form.language.data = patient.language
        else:
            form.timezone.data = clinic.timezone
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
    _audit_visit("visit.create", visit, now)
    db.session.commit()
    # The token is shown once, on the next page; it travels in the signed session, never a URL.
    session[FRESH_LINK] = {"visit_id": str(visit.id), "token": issued.token}
    return redirect(url_for("clinic.visit", visit_id=visit.id), code=303)


@bp.route("/visits/<uuid:visit_id>/edit", methods=["GET", "POST"])
def edit_visit(visit_id: uuid.UUID) -> Response | str | tuple[str, int]:
    """Correct a visit. Unsent reminders are planned again; sent ones are never sent twice."""
    visit = _visit_or_404(visit_id)
    patient = visit.patient
    form = VisitForm()
    if request.method == "GET":
        form.ref.data = patient.ref
        form.display_name.data = patient.display_name
        form.timezone.data = patient.timezone
        form.language.data = patient.language
        form.performed_at.data = to_local(visit.performed_at, patient.timezone).replace(tzinfo=None)
        form.regions.data = list(visit.regions)
        form.stretches.data = list(visit.stretches)
        form.no_stretches.data = not visit.stretches
        form.insertions.data = visit.insertions
        form.electrical_stimulation.data = bool(visit.electrical_stimulation)
        form.first_visit.data = bool(visit.first_visit)
        form.notes.data = visit.notes
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
    _audit_visit("visit.update", visit, now)
    db.session.commit()
    return redirect(url_for("clinic.visit", visit_id=visit.id), code=303)


@bp.get("/visits/<uuid:visit_id>")
def visit(visit_id: uuid.UUID) -> str:
    visit = _visit_or_404(visit_id)
    fresh = session.pop(FRESH_LINK, None)
    url = qr = None
    if fresh and fresh.get("visit_id") == str(visit.id):
        url = patient_url(fresh["token"])
        # segno builds the SVG from the URL we made; nothing the user typed is in it.
        qr = Markup(segno.make(url, error="m").svg_inline(scale=5, dark="#000", light="#fff"))  # noqa: S704
    checkins = db.session.scalars(
        select(CheckIn).where(CheckIn.visit_id == visit.id).order_by(CheckIn.recorded_at.desc())
    ).all()
    planned = db.session.scalars(
        select(Reminder)
        .where(Reminder.visit_id == visit.id)
        .options(selectinload(Reminder.deliveries))
        .order_by(Reminder.due_at)
    ).all()
    now = utcnow()
    live = [link for link in visit.links if link.usable(now)]
    _audit_visit("visit.view", visit, now)
    db.session.commit()
    return render_template(
        "clinic/visit.html",
        visit=visit,
        patient=visit.patient,
        checkins=checkins,
        reminders=planned,
        reminder_kinds=REMINDER_KINDS,
        delivery_summary=delivery_summary,
        live_link=live[0] if live else None,
        patient_url=url,
        qr=qr,
        regions=REGIONS,
        stretches=stretches.BY_CODE,
        symptoms=SYMPTOMS,
        helped=HELPED,
        to_local=to_local,
        action_form=ActionForm(),
    )


AUDIT_PAGE = 100


@bp.get("/audit")
def audit_page() -> str:
    """Who saw or changed what, when and from where: the clinic's audit trail, newest first."""
    clinic_id = current_user.clinic_id
    query = select(AuditEvent).where(AuditEvent.clinic_id == clinic_id)
    before = request.args.get("before")
    if before:
        try:
            moment = datetime.fromisoformat(before)
        except ValueError:
            abort(400)
        if moment.tzinfo is None:
            abort(400)  # the page's own links always carry the offset
        query = query.where(AuditEvent.at < moment)
    events = db.session.scalars(
        query.order_by(AuditEvent.at.desc(), AuditEvent.id.desc()).limit(AUDIT_PAGE + 1)
    ).all()
    more = len(events) > AUDIT_PAGE
    events = events[:AUDIT_PAGE]
    # Names for the actors, in two queries whatever the page holds.
    therapists = dict(
        db.session.execute(
            select(Therapist.id, Therapist.email).where(Therapist.clinic_id == clinic_id)
        ).all()
    )
    keys = dict(
        db.session.execute(
            select(ApiKey.id, ApiKey.prefix).where(ApiKey.clinic_id == clinic_id)
        ).all()
    )
    return render_template(
        "clinic/audit.html",
        events=events,
        actor_name=lambda e: audit_actor(e, therapists, keys),
        labels=AUDIT_ACTIONS,
        next_before=events[-1].at.isoformat() if more else None,
        zone=current_user.clinic.timezone,
    )


@bp.get("/exports")
def exports_page() -> str | tuple[str, int]:
    """Choose a range of days and download the clinic's check-ins as CSV."""
    clinic = _clinic()
    today = to_local(utcnow(), clinic.timezone).date()
    return render_template(
        "clinic/exports.html",
        first=request.args.get("from") or (today - timedelta(days=29)).isoformat(),
        last=request.args.get("to") or today.isoformat(),
        error=None,
    )


@bp.get("/exports/checkins.csv")
def export_checkins() -> Response | tuple[str, int]:
    clinic = _clinic()
    try:
        days = exports.DateRange.parse(request.args.get("from"), request.args.get("to"))
    except exports.RangeError as exc:
        messages = {
            "from": _("Choose the first day."),
            "to": _("Choose a last day on or after the first, at most 366 days later."),
        }
        page = render_template(
            "clinic/exports.html",
            first=request.args.get("from", ""),
            last=request.args.get("to", ""),
            error=(exc.field, messages[exc.field]),
        )
        return page, 422
    return exports.csv_download(clinic, days, actor_type="therapist", actor_id=current_user.id)


@bp.post("/visits/<uuid:visit_id>/link")
def reissue_link(visit_id: uuid.UUID) -> Response:
    visit = _visit_or_404(visit_id)
    form = ActionForm()
    if not form.validate_on_submit():
        abort(400)
    now = utcnow()
    issued = issue_link(visit, link_days=current_app.config["PATIENT_LINK_DAYS"], now=now)
    _audit_visit("link.reissue", visit, now)
    db.session.commit()
    session[FRESH_LINK] = {"visit_id": str(visit.id), "token": issued.token}
    return redirect(url_for("clinic.visit", visit_id=visit.id), code=303)


@bp.post("/visits/<uuid:visit_id>/link/revoke")
def revoke_link(visit_id: uuid.UUID) -> Response:
    visit = _visit_or_404(visit_id)
    form = ActionForm()
    if not form.validate_on_submit():
        abort(400)
    now = utcnow()
    revoke_links(visit, now)
    _audit_visit("link.revoke", visit, now)
    db.session.commit()
    return redirect(url_for("clinic.visit", visit_id=visit.id), code=303)
