"""Therapist sign-in/out with session timeouts; patient link redemption and the patient cookie."""

from __future__ import annotations

import uuid
from datetime import datetime

from flask import (
    Blueprint,
    Response,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import gettext as _
from flask_login import current_user, login_user, logout_user
from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy import func, select
from werkzeug.security import check_password_hash, generate_password_hash

from companion.extensions import db, limiter, login_manager
from companion.forms import ActionForm, SignInForm
from companion.models import PatientLink, Therapist
from companion.timeutil import utcnow
from companion.visits.record import redeem_link

bp = Blueprint("auth", __name__)

PATIENT_COOKIE = "companion_patient"
_LINK_CACHE = "companion.patient_link"
_UNSET = object()

# Checked even for unknown e-mails, so response time does not reveal which accounts exist.
_DUMMY_HASH = generate_password_hash("not-a-real-password", method="scrypt")


def hash_password(password: str) -> str:
    return generate_password_hash(password, method="scrypt")


def authenticate(email: str, password: str) -> Therapist | None:
    therapist = db.session.scalar(
        select(Therapist).where(func.lower(Therapist.email) == email.strip().lower())
    )
    if therapist is None:
        check_password_hash(_DUMMY_HASH, password)
        return None
    if not check_password_hash(therapist.password_hash, password) or not therapist.active:
        return None
    return therapist


@login_manager.user_loader
def load_therapist(user_id: str) -> Therapist | None:
    try:
        return db.session.get(Therapist, uuid.UUID(user_id))
    except ValueError:
        return None


def session_expired(now: datetime) -> bool:
    """Idle (30 min) and absolute (12 h) timeouts for therapists (design.md)."""
    started = session.get("signed_in_at")
    seen = session.get("last_seen")
    if started is None or seen is None:
        return True
    cfg = current_app.config
    return (
        now.timestamp() - seen > cfg["IDLE_TIMEOUT"].total_seconds()
        or now.timestamp() - started > cfg["ABSOLUTE_TIMEOUT"].total_seconds()
    )


def enforce_session_timeouts() -> Response | None:
    if not current_user.is_authenticated:
        return None
    now = utcnow()
    if session_expired(now):
        logout_user()
        session.clear()
        flash(_("You were signed out after a period of inactivity. Please sign in again."))
        # A script's JSON request gets its 401 from the view; a redirect to the sign-in page would
        # be followed by fetch() and read as "200 OK".
        if request.path.startswith("/api/") or request.is_json:
            return None
        return redirect(url_for("auth.sign_in"))
    session["last_seen"] = now.timestamp()
    return None


@bp.route("/sign-in", methods=["GET", "POST"])
@limiter.limit(lambda: current_app.config["SIGN_IN_RATE_LIMIT"], methods=["POST"])
def sign_in() -> Response | str:
    form = SignInForm()
    if form.validate_on_submit():
        therapist = authenticate(form.email.data or "", form.password.data or "")
        if therapist is not None:
            now = utcnow()
            # Rotate: nothing from the anonymous session survives into the signed-in one.
            session.clear()
            login_user(therapist)
            session.permanent = True
            session["signed_in_at"] = now.timestamp()
            session["last_seen"] = now.timestamp()
            therapist.last_sign_in_at = now
            db.session.commit()
            return redirect(url_for("review.queue"))
        form.password.errors.append(_("That e-mail and password do not match."))
    return render_template("auth/sign_in.html", form=form)


@bp.post("/sign-out")
def sign_out() -> Response:
    form = ActionForm()
    if form.validate_on_submit():
        logout_user()
        session.clear()
    return redirect(url_for("auth.sign_in"))


# --- patients -------------------------------------------------------------------------------------


def _serializer() -> URLSafeSerializer:
    return URLSafeSerializer(current_app.secret_key, salt="patient-link")


@bp.get("/p/<token>")
@limiter.limit("30 per minute")
def redeem(token: str) -> Response | tuple[str, int]:
    """Swap the capability token in the URL for a cookie, then leave the token out of the URL."""
    now = utcnow()
    link = redeem_link(token, now)
    if link is None:
        return render_template("patient/link_invalid.html"), 404
    response = redirect(url_for("patient.home"), code=303)
    response.set_cookie(
        PATIENT_COOKIE,
        _serializer().dumps(str(link.id)),
        expires=link.expires_at,
        httponly=True,
        samesite="Lax",
        secure=current_app.config["PATIENT_COOKIE_SECURE"],
        path="/",
    )
    return response


def current_link() -> PatientLink | None:
    """The patient link behind this request's cookie, if it is still live (cached per request).

    Cached on the request, not on `g`: an app context (and its `g`) can outlive one request.
    """
    cached = request.environ.get(_LINK_CACHE, _UNSET)
    if cached is not _UNSET:
        return cached  # type: ignore[no-any-return]
    link: PatientLink | None = None
    raw = request.cookies.get(PATIENT_COOKIE)
    if raw:
        try:
            link_id = uuid.UUID(_serializer().loads(raw))
        except (BadSignature, ValueError, TypeError):
            link_id = None
        if link_id is not None:
            found = db.session.get(PatientLink, link_id)
            if found is not None and found.usable(utcnow()):
                link = found
    request.environ[_LINK_CACHE] = link
    return link
