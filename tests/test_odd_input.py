"""Input no real user sends, but a probe or a broken client might: a clear 4xx that changes
nothing, never a 500 (NUL characters PostgreSQL cannot store, dates beyond what UTC can hold)."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import func, select

from companion.extensions import db
from companion.models import CheckIn, Visit

from .conftest import csrf_from, sign_in


@pytest.fixture
def therapist_client(client, make_clinic, make_therapist):  # type: ignore[no-untyped-def]
    clinic = make_clinic()
    sign_in(client, make_therapist(clinic).email)
    return client, clinic


def test_a_nul_character_in_a_check_in_is_a_json_400_and_nothing_is_stored(
    client, make_clinic, make_visit
):
    visit = make_visit(make_clinic())
    client.get(visit.url)
    response = client.post(
        "/api/v1/checkins",
        json={
            "id": str(uuid.uuid4()),
            "recorded_at": "2026-11-21T10:00:00Z",
            "soreness": 3,
            "note": "a\x00b",
        },
    )
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == "nul_character"
    assert db.session.scalar(select(func.count()).select_from(CheckIn)) == 0


def test_a_nul_character_in_a_form_or_a_search_is_a_400_page(therapist_client):
    client, _clinic = therapist_client
    page = client.get("/patients").get_data(as_text=True)
    response = client.post("/patients", data={"csrf_token": csrf_from(page), "q": "x\x00"})
    assert response.status_code == 400
    assert "Something in that request was not right" in response.get_data(as_text=True)
    assert client.get("/audit?before=\x00").status_code == 400


@pytest.mark.parametrize(
    "query",
    [
        "from=9999-12-31&to=9999-12-31",
        "from=0001-01-01&to=0001-01-01",
        "from=1999-12-31&to=2000-01-01",
    ],
)
def test_an_export_of_far_off_days_is_refused(therapist_client, make_api_key, query):
    client, clinic = therapist_client
    assert client.get(f"/exports/checkins.csv?{query}").status_code in (400, 422)
    api = client.get(
        f"/api/v1/checkins.csv?{query}", headers={"Authorization": f"Bearer {make_api_key(clinic)}"}
    )
    assert api.status_code in (400, 422) and "between 2000-01-01 and 2100-12-31" in api.get_data(
        as_text=True
    )


@pytest.mark.parametrize("before", ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00"])
def test_an_audit_page_position_beyond_utc_is_a_400(therapist_client, before):
    client, _clinic = therapist_client
    assert client.get("/audit", query_string={"before": before}).status_code == 400


@pytest.mark.parametrize(
    "moment", ["9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+14:00", "1970-01-01T00:00:00Z"]
)
def test_api_timestamps_beyond_plausible_years_are_a_422(client, make_clinic, make_visit, moment):
    visit = make_visit(make_clinic())
    client.get(visit.url)
    response = client.post(
        "/api/v1/checkins", json={"id": str(uuid.uuid4()), "recorded_at": moment, "soreness": 3}
    )
    assert response.status_code == 422
    assert response.get_json()["error"]["field"] == "recorded_at"
    assert db.session.scalar(select(func.count()).select_from(CheckIn)) == 0


def test_a_visit_in_year_9999_is_a_form_error(therapist_client):
    client, _clinic = therapist_client
    page = client.get("/visits/new").get_data(as_text=True)
    response = client.post(
        "/visits/new",
        data={
            "csrf_token": csrf_from(page),
            "ref": "R-1",
            "display_name": "Max",
            "timezone": "America/Los_Angeles",
            "language": "en",
            "performed_at": "9999-12-31T23:00",
            "regions": ["neck"],
        },
    )
    assert response.status_code == 422
    assert "between the years 2000 and 2100" in response.get_data(as_text=True)
    assert db.session.scalar(select(func.count()).select_from(Visit)) == 0
