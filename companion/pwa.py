"""The installable web app: versioned static URLs, the web app manifest and the service worker.

Static files are served as `/static/<file>?v=<hash of the file>`, so a browser may cache them for a
year and a new release is a new URL. The service worker lives at /sw.js (its scope must cover the
patient pages) and is built from static/sw.js plus the list of files it must precache.
"""

from __future__ import annotations

import base64
import hashlib
import json
from functools import lru_cache
from pathlib import Path
from typing import Any, get_args

from flask import Blueprint, Flask, Response, current_app, url_for
from flask_babel import LazyString, force_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from companion.api.schemas import Language
from companion.reminders.notices import TITLE

bp = Blueprint("pwa", __name__)

# What a patient needs with no network: the look and the scripts. (The favicon is inlined in the
# pages and the install icons are only needed online, so neither costs a request here.)
SHELL_ASSETS = ("css/app.css", "js/outbox.js", "js/app.js", "js/triage.js", "js/checkin.js")
# Patient pages kept for offline use. The first three are fetched when the worker installs (the
# guide, the check-in, the offline page); all four are refreshed after check-ins are sent, and any
# of them is refreshed whenever the patient opens it online.
INSTALL_PAGES = ("patient.home", "patient.checkin", "patient.offline")
KEPT_PAGES = (*INSTALL_PAGES, "patient.history")
# The service worker's own code, in this order, after `self.BUILD`: one response, no importScripts.
# push.js is shared with the Reminders page: the worker subscribes again by itself when the browser
# replaces a push subscription.
WORKER_SOURCES = ("js/outbox.js", "js/push.js", "sw.js")
# What a notification shows when a push arrives without a usable message. The worker must show
# something for every push (Safari revokes a subscription that pushes silently), in the patient's
# language, which it reads from the guide it keeps; so both languages are built in.
FALLBACK_BODY = _l("You have a new aftercare reminder. Tap to open your guide.")
# The same for a therapist's alert (companion/alerts/devices.py) that cannot be read.
THERAPIST_FALLBACK_TITLE = _l("Clinic alert")
THERAPIST_FALLBACK_BODY = _l("Something in your clinic needs your attention. Tap to open it.")


@lru_cache(maxsize=256)
def _file_hash(path: str, mtime_ns: int) -> str:
    # mtime is part of the key so a file edited under `flask run` gets a new version.
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:12]


def asset_version(filename: str) -> str | None:
    path = Path(current_app.static_folder or "") / filename
    try:
        stat = path.stat()
    except OSError:
        return None
    return _file_hash(str(path), stat.st_mtime_ns)


def release() -> str:
    """One version for the whole shell: it changes when any precached file or sw.js changes."""
    parts = [asset_version(name) or "" for name in (*SHELL_ASSETS, *WORKER_SOURCES)]
    return hashlib.sha256("".join(parts).encode()).hexdigest()[:12]


@lru_cache(maxsize=4)
def _data_uri(path: str, mtime_ns: int) -> str:
    return "data:image/png;base64," + base64.b64encode(Path(path).read_bytes()).decode("ascii")


def favicon_data_uri() -> str:
    """The 32 px icon inlined (a few hundred bytes): one request fewer on every first visit."""
    path = Path(current_app.static_folder or "") / "icons" / "favicon-32.png"
    return _data_uri(str(path), path.stat().st_mtime_ns)


def _add_static_version(endpoint: str, values: dict[str, Any]) -> None:
    if endpoint == "static" and "filename" in values and "v" not in values:
        version = asset_version(values["filename"])
        if version:
            values["v"] = version


LANGUAGES: tuple[str, ...] = get_args(Language)


def fallback_notices(
    title: LazyString = TITLE, body: LazyString = FALLBACK_BODY
) -> dict[str, dict[str, str]]:
    notices = {}
    for lang in LANGUAGES:
        with force_locale(lang):
            notices[lang] = {"title": str(title), "body": str(body)}
    return notices


@bp.get("/sw.js")
def service_worker() -> Response:
    build = {
        "release": release(),
        "assets": [url_for("static", filename=name) for name in SHELL_ASSETS],
        "install_pages": [url_for(endpoint) for endpoint in INSTALL_PAGES],
        "pages": [url_for(endpoint) for endpoint in KEPT_PAGES],
        "offline": url_for("patient.offline"),
        # Kept pages are forgotten once older than any patient link can live.
        "keep_days": current_app.config["PATIENT_LINK_DAYS"],
        # Notifications: a tap opens a kept page, so it is never blank, even offline.
        "home": url_for("patient.home"),
        "icon": url_for("static", filename="icons/icon-192.png"),
        "badge": url_for("static", filename="icons/badge-96.png"),
        "notice": fallback_notices(),
        # A therapist's alert opens a therapist page; without a usable one, their home page.
        "therapist_home": url_for("review.queue"),
        "therapist_notice": fallback_notices(THERAPIST_FALLBACK_TITLE, THERAPIST_FALLBACK_BODY),
        "default_lang": LANGUAGES[0],
    }
    folder = Path(current_app.static_folder or "")
    sources = [(folder / name).read_text(encoding="utf-8") for name in WORKER_SOURCES]
    body = "\n".join([f"self.BUILD = {json.dumps(build)};", *sources])
    response = Response(body, mimetype="text/javascript")
    # The browser checks for a new worker on navigation; it must always see the current one.
    response.headers["Cache-Control"] = "no-cache"
    return response


def _manifest(
    app_id: str, name: str, short_name: str, description: str, start_url: str
) -> Response:
    icon = {"type": "image/png"}
    data = {
        "id": app_id,
        "name": name,
        "short_name": short_name,
        "description": description,
        "start_url": start_url,
        "scope": app_id,
        "display": "standalone",
        "background_color": "#fbfaf7",
        "theme_color": "#0f5f74",
        "icons": [
            {**icon, "src": url_for("static", filename="icons/icon-192.png"), "sizes": "192x192"},
            {**icon, "src": url_for("static", filename="icons/icon-512.png"), "sizes": "512x512"},
            {
                **icon,
                "src": url_for("static", filename="icons/maskable-512.png"),
                "sizes": "512x512",
                "purpose": "maskable",
            },
        ],
    }
    response = Response(json.dumps(data, ensure_ascii=False), mimetype="application/manifest+json")
    response.headers["Cache-Control"] = "no-cache"
    return response


@bp.get("/manifest.webmanifest")
def manifest() -> Response:
    """The patients' app: their pages under /me/."""
    return _manifest(
        "/me/",
        _("Aftercare companion"),
        _("Aftercare"),
        _("Your guide and check-ins after dry needling"),
        url_for("patient.home"),
    )


@bp.get("/review.webmanifest")
def therapist_manifest() -> Response:
    """The therapists' app, its own install: the review queue and the other clinic pages. An
    iPhone shows web push only to a site added to the Home Screen as a standalone app, so without
    it a therapist on iOS could not get alerts. Its scope (/) holds the patients' /me/, whose own
    manifest keeps the narrower scope, so a patient's install never opens therapist pages."""
    return _manifest(
        "/",
        _("Aftercare review"),
        _("Review"),
        _("Your clinic's review queue and alerts after dry needling"),
        url_for("review.queue"),
    )


def init_app(app: Flask) -> None:
    app.url_defaults(_add_static_version)
    app.add_template_global(favicon_data_uri)
    app.register_blueprint(bp)
