"""The JSON API under /api/v1. Views parse, call the domain, serialise; nothing more."""

from __future__ import annotations

import uuid
from typing import Any

from flask import Blueprint, Response, current_app, g, jsonify, request

from companion import audit, guessing
from companion.accounts import two_step
from companion.accounts.api_keys import note_use, verify_key
from companion.alerts.readiness import patient_status
from companion.api.openapi import document, operation
from companion.api.schemas import (
    DATE_PATTERN,
    CheckInIn,
    CheckInList,
    CheckInOut,
    CheckInReceived,
    ClinicNow,
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
from companion.auth import current_link, forged_patient_cookie
from companion.channels.webpush import endpoint_allowed
from companion.checkins.store import (
    CLOCK_SKEW_MINUTES,
    MAX_CHECKINS_PER_VISIT,
    CheckInConflict,
    CheckInDetails,
    PgicTooEarly,
    RecordedBeforeVisit,
    RecordedInFuture,
    VisitFull,
    checkins_for_patient,
    submit_checkin,
)
from companion.errors import APIError
from companion.exports import checkins_csv as exports
from companion.exports import fhir
from companion.extensions import csrf, db, limiter
from companion.models import CheckIn, Clinic, PatientLink
from companion.reminders.calendar import feed_url as calendar_feed_url
from companion.reminders.subscriptions import delete_subscription, save_subscription
from companion.timeutil import utcnow
from companion.urls import absolute_url_for
from companion.visits import history, stretch_done
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
    # Too many bad keys from this address: refused before its key is looked at. Good calls
    # never count (companion.guessing).
    wait = guessing.API_KEY.wait()
    if wait is not None:
        guessing.refuse(wait)
    header = request.headers.get("Authorization", "")
    scheme, _, key = header.partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        guessing.API_KEY.failed()
        raise APIError(
            401, "unauthorized", "Send a clinic API key as 'Authorization: Bearer <key>'."
        )
    api_key = verify_key(key)
    if api_key is None:
        guessing.API_KEY.failed()
        raise APIError(401, "unauthorized", "The API key is unknown or revoked.")
    if note_use(api_key, utcnow()):
        # Committed now, on its own: a read commits nothing else, and a request that fails
        # later still used the key.
        db.session.commit()
    g.api_key = api_key
    return api_key.clinic


def require_patient_link() -> PatientLink:
    wait = guessing.PATIENT_COOKIE.wait()
    if wait is not None:
        guessing.refuse(wait)
    link = current_link()
    if link is None:
        # A cookie we never signed, or for no link we know, is a guess. An expired or revoked
        # link's cookie is not: the patient app's outbox keeps sending it (it gets its 401).
        if forged_patient_cookie():
            guessing.PATIENT_COOKIE.failed()
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
        pgic=checkin.pgic,
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
    return PatientDetails(p.ref, p.display_name, p.timezone, p.language, p.phone, p.email)


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
        if two_step.must_enrol(current_user):
            # The clinic requires two-step sign-in and this session has not set it up yet.
            raise APIError(403, "two_step_required", "Turn on two-step sign-in first.")
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
    bundle = fhir.visit_bundle(
        visit,
        checkins,
        now,
        pgic_questionnaire=absolute_url_for("api.pgic_questionnaire"),
        adherence=stretch_done.adherence(visit, now),
    )
    audit.record("export.fhir", audit.current_actor(), ("visit", visit.id), now=now)
    db.session.commit()
    response = jsonify(bundle)
    response.mimetype = "application/fhir+json"
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/fhir/Questionnaire/pgic")
@operation(
    "GET",
    "/api/v1/fhir/Questionnaire/pgic",
    "The FHIR R4 Questionnaire of the day-7 global impression of change (PGIC); its URL is the "
    "canonical that the exported QuestionnaireResponses name",
    responses={200: ("The Questionnaire", "application/fhir+json")},
)
def pgic_questionnaire() -> Response:
    # The same for every clinic and patient: no credentials, no patient data.
    response = jsonify(fhir.pgic_questionnaire(absolute_url_for("api.pgic_questionnaire")))
    response.mimetype = "application/fhir+json"
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
        200: ("Replay of a stored check-in", CheckInReceived),
        201: ("Check-in stored", CheckInReceived),
        409: ("This id was used for a different check-in", ErrorBody),
        422: (
            "A field is missing, of the wrong type or out of range, a code is listed twice "
            "(code duplicate_item), recorded_at is more than "
            f"{CLOCK_SKEW_MINUTES} minutes after the request's arrival (code recorded_in_future) "
            f"or more than {CLOCK_SKEW_MINUTES} minutes before the visit's performed_at (code "
            "recorded_before_visit), or pgic was sent for a check-in recorded less than 6 days "
            "after the visit (code too_early)",
            ErrorBody,
        ),
        429: (
            f"The visit already holds {MAX_CHECKINS_PER_VISIT} check-ins, the most one visit "
            "keeps (code too_many_checkins); nothing was stored. A replay of a stored check-in "
            "still gets 200. Also sent, with another code, when requests come too fast, and "
            "with code too_many_failures (and Retry-After) when too many requests with a bad "
            "patient cookie came from this address.",
            ErrorBody,
        ),
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
        pgic=body.pgic,
        symptoms=list(body.symptoms),
        helped=list(body.helped),
        note=body.note or None,
    )
    try:
        checkin, created = submit_checkin(link.visit, details, now=utcnow())
    except CheckInConflict:
        raise APIError(
            409, "conflict", "A different check-in was already stored with this id.", "id"
        ) from None
    except PgicTooEarly:
        raise APIError(
            422,
            "too_early",
            "pgic: The global impression of change is asked from 6 days after the visit.",
            "pgic",
        ) from None
    except RecordedInFuture:
        raise APIError(
            422,
            "recorded_in_future",
            f"recorded_at: Is more than {CLOCK_SKEW_MINUTES} minutes ahead of the server's "
            "clock. Check the device's date and time.",
            "recorded_at",
        ) from None
    except RecordedBeforeVisit:
        raise APIError(
            422,
            "recorded_before_visit",
            f"recorded_at: Is more than {CLOCK_SKEW_MINUTES} minutes before the visit.",
            "recorded_at",
        ) from None
    except VisitFull:
        raise APIError(
            429,
            "too_many_checkins",
            f"This visit already holds {MAX_CHECKINS_PER_VISIT} check-ins, the most one visit "
            "keeps. Nothing was stored; please contact the clinic.",
        ) from None
    answer = checkin_out(checkin)
    # Whether the clinic is open now, so the patient's red screen says what happens next (the
    # page holds the sentences: patient/next_step.py). Opening hours, not health data.
    status = patient_status(link.visit.clinic, utcnow())
    answer["clinic"] = ClinicNow(status=status.state, opens_at=status.opens_at).model_dump(
        mode="json"
    )
    # The answer is read before the commit, in the same transaction: after it nothing touches the
    # database, so a stored check-in is never answered 503 because a read after the commit found
    # the database locked (SQLite) or gone (the fault tests saw both). The phone would only send
    # it again and get a replay, but its red screen would wait for that.
    db.session.commit()
    return jsonify(answer), 201 if created else 200


DATE_PARAM = {"type": "string", "pattern": DATE_PATTERN}


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
        "raw": (
            "1: every cell exactly as written. 0 or absent (the default): safe for spreadsheets, "
            "a text cell starting with =, +, -, @, a tab or a carriage return gets a leading ' "
            "(a spreadsheet would run it as a formula); number columns are never changed",
            {"type": "string", "enum": ["0", "1"]},
            False,
        ),
    },
    responses={
        200: ("A header row, then one row per check-in, oldest first", "text/csv"),
        422: ("A missing or malformed date, a range over 366 days, or raw not 0 or 1", ErrorBody),
    },
)
def checkins_csv_api(principal: Clinic) -> Response:
    try:
        days = exports.DateRange.parse(request.args.get("from"), request.args.get("to"))
    except exports.RangeError as exc:
        raise APIError(422, "invalid_range", str(exc), exc.field) from None
    try:
        exact = exports.exact_form(request.args.get("raw"))
    except ValueError as exc:
        raise APIError(422, "invalid_value", str(exc), "raw") from None
    return exports.csv_download(principal, days, audit.current_actor(), exact=exact)


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
