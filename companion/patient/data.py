"""Your data: the patient's download of everything kept about them, and their deletion request."""

from __future__ import annotations

import json

from flask import (
    Response,
    abort,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _

from companion.extensions import db
from companion.forms import ActionForm
from companion.patient import bp, local_moment, page_context, require_link
from companion.timeutil import utcnow
from companion.visits import patient_data


@bp.get("/data")
def data() -> str:
    """Your data: download it, ask for it to be deleted, and what became of the last request."""
    link = require_link()
    return render_template(
        "patient/data.html",
        **page_context(link),
        latest_request=patient_data.latest_request(link.visit.patient_id),
        moment=local_moment,  # "Saturday, November 21, 3:30 PM", the patient's zone and language
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
