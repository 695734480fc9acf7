"""Passwords, one-time codes and lock-outs, without a database."""

from datetime import UTC, datetime, timedelta

import pyotp
import pytest

from kopilka.access.domain import EVERYTHING, ROLE_PERMISSIONS, SCOPE_PERMISSIONS, Permission, Role
from kopilka.errors import InvalidInput
from kopilka.staff import domain

NOW = datetime(2026, 3, 14, 12, 0, 7, tzinfo=UTC)


def test_a_password_is_stored_as_an_argon2id_hash_that_only_it_matches() -> None:
    stored = domain.hash_password("correct horse battery")
    assert stored.startswith("$argon2id$")
    assert domain.password_matches(stored, "correct horse battery")
    assert not domain.password_matches(stored, "correct horse battery ")
    assert not domain.password_matches(None, "correct horse battery")
    assert not domain.password_matches("not a hash", "correct horse battery")


@pytest.mark.parametrize("password", ["short", " leading space!", "aaaaaaaaaaaaaaaa", "x" * 257])
def test_weak_passwords_are_refused_naming_the_field(password: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        domain.checked_password(password, field="new_password")
    assert caught.value.field == "new_password"


def test_a_code_is_taken_in_its_step_or_a_neighbour_and_never_twice() -> None:
    secret = domain.new_totp_secret()
    totp = pyotp.TOTP(secret)
    step = totp.timecode(NOW)
    assert domain.totp_step(secret, totp.at(NOW), NOW, None) == step
    # A phone 30 seconds behind or ahead still signs in.
    assert domain.totp_step(secret, totp.at(NOW - timedelta(seconds=30)), NOW, None) == step - 1
    assert domain.totp_step(secret, totp.at(NOW + timedelta(seconds=30)), NOW, None) == step + 1
    # Two minutes off is refused; so is a code already used, and anything not six digits.
    assert domain.totp_step(secret, totp.at(NOW - timedelta(minutes=2)), NOW, None) is None
    assert domain.totp_step(secret, totp.at(NOW), NOW, step) is None
    assert domain.totp_step(secret, "12345", NOW, None) is None
    assert domain.totp_step(secret, "abcdef", NOW, None) is None


def test_the_account_rests_after_five_wrong_passwords_in_a_row() -> None:
    assert domain.locked_until(4, NOW) is None
    assert domain.locked_until(5, NOW) == NOW + timedelta(minutes=15)


def test_a_session_token_is_long_random_and_kept_only_as_a_hash() -> None:
    token = domain.new_session_token()
    assert token.startswith("ks_") and len(token) > 40
    assert domain.token_hash(token) != token and len(domain.token_hash(token)) == 64
    assert domain.new_session_token() != token


def test_the_owner_may_do_everything_and_every_other_role_less() -> None:
    assert ROLE_PERMISSIONS[Role.OWNER] == EVERYTHING
    for role in Role:
        if role is not Role.OWNER:
            assert ROLE_PERMISSIONS[role] < EVERYTHING
    # Only the owner manages the team and reads the audit log.
    for permission in (Permission.STAFF_MANAGE, Permission.AUDIT_READ):
        assert [r for r in Role if permission in ROLE_PERMISSIONS[r]] == [Role.OWNER]
    # An analyst reads aggregates, not people.
    assert Permission.MEMBERS_READ not in ROLE_PERMISSIONS[Role.ANALYST]
    # A cashier sells; they do not adjust points, publish or erase.
    cashier = ROLE_PERMISSIONS[Role.CASHIER]
    assert Permission.SALES_RECORD in cashier
    assert (
        not {Permission.POINTS_ADJUST, Permission.PROGRAM_PUBLISH, Permission.MEMBERS_ERASE}
        & cashier
    )


def test_key_scopes_keep_what_they_always_allowed() -> None:
    pos, partner = SCOPE_PERMISSIONS["pos"], SCOPE_PERMISSIONS["partner"]
    assert {Permission.SALES_RECORD, Permission.PAYMENTS_TAKE, Permission.MEMBERS_WRITE} <= pos
    assert Permission.SALES_RECORD in partner and Permission.PAYMENTS_TAKE not in partner
    assert Permission.POINTS_ADJUST not in pos | partner | SCOPE_PERMISSIONS["analyst"]
    assert SCOPE_PERMISSIONS["admin"] == EVERYTHING
