"""Exports of a clinic's data. CSV of check-ins for a date range (RFC 4180: a header row, CRLF line
ends, fields with commas, quotes or line breaks quoted, quotes doubled), UTC and local time columns.

Two forms (issue 14, CSV formula injection). The default is safe to open in a spreadsheet: a text
cell that starts with "=", "+", "-", "@", a tab or a carriage return gets a leading "'" (OWASP's
advice), because a spreadsheet would run it as a formula, and a patient writes the notes. Only text
cells are defused: the columns the code writes from numbers (ids, hours, scores) stay numbers, so
"-1.5" hours is still -1.5. The exact form (`exact=True`: the page's choice, `?raw=1` on the API)
keeps every cell as written, for programs that read the file; the audit row says which form went out.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from flask import Response
from sqlalchemy import select
from sqlalchemy.orm import joinedload

from companion import audit
from companion.extensions import db
from companion.models import CheckIn, Clinic, Patient, Visit
from companion.timeutil import (
    EARLIEST_YEAR,
    LATEST_YEAR,
    hours_since,
    plausible_year,
    to_local,
    utc_instant,
    utcnow,
    wall_clock_to_utc,
)

# At most a year in one file: enough for any audit, small enough to build in one request.
MAX_DAYS = 366

COLUMNS = (
    "checkin_id",
    "patient_ref",
    "patient_name",
    "visit_id",
    "visit_performed_at_utc",
    "recorded_at_utc",
    "recorded_at_local",
    "patient_timezone",
    "hours_since_visit",
    "soreness",
    "usual_pain",
    "triage",
    "triage_reasons",
    "symptoms",
    "helped",
    "note",
    # Day 7's global impression of change, 1-7 (care/pgic.py), empty when not given. Added last so
    # a reader that goes by column position still finds the older columns where they were.
    "pgic",
)


# Columns written from numbers by the code (never typed by a person): left as they are, so a
# spreadsheet still reads them as numbers.
NUMERIC_COLUMNS = frozenset(
    {"checkin_id", "visit_id", "hours_since_visit", "soreness", "usual_pain", "pgic"}
)
# What a spreadsheet may take as the start of a formula (OWASP, "CSV Injection").
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_NUMERIC_POSITIONS = frozenset(i for i, name in enumerate(COLUMNS) if name in NUMERIC_COLUMNS)

# The audit detail's word for each form.
SAFE_FORM = "safe"
EXACT_FORM = "exact"


def defuse(cell: str) -> str:
    """A text cell a spreadsheet will show as text: a leading "'" when it would start a formula."""
    return "'" + cell if cell.startswith(FORMULA_STARTS) else cell


def defused_row(row: list[str], numeric: frozenset[int] = _NUMERIC_POSITIONS) -> list[str]:
    """`row` with every text cell defused; `numeric` holds the positions written from numbers."""
    return [cell if i in numeric else defuse(cell) for i, cell in enumerate(row)]


def exact_form(raw: str | None) -> bool:
    """The `raw` choice of the page and the API: absent or "0" is the safe form, "1" the exact
    one; anything else is refused (ValueError), never guessed."""
    if raw is None or raw == "0":
        return False
    if raw == "1":
        return True
    raise ValueError("'raw' must be 1 (the exact text) or 0 (safe for spreadsheets).")


_ISO_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


class RangeError(ValueError):
    """A date range that cannot be exported; the message says why (shown to the user)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class DateRange:
    """Whole days in the clinic's time zone, both ends included."""

    first: date
    last: date

    @classmethod
    def parse(cls, first: str | None, last: str | None) -> DateRange:
        days = []
        for name, raw in (("from", first), ("to", last)):
            if not raw:
                raise RangeError(name, f"Give '{name}' as a date, such as 2026-11-01.")
            try:
                # Only YYYY-MM-DD, as the API document states: fromisoformat alone would also
                # take 20261101 and 2026-W44-7.
                if not _ISO_DAY.fullmatch(raw):
                    raise ValueError(raw)
                days.append(date.fromisoformat(raw))
            except ValueError:
                raise RangeError(name, f"'{name}' must be a date such as 2026-11-01.") from None
        for name, day in zip(("from", "to"), days, strict=True):
            if not plausible_year(day.year):
                raise RangeError(
                    name,
                    f"'{name}' must be between {EARLIEST_YEAR}-01-01 and {LATEST_YEAR}-12-31.",
                )
        if days[0] > days[1]:
            raise RangeError("to", "'to' must not be before 'from'.")
        if (days[1] - days[0]).days + 1 > MAX_DAYS:
            raise RangeError("to", f"Export at most {MAX_DAYS} days at a time.")
        return cls(days[0], days[1])

    def utc_bounds(self, zone: str) -> tuple[datetime, datetime]:
        """[start, end) in UTC: midnight of the first day to midnight after the last, local."""
        start = wall_clock_to_utc(self.first, time(0, 0), zone)
        end = wall_clock_to_utc(self.last + timedelta(days=1), time(0, 0), zone)
        return start, end

    def filename(self, table: str = "checkins") -> str:
        return f"{table}-{self.first.isoformat()}-to-{self.last.isoformat()}.csv"


def checkin_rows(clinic: Clinic, days: DateRange) -> Iterator[list[str]]:
    """The clinic's check-ins recorded within the days, oldest first, as CSV fields."""
    start, end = days.utc_bounds(clinic.timezone)
    checkins = db.session.scalars(
        select(CheckIn)
        .join(Patient, Patient.id == CheckIn.patient_id)
        .where(
            Patient.clinic_id == clinic.id, CheckIn.recorded_at >= start, CheckIn.recorded_at < end
        )
        .options(joinedload(CheckIn.visit).joinedload(Visit.patient))
        .order_by(CheckIn.recorded_at, CheckIn.id)
    )
    for c in checkins:
        patient = c.visit.patient
        local = to_local(c.recorded_at, patient.timezone)
        hours = hours_since(c.visit.performed_at, c.recorded_at)
        yield [
            str(c.id),
            patient.ref,
            patient.display_name,
            str(c.visit_id),
            utc_instant(c.visit.performed_at),
            utc_instant(c.recorded_at),
            local.isoformat(timespec="seconds"),
            patient.timezone,
            f"{hours:.1f}",
            str(c.soreness),
            "" if c.usual_pain is None else str(c.usual_pain),
            c.triage,
            ";".join(c.triage_reasons),
            ";".join(c.symptoms),
            ";".join(c.helped),
            c.note or "",
            "" if c.pgic is None else str(c.pgic),
        ]


@dataclass(frozen=True)
class Table:
    """One kind of CSV file: its name (the file's and the audit row's), columns and rows."""

    name: str
    columns: tuple[str, ...]
    numeric: frozenset[str]  # columns written from numbers by the code: never defused
    rows: Callable[[Clinic, DateRange], Iterator[list[str]]]

    @property
    def numeric_positions(self) -> frozenset[int]:
        return frozenset(i for i, name in enumerate(self.columns) if name in self.numeric)


CHECKINS = Table("checkins", COLUMNS, NUMERIC_COLUMNS, checkin_rows)


def table_csv(
    table: Table, clinic: Clinic, days: DateRange, *, exact: bool = False
) -> tuple[str, int]:
    """The whole file (UTF-8 text) and how many rows it holds: safe for spreadsheets, or with
    every cell exactly as written (`exact`)."""
    out = io.StringIO()
    # The csv module's defaults are RFC 4180's, but for the line end: the RFC says CRLF.
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(table.columns)
    numeric = table.numeric_positions
    count = 0
    for row in table.rows(clinic, days):
        writer.writerow(row if exact else defused_row(row, numeric))
        count += 1
    return out.getvalue(), count


def checkins_csv(clinic: Clinic, days: DateRange, *, exact: bool = False) -> tuple[str, int]:
    return table_csv(CHECKINS, clinic, days, exact=exact)


def csv_download(
    clinic: Clinic,
    days: DateRange,
    actor: audit.Actor,
    *,
    exact: bool = False,
    table: Table = CHECKINS,
) -> Response:
    """The CSV file as a download, audited in the same transaction (who, which table and days, how
    many rows, which form; never the data). Shared by the API and the therapists' Exports page."""
    now = utcnow()
    body, count = table_csv(table, clinic, days, exact=exact)
    audit.record(
        "export.csv",
        actor,
        now=now,
        detail={
            "table": table.name,
            "from": days.first.isoformat(),
            "to": days.last.isoformat(),
            "rows": count,
            "form": EXACT_FORM if exact else SAFE_FORM,
        },
    )
    db.session.commit()
    response = Response(body, mimetype="text/csv")
    response.headers["Content-Type"] = "text/csv; charset=utf-8; header=present"
    response.headers["Content-Disposition"] = f'attachment; filename="{days.filename(table.name)}"'
    response.headers["Cache-Control"] = "no-store"
    return response
