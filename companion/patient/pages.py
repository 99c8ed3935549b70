"""Patient pages: home (guidance), check-in (works without JavaScript), own check-ins, offline page.

Every page carries a small JSON block (`page_data`) for the scripts: the texts they show, already
translated, and on the check-in page the triage rules, so an offline check-in is judged on the phone
exactly as the server will judge it."""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Any

from babel.dates import format_skeleton
from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import format_time, get_locale, get_timezone
from flask_babel import gettext as _
from sqlalchemy import select

from companion.auth import current_link
from companion.care import guidance
from companion.care.chart import soreness_chart
from companion.care.clinic_rules import rules_for
from companion.care.helped import HELPED
from companion.care.regions import BY_CODE as REGIONS
from companion.care.regions import any_over_lung
from companion.care.stretches import BY_CODE as STRETCHES
from companion.care.stretches import DOSE, PURPOSE, STOP_IF
from companion.care.triage import SYMPTOMS
from companion.checkins.store import (
    CheckInConflict,
    CheckInDetails,
    checkins_for_patient,
    submit_checkin,
    visit_scores,
)
from companion.extensions import db
from companion.forms import ActionForm, CheckInForm, QuietHoursForm
from companion.models import CheckIn, PatientLink, Visit
from companion.reminders.calendar import feed_url
from companion.reminders.planning import mark_recovered, resume_reminders
from companion.reminders.settings import set_quiet_hours, settings_for
from companion.timeutil import hours_since, utcnow
from companion.visits import patient_data

bp = Blueprint("patient", __name__, url_prefix="/me")

LANGUAGE_COOKIE = "companion_lang"


def require_link() -> PatientLink:
    link = current_link()
    if link is None:
        abort(Response(render_template("patient/link_invalid.html"), status=401))
    return link


def client_strings() -> dict[str, str]:
    """Texts the scripts show (outbox states, errors), in the page's language."""
    return {
        "saved": _("Saved on this phone."),
        "saved_offline": _(
            "Saved on this phone. It will be sent to your clinic when you are back online."
        ),
        "sent": _("Sent to your clinic."),
        "sent_count": _("Check-ins sent to your clinic: %(n)s."),
        "entry": _("Check-in of %(time)s, soreness %(score)s out of 10"),
        "rejected": _(
            "Your clinic could not accept this check-in. It is kept here. Please tell your "
            "therapist, or remove it and check in again."
        ),
        "rejected_other_visit": _(
            "This check-in was made with an earlier link and cannot be sent with this one."
        ),
        "remove": _("Remove"),
        "removed": _("Removed from this phone."),
        "unauthorized": _(
            "Your link has ended or was replaced, so these check-ins cannot be sent. Ask your "
            "clinic for a new link; they stay on this phone until then."
        ),
        "choose_score": _("Choose a number from 0 to 10."),
        # %(when)s is the browser's own "3 hours ago" / "hace 3 horas" (Intl.RelativeTimeFormat).
        "visit_was": _("Your dry-needling visit was %(when)s."),
        "not_saved": _(
            "This phone could not save your check-in. Please try again when you have a "
            "connection, or tell your clinic."
        ),
    }


def page_data(link: PatientLink | None) -> dict[str, Any]:
    data: dict[str, Any] = {"lang": str(get_locale() or "en"), "strings": client_strings()}
    if link is not None:
        data["visit_id"] = str(link.visit_id)
        data["timezone"] = link.visit.patient.timezone
    return data


def page_context(link: PatientLink) -> dict[str, Any]:
    visit = link.visit
    return {
        "link": link,
        "visit": visit,
        "patient": visit.patient,
        "clinic_phone": visit.clinic.phone,
        "emergency_number": current_app.config["EMERGENCY_NUMBER"],
        "emergency": guidance.EMERGENCY,
        "page_data": page_data(link),
        # Every patient page says so while a deletion request waits for the clinic.
        "deletion_pending": patient_data.pending_request(visit.patient_id),
    }


@bp.get("/")
def home() -> str:
    link = require_link()
    now = utcnow()
    visit = link.visit
    hours = hours_since(visit.performed_at, now)
    return render_template(
        "patient/home.html",
        **page_context(link),
        hours=hours,
        stage=guidance.current_stage(hours),
        stages=guidance.STAGES,
        normal=guidance.NORMAL,
        call_clinic=guidance.CALL_CLINIC,
        lung_field=any_over_lung(visit.regions),
        regions=[REGIONS[c].label for c in visit.regions if c in REGIONS],
        stretches=[STRETCHES[c] for c in visit.stretches if c in STRETCHES],
        stretch_dose=DOSE,
        stretch_stop=STOP_IF,
        stretch_purpose=PURPOSE,
    )


@bp.route("/check-in", methods=["GET", "POST"])
def checkin() -> Response | str | tuple[str, int]:
    link = require_link()
    form = CheckInForm()
    if request.method == "GET":
        form.client_id.data = str(uuid.uuid4())
    context = page_context(link)
    context["page_data"]["checkin"] = checkin_data(link.visit)
    status = 200
    if form.is_submitted():
        if form.validate():
            try:
                client_id = uuid.UUID(form.client_id.data)
            except ValueError:
                abort(400)
            details = CheckInDetails(
                client_id=client_id,
                recorded_at=utcnow(),
                soreness=int(form.soreness.data),
                usual_pain=int(form.usual_pain.data) if form.usual_pain.data else None,
                symptoms=list(
                    dict.fromkeys((form.red_flags.data or []) + (form.symptoms.data or []))
                ),
                helped=list(form.helped.data or []),
                note=(form.note.data or "").strip() or None,
            )
            try:
                submit_checkin(link.visit, details, now=utcnow(), timed_by_server=True)
            except CheckInConflict:
                form.form_errors.append(_("This check-in was already sent. Start a new one."))
                form.client_id.data = str(uuid.uuid4())
                return render_template("patient/checkin.html", form=form, **context), 409
            db.session.commit()
            return redirect(url_for("patient.result", client_id=client_id), code=303)
        status = 422
    return render_template("patient/checkin.html", form=form, **context), status


def checkin_data(visit: Visit) -> dict[str, Any]:
    """What checkin.js needs to judge a check-in with no network."""
    scores = visit_scores(visit)
    return {
        "performed_at": visit.performed_at.isoformat(),
        "earlier": [
            {"hours": hours_since(visit.performed_at, at), "soreness": score}
            for at, score in scores
        ],
        "rules": rules_for(visit.clinic),
    }


@bp.get("/check-in/<uuid:client_id>")
def result(client_id: uuid.UUID) -> str:
    link = require_link()
    checkin = db.session.scalar(
        select(CheckIn).where(
            CheckIn.patient_id == link.visit.patient_id, CheckIn.client_id == client_id
        )
    )
    if checkin is None:
        abort(404)
    return render_template(
        "patient/result.html", checkin=checkin, symptoms=SYMPTOMS, **page_context(link)
    )


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


def push_strings() -> dict[str, str]:
    """Texts of reminders.js (the "reminders on this phone" button and its states)."""
    return {
        "push_checking": _("Checking this phone…"),
        "push_on": _("Reminders are on for this phone."),
        "push_off": _("Reminders are off on this phone."),
        "push_turning_on": _("Turning reminders on…"),
        "push_turning_off": _("Turning reminders off…"),
        "push_dismissed": _(
            "Reminders are off on this phone: the question was closed without an answer. Tap "
            "the button again when you are ready."
        ),
        "push_blocked": _("This browser blocks notifications from this app."),
        "push_unsupported": _(
            "This browser cannot show reminders from a web app. Add them to your calendar instead."
        ),
        "push_ios": _("On iPhone and iPad, reminders only work in the app on your Home Screen."),
        "push_failed": _("Reminders could not be turned on."),
        "push_failed_offline": _(
            "There is no connection right now. Try again when you are online."
        ),
        "push_failed_unauthorized": _(
            "Your link has ended or was replaced. Ask your clinic for a new link."
        ),
        "push_failed_not_allowed": _(
            "This browser uses a notification service that we cannot send to."
        ),
        "push_failed_push_service": _("The browser could not reach its notification service."),
        "push_failed_worker": _("The app could not finish loading on this phone."),
        "push_failed_server": _("Something went wrong on our side."),
        "push_failed_hint": _("You can add the reminders to your calendar instead."),
        "push_off_failed": _(
            "Reminders could not be turned off on this phone. Please try again, or block "
            "notifications for this app in your browser's settings."
        ),
    }


def webcal(url: str) -> str:
    """The same feed as a webcal:// link, which phones open in their calendar app to subscribe."""
    scheme, _sep, rest = url.partition("://")
    return f"webcal://{rest}" if scheme in ("http", "https") else url


def reminder_time(moment: datetime) -> str:
    """ "Saturday, November 21, 3:30 PM" / "sábado, 21 de noviembre, 15:30" in the patient's zone."""
    day = format_skeleton("MMMMEEEEd", moment, tzinfo=get_timezone(), locale=get_locale())
    return f"{day}, {format_time(moment, 'short')}"


def reminders_page(
    link: PatientLink, quiet_form: QuietHoursForm | None = None, status: int = 200
) -> tuple[str, int]:
    context = page_context(link)
    context["page_data"]["strings"].update(push_strings())
    settings = settings_for(link.visit, utcnow())
    if quiet_form is None:
        quiet_form = QuietHoursForm(
            formdata=None, start=settings.quiet.start, end=settings.quiet.end
        )
    calendar = feed_url(link)
    return render_template(
        "patient/reminders.html",
        **context,
        settings=settings,
        upcoming=[(due, reminder_time(due)) for due in settings.upcoming],
        quiet_form=quiet_form,
        quiet_start=format_time(settings.quiet.start, "short", rebase=False),
        quiet_end=format_time(settings.quiet.end, "short", rebase=False),
        calendar_url=calendar,
        calendar_subscribe_url=webcal(calendar),
    ), status


@bp.get("/reminders")
def reminders() -> tuple[str, int]:
    return reminders_page(require_link())


@bp.post("/reminders/quiet-hours")
def quiet_hours() -> Response | tuple[str, int]:
    link = require_link()
    form = QuietHoursForm()
    if not form.validate():
        # Nothing is saved: the page comes back with the patient's input and what to fix.
        return reminders_page(link, form, 422)
    set_quiet_hours(link.visit, form.start.data, form.end.data, utcnow())
    db.session.commit()
    flash(_("Quiet hours saved. Your reminders follow them from now on."))
    return redirect(url_for("patient.reminders", _anchor="quiet-h"), code=303)


@bp.post("/reminders/quiet-hours/clinic")
def clinic_quiet_hours() -> Response:
    link = require_link()
    if not ActionForm().validate():
        abort(400)
    set_quiet_hours(link.visit, None, None, utcnow())
    db.session.commit()
    flash(_("Your clinic's usual quiet hours apply again."))
    return redirect(url_for("patient.reminders", _anchor="quiet-h"), code=303)


@bp.post("/reminders/recovered")
def recovered() -> Response:
    link = require_link()
    if not ActionForm().validate():
        abort(400)
    if link.visit.recovered_at is None:  # a second tap keeps the first moment
        mark_recovered(link.visit, utcnow())
        db.session.commit()
    flash(_("Reminders are stopped. We are glad you feel better."))
    return redirect(url_for("patient.reminders"), code=303)


@bp.post("/reminders/resume")
def resume() -> Response:
    link = require_link()
    if not ActionForm().validate():
        abort(400)
    if link.visit.recovered_at is not None:
        resume_reminders(link.visit, utcnow())
        db.session.commit()
    flash(_("Reminders are on again for this visit."))
    return redirect(url_for("patient.reminders"), code=303)


@bp.get("/data")
def data() -> str:
    """Your data: download it, ask for it to be deleted, and what became of the last request."""
    link = require_link()
    return render_template(
        "patient/data.html",
        **page_context(link),
        latest_request=patient_data.latest_request(link.visit.patient_id),
        moment=reminder_time,  # "Saturday, November 21, 3:30 PM", the patient's zone and language
    )


@bp.get("/data.json")
def download_data() -> Response:
    link = require_link()
    now = utcnow()
    patient = link.visit.patient
    exported = patient_data.export_data(patient, now)
    patient_data.record_download(patient, exported, now)
    db.session.commit()
    response = Response(
        json.dumps(exported, ensure_ascii=False, indent=2), mimetype="application/json"
    )
    filename = patient_data.download_filename(now)
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    response.headers["Cache-Control"] = "no-store"  # the whole record: never in any cache
    return response


@bp.route("/data/delete", methods=["GET", "POST"])
def ask_deletion() -> Response | str:
    """The confirmation step: what will be removed, who decides, and the last chance to download."""
    link = require_link()
    patient_id = link.visit.patient_id
    if request.method == "GET":
        if patient_data.pending_request(patient_id) is not None:
            return redirect(url_for("patient.data"), code=303)
        return render_template("patient/data_delete.html", **page_context(link))
    if not ActionForm().validate():
        abort(400)
    try:
        patient_data.request_deletion(link.visit.patient, utcnow())
    except patient_data.AlreadyPending:
        flash(_("You have already asked for your data to be deleted. Your clinic will confirm it."))
        return redirect(url_for("patient.data"), code=303)
    db.session.commit()
    flash(_("Your request was sent. Your clinic will confirm it."))
    return redirect(url_for("patient.data"), code=303)


@bp.get("/offline")
def offline() -> str:
    """Shown by the service worker for a page it has not kept. Needs no link: it holds no data."""
    return render_template(
        "patient/offline.html",
        page_data=page_data(None),
        emergency_number=current_app.config["EMERGENCY_NUMBER"],
        emergency=guidance.EMERGENCY,
    )


@bp.post("/language")
def language() -> Response:
    require_link()
    choice = request.form.get("language", "")
    if choice not in ("en", "es"):
        abort(400)
    back = request.form.get("next_page", "")
    # Only our own patient pages: never an open redirect ("//elsewhere.example" starts with "/").
    if not back.startswith("/me/"):
        back = url_for("patient.home")
    response = redirect(back, code=303)
    response.set_cookie(
        LANGUAGE_COOKIE,
        choice,
        max_age=60 * 60 * 24 * 30,
        httponly=True,
        samesite="Lax",
        secure=current_app.config["PATIENT_COOKIE_SECURE"],
    )
    return response
