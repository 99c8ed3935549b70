"""Reminder dispatch: how many due reminders real worker processes deliver per second.

Seeds N due reminders (one patient, visit, live link and browser subscription each), starts the
local push service from tests/pushserver.py with a simulated answer time, runs K `flask --app wsgi
reminders dispatch` processes at once against one database, and times them from start until all
have exited. Every message is sent with real RFC 8291 encryption and a real VAPID signature; the
receiver checks VAPID on every message and decrypts a sample. A benchmark, not a test, but it exits 1
when a delivery is missing, doubled or invalid, or when a target (issue 4) is missed.
Usage: .venv/bin/python bench/dispatch.py [--workers 1,3] [--reminders 3000,10000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
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
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from cryptography.exceptions import InvalidTag
from sqlalchemy import func, insert, select, text

ROOT = Path(__file__).resolve().parent.parent
# `tests` is no installed package: the local push service is imported from the repository root.
sys.path.insert(0, str(ROOT))
from bench import common  # noqa: E402
from bench.common import (  # noqa: E402
    QUIET,
    Database,
    busy_share,
    cpu_ticks,
    reset_schema,
    resolve_database,
    share_text,
    source_revision,
    wait_until_quiet,
)
from tests import pushserver  # noqa: E402
from tests.pushserver import PushService, decrypt_aes128gcm  # noqa: E402

# The stdlib HTTP server listens with a backlog of 5. A worker opens PUSH_CONCURRENCY connections at
# once at the start of every batch (its sending threads are new for each batch); past five, the
# kernel drops SYNs (a 1 s retransmit) and resets some connections ("push service unreachable"),
# so the receiver, not the worker, would set the pace. A real push service listens with far more.
pushserver._Server.request_queue_size = 1024

if TYPE_CHECKING:
    from http.server import BaseHTTPRequestHandler

    from flask import Flask

ZONE = "Europe/Madrid"  # the patients' and the clinic's time zone
DEFAULT_DATABASE = "postgresql://postgres@127.0.0.1:5432/bench_dispatch"
# Issue 4: at least 200 reminders/s for one worker on 2 cores; 10,000 due reminders drained in
# under a minute by three workers, i.e. at least 10,000 / 60 reminders/s. Judged only on runs at
# least as large as the measured setup (workers: (reminders/s, reminders)): with a few hundred
# reminders the workers' start-up of about a second is most of the time.
TARGETS = {1: (200.0, 3_000), 3: (10_000 / 60, 10_000)}
# The worker settings the run may override; they are printed with the figures either way.
SETTINGS = ("REMINDER_BATCH_SIZE", "PUSH_CONCURRENCY", "REMINDER_LEASE_SECONDS")
# --wait-quiet waits for the machine to be less busy than this (all cores, over one second).
# What "the app" is for `--source`'s revision line: changes elsewhere do not move the figures.
APP_FILES = ("companion", "config.py", "wsgi.py", "migrations")


class BenchFailure(Exception):
    """The run is not a valid measurement (a reminder lost, sent twice, or a message invalid)."""


@dataclass
class Sample:
    """One message the receiver decrypted in full, and what was wrong with it (None: nothing)."""

    subscription_id: str
    error: str | None


@dataclass
class SampledPushService(PushService):
    """The local push service, checking VAPID on every message but decrypting only a sample.

    Decrypting every body costs the receiver an ECDH and three HKDFs per message, on the same two
    cores the workers need for their own encryption; a sample proves the encryption just as well.
    `decrypt=True` on the parent still decrypts everything (`--decrypt-all`).
    """

    sample_every: int = 50
    # Patient names by subscription id: a decrypted payload must not carry them.
    names: dict[str, str] = field(default_factory=dict)
    samples: list[Sample] = field(default_factory=list)
    arrivals: list[float] = field(default_factory=list)  # time.perf_counter() per message

    def _handle(self, handler: BaseHTTPRequestHandler, sub_id: str, body: bytes) -> None:
        with self._lock:
            self.arrivals.append(time.perf_counter())
            sampled = len(self.arrivals) % self.sample_every == 1 or self.sample_every == 1
        if sampled:
            sample = Sample(sub_id, self._check(sub_id, handler.headers.get("Topic"), body))
            with self._lock:
                self.samples.append(sample)
        super()._handle(handler, sub_id, body)  # VAPID, scripted status, latency, the record

    def _check(self, sub_id: str, topic: str | None, body: bytes) -> str | None:
        sub = self.subscriptions.get(sub_id)
        if sub is None:
            return "unknown subscription"
        try:
            payload = json.loads(decrypt_aes128gcm(body, sub.private_key, sub.auth))
        except InvalidTag:  # wrong key, wrong derivation or a corrupted body
            return "undecryptable: the AES-GCM tag does not match"
        except ValueError as exc:  # not one aes128gcm record, padding, or not JSON
            return f"undecryptable: {exc}"
        if set(payload) != {"title", "body", "url", "tag"}:
            return f"unexpected payload keys {sorted(payload)}"
        if payload["tag"] != topic:
            return "notification tag differs from the Topic header"
        if self.names.get(sub_id, "\0") in json.dumps(payload, ensure_ascii=False):
            return "the payload carries the patient's name"
        return None


@dataclass
class Run:
    workers: int
    reminders: int
    seconds: float  # from starting the first worker until the last one exited
    window: float  # from the first message to arrive until the last one
    seed_seconds: float
    load: float  # 1-minute load average before the workers started: other work skews a run
    sent_by_worker: list[int]
    samples_checked: int
    worker_cpu: float = 0.0  # CPU seconds of all worker processes together
    receiver_cpu: float = 0.0  # CPU seconds of this process: the local push service
    machine_busy: float | None = None  # share of all cores busy during the run (PostgreSQL too)
    busy_before: float | None = None  # share busy just before it, with --wait-quiet
    probe_ms: float = 0.0  # the pure-Python probe just before the run: how fast the cores were

    @property
    def rate(self) -> float:
        return self.reminders / self.seconds


def make_app(database: Database, vapid_pem: str) -> Flask:
    # Imported here: config.py reads INSTANCE_PATH when first imported, and main() sets it first
    # so the benchmark never writes keys or databases into the repository's instance/.
    import config
    from companion import create_app

    return create_app(
        {
            "SQLALCHEMY_DATABASE_URI": database.sqlalchemy_url,
            # Both halves: the receiver checks every token against the app's public key.
            "VAPID_PRIVATE_KEY": vapid_pem,
            "VAPID_PUBLIC_KEY": config.vapid_public_key(vapid_pem),
            "SECRET_KEY": "bench-dispatch",
            "PUSH_ENDPOINT_ALLOWLIST": ("127.0.0.1",),
        }
    )


def seed(app: Flask, service: SampledPushService, count: int, now: datetime) -> set[str]:
    """`count` reminders due a minute ago, each for its own patient with one subscribed browser.

    Bulk Core inserts, not the visit form: planning is not what is measured. Every reminder is one
    the worker must really send: a live patient link, a device, not yet expired, and the kinds in
    turn (the conditional 72 h one included: with no check-in it is still needed). Returns the
    reminder ids as the hex the Topic header carries.
    """
    from companion.extensions import db
    from companion.models import Clinic, Patient, PatientLink, PushSubscription, Reminder, Visit
    from companion.reminders.planning import KINDS

    clinic_id = uuid.uuid4()
    # The patients' own quiet hours, an hour long and half a day away: whenever the benchmark
    # runs, no reminder is deferred (the worker still reads and checks them).
    local = now.astimezone(ZoneInfo(ZONE))
    quiet_start = (local + timedelta(hours=12)).time().replace(second=0, microsecond=0)
    quiet_end = (local + timedelta(hours=13)).time().replace(second=0, microsecond=0)
    patients, visits, links, reminders, subscriptions = [], [], [], [], []
    for i in range(count):
        patient_id, visit_id, reminder_id = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
        name = f"Bench Patient {i:05d}"
        browser = service.new_subscription()
        service.names[browser.id] = name
        keys = browser.as_json()["keys"]
        patients.append(
            {
                "id": patient_id,
                "clinic_id": clinic_id,
                "ref": f"B{i:05d}",
                "display_name": name,
                "timezone": ZONE,
                "language": ("en", "es")[i % 2],  # both catalogues, as a real clinic would
                "quiet_start": quiet_start,
                "quiet_end": quiet_end,
            }
        )
        visits.append(
            {
                "id": visit_id,
                "clinic_id": clinic_id,
                "patient_id": patient_id,
                "performed_at": now - timedelta(hours=2),
                "regions": [],
                "stretches": [],
            }
        )
        links.append(
            {
                "id": uuid.uuid4(),
                "visit_id": visit_id,
                "token_hash": hashlib.sha256(os.urandom(32)).hexdigest(),
                "expires_at": now + timedelta(days=7),
            }
        )
        reminders.append(
            {
                "id": reminder_id,
                "visit_id": visit_id,
                "kind": KINDS[i % len(KINDS)],
                "due_at": now - timedelta(minutes=1),
                "expires_at": now + timedelta(hours=1),
                "status": "planned",
                "attempts": 0,
            }
        )
        subscriptions.append(
            {
                "id": uuid.uuid4(),
                "patient_id": patient_id,
                "endpoint": browser.endpoint,
                "p256dh": keys["p256dh"],
                "auth": keys["auth"],
            }
        )
    with app.app_context():
        db.session.execute(
            insert(Clinic.__table__), [{"id": clinic_id, "name": "Bench clinic", "timezone": ZONE}]
        )
        for model, rows in (
            (Patient, patients),
            (Visit, visits),
            (PatientLink, links),
            (Reminder, reminders),
            (PushSubscription, subscriptions),
        ):
            db.session.execute(insert(model.__table__), rows)
        db.session.commit()
        if db.engine.dialect.name == "postgresql":
            # Fresh statistics, as autovacuum would have by the time a real batch is due.
            with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.execute(text("ANALYZE"))
        db.session.remove()
    return {r["id"].hex for r in reminders}


def worker_env(
    database: Database, vapid_pem: str, tmp: Path, overrides: dict[str, str]
) -> dict[str, str]:
    """The environment of one worker, as tests/test_reminder_workers.py starts them."""
    return {
        **os.environ,
        "DATABASE_URL": database.env_url,
        "VAPID_PRIVATE_KEY": vapid_pem,
        "SECRET_KEY": "bench-dispatch",
        "PUSH_ENDPOINT_ALLOWLIST": "127.0.0.1",  # the local push service (http on loopback)
        "INSTANCE_PATH": str(tmp / "worker-instance"),
        **overrides,
    }


def sent_count(stdout: str) -> int:
    """`flask reminders dispatch` prints e.g. "sent: 1000" (or "failed: 2, sent: 998")."""
    for part in stdout.strip().split(", "):
        name, _, n = part.partition(": ")
        if name == "sent":
            return int(n)
    return 0


def verify(
    app: Flask, service: SampledPushService, expected: set[str], outputs: list[tuple[str, str]]
) -> None:
    """Every reminder delivered exactly once, every message valid, every row finished as sent."""
    from companion.extensions import db
    from companion.models import Delivery, Reminder

    count = len(expected)
    invalid = [m for m in service.received if m.error is not None or m.status != 201]
    if invalid:
        first = invalid[0]
        raise BenchFailure(
            f"{len(invalid)} messages refused by the push service, first: {first.status} "
            f"{first.error}"
        )
    topics = Counter(m.headers.get("topic") for m in service.received)
    doubled = sum(1 for n in topics.values() if n > 1)
    if len(service.received) != count or set(topics) != expected or doubled:
        raise BenchFailure(
            f"{len(service.received)} messages for {count} reminders: {len(set(topics))} distinct "
            f"topics, {doubled} sent more than once, {len(expected - set(topics))} never sent; "
            f"the workers said {[out.strip() for out, _ in outputs]}; "
            f"unsent because: {unsent_reasons(app)}"
        )
    bad = [s for s in service.samples if s.error is not None]
    if bad or len(service.samples) < count // service.sample_every:
        raise BenchFailure(
            f"{len(bad)} of {len(service.samples)} decrypted samples invalid: "
            f"{bad[0].error if bad else 'too few samples'}"
        )
    with app.app_context():
        statuses = dict(
            db.session.execute(
                select(Reminder.status, func.count()).group_by(Reminder.status)
            ).all()
        )
        deliveries = db.session.execute(
            select(func.count(), func.count(func.distinct(Delivery.reminder_id)))
        ).one()
        db.session.remove()
    if statuses != {"sent": count} or tuple(deliveries) != (count, count):
        raise BenchFailure(
            f"database after the run: statuses {statuses}, deliveries {tuple(deliveries)}"
        )
    if sum(sent_count(out) for out, _ in outputs) != count:
        raise BenchFailure(f"the workers report {[sent_count(o) for o, _ in outputs]} sent")


def unsent_reasons(app: Flask) -> dict[str, int]:
    """Why reminders are not "sent" (status and last error): the first clue when a run fails."""
    from companion.extensions import db
    from companion.models import Reminder

    with app.app_context():
        rows = db.session.execute(
            select(Reminder.status, Reminder.last_error, func.count())
            .where(Reminder.status != "sent")
            .group_by(Reminder.status, Reminder.last_error)
        ).all()
        db.session.remove()
    return {f"{status}: {why}": n for status, why, n in rows}


@contextmanager
def push_service(
    latency: float, sample_every: int, decrypt_all: bool, app_public_key: str
) -> Iterator[SampledPushService]:
    service = SampledPushService(
        app_public_key=app_public_key,
        latency=latency,
        decrypt=decrypt_all,
        sample_every=sample_every,
    )
    service.start()
    try:
        yield service
    finally:
        service.stop()


def python_probe() -> float:
    """Milliseconds for a fixed piece of pure Python, best of five, right before a run.

    The workers are Python-bound, and a shared or virtual machine runs Python at different speeds
    from one hour to the next (neighbours on the host, other work here): a run whose probe is slow
    is slow for that reason, not for the code under test.
    """
    best = float("inf")
    for _ in range(5):
        started = time.perf_counter()
        sum(range(200_000))
        best = min(best, time.perf_counter() - started)
    return best * 1000


def attach_py_spy(profile: Path, pid: int) -> subprocess.Popen[bytes]:
    """Sample one running worker until it exits, into a collapsed-stacks file.

    py-spy samples every thread (cProfile would see only the main one, not the senders), and
    without `--idle` it counts only samples on the CPU: where the worker's core goes.
    Attached by pid rather than as the worker's parent: as a parent it fails on exit (ECHILD).
    """
    profile.mkdir(parents=True, exist_ok=True)
    out = profile / f"worker-{pid}.txt"
    spy = ["py-spy", "record", "--pid", str(pid), "--nonblocking", "--rate", "200"]
    return subprocess.Popen(
        [*spy, "--format", "raw", "--output", str(out)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _cpu(usage: resource.struct_rusage) -> float:
    return usage.ru_utime + usage.ru_stime


def run_once(
    app: Flask,
    database: Database,
    args: argparse.Namespace,
    workers: int,
    count: int,
    env: dict[str, str],
) -> Run:
    reset_schema(app, database)
    with push_service(
        args.latency, args.sample_every, args.decrypt_all, app.config["VAPID_PUBLIC_KEY"]
    ) as service:
        started = time.perf_counter()
        expected = seed(app, service, count, datetime.now(UTC))
        seeded = time.perf_counter() - started
        quiet = wait_until_quiet(args.wait_quiet) if args.wait_quiet else None
        load, probe = os.getloadavg()[0], python_probe()
        # CPU spent by the workers (children), by this process (the push service) and by the
        # whole machine (PostgreSQL too): says whether a run waited on the network or on cores.
        children, me, ticks = (
            resource.getrusage(resource.RUSAGE_CHILDREN),
            resource.getrusage(resource.RUSAGE_SELF),
            cpu_ticks(),
        )
        command = [sys.executable, "-m", "flask", "--app", "wsgi", "reminders", "dispatch"]
        start = time.perf_counter()
        procs = [
            subprocess.Popen(
                command,
                cwd=args.source,  # `flask --app wsgi` loads the app of the working directory
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(workers)
        ]
        spies = [attach_py_spy(args.py_spy, p.pid) for p in procs] if args.py_spy else []
        try:
            # communicate() one after the other is fine: each reads its own pipes to the end,
            # and a worker that finishes early just waits, exited, to be reaped.
            outputs = [p.communicate(timeout=args.timeout) for p in procs]
        finally:
            for p in procs:
                if p.poll() is None:  # only our own children, by their Popen handle
                    p.kill()
                    p.wait()
        seconds = time.perf_counter() - start
        children_after = resource.getrusage(resource.RUSAGE_CHILDREN)
        me_after = resource.getrusage(resource.RUSAGE_SELF)
        busy = busy_share(ticks, cpu_ticks())
        for spy in spies:  # each ends by itself once its worker is gone, after writing its file
            spy.wait(timeout=60)
        failed = [(p.returncode, err) for p, (_, err) in zip(procs, outputs, strict=True)]
        failed = [(rc, err) for rc, err in failed if rc != 0]
        if failed:
            raise BenchFailure(f"a worker exited with {failed[0][0]}:\n{failed[0][1][-2000:]}")
        arrivals = service.arrivals
        window = max(arrivals) - min(arrivals) if arrivals else 0.0
        verify(app, service, expected, outputs)
        return Run(
            workers,
            count,
            seconds,
            window,
            seeded,
            load,
            [sent_count(out) for out, _ in outputs],
            len(service.samples),
            worker_cpu=_cpu(children_after) - _cpu(children),
            receiver_cpu=_cpu(me_after) - _cpu(me),
            machine_busy=busy,
            busy_before=quiet,
            probe_ms=probe,
        )


def machine_facts(app: Flask, database: Database, source: Path) -> dict[str, Any]:
    return {
        **common.machine_facts(app, database, source_revision(source, APP_FILES)),
        "pywebpush": metadata.version("pywebpush"),
        "cryptography": metadata.version("cryptography"),
    }


def noisy(run: Run) -> str:
    """A note on a row whose run started while other work kept the machine busy (--wait-quiet)."""
    if run.busy_before is None or run.busy_before < QUIET:
        return ""
    return f"  (the machine was {run.busy_before:.0%} busy before it: not quiet)"


def parse_counts(value: str) -> list[int]:
    return [int(v) for v in value.split(",") if v.strip()]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=parse_counts, default=[1, 3], help="e.g. 1,3 (1,3)")
    parser.add_argument(
        "--reminders",
        type=parse_counts,
        default=[3000, 10000],
        help="due reminders per run: one number, or one per --workers entry (3000,10000)",
    )
    parser.add_argument("--repeat", type=int, default=3, help="runs per worker count (3)")
    parser.add_argument(
        "--latency", type=float, default=0.05, help="push service answer time, s (0.05)"
    )
    parser.add_argument(
        "--database-url",
        default=DEFAULT_DATABASE,
        help=f"a loopback PostgreSQL URL, or `sqlite` for one worker ({DEFAULT_DATABASE})",
    )
    parser.add_argument("--batch-size", type=int, help="REMINDER_BATCH_SIZE of the workers")
    parser.add_argument("--concurrency", type=int, help="PUSH_CONCURRENCY of the workers")
    parser.add_argument(
        "--sample-every", type=int, default=50, help="the receiver decrypts every n-th message"
    )
    parser.add_argument(
        "--decrypt-all", action="store_true", help="the receiver decrypts every message"
    )
    parser.add_argument(
        "--wait-quiet",
        type=float,
        default=0,
        metavar="SECONDS",
        help="before each run, wait up to this long for the machine to be under 15%% busy",
    )
    parser.add_argument("--timeout", type=float, default=600, help="seconds a run may take")
    parser.add_argument("--json", type=Path, help="also write every figure here")
    parser.add_argument(
        "--source",
        type=Path,
        default=ROOT,
        help="run the app from this copy of the repository (a commit exported with `git "
        "archive`, or a change to try) instead of this working tree",
    )
    parser.add_argument(
        "--py-spy",
        type=Path,
        metavar="DIR",
        help="profile each worker with `py-spy record` (on PATH), collapsed stacks into DIR; "
        "the figures of such a run are not comparable",
    )
    args = parser.parse_args()
    args.source = args.source.resolve()
    if len(args.reminders) == 1:
        args.reminders = args.reminders * len(args.workers)
    if len(args.reminders) != len(args.workers):
        parser.error("--reminders takes one count, or one per --workers entry")
    if min(args.reminders + args.workers) < 1 or args.repeat < 1 or args.sample_every < 1:
        parser.error("counts must be at least 1")
    if not (args.source / "wsgi.py").is_file():
        parser.error(f"--source {args.source} holds no wsgi.py")
    return args


def main() -> int:
    args = parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-dispatch-") as tmpdir:
        tmp = Path(tmpdir)
        # Before config.py is first imported (it reads INSTANCE_PATH then): the benchmark never
        # writes keys or databases into the repository's instance/.
        os.environ["INSTANCE_PATH"] = str(tmp / "instance")
        # This process migrates and seeds with the same code the workers run.
        sys.path.insert(0, str(args.source))
        import config

        database = resolve_database(args.database_url, tmp)
        if database.kind == "sqlite" and max(args.workers) > 1:
            raise SystemExit("SQLite has one writer at a time: use it with --workers 1 only")
        vapid_pem = config.new_vapid_private_pem()
        overrides = {
            name: str(value)
            for name, value in (
                ("REMINDER_BATCH_SIZE", args.batch_size),
                ("PUSH_CONCURRENCY", args.concurrency),
            )
            if value is not None
        }
        env = worker_env(database, vapid_pem, tmp, overrides)
        app = make_app(database, vapid_pem)
        reset_schema(app, database)
        facts = machine_facts(app, database, args.source)
        settings = {name: overrides.get(name, app.config[name]) for name in SETTINGS}
        print("Reminder dispatch benchmark")
        for key, value in facts.items():
            print(f"  {key:<12} {value}")
        print(
            f"  settings     {', '.join(f'{k}={v}' for k, v in settings.items())}, "
            f"push service latency {args.latency * 1000:.0f} ms, decrypting "
            f"{'every message' if args.decrypt_all else f'1 in {args.sample_every}'}"
        )
        print(
            f"\n{'workers':>7} {'reminders':>9} {'seconds':>8} {'reminders/s':>11} "
            f"{'send window':>11} {'load':>5} {'probe':>7} {'busy':>5} {'worker CPU':>10} "
            f"{'receiver CPU':>12}  sent by each worker"
        )
        runs: list[Run] = []
        try:
            for workers, count in zip(args.workers, args.reminders, strict=True):
                for _ in range(args.repeat):
                    run = run_once(app, database, args, workers, count, env)
                    runs.append(run)
                    print(
                        f"{run.workers:>7} {run.reminders:>9,} {run.seconds:>8.2f} "
                        f"{run.rate:>11.1f} {run.window:>10.2f}s {run.load:>5.2f} "
                        f"{run.probe_ms:>5.1f}ms {share_text(run.machine_busy):>5} "
                        f"{run.worker_cpu:>9.1f}s "
                        f"{run.receiver_cpu:>11.1f}s  {run.sent_by_worker}{noisy(run)}",
                        flush=True,
                    )
        except BenchFailure as exc:
            print(f"\nFAIL: not a valid measurement: {exc}", file=sys.stderr)
            return 1
        finally:
            with app.app_context():
                from companion.extensions import db

                db.engine.dispose()

    print("\nMedian per worker count")
    print(f"{'workers':>7} {'reminders':>9} {'seconds':>8} {'reminders/s':>11}  target")
    verdicts: dict[str, bool] = {}
    summary = []
    for workers, count in zip(args.workers, args.reminders, strict=True):
        mine = [r for r in runs if r.workers == workers and r.reminders == count]
        seconds = statistics.median(r.seconds for r in mine)
        rate = count / seconds
        goal = TARGETS.get(workers)
        verdict = ""
        if goal is not None and count < goal[1]:
            verdict = f"not judged below {goal[1]:,} reminders"
        elif goal is not None:
            target = goal[0]
            ok = rate >= target
            verdicts[f"{workers} worker(s): at least {target:.0f} reminders/s"] = ok
            verdict = f"{'met' if ok else 'MISSED'} (>= {target:.0f}/s"
            verdict += f", 10,000 in {10_000 / target:.0f} s)" if workers == 3 else ")"
        print(f"{workers:>7} {count:>9,} {seconds:>8.2f} {rate:>11.1f}  {verdict}")
        summary.append({"workers": workers, "reminders": count, "seconds": seconds, "rate": rate})
    if args.json:
        figures = {
            "machine": facts,
            "settings": settings,
            "latency": args.latency,
            "runs": [asdict(r) | {"rate": r.rate} for r in runs],
            "median": summary,
            "targets": verdicts,
        }
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    return 0 if all(verdicts.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
