"""Therapists' devices for alerts (web push): which browsers of which therapists, and sending to them.

A device is stored like a patient's push subscription (reminders/subscriptions.py: the same allowlist, the
same key checks) and reached through the same machinery (channels/webpush.py). What differs:

- The payload is for a therapist: the service worker lets it open only therapist pages, and its
  words come from `alert_message`, which never carries health data (no patient, score, region,
  symptom: the lock screen of a phone is not a place for them). The details wait behind sign-in.
- Each device holds a renewal token (only its SHA-256 is stored). When the browser replaces a push
  subscription it tells the service worker, usually at a moment nobody is signed in (therapist
  sessions end after 30 idle minutes); the worker proves with the token that it speaks for this
  device and re-registers the new subscription (`renew`). Without it, alerts would silently stop.

For the alert dispatcher: `devices_for_clinic`, `alert_message` and `push_to_devices`.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from flask import current_app
from flask_babel import force_locale, ngettext
from flask_babel import gettext as _
from sqlalchemy import delete, select
from sqlalchemy.orm import contains_eager

from companion import audit, channels
from companion.channels import webpush
from companion.delivery.outcomes import record
from companion.extensions import db
from companion.models import AlertNotice, Therapist, TherapistDevice
from companion.tokens import hash_token, new_token

log = logging.getLogger(__name__)

# --- which browser is this --------------------------------------------------------------------

# Order matters: Edge, Opera and Samsung Internet also say "Chrome", and Chrome also says "Safari".
_BROWSERS = (
    ("Edge", re.compile(r"\bEdg(?:e|A|iOS)?/")),
    ("Opera", re.compile(r"\bOPR/|\bOPiOS/")),
    ("Samsung Internet", re.compile(r"\bSamsungBrowser/")),
    ("Firefox", re.compile(r"\bFirefox/|\bFxiOS/")),
    ("Chrome", re.compile(r"\bChrome/|\bCriOS/|\bChromium/")),
    ("Safari", re.compile(r"\bVersion/[\d.]+.*\bSafari/")),
)
_PLATFORMS = (
    ("iPhone", re.compile(r"\biPhone\b")),
    ("iPad", re.compile(r"\biPad\b")),
    ("Android", re.compile(r"\bAndroid\b")),
    ("ChromeOS", re.compile(r"\bCrOS\b")),
    ("Windows", re.compile(r"\bWindows\b")),
    ("macOS", re.compile(r"\bMac OS X\b|\bMacintosh\b")),
    ("Linux", re.compile(r"\bLinux\b")),
)


def device_label(user_agent: str | None) -> tuple[str | None, str | None]:
    """("Chrome", "Android") from a User-Agent header; None for a part it does not tell.

    Only these coarse words are kept, never the header (with its versions it is a fingerprint).
    iPadOS presents itself as a Mac: such an iPad is listed as macOS, which is all the header says.
    """
    text = user_agent or ""
    browser = next((name for name, pattern in _BROWSERS if pattern.search(text)), None)
    platform = next((name for name, pattern in _PLATFORMS if pattern.search(text)), None)
    return browser, platform


# --- storing devices --------------------------------------------------------------------------


@dataclass(frozen=True)
class SavedDevice:
    device: TherapistDevice
    created: bool
    renewal_token: str  # shown once, to the browser that registered; only its hash is kept
    previous_therapist_id: uuid.UUID | None = None  # the endpoint belonged to someone else


def save_device(
    therapist: Therapist,
    endpoint: str,
    p256dh: str,
    auth: str,
    *,
    user_agent: str | None,
    language: str,
    now: datetime,
) -> SavedDevice:
    """Store this browser's subscription for `therapist`; the same endpoint again updates it.

    An endpoint is one browser profile: when another therapist turns alerts on in it (a shared
    computer at the front desk), it is theirs from now on, so alerts follow who set it up last.
    The renewal token is new on every call: the browser keeps the one it got last.
    """
    token = new_token()
    browser, platform = device_label(user_agent)
    device = db.session.scalar(select(TherapistDevice).where(TherapistDevice.endpoint == endpoint))
    if device is None:
        device = TherapistDevice(
            therapist_id=therapist.id,
            endpoint=endpoint,
            p256dh=p256dh,
            auth=auth,
            browser=browser,
            platform=platform,
            language=language,
            renewal_hash=hash_token(token),
            created_at=now,
        )
        db.session.add(device)
        db.session.flush()  # the id, for the caller's audit row
        return SavedDevice(device, True, token)
    previous = device.therapist_id if device.therapist_id != therapist.id else None
    device.therapist_id = therapist.id
    device.p256dh, device.auth = p256dh, auth
    device.browser, device.platform, device.language = browser, platform, language
    device.renewal_hash = hash_token(token)
    if previous is not None:
        # Someone else's device until now: what it delivered before says nothing for this one.
        device.created_at, device.last_success_at = now, None
    return SavedDevice(device, previous is not None, token, previous)


def devices_of(therapist_id: uuid.UUID) -> list[TherapistDevice]:
    """A therapist's own devices, newest first (the Notifications page)."""
    return list(
        db.session.scalars(
            select(TherapistDevice)
            .where(TherapistDevice.therapist_id == therapist_id)
            .order_by(TherapistDevice.created_at.desc(), TherapistDevice.id)
        )
    )


def find_device(
    therapist_id: uuid.UUID, *, device_id: uuid.UUID | None = None, endpoint: str | None = None
) -> TherapistDevice | None:
    """One of this therapist's devices by id or by endpoint; None for anyone else's."""
    if device_id is None and endpoint is None:
        raise ValueError("find_device needs a device id or an endpoint")
    query = select(TherapistDevice).where(TherapistDevice.therapist_id == therapist_id)
    if device_id is not None:
        query = query.where(TherapistDevice.id == device_id)
    if endpoint is not None:
        query = query.where(TherapistDevice.endpoint == endpoint)
    return db.session.scalar(query)


def renew(token: str, endpoint: str, p256dh: str, auth: str) -> TherapistDevice | None:
    """The browser replaced the subscription of the device this token belongs to: keep the device
    (its therapist, its history) and point it at the new subscription. None for an unknown token
    (the device was removed meanwhile: the browser should forget the token)."""
    device = db.session.scalar(
        select(TherapistDevice).where(TherapistDevice.renewal_hash == hash_token(token))
    )
    if device is None:
        return None
    if endpoint != device.endpoint:
        # The new endpoint can only be this browser's: a row that still has it is stale.
        db.session.execute(
            delete(TherapistDevice).where(
                TherapistDevice.endpoint == endpoint, TherapistDevice.id != device.id
            )
        )
    device.endpoint, device.p256dh, device.auth = endpoint, p256dh, auth
    return device


# --- the clinic's devices and what is sent to them -----------------------------------------------


def devices_for_clinic(clinic_id: uuid.UUID) -> list[TherapistDevice]:
    """Every device of the clinic's active therapists: who a clinic-wide alert goes to.

    Each device's `therapist` is loaded with it (the digest is per therapist: group by
    `device.therapist_id`)."""
    return list(
        db.session.scalars(
            select(TherapistDevice)
            .join(TherapistDevice.therapist)
            .options(contains_eager(TherapistDevice.therapist))
            .where(Therapist.clinic_id == clinic_id, Therapist.active.is_(True))
            .order_by(TherapistDevice.therapist_id, TherapistDevice.created_at)
        )
    )


RED = "red"
AMBER = "amber"
ESCALATION = "escalation"  # a red alert nobody acknowledged, to the on-call contact's devices
TEST = "test"  # "Send a test alert" on the on-call page: proves a device is reached
AlertKind = Literal["red", "amber", "escalation", "test"]

# What a tap may open: the therapists' home, the review queue, a visit. The service worker
# (static/sw.js) checks the same, so a wrong URL here would only ever open the home page.
THERAPIST_PATH = re.compile(
    r"^/(?:review)?$|^/visits/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
)
# RFC 8030 Topic: at most 32 characters of the URL-safe base64 alphabet (a UUID's hex fits).
_TOPIC = re.compile(r"^[A-Za-z0-9_-]{1,32}$")

# How long a push service may keep an alert for a device that is off: a red flag still matters
# the next morning; a digest is replaced by the next one within the hour.
ALERT_TTL = {RED: 24 * 3600, AMBER: 3600, ESCALATION: 24 * 3600, TEST: 3600}


def alert_message(
    kind: AlertKind, language: str, *, tag: str, url: str, count: int = 1
) -> webpush.Message:
    """The push message of an alert, in `language`. Neutral by construction: it takes no patient,
    score or symptom, only how many check-ins wait (digest) and where a tap goes.

    `tag`: the alert's id (32 hex characters): a resend replaces the notification shown, and the
    push service keeps only the newest message with it (Topic). `url`: "/", "/review" or
    "/visits/<uuid>" (relative: the service worker opens it on its own origin).
    """
    if not THERAPIST_PATH.match(url):
        raise ValueError(f"not a therapist page a notification may open: {url!r}")
    if not _TOPIC.match(tag):
        raise ValueError("tag must be 1-32 characters of A-Z a-z 0-9 - _ (a UUID's hex)")
    with force_locale(language):
        if kind == RED:
            title = _("A check-in needs attention now")
            body = _("A patient reported a warning sign. Tap to see who, after signing in.")
        elif kind == AMBER:
            title = _("Check-ins to review")
            body = ngettext(
                "%(num)d patient needs a look when you have a moment.",
                "%(num)d patients need a look when you have a moment.",
                count,
            )
        elif kind == ESCALATION:
            title = _("A warning sign is still unanswered")
            body = _("Nobody has acknowledged it yet. Tap to see who, after signing in.")
        elif kind == TEST:
            title = _("Test alert")
            body = _("Alerts reach this device. Nothing needs doing.")
        else:
            raise ValueError(f"unknown alert kind {kind!r}")
    return webpush.Message(
        title=title,
        body=body,
        url=url,
        tag=tag,
        topic=tag,
        ttl=ALERT_TTL[kind],
        # "high" wakes a phone in battery saving at once; a digest can wait for the next wake.
        urgency="high" if kind in (RED, ESCALATION) else "normal",
        audience="therapist",
        lang=language,
    )


def push_to_devices(
    devices: Sequence[TherapistDevice],
    message: webpush.Message | Callable[[str], webpush.Message],
    sender: webpush.PushSender,
    now: datetime,
    *,
    kind: str,
    alert_id: uuid.UUID | None = None,
    audience: str = "therapists",
    pool: ThreadPoolExecutor | None = None,
) -> list[channels.Outcome]:
    """Send `message` to every device at once through the web push channel, then record what
    happened (delivery.outcomes.record): an `alert_notice` row per device (`kind`: "red" or
    "digest", for `alert_id`; `audience`: "therapists", or "on_call" for an escalation),
    `last_success_at = now` for a device that took it, and a device
    whose push service answers 404/410 deleted, with an audit row. Returns one outcome per device,
    in the given order; each outcome's target is (device id, therapist id).

    `message`: one Message for all, or a function of the device's language (`alert_message`
    with its other arguments bound) so each therapist reads it in their own language.
    `sender`: one long-lived `webpush.make_sender(app)` (it keeps the signed VAPID tokens).

    Sends before it writes, so call it with no transaction holding locks (commit first, as the
    reminder worker does). Its writes join the session's transaction and are not committed here.
    """
    channel = webpush.WebPushChannel.from_app(current_app, sender, pool)
    compose = message if callable(message) else (lambda _language: message)
    by_language: dict[str, webpush.Message] = {}
    # Everything needed is read before any network I/O: no ORM object is touched by a thread.
    language_of: dict[tuple[uuid.UUID, uuid.UUID], str] = {}
    clinic_of: dict[uuid.UUID, uuid.UUID] = {}
    targets: list[tuple[tuple[uuid.UUID, uuid.UUID], webpush.Subscriber]] = []
    for device in devices:
        if device.language not in by_language:
            by_language[device.language] = compose(device.language)
        key = (device.id, device.therapist_id)
        language_of[key] = device.language
        clinic_of[device.id] = device.therapist.clinic_id
        targets.append((key, webpush.Subscriber(device.endpoint, device.p256dh, device.auth)))
    outcomes = channel.deliver(targets, lambda key: by_language[language_of[key]])

    gone = record(
        AlertNotice,
        outcomes,
        now,
        lambda o: {
            "clinic_id": clinic_of[o.target[0]],
            "therapist_id": o.target[1],
            "alert_id": alert_id,
            "kind": kind,
            "channel": "push",
            "audience": audience,
            "device_id": o.target[0],
        },
        devices=TherapistDevice,
        device_of=lambda o: o.target[0],
    )
    for outcome in outcomes:
        device_id = outcome.target[0]
        if device_id in gone:
            # The therapist sees on the audit page why the device left their list.
            audit.record(
                "device.remove",
                audit.Actor.system(clinic_of[device_id]),
                ("therapist_device", device_id),
                now=now,
                detail={"reason": "push_service_gone", "status": outcome.status_code},
            )
    return outcomes
