"""Two-step sign-in with TOTP (RFC 6238, through pyotp): enrolment, codes, the clinic's requirement
and an admin's reset of a colleague's second factor.

A code is accepted within one 30-second step either side of `now` (a phone's clock drifts, and a
code typed at the end of its step arrives in the next), and only for a step later than the last one
accepted for the account (Therapist.totp_last_step): a code seen over a shoulder or replayed from
a proxy's log is refused, even inside its window. The step is claimed with one conditional UPDATE,
so two submissions of the same code at once cannot both pass.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Final

import pyotp
from sqlalchemy import or_, select, update

from companion.accounts import recovery
from companion.extensions import db
from companion.models import Clinic, Therapist

ISSUER: Final = "Aftercare"  # when the clinic has no name to show in the authenticator app
WINDOW: Final = 1  # steps either side of now
DIGITS: Final = 6


def new_secret() -> str:
    """160 random bits (RFC 4226 recommends at least that), base32 as authenticator apps expect."""
    return pyotp.random_base32()


def provisioning_uri(secret: str, therapist: Therapist) -> str:
    """The otpauth:// URI an authenticator app reads from the QR code: the clinic names the entry,
    the e-mail names the account."""
    issuer = (therapist.clinic.name or "").strip() or ISSUER
    return pyotp.TOTP(secret).provisioning_uri(name=therapist.email, issuer_name=issuer)


def grouped_secret(secret: str) -> str:
    """The secret in groups of four, for typing into an app by hand."""
    return " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))


def normalize_code(text: str) -> str:
    return "".join(text.split()).replace("-", "")


def looks_like_totp(text: str) -> bool:
    code = normalize_code(text)
    return len(code) == DIGITS and code.isascii() and code.isdigit()


def matching_step(secret: str, text: str, now: datetime, after: int | None = None) -> int | None:
    """The time step within the window whose code `text` is, if any, later than `after`."""
    if not looks_like_totp(text):
        return None
    totp = pyotp.TOTP(secret)
    current = totp.timecode(now)
    for step in range(current - WINDOW, current + WINDOW + 1):
        if after is not None and step <= after:
            continue
        if pyotp.utils.strings_equal(normalize_code(text), totp.generate_otp(step)):
            return step
    return None


def _claim_step(therapist: Therapist, step: int) -> bool:
    """Record `step` as the last accepted one, unless it (or a later one) already was."""
    claimed = db.session.execute(
        update(Therapist)
        .where(
            Therapist.id == therapist.id,
            or_(Therapist.totp_last_step.is_(None), Therapist.totp_last_step < step),
        )
        .values(totp_last_step=step)
        .execution_options(synchronize_session=False)
    )
    if claimed.rowcount != 1:  # type: ignore[attr-defined]
        return False
    therapist.totp_last_step = step
    db.session.flush()
    return True


def verify(therapist: Therapist, text: str, now: datetime) -> bool:
    """A current code of the therapist's own, not used before. Accepting it uses it up."""
    if therapist.totp_secret is None or therapist.totp_enabled_at is None:
        return False
    step = matching_step(therapist.totp_secret, text, now, after=therapist.totp_last_step)
    return step is not None and _claim_step(therapist, step)


def enable(therapist: Therapist, secret: str, text: str, now: datetime) -> list[str] | None:
    """Turn two-step sign-in on with the secret the therapist's app now holds, once a code from it
    proves so. Returns the new recovery codes (to show once), or None when the code is wrong."""
    step = matching_step(secret, text, now)
    if step is None:
        return None
    therapist.totp_secret = secret
    therapist.totp_enabled_at = now
    # This code counts as used: it cannot sign anyone in afterwards.
    therapist.totp_last_step = step
    return recovery.generate(therapist.id, now)


def disable(therapist: Therapist) -> None:
    """Forget the second factor: secret, step and every recovery code."""
    therapist.totp_secret = None
    therapist.totp_enabled_at = None
    therapist.totp_last_step = None
    recovery.discard(therapist.id)


def must_enrol(therapist: Therapist) -> bool:
    """The clinic requires two-step sign-in and this therapist has not turned it on yet."""
    return bool(therapist.clinic.require_two_factor) and not therapist.has_two_factor


def set_required(clinic: Clinic, required: bool) -> bool:
    """Whether the requirement changed."""
    if bool(clinic.require_two_factor) == required:
        return False
    clinic.require_two_factor = required
    return True


def reset_colleague(clinic_id: uuid.UUID, therapist_id: uuid.UUID) -> Therapist | None:
    """An admin's reset of a colleague's second factor (a lost phone and lost codes). None when no
    such therapist is in the clinic. They sign in with their password alone until they enrol again
    (at once, when the clinic requires it)."""
    colleague = db.session.scalar(
        select(Therapist).where(Therapist.id == therapist_id, Therapist.clinic_id == clinic_id)
    )
    if colleague is None:
        return None
    disable(colleague)
    # Whoever holds the lost phone may hold a session too: every one of them ends.
    colleague.end_sessions()
    return colleague
