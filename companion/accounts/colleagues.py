"""A clinic's therapists as its admins manage them: invites, roles, deactivation; and a password
set through an invite or reset link.

Accounts are never deleted: the audit trail keeps their names. An admin cannot deactivate or
demote themselves, and a clinic always keeps at least one active admin (the clinic row is locked
while that is checked, so two admins demoting each other at once cannot leave none). Every change
is audited, naming the colleague.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from flask_babel import gettext as _
from sqlalchemy import func, select

from companion import audit
from companion.accounts import tokens
from companion.accounts.tokens import IssuedToken
from companion.extensions import db
from companion.models import AccountToken, Clinic, Role, Therapist, TokenPurpose


class AccountError(ValueError):
    """A change the rules refuse; `message` is for the admin, in their language."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class Colleague:
    therapist: Therapist
    # For an invitee: when their newest invite link stops working (None: no usable link).
    invite_expires_at: datetime | None

    @property
    def status(self) -> str:
        if not self.therapist.active:
            return "deactivated"
        if self.therapist.is_pending:
            return "invited"
        return "active"


def _named(therapist: Therapist) -> dict[str, str]:
    # The audit row names the colleague: the target id alone says nothing once read by a person.
    return {"colleague": therapist.email}


def colleagues(clinic_id: uuid.UUID, now: datetime) -> list[Colleague]:
    """The clinic's therapists, active first, then by name; invitees with their link's expiry."""
    therapists = db.session.scalars(
        select(Therapist)
        .where(Therapist.clinic_id == clinic_id)
        .order_by(
            Therapist.active.desc(),
            func.lower(func.coalesce(Therapist.display_name, Therapist.email)),
        )
    ).all()
    expiry = dict(
        db.session.execute(
            select(AccountToken.therapist_id, func.max(AccountToken.expires_at))
            .join(Therapist, Therapist.id == AccountToken.therapist_id)
            .where(
                Therapist.clinic_id == clinic_id,
                AccountToken.purpose == TokenPurpose.INVITE,
                AccountToken.used_at.is_(None),
                AccountToken.expires_at > now,
            )
            .group_by(AccountToken.therapist_id)
        ).all()
    )
    return [Colleague(t, expiry.get(t.id) if t.is_pending else None) for t in therapists]


def colleague_in_clinic(clinic_id: uuid.UUID, therapist_id: uuid.UUID) -> Therapist | None:
    therapist = db.session.get(Therapist, therapist_id)
    return therapist if therapist is not None and therapist.clinic_id == clinic_id else None


def _by_email(email: str) -> Therapist | None:
    return db.session.scalar(
        select(Therapist).where(func.lower(Therapist.email) == email.strip().lower())
    )


def invite(
    clinic: Clinic,
    email: str,
    name: str | None,
    role: str,
    actor: audit.Actor,
    now: datetime,
) -> tuple[Therapist, IssuedToken]:
    """Invite `email` into `clinic`: a pending account (no password) and a 72 h link. Inviting a
    pending invitee of this clinic again sends a new link (the old one stops working). An address
    that already has an account is refused, with nothing said about where that account is."""
    if role not in Role.ALL:
        raise AccountError(_("Choose a role from the list."))
    email = email.strip().lower()
    therapist = _by_email(email)
    if therapist is not None and not (
        therapist.clinic_id == clinic.id and therapist.is_pending and therapist.active
    ):
        raise AccountError(
            _("This e-mail address already has an account. Each address can have only one.")
        )
    action = "therapist.invite_resent"
    if therapist is None:
        therapist = Therapist(clinic_id=clinic.id, email=email, password_hash="")
        db.session.add(therapist)
        action = "therapist.invite"
    therapist.display_name = (name or "").strip() or therapist.display_name
    therapist.role = role
    therapist.invited_at = now
    db.session.flush()
    issued = tokens.issue(therapist, TokenPurpose.INVITE, now)
    audit.record(
        action,
        actor,
        ("therapist", therapist.id),
        now=now,
        detail={**_named(therapist), "role": role},
    )
    return therapist, issued


def resend_invite(therapist: Therapist, actor: audit.Actor, now: datetime) -> IssuedToken:
    """A new invite link for a pending colleague; the earlier one stops working."""
    if not therapist.is_pending or not therapist.active:
        raise AccountError(
            _("Only an active colleague who has not set a password yet can get an invite.")
        )
    therapist.invited_at = now
    issued = tokens.issue(therapist, TokenPurpose.INVITE, now)
    audit.record(
        "therapist.invite_resent",
        actor,
        ("therapist", therapist.id),
        now=now,
        detail=_named(therapist),
    )
    return issued


def _other_active_admins(colleague: Therapist) -> int:
    # Lock the clinic row (PostgreSQL; SQLite has one writer anyway) so concurrent demotions and
    # deactivations in one clinic are checked one after another.
    db.session.execute(select(Clinic.id).where(Clinic.id == colleague.clinic_id).with_for_update())
    return (
        db.session.scalar(
            select(func.count())
            .select_from(Therapist)
            .where(
                Therapist.clinic_id == colleague.clinic_id,
                Therapist.id != colleague.id,
                Therapist.role == Role.ADMIN,
                Therapist.active.is_(True),
                Therapist.password_hash != "",
            )
        )
        or 0
    )


def _keeps_an_admin(colleague: Therapist) -> None:
    if colleague.is_admin and colleague.active and _other_active_admins(colleague) == 0:
        raise AccountError(
            _("The clinic needs at least one active admin. Make another colleague an admin first.")
        )


def change_role(
    acting: Therapist, colleague: Therapist, role: str, actor: audit.Actor, now: datetime
) -> bool:
    """Give `colleague` `role`; False when it is already theirs (nothing to record)."""
    if role not in Role.ALL:
        raise AccountError(_("Choose a role from the list."))
    if colleague.role == role:
        return False
    if colleague.id == acting.id:
        raise AccountError(_("You cannot change your own role. Ask another admin."))
    if role != Role.ADMIN:
        _keeps_an_admin(colleague)
    before = colleague.role
    colleague.role = role
    audit.record(
        "therapist.role",
        actor,
        ("therapist", colleague.id),
        now=now,
        detail={**_named(colleague), "from": before, "to": role},
    )
    return True


def sign_out_everywhere(colleague: Therapist, actor: audit.Actor, now: datetime) -> None:
    """End every session of `colleague` at its next request (a lost phone, a shared computer left
    signed in); they can sign in again at once (ASVS 7.4.5)."""
    colleague.end_sessions()
    audit.record(
        "therapist.sign_out_everywhere",
        actor,
        ("therapist", colleague.id),
        now=now,
        detail=_named(colleague),
    )


def deactivate(acting: Therapist, colleague: Therapist, actor: audit.Actor, now: datetime) -> bool:
    """Stop `colleague` signing in; their session ends on its next request (auth.load_therapist)
    and their unused links stop working. False when already deactivated."""
    if not colleague.active:
        return False
    if colleague.id == acting.id:
        raise AccountError(_("You cannot deactivate your own account. Ask another admin."))
    _keeps_an_admin(colleague)
    colleague.active = False
    # Its sessions end for good: a reactivation later does not bring an old cookie back to life.
    colleague.end_sessions()
    tokens.revoke(colleague.id, now)
    audit.record(
        "therapist.deactivate",
        actor,
        ("therapist", colleague.id),
        now=now,
        detail=_named(colleague),
    )
    return True


def reactivate(colleague: Therapist, actor: audit.Actor, now: datetime) -> bool:
    """Let `colleague` sign in again (an invitee needs a new invite link). False when active."""
    if colleague.active:
        return False
    colleague.active = True
    audit.record(
        "therapist.reactivate",
        actor,
        ("therapist", colleague.id),
        now=now,
        detail=_named(colleague),
    )
    return True


# --- links: set a password, ask for a reset ---------------------------------------------------------


def set_password(token_id: uuid.UUID, password_hash: str, now: datetime) -> Therapist | None:
    """Use the link up and give its account `password_hash` (the caller hashed a password that
    passed the policy), in one transaction; None when the link was used or expired meanwhile.
    An invitee's account becomes usable (invited_at stays, as the record of the invite)."""
    row = tokens.find_by_id(token_id, now)
    if row is None or not tokens.redeem(token_id, now):
        return None
    therapist = row.therapist
    accepted = row.purpose == TokenPurpose.INVITE
    therapist.password_hash = password_hash
    # A reset: whoever held a session of the account (maybe the reason for the reset) is out at
    # their next request. (An invitee has no session yet; the same rule costs nothing there.)
    therapist.end_sessions()
    # Whatever other links were out for this account, the password they would set is chosen now.
    tokens.revoke(therapist.id, now)
    audit.record(
        "therapist.invite_accepted" if accepted else "therapist.password_reset",
        audit.Actor.therapist(therapist),
        ("therapist", therapist.id),
        now=now,
        detail=_named(therapist),
    )
    return therapist


def request_reset(email: str, now: datetime) -> tuple[Therapist, IssuedToken] | None:
    """A 1 h reset link for the active account with a password at `email`; None for any other
    address (unknown, invited, deactivated): the caller answers the same either way."""
    therapist = _by_email(email)
    if therapist is None or not therapist.active or therapist.is_pending:
        return None
    issued = tokens.issue(therapist, TokenPurpose.RESET, now)
    audit.record(
        "therapist.password_reset_sent",
        audit.Actor.system(therapist.clinic_id),
        ("therapist", therapist.id),
        now=now,
        detail=_named(therapist),
    )
    return therapist, issued
