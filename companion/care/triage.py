"""Triage of one check-in: red, amber or green (clinical.md, "Triage of a check-in").

The rules are data (SYMPTOMS, ENVELOPE, RISE_POINTS) so the browser can be given exactly the same
table later; `triage()` is the one interpreter on the server. Red flags come only from the patient's
answers to the fixed checklist: they are never inferred from, nor suppressed by, the score.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from flask_babel import lazy_gettext as _l

Level = Literal["green", "amber", "red"]
_RANK: dict[str, int] = {"green": 0, "amber": 1, "red": 2}


@dataclass(frozen=True)
class Symptom:
    code: str
    level: Level
    label: object
    # Some symptoms are expected early and only a concern when they last: below this many hours since
    # the visit they count as green.
    amber_after_hours: float | None = None
    source: str = ""


# Red flags: call emergency services now (clinical.md RED 1-6 and the "worst ever" headache).
# Source for the breathing group and its delayed onset: Mintken 2025 (PMID 40470852), Th'ng 2022
# (PMID 36096724). The other red items: clinical.md, from reference/clinical-evidence.md.
RED_FLAGS: tuple[Symptom, ...] = (
    Symptom("breathless", "red", _l("New shortness of breath"), source="PMID 40470852"),
    Symptom(
        "chest_pain", "red", _l("Chest pain, or pain when you breathe in"), source="PMID 40470852"
    ),
    Symptom("dry_cough", "red", _l("A new dry cough"), source="PMID 40470852"),
    Symptom("racing_heart", "red", _l("A racing heart"), source="PMID 40470852"),
    Symptom(
        "spine_pain_weakness",
        "red",
        _l(
            "Sudden severe neck or back pain with new weakness, numbness or clumsiness "
            "in your arms or legs"
        ),
        source="clinical.md RED 2",
    ),
    Symptom(
        "bladder_bowel", "red", _l("Loss of bladder or bowel control"), source="clinical.md RED 2"
    ),
    Symptom(
        "fainting",
        "red",
        _l("Fainting that does not fully pass within minutes, collapse or confusion"),
        source="clinical.md RED 3",
    ),
    Symptom(
        "fever_spreading_redness",
        "red",
        _l("Fever or chills with a red, hot, spreading area where a needle went in"),
        source="clinical.md RED 4",
    ),
    Symptom(
        "rapid_swelling",
        "red",
        _l("Swelling that grows fast, feels tight and hurts a lot"),
        source="clinical.md RED 5",
    ),
    Symptom(
        "face_swelling_wheeze",
        "red",
        _l("Swelling of the face or lips, or wheezing"),
        source="clinical.md RED 6",
    ),
    Symptom(
        "worst_headache",
        "red",
        _l("A sudden, very bad headache, the worst you have had"),
        source="clinical.md RED",
    ),
)

# Other symptoms. Amber means "contact your therapist today" (clinical.md AMBER).
OTHER_SYMPTOMS: tuple[Symptom, ...] = (
    Symptom(
        "numbness_tingling",
        "amber",
        _l("Numbness, tingling or electric pain that has lasted more than a few hours"),
        source="clinical.md AMBER",
    ),
    Symptom(
        "redness_increasing",
        "amber",
        _l("Redness, warmth or swelling that is getting worse, without fever"),
        amber_after_hours=24,
        source="clinical.md AMBER",
    ),
    Symptom(
        "large_bruise",
        "amber",
        _l("A bruise bigger than your palm, or one still growing"),
        source="clinical.md AMBER",
    ),
    Symptom(
        "usual_pain_flare",
        "amber",
        _l("My usual pain has flared up"),
        amber_after_hours=48,
        source="clinical.md AMBER / GREEN",
    ),
    Symptom(
        "headache",
        "amber",
        _l("Headache"),
        amber_after_hours=24,
        source="clinical.md AMBER (after neck needling, over 24 h)",
    ),
    Symptom(
        "dizzy_drowsy",
        "amber",
        _l("Dizzy or drowsy"),
        amber_after_hours=24,
        source="clinical.md AMBER / GREEN",
    ),
    Symptom(
        "may_stop",
        "amber",
        _l("The soreness makes me want to stop treatment"),
        source="clinical.md AMBER",
    ),
    Symptom("small_bruise", "green", _l("A small bruise"), source="clinical.md GREEN"),
    Symptom("tired", "green", _l("Tired"), source="clinical.md GREEN"),
)

SYMPTOMS: dict[str, Symptom] = {s.code: s for s in RED_FLAGS + OTHER_SYMPTOMS}


@dataclass(frozen=True)
class Window:
    """Expected soreness in a span of hours since the visit (clinical.md, default envelope)."""

    from_hours: float
    to_hours: float
    usual_max: int
    amber_at: int


# Heuristic envelope, clinic-adjustable later. Sources: Martín-Pintado-Zugasti 2018 (PMID 30368339),
# Diciolla 2021 (PMID 34884230), Hong 1994 (PMID 8043247).
ENVELOPE: tuple[Window, ...] = (
    Window(0, 9, 5, 8),  # 0-6 h, up to the 6-12 h drop
    Window(9, 18, 5, 7),  # about 12 h
    Window(18, 36, 4, 6),  # about 24 h
    Window(36, 60, 2, 4),  # about 48 h
    Window(60, 96, 1, 3),  # about 72 h
    Window(96, 24 * 365, 0, 3),  # day 4 onwards
)

# A rise of 2 points is a meaningful change on a 0-10 scale (Farrar 2001, Pain).
RISE_POINTS = 2


@dataclass(frozen=True)
class EarlierScore:
    hours: float
    soreness: int


@dataclass(frozen=True)
class TriageResult:
    level: Level
    reasons: list[str] = field(default_factory=list)


def window_for(hours: float) -> Window:
    for w in ENVELOPE:
        if w.from_hours <= hours < w.to_hours:
            return w
    return ENVELOPE[-1]


def triage(
    soreness: int,
    symptoms: Sequence[str],
    hours_since_visit: float,
    earlier: Sequence[EarlierScore] = (),
) -> TriageResult:
    """Judge one check-in. `earlier` are the patient's previous scores for the same visit."""
    reasons: list[str] = []
    level: Level = "green"

    def raise_to(new: Level, reason: str) -> None:
        nonlocal level
        reasons.append(reason)
        if _RANK[new] > _RANK[level]:
            level = new

    for code in symptoms:
        s = SYMPTOMS[code]
        if s.level == "red":
            raise_to("red", f"symptom:{code}")
        elif s.level == "amber" and (
            s.amber_after_hours is None or hours_since_visit >= s.amber_after_hours
        ):
            raise_to("amber", f"symptom:{code}")

    w = window_for(max(hours_since_visit, 0))
    if soreness >= w.amber_at:
        raise_to("amber", "soreness:above_envelope")

    before = sorted((e for e in earlier if e.hours < hours_since_visit), key=lambda e: e.hours)
    if before and hours_since_visit >= 12 and soreness >= before[-1].soreness + RISE_POINTS:
        raise_to("amber", "soreness:rising")
    if 18 <= hours_since_visit < 36 and before and soreness >= before[0].soreness + RISE_POINTS:
        raise_to("amber", "soreness:above_first")
    if 36 <= hours_since_visit < 60 and soreness > w.usual_max:
        day_one = [e for e in before if 18 <= e.hours < 36]
        # "No drop since the 24 h score" only matters while soreness is above what is usual at 48 h.
        if day_one and soreness >= day_one[-1].soreness:
            raise_to("amber", "soreness:no_drop")

    return TriageResult(level, list(dict.fromkeys(reasons)))
