"""Issue 14, findings 2 and 9: check-in times within the visit and the clock's reach, lists of codes
without duplicates, at most MAX_CHECKINS_PER_VISIT check-ins per visit, a chart bounded by the
episode, and triage that reads only the earlier scores it needs."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import event, func, select

from companion.care.chart import soreness_chart
from companion.care.clinic_rules import rules_for
from companion.care.helped import HELPED
from companion.care.regions import BY_CODE as REGIONS
from companion.care.triage import SYMPTOMS, EarlierScore, triage
from companion.checkins.store import (
    CLOCK_SKEW,
    MAX_CHECKINS_PER_VISIT,
    CheckInDetails,
    submit_checkin,
)
from companion.extensions import db
from companion.models import CheckIn, Visit
from companion.timeutil import hours_since
from tests.conftest import NOW, sign_in
from tests.test_api import VISIT, checkin_body, post_visit
from tests.test_clinic import visit_form
from tests.test_patient import form_data, open_link


def count_checkins() -> int:
    return db.session.scalar(select(func.count()).select_from(CheckIn))


def at(moment: datetime) -> str:
    return moment.isoformat()


def store_directly(visit: Visit, moments: list[datetime], soreness: int = 2) -> None:
    """Rows as an older server (or a bulk import) left them, without today's checks."""
    db.session.add_all(
        CheckIn(
            patient_id=visit.patient_id,
            visit_id=visit.id,
            client_id=uuid.uuid4(),
            recorded_at=moment,
            received_at=NOW,
            soreness=soreness,
            symptoms=[],
            helped=[],
            triage="green",
            triage_reasons=[],
            body_digest="0" * 64,
        )
        for moment in moments
    )
    db.session.commit()


# --- finding 2: check-in times ------------------------------------------------------------------


def test_a_checkin_recorded_up_to_the_allowed_skew_ahead_is_stored(patient_client):
    body = checkin_body(recorded_at=at(NOW + CLOCK_SKEW))
    assert patient_client.post("/api/v1/checkins", json=body).status_code == 201


@pytest.mark.parametrize("ahead", [CLOCK_SKEW + timedelta(seconds=1), timedelta(days=365 * 73)])
def test_a_checkin_recorded_in_the_future_is_a_422_and_stores_nothing(patient_client, ahead):
    body = checkin_body(recorded_at=at(NOW + ahead))
    response = patient_client.post("/api/v1/checkins", json=body)
    assert response.status_code == 422
    error = response.get_json()["error"]
    assert (error["code"], error["field"]) == ("recorded_in_future", "recorded_at")
    assert "5 minutes" in error["message"]
    assert count_checkins() == 0


def test_a_checkin_recorded_before_the_visit_is_a_422_and_stores_nothing(patient_client):
    performed = patient_client.visit.performed_at
    allowed = checkin_body(recorded_at=at(performed - CLOCK_SKEW))
    assert patient_client.post("/api/v1/checkins", json=allowed).status_code == 201
    body = checkin_body(recorded_at=at(performed - CLOCK_SKEW - timedelta(seconds=1)))
    response = patient_client.post("/api/v1/checkins", json=body)
    assert response.status_code == 422
    error = response.get_json()["error"]
    assert (error["code"], error["field"]) == ("recorded_before_visit", "recorded_at")
    assert count_checkins() == 1


def test_a_stored_checkin_replays_after_its_visit_moved_later(patient_client):
    """The outbox may resend an acknowledged entry; it must get its stored result, not a 422."""
    body = checkin_body()
    assert patient_client.post("/api/v1/checkins", json=body).status_code == 201
    patient_client.visit.performed_at = NOW + timedelta(hours=1)
    db.session.commit()
    assert patient_client.post("/api/v1/checkins", json=body).status_code == 200


def test_the_form_refuses_a_checkin_for_a_visit_still_to_come_in_the_patients_language(
    client, make_clinic, make_visit, now
):
    open_link(
        client, make_visit(make_clinic(), language="es", performed_at=now + timedelta(hours=2))
    )
    response = client.post("/me/check-in", data=form_data(client))
    assert response.status_code == 422
    text = response.get_data(as_text=True)
    assert "Su visita aún no ha tenido lugar" in text
    assert "Your visit has not happened yet" not in text
    assert count_checkins() == 0


def test_the_openapi_document_states_the_time_limits(client):
    schema = client.get("/api/v1/openapi.json").get_json()["components"]["schemas"]["CheckInIn"]
    description = schema["properties"]["recorded_at"]["description"]
    assert "5 minutes" in description and "performed_at" in description
    assert "recorded_in_future" in description and "recorded_before_visit" in description


def test_future_rows_already_stored_do_not_stretch_the_chart_past_the_episode(
    client, make_clinic, make_therapist, make_visit, now
):
    clinic = make_clinic()
    made = make_visit(clinic, now=now)
    store_directly(made.visit, [now - timedelta(hours=1)], soreness=3)
    store_directly(made.visit, [datetime(2099, 1, 1, tzinfo=UTC)], soreness=0)
    sign_in(client, make_therapist(clinic).email)
    page = client.get(f"/visits/{made.visit.id}").get_data(as_text=True)
    svg = page[page.index("<svg") : page.index("</svg>")]
    assert svg.count('class="chart-label"') < 20  # a handful of day ticks, not one per day to 2099
    assert len(page) < 200_000
    # The chart's latest score is the real one, not the row from 2099.
    assert "Latest score: 3 out of 10, 2 hours after the visit." in svg
    open_link(client, made)
    history = client.get("/me/check-ins").get_data(as_text=True)
    assert len(history) < 200_000
    assert "Latest score: 3 out of 10" in history


def test_the_chart_never_draws_more_than_a_few_ticks():
    visit = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
    scores = [(visit + timedelta(days=days), 1) for days in (1, 3, 90)]
    chart = soreness_chart(visit, scores, until=visit + timedelta(days=120))
    assert chart.span_hours >= 90 * 24
    assert len(chart.x_ticks) <= 11
    assert [t.value for t in chart.x_ticks] == sorted(t.value for t in chart.x_ticks)
    beyond = soreness_chart(visit, scores, until=visit + timedelta(days=8))
    assert beyond.span_hours <= 9 * 24 and len(beyond.points) == 2


# --- finding 9: bounded lists -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("symptoms", ["headache", "tired", "headache"]),
        ("helped", ["heat"] * 5000),
    ],
)
def test_a_checkin_listing_a_code_twice_is_a_422(patient_client, field, value):
    response = patient_client.post("/api/v1/checkins", json=checkin_body(**{field: value}))
    assert response.status_code == 422
    error = response.get_json()["error"]
    assert error["code"] in ("duplicate_item", "too_long") and error["field"] == field
    assert count_checkins() == 0


@pytest.mark.parametrize(
    ("field", "value"), [("regions", ["neck"] * 5000), ("stretches", ["chin_tuck", "chin_tuck"])]
)
def test_a_visit_listing_a_code_twice_is_a_422(client, key_for_api, field, value):
    response = post_visit(client, key_for_api, dict(VISIT, **{field: value}))
    assert response.status_code == 422
    error = response.get_json()["error"]
    assert error["code"] in ("duplicate_item", "too_long") and error["field"] == field
    assert db.session.scalar(select(func.count()).select_from(Visit)) == 0


def test_a_checkin_with_every_code_once_is_stored(patient_client):
    body = checkin_body(symptoms=[], helped=list(HELPED))
    assert patient_client.post("/api/v1/checkins", json=body).status_code == 201


def test_the_openapi_document_bounds_the_lists(client):
    schemas = client.get("/api/v1/openapi.json").get_json()["components"]["schemas"]
    for model, field, known in [
        ("CheckInIn", "symptoms", len(SYMPTOMS)),
        ("CheckInIn", "helped", len(HELPED)),
        ("VisitIn", "regions", len(REGIONS)),
    ]:
        prop = schemas[model]["properties"][field]
        array = next((s for s in prop.get("anyOf", [prop]) if s.get("type") == "array"), prop)
        assert array["uniqueItems"] is True, (model, field)
        assert array["maxItems"] == known, (model, field)


def test_the_checkin_form_refuses_a_code_sent_twice(client, make_clinic, make_visit):
    open_link(client, make_visit(make_clinic(), language="es"))
    data = form_data(client)
    data["helped"] = ["heat", "heat"]
    response = client.post("/me/check-in", data=data)
    assert response.status_code == 422
    assert "Cada opción solo se puede marcar una vez." in response.get_data(as_text=True)
    assert count_checkins() == 0


def test_the_visit_form_refuses_a_region_sent_twice(client, make_clinic, make_therapist):
    sign_in(client, make_therapist(make_clinic()).email)
    response = visit_form(client, regions=["neck"] * 50)
    assert response.status_code == 422
    assert "Each choice can be given only once." in response.get_data(as_text=True)
    assert db.session.scalar(select(func.count()).select_from(Visit)) == 0


# --- finding 9: at most MAX_CHECKINS_PER_VISIT per visit ----------------------------------------


def fill_visit(visit: Visit) -> None:
    start = visit.performed_at + timedelta(minutes=1)
    store_directly(visit, [start + timedelta(seconds=i) for i in range(MAX_CHECKINS_PER_VISIT)])


def test_a_full_visit_answers_429_and_stores_nothing(patient_client):
    body = checkin_body()
    assert patient_client.post("/api/v1/checkins", json=body).status_code == 201
    fill_visit(patient_client.visit)
    before = count_checkins()
    response = patient_client.post("/api/v1/checkins", json=checkin_body())
    assert response.status_code == 429
    error = response.get_json()["error"]
    assert error["code"] == "too_many_checkins"
    assert str(MAX_CHECKINS_PER_VISIT) in error["message"]
    assert count_checkins() == before
    # An entry already stored still gets its stored result: the outbox must be able to clear it.
    replay = patient_client.post("/api/v1/checkins", json=body)
    assert replay.status_code == 200 and replay.get_json()["id"] == body["id"]


def test_a_full_visit_refuses_the_form_in_the_patients_language(client, make_clinic, make_visit):
    made = make_visit(make_clinic(), language="es")
    open_link(client, made)
    fill_visit(made.visit)
    response = client.post("/me/check-in", data=form_data(client))
    assert response.status_code == 429
    text = response.get_data(as_text=True)
    assert f"Esta visita ya tiene {MAX_CHECKINS_PER_VISIT} registros" in text
    assert count_checkins() == MAX_CHECKINS_PER_VISIT


def test_the_openapi_document_states_the_429(client):
    paths = client.get("/api/v1/openapi.json").get_json()["paths"]
    answer = paths["/api/v1/checkins"]["post"]["responses"]["429"]
    assert str(MAX_CHECKINS_PER_VISIT) in answer["description"]


# --- finding 9: triage reads only what it needs -------------------------------------------------


def _where(statement: str) -> str:
    return statement.partition("WHERE")[2]


def test_triage_reads_a_few_earlier_scores_not_every_one(app, make_clinic, make_visit, now):
    visit = make_visit(make_clinic(), performed_at=now - timedelta(hours=40), now=now).visit
    store_directly(
        visit, [visit.performed_at + timedelta(minutes=5 + i) for i in range(150)], soreness=1
    )
    fetched: list[str] = []

    def remember(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        fetched.append(statement)

    engine = db.engine
    event.listen(engine, "after_cursor_execute", remember)
    try:
        details = CheckInDetails(uuid.uuid4(), now, 4, None, [], [], None)
        submit_checkin(visit, details, now=now)
    finally:
        event.remove(engine, "after_cursor_execute", remember)
    # Every read of the visit's check-ins asks for a bounded number of rows (or a count).
    # (The lookup of a replay by its unique (patient, client id) finds one row at most.)
    reads = [s for s in fetched if "FROM checkin" in s and "checkin.visit_id" in _where(s)]
    assert reads, fetched
    assert all("LIMIT" in s or "count(" in s.lower() for s in reads), [
        s for s in reads if "LIMIT" not in s and "count(" not in s.lower()
    ]


def test_triage_with_the_few_scores_it_reads_matches_triage_with_all_of_them(
    app, make_clinic, make_visit
):
    """Entries arrive in any order (an outbox sends late ones): each is judged against the scores
    recorded before it, exactly as when triage was given every earlier score of the visit."""
    rng = random.Random(14)  # noqa: S311 - a fixed order of test data, not a secret
    clinic = make_clinic()
    rules = rules_for(clinic)
    for _ in range(12):
        performed = NOW - timedelta(days=5)
        visit = make_visit(clinic, performed_at=performed, now=performed).visit
        # Distinct moments: two entries of the same microsecond have no order to keep.
        moments = sorted(performed + timedelta(hours=h) for h in rng.sample(range(110), 12))
        entries = [(m, rng.randint(0, 10)) for m in moments]
        arrival = entries[:]
        rng.shuffle(arrival)
        stored: list[tuple[datetime, int]] = []
        for moment, score in arrival:
            expected = triage(
                score,
                [],
                hours_since(performed, moment),
                [EarlierScore(hours_since(performed, a), s) for a, s in stored],
                rules,
            )
            details = CheckInDetails(uuid.uuid4(), moment, score, None, [], [], None)
            checkin, _created = submit_checkin(visit, details, now=NOW)
            assert (checkin.triage, checkin.triage_reasons) == (expected.level, expected.keys)
            stored.append((moment, score))
        db.session.commit()


@pytest.fixture
def key_for_api(make_clinic, make_api_key) -> str:
    return make_api_key(make_clinic())
