"""A clinic's API keys: create (the key is shown once), list, revoke, and check a presented key.

Only the key's SHA-256 is stored (companion/tokens.py) and its first characters, so a list can
name it. The same `create_key` serves the CLI (`flask apikey create`) and the API keys page.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Final

from sqlalchemy import select

from companion.extensions import db
from companion.models import ApiKey
from companion.tokens import hash_token, new_token

KEY_PREFIX: Final = "ak_"
# What a list shows of a key: "ak_" and 7 characters of the token (42 bits: enough to tell keys
# apart, far too few to guess the rest).
SHOWN_CHARACTERS: Final = 10
NAME_MAX_LENGTH: Final = 100
# `last_used_at` is a rough "is this key still in use?" for the clinic: written at most once a
# minute per key, so a busy integration does not turn every API read into a write.
LAST_USED_PRECISION: Final = timedelta(minutes=1)


def create_key(clinic_id: uuid.UUID, name: str | None, now: datetime) -> tuple[ApiKey, str]:
    """A new key for the clinic (added to the session, not committed) and its full text, which
    is never stored and cannot be shown again."""
    key = KEY_PREFIX + new_token()
    row = ApiKey(
        clinic_id=clinic_id,
        prefix=key[:SHOWN_CHARACTERS],
        key_hash=hash_token(key),
        name=(name or "").strip()[:NAME_MAX_LENGTH] or None,
        created_at=now,
    )
    db.session.add(row)
    db.session.flush()  # the id, for the audit row
    return row, key


def keys_of(clinic_id: uuid.UUID) -> list[ApiKey]:
    """The clinic's keys, live ones first, newest first within each group."""
    return list(
        db.session.scalars(
            select(ApiKey)
            .where(ApiKey.clinic_id == clinic_id)
            .order_by(ApiKey.revoked_at.is_not(None), ApiKey.created_at.desc(), ApiKey.id)
        )
    )


def key_in_clinic(clinic_id: uuid.UUID, key_id: uuid.UUID) -> ApiKey | None:
    """The key, if it is this clinic's (another clinic's key is as good as unknown)."""
    return db.session.scalar(
        select(ApiKey).where(ApiKey.id == key_id, ApiKey.clinic_id == clinic_id)
    )


def revoke_key(key: ApiKey, now: datetime) -> bool:
    """Revoke the key at once; False when it already was (the first revocation time stays)."""
    if key.revoked_at is not None:
        return False
    key.revoked_at = now
    return True


def verify_key(presented: str) -> ApiKey | None:
    """The live key whose text was presented, or None (unknown or revoked)."""
    return db.session.scalar(
        select(ApiKey).where(
            ApiKey.key_hash == hash_token(presented.strip()), ApiKey.revoked_at.is_(None)
        )
    )


def note_use(key: ApiKey, now: datetime) -> bool:
    """Set the key's `last_used_at` unless it was set less than LAST_USED_PRECISION ago; True
    when it changed (the caller commits it: a read-only request commits nothing else)."""
    if key.last_used_at is not None and now - key.last_used_at < LAST_USED_PRECISION:
        return False
    key.last_used_at = now
    return True
