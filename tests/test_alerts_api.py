"""`GET /api/v1/alerts` (issue 12): a clinic system follows its alerts, open or resolved, with each
escalation step (when, channel, audience, outcome), who acknowledged and resolved them, and the
note. Scoped to the key's clinic, audited, and bad parameters are a 422 naming the field."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select

from companion.alerts import dispatch as alert_dispatch
from companion.alerts import raising as alerts
from companion.extensions import db
from companion.models import Alert, AuditEvent

from . import test_alert_dispatch as with_channels
from .test_alert_dispatch import checkin, device

app, smtp, push_service, sender = (
    with_channels.app,
    with_channels.smtp,
    with_channels.push_service,
    with_channels.sender,
)

LATE = datetime(2026, 11, 25, 23, 4, tzinfo=ZoneInfo("Europe/Madrid")).astimezone(UTC)


def test_alerts_list_the_steps_taken_and_who_handled_them(
    now,
    time_machine,
    app,
    client,
    make_clinic,
    make_therapist,
    make_visit,
    make_api_key,
    push_service,
    smtp,
    sender,
):
    time_machine.move_to(LATE)
    clinic = make_clinic(name="Nightingale Physio")
    clinic.oncall_email = "oncall@nightingale.example"
    ana, ben, cleo = (make_therapist(clinic) for _ in range(3))
    ben.display_name = "Ben"
    db.session.commit()
    for therapist in (ana, ben, cleo):
        device(therapist, push_service, at=LATE - timedelta(days=1))
    visit = make_visit(clinic, ref="REF-77", performed_at=LATE - timedelta(hours=26)).visit
    checkin(visit, LATE, 2, ["breathless"])
    alert = db.session.scalars(select(Alert)).one()
    alert_dispatch.dispatch_alerts(LATE, sender)
    alert_dispatch.dispatch_alerts(LATE + timedelta(minutes=15), sender)
    alerts.acknowledge(clinic.id, visit.id, [alert.id], ben.id, LATE + timedelta(minutes=18))
    db.session.commit()
    key = make_api_key(clinic)
    headers = {"Authorization": f"Bearer {key}"}

    # Reasons are in English whatever the client's language.
    answer = client.get("/api/v1/alerts?status=open", headers={**headers, "Accept-Language": "es"})

    assert answer.status_code == 200
    [listed] = answer.get_json()["alerts"]
    assert listed["id"] == str(alert.id)
    assert (listed["level"], listed["kind"], listed["patient_ref"]) == ("red", "checkin", "REF-77")
    assert listed["visit_id"] == str(visit.id)
    assert listed["reasons"][0]["code"] == "symptom:breathless"
    assert listed["reasons"][0]["text"] == "26 h: New shortness of breath"
    assert listed["acknowledged_by"] == "Ben"
    assert listed["acknowledged_at"].startswith("2026-11-25T22:22:00")
    assert listed["resolved_at"] is None
    told = [(s["channel"], s["audience"], s["outcome"], s["reached"]) for s in listed["steps"]]
    assert told == [
        ("push", "therapists", "delivered", 3),
        ("email", "therapists", "delivered", 3),
        ("email", "on_call", "delivered", 1),
    ]
    assert [s["at"][:16] for s in listed["steps"]] == [
        "2026-11-25T22:04",
        "2026-11-25T22:04",
        "2026-11-25T22:19",
    ]
    assert client.get("/api/v1/alerts?status=resolved", headers=headers).get_json() == {
        "alerts": []
    }

    alerts.resolve(
        clinic.id, visit.id, [alert.id], ben.id, "Called her: A&E", LATE + timedelta(hours=1)
    )
    db.session.commit()
    [resolved] = client.get("/api/v1/alerts?status=resolved", headers=headers).get_json()["alerts"]
    assert (resolved["resolved_by"], resolved["note"]) == ("Ben", "Called her: A&E")
    assert client.get("/api/v1/alerts", headers=headers).get_json() == {"alerts": []}
    event = db.session.scalars(
        select(AuditEvent).where(AuditEvent.action == "alerts.list").order_by(AuditEvent.at.desc())
    ).first()
    assert event is not None and event.detail == {"status": "open", "count": 0}


def test_alerts_are_scoped_to_the_keys_clinic(
    now, app, client, make_clinic, make_visit, make_api_key
):
    mine, theirs = make_clinic(), make_clinic()
    visit = make_visit(theirs, performed_at=now - timedelta(hours=5)).visit
    checkin(visit, now, 2, ["breathless"])
    answer = client.get("/api/v1/alerts", headers={"Authorization": f"Bearer {make_api_key(mine)}"})
    assert answer.get_json() == {"alerts": []}
    theirs_answer = client.get(
        "/api/v1/alerts", headers={"Authorization": f"Bearer {make_api_key(theirs)}"}
    )
    assert len(theirs_answer.get_json()["alerts"]) == 1


def test_bad_alert_queries_are_a_422_naming_the_parameter_and_need_a_key(
    now, app, client, make_clinic, make_api_key
):
    headers = {"Authorization": f"Bearer {make_api_key(make_clinic())}"}
    for query, field in (
        ("status=closed", "status"),
        ("limit=0", "limit"),
        ("limit=501", "limit"),
        ("limit=ten", "limit"),
        ("limit=-1", "limit"),
        ("limit=²", "limit"),
        ("limit=٣", "limit"),
    ):
        answer = client.get(f"/api/v1/alerts?{query}", headers=headers)
        assert answer.status_code == 422, query
        assert answer.get_json()["error"]["field"] == field
    assert client.get("/api/v1/alerts").status_code == 401


def test_the_openapi_document_describes_the_alert_list(app, client):
    document = client.get("/api/v1/openapi.json").get_json()
    operation = document["paths"]["/api/v1/alerts"]["get"]
    assert {p["name"] for p in operation["parameters"]} == {"status", "limit"}
    schema = document["components"]["schemas"]["AlertOut"]
    assert {"steps", "reasons", "acknowledged_by", "resolved_by", "note"} <= set(
        schema["properties"]
    )
