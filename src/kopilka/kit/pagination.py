"""Opaque keyset cursors, one codec for every list: the key of the last item a page showed
(``created_at`` and id, a sequence number, a key), as URL-safe base64 of its parts."""

import base64
import binascii
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from kopilka.errors import InvalidInput

MAX_NUMBER = 2**63 - 1  # a BIGINT: no page ever ended at a larger key


def encode_cursor(*parts: datetime | UUID | int | str) -> str:
    text = "|".join(p.isoformat() if isinstance(p, datetime) else str(p) for p in parts)
    return base64.urlsafe_b64encode(text.encode()).decode()


def _parts(cursor: str, count: int) -> list[str]:
    try:
        text = base64.b64decode(cursor.encode(), altchars=b"-_", validate=True).decode()
    except (ValueError, binascii.Error):
        raise _foreign() from None
    parts = text.split("|", count - 1)
    if len(parts) != count or not all(parts):
        raise _foreign()
    return parts


def _foreign() -> InvalidInput:
    return InvalidInput("cursor is not one this API gave out", field="cursor")


def decode_cursor(cursor: str) -> tuple[datetime, UUID]:
    """A (created_at, id) cursor."""
    created, item = _parts(cursor, 2)
    try:
        at = datetime.fromisoformat(created)
        if at.tzinfo is None:
            raise _foreign()
        # In UTC, as stored: an instant a database cannot hold is no cursor of ours.
        return at.astimezone(UTC), UUID(item)
    except (ValueError, OverflowError) as exc:
        raise _foreign() from exc


def encode_tagged_cursor(at: datetime, tag: str, key: str) -> str:
    """A cursor of an instant, a tag and a key: the last item of a list merged from several
    kinds (the tag says which), each ordered by instant and key."""
    return encode_cursor(at, tag, key)


def decode_tagged_cursor(cursor: str) -> tuple[datetime, str, str]:
    at_text, tag, key = _parts(cursor, 3)
    try:
        at = datetime.fromisoformat(at_text)
    except ValueError:
        raise _foreign() from None
    if at.tzinfo is None:
        raise _foreign()
    try:
        return at.astimezone(UTC), tag, key
    except OverflowError:
        raise _foreign() from None


def decode_number_cursor(cursor: str) -> int:
    """A cursor of a sequence or version number."""
    (value,) = _parts(cursor, 1)
    if not value.isdigit() or int(value) > MAX_NUMBER:
        raise _foreign()
    return int(value)


def decode_key_cursor(cursor: str) -> str:
    """A cursor of a text key (any characters, ``|`` included)."""
    (key,) = _parts(cursor, 1)
    return key


def next_cursor(rows: Sequence[Any], limit: int) -> str | None:
    """The cursor after a full page of rows with ``created_at`` and ``id`` (None after the
    last page)."""
    last = rows[-1] if len(rows) == limit else None
    return encode_cursor(last.created_at, last.id) if last else None
