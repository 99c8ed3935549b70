"""The clinic's settings: expected soreness, episode length, default quiet hours."""

from __future__ import annotations

from flask import Response, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from companion import audit
from companion.care.clinic_rules import EnvelopeStep, apply_settings, envelope_of
from companion.care.triage import ENVELOPE
from companion.clinic import review_bp
from companion.extensions import db
from companion.forms import ClinicSettingsForm
from companion.reminders.planning import replan_clinic_default
from companion.timeutil import utcnow


@review_bp.route("/settings/clinic", methods=["GET", "POST"])
def clinic_settings() -> Response | str | tuple[str, int]:
    clinic = current_user.clinic
    form = ClinicSettingsForm()
    if not form.is_submitted():
        form.episode_days.data = clinic.episode_days
        form.quiet_start.data = clinic.quiet_start
        form.quiet_end.data = clinic.quiet_end
        for entry, window in zip(form.envelope.entries, envelope_of(clinic), strict=True):
            entry.form.usual_max.data = window.usual_max
            entry.form.amber_at.data = window.amber_at
        return _settings_page(form, saved=request.args.get("saved") == "1")
    if not form.validate():
        return _settings_page(form, saved=False), 422
    now = utcnow()
    steps = [EnvelopeStep(e.form.usual_max.data, e.form.amber_at.data) for e in form.envelope]
    changed = apply_settings(clinic, steps, form.episode_days.data)
    quiet_changed = (clinic.quiet_start, clinic.quiet_end) != (
        form.quiet_start.data,
        form.quiet_end.data,
    )
    if quiet_changed:
        clinic.quiet_start, clinic.quiet_end = form.quiet_start.data, form.quiet_end.data
        replan_clinic_default(clinic, now)
    if changed or quiet_changed:
        audit.record("clinic.settings", audit.current_actor(), now=now)
    db.session.commit()
    return redirect(url_for("review.clinic_settings", saved=1), code=303)


def _settings_page(form: ClinicSettingsForm, saved: bool) -> str:
    windows = [
        _("%(start)s to %(end)s h", start=w.from_hours, end=w.to_hours)
        if i < len(ENVELOPE) - 1
        else _("from %(start)s h", start=w.from_hours)
        for i, w in enumerate(ENVELOPE)
    ]
    return render_template(
        "clinic/settings.html",
        form=form,
        windows=windows,
        saved=saved,
    )
