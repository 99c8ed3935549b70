"""A clinic's own numbers: the expected-soreness envelope and how long an episode stays open.

clinical.md: "All thresholds are defaults a clinic can change in its settings." The clinic stores
only the two numbers per window of care.triage.ENVELOPE (the windows themselves are fixed: they are
the trials' measurement points); `rules_for` builds the triage rules document from them, and that
one document reaches the server's triage, the browser's offline triage, the reminders' 72 h
condition and the charts alike.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from companion.care.triage import ENVELOPE, Window, rules_document
from companion.models import Clinic

EPISODE_DAYS_DEFAULT = 7
EPISODE_DAYS_MIN = 1
# Past a month "aftercare" is ordinary follow-up; the queue would fill with old episodes.
EPISODE_DAYS_MAX = 30
SCORE_MAX = 10


class SettingsError(ValueError):
    """A setting the clinic cannot have; `field` names it (window index for the envelope)."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


@dataclass(frozen=True)
class EnvelopeStep:
    usual_max: int
    amber_at: int


def envelope_of(clinic: Clinic) -> tuple[Window, ...]:
    """The clinic's envelope: its numbers on the fixed windows, or the clinical.md defaults."""
    stored = clinic.envelope
    if not stored or len(stored) != len(ENVELOPE):
        return ENVELOPE
    return tuple(
        replace(w, usual_max=int(pair[0]), amber_at=int(pair[1]))
        for w, pair in zip(ENVELOPE, stored, strict=True)
    )


def rules_for(clinic: Clinic) -> dict[str, Any]:
    return rules_document(envelope_of(clinic))


def validate_envelope(steps: Sequence[EnvelopeStep]) -> list[list[int]]:
    """Checked numbers to store. Every window needs 0 <= usual maximum < amber <= 10.

    The amber threshold must sit above the usual range, or every ordinary score would raise an
    alert; 10 is the top of the scale, so an amber threshold of 10 still catches "the worst".
    """
    if len(steps) != len(ENVELOPE):
        raise SettingsError("envelope", "one pair per window")
    pairs: list[list[int]] = []
    for index, step in enumerate(steps):
        for value in (step.usual_max, step.amber_at):
            if isinstance(value, bool) or not isinstance(value, int):
                raise SettingsError(str(index), "whole numbers only")
            if not 0 <= value <= SCORE_MAX:
                raise SettingsError(str(index), "between 0 and 10")
        if step.amber_at <= step.usual_max:
            raise SettingsError(str(index), "amber must be above the usual maximum")
        pairs.append([step.usual_max, step.amber_at])
    return pairs


def validate_episode_days(days: int) -> int:
    if isinstance(days, bool) or not isinstance(days, int):
        raise SettingsError("episode_days", "a whole number of days")
    if not EPISODE_DAYS_MIN <= days <= EPISODE_DAYS_MAX:
        raise SettingsError("episode_days", f"between {EPISODE_DAYS_MIN} and {EPISODE_DAYS_MAX}")
    return days


def apply_settings(clinic: Clinic, steps: Sequence[EnvelopeStep], episode_days: int) -> bool:
    """Store checked settings; returns whether anything changed. Defaults are stored as None.

    A changed envelope judges check-ins from now on; earlier check-ins keep the triage they were
    given, which is what the patient was shown at the time.
    """
    pairs = validate_envelope(steps)
    days = validate_episode_days(episode_days)
    defaults = [[w.usual_max, w.amber_at] for w in ENVELOPE]
    envelope = None if pairs == defaults else pairs
    changed = envelope != clinic.envelope or days != clinic.episode_days
    clinic.envelope = envelope
    clinic.episode_days = days
    return changed
