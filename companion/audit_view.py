"""How audit rows read on the therapists' audit page: the action in words and who did it."""

from __future__ import annotations

import uuid

from flask_babel import LazyString
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from .models import AuditEvent

AUDIT_ACTIONS: dict[str, LazyString] = {
    "patient.list": _l("Viewed the patient list"),
    "visit.view": _l("Viewed a visit"),
    "visit.create": _l("Recorded a visit"),
    "visit.update": _l("Corrected a visit"),
    "link.reissue": _l("Issued a new patient link"),
    "link.revoke": _l("Revoked a patient link"),
    "export.csv": _l("Exported check-ins as CSV"),
    "export.fhir": _l("Exported a visit as FHIR"),
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
    return event.actor_type
