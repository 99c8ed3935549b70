"""The exports page: a clinic's check-ins for a range of days as CSV."""

from __future__ import annotations

from datetime import timedelta

from flask import Response, render_template, request
from flask_babel import gettext as _

from companion import audit
from companion.clinic import bp, current_clinic
from companion.exports import checkins_csv as exports
from companion.exports.stretches_csv import STRETCHES_DONE
from companion.timeutil import to_local, utcnow

# The files the page offers, by the `table` choice.
TABLES = {table.name: table for table in (exports.CHECKINS, STRETCHES_DONE)}


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
        table=request.args.get("table"),
        error=None,
    )


@bp.get("/exports/checkins.csv")
def export_checkins() -> Response | tuple[str, int]:
    clinic = current_clinic()
    messages = {
        "from": _("Choose the first day."),
        "to": _("Choose a last day on or after the first, at most 366 days later."),
        "raw": _("Choose how to export the text."),
        "table": _("Choose what to export."),
    }
    table = TABLES.get(request.args.get("table") or exports.CHECKINS.name)
    try:
        days = exports.DateRange.parse(request.args.get("from"), request.args.get("to"))
        exact = exports.exact_form(request.args.get("raw"))
        if table is None:
            raise exports.RangeError("table", "unknown table")
    except ValueError as exc:
        field = exc.field if isinstance(exc, exports.RangeError) else "raw"
        page = render_template(
            "clinic/exports.html",
            first=request.args.get("from", ""),
            last=request.args.get("to", ""),
            exact=request.args.get("raw") == "1",
            table=request.args.get("table"),
            error=(field, messages[field]),
        )
        return page, 422
    return exports.csv_download(clinic, days, audit.current_actor(), exact=exact, table=table)
