"""Day 7: the patient's global impression of change of their usual pain (clinical.md, reminder
moments: "day 7: 'how is your usual pain' (global impression of change, 7 points)").

The scale is the usual 7-point Patient Global Impression of Change: 1 very much improved, 2 much
improved, 3 minimally improved, 4 no change, 5 minimally worse, 6 much worse, 7 very much worse
(Guy 1976, ECDEU Assessment Manual, Clinical Global Impressions, CGI-I; Hurst & Bolton 2004,
J Manipulative Physiol Ther 27(1):26-35, PMID 14739871, PGIC in musculoskeletal pain). Public domain;
no LOINC code was found (clinical.md, codes for exports), so exports use a local code system.

It asks about the usual pain (the problem being treated), not the soreness where the needles went:
clinical.md says to ask the two separately. The patient sees plain words ("much better"); the
therapist and the exports see the scale's own words ("much improved").
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from flask_babel import lazy_gettext as _l

# Asked from day 6: the day-7 reminder lands at the visit's wall-clock time a week later, deferred
# by quiet hours at most, and a patient who opens the app a little early still gets the question.
# Earlier, the answer would mostly say how the needling soreness is going.
ASKED_FROM = timedelta(days=6)
SOURCE = "Guy 1976 (CGI-I); Hurst & Bolton 2004, PMID 14739871"


@dataclass(frozen=True)
class Answer:
    code: int
    display: str  # the scale's own English words: FHIR and CSV, the same in every language
    label: object  # the patient's words, translated
    summary: object  # the scale's words for the therapist, translated


QUESTION = _l("Compared with before this visit, how is your usual pain now?")
HINT = _l(
    "The problem you are treated for, not the soreness where the needles went. Answer if you "
    "want to."
)

ANSWERS: tuple[Answer, ...] = (
    Answer(1, "Very much improved", _l("Very much better"), _l("very much improved")),
    Answer(2, "Much improved", _l("Much better"), _l("much improved")),
    Answer(3, "Minimally improved", _l("A little better"), _l("minimally improved")),
    Answer(4, "No change", _l("No change"), _l("no change")),
    Answer(5, "Minimally worse", _l("A little worse"), _l("minimally worse")),
    Answer(6, "Much worse", _l("Much worse"), _l("much worse")),
    Answer(7, "Very much worse", _l("Very much worse"), _l("very much worse")),
)
BY_CODE: dict[int, Answer] = {a.code: a for a in ANSWERS}
LOWEST, HIGHEST = ANSWERS[0].code, ANSWERS[-1].code


def asked(performed_at: datetime, at: datetime) -> bool:
    """Whether the question belongs to a check-in made at `at` (recorded time) for this visit."""
    return at - performed_at >= ASKED_FROM


def summary(code: int) -> object:
    """The answer for the therapist, e.g. "much improved (2/7)"."""
    answer = BY_CODE[code]
    return _l("%(answer)s (%(code)s/7)", answer=answer.summary, code=code)
