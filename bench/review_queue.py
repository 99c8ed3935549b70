"""Review queue: how fast the therapist's home page (`GET /`) renders for a busy clinic (issue 5).

Seeds one clinic with 1,000 patients (one visit each, spread over the last 7 days, so every
episode is open) and 20,000 check-ins at realistic hours after each visit: most green, some amber
(soreness above the expected course), a few red flags, and some visits with no check-in at all.
The alerts are raised by the app's own code, as in real use: every red or amber check-in goes
through `checkins.submit_checkin`, "no check-in by 24 h / 48 h" through `alerts.raise_missing`
called hour by hour over the past week, and therapists acknowledge and resolve older alerts through
`alerts.acknowledge` / `alerts.resolve`. Green check-ins, patients and visits are bulk inserts.

Then it starts gunicorn (gunicorn.conf.py, 2 workers) on 127.0.0.1, signs in as a therapist over
HTTP (CSRF token from the sign-in page), warms up and times N sequential `GET /`; gunicorn's access
log gives the server-side time of the same requests. SQL statements per render are counted in this
process with the Flask test client on the same database. A benchmark, not a test, but it exits 1
when the median is over the budget (200 ms) or the page is not the queue it should be.
Usage: .venv/bin/python bench/review_queue.py [--database-url sqlite|postgresql://...] [--requests 50]
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import io
import json
import math
import os
import pstats
import random
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import requests
from sqlalchemy import event, insert, select, text

# The shared helpers, from the repository root; appended, so the source tree measured (put first
# on sys.path by main) still decides which `companion` is imported.
sys.path.append(str(Path(__file__).resolve().parent.parent))
from bench.common import (
    Database,
    busy_share,
    cpu_ticks,
    machine_facts,
    reset_schema,
    resolve_database,
    share_text,
    source_revision,
    wait_until_quiet,
)

if TYPE_CHECKING:
    from flask import Flask

ROOT = Path(__file__).resolve().parent.parent
BIN = ROOT / ".venv" / "bin"
DEFAULT_DATABASE = "sqlite"
BUDGET_MS = 200.0  # issue 5: the review queue renders in under 200 ms on this machine
# A throwaway instance in a temp dir: neither guards anything real.
SECRET = "bench-queue"  # noqa: S105
PASSWORD = "bench queue password"  # noqa: S105
CLINIC_ZONE = "Europe/Madrid"
# Patients' zones and languages, in proportion (a clinic in Spain with some visitors).
ZONES = (("Europe/Madrid", 90), ("Atlantic/Canary", 7), ("Europe/London", 3))
LANGUAGES = (("es", 70), ("en", 30))
# fmt: off
FIRST = (
    "Ana", "Lucía", "Carmen", "Javier", "Pablo", "Marta", "Sofía", "Diego", "Elena", "Hugo",
    "Laura", "Mateo", "Paula", "Daniel", "Irene", "Álvaro", "Nerea", "Iker", "Ainhoa", "Jordi",
    "Montse", "Emma", "Oliver", "Grace", "Tom", "Aisha", "Kwame", "Mei", "Noor", "Yusuf",
)
LAST = (
    "García", "Martínez", "López", "Sánchez", "Pérez", "Gómez", "Fernández", "Ruiz", "Díaz",
    "Moreno", "Álvarez", "Romero", "Navarro", "Torres", "Domínguez", "Vázquez", "Ramos", "Gil",
    "Serrano", "Molina", "Smith", "Jones", "Taylor", "Brown", "Wilson", "Evans",
)
# fmt: on
# What happens in one episode, as shares of the patients (the rest recover as expected).
SILENT, SLOW, RED = 0.06, 0.06, 0.015
HELPED_CODES = ("movement", "heat", "stretches", "self_massage", "rest", "pain_reliever")
# Symptoms a recovering patient reports and that stay green (before these hours: triage.py).
GREEN_SYMPTOMS = (
    ("tired", 1e9),
    ("small_bruise", 1e9),
    ("headache", 24),
    ("dizzy_drowsy", 24),
    ("redness_increasing", 24),
    ("usual_pain_flare", 48),
)
# The data set is laid out as if the benchmark ran at this moment (patients check in while awake
# in their own zone), then every timestamp is moved by the same amount to the real now: the same
# seed gives the same check-ins, scores and alerts at any time of day, on either database.
LAID_OUT_AT = datetime(2026, 3, 11, 17, 0, tzinfo=ZoneInfo(CLINIC_ZONE))  # a Wednesday, 17:00
# The lead line of the page, in English: "Red flags: 1 · Look at today: 2 · On track: 3".
LEAD = re.compile(r"Red flags: (\d+) · Look at today: (\d+) · On track: (\d+)")
CSRF = re.compile(
    r'name="csrf_token" type="hidden" value="([^"]+)"|name="csrf_token" value="([^"]+)"'
)
ACCESS_FORMAT = "queue-bench %(m)s %(U)s %(s)s %(B)s %(D)s"  # %(D)s: request time in microseconds
ACCESS_LINE = re.compile(r"queue-bench GET / (\d{3}) (\d+|-) (\d+)$", re.M)
APP_FILES = ("companion", "templates", "config.py", "wsgi.py", "migrations")


class BenchFailure(Exception):
    """Not a valid measurement: the server did not answer, or the page is not the queue."""


# --- the database ---------------------------------------------------------------------------------


def make_app(database: Database) -> Flask:
    # Imported here: config.py reads INSTANCE_PATH when first imported, and main() sets it first.
    from companion import create_app

    return create_app({"SQLALCHEMY_DATABASE_URI": database.sqlalchemy_url, "SECRET_KEY": SECRET})


# --- the data set ---------------------------------------------------------------------------------


@dataclass
class PlannedCheckIn:
    hours: float  # since the visit
    soreness: int
    symptoms: list[str]
    helped: list[str]
    usual_pain: int | None
    note: str | None
    delay: float  # hours from recording on the phone to reaching the server (offline, mostly 0)
    level: str = "green"  # what care.triage says, worked out before seeding


@dataclass
class PlannedVisit:
    index: int
    age_hours: float
    profile: str  # expected | slow | red | silent
    zone: str
    checkins: list[PlannedCheckIn] = field(default_factory=list)


def _weighted(rng: random.Random, pairs: tuple[tuple[str, int], ...]) -> str:
    return rng.choices([p[0] for p in pairs], weights=[p[1] for p in pairs])[0]


def _awake_hours(rng: random.Random, performed: datetime, zone: ZoneInfo, limit: float) -> float:
    """Hours after the visit at which a patient checks in: log-uniform from 30 min to 7 days
    (most in the first day), never between 23:00 and 07:00 in the patient's own zone (on the
    LAID_OUT_AT clock)."""
    for _ in range(30):
        hours = math.exp(rng.uniform(math.log(0.5), math.log(168)))
        if hours < limit and 7 <= (performed + timedelta(hours=hours)).astimezone(zone).hour < 23:
            return hours
    return -1.0


def plan(rng: random.Random, patients: int, total: int) -> list[PlannedVisit]:
    """Who had which visit how many hours ago, and every check-in they sent, with its triage
    level. The same seed gives the same data set whenever the benchmark runs (see LAID_OUT_AT)."""
    from companion.care.triage import RED_FLAGS, RULES, EarlierScore, envelope_window, triage

    visits: list[PlannedVisit] = []
    for i in range(patients):
        # From 1 h to 167 h ago, evenly: every episode is open (7 days) for the whole run.
        age = 1 + 166 * (i + rng.random()) / patients
        visits.append(PlannedVisit(i, age, "expected", _weighted(rng, ZONES)))
    order = list(range(patients))
    rng.shuffle(order)
    n_silent, n_slow, n_red = (round(patients * share) for share in (SILENT, SLOW, RED))
    # Red flags among visits at least 6 h old, slow recoveries among those past a day.
    red = [i for i in order if visits[i].age_hours >= 6][:n_red]
    slow = [i for i in order if visits[i].age_hours >= 24 and i not in red][:n_slow]
    taken = set(red) | set(slow)
    silent = [i for i in order if i not in taken][:n_silent]
    for group, name in ((red, "red"), (slow, "slow"), (silent, "silent")):
        for i in group:
            visits[i].profile = name

    # Candidate moments for each patient who checks in; the counts are then scaled so the clinic
    # has exactly `total` check-ins, each visit in proportion to how much of its week has passed.
    pools: dict[int, list[float]] = {}
    for v in visits:
        if v.profile == "silent":
            continue
        performed = LAID_OUT_AT - timedelta(hours=v.age_hours)
        zone = ZoneInfo(v.zone)
        limit = v.age_hours - 0.1
        moments = (_awake_hours(rng, performed, zone, limit) for _ in range(60))
        pools[v.index] = [h for h in moments if h > 0]
    available = sum(len(p) for p in pools.values())
    if available < total:
        raise SystemExit(f"cannot place {total} check-ins in {available} candidate moments")
    share = total / available
    counts = {i: int(len(p) * share) for i, p in pools.items()}
    remainders = sorted(pools, key=lambda i: len(pools[i]) * share - counts[i], reverse=True)
    for i in remainders[: total - sum(counts.values())]:
        counts[i] += 1
    for i in red:  # a red flag needs at least one check-in to be reported in
        if counts.get(i, 0) == 0 and pools.get(i):
            donor = max(counts, key=lambda j: counts[j])
            counts[donor] -= 1
            counts[i] = 1

    for v in visits:
        if v.profile == "silent":
            continue
        hours = sorted(rng.sample(pools[v.index], counts[v.index]))
        peak = rng.randint(6, 8) if v.profile == "slow" else rng.randint(2, 5)
        tau = rng.uniform(90, 160) if v.profile == "slow" else rng.uniform(24, 60)
        red_at = rng.randrange(len(hours)) if v.profile == "red" and hours else -1
        for k, h in enumerate(hours):
            # A smooth course: falling, a point up now and then, never above the usual maximum
            # for a patient recovering as expected; a slow one stays high for days (amber).
            score = int(peak * math.exp(-h / tau) + rng.choice((0.0, 0.0, 0.0, 0.5)))
            usual = envelope_window(RULES, h)["usual_max"]
            score = min(10, score) if v.profile == "slow" else min(usual, score)
            symptoms: list[str] = []
            if rng.random() < 0.15:
                code, before = rng.choice(GREEN_SYMPTOMS)
                if h < before:
                    symptoms.append(code)
            if v.profile == "slow" and rng.random() < 0.08:
                symptoms.append(rng.choice(("may_stop", "numbness_tingling")))
            if k == red_at:
                symptoms.append(rng.choice(RED_FLAGS).code)
            helped = rng.sample(HELPED_CODES, rng.choice((0, 1, 1, 2)))
            v.checkins.append(
                PlannedCheckIn(
                    hours=h,
                    soreness=score,
                    symptoms=symptoms,
                    helped=helped,
                    usual_pain=rng.randint(0, 3) if h >= 144 else None,
                    note=rng.choice(("Slept badly", "Better after a walk", "Stiff"))
                    if rng.random() < 0.05
                    else None,
                    delay=rng.uniform(2, 8) if rng.random() < 0.03 else rng.uniform(0, 0.01),
                )
            )
        # The level the server will give each one (the same rules and earlier scores).
        earlier = [EarlierScore(c.hours, c.soreness) for c in v.checkins]
        for c in v.checkins:
            c.level = triage(c.soreness, c.symptoms, c.hours, earlier, RULES).level
    return visits


@dataclass
class Seeded:
    patients: int
    visits: int
    open_episodes: int
    therapists: int
    checkins: dict[str, int]  # by triage level
    silent_visits: int
    alerts: dict[str, int]  # raised, by kind and level
    alerts_open: dict[str, int]
    acknowledged_open: int
    seconds: float


def seed(app: Flask, visits: list[PlannedVisit], now: datetime, rng: random.Random) -> Seeded:
    from companion import audit
    from companion.alerts import raising as alerts
    from companion.auth import hash_password
    from companion.care.clinic_rules import rules_for
    from companion.care.triage import RULES
    from companion.checkins.store import CheckInDetails, submit_checkin
    from companion.extensions import db
    from companion.models import Alert, CheckIn, Clinic, Patient, Therapist, Visit

    started = time.perf_counter()
    clinic_id = uuid.uuid4()
    password_hash = hash_password(PASSWORD)
    therapists = [
        {
            "id": uuid.uuid4(),
            "clinic_id": clinic_id,
            "email": f"therapist{n}@bench.example.org",
            "password_hash": password_hash,
            "display_name": name,
            "active": True,
        }
        for n, name in enumerate(
            ("Lena Ortiz", "Marc Puig", "Sara Vidal", "Iñigo Sanz", "Bea Roca")
        )
    ]
    patients, visit_rows, green = [], [], []
    ids: dict[int, uuid.UUID] = {}
    regions = ("neck", "shoulder", "upper_back", "low_back", "gluteals", "calf", "forearm")
    for v in visits:
        patient_id, visit_id = uuid.uuid4(), uuid.uuid4()
        ids[v.index] = visit_id
        performed = now - timedelta(hours=v.age_hours)
        patients.append(
            {
                "id": patient_id,
                "clinic_id": clinic_id,
                "ref": f"P-{v.index + 1:05d}",
                "display_name": f"{rng.choice(FIRST)} {rng.choice(LAST)} {rng.choice(LAST)}",
                "timezone": v.zone,
                "language": _weighted(rng, LANGUAGES),
                "created_at": performed - timedelta(days=rng.randint(0, 400)),
            }
        )
        recorded = performed + timedelta(minutes=rng.uniform(1, 20))
        visit_rows.append(
            {
                "id": visit_id,
                "clinic_id": clinic_id,
                "patient_id": patient_id,
                "therapist_id": rng.choice(therapists)["id"],
                "performed_at": performed,
                "regions": rng.sample(regions, rng.randint(1, 3)),
                "stretches": [],
                "insertions": rng.randint(2, 14),
                "created_at": recorded,
                "updated_at": recorded,
            }
        )
        for c in v.checkins:
            if c.level != "green":
                continue
            at = performed + timedelta(hours=c.hours)
            details = CheckInDetails(
                uuid.uuid4(), at, c.soreness, c.usual_pain, c.symptoms, c.helped, c.note
            )
            green.append(
                {
                    "id": uuid.uuid4(),
                    "patient_id": patient_id,
                    "visit_id": visit_id,
                    "client_id": details.client_id,
                    "recorded_at": at,
                    "received_at": min(at + timedelta(hours=c.delay), now),
                    "soreness": c.soreness,
                    "usual_pain": c.usual_pain,
                    "symptoms": c.symptoms,
                    "helped": c.helped,
                    "note": c.note,
                    "triage": "green",
                    "triage_reasons": [],
                    "body_digest": details.digest(),
                }
            )
    with app.app_context():
        db.session.execute(
            insert(Clinic.__table__),
            [{"id": clinic_id, "name": "Bench clinic", "timezone": CLINIC_ZONE, "episode_days": 7}],
        )
        for model, rows in ((Therapist, therapists), (Patient, patients), (Visit, visit_rows)):
            db.session.execute(insert(model.__table__), rows)
        for start in range(0, len(green), 5000):
            db.session.execute(insert(CheckIn.__table__), green[start : start + 5000])
        db.session.commit()

        # Red and amber check-ins as they arrive: stored and triaged by the app, raising alerts.
        clinic = db.session.get(Clinic, clinic_id)
        assert clinic is not None
        if rules_for(clinic) != RULES:
            raise SystemExit("the clinic's rules differ from the defaults the plan used")
        arriving = [
            (now - timedelta(hours=v.age_hours) + timedelta(hours=c.hours), v, c)
            for v in visits
            for c in v.checkins
            if c.level != "green"
        ]
        arriving.sort(key=lambda item: item[0] + timedelta(hours=item[2].delay))
        for n, (at, v, c) in enumerate(arriving, 1):
            visit = db.session.get(Visit, ids[v.index])
            assert visit is not None
            details = CheckInDetails(
                uuid.uuid4(), at, c.soreness, c.usual_pain, c.symptoms, c.helped, c.note
            )
            stored, created = submit_checkin(
                visit, details, now=min(at + timedelta(hours=c.delay), now)
            )
            if not created or stored.triage != c.level:
                raise BenchFailure(f"the app triaged a {c.level} check-in {stored.triage}")
            if n % 200 == 0:
                db.session.commit()
        db.session.commit()

        # "No check-in by 24 h / 48 h", raised as the queue page or a worker would have raised
        # them over the past week (once an hour) and finally now.
        for hours_ago in range(168, -1, -1):
            alerts.raise_missing(clinic, now - timedelta(hours=hours_ago))
        db.session.commit()

        # The therapists: red alerts handled within hours, amber ones within a day or two; what
        # came in lately is open, some of it acknowledged.
        therapist_ids = [t["id"] for t in therapists]
        open_alerts = db.session.execute(
            select(Alert.id, Alert.visit_id, Alert.level, Alert.raised_at)
            .join(Visit, Visit.id == Alert.visit_id)
            .join(Patient, Patient.id == Visit.patient_id)
            .where(Alert.resolved_at.is_(None))
            .order_by(Alert.raised_at, Patient.ref, Alert.kind)  # ids are random: not by id
        ).all()
        # The newest red flag is being handled right now: a therapist is calling the patient.
        reds = [a for a in open_alerts if a.level == "red"]
        newest_red = max(reds, key=lambda a: a.raised_at).id if reds else None
        for alert_id, visit_id, level, raised_at in open_alerts:
            age = (now - raised_at).total_seconds() / 3600
            who = rng.choice(therapist_ids)
            soon, late = (0.2, 2.0) if level == "red" else (2.0, 30.0)
            handled = rng.uniform(soon, late)
            draw = rng.random()
            if alert_id == newest_red:  # acknowledged at once, not resolved yet
                at, action = raised_at + timedelta(hours=min(0.1, age / 2)), "alert.acknowledge"
                alerts.acknowledge(clinic_id, visit_id, [alert_id], who, at)
            elif age > handled and draw < (0.9 if level == "red" else 0.7):
                at, action = raised_at + timedelta(hours=handled), "alert.resolve"
                alerts.resolve(clinic_id, visit_id, [alert_id], who, None, at)
            elif draw < 0.9 and age > 0.3:
                at = raised_at + timedelta(hours=rng.uniform(0.2, min(age, handled)))
                action = "alert.acknowledge"
                alerts.acknowledge(clinic_id, visit_id, [alert_id], who, at)
            else:
                continue
            audit.record(
                action,
                audit.Actor(audit.THERAPIST, who, clinic_id),
                ("visit", visit_id),
                now=at,
                detail={"alerts": 1},
            )
        db.session.commit()
        facts = _facts(db, clinic_id, now, len(therapists), visits)
        if db.engine.dialect.name == "postgresql":
            # Fresh statistics, as autovacuum would have after a week of use.
            with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.execute(text("ANALYZE"))
        db.session.remove()
        db.engine.dispose()
    facts.seconds = time.perf_counter() - started
    return facts


def _facts(
    db: Any, clinic_id: uuid.UUID, now: datetime, therapists: int, visits: list[PlannedVisit]
) -> Seeded:
    from companion.models import Alert, CheckIn

    levels = Counter(db.session.scalars(select(CheckIn.triage)).all())
    raised = Counter(
        f"{kind} {level}" for kind, level in db.session.execute(select(Alert.kind, Alert.level))
    )
    still_open = db.session.execute(
        select(Alert.kind, Alert.level, Alert.acknowledged_at).where(Alert.resolved_at.is_(None))
    ).all()
    return Seeded(
        patients=len(visits),
        visits=len(visits),
        open_episodes=sum(1 for v in visits if v.age_hours < 7 * 24),
        therapists=therapists,
        checkins={level: levels[level] for level in ("green", "amber", "red")},
        silent_visits=sum(1 for v in visits if not v.checkins),
        alerts=dict(sorted(raised.items())),
        alerts_open=dict(sorted(Counter(f"{k} {lv}" for k, lv, _ in still_open).items())),
        acknowledged_open=sum(1 for *_, ack in still_open if ack is not None),
        seconds=0.0,
    )


def expected_levels(app: Flask, now: datetime) -> dict[str, int]:
    """Red / amber / on-track episodes straight from the tables, to check the page against."""
    from companion.extensions import db
    from companion.models import Alert, Clinic, Visit

    with app.app_context():
        clinic = db.session.scalars(select(Clinic)).one()
        since = now - timedelta(days=clinic.episode_days)
        open_ids = set(db.session.scalars(select(Visit.id).where(Visit.performed_at > since)))
        worst: dict[uuid.UUID, str] = {}
        for visit_id, level in db.session.execute(
            select(Alert.visit_id, Alert.level).where(Alert.resolved_at.is_(None))
        ):
            if visit_id in open_ids and worst.get(visit_id) != "red":
                worst[visit_id] = level
        db.session.remove()
    red = sum(1 for level in worst.values() if level == "red")
    amber = len(worst) - red
    return {"red": red, "amber": amber, "on_track": len(open_ids) - red - amber}


# --- over HTTP ------------------------------------------------------------------------------------


def start_server(
    source: Path, env: dict[str, str], port: int, workers: int, log: Path
) -> subprocess.Popen[bytes]:
    cmd = [str(BIN / "gunicorn"), "--config", "gunicorn.conf.py", "-b", f"127.0.0.1:{port}"]
    cmd += ["-w", str(workers), "--access-logformat", ACCESS_FORMAT, "wsgi:app"]
    with log.open("wb") as out:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(cmd, cwd=source, env=env, stdout=out, stderr=out)


def stop_server(server: subprocess.Popen[bytes]) -> None:
    """SIGTERM to our own gunicorn master (by its Popen handle): it stops its workers."""
    if server.poll() is None:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def wait_healthy(base: str, server: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and server.poll() is None:
        try:
            if requests.get(f"{base}/healthz", timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass  # not listening yet
        time.sleep(0.2)
    raise BenchFailure(f"gunicorn not healthy within 30 s:\n{log.read_text()[-3000:]}")


def csrf_from(html: str) -> str:
    found = CSRF.search(html)
    if found is None:
        raise BenchFailure("the sign-in page has no CSRF token")
    return found.group(1) or found.group(2)


def sign_in_http(base: str, email: str) -> requests.Session:
    browser = requests.Session()
    browser.headers["Accept-Language"] = "en"  # the lead line is read in English
    page = browser.get(f"{base}/sign-in", timeout=10)
    form = {"email": email, "password": PASSWORD, "csrf_token": csrf_from(page.text)}
    answer = browser.post(f"{base}/sign-in", data=form, allow_redirects=False, timeout=10)
    if answer.status_code not in (302, 303) or urlsplit(answer.headers["Location"]).path != "/":
        raise BenchFailure(f"sign-in over HTTP failed: {answer.status_code}")
    return browser


@dataclass
class Page:
    levels: dict[str, int]
    cards: int  # red and amber items drawn as cards
    rows: int  # on-track rows
    bytes: int


def read_page(answer: requests.Response) -> Page:
    if answer.status_code != 200 or "<h1>Review queue</h1>" not in answer.text:
        raise BenchFailure(f"GET / answered {answer.status_code}, not the review queue")
    lead = LEAD.search(answer.text)
    if lead is None:
        raise BenchFailure("the queue page has no lead line with its counts")
    red, amber, ok = (int(n) for n in lead.groups())
    return Page(
        {"red": red, "amber": amber, "on_track": ok},
        answer.text.count('class="card queue-item '),
        len(re.findall(r'<tr id="item-', answer.text)),
        len(answer.content),
    )


@dataclass
class HttpRun:
    client_ms: list[float]
    server_ms: list[float]
    page: Page
    load: float
    busy_before: float | None
    busy_during: float | None


def measure_http(
    base: str, email: str, warmup: int, count: int, log: Path, wait_quiet: float
) -> HttpRun:
    browser = sign_in_http(base, email)
    page = None
    for _ in range(warmup):  # both workers: templates compiled, database connections open
        page = read_page(browser.get(f"{base}/", allow_redirects=False, timeout=30))
    busy_before = wait_until_quiet(wait_quiet) if wait_quiet else None
    load, ticks = os.getloadavg()[0], cpu_ticks()
    timings = []
    for _ in range(count):
        started = time.perf_counter()
        # requests reads the whole body before it returns: the clock stops at its last byte.
        answer = browser.get(f"{base}/", allow_redirects=False, timeout=30)
        timings.append((time.perf_counter() - started) * 1000)
        page = read_page(answer)  # checked after the clock stopped
    busy = busy_share(ticks, cpu_ticks())
    time.sleep(0.5)  # gunicorn writes the access log line after the response
    lines = ACCESS_LINE.findall(log.read_text())[-count:]  # nothing asked for / since
    server = [int(us) / 1000 for status, _, us in lines if status == "200"]
    if len(server) != count:
        print(f"  (gunicorn logged {len(server)} of {count} timed requests)")
    assert page is not None
    return HttpRun(timings, server, page, load, busy_before, busy)


# --- in this process ------------------------------------------------------------------------------


@dataclass
class Statement:
    sql: str
    ms: float  # cursor.execute only: SQLite produces most rows later, while they are fetched


@dataclass
class InProcess:
    statements: list[Statement]
    render_ms: list[float]  # the whole request through the Flask test client, no HTTP
    execute_ms: list[float]  # of which in cursor.execute (PostgreSQL: the query; SQLite: part)
    stages: dict[str, list[float]]  # the view's three steps, per render
    gc_ms: list[float]  # spent in Python's cyclic garbage collector, per render
    gc_full: list[int]  # of which oldest-generation (full) collections, per render
    profile: str = ""


# The view's steps, timed by wrapping the names companion.clinic.queue calls (in this process
# only, nothing is changed on disk): module, attribute, stage name.
STAGES = (
    ("companion.alerts.raising", "raise_missing", "raise_missing"),
    ("companion.clinic.queue", "build_queue", "build_queue"),
    ("companion.clinic.queue", "render_template", "template"),
)


@contextmanager
def staged(times: dict[str, float]) -> Iterator[None]:
    import importlib

    originals = []
    for module_name, attribute, stage in STAGES:
        module = importlib.import_module(module_name)
        original = getattr(module, attribute)
        originals.append((module, attribute, original))

        def timed(*args: Any, _f: Any = original, _stage: str = stage, **kwargs: Any) -> Any:
            begun = time.perf_counter()
            try:
                return _f(*args, **kwargs)
            finally:
                times[_stage] = times.get(_stage, 0.0) + (time.perf_counter() - begun) * 1000

        setattr(module, attribute, timed)
    try:
        yield
    finally:
        for module, attribute, original in originals:
            setattr(module, attribute, original)


def measure_in_process(app: Flask, email: str, renders: int, profile_top: int) -> InProcess:
    """Statements of one render, and the render time without HTTP, on the same database."""
    from companion.extensions import db

    client = app.test_client()
    client.environ_base["HTTP_ACCEPT_LANGUAGE"] = "en"
    token = csrf_from(client.get("/sign-in").get_data(as_text=True))
    signed = client.post(
        "/sign-in", data={"email": email, "password": PASSWORD, "csrf_token": token}
    )
    if signed.status_code not in (302, 303):
        raise BenchFailure(f"sign-in in process failed: {signed.status_code}")
    client.get("/")  # warm
    with app.app_context():
        engine = db.engine
    log: list[Statement] = []
    started: list[float] = []

    def before(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        started.append(time.perf_counter())

    def after(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        ms = (time.perf_counter() - started.pop()) * 1000
        log.append(Statement(" ".join(statement.split()), ms))

    collecting: dict[str, Any] = {"ms": 0.0, "full": 0, "since": 0.0}

    def collector(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            collecting["since"] = time.perf_counter()
            return
        collecting["ms"] += (time.perf_counter() - collecting["since"]) * 1000
        collecting["full"] += info["generation"] == 2

    event.listen(engine, "before_cursor_execute", before)
    event.listen(engine, "after_cursor_execute", after)
    gc.callbacks.append(collector)
    render_ms, execute_ms, gc_ms, gc_full, first = [], [], [], [], None
    stages: dict[str, list[float]] = {stage: [] for *_, stage in STAGES}
    try:
        for _ in range(renders):
            log.clear()
            collecting.update(ms=0.0, full=0)
            times: dict[str, float] = {}
            with staged(times):
                begun = time.perf_counter()
                answer = client.get("/")
                render_ms.append((time.perf_counter() - begun) * 1000)
            if answer.status_code != 200:
                raise BenchFailure(f"GET / in process answered {answer.status_code}")
            execute_ms.append(sum(s.ms for s in log))
            gc_ms.append(collecting["ms"])
            gc_full.append(collecting["full"])
            for stage, values in stages.items():
                values.append(times.get(stage, 0.0))
            first = first or list(log)
    finally:
        gc.callbacks.remove(collector)
        event.remove(engine, "before_cursor_execute", before)
        event.remove(engine, "after_cursor_execute", after)
    result = InProcess(first or [], render_ms, execute_ms, stages, gc_ms, gc_full)
    if profile_top:
        profiler = cProfile.Profile()
        profiler.enable()
        for _ in range(5):
            client.get("/")
        profiler.disable()
        out = io.StringIO()
        stats = pstats.Stats(profiler, stream=out).strip_dirs()
        out.write("5 renders, by cumulative time:\n")
        stats.sort_stats("cumulative").print_stats(profile_top)
        out.write("5 renders, by own time:\n")
        stats.sort_stats("tottime").print_stats(profile_top)
        result.profile = out.getvalue()
    with app.app_context():
        db.session.remove()
        db.engine.dispose()
    return result


# --- reporting ------------------------------------------------------------------------------------


def percentile(values: list[float], share: float) -> float:
    """Nearest rank: the smallest value with at least `share` of the values at or below it."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


def export_commit(revision: str, into: Path) -> str:
    """`git archive` one commit into `into` (translations compiled); returns its short id.

    The working tree may hold another engineer's half-done change; a commit is what was measured.
    """
    try:
        short = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", f"{revision}^{{commit}}"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except subprocess.CalledProcessError as exc:
        raise SystemExit(f"--commit {revision}: {exc.stderr.strip()}") from None
    into.mkdir(parents=True)
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", "--format=tar", short],
        capture_output=True,
        check=True,
    )
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive.stdout, check=True)
    subprocess.run(
        [str(BIN / "pybabel"), "compile", "-d", str(into / "companion" / "translations")],
        capture_output=True,
        check=True,
    )
    return short


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--database-url",
        default=DEFAULT_DATABASE,
        help="`sqlite` (a file in a temp dir) or a loopback PostgreSQL URL whose database name "
        "contains 'bench', e.g. postgresql://postgres@127.0.0.1:5432/bench_queue (sqlite)",
    )
    parser.add_argument("--patients", type=int, default=1000, help="patients, one visit each")
    parser.add_argument("--checkins", type=int, default=20000, help="check-ins in all (20000)")
    parser.add_argument("--requests", type=int, default=50, help="timed GET / (50)")
    parser.add_argument("--warmup", type=int, default=10, help="untimed GET / first (10)")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers (2)")
    parser.add_argument("--renders", type=int, default=20, help="in-process renders timed (20)")
    parser.add_argument("--seed", type=int, default=5, help="random seed of the data set (5)")
    parser.add_argument("--budget-ms", type=float, default=BUDGET_MS, help="median budget (200)")
    parser.add_argument(
        "--profile",
        type=int,
        nargs="?",
        const=30,
        default=0,
        metavar="N",
        help="cProfile 5 in-process renders and print the top N functions (30)",
    )
    parser.add_argument("--show-sql", action="store_true", help="print every statement of a render")
    parser.add_argument(
        "--wait-quiet",
        type=float,
        default=0,
        metavar="SECONDS",
        help="before timing, wait up to this long for the machine to be under 15%% busy",
    )
    parser.add_argument("--json", type=Path, help="also write every figure here")
    where = parser.add_mutually_exclusive_group()
    where.add_argument(
        "--commit",
        metavar="REV",
        help="measure this commit (exported with `git archive` into the temp dir) instead of the "
        "working tree, e.g. HEAD while others are editing",
    )
    where.add_argument(
        "--source",
        type=Path,
        default=ROOT,
        help="run the app from this copy of the repository (default: this working tree)",
    )
    args = parser.parse_args()
    if min(args.patients, args.checkins, args.requests, args.workers, args.renders) < 1:
        parser.error("counts must be at least 1")
    return args


def main() -> int:
    args = parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-queue-") as tmpdir:
        tmp = Path(tmpdir)
        # Before config.py is first imported: nothing is written into the repository's instance/.
        os.environ["INSTANCE_PATH"] = str(tmp / "instance")
        if args.commit:
            source = tmp / "source"
            revision = f"{export_commit(args.commit, source)} (git archive of {args.commit})"
        else:
            source = args.source.resolve()
            revision = source_revision(source, APP_FILES)
        if not (source / "wsgi.py").is_file():
            raise SystemExit(f"{source} holds no wsgi.py")
        # This process seeds and counts with the app it measures (ahead of the editable install).
        sys.path.insert(0, str(source))
        database = resolve_database(args.database_url, tmp, "bench-queue.sqlite3")
        app = make_app(database)
        reset_schema(app, database)
        facts = machine_facts(app, database, revision)
        print("Review queue benchmark")
        for key, value in facts.items():
            print(f"  {key:<10} {value}")

        now = datetime.now(UTC)
        rng = random.Random(args.seed)  # noqa: S311  (a reproducible data set, not a secret)
        visits = plan(rng, args.patients, args.checkins)
        seeded = seed(app, visits, now, rng)
        del visits  # the in-process renders below must not collect the plan's garbage
        gc.collect()
        print(
            f"\nData set (seed {args.seed}, built in {seeded.seconds:.1f} s): 1 clinic, "
            f"{seeded.therapists} therapists, {seeded.patients:,} patients, {seeded.visits:,} "
            f"visits from 1 h to 167 h ago ({seeded.open_episodes:,} open episodes)"
        )
        total = sum(seeded.checkins.values())
        mix = ", ".join(f"{n:,} {level}" for level, n in seeded.checkins.items())
        print(f"  check-ins    {total:,} ({mix}); {seeded.silent_visits} visits with none")
        print(f"  alerts       raised: {', '.join(f'{n} {k}' for k, n in seeded.alerts.items())}")
        print(
            f"  still open   {', '.join(f'{n} {k}' for k, n in seeded.alerts_open.items())}"
            f" ({seeded.acknowledged_open} of them acknowledged)"
        )

        port_probe = socket.create_server(("127.0.0.1", 0))
        with port_probe:  # a free port for gunicorn, released just before it binds
            port = port_probe.getsockname()[1]
        base = f"http://127.0.0.1:{port}"
        env = os.environ | {
            "DATABASE_URL": database.env_url,
            "SECRET_KEY": SECRET,
            "INSTANCE_PATH": str(tmp / "instance"),
        }
        log = tmp / "gunicorn.log"
        email = "therapist0@bench.example.org"
        server = start_server(source, env, port, args.workers, log)
        try:
            wait_healthy(base, server, log)
            http = measure_http(base, email, args.warmup, args.requests, log, args.wait_quiet)
        except BenchFailure as exc:
            print(f"\nFAIL: not a valid measurement: {exc}", file=sys.stderr)
            return 1
        finally:
            stop_server(server)
        expected = expected_levels(app, datetime.now(UTC))
        try:
            inproc = measure_in_process(app, email, args.renders, args.profile)
        except BenchFailure as exc:
            print(f"\nFAIL: not a valid measurement: {exc}", file=sys.stderr)
            return 1

    page = http.page
    median = statistics.median(http.client_ms)
    kinds = Counter(s.sql.split(" ", 1)[0] for s in inproc.statements)
    print(
        f"\nPage: red {page.levels['red']} · amber {page.levels['amber']} · on track "
        f"{page.levels['on_track']} ({page.cards} cards, {page.rows} table rows)"
    )
    print(
        f"\nGET / over HTTP: gunicorn, {args.workers} workers, {args.requests} sequential requests "
        f"after {args.warmup} warm-up; load {http.load:.2f}, machine busy "
        f"{share_text(http.busy_before)} just before and {share_text(http.busy_during)} during the timing"
    )
    rows = {
        "median_ms": median,
        "p95_ms": percentile(http.client_ms, 0.95),
        "max_ms": max(http.client_ms),
        "min_ms": min(http.client_ms),
        "server_median_ms": statistics.median(http.server_ms) if http.server_ms else float("nan"),
        "server_p95_ms": percentile(http.server_ms, 0.95) if http.server_ms else float("nan"),
    }
    for name, value in rows.items():
        print(f"  {name:<24} {value:8.1f}")
    print(
        f"  {'page_bytes':<24} {page.bytes:8,}  ({page.bytes / 1024:.1f} KB of HTML, uncompressed)"
    )
    print(f"\nIn this process (Flask test client, same database, {args.renders} renders)")
    print(
        f"  {'queries_per_render':<24} {len(inproc.statements):8}  "
        f"({', '.join(f'{n} {k}' for k, n in kinds.most_common())})"
    )
    render_median = statistics.median(inproc.render_ms)
    print(f"  {'render_median_ms':<24} {render_median:8.1f}  (the whole request, no HTTP)")
    staged_total = 0.0
    for stage, values in inproc.stages.items():
        staged_total += statistics.median(values)
        print(f"  {stage + '_median_ms':<24} {statistics.median(values):8.1f}")
    print(f"  {'rest_ms':<24} {render_median - staged_total:8.1f}  (sign-in check, audit, commit)")
    print(
        f"  {'execute_median_ms':<24} {statistics.median(inproc.execute_ms):8.1f}  "
        "(in cursor.execute; SQLite makes most rows later, while they are fetched)"
    )
    full = sum(inproc.gc_full)
    slow_gc = [ms for ms, n in zip(inproc.gc_ms, inproc.gc_full, strict=True) if n]
    print(
        f"  {'gc_median_ms':<24} {statistics.median(inproc.gc_ms):8.1f}  (cyclic garbage "
        f"collector; {full} full collection{'' if full == 1 else 's'} in {len(inproc.gc_ms)} renders"
        + (f", {statistics.median(slow_gc):.1f} ms each" if slow_gc else "")
        + ")"
    )
    slowest = sorted(inproc.statements, key=lambda s: s.ms, reverse=True)
    for s in inproc.statements if args.show_sql else slowest[:5]:
        print(f"    {s.ms:7.2f} ms  {s.sql[:120]}")
    if inproc.profile:
        print("\n" + inproc.profile)

    from companion.clinic.queue import ON_TRACK_SHOWN

    checks = {
        f"median {median:.1f} ms <= {args.budget_ms:.0f} ms": median <= args.budget_ms,
        "page shows red, amber and on-track items": min(page.levels.values()) > 0,
        f"page counts match the tables {expected}": page.levels == expected,
        # Every red and amber card; on-track rows up to the page's limit (the rest are counted).
        "every item drawn": page.cards == page.levels["red"] + page.levels["amber"]
        and page.rows == min(page.levels["on_track"], ON_TRACK_SHOWN),
    }
    print()
    for what, ok in checks.items():
        print(f"  {'ok  ' if ok else 'FAIL'} {what}")
    if args.json:
        figures = {
            "machine": facts,
            "database": database.kind,
            "data": asdict(seeded),
            "http": asdict(http) | rows,
            "in_process": asdict(inproc) | {"queries": len(inproc.statements)},
            "checks": checks,
        }
        args.json.write_text(json.dumps(figures, indent=2, default=str))
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
