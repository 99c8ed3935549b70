"""The route x role matrix (issue 14): every route of the app, found in its URL map, is tried by
everyone who must not get through, with the ids of real records of clinic A and with unknown ids.

Attackers: nobody (anonymous), an admin of clinic B, clinic B's API key, a patient of clinic B (a
patient cookie of another visit), and, on the pages and actions behind @admin_only, a therapist of
clinic A who is not an admin. Each refusal is a 401, 403 or 404 (or, for a browser page asked
without a session, the redirect to the sign-in page), the same for a real id as for an unknown one,
word for word, so the answer never tells whether a record exists. Nothing is written by a refused
request: not a row, not an audit event.

A route an attacker may legitimately use for their own clinic or their own episode (the queue for
B's admin, /me/ for B's patient) is tried too: the answer must hold nothing of clinic A, and no row
of clinic A may change.

A route added later fails `test_every_route_is_classified` until it is put in a class below.
"""

from __future__ import annotations

import re
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from companion.accounts import tokens as account_tokens
from companion.alerts.devices import save_device
from companion.clinic import admin_only
from companion.extensions import db
from companion.models import (
    Alert,
    ApiKey,
    CheckIn,
    DeletionRequest,
    PatientLink,
    Role,
    Therapist,
    TherapistDevice,
    TokenPurpose,
)
from companion.reminders.calendar import feed_token
from companion.visits.patient_data import request_deletion

from .conftest import PASSWORD, csrf_from, sign_in

# --- the classes ---------------------------------------------------------------------------------

# Open to everyone, on purpose; each with the reason.
PUBLIC: dict[str, str] = {
    "static": "CSS, scripts and icons: the same for everyone",
    "healthz": "the load balancer's probe; says only whether the app and database answer",
    "auth.sign_in": "the sign-in page and form",
    "auth.sign_in_code": "the second step of sign-in; it works only for the half-signed-in session",
    "auth.forgot_password": "asks for a reset link; answers alike for known and unknown e-mails",
    "auth.reset_link_sent": "the 'check your e-mail' page after asking for a reset link",
    "auth.set_password": "sets a password for the account link opened in this session only",
    "pwa.manifest": "the patient web app's manifest",
    "pwa.therapist_manifest": "the therapists' web app's manifest",
    "pwa.service_worker": "the service worker script",
    "logo.show": "the clinic's logo, shown on patient pages and handouts; not patient data",
    "api.openapi_document": "the API's description",
    "api.pgic_questionnaire": "the PGIC questionnaire: the same for every clinic, no patient data",
    "api.push_public_key": "the VAPID public key the browser needs to subscribe",
    "patient.offline": "the offline page the service worker caches; holds no patient data",
}

# Opened by a capability in the URL (or, for renew_device, in the body) itself: the token is the
# credential. Tried with unknown tokens and with real tokens of the wrong kind, by everyone.
CAPABILITY: dict[str, str] = {
    "auth.redeem": "the patient link /p/<token>",
    "auth.open_account_link": "an invite or password-reset link",
    "calendar.feed": "the patient's calendar feed",
    "notifications.renew_device": "a therapist device renews its push subscription with its token",
}

# A patient of the episode behind the patient cookie.
PATIENT = {
    "patient.ask_deletion",
    "patient.checkin",
    "patient.clinic_quiet_hours",
    "patient.data",
    "patient.download_data",
    "patient.history",
    "patient.home",
    "patient.language",
    "patient.quiet_hours",
    "patient.recovered",
    "patient.reminders",
    "patient.result",
    "patient.resume",
    "patient.stretch_tick",
    "api.create_checkin",
    "api.list_checkins",
    "api.create_push_subscription",
    "api.delete_push_subscription",
}

# A clinic's API key (visit_fhir also takes a signed-in therapist's session: KEY_OR_SESSION).
CLINIC_KEY = {
    "api.create_visit",
    "api.update_visit_api",
    "api.checkins_csv_api",
    "api.list_alerts",
    "api.visit_fhir",
}
KEY_OR_SESSION = {"api.visit_fhir"}

# Everything else a signed-in therapist of the clinic: the blueprints whose every route needs one.
THERAPIST_BLUEPRINTS = ("clinic.", "review.", "notifications.")
THERAPIST_EXTRA = {"auth.sign_out"}

ROLES = ("anonymous", "therapist_b", "key_b", "patient_b", "plain_therapist_a")


def classify(endpoint: str) -> str | None:
    if endpoint in PUBLIC:
        return "public"
    if endpoint in CAPABILITY:
        return "capability"
    if endpoint in PATIENT:
        return "patient"
    if endpoint in CLINIC_KEY:
        return "key"
    if endpoint.startswith(THERAPIST_BLUEPRINTS) or endpoint in THERAPIST_EXTRA:
        return "therapist"
    return None


def routes(app: Flask) -> list[tuple[str, str, str]]:
    """(endpoint, method, rule) for every method of every rule but HEAD and OPTIONS."""
    found = []
    for rule in app.url_map.iter_rules():
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            found.append((rule.endpoint, method, rule.rule))
    return sorted(found)


def admin_endpoints(app: Flask) -> set[str]:
    """Endpoints behind @admin_only, found through the views' wrappers (as tests/e2e does)."""
    guard = admin_only(lambda: None).__code__
    found = set()
    for endpoint, view in app.view_functions.items():
        while view is not None and getattr(view, "__code__", None) is not guard:
            view = getattr(view, "__wrapped__", None)
        if view is not None:
            found.add(endpoint)
    return found


# --- the world: clinic A with one of everything, clinic B the attacker ----------------------------

A_NAME = "Quintessa Ravenscroft"
A_REF = "A-REF-77310"
A_EMAIL = "ada@clinic-a.example"
A_PLAIN_EMAIL = "theo@clinic-a.example"
A_NOTE = "a note only clinic A may read"
# A push subscription's keys (a real P-256 point and a 16-byte secret, base64url).
P256DH = "BNcRdreALRFXTkOOUHK1EtK2wtaz5Ry4YfYCA_0QTpQtUbVlUls0VJXg7A8u-Ts1XbjhazAkj7I99e8QcYP7DkM"
AUTH_SECRET = "tBHItJI5svbpez7KI4CCXg"


@dataclass
class World:
    app: Flask
    ids: dict[str, list[str]] = field(default_factory=dict)  # URL parameter -> real ids of A
    tokens: dict[str, str] = field(default_factory=dict)  # endpoint -> A's real token for it
    clients: dict[str, FlaskClient] = field(default_factory=dict)
    csrf: dict[str, str] = field(default_factory=dict)
    key_b: str = ""
    key_b_id: str = ""
    a_ids: set[str] = field(default_factory=set)  # every id of a row of clinic A


def snapshot() -> dict[str, Counter[tuple[Any, ...]]]:
    """Every row of every table, as strings (a Counter per table, so order does not matter)."""
    db.session.expire_all()
    tables: dict[str, Counter[tuple[Any, ...]]] = {}
    for table in db.metadata.sorted_tables:
        rows = db.session.execute(select(table)).all()
        tables[table.name] = Counter(tuple(str(value) for value in row) for row in rows)
    db.session.rollback()
    return tables


def changes(
    before: dict[str, Counter[tuple[Any, ...]]], after: dict[str, Counter[tuple[Any, ...]]]
) -> dict[str, list[tuple[Any, ...]]]:
    found = {}
    for name in before:
        gone = before[name] - after[name]
        new = after[name] - before[name]
        if gone or new:
            found[name] = [*gone, *new]
    return found


def rows_of_clinic(clinic_id: str) -> set[str]:
    """The ids of every row that belongs to clinic A, directly or through a parent row."""
    ids = {clinic_id}
    tables = snapshot()
    grown = True
    while grown:
        grown = False
        for rows in tables.values():
            for row in rows:
                if row[0] not in ids and any(value in ids for value in row[1:]):
                    ids.add(row[0])
                    grown = True
    return ids


def session_csrf(client: FlaskClient, page: str) -> str:
    return csrf_from(client.get(page).get_data(as_text=True))


@pytest.fixture
def world(app, client, make_clinic, make_therapist, make_visit, make_api_key, now) -> World:
    clinic_a = make_clinic(name="Clinic A")
    admin_a = make_therapist(clinic_a, A_EMAIL, role=Role.ADMIN)
    plain_a = make_therapist(clinic_a, A_PLAIN_EMAIL, role=Role.THERAPIST)
    visit_a = make_visit(clinic_a, ref=A_REF, name=A_NAME, now=now)
    make_api_key(clinic_a)

    # A's patient checks in with a red flag (an alert) and asks for the data to be deleted.
    patient_a = app.test_client()
    assert patient_a.get(visit_a.url).status_code == 303
    checkin_id = str(uuid.uuid4())
    answer = patient_a.post(
        "/api/v1/checkins",
        json={
            "id": checkin_id,
            "recorded_at": now.isoformat(),
            "soreness": 7,
            "usual_pain": 3,
            "symptoms": ["breathless"],
            "helped": [],
            "note": A_NOTE,
        },
    )
    assert answer.status_code == 201, answer.get_data(as_text=True)
    request_deletion(visit_a.visit.patient, now)
    save_device(
        admin_a,
        "https://fcm.googleapis.com/fcm/send/clinic-a-device",
        P256DH,
        AUTH_SECRET,
        user_agent="Mozilla/5.0 (X11; Linux x86_64) Chrome/120.0",
        language="en",
        now=now,
    )
    invited = Therapist(
        clinic_id=clinic_a.id, email="new@clinic-a.example", password_hash="", role=Role.THERAPIST
    )
    db.session.add(invited)
    db.session.flush()
    invite = account_tokens.issue(invited, TokenPurpose.INVITE, now)
    db.session.commit()

    link_a = db.session.scalar(select(PatientLink).where(PatientLink.visit_id == visit_a.visit.id))
    world = World(app)
    world.ids = {
        "visit_id": [str(visit_a.visit.id)],
        "patient_id": [str(visit_a.visit.patient_id)],
        "therapist_id": [str(admin_a.id), str(plain_a.id), str(invited.id)],
        "key_id": [
            str(k.id)
            for k in db.session.scalars(select(ApiKey).where(ApiKey.clinic_id == clinic_a.id))
        ],
        "request_id": [str(r.id) for r in db.session.scalars(select(DeletionRequest))],
        "device_id": [str(d.id) for d in db.session.scalars(select(TherapistDevice))],
        "client_id": [checkin_id],
        "clinic_id": [str(clinic_a.id)],
        "alert_id": [str(a.id) for a in db.session.scalars(select(Alert))],
    }
    assert all(world.ids.values()), world.ids
    world.tokens = {
        "auth.redeem": visit_a.token,
        "calendar.feed": feed_token(link_a),
        "auth.open_account_link": invite.token,
    }

    db.session.rollback()  # end the read: SQLite's writers take the lock up front

    # Clinic B: its admin, its API key, and one of its patients.
    clinic_b = make_clinic(name="Clinic B")
    admin_b = make_therapist(clinic_b, "eve@clinic-b.example", role=Role.ADMIN)
    world.key_b = make_api_key(clinic_b)
    world.key_b_id = str(
        db.session.scalar(select(ApiKey.id).where(ApiKey.clinic_id == clinic_b.id))
    )
    visit_b = make_visit(clinic_b, name="Bob Other", regions=["forearm"], now=now)
    url_b = visit_b.url
    # Stretches chosen for A's patient and not for B's: B ticking one must find nothing.
    world.ids["code"] = [c for c in visit_a.visit.stretches if c not in visit_b.visit.stretches]
    assert world.ids["code"], "A's and B's patients have different stretches"
    emails = {"therapist_b": admin_b.email, "plain_therapist_a": A_PLAIN_EMAIL}
    db.session.rollback()

    anonymous = app.test_client()
    world.clients["anonymous"] = anonymous
    world.csrf["anonymous"] = session_csrf(anonymous, "/sign-in")
    key_b = app.test_client()
    world.clients["key_b"] = key_b
    world.csrf["key_b"] = session_csrf(key_b, "/sign-in")
    patient_b = app.test_client()
    assert patient_b.get(url_b).status_code == 303
    world.clients["patient_b"] = patient_b
    world.csrf["patient_b"] = session_csrf(patient_b, "/me/check-in")
    for role, email in emails.items():
        signed_in = app.test_client()
        assert sign_in(signed_in, email, PASSWORD).status_code == 302
        world.clients[role] = signed_in
        world.csrf[role] = session_csrf(signed_in, "/visits/new")

    world.a_ids = rows_of_clinic(str(clinic_a.id))
    assert {str(visit_a.visit.id), world.ids["alert_id"][0]} <= world.a_ids
    db.session.rollback()
    return world


# --- the requests -------------------------------------------------------------------------------

_PARAM = re.compile(r"<(?:(\w+):)?(\w+)>")
_VOLATILE = re.compile(r'(name="csrf_token"[^>]*value=|value="[^"]*"\s+name="csrf_token")"?[^"]*"?')


def fill(rule: str, value: str) -> str:
    return _PARAM.sub(lambda _m: value, rule)


def params(rule: str) -> list[str]:
    return [m.group(2) for m in _PARAM.finditer(rule)]


# Bodies that pass validation, so that a request reaches the lookup and the clinic check: an
# empty body would be refused earlier (422), which would prove nothing about access.
VALID_BODIES: dict[str, dict[str, Any]] = {
    "api.update_visit_api": {
        "patient": {
            "ref": "B-1",
            "display_name": "Bob Other",
            "timezone": "Europe/Madrid",
            "language": "en",
        },
        "performed_at": "2026-11-25T09:00:00+00:00",
        "regions": ["calf"],
    },
    "notifications.renew_device": {
        "token": "x" * 43,
        "subscription": {
            "endpoint": "https://fcm.googleapis.com/fcm/send/clinic-a-device",
            "keys": {"p256dh": P256DH, "auth": AUTH_SECRET},
        },
    },
}

# Where each attacker's session reads a fresh CSRF token (its own, as any visitor can get one).
CSRF_PAGES = {"patient_b": "/me/check-in", "therapist_b": "/visits/new"}


def send(
    world: World, role: str, method: str, path: str, *, json_body: bool, endpoint: str = ""
) -> Any:
    client = world.clients[role]
    headers = {"X-CSRFToken": world.csrf[role]}
    if role == "key_b":
        headers["Authorization"] = f"Bearer {world.key_b}"
    if json_body:
        body = VALID_BODIES.get(endpoint, {})
        return client.open(path, method=method, json=body, headers=headers)
    data = None
    if method != "GET":
        data = {"csrf_token": world.csrf[role], **valid_form(world, endpoint)}
    return client.open(path, method=method, data=data, headers=headers)


def valid_form(world: World, endpoint: str) -> dict[str, str]:
    """Form fields that pass validation, so that the request reaches the access check."""
    if endpoint in ("review.acknowledge", "review.resolve"):
        return {"alerts": world.ids["alert_id"][0]}
    if endpoint == "review.change_role":
        return {"role": "admin"}
    if endpoint == "patient.stretch_tick":
        return {"done": "1"}
    return {}


def renew_csrf(world: World, role: str) -> None:
    """A refused write may end the attacker's session (sign-out clears it, and its CSRF token with
    it): take a fresh token, so the next request is refused for access, not for a stale token."""
    page = CSRF_PAGES.get(role, "/sign-in")
    world.csrf[role] = session_csrf(world.clients[role], page)


def normalised(answer: Any, value: str) -> tuple[int, str, str]:
    body = answer.get_data(as_text=True).replace(value, "<id>")
    body = _VOLATILE.sub("<csrf>", body)
    location = answer.headers.get("Location", "").replace(value, "<id>")
    return answer.status_code, location, body


def refused(answer: Any) -> bool:
    if answer.status_code in (401, 403, 404):
        return True
    # A browser page asked without a session is sent to sign in, as a person would be.
    location = answer.headers.get("Location", "")
    return answer.status_code == 302 and location.split("?")[0].endswith("/sign-in")


def holds_nothing_of_a(answer: Any, world: World, path: str = "") -> list[str]:
    body = answer.get_data(as_text=True)
    # The sign-in redirect repeats the address the attacker asked for (next=...): their own input,
    # the same for a real id as for an unknown one, not something the server told them.
    if path:
        body = body.replace(quote(path, safe=""), "").replace(path, "")
    markers = [A_NAME, A_REF, A_EMAIL, A_PLAIN_EMAIL, A_NOTE, *world.tokens.values()]
    # Stretch codes name the shared library (any visit form lists them), not A's data.
    markers += [value for name, values in world.ids.items() if name != "code" for value in values]
    return [marker for marker in markers if marker in body]


def own_bookkeeping_left_out(
    found: dict[str, list[tuple[Any, ...]]], world: World
) -> dict[str, list[tuple[Any, ...]]]:
    """The changes, less the attacker key's own last-use time (the API notes when a key is used,
    whatever the answer): a row of clinic B's, not a write the request achieved."""
    kept = {}
    for name, rows in found.items():
        if name == "api_key":
            rows = [row for row in rows if row[0] != world.key_b_id]
        if rows:
            kept[name] = rows
    return kept


def touches_a(found: dict[str, list[tuple[Any, ...]]], world: World) -> dict[str, Any]:
    return {
        name: rows
        for name, rows in found.items()
        if any(value in world.a_ids for row in rows for value in row)
    }


# The attackers each kind of route must refuse; the others are this route's legitimate users for
# their own clinic or episode (tried too, see `own`).
REFUSED_BY = {
    "therapist": {"anonymous", "key_b", "patient_b"},
    "patient": {"anonymous", "therapist_b", "key_b"},
    "key": {"anonymous", "therapist_b", "patient_b"},
    "capability": {"anonymous", "therapist_b", "key_b", "patient_b"},
}


def roles_for(kind: str, endpoint: str, admin: set[str]) -> list[str]:
    roles = ["anonymous", "therapist_b", "key_b", "patient_b"]
    if endpoint in admin:
        roles.append("plain_therapist_a")
    return roles


def must_refuse(kind: str, endpoint: str, role: str, has_ids: bool, admin: set[str]) -> bool:
    if role == "plain_therapist_a":
        return True  # only ever tried on admin routes
    if kind == "key" and endpoint in KEY_OR_SESSION and role == "therapist_b":
        return has_ids
    if role in REFUSED_BY[kind]:
        return True
    # The route's own kind of user, of another clinic or episode: refused only when the URL
    # names a record of clinic A.
    return has_ids


# --- the tests ----------------------------------------------------------------------------------


def test_every_route_is_classified(app):
    unclassified = [
        (endpoint, method, rule)
        for endpoint, method, rule in routes(app)
        if classify(endpoint) is None
    ]
    assert unclassified == [], (
        "classify these routes in tests/test_route_matrix.py (PUBLIC with a reason, "
        f"CAPABILITY, PATIENT, CLINIC_KEY, or a therapist blueprint): {unclassified}"
    )
    stale = [
        name
        for name in (*PUBLIC, *CAPABILITY, *PATIENT, *CLINIC_KEY)
        if name not in app.view_functions
    ]
    assert stale == [], f"these endpoints are gone: {stale}"
    # The guard is found: the admin routes are the ones tests/test_roles.py names, and more.
    assert {"review.clinic_settings", "clinic.audit_page", "review.invite"} <= admin_endpoints(app)


def test_every_route_refuses_every_outsider_alike_for_real_and_unknown_ids(world):
    app = world.app
    admin = admin_endpoints(app)
    tried = 0
    combos = 0
    failures: list[str] = []
    later: list[tuple[str, str, str, str]] = []  # self-scoped writes, sent last

    for endpoint, method, rule in routes(app):
        kind = classify(endpoint)
        if kind == "public":
            continue
        names = params(rule)
        has_ids = bool(names) and kind != "capability"
        json_body = (
            endpoint.startswith("api.")
            or method == "DELETE"
            or (endpoint.startswith("notifications.") and endpoint != "notifications.remove_device")
        )
        for role in roles_for(kind, endpoint, admin):
            combos += 1
            refuse = must_refuse(kind, endpoint, role, has_ids, admin)
            if not refuse:
                later.append((endpoint, method, rule, role))
                continue
            if kind == "capability":
                # A's real tokens of the other kinds, and unknown ones.
                wrong = [t for e, t in world.tokens.items() if e != endpoint]
                values = [*wrong, "x" * 43, uuid.uuid4().hex]
                if not names:  # renew_device: the token travels in the body
                    values = [""]
            elif names:
                (name,) = names
                values = [*world.ids[name], str(uuid.uuid4())]
            else:
                values = [""]
            seen: set[tuple[int, str, str]] = set()
            for value in values:
                path = fill(rule, value)
                before = snapshot()
                answer = send(world, role, method, path, json_body=json_body, endpoint=endpoint)
                tried += 1
                where = f"{role} {method} {path} ({endpoint})"
                if not refused(answer):
                    failures.append(f"{where}: not refused ({answer.status_code})")
                leaked = holds_nothing_of_a(answer, world, path)
                if leaked:
                    failures.append(f"{where}: answer holds {leaked}")
                written = own_bookkeeping_left_out(changes(before, snapshot()), world)
                if written:
                    failures.append(f"{where}: a refused request wrote {written}")
                seen.add(normalised(answer, value))
                if method != "GET":
                    renew_csrf(world, role)
            if len(seen) > 1 and kind != "capability":
                failures.append(
                    f"{role} {method} {rule}: real and unknown ids are told apart: "
                    f"{sorted((s, loc) for s, loc, _b in seen)}"
                )
            if kind == "capability" and len({(s, loc) for s, loc, _b in seen}) > 1:
                failures.append(f"{role} {method} {rule}: wrong tokens are told apart")

    # The route's own kind of user, from another clinic or episode, on routes that name no record:
    # they act on their own clinic or episode. Nothing of A may show or change.
    for endpoint, method, rule, role in later:
        if endpoint == "auth.sign_out":
            continue  # tried by the refused roles above; B signing itself out proves nothing here
        json_body = (
            endpoint.startswith("api.")
            or method == "DELETE"
            or (endpoint.startswith("notifications.") and endpoint != "notifications.remove_device")
        )
        before = snapshot()
        answer = send(world, role, method, rule, json_body=json_body, endpoint=endpoint)
        tried += 1
        where = f"{role} {method} {rule} ({endpoint}, own clinic or episode)"
        assert answer.status_code < 500, where
        leaked = holds_nothing_of_a(answer, world)
        if leaked:
            failures.append(f"{where}: answer holds {leaked}")
        touched = touches_a(changes(before, snapshot()), world)
        if touched:
            failures.append(f"{where}: changed rows of clinic A: {touched}")

    assert failures == [], "\n".join(failures)
    # The size of the matrix: every (route, method) tried by each attacker it must refuse.
    print(f"route matrix: {combos} route x role pairs, {tried} requests")
    assert combos > 300 and tried > combos


def test_the_worlds_records_are_really_there(world):
    """The matrix means something only if the real ids open their pages for clinic A's admin."""
    admin = world.app.test_client()
    assert sign_in(admin, A_EMAIL, PASSWORD).status_code == 302
    (visit_id,) = world.ids["visit_id"]
    (patient_id,) = world.ids["patient_id"]
    assert A_NAME in admin.get(f"/visits/{visit_id}").get_data(as_text=True)
    assert A_NAME in admin.get(f"/patients/{patient_id}").get_data(as_text=True)
    assert db.session.scalar(select(CheckIn.note)) == A_NOTE
    db.session.rollback()
    assert world.app.test_client().get(f"/p/{world.tokens['auth.redeem']}").status_code == 303
    feed = f"/calendar/{world.tokens['calendar.feed']}.ics"
    assert world.app.test_client().get(feed).status_code == 200
