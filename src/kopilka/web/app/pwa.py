"""What makes the members' app installable and its card available offline: the web app
manifest, the icons (PNG images drawn here, by a small PNG writer, once per process) and the
service worker (``static/app-sw.js`` with the app's scope filled in), per program.

The worker keeps the card page and the assets it uses, so that the card's QR code shows at
the till without a connection; it keeps nothing of other pages and forgets the card when the
member signs out (see the worker's own comments).
"""

import json
import math
import struct
import zlib
from collections.abc import Callable
from functools import cache

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from kopilka.web.app.access import cookie_path, program_of
from kopilka.web.rendering import STATIC_DIR, static_url

router = APIRouter(prefix="/app", include_in_schema=False)

ICON_SIZES = (192, 512)
THEME_COLOUR = "#0f6b5c"
BACKGROUND_COLOUR = "#f3f5f8"
SCOPE_PLACEHOLDER = '"__KOPILKA_SCOPE__"'
WORKER_FILE = "app-sw.js"

RGB = tuple[int, int, int]
BRAND: RGB = (15, 107, 92)
GOLD: RGB = (244, 197, 66)
GOLD_DARK: RGB = (214, 160, 28)
WHITE: RGB = (255, 255, 255)


# --- routes ------------------------------------------------------------------------------


@router.get("/{slug}/manifest.webmanifest")
async def manifest(request: Request, slug: str) -> Response:
    """The web app manifest: the app's name, where it starts and what it covers, its
    colours and icons (what a browser needs to offer "Add to Home screen")."""
    program = await program_of(request, slug)
    scope = cookie_path(slug)
    document = {
        "name": program.name,
        "short_name": short_name(program.name),
        "id": scope,
        "start_url": scope,
        "scope": scope,
        "display": "standalone",
        "orientation": "portrait",
        "theme_color": THEME_COLOUR,
        "background_color": BACKGROUND_COLOUR,
        "icons": [
            *(
                {
                    "src": f"{scope}icon-{size}.png",
                    "sizes": f"{size}x{size}",
                    "type": "image/png",
                    "purpose": "any",
                }
                for size in ICON_SIZES
            ),
            {
                "src": static_url("icons/kopilka.svg"),
                "sizes": "any",
                "type": "image/svg+xml",
                "purpose": "any",
            },
        ],
    }
    return Response(
        json.dumps(document, ensure_ascii=False),
        media_type="application/manifest+json",
        headers={"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"},
    )


@router.get("/{slug}/icon-{size}.png")
async def icon(request: Request, slug: str, size: int) -> Response:
    """The app's icon, 192 or 512 pixels square."""
    await program_of(request, slug)
    if size not in ICON_SIZES:
        return Response(status_code=404)
    # Drawn once per process (under a second for the large one), off the event loop.
    return Response(
        await run_in_threadpool(icon_png, size),
        media_type="image/png",
        headers={"Cache-Control": "public, max-age=86400", "X-Content-Type-Options": "nosniff"},
    )


@router.get("/{slug}/sw.js")
async def service_worker(request: Request, slug: str) -> Response:
    """The app's service worker, its scope the program's app."""
    await program_of(request, slug)
    scope = cookie_path(slug)
    return Response(
        worker_source().replace(SCOPE_PLACEHOLDER, json.dumps(scope)),
        media_type="text/javascript",
        headers={
            "Service-Worker-Allowed": scope,
            # Browsers look for a new worker on every visit; never an old one from a cache.
            "Cache-Control": "no-cache",
            "X-Content-Type-Options": "nosniff",
        },
    )


def short_name(name: str) -> str:
    """A name short enough for a home screen: the first word(s), at most 12 characters."""
    if len(name) <= 12:
        return name
    words = name.split()
    short = ""
    for word in words:
        if len(short) + len(word) + (1 if short else 0) > 12:
            break
        short = f"{short} {word}".strip()
    return short or name[:12]


@cache
def worker_source() -> str:
    return (STATIC_DIR / WORKER_FILE).read_text(encoding="utf-8")


# --- the icons: a rounded square with a coin, drawn pixel by pixel -----------------------


def png(width: int, height: int, rows: list[bytes]) -> bytes:
    """A PNG image of 8-bit RGBA ``rows`` (each ``width * 4`` bytes)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data))
            + kind
            + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)  # 8 bits, RGBA
    raw = b"".join(b"\x00" + row for row in rows)  # filter type 0 (none) on every row
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw, 9))
        + chunk(b"IEND", b"")
    )


# A shape is its signed distance (pixels, negative inside) at a point, and its bounds.
Distance = Callable[[float, float], float]


def _rounded_rect(cx: float, cy: float, hx: float, hy: float, r: float) -> Distance:
    def distance(x: float, y: float) -> float:
        qx, qy = abs(x - cx) - (hx - r), abs(y - cy) - (hy - r)
        outside = math.hypot(max(qx, 0.0), max(qy, 0.0))
        return outside + min(max(qx, qy), 0.0) - r

    return distance


def _circle(cx: float, cy: float, r: float) -> Distance:
    return lambda x, y: math.hypot(x - cx, y - cy) - r


def _paint(
    pixels: list[list[float]],
    size: int,
    shape: Distance,
    bounds: tuple[float, float, float, float],
    colour: RGB,
) -> None:
    """Paint ``shape`` over ``pixels`` (RGBA floats), its edge smoothed over one pixel."""
    left, top, right, bottom = bounds
    for y in range(max(0, int(top) - 1), min(size, int(bottom) + 2)):
        row = pixels[y]
        for x in range(max(0, int(left) - 1), min(size, int(right) + 2)):
            cover = min(max(0.5 - shape(x + 0.5, y + 0.5), 0.0), 1.0)
            if cover <= 0.0:
                continue
            i = x * 4
            under = row[i + 3] * (1.0 - cover)
            alpha = cover + under
            for c in range(3):
                row[i + c] = (colour[c] * cover + row[i + c] * under) / alpha
            row[i + 3] = alpha


@cache
def icon_png(size: int) -> bytes:
    """The brand mark at ``size`` pixels: a green rounded square, a gold coin with its rim,
    and a piggy bank's slot above it (as ``static/icons/kopilka.svg``)."""
    s = float(size)
    pixels = [[0.0] * (size * 4) for _ in range(size)]
    half = s / 2
    _paint(pixels, size, _rounded_rect(half, half, half, half, s * 0.22), (0, 0, s, s), BRAND)
    cx, cy, r = half, s * 0.54, s * 0.28
    coin = (cx - r, cy - r, cx + r, cy + r)
    _paint(pixels, size, _circle(cx, cy, r), coin, GOLD_DARK)
    _paint(pixels, size, _circle(cx, cy, r * 0.82), coin, GOLD)
    slot = (s * 0.36, s * 0.17, s * 0.64, s * 0.23)
    _paint(
        pixels,
        size,
        _rounded_rect(half, s * 0.20, s * 0.14, s * 0.03, s * 0.03),
        slot,
        WHITE,
    )
    rows = [bytes(round(v if i % 4 < 3 else v * 255) for i, v in enumerate(row)) for row in pixels]
    return png(size, size, rows)
