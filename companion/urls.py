"""Absolute URLs for what leaves the app (patient links, QR codes, calendar feeds and events)."""

from __future__ import annotations

from typing import Any

from flask import current_app, request, url_for


def public_base() -> str:
    """PUBLIC_URL when set (behind a proxy it is the only trustworthy host), else this request's."""
    return current_app.config.get("PUBLIC_URL") or request.url_root.rstrip("/")


def absolute_url_for(endpoint: str, **values: Any) -> str:
    base = current_app.config.get("PUBLIC_URL")
    if base:
        return base + url_for(endpoint, **values)
    return url_for(endpoint, _external=True, **values)
