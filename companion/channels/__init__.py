"""Delivery channels: one module per transport (webpush, email) behind one interface.

Each channel has `deliver(targets, message) -> list[Outcome]`: `targets` are (key, address) pairs
of the caller's choosing, `message` one message for all or a function of the key (each therapist
in their own language, each reminder its own words). Every target gets one `Outcome`, in order,
and a channel never raises for what a remote server answers. The caller branches on one
vocabulary, `Outcome.kind`:

- ACCEPTED: the service took it;
- GONE: the address is dead for good (a push subscription the browser dropped): forget it;
- RETRY: a passing failure (5xx, 429, a timeout, a relay down): try again, not before `retry_after`;
- REFUSED: it will not work as it is (our key or payload refused, an endpoint off the allowlist).

`Outcome.code` is the channel's own word for the same answer ("throttled", "error", "sent", ...),
kept on the delivery rows as they always were. Channels never import the domain (make lint).
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass
from typing import Final

ACCEPTED: Final = "accepted"
GONE: Final = "gone"
RETRY: Final = "retry"
REFUSED: Final = "refused"


@dataclass(frozen=True)
class Outcome:
    target: Hashable  # the caller's key for the target it was given
    kind: str  # ACCEPTED, GONE, RETRY or REFUSED
    code: str  # the channel's own word, for the delivery record
    status_code: int | None = None  # the remote service's answer, where there was one
    retry_after: float | None = None  # seconds the service asked us to wait (429, 503)
    detail: str | None = None  # why, in a few words of ours (never a server's own text)
