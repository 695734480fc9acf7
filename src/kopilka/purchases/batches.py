"""A batch of purchases on its way through ingest, and what happened to each."""

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from kopilka.errors import KopilkaError
from kopilka.idempotency.service import StoredAnswer
from kopilka.ledger.domain import Balance, BalanceKey, Lot
from kopilka.members.service import MemberHit
from kopilka.purchases.payments import Settlement
from kopilka.purchases.schemas import PurchaseCreate


@dataclass
class Outcome:
    """What happened to one purchase of a batch: a result, or an error; ``replayed`` if it
    was answered from an earlier identical request."""

    status: int
    result: dict[str, Any] | None = None
    error: KopilkaError | None = None
    replayed: bool = False


@dataclass
class Batch:
    """A batch of purchases on its way through :meth:`PurchaseService.ingest`."""

    purchases: Sequence[PurchaseCreate]
    outcomes: list[Outcome | None]
    members: list[MemberHit | None]
    balances: dict[BalanceKey, Balance]
    # Stored answers of purchases already recorded (None: look them up).
    records: dict[str, StoredAnswer] | None = None
    settlements: dict[int, Settlement] = field(default_factory=dict)
    # The locked lots that points paying at the till come from.
    lots: dict[BalanceKey, list[Lot]] = field(default_factory=dict)
    # A single purchase's tier window, read with its member's lock.
    tier_read: Any = None
