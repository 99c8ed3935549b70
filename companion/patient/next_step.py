"""What the red screen says happens next, from the clinic's opening hours (issue 12).

The screen never implies that someone will call, and never names an opening time we do not know:
- open:    "Your clinic has been told."
- closed:  when the clinic will see it (its next opening, in the patient's zone and language),
           and to call the emergency number if worried;
- unknown: hours never set or no open day: the clinic will see it when someone next checks;
- offline: the check-in is still on the phone: it has reached nobody yet, so call now.

The check-in page judges a check-in on the phone before the server has it, and may be offline for
hours. So it gets every sentence with the page, already translated and formatted here: the offline
one shows until the server acknowledges the entry, then checkin.js shows the one the server's
answer names (`clinic` in POST /api/v1/checkins: status and opens_at). For "closed" the page holds
the sentence for each opening of the coming week, keyed by instant; an instant it does not know
(a page drawn long before) gets the "unknown" sentence, which is vaguer but never false.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask_babel import format_datetime, format_time
from flask_babel import gettext as _

from companion.alerts.readiness import patient_status
from companion.care.hours import CLOSED, OPEN, ClinicStatus, opening_times
from companion.models import Clinic
from companion.timeutil import utc_instant
from companion.visits.contact import emergency_number


def status_of(clinic: Clinic, now: datetime) -> ClinicStatus:
    return patient_status(clinic, now)


def _closed(clinic: Clinic, opens_at: datetime) -> str:
    # Time and day in the patient's zone and language (flask-babel's zone is the patient's on
    # patient pages): "8:00 AM" / "Monday, November 30", "8:00" / "lunes 30 de noviembre". The
    # date too: a weekday alone is ambiguous on that same weekday ("on Wednesday", said on a
    # Wednesday, may mean today or next week), and it never goes stale on a page left open.
    return _(
        "Your clinic is closed now and will see this at %(time)s on %(day)s. If you are worried, "
        "call %(number)s now.",
        time=format_time(opens_at, "short"),
        # A CLDR date pattern the catalogue translates ("EEEE d 'de' MMMM" in Spanish).
        day=format_datetime(opens_at, _("EEEE, MMMM d")),
        number=emergency_number(clinic),
    )


def _unknown(clinic: Clinic) -> str:
    return _(
        "Your clinic will see this the next time someone there checks. If you are worried, call "
        "%(number)s now.",
        number=emergency_number(clinic),
    )


def offline(clinic: Clinic) -> str:
    return _(
        "This will reach your clinic when your phone is back online. Do not wait: call %(number)s "
        "now.",
        number=emergency_number(clinic),
    )


def sentence(clinic: Clinic, status: ClinicStatus) -> str:
    """The red screen's last line for a check-in the clinic has."""
    if status.state == OPEN:
        return _("Your clinic has been told.")
    if status.state == CLOSED and status.opens_at is not None:
        return _closed(clinic, status.opens_at)
    return _unknown(clinic)


def page_sentences(clinic: Clinic, now: datetime) -> dict[str, Any]:
    """Every sentence checkin.js may need for a check-in made on this page (see the module's note)."""
    return {
        "offline": offline(clinic),
        "open": sentence(clinic, ClinicStatus(OPEN)),
        "unknown": _unknown(clinic),
        "closed": [
            [utc_instant(opens_at), _closed(clinic, opens_at)]
            for opens_at in opening_times(clinic.opening_hours, clinic.timezone, now)
        ],
    }
