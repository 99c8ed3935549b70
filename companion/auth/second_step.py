"""The second step of signing in, for an account with two-step sign-in on: a code from the
authenticator app, or one of the recovery codes.

After the right password, sign_in() signs nobody in: it rotates the session and keeps only who is
half-way and since when (ask_for_code). That state lasts 5 minutes. Wrong codes count per account
in the limiter's store, as wrong passwords do (so they hold across workers and hosts): a 6-digit
code has a million values, and a few guesses per quarter hour keep them out of reach. The route is
limited per address as well.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Final

from flask import Response, current_app, flash, redirect, render_template, session, url_for
from flask_babel import gettext as _
from flask_babel import ngettext
from flask_login import current_user

from companion import audit
from companion.accounts import recovery, two_step
from companion.auth import bp, complete_sign_in
from companion.extensions import db, limiter
from companion.forms import CodeForm
from companion.guessing import Throttle
from companion.models import Therapist
from companion.timeutil import utcnow

PENDING: Final = "two_step_pending"
PENDING_FOR: Final = timedelta(minutes=5)


def ask_for_code(therapist: Therapist, now: datetime) -> Response:
    """The password was right: remember who is half-way (in a fresh session), ask for a code."""
    session.clear()
    session[PENDING] = {"id": str(therapist.id), "at": now.timestamp()}
    return redirect(url_for("auth.sign_in_code"), code=303)


def pending_therapist(now: datetime) -> Therapist | None:
    """Who passed the password step less than 5 minutes ago in this session, if anyone still may
    sign in."""
    pending = session.get(PENDING)
    if not isinstance(pending, dict):
        return None
    try:
        therapist_id = uuid.UUID(str(pending.get("id")))
        started = float(pending.get("at"))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    if not 0 <= now.timestamp() - started <= PENDING_FOR.total_seconds():
        return None
    therapist = db.session.get(Therapist, therapist_id)
    if therapist is None or not therapist.active or not therapist.has_two_factor:
        return None
    return therapist


# Wrong second-step codes per account (SIGN_IN_CODE_LIMIT), counted like wrong passwords
# (auth.account_locked), by the account's id: the limiter's store holds no address.
CODE_FAILURES = Throttle("sign-in-code", "SIGN_IN_CODE_LIMIT")


def codes_locked(therapist: Therapist) -> bool:
    """Too many wrong codes for this account lately."""
    return CODE_FAILURES.wait(therapist.id.hex) is not None


def count_wrong_code(therapist: Therapist) -> None:
    CODE_FAILURES.failed(therapist.id.hex)


@bp.route("/sign-in/code", methods=["GET", "POST"])
@limiter.limit(lambda: current_app.config["SIGN_IN_RATE_LIMIT"], methods=["POST"])
def sign_in_code() -> Response | str | tuple[str, int]:
    if current_user.is_authenticated:
        return redirect(url_for("review.queue"))
    now = utcnow()
    therapist = pending_therapist(now)
    if therapist is None:
        session.pop(PENDING, None)
        flash(_("Signing in took too long. Please sign in again."))
        return redirect(url_for("auth.sign_in"))
    form = CodeForm()
    if not form.validate_on_submit():
        return render_template("auth/code.html", form=form), 422 if form.is_submitted() else 200
    if codes_locked(therapist):
        form.code.errors.append(
            _("Too many attempts for this account. Wait a few minutes, then try again.")
        )
        return render_template("auth/code.html", form=form), 429
    text = form.code.data or ""
    left: int | None = None
    if two_step.looks_like_totp(text):
        accepted = two_step.verify(therapist, text, now)
    else:
        left = recovery.use(therapist.id, text, now)
        accepted = left is not None
        if accepted:
            audit.record(
                "account.recovery_code_used",
                audit.Actor.therapist(therapist),
                ("therapist", therapist.id),
                now=now,
                detail={"left": left},
            )
    if not accepted:
        db.session.rollback()
        count_wrong_code(therapist)
        form.code.errors.append(
            _("That code is not right, or it was used already. Try the newest code in your app.")
        )
        return render_template("auth/code.html", form=form), 422
    response = complete_sign_in(therapist, now)
    if left is not None:
        flash(
            ngettext(
                "You signed in with a recovery code. %(num)d recovery code is left.",
                "You signed in with a recovery code. %(num)d recovery codes are left.",
                left,
            )
        )
    return response
