"""GET /calendar/<token>.ics: the patient's reminders as a subscribable iCalendar feed.

The token is a capability of its own (reminders/calendar.py); no cookie, no sign-in, because the
caller is usually a calendar provider's server, not the patient's browser.
"""

from __future__ import annotations

from flask import Blueprint, Response, current_app, request

from companion.extensions import limiter
from companion.reminders.calendar import build_feed, feed_reminders, live_link
from companion.timeutil import utcnow
from companion.tokens import hash_token
from companion.urls import public_base

bp = Blueprint("calendar", __name__)


def _rate_limit() -> str:
    # Calendars poll about hourly; a leaked URL hammered from anywhere stays cheap (config.py).
    return str(current_app.config["CALENDAR_RATE_LIMIT"])


def _per_feed() -> str:
    # Counted per feed, not per address: Google and Apple fetch every subscriber's feed from a few
    # shared hosts, so a per-address limit would cut many patients off at once. The token is hashed
    # so the capability itself never sits in the limiter's storage.
    return "calendar:" + hash_token((request.view_args or {}).get("token", ""))


def _not_found() -> Response:
    # The same answer for a tampered, unknown, revoked or expired token: nothing to learn from it.
    return Response("Not found\n", status=404, mimetype="text/plain")


@bp.get("/calendar/<token>.ics")
@limiter.limit(_rate_limit, key_func=_per_feed)
def feed(token: str) -> Response:
    now = utcnow()
    link = live_link(token, now)
    if link is None:
        return _not_found()
    base_url = public_base()
    body = build_feed(link.visit, feed_reminders(link.visit), base_url=base_url, now=now)
    response = Response(body, content_type="text/calendar; charset=utf-8")
    response.headers["Content-Disposition"] = "inline; filename=aftercare.ics"
    # The feed names the patient's reminder times: never kept in a shared cache.
    response.headers["Cache-Control"] = "no-store"
    return response
