"""gunicorn settings from the environment. The access log never shows a patient link's token."""

import ctypes
import os
import re
import signal
import sys

from gunicorn.glogging import Logger

bind = os.environ.get("BIND", f"127.0.0.1:{os.environ.get('PORT', '5000')}")
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
timeout = int(os.environ.get("WEB_TIMEOUT", "30"))
accesslog = "-"
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")

_TOKEN = re.compile(r"/p/[^/?\s\"]+")
# The calendar feed's token is a capability too (companion/channels/calendar.py). Redacted with or
# without its ".ics", so a mistyped feed URL does not leak the token either.
_CALENDAR_TOKEN = re.compile(r"/calendar/[^/?\s\"]+?(\.ics)?(?=[/?\s\"]|$)")


def redact(text: str) -> str:
    """A request line, path or referrer with every capability token replaced."""
    text = _TOKEN.sub("/p/[redacted]", text)
    return _CALENDAR_TOKEN.sub(lambda m: "/calendar/[redacted]" + (m.group(1) or ""), text)


class RedactingLogger(Logger):
    """Patient links are capabilities: scrub them from request lines before they reach the log."""

    def atoms(self, resp, req, environ, request_time):  # type: ignore[no-untyped-def]
        atoms = super().atoms(resp, req, environ, request_time)
        # Every text atom, not only the request line: a custom access_log_format may name the raw
        # URI, path or referrer through the environ atoms ({raw_uri}e, {path_info}e, ...).
        for key, value in list(atoms.items()):
            if isinstance(value, str):
                atoms[key] = redact(value)
        return atoms


logger_class = RedactingLogger

_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def post_fork(server, worker):  # type: ignore[no-untyped-def]
    """A worker stops when its master dies, even by SIGKILL (Linux). Left alone, orphaned workers
    keep the port until a request or their WEB_TIMEOUT/2 wait wakes them: when supervisord
    (`make run`) or systemd started a new master, it could not bind the port for up to 15 s."""
    if sys.platform != "linux":
        return
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM) != 0:
        server.log.warning("prctl(PR_SET_PDEATHSIG) failed: errno %s", ctypes.get_errno())
        return
    # SIGTERM is a worker's graceful stop: the request in hand is finished first.
    if os.getppid() != worker.ppid:  # the master died before prctl took effect
        os.kill(os.getpid(), signal.SIGTERM)
