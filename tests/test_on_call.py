"""The clinic's on-call contact and its readiness (issue 12): the warning when a red flag would reach
nobody, the On-call page and `flask clinic on-call`, and "Send a test alert", which reports what each
configured channel answered (the local push service and SMTP server stand in for the real ones)."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta

from sqlalchemy import select

from companion.alerts.readiness import reach, reaches_anybody
from companion.auth import hash_password
from companion.checkins.store import CheckInDetails, submit_checkin
from companion.extensions import db
from companion.models import AuditEvent, Clinic, Therapist

from . import test_alert_dispatch as with_channels
from .conftest import PASSWORD, build_app, csrf_from, sign_in
from .test_alert_dispatch import device

# The app with e-mail on (the local SMTP server) and push allowed to the local push service.
app, smtp, push_service = with_channels.app, with_channels.smtp, with_channels.push_service

WARNING = "A red flag would reach nobody right now"


def signed_in(client, make_clinic, make_therapist, **clinic_fields):  # type: ignore[no-untyped-def]
    clinic = make_clinic(name="Harbour Physio")
    for name, value in clinic_fields.items():
        setattr(clinic, name, value)
    therapist = make_therapist(clinic, email="ana@harbour.example")
    db.session.commit()
    assert sign_in(client, therapist.email, PASSWORD).status_code == 302
    return clinic, therapist


def test_the_queue_and_settings_warn_when_a_red_flag_would_reach_nobody(
    now, app, client, make_clinic, make_therapist
):
    app.config["MAIL_SERVER"] = None
    signed_in(client, make_clinic, make_therapist)

    for page in ("/", "/settings/clinic", "/settings/on-call"):
        html = client.get(page).get_data(as_text=True)
        assert WARNING in html, page
        # It says how to fix it, with links to the pages that do.
        assert 'href="/settings/notifications"' in html
        assert 'href="/settings/on-call"' in html
        assert "MAIL_SERVER" in html


def test_the_warning_goes_once_an_on_call_contact_can_be_reached_by_email(
    now, app, client, make_clinic, make_therapist
):
    # The test app has e-mail on (the local SMTP server): an on-call address is a way to reach.
    signed_in(client, make_clinic, make_therapist)
    app.config["MAIL_SERVER"] = None
    assert WARNING in client.get("/").get_data(as_text=True)

    app.config["MAIL_SERVER"] = "127.0.0.1"
    # With e-mail on, the therapists' own addresses are reached: no warning.
    assert WARNING not in client.get("/").get_data(as_text=True)


def test_the_warning_goes_once_a_therapist_turned_on_alerts_on_a_device(
    now,
    app,
    client,
    make_clinic,
    make_therapist,
    push_service,
):
    app.config["MAIL_SERVER"] = None
    _clinic, therapist = signed_in(client, make_clinic, make_therapist)
    assert WARNING in client.get("/").get_data(as_text=True)
    device(therapist, push_service, at=now)
    assert WARNING not in client.get("/").get_data(as_text=True)


def test_the_on_call_page_saves_a_validated_contact_and_audits_which_fields_changed(
    now, app, client, make_clinic, make_therapist
):
    clinic, therapist = signed_in(client, make_clinic, make_therapist)
    page = client.get("/settings/on-call").get_data(as_text=True)

    answer = client.post(
        "/settings/on-call",
        data={
            "csrf_token": csrf_from(page),
            "name": "Ben Duty",
            "phone": "+34 612 34 56 78",
            "email": "Duty@Harbour.Example",
            "therapist": str(therapist.id),
        },
    )

    assert answer.status_code == 303
    db.session.expire_all()
    clinic = db.session.get(Clinic, clinic.id)
    assert (clinic.oncall_name, clinic.oncall_phone, clinic.oncall_email) == (
        "Ben Duty",
        "+34612345678",
        "Duty@harbour.example",
    )
    assert clinic.oncall_therapist_id == therapist.id
    [event] = db.session.scalars(
        select(AuditEvent).where(AuditEvent.action == "clinic.on_call")
    ).all()
    assert event.detail == {
        "changed": ["oncall_email", "oncall_name", "oncall_phone", "oncall_therapist_id"]
    }
    assert "Ben Duty" not in str(event.detail)
    shown = client.get("/settings/on-call?saved=1").get_data(as_text=True)
    assert 'value="+34612345678"' in shown


def test_the_on_call_page_refuses_a_bad_phone_or_a_contact_nobody_can_reach_and_changes_nothing(
    now, app, client, make_clinic, make_therapist
):
    clinic, _therapist = signed_in(client, make_clinic, make_therapist)
    token = csrf_from(client.get("/settings/on-call").get_data(as_text=True))

    bad_phone = client.post(
        "/settings/on-call",
        data={"csrf_token": token, "name": "Ben", "phone": "612", "email": "ben@h.example"},
    )
    no_way = client.post(
        "/settings/on-call",
        data={
            "csrf_token": token,
            "name": "Ben",
            "phone": "+34612345678",
            "email": "",
            "therapist": "",
        },
    )
    stranger = client.post(
        "/settings/on-call",
        data={"csrf_token": token, "name": "Ben", "therapist": "not-a-choice"},
    )

    assert bad_phone.status_code == 422
    assert "with + and the country code" in bad_phone.get_data(as_text=True)
    assert no_way.status_code == 422
    assert "the escalation needs one" in no_way.get_data(as_text=True)
    assert stranger.status_code == 422
    db.session.expire_all()
    assert db.session.get(Clinic, clinic.id).oncall_name is None


def test_the_on_call_therapist_must_belong_to_the_clinic(
    now, app, client, make_clinic, make_therapist
):
    clinic, _therapist = signed_in(client, make_clinic, make_therapist)
    outsider = make_therapist(make_clinic(name="Elsewhere"))
    token = csrf_from(client.get("/settings/on-call").get_data(as_text=True))
    answer = client.post(
        "/settings/on-call",
        data={"csrf_token": token, "name": "X", "therapist": str(outsider.id)},
    )
    assert answer.status_code == 422
    db.session.expire_all()
    assert db.session.get(Clinic, clinic.id).oncall_therapist_id is None


def test_the_test_alert_reports_what_each_channel_answered(
    now,
    app,
    client,
    make_clinic,
    make_therapist,
    push_service,
    smtp,
):
    _clinic, therapist = signed_in(
        client, make_clinic, make_therapist, oncall_name="Ben", oncall_email="duty@harbour.example"
    )
    working = device(therapist, push_service, at=now)
    broken = device(therapist, push_service, at=now + timedelta(seconds=1))
    push_service.answer(broken, 503)
    smtp.refuse["duty@harbour.example"] = 550
    token = csrf_from(client.get("/settings/on-call").get_data(as_text=True))

    answer = client.post("/settings/on-call/test", data={"csrf_token": token})

    assert answer.status_code == 200
    html = answer.get_data(as_text=True)
    results = html[html.index('id="test-results"') :]
    items = re.findall(
        r'<li class="channel-result">(.*?)</li>\s*(?=<li class="channel-result">|</ul>\s*</div>)',
        results,
        re.S,
    )
    text = [re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", item)).strip() for item in items]
    assert text[0].startswith("Therapists · push: 1 of 2 reached")
    assert "OK" in text[0] and "Failed" in text[0] and "failed for now" in text[0]
    assert text[1].startswith("Therapists · e-mail: 1 of 1 reached")
    assert text[2].startswith("On-call contact · push: not tried: no device has alerts turned on")
    assert text[3].startswith("On-call contact · e-mail: 0 of 1 reached")
    assert "duty@harbour.example" in text[3]
    # The messages themselves: a neutral test, nothing else.
    [ok_push] = [m for m in push_service.received if m.subscription_id == working.id]
    assert ok_push.payload["title"] == "Test alert"
    [mail] = [m for m in smtp.received if therapist.email in m.rcpt_tos]
    assert mail.message["Subject"] == "Aftercare: test alert"
    event = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "alerts.test")).one()
    assert event.detail == {
        "therapists_push": "1/2",
        "therapists_email": "1/1",
        "on_call_email": "0/1",
    }


def test_the_test_alert_says_when_a_channel_is_not_set_up(
    now, app, client, make_clinic, make_therapist
):
    app.config["MAIL_SERVER"] = None
    signed_in(client, make_clinic, make_therapist)
    token = csrf_from(client.get("/settings/on-call").get_data(as_text=True))
    html = client.post("/settings/on-call/test", data={"csrf_token": token}).get_data(as_text=True)
    assert "not tried: no device has alerts turned on" in html
    assert "not tried: e-mail is not set up on this server (MAIL_SERVER)" in html
    assert "not tried: no on-call contact is set" in html


def test_the_test_alert_needs_the_csrf_token(now, app, client, make_clinic, make_therapist):
    signed_in(client, make_clinic, make_therapist)
    assert client.post("/settings/on-call/test", data={}).status_code == 400


def test_clinic_on_call_command_sets_shows_and_clears_the_contact(
    now, app, runner, make_clinic, make_therapist
):
    clinic = make_clinic(name="Harbour Physio")
    make_therapist(clinic, email="ben@harbour.example")

    set_it = runner.invoke(
        args=[
            *("clinic", "on-call", "Harbour Physio", "Ben Duty"),
            *("--phone", "+1 415 555 2671", "--email", "duty@harbour.example"),
            *("--therapist", "Ben@Harbour.example"),
        ]
    )
    assert set_it.exit_code == 0, set_it.output
    db.session.expire_all()
    stored = db.session.get(Clinic, clinic.id)
    assert (stored.oncall_name, stored.oncall_phone, stored.oncall_email) == (
        "Ben Duty",
        "+14155552671",
        "duty@harbour.example",
    )
    assert stored.oncall_therapist_id is not None
    shown = runner.invoke(args=["clinic", "on-call", "Harbour Physio"])
    assert "phone +14155552671" in shown.output and "therapist ben@harbour.example" in shown.output

    bad = runner.invoke(args=["clinic", "on-call", "Harbour Physio", "X", "--phone", "555"])
    assert bad.exit_code != 0 and "--phone must be a phone number" in bad.output
    nobody = runner.invoke(
        args=["clinic", "on-call", "Harbour Physio", "X", "--phone", "+34612345678"]
    )
    assert nobody.exit_code != 0 and "Give --email or --therapist" in nobody.output
    db.session.expire_all()
    assert db.session.get(Clinic, clinic.id).oncall_name == "Ben Duty"

    cleared = runner.invoke(args=["clinic", "on-call", "Harbour Physio", "--clear"])
    assert cleared.exit_code == 0 and "has no on-call contact" in cleared.output
    db.session.expire_all()
    assert db.session.get(Clinic, clinic.id).oncall_email is None


def test_the_test_alert_is_rate_limited(now, tmp_path):
    limited = build_app(tmp_path, RATELIMIT_ENABLED=True, MAIL_SERVER=None)
    with limited.app_context():
        clinic = Clinic(name="Harbour Physio", timezone="Europe/Madrid")
        db.session.add(clinic)
        db.session.flush()
        db.session.add(
            Therapist(
                clinic_id=clinic.id,
                email="ana@h.example",
                password_hash=hash_password(PASSWORD),
                role="admin",
            )
        )
        db.session.commit()
        client = limited.test_client()
        assert sign_in(client, "ana@h.example").status_code == 302
        token = csrf_from(client.get("/settings/on-call").get_data(as_text=True))
        answers = [
            client.post("/settings/on-call/test", data={"csrf_token": token}).status_code
            for _ in range(6)
        ]
        assert answers == [200] * 5 + [429]
        db.session.remove()
        db.engine.dispose()


def test_the_queue_names_the_on_call_contact_beside_the_red_flags(
    now, app, client, make_clinic, make_therapist, make_visit
):
    clinic, _therapist = signed_in(
        client,
        make_clinic,
        make_therapist,
        oncall_name="Ben Duty",
        oncall_phone="+34612345678",
        oncall_email="duty@harbour.example",
    )
    assert "On call: Ben Duty" not in client.get("/").get_data(as_text=True)  # no red flag

    visit = make_visit(clinic, performed_at=now - timedelta(hours=20)).visit
    submit_checkin(
        visit, CheckInDetails(uuid.uuid4(), now, 2, None, ["breathless"], [], None), now=now
    )
    db.session.commit()
    html = client.get("/").get_data(as_text=True)
    red = html[html.index('id="red-h"') : html.index('id="amber-h"')]
    assert "On call: Ben Duty" in red
    assert 'href="tel:+34612345678"' in red


def test_clinic_on_call_takes_the_issues_form_without_a_contact_name(now, app, runner, make_clinic):
    clinic = make_clinic(name="Harbour Physio")
    answer = runner.invoke(
        args=[
            *("clinic", "on-call", "Harbour Physio"),
            *("--phone", "+34 612 345 678", "--email", "duty@harbour.example"),
        ]
    )
    assert answer.exit_code == 0, answer.output
    db.session.expire_all()
    stored = db.session.get(Clinic, clinic.id)
    assert (stored.oncall_name, stored.oncall_phone, stored.oncall_email) == (
        None,
        "+34612345678",
        "duty@harbour.example",
    )
    event = db.session.scalars(
        select(AuditEvent).where(AuditEvent.action == "clinic.on_call")
    ).one()
    assert event.actor_type == "system" and event.detail == {
        "changed": ["oncall_email", "oncall_phone"]
    }


def test_the_check_ins_quick_reach_test_agrees_with_the_readiness_page(
    now,
    app,
    make_clinic,
    make_therapist,
    push_service,
):
    clinic = make_clinic()
    seen = []

    def both(mail: bool) -> tuple[bool, bool]:
        app.config["MAIL_SERVER"] = "127.0.0.1" if mail else None
        db.session.expire_all()
        return reaches_anybody(clinic), not reach(clinic).nobody

    for mail in (False, True):
        seen.append(both(mail))  # nobody in the clinic yet
    clinic.oncall_email = "duty@h.example"
    db.session.commit()
    for mail in (False, True):
        seen.append(both(mail))
    clinic.oncall_email = None
    therapist = make_therapist(clinic)
    for mail in (False, True):
        seen.append(both(mail))
    device(therapist, push_service, at=now)
    for mail in (False, True):
        seen.append(both(mail))
    therapist.active = False
    db.session.commit()
    seen.append(both(False))

    assert [quick for quick, _full in seen] == [full for _quick, full in seen]
    assert [quick for quick, _full in seen] == [
        False,
        False,
        False,
        True,
        False,
        True,
        True,
        True,
        False,
    ]
