"""Tools for the fault tests (docs/RELIABILITY.md): the real server (gunicorn with the repository's
gunicorn.conf.py and wsgi:app) in its own process group on a free 127.0.0.1 port, and patients who
send check-ins over real HTTP the way the patient app's outbox does: the same id again after a
connection error or a 5xx, until the server acknowledges it."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import requests
from flask import Flask
from sqlalchemy import func, select

from companion.extensions import db
from companion.models import CheckIn
from tests.libfaketime import module_command

ROOT = Path(__file__).resolve().parent.parent


def spawn(command: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """Start `command` in the checkout with its output appended to `log`, in a process group of
    its own (os.killpg then reaches it and every child it starts)."""
    with log.open("ab") as out:
        return subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(condition: Callable[[], Any], timeout: float, what: str) -> Any:
    """Poll `condition` until it returns something true, or fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)


def children(pid: int) -> set[int]:
    """The live processes whose parent is `pid` (from /proc; gunicorn's workers are the master's
    children)."""
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # The command name is in parentheses and may hold spaces: fields follow its last ")".
        fields = stat[stat.rindex(")") + 2 :].split()
        if int(fields[1]) == pid and fields[0] != "Z":
            found.add(int(entry.name))
    return found


class Server:
    """`gunicorn -c gunicorn.conf.py wsgi:app` on the test's database, in a process group of its
    own so that the whole server (master and workers) can be killed at once."""

    def __init__(self, app: Flask, tmp_path: Path, workers: int = 3, port: int | None = None):
        self.port = port or free_port()
        self.workers = workers
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {
            **os.environ,
            "DATABASE_URL": app.config["SQLALCHEMY_DATABASE_URI"],
            "SECRET_KEY": app.config["SECRET_KEY"],
            "VAPID_PRIVATE_KEY": app.config["VAPID_PRIVATE_KEY"],
            "INSTANCE_PATH": str(tmp_path / "server-instance"),
            "BIND": f"127.0.0.1:{self.port}",
            "WEB_CONCURRENCY": str(workers),
            # The burst comes from one address; the per-address limits are not under test here.
            "RATELIMIT_ENABLED": "false",
        }
        self.log = tmp_path / f"gunicorn-{self.port}.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> Server:
        command = module_command("gunicorn", "-c", "gunicorn.conf.py", "wsgi:app")
        self.process = spawn(command, self.env, self.log)
        wait_until(self.ready, 60, f"gunicorn on port {self.port} to answer /healthz")
        wait_until(lambda: len(self.worker_pids()) == self.workers, 60, f"{self.workers} workers")
        return self

    def ready(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(f"gunicorn exited:\n{self.log.read_text()[-3000:]}")
        try:
            return requests.get(f"{self.url}/healthz", timeout=2).status_code == 200
        except requests.RequestException:
            return False

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def worker_pids(self) -> set[int]:
        return children(self.pid)

    def kill_everything(self) -> None:
        """SIGKILL the master and every worker at once (a power cut, the OOM killer's worst)."""
        os.killpg(self.pid, signal.SIGKILL)
        assert self.process is not None
        self.process.wait(timeout=10)
        wait_until(lambda: not _group_alive(self.pid), 10, "the server's processes to die")

    def stop(self) -> None:
        """Stop what this object started, by its process group; always safe to call."""
        if self.process is None:
            return
        if _group_alive(self.pid):
            try:
                os.killpg(self.pid, signal.SIGTERM)
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                pass
            if _group_alive(self.pid):
                os.killpg(self.pid, signal.SIGKILL)
        if self.process.poll() is None:
            self.process.wait(timeout=10)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


@dataclass
class Patient:
    visit_id: uuid.UUID
    cookie: str
    # Check-in id -> (soreness, recorded_at) as sent: what the patient expects the clinic to see.
    sent: dict[uuid.UUID, tuple[int, str]] = field(default_factory=dict)

    def body(self, checkin_id: uuid.UUID) -> dict[str, Any]:
        soreness, recorded_at = self.sent[checkin_id]
        return {
            "id": str(checkin_id),
            "visit_id": str(self.visit_id),
            "recorded_at": recorded_at,
            "soreness": soreness,
        }

    def send(self, server_url: str, checkin_id: uuid.UUID) -> requests.Response:
        return requests.post(
            f"{server_url}/api/v1/checkins",
            json=self.body(checkin_id),
            cookies={"companion_patient": self.cookie},
            timeout=10,
        )


def open_link(server_url: str, token: str, visit_id: uuid.UUID) -> Patient:
    """Redeem a patient link over HTTP, as the phone does: its cookie is the patient's key."""
    answer = requests.get(f"{server_url}/p/{token}", allow_redirects=False, timeout=10)
    assert answer.status_code == 303, answer.status_code
    return Patient(visit_id, answer.cookies["companion_patient"])


@dataclass
class Burst:
    """Patients sending check-ins from several threads; every check-in is retried with its own id
    until it is acknowledged (2xx) or `give_up_after` seconds have passed."""

    url: str
    patients: list[Patient]
    per_patient: int
    threads: int = 6
    give_up_after: float = 45.0
    acknowledged: dict[uuid.UUID, int] = field(default_factory=dict)  # id -> status (200/201)
    retried: set[uuid.UUID] = field(default_factory=set)
    failures: list[str] = field(default_factory=list)  # answers neither 2xx nor retryable
    connection_errors: int = 0
    server_errors: int = 0
    statuses: Counter[int] = field(default_factory=Counter)  # every answer's status, retries too
    unavailable: set[uuid.UUID] = field(default_factory=set)  # ids answered 503 at least once
    no_retry_after: int = 0  # 503 answers without a Retry-After header (there should be none)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _threads: list[threading.Thread] = field(default_factory=list)

    def start(self, recorded_at: datetime) -> Burst:
        jobs = [
            (patient, uuid.uuid4(), i % 4, recorded_at + timedelta(seconds=i))
            for i in range(self.per_patient)
            for patient in self.patients
        ]
        for n in range(self.threads):
            thread = threading.Thread(target=self._run, args=(jobs[n :: self.threads],))
            thread.start()
            self._threads.append(thread)
        return self

    def join(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        assert not any(t.is_alive() for t in self._threads), "the clients did not finish"

    @property
    def total(self) -> int:
        return len(self.patients) * self.per_patient

    def acknowledged_count(self) -> int:
        with self._lock:
            return len(self.acknowledged)

    def _run(self, jobs: list[tuple[Patient, uuid.UUID, int, datetime]]) -> None:
        for patient, checkin_id, soreness, recorded_at in jobs:
            with self._lock:
                patient.sent[checkin_id] = (soreness, recorded_at.isoformat())
            self._send(patient, checkin_id)

    def _send(self, patient: Patient, checkin_id: uuid.UUID) -> None:
        deadline = time.monotonic() + self.give_up_after
        attempt = 0
        while time.monotonic() < deadline:
            if attempt:
                with self._lock:
                    self.retried.add(checkin_id)
                # The outbox's back-off, shortened: a pause between tries, not synchronisation.
                time.sleep(min(0.05 * 2**attempt, 0.5))
            attempt += 1
            try:
                answer = patient.send(self.url, checkin_id)
            except requests.RequestException:
                with self._lock:
                    self.connection_errors += 1
                continue
            with self._lock:
                self.statuses[answer.status_code] += 1
            if answer.status_code >= 500:
                with self._lock:
                    self.server_errors += 1
                    if answer.status_code == 503:
                        self.unavailable.add(checkin_id)
                        if not answer.headers.get("Retry-After", "").isdigit():
                            self.no_retry_after += 1
                continue
            with self._lock:
                if answer.status_code in (200, 201):
                    assert answer.json()["id"] == str(checkin_id)
                    self.acknowledged[checkin_id] = answer.status_code
                else:
                    self.failures.append(f"{answer.status_code} {answer.text[:200]}")
            return
        with self._lock:
            self.failures.append(f"{checkin_id}: no answer within {self.give_up_after} s")


def assert_stored_exactly_once(burst: Burst) -> None:
    """Every acknowledged check-in is in the database once, with what the patient sent; nothing
    is stored that was not sent; no id is stored twice."""
    db.session.rollback()  # a fresh snapshot: the server wrote these rows
    visit_ids = [p.visit_id for p in burst.patients]
    rows = db.session.execute(
        select(CheckIn.client_id, CheckIn.visit_id, CheckIn.soreness).where(
            CheckIn.visit_id.in_(visit_ids)
        )
    ).all()
    counts = db.session.execute(
        select(CheckIn.client_id, func.count())
        .where(CheckIn.visit_id.in_(visit_ids))
        .group_by(CheckIn.client_id)
        .having(func.count() > 1)
    ).all()
    assert counts == [], f"stored more than once: {counts}"
    stored = {client_id: (visit_id, soreness) for client_id, visit_id, soreness in rows}
    sent = {
        checkin_id: (patient.visit_id, soreness)
        for patient in burst.patients
        for checkin_id, (soreness, _) in patient.sent.items()
    }
    lost = {i for i in burst.acknowledged if stored.get(i) != sent[i]}
    assert not lost, f"{len(lost)} acknowledged check-ins missing or altered"
    assert set(stored) <= set(sent), "rows stored that no patient sent"
    assert len(rows) == len(stored)


class ReminderWorker:
    """`flask --app wsgi reminders run` (supervisord.conf's worker) on the test's database, reading the
    real clock, in a process group of its own; its output goes to a log file."""

    def __init__(self, app: Flask, tmp_path: Path, **env: str):
        self.env = {
            **os.environ,
            "DATABASE_URL": app.config["SQLALCHEMY_DATABASE_URI"],
            "SECRET_KEY": app.config["SECRET_KEY"],
            "VAPID_PRIVATE_KEY": app.config["VAPID_PRIVATE_KEY"],
            "INSTANCE_PATH": str(tmp_path / "worker-instance"),
            # The local push service (tests/pushserver.py) listens on 127.0.0.1.
            "PUSH_ENDPOINT_ALLOWLIST": "127.0.0.1",
            "REMINDER_TICK_SECONDS": "1",
            **env,
        }
        self.log = tmp_path / f"worker-{uuid.uuid4().hex[:6]}.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, *command: str) -> ReminderWorker:
        """`reminders run` unless another `flask reminders` command is given."""
        arguments = command or ("run",)
        self.process = spawn(
            module_command("flask", "--app", "wsgi", "reminders", *arguments), self.env, self.log
        )
        return self

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def wait(self, timeout: float) -> int:
        assert self.process is not None
        return self.process.wait(timeout=timeout)

    def output(self) -> str:
        return self.log.read_text()

    def stop(self) -> None:
        """Stop what this object started, by its process group; always safe to call."""
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(self.pid, signal.SIGKILL)
            self.process.wait(timeout=10)
