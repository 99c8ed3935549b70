"""Secret tokens: patient links and API keys. Only their SHA-256 is stored.

A 32-byte token from `secrets` has 256 bits, far above the 128 bits design.md asks for, so a fast
hash is enough (nothing to brute-force as with passwords) and lookups stay a single indexed query.
"""

from __future__ import annotations

import hashlib
import secrets


def new_token() -> str:
    return secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()
