"""The handout and the link by e-mail: the visit page keeps a freshly issued link for the session and
offers "Print handout"; the handout carries the link, its QR code, the guide's key content and the
reminder moments in the patient's language; without the link it offers a new one, which revokes
the old; the link goes by e-mail with nothing about the patient's health in it."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta

import pytest
from flask import Flask
from flask_babel import force_locale, gettext
from markupsafe import escape
from sqlalchemy import select

from companion.care import guidance
from companion.care.regions import BY_CODE as REGIONS
from companion.care.stretches import BY_CODE as STRETCHES
from companion.care.stretches import DOSE
from companion.care.triage import SYMPTOMS
from companion.extensions import db
from companion.models import AuditEvent, Reminder, Visit

from .conftest import build_app, csrf_from, sign_in
from .smtpserver import SMTPServer

LINK = re.compile(r"http://companion\.test(/p/[A-Za-z0-9_\-]+)")


@pytest.fixture
def smtp() -> Iterator[SMTPServer]:
    with SMTPServer() as server:
        yield server


@pytest.fixture
def app(tmp_path, smtp) -> Iterator[Flask]:
    """The usual test app, with e-mail going to the local SMTP server."""
    app = build_app(
        tmp_path,
        MAIL_SERVER="127.0.0.1",
        MAIL_PORT=smtp.port,
        MAIL_DEFAULT_SENDER="Harbour Physio <desk@harbour.example>",
        MAIL_TIMEOUT=5,
    )
    with app.app_context():
        yield app
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def desk(client, make_clinic, make_therapist, make_visit, now):
    """A signed-in therapist and a visit of their clinic an hour ago (10:00 in Madrid), neck and
    calf, whose link was issued outside this session (the API, say)."""
    clinic = make_clinic("Harbour Physio")
    clinic.phone = "+34 910 000 000"
    db.session.commit()
    therapist = make_therapist(clinic)
    sign_in(client, therapist.email)
    made = make_visit(
        clinic, name="Maria", regions=["neck", "calf"], performed_at=now - timedelta(hours=1)
    )
    made.therapist_email = therapist.email
    return made


def issue(client, visit: Visit) -> str:
    """Press "Revoke and issue a new link" on the visit page; the new link's path."""
    page = client.get(f"/visits/{visit.id}").get_data(as_text=True)
    response = client.post(f"/visits/{visit.id}/link", data={"csrf_token": csrf_from(page)})
    assert response.status_code == 303
    page = client.get(f"/visits/{visit.id}").get_data(as_text=True)
    return LINK.search(page).group(1)


def plain(lazy: object, language: str = "en") -> str:
    with force_locale(language):
        return str(lazy)


def said(lazy: object, language: str = "en") -> str:
    """A lazy text as it appears in a page in `language` (HTML-escaped)."""
    return str(escape(plain(lazy, language)))


def text(html: str) -> str:
    # Babel puts a narrow no-break space before AM/PM.
    return html.replace("\u202f", " ").replace("\xa0", " ")


def test_the_visit_page_offers_print_handout_and_keeps_the_link_for_the_session(client, desk):
    visit = desk.visit
    before = client.get(f"/visits/{visit.id}").get_data(as_text=True)
    assert "Print handout<" not in before and "Print a handout (needs a new link)" in before

    path = issue(client, visit)
    for _ in range(2):  # leaving the page and coming back keeps it
        page = client.get(f"/visits/{visit.id}").get_data(as_text=True)
        assert path in page and "<svg" in page
        assert f'href="/visits/{visit.id}/handout">Print handout</a>' in page

    client.post("/sign-out", data={"csrf_token": csrf_from(page)})
    sign_in(client, desk.therapist_email)
    after = client.get(f"/visits/{visit.id}").get_data(as_text=True)
    assert path not in after and "<svg" not in after
    assert client.get(path).status_code == 303  # the link itself still works for the patient


def test_a_revoked_link_is_no_longer_shown_or_printed(client, desk):
    visit = desk.visit
    path = issue(client, visit)
    page = client.get(f"/visits/{visit.id}").get_data(as_text=True)
    client.post(f"/visits/{visit.id}/link/revoke", data={"csrf_token": csrf_from(page)})
    assert path not in client.get(f"/visits/{visit.id}").get_data(as_text=True)
    handout = client.get(f"/visits/{visit.id}/handout").get_data(as_text=True)
    assert path not in handout and "Issue a new link and print" in handout


def test_the_handout_holds_the_link_guidance_stretches_moments_and_clinic(client, desk):
    visit = desk.visit
    path = issue(client, visit)
    response = client.get(f"/visits/{visit.id}/handout")
    assert response.status_code == 200
    page = text(response.get_data(as_text=True))
    # No navigation: the clinic's layout is not used.
    assert "<nav" not in page and "Review queue" not in page
    assert f"http://companion.test{path}" in page and "<svg" in page
    assert "Harbour Physio" in page and "+34 910 000 000" in page
    assert "Call 112 now if you have" in page
    for item in (*guidance.NORMAL, *guidance.CALL_CLINIC, *guidance.EMERGENCY):
        assert said(item.text) in page
    heat = guidance.STAGES[1].advice[0].text
    assert said(heat) in page
    assert visit.stretches, "the regions' usual stretches were chosen"
    for code in visit.stretches:
        assert said(STRETCHES[code].how) in page
    assert said(DOSE) in page
    # The moments, in Madrid's wall clock (the visit was at 10:00 there on Wednesday 25 November).
    for moment in (
        "Wednesday, November 25, 2026, 12:00 PM",  # 2 h after
        "Wednesday, November 25, 2026, 4:00 PM",  # the evening
        "Thursday, November 26, 2026, 9:00 AM",  # the next morning
        "Friday, November 27, 2026, 10:00 AM",  # 48 h
        "Wednesday, December 2, 2026, 10:00 AM",  # day 7
    ):
        assert moment in page
    reminders = db.session.scalars(select(Reminder).where(Reminder.visit_id == visit.id)).all()
    assert page.count('class="box"') == len(reminders) == 6
    assert {e.action for e in db.session.scalars(select(AuditEvent))} >= {
        "handout.view",
        "link.reissue",
    }


def test_a_spanish_patients_handout_is_in_spanish(client, desk):
    visit = desk.visit
    visit.patient.language = "es"
    db.session.commit()
    issue(client, visit)
    page = text(client.get(f"/visits/{visit.id}/handout").get_data(as_text=True))
    assert '<html lang="es">' in page
    spanish = [
        said(guidance.NORMAL[0].text, "es"),
        said(STRETCHES[visit.stretches[0]].how, "es"),
        said(guidance.EMERGENCY[0].text, "es"),
    ]
    assert "Qué es normal" in page and "Los próximos días" in page
    for words in spanish:
        assert words in page
    assert "miércoles, 2 de diciembre de 2026, 10:00" in page
    assert said(guidance.NORMAL[0].text) not in page  # not the English one
    # The toolbar is the therapist's, in their language, and marked as such.
    assert '<div class="handout-tools no-print" lang="en">' in page and "Back to the visit" in page


def test_without_a_held_link_the_handout_warns_and_offers_a_new_one(client, desk):
    response = client.get(f"/visits/{desk.visit.id}/handout")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "Printing the handout needs a new link" in page
    assert "will no longer open their page" in page
    assert f'action="/visits/{desk.visit.id}/handout/link"' in page
    assert "Issue a new link and print" in page and csrf_from(page)
    assert desk.token not in page and "<svg" not in page


def test_issuing_from_the_handout_revokes_the_old_link_and_prints_the_new(client, app, desk):
    visit = desk.visit
    page = client.get(f"/visits/{visit.id}/handout").get_data(as_text=True)
    assert client.post(f"/visits/{visit.id}/handout/link").status_code == 400  # no CSRF token
    response = client.post(f"/visits/{visit.id}/handout/link", data={"csrf_token": csrf_from(page)})
    assert response.status_code == 303
    assert response.headers["Location"] == f"/visits/{visit.id}/handout"
    handout = client.get(response.headers["Location"]).get_data(as_text=True)
    new = LINK.search(handout).group(1)
    phone = app.test_client()
    assert phone.get(desk.url).status_code == 404
    assert phone.get(new).status_code == 303
    actions = [e.action for e in db.session.scalars(select(AuditEvent).order_by(AuditEvent.at))]
    assert "link.reissue" in actions


def test_another_clinics_visit_has_no_handout_and_no_e_mail(
    client, desk, make_clinic, make_visit, smtp
):
    other = make_visit(make_clinic("Elsewhere"))
    other.visit.patient.email = "sam@example.org"
    db.session.commit()
    page = client.get(f"/visits/{desk.visit.id}").get_data(as_text=True)
    token = csrf_from(page)
    assert client.get(f"/visits/{other.visit.id}/handout").status_code == 404
    for action in ("handout/link", "link/email"):
        response = client.post(f"/visits/{other.visit.id}/{action}", data={"csrf_token": token})
        assert response.status_code == 404
    assert smtp.received == []
    assert client.get(other.url).status_code == 303  # still its own, unrevoked link


def test_the_link_goes_by_e_mail_without_health_data(client, desk, smtp):
    visit = desk.visit
    visit.patient.email = "maria@example.org"
    db.session.commit()
    path = issue(client, visit)
    page = client.get(f"/visits/{visit.id}").get_data(as_text=True)
    assert "Send the link by e-mail" in page
    response = client.post(f"/visits/{visit.id}/link/email", data={"csrf_token": csrf_from(page)})
    assert response.status_code == 303
    [mail] = smtp.received
    assert mail.rcpt_tos == ["maria@example.org"]
    assert f"http://companion.test{path}" in mail.text
    assert "Harbour Physio" in mail.message["Subject"]
    whole = (mail.message["Subject"] + mail.text).lower()
    for word in ["maria", "needl", "soreness", "2026", "november"] + [
        plain(r.label).lower() for r in REGIONS.values()
    ]:
        assert word not in whole
    for symptom in SYMPTOMS.values():
        assert plain(symptom.label).lower() not in whole
    shown = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "The link was sent to the patient&#39;s e-mail address." in shown
    [event] = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "link.email"))
    assert event.detail == {"outcome": "sent"} and event.target_id == str(visit.id)


def test_a_spanish_patient_gets_the_e_mail_in_spanish(client, desk, smtp):
    visit = desk.visit
    visit.patient.email = "maria@example.org"
    visit.patient.language = "es"
    db.session.commit()
    issue(client, visit)
    page = client.get(f"/visits/{visit.id}").get_data(as_text=True)
    client.post(f"/visits/{visit.id}/link/email", data={"csrf_token": csrf_from(page)})
    [mail] = smtp.received
    with force_locale("es"):
        subject = gettext("Your aftercare link from %(clinic)s", clinic="Harbour Physio")
    assert mail.message["Subject"] == subject != "Your aftercare link from Harbour Physio"


def test_no_e_mail_button_without_an_address_and_none_sent(client, desk, smtp):
    visit = desk.visit
    issue(client, visit)
    page = client.get(f"/visits/{visit.id}").get_data(as_text=True)
    assert "Send the link by e-mail" not in page
    response = client.post(f"/visits/{visit.id}/link/email", data={"csrf_token": csrf_from(page)})
    shown = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "no e-mail address on record" in shown and smtp.received == []


def test_e_mail_off_or_failing_is_said_plainly(client, app, desk, smtp):
    visit = desk.visit
    visit.patient.email = "maria@example.org"
    db.session.commit()
    issue(client, visit)
    page = client.get(f"/visits/{visit.id}").get_data(as_text=True)
    token = csrf_from(page)

    smtp.data_status = "554 5.7.1 message rejected"
    response = client.post(f"/visits/{visit.id}/link/email", data={"csrf_token": token})
    shown = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "The e-mail could not be sent" in shown

    app.config["MAIL_SERVER"] = ""
    response = client.post(f"/visits/{visit.id}/link/email", data={"csrf_token": token})
    shown = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "E-mail is not set up on this server, so nothing was sent." in shown
    outcomes = [
        e.detail["outcome"]
        for e in db.session.scalars(
            select(AuditEvent).where(AuditEvent.action == "link.email").order_by(AuditEvent.at)
        )
    ]
    assert outcomes == ["error", "disabled"] and smtp.received == []


def test_without_a_held_link_nothing_is_e_mailed(client, desk, smtp):
    visit = desk.visit
    visit.patient.email = "maria@example.org"
    db.session.commit()
    page = client.get(f"/visits/{visit.id}").get_data(as_text=True)
    response = client.post(f"/visits/{visit.id}/link/email", data={"csrf_token": csrf_from(page)})
    shown = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Issue a new link, then send it." in shown and smtp.received == []


def test_the_handout_has_the_clinics_own_emergency_number_and_logo(client, desk):
    visit = desk.visit
    clinic = visit.clinic
    clinic.emergency_number = "911"
    clinic.logo_png = b"\x89PNG\r\n\x1a\n"  # what is served is the logo page's business
    clinic.logo_updated_at = desk.visit.performed_at
    db.session.commit()
    issue(client, visit)
    page = client.get(f"/visits/{visit.id}/handout").get_data(as_text=True)
    assert "Call 911 now if you have" in page and "Call 112" not in page
    assert re.search(rf'<img src="/logo/{clinic.id}\.png\?v=\d+"[^>]*class="handout-logo"', page)
