"""Sign-in codes without a database: their digits, their hashes, how they are read as typed
and when one can no longer take a try."""

from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kopilka.errors import InvalidInput
from kopilka.memberaccess.domain import (
    CODE_MINUTES,
    CODE_TRIES,
    Address,
    CodeChannel,
    CodeOutcome,
    StoredCode,
    addresses_of,
    clean_code,
    code_expiry,
    code_hash,
    code_matches,
    judge,
    new_code,
    parse_address,
)

NOW = datetime(2031, 6, 15, 12, 0, tzinfo=UTC)


def stored(code: str, **changes: object) -> StoredCode:
    code_id = uuid4()
    values: dict[str, object] = {
        "id": code_id,
        "member_id": uuid4(),
        "code_hash": code_hash(code_id, code),
        "expires_at": code_expiry(NOW),
        "attempts": 0,
        "used_at": None,
    }
    return StoredCode(**(values | changes))  # type: ignore[arg-type]


def test_a_code_is_six_random_digits() -> None:
    codes = {new_code() for _ in range(200)}
    assert all(len(c) == 6 and c.isdigit() for c in codes)
    assert len(codes) > 190  # random, not a sequence


@given(st.text(alphabet="0123456789", min_size=6, max_size=6))
def test_the_same_digits_hash_differently_in_every_row(code: str) -> None:
    first, second = uuid4(), uuid4()
    assert code_hash(first, code) != code_hash(second, code)
    assert code_hash(first, code) == code_hash(first, code)
    assert code not in code_hash(first, code)


def test_a_code_matches_only_its_own_digits() -> None:
    kept = stored("042917")
    assert code_matches(kept, "042917")
    assert not code_matches(kept, "042918") and not code_matches(kept, "42917")


@pytest.mark.parametrize(
    ("typed", "read"),
    [
        ("123456", "123456"),
        ("123 456", "123456"),
        ("12-34-56", "123456"),
        ("12345", None),
        ("1234567", None),
        ("12a456", None),
        ("١٢٣٤٥٦", None),
        ("", None),
    ],
)
def test_a_code_is_read_as_people_type_it(typed: str, read: str | None) -> None:
    assert clean_code(typed) == read


def test_when_a_code_can_take_a_try() -> None:
    assert judge(stored("111111"), NOW) is None
    assert judge(None, NOW) is CodeOutcome.NO_CODE
    assert judge(stored("111111", used_at=NOW), NOW) is CodeOutcome.NO_CODE
    later = NOW + timedelta(minutes=CODE_MINUTES)
    assert judge(stored("111111"), later - timedelta(seconds=1)) is None
    assert judge(stored("111111"), later) is CodeOutcome.EXPIRED
    assert judge(stored("111111", attempts=CODE_TRIES - 1), NOW) is None
    assert judge(stored("111111", attempts=CODE_TRIES), NOW) is CodeOutcome.TOO_MANY


def test_an_address_is_a_phone_or_an_email_in_its_stored_form() -> None:
    assert parse_address(" Anna@Shop.Example ") == Address("email", "anna@shop.example")
    assert parse_address("8 (916) 123-45-67") == Address("phone", "+79161234567")
    assert parse_address("+79161234567").channel is CodeChannel.SMS
    assert parse_address("anna@shop.example").channel is CodeChannel.EMAIL
    for bad in ("anna", "12", "anna@", ""):
        with pytest.raises(InvalidInput) as refused:
            parse_address(bad)
        assert refused.value.field == "address"


def test_a_registrations_addresses_name_their_own_field() -> None:
    assert addresses_of("a@shop.example", "+79161234567") == [
        Address("email", "a@shop.example"),
        Address("phone", "+79161234567"),
    ]
    assert addresses_of(None, None) == []
    with pytest.raises(InvalidInput) as refused:
        addresses_of("a@shop.example", "12")
    assert refused.value.field == "phone"
