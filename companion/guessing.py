"""Per-address throttles on failed capability tokens (issue 14, finding 10): calendar feed tokens,
clinic API keys, patient links (/p/<token>) and patient cookies.

Only failures count. A clinic system making many good API calls from one address, or a calendar
provider polling its feeds, adds nothing; an address that sends too many bad tokens is refused
(429 with Retry-After) before its next token is even looked at, so guessing is bounded however
fast the guesser is. Counted in the limiter's store (RATELIMIT_STORAGE_URI), like the wrong
passwords per account (companion.auth): with Redis the count holds across every worker and host.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import NoReturn

from flask import Response, abort, current_app, render_template
from flask_babel import ngettext
from flask_limiter.util import get_remote_address
from limits import RateLimitItem, parse_many

from companion.errors import APIError, wants_json
from companion.extensions import limiter


@dataclass(frozen=True)
class Throttle:
    """A count of failures in the limiter's store, under a limit setting. Per client address by
    default; per account when the caller names a `subject` (wrong passwords and codes,
    companion.auth: a hash or an id, never an address, so the store holds no personal data)."""

    name: str  # the limiter key's own namespace
    setting: str  # the config key holding the limit ("10 per 15 minutes")

    def _on(self) -> bool:
        return bool(current_app.config["RATELIMIT_ENABLED"])

    def _limits(self) -> list[RateLimitItem]:
        return parse_many(current_app.config[self.setting])

    def _key(self, subject: str | None) -> tuple[str, str, str]:
        # Without a subject, the client's address as the limiter sees it (PROXY_COUNT decides
        # which hop that is).
        prefix = current_app.config.get("RATELIMIT_KEY_PREFIX", "")
        return prefix, self.name, subject if subject is not None else get_remote_address()

    def wait(self, subject: str | None = None) -> int | None:
        """Seconds before the next attempt may be tried, or None when it may be tried now."""
        if not self._on():
            return None
        key = self._key(subject)
        over = [item for item in self._limits() if not limiter.limiter.test(item, *key)]
        if not over:
            return None
        reset = max(limiter.limiter.get_window_stats(item, *key).reset_time for item in over)
        return max(1, math.ceil(reset - time.time()))

    def failed(self, subject: str | None = None) -> None:
        """Count one failure (a bad token from this address, a wrong password for an account)."""
        if self._on():
            key = self._key(subject)
            for item in self._limits():
                limiter.limiter.hit(item, *key)

    def forget(self, subject: str | None = None) -> None:
        """Clear the count: its owner just proved who they are."""
        if self._on():
            key = self._key(subject)
            for item in self._limits():
                limiter.limiter.clear(item, *key)


CALENDAR_TOKEN = Throttle("bad-calendar-token", "CALENDAR_TOKEN_FAILURE_LIMIT")
API_KEY = Throttle("bad-api-key", "API_KEY_FAILURE_LIMIT")
# Links and cookies share one setting but keep separate counts: someone tapping an old link again
# and again does not hold back the check-ins of a patient behind the same address.
PATIENT_LINK = Throttle("bad-patient-link", "PATIENT_LINK_FAILURE_LIMIT")
PATIENT_COOKIE = Throttle("bad-patient-cookie", "PATIENT_LINK_FAILURE_LIMIT")


def refuse(retry_after: int) -> NoReturn:
    """429 with Retry-After: a JSON error on the API, the error page in the reader's language."""
    headers = {"Retry-After": str(retry_after)}
    if wants_json():
        raise APIError(
            429,
            "too_many_failures",
            "Too many requests with a missing or bad credential came from this address. Wait "
            "Retry-After seconds, then try again.",
            headers=headers,
        )
    minutes = math.ceil(retry_after / 60)
    message = ngettext(
        "Too many attempts. Please wait %(num)d minute and try again.",
        "Too many attempts. Please wait %(num)d minutes and try again.",
        minutes,
    )
    page = render_template("error.html", code=429, message=message)
    abort(Response(page, status=429, headers=headers, mimetype="text/html"))
