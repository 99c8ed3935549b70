"""The calendar channel: an iCalendar feed of a visit's reminders, behind a capability URL of its own.

The feed URL carries a token signed with the app's secret (itsdangerous, its own salt), naming one
patient link. It works for as long as that link does: revoking or expiring the link ends the feed.
It is not the patient link token, so a calendar app that syncs the feed can never open the patient
pages, and nothing about it is stored.
"""

from __future__ import annotations

import uuid

from flask import current_app, url_for
from itsdangerous import BadSignature, URLSafeSerializer

from ..models import PatientLink

SALT = "calendar-feed"


def _serializer() -> URLSafeSerializer:
    return URLSafeSerializer(current_app.secret_key, salt=SALT)


def feed_token(link: PatientLink) -> str:
    return _serializer().dumps(link.id.hex)


def link_id_from_token(token: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(hex=_serializer().loads(token))
    except (BadSignature, ValueError, TypeError):
        return None


def feed_url(link: PatientLink) -> str:
    """The absolute https URL of the feed (PUBLIC_URL when set, as for patient links)."""
    path = url_for("calendar.feed", token=feed_token(link))
    base = current_app.config.get("PUBLIC_URL")
    return (
        f"{base}{path}"
        if base
        else url_for("calendar.feed", token=feed_token(link), _external=True)
    )
