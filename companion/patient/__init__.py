"""Patient pages, one module per page family (they mirror templates/patient/).

Every page carries a small JSON block (`page_data`) for the scripts: the texts they show, already
translated, and on the check-in page the triage rules, so an offline check-in is judged on the phone
exactly as the server will judge it.

The factory imports the page modules, which add their routes to `bp`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from babel.dates import format_skeleton
from flask import Blueprint, Response, abort, render_template
from flask_babel import format_time, get_locale, get_timezone
from flask_babel import gettext as _

from companion.auth import current_link, lapsed_link
from companion.care import guidance
from companion.models import PatientLink
from companion.visits import patient_data
from companion.visits.contact import emergency_number
from companion.visits.lapsed import lapsed_link_context

bp = Blueprint("patient", __name__, url_prefix="/me")

LANGUAGE_COOKIE = "companion_lang"


def require_link() -> PatientLink:
    link = current_link()
    if link is None:
        page = render_template("patient/link_invalid.html", **lapsed_link_context(lapsed_link()))
        abort(Response(page, status=401))
    return link


def client_strings() -> dict[str, str]:
    """Texts the scripts show (outbox states, errors), in the page's language."""
    return {
        "saved": _("Saved on this phone."),
        "saved_offline": _(
            "Saved on this phone. It will be sent to your clinic when you are back online."
        ),
        "sent": _("Sent to your clinic."),
        "sent_count": _("Check-ins sent to your clinic: %(n)s."),
        "entry": _("Check-in of %(time)s, soreness %(score)s out of 10"),
        "rejected": _(
            "Your clinic could not accept this check-in. It is kept here. Please tell your "
            "therapist, or remove it and check in again."
        ),
        "rejected_other_visit": _(
            "This check-in was made with an earlier link and cannot be sent with this one."
        ),
        "remove": _("Remove"),
        "removed": _("Removed from this phone."),
        "unauthorized": _(
            "Your link has ended or was replaced, so these check-ins cannot be sent. Ask your "
            "clinic for a new link; they stay on this phone until then."
        ),
        "choose_score": _("Choose a number from 0 to 10."),
        # %(when)s is the browser's own "3 hours ago" / "hace 3 horas" (Intl.RelativeTimeFormat).
        "visit_was": _("Your dry-needling visit was %(when)s."),
        "not_saved": _(
            "This phone could not save your check-in. Please try again when you have a "
            "connection, or tell your clinic."
        ),
    }


def page_data(link: PatientLink | None) -> dict[str, Any]:
    data: dict[str, Any] = {"lang": str(get_locale() or "en"), "strings": client_strings()}
    if link is not None:
        data["visit_id"] = str(link.visit_id)
        data["timezone"] = link.visit.patient.timezone
    return data


def page_context(link: PatientLink) -> dict[str, Any]:
    visit = link.visit
    return {
        "link": link,
        "visit": visit,
        "patient": visit.patient,
        "clinic_phone": visit.clinic.phone,
        "clinic": visit.clinic,  # the header's logo and phone
        "emergency_number": emergency_number(visit.clinic),
        "emergency": guidance.EMERGENCY,
        "page_data": page_data(link),
        # Every patient page says so while a deletion request waits for the clinic.
        "deletion_pending": patient_data.pending_request(visit.patient_id),
    }


def local_moment(moment: datetime) -> str:
    """ "Saturday, November 21, 3:30 PM" / "sábado, 21 de noviembre, 15:30" in the patient's zone."""
    day = format_skeleton("MMMMEEEEd", moment, tzinfo=get_timezone(), locale=get_locale())
    return f"{day}, {format_time(moment, 'short')}"
