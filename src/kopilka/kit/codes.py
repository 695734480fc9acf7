"""Codes people read out and type in: coupon codes, gift card numbers, reward keys.

A pattern says what a code looks like: every ``#`` is a random character of the charset,
everything else is kept as written (``CAFE-####-####``). The default charset leaves out
characters that are easily confused when read aloud or from a receipt (0/O, 1/I/L).
Randomness comes from :mod:`secrets`: a code must not be guessable from the ones before it.
"""

import io
import secrets
from collections.abc import Iterable

import segno

from kopilka.errors import InvalidInput

UNAMBIGUOUS = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
# What a code may be made of: safe in a URL path, on a receipt and read aloud.
CODE_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")
PLACEHOLDER = "#"
# A pattern must leave far more possible codes than are in use, so that guessing one at
# random almost never hits: at most one in SPARSENESS of the possible codes is handed out.
SPARSENESS = 1000
MAX_CODE_LENGTH = 100


def normalise_code(code: str) -> str:
    """The form codes are stored and looked up in: no surrounding blanks, upper case."""
    return code.strip().upper()


def is_code(text: str) -> bool:
    """Whether ``text`` (normalised) is made of the characters codes may have."""
    return 0 < len(text) <= MAX_CODE_LENGTH and set(text) <= CODE_CHARS


def check_pattern(pattern: str, charset: str = UNAMBIGUOUS, *, field: str = "pattern") -> int:
    """The number of random places in ``pattern``; bad patterns are an :class:`InvalidInput`."""
    places = pattern.count(PLACEHOLDER)
    if places < 4:
        raise InvalidInput(
            f"pattern {pattern!r} needs at least 4 random places ('{PLACEHOLDER}')", field=field
        )
    if len(pattern) > MAX_CODE_LENGTH:
        raise InvalidInput(f"pattern is longer than {MAX_CODE_LENGTH} characters", field=field)
    if pattern != normalise_code(pattern):
        raise InvalidInput("pattern must be upper case without surrounding blanks", field=field)
    if len(set(charset)) != len(charset) or len(charset) < 2 or PLACEHOLDER in charset:
        raise InvalidInput("charset needs at least 2 distinct characters, no '#'", field=field)
    if not set(charset) <= CODE_CHARS or not set(pattern.replace(PLACEHOLDER, "")) <= CODE_CHARS:
        # Codes are looked up in upper case and travel in URL paths: any other character
        # would make a code that can never be found again.
        raise InvalidInput(
            "pattern and charset may use upper-case letters, digits, '.', '_' and '-' only",
            field=field,
        )
    return places


def capacity(pattern: str, charset: str = UNAMBIGUOUS) -> int:
    """How many codes ``pattern`` can hand out and stay hard to guess."""
    return int(len(charset) ** pattern.count(PLACEHOLDER)) // SPARSENESS


def generate_codes(
    pattern: str,
    count: int,
    *,
    charset: str = UNAMBIGUOUS,
    taken: Iterable[str] = (),
    in_use: int = 0,
    field: str = "pattern",
) -> list[str]:
    """``count`` distinct new codes of ``pattern`` none of which is in ``taken``.

    Raises :class:`InvalidInput` when the pattern is too small for that many codes next to
    ``in_use`` codes of the same pattern already handed out.
    """
    places = check_pattern(pattern, charset, field=field)
    taken_set = set(taken)
    wanted = count + max(len(taken_set), in_use)
    if wanted > capacity(pattern, charset):
        raise InvalidInput(
            f"pattern {pattern!r} is too short for {wanted} hard-to-guess codes: add random places",
            field=field,
        )
    pieces = pattern.split(PLACEHOLDER)
    made: set[str] = set()
    codes: list[str] = []
    while len(codes) < count:
        for chars in _random_strings(places, count - len(codes), charset):
            code = pieces[0] + "".join(c + p for c, p in zip(chars, pieces[1:], strict=True))
            if code not in made and code not in taken_set:
                made.add(code)
                codes.append(code)
    return codes


def _random_strings(length: int, count: int, charset: str) -> list[str]:
    """``count`` random strings: bytes from :func:`secrets.token_bytes`, rejection-sampled
    so that every character of ``charset`` is equally likely (no modulo bias)."""
    size = len(charset)
    if size > 256:
        return ["".join(secrets.choice(charset) for _ in range(length)) for _ in range(count)]
    limit = 256 - 256 % size
    needed = length * count
    chars: list[str] = []
    while len(chars) < needed:
        chunk = secrets.token_bytes((needed - len(chars)) * 256 // limit + 16)
        chars.extend(charset[b % size] for b in chunk if b < limit)
    del chars[needed:]
    return ["".join(chars[i : i + length]) for i in range(0, needed, length)]


def like_pattern(pattern: str) -> str:
    """A SQL ``LIKE`` pattern (escape character ``\\``) matching every code of ``pattern``."""
    escaped = pattern.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped.replace(PLACEHOLDER, "_")


def qr_svg(text: str, *, scale: int = 4) -> str:
    """A QR code of ``text`` as a standalone SVG document (for the member app and the till)."""
    buffer = io.BytesIO()
    segno.make(text, error="m").save(buffer, kind="svg", scale=scale, border=2, xmldecl=False)
    return buffer.getvalue().decode()
