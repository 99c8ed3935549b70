"""Time helpers. Every stored timestamp is UTC and timezone-aware in Python."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from sqlalchemy import DateTime
from sqlalchemy.types import TypeDecorator


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A DateTime column that only accepts aware datetimes and always returns UTC-aware ones.

    SQLite has no time zone type and hands back naive values; they were written as UTC, so we
    re-attach UTC on the way out. A naive value on the way in is a bug, so it raises.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: object) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: object) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


_ZONES: frozenset[str] | None = None


def is_iana_zone(name: str) -> bool:
    """True for canonical IANA names such as 'Europe/Madrid'.

    zoneinfo also loads keys that are not zone names ('posixrules', file paths); we only take names
    from the tz database's list, so a stored zone is always one a calendar client recognises.
    """
    global _ZONES
    if _ZONES is None:
        _ZONES = frozenset(available_timezones())
    if name not in _ZONES:
        return False
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def to_local(moment: datetime, zone: str) -> datetime:
    return moment.astimezone(ZoneInfo(zone))
