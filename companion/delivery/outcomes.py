"""What a push service's answers mean for the devices they came from: one place for patients'
reminders and therapists' alerts alike (design.md, reminder pipeline step 3).

- accepted: the device works; `last_success_at` says when it last took a message;
- gone (404/410): the browser unsubscribed; the device row is deleted and never tried again;
- rejected (401/403, other 4xx): our side is wrong (VAPID key changed, payload too big): logged
  loudly, the device is kept;
- throttled or a server error: nothing changes here; the caller retries later.

The caller records its own delivery rows (reminders: `delivery`; alerts: `alert_notice`) in the
same transaction, and commits.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import delete, update

from companion.channels import webpush
from companion.extensions import db

log = logging.getLogger(__name__)


def apply_push_results(
    device_model: Any,
    results: Iterable[tuple[uuid.UUID, webpush.PushResult]],
    now: datetime,
    what: str,
) -> set[uuid.UUID]:
    """Update the devices (`PushSubscription` or `TherapistDevice` rows, by id) after sending:
    mark those that accepted, delete those gone. Returns the ids deleted. `what` names the
    message in the log ("a reminder", "an alert"); no health data is ever in these lines."""
    delivered: set[uuid.UUID] = set()
    gone: set[uuid.UUID] = set()
    for device_id, result in results:
        if result.outcome == webpush.ACCEPTED:
            delivered.add(device_id)
        elif result.outcome == webpush.GONE:
            gone.add(device_id)
        elif result.outcome == webpush.REJECTED:
            log.error(
                "push service refused %s: status %s, device %s", what, result.status_code, device_id
            )
    if delivered - gone:
        db.session.execute(
            update(device_model)
            .where(device_model.id.in_(delivered - gone))
            .values(last_success_at=now)
            .execution_options(synchronize_session=False)
        )
    if gone:
        db.session.execute(
            delete(device_model)
            .where(device_model.id.in_(gone))
            .execution_options(synchronize_session=False)
        )
    return gone
