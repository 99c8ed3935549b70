"""Time helpers. Every stored timestamp is UTC and timezone-aware in Python."""

from __future__ import annotations

import importlib.resources
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import DateTime
from sqlalchemy.types import TypeDecorator

# The years a date we are given may fall in. Anything else is a typo or a probe, and the far ends
# (9999-12-31T23:59-14:00) cannot even be turned into UTC: one range for every input.
EARLIEST_YEAR, LATEST_YEAR = 2000, 2100


def plausible_year(year: int) -> bool:
    return EARLIEST_YEAR <= year <= LATEST_YEAR


def utcnow() -> datetime:
    return datetime.now(UTC)


def hours_since(start: datetime, moment: datetime) -> float:
    """Hours from `start` (a visit's `performed_at`) to `moment`: the clock every aftercare rule
    reads (triage windows, reminder moments, the chart's axis). Negative before the visit."""
    return (moment - start).total_seconds() / 3600


def utc_instant(moment: datetime) -> str:
    """ISO 8601 in UTC to the second, with a Z ("2026-12-07T09:30:00Z"): the same instant whatever
    zone the reader's software assumes (CSV, FHIR, the patient's data download)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


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


def _tz_database_names() -> tuple[str, ...]:
    """The zone names of the tz database as the pinned tzdata package lists them, less "Factory".

    Not zoneinfo.available_timezones(): that also walks the host's /usr/share/zoneinfo, where
    "localtime" is a link to the host's /etc/localtime and "posixrules" a copy of some zone, so a
    patient's zone (and what we accept) would depend on the server. "Factory" is in the database
    but is a placeholder for "no zone set", not a place. The package's list is the same on every
    host, and the OpenAPI document gives it as the enum of a zone field.
    """
    listed = importlib.resources.files("tzdata").joinpath("zones").read_text(encoding="utf-8")
    return tuple(sorted(set(listed.split()) - {"Factory"}))


# Every zone name we take, anywhere (API, forms, CLI): one list, one rule (is_iana_zone).
IANA_ZONES: tuple[str, ...] = _tz_database_names()
_ZONES = frozenset(IANA_ZONES)


def is_iana_zone(name: str) -> bool:
    """True for a tz database name such as 'Europe/Madrid' (canonical or a backward link).

    Only names from IANA_ZONES: never a path, 'localtime', 'posixrules' or 'Factory', whose meaning
    depends on the host or which name no place, so a stored zone is always one a calendar client
    recognises.
    """
    if name not in _ZONES:
        return False
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def to_local(moment: datetime, zone: str) -> datetime:
    return moment.astimezone(ZoneInfo(zone))


def skipped(local: datetime, zone: str) -> bool:
    """True when the naive wall-clock `local` never shows in `zone`: the clocks jumped over it
    (02:30 in Madrid on the last Sunday of March)."""
    aware = local.replace(tzinfo=ZoneInfo(zone), fold=0)
    return aware.astimezone(UTC).astimezone(ZoneInfo(zone)).replace(tzinfo=None) != local


def wall_clock_to_utc(day: date, at: time, zone: str) -> datetime:
    """The UTC instant of a wall-clock time on a local date, whatever the clocks do that day.

    The one rule for wall-clock input. A time that happens twice in autumn takes the first one. A
    time skipped by a spring-forward change moves to the first valid minute after the gap (a
    planned moment is never lost); a form that takes a time from a person asks `skipped` first
    and refuses it instead.
    """
    tz = ZoneInfo(zone)
    local = datetime.combine(day, at)
    probe = local
    # In a gap: the wall time does not exist. Step minute by minute to the first one that does.
    while skipped(probe, zone):
        probe += timedelta(minutes=1)
    return probe.replace(tzinfo=tz, fold=0).astimezone(UTC)


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
