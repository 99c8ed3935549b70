"""JSON errors for /api/v1: `{"error": {"code", "message", "field"?}}` with a 4xx status.

Messages are ours, never pydantic's raw text, so no submitted value (which may be health data) is
ever echoed back or logged.
"""

from __future__ import annotations

from typing import Any

from flask import Flask, Response, abort, current_app, jsonify, render_template, request
from flask_babel import force_locale, get_locale
from flask_babel import gettext as _
from pydantic import ValidationError
from sqlalchemy.exc import DBAPIError, OperationalError
from werkzeug.exceptions import HTTPException

from companion.extensions import db, only_reads_from_now

# Seconds a client is asked to wait when the database is busy or unavailable (503). The patient
# app's outbox keeps the check-in on the phone and sends it again (static/js/outbox.js).
RETRY_AFTER_SECONDS = 10


class APIError(Exception):
    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        field: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.field = field
        self.headers = headers or {}  # a 429's Retry-After, say

    def response(self) -> tuple[Response, int]:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.field is not None:
            error["field"] = self.field
        response = jsonify({"error": error})
        response.headers.update(self.headers)
        return response, self.status


# pydantic error type -> (our code, message). The field's path is added by the caller.
_TYPES: dict[str, tuple[str, str]] = {
    "missing": ("missing_field", "This field is required."),
    "extra_forbidden": ("unknown_field", "This field is not part of the request."),
    "int_type": ("wrong_type", "Must be a whole number (not text, true/false or null)."),
    "bool_type": ("wrong_type", "Must be true or false."),
    "string_type": ("wrong_type", "Must be text."),
    "list_type": ("wrong_type", "Must be a list."),
    "model_type": ("wrong_type", "Must be an object."),
    "model_attributes_type": ("wrong_type", "Must be an object."),
    "uuid_type": ("invalid_uuid", "Must be a UUID."),
    "uuid_parsing": ("invalid_uuid", "Must be a UUID."),
    "greater_than_equal": ("out_of_range", "Is below the allowed minimum."),
    "less_than_equal": ("out_of_range", "Is above the allowed maximum."),
    "string_too_short": ("too_short", "Must not be empty."),
    "string_too_long": ("too_long", "Is longer than allowed."),
    "too_short": ("too_short", "Must not be empty."),
    "too_long": ("too_long", "Has more items than allowed."),
    "duplicate_item": ("duplicate_item", "Lists a code more than once; give each code once."),
    "invalid_timestamp": ("invalid_timestamp", "Must be an RFC 3339 timestamp."),
    "naive_timestamp": ("naive_timestamp", "Must include a UTC offset, e.g. +01:00 or Z."),
    "timezone_aware": ("naive_timestamp", "Must include a UTC offset, e.g. +01:00 or Z."),
    "datetime_parsing": ("invalid_timestamp", "Must be an RFC 3339 timestamp."),
    "datetime_from_date_parsing": ("invalid_timestamp", "Must be an RFC 3339 timestamp."),
    "invalid_timezone": ("invalid_timezone", "Must be an IANA time zone name, e.g. Europe/Madrid."),
    "invalid_phone": (
        "invalid_phone",
        "Must be a phone number in international format, with + and the country code, "
        "e.g. +34612345678.",
    ),
    "invalid_email": ("invalid_email", "Must be an e-mail address."),
}

# An unknown value in a list of codes gets a code naming what it is.
_UNKNOWN_BY_FIELD = {
    "regions": ("unknown_region", "Is not a known region code."),
    "symptoms": ("unknown_symptom", "Is not a known symptom code."),
    "helped": ("unknown_helped", "Is not a known code for what helped."),
    "language": ("unknown_language", "Must be one of: en, es."),
}


def from_validation_error(exc: ValidationError) -> APIError:
    first = exc.errors(include_url=False, include_input=False)[0]
    kind = first["type"]
    loc = [str(part) for part in first["loc"]]
    field = ".".join(loc) or None
    if kind == "json_invalid":
        return APIError(400, "malformed_json", "The body is not valid JSON.")
    if kind == "literal_error":
        top = next((p for p in reversed(loc) if not p.isdigit()), "")
        code, message = _UNKNOWN_BY_FIELD.get(top, ("unknown_value", "Is not an allowed value."))
    else:
        code, message = _TYPES.get(kind, ("invalid_value", "Is not valid."))
    return APIError(422, code, f"{field}: {message}" if field else message, field)


def page_message(status: int) -> str:
    """What a page says for an HTTP error, in the reader's language."""
    messages = {
        400: _("Something in that request was not right. Please go back and try again."),
        401: _("You need to sign in or open your patient link again."),
        403: _("You are not allowed to see this page."),
        404: _("We could not find that page."),
        405: _("That action is not possible on this page."),
        413: _("That was too much text to send. Please shorten it and try again."),
        429: _("Too many attempts. Please wait a minute and try again."),
    }
    return messages.get(status, _("Something went wrong on our side. Please try again."))


def wants_json() -> bool:
    """The API, and a page's script sending JSON (a missing CSRF token, say), get JSON errors."""
    return request.path.startswith("/api/") or request.is_json


def refuse_nul_characters() -> None:
    """A NUL character has no place in any text we keep, and PostgreSQL cannot store one (it
    would be a 500). Refused up front, for every form, query string and JSON body, with a 400."""
    values = [*request.args.values(), *request.form.values()]
    body = request.get_data(cache=True) if request.is_json else b""
    if any("\x00" in v for v in values) or b"\x00" in body or b"\\u0000" in body.lower():
        if wants_json():
            raise APIError(400, "nul_character", "Text must not contain NUL characters.")
        abort(400)


def discard_transaction() -> None:
    """Roll back after a database failure, so the rest of the request (and the next one on this
    pooled connection) starts clean; with the database gone, the rollback itself may fail too."""
    try:
        db.session.rollback()
    except DBAPIError:
        db.session.invalidate()


def database_unavailable(exc: DBAPIError) -> bool:
    """A failure to reach the database or to get its lock, not a bug: SQLite's "database is
    locked" (another writer held the lock past the busy timeout), PostgreSQL down or restarting, a
    connection cut. The client should try again later (503), not be told the server is broken."""
    return isinstance(exc, OperationalError) or bool(exc.connection_invalidated)


def _reader_language() -> str:
    """The reader's language without relying on the database: the patient's own language needs it
    (companion.select_locale), so when that fails, the language cookie or the browser's."""
    try:
        return str(get_locale() or "en")
    except Exception:  # the database again: fall back on what the request itself says
        discard_transaction()
        return request.accept_languages.best_match(["en", "es"]) or "en"


def _retry_url() -> str:
    """Where "Try again" leads: the page itself for a GET; after a form, the page of its part of
    the app (a form's own address may not answer a GET)."""
    if request.method in ("GET", "HEAD"):
        return request.full_path.rstrip("?")
    return "/me/" if request.path.startswith("/me/") else "/"


def unavailable_response(exc: DBAPIError) -> tuple[Any, int, dict[str, str]]:
    """503 with Retry-After: a JSON error on the API, a short page in the reader's language."""
    # The driver's message only (hide_parameters keeps values out of it): no request data.
    reason = str(getattr(exc, "orig", exc)).strip().splitlines()[:1]
    current_app.logger.warning(
        "database unavailable on %s %s (%s: %s): answered 503",
        request.method,
        request.endpoint,
        type(getattr(exc, "orig", exc)).__name__,
        reason[0][:200] if reason else "",
    )
    discard_transaction()
    only_reads_from_now()
    headers = {"Retry-After": str(RETRY_AFTER_SECONDS)}
    if wants_json():
        response, status = APIError(
            503,
            "unavailable",
            "The database is busy or unavailable for a moment. Send the same request again "
            "after Retry-After seconds (a check-in with the same id is stored once).",
        ).response()
        return response, status, headers
    lang = _reader_language()
    with force_locale(lang):
        # Straight from the template: the context processors read the database (the signed-in
        # therapist, the patient link), which is what just failed.
        page = current_app.jinja_env.get_template("unavailable.html").render(
            lang=lang,
            emergency_number=current_app.config.get("EMERGENCY_NUMBER", "112"),
            retry_url=_retry_url(),
        )
    return Response(page, mimetype="text/html"), 503, headers


def init_app(app: Flask) -> None:
    app.before_request(refuse_nul_characters)

    @app.errorhandler(APIError)
    def handle_api_error(exc: APIError) -> tuple[Response, int]:
        return exc.response()

    @app.errorhandler(HTTPException)
    def handle_http_error(exc: HTTPException) -> Any:
        status = exc.code or 500
        if exc.response is not None:  # abort(Response(...)): the view already rendered it
            return exc.response
        if wants_json():
            code = (exc.name or "error").lower().replace(" ", "_")
            response, _status = APIError(status, code, exc.description or exc.name).response()
        else:
            page = render_template("error.html", code=status, message=page_message(status))
            response = Response(page, mimetype="text/html")
        # The exception's own headers, but its Content-Type: a 405's Allow (RFC 9110 15.5.6: a
        # 405 MUST carry it), a 503's or 429's Retry-After, a 401's WWW-Authenticate.
        for name, value in exc.get_headers(request.environ):
            if name.lower() != "content-type":
                response.headers[name] = value
        return response, status

    @app.errorhandler(DBAPIError)
    def handle_database_error(exc: DBAPIError) -> Any:
        if database_unavailable(exc):
            return unavailable_response(exc)
        return handle_unexpected(exc)

    @app.errorhandler(Exception)
    def handle_unexpected(exc: Exception) -> Any:
        # Log the trace (no request body or values in it) and answer without details.
        app.logger.exception("unhandled error on %s %s", request.method, request.endpoint)
        if wants_json():
            return APIError(500, "internal_error", "Something went wrong on our side.").response()
        return render_template("error.html", code=500, message=page_message(500)), 500
