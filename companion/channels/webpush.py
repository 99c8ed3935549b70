"""The web push channel: one encrypted message (RFC 8291, aes128gcm) to one browser subscription,
signed with our VAPID key (RFC 8292), through pywebpush.

`send` never raises for a push service's answer: it returns a `PushResult` the worker turns into a
delivery row and a decision (done, retry, give up, forget the subscription). Design.md's web push
rules apply: TTL always set, a request timeout, `exc.response is not None` (an error response is
falsy), a fresh claims dict for every signature, no health data in the payload.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Hashable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TypeVar
from urllib.parse import urlsplit

import requests
from flask import Flask
from py_vapid import Vapid02
from pywebpush import WebPushException, webpush

from companion import channels

log = logging.getLogger(__name__)

K = TypeVar("K", bound=Hashable)

# Push services a browser subscription may point at (PUSH_ENDPOINT_ALLOWLIST): anything else
# could be an address inside our own network (SSRF).
LOOPBACK = {"127.0.0.1", "localhost", "::1"}


def host_allowed(host: str, allowlist: Iterable[str]) -> bool:
    host = host.lower().rstrip(".")
    for allowed in allowlist:
        if allowed.startswith("*."):
            if host.endswith(allowed[1:]) and host != allowed[2:]:
                return True
        elif host == allowed:
            return True
    return False


def endpoint_allowed(endpoint: str, allowlist: Iterable[str]) -> bool:
    try:
        parts = urlsplit(endpoint)
        host = parts.hostname or ""
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError:
        return False
    if parts.username or parts.password or not host:
        return False
    allowlist = list(allowlist)
    if parts.scheme == "https":
        return host_allowed(host, allowlist)
    return parts.scheme == "http" and host in LOOPBACK and host in allowlist


# How each answer of a push service is handled (design.md, reminder pipeline step 3). These are
# the codes kept on delivery rows; `KIND` maps each to the channels' shared vocabulary.
ACCEPTED = "accepted"  # 201/202: the push service has it
GONE = "gone"  # 404/410: the subscription is dead; delete it
THROTTLED = "throttled"  # 429: retry, not before Retry-After
ERROR = "error"  # 5xx, timeout, connection refused: retry with backoff
REJECTED = (
    "rejected"  # 401/403 and other 4xx: our fault or config; log loudly, keep the subscription
)
REFUSED = "refused"  # the endpoint is no longer on the allowlist: not contacted at all
KIND = {
    ACCEPTED: channels.ACCEPTED,
    GONE: channels.GONE,
    THROTTLED: channels.RETRY,
    ERROR: channels.RETRY,
    REJECTED: channels.REFUSED,
    REFUSED: channels.REFUSED,
}

# A VAPID token may live up to 24 h (RFC 8292 section 2); we sign for 12 h and renew an hour early.
VAPID_LIFETIME = 12 * 3600
VAPID_RENEW_BEFORE = 3600


@dataclass(frozen=True)
class Message:
    """What the service worker shows: neutral words, a tag, the page to open. Never health data."""

    title: str
    body: str
    url: str
    tag: str  # the reminder id: a resend replaces the shown notification instead of adding one
    topic: str  # Topic header (RFC 8030): the push service keeps only the newest with this topic
    ttl: int  # seconds the push service may hold it for an offline phone
    urgency: str = "normal"
    # Who it is for: the service worker lets a patient's notification open only patient pages, and
    # a therapist's only therapist pages. Patient messages keep their first shape (no "audience"),
    # which the workers already installed on patients' phones read.
    audience: str = "patient"
    lang: str | None = None  # the notification's language, when the worker cannot tell it itself

    def payload(self) -> str:
        data = {"title": self.title, "body": self.body, "url": self.url, "tag": self.tag}
        if self.audience != "patient":
            data["audience"] = self.audience
        if self.lang is not None:
            data["lang"] = self.lang
        return json.dumps(data, ensure_ascii=False, separators=(",", ":"))


@dataclass(frozen=True)
class Subscriber:
    endpoint: str
    p256dh: str
    auth: str


@dataclass(frozen=True)
class PushResult:
    outcome: str
    status_code: int | None = None
    retry_after: float | None = None  # seconds, from a 429 or 503
    detail: str | None = None


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    from email.utils import parsedate_to_datetime

    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def classify(status: int, retry_after: str | None = None) -> PushResult:
    if status in (200, 201, 202):
        return PushResult(ACCEPTED, status)
    if status in (404, 410):
        return PushResult(GONE, status, detail="the browser unsubscribed")
    if status == 429:
        return PushResult(THROTTLED, status, _retry_after(retry_after), "push service throttled")
    if status >= 500:
        return PushResult(ERROR, status, _retry_after(retry_after), "push service error")
    return PushResult(REJECTED, status, detail="push service refused the message")


class PushSender:
    """Sends with one VAPID identity. Thread-safe: the worker sends from a pool of threads."""

    def __init__(self, private_pem: str, subject: str, timeout: float = 10.0) -> None:
        self._vapid = Vapid02.from_pem(private_pem.encode("ascii"))
        self._subject = subject
        self.timeout = timeout
        self._local = threading.local()
        self._lock = threading.Lock()
        self._tokens: dict[str, tuple[float, dict[str, str]]] = {}

    def _session(self) -> requests.Session:
        # One keep-alive session per sending thread: requests' Session is not thread-safe.
        session = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            # A push service answers, it never redirects: following a 3xx would let a response
            # send us to a host the allowlist never saw.
            session.max_redirects = 0
            self._local.session = session
        return session

    def _vapid_headers(self, endpoint: str) -> dict[str, str]:
        """The Authorization header for a push service origin, signed once and reused until near
        its expiry: signing is the costly part of a small message."""
        parts = urlsplit(endpoint)
        audience = f"{parts.scheme}://{parts.netloc}"
        now = time.time()
        with self._lock:
            cached = self._tokens.get(audience)
            if cached is not None and cached[0] - VAPID_RENEW_BEFORE > now:
                return dict(cached[1])
            expires = int(now) + VAPID_LIFETIME
            # A fresh dict for every signature (the library may write into the one it is given).
            claims = {"sub": self._subject, "aud": audience, "exp": expires}
            headers = self._vapid.sign(claims)
            self._tokens[audience] = (expires, headers)
            return dict(headers)

    def send(self, subscriber: Subscriber, message: Message) -> PushResult:
        headers = self._vapid_headers(subscriber.endpoint)
        headers["Urgency"] = message.urgency
        headers["Topic"] = message.topic
        try:
            response = webpush(
                {
                    "endpoint": subscriber.endpoint,
                    "keys": {"p256dh": subscriber.p256dh, "auth": subscriber.auth},
                },
                data=message.payload(),
                ttl=message.ttl,
                timeout=self.timeout,
                headers=headers,
                content_encoding="aes128gcm",
                requests_session=self._session(),
            )
        except WebPushException as exc:
            # An error status comes back as a falsy Response: test against None (design.md).
            if exc.response is not None and getattr(exc.response, "status_code", None):
                return classify(exc.response.status_code, exc.response.headers.get("Retry-After"))
            return PushResult(ERROR, detail="could not encrypt or send")
        except requests.TooManyRedirects:
            return PushResult(REJECTED, detail="push service redirected")
        except requests.Timeout:
            return PushResult(ERROR, detail="push service timed out")
        except requests.RequestException:
            return PushResult(ERROR, detail="push service unreachable")
        except Exception:
            # A key that is not a point on the curve, say: retrying cannot help.
            log.exception("could not encrypt a reminder for a subscription")
            return PushResult(REJECTED, detail="could not encrypt for this device")
        status = getattr(response, "status_code", 0)
        return classify(status, response.headers.get("Retry-After"))


def send_many(
    work: Sequence[tuple[K, Subscriber, Message]],
    sender: PushSender,
    allowlist: Iterable[str],
    concurrency: int,
    deadline: float | None = None,
    pool: ThreadPoolExecutor | None = None,
) -> list[tuple[K, PushResult]]:
    """Send each (key, subscriber, message), `concurrency` at a time; results in the same order.

    No database here: callers read what they need first and record the results afterwards (the
    reminder worker, the therapists' alerts). An endpoint no longer on the allowlist is never
    contacted (it may have been stored under a wider one: SSRF).
    `deadline` (a `time.monotonic()` value): messages not started by then are not sent but come
    back as errors to retry, so a batch never outlives its lease when push services are slow.
    `pool`: the caller's sending threads (each keeps its keep-alive connections); without one, a
    pool lives for this call only.
    """
    allowed = list(allowlist)

    def one(item: tuple[K, Subscriber, Message]) -> tuple[K, PushResult]:
        key, subscriber, message = item
        if deadline is not None and time.monotonic() > deadline:
            return key, PushResult(ERROR, detail="not tried before the lease ran out")
        if not endpoint_allowed(subscriber.endpoint, allowed):
            return key, PushResult(REFUSED, detail="endpoint not on the allowlist")
        return key, sender.send(subscriber, message)

    if not work:
        return []
    if pool is None:
        with ThreadPoolExecutor(max_workers=max(1, min(concurrency, len(work)))) as own:
            return list(own.map(one, work))
    return list(pool.map(one, work))


def make_sender(app: Flask) -> PushSender:
    return PushSender(
        app.config["VAPID_PRIVATE_KEY"],
        app.config["VAPID_SUBJECT"],
        timeout=app.config["PUSH_TIMEOUT_SECONDS"],
    )


class WebPushChannel:
    """The web push channel: one VAPID identity, the allowlist, how many messages in flight."""

    name = "webpush"

    def __init__(
        self,
        sender: PushSender,
        allowlist: Iterable[str],
        concurrency: int,
        pool: ThreadPoolExecutor | None = None,
    ) -> None:
        self.sender = sender
        self.allowlist = list(allowlist)
        self.concurrency = concurrency
        self.pool = pool  # the caller's threads, kept between calls with their connections

    @classmethod
    def from_app(
        cls, app: Flask, sender: PushSender | None = None, pool: ThreadPoolExecutor | None = None
    ) -> WebPushChannel:
        return cls(
            sender or make_sender(app),
            app.config["PUSH_ENDPOINT_ALLOWLIST"],
            app.config["PUSH_CONCURRENCY"],
            pool,
        )

    def deliver(
        self,
        targets: Sequence[tuple[K, Subscriber]],
        message: Message | Callable[[K], Message],
        deadline: float | None = None,
    ) -> list[channels.Outcome]:
        """Send `message` (or `message(key)`) to every subscriber at once; one outcome each, in
        order. `deadline` as in `send_many`: what is not started by then comes back to retry."""
        compose = message if callable(message) else (lambda _key: message)
        work = [(key, subscriber, compose(key)) for key, subscriber in targets]
        return [
            channels.Outcome(
                key,
                KIND[result.outcome],
                result.outcome,
                result.status_code,
                result.retry_after,
                result.detail,
            )
            for key, result in send_many(
                work, self.sender, self.allowlist, self.concurrency, deadline, self.pool
            )
        ]
