"""A red alert nobody acknowledged reaches the clinic's on-call contact (issue 12): once, at
ALERT_ESCALATE_MINUTES, by e-mail and by push to the on-call therapist's devices, with retries, and
never after an acknowledgement. Every step is on record.

Real parts: the local push service (tests/pushserver.py) and the local SMTP server
(tests/smtpserver.py), through the fixtures of tests/test_alert_dispatch.py."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from companion.alerts import dispatch as alert_dispatch
from companion.alerts import raising as alerts
from companion.alerts.escalation import ON_CALL
from companion.extensions import db
from companion.models import Alert, AlertNotice, Clinic, Therapist

from . import test_alert_dispatch as with_channels
from .conftest import PASSWORD, sign_in
from .test_alert_dispatch import checkin, device, notices

# The app with e-mail on (the local SMTP server) and push allowed to the local push service.
app, smtp, push_service, sender = (
    with_channels.app,
    with_channels.smtp,
    with_channels.push_service,
    with_channels.sender,
)

MADRID = ZoneInfo("Europe/Madrid")
# A Wednesday, 23:00 in Madrid: the clinic (open 08:00-20:00 on weekdays) is closed.
LATE = datetime(2026, 11, 25, 23, 0, tzinfo=MADRID).astimezone(UTC)
ON_CALL_ADDRESS = "oncall@clinic.example"


@dataclass
class Night:
    """A clinic closed at 23:00 on a Wednesday, with an on-call address: Ana (one phone) and Ben
    (none) are its therapists. `red()` makes a red check-in at 23:00; `tick(minutes)` runs the
    worker's alert round that many minutes later."""

    clinic: Clinic
    ana: Therapist
    ben: Therapist
    ana_phone: Any
    push_service: Any
    smtp: Any
    sender: Any
    make_visit: Any

    def red(self) -> Alert:
        visit = self.make_visit(self.clinic, performed_at=LATE - timedelta(hours=26)).visit
        checkin(visit, LATE, 2, ["breathless"])
        return db.session.scalars(select(Alert)).one()

    def tick(self, minutes: float = 0) -> Any:
        return alert_dispatch.dispatch_alerts(LATE + timedelta(minutes=minutes), self.sender)

    def acknowledge(self, alert: Alert, by: Therapist, minutes: float) -> None:
        alerts.acknowledge(
            self.clinic.id, alert.visit_id, [alert.id], by.id, LATE + timedelta(minutes=minutes)
        )
        db.session.commit()

    def mails_to(self, address: str) -> list[Any]:
        return [m for m in self.smtp.received if address in m.rcpt_tos]


@pytest.fixture
def night(
    now, time_machine, app, make_clinic, make_therapist, make_visit, push_service, smtp, sender
) -> Night:
    time_machine.move_to(LATE)
    clinic = make_clinic(name="Nightingale Physio", timezone="Europe/Madrid")
    clinic.opening_hours = {
        day: [["08:00", "20:00"]] for day in ("mon", "tue", "wed", "thu", "fri")
    }
    clinic.oncall_name = "Ben Duty"
    clinic.oncall_email = ON_CALL_ADDRESS
    ana, ben = make_therapist(clinic), make_therapist(clinic)
    db.session.commit()
    phone = device(ana, push_service, at=LATE - timedelta(days=1))
    return Night(clinic, ana, ben, phone, push_service, smtp, sender, make_visit)


def test_an_unacknowledged_red_alert_goes_to_on_call_once_at_15_minutes(night):
    alert = night.red()

    # At once: the therapists' device and e-mails; the on-call address hears nothing yet.
    night.tick()
    assert [m.subscription_id for m in night.push_service.received] == [night.ana_phone.id]
    assert sorted(r for m in night.smtp.received for r in m.rcpt_tos) == sorted(
        [night.ana.email, night.ben.email]
    )
    assert night.mails_to(ON_CALL_ADDRESS) == []

    # Before the 15 minutes are up: still nothing for on-call.
    night.tick(14 + 59 / 60)
    assert night.mails_to(ON_CALL_ADDRESS) == []

    # At +15 min: exactly one e-mail, neutral, linking to the alert's visit.
    report = night.tick(15)
    assert report.escalated == 1
    [mail] = night.mails_to(ON_CALL_ADDRESS)
    assert mail.message["Subject"] == "Aftercare: a warning sign is still unanswered"
    assert f"https://care.clinic.example/visits/{alert.visit_id}" in mail.text
    for secret in ("Sam", "breath", "REF"):
        assert secret not in mail.text
    db.session.refresh(alert)
    assert alert.escalated_at == LATE + timedelta(minutes=15)
    [step] = notices(audience=ON_CALL)
    assert (step.channel, step.outcome, step.therapist_id) == ("email", "sent", None)

    # Later rounds, and the acknowledgement after them, send nothing more to anyone.
    pushes, mails = len(night.push_service.received), len(night.smtp.received)
    night.tick(16)
    night.acknowledge(alert, night.ben, 22)
    for minutes in (30, 60, 180):
        night.tick(minutes)
    assert (len(night.push_service.received), len(night.smtp.received)) == (pushes, mails)


def test_a_red_alert_acknowledged_at_5_minutes_is_never_escalated(night):
    alert = night.red()
    night.tick()
    night.acknowledge(alert, night.ana, 5)

    for minutes in (15, 16, 60, 24 * 60):
        report = night.tick(minutes)
        assert report.escalated == 0
    assert night.mails_to(ON_CALL_ADDRESS) == []
    assert notices(audience=ON_CALL) == []
    db.session.refresh(alert)
    assert alert.escalated_at is None


def test_an_on_call_therapist_is_also_told_on_their_devices_and_by_their_own_address(night):
    night.clinic.oncall_email = None
    night.clinic.oncall_therapist_id = night.ben.id
    db.session.commit()
    ben_phone = device(night.ben, night.push_service, at=LATE - timedelta(days=1))
    alert = night.red()
    night.tick()
    first_round = len(night.push_service.received)

    night.tick(15)

    escalation_pushes = night.push_service.received[first_round:]
    assert [m.subscription_id for m in escalation_pushes] == [ben_phone.id]
    assert escalation_pushes[0].payload["url"] == f"/visits/{alert.visit_id}"
    # Its own title and tag: a phone still showing the first notice shows (and sounds) a new one.
    assert escalation_pushes[0].payload["title"] == "A warning sign is still unanswered"
    first_tags = {m.payload["tag"] for m in night.push_service.received[:first_round]}
    assert escalation_pushes[0].payload["tag"] not in first_tags
    assert escalation_pushes[0].headers["urgency"] == "high"
    assert len(night.mails_to(night.ben.email)) == 2  # the first step, then the escalation
    assert sorted(n.channel for n in notices(audience=ON_CALL)) == ["email", "push"]


def test_an_escalation_the_mail_relay_refused_for_a_moment_is_retried_until_it_goes(night):
    alert = night.red()
    night.tick()
    night.smtp.data_status = "451 4.3.0 try again later"

    night.tick(15)
    db.session.refresh(alert)
    assert alert.escalated_at is None and alert.escalate_attempts == 1
    retry_at = alert.escalate_lease_until
    assert retry_at is not None and retry_at > LATE + timedelta(minutes=15)

    night.smtp.data_status = None
    alert_dispatch.dispatch_alerts(retry_at - timedelta(seconds=1), night.sender)  # not yet
    assert night.mails_to(ON_CALL_ADDRESS) == []
    alert_dispatch.dispatch_alerts(retry_at, night.sender)
    assert len(night.mails_to(ON_CALL_ADDRESS)) == 1
    db.session.refresh(alert)
    assert alert.escalated_at == retry_at
    alert_dispatch.dispatch_alerts(retry_at + timedelta(hours=1), night.sender)
    assert len(night.mails_to(ON_CALL_ADDRESS)) == 1


def test_without_an_on_call_contact_the_escalation_step_says_nobody_could_be_told(night):
    night.clinic.oncall_name = night.clinic.oncall_email = None
    db.session.commit()
    alert = night.red()
    night.tick()
    mails = len(night.smtp.received)

    night.tick(15)
    night.tick(30)

    assert len(night.smtp.received) == mails
    [step] = db.session.scalars(
        select(AlertNotice).where(AlertNotice.alert_id == alert.id, AlertNotice.audience == ON_CALL)
    ).all()
    assert (step.channel, step.outcome) == ("none", "no_channel")


def test_escalation_waits_as_long_as_the_setting_says(night, app):
    app.config["ALERT_ESCALATE_MINUTES"] = 40
    night.red()
    night.tick()
    night.tick(39)
    assert night.mails_to(ON_CALL_ADDRESS) == []
    night.tick(40)
    assert len(night.mails_to(ON_CALL_ADDRESS)) == 1


def test_a_red_alert_that_reached_nobody_at_first_says_so_on_record(
    now, time_machine, app, make_clinic, make_therapist, make_visit, sender
):
    app.config["MAIL_SERVER"] = None  # e-mail off, and no device: nobody can be told
    time_machine.move_to(LATE)
    clinic = make_clinic(timezone="Europe/Madrid")
    make_therapist(clinic)
    checkin(
        make_visit(clinic, performed_at=LATE - timedelta(hours=2)).visit, LATE, 2, ["breathless"]
    )
    alert = db.session.scalars(select(Alert)).one()

    alert_dispatch.dispatch_alerts(LATE, sender)

    [step] = db.session.scalars(select(AlertNotice).where(AlertNotice.alert_id == alert.id)).all()
    assert (step.audience, step.channel, step.outcome) == ("therapists", "none", "no_channel")
    assert uuid.UUID(str(step.alert_id)) == alert.id


def test_the_visit_page_and_the_queue_show_who_was_told_and_when(night, time_machine, client):
    night.ben.display_name = "Ben"
    db.session.commit()
    alert = night.red()
    night.tick()
    night.tick(15)
    night.acknowledge(alert, night.ben, 18)
    time_machine.move_to(LATE + timedelta(minutes=20))
    assert sign_in(client, night.ana.email, PASSWORD).status_code == 302

    def trail(html: str) -> list[str]:
        block = html[html.index(f'id="alert-{alert.id}"') :]
        steps = block[
            block.index('<div class="steps">') : block.index(
                "</ol>", block.index('<div class="steps">')
            )
        ]
        return [
            " ".join(re.sub(r"<[^>]+>", " ", item).split())
            for item in re.findall(r"<li class=\"step [^\"]+\">(.*?)</li>", steps, re.S)
        ]

    visit_page = client.get(f"/visits/{alert.visit_id}").get_data(as_text=True)
    # In the clinic's time (Europe/Madrid): told at once at 23:00, escalated at 23:15.
    assert trail(visit_page) == [
        "Told 1 therapist by push, 11/25/26, 11:00 PM",
        "E-mailed 2 therapists, 11/25/26, 11:00 PM",
        "Escalated to on-call by e-mail, 11/25/26, 11:15 PM",
    ]
    assert "Acknowledged by Ben" in visit_page
    queue = client.get("/").get_data(as_text=True)
    card = queue[queue.index(f'id="item-{alert.visit_id}"') :]
    card = card[: card.index("</form>")]  # up to the card's Acknowledge/Resolve forms
    assert "Escalated to on-call by e-mail, 11/25/26, 11:15 PM" in " ".join(card.split())


def test_an_alert_acknowledged_while_a_batch_is_being_escalated_is_not_escalated(night, app):
    """Two red alerts reach the escalation in one batch; while the first goes out, a colleague
    acknowledges the second (another connection, as another web process would)."""
    night.clinic.oncall_therapist_id = night.ben.id
    db.session.commit()
    device(night.ben, night.push_service, at=LATE - timedelta(days=1))
    first = night.red()
    second_visit = night.make_visit(night.clinic, performed_at=LATE - timedelta(hours=30)).visit
    checkin(second_visit, LATE + timedelta(minutes=1), 2, ["chest_pain"])  # raised after the first
    second = db.session.scalars(select(Alert).where(Alert.visit_id == second_visit.id)).one()
    night.tick()
    second_id, ana_id = second.id, night.ana.id  # read here: the callback runs in another thread

    engine = db.engine  # the callback runs in the push service's thread, with no app context

    def acknowledge_the_second(_subscription_id: str) -> None:
        with engine.begin() as connection:
            connection.execute(
                Alert.__table__.update()
                .where(Alert.id == second_id, Alert.acknowledged_at.is_(None))
                .values(acknowledged_at=LATE + timedelta(minutes=16), acknowledged_by=ana_id)
            )

    night.push_service.on_message = acknowledge_the_second
    night.tick(16)  # both are due, in the order they were raised

    told = {n.alert_id for n in notices(audience=ON_CALL)}
    assert told == {first.id}
    assert len(night.mails_to(ON_CALL_ADDRESS)) == 1
    db.session.expire_all()
    assert db.session.get(Alert, second.id).escalated_at is None


def test_a_step_that_did_not_reach_everyone_says_so(night, time_machine, client):
    device(night.ben, night.push_service, at=LATE - timedelta(days=1))
    night.push_service.answer(night.ana_phone, 503)  # Ana's push service fails for a moment
    night.smtp.data_status = "451 4.3.0 try again later"  # and so does the mail relay
    alert = night.red()
    night.tick()
    time_machine.move_to(LATE + timedelta(minutes=1))
    assert sign_in(client, night.ben.email, PASSWORD).status_code == 302

    html = client.get(f"/visits/{alert.visit_id}").get_data(as_text=True)

    block = html[html.index('<div class="steps">') :]
    items = re.findall(
        r"<li class=\"step ([^\"]+)\">(.*?)</li>", block[: block.index("</ol>")], re.S
    )
    assert [(kind, " ".join(re.sub(r"<[^>]+>", "", text).split())) for kind, text in items] == [
        ("partly_delivered", "Told 1 therapist by push, 11/25/26, 11:00 PM; 1 device not reached"),
        ("failed", "some e-mails not sent, 11/25/26, 11:00 PM"),
    ]
