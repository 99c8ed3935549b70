"""FHIR export of one visit (issue 5): the Bundle validates against the FHIR R4 (4.0.1) models of
fhir.resources, uses only verified codes, and carries every check-in.

fhir.resources 6.4.0 is the last release with R4 models and needs pydantic 1, so the validation runs
in its own virtualenv (.venv-fhir-r4, made by `make install-dev`; tests/fhir_r4/)."""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from companion.checkins.store import CheckInDetails, submit_checkin
from companion.extensions import db
from companion.models import AuditEvent
from tests.conftest import sign_in

VISIT_AT = datetime(2026, 11, 10, 9, 0, tzinfo=UTC)
ROOT = Path(__file__).resolve().parent.parent
R4_PYTHON = Path(os.environ.get("FHIR_R4_PYTHON", ROOT / ".venv-fhir-r4" / "bin" / "python"))


def r4_errors(bundle: dict) -> str | None:
    """None when the Bundle validates against the FHIR R4 models, else the models' errors."""
    assert R4_PYTHON.exists(), f"{R4_PYTHON} is missing: run `make install-dev`"
    done = subprocess.run(
        [str(R4_PYTHON), str(ROOT / "tests" / "fhir_r4" / "validate.py")],
        input=json.dumps(bundle),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    version, _, rest = done.stdout.partition("\n")
    assert version == "4.0.1", done.stdout + done.stderr  # really the R4 models
    if done.returncode == 0 and rest.strip() == "valid":
        return None
    assert done.returncode == 1, done.stderr
    return rest


@pytest.fixture
def visit(make_clinic, make_visit):
    clinic = make_clinic()
    made = make_visit(
        clinic,
        name="Ana Ruiz",
        ref="P-7",
        regions=["neck", "calf"],
        performed_at=VISIT_AT,
        now=VISIT_AT,
    ).visit
    for hours, score, usual, symptoms, helped, note in (
        (3, 4, None, [], ["heat"], None),
        (24, 2, 5, ["small_bruise"], ["movement", "stretches"], 'a bit stiff, "better"'),
    ):
        at = VISIT_AT + timedelta(hours=hours)
        details = CheckInDetails(uuid.uuid4(), at, score, usual, symptoms, helped, note)
        submit_checkin(made, details, now=at)
    db.session.commit()
    return made


def get_bundle(client, key, visit_id):
    return client.get(f"/api/v1/visits/{visit_id}/fhir", headers={"Authorization": f"Bearer {key}"})


def resources(bundle: dict, kind: str) -> list[dict]:
    return [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == kind]


def test_the_bundle_validates_against_the_fhir_models(client, make_api_key, visit):
    response = get_bundle(client, make_api_key(visit.clinic), visit.id)

    assert response.status_code == 200
    assert response.mimetype == "application/fhir+json"
    data = response.get_json()
    assert r4_errors(data) is None
    assert data["type"] == "collection"
    kinds = [e["resource"]["resourceType"] for e in data["entry"]]
    assert kinds.count("Patient") == 1 and kinds.count("Procedure") == 1
    # Two scores, and how often each chosen stretch was done (tests/test_stretch_done.py).
    assert kinds.count("Observation") == 2 + len(visit.stretches)
    assert kinds.count("QuestionnaireResponse") == 2
    full_urls = [e["fullUrl"] for e in data["entry"]]
    assert len(set(full_urls)) == len(full_urls)


def test_the_r4_check_refuses_what_r4_does_not_allow(client, make_api_key, visit):
    """The validator is strict: the same export with one element broken in three ways fails."""
    data = get_bundle(client, make_api_key(visit.clinic), visit.id).get_json()
    observation = resources(data, "Observation")[0]

    observation["valueInteger"] = "four"
    assert "valueInteger" in r4_errors(data)
    observation["valueInteger"] = 4
    observation["painScore"] = 4  # no such element
    assert "painScore" in r4_errors(data)
    del observation["painScore"]
    del observation["status"]  # required
    assert "status" in r4_errors(data)


def test_scores_are_loinc_survey_observations_part_of_the_procedure(client, make_api_key, visit):
    data = get_bundle(client, make_api_key(visit.clinic), visit.id).get_json()
    [procedure] = resources(data, "Procedure")
    observations = [
        o
        for o in resources(data, "Observation")
        if o["category"][0]["coding"][0]["code"] == "survey"
    ]

    assert [o["valueInteger"] for o in observations] == [4, 2]
    for o in observations:
        assert o["code"]["coding"][0] == {
            "system": "http://loinc.org",
            "code": "72514-3",
            "display": "Pain severity - 0-10 verbal numeric rating [Score] - Reported",
        }
        assert o["category"][0]["coding"][0]["code"] == "survey"
        assert o["partOf"] == [{"reference": f"urn:uuid:{procedure['id']}"}]
    assert observations[0]["effectiveDateTime"] == "2026-11-10T12:00:00Z"
    assert "bodySite" not in observations[0]  # two regions: where the soreness is is not known


def test_only_verified_body_site_codes_are_coded(client, make_api_key, visit):
    data = get_bundle(client, make_api_key(visit.clinic), visit.id).get_json()
    [procedure] = resources(data, "Procedure")
    neck, calf = procedure["bodySite"]

    assert neck["coding"] == [
        {"system": "http://snomed.info/sct", "code": "45048000", "display": neck["text"]}
    ]
    assert calf == {"text": "Calf"}  # no verified code: text only
    assert procedure["code"] == {"text": "Dry needling"}


def test_the_patient_carries_the_clinic_reference_as_identifier(client, make_api_key, visit):
    data = get_bundle(client, make_api_key(visit.clinic), visit.id).get_json()
    [patient] = resources(data, "Patient")

    assert patient["identifier"][0]["value"] == "P-7"
    assert str(visit.clinic_id) in patient["identifier"][0]["system"]
    assert patient["name"] == [{"text": "Ana Ruiz"}]


def test_symptom_answers_are_in_a_questionnaire_response(client, make_api_key, visit):
    data = get_bundle(client, make_api_key(visit.clinic), visit.id).get_json()
    second = resources(data, "QuestionnaireResponse")[1]
    items = {i["linkId"]: i["answer"] for i in second["item"]}

    assert items["soreness"] == [{"valueInteger": 2}]
    assert items["usual_pain"] == [{"valueInteger": 5}]
    assert [a["valueCoding"]["code"] for a in items["symptoms"]] == ["small_bruise"]
    assert [a["valueCoding"]["code"] for a in items["helped"]] == ["movement", "stretches"]
    assert items["note"] == [{"valueString": 'a bit stiff, "better"'}]


def test_another_clinics_visit_is_not_found_and_a_key_is_needed(
    client, make_api_key, make_clinic, visit
):
    assert get_bundle(client, make_api_key(make_clinic()), visit.id).status_code == 404
    assert client.get(f"/api/v1/visits/{visit.id}/fhir").status_code == 401


def test_a_signed_in_therapist_downloads_it_and_the_export_is_audited(
    client, make_therapist, visit
):
    therapist = make_therapist(visit.clinic)
    sign_in(client, therapist.email)

    response = client.get(f"/api/v1/visits/{visit.id}/fhir")

    assert response.status_code == 200
    assert r4_errors(response.get_json()) is None
    event = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "export.fhir"))
    assert (event.actor_type, event.actor_id, event.target_id) == (
        "therapist",
        str(therapist.id),
        str(visit.id),
    )


def test_every_full_url_differs_whatever_ids_the_phone_chose(client, make_api_key, visit):
    """A phone picks each check-in's id; one equal to the visit's id must not make two entries
    share a fullUrl (bdl-7), which the R4 models alone do not check."""
    at = VISIT_AT + timedelta(hours=48)
    details = CheckInDetails(visit.id, at, 1, None, [], [], None)  # the visit's own id
    submit_checkin(visit, details, now=at)
    db.session.commit()
    data = get_bundle(client, make_api_key(visit.clinic), visit.id).get_json()
    full_urls = [e["fullUrl"] for e in data["entry"]]
    expected = 1 + 1 + 3 + 3 + len(visit.stretches)
    assert len(full_urls) == expected and len(set(full_urls)) == len(full_urls)
    assert all(e["fullUrl"] == f"urn:uuid:{e['resource']['id']}" for e in data["entry"])
    assert r4_errors(data) is None


# --- issue 12: the patient's contact details and the day-7 global impression of change ------------


@pytest.fixture
def day_7_visit(make_clinic, make_visit, now):
    """A visit a week ago, to a patient with a phone and e-mail, with a day-1 check-in and a day-7
    one that gave the global impression of change (2, much improved)."""
    visit_at = now - timedelta(days=7)
    made = make_visit(make_clinic(), ref="P-9", performed_at=visit_at, now=visit_at).visit
    made.patient.phone = "+34612345678"
    made.patient.email = "ana@example.com"
    for at, pgic in ((visit_at + timedelta(hours=20), None), (now, 2)):
        details = CheckInDetails(uuid.uuid4(), at, 1, 3, [], [], None, pgic=pgic)
        submit_checkin(made, details, now=at)
    db.session.commit()
    return made


def test_the_patient_carries_phone_and_email_as_telecom(client, make_api_key, day_7_visit, now):
    data = get_bundle(client, make_api_key(day_7_visit.clinic), day_7_visit.id).get_json()
    [patient] = resources(data, "Patient")

    assert patient["telecom"] == [
        {"system": "phone", "value": "+34612345678", "use": "mobile"},  # a Spanish mobile
        {"system": "email", "value": "ana@example.com"},
    ]
    assert r4_errors(data) is None


def test_a_patient_without_contact_details_has_no_telecom(client, make_api_key, day_7_visit, now):
    day_7_visit.patient.phone = day_7_visit.patient.email = None
    db.session.commit()
    data = get_bundle(client, make_api_key(day_7_visit.clinic), day_7_visit.id).get_json()
    assert "telecom" not in resources(data, "Patient")[0]


def test_a_landline_is_a_phone_without_a_use(client, make_api_key, day_7_visit, now):
    day_7_visit.patient.phone = "+34912345678"  # Madrid fixed line
    db.session.commit()
    data = get_bundle(client, make_api_key(day_7_visit.clinic), day_7_visit.id).get_json()
    assert resources(data, "Patient")[0]["telecom"][0] == {
        "system": "phone",
        "value": "+34912345678",
    }


def test_the_global_impression_is_a_questionnaire_response_of_its_own(
    client, make_api_key, day_7_visit, now
):
    data = get_bundle(client, make_api_key(day_7_visit.clinic), day_7_visit.id).get_json()

    assert r4_errors(data) is None
    responses = resources(data, "QuestionnaireResponse")
    assert len(responses) == 3  # one per check-in, and one for the one global impression
    [pgic] = [r for r in responses if "questionnaire" in r]
    [patient] = resources(data, "Patient")
    assert pgic["questionnaire"] == "http://companion.test/api/v1/fhir/Questionnaire/pgic"
    assert pgic["status"] == "completed"
    assert pgic["subject"] == {"reference": f"urn:uuid:{patient['id']}"}
    assert pgic["authored"] == "2026-11-25T10:00:00Z"
    [item] = pgic["item"]
    assert item["linkId"] == "pgic"
    assert item["answer"] == [
        {
            "valueCoding": {
                "system": "urn:aftercare-companion:pgic",
                "code": "2",
                "display": "Much improved",
            }
        }
    ]
    full_urls = [e["fullUrl"] for e in data["entry"]]
    assert len(set(full_urls)) == len(full_urls)


def test_the_canonical_uses_public_url_when_set(client, make_api_key, day_7_visit, app, now):
    app.config["PUBLIC_URL"] = "https://aftercare.example.org"
    data = get_bundle(client, make_api_key(day_7_visit.clinic), day_7_visit.id).get_json()
    [pgic] = [r for r in resources(data, "QuestionnaireResponse") if "questionnaire" in r]
    assert pgic["questionnaire"] == "https://aftercare.example.org/api/v1/fhir/Questionnaire/pgic"


def test_the_questionnaire_is_served_at_its_canonical_url_and_is_valid_r4(client, now):
    url = "http://companion.test/api/v1/fhir/Questionnaire/pgic"

    response = client.get(url)

    assert response.status_code == 200
    assert response.mimetype == "application/fhir+json"
    questionnaire = response.get_json()
    assert questionnaire["url"] == url
    [item] = questionnaire["item"]
    assert item["linkId"] == "pgic" and item["type"] == "choice"
    codes = [o["valueCoding"]["code"] for o in item["answerOption"]]
    assert codes == ["1", "2", "3", "4", "5", "6", "7"]
    bundle = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [{"fullUrl": f"{url}", "resource": questionnaire}],
    }
    assert r4_errors(bundle) is None
