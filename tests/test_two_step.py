"""Two-step sign-in: TOTP codes (accepted once, within one step either side), recovery codes
(single-use, stored hashed), the pending sign-in, the per-account limit on wrong codes, the
clinic's requirement and an admin's reset of a colleague's second factor."""

from __future__ import annotations

import hashlib
import re
from datetime import timedelta

import pyotp
import pytest
from sqlalchemy import select

from companion.accounts import recovery, two_step
from companion.extensions import db
from companion.models import AuditEvent, Clinic, RecoveryCode, Role, Therapist

from .conftest import PASSWORD, build_app, csrf_from, sign_in

SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"


def code_at(moment, secret: str = SECRET) -> str:
    return pyotp.TOTP(secret).at(moment)


def enrol(therapist: Therapist, now, secret: str = SECRET) -> list[str]:
    """Turn two-step sign-in on as the enrolment page does, with the code of the step before
    `now` (so the code of `now` is still unused)."""
    codes = two_step.enable(therapist, secret, code_at(now - timedelta(seconds=30), secret), now)
    assert codes is not None
    db.session.commit()
    return codes


def post_code(client, code: str):
    page = client.get("/sign-in/code")
    return client.post(
        "/sign-in/code", data={"code": code, "csrf_token": csrf_from(page.get_data(as_text=True))}
    )


def signed_in(client) -> bool:
    response = client.get("/patients")
    return response.status_code == 200


# --- the domain -----------------------------------------------------------------------------------


def test_a_code_is_accepted_once_then_refused(make_clinic, make_therapist, now):
    therapist = make_therapist(make_clinic())
    enrol(therapist, now)
    code = code_at(now)
    assert two_step.verify(therapist, code, now)
    db.session.commit()
    assert not two_step.verify(therapist, code, now)
    # A code of an earlier step than the one used is refused too, though still in the window.
    assert not two_step.verify(therapist, code_at(now - timedelta(seconds=30)), now)
    db.session.expire_all()
    assert db.session.get(Therapist, therapist.id).totp_last_step == pyotp.TOTP(SECRET).timecode(
        now
    )


def test_codes_one_step_either_side_are_accepted_and_two_steps_away_refused(
    make_clinic, make_therapist, now
):
    therapist = make_therapist(make_clinic())
    enrol(therapist, now - timedelta(minutes=5))
    assert not two_step.verify(therapist, code_at(now - timedelta(seconds=60)), now)
    assert not two_step.verify(therapist, code_at(now + timedelta(seconds=60)), now)
    assert two_step.verify(therapist, code_at(now - timedelta(seconds=30)), now)
    assert two_step.verify(therapist, code_at(now + timedelta(seconds=30)), now)
    # The step after the one just accepted is used up: the current code is now refused.
    assert not two_step.verify(therapist, code_at(now), now)


def test_a_wrong_or_malformed_code_is_refused(make_clinic, make_therapist, now):
    therapist = make_therapist(make_clinic())
    enrol(therapist, now - timedelta(minutes=5))
    right = code_at(now)
    wrong = f"{(int(right) + 1) % 1_000_000:06d}"
    for text in (wrong, "", "12345", "1234567", "abcdef", "١٢٣٤٥٦"):
        assert not two_step.verify(therapist, text, now), text
    assert two_step.verify(therapist, f" {right[:3]} {right[3:]} ", now)


def test_enrolment_needs_a_code_from_the_new_secret(make_clinic, make_therapist, now):
    therapist = make_therapist(make_clinic())
    other = pyotp.random_base32()
    assert two_step.enable(therapist, SECRET, code_at(now, other), now) is None
    assert therapist.totp_secret is None and not therapist.has_two_factor
    # The code that confirmed enrolment cannot sign anyone in afterwards.
    assert two_step.enable(therapist, SECRET, code_at(now), now) is not None
    db.session.commit()
    assert not two_step.verify(therapist, code_at(now), now)


def test_the_uri_names_the_clinic_and_the_account(make_clinic, make_therapist):
    therapist = make_therapist(make_clinic("Harbour Physio"), email="ines@harbour.example")
    uri = two_step.provisioning_uri(SECRET, therapist)
    parsed = pyotp.parse_uri(uri)
    assert parsed.secret == SECRET and parsed.issuer == "Harbour Physio"
    assert parsed.name == "ines@harbour.example"


def test_recovery_codes_are_stored_hashed_and_carry_enough_entropy(
    make_clinic, make_therapist, now
):
    therapist = make_therapist(make_clinic())
    codes = enrol(therapist, now)
    assert len(codes) == 10 == len(set(codes))
    for code in codes:
        assert re.fullmatch(r"([A-Z2-7]{5}-){4}[A-Z2-7]{5}", code)  # 25 base32 chars: 125 bits
    stored = db.session.scalars(
        select(RecoveryCode.code_hash).where(RecoveryCode.therapist_id == therapist.id)
    ).all()
    plain = {code.replace("-", "") for code in codes}
    assert not any(p in h or h in p for h in stored for p in plain)
    assert set(stored) == {hashlib.sha256(p.encode()).hexdigest() for p in plain}


def test_a_recovery_code_works_once_and_the_count_drops(make_clinic, make_therapist, now):
    therapist = make_therapist(make_clinic())
    codes = enrol(therapist, now)
    # Typed without dashes, in lower case, with spaces: still the code.
    typed = codes[0].replace("-", " ").lower()
    assert recovery.use(therapist.id, typed, now) == 9
    assert recovery.use(therapist.id, codes[0], now) is None
    assert recovery.use(therapist.id, codes[1], now) == 8
    assert recovery.remaining(therapist.id) == 8


def test_new_recovery_codes_replace_the_old_ones(make_clinic, make_therapist, now):
    therapist = make_therapist(make_clinic())
    old = enrol(therapist, now)
    new = recovery.generate(therapist.id, now)
    db.session.commit()
    assert recovery.use(therapist.id, old[2], now) is None
    assert recovery.remaining(therapist.id) == 10
    assert recovery.use(therapist.id, new[0], now) == 9


def test_one_therapists_recovery_code_does_not_open_anothers(make_clinic, make_therapist, now):
    clinic = make_clinic()
    ana, ben = make_therapist(clinic), make_therapist(clinic)
    codes = enrol(ana, now)
    enrol(ben, now)
    assert recovery.use(ben.id, codes[0], now) is None
    assert recovery.use(ana.id, codes[0], now) == 9


# --- signing in -----------------------------------------------------------------------------------


def test_with_two_step_on_the_password_alone_signs_nobody_in(
    client, make_clinic, make_therapist, now
):
    therapist = make_therapist(make_clinic())
    enrol(therapist, now - timedelta(minutes=5))
    response = sign_in(client, therapist.email)
    assert response.status_code == 303 and response.headers["Location"].endswith("/sign-in/code")
    assert not signed_in(client)
    page = client.get("/sign-in/code").get_data(as_text=True)
    assert '<label for="code">Code</label>' in page

    response = post_code(client, code_at(now))
    assert response.status_code == 302 and response.headers["Location"].endswith("/")
    assert signed_in(client)
    db.session.expire_all()
    # The clock ticks on from `now` (the fixture moves it there and lets it run).
    signed = db.session.get(Therapist, therapist.id).last_sign_in_at
    assert now <= signed < now + timedelta(seconds=30)
    with client.session_transaction() as session:
        assert "two_step_pending" not in session
        assert session["signed_in_at"] == signed.timestamp()


def test_a_code_used_to_sign_in_cannot_sign_in_again(client, make_clinic, make_therapist, now):
    therapist = make_therapist(make_clinic())
    enrol(therapist, now - timedelta(minutes=5))
    sign_in(client, therapist.email)
    assert post_code(client, code_at(now)).status_code == 302
    client.post("/sign-out", data={"csrf_token": csrf_from(client.get("/").get_data(as_text=True))})
    assert not signed_in(client)
    sign_in(client, therapist.email)
    replay = post_code(client, code_at(now))
    assert replay.status_code == 422
    assert "was used already" in replay.get_data(as_text=True)
    assert not signed_in(client)


def test_a_wrong_code_is_refused(client, make_clinic, make_therapist, now):
    therapist = make_therapist(make_clinic())
    enrol(therapist, now - timedelta(minutes=5))
    sign_in(client, therapist.email)
    wrong = f"{(int(code_at(now)) + 1) % 1_000_000:06d}"
    response = post_code(client, wrong)
    assert response.status_code == 422
    assert 'aria-invalid="true"' in response.get_data(as_text=True)
    assert not signed_in(client)


def test_the_pending_sign_in_expires_after_five_minutes(
    client, make_clinic, make_therapist, now, time_machine
):
    therapist = make_therapist(make_clinic())
    enrol(therapist, now - timedelta(minutes=5))
    # The clock stands still at each moment here: the five minutes count from the password.
    time_machine.move_to(now, tick=False)
    sign_in(client, therapist.email)
    token = csrf_from(client.get("/sign-in/code").get_data(as_text=True))
    later = now + timedelta(minutes=5, seconds=1)
    time_machine.move_to(later, tick=False)
    response = client.post("/sign-in/code", data={"code": code_at(later), "csrf_token": token})
    assert response.status_code == 302 and response.headers["Location"].endswith("/sign-in")
    assert not signed_in(client)
    assert client.get("/sign-in/code").status_code == 302
    # Within the five minutes it works.
    sign_in(client, therapist.email)
    time_machine.move_to(later + timedelta(minutes=5), tick=False)
    assert post_code(client, code_at(later + timedelta(minutes=5))).status_code == 302
    assert signed_in(client)


def test_the_code_page_without_a_password_first_sends_to_sign_in(client):
    response = client.get("/sign-in/code")
    assert response.status_code == 302 and response.headers["Location"].endswith("/sign-in")


def test_a_recovery_code_signs_in_once_and_says_how_many_are_left(
    client, make_clinic, make_therapist, now
):
    therapist = make_therapist(make_clinic())
    codes = enrol(therapist, now)
    sign_in(client, therapist.email)
    assert post_code(client, codes[3].lower()).status_code == 302
    page = client.get("/", follow_redirects=True).get_data(as_text=True)
    assert "9 recovery codes are left" in page
    assert recovery.remaining(therapist.id) == 9
    used = db.session.scalar(
        select(AuditEvent).where(AuditEvent.action == "account.recovery_code_used")
    )
    assert used is not None and used.target_id == str(therapist.id)
    client.post("/sign-out", data={"csrf_token": csrf_from(page)})
    sign_in(client, therapist.email)
    assert post_code(client, codes[3]).status_code == 422
    assert not signed_in(client)


def test_wrong_codes_lock_the_account_and_no_other(tmp_path, now):
    app = build_app(
        tmp_path,
        RATELIMIT_ENABLED=True,
        SIGN_IN_RATE_LIMIT="100 per minute",
        SIGN_IN_CODE_LIMIT="3 per 15 minutes",
    )
    client = app.test_client()
    with app.app_context():
        clinic = Clinic(name="Harbour Physio", timezone="Europe/Madrid")
        db.session.add(clinic)
        db.session.flush()
        ana = Therapist(clinic_id=clinic.id, email="ana@h.example", password_hash="")
        ben = Therapist(clinic_id=clinic.id, email="ben@h.example", password_hash="")
        from companion.auth import hash_password

        for therapist in (ana, ben):
            therapist.password_hash = hash_password(PASSWORD)
            db.session.add(therapist)
        db.session.flush()
        enrol(ana, now - timedelta(minutes=5))
        enrol(ben, now - timedelta(minutes=5), secret=pyotp.random_base32())
        ben_secret = ben.totp_secret

        sign_in(client, "ana@h.example")
        wrong = f"{(int(code_at(now)) + 1) % 1_000_000:06d}"
        statuses = [post_code(client, wrong).status_code for _ in range(4)]
        # Locked: even the right code now waits.
        locked = post_code(client, code_at(now))
        assert statuses == [422, 422, 422, 429]
        assert locked.status_code == 429
        assert "Too many attempts for this account" in locked.get_data(as_text=True)
        # Signing in again (a fresh pending state) does not reset the count.
        sign_in(client, "ana@h.example")
        assert post_code(client, code_at(now)).status_code == 429
        # Ben, behind the same address, signs in at once.
        sign_in(client, "ben@h.example")
        assert post_code(client, code_at(now, ben_secret)).status_code == 302
        db.session.remove()
        db.engine.dispose()


# --- the enrolment page ---------------------------------------------------------------------------


def _secret_on(page: str) -> str:
    match = re.search(r'<code class="secret" id="secret">([A-Z2-7 ]+)</code>', page)
    assert match, "the page shows no secret"
    return match.group(1).replace(" ", "")


def test_enrolment_on_the_page(client, make_clinic, make_therapist, now):
    therapist = make_therapist(make_clinic("Harbour Physio"))
    sign_in(client, therapist.email)
    page = client.get("/account/two-step").get_data(as_text=True)
    assert "Two-step sign-in is off" in page
    token = csrf_from(page)
    started = client.post("/account/two-step/start", data={"csrf_token": token})
    assert started.status_code == 303
    page = client.get("/account/two-step").get_data(as_text=True)
    secret = _secret_on(page)
    assert "<svg" in page and '<label for="code">Code</label>' in page
    db.session.expire_all()
    assert db.session.get(Therapist, therapist.id).totp_secret is None  # not until confirmed

    wrong = client.post("/account/two-step/confirm", data={"csrf_token": token, "code": "000000"})
    assert wrong.status_code == 422
    done = client.post(
        "/account/two-step/confirm", data={"csrf_token": token, "code": code_at(now, secret)}
    )
    assert done.status_code == 200
    shown = re.findall(r"<li><code>([A-Z2-7-]+)</code></li>", done.get_data(as_text=True))
    assert len(shown) == 10 and "Save these now" in done.get_data(as_text=True)
    db.session.expire_all()
    saved = db.session.get(Therapist, therapist.id)
    assert saved.totp_secret == secret
    assert now <= saved.totp_enabled_at < now + timedelta(seconds=30)
    assert recovery.use(therapist.id, shown[0], now) == 9
    assert db.session.scalar(select(AuditEvent).where(AuditEvent.action == "account.two_step_on"))
    # Shown once: the page does not show them again.
    again = client.get("/account/two-step").get_data(as_text=True)
    assert shown[1] not in again and "Two-step sign-in is on" in again


def test_turning_off_needs_a_current_code(client, make_clinic, make_therapist, now):
    therapist = make_therapist(make_clinic())
    enrol(therapist, now - timedelta(minutes=5))
    sign_in(client, therapist.email)
    post_code(client, code_at(now - timedelta(seconds=30)))
    token = csrf_from(client.get("/account/two-step").get_data(as_text=True))
    refused = client.post("/account/two-step/off", data={"csrf_token": token, "code": "123456"})
    assert refused.status_code == 422
    db.session.expire_all()
    assert db.session.get(Therapist, therapist.id).has_two_factor
    done = client.post("/account/two-step/off", data={"csrf_token": token, "code": code_at(now)})
    assert done.status_code == 303
    db.session.expire_all()
    off = db.session.get(Therapist, therapist.id)
    assert off.totp_secret is None and not off.has_two_factor
    assert recovery.remaining(therapist.id) == 0
    assert db.session.scalar(select(AuditEvent).where(AuditEvent.action == "account.two_step_off"))


def test_turning_off_is_refused_when_the_clinic_requires_it(
    client, make_clinic, make_therapist, now
):
    clinic = make_clinic()
    therapist = make_therapist(clinic)
    enrol(therapist, now - timedelta(minutes=5))
    clinic.require_two_factor = True
    db.session.commit()
    sign_in(client, therapist.email)
    post_code(client, code_at(now - timedelta(seconds=30)))
    page = client.get("/account/two-step").get_data(as_text=True)
    assert "cannot be turned off" in page
    refused = client.post(
        "/account/two-step/off", data={"csrf_token": csrf_from(page), "code": code_at(now)}
    )
    assert refused.status_code == 409
    db.session.expire_all()
    assert db.session.get(Therapist, therapist.id).has_two_factor


def test_new_recovery_codes_from_the_page(client, make_clinic, make_therapist, now):
    therapist = make_therapist(make_clinic())
    old = enrol(therapist, now - timedelta(minutes=5))
    sign_in(client, therapist.email)
    post_code(client, code_at(now))
    token = csrf_from(client.get("/account/two-step").get_data(as_text=True))
    page = client.post("/account/two-step/recovery-codes", data={"csrf_token": token})
    shown = re.findall(r"<li><code>([A-Z2-7-]+)</code></li>", page.get_data(as_text=True))
    assert len(shown) == 10
    assert recovery.use(therapist.id, old[0], now) is None
    assert recovery.use(therapist.id, shown[0], now) == 9


# --- the clinic's requirement ---------------------------------------------------------------------


def test_the_requirement_sends_an_unenrolled_therapist_to_enrol(
    client, make_clinic, make_therapist, now
):
    clinic = make_clinic()
    clinic.require_two_factor = True
    db.session.commit()
    therapist = make_therapist(clinic, role=Role.THERAPIST)
    response = sign_in(client, therapist.email)
    assert response.status_code == 302  # signed in with the password alone
    for path in ("/", "/patients", "/settings/notifications", "/visits/new"):
        page = client.get(path)
        assert page.status_code == 302, path
        assert page.headers["Location"].endswith("/account/two-step"), path
    enrolment = client.get("/account/two-step")
    assert enrolment.status_code == 200
    page_html = enrolment.get_data(as_text=True)
    # The session's own JSON routes refuse too.
    assert client.get(f"/api/v1/visits/{therapist.id}/fhir").status_code == 403
    script = client.post(
        "/settings/notifications/devices", json={}, headers={"X-CSRFToken": csrf_from(page_html)}
    )
    assert script.status_code == 403
    assert script.get_json()["error"]["code"] == "two_step_required"
    # Enrolled, every page opens.
    token = csrf_from(client.get("/account/two-step").get_data(as_text=True))
    client.post("/account/two-step/start", data={"csrf_token": token})
    secret = _secret_on(client.get("/account/two-step").get_data(as_text=True))
    client.post(
        "/account/two-step/confirm", data={"csrf_token": token, "code": code_at(now, secret)}
    )
    assert client.get("/patients").status_code == 200
    # Signing out stays reachable throughout.
    assert client.post("/sign-out", data={"csrf_token": token}).status_code == 302


def test_the_requirement_lets_an_enrolled_therapist_through(
    client, make_clinic, make_therapist, now
):
    clinic = make_clinic()
    clinic.require_two_factor = True
    therapist = make_therapist(clinic)
    enrol(therapist, now - timedelta(minutes=5))
    sign_in(client, therapist.email)
    post_code(client, code_at(now))
    assert client.get("/patients").status_code == 200


def test_an_admin_sets_the_requirement_and_it_is_audited(client, make_clinic, make_therapist, now):
    clinic = make_clinic()
    admin = make_therapist(clinic)
    sign_in(client, admin.email)
    page = client.get("/settings/clinic").get_data(as_text=True)
    assert "Require two-step sign-in for everyone" in page
    response = client.post(
        "/settings/clinic/two-step",
        data={"csrf_token": csrf_from(page), "require_two_factor": "y"},
    )
    assert response.status_code == 303
    db.session.expire_all()
    assert db.session.get(Clinic, clinic.id).require_two_factor
    event = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "clinic.settings"))
    assert event.detail == {"changed": "require_two_factor", "to": True}
    # The admin has no two-step yet: now they are sent to set it up.
    assert client.get("/settings/clinic").headers["Location"].endswith("/account/two-step")


def test_a_therapist_may_not_set_the_requirement(client, make_clinic, make_therapist):
    clinic = make_clinic()
    therapist = make_therapist(clinic, role=Role.THERAPIST)
    sign_in(client, therapist.email)
    token = csrf_from(client.get("/patients").get_data(as_text=True))
    response = client.post(
        "/settings/clinic/two-step", data={"csrf_token": token, "require_two_factor": "y"}
    )
    assert response.status_code == 403
    db.session.expire_all()
    assert not db.session.get(Clinic, clinic.id).require_two_factor


# --- an admin's reset -----------------------------------------------------------------------------


def test_an_admin_resets_a_colleagues_second_factor(client, make_clinic, make_therapist, now):
    clinic = make_clinic()
    admin = make_therapist(clinic)
    colleague = make_therapist(clinic, role=Role.THERAPIST)
    enrol(colleague, now)
    sign_in(client, admin.email)
    page = client.get("/settings/therapists").get_data(as_text=True)
    action = f"/settings/therapists/{colleague.id}/two-step/reset"
    assert action in page and "Reset two-step" in page
    token = csrf_from(page)
    response = client.post(action, data={"csrf_token": token})
    assert response.status_code == 303
    assert response.headers["Location"].endswith("/settings/therapists")
    db.session.expire_all()
    reset = db.session.get(Therapist, colleague.id)
    assert (reset.totp_secret, reset.totp_enabled_at, reset.totp_last_step) == (None, None, None)
    assert recovery.remaining(colleague.id) == 0
    assert (
        db.session.scalars(
            select(RecoveryCode).where(RecoveryCode.therapist_id == colleague.id)
        ).all()
        == []
    )
    event = db.session.scalar(
        select(AuditEvent).where(AuditEvent.action == "therapist.two_step_reset")
    )
    assert event.actor_id == str(admin.id) and event.target_id == str(colleague.id)
    assert event.clinic_id == clinic.id
    # The colleague signs in with the password alone now.
    client.post("/sign-out", data={"csrf_token": token})
    assert sign_in(client, colleague.email).headers["Location"].endswith("/")


def test_a_therapist_may_not_reset_a_colleague(client, make_clinic, make_therapist, now):
    clinic = make_clinic()
    therapist = make_therapist(clinic, role=Role.THERAPIST)
    colleague = make_therapist(clinic)
    enrol(colleague, now)
    sign_in(client, therapist.email)
    token = csrf_from(client.get("/patients").get_data(as_text=True))
    response = client.post(
        f"/settings/therapists/{colleague.id}/two-step/reset", data={"csrf_token": token}
    )
    assert response.status_code == 403
    db.session.expire_all()
    assert db.session.get(Therapist, colleague.id).has_two_factor


def test_another_clinics_therapist_is_not_found(client, make_clinic, make_therapist, now):
    admin = make_therapist(make_clinic())
    stranger = make_therapist(make_clinic())
    enrol(stranger, now)
    sign_in(client, admin.email)
    token = csrf_from(client.get("/patients").get_data(as_text=True))
    response = client.post(
        f"/settings/therapists/{stranger.id}/two-step/reset", data={"csrf_token": token}
    )
    assert response.status_code == 404
    db.session.expire_all()
    assert db.session.get(Therapist, stranger.id).has_two_factor
    assert (
        db.session.scalar(select(AuditEvent).where(AuditEvent.action == "therapist.two_step_reset"))
        is None
    )


def _one_code_from_two_workers(app, therapist, now) -> None:
    """Both workers loaded the account before either accepted the code (so both see the old last
    step); the second one's conditional UPDATE finds the step taken and refuses."""
    enrol(therapist, now - timedelta(minutes=5))
    code = code_at(now)
    assert therapist.totp_last_step is not None  # loaded here, before the other worker's change
    with app.app_context():  # another worker: its own database session
        other = db.session.get(Therapist, therapist.id)
        assert two_step.verify(other, code, now)
        db.session.commit()
        db.session.remove()
    assert not two_step.verify(therapist, code, now)


def test_two_submissions_of_one_code_cannot_both_pass(app, make_clinic, make_therapist, now):
    _one_code_from_two_workers(app, make_therapist(make_clinic()), now)


@pytest.mark.postgres
def test_two_submissions_of_one_code_cannot_both_pass_on_postgres(
    app, make_clinic, make_therapist, now
):
    _one_code_from_two_workers(app, make_therapist(make_clinic()), now)
