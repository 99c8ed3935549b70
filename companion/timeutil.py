"""Time helpers. Every stored timestamp is UTC and timezone-aware in Python."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from sqlalchemy import DateTime
from sqlalchemy.types import TypeDecorator

# The years a date we are given may fall in. Anything else is a typo or a probe, and the far ends
# (9999-12-31T23:59-14:00) cannot even be turned into UTC: one range for every input.
EARLIEST_YEAR, LATEST_YEAR = 2000, 2100


def plausible_year(year: int) -> bool:
    return EARLIEST_YEAR <= year <= LATEST_YEAR


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


def wall_clock_to_utc(day: date, at: time, zone: str) -> datetime:
    """The UTC instant of a wall-clock time on a local date, whatever the clocks do that day.

    A time skipped by a spring-forward change (02:30 in Madrid on the last Sunday of March) moves to
    the first valid minute after the gap; a time that happens twice in autumn takes the first one.
    """
    tz = ZoneInfo(zone)
    local = datetime.combine(day, at).replace(tzinfo=tz, fold=0)
    instant = local.astimezone(UTC)
    if instant.astimezone(tz).replace(tzinfo=None) != local.replace(tzinfo=None):
        # In a gap: the wall time does not exist. Step minute by minute to the first one that does.
        probe = local.replace(tzinfo=None)
        while True:
            probe += timedelta(minutes=1)
            candidate = probe.replace(tzinfo=tz).astimezone(UTC)
            if candidate.astimezone(tz).replace(tzinfo=None) == probe:
                return candidate
    return instant


def after_quiet_hours(moment: datetime, zone: str, start: time, end: time) -> datetime:
    """`moment` if it is outside the quiet hours [start, end) in `zone`, else the end of them.

    Quiet hours may wrap midnight (21:30 to 08:00). Nothing is dropped, only deferred.
    """
    local = moment.astimezone(ZoneInfo(zone))
    wall = local.time().replace(tzinfo=None)
    if start == end:
        return moment
    if start < end:
        quiet = start <= wall < end
        end_day = local.date()
    else:
        quiet = wall >= start or wall < end
        end_day = local.date() + timedelta(days=1) if wall >= start else local.date()
    if not quiet:
        return moment
    return wall_clock_to_utc(end_day, end, zone)
