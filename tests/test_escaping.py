"""Notes are kept verbatim and shown escaped (issue 14, "Escaping"): HTML, script, right-to-left
overrides and 1,000 emoji come back byte for byte from the database, the API, the exact CSV and
FHIR, and every page that shows a note shows it as text, isolated so an override cannot reorder
what is around it. NUL is refused (400) and nothing is stored.
"""

from __future__ import annotations

import csv
import io
import re
import uuid
from datetime import datetime

import pytest
from markupsafe import escape
from sqlalchemy import func, select, text

from companion.extensions import db
from companion.models import CheckIn

from .conftest import sign_in
from .test_patient import form_data

RLO, PDF = "\u202e", "\u202c"
EMOJI = "\U0001f600"  # one code point, two UTF-16 units, four UTF-8 bytes
NOTES = {
    "bold": "<b>x</b>",
    "attribute breakout": '"><script>alert(1)</script>',
    "script and handler": "<script>document.title='pwned'</script><img src=x onerror=alert(1)>",
    "entities": "&lt;b&gt; is not <b>, & stays &amp;",
    "right-to-left override": f"pain in the {RLO}fl eht ni{PDF} calf, and {RLO}gnirud",
    "1,000 emoji": EMOJI * 1000,
    "joined emoji": "\U0001f468\u200d\U0001f469\u200d\U0001f467 family, \U0001f44d\U0001f3fd",
}


def checkin(note: str, now: datetime) -> dict[str, object]:
    return {"id": str(uuid.uuid4()), "recorded_at": now.isoformat(), "soreness": 4, "note": note}


def stored_notes() -> list[str | None]:
    # Past the ORM too: what the database itself holds.
    return [row[0] for row in db.session.execute(text("SELECT note FROM checkin"))]


def note_elements(html: str, note: str) -> list[str]:
    """The opening tags of the elements whose whole text is the (escaped) note."""
    pattern = r"(<[a-z]+\b[^>]*>)\s*" + re.escape(str(escape(note))) + r"\s*</"
    return re.findall(pattern, html)


@pytest.fixture
def setting(client, make_clinic, make_therapist, make_visit, make_api_key, now):
    """A patient holding their cookie, their therapist signed in elsewhere, the clinic's key."""
    clinic = make_clinic()
    visit = make_visit(clinic, now=now)
    assert client.get(visit.url).status_code == 303
    therapist = client.application.test_client()
    assert sign_in(therapist, make_therapist(clinic).email).status_code == 302
    return client, therapist, visit.visit, make_api_key(clinic)


@pytest.mark.parametrize("name", list(NOTES))
def test_a_note_is_kept_verbatim_everywhere_it_leaves(setting, name, now):
    patient, therapist, visit, key = setting
    note = NOTES[name]
    bearer = {"Authorization": f"Bearer {key}"}

    sent = patient.post("/api/v1/checkins", json=checkin(note, now))

    assert sent.status_code == 201, sent.get_json()
    assert sent.get_json()["note"] == note
    assert [n.encode() for n in stored_notes()] == [note.encode("utf-8")]
    assert patient.get("/api/v1/checkins").get_json()["checkins"][0]["note"] == note
    exact = therapist.get(
        "/api/v1/checkins.csv?from=2026-11-25&to=2026-11-25&raw=1", headers=bearer
    )
    rows = list(csv.DictReader(io.StringIO(exact.get_data(as_text=True), newline="")))
    assert [row["note"] for row in rows] == [note]
    bundle = therapist.get(f"/api/v1/visits/{visit.id}/fhir", headers=bearer).get_json()
    answers = [
        answer["valueString"]
        for entry in bundle["entry"]
        for item in entry["resource"].get("item", [])
        if item["linkId"] == "note"
        for answer in item["answer"]
    ]
    assert answers == [note]


@pytest.mark.parametrize("name", list(NOTES))
def test_a_note_is_shown_escaped_and_isolated_on_every_page_that_shows_it(setting, name, now):
    patient, therapist, visit, _key = setting
    note = NOTES[name]
    assert patient.post("/api/v1/checkins", json=checkin(note, now)).status_code == 201

    pages = {
        "therapist's visit page": therapist.get(f"/visits/{visit.id}").get_data(as_text=True),
        "patient's history": patient.get("/me/check-ins").get_data(as_text=True),
    }
    queue = therapist.get("/").get_data(as_text=True)  # lists the alert, not the note

    for page, html in pages.items():
        # Shown once, as text, in an element of its own whose direction is the note's own:
        # <bdi>, or dir="auto", isolates it, so an override inside cannot reorder the text around
        # it (the label of a table cell, the date above a paragraph).
        tags = note_elements(html, note)
        assert len(tags) == 1, page
        assert tags[0] == "<bdi>" or 'dir="auto"' in tags[0], (page, tags[0])
        if "<" in note:
            assert note not in html, page
    for html in [*pages.values(), queue]:
        assert "<script>alert(1)" not in html and "<script>document" not in html
        assert "<img src=x" not in html and "<b>x</b>" not in html


def test_the_note_limit_counts_an_emoji_as_one_character(setting, now):
    patient, *_ = setting

    too_long = patient.post("/api/v1/checkins", json=checkin(EMOJI * 1001, now))
    # A family emoji is five code points (three people, two joiners): 200 of them are 1,000.
    families = "\U0001f468\u200d\U0001f469\u200d\U0001f467" * 200
    at_the_limit = patient.post("/api/v1/checkins", json=checkin(families, now))

    assert too_long.status_code == 422 and too_long.get_json()["error"]["code"] == "too_long"
    assert at_the_limit.status_code == 201
    assert stored_notes() == [families]


def test_nul_is_refused_on_the_api_and_the_form_and_nothing_is_stored(setting, now):
    patient, *_ = setting

    api = patient.post("/api/v1/checkins", json=checkin("before\u0000after", now))
    form = patient.post("/me/check-in", data=form_data(patient, note="before\x00after"))

    assert api.status_code == 400 and api.get_json()["error"]["code"] == "nul_character"
    assert form.status_code == 400
    assert db.session.scalar(select(func.count()).select_from(CheckIn)) == 0


@pytest.mark.parametrize("name", ["attribute breakout", "right-to-left override", "1,000 emoji"])
def test_the_patient_form_keeps_the_note_verbatim_too(setting, name, now):
    patient, *_ = setting
    note = NOTES[name]

    sent = patient.post("/me/check-in", data=form_data(patient, note=note))

    assert sent.status_code in (200, 303), sent.status_code
    assert stored_notes() == [note]


@pytest.mark.postgres
@pytest.mark.parametrize("name", list(NOTES))
def test_postgresql_keeps_every_note_byte_for_byte(setting, name, now):
    patient, *_ = setting
    note = NOTES[name]

    assert patient.post("/api/v1/checkins", json=checkin(note, now)).status_code == 201

    assert [n.encode() for n in stored_notes()] == [note.encode("utf-8")]
    assert db.session.scalar(select(func.length(CheckIn.note))) == len(note)
