"""Day 7: the global impression of change of the usual pain (care/pgic.py), asked on the check-in
page from day 6 and taken by POST /api/v1/checkins, stored, answered, and shown to the therapist."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from companion.care import pgic
from companion.extensions import db
from companion.models import CheckIn, Reminder
from companion.reminders.notices import NOTICES
from companion.reminders.planning import DAY_7
from tests.conftest import csrf_from, sign_in


def count() -> int:
    return db.session.scalar(select(func.count()).select_from(CheckIn))


@pytest.fixture
def on_day(client, make_clinic, make_visit, now):
    """A client holding the patient cookie of a visit made `days` before `now`."""

    def make(days: float) -> Any:
        visit = make_visit(make_clinic(), performed_at=now - timedelta(days=days), now=now)
        assert client.get(visit.url).status_code == 303
        client.visit = visit.visit
        return client

    return make


def body(now: datetime, **changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": str(uuid.uuid4()),
        "recorded_at": now.isoformat(),
        "soreness": 1,
        "usual_pain": 2,
    }
    data.update(changes)
    return data


def test_the_scale_has_seven_points_from_very_much_improved_to_very_much_worse(now):
    assert [a.code for a in pgic.ANSWERS] == list(range(1, 8))
    assert pgic.BY_CODE[1].display == "Very much improved"
    assert pgic.BY_CODE[4].display == "No change"
    assert pgic.BY_CODE[7].display == "Very much worse"
    assert "PMID 14739871" in pgic.SOURCE


# --- API ------------------------------------------------------------------------------------------


def test_a_day_7_checkin_stores_the_global_impression(on_day, now):
    client = on_day(7)

    response = client.post("/api/v1/checkins", json=body(now, pgic=2))

    assert response.status_code == 201, response.get_json()
    assert response.get_json()["pgic"] == 2
    assert db.session.scalar(select(CheckIn.pgic)) == 2
    assert [c["pgic"] for c in client.get("/api/v1/checkins").get_json()["checkins"]] == [2]


def test_a_checkin_without_it_lists_null(on_day, now):
    client = on_day(1)
    assert client.post("/api/v1/checkins", json=body(now)).get_json()["pgic"] is None


def test_it_is_taken_from_six_days_after_the_visit_by_the_recorded_time(on_day, now):
    client = on_day(7)
    visit_at = client.visit.performed_at
    just_before = visit_at + timedelta(days=6) - timedelta(seconds=1)

    too_early = client.post("/api/v1/checkins", json=body(just_before, pgic=3))
    on_time = client.post("/api/v1/checkins", json=body(visit_at + timedelta(days=6), pgic=3))

    assert too_early.status_code == 422
    assert on_time.status_code == 201
    assert count() == 1


def test_a_phone_clock_ahead_cannot_answer_it_early(on_day, now):
    # Two minutes before day 6, from a phone four minutes ahead (within the skew a check-in's
    # time may have): its own time says day 6, but it is judged on when it arrived.
    client = on_day(6 - 2 / (24 * 60))
    response = client.post("/api/v1/checkins", json=body(now + timedelta(minutes=4), pgic=2))
    assert response.status_code == 422
    assert response.get_json()["error"]["code"] == "too_early"
    assert count() == 0


def test_a_phone_clock_days_ahead_is_refused_outright(on_day, now):
    client = on_day(5)
    response = client.post("/api/v1/checkins", json=body(now + timedelta(days=2), pgic=2))
    assert response.status_code == 422
    assert response.get_json()["error"]["code"] == "recorded_in_future"
    assert count() == 0


def test_sent_on_day_5_it_is_a_422_naming_the_field_and_nothing_is_stored(on_day, now):
    client = on_day(5)

    response = client.post("/api/v1/checkins", json=body(now, pgic=2, symptoms=["breathless"]))

    assert response.status_code == 422
    error = response.get_json()["error"]
    assert (error["code"], error["field"]) == ("too_early", "pgic")
    assert count() == 0


@pytest.mark.parametrize(
    ("value", "code"),
    [
        (0, "out_of_range"),
        (8, "out_of_range"),
        (-1, "out_of_range"),
        (True, "wrong_type"),
        ("3", "wrong_type"),
        (3.5, "wrong_type"),
        (3.0, "wrong_type"),
    ],
)
def test_anything_but_an_integer_from_1_to_7_is_a_422(on_day, now, value, code):
    client = on_day(7)

    response = client.post("/api/v1/checkins", json=body(now, pgic=value))

    assert response.status_code == 422
    error = response.get_json()["error"]
    assert (error["code"], error["field"]) == (code, "pgic")
    assert count() == 0


def test_a_replay_with_another_answer_is_a_409_and_the_same_one_replays(on_day, now):
    client = on_day(7)
    sent = body(now, pgic=2)
    assert client.post("/api/v1/checkins", json=sent).status_code == 201

    assert client.post("/api/v1/checkins", json=sent).status_code == 200
    assert client.post("/api/v1/checkins", json=dict(sent, pgic=6)).status_code == 409
    assert client.post("/api/v1/checkins", json=dict(sent, pgic=None)).status_code == 409
    assert db.session.scalar(select(CheckIn.pgic)) == 2


def test_a_checkin_without_it_keeps_the_fingerprint_it_had_before_the_field(on_day, now):
    """An entry stored before pgic existed (or waiting in an outbox) still replays: null and
    missing are the same entry."""
    client = on_day(7)
    sent = body(now)
    assert client.post("/api/v1/checkins", json=sent).status_code == 201
    assert client.post("/api/v1/checkins", json=dict(sent, pgic=None)).status_code == 200


def test_the_global_impression_alone_answers_the_day_7_reminder(on_day, now):
    client = on_day(7)
    reminder = db.session.scalar(select(Reminder).where(Reminder.kind == DAY_7))
    assert reminder.status == "planned" and reminder.due_at <= now + timedelta(hours=1)

    client.post("/api/v1/checkins", json=body(now, usual_pain=None, pgic=4))

    db.session.expire_all()
    assert db.session.get(Reminder, reminder.id).status == "answered"


def test_the_openapi_document_shows_pgic_in_and_out(client, now):
    schemas = client.get("/api/v1/openapi.json").get_json()["components"]["schemas"]
    field = schemas["CheckInIn"]["properties"]["pgic"]

    integer = next(s for s in field["anyOf"] if s.get("type") == "integer")
    assert (integer["minimum"], integer["maximum"]) == (1, 7)
    assert "6 days" in integer["description"]
    assert "pgic" in schemas["CheckInOut"]["properties"]


# --- the check-in page ----------------------------------------------------------------------------


def checkin_page(client) -> str:
    return client.get("/me/check-in").get_data(as_text=True)


def test_the_day_7_reminder_opens_the_check_in_page_that_asks_it(on_day, now):
    client = on_day(7)
    assert NOTICES[DAY_7].path == "/me/check-in"

    page = checkin_page(client)

    assert '<fieldset class="choices pgic' in page
    assert "<legend>Compared with before this visit, how is your usual pain now?</legend>" in page
    assert page.count('name="pgic" type="radio"') == 7
    assert "Very much better" in page and "Very much worse" in page


def test_before_day_6_the_question_is_not_shown(on_day, now):
    page = checkin_page(on_day(1))
    assert 'name="pgic"' not in page


def test_it_is_asked_in_spanish(on_day, now):
    client = on_day(7)
    client.visit.patient.language = "es"
    db.session.commit()

    page = client.get("/me/check-in", headers={"Accept-Language": "es"}).get_data(as_text=True)

    assert "¿cómo está ahora tu dolor habitual?" in page
    assert "Mucho mejor" in page


def form_data(client, **changes: str) -> dict[str, Any]:
    page = checkin_page(client)
    client_id = page.split('name="client_id" type="hidden" value="')[1].split('"')[0]
    data = {"csrf_token": csrf_from(page), "client_id": client_id, "soreness": "1"}
    data.update(changes)
    return data


def test_the_form_without_javascript_stores_the_answer(on_day, now):
    client = on_day(7)

    response = client.post("/me/check-in", data=form_data(client, pgic="2"))

    assert response.status_code == 303
    assert db.session.scalar(select(CheckIn.pgic)) == 2


def test_the_form_stores_no_answer_when_none_is_chosen(on_day, now):
    client = on_day(7)
    assert client.post("/me/check-in", data=form_data(client)).status_code == 303
    assert db.session.scalar(select(CheckIn.pgic)) is None


def test_a_form_answer_before_day_6_stores_nothing_and_says_to_send_again(on_day, now):
    client = on_day(2)

    response = client.post("/me/check-in", data=form_data(client, pgic="2"))

    assert response.status_code == 422
    assert "please press Send again" in response.get_data(as_text=True)
    assert count() == 0


def test_an_answer_off_the_scale_is_refused_by_the_form(on_day, now):
    client = on_day(7)
    response = client.post("/me/check-in", data=form_data(client, pgic="9"))
    assert response.status_code == 422
    assert count() == 0


def test_the_page_tells_the_script_from_when_to_send_it(on_day, now):
    page = checkin_page(on_day(7))
    assert '"pgic_from_hours": 144.0' in page or '"pgic_from_hours":144.0' in page


# --- shown to the therapist -----------------------------------------------------------------------


def test_the_visit_page_shows_the_answer_in_words(on_day, make_therapist, now):
    client = on_day(7)
    client.post("/api/v1/checkins", json=body(now, pgic=2))
    visit = client.visit
    sign_in(client, make_therapist(visit.clinic).email)

    page = client.get(f"/visits/{visit.id}").get_data(as_text=True)

    assert "Change since the visit: much improved (2/7)" in page
