"""Browser fixtures: the app on a real HTTP server on 127.0.0.1 and Debian's chromium."""

from __future__ import annotations

import shutil
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from werkzeug.serving import WSGIRequestHandler, make_server

from companion.extensions import db
from companion.models import Clinic
from companion.timeutil import utcnow
from companion.visits.record import (
    PatientDetails,
    VisitDetails,
    find_or_create_patient,
    record_visit,
)

from ..conftest import build_app

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
PHONE: dict[str, Any] = {
    "viewport": {"width": 390, "height": 844},  # about an iPhone 12's viewport
    "device_scale_factor": 2,
    "is_mobile": True,
    "has_touch": True,
}


class _OneRequestPerConnection(WSGIRequestHandler):
    # No keep-alive: once the server stops, the browser cannot reach it through an old connection,
    # so "the server is down" in a test really means down.
    protocol_version = "HTTP/1.0"


class LiveServer:
    """The app on 127.0.0.1 at a fixed port that can be stopped and started again (a lost network)."""

    def __init__(self, app: Flask) -> None:
        self.app = app
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._server: Any = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._server = make_server(
            "127.0.0.1",
            self.port,
            self.app,
            threaded=True,
            request_handler=_OneRequestPerConnection,
        )
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        assert self._thread is not None
        self._thread.join()
        self._server = None


@pytest.fixture
def live_app(tmp_path: Path) -> Flask:
    # SERVER_NAME stays unset: the browser reaches the server by its real address.
    return build_app(tmp_path, SERVER_NAME=None)


@pytest.fixture
def server(live_app: Flask) -> Iterator[LiveServer]:
    live = LiveServer(live_app)
    live.start()
    try:
        yield live
    finally:
        live.stop()


@pytest.fixture
def live_server(server: LiveServer) -> str:
    return server.url


@pytest.fixture(scope="session")
def chromium_path() -> str:
    executable = shutil.which("chromium")
    if executable is None:
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    return executable


@pytest.fixture
def playwright(chromium_path: str) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as driver:
        yield driver


@pytest.fixture
def browser(playwright: Any, chromium_path: str) -> Iterator[Any]:
    browser = playwright.chromium.launch(executable_path=chromium_path, args=CHROMIUM_FLAGS)
    try:
        yield browser
    finally:
        browser.close()


@pytest.fixture
def phone(browser):  # type: ignore[no-untyped-def]
    """A phone-sized browser context (about an iPhone 12's viewport)."""
    context = browser.new_context(**PHONE)
    yield context.new_page()
    context.close()


@pytest.fixture
def open_phone(playwright: Any, chromium_path: str, tmp_path: Path) -> Callable[[], Any]:
    """Start the phone's browser with a profile on disk, so a test can close it and open it again
    with its cookies, service worker, caches and IndexedDB intact."""
    profile = tmp_path / "phone-profile"
    opened: list[Any] = []

    def launch() -> Any:
        context = playwright.chromium.launch_persistent_context(
            str(profile), executable_path=chromium_path, args=CHROMIUM_FLAGS, **PHONE
        )
        opened.append(context)
        return context

    yield launch
    for context in opened:
        # Closing twice is harmless: a test closes the browser on purpose to reopen it.
        context.close()


@dataclass(frozen=True)
class PatientVisit:
    visit_id: Any
    link_path: str


@pytest.fixture
def patient_visit(live_app: Flask) -> Callable[..., PatientVisit]:
    """A clinic, a patient and a visit, straight into the database; returns the patient's link."""

    def make(
        *,
        language: str = "en",
        regions: tuple[str, ...] = ("neck",),
        hours_ago: float = 3,
        now: datetime | None = None,
    ) -> PatientVisit:
        now = now or utcnow()
        with live_app.app_context():
            clinic = Clinic(name=f"Clinic {language} {hours_ago}", phone="+34 900 111 222")
            db.session.add(clinic)
            db.session.flush()
            patient = find_or_create_patient(
                clinic, PatientDetails("P-1", "Robin", "Europe/Madrid", language)
            )
            visit, issued = record_visit(
                clinic,
                patient,
                VisitDetails(performed_at=now - timedelta(hours=hours_ago), regions=list(regions)),
                therapist_id=None,
                link_days=7,
                now=now,
            )
            db.session.commit()
            return PatientVisit(visit.id, f"/p/{issued.token}")

    return make


def stored_checkins(app: Flask, visit_id: Any) -> list[Any]:
    from sqlalchemy import select

    from companion.models import CheckIn

    with app.app_context():
        rows = db.session.scalars(select(CheckIn).where(CheckIn.visit_id == visit_id)).all()
        db.session.expunge_all()
        return list(rows)
