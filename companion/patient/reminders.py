"""The Reminders page: push on this phone, the calendar, quiet hours, fully recovered."""

from __future__ import annotations

from flask import (
    Response,
    abort,
    flash,
    redirect,
    render_template,
    url_for,
)
from flask_babel import format_time
from flask_babel import gettext as _

from companion.extensions import db
from companion.forms import ActionForm, QuietHoursForm
from companion.models import PatientLink
from companion.patient import bp, local_moment, page_context, require_link
from companion.reminders.calendar import feed_url
from companion.reminders.planning import mark_recovered, resume_reminders
from companion.reminders.settings import set_quiet_hours, settings_for
from companion.timeutil import utcnow


def push_strings() -> dict[str, str]:
    """Texts of reminders.js (the "reminders on this phone" button and its states)."""
    return {
        "push_checking": _("Checking this phone…"),
        "push_on": _("Reminders are on for this phone."),
        "push_off": _("Reminders are off on this phone."),
        "push_turning_on": _("Turning reminders on…"),
        "push_turning_off": _("Turning reminders off…"),
        "push_dismissed": _(
            "Reminders are off on this phone: the question was closed without an answer. Tap "
            "the button again when you are ready."
        ),
        "push_blocked": _("This browser blocks notifications from this app."),
        "push_unsupported": _(
            "This browser cannot show reminders from a web app. Add them to your calendar instead."
        ),
        "push_ios": _("On iPhone and iPad, reminders only work in the app on your Home Screen."),
        "push_failed": _("Reminders could not be turned on."),
        "push_failed_offline": _(
            "There is no connection right now. Try again when you are online."
        ),
        "push_failed_unauthorized": _(
            "Your link has ended or was replaced. Ask your clinic for a new link."
        ),
        "push_failed_not_allowed": _(
            "This browser uses a notification service that we cannot send to."
        ),
        "push_failed_push_service": _("The browser could not reach its notification service."),
        "push_failed_worker": _("The app could not finish loading on this phone."),
        "push_failed_server": _("Something went wrong on our side."),
        # push-toggle.js gave up after TURN_ON_LIMIT_MS (the hint after it offers the calendar).
        "push_failed_timeout": _("There was no answer in time, so we stopped waiting."),
        "push_failed_hint": _("You can add the reminders to your calendar instead."),
        "push_off_failed": _(
            "Reminders could not be turned off on this phone. Please try again, or block "
            "notifications for this app in your browser's settings."
        ),
    }


def webcal(url: str) -> str:
    """The same feed as a webcal:// link, which phones open in their calendar app to subscribe."""
    scheme, _sep, rest = url.partition("://")
    return f"webcal://{rest}" if scheme in ("http", "https") else url


def reminders_page(
    link: PatientLink, quiet_form: QuietHoursForm | None = None, status: int = 200
) -> tuple[str, int]:
    context = page_context(link)
    context["page_data"]["strings"].update(push_strings())
    settings = settings_for(link.visit, utcnow())
    if quiet_form is None:
        quiet_form = QuietHoursForm(
            formdata=None, start=settings.quiet.start, end=settings.quiet.end
        )
    calendar = feed_url(link)
    return render_template(
        "patient/reminders.html",
        **context,
        settings=settings,
        upcoming=[(due, local_moment(due)) for due in settings.upcoming],
        quiet_form=quiet_form,
        quiet_start=format_time(settings.quiet.start, "short", rebase=False),
        quiet_end=format_time(settings.quiet.end, "short", rebase=False),
        calendar_url=calendar,
        calendar_subscribe_url=webcal(calendar),
    ), status


@bp.get("/reminders")
def reminders() -> tuple[str, int]:
    return reminders_page(require_link())


@bp.post("/reminders/quiet-hours")
def quiet_hours() -> Response | tuple[str, int]:
    link = require_link()
    form = QuietHoursForm()
    if not form.validate():
        # Nothing is saved: the page comes back with the patient's input and what to fix.
        return reminders_page(link, form, 422)
    set_quiet_hours(link.visit, form.start.data, form.end.data, utcnow())
    db.session.commit()
    flash(_("Quiet hours saved. Your reminders follow them from now on."))
    return redirect(url_for("patient.reminders", _anchor="quiet-h"), code=303)


@bp.post("/reminders/quiet-hours/clinic")
def clinic_quiet_hours() -> Response:
    link = require_link()
    if not ActionForm().validate():
        abort(400)
    set_quiet_hours(link.visit, None, None, utcnow())
    db.session.commit()
    flash(_("Your clinic's usual quiet hours apply again."))
    return redirect(url_for("patient.reminders", _anchor="quiet-h"), code=303)


@bp.post("/reminders/recovered")
def recovered() -> Response:
    link = require_link()
    if not ActionForm().validate():
        abort(400)
    if link.visit.recovered_at is None:  # a second tap keeps the first moment
        mark_recovered(link.visit, utcnow())
        db.session.commit()
    flash(_("Reminders are stopped. We are glad you feel better."))
    return redirect(url_for("patient.reminders"), code=303)


@bp.post("/reminders/resume")
def resume() -> Response:
    link = require_link()
    if not ActionForm().validate():
        abort(400)
    if link.visit.recovered_at is not None:
        resume_reminders(link.visit, utcnow())
        db.session.commit()
    flash(_("Reminders are on again for this visit."))
    return redirect(url_for("patient.reminders"), code=303)
