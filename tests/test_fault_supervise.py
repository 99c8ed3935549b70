"""One crash no longer stops everything (issue 14, finding 4): the supervision `make run` uses
(supervisord with the repository's supervisord.conf, the web server and the reminder worker as
real processes on 127.0.0.1 and a temporary SQLite database) restarts whichever of them is
SIGKILLed, and the other one runs on untouched.

- The reminder worker killed: /healthz answers throughout, the web server keeps its pid, a new
  worker appears and sends a reminder that fell due after the kill to the local push service.
- The web server's master killed: its workers go with it, a new master listens and answers
  /healthz, and the reminder worker keeps its pid and goes on sending.
- SIGINT, as Ctrl-C gives it: supervisord stops both and exits 0, leaving no process behind.

No sleeps: every wait polls a condition with a deadline (tests/faults.py `wait_until`)."""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from datetime import time as wall_time
from datetime import timedelta
from pathlib import Path

import requests
from flask import Flask
from sqlalchemy import delete, select

from companion.extensions import db
from companion.models import Reminder, Visit
from companion.reminders.planning import AFTER_2H, AFTER_48H, EVENING
from companion.reminders.subscriptions import save_subscription
from companion.timeutil import utcnow
from tests.faults import ROOT, children, free_port, spawn, wait_until
from tests.libfaketime import module_command, python_command
from tests.pushserver import PushService

CONFIG = ROOT / "supervisord.conf"
WEB_WORKERS = 2
# Generous: two cores, shared with the rest of the suite in CI.
START = 90.0


class Supervisor:
    """`supervisord --configuration supervisord.conf`, as `make run` starts it, on the test's
    database and a free port; in a process group of its own (each program gets its own too)."""

    def __init__(self, app: Flask, tmp_path: Path):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = tmp_path / "supervisord.log"
        self.env = {
            **{k: v for k, v in os.environ.items() if k not in ("BIND", "PUBLIC_URL")},
            # What `make run` sets, with the interpreter through tests.libfaketime under
            # `make test-clock` (gunicorn's sleeps fail there otherwise).
            "COMPANION_PYTHON": shlex.join(python_command()),
            "PORT": str(self.port),
            "DATABASE_URL": app.config["SQLALCHEMY_DATABASE_URI"],
            "SECRET_KEY": app.config["SECRET_KEY"],
            "VAPID_PRIVATE_KEY": app.config["VAPID_PRIVATE_KEY"],
            "INSTANCE_PATH": str(tmp_path / "supervised-instance"),
            "WEB_CONCURRENCY": str(WEB_WORKERS),
            "REMINDER_TICK_SECONDS": "1",
            # An idle gunicorn worker wakes every WEB_TIMEOUT/2 s; long, so that one left behind
            # by a dead master would be seen (the test waits 30 s at most for them to go).
            "WEB_TIMEOUT": "600",
            "PUSH_ENDPOINT_ALLOWLIST": "127.0.0.1",
            "RATELIMIT_ENABLED": "false",  # /healthz is polled many times a second
        }
        self.process: subprocess.Popen[bytes] | None = None
        self.seen: set[int] = set()  # every program pid seen: each leads its own process group
        self.pidfile = tmp_path / "supervisord.pid"

    def start(self) -> Supervisor:
        # Opened for appending: supervisord reopens /dev/stdout for the programs' output.
        command = module_command(
            "supervisor.supervisord",
            "--configuration",
            str(CONFIG),
            "--pidfile",
            str(self.pidfile),  # not the checkout's instance/, which `make run` uses
        )
        self.process = spawn(command, self.env, self.log)
        return self

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def program(self, name: str) -> int | None:
        """The pid of supervisord's child running `name` ("web": gunicorn's master, or
        "reminders"), if exactly one is alive."""
        self._check_alive()
        marker = {"web": "gunicorn", "reminders": "reminders"}[name]
        found = [pid for pid in children(self.pid) if marker in _cmdline(pid)]
        self.seen.update(found)
        return found[0] if len(found) == 1 else None

    def healthy(self) -> bool:
        self._check_alive()
        try:
            return requests.get(f"{self.url}/healthz", timeout=5).status_code == 200
        except requests.RequestException:
            return False

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    def _check_alive(self) -> None:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(f"supervisord exited:\n{self.log_text()[-4000:]}")

    def stop(self) -> None:
        """Stop what this object started, by pid and process group; always safe to call."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        for pgid in self.seen | {self.pid}:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pgid, signal.SIGKILL)


@dataclass
class HealthWatch:
    """/healthz asked again and again from a thread, every answer kept, until stopped (at most
    `limit` seconds)."""

    url: str
    limit: float = 180.0
    answers: int = 0
    failures: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> HealthWatch:
        self._thread = threading.Thread(target=self._run)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        assert self._thread is not None
        self._thread.join(30)

    def _run(self) -> None:
        deadline = time.monotonic() + self.limit
        while not self._stop.is_set() and time.monotonic() < deadline:
            try:
                status = requests.get(f"{self.url}/healthz", timeout=10).status_code
                if status == 200:
                    self.answers += 1
                else:
                    self.failures.append(str(status))
            except requests.RequestException as exc:
                self.failures.append(type(exc).__name__)
            self._stop.wait(0.05)  # the pace of the questions, not synchronisation


def _cmdline(pid: int) -> str:
    try:
        return (Path("/proc") / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def _alive(pid: int) -> bool:
    try:
        stat = (Path("/proc") / str(pid) / "stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] != "Z"


def _due_now(visit: Visit, kind: str) -> Reminder:
    """A reminder of `kind` for `visit`, due a minute ago by the clock the server reads (the real
    one, or libfaketime's: the worker shares it)."""
    now = utcnow()
    reminder = Reminder(
        visit_id=visit.id,
        kind=kind,
        due_at=now - timedelta(minutes=1),
        expires_at=now + timedelta(hours=1),
    )
    db.session.add(reminder)
    db.session.commit()
    return reminder


def _sent(push_service: PushService, reminder: Reminder) -> bool:
    """The push service has the reminder (its Topic is the reminder's id) and the row says sent."""
    if not any(m.headers.get("topic") == reminder.id.hex for m in push_service.received):
        return False
    db.session.rollback()  # a fresh snapshot: the worker wrote the row
    return db.session.scalar(select(Reminder.status).where(Reminder.id == reminder.id)) == "sent"


def test_a_killed_worker_or_web_server_is_restarted_and_the_other_runs_on(
    app, tmp_path, make_clinic, make_visit
):
    # The supervised programs read the real clock, so the visit is made at the real moment, and
    # the patient has no quiet hours (start == end): reminders go out whatever the hour.
    visit = make_visit(make_clinic()).visit
    visit.patient.quiet_start = visit.patient.quiet_end = wall_time(0, 0)
    db.session.execute(delete(Reminder).where(Reminder.visit_id == visit.id))
    db.session.commit()

    with PushService(app_public_key=app.config["VAPID_PUBLIC_KEY"]) as push_service:
        keys = (phone := push_service.new_subscription()).as_json()["keys"]
        save_subscription(visit.patient_id, phone.endpoint, keys["p256dh"], keys["auth"], utcnow())
        db.session.commit()

        supervisor = Supervisor(app, tmp_path).start()
        try:
            web = wait_until(lambda: supervisor.program("web"), START, "gunicorn's master")
            wait_until(supervisor.healthy, START, "/healthz to answer")
            worker = wait_until(lambda: supervisor.program("reminders"), START, "the worker")
            first = _due_now(visit, AFTER_2H)
            wait_until(lambda: _sent(push_service, first), START, "the worker to send a reminder")

            # 1. The reminder worker dies. The web server never stops answering.
            with HealthWatch(supervisor.url) as watch:
                killed_at = time.monotonic()
                os.kill(worker, signal.SIGKILL)
                new_worker = wait_until(
                    lambda: (pid := supervisor.program("reminders")) not in (None, worker) and pid,
                    START,
                    "a new reminder worker",
                )
                worker_back = time.monotonic() - killed_at
                # Due after the kill: only the new worker can send it.
                second = _due_now(visit, EVENING)
                wait_until(lambda: _sent(push_service, second), START, "the new worker to send")
                assert supervisor.program("web") == web
            assert watch.failures == [], watch.failures
            assert watch.answers > 0
            assert not _alive(worker)

            # 2. The web server's master dies. Its workers go with it; the worker runs on.
            web_workers = children(web)
            assert len(web_workers) == WEB_WORKERS
            killed_at = time.monotonic()
            os.kill(web, signal.SIGKILL)
            new_web = wait_until(
                lambda: (pid := supervisor.program("web")) not in (None, web) and pid,
                START,
                "a new gunicorn master",
            )
            # They get SIGTERM from the kernel as their master dies (gunicorn.conf.py's post_fork).
            # Without it, idle, they would live until their wait ends (WEB_TIMEOUT/2, 300 s
            # here), holding the port so that the new master could not bind it.
            wait_until(
                lambda: not any(_alive(pid) for pid in web_workers),
                30,
                "the dead master's workers to stop",
            )
            wait_until(supervisor.healthy, START, "the new master to answer /healthz")
            web_back = time.monotonic() - killed_at
            wait_until(lambda: len(children(new_web)) == WEB_WORKERS, START, "its workers")
            assert supervisor.program("reminders") == new_worker
            third = _due_now(visit, AFTER_48H)
            wait_until(lambda: _sent(push_service, third), START, "the worker to send on")

            # The log names what died and what replaced it.
            log = supervisor.log_text()
            assert "exited: reminders (terminated by SIGKILL; not expected)" in log
            assert f"spawned: 'reminders' with pid {new_worker}" in log
            assert "exited: web (terminated by SIGKILL; not expected)" in log
            assert f"spawned: 'web' with pid {new_web}" in log

            # 3. Ctrl-C: supervisord stops both programs and exits cleanly.
            everything = {new_worker, new_web, *children(new_web)}
            os.kill(supervisor.pid, signal.SIGINT)
            assert supervisor.process is not None
            assert supervisor.process.wait(timeout=60) == 0
            wait_until(
                lambda: not any(_alive(pid) for pid in everything), 30, "every program to stop"
            )
            print(
                f"worker replaced {worker_back:.1f} s after the kill ({watch.answers} /healthz "
                f"answers meanwhile, no failure); web answering again {web_back:.1f} s after "
                "its master was killed"
            )
        finally:
            supervisor.stop()
