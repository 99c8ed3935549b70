"""A local push service for tests and benchmarks: it plays the part of FCM or Mozilla's autopush.

It hands out subscriptions like a browser would (a P-256 key pair and an auth secret per
subscription, an endpoint URL on 127.0.0.1), and for every message it receives it

- checks the VAPID token (RFC 8292): `Authorization: vapid t=<JWT>, k=<key>`, an ES256 signature
  made by that key, `aud` equal to our origin, `exp` in the future and at most 24 h ahead, `sub` a
  mailto: or https: address, and the key equal to the app's public key when one is given;
- decrypts the body as RFC 8291 / RFC 8188 `aes128gcm` with the subscription's private key. The
  decryption is written here from the RFCs with `cryptography`, not with the library the app sends
  with, so a mistake in one is not hidden by the same mistake in the other;
- answers with a status the test chose (201 by default; 410, 500, 429 ... per subscription), after an
  optional simulated latency (a real push service takes tens of milliseconds).
"""

from __future__ import annotations

import base64
import json
import os
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF


def b64url_decode(data: str) -> bytes:
    return base64.urlsafe_b64decode(data + "=" * (-len(data) % 4))


def b64url_encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _hkdf(salt: bytes, ikm: bytes, info: bytes, length: int) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=salt, info=info).derive(ikm)


def decrypt_aes128gcm(body: bytes, private_key: ec.EllipticCurvePrivateKey, auth: bytes) -> bytes:
    """RFC 8291 section 3.4 and RFC 8188 section 2: one record, the sender's key in the header."""
    salt, record_size, id_len = body[:16], int.from_bytes(body[16:20], "big"), body[20]
    sender_public = body[21 : 21 + id_len]
    ciphertext = body[21 + id_len :]
    if id_len != 65 or record_size < 18 or len(ciphertext) > record_size:
        raise ValueError("not a single aes128gcm record with a P-256 key id")
    receiver_public = private_key.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    shared = private_key.exchange(
        ec.ECDH(), ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), sender_public)
    )
    ikm = _hkdf(auth, shared, b"WebPush: info\x00" + receiver_public + sender_public, 32)
    cek = _hkdf(salt, ikm, b"Content-Encoding: aes128gcm\x00", 16)
    nonce = _hkdf(salt, ikm, b"Content-Encoding: nonce\x00", 12)
    padded = AESGCM(cek).decrypt(nonce, ciphertext, None)
    # The last record ends with the delimiter 0x02, then zero or more 0x00 of padding.
    unpadded = padded.rstrip(b"\x00")
    if not unpadded.endswith(b"\x02"):
        raise ValueError("missing last-record delimiter")
    return unpadded[:-1]


class VapidError(Exception):
    pass


def verify_vapid(authorization: str, audience: str, expected_key: str | None) -> dict[str, Any]:
    """RFC 8292: returns the JWT claims, or raises VapidError saying what is wrong."""
    scheme, _, params = authorization.partition(" ")
    if scheme.lower() != "vapid":
        raise VapidError(f"scheme {scheme!r}")
    parts = dict(p.strip().split("=", 1) for p in params.split(",") if "=" in p)
    token, key = parts.get("t", ""), parts.get("k", "")
    if expected_key is not None and key != expected_key:
        raise VapidError("not the app's public key")
    try:
        header_b64, claims_b64, signature_b64 = token.split(".")
        header = json.loads(b64url_decode(header_b64))
        claims = json.loads(b64url_decode(claims_b64))
        signature = b64url_decode(signature_b64)
    except ValueError as exc:
        raise VapidError("malformed JWT") from exc
    if header.get("alg") != "ES256" or len(signature) != 64:
        raise VapidError("not ES256")
    public = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), b64url_decode(key))
    der = encode_dss_signature(
        int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
    )
    try:
        public.verify(der, f"{header_b64}.{claims_b64}".encode(), ec.ECDSA(hashes.SHA256()))
    except InvalidSignature as exc:
        raise VapidError("bad signature") from exc
    if claims.get("aud") != audience:
        raise VapidError(f"aud {claims.get('aud')!r}, expected {audience!r}")
    now = time.time()
    if not now < int(claims.get("exp", 0)) <= now + 24 * 3600:
        raise VapidError("exp not within the next 24 h")
    if not str(claims.get("sub", "")).startswith(("mailto:", "https:")):
        raise VapidError("sub is not a mailto: or https: URI")
    return claims


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # Several workers with many connections each: the default backlog of 5 refuses some of them.
    request_queue_size = 256

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a sender killed mid-request (the fault test) resets its connection: expected


@dataclass
class Subscription:
    id: str
    endpoint: str
    private_key: ec.EllipticCurvePrivateKey
    auth: bytes

    def as_json(self) -> dict[str, Any]:
        """What the browser's `PushSubscription.toJSON()` gives."""
        public = self.private_key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        return {
            "endpoint": self.endpoint,
            "expirationTime": None,
            "keys": {"p256dh": b64url_encode(public), "auth": b64url_encode(self.auth)},
        }


@dataclass
class Received:
    subscription_id: str
    headers: dict[str, str]
    status: int
    payload: dict[str, Any] | None = None
    claims: dict[str, Any] | None = None
    error: str | None = None  # why the message was not valid (bad VAPID, undecryptable)


@dataclass
class PushService:
    """Start with `start()`, stop with `stop()` (or use it as a context manager)."""

    app_public_key: str | None = None
    latency: float = 0.0  # seconds before answering, like a real push service
    decrypt: bool = True  # benchmarks may skip the receiver's own decryption work
    received: list[Received] = field(default_factory=list)
    subscriptions: dict[str, Subscription] = field(default_factory=dict)
    # Statuses to answer, per subscription id, in order; then 201.
    scripted: dict[str, deque[int]] = field(default_factory=dict)
    # Called with the subscription id when a message arrives, before answering (fault tests).
    on_message: Callable[[str], None] | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: ThreadingHTTPServer | None = None
    _arrived: threading.Condition = field(default_factory=threading.Condition)

    @property
    def origin(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def new_subscription(self) -> Subscription:
        sub_id = b64url_encode(os.urandom(12))
        sub = Subscription(
            sub_id,
            f"{self.origin}/push/{sub_id}",
            ec.generate_private_key(ec.SECP256R1()),
            os.urandom(16),
        )
        self.subscriptions[sub_id] = sub
        return sub

    def answer(self, subscription: Subscription, *statuses: int) -> None:
        self.scripted.setdefault(subscription.id, deque()).extend(statuses)

    def wait_for(self, count: int, timeout: float = 10.0) -> None:
        """Block until `count` messages have arrived (a condition, not a sleep)."""
        with self._arrived:
            if not self._arrived.wait_for(lambda: len(self.received) >= count, timeout):
                raise TimeoutError(f"{len(self.received)} of {count} messages arrived")

    def start(self) -> PushService:
        service = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as real push services

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                sub_id = self.path.removeprefix("/push/")
                service._handle(self, sub_id, body)

        self._server = _Server(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> PushService:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _handle(self, handler: BaseHTTPRequestHandler, sub_id: str, body: bytes) -> None:
        headers = {k.lower(): v for k, v in handler.headers.items()}
        sub = self.subscriptions.get(sub_id)
        with self._lock:
            queue = self.scripted.get(sub_id)
            status = queue.popleft() if queue else 201
        if sub is None:
            status = 404
        record = Received(sub_id, headers, status)
        if sub is not None:
            try:
                record.claims = verify_vapid(
                    headers.get("authorization", ""), self.origin, self.app_public_key
                )
                if headers.get("content-encoding") != "aes128gcm":
                    raise ValueError("content-encoding is not aes128gcm")
                if self.decrypt:
                    record.payload = json.loads(decrypt_aes128gcm(body, sub.private_key, sub.auth))
            except (VapidError, ValueError, InvalidTag) as exc:
                record.error = str(exc) or type(exc).__name__
                record.status = status = 401 if isinstance(exc, VapidError) else 400
        # On record before the answer leaves: once a sender has its answer, a test reading
        # `received` sees the message (recording after answering raced with the test's reads).
        with self._arrived:
            self.received.append(record)
            self._arrived.notify_all()
        if self.on_message is not None:
            self.on_message(sub_id)
        if self.latency:
            time.sleep(self.latency)  # the simulated push service's own answer time
        try:
            handler.send_response(status)
            if status == 429:
                handler.send_header("Retry-After", "120")
            handler.send_header("Content-Length", "0")
            if status == 201:
                handler.send_header("Location", f"{self.origin}/message/{os.urandom(6).hex()}")
            handler.end_headers()
        except OSError:
            pass  # the sender is gone (a fault test killed it): the message still arrived
