"""Patient pages: link redemption, guidance, the no-JavaScript check-in form, history, language."""

from __future__ import annotations

import re
from datetime import timedelta

from sqlalchemy import func, select

from companion.care.stretches import BY_CODE as STRETCHES
from companion.extensions import db
from companion.models import CheckIn

from .conftest import PASSWORD, csrf_from


def open_link(client, visit) -> None:
    response = client.get(visit.url)
    assert response.status_code == 303


def form_data(client, **changes):
    page = client.get("/me/check-in").get_data(as_text=True)
    client_id = page.split('name="client_id" type="hidden" value="')[1].split('"')[0]
    data = {"csrf_token": csrf_from(page), "client_id": client_id, "soreness": "3"}
    data.update(changes)
    return data


def test_opening_the_link_sets_a_strict_cookie_and_drops_the_token(client, make_clinic, make_visit):
    visit = make_visit(make_clinic())
    response = client.get(visit.url)
    assert response.status_code == 303
    assert response.headers["Location"] == "/me/"
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert visit.token not in cookie


def test_an_unknown_link_says_so_without_a_500(client):
    response = client.get("/p/not-a-real-token")
    assert response.status_code == 404
    assert "does not work any more" in response.get_data(as_text=True)


def test_an_expired_link_is_refused(client, make_clinic, make_visit, now):
    long_ago = now - timedelta(days=30)
    visit = make_visit(make_clinic(), performed_at=long_ago, now=long_ago)
    assert client.get(visit.url).status_code == 404


def test_patient_pages_need_the_cookie(client):
    assert client.get("/me/").status_code == 401
    assert client.get("/me/check-in").status_code == 401


def test_the_home_page_gives_guidance_and_the_emergency_signs(client, make_clinic, make_visit):
    open_link(client, make_visit(make_clinic(), name="Noa", regions=["upper_back"]))
    page = client.get("/me/").get_data(as_text=True)
    assert "Hello Noa" in page
    assert "3 hours ago" in page
    assert "shortness of breath" in page
    assert 'href="tel:112"' in page
    assert "Stay well hydrated around your visit" in page and "flush" not in page  # no detox claim
    # Over the lung field the emergency signs come before any reassurance.
    assert page.index("shortness of breath") < page.index("What is normal")


def test_pages_with_health_data_are_not_cached_and_carry_strict_headers(
    client, make_clinic, make_visit
):
    open_link(client, make_visit(make_clinic()))
    response = client.get("/me/check-ins")
    assert response.headers["Cache-Control"] == "no-store"
    csp = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert "unsafe-inline" not in csp
    # Pages tell only our own origin where a request came from; a link with its token, nobody.
    assert response.headers["Referrer-Policy"] == "same-origin"
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_the_checkin_form_works_without_javascript(client, make_clinic, make_visit):
    open_link(client, make_visit(make_clinic()))
    data = form_data(
        client,
        soreness="4",
        usual_pain="2",
        helped=["heat", "movement"],
        note="better after a walk",
    )
    response = client.post("/me/check-in", data=data)
    assert response.status_code == 303
    result = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "looks as expected" in result
    stored = db.session.scalar(select(CheckIn))
    assert (stored.soreness, stored.usual_pain, stored.helped) == (4, 2, ["heat", "movement"])
    assert stored.triage == "green"
    assert "Soreness 4 out of 10" in client.get("/me/check-ins").get_data(as_text=True)


def test_sending_the_same_form_twice_stores_one_checkin(client, make_clinic, make_visit):
    open_link(client, make_visit(make_clinic()))
    data = form_data(client)
    assert client.post("/me/check-in", data=data).status_code == 303
    assert client.post("/me/check-in", data=data).status_code == 303
    assert db.session.scalar(select(func.count()).select_from(CheckIn)) == 1


def test_a_red_flag_opens_the_emergency_screen(client, make_clinic, make_visit):
    open_link(client, make_visit(make_clinic()))
    data = form_data(client, soreness="1", red_flags=["chest_pain"])
    result = client.get(client.post("/me/check-in", data=data).headers["Location"])
    page = result.get_data(as_text=True)
    assert 'role="alert"' in page and 'href="tel:112"' in page
    assert page.index("Call 112 now") < page.index("Saved: soreness")
    assert "looks as expected" not in page


def test_an_amber_answer_asks_to_contact_the_therapist_today(client, make_clinic, make_visit):
    open_link(client, make_visit(make_clinic()))
    data = form_data(client, soreness="9")
    page = client.get(client.post("/me/check-in", data=data).headers["Location"]).get_data(
        as_text=True
    )
    assert "contact your therapist today" in page


def test_a_missing_score_is_a_422_with_a_message_and_stores_nothing(
    client, make_clinic, make_visit
):
    open_link(client, make_visit(make_clinic()))
    data = form_data(client)
    del data["soreness"]
    response = client.post("/me/check-in", data=data)
    assert response.status_code == 422
    assert "Choose a number from 0 to 10" in response.get_data(as_text=True)
    assert db.session.scalar(select(func.count()).select_from(CheckIn)) == 0


def test_an_out_of_range_score_is_refused(client, make_clinic, make_visit):
    open_link(client, make_visit(make_clinic()))
    response = client.post("/me/check-in", data=form_data(client, soreness="11"))
    assert response.status_code == 422
    assert db.session.scalar(select(func.count()).select_from(CheckIn)) == 0


def test_the_checkin_form_needs_its_csrf_token(client, make_clinic, make_visit):
    open_link(client, make_visit(make_clinic()))
    data = form_data(client)
    del data["csrf_token"]
    assert client.post("/me/check-in", data=data).status_code == 400
    assert db.session.scalar(select(func.count()).select_from(CheckIn)) == 0


def test_pages_speak_the_language_of_the_visit(client, make_clinic, make_visit):
    open_link(client, make_visit(make_clinic(), language="es", name="Lucía"))
    page = client.get("/me/").get_data(as_text=True)
    assert '<html lang="es">' in page
    assert "Hola, Lucía" in page
    assert "What is normal" not in page and "Hello" not in page


def test_a_spanish_form_error_is_in_spanish(client, make_clinic, make_visit):
    open_link(client, make_visit(make_clinic(), language="es"))
    data = form_data(client)
    del data["soreness"]
    text = client.post("/me/check-in", data=data).get_data(as_text=True)
    assert "Choose a number" not in text
    assert "0" in text and 'lang="es"' in text


def test_the_patient_can_switch_language(client, make_clinic, make_visit):
    open_link(client, make_visit(make_clinic(), language="es"))
    page = client.get("/me/").get_data(as_text=True)
    response = client.post(
        "/me/language",
        data={"csrf_token": csrf_from(page), "language": "en", "next_page": "/me/check-ins"},
    )
    assert response.status_code == 303 and response.headers["Location"] == "/me/check-ins"
    assert '<html lang="en">' in client.get("/me/").get_data(as_text=True)


def test_the_language_switch_never_redirects_elsewhere(client, make_clinic, make_visit):
    open_link(client, make_visit(make_clinic()))
    page = client.get("/me/").get_data(as_text=True)
    response = client.post(
        "/me/language",
        data={"csrf_token": csrf_from(page), "language": "es", "next_page": "//evil.example/"},
    )
    assert response.headers["Location"] == "/me/"


def test_an_unknown_page_is_a_translated_404(client, make_clinic, make_visit):
    open_link(client, make_visit(make_clinic(), language="es"))
    response = client.get("/me/nothing")
    assert response.status_code == 404
    assert "We could not find" not in response.get_data(as_text=True)


def test_resending_a_changed_form_with_the_same_id_is_refused(client, make_clinic, make_visit):
    open_link(client, make_visit(make_clinic()))
    data = form_data(client, soreness="2")
    assert client.post("/me/check-in", data=data).status_code == 303
    response = client.post("/me/check-in", data=dict(data, soreness="8"))
    assert response.status_code == 409
    assert "already sent" in response.get_data(as_text=True)
    assert db.session.scalar(select(CheckIn)).soreness == 2


def test_the_guide_shows_the_stretches_the_therapist_chose(client, app, make_clinic, make_visit):
    visit = make_visit(make_clinic(), regions=["calf"])
    visit.visit.stretches = ["plantar_fascia"]
    db.session.commit()
    open_link(client, visit)
    page = client.get("/me/").get_data(as_text=True)
    with app.test_request_context():
        chosen, left_out = (str(STRETCHES[c].title) for c in ("plantar_fascia", "calf_wall"))
    assert chosen in page
    assert left_out not in page  # a default for the calf that the therapist did not choose
    assert "15 to 30 seconds" in page  # the dose, from clinical.md


def test_the_history_draws_the_patients_scores_against_the_usual_range(
    client, make_clinic, make_visit
):
    visit = make_visit(make_clinic())
    open_link(client, visit)
    for soreness in (5, 3):
        data = form_data(client, soreness=str(soreness))
        assert client.post("/me/check-in", data=data).status_code == 303
    page = client.get("/me/check-ins").get_data(as_text=True)
    svg = page[page.index("<svg") : page.index("</svg>")]
    assert svg.count('class="chart-point"') == 2
    assert 'class="chart-band"' in svg and 'role="img"' in svg
    assert (
        "Latest score: 3 out of 10, 3 hours after the visit. Usual at that time: 5 or less." in svg
    )


def test_the_patient_link_page_sends_no_referrer_and_https_forms_work(
    client, make_clinic, make_visit, make_therapist
):
    """Behind HTTPS Flask-WTF wants a same-origin Referer on every form post (WTF_CSRF_SSL_STRICT):
    our pages send one to our own origin, and the token-bearing link page sends none at all."""
    visit = make_visit(make_clinic())
    assert client.get(visit.url).headers["Referrer-Policy"] == "no-referrer"
    therapist = make_therapist(make_clinic())
    base = "https://care.example"
    page = client.get("/sign-in", base_url=base)
    assert page.headers["Referrer-Policy"] == "same-origin"
    token = csrf_from(page.get_data(as_text=True))
    form = {"email": therapist.email, "password": PASSWORD, "csrf_token": token}
    # What a browser sends under the page's policy: the sign-in page as Referer.
    response = client.post(
        "/sign-in", data=form, base_url=base, headers={"Referer": f"{base}/sign-in"}
    )
    assert response.status_code == 302


def test_the_history_marks_red_and_amber_checkins_and_says_what_to_do(
    client, make_clinic, make_visit, now
):
    clinic = make_clinic()
    clinic.phone = "+34 910 000 000"
    db.session.commit()
    open_link(client, make_visit(clinic))
    for changes in (
        {"soreness": "2"},
        {"soreness": "9"},
        {"soreness": "1", "red_flags": ["chest_pain"]},
    ):
        assert client.post("/me/check-in", data=form_data(client, **changes)).status_code == 303
    page = client.get("/me/check-ins").get_data(as_text=True)
    cards = re.findall(r'<li class="card checkin (\w+)">(.*?)</li>', page, re.S)
    by_level = {level: re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", card)) for level, card in cards}
    assert set(by_level) == {"red", "amber", "green"}
    red = by_level["red"]
    assert "Red flag" in red
    assert (
        "If you still have any of these signs, call 112 now or go to the emergency department"
        in red
    )
    assert "Say that you had dry needling and where it was done." in red
    assert 'href="tel:112"' in dict(cards)["red"] and 'class="level-icon red"' in dict(cards)["red"]
    amber = by_level["amber"]
    assert "Not as expected" in amber
    assert "If it has not settled, please contact your therapist today." in amber
    assert (
        "Call the clinic, +34 910 000 000" in amber
        and 'class="level-icon amber"' in dict(cards)["amber"]
    )
    assert "Call 112" not in by_level["green"] and "Not as expected" not in by_level["green"]
    # The chart marks them too, by shape.
    assert '<polygon class="marker red"' in page and '<polygon class="marker amber"' in page


def test_the_history_shows_times_to_the_minute(client, make_clinic, make_visit, now):
    open_link(client, make_visit(make_clinic()))
    assert client.post("/me/check-in", data=form_data(client)).status_code == 303
    page = client.get("/me/check-ins").get_data(as_text=True)
    shown = re.findall(r"<time [^>]*>([^<]+)</time>", page)
    assert len(shown) == 1
    assert re.search(r"\d:\d\d", shown[0]) and not re.search(r"\d:\d\d:\d\d", shown[0])
