"""The pass's images, drawn here: a coin on the program's colours, written as PNG files by a
few lines of ``zlib`` and ``struct`` (no imaging library). Apple requires an icon; the logo
sits on the pass's top left."""

import struct
import zlib

Colour = tuple[int, int, int]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
RGBA = 6  # PNG colour type: red, green, blue, alpha, 8 bits each


def colour_of(hex_colour: str) -> Colour:
    """``#0f6b5c`` → (15, 107, 92)."""
    return (int(hex_colour[1:3], 16), int(hex_colour[3:5], 16), int(hex_colour[5:7], 16))


def png(width: int, height: int, pixels: list[list[tuple[int, int, int, int]]]) -> bytes:
    """A PNG of RGBA ``pixels`` (rows top to bottom), every row with filter 0 (none)."""
    raw = b"".join(b"\x00" + b"".join(bytes(p) for p in row) for row in pixels)
    header = struct.pack(">IIBBBBB", width, height, 8, RGBA, 0, 0, 0)
    return (
        PNG_SIGNATURE
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(raw, 9))
        + _chunk(b"IEND", b"")
    )


def _chunk(kind: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(kind + data) & 0xFFFFFFFF
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)


def coin(size: int, coin_colour: Colour, background: Colour | None) -> bytes:
    """A square image of ``size`` pixels: a coin (a disc with a ring inside it) of
    ``coin_colour`` on ``background`` (None: transparent)."""
    centre = (size - 1) / 2
    outer = size * 0.42
    ring_out, ring_in = size * 0.30, size * 0.24
    paper = (*background, 255) if background else (0, 0, 0, 0)
    ink = (*coin_colour, 255)
    hole = paper if background else (0, 0, 0, 0)
    rows = []
    for y in range(size):
        row = []
        for x in range(size):
            distance = ((x - centre) ** 2 + (y - centre) ** 2) ** 0.5
            if distance > outer:
                row.append(paper)
            elif ring_in < distance <= ring_out:
                row.append(hole)
            else:
                row.append(ink)
        rows.append(row)
    return png(size, size, rows)


def pass_images(foreground: str, background: str) -> dict[str, bytes]:
    """The pass's images by file name: the icon (opaque, shown with notifications) and
    the logo (transparent, on the pass), each at 1× and 2×."""
    ink, paper = colour_of(foreground), colour_of(background)
    return {
        "icon.png": coin(29, ink, paper),
        "icon@2x.png": coin(58, ink, paper),
        "logo.png": coin(50, ink, None),
        "logo@2x.png": coin(100, ink, None),
    }
