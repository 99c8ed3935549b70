"""GET /calendar/<token>.ics: the patient's reminders as a subscribable iCalendar feed.

The token is a capability of its own (reminders/calendar.py); no cookie, no sign-in, because the
caller is usually a calendar provider's server, not the patient's browser.
"""

from __future__ import annotations

from flask import Blueprint, Response, current_app, request

from companion import guessing
from companion.extensions import limiter
from companion.reminders.calendar import build_feed, feed_reminders, link_id_from_token, live_link
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
    wait = guessing.CALENDAR_TOKEN.wait()
    if wait is not None:
        # This address sent too many tokens we never signed: refused before looking at this one.
        return Response(
            "Too many requests\n",
            status=429,
            mimetype="text/plain",
            headers={"Retry-After": str(wait)},
        )
    now = utcnow()
    link = live_link(token, now)
    if link is None:
        # Only a token we never signed counts (a guess, a tampered URL). A revoked or expired feed
        # was ours: calendar providers poll those for ever, from hosts shared by every patient.
        if link_id_from_token(token) is None:
            guessing.CALENDAR_TOKEN.failed()
        return _not_found()
    base_url = public_base()
    body = build_feed(link.visit, feed_reminders(link.visit), base_url=base_url, now=now)
    response = Response(body, content_type="text/calendar; charset=utf-8")
    response.headers["Content-Disposition"] = "inline; filename=aftercare.ics"
    # The feed names the patient's reminder times: never kept in a shared cache.
    response.headers["Cache-Control"] = "no-store"
    return response
