"""Therapist pages, one module per page family (they mirror templates/clinic/).

Every page needs a signed-in therapist and shows only their own clinic's rows. Two blueprints keep
the endpoint names the templates use: `clinic` (patients, visits, audit, exports, deletion
requests; its nav shows the waiting deletion requests) and `review` (the queue and the settings).
The factory imports the page modules, which add their routes to these blueprints.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

from flask import Blueprint, abort, session
from flask_login import current_user, login_required

from companion.audit import current_actor, record
from companion.models import Clinic, Visit
from companion.visits import history, patient_data
from companion.visits.record import redeem_link

F = TypeVar("F", bound=Callable[..., Any])

bp = Blueprint("clinic", __name__)
review_bp = Blueprint("review", __name__)

# The session key under which freshly issued patient links wait for the visit page and the handout:
# [[visit id, token], ...], the newest last, one per visit. They stay for the rest of the
# therapist's signed-in session (sign-out and sign-in clear the session), so leaving the visit page
# does not lose the link before the patient has it or the handout is printed. Only the hash is stored
# in the database; the session is the one place the token can be shown again.
FRESH_LINKS = "fresh_links"
# At most this many visits' links are held: the session is a cookie, and a desk issues a few a day.
FRESH_LINKS_HELD = 20


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


def admin_only(view: F) -> F:
    """For the pages and actions that manage the clinic (settings, on-call, audit): a therapist
    who is not an admin gets a 403, before anything is read or changed."""

    @functools.wraps(view)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        if not current_user.is_admin:
            abort(403)
        return view(*args, **kwargs)

    return guarded  # type: ignore[return-value]


def current_clinic() -> Clinic:
    return current_user.clinic


def visit_or_404(visit_id: uuid.UUID) -> Visit:
    visit = history.visit_in_clinic(current_user.clinic_id, visit_id)
    if visit is None:
        abort(404)
    return visit


def audit_visit(action: str, visit: Visit, now: datetime) -> None:
    record(action, current_actor(), ("visit", visit.id), now=now)


def hold_fresh_link(visit_id: uuid.UUID, token: str) -> None:
    """Keep a just-issued token for the visit page and the handout (FRESH_LINKS); it replaces the
    visit's earlier one, which issuing revoked anyway."""
    held = [pair for pair in _held_links() if pair[0] != str(visit_id)]
    held.append([str(visit_id), token])
    session[FRESH_LINKS] = held[-FRESH_LINKS_HELD:]


def fresh_token(visit: Visit, now: datetime) -> str | None:
    """The token held for this visit while it still opens this visit's link, else None (and it is
    dropped: a link revoked or expired since must not be shown or printed)."""
    for visit_id, token in _held_links():
        if visit_id != str(visit.id):
            continue
        link = redeem_link(token, now)
        if link is not None and link.visit_id == visit.id:
            return token
        session[FRESH_LINKS] = [pair for pair in _held_links() if pair[0] != visit_id]
    return None


def _held_links() -> list[list[str]]:
    held = session.get(FRESH_LINKS)
    if not isinstance(held, list):
        return []
    return [
        pair
        for pair in held
        if isinstance(pair, list) and len(pair) == 2 and all(isinstance(p, str) for p in pair)
    ]
