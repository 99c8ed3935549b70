"""Accounts (issue 13): invites, colleagues managed by the clinic's admins, forgot password.

Account links are single-use, stored hashed, valid 72 h (invite) or 1 h (reset), and a new one
revokes the earlier; the Therapists page is an admin's only and audits every change; a clinic
keeps an active admin; a deactivated colleague's session ends at its next request; the
forgot-password page answers the same for every address and is rate-limited."""

from __future__ import annotations

import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from flask import Flask
from sqlalchemy import func, select

from companion.accounts import colleagues, tokens
from companion.accounts.colleagues import AccountError
from companion.audit import Actor
from companion.auth import hash_password
from companion.extensions import db
from companion.models import AccountToken, AuditEvent, Clinic, Role, Therapist, TokenPurpose

from . import test_alert_dispatch as with_channels
from .conftest import PASSWORD, build_app, csrf_from, sign_in

# The app with e-mail on (the local SMTP server) and PUBLIC_URL https://care.clinic.example.
app, smtp = with_channels.app, with_channels.smtp

NEW_PASSWORD = "lantern orchard pebble violin"
LINK = re.compile(r"https://care\.clinic\.example/account/set-password/([\w-]+)")
WEAK = "This password is known from data breaches or is easy to guess."


@pytest.fixture
def harbour(make_clinic, make_therapist, now):
    clinic = make_clinic(name="Harbour Physio")
    admin = make_therapist(clinic, "ada@harbour.example", role=Role.ADMIN)
    therapist = make_therapist(clinic, "theo@harbour.example", role=Role.THERAPIST)
    return clinic, admin, therapist


def audit_actions() -> list[str]:
    return list(db.session.scalars(select(AuditEvent.action).order_by(AuditEvent.at)))


def link_in(received) -> str:  # type: ignore[no-untyped-def]
    match = LINK.search(received.text)
    assert match, received.text
    return match.group(0)


def path_of(link: str) -> str:
    return link.removeprefix("https://care.clinic.example")


def post(client, path: str, **data: str):  # type: ignore[no-untyped-def]
    token = csrf_from(client.get("/settings/therapists").get_data(as_text=True))
    return client.post(path, data={"csrf_token": token, **data})


# --- tokens ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(("purpose", "hours"), [(TokenPurpose.INVITE, 72), (TokenPurpose.RESET, 1)])
def test_an_account_link_works_until_its_expiry_and_not_at_it(harbour, now, purpose, hours):
    _clinic, _admin, therapist = harbour
    if purpose == TokenPurpose.INVITE:
        therapist.password_hash = ""  # an invitee
    issued = tokens.issue(therapist, purpose, now)
    db.session.commit()

    assert issued.expires_at == now + timedelta(hours=hours)
    assert tokens.find(issued.token, now + timedelta(hours=hours) - timedelta(seconds=1))
    assert tokens.find(issued.token, now + timedelta(hours=hours)) is None
    # Only the hash is stored.
    stored = db.session.scalar(select(AccountToken.token_hash))
    assert stored != issued.token and len(stored) == 64


def test_an_account_link_is_redeemed_once(harbour, now):
    _clinic, _admin, therapist = harbour
    issued = tokens.issue(therapist, TokenPurpose.RESET, now)
    row = tokens.find(issued.token, now)

    assert tokens.redeem(row.id, now) is True
    assert tokens.redeem(row.id, now) is False
    assert tokens.find(issued.token, now) is None


def test_an_expired_link_cannot_be_redeemed(harbour, now):
    _clinic, _admin, therapist = harbour
    issued = tokens.issue(therapist, TokenPurpose.RESET, now)
    row = tokens.find(issued.token, now)
    assert tokens.redeem(row.id, now + timedelta(hours=1)) is False


@pytest.mark.postgres
def test_two_uses_of_one_link_at_once_succeed_once(app, harbour, now):
    _clinic, _admin, therapist = harbour
    issued = tokens.issue(therapist, TokenPurpose.RESET, now)
    db.session.commit()
    token_id = tokens.find(issued.token, now).id
    both_read = threading.Barrier(2)

    def use(n: int) -> bool:
        with app.app_context():
            assert tokens.find_by_id(token_id, now) is not None
            both_read.wait(timeout=10)  # both saw the link unused before either uses it
            done = colleagues.set_password(token_id, f"hash-{n}", now)
            db.session.commit()
            return done is not None

    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(use, range(2)))

    assert sorted(results) == [False, True]
    db.session.expire_all()
    assert db.session.get(Therapist, therapist.id).password_hash == f"hash-{results.index(True)}"


def test_a_new_link_revokes_the_earlier_one_of_its_purpose_only(harbour, now):
    _clinic, _admin, therapist = harbour
    first = tokens.issue(therapist, TokenPurpose.RESET, now)
    second = tokens.issue(therapist, TokenPurpose.RESET, now + timedelta(minutes=1))
    db.session.commit()

    assert tokens.find(first.token, now + timedelta(minutes=2)) is None
    assert tokens.find(second.token, now + timedelta(minutes=2)) is not None


# --- invites --------------------------------------------------------------------------------------


def test_an_admin_invites_by_email_and_the_invitee_sets_a_password_and_signs_in(
    app, client, harbour, smtp, now
):
    _clinic, admin, _therapist = harbour
    assert sign_in(client, admin.email).status_code == 302

    answer = post(
        client, "/settings/therapists/invite", email=" Ines@Harbour.example ", name="Inés"
    )

    assert answer.status_code == 303
    invitee = db.session.scalar(select(Therapist).where(Therapist.email == "ines@harbour.example"))
    assert invitee.is_pending and invitee.role == Role.THERAPIST
    invited_at = invitee.invited_at
    assert now <= invited_at < now + timedelta(seconds=30)
    [mail] = smtp.received
    assert mail.rcpt_tos == ["ines@harbour.example"]
    assert "Harbour Physio" in mail.message["Subject"]
    link = link_in(mail)
    page = client.get("/settings/therapists").get_data(as_text=True)
    assert "Invite sent to ines@harbour.example." in page
    assert "Invited (the link expires" in page and link not in page

    invitee_client = app.test_client()
    opened = invitee_client.get(path_of(link))
    assert opened.status_code == 303 and opened.location.endswith("/account/set-password")
    form = invitee_client.get("/account/set-password").get_data(as_text=True)
    assert "Set your password" in form and "New password" in form
    done = invitee_client.post(
        "/account/set-password",
        data={"csrf_token": csrf_from(form), "password": NEW_PASSWORD, "confirm": NEW_PASSWORD},
    )
    assert done.status_code == 303 and done.location.endswith("/sign-in")
    assert "Your password is set. Sign in." in invitee_client.get("/sign-in").get_data(as_text=True)
    assert sign_in(invitee_client, "ines@harbour.example", NEW_PASSWORD).status_code == 302
    db.session.expire_all()
    invitee = db.session.get(Therapist, invitee.id)
    assert not invitee.is_pending and invitee.invited_at == invited_at
    # The link is used up.
    assert app.test_client().get(path_of(link)).status_code == 404
    assert audit_actions()[-2:] == ["therapist.invite", "therapist.invite_accepted"]


def test_the_set_password_page_needs_the_link_first(client, harbour):
    assert client.get("/account/set-password").status_code == 404
    assert client.get("/account/set-password/not-a-token").status_code == 404


def test_inviting_a_pending_address_again_sends_a_new_link_and_the_old_one_stops(
    app, client, harbour, smtp, now
):
    _clinic, admin, _therapist = harbour
    assert sign_in(client, admin.email).status_code == 302
    post(client, "/settings/therapists/invite", email="ines@harbour.example")
    post(client, "/settings/therapists/invite", email="ines@harbour.example", role="admin")

    first, second = (link_in(m) for m in smtp.received)
    other = app.test_client()
    assert other.get(path_of(first)).status_code == 404
    assert other.get(path_of(second)).status_code == 303
    invitees = db.session.scalars(
        select(Therapist).where(Therapist.email == "ines@harbour.example")
    ).all()
    assert len(invitees) == 1 and invitees[0].role == Role.ADMIN
    assert audit_actions()[-2:] == ["therapist.invite", "therapist.invite_resent"]


def test_an_address_with_an_account_is_refused_without_naming_its_clinic(
    client, harbour, make_clinic, make_therapist, smtp
):
    _clinic, admin, therapist = harbour
    elsewhere = make_therapist(make_clinic(name="Hilltop Rehab"), "zoe@hilltop.example")
    assert sign_in(client, admin.email).status_code == 302
    therapists_before = db.session.scalar(select(func.count()).select_from(Therapist))

    pages = []
    for email in (therapist.email, elsewhere.email.upper()):
        answer = post(client, "/settings/therapists/invite", email=email)
        assert answer.status_code == 409
        pages.append(answer.get_data(as_text=True))

    for page in pages:
        assert "This e-mail address already has an account." in page
        assert "Hilltop" not in page
    assert db.session.scalar(select(func.count()).select_from(Therapist)) == therapists_before
    assert smtp.received == []
    assert db.session.scalar(select(func.count()).select_from(AccountToken)) == 0


def test_with_email_off_the_page_shows_the_invite_link_once(app, client, harbour, smtp):
    app.config["MAIL_SERVER"] = None
    _clinic, admin, _therapist = harbour
    assert sign_in(client, admin.email).status_code == 302
    page = client.get("/settings/therapists").get_data(as_text=True)
    assert "E-mail is off on this server" in page

    answer = post(client, "/settings/therapists/invite", email="ines@harbour.example")
    shown = client.get(answer.location).get_data(as_text=True)
    again = client.get("/settings/therapists").get_data(as_text=True)

    match = re.search(r'id="invite-url" class="copy" readonly value="([^"]+)"', shown)
    assert match and "/account/set-password/" in match.group(1)
    assert "no e-mail was sent" in shown and "shown only this once" in shown
    assert match.group(1) not in again
    assert smtp.received == []
    assert app.test_client().get(path_of(match.group(1))).status_code == 303


def test_an_invite_the_relay_refuses_is_shown_to_the_admin(client, harbour, smtp):
    _clinic, admin, _therapist = harbour
    smtp.refuse["ines@harbour.example"] = 550
    assert sign_in(client, admin.email).status_code == 302
    answer = post(client, "/settings/therapists/invite", email="ines@harbour.example")
    shown = client.get(answer.location).get_data(as_text=True)
    assert "The e-mail could not be sent." in shown and 'id="invite-url"' in shown


def test_the_invite_form_says_what_is_wrong(client, harbour):
    _clinic, admin, _therapist = harbour
    assert sign_in(client, admin.email).status_code == 302
    answer = post(client, "/settings/therapists/invite", email="not an address")
    assert answer.status_code == 422
    assert "Enter an e-mail address such as name@example.com." in answer.get_data(as_text=True)
    refused = post(client, "/settings/therapists/invite", email="a@b.example", role="owner")
    assert refused.status_code == 422
    assert db.session.scalar(select(func.count()).select_from(Therapist)) == 2


# --- colleagues -----------------------------------------------------------------------------------


def test_the_page_lists_colleagues_with_role_status_and_two_step(client, harbour, now):
    clinic, admin, therapist = harbour
    therapist.totp_enabled_at = now
    gone = Therapist(
        clinic_id=clinic.id, email="old@harbour.example", password_hash="x", active=False
    )
    db.session.add(gone)
    db.session.commit()
    assert sign_in(client, admin.email).status_code == 302
    page = client.get("/settings/therapists").get_data(as_text=True)

    def card(t: Therapist) -> str:
        start = page.index(f'id="therapist-{t.id}"')
        return page[start : page.index("</li>", start)]

    assert "Admin" in card(admin) and "Active" in card(admin) and "(you)" in card(admin)
    # An admin has no controls on their own row: no self-demotion, no self-deactivation.
    assert "Deactivate" not in card(admin) and "Change role" not in card(admin)
    assert "Therapist" in card(therapist) and ">On<" in card(therapist)
    assert "Deactivated" in card(gone) and "Reactivate" in card(gone)
    assert 'href="/settings/therapists" aria-current="page"' in page


def test_an_admin_changes_roles_deactivates_and_reactivates_and_each_is_audited(client, harbour):
    _clinic, admin, therapist = harbour
    assert sign_in(client, admin.email).status_code == 302
    base = f"/settings/therapists/{therapist.id}"

    assert post(client, base + "/role", role="admin").status_code == 303
    assert post(client, base + "/deactivate").status_code == 303
    db.session.expire_all()
    assert (therapist.role, therapist.active) == (Role.ADMIN, False)
    assert post(client, base + "/reactivate").status_code == 303
    assert post(client, base + "/role", role="therapist").status_code == 303
    db.session.expire_all()
    assert (therapist.role, therapist.active) == (Role.THERAPIST, True)

    events = db.session.scalars(
        select(AuditEvent).where(AuditEvent.action.like("therapist.%")).order_by(AuditEvent.at)
    ).all()
    assert [e.action for e in events] == [
        "therapist.role",
        "therapist.deactivate",
        "therapist.reactivate",
        "therapist.role",
    ]
    for event in events:
        assert (event.actor_id, event.target_type, event.target_id) == (
            str(admin.id),
            "therapist",
            str(therapist.id),
        )
        assert event.detail["colleague"] == therapist.email
    assert events[0].detail == {"colleague": therapist.email, "from": "therapist", "to": "admin"}


def test_an_admin_cannot_deactivate_or_demote_themselves(client, harbour):
    _clinic, admin, _therapist = harbour
    assert sign_in(client, admin.email).status_code == 302
    events = len(audit_actions())

    demoted = post(client, f"/settings/therapists/{admin.id}/role", role="therapist")
    deactivated = post(client, f"/settings/therapists/{admin.id}/deactivate")

    assert demoted.status_code == deactivated.status_code == 409
    assert "You cannot change your own role." in demoted.get_data(as_text=True)
    assert "You cannot deactivate your own account." in deactivated.get_data(as_text=True)
    db.session.expire_all()
    assert (admin.role, admin.active) == (Role.ADMIN, True)
    assert len(audit_actions()) == events


def test_a_clinic_keeps_at_least_one_active_admin(app, harbour, make_therapist, now):
    clinic, admin, therapist = harbour
    app.test_request_context().push()  # the refusals are worded in the request's language
    second = make_therapist(clinic, "bea@harbour.example", role=Role.ADMIN)
    actor = Actor.therapist(second)

    # Another admin left: the first can be demoted...
    assert colleagues.change_role(second, admin, Role.THERAPIST, actor, now)
    # ...but not the last one, by role or by deactivation, whoever asks.
    with pytest.raises(AccountError, match="at least one active admin"):
        colleagues.change_role(therapist, second, Role.THERAPIST, actor, now)
    with pytest.raises(AccountError, match="at least one active admin"):
        colleagues.deactivate(therapist, second, actor, now)
    # A pending admin invitee does not count: they cannot manage anything yet.
    colleagues.invite(clinic, "ines@harbour.example", None, Role.ADMIN, actor, now)
    with pytest.raises(AccountError, match="at least one active admin"):
        colleagues.deactivate(therapist, second, actor, now)
    assert second.is_admin and second.active


def test_a_deactivated_colleague_is_signed_out_at_the_next_request(app, client, harbour):
    _clinic, admin, therapist = harbour
    theirs = app.test_client()
    assert sign_in(theirs, therapist.email).status_code == 302
    assert theirs.get("/").status_code == 200
    assert sign_in(client, admin.email).status_code == 302

    assert post(client, f"/settings/therapists/{therapist.id}/deactivate").status_code == 303

    answer = theirs.get("/")
    assert answer.status_code == 302 and "/sign-in" in answer.location
    # And the password no longer signs in.
    refused = sign_in(app.test_client(), therapist.email)
    assert refused.status_code == 200
    # Reactivated, the old session stays ended: a new sign-in is needed.
    assert post(client, f"/settings/therapists/{therapist.id}/reactivate").status_code == 303
    assert theirs.get("/").status_code == 302
    assert sign_in(app.test_client(), therapist.email).status_code == 302


def test_deactivating_an_invitee_stops_their_link(app, client, harbour, smtp):
    _clinic, admin, _therapist = harbour
    assert sign_in(client, admin.email).status_code == 302
    post(client, "/settings/therapists/invite", email="ines@harbour.example")
    invitee = db.session.scalar(select(Therapist).where(Therapist.email == "ines@harbour.example"))
    link = link_in(smtp.received[0])

    assert post(client, f"/settings/therapists/{invitee.id}/deactivate").status_code == 303
    assert app.test_client().get(path_of(link)).status_code == 404
    # Reactivated, they need a new invite; "Send the invite again" gives one.
    post(client, f"/settings/therapists/{invitee.id}/reactivate")
    assert post(client, f"/settings/therapists/{invitee.id}/resend").status_code == 303
    assert app.test_client().get(path_of(link_in(smtp.received[1]))).status_code == 303


def test_another_clinics_therapist_is_not_found(client, harbour, make_clinic, make_therapist):
    _clinic, admin, _therapist = harbour
    stranger = make_therapist(make_clinic(name="Hilltop Rehab"), "zoe@hilltop.example")
    assert sign_in(client, admin.email).status_code == 302
    for action in ("role", "deactivate", "reactivate", "resend"):
        answer = post(client, f"/settings/therapists/{stranger.id}/{action}", role="therapist")
        assert answer.status_code == 404
    db.session.expire_all()
    assert (stranger.role, stranger.active) == (Role.ADMIN, True)


ADMIN_ACTIONS = ["invite", "{id}/role", "{id}/deactivate", "{id}/reactivate", "{id}/resend"]


def test_a_therapist_gets_403_on_the_therapists_page_and_every_action(client, harbour, smtp):
    _clinic, admin, therapist = harbour
    assert sign_in(client, therapist.email).status_code == 302
    token = csrf_from(client.get("/").get_data(as_text=True))
    events = len(audit_actions())

    assert client.get("/settings/therapists").status_code == 403
    for action in ADMIN_ACTIONS:
        answer = client.post(
            "/settings/therapists/" + action.format(id=admin.id),
            data={"csrf_token": token, "email": "eve@x.example", "role": "therapist"},
        )
        assert answer.status_code == 403, action

    db.session.expire_all()
    assert (admin.role, admin.active) == (Role.ADMIN, True)
    assert db.session.scalar(select(func.count()).select_from(Therapist)) == 2
    assert len(audit_actions()) == events and smtp.received == []
    assert 'href="/settings/therapists"' not in client.get("/").get_data(as_text=True)


# --- forgot password ------------------------------------------------------------------------------


def forgot(client, email: str):  # type: ignore[no-untyped-def]
    token = csrf_from(client.get("/account/forgot-password").get_data(as_text=True))
    return client.post("/account/forgot-password", data={"csrf_token": token, "email": email})


def reset_mail(smtp, count: int = 1, timeout: float = 15):  # type: ignore[no-untyped-def]
    """The `count`-th e-mail received: a reset link goes in a thread beside the answer."""
    deadline = time.monotonic() + timeout
    while len(smtp.received) < count:
        assert time.monotonic() < deadline, f"no e-mail number {count} within {timeout} s"
        threading.Event().wait(0.02)
    return smtp.received[count - 1]


def test_the_sign_in_page_links_to_forgot_password(client):
    assert 'href="/account/forgot-password"' in client.get("/sign-in").get_data(as_text=True)


def test_forgot_password_answers_the_same_for_every_address_and_mails_only_a_real_account(
    app, client, harbour, smtp, now
):
    clinic, _admin, therapist = harbour
    db.session.add_all(
        [
            Therapist(clinic_id=clinic.id, email="pending@harbour.example", password_hash=""),
            Therapist(
                clinic_id=clinic.id, email="gone@harbour.example", password_hash="x", active=False
            ),
        ]
    )
    db.session.commit()
    answers = []
    for email in (
        "nobody@harbour.example",
        "pending@harbour.example",
        "gone@harbour.example",
        therapist.email,
    ):
        answer = forgot(app.test_client(), email)
        page = client.get(answer.location)
        answers.append((answer.status_code, answer.location, page.status_code, page.data))

    assert len(set(answers)) == 1
    assert answers[0][0] == 303
    assert b"If that address has an account, we sent a link. It works for 1 hour." in answers[0][3]
    mail = reset_mail(smtp)
    assert [m.rcpt_tos for m in smtp.received] == [[therapist.email]]
    # Only the real account got a link (the others asked first: nothing was made for them).
    assert db.session.scalar(select(func.count()).select_from(AccountToken)) == 1
    assert "1 hour" in mail.text and LINK.search(mail.text)
    assert "Harbour" not in mail.text  # no more than the link is needed
    assert audit_actions()[-1] == "therapist.password_reset_sent"


def test_a_reset_link_works_once_and_ends_other_sessions(app, client, harbour, smtp, now):
    _clinic, _admin, therapist = harbour
    old_session = app.test_client()
    assert sign_in(old_session, therapist.email).status_code == 302
    forgot(client, therapist.email)
    link = link_in(reset_mail(smtp))

    assert client.get(path_of(link)).status_code == 303
    form = client.get("/account/set-password").get_data(as_text=True)
    assert "Choose a new password" in form
    done = client.post(
        "/account/set-password",
        data={"csrf_token": csrf_from(form), "password": NEW_PASSWORD, "confirm": NEW_PASSWORD},
    )

    assert done.status_code == 303 and done.location.endswith("/sign-in")
    assert sign_in(app.test_client(), therapist.email, PASSWORD).status_code == 200
    assert sign_in(app.test_client(), therapist.email, NEW_PASSWORD).status_code == 302
    assert old_session.get("/").status_code == 302  # the session from before the reset is over
    again = app.test_client().get(path_of(link))
    assert again.status_code == 404
    assert "This link does not work any more" in again.get_data(as_text=True)
    assert audit_actions()[-1] == "therapist.password_reset"


def test_a_reset_link_expires_after_an_hour(app, client, harbour, smtp, now, time_machine):
    _clinic, _admin, therapist = harbour
    forgot(client, therapist.email)
    link = link_in(reset_mail(smtp))
    assert client.get(path_of(link)).status_code == 303
    time_machine.move_to(now + timedelta(hours=1, seconds=30))
    assert client.get("/account/set-password").status_code == 404
    assert app.test_client().get(path_of(link)).status_code == 404


def test_a_weak_password_is_refused_with_the_policy_and_the_link_still_works(client, harbour, smtp):
    _clinic, _admin, therapist = harbour
    forgot(client, therapist.email)
    client.get(path_of(link_in(reset_mail(smtp))))
    form = client.get("/account/set-password").get_data(as_text=True)

    for password, message in (
        ("short one", "Use at least 12 characters."),
        ("password1234", WEAK),
        ("theo@harbour.example", WEAK),  # the account's own words
    ):
        answer = client.post(
            "/account/set-password",
            data={"csrf_token": csrf_from(form), "password": password, "confirm": password},
        )
        assert answer.status_code == 422
        assert message in answer.get_data(as_text=True)
    mismatch = client.post(
        "/account/set-password",
        data={"csrf_token": csrf_from(form), "password": NEW_PASSWORD, "confirm": "other"},
    )
    assert "The two passwords are not the same." in mismatch.get_data(as_text=True)
    assert sign_in(client, therapist.email, PASSWORD).status_code == 302  # unchanged
    assert (
        db.session.scalar(
            select(func.count()).select_from(AccountToken).where(AccountToken.used_at.is_(None))
        )
        == 1
    )


@pytest.fixture
def limited(tmp_path, smtp) -> Flask:  # type: ignore[no-untyped-def]
    limited = build_app(
        tmp_path,
        RATELIMIT_ENABLED=True,
        FORGOT_PASSWORD_RATE_LIMIT="2 per 15 minutes",
        SIGN_IN_ACCOUNT_LIMIT="3 per 15 minutes",
        MAIL_SERVER="127.0.0.1",
        MAIL_PORT=smtp.port,
        MAIL_DEFAULT_SENDER="Aftercare <alerts@clinic.example>",
        PUBLIC_URL="https://care.clinic.example",
    )
    with limited.app_context():
        yield limited
        db.session.remove()
        db.engine.dispose()


def test_forgot_password_is_rate_limited_per_address_and_per_account(limited, now):
    def ask(address: str, email: str):  # type: ignore[no-untyped-def]
        client = limited.test_client()
        client.environ_base["REMOTE_ADDR"] = address
        return forgot(client, email).status_code

    # From one address, whatever the e-mail: the third is refused.
    assert [ask("10.0.0.1", f"a{i}@x.example") for i in range(3)] == [303, 303, 429]
    # One e-mail from many addresses: the third is refused too, known account or not.
    assert [ask(f"10.0.1.{i}", "nobody@x.example") for i in range(3)] == [303, 303, 429]


def test_a_reset_clears_the_accounts_wrong_password_count(limited, smtp, now):
    clinic_client = limited.test_client()
    clinic = Clinic(name="Harbour Physio")
    db.session.add(clinic)
    db.session.flush()
    db.session.add(
        Therapist(
            clinic_id=clinic.id, email="theo@harbour.example", password_hash=hash_password(PASSWORD)
        )
    )
    db.session.commit()
    for _ in range(3):
        sign_in(limited.test_client(), "theo@harbour.example", "wrong password here")
    assert sign_in(limited.test_client(), "theo@harbour.example").status_code == 429

    forgot(clinic_client, "theo@harbour.example")
    clinic_client.get(path_of(link_in(reset_mail(smtp))))
    form = clinic_client.get("/account/set-password").get_data(as_text=True)
    clinic_client.post(
        "/account/set-password",
        data={"csrf_token": csrf_from(form), "password": NEW_PASSWORD, "confirm": NEW_PASSWORD},
    )
    assert sign_in(limited.test_client(), "theo@harbour.example", NEW_PASSWORD).status_code == 302


def test_an_admin_signs_a_colleague_out_everywhere_and_it_is_audited(
    app, client, make_clinic, make_therapist
):
    clinic = make_clinic(name="Harbour Physio")
    admin = make_therapist(clinic, "ada@harbour.example")
    theo = make_therapist(clinic, "theo@harbour.example", role=Role.THERAPIST)
    theos_phone = app.test_client()
    sign_in(theos_phone, theo.email)
    assert theos_phone.get("/patients").status_code == 200

    sign_in(client, admin.email)
    page = client.get("/settings/therapists").get_data(as_text=True)
    assert "Sign out everywhere" in page
    response = client.post(
        f"/settings/therapists/{theo.id}/sign-out", data={"csrf_token": csrf_from(page)}
    )

    assert response.status_code == 303
    assert theos_phone.get("/patients").status_code == 302  # out, at its next request
    event = db.session.scalar(
        select(AuditEvent).where(AuditEvent.action == "therapist.sign_out_everywhere")
    )
    assert event is not None and event.target_id == str(theo.id)
    assert sign_in(app.test_client(), theo.email).status_code == 302  # may sign in again
    assert client.get("/patients").status_code == 200  # the admin's own session goes on
