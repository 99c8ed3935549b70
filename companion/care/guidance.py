"""Patient guidance, organised as a timeline from the visit. Content is data: one place, with the
source of every claim kept beside it (clinical.md, "What to tell patients"). Text is plain, aiming at
a reading age of about 12, and promises nothing the evidence does not support."""

from __future__ import annotations

from dataclasses import dataclass

from flask_babel import lazy_gettext as _l


@dataclass(frozen=True)
class Advice:
    text: object
    source: str


@dataclass(frozen=True)
class Stage:
    key: str
    title: object
    from_hours: float
    to_hours: float
    advice: tuple[Advice, ...]


NORMAL: tuple[Advice, ...] = (
    Advice(
        _l(
            "Soreness where the needles went is normal. Most people feel it. It feels like a "
            "bruise or after a workout and usually fades over 1 to 3 days."
        ),
        "Brady 2014 PMID 25125935; Martín-Pintado-Zugasti 2018 PMID 30368339; "
        "Sánchez Romero 2021 PMID 33921101",
    ),
    Advice(
        _l("A small bruise or a drop of blood at a needle spot is common and harmless."),
        "Boyce 2020 PMID 32089962",
    ),
    Advice(
        _l("Feeling tired on the day is common. If you feel drowsy, do not drive."),
        "clinical.md, What to tell patients",
    ),
)

STAGES: tuple[Stage, ...] = (
    Stage(
        "now",
        _l("Now"),
        0,
        4,
        (
            Advice(
                _l("Keep moving gently. Normal daily activity is fine."),
                "Salom-Moreno 2017 PMID 28483685",
            ),
            Advice(
                _l("Drink as usual. You do not need extra water: it does not flush anything out."),
                "Wiltshire 2010 PMID 19997015",
            ),
            Advice(
                _l(
                    "If you feel light-headed, sit or lie down until it passes, and do not drive "
                    "while drowsy."
                ),
                "clinical.md, What to tell patients",
            ),
        ),
    ),
    Stage(
        "evening",
        _l("This evening"),
        4,
        16,
        (
            Advice(
                _l(
                    "If it feels good, use a warm pack for 15 to 20 minutes. Not on numb skin, and "
                    "do not fall asleep on a heat pad."
                ),
                "Wang 2021 PMID 33493991",
            ),
            Advice(
                _l(
                    "Do the stretches your therapist chose, gently, only to mild tension: hold 15 "
                    "to 30 seconds, 2 or 3 times. Stop if the pain gets sharp or you feel numbness."
                ),
                "Cochrane 2011 CD004577",
            ),
            Advice(
                _l("Gentle self-massage can help. Do not press on a fresh bruise."),
                "clinical.md, What to tell patients",
            ),
        ),
    ),
    Stage(
        "tomorrow",
        _l("Tomorrow"),
        16,
        36,
        (
            Advice(
                _l("Soreness is usually lower today. Keep up gentle movement and normal activity."),
                "Martín-Pintado-Zugasti 2018 PMID 30368339",
            ),
            Advice(
                _l(
                    "For pain relievers, ask a pharmacist or doctor. Tell your therapist if you take "
                    "blood thinners."
                ),
                "clinical.md, What to tell patients",
            ),
        ),
    ),
    Stage(
        "days_2_3",
        _l("Day 2 to 3"),
        36,
        96,
        (
            Advice(
                _l(
                    "Soreness is usually gone or nearly gone by 3 days. If it is not easing, or "
                    "getting worse, contact your clinic."
                ),
                "Diciolla 2021 PMID 34884230; Hong 1994 PMID 8043247",
            ),
        ),
    ),
    Stage(
        "later",
        _l("Later"),
        96,
        24 * 365,
        (
            Advice(
                _l(
                    "Needle soreness should be gone now. Tell your therapist at your next visit how "
                    "your usual pain has been."
                ),
                "clinical.md, Reminder moments",
            ),
        ),
    ),
)

CALL_CLINIC: tuple[Advice, ...] = (
    Advice(
        _l("Soreness that is getting worse after the first day, or not easing by day 3."),
        "clinical.md AMBER",
    ),
    Advice(
        _l("Numbness, tingling or electric pain lasting more than a few hours."),
        "clinical.md AMBER",
    ),
    Advice(
        _l("Redness, warmth or swelling that keeps growing, or a bruise bigger than your palm."),
        "clinical.md AMBER",
    ),
)

# Breathing symptoms can start up to about 2 days later; never answer them with "rest" (Th'ng 2022).
EMERGENCY: tuple[Advice, ...] = (
    Advice(
        _l(
            "New shortness of breath, chest pain, pain when you breathe in, a new dry cough or a "
            "racing heart, even a day or two after the visit."
        ),
        "Mintken 2025 PMID 40470852; Th'ng 2022 PMID 36096724",
    ),
    Advice(
        _l("Fainting that does not pass within minutes, collapse or confusion."),
        "clinical.md RED 3",
    ),
    Advice(
        _l(
            "Sudden weakness or numbness in arms or legs with bad neck or back pain, or loss of "
            "bladder or bowel control."
        ),
        "clinical.md RED 2",
    ),
    Advice(
        _l(
            "Fever with a red, hot, spreading area, fast-growing painful swelling, swelling of "
            "the face or lips, or wheezing."
        ),
        "clinical.md RED 4-6",
    ),
)


def current_stage(hours_since_visit: float) -> Stage:
    for stage in STAGES:
        if stage.from_hours <= hours_since_visit < stage.to_hours:
            return stage
    return STAGES[0] if hours_since_visit < 0 else STAGES[-1]
