"""Identifier rules without a database."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kopilka.errors import InvalidInput
from kopilka.members import domain


def test_phone_is_normalised_to_e164() -> None:
    assert domain.normalise_phone("8 (916) 123-45-67") == "+79161234567"
    assert domain.normalise_phone("+7 916 123 45 67") == "+79161234567"
    assert domain.normalise_phone("+44 20 7946 0958") == "+442079460958"


@pytest.mark.parametrize("raw", ["12", "not a phone", "+7 000"])
def test_invalid_phone_names_the_field(raw: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        domain.normalise_phone(raw)
    assert caught.value.field == "phone"


def test_email_is_lowercased_and_checked() -> None:
    assert domain.normalise_email("  Anna.Petrova@Example.COM ") == "anna.petrova@example.com"
    with pytest.raises(InvalidInput) as caught:
        domain.normalise_email("anna@@example")
    assert caught.value.field == "email"


def test_generated_cards_pass_the_check_digit() -> None:
    for _ in range(200):
        card = domain.generate_card_number()
        assert len(card) == domain.CARD_LENGTH and card.startswith("77") and luhn_valid(card)


def luhn_valid(number: str) -> bool:
    """The Luhn test as published, written out here rather than taken from the code under
    test: from the rightmost digit leftwards, double every second digit, add the digits of
    the products, and the whole sum must be a multiple of ten."""
    total = 0
    for position, char in enumerate(reversed(number)):
        digit = int(char)
        if position % 2 == 1:
            digit = sum(int(d) for d in str(digit * 2))
        total += digit
    return total % 10 == 0


# Published numbers: the Luhn article's worked example and payment networks' test cards.
VALID_NUMBERS = ["79927398713", "4111111111111111", "4012888888881881", "5555555555554444"]
INVALID_NUMBERS = ["79927398710", "4111111111111112", "4012888888881818", "5555555555554440"]


def test_the_oracle_agrees_with_published_numbers() -> None:
    assert all(luhn_valid(n) for n in VALID_NUMBERS)
    assert not any(luhn_valid(n) for n in INVALID_NUMBERS)


@pytest.mark.parametrize("number", VALID_NUMBERS)
def test_the_check_digit_of_published_numbers(number: str) -> None:
    assert domain.luhn_check_digit(number[:-1]) == int(number[-1])


def test_sixteen_digit_published_numbers_are_valid_cards() -> None:
    assert [domain.is_valid_card(n) for n in VALID_NUMBERS + INVALID_NUMBERS] == [
        len(n) == domain.CARD_LENGTH for n in VALID_NUMBERS
    ] + [False] * len(INVALID_NUMBERS)


@given(st.text(alphabet="0123456789", min_size=1, max_size=30))
def test_the_check_digit_is_the_one_digit_the_oracle_accepts(body: str) -> None:
    check = domain.luhn_check_digit(body)
    assert [d for d in range(10) if luhn_valid(body + str(d))] == [check]


@given(st.text(alphabet="0123456789", min_size=16, max_size=16))
def test_a_card_is_valid_exactly_when_the_oracle_says(number: str) -> None:
    assert domain.is_valid_card(number) == luhn_valid(number)


@given(
    st.text(alphabet="0123456789", min_size=15, max_size=15), st.integers(0, 15), st.integers(1, 9)
)
def test_any_single_digit_typo_is_caught(body: str, position: int, delta: int) -> None:
    card = body + next(str(d) for d in range(10) if luhn_valid(body + str(d)))
    typo = card[:position] + str((int(card[position]) + delta) % 10) + card[position + 1 :]
    assert domain.is_valid_card(card)
    assert not domain.is_valid_card(typo)


def test_identifier_kind_is_guessed() -> None:
    card = domain.generate_card_number()
    assert domain.guess_identifier_kind(card) == "card"
    assert domain.guess_identifier_kind("a@b.ru") == "email"
    assert domain.guess_identifier_kind("+79161234567") == "phone"
    assert domain.guess_identifier_kind("CRM-001") == "external_id"
