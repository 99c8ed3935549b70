"""Recovery codes for two-step sign-in: ten single-use codes, for a therapist without their phone.

Each code is 25 characters of the RFC 4648 base32 alphabet from `secrets`: 125 bits. OWASP ASVS
5.0 (6.5.2) asks a salted slow hash only of lookup secrets under 112 bits; at 125 bits nothing can
be guessed offline, so a SHA-256 (companion.tokens.hash_token) is enough, and checking a code is
one indexed lookup rather than ten slow hashes. Shown grouped in fives ("ABCDE-FGHIJ-..."); typed
back with or without the dashes or spaces, in either case.
"""

from __future__ import annotations

import re
import secrets
import uuid
from datetime import datetime
from typing import Final

from sqlalchemy import delete, func, select, update

from companion.extensions import db
from companion.models import RecoveryCode
from companion.tokens import hash_token

COUNT: Final = 10
LENGTH: Final = 25  # characters; 5 bits each
GROUP: Final = 5
_ALPHABET: Final = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
# 0, 1 and 8 are not in the alphabet; read off paper they can only have meant these letters.
_LOOKALIKES: Final = str.maketrans({"0": "O", "1": "I", "8": "B"})
_SEPARATORS: Final = re.compile(r"[\s\-_.]+")


def normalize(text: str) -> str:
    """What the therapist typed, as the code was generated: no separators, upper case."""
    return _SEPARATORS.sub("", text).upper().translate(_LOOKALIKES)


def looks_like_code(text: str) -> bool:
    code = normalize(text)
    return len(code) == LENGTH and all(char in _ALPHABET for char in code)


def _new_code() -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(LENGTH))


def grouped(code: str) -> str:
    return "-".join(code[i : i + GROUP] for i in range(0, len(code), GROUP))


def generate(therapist_id: uuid.UUID, now: datetime) -> list[str]:
    """A fresh set of codes, replacing every earlier one (used or not). Returns them, grouped, to
    show once: only their hashes are kept."""
    db.session.execute(delete(RecoveryCode).where(RecoveryCode.therapist_id == therapist_id))
    codes = [_new_code() for _ in range(COUNT)]
    db.session.add_all(
        RecoveryCode(therapist_id=therapist_id, code_hash=hash_token(code), created_at=now)
        for code in codes
    )
    return [grouped(code) for code in codes]


def remaining(therapist_id: uuid.UUID) -> int:
    return db.session.scalar(
        select(func.count())
        .select_from(RecoveryCode)
        .where(RecoveryCode.therapist_id == therapist_id, RecoveryCode.used_at.is_(None))
    )


def use(therapist_id: uuid.UUID, text: str, now: datetime) -> int | None:
    """Spend one of the therapist's codes: the number still unused afterwards, or None when `text`
    is not one of their unused codes. A conditional UPDATE: two submissions of one code at once
    cannot both pass."""
    if not looks_like_code(text):
        return None
    spent = db.session.execute(
        update(RecoveryCode)
        .where(
            RecoveryCode.therapist_id == therapist_id,
            RecoveryCode.code_hash == hash_token(normalize(text)),
            RecoveryCode.used_at.is_(None),
        )
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    )
    if spent.rowcount != 1:  # type: ignore[attr-defined]
        return None
    return remaining(therapist_id)


def discard(therapist_id: uuid.UUID) -> None:
    db.session.execute(delete(RecoveryCode).where(RecoveryCode.therapist_id == therapist_id))
