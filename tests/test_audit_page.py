"""The audit page (issue 5): the clinic's therapists see who viewed, changed or exported what, when
and from where; only their own clinic; newest first, in pages."""

from __future__ import annotations

import html
import uuid
from datetime import UTC, datetime, timedelta

from companion import audit
from companion.extensions import db
from tests.conftest import sign_in


def test_the_audit_page_lists_views_changes_and_exports(
    client, make_clinic, make_therapist, make_visit, make_api_key
):
    clinic = make_clinic()
    therapist = make_therapist(clinic, email="lena@example.org")
    visit = make_visit(clinic).visit
    key = make_api_key(clinic)
    sign_in(client, therapist.email)
    client.get(f"/visits/{visit.id}")
    client.get(
        "/api/v1/checkins.csv?from=2026-11-01&to=2026-11-02",
        headers={"Authorization": f"Bearer {key}"},
    )

    page = client.get("/audit").get_data(as_text=True)

    assert "Viewed a visit" in page and "lena@example.org" in page
    assert "Exported check-ins as CSV" in page and f"API key {key[:10]}" in page
    assert "2026-11-01 – 2026-11-02, 0 rows" in page
    assert f'href="/visits/{visit.id}"' in page
    assert "127.0.0.1" in page
    # Newest first: the export came after the view.
    assert page.index("Exported check-ins") < page.index("Viewed a visit")


def test_another_clinics_events_are_not_shown(client, make_clinic, make_therapist, now):
    mine, theirs = make_clinic(), make_clinic()
    audit.record("visit.view", audit.Actor(audit.THERAPIST, "x", theirs.id), now=now)
    db.session.commit()
    sign_in(client, make_therapist(mine).email)

    response = client.get("/audit")
    assert response.status_code == 200 and "Audit" in response.get_data(as_text=True)
    assert "Viewed a visit" not in response.get_data(as_text=True)


def test_older_entries_come_a_page_at_a_time(client, make_clinic, make_therapist):
    clinic = make_clinic()
    start = datetime(2026, 11, 1, tzinfo=UTC)
    for i in range(105):
        audit.record(
            "visit.view",
            audit.Actor(audit.THERAPIST, uuid.uuid4(), clinic.id),
            now=start + timedelta(minutes=i),
        )
    db.session.commit()
    sign_in(client, make_therapist(clinic).email)

    first = client.get("/audit").get_data(as_text=True)
    link = first.split('href="/audit?before=')[1].split('"')[0]
    second = client.get("/audit?before=" + html.unescape(link))  # the href, as a browser follows it

    # The sign-in itself is not an audit event; 105 views: 100, then the 5 oldest.
    assert first.count("Viewed a visit") == 100
    assert second.get_data(as_text=True).count("Viewed a visit") == 5


def test_a_malformed_page_position_is_a_400(client, make_clinic, make_therapist):
    sign_in(client, make_therapist(make_clinic()).email)
    assert client.get("/audit?before=yesterday").status_code == 400
    assert client.get("/audit?before=2026-11-01T10:00:00").status_code == 400  # no offset


def _audited_address(app, make_clinic, make_therapist) -> str | None:  # type: ignore[no-untyped-def]
    from sqlalchemy import select

    from companion.models import AuditEvent

    client = app.test_client()
    sign_in(client, make_therapist(make_clinic()).email)
    forwarded = {"X-Forwarded-For": "203.0.113.5", "X-Forwarded-Proto": "https"}
    assert client.get("/patients", headers=forwarded).status_code == 200
    event = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "patient.list")).one()
    return event.ip


def test_behind_the_operators_proxy_the_audit_records_the_clients_address(
    tmp_path, make_clinic, make_therapist
):
    from tests.conftest import build_app

    app = build_app(tmp_path, PROXY_COUNT=1)
    with app.app_context():
        assert _audited_address(app, make_clinic, make_therapist) == "203.0.113.5"
        db.session.remove()
        db.engine.dispose()


def test_without_a_proxy_a_forged_forwarded_header_is_ignored(app, make_clinic, make_therapist):
    assert _audited_address(app, make_clinic, make_therapist) == "127.0.0.1"
