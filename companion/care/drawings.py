"""Line drawings of the stretches, one per stretch: static/img/stretches/<code>.svg.

The pages inline them (an <svg> in the HTML) instead of pointing an <img> at the file, for two
reasons. The drawings stroke with `currentColor`, and only an inlined SVG inherits the page's text
colour, so they follow the dark colour scheme; an <img> would stay black on a dark page. And they
become part of the page, so the copy of the guide the service worker keeps works offline with
its drawings, with no second file to fetch or to cache.

Each file is the project's own work: a plain line drawing (no script, no links, no ids, which
would collide when several are on one page), checked by tests/test_stretch_drawings.py. This
module adds what the page needs: a text alternative, and no tab stop in old Edge.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from flask_babel import gettext as _
from markupsafe import Markup

from companion.care.stretches import Stretch

FOLDER = Path(__file__).resolve().parents[2] / "static" / "img" / "stretches"


@cache
def _source(code: str) -> str:
    """The file's text, read once per process: the drawings change only with a release."""
    text = (FOLDER / f"{code}.svg").read_text(encoding="utf-8").strip()
    if not text.startswith("<svg "):  # stretch_drawing puts its attributes right after this
        raise ValueError(f"{code}.svg does not start with its <svg> element")
    return text


def stretch_drawing(stretch: Stretch) -> Markup:
    """The stretch's drawing as inline SVG, labelled in the current language.

    Takes a Stretch, not a code, so only the library's own codes ever name a file. The label is
    translated per request (it is not cached with the file) and escaped for the attribute: a title
    is ours, but a translator's quote mark must not end the attribute.
    """
    label = _("Drawing: %(title)s", title=stretch.title)
    # The file is our own markup, checked by tests/test_stretch_drawings.py; format() escapes the label.
    drawing = Markup(_source(stretch.code).removeprefix("<svg "))  # noqa: S704
    return Markup('<svg role="img" aria-label="{}" focusable="false" {}').format(label, drawing)
