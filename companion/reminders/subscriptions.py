"""Push subscriptions: which browsers may be sent a reminder, and where (the Push API endpoint).

Only endpoints on the allowlisted push services are stored (PUSH_ENDPOINT_ALLOWLIST), over https;
plain http is accepted only for a loopback host the allowlist names itself (a local test receiver).
Sending is the reminder worker's job (issue 4, channels).
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import select

from companion.extensions import db
from companion.models import PushSubscription


def save_subscription(
    patient_id: uuid.UUID, endpoint: str, p256dh: str, auth: str, now: datetime
) -> tuple[PushSubscription, bool]:
    """Store a browser's subscription; the same endpoint again updates it (returns created=False).

    An endpoint belongs to one browser profile: if another patient subscribes from it, it is theirs
    now, so a reminder never reaches a phone that has moved on to another person's link.
    """
    existing = db.session.scalar(
        select(PushSubscription).where(PushSubscription.endpoint == endpoint)
    )
    if existing is not None:
        existing.patient_id = patient_id
        existing.p256dh = p256dh
        existing.auth = auth
        return existing, False
    subscription = PushSubscription(
        patient_id=patient_id, endpoint=endpoint, p256dh=p256dh, auth=auth, created_at=now
    )
    db.session.add(subscription)
    return subscription, True


def delete_subscription(patient_id: uuid.UUID, endpoint: str) -> bool:
    subscription = db.session.scalar(
        select(PushSubscription).where(
            PushSubscription.endpoint == endpoint, PushSubscription.patient_id == patient_id
        )
    )
    if subscription is None:
        return False
    db.session.delete(subscription)
    return True
