"""What a reminder says and where a tap on it goes: neutral words, one text per kind.

Push payloads and calendar events leave our servers (push services, calendar providers) and show on a
lock screen, so they carry no health data: no name, no score, no region, no symptom (design.md, web
push rules). The patient sees the details only after opening the app behind their own link.
Texts are lazy, so each is rendered in the patient's language (`flask_babel.force_locale`).
"""

from __future__ import annotations

from dataclasses import dataclass

from flask_babel import LazyString
from flask_babel import lazy_gettext as _l

from companion.reminders.planning import (
    AFTER_2H,
    AFTER_48H,
    AFTER_72H,
    DAY_7,
    EVENING,
    NEXT_MORNING,
)


@dataclass(frozen=True)
class Notice:
    title: LazyString
    body: LazyString
    path: str  # the patient page a tap opens (signed in by the patient cookie)


TITLE = _l("Aftercare reminder")

NOTICES: dict[str, Notice] = {
    # clinical.md, visit + 2 h: gentle movement, drink as usual, optional quick check-in.
    AFTER_2H: Notice(
        TITLE,
        _l("A gentle reminder about today's care. Tap to see what helps now."),
        "/me/",
    ),
    # clinical.md, evening: heat if it helps, the chosen stretches, check-in.
    EVENING: Notice(
        TITLE,
        _l("This evening's tips are ready, and you can tell us how you are doing."),
        "/me/check-in",
    ),
    # clinical.md, 09:00 the morning after: check-in (about 24 h).
    NEXT_MORNING: Notice(TITLE, _l("Good morning. How are you doing today?"), "/me/check-in"),
    # clinical.md, visit + 48 h: check-in.
    AFTER_48H: Notice(TITLE, _l("Two days on: how are you doing?"), "/me/check-in"),
    # clinical.md, visit + 72 h: check-in (sent only when still needed).
    AFTER_72H: Notice(TITLE, _l("A short check-in, please: how are you doing?"), "/me/check-in"),
    # clinical.md, day 7: how is your usual pain.
    DAY_7: Notice(TITLE, _l("One week on: one last question for you."), "/me/check-in"),
}
