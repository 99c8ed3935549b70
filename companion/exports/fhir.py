"""FHIR R4 export of one visit: a `collection` Bundle with the Patient, a Procedure for the needling,
one Observation per check-in score and one QuestionnaireResponse per check-in (issue 5), plus one
QuestionnaireResponse to our PGIC Questionnaire per check-in with a day-7 global impression of change
(issue 12; the Questionnaire itself is served at its canonical URL, `pgic_questionnaire`).

Codes are only those clinical.md lists as verified ("Codes for exports"): LOINC 72514-3 for the
0-10 pain score, SNOMED CT body sites for neck, lower back and shoulder region. Everything else
(the other regions, the needling itself, symptoms, what helped) is exported as text or as our own
local codes, never as a guessed standard code.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from flask_babel import force_locale

from companion.care import pgic
from companion.care.helped import HELPED
from companion.care.regions import BY_CODE as REGIONS
from companion.care.triage import SYMPTOMS
from companion.models import CheckIn, Visit
from companion.timeutil import utc_instant
from companion.visits.contact import is_mobile
from companion.visits.stretch_done import Adherence

SNOMED = "http://snomed.info/sct"
LOINC = "http://loinc.org"
OBSERVATION_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
# Our own code systems (URNs we control): the clinic's patient references, symptoms, what helped.
LOCAL = "urn:aftercare-companion"
# The global impression of change has no LOINC code (clinical.md): a local code system, codes "1"-"7".
PGIC_SYSTEM = f"{LOCAL}:pgic"
# The stretches of care/stretches.py, by their stable codes.
STRETCH_SYSTEM = f"{LOCAL}:stretch"
PAIN_SCORE = {
    "coding": [
        {
            "system": LOINC,
            "code": "72514-3",
            "display": "Pain severity - 0-10 verbal numeric rating [Score] - Reported",
        }
    ],
    "text": "Soreness where the needles went, 0-10",
}


def _ref(resource_id: object) -> str:
    return f"urn:uuid:{resource_id}"


def body_site(code: str) -> dict[str, Any]:
    """A region as a CodeableConcept: SNOMED CT where clinical.md verified it, else text only."""
    region = REGIONS.get(code)
    text = str(region.label) if region else code
    concept: dict[str, Any] = {"text": text}
    if region is not None and region.snomed:
        concept["coding"] = [{"system": SNOMED, "code": region.snomed, "display": text}]
    return concept


def patient_resource(visit: Visit) -> dict[str, Any]:
    patient = visit.patient
    resource: dict[str, Any] = {
        "resourceType": "Patient",
        "id": str(patient.id),
        # The clinic's own reference, scoped to the clinic: the same ref elsewhere is someone else.
        "identifier": [
            {"system": f"{LOCAL}:clinic:{visit.clinic_id}:patient-ref", "value": patient.ref}
        ],
        "name": [{"text": patient.display_name}],
        "communication": [
            {"language": {"coding": [{"system": "urn:ietf:bcp:47", "code": patient.language}]}}
        ],
    }
    telecom = []
    if patient.phone:
        phone = {"system": "phone", "value": patient.phone}
        # "mobile" only when the numbering plan says so; otherwise the use is left unsaid.
        if is_mobile(patient.phone):
            phone["use"] = "mobile"
        telecom.append(phone)
    if patient.email:
        telecom.append({"system": "email", "value": patient.email})
    if telecom:
        resource["telecom"] = telecom
    return resource


def procedure_resource(visit: Visit) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "Procedure",
        "id": str(visit.id),
        "status": "completed",
        # No verified code for dry needling in clinical.md: text only.
        "code": {"text": "Dry needling"},
        "subject": {"reference": _ref(visit.patient_id)},
        "performedDateTime": utc_instant(visit.performed_at),
        "bodySite": [body_site(code) for code in visit.regions],
    }
    details = []
    if visit.insertions is not None:
        details.append(f"insertions: {visit.insertions}")
    if visit.electrical_stimulation is not None:
        details.append(f"electrical stimulation: {'yes' if visit.electrical_stimulation else 'no'}")
    if visit.first_visit is not None:
        details.append(f"first dry-needling visit: {'yes' if visit.first_visit else 'no'}")
    if details:
        resource["note"] = [{"text": "; ".join(details)}]
    return resource


def observation_resource(visit: Visit, checkin: CheckIn) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "Observation",
        "id": str(checkin.id),
        "status": "final",
        "category": [
            {"coding": [{"system": OBSERVATION_CATEGORY, "code": "survey", "display": "Survey"}]}
        ],
        "code": PAIN_SCORE,
        "subject": {"reference": _ref(visit.patient_id)},
        "partOf": [{"reference": _ref(visit.id)}],
        "effectiveDateTime": utc_instant(checkin.recorded_at),
        "valueInteger": checkin.soreness,
    }
    # "Where known": a visit to one region says where the soreness is; several do not.
    if len(visit.regions) == 1:
        resource["bodySite"] = body_site(visit.regions[0])
    return resource


def _coded_answers(codes: list[str], system: str, labels: dict[str, str]) -> list[dict[str, Any]]:
    return [
        {"valueCoding": {"system": system, "code": code, "display": labels.get(code, code)}}
        for code in codes
    ]


def questionnaire_response(visit: Visit, checkin: CheckIn) -> dict[str, Any]:
    symptom_labels = {code: str(s.label) for code, s in SYMPTOMS.items()}
    helped_labels = {code: str(label) for code, label in HELPED.items()}
    items: list[dict[str, Any]] = [
        {
            "linkId": "soreness",
            "text": "Soreness, 0-10",
            "answer": [{"valueInteger": checkin.soreness}],
        }
    ]
    if checkin.usual_pain is not None:
        items.append(
            {
                "linkId": "usual_pain",
                "text": "Usual pain, 0-10",
                "answer": [{"valueInteger": checkin.usual_pain}],
            }
        )
    if checkin.symptoms:
        items.append(
            {
                "linkId": "symptoms",
                "text": "Symptoms",
                "answer": _coded_answers(checkin.symptoms, f"{LOCAL}:symptom", symptom_labels),
            }
        )
    if checkin.helped:
        items.append(
            {
                "linkId": "helped",
                "text": "What helped",
                "answer": _coded_answers(checkin.helped, f"{LOCAL}:helped", helped_labels),
            }
        )
    if checkin.note:
        items.append({"linkId": "note", "text": "Note", "answer": [{"valueString": checkin.note}]})
    return {
        "resourceType": "QuestionnaireResponse",
        # Derived from the check-in's own id (the Observation's): ids, and so fullUrls, must differ
        # within a Bundle (bdl-7), and every id here is the server's, never a client's choice.
        "id": str(
            uuid.uuid5(uuid.NAMESPACE_URL, f"urn:aftercare:questionnaire-response:{checkin.id}")
        ),
        "status": "completed",
        "subject": {"reference": _ref(visit.patient_id)},
        "authored": utc_instant(checkin.recorded_at),
        "item": items,
    }


def _pgic_coding(answer: pgic.Answer) -> dict[str, Any]:
    return {"system": PGIC_SYSTEM, "code": str(answer.code), "display": answer.display}


def pgic_questionnaire(url: str) -> dict[str, Any]:
    """Our Questionnaire for the day-7 global impression of change, whose canonical is `url`."""
    return {
        "resourceType": "Questionnaire",
        "id": "pgic",
        "url": url,
        "name": "PGIC",
        "title": "Patient Global Impression of Change of the usual pain",
        "status": "active",
        "subjectType": ["Patient"],
        "description": "Asked from 6 days after a dry-needling visit: the patient's impression of "
        "the change in their usual pain (the condition treated), on the 7-point PGIC scale "
        f"({pgic.SOURCE}). Public domain.",
        "item": [
            {
                "linkId": "pgic",
                "text": "Compared with before this visit, how is your usual pain now?",
                "type": "choice",
                "answerOption": [{"valueCoding": _pgic_coding(a)} for a in pgic.ANSWERS],
            }
        ],
    }


def pgic_response(visit: Visit, checkin: CheckIn, questionnaire: str) -> dict[str, Any]:
    """The check-in's global impression of change as a response to the PGIC Questionnaire."""
    assert checkin.pgic is not None
    return {
        "resourceType": "QuestionnaireResponse",
        # Derived from the check-in's id like the check-in's own response, with its own name.
        "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"urn:aftercare:pgic-response:{checkin.id}")),
        "questionnaire": questionnaire,
        "status": "completed",
        "subject": {"reference": _ref(visit.patient_id)},
        "authored": utc_instant(checkin.recorded_at),
        "item": [
            {
                "linkId": "pgic",
                "text": "Global impression of change of the usual pain",
                "answer": [{"valueCoding": _pgic_coding(pgic.BY_CODE[checkin.pgic])}],
            }
        ],
    }


def stretch_observation(visit: Visit, done: Adherence) -> dict[str, Any]:
    """On how many days the patient ticked one chosen stretch as done (issue 15), over the days
    from the visit to the export. No standard code says "home stretch done": a local one, named
    by the stretch's own stable code."""
    last_day = done.first_day + timedelta(days=done.days - 1)
    return {
        "resourceType": "Observation",
        # Stable across exports: the same stretch of the same visit is the same Observation.
        "id": str(uuid.uuid5(visit.id, f"stretch-done:{done.code}")),
        "status": "final",
        "category": [
            {
                "coding": [
                    {"system": OBSERVATION_CATEGORY, "code": "activity", "display": "Activity"}
                ]
            }
        ],
        "code": {
            "coding": [{"system": STRETCH_SYSTEM, "code": done.code, "display": str(done.title)}],
            "text": f"Days the patient ticked the stretch as done: {done.title}",
        },
        "subject": {"reference": _ref(visit.patient_id)},
        "partOf": [{"reference": _ref(visit.id)}],
        "effectivePeriod": {"start": done.first_day.isoformat(), "end": last_day.isoformat()},
        "valueInteger": done.days_done,
    }


def visit_bundle(
    visit: Visit,
    checkins: list[CheckIn],
    now: datetime,
    *,
    pgic_questionnaire: str,
    adherence: list[Adherence],
) -> dict[str, Any]:
    """The Bundle for one visit; texts in English (the export is for systems, not the patient).

    `pgic_questionnaire`: the canonical URL of the PGIC Questionnaire (absolute, where this app
    serves it), which the responses to it name.
    """
    with force_locale("en"):
        resources = [patient_resource(visit), procedure_resource(visit)]
        for checkin in checkins:
            resources.append(observation_resource(visit, checkin))
            resources.append(questionnaire_response(visit, checkin))
            if checkin.pgic is not None:
                resources.append(pgic_response(visit, checkin, pgic_questionnaire))
        for done in adherence:
            resources.append(stretch_observation(visit, done))
    return {
        "resourceType": "Bundle",
        "type": "collection",
        "timestamp": utc_instant(now),
        "entry": [{"fullUrl": _ref(r["id"]), "resource": r} for r in resources],
    }
