"""Pure parts of wallet passes: the PNG writer, the tags of Apple's web service, the
authentication token, pass.json."""

import struct
import zlib
from datetime import UTC, datetime

from kopilka.wallet.domain import (
    AppleLook,
    CardData,
    authentication_token,
    moment_of,
    pass_json,
    pass_strings,
    rgb,
    tag_of,
    token_matches,
)
from kopilka.wallet.png import PNG_SIGNATURE, coin, pass_images


def read_png(data: bytes) -> tuple[int, int, list[bytes]]:
    """Width, height and rows (filter byte dropped) of a PNG, every chunk's CRC checked."""
    assert data.startswith(PNG_SIGNATURE)
    at, chunks = len(PNG_SIGNATURE), {}
    while at < len(data):
        (length,) = struct.unpack(">I", data[at : at + 4])
        kind, body = data[at + 4 : at + 8], data[at + 8 : at + 8 + length]
        (crc,) = struct.unpack(">I", data[at + 8 + length : at + 12 + length])
        assert zlib.crc32(kind + body) & 0xFFFFFFFF == crc, kind
        chunks[kind] = body
        at += 12 + length
    width, height, depth, colour_type = struct.unpack(">IIBB", chunks[b"IHDR"][:10])
    assert (depth, colour_type) == (8, 6) and b"IEND" in chunks
    raw = zlib.decompress(chunks[b"IDAT"])
    stride = 1 + width * 4
    rows = [raw[i * stride + 1 : (i + 1) * stride] for i in range(height)]
    assert all(raw[i * stride] == 0 for i in range(height))
    return width, height, rows


def test_the_images_are_pngs_of_their_size_with_the_coin_in_the_middle() -> None:
    images = pass_images("#ffffff", "#0f6b5c")
    assert {name: read_png(data)[:2] for name, data in images.items()} == {
        "icon.png": (29, 29),
        "icon@2x.png": (58, 58),
        "logo.png": (50, 50),
        "logo@2x.png": (100, 100),
    }
    _, _, rows = read_png(coin(29, (255, 255, 255), (15, 107, 92)))
    assert rows[0][:4] == bytes((15, 107, 92, 255))  # the corner: background
    assert rows[14][14 * 4 : 15 * 4] == bytes((255, 255, 255, 255))  # the centre: the coin
    _, _, clear = read_png(coin(50, (255, 255, 255), None))
    assert clear[0][3] == 0  # the logo's corner is transparent


def test_a_tag_names_its_instant_to_the_microsecond() -> None:
    moment = datetime(2031, 6, 15, 12, 0, 0, 123456, tzinfo=UTC)
    assert moment_of(tag_of(moment)) == moment
    assert moment_of(None) is None and moment_of("yesterday") is None
    assert moment_of("9" * 18) is None  # past the year 9999


def test_the_token_is_the_serial_s_under_the_program_s_secret() -> None:
    token = authentication_token("secret", "serial-1")
    assert len(token) >= 16 and token_matches("secret", "serial-1", token)
    assert not token_matches("other", "serial-1", token)
    assert not token_matches("secret", "serial-2", token)


def test_pass_json_leaves_out_what_the_member_lacks() -> None:
    look = AppleLook("pass.a.b", "ABCDEFGHIJ", "Org", "Card", None, "#000000", "#ffffff", "#ff0000")
    card = CardData("s", "Club", "7700000000000001", None, 12, None)
    document = pass_json(look, card, "https://club.example", "t" * 20)
    assert document["storeCard"]["secondaryFields"] == []
    assert document["logoText"] == "Club" and rgb("#ff0000") == "rgb(255, 0, 0)"
    assert document["labelColor"] == "rgb(255, 0, 0)"
    assert '"Points" = "Баллы";' in pass_strings("ru").decode()
