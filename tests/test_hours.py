"""The clinic's opening hours (care/hours.py): the CLI's specs, the stored form, and when the clinic
is open or next opens, through daylight-saving changes in Madrid and New York.

Every moment here is a fixed datetime passed in; nothing reads the clock.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from companion.care.hours import (
    CLOSED,
    OPEN,
    UNKNOWN,
    ClinicStatus,
    clinic_status,
    is_open,
    next_opening,
    opening_times,
    parse_specs,
    render,
    render_specs,
    validate,
)

MADRID = "Europe/Madrid"
NEW_YORK = "America/New_York"
WEEKDAYS = parse_specs(["mon-fri 08:00-20:00", "sat 09:00-13:00"])
MON_FRI = parse_specs(["mon-fri 08:00-20:00"])


@pytest.fixture(autouse=True)
def _pinned_clock(now):
    """The house rule: the clock is pinned even where nothing should read it."""


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


# --- the CLI's specs and the stored form -----------------------------------------------------------


def test_specs_become_the_stored_form_and_days_left_out_are_closed():
    assert WEEKDAYS == {
        "mon": [["08:00", "20:00"]],
        "tue": [["08:00", "20:00"]],
        "wed": [["08:00", "20:00"]],
        "thu": [["08:00", "20:00"]],
        "fri": [["08:00", "20:00"]],
        "sat": [["09:00", "13:00"]],
    }


def test_specs_take_day_lists_wrapping_ranges_and_several_intervals_a_day():
    hours = parse_specs(["Mon, wed 8:00-12:00, 16:00-20:00", "sat-sun 10:00-14:00"])
    assert hours == {
        "mon": [["08:00", "12:00"], ["16:00", "20:00"]],
        "wed": [["08:00", "12:00"], ["16:00", "20:00"]],
        "sat": [["10:00", "14:00"]],
        "sun": [["10:00", "14:00"]],
    }
    assert parse_specs(["fri-mon 09:00-10:00"]).keys() == {"fri", "sat", "sun", "mon"}


def test_touching_intervals_join_and_later_specs_add_to_a_day():
    hours = parse_specs(["mon 12:00-14:00", "mon 08:00-12:00", "mon 16:00-24:00"])
    assert hours == {"mon": [["08:00", "14:00"], ["16:00", "24:00"]]}


@pytest.mark.parametrize(
    ("specs", "message"),
    [
        ([], "at least one day"),
        (["mon"], "give days and hours"),
        (["monday 08:00-20:00"], "give days as mon"),
        (["mon-funday 08:00-20:00"], "give days as mon"),
        (["mon 8-20"], "not hours such as 08:00-20:00"),
        (["mon 20:00-08:00"], "closing time must come after the opening time"),
        (["mon 08:00-08:00"], "closing time must come after the opening time"),
        (["mon 25:00-26:00"], "not a time of day"),
        (["mon 08:60-09:00"], "not a time of day"),
        (["mon 24:00-24:00"], "not a time of day"),
        (["mon 20:00-24:30"], "not a time of day"),
        (["mon 08:00-12:00 11:00-13:00"], "overlaps"),
        (["mon-fri 08:00-12:00", "wed 11:00-14:00"], "wed: 11:00-14:00 overlaps 08:00-12:00"),
    ],
)
def test_bad_specs_are_refused_saying_what_is_wrong(specs, message):
    with pytest.raises(ValueError, match=message):
        parse_specs(specs)


def test_rendered_hours_read_back_as_the_same_hours():
    hours = parse_specs(
        ["mon-wed 08:00-14:00 15:00-20:00", "thu-fri 08:00-20:00", "sun 10:00-24:00"]
    )
    assert render_specs(hours) == [
        "mon-wed 08:00-14:00 15:00-20:00",
        "thu-fri 08:00-20:00",
        "sun 10:00-24:00",
    ]
    assert parse_specs(render_specs(hours)) == hours


def test_render_says_which_days_are_closed_and_when_hours_were_never_set():
    assert render(WEEKDAYS) == "mon-fri 08:00-20:00, sat 09:00-13:00; other days closed"
    assert render(parse_specs(["mon-sun 00:00-24:00"])) == "mon-sun 00:00-24:00"
    assert render({}) == "closed every day"
    assert render(None) == "not set"


def test_validate_puts_the_stored_form_in_order_and_refuses_nonsense():
    assert validate(
        {"sat": [["09:00", "13:00"]], "mon": [["16:00", "20:00"], ["8:00", "12:00"]]}
    ) == {
        "mon": [["08:00", "12:00"], ["16:00", "20:00"]],
        "sat": [["09:00", "13:00"]],
    }
    assert validate({"tue": []}) == {}
    for bad in (
        {"monday": [["08:00", "20:00"]]},
        {"mon": [["08:00"]]},
        {"mon": [["20:00", "08:00"]]},
        {"mon": [["08:00", "13:00"], ["12:00", "14:00"]]},
    ):
        with pytest.raises(ValueError):
            validate(bad)


# --- open, closed, next opening --------------------------------------------------------------------


def test_open_from_the_opening_minute_until_just_before_closing():
    # Wednesday 25 November 2026 in Madrid (UTC+1).
    assert not is_open(WEEKDAYS, MADRID, utc(2026, 11, 25, 6, 59))
    assert is_open(WEEKDAYS, MADRID, utc(2026, 11, 25, 7, 0))
    assert is_open(WEEKDAYS, MADRID, utc(2026, 11, 25, 18, 59))
    assert not is_open(WEEKDAYS, MADRID, utc(2026, 11, 25, 19, 0))


def test_sunday_at_23_00_the_clinic_is_closed_and_opens_on_monday_at_08_00():
    sunday_night = utc(2026, 11, 29, 22, 0)  # 23:00 in Madrid
    assert clinic_status(WEEKDAYS, MADRID, sunday_night) == ClinicStatus(
        CLOSED, utc(2026, 11, 30, 7, 0)
    )


def test_while_open_the_next_opening_is_now_and_the_status_open():
    moment = utc(2026, 11, 25, 10, 0)
    assert next_opening(WEEKDAYS, MADRID, moment) == moment
    assert clinic_status(WEEKDAYS, MADRID, moment) == ClinicStatus(OPEN)


def test_the_next_opening_is_an_aware_utc_instant_even_for_an_aware_local_now():
    friday_evening = datetime.fromisoformat("2026-11-27T21:00:00+01:00")
    opens = next_opening(WEEKDAYS, MADRID, friday_evening)
    assert opens == utc(2026, 11, 28, 8, 0) and opens.tzinfo == UTC  # Saturday 09:00


def test_madrid_spring_forward_weekend_opens_on_monday_at_08_00_summer_time():
    # Clocks go from 02:00 to 03:00 on Sunday 29 March 2026: Monday 08:00 is 06:00 UTC, not 07:00.
    friday_after_closing = utc(2026, 3, 27, 19, 30)  # 20:30 winter time
    assert clinic_status(MON_FRI, MADRID, friday_after_closing) == ClinicStatus(
        CLOSED, utc(2026, 3, 30, 6, 0)
    )
    assert not is_open(MON_FRI, MADRID, utc(2026, 3, 30, 5, 59))
    assert is_open(MON_FRI, MADRID, utc(2026, 3, 30, 6, 0))


def test_madrid_fall_back_weekend_opens_on_monday_at_08_00_winter_time():
    # Clocks go from 03:00 back to 02:00 on Sunday 25 October 2026: Monday 08:00 is 07:00 UTC.
    friday_night = utc(2026, 10, 23, 19, 0)  # 21:00 summer time
    assert next_opening(MON_FRI, MADRID, friday_night) == utc(2026, 10, 26, 7, 0)
    assert is_open(MON_FRI, MADRID, utc(2026, 10, 26, 7, 0))
    assert not is_open(MON_FRI, MADRID, utc(2026, 10, 26, 6, 30))


def test_new_york_spring_forward_weekend_opens_on_monday_at_08_00_daylight_time():
    # Clocks go from 02:00 to 03:00 on Sunday 8 March 2026: Monday 08:00 EDT is 12:00 UTC.
    saturday_afternoon = utc(2026, 3, 7, 19, 0)  # 14:00 EST, after Saturday's hours
    assert next_opening(WEEKDAYS, NEW_YORK, saturday_afternoon) == utc(2026, 3, 9, 12, 0)


def test_new_york_fall_back_weekend_opens_on_monday_at_08_00_standard_time():
    # Clocks go from 02:00 back to 01:00 on Sunday 1 November 2026: Monday 08:00 EST is 13:00 UTC.
    saturday_afternoon = utc(2026, 10, 31, 18, 0)  # 14:00 EDT
    assert next_opening(WEEKDAYS, NEW_YORK, saturday_afternoon) == utc(2026, 11, 2, 13, 0)


def test_hours_over_the_repeated_autumn_hour_are_open_through_both():
    night = parse_specs(["sun 01:00-03:00"])
    # 01:00 EDT (05:00 UTC) to 03:00 EST (08:00 UTC): three real hours that Sunday.
    assert not is_open(night, NEW_YORK, utc(2026, 11, 1, 4, 59))
    assert is_open(night, NEW_YORK, utc(2026, 11, 1, 5, 30))  # the first 01:30
    assert is_open(night, NEW_YORK, utc(2026, 11, 1, 6, 30))  # the second 01:30
    assert is_open(night, NEW_YORK, utc(2026, 11, 1, 7, 59))
    assert not is_open(night, NEW_YORK, utc(2026, 11, 1, 8, 0))


def test_an_opening_inside_the_spring_gap_moves_to_the_first_minute_after_it():
    early = parse_specs(["sun 02:30-04:00"])
    saturday = utc(2026, 3, 28, 12, 0)
    # 02:30 does not exist in Madrid on 29 March 2026: the clinic opens at 03:00 CEST (01:00 UTC).
    assert next_opening(early, MADRID, saturday) == utc(2026, 3, 29, 1, 0)
    assert not is_open(early, MADRID, utc(2026, 3, 29, 0, 59))


def test_hours_swallowed_whole_by_the_spring_gap_never_open_that_day():
    gap = parse_specs(["sun 02:00-03:00", "mon 08:00-09:00"])
    saturday = utc(2026, 3, 28, 12, 0)
    assert next_opening(gap, MADRID, saturday) == utc(2026, 3, 30, 6, 0)


def test_open_all_day_every_day_stays_open_through_the_dst_night():
    always = parse_specs(["mon-sun 00:00-24:00"])
    for moment in (utc(2026, 3, 29, 0, 59), utc(2026, 3, 29, 1, 0), utc(2026, 10, 25, 0, 30)):
        assert clinic_status(always, MADRID, moment) == ClinicStatus(OPEN)


def test_hours_until_midnight_run_on_into_the_next_days_hours():
    late = parse_specs(["fri 20:00-24:00", "sat 00:00-02:00"])
    assert is_open(late, MADRID, utc(2026, 11, 27, 22, 59))  # Friday 23:59
    assert is_open(late, MADRID, utc(2026, 11, 27, 23, 0))  # Saturday 00:00
    assert is_open(late, MADRID, utc(2026, 11, 28, 0, 59))  # Saturday 01:59
    assert clinic_status(late, MADRID, utc(2026, 11, 28, 1, 0)) == ClinicStatus(
        CLOSED, utc(2026, 12, 4, 19, 0)
    )


def test_a_clinic_open_one_hour_a_week_opens_again_a_week_later():
    monday = parse_specs(["mon 08:00-09:00"])
    just_closed = utc(2026, 11, 30, 8, 0)  # Monday 09:00 in Madrid
    assert next_opening(monday, MADRID, just_closed) == utc(2026, 12, 7, 7, 0)


@pytest.mark.parametrize(
    "hours",
    [None, {}, {"mon": []}, {"mon": [["late", "later"]]}],
    ids=["never-set", "no-day", "empty-day", "unreadable"],
)
def test_without_an_open_day_the_status_is_unknown_never_open_or_a_time(hours):
    sunday_night = utc(2026, 11, 29, 22, 0)
    assert clinic_status(hours, MADRID, sunday_night) == ClinicStatus(UNKNOWN)


def test_opening_times_list_every_start_in_the_coming_week():
    sunday_night = utc(2026, 11, 29, 22, 0)
    starts = opening_times(WEEKDAYS, MADRID, sunday_night)
    assert starts[:2] == [utc(2026, 11, 30, 7, 0), utc(2026, 12, 1, 7, 0)]
    assert utc(2026, 12, 5, 8, 0) in starts  # Saturday 09:00
    assert next_opening(WEEKDAYS, MADRID, utc(2026, 12, 1, 19, 30)) in starts
    assert opening_times(None, MADRID, sunday_night) == []
    assert opening_times({"mon": [["late", "later"]]}, MADRID, sunday_night) == []
