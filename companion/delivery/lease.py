"""Leases and retries: how a worker takes rows to send, and when it tries again.

Reminders to patients and red alerts to therapists are claimed the same way (design.md, "The
reminder pipeline", step 2): one statement leases a batch (`UPDATE ... WHERE id IN (SELECT ...
FOR UPDATE SKIP LOCKED LIMIT n) RETURNING id`), and the caller commits before any network I/O.
Concurrent workers on PostgreSQL take disjoint batches; SQLite renders no lock clause and
serialises writers itself. A worker that dies keeps nothing locked: its lease runs out.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from sqlalchemy import Select, Update, update

from companion.extensions import db

# Backoff between attempts after a push service error: 1, 2, 4, 8 ... minutes, at most an hour.
BACKOFF_FIRST = timedelta(minutes=1)
BACKOFF_MAX = timedelta(hours=1)


def backoff(attempts: int) -> timedelta:
    return min(BACKOFF_FIRST * (2 ** max(attempts - 1, 0)), BACKOFF_MAX)


def retry_wait(attempts: int, hints: Iterable[float | None]) -> timedelta:
    """How long to wait before the next attempt: the backoff, or longer when a push service said
    so (Retry-After, in seconds, from a 429 or 503)."""
    hinted = [hint for hint in hints if hint is not None]
    wait = backoff(attempts)
    return max(wait, timedelta(seconds=max(hinted))) if hinted else wait


def lease_statement(entity: Any, candidates: Select[Any], **values: Any) -> Update:
    """UPDATE `entity` SET `values` for the rows whose ids `candidates` selects (with its order and
    limit), skipping rows another worker has locked; RETURNING their ids."""
    locked = candidates.with_for_update(skip_locked=True).scalar_subquery()
    return (
        update(entity)
        .where(entity.id.in_(locked))
        .values(**values)
        .returning(entity.id)
        .execution_options(synchronize_session=False)
    )


def claim(entity: Any, candidates: Select[Any], **values: Any) -> list[uuid.UUID]:
    """Lease the rows `candidates` selects; returns their ids. The caller commits at once."""
    return list(db.session.scalars(lease_statement(entity, candidates, **values)))
