"""`GET /api/v1/alerts`: the clinic's alerts, for clinic systems (issue 12). Its own module: the
visit and check-in operations live in api/views.py, on the same blueprint."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from flask import Response, jsonify, request
from flask_babel import force_locale
from pydantic import BaseModel

from companion import audit
from companion.alerts.listing import ListedAlert, clinic_alerts, reason_code
from companion.alerts.queue import reason_text
from companion.api.openapi import operation
from companion.api.schemas import ErrorBody
from companion.api.views import bp, require_clinic_key
from companion.errors import APIError
from companion.extensions import db, limiter
from companion.models import Clinic, therapist_names
from companion.timeutil import utcnow

LIMIT_DEFAULT, LIMIT_MAX = 100, 500


class AlertReason(BaseModel):
    code: str  # "symptom:breathless", "soreness:above_envelope", "missing:24h"
    text: str  # in English, as the review queue says it


class AlertStep(BaseModel):
    at: datetime
    channel: Literal["push", "email", "none"]
    audience: Literal["therapists", "on_call"]
    outcome: Literal["delivered", "partly_delivered", "failed", "nobody"]
    tried: int  # devices (push) or addresses (e-mail) tried
    delivered: int  # of those, how many took it
    reached: int  # people: a therapist with two devices counts once


class AlertOut(BaseModel):
    id: uuid.UUID
    level: Literal["red", "amber"]
    kind: Literal["checkin", "missing"]
    visit_id: uuid.UUID
    patient_ref: str
    raised_at: datetime
    reasons: list[AlertReason]
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    resolved_at: datetime | None
    resolved_by: str | None  # None with resolved_at set: closed by the app (the patient checked in)
    note: str | None
    steps: list[AlertStep]


class AlertList(BaseModel):
    alerts: list[AlertOut]


def _out(item: ListedAlert, names: dict[uuid.UUID, str]) -> dict[str, object]:
    alert = item.alert
    with force_locale("en"):  # documented as English, whatever the client's Accept-Language
        reasons = [AlertReason(code=reason_code(r), text=reason_text(r)) for r in alert.reasons]
    return AlertOut(
        id=alert.id,
        level=alert.level,  # type: ignore[arg-type]
        kind=alert.kind,  # type: ignore[arg-type]
        visit_id=alert.visit_id,
        patient_ref=item.patient_ref,
        raised_at=alert.raised_at,
        reasons=reasons,
        acknowledged_at=alert.acknowledged_at,
        acknowledged_by=names.get(alert.acknowledged_by) if alert.acknowledged_by else None,
        resolved_at=alert.resolved_at,
        resolved_by=names.get(alert.resolved_by) if alert.resolved_by else None,
        note=alert.resolution_note,
        steps=[AlertStep(**step.as_json()) for step in item.steps],  # type: ignore[arg-type]
    ).model_dump(mode="json")


@bp.get("/alerts")
@limiter.limit("60 per minute")
@operation(
    "GET",
    "/api/v1/alerts",
    "The clinic's alerts, open or resolved, newest first, with who was told and when",
    security="clinicKey",
    authenticate=require_clinic_key,
    query={
        "status": (
            "open (not resolved yet; the default) or resolved",
            {"type": "string", "enum": ["open", "resolved"], "default": "open"},
            False,
        ),
        "limit": (
            f"At most this many alerts (1-{LIMIT_MAX})",
            {"type": "integer", "minimum": 1, "maximum": LIMIT_MAX, "default": LIMIT_DEFAULT},
            False,
        ),
    },
    responses={
        200: ("Alerts", AlertList),
        422: ("A status other than open or resolved, or a bad limit", ErrorBody),
    },
)
def list_alerts(principal: Clinic) -> Response:
    status = request.args.get("status", "open")
    if status not in ("open", "resolved"):
        raise APIError(422, "invalid_status", "status must be open or resolved.", "status")
    raw_limit = request.args.get("limit", str(LIMIT_DEFAULT))
    # ASCII digits only: "²".isdigit() is true, and int() refuses it.
    if not (raw_limit.isascii() and raw_limit.isdigit()) or not 1 <= int(raw_limit) <= LIMIT_MAX:
        raise APIError(
            422, "invalid_limit", f"limit must be a whole number from 1 to {LIMIT_MAX}.", "limit"
        )
    items = clinic_alerts(principal.id, status, int(raw_limit))  # type: ignore[arg-type]
    names = therapist_names(principal.id)
    audit.record(
        "alerts.list",
        audit.current_actor(),
        now=utcnow(),
        detail={"status": status, "count": len(items)},
    )
    db.session.commit()
    return jsonify({"alerts": [_out(item, names) for item in items]})
