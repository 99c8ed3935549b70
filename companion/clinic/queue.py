"""The review queue, the therapists' home page: acknowledge and resolve its items."""

from __future__ import annotations

import uuid

from flask import Response, abort, redirect, render_template, request, url_for
from flask_login import current_user

from companion import audit
from companion.alerts import raising as alerts
from companion.alerts.queue import build_queue, reason_text
from companion.care.clinic_rules import rules_for
from companion.clinic import review_bp, visit_or_404
from companion.extensions import db
from companion.forms import ReviewForm
from companion.timeutil import utcnow

# On-track episodes need nobody's attention: the queue lists the newest few, the Patients page all.
# Listing all of a large clinic's made most of the page's size and render time (BENCHMARKS.md).
ON_TRACK_SHOWN = 50


@review_bp.get("/")
def queue() -> str:
    clinic = current_user.clinic
    now = utcnow()
    # The queue is also where a missing check-in shows up first: raise those before reading.
    alerts.raise_missing(clinic, now)
    audit.record("queue.view", audit.current_actor(), now=now)
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
    # Another clinic's visit, or none, is a 404 like every other page of a record (the route
    # matrix, tests/test_route_matrix.py): the alerts' own clinic check would change nothing, but
    # answering with the usual redirect would not say so.
    visit_or_404(visit_id)
    now = utcnow()
    clinic_id = current_user.clinic_id
    if action == "alert.acknowledge":
        changed = alerts.acknowledge(clinic_id, visit_id, ids, current_user.id, now)
    else:
        note = (form.note.data or "").strip() or None
        changed = alerts.resolve(clinic_id, visit_id, ids, current_user.id, note, now)
    if changed:
        # The note is clinical; the audit row says only that it was handled and how many alerts.
        audit.record(
            action, audit.current_actor(), ("visit", visit_id), now=now, detail={"alerts": changed}
        )
    db.session.commit()
    if request.form.get("back") == "visit":
        return redirect(url_for("clinic.visit", visit_id=visit_id), code=303)
    return redirect(url_for("review.queue", _anchor=f"item-{visit_id}"), code=303)


@review_bp.post("/review/<uuid:visit_id>/acknowledge")
def acknowledge(visit_id: uuid.UUID) -> Response:
    return _handle(visit_id, "alert.acknowledge")


@review_bp.post("/review/<uuid:visit_id>/resolve")
def resolve(visit_id: uuid.UUID) -> Response:
    return _handle(visit_id, "alert.resolve")
