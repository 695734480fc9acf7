"""Gift card rules without a database: expiry, movements, refunds, cursors, invariants."""

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kopilka.errors import Conflict, InsufficientBalance, InvalidInput
from kopilka.giftcards import domain
from kopilka.giftcards.domain import (
    ACTIVE,
    DISABLED,
    EXPIRED,
    GIFT_CARD,
    WALLET,
    Card,
    GiftCardDisabled,
    GiftCardExpired,
    Movement,
)

T0 = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


def card(balance: int = 1_000, **overrides: object) -> Card:
    values: dict[str, object] = {
        "kind": GIFT_CARD,
        "balance": balance,
        "status": ACTIVE,
        "expires_at": T0 + timedelta(days=30),
        "seq": 1,
    }
    values.update(overrides)
    return Card(**values)  # type: ignore[arg-type]


# --- expiry -----------------------------------------------------------------------------------


def test_default_validity_is_a_year_from_issue() -> None:
    assert domain.expiry_of(T0) == T0 + timedelta(days=domain.DEFAULT_VALID_DAYS)
    assert domain.expiry_of(T0, valid_days=30) == T0 + timedelta(days=30)
    assert domain.expiry_of(T0, never_expires=True) is None
    at = T0 + timedelta(hours=1)
    assert domain.expiry_of(T0, expires_at=at) == at


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"expires_at": T0}, "expires_at"),
        ({"expires_at": T0.replace(tzinfo=None) + timedelta(days=1)}, "expires_at"),
        ({"valid_days": 0}, "valid_days"),
        ({"valid_days": 30, "never_expires": True}, "never_expires"),
        ({"expires_at": T0 + timedelta(days=1), "valid_days": 3}, "valid_days"),
    ],
)
def test_bad_expiry_names_the_field(options: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidInput) as error:
        domain.expiry_of(T0, **options)  # type: ignore[arg-type]
    assert error.value.field == field


def test_a_card_is_expired_from_its_expiry_instant_on() -> None:
    due = card(expires_at=T0)
    assert due.status_at(T0 - timedelta(microseconds=1)) == ACTIVE
    assert due.status_at(T0) == EXPIRED
    assert due.available_at(T0) == 0
    assert card(expires_at=None).status_at(T0 + timedelta(days=10_000)) == ACTIVE
    assert card(status=DISABLED).available_at(T0) == 0


# --- movements --------------------------------------------------------------------------------


def test_issue_starts_the_journal_at_one() -> None:
    issued, movement = domain.issue(GIFT_CARD, 5_000, None)
    assert issued == Card(GIFT_CARD, 5_000, ACTIVE, None, 1)
    assert movement == Movement("issue", 5_000, 5_000, 1)
    with pytest.raises(InvalidInput):
        domain.issue(GIFT_CARD, 0, None)


def test_payment_takes_no_more_than_the_balance() -> None:
    after, movement = domain.pay(card(1_000), 400, T0)
    assert (after.balance, after.seq) == (600, 2)
    assert movement == Movement("payment", -400, 600, 2)
    with pytest.raises(InsufficientBalance) as error:
        domain.pay(card(1_000), 1_001, T0)
    assert error.value.field == "amount" and error.value.extra == {"balance": 1_000}


def test_partial_payment_takes_what_there_is() -> None:
    _, movement = domain.pay(card(300), 1_000, T0, allow_partial=True)
    assert movement.amount == -300 and movement.balance_after == 0
    with pytest.raises(InsufficientBalance):
        domain.pay(card(0), 1_000, T0, allow_partial=True)


def test_expired_and_disabled_cards_refuse_payments_and_top_ups() -> None:
    overdue = card(expires_at=T0)
    with pytest.raises(GiftCardExpired) as error:
        domain.pay(overdue, 1, T0)
    assert error.value.status == 409 and error.value.field == "code"
    assert error.value.extra == {"expired_at": T0.isoformat()}
    with pytest.raises(GiftCardExpired):
        domain.top_up(overdue, 1, T0)
    with pytest.raises(GiftCardDisabled):
        domain.pay(card(status=DISABLED), 1, T0)
    wallet = Card(WALLET, 0, DISABLED, None, 0)
    with pytest.raises(GiftCardDisabled) as disabled:
        domain.top_up(wallet, 1, T0)
    assert disabled.value.field == "member_id"


def test_top_up_stops_at_the_maximum_balance() -> None:
    _, movement = domain.top_up(card(domain.MAX_BALANCE - 5), 5, T0)
    assert movement.balance_after == domain.MAX_BALANCE
    with pytest.raises(InvalidInput):
        domain.top_up(card(domain.MAX_BALANCE - 5), 6, T0)


def test_refund_never_gives_back_more_than_the_payment_took() -> None:
    _, rest = domain.refund(card(100), paid=500, refunded=200, amount=None, now=T0)
    assert rest == Movement("refund", 300, 400, 2)
    with pytest.raises(InvalidInput) as error:
        domain.refund(card(100), paid=500, refunded=200, amount=301, now=T0)
    assert error.value.extra == {"refundable": 300}
    with pytest.raises(Conflict):
        domain.refund(card(100), paid=500, refunded=500, amount=None, now=T0)


def test_refunds_reach_disabled_cards_but_not_expired_ones() -> None:
    after, _ = domain.refund(card(0, status=DISABLED), paid=50, refunded=0, amount=50, now=T0)
    assert after.balance == 50 and after.status == DISABLED
    with pytest.raises(GiftCardExpired):
        domain.refund(card(0, expires_at=T0), paid=50, refunded=0, amount=None, now=T0)


def test_expiry_takes_what_is_left_and_closes_the_card() -> None:
    assert domain.expire(card(700), T0) is None  # not due yet
    closed, movement = domain.expire(card(700, expires_at=T0), T0) or (None, None)
    assert closed == card(0, expires_at=T0, status=EXPIRED, seq=2)
    assert movement == Movement("expiry", -700, 0, 2)
    empty = domain.expire(card(0, expires_at=T0), T0)
    assert empty == (card(0, expires_at=T0, status=EXPIRED), None)
    assert domain.expire(card(0, expires_at=T0, status=EXPIRED), T0) is None


def test_changes_by_an_administrator() -> None:
    later = T0 + timedelta(days=90)
    assert domain.change(card(), T0, status=DISABLED).status == DISABLED
    assert domain.change(card(), T0, expires_at=later).expires_at == later
    assert domain.change(card(), T0, never_expires=True).expires_at is None
    with pytest.raises(GiftCardExpired):
        domain.change(card(expires_at=T0), T0, status=ACTIVE)
    with pytest.raises(InvalidInput):
        domain.change(card(), T0, expires_at=T0 - timedelta(days=1))


def test_imported_codes_are_normalised_and_checked() -> None:
    assert domain.card_code("  gc-1234-abcd ") == "GC-1234-ABCD"
    for bad in ("ab", "GC 1234 5678", "-ABCD", "ПОДАРОК-1"):
        with pytest.raises(InvalidInput):
            domain.card_code(bad)


# --- invariants -------------------------------------------------------------------------------


class Refused(Exception):
    """What the reference model expects of an operation it would refuse: this error type."""

    def __init__(self, error: type[Exception]) -> None:
        self.error = error


class CardModel:
    """A gift card as the documented contract describes it, written without the domain
    module: balance, stored status (``closed`` once the expiry job took it), expiry, and
    what each payment took and had given back."""

    def __init__(self, initial: int, expires_at: datetime | None) -> None:
        self.balance = initial
        self.disabled = False
        self.closed = False
        self.expires_at = expires_at
        self.payments: list[list[int]] = []  # [paid, refunded]

    def expired(self, now: datetime) -> bool:
        return self.closed or (self.expires_at is not None and now >= self.expires_at)

    def status(self) -> str:
        return "expired" if self.closed else "disabled" if self.disabled else "active"

    def status_at(self, now: datetime) -> str:
        return "expired" if self.expired(now) else self.status()

    def _usable(self, now: datetime) -> None:
        if self.expired(now):
            raise Refused(GiftCardExpired)
        if self.disabled:
            raise Refused(GiftCardDisabled)

    def top_up(self, amount: int, now: datetime) -> int:
        self._usable(now)
        if self.balance + amount > 10**12:
            raise Refused(InvalidInput)
        self.balance += amount
        return amount

    def pay(self, amount: int, now: datetime, partial: bool) -> int:
        self._usable(now)
        take = min(amount, self.balance) if partial else amount
        if take == 0 or take > self.balance:
            raise Refused(InsufficientBalance)
        self.balance -= take
        self.payments.append([take, 0])
        return -take

    def refund(self, index: int, amount: int | None, now: datetime) -> int:
        if self.expired(now):  # a disabled card takes refunds, an expired one does not
            raise Refused(GiftCardExpired)
        paid, refunded = self.payments[index]
        if refunded >= paid:
            raise Refused(Conflict)
        if amount is not None and amount > paid - refunded:
            raise Refused(InvalidInput)
        give = paid - refunded if amount is None else amount
        self.payments[index][1] += give
        self.balance += give
        return give

    def expire(self, as_of: datetime) -> int | None:
        """The amount the expiry job takes (0 from an empty card); None if not due."""
        if self.closed or self.expires_at is None or self.expires_at > as_of:
            return None
        taken, self.balance, self.closed = -self.balance, 0, True
        return taken

    def change(self, now: datetime, disabled: bool) -> None:
        if self.expired(now):
            raise Refused(GiftCardExpired)
        self.disabled = disabled


OPERATIONS = st.lists(
    st.tuples(
        st.sampled_from(["top_up", "pay", "pay_partial", "refund", "expire", "disable", "enable"]),
        st.integers(min_value=1, max_value=5_000),
        st.integers(min_value=0, max_value=10),
    ),
    max_size=60,
)


@settings(max_examples=300, deadline=None)
@given(
    st.integers(min_value=1, max_value=10_000),
    st.none() | st.integers(min_value=1, max_value=72),
    OPERATIONS,
)
def test_every_operation_does_what_a_reference_model_does(
    initial: int, expires_in_hours: int | None, operations: list[tuple[str, int, int]]
) -> None:
    """Random issue / top-up / pay / refund / expire / disable sequences, an hour apart,
    run side by side on the domain and on :class:`CardModel`: after each step both agree
    on balance, status and expiry; an operation the model refuses is refused with the
    model's error, one it allows is done with the model's amount, so the two count the same
    successes. The journal stays a running sum that never goes below zero."""
    now = T0
    expires_at = None if expires_in_hours is None else T0 + timedelta(hours=expires_in_hours)
    state, first = domain.issue(GIFT_CARD, initial, expires_at)
    model = CardModel(initial, expires_at)
    journal = [first]
    payments: list[list[int]] = []  # [paid, refunded] per payment, from the journal
    succeeded = expected_successes = 0
    for name, amount, pick in operations:
        now += timedelta(hours=1)
        index = pick % len(model.payments) if model.payments else None
        refund_amount = amount if pick % 2 else None
        try:
            if name == "top_up":
                wanted: int | None = model.top_up(amount, now)
            elif name in ("pay", "pay_partial"):
                wanted = model.pay(amount, now, partial=name == "pay_partial")
            elif name == "refund":
                if index is None:
                    continue
                wanted = model.refund(index, refund_amount, now)
            elif name == "expire":
                wanted = model.expire(now)
            else:
                model.change(now, disabled=name == "disable")
                wanted = None
            expected: type[Exception] | None = None
        except Refused as refusal:
            expected, wanted = refusal.error, None
        before = state
        movement: Movement | None = None
        try:
            if name == "top_up":
                state, movement = domain.top_up(state, amount, now)
            elif name in ("pay", "pay_partial"):
                state, movement = domain.pay(
                    state, amount, now, allow_partial=name == "pay_partial"
                )
            elif name == "refund":
                assert index is not None
                paid, refunded = payments[index]
                state, movement = domain.refund(
                    state, paid=paid, refunded=refunded, amount=refund_amount, now=now
                )
            elif name == "expire":
                decided = domain.expire(state, now)
                if decided is not None:
                    state, movement = decided
            else:
                state = domain.change(state, now, status=DISABLED if name == "disable" else ACTIVE)
        except (InvalidInput, InsufficientBalance, Conflict) as error:
            assert type(error) is expected, f"{name}: refused with {error!r}, model: {expected}"
            assert state is before
        else:
            assert expected is None, f"{name} was done; the model refuses it with {expected}"
            succeeded += not (name == "expire" and state is before)
            expected_successes += not (name == "expire" and wanted is None)
            if movement is not None:
                assert movement.amount == wanted
                journal.append(movement)
                if movement.kind == "payment":
                    payments.append([-movement.amount, 0])
                elif movement.kind == "refund":
                    assert index is not None
                    payments[index][1] += movement.amount
            else:
                assert wanted in (None, 0)
        assert payments == model.payments
        assert (state.balance, state.status, state.expires_at) == (
            model.balance,
            model.status(),
            model.expires_at,
        )
        assert state.status_at(now) == model.status_at(now)
        assert state.available_at(now) == (model.balance if model.status_at(now) == ACTIVE else 0)
    assert succeeded == expected_successes
    running = 0
    for seq, movement in enumerate(journal, start=1):
        running += movement.amount
        assert movement.balance_after == running >= 0 and movement.seq == seq
        assert (movement.amount > 0) == (movement.kind in domain.CREDITS)
