"""Triage of one check-in: red, amber or green (clinical.md, "Triage of a check-in").

The rules are data (`rules_document()`, built from SYMPTOMS, ENVELOPE and RISE_POINTS). The server
interprets them in `triage()`; the browser gets the same document and interprets it in
static/js/triage.js, so an offline check-in is judged exactly as the server will judge it. Red flags come only from the patient's
answers to the fixed checklist: they are never inferred from, nor suppressed by, the score.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

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


# Heuristic envelope; a clinic can adjust the numbers (companion/care/clinic_rules.py). Sources: Martín-Pintado-Zugasti 2018 (PMID 30368339),
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


def rules_document(envelope: Sequence[Window] = ENVELOPE) -> dict[str, Any]:
    """The triage rules as plain JSON data: the one definition both interpreters read.

    `envelope`: the clinic's own expected-soreness windows (clinic_rules.envelope_of).

    The server's `triage()` below and the browser's static/js/triage.js (used when the phone is
    offline) take exactly this document, so a threshold changed here changes both at once.
    """
    return {
        "version": 1,
        "symptoms": {
            code: {"level": s.level, "amber_after_hours": s.amber_after_hours}
            for code, s in SYMPTOMS.items()
        },
        "envelope": [asdict(w) for w in envelope],
        # clinical.md: "rising by 2+ points after the first 12 h".
        "rise": {"points": RISE_POINTS, "after_hours": 12},
        # clinical.md 24 h row: ">= 2 points above the first score after the visit".
        "above_first": {"from_hours": 18, "to_hours": 36},
        # clinical.md 48 h row: "no drop since the 24 h score" (only while above the usual maximum).
        "no_drop": {"from_hours": 36, "to_hours": 60, "compare_from": 18, "compare_to": 36},
    }


RULES: dict[str, Any] = rules_document()


@dataclass(frozen=True)
class EarlierScore:
    hours: float
    soreness: int


# Why a check-in was judged amber or red. The codes are stored with the check-in (`key`) and the
# alert (`as_record`); the words a therapist reads are rendered from these (alerts.queue.reason_text).
SYMPTOM = "symptom"
ABOVE_ENVELOPE = "above_envelope"
RISING = "rising"
ABOVE_FIRST = "above_first"
NO_DROP = "no_drop"


@dataclass(frozen=True)
class Reason:
    """One rule that fired, with the numbers it compared."""

    code: str  # SYMPTOM, ABOVE_ENVELOPE, RISING, ABOVE_FIRST or NO_DROP
    hours: int  # since the visit, rounded: "48 h: ..."
    symptom: str | None = None  # SYMPTOM: the checklist code
    soreness: int | None = None  # the score judged
    expected_max: int | None = None  # ABOVE_ENVELOPE: the usual maximum at this time
    previous: int | None = None  # RISING: the score before; NO_DROP: the day-one score
    first: int | None = None  # ABOVE_FIRST: the first score after the visit

    @property
    def key(self) -> str:
        """The short code kept with the check-in ("symptom:breathless", "soreness:rising"): the
        same strings static/js/triage.js returns, and the API and CSV show."""
        return f"symptom:{self.symptom}" if self.code == SYMPTOM else f"soreness:{self.code}"

    def as_record(self) -> dict[str, Any]:
        """The reason as the alert stores it (JSON): its code, hours and the numbers it compared."""
        if self.code == SYMPTOM:
            return {"code": SYMPTOM, "symptom": self.symptom, "hours": self.hours}
        record: dict[str, Any] = {"code": self.code, "hours": self.hours, "soreness": self.soreness}
        if self.code == ABOVE_ENVELOPE:
            record["expected_max"] = self.expected_max
        elif self.code == ABOVE_FIRST:
            record["first"] = self.first
        else:
            record["previous"] = self.previous
        return record


@dataclass(frozen=True)
class TriageResult:
    level: Level
    reasons: tuple[Reason, ...] = ()

    @property
    def keys(self) -> list[str]:
        return [reason.key for reason in self.reasons]


def envelope_window(rules: dict[str, Any], hours: float) -> dict[str, Any]:
    for w in rules["envelope"]:
        if w["from_hours"] <= hours < w["to_hours"]:
            return w
    return rules["envelope"][-1]


def triage(
    soreness: int,
    symptoms: Sequence[str],
    hours_since_visit: float,
    earlier: Sequence[EarlierScore] = (),
    rules: dict[str, Any] = RULES,
) -> TriageResult:
    """Judge one check-in. `earlier` are the patient's previous scores for the same visit.

    Keep this function and static/js/triage.js step for step alike; tests/e2e compares them on a
    table of cases.
    """
    reasons: dict[str, Reason] = {}  # by key: each rule counts once
    level: Level = "green"
    at = max(0, round(hours_since_visit))

    def raise_to(new: Level, reason: Reason) -> None:
        nonlocal level
        reasons.setdefault(reason.key, reason)
        if _RANK[new] > _RANK[level]:
            level = new

    hours = hours_since_visit
    for code in symptoms:
        s = rules["symptoms"][code]
        if s["level"] == "red":
            raise_to("red", Reason(SYMPTOM, at, symptom=code))
        elif s["level"] == "amber" and (
            s["amber_after_hours"] is None or hours >= s["amber_after_hours"]
        ):
            raise_to("amber", Reason(SYMPTOM, at, symptom=code))

    w = envelope_window(rules, max(hours, 0))
    if soreness >= w["amber_at"]:
        raise_to(
            "amber", Reason(ABOVE_ENVELOPE, at, soreness=soreness, expected_max=w["usual_max"])
        )

    before = sorted((e for e in earlier if e.hours < hours), key=lambda e: e.hours)
    rise = rules["rise"]
    if before and hours >= rise["after_hours"] and soreness >= before[-1].soreness + rise["points"]:
        raise_to("amber", Reason(RISING, at, soreness=soreness, previous=before[-1].soreness))
    first = rules["above_first"]
    if (
        before
        and first["from_hours"] <= hours < first["to_hours"]
        and soreness >= before[0].soreness + rise["points"]
    ):
        raise_to("amber", Reason(ABOVE_FIRST, at, soreness=soreness, first=before[0].soreness))
    no_drop = rules["no_drop"]
    if no_drop["from_hours"] <= hours < no_drop["to_hours"] and soreness > w["usual_max"]:
        day_one = [e for e in before if no_drop["compare_from"] <= e.hours < no_drop["compare_to"]]
        # "No drop since the 24 h score" only matters while soreness is above what is usual at 48 h.
        if day_one and soreness >= day_one[-1].soreness:
            raise_to("amber", Reason(NO_DROP, at, soreness=soreness, previous=day_one[-1].soreness))

    return TriageResult(level, tuple(reasons.values()))
