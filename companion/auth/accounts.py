"""Signed-out account pages: choose a password through an invite or reset link, and "Forgot your
password?".

The link's token is swapped into the session at once and the browser sent on to a URL without
it (as auth.redeem does for patients), so it stays out of the history and of any Referer. The
forgot-password page answers the same for every address, known or not, and sends the e-mail
beside the answer (in a thread), so neither the page nor its timing tells which accounts exist.
"""

from __future__ import annotations

import hashlib
import threading
import uuid
from datetime import datetime

from flask import (
    Flask,
    Response,
    current_app,
    flash,
    redirect,
    render_template,
    session,
    url_for,
)
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_login import logout_user
from limits import parse_many

from companion.accounts import colleagues, mail, tokens
from companion.auth import (
    PASSWORD_MIN,
    bp,
    forget_failures,
    hash_password,
    password_problem,
)
from companion.channels.email import EmailMessage
from companion.extensions import db, limiter
from companion.forms import ForgotPasswordForm, SetPasswordForm
from companion.models import AccountToken, TokenPurpose
from companion.timeutil import utcnow
from companion.urls import absolute_url_for

# The session key holding the id of the account link being used (never the token itself).
ACCOUNT_LINK = "account_link"


def account_link_url(token: str) -> str:
    """The absolute link an invite or reset e-mail carries (PUBLIC_URL when set)."""
    return absolute_url_for("auth.open_account_link", token=token)


@bp.get("/account/set-password/<token>")
@limiter.limit("30 per minute")
def open_account_link(token: str) -> Response | tuple[str, int]:
    row = tokens.find(token, utcnow())
    if row is None:
        return render_template("auth/account_link_invalid.html"), 404
    session[ACCOUNT_LINK] = str(row.id)
    return redirect(url_for("auth.set_password"), code=303)


def _held_link(now: datetime) -> AccountToken | None:
    try:
        token_id = uuid.UUID(str(session.get(ACCOUNT_LINK)))
    except ValueError:
        return None
    return tokens.find_by_id(token_id, now)


def _set_password_page(form: SetPasswordForm, row: AccountToken) -> str:
    return render_template(
        "auth/set_password.html",
        form=form,
        invite=row.purpose == TokenPurpose.INVITE,
        email=row.therapist.email,
        password_min=PASSWORD_MIN,
    )


@bp.route("/account/set-password", methods=["GET", "POST"])
def set_password() -> Response | str | tuple[str, int]:
    now = utcnow()
    row = _held_link(now)
    if row is None:
        session.pop(ACCOUNT_LINK, None)
        return render_template("auth/account_link_invalid.html"), 404
    form = SetPasswordForm()
    if not form.validate_on_submit():
        return _set_password_page(form, row), 422 if form.is_submitted() else 200
    therapist = row.therapist
    password = form.password.data or ""
    problem = password_problem(
        password, therapist.email, therapist.display_name or "", therapist.clinic.name
    )
    if problem:
        form.password.errors.append(problem)
        return _set_password_page(form, row), 422
    reset = row.purpose == TokenPurpose.RESET
    done = colleagues.set_password(row.id, hash_password(password), now)
    if done is None:  # used in another tab or request meanwhile
        db.session.rollback()
        session.pop(ACCOUNT_LINK, None)
        return render_template("auth/account_link_invalid.html"), 404
    db.session.commit()
    if reset:
        forget_failures(done.email)
    # Whoever this browser was signed in as, the person here now is the link's holder: they sign
    # in themselves (with their second step, when they have one).
    logout_user()
    session.clear()
    flash(_("Your password is set. Sign in."))
    return redirect(url_for("auth.sign_in"), code=303)


# --- forgot password ------------------------------------------------------------------------------


def _asked_too_often(email: str) -> bool:
    """Count this request against the address asked about (FORGOT_PASSWORD_RATE_LIMIT, in the
    limiter's store, keyed by a hash): True when it is over. Every address counts, known or not."""
    if not current_app.config["RATELIMIT_ENABLED"]:
        return False
    digest = hashlib.sha256(email.encode()).hexdigest()
    key = (current_app.config.get("RATELIMIT_KEY_PREFIX", ""), "forgot-password", digest)
    limits = parse_many(current_app.config["FORGOT_PASSWORD_RATE_LIMIT"])
    return not all([limiter.limiter.hit(item, *key) for item in limits])


def _send_in_background(app: Flask, address: str, message: EmailMessage) -> None:
    with app.app_context():
        mail.send(address, message)


@bp.route("/account/forgot-password", methods=["GET", "POST"])
@limiter.limit(lambda: current_app.config["FORGOT_PASSWORD_RATE_LIMIT"], methods=["POST"])
def forgot_password() -> Response | str | tuple[str, int]:
    form = ForgotPasswordForm()
    if not form.validate_on_submit():
        page = render_template("auth/forgot_password.html", form=form)
        return page, 422 if form.is_submitted() else 200
    email = (form.email.data or "").strip().lower()
    if _asked_too_often(email):
        form.email.errors.append(
            _("Too many requests for this address. Wait 15 minutes, then try again.")
        )
        return render_template("auth/forgot_password.html", form=form), 429
    now = utcnow()
    found = colleagues.request_reset(email, now)
    db.session.commit()
    if found is not None:
        therapist, issued = found
        message = mail.reset_message(account_link_url(issued.token), str(get_locale() or "en"))
        # Beside the answer, not before it: the SMTP conversation's time must not tell the asker
        # that the address has an account. (A thread, not the response's close: a server may
        # close a response late, and the link is wanted now.)
        threading.Thread(
            target=_send_in_background,
            args=(current_app._get_current_object(), therapist.email, message),  # type: ignore[attr-defined]
            name="reset-link-email",
            daemon=True,
        ).start()
    return redirect(url_for("auth.reset_link_sent"), code=303)


@bp.get("/account/forgot-password/sent")
def reset_link_sent() -> str:
    return render_template("auth/reset_link_sent.html")
