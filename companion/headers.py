"""Security headers on every response (design.md, security profile)."""

from __future__ import annotations

from flask import Flask, Response, request

from companion.pwa import asset_version

# No inline script or style anywhere: everything comes from our own origin.
CSP = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "manifest-src 'self'",
        "worker-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)


# Endpoints whose URL holds a capability token (patient link, calendar feed).
TOKEN_IN_URL = frozenset({"auth.redeem", "calendar.feed"})


def init_app(app: Flask) -> None:
    @app.after_request
    def set_security_headers(response: Response) -> Response:
        response.headers.setdefault("Content-Security-Policy", CSP)
        # Our own pages send their address to our own origin only, and to nobody else. Not
        # "no-referrer" everywhere: Flask-WTF refuses every form posted over HTTPS without a
        # Referer (WTF_CSRF_SSL_STRICT), so sign-in and every form would fail in production. A page
        # whose URL carries a token keeps "no-referrer": its address never travels, not even to us.
        response.headers["Referrer-Policy"] = (
            "no-referrer" if request.endpoint in TOKEN_IN_URL else "same-origin"
        )
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["Cross-Origin-Opener-Policy"] = "same-origin"
        response.headers["Permissions-Policy"] = "camera=(), microphone=(), geolocation=()"
        if app.config.get("SESSION_COOKIE_SECURE"):
            response.headers["Strict-Transport-Security"] = "max-age=31536000"
        # Health data must not sit in shared or browser caches: only static files may be cached.
        # A versioned static URL (companion/pwa.py) never changes content, so it may be kept a year.
        if request.endpoint == "static":
            filename = (request.view_args or {}).get("filename", "")
            version = request.args.get("v")
            if version and version == asset_version(filename) and response.status_code == 200:
                response.headers["Cache-Control"] = "public, max-age=31536000, immutable"
        elif "Cache-Control" not in response.headers:
            response.headers["Cache-Control"] = "no-store"
        return response
