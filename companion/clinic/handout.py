"""The handout: a printable page for a visit (QR code, link, key guidance, reminder moments) in the
patient's language, and the link by e-mail.

Both need the token itself, which only the therapist's session holds after issuing
(clinic.FRESH_LINKS). Without it the handout offers to issue a new link, which revokes the old one.
The guidance is the patient guide's own content (care/guidance.py, care/stretches.py): nothing
clinical is written here.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from zoneinfo import ZoneInfo

from babel.dates import format_date, format_time
from flask import Response, abort, flash, redirect, render_template, url_for
from flask_babel import force_locale, get_locale
from flask_babel import gettext as _

from companion import audit
from companion.api.views import patient_url
from companion.care import guidance
from companion.care.drawings import stretch_drawing
from companion.care.regions import BY_CODE as REGIONS
from companion.care.regions import any_over_lung
from companion.care.stretches import BY_CODE as STRETCHES
from companion.care.stretches import DOSE, PURPOSE, STOP_IF
from companion.channels.email import DISABLED, SENT
from companion.clinic import audit_visit, bp, fresh_token, visit_or_404
from companion.clinic.visits import issue_new_link, qr_svg
from companion.extensions import db
from companion.forms import ActionForm
from companion.reminders.calendar import feed_reminders
from companion.reminders.deliveries import REMINDER_KINDS
from companion.timeutil import utcnow
from companion.visits.contact import emergency_number
from companion.visits.handout import send_link_email


def moment_text(moment: datetime, zone: str) -> str:
    """ "Wednesday, November 25, 2026, 1:00 PM" / "miércoles, 25 de noviembre de 2026, 13:00": the
    patient's wall clock in the current (under force_locale, the patient's) language. Written out
    in full: a paper on the fridge is read days later."""
    tz, locale = ZoneInfo(zone), get_locale()
    day = format_date(moment.astimezone(tz).date(), "full", locale=locale)
    return f"{day}, {format_time(moment, 'short', tzinfo=tz, locale=locale)}"


@bp.get("/visits/<uuid:visit_id>/handout")
def handout(visit_id: uuid.UUID) -> str:
    visit = visit_or_404(visit_id)
    patient = visit.patient
    now = utcnow()
    token = fresh_token(visit, now)
    # Printing shows the patient's data (their guide, their moments): a read like the visit page.
    audit_visit("handout.view", visit, now)
    db.session.commit()
    if token is None:
        return render_template(
            "clinic/handout_reissue.html", visit=visit, patient=patient, form=ActionForm()
        )
    # The toolbar (not printed) is the therapist's, in their language; the rest is the patient's.
    tools = {"lang": str(get_locale() or "en"), "back": _("Back to the visit"), "print": _("Print")}
    url = patient_url(token)
    with force_locale(patient.language):
        return render_template(
            "clinic/handout.html",
            tools=tools,
            visit=visit,
            visit_when=moment_text(visit.performed_at, patient.timezone),
            patient=patient,
            clinic=visit.clinic,
            patient_url=url,
            qr=qr_svg(url),
            regions=[REGIONS[c].label for c in visit.regions if c in REGIONS],
            lung_field=any_over_lung(visit.regions),
            normal=guidance.NORMAL,
            stages=guidance.STAGES,
            call_clinic=guidance.CALL_CLINIC,
            emergency=guidance.EMERGENCY,
            emergency_number=emergency_number(visit.clinic),
            stretches=[STRETCHES[c] for c in visit.stretches if c in STRETCHES],
            stretch_dose=DOSE,
            stretch_stop=STOP_IF,
            stretch_purpose=PURPOSE,
            stretch_drawing=stretch_drawing,
            moments=[
                (r.due_at, moment_text(r.due_at, patient.timezone), REMINDER_KINDS.get(r.kind))
                for r in feed_reminders(visit)
            ],
        )


@bp.post("/visits/<uuid:visit_id>/handout/link")
def handout_reissue(visit_id: uuid.UUID) -> Response:
    """Issue a new link (the old one, and any handout or QR code of it, stops working) and show the
    handout with it: the same code path as the visit page's "Revoke and issue a new link"."""
    visit = visit_or_404(visit_id)
    if not ActionForm().validate_on_submit():
        abort(400)
    issue_new_link(visit)
    return redirect(url_for("clinic.handout", visit_id=visit.id), code=303)


@bp.post("/visits/<uuid:visit_id>/link/email")
def email_link(visit_id: uuid.UUID) -> Response:
    """E-mail the link held for this visit to the patient's address (no health data in it)."""
    visit = visit_or_404(visit_id)
    if not ActionForm().validate_on_submit():
        abort(400)
    back = redirect(url_for("clinic.visit", visit_id=visit.id, _anchor="link-h"), code=303)
    now = utcnow()
    token = fresh_token(visit, now)
    if not visit.patient.email:
        flash(_("This patient has no e-mail address on record: add one on their page first."))
        return back
    if token is None:
        flash(_("The link is no longer held here. Issue a new link, then send it."))
        return back
    result = send_link_email(visit.patient, visit.clinic, patient_url(token))
    audit.record(
        "link.email",
        audit.current_actor(),
        ("visit", visit.id),
        now=now,
        detail={"outcome": result.outcome},
    )
    db.session.commit()
    if result.outcome == SENT:
        flash(_("The link was sent to the patient's e-mail address."))
    elif result.outcome == DISABLED:
        flash(_("E-mail is not set up on this server, so nothing was sent."))
    else:
        flash(
            _(
                "The e-mail could not be sent. Try again later, or give the patient the link "
                "another way."
            )
        )
    return back
