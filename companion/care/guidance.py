"""Patient guidance, organised as a timeline from the visit. Content is data: one place, with the
source of every claim kept beside it (clinical.md, "What to tell patients"). Text is plain, aiming at
a reading age of about 12, and promises nothing the evidence does not support."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from flask_babel import lazy_gettext as _l

# The topics the guide answers at each stage (issue 15): a worried patient looks for "heat or ice?",
# "can I train today?" and the like, so every piece of advice says which question it answers, and
# the page shows that question as its lead-in. tests/test_guidance.py holds the table of topics per
# stage and region.
TOPICS: dict[str, object] = {
    "soreness": _l("Soreness"),
    "getting_home": _l("Getting home"),
    "faint": _l("Feeling faint"),
    "movement": _l("Moving"),
    "drinking": _l("Drinking"),
    "heat_or_ice": _l("Heat or ice"),
    "bath": _l("Bath or shower"),
    "stretches": _l("Stretches"),
    "massage": _l("Massage and cramps"),
    "rest": _l("Rest and sleep"),
    "sport": _l("Exercise and sport"),
    "usual_pain": _l("Your usual pain"),
    "pain_relief": _l("Pain relievers"),
    "headache": _l("Headache"),
    "breathing": _l("Breathing"),
    "keep_benefit": _l("Keeping the benefit"),
    "next_visit": _l("Your next visit"),
}

# Regions where a faint is most reported (seed 002: "particularly at the first treatment session
# when needling of the head/neck is performed") and where a headache after needling is an amber
# sign past 24 h (clinical.md AMBER: "headache after neck needling lasting over 24 h").
HEAD_AND_NECK = frozenset({"neck", "levator_scapulae", "head", "jaw"})
NECK = frozenset({"neck", "levator_scapulae", "head"})
# Over the lung field (regions.py), breathing red flags can start up to about 2 days later
# (Th'ng 2022 PMID 36096724); clinical.md watches them for 72 h.
LUNG_FIELD = frozenset(
    {"neck", "levator_scapulae", "shoulder", "upper_back", "chest_wall", "thoracic_paraspinals"}
)


@dataclass(frozen=True)
class Advice:
    text: object
    source: str
    topic: str = "soreness"
    # None: said after every visit; otherwise only when one of these regions was needled.
    regions: frozenset[str] | None = None

    def applies_to(self, regions: Iterable[str]) -> bool:
        return self.regions is None or not self.regions.isdisjoint(regions)

    @property
    def topic_label(self) -> object:
        return TOPICS[self.topic]


@dataclass(frozen=True)
class Stage:
    key: str
    title: object  # short, for the timeline ("Tomorrow")
    heading: object  # the card's heading while this stage is current
    from_hours: float
    to_hours: float
    advice: tuple[Advice, ...]

    def advice_for(self, regions: Iterable[str]) -> tuple[Advice, ...]:
        """What this stage says to a patient needled in `regions`."""
        needled = frozenset(regions)
        return tuple(item for item in self.advice if item.applies_to(needled))


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

# Shared by several stages. Heat: hot packs eased muscle soreness within and beyond 24 h; cold
# helped within 24 h only (Wang 2021, from exercise soreness: an analogy, so "may", and no promise
# that it shortens anything, clinical-evidence.md 2.3).
_WARMTH_LATER = Advice(
    _l(
        "Warmth still helps sore muscles: a warm pack for 15 to 20 minutes, or a warm shower. "
        "Cold only helps in the first day, so warmth is the better choice from now on."
    ),
    "Wang 2021 PMID 33493991",
    "heat_or_ice",
)
_HEADACHE = Advice(
    _l(
        "A headache after needling in the neck should ease within a day. If it lasts longer than "
        "a day, contact your clinic."
    ),
    "clinical.md AMBER (headache after neck needling lasting over 24 h)",
    "headache",
    NECK,
)
_BREATHING = Advice(
    _l(
        "After needling near the chest, breathing problems can start up to 2 days later. New "
        "shortness of breath or chest pain means calling emergency services, even if you feel "
        "fine otherwise."
    ),
    "Th'ng 2022 PMID 36096724; Mintken 2025 PMID 40470852; clinical.md RED 1",
    "breathing",
    LUNG_FIELD,
)
_KEEP_BENEFIT = Advice(
    _l(
        "To keep the benefit, keep your muscles loose: warmth, your stretches and gentle "
        "exercise such as yoga can help, with the exercises your therapist gave you."
    ),
    "seed 001 (heat, stretching and yoga to maintain the benefits); clinical-evidence.md 2.3",
    "keep_benefit",
)

STAGES: tuple[Stage, ...] = (
    Stage(
        "now",
        _l("Now"),
        _l("What helps in the first hours"),
        0,
        4,
        (
            Advice(
                _l(
                    "If you feel drowsy, dizzy or light-headed, do not drive: ask someone to take "
                    "you home."
                ),
                "seed 002 (1-3% drowsy or dizzy: have a driver pick you up); "
                "clinical.md, What to tell patients",
                "getting_home",
            ),
            Advice(
                _l("If you feel light-headed, sit or lie down until it passes."),
                "clinical.md, What to tell patients",
                "faint",
            ),
            Advice(
                _l(
                    "A short faint is rare. It is most likely at a first session with needling of "
                    "the head or neck, and passes within a minute or two when you lie down."
                ),
                "seed 002 (0.3%, mostly a first head or neck session); Halle 2016 (vasovagal)",
                "faint",
                HEAD_AND_NECK,
            ),
            Advice(
                _l("Keep moving gently. Normal daily activity is fine."),
                "Salom-Moreno 2017 PMID 28483685",
                "movement",
            ),
            Advice(
                _l("Stay well hydrated around your visit: drink as you usually do."),
                # Hydration advice stays (patients expect it, it is harmless) without claiming
                # that water flushes anything out: it does not (Wiltshire 2010, clinical.md).
                "seed 001 (stay hydrated around the procedure); Wiltshire 2010 PMID 19997015",
                "drinking",
            ),
            Advice(
                _l(
                    "Use whichever feels better. Warmth usually suits sore muscles. For a fresh "
                    "bruise, a cold pack wrapped in a cloth for 10 to 15 minutes can soothe it on "
                    "the first day."
                ),
                "Wang 2021 PMID 33493991 (heat eased muscle soreness; cold only within 24 h); "
                "clinical-evidence.md 2.1 (cold pack: comfort, no proven benefit)",
                "heat_or_ice",
            ),
            Advice(
                _l(
                    "Light activity is fine today and may ease soreness. If you planned hard "
                    "training or a match, let the soreness guide you: going easier today is "
                    "reasonable."
                ),
                "Salom-Moreno 2017 PMID 28483685 (low-load exercise eased soreness); "
                "Diciolla 2021 PMID 34884230 (exercise did no harm); hard training: no study [C]",
                "sport",
            ),
            _BREATHING,
        ),
    ),
    Stage(
        "evening",
        _l("This evening"),
        _l("What helps this evening"),
        4,
        16,
        (
            Advice(
                _l(
                    "If it feels good, use a warm pack for 15 to 20 minutes. Not on numb skin, and "
                    "do not fall asleep on a heat pad."
                ),
                "Wang 2021 PMID 33493991",
                "heat_or_ice",
            ),
            Advice(
                _l("A warm bath or shower is fine too, if you do not feel light-headed."),
                "seed 001 (a hot bath or hot tub); Wang 2021 PMID 33493991",
                "bath",
            ),
            Advice(
                _l(
                    "Do the stretches your therapist chose, gently, only to mild tension: hold 15 "
                    "to 30 seconds, 2 or 3 times. Stop if the pain gets sharp or you feel numbness."
                ),
                "Cochrane 2011 CD004577",
                "stretches",
            ),
            Advice(
                _l(
                    "Some people feel mild cramping in the treated muscle. Gentle self-massage "
                    "and your stretches can ease it. Do not press on a fresh bruise."
                ),
                "seed 001 (cramping: massage and stretching); Guo 2017 PMID 29021762",
                "massage",
            ),
            Advice(
                _l(
                    "Rest if you feel tired: it is common on the day. Sleep as usual, but not on a "
                    "heat pad."
                ),
                "MacPherson 2005 (tiredness after needling); clinical.md (heat pad)",
                "rest",
            ),
            _BREATHING,
        ),
    ),
    Stage(
        "tomorrow",
        _l("Tomorrow"),
        _l("What helps tomorrow"),
        16,
        36,
        (
            Advice(
                _l("Soreness is usually lower today. Keep up gentle movement and normal activity."),
                "Martín-Pintado-Zugasti 2018 PMID 30368339",
            ),
            _WARMTH_LATER,
            Advice(
                _l("Keep doing your stretches gently, 1 to 3 times a day."),
                "Cochrane 2011 CD004577",
                "stretches",
            ),
            Advice(
                _l(
                    "Gentle self-massage or a foam roller can ease sore muscles. Do not press hard "
                    "on a bruise or on the needle spots."
                ),
                "Guo 2017 PMID 29021762; Wiewelhove 2019 PMID 31024339; clinical-evidence.md 2.3",
                "massage",
            ),
            Advice(
                _l(
                    "Your usual exercise and sport are fine if they feel fine. Start easier than "
                    "usual and build up."
                ),
                "Diciolla 2021 PMID 34884230 (exercise did no harm); build-up: no study [C]",
                "sport",
            ),
            Advice(
                _l(
                    "Your usual pain may flare up for a day or two after treatment. This is not "
                    "necessarily a bad sign."
                ),
                "seed 002 (existing symptoms can get worse, not necessarily a bad sign); "
                "clinical.md GREEN (a mild flare for a day or two)",
                "usual_pain",
            ),
            Advice(
                _l(
                    "For pain relievers, ask a pharmacist or doctor. Tell your therapist if you take "
                    "blood thinners."
                ),
                "clinical.md, What to tell patients",
                "pain_relief",
            ),
            _HEADACHE,
            _BREATHING,
        ),
    ),
    Stage(
        "days_2_3",
        _l("Day 2 to 3"),
        _l("What helps on days 2 and 3"),
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
            _WARMTH_LATER,
            Advice(
                _l("If you are still sore, gentle massage and your stretches can help."),
                "Guo 2017 PMID 29021762; Cochrane 2011 CD004577",
                "massage",
            ),
            Advice(
                _l("Keep active. Your usual exercise and sport are fine if they feel fine."),
                "Diciolla 2021 PMID 34884230; Salom-Moreno 2017 PMID 28483685",
                "sport",
            ),
            Advice(
                _l(
                    "If your usual pain flared up and is still worse after 2 to 3 days, tell your "
                    "clinic."
                ),
                "clinical.md AMBER (usual symptoms flaring beyond 48-72 h)",
                "usual_pain",
            ),
            _KEEP_BENEFIT,
            _HEADACHE,
            _BREATHING,
        ),
    ),
    Stage(
        "later",
        _l("Later"),
        _l("What helps from day 4"),
        96,
        24 * 365,
        (
            Advice(
                _l(
                    "Needle soreness should be gone now. Tell your therapist at your next visit how "
                    "your usual pain has been."
                ),
                "clinical.md, Reminder moments",
                "next_visit",
            ),
            _KEEP_BENEFIT,
            Advice(
                _l("Carry on with your usual exercise and sport."),
                "Salom-Moreno 2017 PMID 28483685; Diciolla 2021 PMID 34884230",
                "sport",
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
    Advice(
        _l("A sudden, very bad headache, the worst you have had."),
        'clinical.md (a sudden "worst ever" headache is also red)',
    ),
)


def current_stage(hours_since_visit: float) -> Stage:
    for stage in STAGES:
        if stage.from_hours <= hours_since_visit < stage.to_hours:
            return stage
    return STAGES[0] if hours_since_visit < 0 else STAGES[-1]
