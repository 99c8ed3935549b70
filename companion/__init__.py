"""The aftercare companion: create_app() builds the Flask app."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from babel.dates import format_datetime as babel_format
from flask import Flask, jsonify, request
from flask_babel import format_datetime, get_locale
from sqlalchemy import text
from werkzeug.middleware.proxy_fix import ProxyFix

import config as settings
from companion.extensions import (
    SessionInterface,
    babel,
    compress,
    configure_sqlite,
    csrf,
    db,
    keep_rows_out_of_logs,
    limiter,
    login_manager,
    mail,
    migrate,
)
from companion.timeutil import utc_instant

ROOT = Path(__file__).resolve().parent.parent


def select_locale() -> str:
    from companion.auth import current_link
    from companion.patient import LANGUAGE_COOKIE

    chosen = request.cookies.get(LANGUAGE_COOKIE)
    if chosen in ("en", "es"):
        return chosen
    if request.path.startswith("/me/") or request.path.startswith("/p/"):
        link = current_link()
        if link is not None:
            return link.visit.patient.language
    return request.accept_languages.best_match(["en", "es"]) or "en"


def select_timezone() -> str | None:
    """Patient pages: the patient's zone. Therapist pages: the clinic's, so every time a therapist
    reads is the clinic's wall clock (times in a patient's own zone say so where shown)."""
    from flask_login import current_user

    from companion.auth import current_link

    if request.path.startswith("/me/"):
        link = current_link()
        if link is not None:
            return link.visit.patient.timezone
        return None
    if current_user.is_authenticated:
        return str(current_user.clinic.timezone)
    return None


def create_app(overrides: dict[str, Any] | None = None) -> Flask:
    app = Flask(
        __name__,
        static_folder=str(ROOT / "static"),
        template_folder=str(ROOT / "templates"),
        instance_path=str(settings.INSTANCE),
    )
    app.config.update(settings.from_environment())
    if overrides:
        app.config.update(overrides)

    # Compress the static text (CSS, scripts, manifest), never the HTML pages: a page holds a CSRF
    # token and health data, and compressing secrets beside other content invites BREACH.
    app.config.setdefault(
        "COMPRESS_MIMETYPES",
        ["text/css", "text/javascript", "application/javascript", "application/manifest+json"],
    )
    if app.config["PROXY_COUNT"]:
        # The client's own address for the audit trail and the per-address sign-in limit, and
        # https as the client used it; only as many hops as the operator says are theirs.
        proxies = app.config["PROXY_COUNT"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=proxies, x_proto=proxies)  # type: ignore[method-assign]
    keep_rows_out_of_logs()
    db.init_app(app)
    if app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite:"):
        with app.app_context():
            configure_sqlite(db.engine, app.config.get("SQLITE_BUSY_TIMEOUT_MS", 10_000))
    compress.init_app(app)
    migrate.init_app(app, db, directory=str(ROOT / "migrations"))
    login_manager.init_app(app)
    app.session_interface = SessionInterface()
    login_manager.login_view = "auth.sign_in"
    login_manager.session_protection = "strong"
    csrf.init_app(app)
    limiter.init_app(app)
    mail.init_app(app)
    babel.init_app(
        app,
        locale_selector=select_locale,
        timezone_selector=select_timezone,
        default_translation_directories=str(Path(__file__).parent / "translations"),
    )

    from companion import auth, cli, errors, headers, pwa
    from companion.api import alerts as api_alerts  # noqa: F401 (adds its route to api.bp)
    from companion.api import views as api
    from companion.auth import accounts as auth_accounts  # noqa: F401 (adds its routes to auth.bp)
    from companion.auth import second_step  # noqa: F401 (adds the sign-in code page to auth.bp)

    # Each therapist page module adds its routes to the clinic's blueprints when imported.
    from companion.clinic import (  # noqa: F401
        account,
        api_keys,
        audit,
        deletion_requests,
        exports,
        handout,
        notifications,
        on_call,
        patients,
        profile,
        queue,
        review_bp,
        therapists,
        visits,
    )
    from companion.clinic import bp as clinic_bp
    from companion.clinic import logo as clinic_logo
    from companion.clinic import password as clinic_password  # noqa: F401
    from companion.clinic import settings as clinic_settings  # noqa: F401

    # Each patient page module adds its routes to the patient blueprint when imported.
    from companion.patient import bp as patient_bp
    from companion.patient import checkin, data, guide, history, reminders, stretches  # noqa: F401
    from companion.reminders import feed as calendar_feed

    errors.init_app(app)
    headers.init_app(app)
    cli.init_app(app)
    pwa.init_app(app)
    app.register_blueprint(auth.bp)
    app.register_blueprint(patient_bp)
    app.register_blueprint(clinic_bp)
    app.register_blueprint(review_bp)
    app.register_blueprint(api.bp)
    app.register_blueprint(calendar_feed.bp)
    app.register_blueprint(notifications.bp)
    app.register_blueprint(clinic_logo.bp)  # public: patients are not signed in
    app.before_request(auth.enforce_session_timeouts)

    @app.get("/healthz")
    def healthz() -> tuple[Any, ...]:
        try:
            db.session.execute(text("SELECT 1"))
        except Exception:  # any database failure means "not ready"; details go to the log only
            app.logger.exception("health check: database did not answer")
            errors.discard_transaction()
            retry = {"Retry-After": str(errors.RETRY_AFTER_SECONDS)}
            return jsonify({"status": "unavailable"}), 503, retry
        return jsonify({"status": "ok"}), 200

    @app.template_filter("local")
    def local_time(moment: datetime, fmt: str = "medium") -> str:
        """A UTC timestamp in the viewer's zone and locale (select_timezone: the patient's on
        patient pages, the clinic's on therapist pages)."""
        return format_datetime(moment, fmt)

    @app.template_filter("local_in")
    def local_in_zone(moment: datetime, zone: str, fmt: str = "short") -> str:
        """A UTC timestamp as the wall-clock time in `zone` (the patient's, on therapist pages)."""
        return babel_format(moment, fmt, tzinfo=ZoneInfo(zone), locale=get_locale())

    # Every <time datetime="...">: a valid HTML date-time (to the second, with its Z). isoformat()
    # gives microseconds, which HTML does not take (at most three digits of a second).
    app.add_template_filter(utc_instant, "utc_instant")
    # The indentation before a {% block tag %} is not sent: HTML pages go uncompressed (BREACH,
    # above), and the patient's first visit has a 100 KB budget (docs/BENCHMARKS.md). It never
    # touches text: only spaces from a line's start up to a tag, and no template has a tag inside
    # a <pre> or <textarea>.
    app.jinja_env.lstrip_blocks = True

    @app.context_processor
    def inject_language() -> dict[str, Any]:
        from companion.auth import current_link

        on_patient_page = request.path.startswith(("/me/", "/p/"))
        return {
            "lang": str(get_locale() or "en"),
            "patient_link": current_link() if on_patient_page else None,
        }

    return app
