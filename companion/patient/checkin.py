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

from companion.care import pgic
from companion.care.clinic_rules import rules_for
from companion.care.triage import SYMPTOMS
from companion.checkins.store import (
    MAX_CHECKINS_PER_VISIT,
    CheckInConflict,
    CheckInDetails,
    PgicTooEarly,
    RecordedBeforeVisit,
    VisitFull,
    submit_checkin,
    visit_scores,
)
from companion.extensions import db
from companion.forms import CheckInForm
from companion.models import CheckIn, Visit
from companion.patient import bp, next_step, page_context, require_link
from companion.timeutil import hours_since, utcnow


@bp.route("/check-in", methods=["GET", "POST"])
def checkin() -> Response | str | tuple[str, int]:
    link = require_link()
    form = CheckInForm()
    if request.method == "GET":
        form.client_id.data = str(uuid.uuid4())
    context = page_context(link)
    context["page_data"]["checkin"] = checkin_data(link.visit)
    # A red result here starts as "not sent yet"; checkin.js swaps in what the server's answer says.
    context["page_data"]["red_next"] = next_step.page_sentences(link.visit.clinic, utcnow())
    context["red_next_step"] = next_step.offline(link.visit.clinic)
    # The day-7 question shows from day 6 (care/pgic.py); the day-7 reminder opens this page.
    context["ask_pgic"] = pgic.asked(link.visit.performed_at, utcnow())
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
                pgic=int(form.pgic.data) if form.pgic.data else None,
            )
            try:
                submit_checkin(link.visit, details, now=utcnow(), timed_by_server=True)
            except CheckInConflict:
                form.form_errors.append(_("This check-in was already sent. Start a new one."))
                form.client_id.data = str(uuid.uuid4())
                return render_template("patient/checkin.html", form=form, **context), 409
            except PgicTooEarly:
                # A page drawn from day 6, sent after the therapist moved the visit later (or a
                # hand-made request). Nothing is stored; the page comes back without the question.
                form.form_errors.append(
                    _(
                        "The question about your usual pain opens later. Nothing was saved yet: "
                        "please press Send again."
                    )
                )
                form.pgic.data = None
                return render_template("patient/checkin.html", form=form, **context), 422
            except RecordedBeforeVisit:
                # The page stamps the entry on arrival, so only a visit set in the future (a
                # therapist's typing slip, or a link opened early) gets here. Nothing is stored.
                form.form_errors.append(
                    _(
                        "Your visit has not happened yet, so there is nothing to check in about. "
                        "Nothing was saved."
                    )
                )
                return render_template("patient/checkin.html", form=form, **context), 422
            except VisitFull:
                form.form_errors.append(
                    _(
                        "This visit already has %(count)s check-ins, the most one visit can "
                        "hold. Nothing was saved: if you need to tell your clinic something, "
                        "please call them.",
                        count=MAX_CHECKINS_PER_VISIT,
                    )
                )
                return render_template("patient/checkin.html", form=form, **context), 429
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
        # checkin.js sends the day-7 answer only for an entry made this long after the visit.
        "pgic_from_hours": pgic.ASKED_FROM.total_seconds() / 3600,
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
        "patient/result.html",
        checkin=checkin,
        symptoms=SYMPTOMS,
        # The clinic has this check-in: what it will do with it now (open, closed until, unknown).
        red_next_step=next_step.sentence(
            link.visit.clinic, next_step.status_of(link.visit.clinic, utcnow())
        ),
        **page_context(link),
    )
