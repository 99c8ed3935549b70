"""Every page, patient and therapist, in English and Spanish, is valid HTML for the W3C Nu HTML
Checker (vnu.jar, the checker behind validator.w3.org/nu): zero errors.

The pages are what the server sends (tests/site_walk.py walks every link and sends the forms whose
answers are pages), written to files and checked in one run of the checker: a JVM takes seconds to
start, so one run for all of them.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from flask import Flask

from companion.extensions import db

from .conftest import build_app
from .site_walk import file_name, pages_of, walk

ROOT = Path(__file__).resolve().parents[1]
VNU = ROOT / "node_modules" / "vnu-jar" / "build" / "dist" / "vnu.jar"


@pytest.fixture
def java() -> str:
    executable = shutil.which("java")
    if executable is None:
        pytest.skip("Java is not installed (make java): the Nu HTML Checker cannot run")
    if not VNU.exists():
        pytest.skip("vnu-jar is not installed: run `make test` (it runs `npm ci`)")
    return executable


def test_every_page_is_valid_html_for_the_nu_checker(
    java: str, now: datetime, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    names: dict[str, str] = {}
    for language in ("en", "es"):
        # An app and a database per language: each walk fills its clinic from nothing.
        app = build_app(tmp_path_factory.mktemp(f"walk-{language}"))
        visitors = walk(app, language, now)
        with app.app_context():
            db.engine.dispose()
        for index, page in enumerate(pages_of(visitors)):
            name = file_name(index, language, page) + ".html"
            (tmp_path / name).write_text(page.html, encoding="utf-8")
            names[name] = f"{language} {page.who} {page.name} ({page.url})"
    assert len(names) > 80  # the walk reached the whole site, not just a sign-in page

    # Not under `make test-clock`'s libfaketime: the checker reads no clock that matters here, and
    # the JVM's own timers need not meet libfaketime's faults (tests/libfaketime.py).
    env = {
        k: v for k, v in os.environ.items() if k != "LD_PRELOAD" and not k.startswith("FAKETIME")
    }
    run = subprocess.run(
        [java, "-jar", str(VNU), "--format", "json", "--stdout", *sorted(names)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    messages = json.loads(run.stdout)["messages"]
    # "info" messages are warnings and notes; errors and documents the checker could not read fail.
    errors = [m for m in messages if m.get("type") != "info"]
    report = [
        f"{names.get(Path(m.get('url', '')).name, m.get('url'))}:{m.get('lastLine')}: "
        f"{m.get('message')}\n    {m.get('extract', '').strip()}"
        for m in errors
    ]
    assert report == [], "\n".join(report)
    assert run.returncode == 0, run.stderr


def test_time_elements_get_the_instant_to_the_second_in_utc(app: Flask) -> None:
    # HTML takes at most three digits of a second; isoformat() gives six.
    template = app.jinja_env.from_string('<time datetime="{{ at|utc_instant }}">')
    at = datetime(2026, 11, 25, 11, 0, 3, 721363, tzinfo=ZoneInfo("Europe/Madrid"))
    assert template.render(at=at) == '<time datetime="2026-11-25T10:00:03Z">'


def test_a_page_with_several_forms_repeats_no_csrf_field_id(app: Flask) -> None:
    from companion.forms import ActionForm, SignInForm

    with app.test_request_context():
        fields = [str(ActionForm().csrf_token), str(SignInForm().csrf_token)]
        named = str(ActionForm().csrf_token(id="own-id"))
    assert all(" id=" not in field and 'name="csrf_token"' in field for field in fields)
    assert 'id="own-id"' in named  # a template may still give it an id of its own
