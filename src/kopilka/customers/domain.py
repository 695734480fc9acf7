"""The customer 360's timeline, without I/O: its items, their order, the cursor's bounds
for each kind of item, and the merge of the kinds' pages into one page."""

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any
from uuid import UUID

from babel.numbers import get_currency_precision

from kopilka.errors import InvalidInput


class ItemType(StrEnum):
    PURCHASE = "purchase"
    RETURN = "return"
    POINTS = "points"
    TIER = "tier"
    MESSAGE = "message"
    CONSENT = "consent"
    INTERACTION = "interaction"
    TICKET = "ticket"
    FEEDBACK = "feedback"


@dataclass(frozen=True)
class TimelineItem:
    at: datetime
    type: ItemType
    id: str
    summary: str  # one line a person reads; the details are in ``data``
    data: dict[str, Any]
    # The kind's own key (a UUID or a number), for ordering items of one kind at one instant
    # as the kind's query orders them.
    key: UUID | int = field(compare=False, repr=False)

    def order(self) -> tuple[datetime, str, UUID | int]:
        return (self.at, str(self.type), self.key)


@dataclass(frozen=True)
class Cursor:
    at: datetime
    type: str
    id: str


# The smallest and largest keys of each kind of key: a bound of (instant, key) below all
# or above all keys of that instant.
UUID_RANGE: tuple[UUID, UUID] = (UUID(int=0), UUID(int=2**128 - 1))
NUMBER_RANGE: tuple[int, int] = (-1, 2**63 - 1)


def bound(
    cursor: Cursor | None,
    kind: ItemType,
    parse: Callable[[str], UUID | int],
    key_range: tuple[UUID | int, UUID | int],
) -> tuple[datetime, Any] | None:
    """The keyset bound, for items of ``kind``, that leaves exactly the items after
    ``cursor`` in the timeline's order (instant, type, key — all descending)."""
    if cursor is None:
        return None
    lowest, highest = key_range
    if str(kind) == cursor.type:
        try:
            return (cursor.at, parse(cursor.id))
        except ValueError:
            raise InvalidInput("cursor is not one this API gave out", field="cursor") from None
    # Kinds after the cursor's at the same instant come later in the order: all of them.
    return (cursor.at, highest if str(kind) < cursor.type else lowest)


def merged(pages: Sequence[Sequence[TimelineItem]], limit: int) -> list[TimelineItem]:
    """The first ``limit`` items of the kinds' pages, newest first. Each page holds that
    kind's first ``limit`` items after the cursor, so these are the timeline's."""
    items = [item for page in pages for item in page]
    items.sort(key=TimelineItem.order, reverse=True)
    return items[:limit]


def money(amount: int, currency: str) -> str:
    """Minor units as a person reads them: 125050 RUB → ``1,250.50 RUB``."""
    digits = get_currency_precision(currency)
    sign = "-" if amount < 0 else ""
    whole, part = divmod(abs(amount), 10**digits) if digits else (abs(amount), 0)
    fraction = f".{part:0{digits}d}" if digits else ""
    return f"{sign}{whole:,}{fraction} {currency}"


def points(changes: dict[str, dict[str, int]]) -> str:
    """``{"points": {"pending": 120}}`` → ``+120 points pending``."""
    parts = []
    for currency, accounts in sorted(changes.items()):
        for account, amount in sorted(accounts.items()):
            if amount:
                where = "" if account == "available" else f" {account}"
                parts.append(f"{amount:+,} {currency}{where}")
    return ", ".join(parts) or "no change"
