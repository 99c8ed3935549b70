"""Flask extensions, created unbound here and bound to the app in create_app()."""

import logging
from typing import Any

from flask import Flask, Response, g, has_request_context, request
from flask.sessions import SecureCookieSessionInterface, SessionMixin
from flask_babel import Babel
from flask_compress import Compress
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager
from flask_mailman import Mail
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_wtf import CSRFProtect
from sqlalchemy import Engine, MetaData, event
from sqlalchemy.orm import DeclarativeBase


class Base(DeclarativeBase):
    # Named constraints so Alembic migrations are the same on SQLite and PostgreSQL.
    metadata = MetaData(
        naming_convention={
            "ix": "ix_%(column_0_label)s",
            "uq": "uq_%(table_name)s_%(column_0_N_name)s",
            "ck": "ck_%(table_name)s_%(constraint_name)s",
            "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
            "pk": "pk_%(table_name)s",
        }
    )


class SessionInterface(SecureCookieSessionInterface):
    """Flask's signed-cookie session, less "Vary: Cookie" on static files. Flask-Login looks into
    the session after every request (its remember-me check), so every answer would vary on the
    cookie, a static file's too, though none depends on it: a browser could then not reuse its
    cached copy when the cookie had changed, and the service worker's install fetched the files
    again (over the patient app's 100 KB first-visit budget)."""

    def save_session(self, app: Flask, session: SessionMixin, response: Response) -> None:
        super().save_session(app, session, response)
        if request.endpoint == "static" and not session.modified:
            rest = [name for name in response.vary if name.lower() != "cookie"]
            if rest:
                response.headers["Vary"] = ", ".join(rest)
            else:
                del response.headers["Vary"]


db = SQLAlchemy(model_class=Base)
migrate = Migrate()
login_manager = LoginManager()
csrf = CSRFProtect()
limiter = Limiter(key_func=get_remote_address, default_limits=[])
babel = Babel()
compress = Compress()
mail = Mail()


class _NoResultRows(logging.Filter):
    """SQLAlchemy's engine logger at DEBUG writes every result row ("Row (..., 'Rosalind', ...)"):
    names, phones, notes, scores. hide_parameters (config.py) keeps values out of the statements;
    this keeps rows out. The statements themselves still log, for whoever debugs SQL."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.msg != "Row %r"


_NO_RESULT_ROWS = _NoResultRows()


def keep_rows_out_of_logs() -> None:
    """Install the filter on the engine's logger (once: addFilter skips a filter already there)."""
    logging.getLogger("sqlalchemy.engine.Engine").addFilter(_NO_RESULT_ROWS)


# Requests that only read: on SQLite they take no lock up front (configure_sqlite).
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def takes_write_lock() -> bool:
    """Whether a transaction on SQLite takes the write lock when it begins: in a request that
    writes (POST, PUT, PATCH, DELETE), until it is answering with an error (only_reads_from_now)."""
    return (
        has_request_context()
        and request.method not in SAFE_METHODS
        and not g.get("only_reads_from_now", False)
    )


def only_reads_from_now() -> None:
    """The request will write nothing more (its error answer only reads, e.g. the patient's
    language): its next transactions on SQLite take no write lock, so they do not wait for the
    lock the request just failed to get."""
    g.only_reads_from_now = True


def configure_sqlite(engine: Engine, busy_timeout_ms: int) -> None:
    """WAL, a busy timeout, and write transactions that take the lock up front (SQLite only).

    A write request's transaction begins with BEGIN IMMEDIATE: it takes the write lock before its
    first read, so it waits its turn (up to the busy timeout) and what it read stays true until
    it commits. Were it to read first (a deferred transaction) and write later, SQLite would
    refuse the upgrade at once, without waiting, whenever another connection had written
    meanwhile: the "database is locked" 500s under load. For that, pysqlite's own transaction
    handling is switched off and SQLAlchemy's `begin` event emits the BEGIN (the SQLAlchemy
    documentation's pysqlite recipe).

    Everything else (read-only requests, the reminder worker, CLI commands) keeps pysqlite's
    handling: each read runs on its own and takes no lock that outlives it (in WAL mode it never
    waits for a writer), and a write opens its transaction at the first INSERT/UPDATE/DELETE, with
    no read transaction open before it, so it waits for the lock up to the busy timeout rather
    than failing. The worker commits before any network I/O (design.md), and an IMMEDIATE
    transaction left open by a stray read would hold every writer back while it waits on push
    services. A write that still cannot get the lock in time answers 503 with Retry-After
    (companion.errors), never a 500.
    """

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
            # Readers and the one writer no longer block each other. Kept: synchronous = FULL
            # (the default), so an acknowledged check-in survives a power cut as well.
            cursor.execute("PRAGMA journal_mode = WAL")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        dbapi_connection = connection.connection.dbapi_connection
        if takes_write_lock():
            dbapi_connection.isolation_level = None  # no implicit BEGIN from pysqlite: ours
            connection.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            dbapi_connection.isolation_level = ""  # pysqlite's: BEGIN before the first write
