"""The stretch drawings (issue 15): one per stretch, small plain line art that takes the page's
text colour (dark mode too), inlined with a text alternative in the patient's language
(companion/care/drawings.py) in the guide and on the printed handout."""

from __future__ import annotations

import html
import re
import xml.etree.ElementTree as ET

import pytest
from flask_babel import force_locale

from companion.care.drawings import FOLDER, stretch_drawing
from companion.care.stretches import BY_CODE, STRETCHES, Stretch
from companion.extensions import db

from .conftest import sign_in
from .test_handout import issue

NS = "{http://www.w3.org/2000/svg}"
CODES = [s.code for s in STRETCHES]
# Line art only: shapes, and the attributes that draw them. No id (several drawings share a page),
# no href, style, class or event handler; nothing that fetches or runs anything.
TAGS = {NS + t for t in ("svg", "g", "path", "circle", "ellipse", "rect", "line", "polyline")}
ATTRIBUTES = {
    "viewBox", "fill", "stroke", "stroke-width", "stroke-linecap", "stroke-linejoin",
    "stroke-dasharray", "transform", "d", "cx", "cy", "r", "rx", "ry", "x", "y", "width", "height",
    "x1", "y1", "x2", "y2", "points",
}  # fmt: skip
LABEL = re.compile(r'<svg role="img" aria-label="([^"]*)" focusable="false" ')


def parse(text: str) -> ET.Element:
    # Our own files and markup, and no DOCTYPE or entity can be in them (asserted before this).
    return ET.fromstring(text)  # noqa: S314


def source(code: str) -> str:
    return (FOLDER / f"{code}.svg").read_text(encoding="utf-8")


def test_every_stretch_has_a_drawing_and_every_drawing_a_stretch():
    assert sorted(path.stem for path in FOLDER.glob("*.svg")) == sorted(CODES)


@pytest.mark.parametrize("code", CODES)
def test_each_drawing_is_small_line_art_in_the_text_colour(code):
    text = source(code)
    assert len(text.encode("utf-8")) <= 4096
    assert text.startswith("<svg ")
    assert "<!" not in text and "<?" not in text  # no DOCTYPE, entity, comment or prolog
    root = parse(text)
    assert root.tag == NS + "svg"
    assert re.fullmatch(r"0 0 \d+ \d+", root.get("viewBox", ""))
    assert root.get("width") is None and root.get("height") is None  # the CSS sizes it
    assert root.get("stroke") == "currentColor"
    for element in root.iter():
        assert element.tag in TAGS
        assert set(element.attrib) <= ATTRIBUTES, element.attrib
        for paint in ("fill", "stroke"):
            assert element.get(paint, "none") in ("currentColor", "none")
    for forbidden in ("script", "foreignObject", "href", "url(", "style", "#", "rgb", "hsl"):
        assert forbidden not in text


def test_a_drawing_is_inlined_with_a_label_in_english_and_spanish(app):
    stretch = BY_CODE["upper_trap_side_bend"]
    with app.test_request_context(), force_locale("en"):
        english = str(stretch_drawing(stretch))
    with app.test_request_context(), force_locale("es"):
        spanish = str(stretch_drawing(stretch))
        spanish_title = str(stretch.title)
    assert LABEL.match(english).group(1) == "Drawing: Neck side bend"
    assert spanish_title != "Neck side bend"
    assert LABEL.match(spanish).group(1) == f"Dibujo: {spanish_title}"
    for markup in (english, spanish):
        root = parse(markup)
        assert root.get("role") == "img" and root.get("focusable") == "false"
        assert markup.endswith("</svg>") and markup.count("<svg") == 1
        assert markup.removeprefix(LABEL.match(markup).group(0)) == source(stretch.code).strip()[5:]


def test_the_label_is_escaped(app):
    odd = Stretch("chin_tuck", ("neck",), 'Tuck "in" <b>&</b>', "how")
    with app.test_request_context(), force_locale("en"):
        markup = str(stretch_drawing(odd))
    assert 'aria-label="Drawing: Tuck &#34;in&#34; &lt;b&gt;&amp;&lt;/b&gt;"' in markup
    assert parse(markup).get("aria-label") == 'Drawing: Tuck "in" <b>&</b>'
    assert "<b>" not in markup


@pytest.mark.parametrize("language", ["en", "es"])
def test_the_guide_shows_one_drawing_per_chosen_stretch(
    language, app, client, make_clinic, make_visit
):
    visit = make_visit(make_clinic(), regions=["calf"], language=language)
    visit.visit.stretches = ["plantar_fascia", "calf_wall", "neck_turn"]
    db.session.commit()
    assert client.get(visit.url).status_code == 303

    page = client.get("/me/").get_data(as_text=True)

    stretches = page[
        page.index('<ul class="stretches">') : page.index(
            "</ul>", page.index('<ul class="stretches">')
        )
    ]
    labels = [html.unescape(label) for label in LABEL.findall(stretches)]
    with app.test_request_context(), force_locale(language):
        word = "Drawing" if language == "en" else "Dibujo"
        wanted = [f"{word}: {BY_CODE[c].title}" for c in visit.visit.stretches]
    assert labels == wanted  # one each, in the therapist's order, each beside its own words
    assert len(LABEL.findall(page)) == 3  # and none elsewhere on the page


def test_a_guide_without_stretches_has_no_drawing(client, make_clinic, make_visit):
    visit = make_visit(make_clinic(), regions=["calf"])
    visit.visit.stretches = []
    db.session.commit()
    client.get(visit.url)
    page = client.get("/me/").get_data(as_text=True)
    assert 'class="stretches"' not in page and "Drawing:" not in page


def test_the_handout_shows_the_drawings_in_the_patients_language(
    app, client, make_clinic, make_therapist, make_visit
):
    clinic = make_clinic()
    sign_in(client, make_therapist(clinic).email)  # a therapist who reads English
    visit = make_visit(clinic, regions=["neck"], language="es").visit
    visit.stretches = ["chin_tuck", "neck_turn"]
    db.session.commit()
    issue(client, visit)

    page = client.get(f"/visits/{visit.id}/handout").get_data(as_text=True)

    with app.test_request_context(), force_locale("es"):
        wanted = [f"Dibujo: {BY_CODE[c].title}" for c in visit.stretches]
    assert [html.unescape(label) for label in LABEL.findall(page)] == wanted
