"""Recording what the channels answered: one place for patients' reminders and therapists'
alerts alike (design.md, reminder pipeline steps 3 and 5).

`record` writes one row per outcome into the caller's table (reminders: `delivery`; alerts:
`alert_notice`) and applies what a push service's answer means for the device it came from:

- ACCEPTED: the device works; `last_success_at` says when it last took a message;
- GONE (404/410): the browser unsubscribed; the device row is deleted and never tried again;
- REFUSED by the push service (401/403, other 4xx): our side is wrong (VAPID key changed, payload
  too big): logged loudly, the device is kept;
- RETRY: nothing changes here; the caller decides when to try again.

Everything joins the caller's transaction; the caller commits.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert, update

from companion import channels
from companion.extensions import db

log = logging.getLogger(__name__)

DETAIL_MAX = 200  # the shorter of the two tables' detail columns


def record(
    table: Any,
    outcomes: Sequence[channels.Outcome],
    now: datetime,
    fields: Callable[[channels.Outcome], dict[str, Any]],
    *,
    devices: Any = None,
    device_of: Callable[[channels.Outcome], uuid.UUID] | None = None,
) -> set[uuid.UUID]:
    """One `table` row per outcome: `fields(outcome)` (what it was for, whom, on which channel)
    plus when, and what the channel answered. With `devices` (the push device model) and
    `device_of`, the devices are updated as above. Returns the ids of the devices deleted."""
    rows = [
        {
            **fields(outcome),
            "attempted_at": now,
            "outcome": outcome.code,
            "status_code": outcome.status_code,
            "detail": (outcome.detail or "")[:DETAIL_MAX] or None,
        }
        for outcome in outcomes
    ]
    if rows:
        db.session.execute(insert(table), rows)
    if devices is None or device_of is None:
        return set()
    return _update_devices(devices, [(device_of(o), o) for o in outcomes], now)


def _update_devices(
    model: Any, answers: list[tuple[uuid.UUID, channels.Outcome]], now: datetime
) -> set[uuid.UUID]:
    delivered: set[uuid.UUID] = set()
    gone: set[uuid.UUID] = set()
    for device_id, outcome in answers:
        if outcome.kind == channels.ACCEPTED:
            delivered.add(device_id)
        elif outcome.kind == channels.GONE:
            gone.add(device_id)
        elif outcome.kind == channels.REFUSED and outcome.status_code is not None:
            # No health data in this line: a status and a device id.
            log.error(
                "push service refused a message: status %s, device %s",
                outcome.status_code,
                device_id,
            )
    if delivered - gone:
        db.session.execute(
            update(model)
            .where(model.id.in_(delivered - gone))
            .values(last_success_at=now)
            .execution_options(synchronize_session=False)
        )
    if gone:
        db.session.execute(
            delete(model).where(model.id.in_(gone)).execution_options(synchronize_session=False)
        )
    return gone
