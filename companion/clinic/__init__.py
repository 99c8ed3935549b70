"""Therapist pages, one module per page family (they mirror templates/clinic/).

Every page needs a signed-in therapist and shows only their own clinic's rows. Two blueprints keep
the endpoint names the templates use: `clinic` (patients, visits, audit, exports, deletion
requests; its nav shows the waiting deletion requests) and `review` (the queue and the settings).
The factory imports the page modules, which add their routes to these blueprints.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from flask import Blueprint, abort
from flask_login import current_user, login_required

from companion.audit import current_actor, record
from companion.models import Clinic, Visit
from companion.visits import history, patient_data

bp = Blueprint("clinic", __name__)
review_bp = Blueprint("review", __name__)

# The session key under which a freshly issued patient link waits for the visit page (shown once).
FRESH_LINK = "fresh_link"


@bp.before_request
@review_bp.before_request
@login_required
def _signed_in() -> None:
    """Every page here needs a signed-in therapist (login_required runs before this body)."""


@bp.context_processor
def _pending_deletions() -> dict[str, int]:
    """How many deletion requests wait, for the nav (a patient waits on the clinic for these)."""
    if not current_user.is_authenticated:
        return {}
    return {"pending_deletions": patient_data.pending_count(current_user.clinic_id)}


def current_clinic() -> Clinic:
    return current_user.clinic


def visit_or_404(visit_id: uuid.UUID) -> Visit:
    visit = history.visit_in_clinic(current_user.clinic_id, visit_id)
    if visit is None:
        abort(404)
    return visit


def audit_visit(action: str, visit: Visit, now: datetime) -> None:
    record(action, current_actor(), ("visit", visit.id), now=now)
