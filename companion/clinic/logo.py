"""The clinic's logo: checked and re-encoded on upload, served to anyone at /logo/<clinic id>.png.

Only PNG and JPEG are accepted, as Pillow identifies them from the bytes (never the file name or
the browser's content type), so SVG (which can carry script), GIF and anything renamed are
refused. The dimensions are checked from the header before any pixel is decoded (a small file can
claim a huge image: a decompression bomb). The pixels are then copied into a fresh image, which
drops every piece of metadata (EXIF with its GPS position and camera, ICC profiles, text chunks),
scaled to fit LOGO_BOX and saved as PNG: the server never serves the uploaded bytes.

The `logo` blueprint is public (patients are not signed in): it is not one of the clinic's
login-required blueprints. A logo's URL carries its version (`v`, from logo_updated_at), so it can
be cached for a year and a new logo is a new URL.
"""

from __future__ import annotations

import io
import uuid
import warnings
from datetime import datetime
from typing import Final

from flask import Blueprint, Response, abort, request, url_for
from PIL import Image, ImageOps, UnidentifiedImageError
from sqlalchemy import select

from companion.extensions import db
from companion.models import Clinic

LOGO_MAX_BYTES: Final = 200 * 1024
# The stored logo fits this box (the header shows it far smaller; a handout prints it sharper).
LOGO_BOX: Final = (512, 512)
# An upload may be larger than the box, but not absurdly: 4096 px a side and 16 million pixels
# (64 MB decoded as RGBA) at most. A decompression bomb claims far more than this in its header.
MAX_SIDE: Final = 4096
MAX_PIXELS: Final = 16_000_000
ACCEPTED_FORMATS: Final = ("PNG", "JPEG")

# Why an upload was refused (the page words each one in the therapist's language).
NO_FILE: Final = "no_file"
TOO_LARGE: Final = "too_large"
NOT_PNG_OR_JPEG: Final = "not_png_or_jpeg"
TOO_MANY_PIXELS: Final = "too_many_pixels"
UNREADABLE: Final = "unreadable"


class LogoRefused(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def reencode(data: bytes) -> bytes:
    """The uploaded image as a clean PNG that fits LOGO_BOX, or LogoRefused."""
    if not data:
        raise LogoRefused(NO_FILE)
    if len(data) > LOGO_MAX_BYTES:
        raise LogoRefused(TOO_LARGE)
    try:
        with warnings.catch_warnings():
            # Pillow only warns below twice its own MAX_IMAGE_PIXELS: make that a refusal too.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=ACCEPTED_FORMATS) as image:
                if image.format not in ACCEPTED_FORMATS:
                    raise LogoRefused(NOT_PNG_OR_JPEG)
                width, height = image.size
                if width > MAX_SIDE or height > MAX_SIDE or width * height > MAX_PIXELS:
                    raise LogoRefused(TOO_MANY_PIXELS)
                image.load()  # decodes now, so a truncated file fails here, inside the try
                return _clean_png(image)
    except UnidentifiedImageError:
        raise LogoRefused(NOT_PNG_OR_JPEG) from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise LogoRefused(TOO_MANY_PIXELS) from None
    except (OSError, SyntaxError, ValueError, EOFError):
        # Truncated or corrupt data: Pillow raises any of these from its decoders.
        raise LogoRefused(UNREADABLE) from None


def _clean_png(image: Image.Image) -> bytes:
    # A phone's JPEG is often stored sideways with an EXIF note to turn it: turn it first, since
    # the note is dropped with the rest of the metadata.
    upright = ImageOps.exif_transpose(image)
    transparent = upright.mode in ("RGBA", "LA", "PA") or (
        upright.mode == "P" and "transparency" in upright.info
    )
    mode = "RGBA" if transparent else "RGB"
    converted = upright.convert(mode)
    converted.thumbnail(LOGO_BOX, Image.Resampling.LANCZOS)
    # Only the pixels travel into the new image: no info dict, so no metadata can be saved.
    clean = Image.frombytes(mode, converted.size, converted.tobytes())
    out = io.BytesIO()
    clean.save(out, format="PNG", optimize=True)
    return out.getvalue()


def set_logo(clinic: Clinic, png: bytes, now: datetime) -> None:
    clinic.logo_png = png
    clinic.logo_updated_at = now


def remove_logo(clinic: Clinic, now: datetime) -> bool:
    """False when there was no logo (nothing to change)."""
    if clinic.logo_png is None:
        return False
    clinic.logo_png = None
    clinic.logo_updated_at = now
    return True


def version(updated_at: datetime | None) -> str:
    """The `v` of a logo's URL: its time of upload in microseconds (two uploads within one second
    still get two URLs)."""
    if updated_at is None:
        return "0"
    return str(int(updated_at.timestamp() * 1_000_000))


# --- serving -------------------------------------------------------------------------------------

bp = Blueprint("logo", __name__)


@bp.app_template_global("clinic_logo_url")
def logo_url(clinic: Clinic) -> str | None:
    """The clinic's logo URL (same origin, versioned), or None when it has none. Templates use the
    clinic_logo macro (templates/_clinic_logo.html)."""
    if clinic.logo_png is None:
        return None
    return url_for("logo.show", clinic_id=clinic.id, v=version(clinic.logo_updated_at))


@bp.get("/logo/<uuid:clinic_id>.png")
def show(clinic_id: uuid.UUID) -> Response:
    row = db.session.execute(
        select(Clinic.logo_png, Clinic.logo_updated_at).where(Clinic.id == clinic_id)
    ).first()
    if row is None or row.logo_png is None:
        abort(404)
    current = version(row.logo_updated_at)
    response = Response(row.logo_png, mimetype="image/png")
    response.set_etag(current)
    if request.args.get("v") == current:
        # This URL names this logo and no other: keep it as long as caches like.
        response.headers["Cache-Control"] = "public, max-age=31536000, immutable"
    else:
        # An old or missing version: the current logo, but ask again next time.
        response.headers["Cache-Control"] = "public, no-cache"
    return response.make_conditional(request)
