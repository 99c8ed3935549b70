"""The /api/v1 contract: visits, check-ins, OpenAPI document, errors."""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from openapi_spec_validator import validate
from sqlalchemy import func, select

from companion.care import stretches
from companion.extensions import db
from companion.models import AuditEvent, CheckIn, Patient, PatientLink, Reminder, Visit
from companion.tokens import hash_token
from tests.conftest import NOW

VISIT = {
    "patient": {"ref": "P-1", "display_name": "Ana", "timezone": "Europe/Madrid", "language": "es"},
    "performed_at": "2026-11-21T10:00:00+01:00",
    "regions": ["neck", "shoulder"],
    "insertions": 8,
    "electrical_stimulation": False,
    "first_visit": True,
}


def post_visit(client, key: str, body: Any) -> Any:
    return client.post("/api/v1/visits", json=body, headers={"Authorization": f"Bearer {key}"})


def count(model: type) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


@pytest.fixture
def key(make_clinic, make_api_key) -> str:
    return make_api_key(make_clinic())


def checkin_body(**changes: Any) -> dict[str, Any]:
    body = {
        "id": str(uuid.uuid4()),
        "recorded_at": NOW.isoformat(),  # `patient_client` pins the clock there
        "soreness": 4,
        "usual_pain": 3,
        "symptoms": [],
        "helped": ["heat"],
        "note": "stiff, better after a walk",
    }
    body.update(changes)
    return body


# --- OpenAPI -----------------------------------------------------------------------------------------


def test_openapi_document_is_valid_openapi_31_and_covers_every_api_route(client, app):
    doc = client.get("/api/v1/openapi.json").get_json()
    assert doc["openapi"].startswith("3.1")
    validate(doc)  # raises on an invalid document
    routes = {
        # Flask's <uuid:visit_id> is OpenAPI's {visit_id}.
        (method.lower(), re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule))
        for rule in app.url_map.iter_rules()
        if rule.rule.startswith("/api/v1")
        for method in rule.methods - {"HEAD", "OPTIONS"}
    }
    documented = {(m, path) for path, ops in doc["paths"].items() for m in ops}
    assert routes == documented
    checkin = doc["components"]["schemas"]["CheckInIn"]
    assert checkin["properties"]["soreness"]["maximum"] == 10
    assert "id" in checkin["required"]


# --- visits ------------------------------------------------------------------------------------------


def test_creating_a_visit_returns_a_link_that_redeems(client, key):
    response = post_visit(client, key, VISIT)
    assert response.status_code == 201
    data = response.get_json()
    assert set(data) == {"visit_id", "patient_url", "calendar_url", "expires_at"}
    visit = db.session.get(Visit, uuid.UUID(data["visit_id"]))
    assert visit.performed_at == datetime(2026, 11, 21, 9, 0, tzinfo=UTC)
    assert visit.regions == ["neck", "shoulder"] and visit.insertions == 8
    assert visit.first_visit is True and visit.electrical_stimulation is False
    token = data["patient_url"].rsplit("/p/", 1)[1]
    # Only the hash is stored.
    link = db.session.scalar(select(PatientLink).where(PatientLink.visit_id == visit.id))
    assert link.token_hash == hash_token(token) and token not in link.token_hash
    redeemed = client.get(f"/p/{token}")
    assert redeemed.status_code == 303
    assert token not in redeemed.headers["Location"]
    audit = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "visit.create"))
    assert audit.actor_type == "api_key" and audit.target_id == str(visit.id)


def test_the_same_patient_ref_reuses_the_patient(client, key):
    first = post_visit(client, key, VISIT).get_json()
    again = dict(VISIT, patient=dict(VISIT["patient"], display_name="Ana M."))
    second = post_visit(client, key, again).get_json()
    assert first["visit_id"] != second["visit_id"]
    assert count(Patient) == 1
    assert db.session.scalar(select(Patient)).display_name == "Ana M."


def test_patient_refs_are_scoped_to_the_clinic(client, make_clinic, make_api_key):
    post_visit(client, make_api_key(make_clinic()), VISIT)
    post_visit(client, make_api_key(make_clinic()), VISIT)
    assert count(Patient) == 2


@pytest.mark.parametrize("header", [None, "Bearer", "Bearer nope", "Basic abc"])
def test_visits_need_a_valid_clinic_key(client, header):
    headers = {"Authorization": header} if header else {}
    response = client.post("/api/v1/visits", json=VISIT, headers=headers)
    assert response.status_code == 401
    assert response.get_json()["error"]["code"] == "unauthorized"
    assert count(Visit) == 0


def _with(path: str, value: Any) -> dict[str, Any]:
    body = json.loads(json.dumps(VISIT))
    target = body
    *parents, last = path.split(".")
    for part in parents:
        target = target[part]
    if value is _MISSING:
        del target[last]
    else:
        target[last] = value
    return body


_MISSING = object()


@pytest.mark.parametrize(
    ("path", "value", "code", "field"),
    [
        ("performed_at", "2026-11-21T10:00:00", "naive_timestamp", "performed_at"),
        ("performed_at", "yesterday", "invalid_timestamp", "performed_at"),
        ("performed_at", 1763715600, "invalid_timestamp", "performed_at"),
        ("performed_at", _MISSING, "missing_field", "performed_at"),
        ("patient.timezone", "Mars/Olympus", "invalid_timezone", "patient.timezone"),
        ("patient.timezone", "CET+1", "invalid_timezone", "patient.timezone"),
        ("patient.language", "fr", "unknown_language", "patient.language"),
        ("patient.ref", "", "too_short", "patient.ref"),
        ("patient.ref", 42, "wrong_type", "patient.ref"),
        ("patient", _MISSING, "missing_field", "patient"),
        ("regions", ["neck", "elbowz"], "unknown_region", "regions.1"),
        ("regions", [], "too_short", "regions"),
        ("insertions", "7", "wrong_type", "insertions"),
        ("insertions", True, "wrong_type", "insertions"),
        ("insertions", 7.5, "wrong_type", "insertions"),
        ("insertions", -1, "out_of_range", "insertions"),
        ("electrical_stimulation", "yes", "wrong_type", "electrical_stimulation"),
        ("first_visit", 1, "wrong_type", "first_visit"),
        ("surprise", 1, "unknown_field", "surprise"),
    ],
)
def test_bad_visit_input_gets_its_own_422_and_changes_nothing(
    client, key, path, value, code, field
):
    response = post_visit(client, key, _with(path, value))
    assert response.status_code == 422, response.get_json()
    error = response.get_json()["error"]
    assert error["code"] == code
    assert error["field"] == field
    assert error["message"]
    assert count(Visit) == 0 and count(Patient) == 0


def test_malformed_json_is_a_400(client, key):
    response = client.post(
        "/api/v1/visits",
        data='{"patient": ',
        content_type="application/json",
        headers={"Authorization": f"Bearer {key}"},
    )
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == "malformed_json"


def test_a_body_that_is_not_json_is_a_415(client, key):
    response = client.post("/api/v1/visits", data="a=b", headers={"Authorization": f"Bearer {key}"})
    assert response.status_code == 415
    assert response.get_json()["error"]["code"] == "unsupported_media_type"


def test_a_body_over_the_size_limit_is_a_413(client, key, app):
    big = _with("patient.display_name", "x" * (app.config["MAX_CONTENT_LENGTH"] + 10))
    response = post_visit(client, key, big)
    assert response.status_code == 413
    assert response.get_json()["error"]["code"] == "request_entity_too_large"
    assert count(Visit) == 0


def test_an_unknown_api_path_answers_json_404(client):
    response = client.get("/api/v1/nothing-here")
    assert response.status_code == 404
    assert response.get_json()["error"]["code"] == "not_found"


# --- check-ins ---------------------------------------------------------------------------------------


def test_a_checkin_is_stored_and_triaged(patient_client):
    body = checkin_body(soreness=4)
    response = patient_client.post("/api/v1/checkins", json=body)
    assert response.status_code == 201
    data = response.get_json()
    assert data["id"] == body["id"]
    assert data["soreness"] == 4 and data["usual_pain"] == 3
    assert data["triage"] == "green"
    assert data["note"] == body["note"]


def test_a_red_flag_makes_the_checkin_red_whatever_the_score(patient_client):
    body = checkin_body(soreness=0, symptoms=["breathless"])
    data = patient_client.post("/api/v1/checkins", json=body).get_json()
    assert data["triage"] == "red"
    assert "symptom:breathless" in data["triage_reasons"]


def test_a_replayed_checkin_returns_the_stored_result(patient_client):
    body = checkin_body()
    first = patient_client.post("/api/v1/checkins", json=body)
    again = patient_client.post("/api/v1/checkins", json=body)
    assert first.status_code == 201 and again.status_code == 200
    assert again.get_json() == first.get_json()
    assert count(CheckIn) == 1


def test_a_replay_with_the_same_instant_in_another_offset_is_the_same_checkin(patient_client):
    # An hour after the visit (`patient_client`'s is 3 h before NOW), written in UTC and in +01:00.
    moment = NOW - timedelta(hours=2)
    body = checkin_body(recorded_at=moment.isoformat())
    assert patient_client.post("/api/v1/checkins", json=body).status_code == 201
    shifted = dict(body, recorded_at=moment.astimezone(timezone(timedelta(hours=1))).isoformat())
    assert patient_client.post("/api/v1/checkins", json=shifted).status_code == 200


def test_the_same_id_with_a_different_body_is_a_409_and_changes_nothing(patient_client):
    body = checkin_body(soreness=3)
    stored = patient_client.post("/api/v1/checkins", json=body).get_json()
    del stored["clinic"]  # the clinic as the check-in found it, only in the answer to the POST
    response = patient_client.post("/api/v1/checkins", json=dict(body, soreness=9))
    assert response.status_code == 409
    assert response.get_json()["error"]["code"] == "conflict"
    assert count(CheckIn) == 1
    assert db.session.scalar(select(CheckIn)).soreness == 3
    assert patient_client.get("/api/v1/checkins").get_json()["checkins"] == [stored]


@pytest.mark.parametrize(
    ("changes", "status", "code", "field"),
    [
        ({"soreness": True}, 422, "wrong_type", "soreness"),
        ({"soreness": "7"}, 422, "wrong_type", "soreness"),
        ({"soreness": 7.5}, 422, "wrong_type", "soreness"),
        ({"soreness": 7.0}, 422, "wrong_type", "soreness"),
        ({"soreness": -1}, 422, "out_of_range", "soreness"),
        ({"soreness": 11}, 422, "out_of_range", "soreness"),
        ({"soreness": None}, 422, "wrong_type", "soreness"),
        ({"soreness": _MISSING}, 422, "missing_field", "soreness"),
        ({"usual_pain": 11}, 422, "out_of_range", "usual_pain"),
        ({"usual_pain": False}, 422, "wrong_type", "usual_pain"),
        ({"id": "not-a-uuid"}, 422, "invalid_uuid", "id"),
        ({"id": _MISSING}, 422, "missing_field", "id"),
        ({"recorded_at": "2026-11-21T10:00:00"}, 422, "naive_timestamp", "recorded_at"),
        ({"recorded_at": "21/11/2026 10:00"}, 422, "invalid_timestamp", "recorded_at"),
        ({"symptoms": ["breathless", "itchy_elbow"]}, 422, "unknown_symptom", "symptoms.1"),
        ({"symptoms": "breathless"}, 422, "wrong_type", "symptoms"),
        ({"helped": ["magic"]}, 422, "unknown_helped", "helped.0"),
        ({"note": "x" * 1001}, 422, "too_long", "note"),
        ({"note": 5}, 422, "wrong_type", "note"),
        ({"mood": "fine"}, 422, "unknown_field", "mood"),
    ],
)
def test_bad_checkin_input_gets_its_own_4xx_and_changes_nothing(
    patient_client, changes, status, code, field
):
    body = checkin_body()
    for name, value in changes.items():
        if value is _MISSING:
            del body[name]
        else:
            body[name] = value
    response = patient_client.post("/api/v1/checkins", json=body)
    assert response.status_code == status, response.get_json()
    error = response.get_json()["error"]
    assert (error["code"], error.get("field")) == (code, field)
    assert count(CheckIn) == 0


def test_errors_never_echo_the_submitted_values(patient_client):
    body = checkin_body(note="my secret diagnosis " * 60)
    text = patient_client.post("/api/v1/checkins", json=body).get_data(as_text=True)
    assert "secret diagnosis" not in text


def test_a_note_of_exactly_1000_characters_is_accepted(patient_client):
    body = checkin_body(note="é" * 1000)
    assert patient_client.post("/api/v1/checkins", json=body).status_code == 201


def test_malformed_checkin_json_is_a_400(patient_client):
    response = patient_client.post("/api/v1/checkins", data="{", content_type="application/json")
    assert response.status_code == 400
    assert count(CheckIn) == 0


def test_checkins_need_the_patient_cookie(client):
    assert client.post("/api/v1/checkins", json=checkin_body()).status_code == 401
    assert client.get("/api/v1/checkins").status_code == 401


def test_a_revoked_link_ends_the_patient_cookie(patient_client, now):
    for link in patient_client.visit.links:
        link.revoked_at = now
    db.session.commit()
    assert patient_client.post("/api/v1/checkins", json=checkin_body()).status_code == 401


def test_an_expired_link_ends_the_patient_cookie(patient_client, now):
    for link in patient_client.visit.links:
        link.expires_at = now - timedelta(seconds=1)
    db.session.commit()
    assert patient_client.get("/api/v1/checkins").status_code == 401


def test_checkins_are_listed_newest_first_and_only_the_patients_own(
    patient_client, app, make_clinic, make_visit
):
    base = NOW - timedelta(hours=2)  # an hour after `patient_client`'s visit
    for minutes, score in ((0, 5), (100, 2), (50, 3)):
        recorded_at = (base + timedelta(minutes=minutes)).isoformat()
        body = checkin_body(soreness=score, recorded_at=recorded_at)
        assert patient_client.post("/api/v1/checkins", json=body).status_code == 201
    other = app.test_client()
    other.get(make_visit(make_clinic()).url)
    other.post("/api/v1/checkins", json=checkin_body(soreness=9))

    listed = patient_client.get("/api/v1/checkins").get_json()["checkins"]
    assert [c["soreness"] for c in listed] == [2, 3, 5]
    assert len(other.get("/api/v1/checkins").get_json()["checkins"]) == 1


def test_the_same_client_id_from_two_patients_is_two_checkins(
    patient_client, app, make_clinic, make_visit
):
    body = checkin_body()
    other = app.test_client()
    other.get(make_visit(make_clinic()).url)
    assert patient_client.post("/api/v1/checkins", json=body).status_code == 201
    assert other.post("/api/v1/checkins", json=dict(body, soreness=8)).status_code == 201


# --- health ------------------------------------------------------------------------------------------


def test_healthz_answers_200_when_the_database_answers(client):
    response = client.get("/healthz")
    assert response.status_code == 200 and response.get_json() == {"status": "ok"}


def test_healthz_answers_503_when_the_database_does_not(tmp_path):
    from companion import create_app

    app = create_app(
        {
            "TESTING": True,
            "SECRET_KEY": "x",
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path}/missing/dir/db.sqlite3",
        }
    )
    response = app.test_client().get("/healthz")
    assert response.status_code == 503
    assert response.get_json() == {"status": "unavailable"}


# --- stretches and the visit an offline entry was made for -------------------------------------------


def test_a_visit_without_stretches_gets_the_regions_defaults(client, key):
    data = post_visit(client, key, VISIT).get_json()
    visit = db.session.get(Visit, uuid.UUID(data["visit_id"]))
    assert visit.stretches == stretches.defaults_for(["neck", "shoulder"])


@pytest.mark.parametrize("chosen", [[], ["chin_tuck"], ["chin_tuck", "calf_wall"]])
def test_a_visit_keeps_exactly_the_stretches_sent(client, key, chosen):
    data = post_visit(client, key, dict(VISIT, stretches=chosen)).get_json()
    assert db.session.get(Visit, uuid.UUID(data["visit_id"])).stretches == chosen


def test_null_stretches_mean_the_regions_defaults(client, key):
    data = post_visit(client, key, dict(VISIT, stretches=None)).get_json()
    visit = db.session.get(Visit, uuid.UUID(data["visit_id"]))
    assert visit.stretches == stretches.defaults_for(["neck", "shoulder"])


@pytest.mark.parametrize("bad", [["cartwheel"], "chin_tuck", [1]])
def test_bad_stretches_are_a_422_naming_the_field(client, key, bad):
    response = post_visit(client, key, dict(VISIT, stretches=bad))
    assert response.status_code == 422
    assert response.get_json()["error"]["field"].startswith("stretches")
    assert count(Visit) == 0


def test_a_checkin_for_another_visit_is_refused_and_not_stored(patient_client):
    body = checkin_body(visit_id=str(uuid.uuid4()))
    response = patient_client.post("/api/v1/checkins", json=body)
    assert response.status_code == 409
    assert response.get_json()["error"]["code"] == "other_visit"
    assert count(CheckIn) == 0
    ok = patient_client.post(
        "/api/v1/checkins", json=checkin_body(visit_id=str(patient_client.visit.id))
    )
    assert ok.status_code == 201


# --- correcting a visit ---------------------------------------------------------------------------


def _visit_at_now(client, key: str) -> tuple[str, dict[str, Any]]:
    """A visit just recorded (the caller pins the clock with `now`), so no reminder has ended."""
    body = {**VISIT, "performed_at": "2026-11-25T11:00:00+01:00"}
    assert datetime.fromisoformat(body["performed_at"]) == NOW
    return post_visit(client, key, body).get_json()["visit_id"], body


def put_visit(client, key: str, visit_id: str, body: Any) -> Any:
    return client.put(
        f"/api/v1/visits/{visit_id}", json=body, headers={"Authorization": f"Bearer {key}"}
    )


def test_correcting_a_visit_through_the_api_re_plans_its_reminders(client, key, now):
    visit_id, body = _visit_at_now(client, key)
    before = {r.kind: r.due_at for r in db.session.scalars(select(Reminder))}

    response = put_visit(
        client, key, visit_id, {**body, "performed_at": "2026-11-25T12:30:00+01:00"}
    )

    assert response.status_code == 200, response.get_json()
    data = response.get_json()
    after = {r["kind"]: r for r in data["reminders"]}
    assert set(after) == set(before)
    moved = datetime.fromisoformat(after["after_48h"]["due_at"])
    assert moved - before["after_48h"] == timedelta(hours=1, minutes=30)
    assert {r["status"] for r in data["reminders"]} == {"planned"}
    assert db.session.get(Visit, uuid.UUID(visit_id)).performed_at == datetime(
        2026, 11, 25, 11, 30, tzinfo=UTC
    )
    assert "visit.update" in db.session.scalars(select(AuditEvent.action)).all()


def test_a_visit_cannot_move_to_another_patient(client, key, now):
    visit_id, body = _visit_at_now(client, key)
    other = {**body, "patient": {**body["patient"], "ref": "P-2"}}

    response = put_visit(client, key, visit_id, other)

    assert response.status_code == 409
    assert response.get_json()["error"]["code"] == "patient_mismatch"
    assert db.session.get(Visit, uuid.UUID(visit_id)).performed_at == NOW


def test_another_clinics_visit_is_not_found(client, key, make_clinic, make_api_key, now):
    visit_id, body = _visit_at_now(client, key)
    stranger = make_api_key(make_clinic())

    assert put_visit(client, stranger, visit_id, body).status_code == 404
    assert put_visit(client, "ak_wrong", visit_id, body).status_code == 401


def test_a_bad_correction_is_a_422_and_changes_nothing(client, key, now):
    visit_id, body = _visit_at_now(client, key)

    response = put_visit(client, key, visit_id, {**body, "performed_at": "tomorrow"})

    assert response.status_code == 422
    assert response.get_json()["error"]["field"] == "performed_at"
    assert db.session.get(Visit, uuid.UUID(visit_id)).performed_at == NOW
