"""Triage of one check-in (clinical.md, "Triage of a check-in" and the expected envelope)."""

from __future__ import annotations

from itertools import pairwise

import pytest

from companion.care.triage import (
    ENVELOPE,
    RED_FLAGS,
    RULES,
    SYMPTOMS,
    EarlierScore,
    envelope_window,
    triage,
)

# The red-flag checklist from clinical.md (RED 1-6 and the "worst ever" headache), written out so a
# code that disappears from the table, or stops being red, fails here.
RED_FLAG_CODES = [
    "breathless",
    "chest_pain",
    "dry_cough",
    "racing_heart",
    "spine_pain_weakness",
    "bladder_bowel",
    "fainting",
    "fever_spreading_redness",
    "rapid_swelling",
    "face_swelling_wheeze",
    "worst_headache",
]


def case(id_, soreness, hours, level, *, symptoms=(), earlier=(), reasons=()):
    """One row of a triage table: the check-in, the expected level and the reasons it must give."""
    earlier = tuple(EarlierScore(h, s) for h, s in earlier)
    return pytest.param(soreness, list(symptoms), hours, earlier, level, reasons, id=id_)


def check(soreness, symptoms, hours, earlier, level, reasons):
    result = triage(soreness, symptoms, hours, earlier)
    assert result.level == level, result
    for reason in reasons:
        assert reason in result.keys, result
    if level == "green":
        assert result.keys == [], "a green check-in should carry no alert reasons"
    return result


# --- red flags ------------------------------------------------------------------------------------


def test_the_red_flag_table_is_exactly_the_clinical_checklist():
    assert [s.code for s in RED_FLAGS] == RED_FLAG_CODES
    assert {code for code, s in SYMPTOMS.items() if s.level == "red"} == set(RED_FLAG_CODES)


@pytest.mark.parametrize("code", RED_FLAG_CODES)
def test_each_red_flag_is_red_even_with_no_soreness(code):
    result = triage(0, [code], 3)
    assert result.level == "red"
    assert f"symptom:{code}" in result.keys


def test_breathlessness_is_red_even_with_no_soreness():
    result = triage(0, ["breathless"], 2)
    assert result.level == "red"
    assert result.keys == ["symptom:breathless"]


RED_CASES = [
    case(
        "breathless-two-days-later-with-soreness-gone",
        0,
        50,
        "red",
        symptoms=["breathless"],
        earlier=[(3, 5), (24, 2)],
        reasons=["symptom:breathless"],
    ),
    case(
        "chest-pain-with-a-falling-score",
        1,
        30,
        "red",
        symptoms=["chest_pain"],
        earlier=[(3, 6), (12, 3)],
        reasons=["symptom:chest_pain"],
    ),
    case(
        "red-flag-alongside-green-symptoms",
        0,
        5,
        "red",
        symptoms=["tired", "small_bruise", "fainting"],
        reasons=["symptom:fainting"],
    ),
    case(
        "red-flag-alongside-amber-symptom",
        2,
        30,
        "red",
        symptoms=["headache", "worst_headache"],
        reasons=["symptom:worst_headache", "symptom:headache"],
    ),
    case(
        "red-flag-with-soreness-above-envelope-stays-red",
        9,
        3,
        "red",
        symptoms=["dry_cough"],
        reasons=["symptom:dry_cough", "soreness:above_envelope"],
    ),
    case(
        "red-flag-on-day-five",
        0,
        110,
        "red",
        symptoms=["rapid_swelling"],
        reasons=["symptom:rapid_swelling"],
    ),
]


@pytest.mark.parametrize(
    ("soreness", "symptoms", "hours", "earlier", "level", "reasons"), RED_CASES
)
def test_a_red_flag_is_never_lowered_by_a_low_or_falling_score(
    soreness, symptoms, hours, earlier, level, reasons
):
    check(soreness, symptoms, hours, earlier, level, reasons)


def test_a_symptom_ticked_twice_is_reported_once():
    result = triage(0, ["breathless", "breathless"], 3)
    assert result.keys.count("symptom:breathless") == 1


# --- the expected soreness envelope ---------------------------------------------------------------


ENVELOPE_CASES = [
    case("7-at-3h-is-green", 7, 3, "green"),
    case("8-at-3h-is-amber", 8, 3, "amber", reasons=["soreness:above_envelope"]),
    case("10-right-after-is-amber", 10, 0, "amber", reasons=["soreness:above_envelope"]),
    case("7-at-8h-is-still-in-the-first-window", 7, 8, "green"),
    case("6-at-12h-is-green", 6, 12, "green"),
    case("7-at-12h-is-amber", 7, 12, "amber", reasons=["soreness:above_envelope"]),
    case("5-at-24h-is-green", 5, 24, "green"),
    case("6-at-24h-is-amber", 6, 24, "amber", reasons=["soreness:above_envelope"]),
    case("2-at-48h-is-green", 2, 48, "green"),
    case("3-at-48h-with-no-24h-score-is-green", 3, 48, "green"),
    case("4-at-48h-is-amber", 4, 48, "amber", reasons=["soreness:above_envelope"]),
    case("2-at-72h-is-green", 2, 72, "green"),
    case("3-at-72h-is-amber", 3, 72, "amber", reasons=["soreness:above_envelope"]),
    case("2-on-day-6-is-green", 2, 6 * 24, "green"),
    case("3-on-day-6-is-amber", 3, 6 * 24, "amber", reasons=["soreness:above_envelope"]),
    case("3-after-a-year-is-amber", 3, 24 * 400, "amber", reasons=["soreness:above_envelope"]),
    case(
        "clock-skew-before-the-visit-uses-the-first-window",
        8,
        -0.5,
        "amber",
        reasons=["soreness:above_envelope"],
    ),
    case("0-at-any-time-is-green", 0, 30, "green"),
]


@pytest.mark.parametrize(
    ("soreness", "symptoms", "hours", "earlier", "level", "reasons"), ENVELOPE_CASES
)
def test_soreness_is_judged_against_the_envelope_for_the_hours_since_the_visit(
    soreness, symptoms, hours, earlier, level, reasons
):
    check(soreness, symptoms, hours, earlier, level, reasons)


def test_the_envelope_windows_are_contiguous_from_zero_with_no_gaps():
    assert ENVELOPE[0].from_hours == 0
    for before, after in pairwise(ENVELOPE):
        assert before.to_hours == after.from_hours, (before, after)
    for w in ENVELOPE:
        assert w.from_hours < w.to_hours
        assert 0 <= w.usual_max < w.amber_at <= 10
    assert ENVELOPE[-1].to_hours >= 7 * 24  # covers the day-7 check-in and beyond


def test_every_hour_of_the_first_weeks_falls_in_the_window_that_contains_it():
    for tenth in range(0, 21 * 24 * 10):
        hours = tenth / 10
        w = envelope_window(RULES, hours)
        assert w["from_hours"] <= hours < w["to_hours"], (hours, w)


def test_the_usual_maximum_never_rises_as_time_passes():
    maxima = [w.usual_max for w in ENVELOPE]
    assert maxima == sorted(maxima, reverse=True)


# --- change between check-ins ---------------------------------------------------------------------


CHANGE_CASES = [
    case(
        "rise-of-2-after-12h-is-amber",
        5,
        14,
        "amber",
        earlier=[(6, 3)],
        reasons=["soreness:rising"],
    ),
    case(
        "rise-of-2-exactly-at-12h-is-amber",
        5,
        12,
        "amber",
        earlier=[(3, 3)],
        reasons=["soreness:rising"],
    ),
    case("rise-of-1-after-12h-is-green", 4, 14, "green", earlier=[(6, 3)]),
    case("rise-of-3-before-12h-alone-is-green", 6, 10, "green", earlier=[(2, 3)]),
    case(
        "rise-is-measured-from-the-latest-score-not-the-first",
        5,
        14,
        "green",
        earlier=[(2, 1), (8, 4)],
    ),
    case(
        "earlier-scores-given-out-of-order-are-sorted-by-time",
        5,
        14,
        "green",
        earlier=[(8, 4), (2, 1)],
    ),
    case(
        "scores-after-this-check-in-are-ignored",
        5,
        14,
        "green",
        earlier=[(20, 1)],
    ),
    case(
        "2-above-the-first-score-at-24h-is-amber",
        5,
        24,
        "amber",
        earlier=[(2, 3), (12, 5)],
        reasons=["soreness:above_first"],
    ),
    case(
        "1-above-the-first-score-at-24h-is-green",
        4,
        24,
        "green",
        earlier=[(2, 3)],
    ),
    case(
        "2-above-the-first-score-at-48h-is-not-the-24h-rule",
        2,
        48,
        "green",
        earlier=[(2, 0), (40, 2)],
    ),
    case(
        "no-drop-since-24h-above-the-usual-48h-max-is-amber",
        3,
        48,
        "amber",
        earlier=[(24, 3)],
        reasons=["soreness:no_drop"],
    ),
    case(
        "no-drop-since-24h-within-the-usual-48h-max-is-green",
        2,
        48,
        "green",
        earlier=[(24, 2)],
    ),
    case(
        "a-drop-since-24h-is-green-at-48h",
        3,
        48,
        "green",
        earlier=[(24, 4)],
    ),
    case(
        "no-drop-compares-with-the-latest-score-of-day-one",
        3,
        48,
        "amber",
        earlier=[(20, 5), (30, 3)],
        reasons=["soreness:no_drop"],
    ),
]


@pytest.mark.parametrize(
    ("soreness", "symptoms", "hours", "earlier", "level", "reasons"), CHANGE_CASES
)
def test_soreness_change_between_check_ins_is_judged_as_clinical_md_says(
    soreness, symptoms, hours, earlier, level, reasons
):
    check(soreness, symptoms, hours, earlier, level, reasons)


# --- other symptoms -------------------------------------------------------------------------------


SYMPTOM_CASES = [
    case("dizzy-at-5h-is-green", 1, 5, "green", symptoms=["dizzy_drowsy"]),
    case(
        "dizzy-at-24h-is-amber",
        1,
        24,
        "amber",
        symptoms=["dizzy_drowsy"],
        reasons=["symptom:dizzy_drowsy"],
    ),
    case(
        "dizzy-at-30h-is-amber",
        1,
        30,
        "amber",
        symptoms=["dizzy_drowsy"],
        reasons=["symptom:dizzy_drowsy"],
    ),
    case("usual-pain-flare-at-24h-is-green", 1, 24, "green", symptoms=["usual_pain_flare"]),
    case(
        "usual-pain-flare-at-50h-is-amber",
        1,
        50,
        "amber",
        symptoms=["usual_pain_flare"],
        reasons=["symptom:usual_pain_flare"],
    ),
    case("headache-at-5h-is-green", 1, 5, "green", symptoms=["headache"]),
    case(
        "headache-at-30h-is-amber",
        1,
        30,
        "amber",
        symptoms=["headache"],
        reasons=["symptom:headache"],
    ),
    case("redness-increasing-at-10h-is-green", 1, 10, "green", symptoms=["redness_increasing"]),
    case(
        "redness-increasing-at-30h-is-amber",
        1,
        30,
        "amber",
        symptoms=["redness_increasing"],
        reasons=["symptom:redness_increasing"],
    ),
    case(
        "numbness-tingling-is-amber-at-any-time",
        0,
        2,
        "amber",
        symptoms=["numbness_tingling"],
        reasons=["symptom:numbness_tingling"],
    ),
    case(
        "large-bruise-is-amber-at-any-time",
        0,
        2,
        "amber",
        symptoms=["large_bruise"],
        reasons=["symptom:large_bruise"],
    ),
    case(
        "may-stop-treatment-is-amber-at-any-time",
        0,
        2,
        "amber",
        symptoms=["may_stop"],
        reasons=["symptom:may_stop"],
    ),
    case("small-bruise-is-green", 2, 3, "green", symptoms=["small_bruise"]),
    case("tired-is-green", 2, 3, "green", symptoms=["tired"]),
    case(
        "small-bruise-and-tired-on-day-4-are-green",
        0,
        100,
        "green",
        symptoms=["small_bruise", "tired"],
    ),
    case(
        "amber-symptom-and-soreness-above-envelope-give-both-reasons",
        8,
        3,
        "amber",
        symptoms=["large_bruise"],
        reasons=["symptom:large_bruise", "soreness:above_envelope"],
    ),
]


@pytest.mark.parametrize(
    ("soreness", "symptoms", "hours", "earlier", "level", "reasons"), SYMPTOM_CASES
)
def test_other_symptoms_are_amber_or_green_by_code_and_hours_since_the_visit(
    soreness, symptoms, hours, earlier, level, reasons
):
    check(soreness, symptoms, hours, earlier, level, reasons)


@pytest.mark.parametrize("code", sorted(SYMPTOMS))
def test_every_symptom_names_its_source(code):
    symptom = SYMPTOMS[code]
    assert symptom.code == code
    assert symptom.source.strip(), f"{code} has no source"
    assert str(symptom.label).strip(), f"{code} has no label"


# Every table above, for the browser test that runs the same cases through static/js/triage.js.
ALL_CASES = RED_CASES + ENVELOPE_CASES + CHANGE_CASES + SYMPTOM_CASES
