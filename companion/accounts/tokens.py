"""Single-use links for therapist accounts: an invite (72 h) and a password reset (1 h).

Only the token's SHA-256 is stored (companion/tokens.py). A new token of a purpose revokes the
therapist's earlier unused ones of that purpose (marks them used), so only the newest link works.
Redeeming is one conditional UPDATE (unused, unexpired), checked by its row count: two uses at
once, in two workers, cannot both succeed.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from sqlalchemy import select, update

from companion.extensions import db
from companion.models import AccountToken, Therapist, TokenPurpose
from companion.tokens import hash_token, new_token

VALID_FOR: Final = {
    TokenPurpose.INVITE: timedelta(hours=72),
    TokenPurpose.RESET: timedelta(hours=1),
}


@dataclass(frozen=True)
class IssuedToken:
    """The token itself exists only here, on its way into a link; the database has its hash."""

    token: str
    expires_at: datetime


def revoke(therapist_id: uuid.UUID, now: datetime, purpose: str | None = None) -> None:
    """Mark the therapist's unused tokens (of `purpose`, or all) used: their links stop working."""
    query = update(AccountToken).where(
        AccountToken.therapist_id == therapist_id, AccountToken.used_at.is_(None)
    )
    if purpose is not None:
        query = query.where(AccountToken.purpose == purpose)
    db.session.execute(query.values(used_at=now))


def issue(therapist: Therapist, purpose: str, now: datetime) -> IssuedToken:
    """A fresh link token for `therapist`; earlier unused ones of the same purpose stop working."""
    revoke(therapist.id, now, purpose)
    token = new_token()
    expires_at = now + VALID_FOR[purpose]
    db.session.add(
        AccountToken(
            therapist_id=therapist.id,
            purpose=purpose,
            token_hash=hash_token(token),
            created_at=now,
            expires_at=expires_at,
        )
    )
    db.session.flush()
    return IssuedToken(token, expires_at)


def _account_fits(row: AccountToken) -> bool:
    """An invite is for an active account with no password yet; a reset for an active account
    with one. (Deactivating revokes the tokens too; this also holds for rows from before that.)"""
    therapist = row.therapist
    if not therapist.active:
        return False
    if row.purpose == TokenPurpose.INVITE:
        return therapist.is_pending
    return not therapist.is_pending


def find(token: str, now: datetime) -> AccountToken | None:
    """The usable token row behind `token` (unused, unexpired, for a fitting account), or None.
    Reading only: the link is used up by `redeem`."""
    row = db.session.scalar(
        select(AccountToken).where(AccountToken.token_hash == hash_token(token))
    )
    return row if row is not None and usable(row, now) else None


def find_by_id(token_id: uuid.UUID, now: datetime) -> AccountToken | None:
    row = db.session.get(AccountToken, token_id)
    return row if row is not None and usable(row, now) else None


def usable(row: AccountToken, now: datetime) -> bool:
    return row.used_at is None and now < row.expires_at and _account_fits(row)


def redeem(token_id: uuid.UUID, now: datetime) -> bool:
    """Use the token up, in the caller's transaction: True for exactly one caller while it is
    unused and unexpired. The caller changes the account in the same transaction and commits."""
    used = db.session.execute(
        update(AccountToken)
        .where(
            AccountToken.id == token_id,
            AccountToken.used_at.is_(None),
            AccountToken.expires_at > now,
        )
        .values(used_at=now)
    )
    return used.rowcount == 1  # type: ignore[attr-defined]
