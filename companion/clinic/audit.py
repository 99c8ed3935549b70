"""The clinic's audit page: who viewed, changed or exported what, when and from where."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from flask import abort, render_template, request
from flask_babel import LazyString
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user

from companion import audit
from companion.clinic import bp
from companion.models import AuditEvent, therapist_names
from companion.visits import history

AUDIT_ACTIONS: dict[str, LazyString] = {
    "queue.view": _l("Viewed the review queue"),
    "patient.list": _l("Viewed the patient list"),
    "patient.view": _l("Viewed a patient's visits"),
    "visit.view": _l("Viewed a visit"),
    "visit.create": _l("Recorded a visit"),
    "visit.update": _l("Corrected a visit"),
    "link.reissue": _l("Issued a new patient link"),
    "link.revoke": _l("Revoked a patient link"),
    "export.csv": _l("Exported check-ins as CSV"),
    "export.fhir": _l("Exported a visit as FHIR"),
    "alert.acknowledge": _l("Acknowledged an alert"),
    "alert.resolve": _l("Resolved an alert"),
    "clinic.settings": _l("Changed the clinic settings"),
    "patient.data_download": _l("The patient downloaded their data"),
    "deletion.list": _l("Viewed the deletion requests"),
    "deletion.request": _l("Deletion of a patient's data requested"),
    "deletion.confirm": _l("Deleted a patient's data"),
    "deletion.decline": _l("Declined a deletion request"),
    "device.add": _l("Turned on alerts on a device"),
    "device.remove": _l("Turned off alerts on a device"),
    "device.renew": _l("A device renewed its alert subscription"),
}


def audit_actor(
    event: AuditEvent, therapists: dict[uuid.UUID, str], keys: dict[uuid.UUID, str]
) -> str:
    """The therapist's e-mail, the API key's prefix, or the kind of actor when neither is known."""
    try:
        actor = uuid.UUID(event.actor_id) if event.actor_id else None
    except ValueError:
        actor = None
    if event.actor_type == "therapist" and actor in therapists:
        return therapists[actor]
    if event.actor_type == "api_key" and actor in keys:
        return _("API key %(prefix)s…", prefix=keys[actor])
    if event.actor_type == "patient":
        return _("the patient")
    return event.actor_type


AUDIT_PAGE = 100


@bp.get("/audit")
def audit_page() -> str:
    """Who saw or changed what, when and from where: the clinic's audit trail, newest first."""
    clinic_id = current_user.clinic_id
    moment = None
    before = request.args.get("before")
    if before:
        try:
            moment = datetime.fromisoformat(before)
        except ValueError:
            abort(400)
        if moment.tzinfo is None:
            abort(400)  # the page's own links always carry the offset
        try:
            moment = moment.astimezone(UTC)
        except OverflowError:
            abort(400)  # 0001-01-01T00:00+14:00 is before the first moment UTC can hold
    events, more = audit.trail(clinic_id, moment, AUDIT_PAGE)
    # Names for the actors, in two queries whatever the page holds.
    therapists = therapist_names(clinic_id)
    keys = audit.key_prefixes(clinic_id)
    # Links only to what still exists: a deleted patient's visits would only lead to a 404.
    live = history.existing(
        clinic_id,
        {e.target_id for e in events if e.target_type == "visit" and e.target_id},
        {e.target_id for e in events if e.target_type == "patient" and e.target_id},
    )
    return render_template(
        "clinic/audit.html",
        events=events,
        live=live,
        actor_name=lambda e: audit_actor(e, therapists, keys),
        labels=AUDIT_ACTIONS,
        next_before=events[-1].at.isoformat() if more else None,
        zone=current_user.clinic.timezone,
    )
