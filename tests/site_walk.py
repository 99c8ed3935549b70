"""Every page of the app, as the server sends it, for the markup checkers (tests/test_markup.py runs
the W3C Nu HTML Checker on them, tests/e2e/test_markup_ibm.py IBM's Equal Access checker).

A clinic is filled so that every part of every page is drawn (a red flag, an acknowledged amber
item, a missing check-in, a resolved red flag, a deletion request, an API key, a colleague with
two-step sign-in). Then three visitors walk it with Flask's test client: a patient, an admin and
someone signed in as nobody. Each follows every link of every page it reaches (so a new page or a
new link is checked without a word changed here), and also sends the forms whose answers are pages
of their own: errors, results, one-time links. Nothing is compared with expected HTML.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urljoin, urlsplit

from flask import Flask
from flask.testing import FlaskClient

from companion.auth import hash_password
from companion.checkins.store import CheckInDetails, submit_checkin
from companion.extensions import db
from companion.models import Alert, ApiKey, Clinic, Therapist
from companion.tokens import hash_token, new_token
from companion.visits.record import (
    PatientDetails,
    VisitDetails,
    find_or_create_patient,
    record_visit,
)

from .conftest import PASSWORD

ADMIN = "ines@harbour.example"
COLLEAGUE = "ben@harbour.example"  # two-step sign-in on: the code page is his
TOTP_SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
# The same on the test client and in the browser that shows its pages: a signed-in session is
# bound to the user agent (Flask-Login's "strong" session protection).
USER_AGENT = "Mozilla/5.0 (site walk) Chrome/120.0 Mobile"
# Never followed: leaving the area (a patient link opens the patient's app, whose walk is its
# own), files that are not pages, and pages that would end the walk's session.
NOT_PAGES = (".csv", ".ics", ".json", ".png", ".svg", ".js", ".css", ".webmanifest")
# Pages of one route (the visit page of each patient, the audit trail's pages and filters): a few
# show every part; the forms below reach the states that links do not.
MAX_PAGES_PER_ROUTE = 3
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
INVITE_URL = re.compile(r'id="invite-url"[^>]*value="([^"]+)"')


@dataclass(frozen=True)
class Page:
    name: str
    who: str  # "patient", "therapist" or "visitor": whose cookies the page was drawn with
    url: str  # path and query
    status: int
    html: str


@dataclass
class Seeded:
    red_visit: str
    patient_link: str
    patient_visit: str
    late_link: str  # another patient's, six and a half days after the visit: the day-7 question


def seed(app: Flask, language: str, now: datetime) -> Seeded:
    with app.app_context():
        clinic = Clinic(name="Harbour Physio", timezone="Europe/Madrid", phone="+34 900 111 222")
        db.session.add(clinic)
        db.session.flush()
        admin = Therapist(
            clinic_id=clinic.id, email=ADMIN, password_hash=hash_password(PASSWORD), role="admin"
        )
        colleague = Therapist(
            clinic_id=clinic.id,
            email=COLLEAGUE,
            password_hash=hash_password(PASSWORD),
            role="therapist",
            totp_secret=TOTP_SECRET,
            totp_enabled_at=now - timedelta(days=3),
        )
        db.session.add_all([admin, colleague])
        key = "ak_" + new_token()
        db.session.add(
            ApiKey(clinic_id=clinic.id, name="Agenda", prefix=key[:10], key_hash=hash_token(key))
        )
        db.session.flush()

        def visit(ref: str, name: str, hours_ago: float, lang: str = "en"):  # type: ignore[no-untyped-def]
            patient = find_or_create_patient(
                clinic, PatientDetails(ref, name, "Europe/Madrid", lang)
            )
            performed = now - timedelta(hours=hours_ago)
            return record_visit(
                clinic,
                patient,
                VisitDetails(performed_at=performed, regions=["neck"]),
                therapist_id=admin.id,
                link_days=7,
                now=performed,
            )

        def checkin(v, hours: float, soreness: int, symptoms: list[str]) -> None:  # type: ignore[no-untyped-def]
            at = v.performed_at + timedelta(hours=hours)
            details = CheckInDetails(uuid.uuid4(), at, soreness, 3, symptoms, ["heat"], "ok")
            submit_checkin(v, details, now=at)

        red, _ = visit("R-1", "Rosa", 30)
        checkin(red, 3, 4, [])
        checkin(red, 12, 8, [])
        checkin(red, 28, 3, ["breathless"])
        amber, _ = visit("A-1", "Ana", 50)
        checkin(amber, 3, 4, [])
        checkin(amber, 48, 6, [])
        visit("S-1", "Sol", 30)
        fine, _ = visit("F-1", "Fede", 26)
        checkin(fine, 24, 2, [])
        handled, _ = visit("P-1", "Pau", 40)
        checkin(handled, 20, 2, ["chest_pain"])
        # The patient who walks the app: in the walk's language, 3 hours after the visit.
        walker, issued = visit("W-1", "Robin", 3, language)
        _, late = visit("W-2", "Noa", 156, language)
        db.session.flush()
        for alert in db.session.query(Alert).filter(Alert.visit_id == amber.id):
            alert.acknowledged_at, alert.acknowledged_by = now, admin.id
        for alert in db.session.query(Alert).filter(Alert.visit_id == handled.id):
            alert.acknowledged_at = alert.resolved_at = now - timedelta(hours=5)
            alert.acknowledged_by = alert.resolved_by = admin.id
            alert.resolution_note = "Called: seen at the emergency department, all clear"
        db.session.commit()
        seeded = Seeded(str(red.id), f"/p/{issued.token}", str(walker.id), f"/p/{late.token}")
        db.session.remove()
    return seeded


class _Forms(HTMLParser):
    """The forms of a page with the values a browser would send without a change by the user."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[dict[str, Any]] = []
        self._select: str | None = None
        self._textarea: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.forms.append({"action": a.get("action", ""), "fields": []})
            return
        if not self.forms or "disabled" in a:
            return
        fields = self.forms[-1]["fields"]
        name = a.get("name")
        if tag == "input" and name:
            kind = a.get("type", "text")
            if kind in ("checkbox", "radio") and "checked" not in a:
                return
            if kind in ("submit", "button", "file", "image", "reset"):
                return
            fields.append((name, a.get("value", "on" if kind in ("checkbox", "radio") else "")))
        elif tag == "select" and name:
            self._select = name
            fields.append((name, None))  # the first option unless one is selected
        elif tag == "option" and self._select:
            value = a.get("value", "")
            for i, (n, v) in enumerate(fields):
                if n == self._select and (v is None or "selected" in a):
                    fields[i] = (n, value)
        elif tag == "textarea" and name:
            self._textarea = name
            fields.append((name, ""))

    def handle_data(self, data: str) -> None:
        if self._textarea and self.forms:
            fields = self.forms[-1]["fields"]
            fields[-1] = (self._textarea, fields[-1][1] + data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "select":
            self._select = None
        elif tag == "textarea":
            self._textarea = None


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            href = dict(attrs).get("href")
            if href:
                self.hrefs.append(href)


@dataclass
class Visitor:
    """One browser's worth of cookies walking the site, keeping every page it sees."""

    who: str
    client: FlaskClient
    pages: list[Page] = field(default_factory=list)
    area: tuple[str, ...] = ("/",)
    avoid: tuple[str, ...] = ()
    seen: set[str] = field(default_factory=set)
    last_html: str = ""

    def keep(self, name: str, response: Any) -> str:
        request = response.request
        url = request.path + (f"?{request.query_string.decode()}" if request.query_string else "")
        html = response.get_data(as_text=True)
        assert response.mimetype == "text/html", (name, url, response.status_code)
        assert response.status_code < 500, (name, url, response.status_code)
        self.pages.append(Page(name, self.who, url, response.status_code, html))
        self.last_html = html
        return html

    def get(self, name: str, url: str) -> str:
        return self.keep(name, self.client.get(url, follow_redirects=True))

    def submit(self, name: str, action: str, changes: dict[str, Any] | None = None) -> str:
        """Send the form of the last page whose action ends with `action`, as drawn, with
        `changes` (None removes a field; a list sends every value)."""
        parser = _Forms()
        parser.feed(self.last_html)
        forms = [f for f in parser.forms if urlsplit(f["action"]).path.endswith(action)]
        assert forms, f"{name}: no form posts to {action}"
        form = forms[0]
        data: list[tuple[str, Any]] = [
            (n, v) for n, v in form["fields"] if n not in (changes or {}) and v is not None
        ]
        for n, v in (changes or {}).items():
            for value in v if isinstance(v, list) else [v]:
                if value is not None:
                    data.append((n, value))
        multi: dict[str, Any] = {}
        for n, v in data:
            multi.setdefault(n, []).append(v)
        response = self.client.post(form["action"], data=multi, follow_redirects=True)
        return self.keep(name, response)

    def crawl(self, start: str, label: str = "") -> None:
        """Every page reachable by links from `start`, breadth first."""
        queue, per_route = [start], dict[str, int]()
        while queue:
            url = queue.pop(0)
            if url in self.seen:
                continue
            self.seen.add(url)
            route = UUID.sub("<id>", urlsplit(url).path)
            per_route[route] = per_route.get(route, 0) + 1
            if per_route[route] > MAX_PAGES_PER_ROUTE:
                continue
            response = self.client.get(url)
            if response.status_code in (301, 302, 303) or response.mimetype != "text/html":
                continue
            html = self.keep(f"{label}{url}", response)
            links = _Links()
            links.feed(html)
            for href in links.hrefs:
                target = urlsplit(urljoin("http://companion.test" + url, href))
                if target.netloc != "companion.test" or target.path.endswith(NOT_PAGES):
                    continue
                if not target.path.startswith(self.area) or target.path.startswith(self.avoid):
                    continue
                found = target.path + (f"?{target.query}" if target.query else "")
                if found not in self.seen:
                    queue.append(found)


def _client(app: Flask, language: str) -> FlaskClient:
    client = app.test_client()
    client.environ_base["HTTP_USER_AGENT"] = USER_AGENT
    client.environ_base["HTTP_ACCEPT_LANGUAGE"] = language
    return client


def walk(app: Flask, language: str, now: datetime) -> dict[str, Visitor]:
    """Fill a clinic and walk all of it in `language`; returns the visitors with their pages."""
    seeded = seed(app, language, now)
    patient = walk_patient(_client(app, language), seeded)
    therapist = walk_therapist(app, _client(app, language), seeded)
    invited = [p.html for p in therapist.pages if p.name == "therapists with the invite link"]
    invite = INVITE_URL.search(invited[0])
    assert invite, "the invite link is not on the page"
    visitor = walk_visitor(_client(app, language), urlsplit(invite.group(1)).path)
    return {v.who: v for v in (patient, therapist, visitor)}


def walk_patient(client: FlaskClient, seeded: Seeded) -> Visitor:
    me = Visitor("patient", client, area=("/me/",))
    assert client.get(seeded.patient_link).status_code == 303
    me.crawl("/me/")
    me.get("check-in", "/me/check-in")
    me.submit("check-in with a missing score", "/me/check-in")
    for name, changes in (
        ("green result", {"soreness": "2"}),
        ("amber result", {"soreness": "9"}),
        ("red result", {"soreness": "1", "red_flags": "chest_pain"}),
    ):
        me.get("check-in", "/me/check-in")
        me.submit(name, "/me/check-in", changes)
    me.get("reminders", "/me/reminders")
    me.submit("reminders with a quiet-hours error", "/me/reminders/quiet-hours", {"start": ""})
    me.get("ask to delete", "/me/data/delete")
    me.submit("deletion asked", "/me/data/delete")
    me.get("unknown check-in", f"/me/check-in/{uuid.uuid4()}")
    # Again, now with check-ins (the history's chart and list) and a deletion pending.
    me.seen.clear()
    me.crawl("/me/", label="after check-ins: ")
    me.get("reminders", "/me/reminders")
    me.submit("reminders stopped", "/me/reminders/recovered")
    # Late in the episode: the guide's last stage and the check-in's day-7 question.
    assert client.get(seeded.late_link).status_code == 303
    me.seen.clear()
    me.crawl("/me/", label="day 7: ")
    return me


def walk_therapist(app: Flask, client: FlaskClient, seeded: Seeded) -> Visitor:
    # Not the patient's app (a patient link would sign this browser in as a patient), and not the
    # one-time pages that need a token of their own (the visitor walks those).
    me = Visitor("therapist", client, avoid=("/me/", "/p/", "/account/set-password", "/static/"))
    me.get("sign-in", "/sign-in")
    me.submit("review queue", "/sign-in", {"email": ADMIN, "password": PASSWORD})
    me.crawl("/")
    red = f"/visits/{seeded.red_visit}"
    # Forms whose answers are pages of their own: messages, one-time values, reports.
    me.get("patients", "/patients")
    me.submit("patients found", "/patients", {"q": "ros"})
    me.get("visit", red)
    me.submit("visit's new link", f"{red}/link")
    me.get("handout", f"{red}/handout")
    me.get("record a visit", "/visits/new")
    me.submit("record a visit with errors", "/visits/new", {"ref": "", "timezone": "Mars/Base"})
    me.get("edit a visit", f"{red}/edit")
    me.submit("edit a visit with errors", f"{red}/edit", {"timezone": "Mars/Base"})
    me.get("settings", "/settings/clinic")
    me.submit("settings with an error", "/settings/clinic", {"episode_days": "0"})
    me.get("settings", "/settings/clinic")
    me.submit(
        "opening hours with an error",
        "/settings/clinic/hours",
        {"days-2-opens": "20:00", "days-2-closes": "08:00"},
    )
    me.get("on-call", "/settings/on-call")
    me.submit("on-call with an error", "/settings/on-call", {"name": "Ben", "phone": "612"})
    me.get("on-call", "/settings/on-call")
    me.submit("test alert report", "/settings/on-call/test")
    me.get("profile", "/settings/profile")
    me.submit("profile with an error", "/settings/profile", {"emergency_number": "1"})
    me.get("API keys", "/settings/api-keys")
    me.submit("API keys with a new key", "/settings/api-keys", {"name": "Front desk"})
    app.config["MAIL_SERVER"] = None  # the invite link is shown once instead of sent
    me.get("therapists", "/settings/therapists")
    me.submit("therapists with the invite link", "/invite", {"email": "new@harbour.example"})
    me.get("therapists", "/settings/therapists")
    me.submit("therapists with a refused invite", "/invite", {"email": COLLEAGUE})
    me.get("password", "/account/password")
    me.submit(
        "password with errors",
        "/account/password",
        {"current_password": "not mine at all", "new_password": "x", "repeat_password": "y"},
    )
    me.get("two-step", "/account/two-step")
    me.submit("two-step enrolment", "/account/two-step/start")
    me.submit("two-step enrolment with a wrong code", "/account/two-step/confirm", {"code": "1"})
    me.get("not found", f"/visits/{uuid.uuid4()}")
    # A form sent without its CSRF token (an expired page, a forged request): the error page.
    me.keep("request refused", client.post("/settings/clinic", data={"episode_days": "7"}))
    return me


def walk_visitor(client: FlaskClient, invite_path: str) -> Visitor:
    me = Visitor("visitor", client)
    me.get("sign-in", "/sign-in")
    me.submit("sign-in refused", "/sign-in", {"email": ADMIN, "password": "not the password"})
    me.submit("sign-in code", "/sign-in", {"email": COLLEAGUE, "password": PASSWORD})
    me.submit("sign-in code refused", "/sign-in/code", {"code": "000000"})
    client.delete_cookie("session")
    me.get("forgot password", "/account/forgot-password")
    me.submit("forgot password with an error", "/forgot-password", {"email": "not an address"})
    me.submit("reset link sent", "/forgot-password", {"email": ADMIN})
    me.get("choose a password", invite_path)
    me.submit(
        "choose a password with a weak one",
        "/set-password",
        {"password": "password1234", "confirm": "password1234"},
    )
    client.delete_cookie("session")
    me.get("account link not valid", "/account/set-password/not-a-real-token")
    me.get("patient link not valid", "/p/not-a-real-token")
    me.get("patient page without a link", "/me/")
    me.get("not found", "/no-such-page")
    return me


def pages_of(visitors: dict[str, Visitor]) -> Iterable[Page]:
    for visitor in visitors.values():
        yield from visitor.pages


SLUG = re.compile(r"[^a-z0-9]+")


def file_name(index: int, language: str, page: Page) -> str:
    return f"{language}-{index:03d}-{page.who}-{SLUG.sub('-', page.name.lower()).strip('-')[:60]}"
