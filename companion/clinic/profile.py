"""The clinic's profile page (admins): name, phone, address, emergency number, default language
and logo. Patients see these in the app's header and on the handout. Opening hours stay on the
settings page, which this page links to."""

from __future__ import annotations

from typing import Any, Final

from flask import Response, current_app, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from werkzeug.exceptions import RequestEntityTooLarge

from companion import audit
from companion.clinic import admin_only, review_bp
from companion.clinic.logo import (
    LOGO_MAX_BYTES,
    NO_FILE,
    NOT_PNG_OR_JPEG,
    TOO_LARGE,
    TOO_MANY_PIXELS,
    LogoRefused,
    reencode,
    remove_logo,
    set_logo,
)
from companion.extensions import db
from companion.forms import ActionForm, ClinicProfileForm, LogoForm
from companion.models import Clinic
from companion.timeutil import utcnow

# The fields of the profile form, as they are named on Clinic and in the audit row's detail.
PROFILE_FIELDS: Final = ("name", "phone", "address", "emergency_number", "default_language")
# A logo upload's whole body: the file plus the multipart framing and the CSRF token. Larger
# bodies are refused before they are read (the app's MAX_CONTENT_LENGTH is far smaller: 64 KB).
LOGO_REQUEST_LIMIT: Final = LOGO_MAX_BYTES + 16 * 1024
LOGO_ENDPOINT: Final = "review.profile_logo"


class LogoBodyTooLarge(RequestEntityTooLarge):
    """A logo upload over LOGO_REQUEST_LIMIT: its page says what the limit is, not the generic
    "too much text"."""


def _refusal(reason: str) -> str:
    messages = {
        NO_FILE: _("Choose an image file to upload."),
        TOO_LARGE: _("The logo must be 200 KB or smaller. Save it smaller and try again."),
        NOT_PNG_OR_JPEG: _(
            "Only PNG and JPEG images can be used. Other files, such as SVG or GIF, are refused."
        ),
        TOO_MANY_PIXELS: _(
            "This image has too many pixels (at most 4096 on a side). Save it smaller and try again."
        ),
    }
    return messages.get(
        reason,
        _("This image could not be read; it may be damaged. Save it again as PNG or JPEG."),
    )


@review_bp.url_value_preprocessor
def _logo_body_limit(endpoint: str | None, values: dict[str, Any] | None) -> None:
    """Runs before every before_request (CSRF and the NUL check read the body): the logo upload
    may be larger than other forms, up to LOGO_REQUEST_LIMIT, and no larger."""
    if endpoint != LOGO_ENDPOINT:
        return
    request.max_content_length = LOGO_REQUEST_LIMIT
    if request.content_length is not None and request.content_length > LOGO_REQUEST_LIMIT:
        raise LogoBodyTooLarge()


@review_bp.errorhandler(LogoBodyTooLarge)
def _logo_too_large(exc: LogoBodyTooLarge) -> tuple[str, int]:
    # A message page, not the profile: this runs before sign-in and the session's timeouts are
    # checked, so it shows nothing of the clinic.
    return render_template("error.html", code=413, message=_refusal(TOO_LARGE)), 413


def _page(
    form: ClinicProfileForm | None = None,
    logo_form: LogoForm | None = None,
    saved: str | None = None,
) -> str:
    clinic = current_user.clinic
    if form is None:
        form = ClinicProfileForm(formdata=None)
        _fill(form, clinic)
    form.emergency_number.description = _(
        "The number patients are told to call in an emergency, such as 112, 911 or 999. Leave it "
        "empty to use %(number)s.",
        number=current_app.config["EMERGENCY_NUMBER"],
    )
    return render_template(
        "clinic/profile.html",
        form=form,
        logo_form=logo_form or LogoForm(formdata=None),
        remove_form=ActionForm(formdata=None),
        clinic=clinic,
        saved=saved,
    )


def _fill(form: ClinicProfileForm, clinic: Clinic) -> None:
    for field in PROFILE_FIELDS:
        getattr(form, field).data = getattr(clinic, field)


def _name_taken(clinic: Clinic, name: str) -> bool:
    return (
        db.session.scalar(select(Clinic.id).where(Clinic.name == name, Clinic.id != clinic.id))
        is not None
    )


@review_bp.route("/settings/profile", methods=["GET", "POST"])
@admin_only
def profile() -> Response | str | tuple[str, int]:
    clinic = current_user.clinic
    form = ClinicProfileForm()
    if not form.is_submitted():
        return _page(saved=request.args.get("saved"))
    taken_message = _("Another clinic already has this name. Choose another.")
    if not form.validate():
        return _page(form), 422
    values = {
        "name": form.name.data.strip(),
        # Normalized by the form's validators; empty means not set.
        "phone": form.phone.data or None,
        "address": (form.address.data or "").strip() or None,
        "emergency_number": form.emergency_number.data or None,
        "default_language": form.default_language.data,
    }
    if _name_taken(clinic, values["name"]):
        form.name.errors.append(taken_message)
        return _page(form), 422
    changed = sorted(field for field, value in values.items() if getattr(clinic, field) != value)
    if changed:
        for field in changed:
            setattr(clinic, field, values[field])
        audit.record(
            "clinic.profile", audit.current_actor(), now=utcnow(), detail={"changed": changed}
        )
        try:
            db.session.commit()
        except IntegrityError:
            # Another clinic took the name between the check and the save.
            db.session.rollback()
            form.name.errors.append(taken_message)
            return _page(form), 422
    return redirect(url_for("review.profile", saved="profile"), code=303)


@review_bp.post("/settings/profile/logo")
@admin_only
def profile_logo() -> Response | tuple[str, int]:
    logo_form = LogoForm()
    if not logo_form.validate():  # the CSRF token
        return _page(logo_form=logo_form), 400
    upload = logo_form.logo.data
    data = upload.read(LOGO_MAX_BYTES + 1) if upload is not None else b""
    try:
        png = reencode(data)
    except LogoRefused as refused:
        logo_form.logo.errors = [_refusal(refused.reason)]
        return _page(logo_form=logo_form), 413 if refused.reason == TOO_LARGE else 422
    now = utcnow()
    set_logo(current_user.clinic, png, now)
    audit.record("clinic.logo", audit.current_actor(), now=now)
    db.session.commit()
    return redirect(url_for("review.profile", saved="logo", _anchor="logo-h"), code=303)


@review_bp.post("/settings/profile/logo/remove")
@admin_only
def profile_logo_remove() -> Response | tuple[str, int]:
    if not ActionForm().validate():
        return _page(), 400
    now = utcnow()
    if remove_logo(current_user.clinic, now):
        audit.record("clinic.logo_remove", audit.current_actor(), now=now)
        db.session.commit()
    return redirect(url_for("review.profile", saved="logo_removed", _anchor="logo-h"), code=303)
