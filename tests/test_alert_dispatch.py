"""Alerts reach therapists: a red check-in at once (one push per enabled device, one e-mail per
therapist), amber items in at most one digest an hour, every attempt recorded.

Real parts: the local push service decrypts each message and checks its VAPID signature
(tests/pushserver.py); the local SMTP server receives each e-mail (tests/smtpserver.py)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import func, select, update

from companion.alerts import dispatch as alert_dispatch
from companion.alerts import raising as alerts
from companion.alerts.devices import save_device
from companion.alerts.notify import AlertReport
from companion.channels import webpush
from companion.checkins.store import CheckInDetails, submit_checkin
from companion.extensions import db
from companion.models import Alert, AlertNotice, Therapist, Visit

from .conftest import PG_URL, build_app
from .pushserver import PushService
from .smtpserver import SMTPServer

NOW = datetime(2026, 11, 21, 10, 0, tzinfo=UTC)
NAME, REF = "Rosalind Example", "REF-4471"


@pytest.fixture
def smtp() -> Iterator[SMTPServer]:
    with SMTPServer() as server:
        yield server


@pytest.fixture
def app(request: pytest.FixtureRequest, tmp_path: Path, smtp: SMTPServer) -> Iterator[Flask]:
    """The app with e-mail on (the local SMTP server) and push allowed to the local service."""
    postgres = request.node.get_closest_marker("postgres") is not None
    if postgres and not PG_URL:
        pytest.skip(
            "PostgreSQL tests need TEST_DATABASE_URL (set by .ci/run when PostgreSQL answers)"
        )
    app = build_app(
        tmp_path,
        postgres=postgres,
        MAIL_SERVER="127.0.0.1",
        MAIL_PORT=smtp.port,
        MAIL_DEFAULT_SENDER="Aftercare <alerts@clinic.example>",
        MAIL_TIMEOUT=5,
        PUSH_ENDPOINT_ALLOWLIST=("127.0.0.1",),
        PUBLIC_URL="https://care.clinic.example",
    )
    with app.app_context():
        yield app
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def push_service(app: Flask) -> Iterator[PushService]:
    with PushService(app_public_key=app.config["VAPID_PUBLIC_KEY"]) as service:
        yield service


@pytest.fixture
def sender(app: Flask):  # type: ignore[no-untyped-def]
    return webpush.make_sender(app)


def device(  # type: ignore[no-untyped-def]
    therapist: Therapist, push_service: PushService, language: str = "en", at: datetime = NOW
):
    browser = push_service.new_subscription()
    keys = browser.as_json()["keys"]
    save_device(
        therapist,
        browser.endpoint,
        keys["p256dh"],
        keys["auth"],
        user_agent=None,
        language=language,
        now=at,
    )
    db.session.commit()
    return browser


def checkin(visit: Visit, at: datetime, soreness: int, symptoms: list[str]) -> None:
    submit_checkin(
        visit, CheckInDetails(uuid.uuid4(), at, soreness, None, symptoms, [], "a note"), now=at
    )
    db.session.commit()


def notices(**where: object) -> list[AlertNotice]:
    query = select(AlertNotice)
    for name, value in where.items():
        query = query.where(getattr(AlertNotice, name) == value)
    return list(db.session.scalars(query))


@pytest.fixture
def clinic_team(make_clinic, make_therapist, push_service):  # type: ignore[no-untyped-def]
    """Ana (two devices, one Spanish), Ben (one device), Cleo (no device), Dan (inactive, one
    device), and a therapist of another clinic with a device."""
    clinic = make_clinic(name="Sunrise Physio")
    ana, ben, cleo, dan = (make_therapist(clinic) for _ in range(4))
    dan.active = False
    db.session.commit()
    # Ana turned alerts on in Spanish on her newer device.
    later = NOW + timedelta(minutes=1)
    phones = [
        device(ana, push_service),
        device(ana, push_service, "es", later),
        device(ben, push_service),
    ]
    device(dan, push_service)
    device(make_therapist(make_clinic()), push_service)
    return clinic, (ana, ben, cleo, dan), phones


def test_a_red_checkin_alerts_every_enabled_device_once_and_mails_every_therapist_once(
    app, clinic_team, make_visit, push_service, smtp, sender
):
    clinic, (ana, ben, cleo, _dan), phones = clinic_team
    visit = make_visit(clinic, name=NAME, ref=REF, performed_at=NOW - timedelta(hours=20)).visit
    checkin(visit, NOW - timedelta(minutes=1), 3, ["breathless"])
    alert = db.session.scalars(select(Alert)).one()

    report = alert_dispatch.dispatch_alerts(NOW, sender)

    assert report.red_alerts == 1
    # Exactly one push per enabled device of the clinic's active therapists, nothing elsewhere.
    assert sorted(m.subscription_id for m in push_service.received) == sorted(p.id for p in phones)
    for message in push_service.received:
        assert message.error is None and message.claims["aud"] == push_service.origin
        assert message.payload["url"] == f"/visits/{visit.id}"
        assert message.payload["tag"] == alert.id.hex == message.headers["topic"]
        assert message.headers["urgency"] == "high"
        text = json.dumps(message.payload, ensure_ascii=False)
        for secret in (NAME, REF, "breath", "calf", "a note", "Sunrise"):
            assert secret not in text
    assert {m.payload["lang"] for m in push_service.received} == {"en", "es"}
    # Exactly one e-mail per active therapist (the one without a device too), none for Dan.
    assert sorted(r.rcpt_tos[0] for r in smtp.received) == sorted(
        [ana.email, ben.email, cleo.email]
    )
    for received in smtp.received:
        assert received.message["Subject"] in (
            "Aftercare: a check-in needs attention now",
            "Seguimiento: un registro necesita atención ahora",
        )
        assert "https://care.clinic.example/" in received.text
        for secret in (NAME, REF, "breath", "a note"):
            assert secret not in received.text
    # Every attempt is on record, and the alert is marked as told.
    assert len(notices(alert_id=alert.id, channel="push", outcome="accepted")) == 3
    assert len(notices(alert_id=alert.id, channel="email", outcome="sent")) == 3
    db.session.refresh(alert)
    assert alert.notified_at == NOW

    # A second round (another worker tick) sends nothing again.
    again = alert_dispatch.dispatch_alerts(NOW + timedelta(seconds=10), sender)
    assert again.red_alerts == 0
    assert len(push_service.received) == 3 and len(smtp.received) == 3


def test_ana_reads_the_mail_in_the_language_of_her_newest_device(
    app, clinic_team, make_visit, smtp, sender
):
    clinic, (ana, ben, _cleo, _dan), _phones = clinic_team
    visit = make_visit(clinic, performed_at=NOW - timedelta(hours=20)).visit
    checkin(visit, NOW, 3, ["chest_pain"])
    alert_dispatch.dispatch_alerts(NOW, sender)
    subjects = {r.rcpt_tos[0]: r.message["Subject"] for r in smtp.received}
    assert subjects[ana.email] == "Seguimiento: un registro necesita atención ahora"
    assert subjects[ben.email] == "Aftercare: a check-in needs attention now"


def test_an_alert_acknowledged_before_the_worker_came_wakes_nobody(
    app, clinic_team, make_visit, push_service, smtp, sender
):
    clinic, (ana, *_), _phones = clinic_team
    visit = make_visit(clinic, performed_at=NOW - timedelta(hours=20)).visit
    checkin(visit, NOW, 3, ["fainting"])
    alert = db.session.scalars(select(Alert)).one()
    alerts.acknowledge(clinic.id, visit.id, [alert.id], ana.id, NOW)
    db.session.commit()
    alert_dispatch.dispatch_alerts(NOW, sender)
    assert push_service.received == [] and smtp.received == []
    db.session.refresh(alert)
    assert alert.notified_at == NOW


def test_a_worker_that_died_after_claiming_leaves_the_alert_for_the_next_after_the_lease(
    app, clinic_team, make_visit, push_service, sender
):
    clinic, _team, phones = clinic_team
    visit = make_visit(clinic, performed_at=NOW - timedelta(hours=20)).visit
    checkin(visit, NOW, 3, ["breathless"])
    assert len(alert_dispatch.claim_red(NOW)) == 1  # ... and the worker dies here
    db.session.commit()
    assert alert_dispatch.dispatch_alerts(NOW + timedelta(seconds=30), sender).red_alerts == 0
    later = NOW + alert_dispatch.LEASE + timedelta(seconds=1)
    assert alert_dispatch.dispatch_alerts(later, sender).red_alerts == 1
    assert len(push_service.received) == len(phones)


def red_alert(clinic, make_visit) -> Alert:  # type: ignore[no-untyped-def]
    visit = make_visit(clinic, performed_at=NOW - timedelta(hours=20)).visit
    checkin(visit, NOW, 3, ["breathless"])
    return db.session.scalars(select(Alert)).one()


def test_a_red_alert_goes_again_to_those_a_failing_service_did_not_reach(
    app, clinic_team, make_visit, push_service, smtp, sender
):
    clinic, (ana, ben, cleo, _dan), (*_anas, ben_phone) = clinic_team
    alert = red_alert(clinic, make_visit)
    push_service.answer(ben_phone, 500)  # Ben's push service has a bad moment
    smtp.refuse[cleo.email] = 451  # the relay cannot take Cleo's mail just now

    first = alert_dispatch.dispatch_alerts(NOW, sender)
    assert (first.red_alerts, first.red_retries) == (0, 1)
    db.session.refresh(alert)
    assert alert.notified_at is None and alert.notify_attempts == 1
    assert alert.notify_lease_until == NOW + timedelta(minutes=1)  # backoff after the 1st round
    assert sorted(r.rcpt_tos[0] for r in smtp.received) == sorted([ana.email, ben.email])

    # Not before the next round is due ...
    assert alert_dispatch.dispatch_alerts(NOW + timedelta(seconds=50), sender).red_retries == 0
    assert len(push_service.received) == 3 and len(smtp.received) == 2
    # ... and then only to Ben's phone and Cleo's address: nobody hears it twice.
    del smtp.refuse[cleo.email]
    second = alert_dispatch.dispatch_alerts(NOW + timedelta(minutes=1), sender)
    assert (second.red_alerts, second.red_retries) == (1, 0)
    assert [m.subscription_id for m in push_service.received[3:]] == [ben_phone.id]
    assert push_service.received[3].payload["tag"] == alert.id.hex
    assert [r.rcpt_tos[0] for r in smtp.received[2:]] == [cleo.email]
    db.session.refresh(alert)
    assert alert.notified_at == NOW + timedelta(minutes=1) and alert.notify_attempts == 2
    accepted = notices(alert_id=alert.id, channel="push", outcome="accepted")
    assert len(accepted) == 3 and len({n.device_id for n in accepted}) == 3  # each device once
    assert len(notices(alert_id=alert.id, channel="push", outcome="error")) == 1
    assert len(notices(alert_id=alert.id, channel="email", outcome="sent")) == 3
    assert len(notices(alert_id=alert.id, channel="email", outcome="error")) == 1
    assert alert_dispatch.dispatch_alerts(NOW + timedelta(hours=1), sender).red_alerts == 0


def test_a_throttled_push_waits_for_the_services_retry_after(
    app, clinic_team, make_visit, push_service, sender
):
    clinic, _team, (_ana_phone, _ana_tablet, ben_phone) = clinic_team
    alert = red_alert(clinic, make_visit)
    push_service.answer(ben_phone, 429)  # with Retry-After: 120, longer than the first backoff
    alert_dispatch.dispatch_alerts(NOW, sender)
    db.session.refresh(alert)
    assert alert.notify_lease_until == NOW + timedelta(seconds=120)
    assert alert_dispatch.dispatch_alerts(NOW + timedelta(seconds=119), sender).red_alerts == 0
    assert alert_dispatch.dispatch_alerts(NOW + timedelta(seconds=120), sender).red_alerts == 1
    assert len(push_service.received) == 4


def test_a_device_that_is_gone_is_not_tried_again(
    app, clinic_team, make_visit, push_service, smtp, sender
):
    clinic, _team, (_ana_phone, _ana_tablet, ben_phone) = clinic_team
    alert = red_alert(clinic, make_visit)
    push_service.answer(ben_phone, 410)  # Ben uninstalled the browser: retrying cannot help
    assert alert_dispatch.dispatch_alerts(NOW, sender).red_alerts == 1
    db.session.refresh(alert)
    assert alert.notified_at == NOW and alert.notify_attempts == 1
    assert notices(alert_id=alert.id, channel="push", outcome="gone")[0].device_id is not None


def test_the_rounds_end_after_alert_max_attempts(
    app, clinic_team, make_visit, push_service, smtp, sender, caplog
):
    app.config["ALERT_MAX_ATTEMPTS"] = 3
    clinic, _team, (_ana_phone, _ana_tablet, ben_phone) = clinic_team
    alert = red_alert(clinic, make_visit)
    push_service.answer(ben_phone, 503, 503, 503, 503)
    at = NOW
    for round_number in (1, 2, 3):
        alert_dispatch.dispatch_alerts(at, sender)
        db.session.refresh(alert)
        assert alert.notify_attempts == round_number
        if round_number < 3:
            assert alert.notified_at is None
            at = alert.notify_lease_until
    assert alert.notified_at == at  # given up: the queue still shows it in red
    assert "gave up after 3 rounds with 1 device(s) and 0 address(es) not reached" in caplog.text
    assert alert_dispatch.dispatch_alerts(at + timedelta(hours=2), sender).red_alerts == 0
    assert [m.subscription_id for m in push_service.received].count(ben_phone.id) == 3
    assert len(notices(alert_id=alert.id, channel="push", outcome="error")) == 3
    assert len(notices(alert_id=alert.id, channel="email", outcome="sent")) == 3  # once each


def test_an_alert_acknowledged_between_rounds_is_not_sent_again(
    app, clinic_team, make_visit, push_service, sender
):
    clinic, (ana, *_), (_ana_phone, _ana_tablet, ben_phone) = clinic_team
    alert = red_alert(clinic, make_visit)
    push_service.answer(ben_phone, 500)
    alert_dispatch.dispatch_alerts(NOW, sender)
    alerts.acknowledge(clinic.id, alert.visit_id, [alert.id], ana.id, NOW + timedelta(seconds=30))
    db.session.commit()
    alert_dispatch.dispatch_alerts(NOW + timedelta(minutes=1), sender)
    assert len(push_service.received) == 3
    db.session.refresh(alert)
    assert alert.notified_at == NOW + timedelta(minutes=1)


def test_amber_items_come_in_at_most_one_digest_an_hour(
    app, clinic_team, make_visit, push_service, smtp, sender
):
    clinic, (ana, ben, cleo, _dan), phones = clinic_team
    first = make_visit(clinic, name="A", performed_at=NOW - timedelta(hours=48)).visit
    second = make_visit(clinic, name="B", performed_at=NOW - timedelta(hours=48)).visit
    checkin(first, NOW, 6, [])  # 48 h: soreness 6, expected 2 or less
    report = alert_dispatch.dispatch_alerts(NOW, sender)
    assert report.digests == 3 and report.red_alerts == 0
    assert sorted(m.subscription_id for m in push_service.received) == sorted(p.id for p in phones)
    bodies = {m.payload["body"] for m in push_service.received}
    assert bodies == {
        "1 patient needs a look when you have a moment.",
        "1 paciente necesita que le eches un vistazo cuando puedas.",
    }
    assert all(m.headers["urgency"] == "normal" for m in push_service.received)
    assert sorted(r.rcpt_tos[0] for r in smtp.received) == sorted(
        [ana.email, ben.email, cleo.email]
    )

    # A second amber item ten minutes later waits for the hour.
    checkin(second, NOW + timedelta(minutes=10), 7, [])
    assert alert_dispatch.dispatch_alerts(NOW + timedelta(minutes=10), sender).digests == 0
    assert alert_dispatch.dispatch_alerts(NOW + timedelta(minutes=59), sender).digests == 0
    assert len(push_service.received) == 3 and len(smtp.received) == 3

    # After the hour: one more digest each, counting both patients still waiting.
    hour = NOW + timedelta(minutes=60)
    assert alert_dispatch.dispatch_alerts(hour, sender).digests == 3
    assert "2 patients need a look when you have a moment." in {
        m.payload["body"] for m in push_service.received[3:]
    }
    # Nothing new since: no digest, however long.
    assert alert_dispatch.dispatch_alerts(hour + timedelta(hours=3), sender).digests == 0
    assert len(notices(kind="digest", channel="push")) == 6
    assert len(notices(kind="digest", channel="email")) == 6
    assert all(n.alert_id is None for n in notices(kind="digest"))


def test_no_digest_for_amber_items_already_acknowledged(
    app, clinic_team, make_visit, push_service, sender
):
    clinic, (ana, *_), _phones = clinic_team
    visit = make_visit(clinic, performed_at=NOW - timedelta(hours=48)).visit
    checkin(visit, NOW, 6, [])
    alert = db.session.scalars(select(Alert)).one()
    alerts.acknowledge(clinic.id, visit.id, [alert.id], ana.id, NOW)
    db.session.commit()
    assert alert_dispatch.dispatch_alerts(NOW, sender).digests == 0
    assert push_service.received == []


def test_a_missing_checkin_reaches_the_digest_without_anyone_opening_the_queue(
    app, clinic_team, make_visit, push_service, sender
):
    clinic, _team, phones = clinic_team
    performed = NOW - timedelta(hours=25)
    make_visit(clinic, performed_at=performed, now=performed)
    assert alert_dispatch.dispatch_alerts(NOW, sender).digests == 3
    assert db.session.scalar(select(func.count()).where(Alert.kind == "missing")) == 1
    assert len(push_service.received) == len(phones)


def test_without_smtp_only_push_goes_out(app, clinic_team, make_visit, push_service, smtp, sender):
    app.config["MAIL_SERVER"] = ""  # e-mail not configured
    clinic, _team, phones = clinic_team
    visit = make_visit(clinic, performed_at=NOW - timedelta(hours=20)).visit
    checkin(visit, NOW, 2, ["face_swelling_wheeze"])
    report = alert_dispatch.dispatch_alerts(NOW, sender)
    assert report.red_alerts == 1 and report.notices == {"push accepted": len(phones)}
    assert smtp.received == [] and notices(channel="email") == []


def test_the_cli_dispatches_once(app, clinic_team, make_visit, push_service, time_machine):
    time_machine.move_to(NOW)  # the command reads the clock
    clinic, _team, phones = clinic_team
    visit = make_visit(clinic, performed_at=NOW - timedelta(hours=20), now=NOW).visit
    checkin(visit, NOW, 3, ["breathless"])
    result = app.test_cli_runner().invoke(args=["alerts", "dispatch"])
    assert result.exit_code == 0, result.output
    assert "red alerts: 1" in result.output
    assert len(push_service.received) == len(phones)


@pytest.mark.postgres
def test_two_workers_never_claim_the_same_red_alert_on_postgresql(make_clinic, make_visit):
    """Two sessions claim at once: SKIP LOCKED and the lease give each alert to one of them."""
    from sqlalchemy.orm import Session

    clinic = make_clinic()
    for n in range(6):
        visit = make_visit(clinic, performed_at=NOW - timedelta(hours=20 + n)).visit
        checkin(visit, NOW, 3, ["breathless"])
    with Session(db.engine) as first, Session(db.engine) as second:
        first_ids = first.execute(alert_dispatch.claim_statement(NOW, limit=4)).scalars().all()
        # The first has not committed: its rows are locked and skipped, not waited for.
        second_ids = second.execute(alert_dispatch.claim_statement(NOW, limit=4)).scalars().all()
        first.commit()
        second.commit()
    assert len(first_ids) == 4 and len(second_ids) == 2
    assert not set(first_ids) & set(second_ids)


def test_the_digest_counts_only_the_amber_items_the_queue_shows(
    app, clinic_team, make_visit, push_service, sender
):
    """Amber items of episodes that closed long ago leave the queue; the digest forgets them too."""
    clinic, _team, _phones = clinic_team
    old = NOW - timedelta(days=10)
    for name in ("Old 1", "Old 2"):
        stale = make_visit(clinic, name=name, performed_at=old - timedelta(hours=48), now=old).visit
        checkin(stale, old, 6, [])  # amber 10 days ago, never acknowledged
    current = make_visit(clinic, name="New", performed_at=NOW - timedelta(hours=48)).visit
    checkin(current, NOW, 6, [])
    assert alert_dispatch.dispatch_alerts(NOW, sender).digests == 3
    assert {m.payload["body"] for m in push_service.received} >= {
        "1 patient needs a look when you have a moment."
    }


# --- an amber digest that reached nobody is tried again (issue 12) ---------------------------------


@pytest.fixture
def lone_ana(make_clinic, make_therapist, make_visit, push_service, now):  # type: ignore[no-untyped-def]
    """Ana alone in her clinic with one phone, and one amber item raised at `now`: (clinic, her
    id, her address, her phone). Ids, not the row: sending detaches the therapist rows it read."""
    clinic = make_clinic(name="Quiet Physio")
    ana = make_therapist(clinic)
    phone = device(ana, push_service, at=now)
    visit = make_visit(clinic, performed_at=now - timedelta(hours=48)).visit
    checkin(visit, now, 6, [])  # 48 h: soreness 6, expected 2 or less
    return clinic, ana.id, ana.email, phone


def delivered(push_service: PushService) -> int:
    return sum(1 for m in push_service.received if m.status == 201)


def last_digest(therapist_id: uuid.UUID) -> datetime | None:
    return db.session.scalar(select(Therapist.last_digest_at).where(Therapist.id == therapist_id))


def test_a_digest_that_reached_nobody_is_retried_after_the_backoff_and_delivered_once(
    app, lone_ana, push_service, smtp, sender, now
):
    _clinic, ana, ana_email, phone = lone_ana
    push_service.answer(phone, 503)  # the push service has a bad moment ...
    smtp.stop()  # ... and the mail relay is down

    first = alert_dispatch.dispatch_alerts(now, sender)
    assert first.digests == 0
    assert first.notices == {"push error": 1, "email error": 1, "digest to retry": 1}
    assert last_digest(ana) is None  # the hour was given back
    # Not before the backoff after the first round (1 minute, as red alerts) ...
    assert alert_dispatch.dispatch_alerts(now + timedelta(seconds=59), sender).notices == {}
    assert len(push_service.received) == 1
    # ... then the same digest again, and this time it arrives, on both channels.
    smtp.start()
    retry = now + timedelta(minutes=1)
    assert alert_dispatch.dispatch_alerts(retry, sender).digests == 1
    assert delivered(push_service) == 1 and [r.rcpt_tos for r in smtp.received] == [[ana_email]]
    assert push_service.received[-1].payload["body"] == (
        "1 patient needs a look when you have a moment."
    )
    assert last_digest(ana) == retry
    # Delivered once: nothing more, however long, until something new arrives.
    for later in (timedelta(minutes=2), timedelta(minutes=30), timedelta(hours=3)):
        assert alert_dispatch.dispatch_alerts(retry + later, sender).notices == {}
    assert len(push_service.received) == 2 and len(smtp.received) == 1
    assert [n.outcome for n in notices(kind="digest", channel="email")] == ["error", "sent"]


@pytest.mark.parametrize("failing", ["push", "email"])
def test_a_digest_that_reached_one_channel_is_not_retried(
    app, lone_ana, push_service, smtp, sender, now, failing
):
    _clinic, ana, _email, phone = lone_ana
    if failing == "push":
        push_service.answer(phone, 503)
    else:
        smtp.stop()
    assert alert_dispatch.dispatch_alerts(now, sender).digests == 1
    assert last_digest(ana) == now  # the hour is spent: somebody was told
    for later in (timedelta(minutes=1), timedelta(minutes=10), timedelta(minutes=59)):
        assert alert_dispatch.dispatch_alerts(now + later, sender).notices == {}
    assert len(push_service.received) == 1
    assert len(smtp.received) == (1 if failing == "push" else 0)


def test_a_digest_is_tried_at_most_alert_max_attempts_rounds(
    app, lone_ana, make_visit, push_service, smtp, sender, now, caplog
):
    app.config["ALERT_MAX_ATTEMPTS"] = 3
    clinic, ana, ana_email, phone = lone_ana
    push_service.answer(phone, *[503] * 5)
    smtp.stop()
    at = now
    for round_number in (1, 2, 3):
        report = alert_dispatch.dispatch_alerts(at, sender)
        assert len(push_service.received) == round_number
        if round_number < 3:
            assert report.notices["digest to retry"] == 1 and last_digest(ana) is None
            # The backoff: 1 minute after the first round, 2 after the second.
            wait = timedelta(minutes=round_number)
            assert alert_dispatch.dispatch_alerts(at + wait / 2, sender).notices == {}
            at += wait
    assert last_digest(ana) == at  # given up: the hour is spent
    assert "amber digest: gave up after 3 rounds that reached nobody" in caplog.text
    assert alert_dispatch.dispatch_alerts(at + timedelta(hours=2), sender).notices == {}
    assert len(push_service.received) == 3
    # A new amber item makes a new digest, with rounds of its own.
    later = at + timedelta(hours=2)
    checkin(make_visit(clinic, performed_at=later - timedelta(hours=48)).visit, later, 7, [])
    assert alert_dispatch.dispatch_alerts(later, sender).notices["digest to retry"] == 1
    assert last_digest(ana) == at
    smtp.start()
    assert alert_dispatch.dispatch_alerts(later + timedelta(minutes=1), sender).digests == 1
    assert [r.rcpt_tos for r in smtp.received] == [[ana_email]]


@pytest.mark.parametrize(
    "database", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def test_two_workers_never_both_send_a_digest_or_its_retry(
    app, lone_ana, push_service, smtp, sender, now, database
):
    """Each worker reads who is due, then claims with a conditional update: the second one's
    claim finds the state changed, also when the first one's round gave the hour back."""
    assert db.session.get_bind().dialect.name == database
    _clinic, ana, _email, phone = lone_ana
    [first] = alert_dispatch.waiting_amber(now)
    [second] = alert_dispatch.waiting_amber(now)  # another worker read the same
    assert alert_dispatch.claim_digest(first, now)
    db.session.commit()
    assert not alert_dispatch.claim_digest(second, now + timedelta(seconds=1))
    db.session.rollback()

    # A round that reaches nobody gives the hour back: the state looks as it did before it ...
    db.session.execute(update(Therapist).where(Therapist.id == ana).values(last_digest_at=None))
    db.session.commit()
    push_service.answer(phone, 503)
    smtp.stop()
    [stale] = alert_dispatch.waiting_amber(now)
    alert_dispatch.send_digests(now, sender, AlertReport())
    assert last_digest(ana) is None and len(push_service.received) == 1
    # ... but a worker that read it before that round cannot claim on what it read.
    retry = now + timedelta(minutes=1)
    assert not alert_dispatch.claim_digest(stale, retry)
    db.session.rollback()
    [due] = alert_dispatch.waiting_amber(retry)
    assert (due.failed_rounds, due.last_round_at) == (1, now)
    assert alert_dispatch.claim_digest(due, retry)
    db.session.commit()
