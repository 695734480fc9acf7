"""The ledger's part of a unit of work: entries and lots as they are made, balances and
lots that moved staged once when the unit is written."""

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, TypeVar
from uuid import UUID

from kopilka.kit.ids import new_id
from kopilka.ledger import domain
from kopilka.ledger.domain import Balance, BalanceKey, LedgerInvariantError, Lot, Posting
from kopilka.ledger.repository import LedgerRepository, ledger_repository
from kopilka.outbox import events
from kopilka.outbox.unit import UnitOfWork

Moved = TypeVar("Moved", bound=events.PointsMoved)


class LedgerChanges:
    """The ledger changes of one unit of work (one per unit: see :func:`ledger_changes`).

    Entries, postings and new lots go into the unit as they are made; a balance or lot may
    move several times in one transaction (ten purchases of one member in a batch), so those
    are tracked here and staged once, when the unit is flushed.
    """

    def __init__(
        self, uow: UnitOfWork, program_id: UUID, repository: LedgerRepository = ledger_repository
    ) -> None:
        self.uow = uow
        self.program_id = program_id
        self.repository = repository
        self.balances: dict[BalanceKey, Balance] = {}
        self.changed_lots: dict[UUID, Lot] = {}
        uow.on_flush(f"ledger:{program_id}", self._stage)

    @property
    def now(self) -> datetime:
        return self.uow.now

    def add_entry(
        self,
        member_id: UUID,
        kind: str,
        legs: Sequence[tuple[str, Sequence[Posting]]],
        *,
        occurred_at: datetime,
        reason: str | None = None,
        reference_type: str | None = None,
        reference_id: str | None = None,
        program_version: int | None = None,
    ) -> UUID:
        """One journal entry with its postings; every leg must sum to zero (checked here,
        whatever the interpreter's flags: the books must never take an unbalanced entry)."""
        for currency, postings in legs:
            if not domain.entry_is_balanced(postings):
                raise LedgerInvariantError(f"unbalanced {kind} entry in {currency}")
        entry_id = new_id()
        self.repository.stage_entry(
            self.uow,
            {
                "id": entry_id,
                "program_id": self.program_id,
                "member_id": member_id,
                "kind": kind,
                "reason": reason,
                "reference_type": reference_type,
                "reference_id": reference_id,
                "program_version": program_version,
                "occurred_at": occurred_at,
                "created_at": self.now,
            },
            [
                {
                    "entry_id": entry_id,
                    "program_id": self.program_id,
                    "member_id": member_id,
                    "account": p.account.value,
                    "currency": currency,
                    "amount": p.amount,
                    "rule_id": p.rule_id,
                }
                for currency, postings in legs
                for p in postings
            ],
        )
        return entry_id

    def add_lot(self, member_id: UUID, currency: str, lot: Lot, entry_id: UUID) -> None:
        self.repository.stage_lot(
            self.uow,
            {
                "id": lot.id,
                "program_id": self.program_id,
                "member_id": member_id,
                "currency": currency,
                "entry_id": entry_id,
                "source_id": lot.source_id,
                "rule_id": lot.rule_id,
                "amount": lot.amount,
                "remaining": lot.remaining,
                "expired": lot.expired,
                "status": lot.status,
                "earned_at": lot.earned_at,
                "available_at": lot.available_at,
                "expires_at": lot.expires_at,
            },
        )

    def moved(
        self,
        event_type: type[Moved],
        member_id: UUID,
        occurred_at: datetime,
        currency: str,
        amount: int,
        balance: Balance,
        entry_id: UUID,
        reference: tuple[str | None, str | None],
        **details: Any,
    ) -> Moved:
        """Emit the ``points.*`` event of a movement just entered: ``balance`` as it stands
        after it, ``reference`` (type, id) of what caused it, ``details`` of its kind."""
        event = event_type(
            program_id=self.program_id,
            member_id=member_id,
            occurred_at=occurred_at,
            currency=currency,
            amount=amount,
            balance=balance_view(balance),
            entry_id=entry_id,
            reference_type=reference[0],
            reference_id=reference[1],
            **details,
        )
        self.uow.emit(event)
        return event

    def track(self, key: BalanceKey, balance: Balance, lots: Iterable[Lot] = ()) -> None:
        """A balance (and lots) this transaction moves: written as they stand at the end."""
        self.balances[key] = balance
        for lot in lots:
            self.changed_lots[lot.id] = lot

    def _stage(self, uow: UnitOfWork) -> None:
        dirty = [lot for lot in self.changed_lots.values() if lot.dirty]
        self.repository.stage_state(uow, changed_lots=dirty, balances=self.balances, now=self.now)
        for lot in dirty:
            lot.dirty = False
        self.balances, self.changed_lots = {}, {}


def ledger_changes(uow: UnitOfWork, program_id: UUID) -> LedgerChanges:
    """The ledger changes of ``uow`` (made on first use)."""
    return uow.part(f"ledger:{program_id}", lambda: LedgerChanges(uow, program_id))


def balance_view(balance: Balance) -> dict[str, int]:
    """A balance as events carry it."""
    return {"available": balance.available, "pending": balance.pending, "held": balance.held}
