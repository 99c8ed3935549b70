"""Therapist sign-in/out with session timeouts; patient link redemption and the patient cookie."""

from __future__ import annotations

import hashlib
import re
import uuid
from datetime import datetime

from flask import (
    Blueprint,
    Flask,
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
from flask_login import current_user, login_user, logout_user, user_logged_in
from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy import func, select
from werkzeug.security import check_password_hash, generate_password_hash
from zxcvbn import zxcvbn
from zxcvbn.frequency_lists import FREQUENCY_LISTS

from companion import guessing
from companion.extensions import db, limiter, login_manager
from companion.forms import ActionForm, SignInForm
from companion.models import PatientLink, Therapist
from companion.timeutil import utcnow
from companion.visits.lapsed import lapsed_link_context
from companion.visits.record import link_for_token, redeem_link

bp = Blueprint("auth", __name__)

PATIENT_COOKIE = "companion_patient"
_LINK_CACHE = "companion.patient_link"
_FORGED_COOKIE = "companion.patient_cookie_forged"
_LAPSED_LINK = "companion.patient_link_any"
_UNSET = object()
_EPOCH = "epoch"  # the session key holding the account's session epoch at sign-in

# Checked even for unknown e-mails, so response time does not reveal which accounts exist.
_DUMMY_HASH = generate_password_hash("not-a-real-password", method="scrypt")


def hash_password(password: str) -> str:
    return generate_password_hash(password, method="scrypt")


# NIST SP 800-63B (5.1.1.2): at least 12 characters here (the floor; NIST asks 8, or 15
# without a second factor), every character allowed, no composition rules, and a check against
# passwords known to be breached or easy to guess. The list is zxcvbn's (the 30,000 most common
# passwords of the Xato leak corpus); its estimate also refuses patterns the list cannot hold
# ("password1234", "qwertyuiop12", one character repeated) and words of the account itself.
PASSWORD_MIN = 12
PASSWORD_MAX = 256  # long passphrases welcome; a cap keeps hashing cheap for an attacker's posts
_BREACHED = frozenset(FREQUENCY_LISTS["passwords"])
_ESTIMATE_MAX = 72  # zxcvbn's own limit
_GUESSABLE_BELOW = 3  # zxcvbn score: 3 is "safely unguessable" (about 10^8 guesses or more)
# Words anyone attacking an account here would try first (ASVS 6.1.2): the product's own and its
# trade's. Each check adds the account's words (e-mail, name, clinic) to these.
CONTEXT_WORDS = (
    "aftercare",
    "companion",
    "needling",
    "dryneedling",
    "needle",
    "physio",
    "physiotherapy",
    "therapist",
    "therapy",
    "clinic",
    "patient",
)


def password_problem(password: str, *context: str) -> str | None:
    """Why `password` may not be used, in words for the person choosing it, or None. `context`:
    the account's own words (e-mail, name, clinic), which make a password easy to guess."""
    if len(password) < PASSWORD_MIN:
        return _("Use at least %(min)s characters.", min=PASSWORD_MIN)
    if len(password) > PASSWORD_MAX:
        return _("Use at most %(max)s characters.", max=PASSWORD_MAX)
    words = [
        part
        for text in (*context, *CONTEXT_WORDS)
        for part in re.split(r"[^\w]+", text.lower())
        if part
    ]
    own = {text.strip().lower() for text in context if text.strip()}
    if (
        password.lower() in _BREACHED
        or password.strip().lower() in own
        or _only_words_from(password, words)
        # zxcvbn refuses more than 72 characters (a ValueError, so a 500) and its matching
        # slows with length; a password whose first 72 are hard to guess is no easier whole.
        or zxcvbn(password[:_ESTIMATE_MAX], user_inputs=words)["score"] < _GUESSABLE_BELOW
    ):
        return _(
            "This password is known from data breaches or is easy to guess. A few unrelated "
            "words make a strong one."
        )
    return None


def _only_words_from(password: str, words: list[str]) -> bool:
    """The password is nothing but these words run together, with digits and punctuation
    around them ("HarbourPhysio2026!", "ana.harbour.example"): zxcvbn rates some of them strong,
    but an attacker who knows the account tries exactly these first."""
    letters = re.sub(r"[\W\d_]+", "", password.lower())
    vocabulary = {w for w in words if len(w) >= 3}
    if not letters:
        return False
    # Word break: can letters[:i] be cut into vocabulary words?
    fits = [True] + [False] * len(letters)
    for end in range(1, len(letters) + 1):
        fits[end] = any(fits[start] and letters[start:end] in vocabulary for start in range(end))
    return fits[-1]


def authenticate(email: str, password: str) -> Therapist | None:
    therapist = db.session.scalar(
        select(Therapist).where(func.lower(Therapist.email) == email.strip().lower())
    )
    if therapist is None or therapist.is_pending:
        # An invited colleague has no password yet: nothing can match, and the answer takes as
        # long as for a real account.
        check_password_hash(_DUMMY_HASH, password)
        return None
    if not check_password_hash(therapist.password_hash, password) or not therapist.active:
        return None
    return therapist


@login_manager.user_loader
def load_therapist(user_id: str) -> Therapist | None:
    try:
        therapist = db.session.get(Therapist, uuid.UUID(user_id))
    except ValueError:
        return None
    # Flask-Login checks is_active only when signing in: a colleague deactivated since (or an
    # invitee's account, which has no password) is signed out at the next request here.
    if therapist is None or not therapist.active or therapist.is_pending:
        return None
    return therapist


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


@user_logged_in.connect
def _stamp_epoch(_app: Flask, user: Therapist, **_: object) -> None:
    """Every session starts under its account's current epoch (Therapist.session_epoch)."""
    session[_EPOCH] = user.session_epoch


def session_ended(therapist: Therapist) -> bool:
    """Ended on the server since it was signed in: the account's epoch moved on (end_sessions)."""
    return session.get(_EPOCH) != therapist.session_epoch


def keep_this_session(therapist: Therapist) -> None:
    """After Therapist.end_sessions(), let the session of this request go on under the new epoch
    (the person who just changed their own password stays signed in here, and only here)."""
    session[_EPOCH] = therapist.session_epoch


def enforce_session_timeouts() -> Response | None:
    # A static file depends on no session: reading it here would make its answer "Vary: Cookie",
    # and a browser (the service worker's install above all) could not reuse its cached copy.
    if request.endpoint == "static":
        return None
    if not current_user.is_authenticated:
        return None
    now = utcnow()
    expired = session_expired(now)
    if expired or session_ended(current_user):
        logout_user()
        session.clear()
        if expired:
            flash(_("You were signed out after a period of inactivity. Please sign in again."))
        else:
            flash(_("You were signed out. Please sign in again."))
        # A script's JSON request gets its 401 from the view; a redirect to the sign-in page would
        # be followed by fetch() and read as "200 OK".
        if request.path.startswith("/api/") or request.is_json:
            return None
        return redirect(url_for("auth.sign_in"))
    session["last_seen"] = now.timestamp()
    return None


# Wrong passwords per account (SIGN_IN_ACCOUNT_LIMIT), in the limiter's store like the other
# failure counts (companion.guessing).
ACCOUNT_FAILURES = guessing.Throttle("sign-in-account", "SIGN_IN_ACCOUNT_LIMIT")


def _account(email: str) -> str:
    """The account as the limiter's store knows it: hashed, so the store never holds an address."""
    return hashlib.sha256(email.strip().lower().encode()).hexdigest()


def account_locked(email: str) -> bool:
    """Too many wrong passwords for this account lately (SIGN_IN_ACCOUNT_LIMIT). Counted in the
    limiter's store, so it holds across workers and hosts when that store is Redis; and per
    account, so one person's mistakes, or an attack on one account, lock out nobody else behind
    the same address (the per-address limit is the wider SIGN_IN_RATE_LIMIT)."""
    return ACCOUNT_FAILURES.wait(_account(email)) is not None


def _count_failure(email: str) -> None:
    ACCOUNT_FAILURES.failed(_account(email))


def forget_failures(email: str) -> None:
    """Clear the account's count of wrong passwords: its owner just proved who they are (a
    password reset link), and the new password must work at once."""
    ACCOUNT_FAILURES.forget(_account(email))


def complete_sign_in(therapist: Therapist, now: datetime) -> Response:
    """Sign the therapist in, once every step is passed (the password, and a code when two-step
    sign-in is on: auth/second_step.py)."""
    # Rotate: nothing from the anonymous session survives into the signed-in one.
    session.clear()
    login_user(therapist)
    session.permanent = True
    session["signed_in_at"] = now.timestamp()
    session["last_seen"] = now.timestamp()
    therapist.last_sign_in_at = now
    db.session.commit()
    return redirect(url_for("review.queue"))


@bp.route("/sign-in", methods=["GET", "POST"])
@limiter.limit(lambda: current_app.config["SIGN_IN_RATE_LIMIT"], methods=["POST"])
def sign_in() -> Response | str | tuple[str, int]:
    form = SignInForm()
    if form.validate_on_submit():
        if account_locked(form.email.data or ""):
            # Said whether or not the account exists, and checked before the password: a guess
            # after the limit learns nothing.
            form.password.errors.append(
                _("Too many attempts for this account. Wait a few minutes, then try again.")
            )
            return render_template("auth/sign_in.html", form=form), 429
        therapist = authenticate(form.email.data or "", form.password.data or "")
        if therapist is not None:
            if therapist.has_two_factor:
                from companion.auth.second_step import ask_for_code

                return ask_for_code(therapist, utcnow())
            return complete_sign_in(therapist, utcnow())
        _count_failure(form.email.data or "")
        form.password.errors.append(_("That e-mail and password do not match."))
    return render_template("auth/sign_in.html", form=form)


@bp.post("/sign-out")
def sign_out() -> Response:
    form = ActionForm()
    if form.validate_on_submit():
        if current_user.is_authenticated:
            # The cookie is the whole session and the browser may have been copied: clearing it
            # here is not enough. Raising the epoch ends every session of the account, this one
            # and any copy, on every device (a therapist signs in again on each).
            current_user.end_sessions()
            db.session.commit()
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
    # Too many bad links from this address: refused before this one is looked up
    # (companion.guessing); a patient's good link never counts.
    wait = guessing.PATIENT_LINK.wait()
    if wait is not None:
        guessing.refuse(wait)
    now = utcnow()
    link = redeem_link(token, now)
    if link is None:
        guessing.PATIENT_LINK.failed()
        # An expired or replaced link still names its clinic: its phone and emergency number.
        context = lapsed_link_context(link_for_token(token))
        return render_template("patient/link_invalid.html", **context), 404
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
    forged = False
    raw = request.cookies.get(PATIENT_COOKIE)
    if raw:
        try:
            link_id = uuid.UUID(_serializer().loads(raw))
        except (BadSignature, ValueError, TypeError):
            link_id = None
        found = None if link_id is None else db.session.get(PatientLink, link_id)
        forged = found is None
        if found is not None and found.usable(utcnow()):
            link = found
        request.environ[_LAPSED_LINK] = found
    request.environ[_LINK_CACHE] = link
    request.environ[_FORGED_COOKIE] = forged
    return link


def lapsed_link() -> PatientLink | None:
    """The link behind this request's patient cookie, live or not (None: no cookie of ours)."""
    current_link()
    found = request.environ.get(_LAPSED_LINK)
    return found if isinstance(found, PatientLink) else None


def forged_patient_cookie() -> bool:
    """This request's patient cookie is one we never signed, or names no link we know (the
    guessing throttle counts these; an expired or revoked link's cookie was ours)."""
    current_link()
    return bool(request.environ.get(_FORGED_COOKIE, False))
