"""The clinic's settings: expected soreness, episode length, default quiet hours, opening hours."""

from __future__ import annotations

from datetime import time

from flask import Response, abort, redirect, render_template, request, url_for
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_login import current_user

from companion import audit
from companion.accounts import two_step
from companion.care.clinic_rules import EnvelopeStep, apply_settings, envelope_of
from companion.care.hours import DAYS, OpeningHours, validate
from companion.care.triage import ENVELOPE
from companion.clinic import admin_only, review_bp
from companion.extensions import db
from companion.forms import ClinicSettingsForm, OpeningHoursForm, TwoStepRequirementForm
from companion.models import Clinic
from companion.reminders.planning import replan_clinic_default
from companion.timeutil import utcnow


@review_bp.route("/settings/clinic", methods=["GET", "POST"])
@admin_only
def clinic_settings() -> Response | str | tuple[str, int]:
    clinic = current_user.clinic
    form = ClinicSettingsForm()
    if not form.is_submitted():
        _fill_settings(form, clinic)
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


def _fill_settings(form: ClinicSettingsForm, clinic: Clinic) -> None:
    form.episode_days.data = clinic.episode_days
    form.quiet_start.data = clinic.quiet_start
    form.quiet_end.data = clinic.quiet_end
    for entry, window in zip(form.envelope.entries, envelope_of(clinic), strict=True):
        entry.form.usual_max.data = window.usual_max
        entry.form.amber_at.data = window.amber_at


# --- opening hours: a form of their own, so saving them never touches the settings above --------


def _kept_days(hours: OpeningHours | None) -> OpeningHours:
    """Days with more than the page's two intervals (set with `flask clinic hours`): the page shows
    them as text and a save keeps them as they are."""
    return {day: intervals for day, intervals in (hours or {}).items() if len(intervals) > 2}


def _clock(text: str) -> time:
    # "24:00" shows as 00:00: <input type="time"> has no 24:00 (forms.OpeningDayForm reads it back).
    hours, minutes = (int(part) for part in text.split(":"))
    return time(hours % 24, minutes)


def _fill_hours(form: OpeningHoursForm, hours: OpeningHours | None) -> None:
    for day, entry in zip(DAYS, form.days.entries, strict=True):
        intervals = (hours or {}).get(day, [])
        if len(intervals) > 2:
            continue
        fields = [(entry.form.opens, entry.form.closes)]
        fields.append((entry.form.opens_again, entry.form.closes_again))
        for (start, end), (opens, closes) in zip(fields, intervals, strict=False):
            start.data, end.data = _clock(opens), _clock(closes)


@review_bp.post("/settings/clinic/hours")
@admin_only
def clinic_opening_hours() -> Response | tuple[str, int]:
    clinic = current_user.clinic
    form = OpeningHoursForm()
    kept = _kept_days(clinic.opening_hours)
    if form.validate():
        week = {day: entry.form.intervals() for day, entry in zip(DAYS, form.days, strict=True)}
        try:
            # The form checked each day; validate puts them in the stored form, in order.
            hours: OpeningHours | None = validate({**week, **kept})
        except ValueError:
            form.form_errors.append(_("These hours overlap. Check each day's times."))
        else:
            # No open day at all: the hours are not set, as before anyone set them.
            hours = hours or None
            if hours != clinic.opening_hours:
                clinic.opening_hours = hours
                audit.record(
                    "clinic.settings",
                    audit.current_actor(),
                    now=utcnow(),
                    detail={"changed": "opening_hours"},
                )
            db.session.commit()
            return redirect(url_for("review.clinic_settings", saved=1, _anchor="hours-h"), code=303)
    settings = ClinicSettingsForm(formdata=None)
    _fill_settings(settings, clinic)
    return _settings_page(settings, saved=False, hours_form=form), 422


def _settings_page(
    form: ClinicSettingsForm, saved: bool, hours_form: OpeningHoursForm | None = None
) -> str:
    clinic = current_user.clinic
    if hours_form is None:
        hours_form = OpeningHoursForm(formdata=None)
        _fill_hours(hours_form, clinic.opening_hours)
    kept = _kept_days(clinic.opening_hours)
    names = get_locale().days["format"]["wide"]  # babel's: 0 is Monday, as in DAYS
    day_names = [str(names[i]).capitalize() for i in range(len(DAYS))]
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
        hours_form=hours_form,
        hours_set=clinic.opening_hours is not None,
        kept_hours={
            DAYS.index(day): ", ".join(f"{opens}–{closes}" for opens, closes in intervals)
            for day, intervals in kept.items()
        },
        day_names=day_names,
        zone=clinic.timezone,
    )


# --- two-step sign-in for everyone: a form of its own (accounts/two_step.py) ----------------------


@review_bp.post("/settings/clinic/two-step")
@admin_only
def clinic_two_step() -> Response:
    form = TwoStepRequirementForm()
    if not form.validate():
        abort(400)  # the checkbox cannot be wrong: only the CSRF token can
    now = utcnow()
    if two_step.set_required(current_user.clinic, bool(form.require_two_factor.data)):
        audit.record(
            "clinic.settings",
            audit.current_actor(),
            now=now,
            detail={"changed": "require_two_factor", "to": bool(form.require_two_factor.data)},
        )
    db.session.commit()
    return redirect(url_for("review.clinic_settings", saved=1, _anchor="two-step-h"), code=303)
