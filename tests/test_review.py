"""The review queue: order by need, reasons in words, acknowledge, resolve, episodes closing."""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import event, func, select

from companion.alerts import raising as alerts
from companion.alerts.queue import build_queue, marked_reasons, reason_text
from companion.alerts.records import alert_records
from companion.care.clinic_rules import rules_for
from companion.checkins.store import CheckInDetails, submit_checkin
from companion.extensions import db
from companion.models import Alert, AuditEvent, Clinic, Visit
from tests.conftest import csrf_from, sign_in

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


def checkin(visit: Visit, hours: float, soreness: int, symptoms: list[str] | None = None) -> None:
    at = visit.performed_at + timedelta(hours=hours)
    submit_checkin(
        visit,
        CheckInDetails(uuid.uuid4(), at, soreness, None, symptoms or [], [], None),
        now=at,
    )
    db.session.commit()


def queue_at(clinic: Clinic, now: datetime):
    alerts.raise_missing(clinic, now)
    db.session.commit()
    with_rules = rules_for(clinic)
    return build_queue(clinic, with_rules, now)


@pytest.fixture
def in_request(app):
    """Reasons are put into words with the request's language: English here."""
    with app.test_request_context():
        yield


@pytest.fixture
def ward(make_clinic, make_visit):
    """One clinic at NOW: a red flag, two ambers (envelope, missing check-in), two on track."""
    clinic = make_clinic()

    def visit(name: str, hours_ago: float):
        performed = NOW - timedelta(hours=hours_ago)
        return make_visit(clinic, name=name, performed_at=performed, now=performed).visit

    red = visit("Rosa Red", 30)
    checkin(red, 2, 3)
    checkin(red, 26, 2, ["breathless"])
    high = visit("Ana Amber", 50)
    checkin(high, 3, 4)
    checkin(high, 48, 6)
    silent = visit("Sol Silent", 30)
    fine = visit("Fede Fine", 50)
    checkin(fine, 3, 4)
    checkin(fine, 24, 3)
    checkin(fine, 48, 1)
    fresh = visit("Nuria New", 2)
    return clinic, {"red": red, "high": high, "silent": silent, "fine": fine, "fresh": fresh}


def test_queue_orders_red_then_amber_then_on_track(ward):
    clinic, _ = ward
    queue = queue_at(clinic, NOW)
    order = [item.name for item in queue.items]
    assert order[0] == "Rosa Red"
    assert set(order[1:3]) == {"Ana Amber", "Sol Silent"}
    # On track, newest visit first.
    assert order[3:] == ["Nuria New", "Fede Fine"]
    assert [i.level for i in queue.items] == ["red", "amber", "amber", "on_track", "on_track"]


def test_queue_says_why_in_words(in_request, ward):
    clinic, _ = ward
    queue = queue_at(clinic, NOW)
    words = {item.name: [reason_text(r) for r in item.reasons] for item in queue.items}
    assert words["Rosa Red"] == ["26 h: New shortness of breath"]
    assert words["Ana Amber"] == [
        "48 h: soreness 6, expected 2 or less",
        "48 h: soreness up from 4 to 6",
    ]
    assert words["Sol Silent"] == ["No check-in by 24 h"]
    assert words["Fede Fine"] == []


def test_missing_checkin_becomes_48h_and_closes_when_the_patient_checks_in(in_request, ward):
    clinic, v = ward
    queue_at(clinic, NOW)
    later = NOW + timedelta(hours=20)  # 50 h after Sol's visit
    item = next(i for i in queue_at(clinic, later).items if i.name == "Sol Silent")
    assert [reason_text(r) for r in item.reasons] == ["No check-in by 48 h"]
    # Raising again is idempotent: still one open alert.
    alerts.raise_missing(clinic, later)
    db.session.commit()
    open_alerts = db.session.scalars(
        select(Alert).where(Alert.visit_id == v["silent"].id, Alert.resolved_at.is_(None))
    ).all()
    assert len(open_alerts) == 1
    checkin(v["silent"], 50, 2)
    item = next(i for i in queue_at(clinic, later).items if i.name == "Sol Silent")
    assert item.level == "on_track"


def test_a_visit_recorded_late_waits_24h_from_its_recording(make_clinic, make_visit):
    clinic = make_clinic()
    performed = NOW - timedelta(hours=30)
    make_visit(clinic, name="Late", performed_at=performed, now=NOW - timedelta(hours=10))
    assert queue_at(clinic, NOW).items[0].level == "on_track"
    assert queue_at(clinic, NOW + timedelta(hours=15)).items[0].level == "amber"


def test_recovered_patients_are_not_chased(make_clinic, make_visit):
    clinic = make_clinic()
    performed = NOW - timedelta(hours=30)
    visit = make_visit(clinic, performed_at=performed, now=performed).visit
    visit.recovered_at = performed + timedelta(hours=3)
    db.session.commit()
    assert queue_at(clinic, NOW).items[0].level == "on_track"


def test_episodes_close_after_the_clinics_episode_days(ward):
    clinic, v = ward
    week_later = v["high"].performed_at + timedelta(days=7, minutes=1)
    names = [i.name for i in queue_at(clinic, week_later).items]
    assert "Ana Amber" not in names and "Fede Fine" not in names and "Nuria New" in names
    clinic.episode_days = 10
    db.session.commit()
    names = [i.name for i in queue_at(clinic, week_later).items]
    assert "Ana Amber" in names and "Fede Fine" in names


def test_a_red_flag_stays_in_the_queue_until_somebody_resolves_it(ward, make_visit, make_therapist):
    """Neither the episode closing, nor a shorter episode length, nor a newer visit hides it."""
    clinic, v = ward
    month_later = v["red"].performed_at + timedelta(days=30)
    clinic.episode_days = 3
    db.session.commit()
    [item] = [i for i in queue_at(clinic, month_later).items if i.name == "Rosa Red"]
    assert item.level == "red" and item.visit_id == v["red"].id
    # A newer visit of Rosa's opens a new episode; the old warning sign is still there, first.
    newer = make_visit(
        clinic, ref=v["red"].patient.ref, name="Rosa Red", performed_at=month_later, now=month_later
    ).visit
    items = [i for i in queue_at(clinic, month_later).items if i.name == "Rosa Red"]
    assert [(i.visit_id, i.level) for i in items] == [
        (v["red"].id, "red"),
        (newer.id, "on_track"),
    ]
    ids = [a.id for a in items[0].alerts]
    therapist = make_therapist(clinic)
    assert alerts.resolve(clinic.id, v["red"].id, ids, therapist.id, "Seen", month_later) == 1
    db.session.commit()
    items = [i for i in queue_at(clinic, month_later).items if i.name == "Rosa Red"]
    assert [i.visit_id for i in items] == [newer.id]


def test_a_newer_visit_takes_over_the_patients_place(make_clinic, make_visit):
    clinic = make_clinic()
    first = make_visit(clinic, ref="P1", performed_at=NOW - timedelta(days=3), now=NOW).visit
    second = make_visit(clinic, ref="P1", performed_at=NOW - timedelta(hours=1), now=NOW).visit
    items = queue_at(clinic, NOW).items
    assert [i.visit_id for i in items] == [second.id]
    assert first.id != second.id


def test_acknowledged_items_stay_until_resolved(ward, make_therapist):
    clinic, v = ward
    therapist = make_therapist(clinic)
    red = next(i for i in queue_at(clinic, NOW).items if i.name == "Rosa Red")
    ids = [a.id for a in red.alerts]
    assert alerts.acknowledge(clinic.id, v["red"].id, ids, therapist.id, NOW) == 1
    db.session.commit()
    red = next(i for i in queue_at(clinic, NOW).items if i.name == "Rosa Red")
    assert red.level == "red" and red.acknowledgement is not None
    assert red.acknowledgement.acknowledged_by == therapist.id
    later = NOW + timedelta(minutes=5)
    assert alerts.resolve(clinic.id, v["red"].id, ids, therapist.id, "Called: ER", later) == 1
    db.session.commit()
    red = next(i for i in queue_at(clinic, later).items if i.name == "Rosa Red")
    assert red.level == "on_track"
    stored = db.session.get(Alert, ids[0])
    assert (stored.acknowledged_at, stored.resolved_at) == (NOW, later)
    assert stored.resolution_note == "Called: ER" and stored.resolved_by == therapist.id


def test_an_alert_that_arrives_after_the_page_was_drawn_stays_open(
    in_request, ward, make_therapist
):
    clinic, v = ward
    therapist = make_therapist(clinic)
    shown = next(i for i in queue_at(clinic, NOW).items if i.name == "Ana Amber")
    checkin(v["high"], 49, 7)  # a new amber check-in while the therapist reads
    alerts.resolve(clinic.id, v["high"].id, [a.id for a in shown.alerts], therapist.id, None, NOW)
    db.session.commit()
    item = next(i for i in queue_at(clinic, NOW).items if i.name == "Ana Amber")
    assert item.level == "amber"
    assert reason_text(item.reasons[0]) == "49 h: soreness 7, expected 2 or less"


def test_unacknowledged_items_come_before_acknowledged_ones(
    make_clinic, make_visit, make_therapist
):
    clinic = make_clinic()
    therapist = make_therapist(clinic)
    older = make_visit(clinic, name="Older", performed_at=NOW - timedelta(hours=30)).visit
    newer = make_visit(clinic, name="Newer", performed_at=NOW - timedelta(hours=28)).visit
    checkin(older, 20, 1, ["chest_pain"])
    checkin(newer, 20, 1, ["chest_pain"])
    items = queue_at(clinic, NOW).items
    assert [i.name for i in items] == ["Older", "Newer"]  # longest waiting first
    alerts.acknowledge(clinic.id, older.id, [a.id for a in items[0].alerts], therapist.id, NOW)
    db.session.commit()
    assert [i.name for i in queue_at(clinic, NOW).items] == ["Newer", "Older"]


def test_clinic_envelope_changes_what_is_amber(in_request, make_clinic, make_visit):
    clinic = make_clinic()
    visit = make_visit(clinic, performed_at=NOW - timedelta(hours=30)).visit
    clinic.envelope = [[5, 8], [5, 7], [4, 5], [2, 4], [1, 3], [0, 3]]
    db.session.commit()
    checkin(visit, 24, 5)  # the default says amber from 6; this clinic from 5
    item = queue_at(clinic, NOW).items[0]
    assert [reason_text(r) for r in item.reasons] == ["24 h: soreness 5, expected 4 or less"]


# --- the pages ------------------------------------------------------------------------------


@pytest.fixture
def signed_in(client, make_clinic, make_therapist, now):
    # The clock is pinned (`now`) before the session starts, so its timeouts count from there.
    clinic = make_clinic()
    therapist = make_therapist(clinic)
    sign_in(client, therapist.email)
    return client, clinic, therapist


def test_queue_page_lists_items_with_reasons(signed_in, make_visit, now):
    client, clinic, _ = signed_in
    visit = make_visit(clinic, name="Pia", performed_at=now - timedelta(hours=26))
    checkin(visit.visit, 25, 1, ["breathless"])
    page = client.get("/")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "Pia" in html and "25 h: New shortness of breath" in html
    assert "Red flags: 1 · Look at today: 0 · On track: 0" in html
    assert page.headers["Cache-Control"].startswith("no-store")
    assert db.session.scalar(
        select(func.count()).select_from(AuditEvent).where(AuditEvent.action == "queue.view")
    )


def test_queue_page_acknowledges_and_resolves_with_audit(signed_in, make_visit, now):
    client, clinic, therapist = signed_in
    visit = make_visit(clinic, name="Pia", performed_at=now - timedelta(hours=26))
    checkin(visit.visit, 25, 1, ["breathless"])
    html = client.get("/").get_data(as_text=True)
    ids = re.search(r'name="alerts" value="([^"]+)"', html).group(1)
    token = csrf_from(html)
    url = f"/review/{visit.visit.id}/acknowledge"
    assert client.post(url, data={"alerts": ids}).status_code == 400  # no CSRF token
    response = client.post(url, data={"alerts": ids, "csrf_token": token})
    assert response.status_code == 303 and response.headers["Location"].endswith(
        f"/#item-{visit.visit.id}"
    )
    html = client.get("/").get_data(as_text=True)
    assert f"Acknowledged by {therapist.email}" in html
    response = client.post(
        f"/review/{visit.visit.id}/resolve",
        data={"alerts": ids, "note": "Sent to A&E", "csrf_token": token},
    )
    assert response.status_code == 303
    html = client.get("/").get_data(as_text=True)
    assert "Red flags: 0 · Look at today: 0 · On track: 1" in html
    actions = db.session.scalars(
        select(AuditEvent.action).where(AuditEvent.target_id == str(visit.visit.id))
    ).all()
    assert {"alert.acknowledge", "alert.resolve"} <= set(actions)
    details = db.session.scalars(
        select(AuditEvent.detail).where(AuditEvent.action == "alert.resolve")
    ).all()
    assert details == [{"alerts": 1}]  # the note stays out of the audit trail


@pytest.mark.parametrize("alerts_value", ["", "not-a-uuid", str(uuid.uuid4())])
def test_bad_or_foreign_alert_ids_change_nothing(signed_in, make_visit, alerts_value, now):
    client, clinic, _ = signed_in
    visit = make_visit(clinic, performed_at=now - timedelta(hours=26))
    checkin(visit.visit, 25, 1, ["breathless"])
    token = csrf_from(client.get("/").get_data(as_text=True))
    response = client.post(
        f"/review/{visit.visit.id}/resolve", data={"alerts": alerts_value, "csrf_token": token}
    )
    assert response.status_code in (303, 400)
    if alerts_value in ("", "not-a-uuid"):
        assert response.status_code == 400
    assert db.session.scalar(select(func.count()).where(Alert.resolved_at.is_(None))) == 1


def test_another_clinics_alerts_cannot_be_resolved(signed_in, make_clinic, make_visit, now):
    client, _, _ = signed_in
    other = make_clinic()
    visit = make_visit(other, performed_at=now - timedelta(hours=26))
    checkin(visit.visit, 25, 1, ["breathless"])
    alert_id = db.session.scalar(select(Alert.id))
    token = csrf_from(client.get("/").get_data(as_text=True))
    client.post(
        f"/review/{visit.visit.id}/resolve", data={"alerts": str(alert_id), "csrf_token": token}
    )
    assert db.session.get(Alert, alert_id).resolved_at is None


def test_settings_page_saves_thresholds_and_refuses_bad_ones(signed_in):
    client, clinic, _ = signed_in
    html = client.get("/settings/clinic").get_data(as_text=True)
    token = csrf_from(html)
    form = {"csrf_token": token, "episode_days": "10", "quiet_start": "22:00", "quiet_end": "07:00"}
    pairs = [(5, 8), (5, 7), (4, 5), (2, 4), (1, 3), (0, 3)]
    for i, (usual, amber) in enumerate(pairs):
        form[f"envelope-{i}-usual_max"] = str(usual)
        form[f"envelope-{i}-amber_at"] = str(amber)
    response = client.post("/settings/clinic", data=form)
    assert response.status_code == 303
    db.session.refresh(clinic)
    assert clinic.episode_days == 10 and clinic.envelope[2] == [4, 5]
    assert str(clinic.quiet_start) == "22:00:00"

    bad = dict(form, **{"envelope-3-usual_max": "4", "envelope-3-amber_at": "4"})
    response = client.post("/settings/clinic", data=bad)
    assert response.status_code == 422
    assert "Amber must be above the usual maximum." in response.get_data(as_text=True)
    for field, value in (("episode_days", "0"), ("episode_days", "7.5"), ("quiet_end", "22:00")):
        assert client.post("/settings/clinic", data=dict(form, **{field: value})).status_code == 422
    db.session.refresh(clinic)
    assert clinic.envelope[3] == [2, 4] and clinic.episode_days == 10


def test_settings_back_to_the_defaults_store_nothing(signed_in):
    client, clinic, _ = signed_in
    clinic.envelope = [[5, 8], [5, 7], [4, 5], [2, 4], [1, 3], [0, 3]]
    db.session.commit()
    html = client.get("/settings/clinic").get_data(as_text=True)
    assert 'name="envelope-2-amber_at" type="number" value="5"' in html or 'value="5"' in html
    form = {"csrf_token": csrf_from(html), "episode_days": "7", "quiet_start": "21:30"}
    form["quiet_end"] = "08:00"
    for i, (usual, amber) in enumerate([(5, 8), (5, 7), (4, 6), (2, 4), (1, 3), (0, 3)]):
        form[f"envelope-{i}-usual_max"] = str(usual)
        form[f"envelope-{i}-amber_at"] = str(amber)
    assert client.post("/settings/clinic", data=form).status_code == 303
    db.session.refresh(clinic)
    assert clinic.envelope is None


def test_patient_browser_gets_the_clinics_rules(make_clinic, make_visit, client):
    clinic = make_clinic()
    clinic.envelope = [[5, 8], [5, 7], [4, 5], [2, 4], [1, 3], [0, 3]]
    db.session.commit()
    visit = make_visit(clinic)
    client.get(visit.url)
    html = client.get("/me/check-in").get_data(as_text=True)
    data = json.loads(re.search(r'id="page-data">(.*?)</script>', html).group(1))
    day_one = data["checkin"]["rules"]["envelope"][2]
    assert (day_one["usual_max"], day_one["amber_at"]) == (4, 5)


# --- the queue's cost does not grow with the clinic -----------------------------------------


def _count_queries(app, fn) -> int:
    statements: list[str] = []

    def before(conn, cursor, statement, *args):
        statements.append(statement)

    engine = db.engine
    event.listen(engine, "before_cursor_execute", before)
    try:
        fn()
    finally:
        event.remove(engine, "before_cursor_execute", before)
    return len(statements)


def _fill(clinic: Clinic, make_visit, patients: int) -> None:
    for n in range(patients):
        performed = NOW - timedelta(hours=10 + n * 60 // patients)  # 10 to 69 h, whatever the size
        visit = make_visit(clinic, performed_at=performed, now=performed).visit
        if n % 3:
            checkin(visit, 2, 3 + n % 5, ["tired"] if n % 7 == 0 else [])
        if n % 11 == 0:
            checkin(visit, 5, 2, ["racing_heart"])


def test_queue_page_uses_the_same_number_of_queries_for_5_or_60_patients(
    app, client, make_clinic, make_visit, make_therapist, time_machine
):
    time_machine.move_to(NOW)  # the page reads the clock: every episode below is still open
    counts, listed = [], []
    for size in (5, 60):
        clinic = make_clinic()
        _fill(clinic, make_visit, size)
        therapist = make_therapist(clinic)
        sign_in(client, therapist.email)
        client.get("/")  # raises the missing check-ins once
        # Every third alert resolved an hour ago, with a note: the "resolved in the last 48 h"
        # section lists more of them in the bigger clinic, with one query however many.
        ids = db.session.scalars(
            select(Alert.id).where(Alert.clinic_id == clinic.id).order_by(Alert.id)
        ).all()
        for alert_id in ids[::3]:
            alert = db.session.get(Alert, alert_id)
            alert.resolved_at, alert.resolved_by = NOW - timedelta(hours=1), therapist.id
            alert.resolution_note = "Called"
        db.session.commit()
        counts.append(_count_queries(app, lambda: client.get("/")))
        html = client.get("/").get_data(as_text=True)
        listed.append(html.count('class="alert-record '))
        client.post("/sign-out", data={"csrf_token": csrf_from(html)})
    assert counts[0] == counts[1], counts
    assert 0 < listed[0] < listed[1], listed


@pytest.mark.postgres
def test_queue_and_missing_alerts_on_postgresql(ward):
    clinic, _ = ward
    queue = queue_at(clinic, NOW)
    assert [i.level for i in queue.items] == ["red", "amber", "amber", "on_track", "on_track"]
    # Raising again, as a second web host or a worker would, adds nothing.
    assert alerts.raise_missing(clinic, NOW) == 0
    db.session.commit()
    assert db.session.scalar(select(func.count()).where(Alert.kind == "missing")) == 1


def test_an_acknowledged_24h_gap_becomes_48h_in_place(in_request, ward, make_therapist):
    clinic, v = ward
    therapist = make_therapist(clinic)
    item = next(i for i in queue_at(clinic, NOW).items if i.name == "Sol Silent")
    alerts.acknowledge(clinic.id, v["silent"].id, [a.id for a in item.alerts], therapist.id, NOW)
    db.session.commit()
    later = NOW + timedelta(hours=20)
    item = next(i for i in queue_at(clinic, later).items if i.name == "Sol Silent")
    assert [reason_text(r) for r in item.reasons] == ["No check-in by 48 h"]
    assert item.acknowledgement is not None and item.waiting_since == NOW
    # Resolved at 48 h, it does not come back.
    alerts.resolve(
        clinic.id, v["silent"].id, [a.id for a in item.alerts], therapist.id, None, later
    )
    db.session.commit()
    item = next(
        i for i in queue_at(clinic, later + timedelta(hours=1)).items if i.name == "Sol Silent"
    )
    assert item.level == "on_track"


def test_visit_page_shows_the_chart_and_every_alert_with_who_handled_it(signed_in, make_visit, now):
    client, clinic, therapist = signed_in
    visit = make_visit(clinic, name="Pia", performed_at=now - timedelta(hours=50))
    checkin(visit.visit, 3, 4)
    checkin(visit.visit, 48, 6)
    html = client.get(f"/visits/{visit.visit.id}").get_data(as_text=True)
    assert "<svg" in html, html[html.find("chart-h") - 200 :][:600]
    assert "the patient's scores" in html
    assert "48 h: soreness 6, expected 2 or less" in html and "Open" in html
    ids = re.search(r'name="alerts" value="([^"]+)"', html).group(1)
    response = client.post(
        f"/review/{visit.visit.id}/resolve",
        data={
            "alerts": ids,
            "note": "Called; easing",
            "back": "visit",
            "csrf_token": csrf_from(html),
        },
    )
    assert response.headers["Location"] == f"/visits/{visit.visit.id}"
    html = client.get(f"/visits/{visit.visit.id}").get_data(as_text=True)
    assert f"Resolved by {therapist.email}" in html and "Called; easing" in html
    assert f"Acknowledged by {therapist.email}" in html


def test_the_queue_lists_the_newest_on_track_episodes_and_counts_the_rest(
    signed_in, make_visit, monkeypatch, now
):
    from companion.clinic import queue as review_pages

    monkeypatch.setattr(review_pages, "ON_TRACK_SHOWN", 2)
    client, clinic, _ = signed_in
    for hours, name in ((5, "Older"), (3, "Middle"), (1, "Newest")):
        make_visit(clinic, name=name, performed_at=now - timedelta(hours=hours))
    html = client.get("/").get_data(as_text=True)
    assert "Newest" in html and "Middle" in html and "Older" not in html
    assert (
        '1 more patient is on track; every patient is on the <a href="/patients">Patients</a> page.'
        in html
    )
    assert "On track: 3" in html


def test_a_gap_a_therapist_resolved_is_not_raised_again(in_request, ward, make_therapist):
    clinic, v = ward
    therapist = make_therapist(clinic)
    item = next(i for i in queue_at(clinic, NOW).items if i.name == "Sol Silent")
    alerts.resolve(clinic.id, v["silent"].id, [a.id for a in item.alerts], therapist.id, None, NOW)
    db.session.commit()
    assert alerts.raise_missing(clinic, NOW + timedelta(hours=1)) == 0
    assert db.session.scalar(select(func.count()).where(Alert.kind == "missing")) == 1


def _section(html: str, heading_id: str, next_id: str) -> str:
    return html[html.index(f'id="{heading_id}"') : html.index(f'id="{next_id}"')]


def test_a_red_reason_comes_first_on_its_card_marked_with_a_symbol_and_words(
    signed_in, make_visit, now
):
    client, clinic, _ = signed_in
    visit = make_visit(clinic, name="Pia", performed_at=now - timedelta(hours=26)).visit
    checkin(visit, 12, 8)  # amber first: above the envelope at 12 h
    checkin(visit, 25, 1, ["breathless"])  # then the red flag
    html = client.get("/").get_data(as_text=True)
    card = html[html.index(f'id="item-{visit.id}"') :]
    card = card[: card.index("</ul>")]
    reasons = re.findall(r'<li class="reason (\w+)">(.*?)</li>', card, re.S)
    assert [level for level, _ in reasons] == ["red", "amber"]
    red_text = re.sub(r"<[^>]+>", "", reasons[0][1]).split()
    assert " ".join(red_text) == "Red flag: 25 h: New shortness of breath"
    assert 'class="level-icon red"' in reasons[0][1] and 'aria-hidden="true"' in reasons[0][1]
    amber_text = " ".join(re.sub(r"<[^>]+>", "", reasons[1][1]).split())
    assert amber_text == "Look at today: 12 h: soreness 8, expected 5 or less"
    assert 'class="level-icon amber"' in reasons[1][1]


def test_a_red_alerts_amber_reasons_stay_amber(now):
    red = Alert(level="red", reasons=[{"code": "above_envelope", "hours": 26}])
    red.reasons.append({"code": "symptom", "symptom": "breathless", "hours": 26})
    assert [level for level, _ in marked_reasons([red])] == ["red", "amber"]
    amber = Alert(level="amber", reasons=[{"code": "symptom", "symptom": "breathless"}])
    assert [level for level, _ in marked_reasons([amber])] == ["amber"]


def test_red_and_amber_cards_offer_the_patients_phone_or_a_way_to_add_it(
    signed_in, make_visit, now
):
    client, clinic, _ = signed_in
    red = make_visit(clinic, name="Pia", performed_at=now - timedelta(hours=26)).visit
    checkin(red, 25, 1, ["breathless"])
    red.patient.phone = "+34612345678"
    performed = now - timedelta(hours=30)  # and no check-in since: amber
    amber = make_visit(clinic, name="Ane", performed_at=performed, now=performed).visit
    make_visit(clinic, name="Fine", performed_at=now - timedelta(hours=3))
    db.session.commit()
    html = client.get("/").get_data(as_text=True)
    red_card = _section(html, f"item-{red.id}", "amber-h")
    assert '<a href="tel:+34612345678">Call +34 612 34 56 78</a>' in red_card
    amber_card = _section(html, f"item-{amber.id}", "resolved-h")
    assert "No phone number on record." in amber_card
    assert f'href="/visits/{amber.id}/edit"' in amber_card
    assert html.count("No phone number on record.") == 1  # on track: no call to action


def test_the_queue_lists_alerts_resolved_in_the_last_48_hours(
    signed_in, make_visit, make_therapist, now
):
    client, clinic, therapist = signed_in
    colleague = make_therapist(clinic, email="ben@example.org")
    recent = make_visit(clinic, name="Rita Recent", performed_at=now - timedelta(hours=30)).visit
    checkin(recent, 2, 1, ["breathless"])
    old = make_visit(clinic, name="Olga Old", performed_at=now - timedelta(hours=80)).visit
    checkin(old, 2, 1, ["chest_pain"])
    for visit, hours_ago, who, note in (
        (recent, 10, colleague, "Called; sent to A&E"),
        (old, 50, therapist, "Old news"),
    ):
        ids = [a.id for a in db.session.scalars(select(Alert).where(Alert.visit_id == visit.id))]
        moment = now - timedelta(hours=hours_ago)
        alerts.acknowledge(clinic.id, visit.id, ids, who.id, moment - timedelta(minutes=5))
        alerts.resolve(clinic.id, visit.id, ids, who.id, note, moment)
    db.session.commit()

    html = client.get("/").get_data(as_text=True)

    resolved = _section(html, "resolved-h", "ok-h")
    assert "Rita Recent" in resolved and "Olga Old" not in resolved
    assert "Red flag" in resolved and "2 h: New shortness of breath" in resolved
    assert "Resolved by ben@example.org" in resolved and "Called; sent to A&amp;E" in resolved
    assert "Acknowledged by ben@example.org" in resolved
    alert_id = db.session.scalar(select(Alert.id).where(Alert.visit_id == recent.id))
    assert f'href="/visits/{recent.id}#alert-{alert_id}"' in resolved
    # It sits between the items still open and the on-track list.
    assert html.index('id="amber-h"') < html.index('id="resolved-h"') < html.index('id="ok-h"')


def test_build_queue_keeps_what_was_resolved_within_48_hours_only(ward, make_therapist, now):
    clinic, v = ward
    therapist = make_therapist(clinic)
    queue = queue_at(clinic, NOW)
    red = next(i for i in queue.items if i.name == "Rosa Red")
    ids = [a.id for a in red.alerts]
    alerts.resolve(clinic.id, v["red"].id, ids, therapist.id, "ok", NOW - timedelta(hours=1))
    db.session.commit()
    assert [r.name for r in build_queue(clinic, rules_for(clinic), NOW).resolved] == ["Rosa Red"]
    later = NOW + timedelta(hours=46)
    assert [r.name for r in build_queue(clinic, rules_for(clinic), later).resolved] == ["Rosa Red"]
    # 48 h after it was resolved, it has left the section.
    assert build_queue(clinic, rules_for(clinic), NOW + timedelta(hours=47)).resolved == []


@pytest.mark.postgres
def test_resolved_alerts_are_listed_on_postgresql(ward, make_therapist, now):
    clinic, v = ward
    therapist = make_therapist(clinic)
    red = next(i for i in queue_at(clinic, NOW).items if i.name == "Rosa Red")
    ids = [a.id for a in red.alerts]
    alerts.resolve(clinic.id, v["red"].id, ids, therapist.id, "ok", NOW - timedelta(hours=1))
    db.session.commit()
    queue = build_queue(clinic, rules_for(clinic), NOW)
    assert [(r.name, r.alert.resolution_note) for r in queue.resolved] == [("Rosa Red", "ok")]
    records = alert_records(clinic.id, patient_id=v["red"].patient_id)
    assert [r.alert.id for r in records] == ids
    assert alert_records(uuid.uuid4(), visit_id=v["red"].id) == []  # another clinic sees nothing


def test_missing_checkin_alerts_the_app_closed_stay_out_of_the_resolved_section(
    make_clinic, make_visit, now
):
    clinic = make_clinic()
    performed = now - timedelta(hours=30)
    late = make_visit(clinic, name="Lou Late", performed_at=performed, now=performed).visit
    queue_at(clinic, now - timedelta(hours=5))  # 25 h: "no check-in by 24 h"
    checkin(late, 26, 2)  # the patient checks in: the app closes it
    assert [a.resolved_by for a in db.session.scalars(select(Alert))] == [None]
    assert db.session.scalar(select(Alert.resolved_at)) is not None

    assert queue_at(clinic, now).resolved == []
