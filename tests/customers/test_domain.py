"""The timeline's paging without a database: merging the kinds' pages with the cursor's
bounds visits every item once, in order, whatever the ties; money and points read well."""

from datetime import UTC, date, datetime, timedelta
from uuid import UUID

from hypothesis import given, settings
from hypothesis import strategies as st

from kopilka.customers.domain import (
    NUMBER_RANGE,
    UUID_RANGE,
    Cursor,
    ItemType,
    TimelineItem,
    bound,
    merged,
    money,
    points,
)
from kopilka.members.domain import email_key, name_key

T0 = datetime(2026, 1, 1, tzinfo=UTC)
KINDS = (ItemType.PURCHASE, ItemType.POINTS, ItemType.CONSENT)


def item(kind: ItemType, minute: int, key: int) -> TimelineItem:
    native: UUID | int = key if kind is ItemType.CONSENT else UUID(int=key)
    return TimelineItem(T0 + timedelta(minutes=minute), kind, str(native), "", {}, key=native)


def read(
    items: list[TimelineItem], kind: ItemType, cursor: Cursor | None, limit: int
) -> list[TimelineItem]:
    """What a kind's query answers: its items below the bound, newest first, ``limit``."""
    parse = int if kind is ItemType.CONSENT else UUID
    keys = NUMBER_RANGE if kind is ItemType.CONSENT else UUID_RANGE
    limit_to = bound(cursor, kind, parse, keys)
    mine = [i for i in items if i.type is kind]
    if limit_to is not None:
        mine = [i for i in mine if (i.at, i.key) < limit_to]
    return sorted(mine, key=lambda i: (i.at, i.key), reverse=True)[:limit]


@settings(max_examples=200, deadline=None)
@given(
    st.sets(
        st.tuples(st.sampled_from(KINDS), st.integers(0, 3), st.integers(1, 40)),
        max_size=40,
    ),
    st.integers(1, 5),
)
def test_paging_visits_every_item_once_in_order(
    raw: set[tuple[ItemType, int, int]], limit: int
) -> None:
    items = [item(kind, minute, key) for kind, minute, key in raw]
    seen: list[TimelineItem] = []
    cursor: Cursor | None = None
    for _ in range(len(items) + 2):
        page = merged([read(items, kind, cursor, limit) for kind in KINDS], limit)
        seen.extend(page)
        if len(page) < limit:
            break
        last = page[-1]
        cursor = Cursor(last.at, str(last.type), last.id)
    assert seen == sorted(items, key=TimelineItem.order, reverse=True)


def test_money_and_points_read_as_people_write_them() -> None:
    assert money(125050, "RUB") == "1,250.50 RUB"
    assert money(-5, "RUB") == "-0.05 RUB"
    assert money(1500, "JPY") == "1,500 JPY"
    assert points({"points": {"available": 120, "pending": -20}}) == (
        "+120 points, -20 points pending"
    )
    assert points({}) == "no change"


def test_duplicate_keys_fold_what_people_write_differently() -> None:
    day = date(1990, 4, 1)
    assert name_key("Пётр  Иванов", day) == name_key("иванов петр", day) == "1990-04-01|иванов петр"
    assert name_key("Пётр", None) is None and name_key(None, day) is None
    assert (
        email_key("Anna.P+shop@Gmail.com") == email_key("annap@googlemail.com") == "annap@gmail.com"
    )
    assert email_key("a.b+x@example.com") == "a.b+x@example.com"  # others' rules are unknown
    assert email_key("anna+news@yandex.ru") == "anna@yandex.ru"
