"""Pure ledger maths: lots, FIFO, holds, returns, expiry and the member invariants."""

from __future__ import annotations

import copy
import itertools
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from uuid import UUID

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
)

from kopilka.errors import InsufficientBalance, InvalidInput, KopilkaError
from kopilka.ledger.domain import (
    MEMBER_ACCOUNTS,
    Account,
    Allocation,
    Balance,
    ClawbackPolicy,
    LedgerInvariantError,
    Lot,
    Posting,
    capture,
    check_member,
    earn,
    entry_is_balanced,
    expire,
    hold,
    proportional_share,
    redeem,
    release,
    reverse,
    take_fifo,
    void,
)

T0 = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)
RETURN_WINDOW = timedelta(days=14)

_ids = itertools.count(1)


def _lot_id() -> UUID:
    return UUID(int=next(_ids))


def make_lot(
    amount: int,
    *,
    remaining: int | None = None,
    status: str = "available",
    earned_at: datetime = T0,
    available_at: datetime | None = None,
    expires_at: datetime | None = None,
    source_id: str | None = None,
    lot_id: UUID | None = None,
) -> Lot:
    assert status in ("pending", "available")
    return Lot(
        lot_id if lot_id is not None else _lot_id(),
        amount,
        amount if remaining is None else remaining,
        "pending" if status == "pending" else "available",
        earned_at,
        available_at if available_at is not None else earned_at,
        expires_at,
        source_id,
    )


def credit(
    balance: Balance,
    amount: int,
    *,
    now: datetime = T0,
    available_at: datetime | None = None,
    expires_at: datetime | None = None,
    source_id: str | None = None,
) -> tuple[list[Posting], Lot]:
    """``earn`` with the details most tests do not care about filled in."""
    return earn(
        balance,
        lot_id=_lot_id(),
        amount=amount,
        now=now,
        available_at=now if available_at is None else available_at,
        expires_at=expires_at,
        source_id=source_id,
        rule_id=None,
    )


def snapshot(lots: list[Lot]) -> list[tuple[UUID, int, int, str]]:
    return [(lot.id, lot.amount, lot.remaining, lot.status) for lot in lots]


def remaining(lots: list[Lot]) -> list[int]:
    return [lot.remaining for lot in lots]


def by_id(lots: list[Lot]) -> dict[UUID, Lot]:
    return {lot.id: lot for lot in lots}


def fifo_key(lot: Lot) -> tuple[bool, datetime, datetime, UUID]:
    """The spending order, written independently: soonest expiry, never last, then oldest."""
    far_future = datetime.max.replace(tzinfo=UTC)
    return (lot.expires_at is None, lot.expires_at or far_future, lot.earned_at, lot.id)


def net(postings: list[Posting]) -> dict[Account, int]:
    totals: Counter[Account] = Counter()
    for posting in postings:
        totals[posting.account] += posting.amount
    return {account: amount for account, amount in totals.items() if amount}


# -- errors ---------------------------------------------------------------------------------


def test_error_classes_are_kopilka_errors() -> None:
    assert issubclass(InvalidInput, KopilkaError)
    assert issubclass(InsufficientBalance, KopilkaError)


# -- Balance.apply and entry_is_balanced ------------------------------------------------------


def test_balance_apply_moves_member_accounts_only() -> None:
    balance = Balance(available=10, pending=5, held=2)
    balance.apply(
        [
            Posting(Account.AVAILABLE, -3),
            Posting(Account.PENDING, 4),
            Posting(Account.HELD, 1),
            Posting(Account.ISSUED, -7),
            Posting(Account.REDEEMED, 3),
            Posting(Account.EXPIRED, 1),
            Posting(Account.ADJUSTMENTS, 1),
        ]
    )
    assert balance == Balance(available=7, pending=9, held=3)


def test_entry_is_balanced() -> None:
    assert entry_is_balanced([])
    assert entry_is_balanced([Posting(Account.ISSUED, -5), Posting(Account.AVAILABLE, 5)])
    assert not entry_is_balanced([Posting(Account.ISSUED, -5), Posting(Account.AVAILABLE, 4)])
    assert not entry_is_balanced([Posting(Account.AVAILABLE, 1)])


# -- FIFO -------------------------------------------------------------------------------------


def test_take_fifo_spends_soonest_expiring_first_and_never_expiring_last() -> None:
    never = make_lot(100, earned_at=T0 - 30 * DAY)  # oldest, but never expires
    late = make_lot(10, expires_at=T0 + 90 * DAY)
    soon = make_lot(10, expires_at=T0 + 10 * DAY)
    middle = make_lot(10, expires_at=T0 + 30 * DAY)
    lots = [never, late, soon, middle]

    allocations = take_fifo(lots, 35)

    assert allocations == [
        Allocation(soon.id, 10),
        Allocation(middle.id, 10),
        Allocation(late.id, 10),
        Allocation(never.id, 5),
    ]
    assert remaining(lots) == [95, 0, 0, 0]
    assert all(lot.dirty for lot in lots)


def test_take_fifo_breaks_expiry_ties_by_earned_at() -> None:
    expires = T0 + 60 * DAY
    newer = make_lot(10, earned_at=T0, expires_at=expires)
    older = make_lot(10, earned_at=T0 - 5 * DAY, expires_at=expires)
    never_newer = make_lot(10, earned_at=T0)
    never_older = make_lot(10, earned_at=T0 - 9 * DAY)
    lots = [never_newer, newer, never_older, older]

    allocations = take_fifo(lots, 35)

    assert [a.lot_id for a in allocations] == [older.id, newer.id, never_older.id, never_newer.id]
    assert [a.amount for a in allocations] == [10, 10, 10, 5]


def test_take_fifo_skips_pending_and_empty_lots_and_stops_when_done() -> None:
    pending = make_lot(50, status="pending", available_at=T0 + DAY, expires_at=T0 + DAY)
    empty = make_lot(50, remaining=0, expires_at=T0 + 2 * DAY)
    first = make_lot(20, expires_at=T0 + 3 * DAY)
    untouched = make_lot(20, expires_at=T0 + 4 * DAY)
    lots = [pending, empty, first, untouched]

    assert take_fifo(lots, 20) == [Allocation(first.id, 20)]
    assert remaining(lots) == [50, 0, 0, 20]
    assert not untouched.dirty and not pending.dirty


def test_take_fifo_more_than_the_lots_hold_is_a_bug() -> None:
    # A bug, not bad input: raised whatever the interpreter's flags (not an assert).
    with pytest.raises(LedgerInvariantError):
        take_fifo([make_lot(5)], 6)


def test_an_unbalanced_entry_is_refused_even_under_python_O() -> None:
    """The books never take an unbalanced entry: the check is a raise, not an ``assert``
    that ``python -O`` would strip."""
    import subprocess
    import sys

    script = (
        "from datetime import UTC, datetime\n"
        "from uuid import uuid4\n"
        "from kopilka.ledger.domain import Account, LedgerInvariantError, Posting\n"
        "from kopilka.ledger.unit import LedgerChanges\n"
        "from kopilka.outbox.unit import UnitOfWork\n"
        "changes = LedgerChanges(UnitOfWork(datetime.now(UTC)), uuid4())\n"
        "try:\n"
        "    changes.add_entry(uuid4(), 'adjust', [('points', [Posting(Account.AVAILABLE, 5)])],"
        " occurred_at=datetime.now(UTC))\n"
        "except LedgerInvariantError:\n"
        "    print('refused')\n"
    )
    run = subprocess.run(
        [sys.executable, "-O", "-c", script], capture_output=True, text=True, check=True
    )
    assert run.stdout.strip() == "refused"


# -- earn and release ---------------------------------------------------------------------------


def test_earn_available_now() -> None:
    balance = Balance()
    expires = T0 + 365 * DAY
    lot_id = _lot_id()
    postings, lot = earn(
        balance,
        lot_id=lot_id,
        amount=120,
        now=T0,
        available_at=T0,
        expires_at=expires,
        source_id="purchase-1",
        rule_id="base",
    )
    assert postings == [
        Posting(Account.ISSUED, -120, "base"),
        Posting(Account.AVAILABLE, 120, "base"),
    ]
    assert balance == Balance(available=120)
    assert lot == Lot(lot_id, 120, 120, "available", T0, T0, expires, "purchase-1", "base")
    assert lot.dirty


def test_earn_pending_inside_the_return_window() -> None:
    balance = Balance(available=7)
    postings, lot = credit(balance, 50, available_at=T0 + RETURN_WINDOW, source_id="purchase-2")
    assert postings == [Posting(Account.ISSUED, -50), Posting(Account.PENDING, 50)]
    assert balance == Balance(available=7, pending=50)
    assert (lot.status, lot.remaining, lot.amount) == ("pending", 50, 50)
    assert (lot.earned_at, lot.available_at) == (T0, T0 + RETURN_WINDOW)


def test_earn_with_available_at_in_the_past_is_available() -> None:
    balance = Balance()
    _, lot = credit(balance, 5, available_at=T0 - DAY)
    assert lot.status == "available"
    assert balance == Balance(available=5)


def test_earn_from_another_source_account() -> None:
    balance = Balance()
    postings, _ = earn(
        balance,
        lot_id=_lot_id(),
        amount=9,
        now=T0,
        available_at=T0,
        expires_at=None,
        source_id=None,
        rule_id=None,
        source_account=Account.ADJUSTMENTS,
    )
    assert postings == [Posting(Account.ADJUSTMENTS, -9), Posting(Account.AVAILABLE, 9)]


def test_an_available_credit_pays_off_a_debt_first() -> None:
    balance = Balance(available=-30)
    postings, lot = credit(balance, 100)
    # The whole credit is posted; only the excess is spendable from the lot.
    assert postings == [Posting(Account.ISSUED, -100), Posting(Account.AVAILABLE, 100)]
    assert balance.available == 70
    assert (lot.amount, lot.remaining) == (100, 70)
    assert check_member(balance, [lot], []) == []


def test_a_credit_smaller_than_the_debt_leaves_an_empty_lot() -> None:
    balance = Balance(available=-150)
    _, lot = credit(balance, 100)
    assert balance.available == -50
    assert (lot.amount, lot.remaining) == (100, 0)
    assert check_member(balance, [lot], []) == []


def test_a_pending_credit_does_not_pay_off_a_debt() -> None:
    balance = Balance(available=-30)
    _, lot = credit(balance, 100, available_at=T0 + DAY)
    assert balance == Balance(available=-30, pending=100)
    assert lot.remaining == 100


@pytest.mark.parametrize("amount", [0, -1])
def test_earn_rejects_non_positive_amounts(amount: int) -> None:
    balance = Balance(available=3)
    with pytest.raises(InvalidInput) as info:
        credit(balance, amount)
    assert info.value.field == "amount"
    assert balance == Balance(available=3)


def test_release_only_after_the_window() -> None:
    balance = Balance(pending=80)
    due = T0 + RETURN_WINDOW
    first = make_lot(50, status="pending", available_at=due)
    second = make_lot(30, status="pending", available_at=due + DAY)
    lots = [first, second]

    assert release(balance, lots, due - timedelta(seconds=1)) == []
    assert balance == Balance(pending=80)
    assert [lot.status for lot in lots] == ["pending", "pending"]

    postings = release(balance, lots, due)
    assert postings == [Posting(Account.PENDING, -50), Posting(Account.AVAILABLE, 50)]
    assert balance == Balance(available=50, pending=30)
    assert [lot.status for lot in lots] == ["available", "pending"]
    assert remaining(lots) == [50, 30]

    postings = release(balance, lots, due + 10 * DAY)
    assert net(postings) == {Account.PENDING: -30, Account.AVAILABLE: 30}
    assert balance == Balance(available=80)
    assert check_member(balance, lots, []) == []
    # Releasing again changes nothing.
    assert release(balance, lots, due + 20 * DAY) == []


def test_release_pays_off_a_debt_first() -> None:
    balance = Balance(available=-20, pending=50)
    first = make_lot(15, status="pending", available_at=T0)
    second = make_lot(35, status="pending", available_at=T0)
    lots = [first, second]

    postings = release(balance, lots, T0)

    assert entry_is_balanced(postings)
    assert balance == Balance(available=30)
    assert remaining(lots) == [0, 30]
    assert check_member(balance, lots, []) == []


def test_release_of_a_fully_cancelled_pending_lot_posts_nothing() -> None:
    balance = Balance()
    lot = make_lot(40, remaining=0, status="pending", available_at=T0)
    assert release(balance, [lot], T0) == []
    assert lot.status == "available"
    assert balance == Balance()


# -- redeem ---------------------------------------------------------------------------------


def test_redeem_takes_fifo_and_posts_to_redeemed() -> None:
    a = make_lot(30, expires_at=T0 + 5 * DAY)
    b = make_lot(30, expires_at=T0 + 50 * DAY)
    c = make_lot(30)
    lots = [c, b, a]
    balance = Balance(available=90)

    postings, allocations = redeem(balance, lots, 45)

    assert postings == [Posting(Account.AVAILABLE, -45), Posting(Account.REDEEMED, 45)]
    assert allocations == [Allocation(a.id, 30), Allocation(b.id, 15)]
    assert balance == Balance(available=45)
    assert remaining(lots) == [30, 15, 0]
    assert check_member(balance, lots, []) == []


def test_redeem_everything() -> None:
    lots = [make_lot(10), make_lot(20, expires_at=T0)]
    balance = Balance(available=30)
    redeem(balance, lots, 30)
    assert balance == Balance()
    assert remaining(lots) == [0, 0]


def test_redeem_to_another_sink() -> None:
    balance = Balance(available=10)
    postings, _ = redeem(balance, [make_lot(10)], 4, sink=Account.ADJUSTMENTS)
    assert postings == [Posting(Account.AVAILABLE, -4), Posting(Account.ADJUSTMENTS, 4)]


def test_redeem_more_than_available_raises_and_changes_nothing() -> None:
    lots = [make_lot(30, expires_at=T0 + DAY), make_lot(20)]
    pending = make_lot(500, status="pending", available_at=T0 + DAY)
    lots.append(pending)
    balance = Balance(available=50, pending=500, held=7)
    before_lots = copy.deepcopy(lots)

    with pytest.raises(InsufficientBalance) as info:
        redeem(balance, lots, 51)

    assert info.value.extra == {"available": 50}
    assert info.value.field == "amount"
    assert balance == Balance(available=50, pending=500, held=7)
    assert lots == before_lots
    assert not any(lot.dirty for lot in lots)


def test_redeem_with_a_negative_balance_reports_zero_available() -> None:
    balance = Balance(available=-10)
    with pytest.raises(InsufficientBalance) as info:
        redeem(balance, [], 1)
    assert info.value.extra == {"available": 0}
    assert balance == Balance(available=-10)


@pytest.mark.parametrize("amount", [0, -5])
def test_redeem_rejects_non_positive_amounts(amount: int) -> None:
    lots = [make_lot(10)]
    balance = Balance(available=10)
    with pytest.raises(InvalidInput):
        redeem(balance, lots, amount)
    assert balance == Balance(available=10)
    assert remaining(lots) == [10]


# -- hold, capture, void ----------------------------------------------------------------------


def _three_lots() -> list[Lot]:
    return [
        make_lot(30, expires_at=T0 + 10 * DAY),
        make_lot(30, expires_at=T0 + 20 * DAY),
        make_lot(30),
    ]


def test_hold_moves_points_to_held() -> None:
    lots = _three_lots()
    balance = Balance(available=90)

    postings, allocations = hold(balance, lots, 50)

    assert postings == [Posting(Account.AVAILABLE, -50), Posting(Account.HELD, 50)]
    assert allocations == [Allocation(lots[0].id, 30), Allocation(lots[1].id, 20)]
    assert balance == Balance(available=40, held=50)
    assert remaining(lots) == [0, 10, 30]
    assert check_member(balance, lots, [(50, allocations)]) == []


def test_hold_more_than_available_raises_and_changes_nothing() -> None:
    lots = _three_lots()
    balance = Balance(available=90)
    before = copy.deepcopy(lots)
    with pytest.raises(InsufficientBalance):
        hold(balance, lots, 91)
    with pytest.raises(InvalidInput):
        hold(balance, lots, 0)
    assert balance == Balance(available=90)
    assert lots == before


def test_hold_then_capture_in_full() -> None:
    lots = _three_lots()
    balance = Balance(available=90)
    _, allocations = hold(balance, lots, 50)
    after_hold = snapshot(lots)

    postings = capture(balance, by_id(lots), allocations, 50, 50)

    assert postings == [Posting(Account.HELD, -50), Posting(Account.REDEEMED, 50)]
    assert balance == Balance(available=40)
    assert snapshot(lots) == after_hold
    assert check_member(balance, lots, []) == []


def test_partial_capture_gives_the_rest_back_to_the_lots_it_came_from() -> None:
    lots = _three_lots()
    balance = Balance(available=90)
    _, allocations = hold(balance, lots, 50)  # 30 from lot 0, 20 from lot 1

    postings = capture(balance, by_id(lots), allocations, 50, 35)

    # The capture keeps the soonest-expiring 35 (30 + 5); 15 go back to lot 1.
    assert postings == [
        Posting(Account.HELD, -35),
        Posting(Account.REDEEMED, 35),
        Posting(Account.HELD, -15),
        Posting(Account.AVAILABLE, 15),
    ]
    assert entry_is_balanced(postings)
    assert balance == Balance(available=55)
    assert remaining(lots) == [0, 25, 30]
    assert check_member(balance, lots, []) == []


def test_partial_capture_inside_the_first_allocation() -> None:
    lots = _three_lots()
    balance = Balance(available=90)
    _, allocations = hold(balance, lots, 50)

    capture(balance, by_id(lots), allocations, 50, 10)

    assert balance == Balance(available=80)
    assert remaining(lots) == [20, 30, 30]


@pytest.mark.parametrize("amount", [0, -1, 51])
def test_capture_outside_the_held_amount_is_invalid(amount: int) -> None:
    lots = _three_lots()
    balance = Balance(available=90)
    _, allocations = hold(balance, lots, 50)
    before_balance, before_lots = copy.copy(balance), snapshot(lots)

    with pytest.raises(InvalidInput):
        capture(balance, by_id(lots), allocations, 50, amount)

    assert balance == before_balance
    assert snapshot(lots) == before_lots


def test_void_restores_the_lots_exactly() -> None:
    lots = _three_lots()
    balance = Balance(available=90)
    before = snapshot(lots)
    _, allocations = hold(balance, lots, 75)

    postings = void(balance, by_id(lots), allocations, 75)

    assert postings == [Posting(Account.HELD, -75), Posting(Account.AVAILABLE, 75)]
    assert balance == Balance(available=90)
    assert snapshot(lots) == before


def test_void_pays_off_a_debt_before_refilling_lots() -> None:
    lots = _three_lots()
    balance = Balance(available=90)
    _, allocations = hold(balance, lots, 90)
    # A return of 40 more than there is, clawed back under allow_negative.
    purchase = make_lot(40, remaining=0)
    reversal = reverse(balance, [purchase], lots, 40, "allow_negative")
    assert balance == Balance(available=-40, held=90)
    assert reversal.reversed == 40

    void(balance, by_id(lots), allocations, 90)

    # 40 pay off the debt; 50 go back, latest-taken first.
    assert balance == Balance(available=50)
    assert remaining(lots) == [0, 20, 30]
    assert check_member(balance, [*lots, purchase], []) == []


def test_partial_capture_with_a_debt() -> None:
    lots = _three_lots()
    balance = Balance(available=90)
    _, allocations = hold(balance, lots, 90)
    balance.available = -30  # a clawback happened meanwhile

    capture(balance, by_id(lots), allocations, 90, 40)

    assert balance == Balance(available=20)
    assert remaining(lots) == [0, 0, 20]
    assert check_member(balance, lots, []) == []


# -- reverse --------------------------------------------------------------------------------


def test_reverse_cancels_the_purchase_pending_points_first() -> None:
    own = make_lot(100, status="pending", available_at=T0 + RETURN_WINDOW, source_id="p")
    other = make_lot(50, expires_at=T0 + DAY)
    balance = Balance(available=50, pending=100)

    result = reverse(balance, [own], [other], 40, "allow_negative")

    assert result.postings == [Posting(Account.PENDING, -40), Posting(Account.ISSUED, 40)]
    assert (result.reversed, result.not_clawed_back) == (40, 0)
    assert balance == Balance(available=50, pending=60)
    assert (own.remaining, other.remaining) == (60, 50)


def test_reverse_pending_then_own_available_then_others_fifo() -> None:
    own_pending = make_lot(20, status="pending", available_at=T0 + DAY, source_id="p")
    own_available = make_lot(60, remaining=30, expires_at=T0 + 300 * DAY, source_id="p")
    later = make_lot(50, expires_at=T0 + 20 * DAY)
    sooner = make_lot(50, expires_at=T0 + 10 * DAY)
    never = make_lot(50)
    other = [never, later, sooner]
    balance = Balance(available=180, pending=20)

    result = reverse(balance, [own_pending, own_available], other, 80, "cap_at_available")

    # 20 pending, then the purchase's own 30 (even though it expires last), then 30 FIFO.
    assert result.postings == [
        Posting(Account.PENDING, -20),
        Posting(Account.AVAILABLE, -60),
        Posting(Account.ISSUED, 80),
    ]
    assert (result.reversed, result.not_clawed_back) == (80, 0)
    assert balance == Balance(available=120, pending=0)
    assert (own_pending.remaining, own_available.remaining) == (0, 0)
    assert remaining(other) == [50, 50, 20]
    assert check_member(balance, [own_pending, own_available, *other], []) == []


def test_reverse_own_available_lot_before_sooner_expiring_others() -> None:
    own = make_lot(40, expires_at=T0 + 100 * DAY, source_id="p")
    other = make_lot(40, expires_at=T0 + DAY)
    balance = Balance(available=80)

    reverse(balance, [own], [other], 25, "allow_negative")

    assert (own.remaining, other.remaining) == (15, 40)
    assert balance == Balance(available=55)


def test_reverse_allow_negative_goes_into_debt_by_the_shortfall() -> None:
    own = make_lot(100, remaining=5, source_id="p")  # the member spent 95 of it
    other = make_lot(20, expires_at=T0 + DAY)
    balance = Balance(available=25)

    result = reverse(balance, [own], [other], 100, "allow_negative")

    assert result.postings == [Posting(Account.AVAILABLE, -100), Posting(Account.ISSUED, 100)]
    assert (result.reversed, result.not_clawed_back) == (100, 0)
    assert balance == Balance(available=-75)
    assert (own.remaining, other.remaining) == (0, 0)
    assert check_member(balance, [own, other], []) == []


def test_reverse_cap_at_available_takes_only_what_there_is() -> None:
    own = make_lot(100, remaining=5, source_id="p")
    other = make_lot(20, expires_at=T0 + DAY)
    balance = Balance(available=25)

    result = reverse(balance, [own], [other], 100, "cap_at_available")

    assert result.postings == [Posting(Account.AVAILABLE, -25), Posting(Account.ISSUED, 25)]
    assert (result.reversed, result.not_clawed_back) == (25, 75)
    assert balance == Balance(available=0)
    assert (own.remaining, other.remaining) == (0, 0)


def test_reverse_cap_at_available_with_nothing_available_posts_nothing() -> None:
    own = make_lot(100, remaining=0, source_id="p")
    balance = Balance()
    result = reverse(balance, [own], [], 100, "cap_at_available")
    assert result.postings == []
    assert (result.reversed, result.not_clawed_back) == (0, 100)
    assert balance == Balance()


def test_reverse_does_not_touch_other_pending_or_held_points() -> None:
    own = make_lot(10, remaining=0, source_id="p")
    other_pending = make_lot(100, status="pending", available_at=T0 + DAY)
    balance = Balance(available=0, pending=100, held=30)

    result = reverse(balance, [own], [other_pending], 10, "cap_at_available")

    assert result.reversed == 0 and result.not_clawed_back == 10
    assert other_pending.remaining == 100
    assert balance == Balance(pending=100, held=30)


def test_reverse_zero_posts_nothing_and_negative_is_invalid() -> None:
    own = make_lot(10, source_id="p")
    balance = Balance(available=10)
    result = reverse(balance, [own], [], 0, "allow_negative")
    assert (result.postings, result.reversed, result.not_clawed_back) == ([], 0, 0)
    with pytest.raises(InvalidInput):
        reverse(balance, [own], [], -1, "allow_negative")
    assert balance == Balance(available=10)
    assert own.remaining == 10


def test_a_later_earning_pays_off_a_clawback() -> None:
    balance = Balance()
    _, first = credit(balance, 100, source_id="p1")
    redeem(balance, [first], 80)
    reverse(balance, [first], [], 100, "allow_negative")
    assert balance.available == -80
    _, second = credit(balance, 50, now=T0 + DAY, source_id="p2")
    assert balance.available == -30
    assert second.remaining == 0
    with pytest.raises(InsufficientBalance):
        redeem(balance, [first, second], 1)
    _, third = credit(balance, 50, now=T0 + 2 * DAY, source_id="p3")
    assert balance.available == 20
    assert third.remaining == 20
    assert check_member(balance, [first, second, third], []) == []


# -- expire -----------------------------------------------------------------------------------


def test_expire_moves_only_lots_expired_at_as_of() -> None:
    as_of = T0 + 30 * DAY
    past = make_lot(10, expires_at=as_of - DAY)
    exactly = make_lot(20, remaining=15, expires_at=as_of)
    future = make_lot(30, expires_at=as_of + timedelta(seconds=1))
    never = make_lot(40)
    pending = make_lot(50, status="pending", available_at=as_of + DAY, expires_at=as_of - DAY)
    empty = make_lot(60, remaining=0, expires_at=as_of - DAY)
    lots = [past, exactly, future, never, pending, empty]
    balance = Balance(available=95, pending=50)

    postings = expire(balance, lots, as_of)

    assert postings == [Posting(Account.AVAILABLE, -25), Posting(Account.EXPIRED, 25)]
    assert balance == Balance(available=70, pending=50)
    assert remaining(lots) == [0, 0, 30, 40, 50, 0]
    assert not empty.dirty and not future.dirty
    assert check_member(balance, lots, []) == []


def test_expire_with_nothing_due_posts_nothing() -> None:
    lots = [make_lot(10, expires_at=T0 + DAY), make_lot(10)]
    balance = Balance(available=20)
    assert expire(balance, lots, T0) == []
    assert balance == Balance(available=20)
    assert remaining(lots) == [10, 10]


# -- proportional_share -----------------------------------------------------------------------


def test_proportional_share_three_thirds_add_up_to_the_whole() -> None:
    earned, total = 100, 3
    reversed_so_far = 0
    shares = []
    for returned in (1, 2, 3):
        share = proportional_share(earned, reversed_so_far, total, returned)
        shares.append(share)
        reversed_so_far += share
    assert shares == [33, 33, 34]
    assert reversed_so_far == earned


def test_proportional_share_examples() -> None:
    # floor(7 × 250 / 1000) = 1
    assert proportional_share(7, 0, 1000, 250) == 1
    assert proportional_share(7, 1, 1000, 500) == 2  # cumulative 3
    assert proportional_share(7, 3, 1000, 1000) == 4
    # Already reversed more than the target (an earlier rounding, a manual fix): nothing more.
    assert proportional_share(10, 9, 100, 50) == 0
    # Returning more than the purchase is capped at the purchase.
    assert proportional_share(10, 0, 100, 250) == 10
    # A purchase with no money total: everything left goes.
    assert proportional_share(10, 4, 0, 0) == 6
    assert proportional_share(0, 0, 100, 100) == 0


@st.composite
def partitions(draw: st.DrawFn) -> tuple[int, int, list[int]]:
    earned = draw(st.integers(0, 10**6))
    total = draw(st.integers(1, 10**7))
    cuts = draw(st.lists(st.integers(1, max(1, total - 1)), max_size=30, unique=True))
    points = sorted({cut for cut in cuts if 0 < cut < total})
    bounds = [0, *points, total]
    parts = [b - a for a, b in itertools.pairwise(bounds)]
    assert sum(parts) == total and all(part > 0 for part in parts)
    return earned, total, parts


@given(partitions())
def test_proportional_share_partial_returns_add_up_exactly(
    case: tuple[int, int, list[int]],
) -> None:
    earned, total, parts = case
    already = 0
    returned = 0
    for part in parts:
        returned += part
        share = proportional_share(earned, already, total, returned)
        assert share >= 0
        already += share
        assert already <= earned
        assert already == earned * returned // total
    assert returned == total
    assert already == earned


@given(
    earned=st.integers(0, 10**6),
    already=st.integers(0, 10**6),
    total=st.integers(1, 10**7),
    returned=st.integers(0, 2 * 10**7),
)
def test_proportional_share_never_exceeds_what_is_left(
    earned: int, already: int, total: int, returned: int
) -> None:
    share = proportional_share(earned, already, total, returned)
    assert share >= 0
    assert already + share <= max(earned, already)


# -- check_member -----------------------------------------------------------------------------


def test_check_member_on_a_consistent_member() -> None:
    lots = [
        make_lot(30, remaining=10),
        make_lot(20, status="pending", available_at=T0 + DAY),
        make_lot(5, remaining=0),
    ]
    holds = [(15, [Allocation(lots[0].id, 15)]), (5, [Allocation(lots[2].id, 5)])]
    assert check_member(Balance(available=10, pending=20, held=20), lots, holds) == []
    # A negative available balance with every lot empty is allowed.
    assert check_member(Balance(available=-7), [make_lot(5, remaining=0)], []) == []


def test_check_member_finds_each_violation() -> None:
    bad_lot = make_lot(10, remaining=11)
    problems = check_member(Balance(available=11), [bad_lot], [])
    assert len(problems) == 1 and "remaining 11 outside 0..10" in problems[0]

    negative_lot = make_lot(10, remaining=-1)
    problems = check_member(Balance(available=-1), [negative_lot], [])
    assert any("outside" in p for p in problems)

    pending_lot = make_lot(10, status="pending", available_at=T0 + DAY)
    problems = check_member(Balance(pending=9), [pending_lot], [])
    assert problems == ["pending balance 9 != pending lots 10"]

    problems = check_member(Balance(available=9), [make_lot(10)], [])
    assert problems == ["available balance 9 != available lots 10"]

    # Negative available with points left in a lot.
    problems = check_member(Balance(available=-5), [make_lot(10, remaining=3)], [])
    assert problems == ["available balance -5 != available lots 3"]

    problems = check_member(Balance(held=-1), [], [(-1, [Allocation(_lot_id(), -1)])])
    assert any("negative pending or held" in p for p in problems)

    problems = check_member(Balance(held=10), [], [(10, [Allocation(_lot_id(), 9)])])
    assert problems == ["hold of 10 has allocations that do not sum to it"]

    problems = check_member(Balance(held=10), [], [(4, [Allocation(_lot_id(), 4)])])
    assert problems == ["held balance 10 != open holds 4"]


def test_member_accounts() -> None:
    assert set(MEMBER_ACCOUNTS) == {Account.AVAILABLE, Account.PENDING, Account.HELD}


# -- the state machine ------------------------------------------------------------------------


@dataclass
class Purchase:
    total: int  # the purchase's money total, in minor units
    earned: int
    lot_ids: list[UUID]
    returned: int = 0
    already_reversed: int = 0


@dataclass
class OpenHold:
    amount: int
    allocations: list[Allocation]
    lots_by_id: dict[UUID, Lot] = field(repr=False)


@settings(max_examples=200, stateful_step_count=40, deadline=None)
class LedgerMachine(RuleBasedStateMachine):
    """One member in one currency, driven through every operation in random order."""

    def __init__(self) -> None:
        super().__init__()
        self.now = T0
        self.last_seen_now = T0
        self.balance = Balance()
        self.lots: list[Lot] = []
        self.holds: dict[int, OpenHold] = {}
        self.purchases: dict[str, Purchase] = {}
        self.postings: list[Posting] = []
        self.created = 0
        self.reversed_total = 0
        self.went_negative_allowed = False
        self._next_lot = 0
        self._next_hold = 0

    # -- helpers --

    def _new_lot_id(self) -> UUID:
        # Deterministic ids, so that id tie-breaks replay identically.
        self._next_lot += 1
        return UUID(int=self._next_lot)

    def _record(self, postings: list[Posting]) -> None:
        assert entry_is_balanced(postings), postings
        self.postings.extend(postings)

    def _frozen(self) -> tuple[Balance, list[tuple[UUID, int, int, str]]]:
        return copy.copy(self.balance), snapshot(self.lots)

    def _check_fifo(self, allocations: list[Allocation]) -> None:
        """Allocations drain lots in spending order; only the last one may stop part-way."""
        lots = by_id(self.lots)
        taken = [lots[a.lot_id] for a in allocations]
        assert taken == sorted(taken, key=fifo_key)
        assert all(lot.remaining == 0 for lot in taken[:-1])
        if taken:
            last = fifo_key(taken[-1])
            for lot in self.lots:
                if lot.status == "available" and lot.remaining > 0 and lot is not taken[-1]:
                    assert fifo_key(lot) > last, (lot, taken[-1])

    def _spend_amounts(self) -> st.SearchStrategy[int]:
        # Mostly what the member can afford: everything, some of it or a little more.
        available = max(self.balance.available, 0)
        return st.just(max(available, 1)) | st.integers(1, available + 20) | st.integers(1, 500)

    # -- rules --

    @rule(
        amount=st.integers(1, 300),
        pending=st.booleans(),
        expires_in_days=st.none() | st.sampled_from([7, 14, 30]) | st.integers(1, 60),
        total=st.integers(1, 50_000),
    )
    def earn(self, amount: int, pending: bool, expires_in_days: int | None, total: int) -> None:
        available_at = self.now + RETURN_WINDOW if pending else self.now
        expires_at = None if expires_in_days is None else available_at + expires_in_days * DAY
        source_id = f"purchase-{len(self.purchases) + 1}"
        debt = max(0, -self.balance.available)
        before = copy.copy(self.balance)
        postings, lot = earn(
            self.balance,
            lot_id=self._new_lot_id(),
            amount=amount,
            now=self.now,
            available_at=available_at,
            expires_at=expires_at,
            source_id=source_id,
            rule_id="base",
        )
        self._record(postings)
        self.created += amount
        self.lots.append(lot)
        self.purchases[source_id] = Purchase(total=total, earned=amount, lot_ids=[lot.id])
        assert lot.amount == amount
        if pending:
            assert lot.status == "pending" and lot.remaining == amount
            assert self.balance.pending == before.pending + amount
        else:
            assert lot.status == "available"
            assert lot.remaining == amount - min(amount, debt)
            assert self.balance.available == before.available + amount

    @rule(data=st.data())
    def redeem(self, data: st.DataObject) -> None:
        amount = data.draw(self._spend_amounts(), label="amount")
        before_balance, before_lots = self._frozen()
        try:
            postings, allocations = redeem(self.balance, self.lots, amount)
        except InsufficientBalance:
            assert amount > before_balance.available
            assert self.balance == before_balance
            assert snapshot(self.lots) == before_lots
            return
        assert amount <= before_balance.available
        assert sum(a.amount for a in allocations) == amount
        self._check_fifo(allocations)
        self._record(postings)

    @rule(data=st.data())
    def hold(self, data: st.DataObject) -> None:
        amount = data.draw(self._spend_amounts(), label="amount")
        before_balance, before_lots = self._frozen()
        try:
            postings, allocations = hold(self.balance, self.lots, amount)
        except InsufficientBalance:
            assert amount > before_balance.available
            assert self.balance == before_balance
            assert snapshot(self.lots) == before_lots
            return
        assert sum(a.amount for a in allocations) == amount
        self._check_fifo(allocations)
        self._record(postings)
        self._next_hold += 1
        self.holds[self._next_hold] = OpenHold(amount, allocations, by_id(self.lots))

    @precondition(lambda self: bool(self.holds))
    @rule(data=st.data())
    def capture(self, data: st.DataObject) -> None:
        hold_id = data.draw(st.sampled_from(sorted(self.holds)), label="hold")
        open_hold = self.holds[hold_id]
        amount = data.draw(st.integers(1, open_hold.amount), label="capture amount")
        held_before = self.balance.held
        in_debt = self.balance.available < 0
        before = {lot.id: lot.remaining for lot in self.lots}
        postings = capture(
            self.balance,
            open_hold.lots_by_id,
            open_hold.allocations,
            open_hold.amount,
            amount,
        )
        self._record(postings)
        del self.holds[hold_id]
        assert self.balance.held == held_before - open_hold.amount
        assert net(postings).get(Account.REDEEMED, 0) == amount
        if not in_debt:
            # The capture keeps the first ``amount`` points taken; the rest go back.
            expected = dict(before)
            to_skip = amount
            for allocation in open_hold.allocations:
                skip = min(allocation.amount, to_skip)
                to_skip -= skip
                expected[allocation.lot_id] += allocation.amount - skip
            assert {lot.id: lot.remaining for lot in self.lots} == expected

    @precondition(lambda self: bool(self.holds))
    @rule(data=st.data())
    def void(self, data: st.DataObject) -> None:
        hold_id = data.draw(st.sampled_from(sorted(self.holds)), label="hold")
        open_hold = self.holds.pop(hold_id)
        available_before = self.balance.available
        before = {lot.id: lot.remaining for lot in self.lots}
        postings = void(self.balance, open_hold.lots_by_id, open_hold.allocations, open_hold.amount)
        self._record(postings)
        assert self.balance.available == available_before + open_hold.amount
        if available_before >= 0:
            # Every allocation goes back to its lot.
            for allocation in open_hold.allocations:
                before[allocation.lot_id] += allocation.amount
            assert {lot.id: lot.remaining for lot in self.lots} == before

    @precondition(lambda self: any(p.returned < p.total for p in self.purchases.values()))
    @rule(data=st.data(), policy=st.sampled_from(["allow_negative", "cap_at_available"]))
    def return_purchase(self, data: st.DataObject, policy: ClawbackPolicy) -> None:
        open_ids = sorted(k for k, p in self.purchases.items() if p.returned < p.total)
        source_id = data.draw(st.sampled_from(open_ids), label="purchase")
        purchase = self.purchases[source_id]
        left = purchase.total - purchase.returned
        returned_now = data.draw(st.integers(1, left) | st.just(left), label="returned money")
        purchase.returned += returned_now
        share = proportional_share(
            purchase.earned, purchase.already_reversed, purchase.total, purchase.returned
        )
        assert share >= 0
        own = [lot for lot in self.lots if lot.id in purchase.lot_ids]
        other = [lot for lot in self.lots if lot.id not in purchase.lot_ids]
        own_pending_before = sum(lot.remaining for lot in own if lot.status == "pending")
        own_available_before = sum(lot.remaining for lot in own if lot.status == "available")
        spendable_before = sum(lot.remaining for lot in self.lots if lot.status == "available")
        other_before = {lot.id: lot.remaining for lot in other}

        result = reverse(self.balance, own, other, share, policy)

        self._record(result.postings)
        self.reversed_total += result.reversed
        purchase.already_reversed += share
        assert purchase.already_reversed <= purchase.earned
        if purchase.returned == purchase.total:
            assert purchase.already_reversed == purchase.earned
        assert result.reversed + result.not_clawed_back == share
        # Pending points of the purchase first, then its own available lot, then others.
        from_pending = min(share, own_pending_before)
        from_own = min(share - from_pending, own_available_before)
        from_available = min(share - from_pending, spendable_before)
        moved = net(result.postings)
        assert moved.get(Account.PENDING, 0) == -from_pending
        own_available_after = sum(lot.remaining for lot in own if lot.status == "available")
        assert own_available_after == own_available_before - from_own
        # Other lots only once the purchase's own points are gone, and then soonest-expiring
        # first: whatever was touched is a prefix of the spending order.
        touched = sorted(
            (lot for lot in other if lot.remaining != other_before[lot.id]), key=fifo_key
        )
        assert all(lot.status == "available" for lot in touched)
        if touched:
            assert own_available_after == 0
            assert all(lot.remaining == 0 for lot in touched[:-1])
            touched_ids = {lot.id for lot in touched}
            for lot in other:
                untouched = lot.id not in touched_ids and other_before[lot.id] > 0
                if lot.status == "available" and untouched:
                    assert fifo_key(lot) > fifo_key(touched[-1])
        shortfall = share - from_pending - from_available
        if policy == "allow_negative":
            assert result.not_clawed_back == 0
            assert moved.get(Account.AVAILABLE, 0) == -(from_available + shortfall)
            if shortfall:
                self.went_negative_allowed = True
        else:
            assert result.not_clawed_back == shortfall
            assert moved.get(Account.AVAILABLE, 0) == -from_available
        assert moved.get(Account.ISSUED, 0) == result.reversed

    @rule(days=st.sampled_from([1, 7, 14, 30]) | st.integers(1, 30))
    def advance_time(self, days: int) -> None:
        self.now += days * DAY

    @precondition(
        lambda self: any(
            moment > self.now
            for lot in self.lots
            for moment in (lot.available_at, lot.expires_at)
            if moment is not None
        )
    )
    @rule()
    def advance_to_next_deadline(self) -> None:
        """Jump exactly to the next release or expiry moment, where off-by-one bugs live."""
        self.now = min(
            moment
            for lot in self.lots
            for moment in (lot.available_at, lot.expires_at)
            if moment is not None and moment > self.now
        )

    @rule()
    def expire(self) -> None:
        postings = expire(self.balance, self.lots, self.now)
        self._record(postings)
        for lot in self.lots:
            expired = lot.expires_at is not None and lot.expires_at <= self.now
            if lot.status == "available" and expired:
                assert lot.remaining == 0

    @rule()
    def release(self) -> None:
        postings = release(self.balance, self.lots, self.now)
        self._record(postings)
        for lot in self.lots:
            assert lot.status == "available" or lot.available_at > self.now

    # -- invariants --

    @invariant()
    def balance_is_the_sum_of_member_postings(self) -> None:
        totals = Counter[Account]()
        for posting in self.postings:
            totals[posting.account] += posting.amount
        assert self.balance.available == totals[Account.AVAILABLE]
        assert self.balance.pending == totals[Account.PENDING]
        assert self.balance.held == totals[Account.HELD]

    @invariant()
    def member_invariants_hold(self) -> None:
        open_holds = [(h.amount, h.allocations) for h in self.holds.values()]
        assert check_member(self.balance, self.lots, open_holds) == []

    @invariant()
    def no_lot_below_zero(self) -> None:
        assert all(lot.remaining >= 0 for lot in self.lots)

    @invariant()
    def only_available_goes_negative_and_only_by_a_clawback(self) -> None:
        assert self.balance.held >= 0
        assert self.balance.pending >= 0
        if self.balance.available < 0:
            assert self.went_negative_allowed

    @invariant()
    def points_are_conserved(self) -> None:
        assert sum(p.amount for p in self.postings) == 0
        totals = Counter[Account]()
        for posting in self.postings:
            totals[posting.account] += posting.amount
        member = self.balance.available + self.balance.pending + self.balance.held
        program = sum(totals[account] for account in Account if account not in MEMBER_ACCOUNTS)
        assert member == -program
        # Every point earn created is still the member's, was taken back by a return, or
        # left through a program account.
        issued_out = -sum(
            p.amount for p in self.postings if p.account is Account.ISSUED and p.amount < 0
        )
        assert issued_out == self.created
        assert self.created == (
            member
            + self.reversed_total
            + totals[Account.REDEEMED]
            + totals[Account.EXPIRED]
            + totals[Account.ADJUSTMENTS]
        )

    @invariant()
    def clock_only_moves_forward(self) -> None:
        assert self.now >= self.last_seen_now
        self.last_seen_now = self.now
        assert all(lot.earned_at <= self.now for lot in self.lots)


TestLedgerMachine = LedgerMachine.TestCase
