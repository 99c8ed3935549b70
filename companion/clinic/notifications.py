"""The therapist's Notifications page: turn alerts on or off for this device, see and remove devices.

The page's script (static/js/notifications.js) talks JSON to the routes below with the session's
CSRF token in an X-CSRFToken header (flask-wtf's CSRFProtect checks it as it checks form fields).
Removing a device from the list is a plain form, so it works without JavaScript. The one route a
session does not cover is `renew`: the service worker calls it, holding the device's own token.
"""

from __future__ import annotations

import uuid
from typing import Any, get_args

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_login import current_user
from flask_wtf.csrf import CSRFError, generate_csrf

from companion import audit
from companion.alerts.devices import devices_of, find_device, renew, save_device
from companion.api.openapi import parse_body
from companion.api.schemas import DeviceRenewal, Language, PushSubscriptionIn, PushSubscriptionRef
from companion.channels.webpush import endpoint_allowed
from companion.errors import APIError, page_message
from companion.extensions import csrf, db, limiter, login_manager
from companion.forms import ActionForm
from companion.models import Therapist, TherapistDevice
from companion.timeutil import utcnow

bp = Blueprint("notifications", __name__, url_prefix="/settings/notifications")


@bp.before_request
def _signed_in() -> Response | None:
    if request.endpoint == "notifications.renew_device":
        return None  # the device's token is its credential
    if current_user.is_authenticated:
        return None
    if request.is_json:
        # A script's request must not be answered with the sign-in page (fetch would follow the
        # redirect and read "200 OK").
        raise APIError(401, "unauthorized", "Sign in again to continue.")
    return login_manager.unauthorized()  # type: ignore[no-any-return]


@bp.errorhandler(CSRFError)
def _csrf_refused(exc: CSRFError) -> tuple[Response | str, int]:
    """A script's request gets JSON, and "sign in" when the session is gone (its CSRF token went
    with it), so the page can say what to do. Forms get the usual error page."""
    if not request.is_json:
        return render_template("error.html", code=400, message=page_message(400)), 400
    if not current_user.is_authenticated:
        return APIError(401, "unauthorized", "Sign in again to continue.").response()
    return APIError(
        400, "csrf", "The page's security token is missing or old: reload it."
    ).response()


def _not_allowed() -> APIError:
    return APIError(
        422,
        "endpoint_not_allowed",
        "Only https endpoints of known push services are accepted.",
        "endpoint",
    )


def _audit(
    action: str, device: TherapistDevice, actor: audit.Actor | None = None, **extra: Any
) -> None:
    detail = {"browser": device.browser, "platform": device.platform, **extra}
    actor = actor or audit.current_actor()
    audit.record(action, actor, ("therapist_device", device.id), now=utcnow(), detail=detail)


def client_strings() -> dict[str, str]:
    """Texts of static/js/push-toggle.js on this page, in the therapist's language."""
    return {
        "push_checking": _("Checking this device…"),
        "push_on": _("Alerts are on for this device."),
        "push_off": _("Alerts are off on this device."),
        "push_turning_on": _("Turning alerts on…"),
        "push_turning_off": _("Turning alerts off…"),
        "push_dismissed": _(
            "Alerts are off on this device: the question was closed without an answer. Press "
            "the button again when you are ready."
        ),
        "push_blocked": _("This browser blocks notifications from this site."),
        "push_unsupported": _(
            "This browser cannot show notifications from a web page. New alerts still show here "
            "when you are signed in."
        ),
        "push_ios": _(
            "On iPhone and iPad, notifications only reach web apps opened from the Home Screen."
        ),
        "push_failed": _("Alerts could not be turned on."),
        "push_failed_offline": _(
            "There is no connection right now. Try again when you are online."
        ),
        "push_failed_unauthorized": _("You were signed out. Sign in again and try once more."),
        "push_failed_not_allowed": _(
            "This browser uses a notification service that we cannot send to."
        ),
        "push_failed_push_service": _("The browser could not reach its notification service."),
        "push_failed_worker": _("The page could not finish loading in this browser."),
        "push_failed_server": _("Something went wrong on our side."),
        "push_failed_timeout": _("There was no answer in time, so we stopped waiting."),
        "push_off_failed": _(
            "Alerts could not be turned off on this device. Please try again, or block "
            "notifications for this site in your browser's settings."
        ),
    }


def _language() -> str:
    language = str(get_locale() or "en")
    return language if language in get_args(Language) else "en"


@bp.get("")
def page() -> str:
    devices = devices_of(current_user.id)
    data = {
        "csrf_token": generate_csrf(),
        "devices": [str(d.id) for d in devices],
        "strings": client_strings(),
    }
    return render_template(
        "clinic/notifications.html",
        devices=devices,
        page_data=data,
        zone=current_user.clinic.timezone,
    )


@bp.post("/devices")
@limiter.limit("30 per minute")
def add_device() -> tuple[Response, int]:
    """This browser's subscription, from the page's script (JSON, X-CSRFToken)."""
    body = parse_body(PushSubscriptionIn)
    if not endpoint_allowed(body.endpoint, current_app.config["PUSH_ENDPOINT_ALLOWLIST"]):
        raise _not_allowed()
    saved = save_device(
        current_user,
        body.endpoint,
        body.keys.p256dh,
        body.keys.auth,
        user_agent=request.user_agent.string,
        language=_language(),
        now=utcnow(),
    )
    if saved.previous_therapist_id is not None:
        previous = db.session.get(Therapist, saved.previous_therapist_id)
        if previous is not None:
            # Told in the clinic the device left: its audit page shows where it went.
            taken_by = audit.Actor(audit.THERAPIST, current_user.id, previous.clinic_id)
            _audit("device.remove", saved.device, taken_by, reason="taken_over")
    if saved.created:
        _audit("device.add", saved.device)
    db.session.commit()
    out = {
        "id": str(saved.device.id),
        "created": saved.created,
        # The service worker keeps it to re-register this device by itself (alerts/devices.py).
        "renewal_token": saved.renewal_token,
    }
    return jsonify(out), 201 if saved.created else 200


@bp.delete("/devices")
def delete_device() -> Response:
    """Turn alerts off for this browser, from the page's script (JSON, X-CSRFToken)."""
    body = parse_body(PushSubscriptionRef)
    device = find_device(current_user.id, endpoint=body.endpoint)
    if device is None:
        raise APIError(404, "not_found", "No such device of yours.", "endpoint")
    _audit("device.remove", device)
    db.session.delete(device)
    db.session.commit()
    return Response(status=204)


@bp.post("/devices/<uuid:device_id>/remove")
def remove_device(device_id: uuid.UUID) -> Response:
    """Remove one of the listed devices (a form: works without JavaScript)."""
    if not ActionForm().validate_on_submit():
        abort(400)
    device = find_device(current_user.id, device_id=device_id)
    if device is None:
        abort(404)  # not yours, or already removed
    _audit("device.remove", device)
    db.session.delete(device)
    db.session.commit()
    flash(_("Alerts are turned off for that device."))
    return redirect(url_for("notifications.page"), code=303)


@bp.post("/devices/renew")
@csrf.exempt  # no session, no cookie: the token in the JSON body is the credential
@limiter.limit("30 per minute")
def renew_device() -> Response:
    """The service worker re-registers its device after the browser replaced the subscription."""
    body = parse_body(DeviceRenewal)
    subscription = body.subscription
    if not endpoint_allowed(subscription.endpoint, current_app.config["PUSH_ENDPOINT_ALLOWLIST"]):
        raise _not_allowed()
    device = renew(
        body.token, subscription.endpoint, subscription.keys.p256dh, subscription.keys.auth
    )
    if device is None:
        raise APIError(404, "not_found", "This device no longer has alerts on.")
    audit.record(
        "device.renew", audit.Actor.device(device), ("therapist_device", device.id), now=utcnow()
    )
    db.session.commit()
    return jsonify({"id": str(device.id)})
