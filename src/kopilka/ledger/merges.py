"""Points moved from one member to another when two profiles of one person are merged:
through the ledger, as two journal entries that balance against the transfers account, so
``kopilka ledger verify`` holds after a merge as before. Never commits."""

from datetime import datetime
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.errors import Conflict
from kopilka.kit.ids import new_id
from kopilka.ledger import domain
from kopilka.ledger.domain import Lot, Posting
from kopilka.ledger.repository import LedgerRepository, ledger_repository
from kopilka.ledger.service import LedgerService, ledger_service
from kopilka.ledger.unit import LedgerChanges, ledger_changes
from kopilka.outbox import events
from kopilka.outbox.unit import UnitOfWork, unit_of_work
from kopilka.programs.service import ProgramContext


class LedgerMerge:
    def __init__(
        self,
        ledger: LedgerService = ledger_service,
        repository: LedgerRepository = ledger_repository,
    ) -> None:
        self.ledger = ledger
        self.repository = repository

    async def move_everything(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        source: UUID,
        target: UUID,
        now: datetime,
        *,
        uow: UnitOfWork | None = None,
    ) -> dict[str, int]:
        """Every point ``source`` holds, in every currency, goes to ``target``: a
        ``merge_out`` entry for one and a ``merge_in`` entry for the other, each lot keeping
        its expiry (and a pending lot its release date). Takes both members' locks. A
        member with points on hold or a negative balance cannot be merged yet (409): the
        hold is captured or voided, the debt settled, first. Returns the points moved per
        currency."""
        balances = await self.ledger.lock(conn, program, [source, target], now)
        for currency in program.settings.currency_codes():
            balance = balances[(source, currency)]
            if balance.held:
                raise Conflict(
                    f"the merged member has {balance.held} {currency} on hold: capture or void "
                    "the hold first",
                    field="merged",
                )
            if balance.available < 0:
                raise Conflict(
                    f"the merged member owes {-balance.available} {currency}: settle it with an "
                    "adjustment first",
                    field="merged",
                )
        moved: dict[str, int] = {}
        async with unit_of_work(conn, now, uow) as unit:
            changes = ledger_changes(unit, program.id)
            for currency in program.settings.currency_codes():
                lots = await self.repository.open_lots(conn, source, currency, lock=True)
                amount = self._move(changes, balances, source, target, currency, lots, now)
                if amount:
                    moved[currency] = amount
        return moved

    def _move(
        self,
        changes: LedgerChanges,
        balances: dict[tuple[UUID, str], domain.Balance],
        source: UUID,
        target: UUID,
        currency: str,
        lots: list[Lot],
        now: datetime,
    ) -> int:
        out_balance, in_balance = balances[(source, currency)], balances[(target, currency)]
        out_postings, taken = domain.transfer_out(out_balance, lots)
        amount = sum(lot.amount for lot in taken)
        if not amount:
            return 0
        changes.track((source, currency), out_balance, lots)
        out_entry = self._entry(changes, source, "merge_out", currency, out_postings, target, now)
        in_postings, new_lots = domain.transfer_in(
            in_balance, taken, new_ids=[new_id() for _ in taken], now=now
        )
        changes.track((target, currency), in_balance)
        in_entry = self._entry(changes, target, "merge_in", currency, in_postings, source, now)
        for lot in new_lots:
            changes.add_lot(target, currency, lot, in_entry)
        for member, entry, signed, balance in (
            (source, out_entry, -amount, out_balance),
            (target, in_entry, amount, in_balance),
        ):
            changes.moved(
                events.PointsAdjusted,
                member,
                now,
                currency,
                signed,
                balance,
                entry,
                ("merge", str(target if member == source else source)),
                reason="profiles merged",
            )
        return amount

    @staticmethod
    def _entry(
        changes: LedgerChanges,
        member: UUID,
        kind: str,
        currency: str,
        postings: list[Posting],
        other: UUID,
        now: datetime,
    ) -> UUID:
        return changes.add_entry(
            member,
            kind,
            [(currency, postings)],
            occurred_at=now,
            reason="profiles merged",
            reference_type="merge",
            reference_id=str(other),
        )


ledger_merge = LedgerMerge()
