"""The exports page: a clinic's check-ins for a range of days as CSV."""

from __future__ import annotations

from datetime import timedelta

from flask import Response, render_template, request
from flask_babel import gettext as _

from companion import audit
from companion.clinic import bp, current_clinic
from companion.exports import checkins_csv as exports
from companion.timeutil import to_local, utcnow


@bp.get("/exports")
def exports_page() -> str | tuple[str, int]:
    """Choose a range of days and download the clinic's check-ins as CSV."""
    clinic = current_clinic()
    today = to_local(utcnow(), clinic.timezone).date()
    return render_template(
        "clinic/exports.html",
        first=request.args.get("from") or (today - timedelta(days=29)).isoformat(),
        last=request.args.get("to") or today.isoformat(),
        exact=request.args.get("raw") == "1",
        error=None,
    )


@bp.get("/exports/checkins.csv")
def export_checkins() -> Response | tuple[str, int]:
    clinic = current_clinic()
    messages = {
        "from": _("Choose the first day."),
        "to": _("Choose a last day on or after the first, at most 366 days later."),
        "raw": _("Choose how to export the text."),
    }
    try:
        days = exports.DateRange.parse(request.args.get("from"), request.args.get("to"))
        exact = exports.exact_form(request.args.get("raw"))
    except ValueError as exc:
        field = exc.field if isinstance(exc, exports.RangeError) else "raw"
        page = render_template(
            "clinic/exports.html",
            first=request.args.get("from", ""),
            last=request.args.get("to", ""),
            exact=request.args.get("raw") == "1",
            error=(field, messages[field]),
        )
        return page, 422
    return exports.csv_download(clinic, days, audit.current_actor(), exact=exact)
