"""Planning a visit's reminders in the patient's zone (clinical.md, "Reminder moments"), with an
explicit visit time: DST in both directions in three zones, quiet hours, merging and expiry."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo

import pytest

from companion.reminders.planning import (
    AFTER_2H,
    AFTER_48H,
    AFTER_72H,
    DAY_7,
    EVENING,
    NEXT_MORNING,
    VALID_FOR,
    QuietHours,
    plan_reminders,
)
from companion.timeutil import after_quiet_hours, wall_clock_to_utc


def local(zone: str, *args: int) -> datetime:
    return datetime(*args, tzinfo=ZoneInfo(zone)).astimezone(UTC)


def by_kind(performed_at: datetime, zone: str, quiet: QuietHours | None = None) -> dict:
    return {r.kind: r for r in plan_reminders(performed_at, zone, quiet)}


def test_a_morning_visit_gets_every_moment_of_the_episode():
    zone = "Europe/Madrid"
    visit = local(zone, 2026, 11, 20, 10, 0)
    plan = by_kind(visit, zone)
    assert list(plan) == [AFTER_2H, EVENING, NEXT_MORNING, AFTER_48H, AFTER_72H, DAY_7]
    assert plan[AFTER_2H].due_at == visit + timedelta(hours=2)
    assert plan[EVENING].due_at == visit + timedelta(hours=6)
    assert plan[NEXT_MORNING].due_at == local(zone, 2026, 11, 21, 9, 0)
    assert plan[AFTER_48H].due_at == visit + timedelta(hours=48)
    assert plan[AFTER_72H].due_at == visit + timedelta(hours=72)
    assert plan[AFTER_72H].conditional and not plan[AFTER_48H].conditional
    assert plan[DAY_7].due_at == local(zone, 2026, 11, 27, 10, 0)
    for reminder in plan.values():
        assert reminder.due_at.tzinfo is UTC
        assert reminder.expires_at == reminder.due_at + VALID_FOR[reminder.kind]


def test_the_evening_reminder_comes_no_later_than_21_local():
    zone = "Europe/Madrid"
    plan = by_kind(local(zone, 2026, 11, 20, 16, 0), zone)
    assert plan[EVENING].due_at == local(zone, 2026, 11, 20, 21, 0)


@pytest.mark.parametrize(
    ("zone", "visit", "morning"),
    [
        # Spring forward, Madrid: Sunday 29 March 2026, 02:00 CET becomes 03:00 CEST.
        ("Europe/Madrid", (2026, 3, 28, 10, 0), (2026, 3, 29, 7, 0)),
        # Fall back, Madrid: Sunday 25 October 2026, 03:00 CEST becomes 02:00 CET.
        ("Europe/Madrid", (2026, 10, 24, 10, 0), (2026, 10, 25, 8, 0)),
        # Spring forward, New York: Sunday 8 March 2026.
        ("America/New_York", (2026, 3, 7, 10, 0), (2026, 3, 8, 13, 0)),
        # Fall back, New York: Sunday 1 November 2026.
        ("America/New_York", (2026, 10, 31, 10, 0), (2026, 11, 1, 14, 0)),
        # Spring forward, Sydney: Sunday 4 October 2026, 02:00 AEST becomes 03:00 AEDT.
        ("Australia/Sydney", (2026, 10, 3, 10, 0), (2026, 10, 3, 22, 0)),
        # Fall back, Sydney: Sunday 5 April 2026, 03:00 AEDT becomes 02:00 AEST.
        ("Australia/Sydney", (2026, 4, 4, 10, 0), (2026, 4, 4, 23, 0)),
    ],
)
def test_the_morning_after_is_at_9_local_on_both_sides_of_a_clock_change(zone, visit, morning):
    plan = by_kind(local(zone, *visit), zone)
    due = plan[NEXT_MORNING].due_at
    assert due == datetime(*morning, tzinfo=UTC)
    assert due.astimezone(ZoneInfo(zone)).time() == time(9, 0)
    # A week later is the same wall-clock time, whatever the offset did in between.
    assert plan[DAY_7].due_at.astimezone(ZoneInfo(zone)).time() == time(10, 0)
    # Elapsed moments stay elapsed: 48 real hours, even across the change.
    assert plan[AFTER_48H].due_at - local(zone, *visit) == timedelta(hours=48)


def test_a_wall_clock_moment_that_does_not_exist_moves_to_the_first_valid_minute():
    # 02:30 on 29 March 2026 does not exist in Madrid; 03:00 CEST is the first minute after the gap.
    assert wall_clock_to_utc(date(2026, 3, 29), time(2, 30), "Europe/Madrid") == datetime(
        2026, 3, 29, 1, 0, tzinfo=UTC
    )
    # 02:30 on 25 October 2026 happens twice: the first one (CEST) is taken.
    assert wall_clock_to_utc(date(2026, 10, 25), time(2, 30), "Europe/Madrid") == datetime(
        2026, 10, 25, 0, 30, tzinfo=UTC
    )


def test_quiet_hours_defer_to_their_end_and_never_drop():
    zone = "Europe/Madrid"
    quiet_start, quiet_end = time(21, 30), time(8, 0)
    late = local(zone, 2026, 11, 20, 23, 15)
    assert after_quiet_hours(late, zone, quiet_start, quiet_end) == local(zone, 2026, 11, 21, 8, 0)
    early = local(zone, 2026, 11, 21, 6, 0)
    assert after_quiet_hours(early, zone, quiet_start, quiet_end) == local(zone, 2026, 11, 21, 8, 0)
    day = local(zone, 2026, 11, 21, 12, 0)
    assert after_quiet_hours(day, zone, quiet_start, quiet_end) == day


def test_a_late_visit_gets_one_morning_reminder_instead_of_a_night_nudge_and_a_morning_one():
    zone = "Europe/Madrid"
    # 20:30: the 2 h nudge (22:30) would be deferred into tomorrow, where a same-day nudge is
    # not sent (clinical.md); the 09:00 check-in is the first reminder, at its own time.
    plan = plan_reminders(local(zone, 2026, 11, 20, 20, 30), zone)
    kinds = [r.kind for r in plan]
    assert AFTER_2H not in kinds and EVENING not in kinds
    first = plan[0]
    assert first.kind == NEXT_MORNING and first.due_at == local(zone, 2026, 11, 21, 9, 0)
    dues = [r.due_at for r in plan]
    assert dues == sorted(dues) and len(set(kinds)) == len(kinds)
    assert all(b - a >= timedelta(hours=2) for a, b in pairwise(dues))


def test_reminders_exactly_two_hours_apart_become_one():
    zone = "Europe/Madrid"
    # 17:00: the 2 h nudge at 19:00 and the evening one at 21:00 (capped) are exactly 2 h apart.
    plan = by_kind(local(zone, 2026, 11, 20, 17, 0), zone)
    assert AFTER_2H not in plan
    assert plan[EVENING].due_at == local(zone, 2026, 11, 20, 19, 0)


def test_a_same_day_nudge_deferred_into_the_next_day_is_dropped_not_sent_late():
    zone = "Europe/Madrid"
    # Quiet from 22:00: a 20:00 visit's 2 h nudge (22:00) would wait until 07:00 tomorrow.
    plan = by_kind(local(zone, 2026, 11, 20, 20, 0), zone, QuietHours(time(22, 0), time(7, 0)))
    assert AFTER_2H not in plan and EVENING not in plan
    assert plan[NEXT_MORNING].due_at == local(zone, 2026, 11, 21, 9, 0)


def test_the_patients_own_quiet_hours_are_honoured():
    zone = "America/New_York"
    visit = local(zone, 2026, 11, 20, 17, 0)
    plan = by_kind(visit, zone, QuietHours(start=time(18, 0), end=time(10, 0)))
    # The 19:00 nudge waits until 10:00 and merges with the 09:00 (now 10:00) morning check-in.
    assert plan[NEXT_MORNING].due_at == local(zone, 2026, 11, 21, 10, 0)
    assert AFTER_2H not in plan and EVENING not in plan
    for reminder in plan.values():
        wall = reminder.due_at.astimezone(ZoneInfo(zone)).time()
        assert time(10, 0) <= wall < time(18, 0), reminder


def test_recording_a_visit_stores_its_unexpired_reminders_once_each(app, make_clinic, make_visit):
    from sqlalchemy import select

    from companion.extensions import db
    from companion.models import Reminder

    now = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
    fresh = make_visit(make_clinic("Fresh"), performed_at=now - timedelta(hours=1), now=now)
    late = make_visit(make_clinic("Late"), performed_at=now - timedelta(hours=50), now=now)

    def kinds(visit) -> list[str]:
        rows = db.session.scalars(select(Reminder).where(Reminder.visit_id == visit.visit.id))
        return sorted(r.kind for r in rows)

    assert kinds(fresh) == sorted(
        r.kind for r in plan_reminders(fresh.visit.performed_at, "Europe/Madrid")
    )
    # Recorded 50 h after the visit: only what is still worth sending. The 48 h question (due 2 h
    # ago, valid for 12 h) still is; the 2 h nudge, the evening and the morning ones are not.
    assert kinds(late) == [AFTER_48H, AFTER_72H, DAY_7]
