"""The calendar channel: an iCalendar feed of a visit's reminders, behind a capability URL of its own.

The feed URL carries a token signed with the app's secret (itsdangerous, its own salt), naming one
patient link. It works for as long as that link does: revoking or expiring the link ends the feed.
It is not the patient link token, so a calendar app that syncs the feed can never open the patient
pages, and nothing about it is stored.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from flask import current_app
from flask_babel import force_locale
from icalendar import Alarm, Calendar, Event, vDuration
from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy import select

from companion.extensions import db
from companion.models import PatientLink, Reminder, ReminderStatus, Visit
from companion.reminders.notices import NOTICES, TITLE
from companion.urls import absolute_url_for

SALT = "calendar-feed"
PRODID = "-//Aftercare companion//Calendar feed//EN"
UID_DOMAIN = "aftercare-companion"
# How long an event lasts on the patient's calendar: a short slot that marks the moment.
EVENT_LENGTH = timedelta(minutes=15)
# How often a subscribed calendar should fetch the feed again, so a re-plan, an answered check-in or
# "fully recovered" reaches it within the hour (clients may poll less often; we cannot force them).
REFRESH = timedelta(hours=1)
# Reminders in these states will never nudge the patient: showing them would leave stale events.
# Sent, failed, expired and no-device ones stay, so the calendar keeps the moments that passed.
HIDDEN_STATUSES = frozenset(
    {ReminderStatus.CANCELLED, ReminderStatus.SKIPPED, ReminderStatus.ANSWERED}
)


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
    return absolute_url_for("calendar.feed", token=feed_token(link))


def live_link(token: str, now: datetime) -> PatientLink | None:
    """The link a feed token names while that link is usable; None for anything else.

    A bad signature is refused before any query, and unknown, revoked and expired links look the
    same to the caller (no detail for someone probing tokens).
    """
    link_id = link_id_from_token(token)
    if link_id is None:
        return None
    link = db.session.get(PatientLink, link_id)
    if link is None or not link.usable(now):
        return None
    return link


def feed_reminders(visit: Visit) -> list[Reminder]:
    return list(
        db.session.scalars(
            select(Reminder)
            .where(Reminder.visit_id == visit.id, Reminder.status.not_in(HIDDEN_STATUSES))
            .order_by(Reminder.due_at, Reminder.kind)
        )
    )


def event_uid(reminder: Reminder) -> str:
    # The row id survives a re-plan (planning.replan updates rows in place), so the calendar moves
    # the event it already has instead of adding a second one.
    return f"{reminder.id}@{UID_DOMAIN}"


def _utc(moment: datetime) -> datetime:
    # iCalendar times have whole seconds; UTC makes them print as "...Z" with no zone to resolve.
    return moment.astimezone(UTC).replace(microsecond=0)


def _last_modified(reminder: Reminder, visit: Visit) -> datetime:
    # A reminder's time only changes when its visit is edited and re-planned.
    return _utc(max(reminder.created_at, visit.updated_at))


def _sequence(reminder: Reminder, visit: Visit) -> int:
    # RFC 5545 wants a number that grows with each revision; whole minutes from the row's creation
    # to the last edit of its visit only ever grow, and need no counter column.
    elapsed = _last_modified(reminder, visit) - _utc(reminder.created_at)
    return max(0, int(elapsed.total_seconds() // 60))


def _event(reminder: Reminder, visit: Visit, base_url: str, now: datetime) -> Event:
    notice = NOTICES[reminder.kind]
    title, body = str(notice.title), str(notice.body)
    page = f"{base_url}{notice.path}"
    event = Event()
    event.add("uid", event_uid(reminder))
    event.add("dtstamp", _utc(now))
    event.add("dtstart", _utc(reminder.due_at))
    event.add("duration", EVENT_LENGTH)
    event.add("last-modified", _last_modified(reminder, visit))
    event.add("sequence", _sequence(reminder, visit))
    event.add("summary", title)
    # Several calendar apps ignore URL, so the link is in the text too; both are the page only.
    event.add("description", f"{body}\n\n{page}")
    event.add("url", page)
    # A reminder should not make the patient look busy to people who share their calendar.
    event.add("transp", "TRANSPARENT")
    event.add_component(_alarm(body))
    return event


def _alarm(body: str) -> Alarm:
    alarm = Alarm()
    alarm.add("action", "DISPLAY")
    alarm.add("description", body)
    alarm.add("trigger", timedelta(0))  # at the event's start, which is the reminder's due time
    return alarm


def build_feed(
    visit: Visit, reminders: Sequence[Reminder], *, base_url: str, now: datetime
) -> bytes:
    """The iCalendar document (RFC 5545) for a visit's reminders, in the patient's language.

    Texts come from NOTICES only: what leaves for a calendar provider carries no name, score,
    region or note (design.md, web push rules apply to calendars too).
    """
    with force_locale(visit.patient.language):
        calendar = Calendar()
        calendar.add("prodid", PRODID)
        calendar.add("version", "2.0")
        calendar.add("calscale", "GREGORIAN")
        calendar.add("method", "PUBLISH")
        calendar.add("name", str(TITLE))
        calendar.add("x-wr-calname", str(TITLE))
        calendar.add("refresh-interval", REFRESH, parameters={"VALUE": "DURATION"})
        # Outlook and older Apple clients read the non-standard name instead of RFC 7986's.
        calendar.add("x-published-ttl", vDuration(REFRESH))
        for reminder in reminders:
            calendar.add_component(_event(reminder, visit, base_url, now))
        return calendar.to_ical()
