"""A link that no longer works still helps (issue 15): the page names the clinic's phone and
emergency number and keeps the guide's general advice, for a link opened after it expired and for
a phone whose cookie outlived its link; a token never issued gets the app's number alone."""

from __future__ import annotations

from datetime import timedelta

from companion.care import guidance
from companion.extensions import db
from tests.test_guidance import text
from tests.test_patient import open_link


def lapsed_visit(make_clinic, make_visit, now):  # type: ignore[no-untyped-def]
    clinic = make_clinic(name="Harbour Physio")
    clinic.phone = "+34 910 000 000"
    clinic.emergency_number = "061"
    db.session.commit()
    long_ago = now - timedelta(days=30)
    return make_visit(clinic, name="Noa Secret", performed_at=long_ago, now=long_ago)


def assert_helps(page: str, *, phone: bool, number: str) -> None:
    assert "does not work any more" in page
    assert ('href="tel:+34910000000"' in page) is phone
    assert f'href="tel:{number}"' in page
    for item in (*guidance.EMERGENCY, *guidance.CALL_CLINIC, guidance.NORMAL[0]):
        assert text(item) in page
    # The general advice of the days ahead, still readable.
    assert text(guidance.STAGES[1].advice[0]) in page
    assert "Noa Secret" not in page  # whoever holds a dead link is not known to be the patient


def test_an_expired_link_opened_gives_its_clinics_phone_and_number_and_the_guide(
    client, make_clinic, make_visit, now
):
    response = client.get(lapsed_visit(make_clinic, make_visit, now).url)
    assert response.status_code == 404
    assert_helps(response.get_data(as_text=True), phone=True, number="061")


def test_a_cookie_that_outlived_its_link_gets_the_same_help(
    client, make_clinic, make_visit, now, time_machine
):
    visit = make_visit(make_clinic(), name="Noa Secret")
    visit.visit.clinic.phone = "+34 910 000 000"
    db.session.commit()
    open_link(client, visit)
    time_machine.move_to(now + timedelta(days=8))  # the 7-day link has ended; the cookie is kept
    response = client.get("/me/")
    assert response.status_code == 401
    assert_helps(response.get_data(as_text=True), phone=True, number="112")


def test_a_token_never_issued_gets_the_apps_number_and_the_guide(client):
    response = client.get("/p/" + "x" * 43)
    assert response.status_code == 404
    assert_helps(response.get_data(as_text=True), phone=False, number="112")
