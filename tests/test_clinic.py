"""Therapist pages: sign-in and timeouts, patient list, recording a visit, the patient link."""

from __future__ import annotations

import json
import re
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from companion.auth import hash_password
from companion.care import stretches
from companion.care.regions import BY_CODE as REGIONS
from companion.extensions import db
from companion.models import AuditEvent, CheckIn, Clinic, Patient, Therapist, Visit

from .conftest import PASSWORD, build_app, csrf_from, sign_in


def visit_form(client, **changes):
    page = client.get("/visits/new")
    assert page.status_code == 200
    data = {
        "csrf_token": csrf_from(page.get_data(as_text=True)),
        "ref": "R-100",
        "display_name": "Maria",
        "timezone": "Europe/Madrid",
        "language": "es",
        "performed_at": "2026-11-20T17:30",
        "regions": ["neck", "upper_back"],
        "insertions": "6",
        "first_visit": "y",
        "notes": "trigger points in upper trapezius",
    }
    data.update(changes)
    return client.post("/visits/new", data=data)


def test_sign_in_with_the_right_password_opens_the_patient_list(
    client, make_clinic, make_therapist
):
    therapist = make_therapist(make_clinic("Sunrise Physio"))
    response = sign_in(client, therapist.email)
    assert response.status_code == 302 and response.headers["Location"] == "/"
    assert "Sunrise Physio" in client.get("/patients").get_data(as_text=True)


def test_a_wrong_password_is_refused_with_a_message(client, make_clinic, make_therapist):
    therapist = make_therapist(make_clinic())
    response = sign_in(client, therapist.email, "wrong password")
    assert response.status_code == 200
    assert "do not match" in response.get_data(as_text=True)
    assert client.get("/patients").status_code == 302


def test_sign_in_without_a_csrf_token_is_refused(client, make_clinic, make_therapist):
    therapist = make_therapist(make_clinic())
    response = client.post("/sign-in", data={"email": therapist.email, "password": PASSWORD})
    assert response.status_code == 400
    assert client.get("/patients").status_code == 302


def test_sign_in_is_rate_limited(tmp_path):
    from .conftest import build_app

    app = build_app(tmp_path, RATELIMIT_ENABLED=True, SIGN_IN_RATE_LIMIT="3 per minute")
    client = app.test_client()
    with app.app_context():
        statuses = [sign_in(client, "nobody@example.org", "x").status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]


def test_wrong_passwords_throttle_their_account_and_no_other_behind_the_same_address(tmp_path, now):
    app = build_app(
        tmp_path,
        RATELIMIT_ENABLED=True,
        SIGN_IN_RATE_LIMIT="100 per minute",
        SIGN_IN_ACCOUNT_LIMIT="3 per 15 minutes",
    )
    client = app.test_client()  # one address for everyone
    with app.app_context():
        clinic = Clinic(name="Harbour Physio", timezone="Europe/Madrid")
        db.session.add(clinic)
        db.session.flush()
        for email in ("ana@h.example", "ben@h.example"):
            db.session.add(
                Therapist(clinic_id=clinic.id, email=email, password_hash=hash_password(PASSWORD))
            )
        db.session.commit()

        wrong = [sign_in(client, "ana@h.example", "not her password").status_code for _ in range(4)]
        # The limit is reached: even Ana's right password waits, with the same words whether or
        # not the account exists.
        locked = sign_in(client, "ana@h.example")
        stranger = [sign_in(client, "nobody@h.example", "guess").status_code for _ in range(4)]
        # Ben, behind the same address, signs in at once.
        ben = sign_in(client, "ben@h.example")

        assert wrong == [200, 200, 200, 429]
        assert locked.status_code == 429
        assert "Too many attempts for this account" in locked.get_data(as_text=True)
        assert stranger == [200, 200, 200, 429]
        assert ben.status_code == 302

        db.session.remove()
        db.engine.dispose()


def test_pages_need_a_signed_in_therapist(client):
    for path in ("/patients", "/visits/new"):
        response = client.get(path)
        assert response.status_code == 302 and "/sign-in" in response.headers["Location"]


def test_an_idle_session_is_signed_out(client, make_clinic, make_therapist, now):
    sign_in(client, make_therapist(make_clinic()).email)
    with client.session_transaction() as session:
        session["last_seen"] = now.timestamp() - 31 * 60
    response = client.get("/patients")
    assert response.status_code == 302 and "/sign-in" in response.headers["Location"]


def test_a_session_ends_after_the_absolute_timeout_even_when_active(
    client, make_clinic, make_therapist, now
):
    sign_in(client, make_therapist(make_clinic()).email)
    with client.session_transaction() as session:
        session["signed_in_at"] = now.timestamp() - 12 * 3600 - 1
    assert client.get("/patients").status_code == 302


def test_sign_out_ends_the_session(client, make_clinic, make_therapist):
    sign_in(client, make_therapist(make_clinic()).email)
    page = client.get("/patients").get_data(as_text=True)
    client.post("/sign-out", data={"csrf_token": csrf_from(page)})
    assert client.get("/patients").status_code == 302


def test_recording_a_visit_shows_the_link_and_qr_until_sign_out(
    client, make_clinic, make_therapist
):
    therapist = make_therapist(make_clinic())
    sign_in(client, therapist.email)
    response = visit_form(client)
    assert response.status_code == 303
    visit = db.session.scalar(select(Visit))
    assert visit.regions == ["neck", "upper_back"] and visit.insertions == 6
    assert visit.first_visit is True and visit.electrical_stimulation is False
    # 17:30 in Madrid on 20 November (UTC+1) is 16:30 UTC.
    assert visit.performed_at.isoformat() == "2026-11-20T16:30:00+00:00"
    assert db.session.scalar(select(Patient)).language == "es"

    page = client.get(response.headers["Location"]).get_data(as_text=True)
    url = re.search(r'value="(http://companion\.test/p/[^"]+)"', page).group(1)
    assert "<svg" in page
    # Leaving the page does not lose it (issue 13); signing out does.
    again = client.get(response.headers["Location"]).get_data(as_text=True)
    assert url in again and "<svg" in again
    client.post("/sign-out", data={"csrf_token": csrf_from(again)})
    sign_in(client, therapist.email)
    later = client.get(response.headers["Location"]).get_data(as_text=True)
    assert url not in later and "<svg" not in later

    patient = db.session.get(Visit, visit.id)
    assert patient is not None
    redeemed = client.get(url.removeprefix("http://companion.test"))
    assert redeemed.status_code == 303


def test_reissuing_the_link_revokes_the_old_one(client, make_clinic, make_therapist):
    sign_in(client, make_therapist(make_clinic()).email)
    location = visit_form(client).headers["Location"]
    page = client.get(location).get_data(as_text=True)
    old = re.search(r'value="http://companion\.test(/p/[^"]+)"', page).group(1)
    again = client.get(location).get_data(as_text=True)
    response = client.post(f"{location}/link", data={"csrf_token": csrf_from(again)})
    assert response.status_code == 303
    page = client.get(location).get_data(as_text=True)
    new = re.search(r'value="http://companion\.test(/p/[^"]+)"', page).group(1)
    assert new != old
    assert client.get(old).status_code == 404
    assert client.get(new).status_code == 303


def test_revoking_the_link_locks_the_patient_out(client, app, make_clinic, make_therapist):
    sign_in(client, make_therapist(make_clinic()).email)
    location = visit_form(client).headers["Location"]
    page = client.get(location).get_data(as_text=True)
    link = re.search(r'value="http://companion\.test(/p/[^"]+)"', page).group(1)
    phone = app.test_client()
    assert phone.get(link).status_code == 303
    assert phone.get("/me/").status_code == 200
    client.post(f"{location}/link/revoke", data={"csrf_token": csrf_from(page)})
    assert phone.get("/me/").status_code == 401
    assert "no active link" in client.get(location).get_data(as_text=True).lower()


def test_a_visit_time_inside_a_dst_gap_is_refused(client, make_clinic, make_therapist):
    sign_in(client, make_therapist(make_clinic()).email)
    # Clocks in Madrid jumped from 02:00 to 03:00 on 29 March 2026.
    response = visit_form(client, performed_at="2026-03-29T02:30")
    assert response.status_code == 422
    assert "does not exist" in response.get_data(as_text=True)
    assert db.session.scalar(select(func.count()).select_from(Visit)) == 0


def test_bad_visit_form_input_is_a_422_with_messages(client, make_clinic, make_therapist):
    sign_in(client, make_therapist(make_clinic()).email)
    response = visit_form(client, timezone="Nowhere/Land", regions=[], insertions="-3")
    text = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "Choose a time zone" in text and "at least one region" in text
    assert db.session.scalar(select(func.count()).select_from(Visit)) == 0


def test_the_patient_list_shows_each_patients_latest_checkin(
    client, app, make_clinic, make_therapist, make_visit, now
):
    clinic = make_clinic()
    sign_in(client, make_therapist(clinic).email)
    first = make_visit(clinic, name="Bea")
    make_visit(clinic, name="Carl")
    phone = app.test_client()
    phone.get(first.url)
    # After the visit (3 h before `now`), the later one sent first.
    for score, hours in ((3, 1), (6, 2)):
        at = (now - timedelta(hours=hours)).isoformat()
        phone.post(
            "/api/v1/checkins",
            json={
                "id": f"00000000-0000-4000-8000-00000000000{score}",
                "recorded_at": at,
                "soreness": score,
            },
        )
    page = client.get("/patients").get_data(as_text=True)
    bea_row = page[page.index("Bea") : page.index("Carl")]
    assert "soreness 3/10" in bea_row and "soreness 6/10" not in bea_row
    assert "none yet" in page[page.index("Carl") :]


def test_therapists_only_see_their_own_clinic(client, make_clinic, make_therapist, make_visit):
    mine, theirs = make_clinic(), make_clinic()
    sign_in(client, make_therapist(mine).email)
    other = make_visit(theirs, name="Zed")
    assert client.get(f"/visits/{other.visit.id}").status_code == 404
    assert "Zed" not in client.get("/patients").get_data(as_text=True)


def test_viewing_a_visit_is_audited(client, make_clinic, make_therapist, make_visit):
    clinic = make_clinic()
    therapist = make_therapist(clinic)
    sign_in(client, therapist.email)
    visit = make_visit(clinic)
    client.get(f"/visits/{visit.visit.id}")
    event = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "visit.view"))
    assert event.actor_id == str(therapist.id) and event.target_id == str(visit.visit.id)


def test_the_therapist_sees_the_patients_checkin_on_the_visit_page(
    client, app, make_clinic, make_therapist, make_visit, now
):
    clinic = make_clinic()
    sign_in(client, make_therapist(clinic).email)
    visit = make_visit(clinic)
    phone = app.test_client()
    phone.get(visit.url)
    phone.post(
        "/api/v1/checkins",
        json={
            "id": "11111111-1111-4111-8111-111111111111",
            "recorded_at": now.isoformat(),
            "soreness": 7,
            "note": 'tight, "hot" <b>',
        },
    )
    page = client.get(f"/visits/{visit.visit.id}").get_data(as_text=True)
    assert "7/10" in page
    assert "&lt;b&gt;" in page  # notes are escaped, never rendered as HTML
    assert db.session.scalar(select(func.count()).select_from(CheckIn)) == 1


def test_the_patient_list_uses_the_same_number_of_queries_for_more_patients(
    client, app, make_clinic, make_therapist, make_visit
):
    from sqlalchemy import event

    clinic = make_clinic()
    sign_in(client, make_therapist(clinic).email)

    def queries_for_list() -> int:
        seen: list[str] = []

        def count(conn, cursor, statement, *args):  # type: ignore[no-untyped-def]
            seen.append(statement)

        event.listen(db.engine, "before_cursor_execute", count)
        try:
            assert client.get("/patients").status_code == 200
        finally:
            event.remove(db.engine, "before_cursor_execute", count)
        return len(seen)

    make_visit(clinic)
    few = queries_for_list()
    for _ in range(5):
        make_visit(clinic)
    assert queries_for_list() == few


# --- stretches chosen per visit ----------------------------------------------------------------------


def test_a_visit_with_no_stretch_ticked_gets_its_regions_defaults(
    client, make_clinic, make_therapist
):
    sign_in(client, make_therapist(make_clinic()).email)
    visit_form(client, regions=["calf", "forearm"])
    visit = db.session.scalar(select(Visit))
    assert visit.stretches == stretches.defaults_for(["calf", "forearm"])
    assert "calf_wall" in visit.stretches and "wrist_extensor" in visit.stretches


def test_the_therapists_choice_of_stretches_is_kept_exactly(client, make_clinic, make_therapist):
    sign_in(client, make_therapist(make_clinic()).email)
    visit_form(client, regions=["calf"], stretches=["plantar_fascia", "chin_tuck"])
    assert db.session.scalar(select(Visit)).stretches == ["plantar_fascia", "chin_tuck"]


def test_no_stretches_can_be_chosen_on_purpose(client, make_clinic, make_therapist):
    sign_in(client, make_therapist(make_clinic()).email)
    visit_form(client, regions=["calf"], no_stretches="y")
    assert db.session.scalar(select(Visit)).stretches == []


def test_an_unknown_stretch_is_refused_and_nothing_is_stored(client, make_clinic, make_therapist):
    sign_in(client, make_therapist(make_clinic()).email)
    response = visit_form(client, stretches=["cartwheel"])
    assert response.status_code == 422
    assert db.session.scalar(select(func.count()).select_from(Visit)) == 0


def test_the_visit_form_tells_the_script_each_regions_default_stretches(
    client, make_clinic, make_therapist
):
    sign_in(client, make_therapist(make_clinic()).email)
    page = client.get("/visits/new").get_data(as_text=True)
    raw = re.search(r'id="stretch-defaults">(.*?)</script>', page, re.S).group(1)
    assert json.loads(raw) == {code: stretches.defaults_for([code]) for code in REGIONS}


def test_patients_are_found_by_reference_or_name_without_the_search_in_the_url(
    client, make_clinic, make_therapist, make_visit
):
    clinic = make_clinic()
    therapist = make_therapist(clinic)
    make_visit(clinic, ref="HX-100", name="Lucía Gómez")
    make_visit(clinic, ref="HX-200", name="Sam Smith")
    make_visit(clinic, ref="50%_OFF", name="Percent Person")
    make_visit(make_clinic(), ref="HX-300", name="Sam Elsewhere")
    sign_in(client, therapist.email)
    token = csrf_from(client.get("/patients").get_data(as_text=True))

    def found(q: str) -> list[str]:
        response = client.post("/patients", data={"q": q, "csrf_token": token})
        assert response.status_code == 200
        html = response.get_data(as_text=True)
        return [
            n for n in ("Lucía Gómez", "Sam Smith", "Percent Person", "Sam Elsewhere") if n in html
        ]

    assert found("hx-2") == ["Sam Smith"]
    assert found("SAM") == ["Sam Smith"]  # never another clinic's patient
    assert found("Gómez") == ["Lucía Gómez"]
    assert found("%") == ["Percent Person"]  # typed wildcards are literal
    assert found("_") == ["Percent Person"]
    assert found("nobody") == []
    assert "No patient matches that search." in client.post(
        "/patients", data={"q": "nobody", "csrf_token": token}
    ).get_data(as_text=True)
    assert client.post("/patients", data={"q": "Sam"}).status_code == 400  # CSRF
    assert client.post("/patients", data={"q": "x" * 101, "csrf_token": token}).status_code == 400


def test_the_account_throttle_is_shared_by_every_host_through_redis(tmp_path, now):
    """Two app instances (two hosts) sharing one Redis: wrong passwords on one count on the other.
    Skipped when no Redis answers on 127.0.0.1:6379 (it does here and on CI)."""
    import socket

    try:
        socket.create_connection(("127.0.0.1", 6379), timeout=1).close()
    except OSError:
        pytest.skip("Redis does not answer on 127.0.0.1:6379")
    import redis

    prefix = f"test-{uuid.uuid4().hex}"
    settings = {
        "RATELIMIT_ENABLED": True,
        "RATELIMIT_STORAGE_URI": "redis://127.0.0.1:6379/0",
        "RATELIMIT_KEY_PREFIX": prefix,  # this test's keys only
        "SIGN_IN_RATE_LIMIT": "100 per minute",
        "SIGN_IN_ACCOUNT_LIMIT": "3 per 15 minutes",
    }
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    first = build_app(tmp_path / "one", **settings)
    second = build_app(tmp_path / "two", **settings)
    try:
        with first.app_context():
            hosts = [first.test_client(), second.test_client()]
            statuses = [
                sign_in(hosts[n % 2], "ana@h.example", "wrong").status_code for n in range(4)
            ]
        assert statuses == [200, 200, 200, 429]
    finally:
        client = redis.Redis(host="127.0.0.1", port=6379)
        for key in client.scan_iter(f"*{prefix}*"):
            client.delete(key)
