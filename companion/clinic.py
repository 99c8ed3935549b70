"""Therapist pages: patients with their latest check-in, one patient's visits, recording a visit,
the visit page."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import segno
from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import gettext as _
from flask_babel import ngettext
from flask_login import current_user, login_required
from markupsafe import Markup
from sqlalchemy import func, or_, select
from sqlalchemy.orm import selectinload

from . import audit, exports, patient_data, patient_history
from .api import patient_url
from .audit_view import AUDIT_ACTIONS, audit_actor
from .auth import therapist_names
from .care import stretches
from .care.helped import HELPED
from .care.regions import BY_CODE as REGIONS
from .care.triage import SYMPTOMS
from .chart import soreness_chart
from .clinic_settings import rules_for
from .extensions import db
from .forms import (
    ActionForm,
    ConfirmDeletionForm,
    DeclineDeletionForm,
    SearchForm,
    VisitForm,
)
from .models import (
    Alert,
    ApiKey,
    AuditEvent,
    CheckIn,
    Clinic,
    DeletionRequest,
    Patient,
    Reminder,
    Visit,
)
from .reminder_view import REMINDER_KINDS, delivery_summary
from .review import reason_text
from .timeutil import EARLIEST_YEAR, LATEST_YEAR, plausible_year, to_local, utcnow
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


@bp.context_processor
def _pending_deletions() -> dict[str, int]:
    """How many deletion requests wait, for the nav (a patient waits on the clinic for these)."""
    if not current_user.is_authenticated:
        return {}
    return {"pending_deletions": patient_data.pending_count(current_user.clinic_id)}


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
    audit.by_therapist(action, now=now, target_type="visit", target_id=visit.id)


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
    audit.by_therapist("patient.list", now=utcnow())
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
    query = select(Patient).where(Patient.clinic_id == clinic_id)
    if search:
        query = query.where(matches(search, Patient.ref, Patient.display_name))
    rows = db.session.scalars(
        query.options(selectinload(Patient.visits)).order_by(Patient.display_name)
    ).all()
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
    audit.by_therapist("patient.view", now=utcnow(), target_type="patient", target_id=found.id)
    db.session.commit()
    return render_template(
        "clinic/patient.html",
        patient=found,
        visits=patient_history.visit_summaries(found),
        regions=REGIONS,
        deletion_pending=patient_data.pending_request(found.id),
    )


def matches(text: str, *columns: Any) -> Any:
    """Case-insensitive "contains" on any of the columns; % and _ typed by the user are literal."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    pattern = f"%{escaped}%"
    return or_(*(func.lower(c).like(func.lower(pattern), escape="\\") for c in columns))


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
    if not plausible_year(form.performed_at.data.year):
        form.performed_at.errors.append(
            _(
                "Give a date between the years %(first)d and %(last)d.",
                first=EARLIEST_YEAR,
                last=LATEST_YEAR,
            )
        )
        return None
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
            # The form shows who they are: a view of the patient like any other.
            audit.by_therapist(
                "patient.view", now=utcnow(), target_type="patient", target_id=patient.id
            )
            db.session.commit()
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
        _audit_visit("visit.view", visit, utcnow())  # the form shows the whole visit record
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
    history = db.session.scalars(
        select(Alert).where(Alert.visit_id == visit.id).order_by(Alert.raised_at.desc())
    ).all()
    therapists = therapist_names(current_user.clinic_id)
    chart = soreness_chart(
        visit.performed_at, [(c.recorded_at, c.soreness) for c in checkins], rules_for(visit.clinic)
    )
    now = utcnow()
    live = [link for link in visit.links if link.usable(now)]
    _audit_visit("visit.view", visit, now)
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
        symptoms=SYMPTOMS,
        helped=HELPED,
        to_local=to_local,
        action_form=ActionForm(),
        deletion_pending=patient_data.pending_request(visit.patient_id),
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
        try:
            moment = moment.astimezone(UTC)
        except OverflowError:
            abort(400)  # 0001-01-01T00:00+14:00 is before the first moment UTC can hold
        query = query.where(AuditEvent.at < moment)
    events = db.session.scalars(
        query.order_by(AuditEvent.at.desc(), AuditEvent.id.desc()).limit(AUDIT_PAGE + 1)
    ).all()
    more = len(events) > AUDIT_PAGE
    events = events[:AUDIT_PAGE]
    # Names for the actors, in two queries whatever the page holds.
    therapists = therapist_names(clinic_id)
    keys = dict(
        db.session.execute(
            select(ApiKey.id, ApiKey.prefix).where(ApiKey.clinic_id == clinic_id)
        ).all()
    )
    # Links only to what still exists: a deleted patient's visits would only lead to a 404.
    visit_targets = {e.target_id for e in events if e.target_type == "visit" and e.target_id}
    patient_targets = {e.target_id for e in events if e.target_type == "patient" and e.target_id}
    live_visits = {
        str(v)
        for v in db.session.scalars(
            select(Visit.id).where(
                Visit.clinic_id == clinic_id, Visit.id.in_(_uuids(visit_targets))
            )
        )
    }
    live_patients = {
        str(p)
        for p in db.session.scalars(
            select(Patient.id).where(
                Patient.clinic_id == clinic_id, Patient.id.in_(_uuids(patient_targets))
            )
        )
    }
    return render_template(
        "clinic/audit.html",
        events=events,
        live_visits=live_visits,
        live_patients=live_patients,
        actor_name=lambda e: audit_actor(e, therapists, keys),
        labels=AUDIT_ACTIONS,
        next_before=events[-1].at.isoformat() if more else None,
        zone=current_user.clinic.timezone,
    )


def _uuids(ids: set[str]) -> list[uuid.UUID]:
    out = []
    for raw in ids:
        try:
            out.append(uuid.UUID(raw))
        except ValueError:
            continue
    return out


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


# --- deletion requests ------------------------------------------------------------------------------


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
    audit.by_therapist("deletion.list", now=utcnow())
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
    names = dict(
        db.session.execute(
            select(Patient.id, Patient.display_name).where(
                Patient.clinic_id == clinic_id,
                Patient.id.in_([r.patient_id for r in decided]),
            )
        ).all()
    )
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
    visit = _visit_or_404(visit_id)
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
