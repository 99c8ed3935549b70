"""What the benchmarks share: the throwaway database, how busy the machine is, what was measured.

Imported as `bench.common` (the repository root on sys.path) by bench/dispatch.py and bench/review_queue.py.
Nothing here imports the app at module level: bench/review_queue.py may measure another source tree.
"""

from __future__ import annotations

import logging
import os
import platform
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import psycopg
from psycopg import sql
from sqlalchemy import text

if TYPE_CHECKING:
    from flask import Flask

# --wait-quiet: the machine counts as quiet below this share of all cores busy, over one second.
QUIET = 0.15


@dataclass
class Database:
    """Where a benchmark writes: the URL its processes read and the one SQLAlchemy takes."""

    env_url: str  # DATABASE_URL for `flask` or gunicorn (config.py adds the psycopg driver itself)
    sqlalchemy_url: str
    sqlite_path: Path | None = None

    @property
    def kind(self) -> str:
        return "sqlite" if self.sqlite_path else "postgresql"


def resolve_database(option: str, tmp: Path, sqlite_name: str = "bench.sqlite3") -> Database:
    """`sqlite` (a file in `tmp`), or a PostgreSQL URL on a loopback host whose database name
    says "bench" (created when missing).

    Each run drops the whole `public` schema, so any other database is refused: a mistyped URL must
    not empty somebody's test or development data.
    """
    if option == "sqlite":
        path = tmp / sqlite_name
        return Database(f"sqlite:///{path}", f"sqlite:///{path}", path)
    parts = urlsplit(option)
    if parts.scheme not in ("postgresql", "postgres"):
        raise SystemExit("--database-url takes `sqlite` or a postgresql:// URL")
    name = parts.path.lstrip("/")
    if parts.hostname not in ("127.0.0.1", "localhost", "::1") or "bench" not in name:
        raise SystemExit(
            "--database-url must be a loopback PostgreSQL database whose name contains "
            f"'bench' (its schema is dropped on every run): {option!r}"
        )
    plain = "postgresql://" + option.split("://", 1)[1]
    ensure_database(plain, name)
    return Database(plain, "postgresql+psycopg://" + option.split("://", 1)[1])


def ensure_database(url: str, name: str) -> None:
    """Create the dedicated benchmark database when it does not exist yet."""
    try:
        conn = psycopg.connect(url, dbname="postgres", autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        raise SystemExit(
            f"PostgreSQL does not answer at {url} ({exc}).\n"
            "Start it, or measure on SQLite: --database-url sqlite"
        ) from None
    with conn:
        found = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if found is None:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            print(f"created database {name}")


def reset_schema(app: Flask, database: Database) -> None:
    """An empty database migrated to head for every run, as tests/conftest.py build_app does."""
    from flask_migrate import upgrade

    from companion.extensions import db

    with app.app_context():
        db.engine.dispose()  # no connection of a previous run may hold a lock or an old file
        if database.sqlite_path is not None:
            database.sqlite_path.unlink(missing_ok=True)
        else:
            with db.engine.begin() as conn:
                conn.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
        # Alembic's INFO lines would drown the figures; a failing migration still raises.
        logging.disable(logging.INFO)
        try:
            upgrade()
        finally:
            logging.disable(logging.NOTSET)


def cpu_ticks() -> tuple[int, int] | None:
    """(busy, total) jiffies of the whole machine from /proc/stat; None where there is none."""
    try:
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + fields[4]  # idle + iowait
    return sum(fields) - idle, sum(fields)


def busy_share(before: tuple[int, int] | None, after: tuple[int, int] | None) -> float | None:
    if before is None or after is None or after[1] <= before[1]:
        return None
    return (after[0] - before[0]) / (after[1] - before[1])


def share_text(share: float | None) -> str:
    return "n/a" if share is None else f"{share:.0%}"


def wait_until_quiet(seconds: float, limit: float = QUIET) -> float | None:
    """Wait (at most `seconds`) until under `limit` of the machine is busy over one second.

    Other work on the same cores (a test run, a build) slows what is measured and the figures say
    nothing then. Returns the share busy in the last second looked at.
    """
    deadline = time.monotonic() + seconds
    while True:
        before = cpu_ticks()
        time.sleep(1)
        share = busy_share(before, cpu_ticks())
        if share is None or share < limit or time.monotonic() >= deadline:
            return share


def source_revision(source: Path, app_files: Sequence[str]) -> str:
    """The commit the app came from, and whether its files differed from it."""
    try:
        head = subprocess.run(
            ["git", "-C", str(source), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(source), "status", "--porcelain", "--", *app_files],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return f"{source} (not a git checkout)"
    return f"{head}{' with uncommitted changes to the app' if dirty else ''} ({source})"


def machine_facts(app: Flask, database: Database, revision: str) -> dict[str, Any]:
    """The machine, the database server and the app's revision, printed with the figures."""
    from companion.extensions import db

    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass  # not Linux: the core count still says most of it
    with app.app_context():
        if database.kind == "postgresql":
            server = "PostgreSQL " + str(db.session.scalar(text("SHOW server_version")))
        else:
            server = "SQLite " + str(db.session.scalar(text("SELECT sqlite_version()")))
        db.session.remove()
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "cores": cores,
        "cpu": cpu,
        "python": platform.python_version(),
        "system": f"{platform.system()} {platform.release()}",
        "database": server,
        "app": revision,
    }
