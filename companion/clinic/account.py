"""The therapist's own account: two-step sign-in (turn on with a QR code, turn off, new recovery
codes); the clinic's requirement that sends an unenrolled therapist here first; and an admin's
reset of a colleague's second factor.

While enrolment waits for its first code, the new secret lives in the session only: nothing is
stored until a code from the app proves the app holds it. The recovery codes are shown once, in
the answer to the form that made them, and never again (only their hashes are kept).
"""

from __future__ import annotations

import uuid
from typing import Final

import segno
from flask import Response, abort, flash, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_login import current_user
from markupsafe import Markup

from companion import audit
from companion.accounts import recovery, two_step
from companion.auth.second_step import codes_locked, count_wrong_code
from companion.clinic import admin_only, bp, review_bp
from companion.clinic.notifications import bp as notifications_bp
from companion.errors import APIError
from companion.extensions import db
from companion.forms import ActionForm, CodeForm
from companion.timeutil import utcnow

SETUP: Final = "two_step_setup"  # the session key of the secret waiting for its first code
# What an unenrolled therapist may still open when the clinic requires two-step sign-in.
_OPEN_WHILE_ENROLLING: Final = frozenset(
    {
        "clinic.two_step",
        "clinic.two_step_start",
        "clinic.two_step_confirm",
        "notifications.renew_device",  # a service worker holding a device token, not a person
    }
)


@bp.before_request
@review_bp.before_request
@notifications_bp.before_request
def _enrol_first() -> Response | None:
    """The clinic requires two-step sign-in: a therapist without it sees only the enrolment page
    (signing out is on the auth blueprint, so it stays reachable)."""
    if request.endpoint in _OPEN_WHILE_ENROLLING or not current_user.is_authenticated:
        return None
    if not two_step.must_enrol(current_user):
        return None
    if request.is_json:
        # A script (the notifications page's) gets JSON it can read, not the enrolment page.
        raise APIError(403, "two_step_required", "Turn on two-step sign-in first.")
    flash(_("Your clinic requires two-step sign-in. Turn it on to continue."))
    return redirect(url_for("clinic.two_step"))


def _page(
    *,
    form: CodeForm | None = None,
    codes: list[str] | None = None,
    status: int = 200,
    problem: str | None = None,
) -> tuple[str, int]:
    therapist = current_user
    secret = session.get(SETUP) if not therapist.has_two_factor else None
    qr = grouped = None
    if secret:
        uri = two_step.provisioning_uri(secret, therapist)
        # segno draws the SVG from the URI we built (a random secret, the clinic's name and the
        # e-mail, all escaped by segno); drawn here, so no third party ever sees the secret.
        qr = Markup(segno.make(uri, error="m").svg_inline(scale=4, dark="#000", light="#fff"))  # noqa: S704
        grouped = two_step.grouped_secret(secret)
    return (
        render_template(
            "clinic/two_step.html",
            enabled=therapist.has_two_factor,
            required=bool(therapist.clinic.require_two_factor),
            setup_qr=qr,
            setup_secret=grouped,
            form=form or CodeForm(formdata=None),
            action=ActionForm(formdata=None),
            codes=codes,
            codes_left=recovery.remaining(therapist.id) if therapist.has_two_factor else 0,
            problem=problem,
        ),
        status,
    )


@bp.get("/account/two-step", endpoint="two_step")
def two_step_page() -> tuple[str, int]:
    return _page()


@bp.post("/account/two-step/start")
def two_step_start() -> Response | tuple[str, int]:
    if not ActionForm().validate_on_submit():
        abort(400)
    if current_user.has_two_factor:
        return _page(status=409, problem=_("Two-step sign-in is already on."))
    session[SETUP] = two_step.new_secret()
    return redirect(url_for("clinic.two_step", _anchor="setup-h"), code=303)


@bp.post("/account/two-step/confirm")
def two_step_confirm() -> tuple[str, int]:
    form = CodeForm()
    secret = session.get(SETUP)
    if current_user.has_two_factor:
        return _page(status=409, problem=_("Two-step sign-in is already on."))
    if not secret:
        return _page(status=409, problem=_("Start again: press “Turn on”."))
    if not form.validate_on_submit():
        return _page(form=form, status=422)
    if codes_locked(current_user):
        form.code.errors.append(
            _("Too many attempts for this account. Wait a few minutes, then try again.")
        )
        return _page(form=form, status=429)
    now = utcnow()
    codes = two_step.enable(current_user, secret, form.code.data or "", now)
    if codes is None:
        count_wrong_code(current_user)
        form.code.errors.append(
            _(
                "That code is not right. Check the app's time is set automatically, then try the newest code."
            )
        )
        return _page(form=form, status=422)
    session.pop(SETUP, None)
    audit.record(
        "account.two_step_on", audit.current_actor(), ("therapist", current_user.id), now=now
    )
    db.session.commit()
    return _page(codes=codes)


@bp.post("/account/two-step/off")
def two_step_off() -> Response | tuple[str, int]:
    form = CodeForm()
    if not current_user.has_two_factor:
        return redirect(url_for("clinic.two_step"), code=303)
    if current_user.clinic.require_two_factor:
        return _page(
            form=form,
            status=409,
            problem=_("Your clinic requires two-step sign-in, so it cannot be turned off."),
        )
    if not form.validate_on_submit():
        return _page(form=form, status=422)
    if codes_locked(current_user):
        form.code.errors.append(
            _("Too many attempts for this account. Wait a few minutes, then try again.")
        )
        return _page(form=form, status=429)
    now = utcnow()
    if not two_step.verify(current_user, form.code.data or "", now):
        db.session.rollback()
        count_wrong_code(current_user)
        form.code.errors.append(_("That code is not right, or it was used already."))
        return _page(form=form, status=422)
    two_step.disable(current_user)
    audit.record(
        "account.two_step_off", audit.current_actor(), ("therapist", current_user.id), now=now
    )
    db.session.commit()
    flash(_("Two-step sign-in is off."))
    return redirect(url_for("clinic.two_step"), code=303)


@bp.post("/account/two-step/recovery-codes")
def two_step_new_codes() -> Response | tuple[str, int]:
    if not ActionForm().validate_on_submit():
        abort(400)
    if not current_user.has_two_factor:
        return redirect(url_for("clinic.two_step"), code=303)
    now = utcnow()
    codes = recovery.generate(current_user.id, now)
    audit.record(
        "account.recovery_codes_new", audit.current_actor(), ("therapist", current_user.id), now=now
    )
    db.session.commit()
    return _page(codes=codes)


# --- an admin's reset of a colleague's second factor ----------------------------------------------


@review_bp.post("/settings/therapists/<uuid:therapist_id>/two-step/reset")
@admin_only
def reset_two_step(therapist_id: uuid.UUID) -> Response:
    if not ActionForm().validate_on_submit():
        abort(400)
    colleague = two_step.reset_colleague(current_user.clinic_id, therapist_id)
    if colleague is None:
        abort(404)
    now = utcnow()
    audit.record(
        "therapist.two_step_reset",
        audit.current_actor(),
        ("therapist", colleague.id),
        now=now,
    )
    db.session.commit()
    flash(
        _(
            "Two-step sign-in is reset for %(email)s: they sign in with their password and set it up again.",
            email=colleague.email,
        )
    )
    return redirect(url_for("review.therapists"), code=303)
