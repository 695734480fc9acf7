"""One cursor codec for every list: each kind of key round-trips, and a cursor the API
never gave out is refused naming the field (not a 500, not a silent first page)."""

import base64
from datetime import UTC, datetime
from uuid import uuid4

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kopilka.errors import InvalidInput
from kopilka.kit.pagination import (
    MAX_NUMBER,
    decode_cursor,
    decode_key_cursor,
    decode_number_cursor,
    encode_cursor,
)


def forged(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode()


def test_each_kind_of_key_round_trips() -> None:
    moment, item = datetime(2026, 3, 1, 12, tzinfo=UTC), uuid4()
    assert decode_cursor(encode_cursor(moment, item)) == (moment, item)
    assert decode_number_cursor(encode_cursor(42)) == 42
    assert decode_key_cursor(encode_cursor("mug|large")) == "mug|large"


@given(st.text(min_size=1))
def test_any_key_round_trips(key: str) -> None:
    assert decode_key_cursor(encode_cursor(key)) == key


@pytest.mark.parametrize(
    "cursor, decode",
    [
        ("nonsense!", decode_number_cursor),
        (forged(""), decode_key_cursor),
        (forged("-1"), decode_number_cursor),
        (forged(str(MAX_NUMBER + 1)), decode_number_cursor),
        (forged("12|x"), decode_number_cursor),
        (forged("2026-03-01T12:00:00+00:00"), decode_cursor),
        (forged("yesterday|" + "e7a5f541-4a8d-41bf-87a3-6b18206a0d06"), decode_cursor),
        (forged("2026-03-01T12:00:00+00:00|not-a-uuid"), decode_cursor),
        ("c2VxOng", decode_number_cursor),  # not padded: not ours
    ],
)
def test_forged_cursors_are_refused_naming_the_field(cursor: str, decode: object) -> None:
    with pytest.raises(InvalidInput) as raised:
        decode(cursor)  # type: ignore[operator]
    assert raised.value.field == "cursor"
