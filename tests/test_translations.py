"""Every patient- and therapist-facing text in the code has a Spanish translation that keeps its
placeholders. The catalogue is compared with a fresh extraction, so a new string is caught at once."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from babel.messages.pofile import read_po

ROOT = Path(__file__).resolve().parent.parent
SPANISH = ROOT / "companion" / "translations" / "es" / "LC_MESSAGES" / "messages.po"
PLACEHOLDER = re.compile(r"%\(\w+\)[sd]")


def extracted(tmp_path: Path) -> set[str]:
    pot = tmp_path / "fresh.pot"
    subprocess.run(
        [
            *(sys.executable, "-m", "babel.messages.frontend", "extract", "-F", "babel.cfg"),
            *("-k", "_l", "-k", "lazy_gettext", "-o", str(pot), "--no-location", "."),
        ],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    with pot.open("rb") as handle:
        return {m.id if isinstance(m.id, str) else m.id[0] for m in read_po(handle) if m.id}


def spanish() -> dict[str, object]:
    with SPANISH.open("rb") as handle:
        return {(m.id if isinstance(m.id, str) else m.id[0]): m for m in read_po(handle) if m.id}


def test_every_text_in_the_code_has_a_spanish_translation(tmp_path):
    catalog = spanish()
    source = extracted(tmp_path)
    assert len(source) > 200
    missing = sorted(text for text in source if text not in catalog)
    assert missing == [], "run `make messages` and translate"
    untranslated = []
    for text in source:
        message = catalog[text]
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        if message.fuzzy or not all(s.strip() for s in strings):
            untranslated.append(text)
    assert sorted(untranslated) == []


def test_spanish_texts_keep_every_placeholder():
    for text, message in spanish().items():
        ids = message.id if isinstance(message.id, tuple) else (message.id,)
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        wanted = set(PLACEHOLDER.findall(ids[-1]))
        for translated in strings:
            if translated:
                assert set(PLACEHOLDER.findall(translated)) == wanted, text
