"""Patient pages: home (guidance), check-in (works without JavaScript), own check-ins."""

from __future__ import annotations

import uuid
from typing import Any

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _
from sqlalchemy import select

from .auth import current_link
from .care import guidance
from .care.helped import HELPED
from .care.regions import BY_CODE as REGIONS
from .care.regions import any_over_lung
from .care.triage import SYMPTOMS
from .checkins import (
    CheckInConflict,
    CheckInDetails,
    checkins_for_patient,
    hours_since,
    submit_checkin,
)
from .extensions import db
from .forms import CheckInForm
from .models import CheckIn, PatientLink
from .timeutil import utcnow

bp = Blueprint("patient", __name__, url_prefix="/me")

LANGUAGE_COOKIE = "companion_lang"


def require_link() -> PatientLink:
    link = current_link()
    if link is None:
        abort(Response(render_template("patient/link_invalid.html"), status=401))
    return link


def page_context(link: PatientLink) -> dict[str, Any]:
    visit = link.visit
    return {
        "link": link,
        "visit": visit,
        "patient": visit.patient,
        "emergency_number": current_app.config["EMERGENCY_NUMBER"],
        "emergency": guidance.EMERGENCY,
    }


@bp.get("/")
def home() -> str:
    link = require_link()
    now = utcnow()
    visit = link.visit
    hours = hours_since(visit, now)
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
    )


@bp.route("/check-in", methods=["GET", "POST"])
def checkin() -> Response | str | tuple[str, int]:
    link = require_link()
    form = CheckInForm()
    if request.method == "GET":
        form.client_id.data = str(uuid.uuid4())
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
                return render_template("patient/checkin.html", form=form, **page_context(link)), 409
            db.session.commit()
            return redirect(url_for("patient.result", client_id=client_id), code=303)
        status = 422
    return render_template(
        "patient/checkin.html",
        form=form,
        lung_field=any_over_lung(link.visit.regions),
        **page_context(link),
    ), status


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
        checkins=checkins_for_patient(link.visit.patient_id),
        symptoms=SYMPTOMS,
        helped=HELPED,
        **page_context(link),
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
