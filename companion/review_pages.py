"""Therapist pages for the review queue (the therapist's home page) and the clinic's settings."""

from __future__ import annotations

import uuid

from flask import Blueprint, Response, abort, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required

from . import alerts, audit
from .care.triage import ENVELOPE
from .clinic_settings import EnvelopeStep, apply_settings, envelope_of, rules_for
from .extensions import db
from .forms import ClinicSettingsForm, ReviewForm
from .planning import replan_clinic_default
from .review import build_queue, reason_text
from .timeutil import utcnow

bp = Blueprint("review", __name__)

# On-track episodes need nobody's attention: the queue lists the newest few, the Patients page all.
# Listing all of a large clinic's made most of the page's size and render time (BENCHMARKS.md).
ON_TRACK_SHOWN = 50


@bp.before_request
@login_required
def _signed_in() -> None:
    """Every page here needs a signed-in therapist (login_required runs before this body)."""


@bp.get("/")
def queue() -> str:
    clinic = current_user.clinic
    now = utcnow()
    # The queue is also where a missing check-in shows up first: raise those before reading.
    alerts.raise_missing(clinic, now)
    audit.by_therapist("queue.view", now=now)
    # Commit before loading: a commit afterwards would expire every row and reload each one.
    db.session.commit()
    rules = rules_for(clinic)
    return render_template(
        "clinic/queue.html",
        queue=build_queue(clinic, rules, now),
        reason_text=reason_text,
        now=now,
        on_track_shown=ON_TRACK_SHOWN,
    )


def _alert_ids(form: ReviewForm) -> list[uuid.UUID]:
    try:
        ids = [uuid.UUID(part) for part in (form.alerts.data or "").split()]
    except ValueError:
        abort(400)
    if not ids or len(ids) > 200:
        abort(400)
    return ids


def _handle(visit_id: uuid.UUID, action: str) -> Response:
    form = ReviewForm()
    if not form.validate_on_submit():
        abort(400)
    ids = _alert_ids(form)
    now = utcnow()
    clinic_id = current_user.clinic_id
    if action == "alert.acknowledge":
        changed = alerts.acknowledge(clinic_id, visit_id, ids, current_user.id, now)
    else:
        note = (form.note.data or "").strip() or None
        changed = alerts.resolve(clinic_id, visit_id, ids, current_user.id, note, now)
    if changed:
        # The note is clinical; the audit row says only that it was handled and how many alerts.
        audit.by_therapist(
            action,
            now=now,
            target_type="visit",
            target_id=visit_id,
            detail={"alerts": changed},
        )
    db.session.commit()
    if request.form.get("back") == "visit":
        return redirect(url_for("clinic.visit", visit_id=visit_id), code=303)
    return redirect(url_for("review.queue", _anchor=f"item-{visit_id}"), code=303)


@bp.post("/review/<uuid:visit_id>/acknowledge")
def acknowledge(visit_id: uuid.UUID) -> Response:
    return _handle(visit_id, "alert.acknowledge")


@bp.post("/review/<uuid:visit_id>/resolve")
def resolve(visit_id: uuid.UUID) -> Response:
    return _handle(visit_id, "alert.resolve")


@bp.route("/settings/clinic", methods=["GET", "POST"])
def clinic_settings() -> Response | str | tuple[str, int]:
    clinic = current_user.clinic
    form = ClinicSettingsForm()
    if not form.is_submitted():
        form.episode_days.data = clinic.episode_days
        form.quiet_start.data = clinic.quiet_start
        form.quiet_end.data = clinic.quiet_end
        for entry, window in zip(form.envelope.entries, envelope_of(clinic), strict=True):
            entry.form.usual_max.data = window.usual_max
            entry.form.amber_at.data = window.amber_at
        return _settings_page(form, saved=request.args.get("saved") == "1")
    if not form.validate():
        return _settings_page(form, saved=False), 422
    now = utcnow()
    steps = [EnvelopeStep(e.form.usual_max.data, e.form.amber_at.data) for e in form.envelope]
    changed = apply_settings(clinic, steps, form.episode_days.data)
    quiet_changed = (clinic.quiet_start, clinic.quiet_end) != (
        form.quiet_start.data,
        form.quiet_end.data,
    )
    if quiet_changed:
        clinic.quiet_start, clinic.quiet_end = form.quiet_start.data, form.quiet_end.data
        replan_clinic_default(clinic, now)
    if changed or quiet_changed:
        audit.by_therapist("clinic.settings", now=now)
    db.session.commit()
    return redirect(url_for("review.clinic_settings", saved=1), code=303)


def _settings_page(form: ClinicSettingsForm, saved: bool) -> str:
    windows = [
        _("%(start)s to %(end)s h", start=w.from_hours, end=w.to_hours)
        if i < len(ENVELOPE) - 1
        else _("from %(start)s h", start=w.from_hours)
        for i, w in enumerate(ENVELOPE)
    ]
    return render_template(
        "clinic/settings.html",
        form=form,
        windows=windows,
        saved=saved,
    )
