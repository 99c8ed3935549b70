"""The reminder worker end to end against a local push service (tests/pushserver.py): real RFC 8291
encryption and RFC 8292 VAPID, the headers, neutral payloads, and what each push service answer does
to the reminder, the subscription and the delivery rows. Times are explicit."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, time, timedelta

import pytest
from sqlalchemy import func, select

from companion.checkins.store import CheckInDetails, RecordedInFuture, submit_checkin
from companion.delivery import lease
from companion.extensions import db
from companion.models import Delivery, PushSubscription, Reminder
from companion.reminders import dispatch as reminders
from companion.reminders.planning import (
    AFTER_2H,
    AFTER_48H,
    AFTER_72H,
    ANSWERS_WITHIN,
    DAY_7,
    EVENING,
    NEXT_MORNING,
    mark_recovered,
    replan,
)
from companion.reminders.subscriptions import save_subscription
from companion.visits.record import revoke_links
from tests.conftest import sign_in
from tests.pushserver import PushService

# Europe/Madrid is UTC+1 in November: a visit at 09:00 local has its 2 h reminder at 11:00.
VISIT_AT = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)
TWO_HOURS_LATER = VISIT_AT + timedelta(hours=2, minutes=1)


@pytest.fixture
def push_service(app):
    app.config["PUSH_ENDPOINT_ALLOWLIST"] = ("127.0.0.1",)
    with PushService(app_public_key=app.config["VAPID_PUBLIC_KEY"]) as service:
        yield service


@pytest.fixture
def visit(make_clinic, make_visit):
    return make_visit(
        make_clinic(),
        name="Rosalind Example",
        ref="REF-4471",
        regions=["low_back"],
        performed_at=VISIT_AT,
        now=VISIT_AT,
    ).visit


def subscribe(visit, push_service, now=VISIT_AT):
    browser = push_service.new_subscription()
    keys = browser.as_json()["keys"]
    save_subscription(visit.patient_id, browser.endpoint, keys["p256dh"], keys["auth"], now)
    db.session.commit()
    return browser


def reminder(visit, kind) -> Reminder:
    row = db.session.scalar(
        select(Reminder).where(Reminder.visit_id == visit.id, Reminder.kind == kind)
    )
    db.session.refresh(row)
    return row


def deliveries(row: Reminder) -> list[Delivery]:
    return list(db.session.scalars(select(Delivery).where(Delivery.reminder_id == row.id)))


def dispatch(app, now):
    totals = reminders.drain(app, now=now)
    db.session.expire_all()
    return totals


def test_a_due_reminder_arrives_encrypted_signed_and_without_health_data(app, visit, push_service):
    subscribe(visit, push_service)

    assert dispatch(app, TWO_HOURS_LATER) == {"sent": 1}

    [message] = push_service.received
    row = reminder(visit, AFTER_2H)
    # The local push service decrypted it with the browser's private key and checked the VAPID JWT.
    assert message.error is None
    assert message.claims["aud"] == push_service.origin
    assert message.claims["sub"].startswith("mailto:")
    assert message.payload == {
        "title": "Aftercare reminder",
        "body": "A gentle reminder about today's care. Tap to see what helps now.",
        "url": "/me/",
        "tag": row.id.hex,
    }
    assert message.headers["content-encoding"] == "aes128gcm"
    assert message.headers["topic"] == row.id.hex
    assert message.headers["urgency"] == "normal"
    # TTL: the push service may hold it for an offline phone until the reminder expires.
    assert int(message.headers["ttl"]) == int((row.expires_at - TWO_HOURS_LATER).total_seconds())
    text = json.dumps(message.payload)
    for secret in ("Rosalind", "REF-4471", "low_back", "Low back"):
        assert secret not in text
    assert row.status == "sent" and row.sent_at == TWO_HOURS_LATER
    assert row.lease_until is None
    [delivery] = deliveries(row)
    assert (delivery.outcome, delivery.status_code) == ("accepted", 201)
    subscription = db.session.scalar(select(PushSubscription))
    assert subscription.last_success_at == TWO_HOURS_LATER


def test_the_message_is_in_the_patients_language(app, make_clinic, make_visit, push_service):
    visit = make_visit(make_clinic(), language="es", performed_at=VISIT_AT, now=VISIT_AT).visit
    subscribe(visit, push_service)

    dispatch(app, TWO_HOURS_LATER)

    [message] = push_service.received
    assert message.payload["title"] == "Recordatorio de cuidados"
    assert message.payload["body"].startswith("Un recordatorio")


def test_every_device_of_the_patient_gets_it(app, visit, push_service):
    phone, laptop = subscribe(visit, push_service), subscribe(visit, push_service)

    dispatch(app, TWO_HOURS_LATER)

    assert sorted(m.subscription_id for m in push_service.received) == sorted([phone.id, laptop.id])
    assert len(deliveries(reminder(visit, AFTER_2H))) == 2


def test_a_410_deletes_the_subscription_and_the_reminder_fails(app, visit, push_service):
    push_service.answer(subscribe(visit, push_service), 410)

    assert dispatch(app, TWO_HOURS_LATER) == {"failed": 1}

    row = reminder(visit, AFTER_2H)
    assert row.status == "failed"
    assert row.last_error == "the browser unsubscribed"
    assert [(d.outcome, d.status_code) for d in deliveries(row)] == [("gone", 410)]
    assert db.session.scalar(select(func.count()).select_from(PushSubscription)) == 0


def test_a_500_is_retried_after_a_backoff_and_then_delivered(app, visit, push_service):
    push_service.answer(subscribe(visit, push_service), 500)

    assert dispatch(app, TWO_HOURS_LATER) == {"planned": 1}
    row = reminder(visit, AFTER_2H)
    assert row.status == "planned" and row.attempts == 1
    assert row.next_attempt_at == TWO_HOURS_LATER + lease.BACKOFF_FIRST
    # Not before the backoff has passed ...
    assert dispatch(app, TWO_HOURS_LATER + timedelta(seconds=30)) == {}
    # ... then again, and this time the push service takes it.
    assert dispatch(app, TWO_HOURS_LATER + timedelta(minutes=1)) == {"sent": 1}

    row = reminder(visit, AFTER_2H)
    assert row.status == "sent" and row.attempts == 2
    assert [d.outcome for d in sorted(deliveries(row), key=lambda d: d.attempted_at)] == [
        "error",
        "accepted",
    ]
    assert len(push_service.received) == 2


def test_retries_stop_at_the_maximum_and_the_failure_says_why(app, visit, push_service):
    app.config["REMINDER_MAX_ATTEMPTS"] = 2
    push_service.answer(subscribe(visit, push_service), 500, 500)

    dispatch(app, TWO_HOURS_LATER)
    assert dispatch(app, TWO_HOURS_LATER + timedelta(minutes=1)) == {"failed": 1}

    row = reminder(visit, AFTER_2H)
    assert row.status == "failed"
    assert row.last_error == "gave up after 2 attempts: push service error"


def test_a_429_waits_for_retry_after(app, visit, push_service):
    push_service.answer(subscribe(visit, push_service), 429)

    dispatch(app, TWO_HOURS_LATER)

    row = reminder(visit, AFTER_2H)
    assert row.status == "planned"
    assert row.next_attempt_at == TWO_HOURS_LATER + timedelta(seconds=120)


def test_a_403_is_not_retried_and_the_subscription_is_kept(app, visit, push_service):
    push_service.answer(subscribe(visit, push_service), 403)

    assert dispatch(app, TWO_HOURS_LATER) == {"failed": 1}

    assert db.session.scalar(select(func.count()).select_from(PushSubscription)) == 1
    assert [d.outcome for d in deliveries(reminder(visit, AFTER_2H))] == ["rejected"]


def test_an_endpoint_no_longer_allowed_is_never_contacted(app, visit, push_service):
    subscribe(visit, push_service)
    app.config["PUSH_ENDPOINT_ALLOWLIST"] = ("fcm.googleapis.com",)

    assert dispatch(app, TWO_HOURS_LATER) == {"failed": 1}

    assert push_service.received == []
    assert [d.outcome for d in deliveries(reminder(visit, AFTER_2H))] == ["refused"]


def test_a_disallowed_endpoint_is_refused_when_subscribing(patient_client, push_service):
    # The loopback push service is not on the default allowlist of push services.
    patient_client.application.config["PUSH_ENDPOINT_ALLOWLIST"] = ("fcm.googleapis.com",)
    body = push_service.new_subscription().as_json()

    response = patient_client.post("/api/v1/push-subscriptions", json=body)

    assert response.status_code == 422
    assert response.get_json()["error"]["code"] == "endpoint_not_allowed"
    assert db.session.scalar(select(func.count()).select_from(PushSubscription)) == 0


def test_without_a_device_the_reminder_waits_and_is_not_claimed_again_each_tick(
    app, visit, push_service
):
    assert dispatch(app, TWO_HOURS_LATER) == {"no_device": 1}
    row = reminder(visit, AFTER_2H)
    assert row.status == "planned" and row.last_error == reminders.WAITING_FOR_DEVICE
    # Looking for a device spent no attempt, and set no retry time for the therapist to read.
    assert row.attempts == 0 and row.next_attempt_at is None and row.lease_until is None

    # Later ticks pass it over: nothing is claimed, nothing counted, nothing recorded.
    assert dispatch(app, TWO_HOURS_LATER + timedelta(seconds=30)) == {}
    assert dispatch(app, TWO_HOURS_LATER + timedelta(hours=2)) == {}
    row = reminder(visit, AFTER_2H)
    assert row.status == "planned" and row.attempts == 0 and row.claim_token is None
    assert deliveries(row) == []


def test_a_late_device_gets_a_still_valid_reminder(app, visit, push_service):
    assert dispatch(app, TWO_HOURS_LATER) == {"no_device": 1}
    row = reminder(visit, AFTER_2H)
    # The patient turns reminders on an hour after the moment, well within its 3 h.
    later = TWO_HOURS_LATER + timedelta(hours=1)
    assert later < row.expires_at
    subscribe(visit, push_service, now=later)

    assert dispatch(app, later) == {"sent": 1}

    [message] = push_service.received
    assert message.payload["tag"] == row.id.hex
    row = reminder(visit, AFTER_2H)
    assert row.status == "sent" and row.sent_at == later and row.attempts == 1
    assert row.last_error is None
    assert [d.outcome for d in deliveries(row)] == ["accepted"]


def test_a_reminder_that_expired_waiting_for_a_device_is_not_sent_and_ends_as_no_device(
    app, visit, push_service
):
    dispatch(app, TWO_HOURS_LATER)
    row = reminder(visit, AFTER_2H)
    past = row.expires_at + timedelta(seconds=1)
    subscribe(visit, push_service, now=past)  # too late for this one

    dispatch(app, past)

    row = reminder(visit, AFTER_2H)
    assert row.status == "no_device" and row.last_error == reminders.NO_DEVICE_WHILE_VALID
    assert row.finished_at == past and row.sent_at is None
    assert all(m.payload["tag"] != row.id.hex for m in push_service.received)


def test_one_whose_device_came_in_time_but_no_worker_sent_it_expires(app, visit, push_service):
    dispatch(app, TWO_HOURS_LATER)
    subscribe(visit, push_service, now=TWO_HOURS_LATER + timedelta(minutes=5))
    row = reminder(visit, AFTER_2H)

    # No worker ran between the device and the expiry (all of them down): not "calendar only".
    dispatch(app, row.expires_at + timedelta(seconds=1))

    assert reminder(visit, AFTER_2H).status == "expired"
    assert all(m.payload["tag"] != row.id.hex for m in push_service.received)


def test_the_therapist_sees_a_reminder_wait_for_a_device_then_end_as_calendar_only(
    app, client, visit, make_therapist, push_service
):
    sign_in(client, make_therapist(visit.clinic).email)
    dispatch(app, TWO_HOURS_LATER)

    waiting = client.get(f"/visits/{visit.id}").get_data(as_text=True)
    row = waiting.split('<tr class="reminder-planned">')[1].split("</tr>")[0]
    assert "Planned · waiting for a device with reminders turned on" in row
    assert "next try" not in row

    dispatch(app, reminder(visit, AFTER_2H).expires_at)
    ended = client.get(f"/visits/{visit.id}").get_data(as_text=True)
    row = ended.split('<tr class="reminder-no_device">')[1].split("</tr>")[0]
    assert "Calendar only · no device had reminders turned on while it was valid" in row


def test_a_reminder_past_its_expiry_is_never_sent(app, visit, push_service):
    subscribe(visit, push_service)
    row = reminder(visit, AFTER_2H)

    dispatch(app, row.expires_at + timedelta(seconds=1))

    assert reminder(visit, AFTER_2H).status == "expired"
    assert all(m.payload["tag"] != row.id.hex for m in push_service.received)


def test_no_reminder_is_sent_for_a_revoked_link(app, visit, push_service):
    subscribe(visit, push_service)
    revoke_links(visit, VISIT_AT + timedelta(hours=1))
    db.session.commit()

    assert dispatch(app, TWO_HOURS_LATER) == {"cancelled": 1}
    assert push_service.received == []


def test_a_checkin_shortly_before_a_reminder_answers_it(app, visit, push_service):
    subscribe(visit, push_service)
    morning = reminder(visit, NEXT_MORNING)
    details = CheckInDetails(
        uuid.uuid4(), morning.due_at - timedelta(minutes=40), 3, None, [], [], None
    )
    submit_checkin(visit, details, now=morning.due_at - timedelta(minutes=40))
    db.session.commit()

    dispatch(app, morning.due_at + timedelta(minutes=1))

    assert reminder(visit, NEXT_MORNING).status == "answered"
    assert all(m.payload["tag"] != morning.id.hex for m in push_service.received)


def test_fully_recovered_stops_every_remaining_reminder(app, visit, push_service):
    subscribe(visit, push_service)
    mark_recovered(visit, VISIT_AT + timedelta(hours=1))
    db.session.commit()

    assert dispatch(app, VISIT_AT + timedelta(days=8)) == {}

    statuses = set(db.session.scalars(select(Reminder.status).where(Reminder.visit_id == visit.id)))
    assert statuses == {"cancelled"}
    assert push_service.received == []


def _checkin_at(visit, hours, score):
    at = VISIT_AT + timedelta(hours=hours)
    submit_checkin(visit, CheckInDetails(uuid.uuid4(), at, score, None, [], [], None), now=at)
    db.session.commit()


@pytest.mark.parametrize(
    ("checkins", "status"),
    [
        ([], "sent"),  # no check-in came
        ([(2, 2), (25, 2)], "sent"),  # nothing since the 48 h question
        ([(49, 1)], "skipped"),  # 48 h: 1, within the expected 2 or less
        ([(49, 4)], "sent"),  # 48 h: 4, still above the envelope
        ([(49, 4), (60, 1)], "skipped"),  # the last score is what counts
    ],
)
def test_the_72h_reminder_is_sent_only_when_still_needed(
    app, visit, push_service, checkins, status
):
    subscribe(visit, push_service)
    for hours, score in checkins:
        _checkin_at(visit, hours, score)
    row = reminder(visit, AFTER_72H)
    # Earlier reminders are answered or expired by then; only the 72 h one is due now.
    dispatch(app, row.due_at + timedelta(minutes=1))

    assert reminder(visit, AFTER_72H).status == status


def test_a_leased_reminder_is_not_claimed_twice_until_the_lease_runs_out(app, visit):
    now = TWO_HOURS_LATER
    first, ids = reminders.claim(now, 10, timedelta(minutes=2))
    db.session.commit()
    assert len(ids) == 1

    assert reminders.claim(now + timedelta(seconds=119), 10, timedelta(minutes=2))[1] == []
    second, again = reminders.claim(now + timedelta(minutes=2), 10, timedelta(minutes=2))
    db.session.commit()

    assert again == ids and second != first
    row = db.session.get(Reminder, ids[0])
    db.session.refresh(row)
    assert row.claim_token == second and row.attempts == 2


def test_a_worker_whose_lease_ran_out_cannot_finish_the_reminder(app, visit):
    now = TWO_HOURS_LATER
    stale, ids = reminders.claim(now, 10, timedelta(minutes=2))
    db.session.commit()
    reminders.claim(now + timedelta(minutes=3), 10, timedelta(minutes=2))
    db.session.commit()
    job = reminders.Job(ids[0], stale, 1, now + timedelta(hours=1), None, "no_device", "x")

    assert reminders.finish([job], {}, now + timedelta(minutes=4), 5) == {"lost": 1}
    row = db.session.get(Reminder, ids[0])
    db.session.refresh(row)
    assert row.status == "planned"


def test_backoff_doubles_up_to_an_hour():
    assert [lease.backoff(n) for n in (1, 2, 3, 8)] == [
        timedelta(minutes=1),
        timedelta(minutes=2),
        timedelta(minutes=4),
        timedelta(hours=1),
    ]


def test_quiet_hours_default_comes_from_the_clinic(app, make_clinic, make_visit):
    clinic = make_clinic()
    clinic.quiet_start, clinic.quiet_end = time(20, 0), time(9, 30)
    db.session.commit()
    # 19:30 Madrid: the evening reminder (+6 h, capped at 21:00) falls in the clinic's quiet hours.
    at = datetime(2026, 11, 20, 18, 30, tzinfo=UTC)
    visit = make_visit(clinic, performed_at=at, now=at).visit

    planned = {
        r.kind: r.due_at
        for r in db.session.scalars(select(Reminder).where(Reminder.visit_id == visit.id))
    }

    assert planned[NEXT_MORNING] == datetime(2026, 11, 21, 8, 30, tzinfo=UTC)  # 09:30 Madrid


def test_one_drain_sends_every_due_reminder_batch_after_batch(
    app, make_clinic, make_visit, push_service
):
    app.config["REMINDER_BATCH_SIZE"] = 2
    clinic = make_clinic()
    visits = [make_visit(clinic, performed_at=VISIT_AT, now=VISIT_AT).visit for _ in range(5)]
    for visit in visits:
        subscribe(visit, push_service)

    assert dispatch(app, TWO_HOURS_LATER) == {"sent": 5}
    assert len({m.headers["topic"] for m in push_service.received}) == 5


def test_a_device_whose_key_cannot_be_used_fails_alone_and_the_batch_goes_on(
    app, make_clinic, make_visit, push_service
):
    clinic = make_clinic()
    broken = make_visit(clinic, performed_at=VISIT_AT, now=VISIT_AT).visit
    fine = make_visit(clinic, performed_at=VISIT_AT, now=VISIT_AT).visit
    # 65 bytes that are not a point on P-256 (stored before keys were checked on the way in).
    not_a_point = "BA" + "A" * 85
    save_subscription(
        broken.patient_id, push_service.origin + "/push/x", not_a_point, "A" * 22, VISIT_AT
    )
    subscribe(fine, push_service)

    assert dispatch(app, TWO_HOURS_LATER) == {"failed": 1, "sent": 1}

    row = reminder(broken, AFTER_2H)
    assert row.last_error == "could not encrypt for this device"
    assert reminder(fine, AFTER_2H).status == "sent"


def test_a_reminder_no_worker_could_finish_stops_at_the_maximum(app, visit, push_service):
    app.config["REMINDER_MAX_ATTEMPTS"] = 3
    row = reminder(visit, AFTER_2H)
    row.attempts = 3  # three workers died on it
    db.session.commit()

    assert dispatch(app, TWO_HOURS_LATER) == {}

    row = reminder(visit, AFTER_2H)
    assert row.status == "failed" and "no worker finished" in row.last_error


def test_a_reminder_late_into_quiet_hours_waits_for_their_end_and_day_7_still_arrives(
    app, visit, push_service
):
    subscribe(visit, push_service)
    week = reminder(visit, DAY_7)
    assert week.due_at == datetime(2026, 11, 27, 8, 0, tzinfo=UTC)  # 09:00 Madrid, a week on
    late = datetime(2026, 11, 27, 22, 0, tzinfo=UTC)  # 23:00 in Madrid: quiet hours

    dispatch(app, late)
    waiting = reminder(visit, DAY_7)
    assert waiting.status == "planned" and waiting.attempts == 0
    assert waiting.next_attempt_at == datetime(2026, 11, 28, 7, 0, tzinfo=UTC)  # 08:00 Madrid
    assert push_service.received == []

    assert dispatch(app, waiting.next_attempt_at) == {"sent": 1}
    assert push_service.received[0].payload["tag"] == week.id.hex


def test_a_checkin_from_a_clock_running_ahead_does_not_answer_later_reminders(app, visit):
    # A phone 4 minutes ahead (within the skew allowed) sends a check-in just over 2 h before the
    # 48 h reminder: by its own time that reminder is due within 2 h, by the real time it is not.
    due = reminder(visit, AFTER_48H).due_at
    arrives = due - ANSWERS_WITHIN - timedelta(minutes=2)
    details = CheckInDetails(uuid.uuid4(), arrives + timedelta(minutes=4), 2, None, [], [], None)
    submit_checkin(visit, details, now=arrives)
    db.session.commit()

    assert reminder(visit, AFTER_48H).status == "planned"


def test_a_checkin_from_a_clock_days_ahead_is_refused_and_answers_nothing(app, visit):
    future = VISIT_AT + timedelta(days=3)
    details = CheckInDetails(uuid.uuid4(), future, 2, None, [], [], None)
    with pytest.raises(RecordedInFuture):
        submit_checkin(visit, details, now=VISIT_AT + timedelta(hours=1))
    db.session.rollback()

    assert reminder(visit, AFTER_48H).status == "planned"
    assert reminder(visit, AFTER_2H).status == "planned"


def test_a_newer_visit_takes_over_the_reminders(app, make_clinic, make_visit):
    clinic = make_clinic()
    first = make_visit(clinic, ref="P-9", performed_at=VISIT_AT, now=VISIT_AT).visit
    later = VISIT_AT + timedelta(days=2)
    second = make_visit(clinic, ref="P-9", performed_at=later, now=later).visit

    statuses = {
        r.status for r in db.session.scalars(select(Reminder).where(Reminder.visit_id == first.id))
    }
    assert "planned" not in statuses
    assert reminder(first, DAY_7).last_error == "a newer visit took over its reminders"
    assert reminder(second, AFTER_2H).status == "planned"


def test_re_planning_an_earlier_visit_does_not_bring_back_what_a_newer_one_took_over(
    app, make_clinic, make_visit
):
    clinic = make_clinic()
    first = make_visit(clinic, ref="P-9", performed_at=VISIT_AT, now=VISIT_AT).visit
    later = VISIT_AT + timedelta(days=2)
    make_visit(clinic, ref="P-9", performed_at=later, now=later)

    replan(first, later + timedelta(minutes=5))  # e.g. the patient changed their quiet hours
    db.session.commit()

    statuses = {
        r.status for r in db.session.scalars(select(Reminder).where(Reminder.visit_id == first.id))
    }
    assert "planned" not in statuses


# 22:00 in Madrid: the 48 h moment falls in the default quiet hours (21:30-08:00), so its reminder
# is sent at 08:00 the next morning, 10 h after its moment.
LATE_VISIT_AT = datetime(2026, 11, 20, 21, 0, tzinfo=UTC)
MOMENT_48H = LATE_VISIT_AT + timedelta(hours=48)


@pytest.fixture
def late_visit(make_clinic, make_visit):
    return make_visit(make_clinic(), performed_at=LATE_VISIT_AT, now=LATE_VISIT_AT).visit


def _checkin(visit, at):
    submit_checkin(visit, CheckInDetails(uuid.uuid4(), at, 2, None, [], [], None), now=at)
    db.session.commit()


def test_a_checkin_answers_the_reminder_quiet_hours_moved(app, late_visit):
    moved = reminder(late_visit, AFTER_48H)
    assert moved.due_at == datetime(2026, 11, 23, 7, 0, tzinfo=UTC)  # 08:00 in Madrid

    _checkin(late_visit, LATE_VISIT_AT + timedelta(hours=49))

    # Asked at 08:00 what the patient told us at 49 h: no.
    assert reminder(late_visit, AFTER_48H).status == "answered"
    # The next question is not this check-in's to answer.
    assert reminder(late_visit, AFTER_72H).status == "planned"


@pytest.mark.parametrize(
    ("before_the_moment", "status"),
    [
        (ANSWERS_WITHIN, "answered"),  # exactly 2 h before the 48 h moment: within
        (ANSWERS_WITHIN + timedelta(minutes=1), "planned"),  # 2 h 1 min before: not
    ],
)
def test_a_checkin_answers_a_moved_reminder_from_2_hours_before_its_moment(
    app, late_visit, before_the_moment, status
):
    _checkin(late_visit, MOMENT_48H - before_the_moment)

    assert reminder(late_visit, AFTER_48H).status == status


@pytest.mark.parametrize(
    ("before_it_is_sent", "status"),
    [
        (ANSWERS_WITHIN, "answered"),
        (ANSWERS_WITHIN + timedelta(minutes=1), "planned"),
    ],
)
def test_a_checkin_answers_a_reminder_from_2_hours_before_it_is_sent(
    app, visit, before_it_is_sent, status
):
    due = reminder(visit, AFTER_48H).due_at
    assert due == VISIT_AT + timedelta(hours=48)  # 09:00 in Madrid: not moved

    _checkin(visit, due - before_it_is_sent)

    assert reminder(visit, AFTER_48H).status == status


def test_a_checkin_answers_a_merged_reminder_by_its_earlier_send_time(app, make_clinic, make_visit):
    # 17:00 in Madrid: the 2 h nudge (19:00) and the evening one (21:00) merge into one evening
    # reminder sent at 19:00, two hours before its own moment.
    at = datetime(2026, 11, 20, 16, 0, tzinfo=UTC)
    visit = make_visit(make_clinic(), performed_at=at, now=at).visit
    merged = reminder(visit, EVENING)
    assert merged.due_at == at + timedelta(hours=2)

    _checkin(visit, at + timedelta(minutes=30))  # 3.5 h before the evening moment

    assert reminder(visit, EVENING).status == "answered"
