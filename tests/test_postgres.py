"""The same contract on PostgreSQL (CI sets TEST_DATABASE_URL): migrations, UTC round trips,
idempotent check-ins under concurrent replays."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select

from companion.extensions import db
from companion.models import CheckIn, Visit

pytestmark = pytest.mark.postgres


def test_visits_round_trip_as_utc_on_postgres(client, make_clinic, make_api_key):
    key = make_api_key(make_clinic())
    body = {
        "patient": {
            "ref": "PG-1",
            "display_name": "Ana",
            "timezone": "America/New_York",
            "language": "en",
        },
        "performed_at": "2026-11-21T10:00:00-05:00",
        "regions": ["low_back"],
    }
    response = client.post("/api/v1/visits", json=body, headers={"Authorization": f"Bearer {key}"})
    assert response.status_code == 201
    visit = db.session.get(Visit, uuid.UUID(response.get_json()["visit_id"]))
    assert visit.performed_at == datetime(2026, 11, 21, 15, 0, tzinfo=UTC)
    assert visit.performed_at.tzinfo is not None


def test_concurrent_replays_of_one_checkin_store_it_once(app, make_clinic, make_visit, now):
    visit = make_visit(make_clinic())
    clients = [app.test_client() for _ in range(6)]
    for c in clients:
        assert c.get(visit.url).status_code == 303
    body = {"id": str(uuid.uuid4()), "recorded_at": now.isoformat(), "soreness": 5}

    with ThreadPoolExecutor(max_workers=6) as pool:
        statuses = list(
            pool.map(lambda c: c.post("/api/v1/checkins", json=body).status_code, clients)
        )

    assert sorted(statuses) == [200, 200, 200, 200, 200, 201]
    assert db.session.scalar(select(func.count()).select_from(CheckIn)) == 1
