"""How a reminder and its deliveries read for the therapist on the visit page: what it asks, and
what happened, in words (sent to N devices, failed and why, expired, cancelled ...)."""

from __future__ import annotations

from flask_babel import LazyString, ngettext
from flask_babel import lazy_gettext as _l

from companion.channels import webpush
from companion.models import Reminder, ReminderStatus
from companion.reminders.planning import (
    AFTER_2H,
    AFTER_48H,
    AFTER_72H,
    DAY_7,
    EVENING,
    NEXT_MORNING,
)

# The moment and purpose of each kind (clinical.md, "Reminder moments").
REMINDER_KINDS: dict[str, LazyString] = {
    AFTER_2H: _l("2 hours after: gentle movement, drink as usual"),
    EVENING: _l("That evening: heat, stretches, check-in"),
    NEXT_MORNING: _l("Next morning: check-in"),
    AFTER_48H: _l("48 hours: check-in"),
    AFTER_72H: _l("72 hours: check-in if still needed"),
    DAY_7: _l("Day 7: usual pain"),
}

STATUS: dict[str, LazyString] = {
    ReminderStatus.PLANNED: _l("Planned"),
    ReminderStatus.SENT: _l("Sent"),
    ReminderStatus.FAILED: _l("Not delivered"),
    ReminderStatus.EXPIRED: _l("Expired, not sent"),
    ReminderStatus.CANCELLED: _l("Cancelled"),
    ReminderStatus.ANSWERED: _l("Answered by a check-in"),
    ReminderStatus.SKIPPED: _l("Not needed"),
    ReminderStatus.NO_DEVICE: _l("Calendar only"),
}


def delivery_summary(reminder: Reminder) -> str:
    """One line: the status, how many devices took it, and why it ended as it did."""
    status = str(STATUS.get(reminder.status, reminder.status))
    accepted = {d.subscription_id for d in reminder.deliveries if d.outcome == webpush.ACCEPTED}
    parts = [status]
    if reminder.status == ReminderStatus.SENT:
        parts = [
            ngettext(
                "Sent to %(num)d device",
                "Sent to %(num)d devices",
                len(accepted),
            )
        ]
    elif reminder.status == ReminderStatus.PLANNED and reminder.attempts:
        parts.append(
            ngettext("%(num)d attempt so far", "%(num)d attempts so far", reminder.attempts)
        )
    if reminder.last_error and reminder.status != ReminderStatus.SENT:
        parts.append(reminder.last_error)
    return " · ".join(parts)
