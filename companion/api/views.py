"""The JSON API under /api/v1. Views parse, call the domain, serialise; nothing more."""

from __future__ import annotations

import uuid
from typing import Any

from flask import Blueprint, Response, current_app, g, jsonify, request
from sqlalchemy import select

from companion import audit
from companion.api.openapi import document, operation
from companion.api.schemas import (
    CheckInIn,
    CheckInList,
    CheckInOut,
    ErrorBody,
    PublicKey,
    PushSubscriptionIn,
    PushSubscriptionOut,
    PushSubscriptionRef,
    ReminderOut,
    VisitCreated,
    VisitIn,
    VisitUpdated,
)
from companion.auth import current_link
from companion.channels.webpush import endpoint_allowed
from companion.checkins.store import (
    CheckInConflict,
    CheckInDetails,
    checkins_for_patient,
    submit_checkin,
)
from companion.errors import APIError
from companion.exports import checkins_csv as exports
from companion.exports import fhir
from companion.extensions import csrf, db, limiter
from companion.models import ApiKey, CheckIn, Clinic, PatientLink
from companion.reminders.calendar import feed_url as calendar_feed_url
from companion.reminders.subscriptions import delete_subscription, save_subscription
from companion.timeutil import utcnow
from companion.tokens import hash_token
from companion.urls import absolute_url_for
from companion.visits import history
from companion.visits.record import (
    PatientDetails,
    VisitDetails,
    find_or_create_patient,
    record_visit,
    update_visit,
)

bp = Blueprint("api", __name__, url_prefix="/api/v1")
# The API is authenticated by a bearer key or by the SameSite patient cookie plus a JSON-only body
# (a cross-site form cannot send application/json without a CORS preflight, which we never allow),
# so form-style CSRF tokens do not apply. Offline check-ins may be sent hours after the page loaded.
csrf.exempt(bp)


def require_clinic_key() -> Clinic:
    header = request.headers.get("Authorization", "")
    scheme, _, key = header.partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        raise APIError(
            401, "unauthorized", "Send a clinic API key as 'Authorization: Bearer <key>'."
        )
    api_key = db.session.scalar(
        select(ApiKey).where(
            ApiKey.key_hash == hash_token(key.strip()), ApiKey.revoked_at.is_(None)
        )
    )
    if api_key is None:
        raise APIError(401, "unauthorized", "The API key is unknown or revoked.")
    api_key.last_used_at = utcnow()
    g.api_key = api_key
    return api_key.clinic


def require_patient_link() -> PatientLink:
    link = current_link()
    if link is None:
        raise APIError(401, "unauthorized", "Open your patient link again to continue.")
    return link


def checkin_out(checkin: CheckIn) -> dict[str, Any]:
    return CheckInOut(
        id=checkin.client_id,
        visit_id=checkin.visit_id,
        recorded_at=checkin.recorded_at,
        received_at=checkin.received_at,
        soreness=checkin.soreness,
        usual_pain=checkin.usual_pain,
        symptoms=checkin.symptoms,
        helped=checkin.helped,
        note=checkin.note,
        triage=checkin.triage,  # type: ignore[arg-type]
        triage_reasons=checkin.triage_reasons,
    ).model_dump(mode="json")


@bp.get("/openapi.json")
@operation("GET", "/api/v1/openapi.json", "This document", responses={200: ("OpenAPI 3.1", None)})
def openapi_document() -> Response:
    return jsonify(document("Aftercare companion API", "1"))


@bp.post("/visits")
@limiter.limit("120 per minute")
@operation(
    "POST",
    "/api/v1/visits",
    "Record a visit and get the patient's link",
    body=VisitIn,
    security="clinicKey",
    authenticate=require_clinic_key,
    responses={201: ("Visit recorded", VisitCreated)},
)
def create_visit(principal: Clinic, body: VisitIn) -> tuple[Response, int]:
    clinic = principal
    now = utcnow()
    patient = find_or_create_patient(clinic, _patient_details(body))
    visit, issued = record_visit(
        clinic,
        patient,
        _visit_details(body),
        therapist_id=None,
        link_days=current_app.config["PATIENT_LINK_DAYS"],
        now=now,
    )
    audit.record("visit.create", audit.current_actor(), ("visit", visit.id), now=now)
    db.session.commit()
    created = VisitCreated(
        visit_id=visit.id,
        patient_url=patient_url(issued.token),
        calendar_url=calendar_feed_url(issued.link),
        expires_at=issued.link.expires_at,
    )
    return jsonify(created.model_dump(mode="json")), 201


@bp.put("/visits/<uuid:visit_id>")
@limiter.limit("120 per minute")
@operation(
    "PUT",
    "/api/v1/visits/{visit_id}",
    "Correct a visit; its unsent reminders are planned again",
    body=VisitIn,
    security="clinicKey",
    authenticate=require_clinic_key,
    responses={
        200: ("Visit corrected", VisitUpdated),
        404: ("No such visit in this clinic", ErrorBody),
        409: ("The patient reference differs from the visit's patient", ErrorBody),
    },
)
def update_visit_api(principal: Clinic, body: VisitIn, visit_id: uuid.UUID) -> Response:
    visit = history.visit_in_clinic(principal.id, visit_id)
    if visit is None:
        raise APIError(404, "not_found", "No such visit.")
    if body.patient.ref != visit.patient.ref:
        raise APIError(
            409,
            "patient_mismatch",
            "A visit cannot move to another patient; record a new visit instead.",
            "patient.ref",
        )
    now = utcnow()
    update_visit(visit, _patient_details(body), _visit_details(body), now)
    audit.record("visit.update", audit.current_actor(), ("visit", visit.id), now=now)
    db.session.commit()
    rows = history.reminders_of(visit)
    updated = VisitUpdated(
        visit_id=visit.id,
        reminders=[
            ReminderOut(kind=r.kind, due_at=r.due_at, expires_at=r.expires_at, status=r.status)
            for r in rows
        ],
    )
    return jsonify(updated.model_dump(mode="json"))


def _patient_details(body: VisitIn) -> PatientDetails:
    p = body.patient
    return PatientDetails(p.ref, p.display_name, p.timezone, p.language)


def _visit_details(body: VisitIn) -> VisitDetails:
    return VisitDetails(
        performed_at=body.performed_at,
        regions=list(body.regions),
        stretches=None if body.stretches is None else list(body.stretches),
        insertions=body.insertions,
        electrical_stimulation=body.electrical_stimulation,
        first_visit=body.first_visit,
    )


def require_clinic_key_or_therapist() -> Clinic:
    """A clinic API key, or a signed-in therapist's session (the visit page's download link)."""
    from flask_login import current_user

    if "Authorization" not in request.headers and current_user.is_authenticated:
        return current_user.clinic  # type: ignore[no-any-return]
    return require_clinic_key()


@bp.get("/visits/<uuid:visit_id>/fhir")
@limiter.limit("60 per minute")
@operation(
    "GET",
    "/api/v1/visits/{visit_id}/fhir",
    "One visit as a FHIR R4 Bundle (collection): Patient, Procedure, Observations, "
    "QuestionnaireResponses",
    security="clinicKey",
    authenticate=require_clinic_key_or_therapist,
    responses={
        200: ("The Bundle", "application/fhir+json"),
        404: ("No such visit in this clinic", ErrorBody),
    },
)
def visit_fhir(principal: Clinic, visit_id: uuid.UUID) -> Response:
    visit = history.visit_in_clinic(principal.id, visit_id)
    if visit is None:
        raise APIError(404, "not_found", "No such visit.")
    checkins = history.checkins_of(visit)
    now = utcnow()
    bundle = fhir.visit_bundle(visit, checkins, now)
    audit.record("export.fhir", audit.current_actor(), ("visit", visit.id), now=now)
    db.session.commit()
    response = jsonify(bundle)
    response.mimetype = "application/fhir+json"
    response.headers["Cache-Control"] = "no-store"
    return response


def patient_url(token: str) -> str:
    return absolute_url_for("auth.redeem", token=token)


@bp.post("/checkins")
@limiter.limit("60 per minute")
@operation(
    "POST",
    "/api/v1/checkins",
    "Submit a check-in (idempotent by id)",
    body=CheckInIn,
    security="patientCookie",
    authenticate=require_patient_link,
    responses={
        200: ("Replay of a stored check-in", CheckInOut),
        201: ("Check-in stored", CheckInOut),
        409: ("This id was used for a different check-in", ErrorBody),
    },
)
def create_checkin(principal: PatientLink, body: CheckInIn) -> tuple[Response, int]:
    link = principal
    if body.visit_id is not None and body.visit_id != link.visit_id:
        # An entry saved offline under an earlier link must not land on the current visit.
        raise APIError(
            409,
            "other_visit",
            "This check-in belongs to a different visit than this link.",
            "visit_id",
        )
    details = CheckInDetails(
        client_id=body.id,
        recorded_at=body.recorded_at,
        soreness=body.soreness,
        usual_pain=body.usual_pain,
        symptoms=list(dict.fromkeys(body.symptoms)),
        helped=list(dict.fromkeys(body.helped)),
        note=body.note or None,
    )
    try:
        checkin, created = submit_checkin(link.visit, details, now=utcnow())
    except CheckInConflict:
        raise APIError(
            409, "conflict", "A different check-in was already stored with this id.", "id"
        ) from None
    db.session.commit()
    return jsonify(checkin_out(checkin)), 201 if created else 200


DATE_PARAM = {"type": "string", "format": "date"}


@bp.get("/checkins.csv")
@limiter.limit("30 per minute")
@operation(
    "GET",
    "/api/v1/checkins.csv",
    "The clinic's check-ins for a range of days, as CSV (RFC 4180)",
    security="clinicKey",
    authenticate=require_clinic_key,
    query={
        "from": ("First day, in the clinic's time zone (included)", DATE_PARAM, True),
        "to": ("Last day, in the clinic's time zone (included)", DATE_PARAM, True),
    },
    responses={
        200: ("A header row, then one row per check-in, oldest first", "text/csv"),
        422: ("A missing or malformed date, or a range over 366 days", ErrorBody),
    },
)
def checkins_csv_api(principal: Clinic) -> Response:
    try:
        days = exports.DateRange.parse(request.args.get("from"), request.args.get("to"))
    except exports.RangeError as exc:
        raise APIError(422, "invalid_range", str(exc), exc.field) from None
    return exports.csv_download(principal, days, audit.current_actor())


@bp.get("/checkins")
@operation(
    "GET",
    "/api/v1/checkins",
    "The patient's own check-ins, newest first",
    security="patientCookie",
    authenticate=require_patient_link,
    responses={200: ("Check-ins", CheckInList)},
)
def list_checkins(principal: PatientLink) -> Response:
    link = principal
    items = [checkin_out(c) for c in checkins_for_patient(link.visit.patient_id)]
    return jsonify({"checkins": items})


@bp.get("/push/public-key")
@operation(
    "GET",
    "/api/v1/push/public-key",
    "The server's VAPID public key, for PushManager.subscribe()",
    responses={200: ("Application server key", PublicKey)},
)
def push_public_key() -> Response:
    return jsonify(PublicKey(public_key=current_app.config["VAPID_PUBLIC_KEY"]).model_dump())


@bp.post("/push-subscriptions")
@limiter.limit("30 per minute")
@operation(
    "POST",
    "/api/v1/push-subscriptions",
    "Store this browser's push subscription (idempotent by endpoint)",
    body=PushSubscriptionIn,
    security="patientCookie",
    authenticate=require_patient_link,
    responses={
        200: ("Already stored; keys refreshed", PushSubscriptionOut),
        201: ("Stored", PushSubscriptionOut),
    },
)
def create_push_subscription(
    principal: PatientLink, body: PushSubscriptionIn
) -> tuple[Response, int]:
    if not endpoint_allowed(body.endpoint, current_app.config["PUSH_ENDPOINT_ALLOWLIST"]):
        raise APIError(
            422,
            "endpoint_not_allowed",
            "Only https endpoints of known push services are accepted.",
            "endpoint",
        )
    subscription, created = save_subscription(
        principal.visit.patient_id, body.endpoint, body.keys.p256dh, body.keys.auth, utcnow()
    )
    db.session.commit()
    out = PushSubscriptionOut(endpoint=subscription.endpoint, created=created)
    return jsonify(out.model_dump()), 201 if created else 200


@bp.delete("/push-subscriptions")
@operation(
    "DELETE",
    "/api/v1/push-subscriptions",
    "Forget this browser's push subscription",
    body=PushSubscriptionRef,
    security="patientCookie",
    authenticate=require_patient_link,
    responses={204: ("Deleted", None), 404: ("No such subscription for you", ErrorBody)},
)
def delete_push_subscription(principal: PatientLink, body: PushSubscriptionRef) -> Response:
    if not delete_subscription(principal.visit.patient_id, body.endpoint):
        raise APIError(404, "not_found", "No such subscription for this patient.", "endpoint")
    db.session.commit()
    return Response(status=204)
