"""Gift card and wallet rules without a database: what a movement may do and what it leaves.

A card holds money: an integer number of minor units (kopecks for RUB) of its currency,
never a float. Every movement is a :class:`Movement` with a signed amount; applying it
gives the card its next sequence number and a new balance. The rules here guarantee that
the balance never goes below zero and always equals the sum of the movements; the service
applies the same decision with a conditional update, so the database enforces it too.

Expiry: a gift card without an explicit ``expires_at`` or ``valid_days`` expires
``DEFAULT_VALID_DAYS`` days after it was issued, unless it is issued ``never_expires``.
A card is expired from its ``expires_at`` on (the instant itself included): payments and
top-ups are refused from then, before the expiry job has emptied it. Wallets never expire.
"""

import re
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from kopilka.errors import Conflict, InsufficientBalance, InvalidInput
from kopilka.kit.codes import normalise_code

GIFT_CARD = "gift_card"
WALLET = "wallet"

ACTIVE = "active"
DISABLED = "disabled"
EXPIRED = "expired"

ISSUE = "issue"
TOP_UP = "top_up"
PAYMENT = "payment"
REFUND = "refund"
EXPIRY = "expiry"
CREDITS = frozenset({ISSUE, TOP_UP, REFUND})
DEBITS = frozenset({PAYMENT, EXPIRY})

DEFAULT_VALID_DAYS = 365
MAX_VALID_DAYS = 36_500
# The most a top-up may bring a card to: 10 billion roubles in kopecks. It keeps sums far
# from the 64-bit limit and catches amounts sent in the wrong unit.
MAX_BALANCE = 10**12
MAX_BATCH = 10_000
CARD_PATTERN = "GC-####-####-####"
WALLET_PATTERN = "W-####-####-####"
# Imported card numbers: what a till can scan or a person type, with no blanks inside.
CODE_SHAPE = re.compile(r"[A-Z0-9][A-Z0-9._-]{3,99}")


class GiftCardExpired(Conflict):
    type_slug = "gift-card-expired"
    title = "Gift card expired"


class GiftCardDisabled(Conflict):
    type_slug = "gift-card-disabled"
    title = "Gift card disabled"


@dataclass(frozen=True)
class Card:
    """What the rules need of a card: its kind, balance, status, expiry and the sequence
    number of its latest movement."""

    kind: str
    balance: int
    status: str
    expires_at: datetime | None
    seq: int

    def expired_at(self, now: datetime) -> bool:
        return self.status == EXPIRED or (self.expires_at is not None and self.expires_at <= now)

    def status_at(self, now: datetime) -> str:
        """The status as a till sees it: a card past its expiry is expired even before the
        expiry job has run."""
        return EXPIRED if self.expired_at(now) else self.status

    def available_at(self, now: datetime) -> int:
        """What a payment could take now: the balance of an active card, else nothing."""
        return self.balance if self.status_at(now) == ACTIVE else 0

    @property
    def field(self) -> str:
        """The request field that names the card: its code, or the wallet's member."""
        return "member_id" if self.kind == WALLET else "code"


@dataclass(frozen=True)
class Movement:
    kind: str
    amount: int  # signed: credits positive, debits negative
    balance_after: int
    seq: int


def _apply(card: Card, kind: str, amount: int) -> tuple[Card, Movement]:
    balance = card.balance + amount
    if balance < 0:
        raise AssertionError(f"a {kind} of {amount} would take the card below zero")
    seq = card.seq + 1
    return replace(card, balance=balance, seq=seq), Movement(kind, amount, balance, seq)


# --- input ------------------------------------------------------------------------------------


def check_amount(amount: int, field: str = "amount") -> None:
    if not 1 <= amount <= MAX_BALANCE:
        raise InvalidInput(f"{field} must be between 1 and {MAX_BALANCE} minor units", field=field)


def card_code(code: str) -> str:
    """An imported card number in its stored form (upper case, no surrounding blanks)."""
    normalised = normalise_code(code)
    if not CODE_SHAPE.fullmatch(normalised):
        raise InvalidInput(
            "a card code is 4 to 100 characters: letters A-Z, digits, '.', '_' or '-'",
            field="code",
        )
    return normalised


def expiry_of(
    now: datetime,
    *,
    expires_at: datetime | None = None,
    valid_days: int | None = None,
    never_expires: bool = False,
) -> datetime | None:
    """When a gift card issued at ``now`` expires: at ``expires_at``, ``valid_days`` days
    after issue, never, or by default ``DEFAULT_VALID_DAYS`` days after issue."""
    given = [
        name
        for name, value in (
            ("expires_at", expires_at),
            ("valid_days", valid_days),
            ("never_expires", never_expires or None),
        )
        if value is not None
    ]
    if len(given) > 1:
        raise InvalidInput(
            "give at most one of expires_at, valid_days and never_expires", field=given[1]
        )
    if expires_at is not None:
        return future(expires_at, now)
    if valid_days is not None:
        if not 1 <= valid_days <= MAX_VALID_DAYS:
            raise InvalidInput(
                f"valid_days must be between 1 and {MAX_VALID_DAYS}", field="valid_days"
            )
        return now + timedelta(days=valid_days)
    if never_expires:
        return None
    return now + timedelta(days=DEFAULT_VALID_DAYS)


def future(expires_at: datetime, now: datetime) -> datetime:
    if expires_at.tzinfo is None:
        raise InvalidInput("expires_at needs a time zone", field="expires_at")
    if expires_at <= now:
        raise InvalidInput("expires_at must be in the future", field="expires_at")
    return expires_at


# --- movements --------------------------------------------------------------------------------


def issue(kind: str, amount: int, expires_at: datetime | None) -> tuple[Card, Movement]:
    """A new active card and its first movement: the issue of ``amount``."""
    check_amount(amount)
    return _apply(Card(kind, 0, ACTIVE, expires_at, 0), ISSUE, amount)


def open_wallet() -> Card:
    """A member's wallet before its first top-up: empty, active, never expiring."""
    return Card(WALLET, 0, ACTIVE, None, 0)


def _require_usable(card: Card, now: datetime, doing: str) -> None:
    if card.expired_at(now):
        when = card.expires_at.isoformat() if card.expires_at else None
        raise GiftCardExpired(
            f"the card expired at {when}: it cannot be {doing}", field=card.field, expired_at=when
        )
    if card.status == DISABLED:
        raise GiftCardDisabled(f"the card is disabled: it cannot be {doing}", field=card.field)


def top_up(card: Card, amount: int, now: datetime) -> tuple[Card, Movement]:
    check_amount(amount)
    _require_usable(card, now, "topped up")
    if card.balance + amount > MAX_BALANCE:
        raise InvalidInput(
            f"a card holds at most {MAX_BALANCE}; this one has {card.balance}", field="amount"
        )
    return _apply(card, TOP_UP, amount)


def pay(
    card: Card, amount: int, now: datetime, *, allow_partial: bool = False
) -> tuple[Card, Movement]:
    """Take ``amount`` from the card; with ``allow_partial``, take what there is up to
    ``amount`` (a split payment: the till collects the rest by other means)."""
    check_amount(amount)
    _require_usable(card, now, "paid with")
    take = min(amount, card.balance) if allow_partial else amount
    if take == 0 or take > card.balance:
        raise InsufficientBalance(
            f"the card has {card.balance}, the payment needs {amount}",
            field="amount",
            balance=card.balance,
        )
    return _apply(card, PAYMENT, -take)


def refund(
    card: Card, *, paid: int, refunded: int, amount: int | None, now: datetime
) -> tuple[Card, Movement]:
    """Give back ``amount`` of a payment that took ``paid`` and has had ``refunded`` given
    back already; without ``amount``, all that is left of it.

    Refunds go to active and disabled cards (a disabled card keeps its money); an expired
    card takes none: its balance is gone, and the till refunds by other means.
    """
    if card.expired_at(now):
        raise GiftCardExpired(
            "the card has expired: refund this payment by other means", field=card.field
        )
    room = paid - refunded
    if room <= 0:
        raise Conflict("the payment has been refunded in full", field="payment_id")
    if amount is not None:
        check_amount(amount)
        if amount > room:
            raise InvalidInput(
                f"at most {room} of this payment is left to refund", field="amount", refundable=room
            )
    return _apply(card, REFUND, room if amount is None else amount)


def expire(card: Card, as_of: datetime) -> tuple[Card, Movement | None] | None:
    """An overdue card closed as expired, with the movement that takes what is left on it
    (None when it is empty); None if the card is not due at ``as_of``."""
    if card.status == EXPIRED or card.expires_at is None or card.expires_at > as_of:
        return None
    closed = replace(card, status=EXPIRED)
    if card.balance == 0:
        return closed, None
    return _apply(closed, EXPIRY, -card.balance)


def change(
    card: Card,
    now: datetime,
    *,
    status: str | None = None,
    expires_at: datetime | None = None,
    never_expires: bool = False,
) -> Card:
    """A card disabled, enabled, or given another expiry by an administrator. Expiry is
    final: an expired card stays expired."""
    if card.expired_at(now):
        raise GiftCardExpired("an expired card cannot be changed", field=card.field)
    if expires_at is not None and never_expires:
        raise InvalidInput("give expires_at or never_expires, not both", field="never_expires")
    if status is not None and status not in (ACTIVE, DISABLED):
        raise InvalidInput("status must be active or disabled", field="status")
    changed = replace(card, status=status or card.status)
    if expires_at is not None:
        changed = replace(changed, expires_at=future(expires_at, now))
    elif never_expires:
        changed = replace(changed, expires_at=None)
    return changed


# --- pages ------------------------------------------------------------------------------------
