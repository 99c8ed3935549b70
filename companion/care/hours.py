"""The clinic's opening hours: when someone there will see a red flag (pure, no I/O).

The stored form is `clinic.opening_hours`, JSON in the clinic's own wall clock:
`{"mon": [["08:00", "20:00"]], "sat": [["09:00", "13:00"]]}`. A day left out is closed; None means
the clinic never said, so the patient is never told a time we do not know. An interval may end at
"24:00" (open until midnight); one that runs past midnight is two intervals, one on each day.

The patient's red screen reads `clinic_status` (issue 12): "open" only while an interval runs,
"closed" with the instant it next opens, "unknown" when there is no open day to name. Wall clock
to instant goes through timeutil.wall_clock_to_utc, the one DST rule: an opening inside a
spring-forward gap moves to the first minute after it, and a time that happens twice in autumn
takes the first.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Final, Literal
from zoneinfo import ZoneInfo

from companion.timeutil import wall_clock_to_utc

DAYS: Final = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")  # date.weekday() order
MIDNIGHT: Final = 24 * 60  # "24:00", allowed as an end only
# next_opening looks this many local days past today: a weekly timetable with any open day opens
# again within a week.
SEARCH_DAYS: Final = 7

OpeningHours = dict[str, list[list[str]]]  # the stored form
Minutes = tuple[int, int]  # one interval as minutes after local midnight, [start, end)

_CLOCK = re.compile(r"(\d{1,2}):(\d{2})")
_INTERVAL = re.compile(r"(\d{1,2}:\d{2})-(\d{1,2}:\d{2})")


def _minutes(text: str, *, end: bool) -> int:
    match = _CLOCK.fullmatch(text)
    if match is None:
        raise ValueError(f"{text!r} is not a time such as 08:00.")
    hours, minutes = int(match.group(1)), int(match.group(2))
    value = hours * 60 + minutes
    if minutes > 59 or value > MIDNIGHT or (value == MIDNIGHT and not end):
        raise ValueError(
            f"{text!r} is not a time of day (00:00 to 23:59, or 24:00 as a closing time)."
        )
    return value


def _clock(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def _interval(start: str, end: str) -> Minutes:
    opens, closes = _minutes(start, end=False), _minutes(end, end=True)
    if closes <= opens:
        raise ValueError(
            f"{start}-{end}: the closing time must come after the opening time "
            "(for hours past midnight, give the next day its own interval from 00:00)."
        )
    return opens, closes


def _day_intervals(day: str, intervals: Iterable[Minutes]) -> list[Minutes]:
    """Sorted, adjacent ones joined (08:00-12:00 and 12:00-14:00 are 08:00-14:00); overlaps refused."""
    merged: list[Minutes] = []
    for start, end in sorted(intervals):
        if merged and start < merged[-1][1]:
            previous = merged[-1]
            raise ValueError(
                f"{day}: {_clock(start)}-{_clock(end)} overlaps "
                f"{_clock(previous[0])}-{_clock(previous[1])}."
            )
        if merged and start == merged[-1][1]:
            merged[-1] = (merged[-1][0], end)
        else:
            merged.append((start, end))
    return merged


def _stored(week: Mapping[str, list[Minutes]]) -> OpeningHours:
    return {
        day: [[_clock(start), _clock(end)] for start, end in week[day]]
        for day in DAYS
        if week.get(day)
    }


def _days(text: str) -> list[str]:
    """ "mon-fri", "sat", "mon,wed,fri", "mon-wed,sat"; a range may wrap the week ("sat-mon")."""
    chosen: list[str] = []
    for part in text.split(","):
        first, dash, last = part.partition("-")
        if first not in DAYS or (dash and last not in DAYS):
            raise ValueError(
                f"{text!r}: give days as mon, tue, wed, thu, fri, sat, sun, "
                "a range such as mon-fri or a list such as mon,wed."
            )
        if not dash:
            chosen.append(first)
            continue
        start, stop = DAYS.index(first), DAYS.index(last)
        span = (stop - start) % len(DAYS)
        chosen.extend(DAYS[(start + i) % len(DAYS)] for i in range(span + 1))
    return chosen


def parse_specs(specs: Sequence[str]) -> OpeningHours:
    """The CLI's human form to the stored form. Each spec is days then one or more intervals:
    "mon-fri 08:00-20:00", "sat 09:00-13:00", "mon,wed 08:00-12:00 16:00-20:00". Days no spec
    names are closed. Raises ValueError saying what is wrong."""
    if not specs:
        raise ValueError('Give at least one day with hours, such as "mon-fri 08:00-20:00".')
    week: dict[str, list[Minutes]] = {}
    for spec in specs:
        # Commas join days ("mon,wed") and intervals; spaces separate the days from the hours.
        days_part, _, rest = re.sub(r"\s*,\s*", ",", spec.strip().lower()).partition(" ")
        intervals = rest.replace(",", " ").split()
        if not days_part or not intervals:
            raise ValueError(f'{spec!r}: give days and hours, such as "mon-fri 08:00-20:00".')
        parsed: list[Minutes] = []
        for item in intervals:
            match = _INTERVAL.fullmatch(item)
            if match is None:
                raise ValueError(f"{spec!r}: {item!r} is not hours such as 08:00-20:00.")
            parsed.append(_interval(match.group(1), match.group(2)))
        for day in _days(days_part):
            week.setdefault(day, []).extend(parsed)
    return _stored({day: _day_intervals(day, found) for day, found in week.items()})


def validate(hours: Mapping[str, Sequence[Sequence[str]]]) -> OpeningHours:
    """The stored form, checked and in canonical order (the settings form builds it directly).
    Raises ValueError on an unknown day, a bad time, an empty or overlapping interval."""
    week: dict[str, list[Minutes]] = {}
    for day, intervals in hours.items():
        if day not in DAYS:
            raise ValueError(f"{day!r} is not a day (mon, tue, ... sun).")
        parsed: list[Minutes] = []
        for interval in intervals:
            if len(interval) != 2:
                raise ValueError(f"{day}: an interval is an opening and a closing time.")
            parsed.append(_interval(interval[0], interval[1]))
        week[day] = _day_intervals(day, parsed)
    return _stored(week)


def _week(hours: Mapping[str, Sequence[Sequence[str]]]) -> dict[str, list[Minutes]]:
    checked = validate(hours)
    return {
        day: [(_minutes(s, end=False), _minutes(e, end=True)) for s, e in intervals]
        for day, intervals in checked.items()
    }


def render_specs(hours: OpeningHours) -> list[str]:
    """The stored form as CLI specs, consecutive days with the same hours as one range:
    ["mon-fri 08:00-20:00", "sat 09:00-13:00"]. parse_specs(render_specs(h)) == h."""
    week = _week(hours)
    specs: list[str] = []
    i = 0
    while i < len(DAYS):
        intervals = week.get(DAYS[i])
        if not intervals:
            i += 1
            continue
        j = i
        while j + 1 < len(DAYS) and week.get(DAYS[j + 1]) == intervals:
            j += 1
        days = DAYS[i] if i == j else f"{DAYS[i]}-{DAYS[j]}"
        times = " ".join(f"{_clock(s)}-{_clock(e)}" for s, e in intervals)
        specs.append(f"{days} {times}")
        i = j + 1
    return specs


def render(hours: OpeningHours | None) -> str:
    """One line for people: "mon-fri 08:00-20:00, sat 09:00-13:00; other days closed"."""
    if hours is None:
        return "not set"
    specs = render_specs(hours)
    if not specs:
        return "closed every day"
    days_open = sum(1 for day in DAYS if hours.get(day))
    return ", ".join(specs) + ("" if days_open == len(DAYS) else "; other days closed")


def _open_spans(
    week: Mapping[str, list[Minutes]], zone: str, first: date, days: int
) -> list[tuple[datetime, datetime]]:
    """The UTC instants [opens, closes) of every interval on the local days first..first+days-1.
    An interval that a spring-forward gap swallows whole (02:00-03:00 that Sunday) is dropped."""
    spans: list[tuple[datetime, datetime]] = []
    for offset in range(days):
        day = first + timedelta(days=offset)
        for start, end in week.get(DAYS[day.weekday()], []):
            opens = wall_clock_to_utc(day, time(start // 60, start % 60), zone)
            if end == MIDNIGHT:
                closes = wall_clock_to_utc(day + timedelta(days=1), time(0, 0), zone)
            else:
                closes = wall_clock_to_utc(day, time(end // 60, end % 60), zone)
            if closes > opens:
                spans.append((opens, closes))
    return spans


def _spans_around(
    hours: Mapping[str, Sequence[Sequence[str]]], zone: str, now: datetime
) -> list[tuple[datetime, datetime]]:
    today = now.astimezone(ZoneInfo(zone)).date()
    # From yesterday: a DST change can pull yesterday's last interval past local midnight.
    return _open_spans(_week(hours), zone, today - timedelta(days=1), SEARCH_DAYS + 2)


def is_open(hours: Mapping[str, Sequence[Sequence[str]]] | None, zone: str, now: datetime) -> bool:
    """Whether `now` (aware) falls in an opening interval in the clinic's zone `zone`."""
    if not hours:
        return False
    return any(opens <= now < closes for opens, closes in _spans_around(hours, zone, now))


def next_opening(
    hours: Mapping[str, Sequence[Sequence[str]]] | None, zone: str, now: datetime
) -> datetime | None:
    """The first instant at or after `now` when the clinic is open, in UTC: `now` itself while it
    is open. None when it does not open within SEARCH_DAYS local days (or hours were never set)."""
    if not hours:
        return None
    spans = _spans_around(hours, zone, now)
    if any(opens <= now < closes for opens, closes in spans):
        return now
    last_day = now.astimezone(ZoneInfo(zone)).date() + timedelta(days=SEARCH_DAYS)
    later = [
        opens
        for opens, _ in spans
        if opens > now and opens.astimezone(ZoneInfo(zone)).date() <= last_day
    ]
    return min(later) if later else None


def opening_times(
    hours: Mapping[str, Sequence[Sequence[str]]] | None, zone: str, now: datetime
) -> list[datetime]:
    """Every instant after `now`, up to SEARCH_DAYS local days ahead, at which an interval starts:
    all that next_opening can answer for a moment later the same local day, and most later ones
    (the check-in page prepares the patient's sentence for each while it is online). Unreadable
    hours have none, as clinic_status says."""
    if not hours:
        return []
    try:
        spans = _spans_around(hours, zone, now)
    except ValueError:
        return []
    return sorted(opens for opens, _ in spans if opens > now)


OPEN: Final = "open"
CLOSED: Final = "closed"
UNKNOWN: Final = "unknown"
State = Literal["open", "closed", "unknown"]


@dataclass(frozen=True)
class ClinicStatus:
    """What the patient's red screen may say about the clinic right now. `opens_at` (UTC) only
    when closed: "will see this at 08:00 on Monday"."""

    state: State
    opens_at: datetime | None = None


def clinic_status(
    hours: Mapping[str, Sequence[Sequence[str]]] | None, zone: str, now: datetime
) -> ClinicStatus:
    """OPEN, CLOSED with the next opening, or UNKNOWN: hours never set, no open day, or none within
    a week. Hours that fail validation are UNKNOWN too: only the CLI and the settings form write
    them, both through validate, and the red screen must show whatever is stored."""
    try:
        opens_at = next_opening(hours, zone, now)
    except ValueError:
        return ClinicStatus(UNKNOWN)
    if opens_at is None:
        return ClinicStatus(UNKNOWN)
    if opens_at == now:
        return ClinicStatus(OPEN)
    return ClinicStatus(CLOSED, opens_at)
