"""The Therapists page (admins only): the clinic's colleagues, inviting one by e-mail, changing a
role, deactivating and reactivating, sending an invite again. The rules are the domain's
(accounts/colleagues.py); every change is audited there, naming the colleague.

While e-mail is off (MAIL_SERVER unset), or the relay refused the invite, the page shows the
invite link once, for the admin to pass on; it waits in the session until that next page.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable

from flask import Response, abort, current_app, flash, redirect, render_template, session, url_for
from flask_babel import gettext as _
from flask_login import current_user

from companion import audit
from companion.accounts import colleagues, mail
from companion.accounts.colleagues import AccountError
from companion.accounts.tokens import VALID_FOR, IssuedToken
from companion.auth.accounts import account_link_url
from companion.channels.email import SENT, email_enabled
from companion.clinic import admin_only, review_bp
from companion.extensions import db
from companion.forms import ActionForm, InviteForm, RoleForm
from companion.models import Therapist, TokenPurpose
from companion.timeutil import utcnow

# The session key where an invite link the e-mail did not carry waits to be shown, once.
FRESH_INVITE = "fresh_invite"


def _page(form: InviteForm | None = None, error: str | None = None) -> str:
    fresh = session.pop(FRESH_INVITE, None)
    return render_template(
        "clinic/therapists.html",
        form=form or InviteForm(formdata=None),
        colleagues=colleagues.colleagues(current_user.clinic_id, utcnow()),
        error=error,
        fresh=fresh if isinstance(fresh, dict) else None,
        email_on=email_enabled(current_app),
        invite_hours=int(VALID_FOR[TokenPurpose.INVITE].total_seconds() // 3600),
        role_form=RoleForm,
    )


@review_bp.get("/settings/therapists")
@admin_only
def therapists() -> str:
    return _page()


def _send_invite(therapist: Therapist, issued: IssuedToken) -> None:
    """E-mail the link, in the clinic's language; when it could not go, keep it for the page."""
    link = account_link_url(issued.token)
    clinic = current_user.clinic
    message = mail.invite_message(
        clinic.name,
        current_user.display_name or current_user.email,
        link,
        clinic.default_language or "en",
        int(VALID_FOR[TokenPurpose.INVITE].total_seconds() // 3600),
    )
    result = mail.send(therapist.email, message)
    if result.outcome == SENT:
        flash(_("Invite sent to %(email)s.", email=therapist.email))
        return
    session[FRESH_INVITE] = {
        "email": therapist.email,
        "link": link,
        "email_off": not email_enabled(current_app),
    }


@review_bp.post("/settings/therapists/invite")
@admin_only
def invite() -> Response | tuple[str, int]:
    form = InviteForm()
    if not form.validate_on_submit():
        return _page(form), 422
    try:
        therapist, issued = colleagues.invite(
            current_user.clinic,
            form.email.data or "",
            form.name.data,
            form.role.data or "",
            audit.current_actor(),
            utcnow(),
        )
    except AccountError as refused:
        db.session.rollback()
        form.email.errors.append(refused.message)
        return _page(form), 409
    db.session.commit()
    _send_invite(therapist, issued)
    return redirect(url_for("review.therapists"), code=303)


def _colleague(therapist_id: uuid.UUID) -> Therapist:
    colleague = colleagues.colleague_in_clinic(current_user.clinic_id, therapist_id)
    if colleague is None:
        abort(404)
    return colleague


def _act(
    therapist_id: uuid.UUID, change: Callable[[Therapist], object]
) -> Response | tuple[str, int]:
    """Run one row's action: CSRF checked, the colleague found in this clinic, the rules applied,
    committed; a refusal re-renders the page with its reason and changes nothing."""
    colleague = _colleague(therapist_id)
    try:
        change(colleague)
    except AccountError as refused:
        db.session.rollback()
        return _page(error=refused.message), 409
    db.session.commit()
    return redirect(url_for("review.therapists"), code=303)


def _checked(form: ActionForm | RoleForm) -> None:
    if not form.validate_on_submit():
        abort(400)


@review_bp.post("/settings/therapists/<uuid:therapist_id>/role")
@admin_only
def change_role(therapist_id: uuid.UUID) -> Response | tuple[str, int]:
    form = RoleForm()
    _checked(form)
    acting = current_user._get_current_object()
    return _act(
        therapist_id,
        lambda c: colleagues.change_role(
            acting, c, form.role.data or "", audit.current_actor(), utcnow()
        ),
    )


@review_bp.post("/settings/therapists/<uuid:therapist_id>/deactivate")
@admin_only
def deactivate(therapist_id: uuid.UUID) -> Response | tuple[str, int]:
    _checked(ActionForm())
    acting = current_user._get_current_object()
    return _act(
        therapist_id,
        lambda c: colleagues.deactivate(acting, c, audit.current_actor(), utcnow()),
    )


@review_bp.post("/settings/therapists/<uuid:therapist_id>/sign-out")
@admin_only
def sign_out_everywhere(therapist_id: uuid.UUID) -> Response | tuple[str, int]:
    _checked(ActionForm())
    return _act(
        therapist_id,
        lambda c: colleagues.sign_out_everywhere(c, audit.current_actor(), utcnow()),
    )


@review_bp.post("/settings/therapists/<uuid:therapist_id>/reactivate")
@admin_only
def reactivate(therapist_id: uuid.UUID) -> Response | tuple[str, int]:
    _checked(ActionForm())
    return _act(therapist_id, lambda c: colleagues.reactivate(c, audit.current_actor(), utcnow()))


@review_bp.post("/settings/therapists/<uuid:therapist_id>/resend")
@admin_only
def resend_invite(therapist_id: uuid.UUID) -> Response | tuple[str, int]:
    _checked(ActionForm())
    colleague = _colleague(therapist_id)
    try:
        issued = colleagues.resend_invite(colleague, audit.current_actor(), utcnow())
    except AccountError as refused:
        db.session.rollback()
        return _page(error=refused.message), 409
    db.session.commit()
    _send_invite(colleague, issued)
    return redirect(url_for("review.therapists"), code=303)
