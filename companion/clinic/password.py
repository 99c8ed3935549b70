"""A therapist's own password: change it with the current one, ending their other sessions."""

from __future__ import annotations

from flask import Response, flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_login import current_user
from werkzeug.security import check_password_hash

from companion import audit
from companion.auth import PASSWORD_MIN, hash_password, keep_this_session, password_problem
from companion.clinic import review_bp
from companion.extensions import db
from companion.forms import ChangePasswordForm
from companion.timeutil import utcnow


@review_bp.route("/account/password", methods=["GET", "POST"])
def change_password() -> Response | str | tuple[str, int]:
    form = ChangePasswordForm()
    if not form.validate_on_submit():
        return _page(form), 422 if form.is_submitted() else 200
    therapist = current_user._get_current_object()
    if not check_password_hash(therapist.password_hash, form.current_password.data or ""):
        form.current_password.errors.append(_("That is not your current password."))
        return _page(form), 422
    problem = password_problem(
        form.new_password.data or "",
        therapist.email,
        therapist.display_name or "",
        therapist.clinic.name,
    )
    if problem:
        form.new_password.errors.append(problem)
        return _page(form), 422
    now = utcnow()
    therapist.password_hash = hash_password(form.new_password.data or "")
    # Whoever else holds a session of this account (a stolen cookie, a forgotten computer) is
    # out at their next request; this one goes on (ASVS 7.4.3).
    therapist.end_sessions()
    keep_this_session(therapist)
    audit.record(
        "therapist.password_changed",
        audit.current_actor(),
        ("therapist", therapist.id),
        now=now,
    )
    db.session.commit()
    flash(_("Your password is changed. You were signed out everywhere else."))
    return redirect(url_for("review.change_password"), code=303)


def _page(form: ChangePasswordForm) -> str:
    return render_template("clinic/password.html", form=form, password_min=PASSWORD_MIN)
