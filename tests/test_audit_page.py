"""The audit page (issue 5): the clinic's therapists see who viewed, changed or exported what, when
and from where; only their own clinic; newest first, in pages."""

from __future__ import annotations

import html
import re
import uuid
from datetime import UTC, datetime, timedelta

from companion import audit
from companion.extensions import db
from tests.conftest import sign_in

_ROW = re.compile(r"<tr>(.*?)</tr>", re.S)
_CELL = re.compile(r'<td data-label="([^"]+)"[^>]*>(.*?)</td>', re.S)


def rows(page: str) -> list[dict[str, str]]:
    """The audit table's rows, each as {column: text}, in the page's order."""
    body = page.split("<tbody>", 1)[1].split("</tbody>", 1)[0] if "<tbody>" in page else ""
    return [
        {
            label: html.unescape(re.sub(r"<[^>]+>", "", cell)).strip()
            for label, cell in _CELL.findall(row)
        }
        for row in _ROW.findall(body)
    ]


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
    assert [r["What"] for r in rows(first)] == ["Viewed a visit"] * 100
    assert [r["What"] for r in rows(second.get_data(as_text=True))] == ["Viewed a visit"] * 5


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


# --- rows name their object; filters; pages (issue 13) ---------------------------------------------


def _event(clinic, action, actor, target=None, *, at, detail=None):  # type: ignore[no-untyped-def]
    return audit.record(action, actor, target, now=at, detail=detail)


def test_rows_name_their_object_in_the_clinics_words(
    client, make_clinic, make_therapist, make_visit, now
):
    from companion.models import Alert, ApiKey, TherapistDevice

    # Los Angeles: the visit at 05:00 UTC on the 25th was on the 24th for the clinic.
    clinic = make_clinic(timezone="America/Los_Angeles")
    admin = make_therapist(clinic, email="lena@example.org")
    colleague = make_therapist(clinic, email="marta.colleague@example.org")
    colleague.display_name = "Marta Ruiz"
    visit = make_visit(
        clinic, ref="P-77", performed_at=datetime(2026, 11, 25, 5, 0, tzinfo=UTC), now=now
    ).visit
    patient = visit.patient
    key = ApiKey(clinic_id=clinic.id, prefix="ak_Zx81Qp", key_hash="h" * 64, name="Front desk")
    device = TherapistDevice(
        therapist_id=colleague.id,
        endpoint="https://push.example/1",
        p256dh="k",
        auth="a",
        renewal_hash="r" * 64,
        browser="Firefox",
        platform="Android",
    )
    alert = Alert(
        clinic_id=clinic.id,
        visit_id=visit.id,
        dedupe_key=f"checkin:{uuid.uuid4()}",
        kind="checkin",
        level="red",
        reasons=[],
        raised_at=now,
    )
    db.session.add_all([key, device, alert])
    db.session.flush()
    me = audit.Actor.therapist(admin)
    at = now - timedelta(hours=1)
    _event(clinic, "visit.view", me, ("visit", visit.id), at=at)
    _event(clinic, "patient.view", me, ("patient", patient.id), at=at + timedelta(minutes=1))
    _event(clinic, "alert.acknowledge", me, ("alert", alert.id), at=at + timedelta(minutes=2))
    _event(
        clinic,
        "device.renew",
        audit.Actor.device(device),
        ("therapist_device", device.id),
        at=at + timedelta(minutes=3),
    )
    _event(
        clinic,
        "visit.create",
        audit.Actor.api_key(key),
        ("visit", visit.id),
        at=at + timedelta(minutes=4),
    )
    _event(
        clinic,
        "patient.data_download",
        audit.Actor.patient(patient),
        ("patient", patient.id),
        at=at + timedelta(minutes=5),
        detail={"visits": 1, "checkins": 2},
    )
    # What no longer exists: a deleted patient's rows, and an id that was never ours.
    _event(clinic, "patient.view", me, ("patient", uuid.uuid4()), at=at + timedelta(minutes=6))
    _event(clinic, "visit.view", me, ("visit", uuid.uuid4()), at=at + timedelta(minutes=7))
    _event(clinic, "visit.view", me, ("visit", "not-an-id"), at=at + timedelta(minutes=8))
    _event(clinic, "alert.resolve", me, ("alert", uuid.uuid4()), at=at + timedelta(minutes=9))
    _event(clinic, "clinic.settings", audit.Actor.system(clinic.id), at=at + timedelta(minutes=10))
    db.session.commit()
    sign_in(client, admin.email)

    response = client.get("/audit")

    assert response.status_code == 200
    page = response.get_data(as_text=True)
    found = list(reversed(rows(page)))  # oldest first, as written above
    assert [(r["Who"], r["About"]) for r in found] == [
        ("lena@example.org", "visit of patient P-77 on Nov 24, 2026"),
        ("lena@example.org", "patient P-77"),
        ("lena@example.org", "red alert, visit of patient P-77 on Nov 24, 2026"),
        ("a device of Marta Ruiz (Firefox, Android)", "a device of Marta Ruiz (Firefox, Android)"),
        ("API key “Front desk” (ak_Zx81Qp…)", "visit of patient P-77 on Nov 24, 2026"),
        ("patient P-77", "patient P-77"),
        ("lena@example.org", "patient (data deleted)"),
        ("lena@example.org", "visit (deleted)"),
        ("lena@example.org", "visit (deleted)"),
        ("lena@example.org", "alert (deleted)"),
        ("the app", "—"),
    ]
    assert found[5]["What"] == "The patient downloaded their data (1 visit, 2 check-ins)"
    assert f'href="/visits/{visit.id}"' in page and f'href="/patients/{patient.id}"' in page
    assert f'href="/visits/{visit.id}#alerts-h"' in page
    # The reference names the patient; the name stays on the patient's own pages.
    assert "Sam" not in page


def _filtered_clinic(make_clinic, make_therapist, make_api_key, now):  # type: ignore[no-untyped-def]
    """A Madrid clinic with one row per actor at distinct moments; returns (clinic, admin, other,
    key id)."""
    from sqlalchemy import select

    from companion.models import ApiKey

    clinic = make_clinic()
    admin = make_therapist(clinic, email="admin@example.org")
    other = make_therapist(clinic, email="other@example.org")
    make_api_key(clinic)
    key = db.session.scalars(select(ApiKey).where(ApiKey.clinic_id == clinic.id)).one()
    _event(
        clinic,
        "visit.view",
        audit.Actor.therapist(admin),
        at=datetime(2026, 11, 20, 10, 0, tzinfo=UTC),
    )
    # 23:30 UTC on the 22nd is 00:30 on the 23rd in Madrid: the clinic's day counts.
    _event(
        clinic,
        "patient.list",
        audit.Actor.therapist(other),
        at=datetime(2026, 11, 22, 23, 30, tzinfo=UTC),
    )
    _event(
        clinic,
        "export.csv",
        audit.Actor.api_key(key),
        at=datetime(2026, 11, 23, 12, 0, tzinfo=UTC),
        detail={"from": "2026-11-01", "to": "2026-11-02", "rows": 3},
    )
    _event(
        clinic,
        "clinic.settings",
        audit.Actor.system(clinic.id),
        at=datetime(2026, 11, 24, 8, 0, tzinfo=UTC),
    )
    # 23:30 UTC on the 23rd is already the 24th in Madrid.
    _event(
        clinic,
        "visit.view",
        audit.Actor.therapist(other),
        at=datetime(2026, 11, 23, 23, 30, tzinfo=UTC),
    )
    db.session.commit()
    return clinic, admin, other, key


def test_filters_narrow_the_trail_by_action_actor_and_days(
    client, make_clinic, make_therapist, make_api_key, now
):
    _clinic, admin, other, key = _filtered_clinic(make_clinic, make_therapist, make_api_key, now)
    # Another clinic's rows never show, nor do its actions appear among the choices.
    theirs = make_clinic()
    _event(
        theirs, "deletion.confirm", audit.Actor(audit.THERAPIST, uuid.uuid4(), theirs.id), at=now
    )
    db.session.commit()
    sign_in(client, admin.email)

    def shown(query: str) -> list[tuple[str, str]]:
        response = client.get("/audit" + query)
        assert response.status_code == 200, query
        return [(r["What"].split(" (")[0], r["Who"]) for r in rows(response.get_data(as_text=True))]

    everything = client.get("/audit").get_data(as_text=True)
    assert len(rows(everything)) == 5
    # The action choices are the ones that occur here, in words.
    assert '<option value="visit.view">Viewed a visit</option>' in everything
    assert 'value="visit.create"' not in everything and 'value="deletion.confirm"' not in everything
    # The actor choices: the therapists, the key, and the app (no patient acted here).
    assert f'value="therapist:{other.id}"' in everything
    assert f'value="api_key:{key.id}"' in everything
    assert 'value="system"' in everything and 'value="patient"' not in everything

    assert shown("?action=visit.view") == [
        ("Viewed a visit", "other@example.org"),
        ("Viewed a visit", "admin@example.org"),
    ]
    assert shown(f"?actor=therapist:{other.id}") == [
        ("Viewed a visit", "other@example.org"),
        ("Viewed the patient list", "other@example.org"),
    ]
    assert shown(f"?actor=api_key:{key.id}") == [
        ("Exported check-ins as CSV", f"API key {key.prefix}…")
    ]
    assert shown("?actor=system") == [("Changed the clinic settings", "the app")]
    # Days are the clinic's, both ends included.
    assert shown("?from=2026-11-23&to=2026-11-23") == [
        ("Exported check-ins as CSV", f"API key {key.prefix}…"),
        ("Viewed the patient list", "other@example.org"),
    ]
    assert [w for w, _ in shown("?from=2026-11-24")] == [
        "Changed the clinic settings",
        "Viewed a visit",
    ]
    assert [w for w, _ in shown("?to=2026-11-22")] == ["Viewed a visit"]
    assert shown(
        f"?action=visit.view&actor=therapist:{other.id}&from=2026-11-24&to=2026-11-24"
    ) == [("Viewed a visit", "other@example.org")]
    # The form shows what was asked.
    page = client.get("/audit?action=visit.view&from=2026-11-24").get_data(as_text=True)
    assert '<option value="visit.view" selected>' in page and 'value="2026-11-24"' in page
    nothing = client.get("/audit?action=export.csv&from=2026-11-24").get_data(as_text=True)
    assert rows(nothing) == [] and "Nothing recorded matches these filters." in nothing


def test_pages_of_a_filtered_trail_keep_the_filters(client, make_clinic, make_therapist):
    clinic = make_clinic()
    admin = make_therapist(clinic)
    me = audit.Actor.therapist(admin)
    start = datetime(2026, 11, 1, tzinfo=UTC)
    # 105 views, 53 of them at one moment (across the page's edge), among 105 list views.
    for i in range(105):
        moment = start + timedelta(minutes=max(i, 52))
        _event(clinic, "visit.view", me, at=moment)
        _event(clinic, "patient.list", me, at=moment)
    db.session.commit()
    sign_in(client, admin.email)

    first = client.get("/audit?action=visit.view&to=2026-11-30").get_data(as_text=True)
    links = {
        text: html.unescape(href)
        for href, text in re.findall(r'<a href="(/audit\?[^"]+)">([^<]+)</a>', first)
    }
    assert set(links) == {"Older entries"}
    older = links["Older entries"]
    assert "action=visit.view" in older and "to=2026-11-30" in older
    second = client.get(older).get_data(as_text=True)
    assert [r["What"] for r in rows(first)] == ["Viewed a visit"] * 100
    assert [r["What"] for r in rows(second)] == ["Viewed a visit"] * 5
    # Back to the newer page, with the filters still on.
    newer = {
        text: html.unescape(href)
        for href, text in re.findall(r'<a href="(/audit\?[^"]+)">([^<]+)</a>', second)
    }["Newer entries"]
    assert "action=visit.view" in newer and "to=2026-11-30" in newer
    again = client.get(newer).get_data(as_text=True)
    assert rows(again) == rows(first)


def test_bad_filter_values_are_a_400_with_a_message(
    client, make_clinic, make_therapist, make_api_key, now
):
    _clinic, admin, other, _key = _filtered_clinic(make_clinic, make_therapist, make_api_key, now)
    stranger = make_therapist(make_clinic())
    sign_in(client, admin.email)
    for query, message in (
        ("?action=deletion.confirm", "There is no such action in this clinic"),  # never logged here
        ("?action=nope", "There is no such action in this clinic"),
        (f"?actor=therapist:{stranger.id}", "There is no such therapist or API key"),
        ("?actor=therapist:not-an-id", "There is no such therapist or API key"),
        (f"?actor=api_key:{other.id}", "There is no such therapist or API key"),
        ("?actor=robot", "There is no such therapist or API key"),
        ("?from=2026-13-01", "must be a date such as 2026-11-01"),
        ("?to=yesterday", "must be a date such as 2026-11-01"),
        ("?from=1900-01-01", "must be a date such as 2026-11-01"),
        ("?from=2026-11-25&to=2026-11-01", "The first day must not be after the last day"),
        ("?before=2026-11-01T10:00:00%2B00:00&before_id=x", "This page position is not valid"),
        ("?after=2026-11-01T10:00:00%2B00:00", "This page position is not valid"),
    ):
        response = client.get("/audit" + query)
        page = response.get_data(as_text=True)
        assert response.status_code == 400, query
        assert message in html.unescape(page), query
        assert rows(page) == [], query


def test_a_therapist_who_is_not_an_admin_gets_a_403(client, make_clinic, make_therapist):
    from companion.models import Role

    therapist = make_therapist(make_clinic(), role=Role.THERAPIST)
    sign_in(client, therapist.email)
    assert client.get("/audit").status_code == 403
    assert client.get("/audit?action=visit.view").status_code == 403


def test_the_page_asks_the_database_the_same_number_of_times_for_10_or_50_rows(
    client, app, make_clinic, make_therapist, make_visit, now
):
    from sqlalchemy import event

    from companion.models import Alert, TherapistDevice

    def statements_for(count: int) -> tuple[int, int]:
        clinic = make_clinic()
        admin = make_therapist(clinic)
        for i in range(count // 5):
            visit = make_visit(clinic, now=now).visit
            device = TherapistDevice(
                therapist_id=admin.id,
                endpoint=f"https://push.example/{uuid.uuid4()}",
                p256dh="k",
                auth="a",
                renewal_hash=uuid.uuid4().hex,
            )
            alert = Alert(
                clinic_id=clinic.id,
                visit_id=visit.id,
                dedupe_key=f"checkin:{uuid.uuid4()}",
                kind="checkin",
                level="amber",
                reasons=[],
                raised_at=now,
            )
            db.session.add_all([device, alert])
            db.session.flush()
            at = now - timedelta(minutes=i)
            me = audit.Actor.therapist(admin)
            _event(clinic, "visit.view", me, ("visit", visit.id), at=at)
            _event(clinic, "patient.view", me, ("patient", visit.patient_id), at=at)
            _event(clinic, "alert.resolve", me, ("alert", alert.id), at=at)
            _event(
                clinic,
                "device.renew",
                audit.Actor.device(device),
                ("therapist_device", device.id),
                at=at,
            )
            _event(
                clinic,
                "patient.data_download",
                audit.Actor.patient(visit.patient),
                ("patient", visit.patient_id),
                at=at,
            )
        db.session.commit()
        browser = app.test_client()
        sign_in(browser, admin.email)
        seen: list[str] = []

        def count_statement(*args: object) -> None:
            seen.append(str(args[2]))

        event.listen(db.engine, "before_cursor_execute", count_statement)
        try:
            page = browser.get("/audit").get_data(as_text=True)
        finally:
            event.remove(db.engine, "before_cursor_execute", count_statement)
        return len(rows(page)), len(seen)

    ten, fifty = statements_for(10), statements_for(50)
    assert ten[0] == 10 and fifty[0] == 50
    assert ten[1] == fifty[1], (ten, fifty)
    # The session's therapist, the page's choices, the rows, and one query per kind they name.
    assert ten[1] <= 12, ten


def test_every_action_the_code_records_has_words_on_the_audit_page():
    import re
    from pathlib import Path

    from companion.clinic.audit import AUDIT_ACTIONS

    source = "\n".join(p.read_text() for p in Path("companion").rglob("*.py"))
    recorded = set(re.findall(r'record\(\s*"([a-z_]+\.[a-z_]+)"', source))
    assert recorded, "no audit.record call found"
    assert recorded <= set(AUDIT_ACTIONS), sorted(recorded - set(AUDIT_ACTIONS))
