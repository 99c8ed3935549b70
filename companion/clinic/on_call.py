"""The On-call page: who a red flag reaches, the on-call contact, and "Send a test alert".

The readiness warning (templates/clinic/_readiness.html) is also shown on the review queue and the
clinic settings: the context processor below gives those pages `red_alert_reach`, read only when
a template asks for it.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable

from flask import Response, current_app, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import select
from wtforms.fields.choices import SelectChoice

from companion import audit
from companion.alerts.escalation import OnCallContact, set_on_call
from companion.alerts.readiness import ChannelResult, reach, send_test_alert
from companion.channels import webpush
from companion.clinic import admin_only, review_bp
from companion.extensions import db, limiter
from companion.forms import OnCallForm, TestAlertForm
from companion.models import Therapist
from companion.timeutil import utcnow


@review_bp.context_processor
def _readiness() -> dict[str, Callable[[], object]]:
    if not current_user.is_authenticated:
        return {}
    clinic = current_user.clinic
    return {
        "red_alert_reach": lambda: reach(clinic),
        # Beside the red flags on the queue: whom to call when a colleague is needed.
        "on_call_contact": lambda: (clinic.oncall_name, clinic.oncall_phone),
    }


def _therapist_choices() -> list[SelectChoice]:
    rows = db.session.execute(
        select(Therapist.id, Therapist.display_name, Therapist.email)
        .where(Therapist.clinic_id == current_user.clinic_id, Therapist.active.is_(True))
        .order_by(Therapist.display_name, Therapist.email)
    )
    return [SelectChoice("", _("None"))] + [
        SelectChoice(str(row.id), row.display_name or row.email) for row in rows
    ]


def _page(form: OnCallForm, results: list[ChannelResult] | None = None, saved: bool = False) -> str:
    return render_template(
        "clinic/on_call.html",
        form=form,
        test_form=TestAlertForm(),
        results=results,
        saved=saved,
        escalate_minutes=current_app.config["ALERT_ESCALATE_MINUTES"],
    )


@review_bp.route("/settings/on-call", methods=["GET", "POST"])
@admin_only
def on_call() -> Response | str | tuple[str, int]:
    clinic = current_user.clinic
    form = OnCallForm()
    form.therapist.choices = _therapist_choices()
    if not form.is_submitted():
        form.name.data = clinic.oncall_name
        form.phone.data = clinic.oncall_phone
        form.email.data = clinic.oncall_email
        form.therapist.data = str(clinic.oncall_therapist_id or "")
        return _page(form, saved=request.args.get("saved") == "1")
    if not form.validate():
        return _page(form), 422
    contact = OnCallContact(
        name=(form.name.data or "").strip() or None,
        phone=form.phone.data or None,
        email=form.email.data or None,
        therapist_id=uuid.UUID(form.therapist.data) if form.therapist.data else None,
    )
    try:
        set_on_call(clinic, contact, audit.current_actor(), utcnow())
    except ValueError:
        form.therapist.errors = [_("Choose an active therapist of your clinic.")]
        return _page(form), 422
    db.session.commit()
    return redirect(url_for("review.on_call", saved=1), code=303)


@review_bp.post("/settings/on-call/test")
# Each press pushes to and e-mails every colleague: a few a minute is plenty for a check.
@limiter.limit("5 per minute")
@admin_only
def test_alert() -> str | tuple[str, int]:
    form = OnCallForm(formdata=None)
    form.therapist.choices = _therapist_choices()
    clinic = current_user.clinic
    form.name.data, form.phone.data, form.email.data = (
        clinic.oncall_name,
        clinic.oncall_phone,
        clinic.oncall_email,
    )
    form.therapist.data = str(clinic.oncall_therapist_id or "")
    if not TestAlertForm().validate_on_submit():
        return _page(form), 400
    results = send_test_alert(
        clinic, webpush.make_sender(current_app), audit.current_actor(), utcnow()
    )
    return _page(form, results=results)
