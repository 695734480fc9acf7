"""Pure ledger maths for one member in one currency: postings, lots, FIFO, reversal.

No I/O here. The service loads a member's balance and open lots under the member's lock,
calls these functions, and writes back what they changed. Each operation returns the
postings of one journal entry; they always sum to zero.

Invariants (checked by :func:`check_member` and by ``kopilka ledger verify``):

* ``balance.pending`` equals the remaining of the member's pending lots;
* ``max(balance.available, 0)`` equals the remaining of the available lots — a negative
  available balance (a clawback under the ``allow_negative`` policy) means every lot is empty;
* ``balance.held`` equals the sum of open holds, each hold's allocations sum to its amount;
* no lot's ``remaining`` is negative or above its ``amount``; no balance but ``available`` is
  negative, and ``available`` only through a clawback.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Literal
from uuid import UUID

from kopilka.errors import InsufficientBalance, InvalidInput
from kopilka.programs.schemas import ClawbackPolicy

BalanceKey = tuple[UUID, str]  # (member, currency)


class LedgerInvariantError(RuntimeError):
    """A change would break the books (an unbalanced entry, a lot below zero): a bug, never
    bad input. Raised whatever the interpreter's flags, unlike ``assert``."""


class Account(StrEnum):
    # The member's side.
    AVAILABLE = "available"
    PENDING = "pending"
    HELD = "held"
    # The program's side: where points come from and where they go.
    ISSUED = "issued"
    REDEEMED = "redeemed"
    EXPIRED = "expired"
    ADJUSTMENTS = "adjustments"
    # Points on their way from one member to another (two duplicate profiles merged): each
    # side's entry balances against it, and together they leave it at zero.
    TRANSFERS = "transfers"


MEMBER_ACCOUNTS = (Account.AVAILABLE, Account.PENDING, Account.HELD)


@dataclass(frozen=True)
class Posting:
    account: Account
    amount: int
    rule_id: str | None = None


@dataclass
class Balance:
    available: int = 0
    pending: int = 0
    held: int = 0

    def apply(self, postings: Iterable[Posting]) -> None:
        for posting in postings:
            if posting.account is Account.AVAILABLE:
                self.available += posting.amount
            elif posting.account is Account.PENDING:
                self.pending += posting.amount
            elif posting.account is Account.HELD:
                self.held += posting.amount


@dataclass
class Lot:
    id: UUID
    amount: int
    remaining: int
    status: Literal["pending", "available"]
    earned_at: datetime
    available_at: datetime
    expires_at: datetime | None
    source_id: str | None = None
    rule_id: str | None = None
    # Points of this lot that ran out (analytics' breakage reads it): only ``expire`` adds.
    expired: int = 0
    dirty: bool = field(default=False, compare=False)

    def take(self, amount: int) -> None:
        if not 0 <= amount <= self.remaining:
            raise LedgerInvariantError("a lot never goes below zero")
        self.remaining -= amount
        self.dirty = True

    def give_back(self, amount: int) -> None:
        if amount < 0 or self.remaining + amount > self.amount:
            raise LedgerInvariantError("a lot never holds more than it was given")
        self.remaining += amount
        self.dirty = True


@dataclass(frozen=True)
class Allocation:
    """``amount`` taken from lot ``lot_id`` by a hold or redemption."""

    lot_id: UUID
    amount: int


def spending_order(lot: Lot) -> tuple[bool, datetime, datetime, UUID]:
    """Soonest-expiring first; lots that never expire last; then oldest; id breaks ties."""
    never = lot.expires_at is None
    expires = lot.expires_at if lot.expires_at is not None else lot.earned_at
    return (never, expires, lot.earned_at, lot.id)


def _spendable(lots: Iterable[Lot]) -> list[Lot]:
    return sorted(
        (lot for lot in lots if lot.status == "available" and lot.remaining > 0),
        key=spending_order,
    )


def take_fifo(lots: Iterable[Lot], amount: int) -> list[Allocation]:
    """Take ``amount`` from the available lots, soonest-expiring first.

    The caller has checked that the lots hold enough; taking more is a bug, not bad input.
    """
    allocations: list[Allocation] = []
    left = amount
    for lot in _spendable(lots):
        if left == 0:
            break
        take = min(lot.remaining, left)
        lot.take(take)
        allocations.append(Allocation(lot.id, take))
        left -= take
    if left != 0:
        raise LedgerInvariantError("lots hold less than the available balance")
    return allocations


def _debt(balance: Balance) -> int:
    return max(0, -balance.available)


def _require_positive(amount: int, field_name: str = "amount") -> None:
    if amount <= 0:
        raise InvalidInput(f"{field_name} must be a positive integer", field=field_name)


# --- earning -------------------------------------------------------------------------------


def earn(
    balance: Balance,
    *,
    lot_id: UUID,
    amount: int,
    now: datetime,
    available_at: datetime,
    expires_at: datetime | None,
    source_id: str | None,
    rule_id: str | None,
    source_account: Account = Account.ISSUED,
) -> tuple[list[Posting], Lot]:
    """Credit ``amount`` as a new lot: pending until ``available_at`` if that is later than now.

    An available credit first pays off a negative balance left by a clawback, so the new lot
    holds only what is left over.
    """
    _require_positive(amount)
    if available_at > now:
        lot = Lot(
            lot_id,
            amount,
            amount,
            "pending",
            now,
            available_at,
            expires_at,
            source_id,
            rule_id,
            dirty=True,
        )
        postings = [
            Posting(source_account, -amount, rule_id),
            Posting(Account.PENDING, amount, rule_id),
        ]
    else:
        remaining = amount - min(amount, _debt(balance))
        lot = Lot(
            lot_id,
            amount,
            remaining,
            "available",
            now,
            now,
            expires_at,
            source_id,
            rule_id,
            dirty=True,
        )
        postings = [
            Posting(source_account, -amount, rule_id),
            Posting(Account.AVAILABLE, amount, rule_id),
        ]
    balance.apply(postings)
    return postings, lot


def release(balance: Balance, lots: Iterable[Lot], as_of: datetime) -> list[Posting]:
    """Make pending lots whose return window has passed available."""
    postings: list[Posting] = []
    for lot in lots:
        if lot.status != "pending" or lot.available_at > as_of:
            continue
        amount = lot.remaining
        lot.status = "available"
        lot.dirty = True
        if amount == 0:
            continue
        # The released points pay off a clawback debt first, like any available credit.
        lot.remaining = amount - min(amount, _debt(balance))
        step = [
            Posting(Account.PENDING, -amount, lot.rule_id),
            Posting(Account.AVAILABLE, amount, lot.rule_id),
        ]
        balance.apply(step)
        postings.extend(step)
    return postings


# --- spending ------------------------------------------------------------------------------


def _check_spendable(balance: Balance, amount: int) -> None:
    _require_positive(amount)
    if balance.available < amount:
        raise InsufficientBalance(
            f"available balance is {max(balance.available, 0)}, {amount} requested",
            field="amount",
            available=max(balance.available, 0),
        )


def redeem(
    balance: Balance,
    lots: Iterable[Lot],
    amount: int,
    *,
    sink: Account = Account.REDEEMED,
) -> tuple[list[Posting], list[Allocation]]:
    """Spend ``amount`` at once; never below zero."""
    _check_spendable(balance, amount)
    allocations = take_fifo(lots, amount)
    postings = [Posting(Account.AVAILABLE, -amount), Posting(sink, amount)]
    balance.apply(postings)
    return postings, allocations


def hold(
    balance: Balance, lots: Iterable[Lot], amount: int
) -> tuple[list[Posting], list[Allocation]]:
    """Reserve ``amount``: it leaves the available balance and its lots until capture or void."""
    _check_spendable(balance, amount)
    allocations = take_fifo(lots, amount)
    postings = [Posting(Account.AVAILABLE, -amount), Posting(Account.HELD, amount)]
    balance.apply(postings)
    return postings, allocations


def _give_back(
    balance: Balance,
    lots_by_id: dict[UUID, Lot],
    allocations: Sequence[Allocation],
    amount: int,
    source: Account = Account.HELD,
) -> list[Posting]:
    """Return ``amount`` from ``source`` (a hold, or points redeemed) to the available
    balance and to the lots it came from.

    Latest-taken allocations are given back first, so a partial capture keeps the
    soonest-expiring points spent. What pays off a clawback debt goes to no lot.
    """
    if amount == 0:
        return []
    postings = [Posting(source, -amount), Posting(Account.AVAILABLE, amount)]
    to_lots = amount - min(amount, _debt(balance))
    for allocation in reversed(allocations):
        if to_lots == 0:
            break
        back = min(allocation.amount, to_lots)
        lots_by_id[allocation.lot_id].give_back(back)
        to_lots -= back
    balance.apply(postings)
    return postings


def capture(
    balance: Balance,
    lots_by_id: dict[UUID, Lot],
    allocations: Sequence[Allocation],
    held_amount: int,
    capture_amount: int,
) -> list[Posting]:
    """Capture ``capture_amount`` of a hold of ``held_amount``; the rest goes back."""
    if not 0 < capture_amount <= held_amount:
        raise InvalidInput(
            f"capture amount must be between 1 and the held {held_amount}", field="amount"
        )
    postings = [Posting(Account.HELD, -capture_amount), Posting(Account.REDEEMED, capture_amount)]
    balance.apply(postings)
    kept = _allocations_after_capture(allocations, capture_amount)
    postings += _give_back(balance, lots_by_id, kept, held_amount - capture_amount)
    return postings


def _allocations_after_capture(
    allocations: Sequence[Allocation], captured: int
) -> list[Allocation]:
    """The part of the allocations not consumed by a capture (the capture keeps the first)."""
    left: list[Allocation] = []
    to_skip = captured
    for allocation in allocations:
        skip = min(allocation.amount, to_skip)
        to_skip -= skip
        if allocation.amount > skip:
            left.append(Allocation(allocation.lot_id, allocation.amount - skip))
    return left


def void(
    balance: Balance,
    lots_by_id: dict[UUID, Lot],
    allocations: Sequence[Allocation],
    held_amount: int,
) -> list[Posting]:
    """Cancel a hold: every held point goes back where it came from."""
    return _give_back(balance, lots_by_id, allocations, held_amount)


# --- returns, expiry, adjustments -----------------------------------------------------------


@dataclass(frozen=True)
class Reversal:
    postings: list[Posting]
    reversed: int  # points taken back
    not_clawed_back: int  # points the cap policy left with the member


def reverse(
    balance: Balance,
    purchase_lots: Sequence[Lot],
    other_lots: Sequence[Lot],
    amount: int,
    policy: ClawbackPolicy,
) -> Reversal:
    """Take back ``amount`` points earned by a purchase that is being returned.

    Order: the purchase's own pending points (cancelled inside the return window), then its
    own lot if still available, then other available lots soonest-expiring first. If the
    member has spent them, ``allow_negative`` leaves a negative available balance that later
    earnings pay off; ``cap_at_available`` takes back only what there is.
    """
    if amount < 0:
        raise InvalidInput("amount must not be negative", field="amount")
    from_pending = 0
    for lot in purchase_lots:
        if lot.status == "pending" and from_pending < amount:
            take = min(lot.remaining, amount - from_pending)
            lot.take(take)
            from_pending += take
    from_available = 0
    own_available = [lot for lot in purchase_lots if lot.status == "available"]
    for lot in [*_spendable(own_available), *_spendable(other_lots)]:
        if from_pending + from_available == amount:
            break
        take = min(lot.remaining, amount - from_pending - from_available)
        lot.take(take)
        from_available += take
    shortfall = amount - from_pending - from_available
    into_debt = shortfall if policy == "allow_negative" else 0
    total = from_pending + from_available + into_debt
    postings: list[Posting] = []
    if from_pending:
        postings.append(Posting(Account.PENDING, -from_pending))
    if from_available + into_debt:
        postings.append(Posting(Account.AVAILABLE, -(from_available + into_debt)))
    if total:
        postings.append(Posting(Account.ISSUED, total))
    balance.apply(postings)
    return Reversal(postings, total, shortfall - into_debt)


def expire(balance: Balance, lots: Iterable[Lot], as_of: datetime) -> list[Posting]:
    """Move what is left in available lots expired at ``as_of`` to the expired account;
    each lot counts what ran out of it in ``expired``."""
    amount = 0
    for lot in lots:
        if (
            lot.status == "available"
            and lot.remaining > 0
            and lot.expires_at is not None
            and lot.expires_at <= as_of
        ):
            amount += lot.remaining
            lot.expired += lot.remaining
            lot.take(lot.remaining)
    if amount == 0:
        return []
    postings = [Posting(Account.AVAILABLE, -amount), Posting(Account.EXPIRED, amount)]
    balance.apply(postings)
    return postings


def proportional_share(earned: int, already_reversed: int, total: int, returned_so_far: int) -> int:
    """Points to take back now so that, cumulatively, floor(earned × returned / total) is gone.

    Working on cumulative amounts means several partial returns add up to exactly the points
    earned when everything has come back, whatever rounding each step did.
    """
    if total <= 0:
        return max(0, earned - already_reversed)
    target = earned * min(returned_so_far, total) // total
    return max(0, target - already_reversed)


# --- checks --------------------------------------------------------------------------------


def transfer_out(balance: Balance, lots: Iterable[Lot]) -> tuple[list[Posting], list[Lot]]:
    """Everything a member holds in one currency leaves for the transfers account (their
    profile is merged into another): each lot with points is emptied. Returns the postings
    and copies of the lots as they stood, for the receiving member to get them back with
    their own expiry and release dates. The caller refuses a member with points on hold or
    a negative balance (nothing there to move)."""
    if balance.held or balance.available < 0:
        raise LedgerInvariantError("only points without holds or debts are transferred")
    moved: list[Lot] = []
    for lot in sorted(lots, key=spending_order):
        if lot.remaining > 0:
            moved.append(
                Lot(
                    lot.id,
                    lot.remaining,
                    lot.remaining,
                    lot.status,
                    lot.earned_at,
                    lot.available_at,
                    lot.expires_at,
                    lot.source_id,
                    lot.rule_id,
                )
            )
            lot.take(lot.remaining)
    available = sum(lot.amount for lot in moved if lot.status == "available")
    pending = sum(lot.amount for lot in moved if lot.status == "pending")
    postings = [
        p
        for p in (
            Posting(Account.AVAILABLE, -available),
            Posting(Account.PENDING, -pending),
            Posting(Account.TRANSFERS, available + pending),
        )
        if p.amount
    ]
    balance.apply(postings)
    return postings, moved


def transfer_in(
    balance: Balance, moved: Iterable[Lot], *, new_ids: Iterable[UUID], now: datetime
) -> tuple[list[Posting], list[Lot]]:
    """The lots ``transfer_out`` took from another member, credited to this one from the
    transfers account: each keeps its expiry, and a pending one its release date (an
    available credit pays off a negative balance first, as any credit does)."""
    postings: list[Posting] = []
    lots: list[Lot] = []
    for lot, lot_id in zip(moved, new_ids, strict=False):
        made, new_lot = earn(
            balance,
            lot_id=lot_id,
            amount=lot.amount,
            now=now,
            available_at=lot.available_at if lot.status == "pending" else now,
            expires_at=lot.expires_at,
            source_id=f"merge:{lot.id}",
            rule_id=lot.rule_id,
            source_account=Account.TRANSFERS,
        )
        postings.extend(made)
        lots.append(new_lot)
    return postings, lots


def entry_is_balanced(postings: Iterable[Posting]) -> bool:
    return sum(p.amount for p in postings) == 0


def check_member(
    balance: Balance, lots: Iterable[Lot], open_holds: Iterable[tuple[int, Sequence[Allocation]]]
) -> list[str]:
    """Every invariant of one member in one currency; returns the violations found."""
    problems: list[str] = []
    lots = list(lots)
    for lot in lots:
        if not 0 <= lot.remaining <= lot.amount:
            problems.append(f"lot {lot.id} remaining {lot.remaining} outside 0..{lot.amount}")
    pending = sum(lot.remaining for lot in lots if lot.status == "pending")
    available = sum(lot.remaining for lot in lots if lot.status == "available")
    if pending != balance.pending:
        problems.append(f"pending balance {balance.pending} != pending lots {pending}")
    if available != max(balance.available, 0):
        problems.append(f"available balance {balance.available} != available lots {available}")
    if balance.pending < 0 or balance.held < 0:
        problems.append(f"negative pending or held balance: {balance}")
    held = 0
    for amount, allocations in open_holds:
        held += amount
        if sum(a.amount for a in allocations) != amount:
            problems.append(f"hold of {amount} has allocations that do not sum to it")
    if held != balance.held:
        problems.append(f"held balance {balance.held} != open holds {held}")
    return problems


# --- refunds of completed redemptions --------------------------------------------------------
# A one-step redemption that is later undone (a reward cancelled before it was handed out)
# is refunded by a new entry, redeemed → available: the ledger stays append-only.


def refund(
    balance: Balance,
    lots_by_id: dict[UUID, Lot],
    allocations: Sequence[Allocation],
    amount: int,
) -> list[Posting]:
    """Give back a completed one-step redemption of ``amount``, taken from the lots by
    ``allocations``: each allocation returns to the lot it came from.

    A lot that has expired since still gets its points back; the expiry job expires them
    as it would any other. What pays off a clawback debt goes to no lot (as on a void), so
    the available lots still sum to ``max(available, 0)``; the latest-taken allocations
    (the latest-expiring points) are filled first then, as a void fills them.
    """
    _require_positive(amount)
    if sum(a.amount for a in allocations) != amount:
        raise LedgerInvariantError("allocations must sum to the redemption")
    return _give_back(balance, lots_by_id, allocations, amount, Account.REDEEMED)
