"""Draw the app icons (PNG) with the standard library only, so no image package is needed.

Run `python tools/make_icons.py` after changing the design; the PNGs are committed. The mark is a
white ring around a dot (a trigger point) on the brand colour. Maskable icons keep the mark inside
the central 80% safe zone, because launchers crop them to circles or rounded squares. The
notification badge is the mark alone on transparency: Android draws badges from their alpha only.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

BRAND = (15, 95, 116)  # --brand in static/css/app.css
WHITE = (255, 255, 255)
OUT = Path(__file__).resolve().parent.parent / "static" / "icons"


def _png(size: int, pixels: list[bytes], colour_type: int = 2) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    raw = b"".join(b"\x00" + row for row in pixels)
    header = struct.pack(">IIBBBBB", size, size, 8, colour_type, 0, 0, 0)  # 2: RGB, 6: RGBA
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw, 9))
        + chunk(b"IEND", b"")
    )


def draw(size: int, mark_scale: float, transparent: bool = False) -> bytes:
    """mark_scale: the ring's outer radius as a share of half the icon."""
    centre = (size - 1) / 2
    outer = size / 2 * mark_scale
    inner = outer * 0.72
    dot = outer * 0.34
    rows = []
    for y in range(size):
        row = bytearray()
        for x in range(size):
            d = ((x - centre) ** 2 + (y - centre) ** 2) ** 0.5
            white = inner <= d <= outer or d <= dot
            if transparent:
                row.extend((*WHITE, 255) if white else (0, 0, 0, 0))
            else:
                row.extend(WHITE if white else BRAND)
        rows.append(bytes(row))
    return _png(size, rows, 6 if transparent else 2)


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for name, size, scale in [
        ("icon-192.png", 192, 0.78),
        ("icon-512.png", 512, 0.78),
        ("maskable-512.png", 512, 0.56),
        ("apple-touch-icon.png", 180, 0.66),
        ("favicon-32.png", 32, 0.9),
    ]:
        (OUT / name).write_bytes(draw(size, scale))
        print(name)
    (OUT / "badge-96.png").write_bytes(draw(96, 0.9, transparent=True))
    print("badge-96.png")


if __name__ == "__main__":
    main()
