"""How audit rows read on the therapists' audit page: the action in words and who did it."""

from __future__ import annotations

import uuid

from flask_babel import LazyString
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from .models import AuditEvent

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
