"""The check-in page (works without JavaScript) and the result of one check-in."""

from __future__ import annotations

import uuid
from typing import Any

from flask import (
    Response,
    abort,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _
from sqlalchemy import select

from companion.care.clinic_rules import rules_for
from companion.care.triage import SYMPTOMS
from companion.checkins.store import (
    CheckInConflict,
    CheckInDetails,
    submit_checkin,
    visit_scores,
)
from companion.extensions import db
from companion.forms import CheckInForm
from companion.models import CheckIn, Visit
from companion.patient import bp, page_context, require_link
from companion.timeutil import hours_since, utcnow


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
