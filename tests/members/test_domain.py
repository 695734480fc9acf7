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
        assert len(card) == domain.CARD_LENGTH and domain.is_valid_card(card)


@given(
    st.text(alphabet="0123456789", min_size=15, max_size=15), st.integers(0, 14), st.integers(1, 9)
)
def test_any_single_digit_typo_is_caught(body: str, position: int, delta: int) -> None:
    card = body + str(domain.luhn_check_digit(body))
    typo = card[:position] + str((int(card[position]) + delta) % 10) + card[position + 1 :]
    assert domain.is_valid_card(card)
    assert not domain.is_valid_card(typo)


def test_identifier_kind_is_guessed() -> None:
    card = domain.generate_card_number()
    assert domain.guess_identifier_kind(card) == "card"
    assert domain.guess_identifier_kind("a@b.ru") == "email"
    assert domain.guess_identifier_kind("+79161234567") == "phone"
    assert domain.guess_identifier_kind("CRM-001") == "external_id"
