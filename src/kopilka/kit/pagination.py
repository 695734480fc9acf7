"""Opaque keyset cursors: (created_at, id) of the last item a page showed."""

import base64
from datetime import datetime
from uuid import UUID

from kopilka.errors import InvalidInput


def encode_cursor(created_at: datetime, item_id: UUID) -> str:
    return base64.urlsafe_b64encode(f"{created_at.isoformat()}|{item_id}".encode()).decode()


def decode_cursor(cursor: str) -> tuple[datetime, UUID]:
    try:
        created, item = base64.urlsafe_b64decode(cursor.encode()).decode().split("|")
        return datetime.fromisoformat(created), UUID(item)
    except ValueError as exc:
        raise InvalidInput("cursor is not one this API gave out", field="cursor") from exc
