"""gunicorn settings from the environment. The access log never shows a patient link's token."""

import os
import re

from gunicorn.glogging import Logger

bind = os.environ.get("BIND", f"127.0.0.1:{os.environ.get('PORT', '5000')}")
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
timeout = int(os.environ.get("WEB_TIMEOUT", "30"))
accesslog = "-"
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")

_TOKEN = re.compile(r"/p/[^/?\s\"]+")


class RedactingLogger(Logger):
    """Patient links are capabilities: scrub them from request lines before they reach the log."""

    def atoms(self, resp, req, environ, request_time):  # type: ignore[no-untyped-def]
        atoms = super().atoms(resp, req, environ, request_time)
        for key in ("r", "U", "f"):
            if isinstance(atoms.get(key), str):
                atoms[key] = _TOKEN.sub("/p/[redacted]", atoms[key])
        return atoms


logger_class = RedactingLogger
