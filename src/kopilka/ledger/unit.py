"""The ledger changes of one transaction, collected and then written together."""

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.kit.bulk import WriteBatch
from kopilka.kit.ids import new_id
from kopilka.ledger import domain
from kopilka.ledger.domain import Balance, Lot, Posting
from kopilka.ledger.repository import BalanceKey, LedgerRepository


class LedgerUnit:
    """The ledger changes of one transaction, written together by :meth:`flush`.

    One purchase or ten thousand, the rows go out as a handful of multi-row statements.
    """

    def __init__(self, program_id: UUID, now: datetime) -> None:
        self.program_id = program_id
        self.now = now
        self.entries: list[dict[str, Any]] = []
        self.postings: list[dict[str, Any]] = []
        self.new_lots: list[dict[str, Any]] = []
        self.changed_lots: dict[UUID, Lot] = {}
        self.balances: dict[BalanceKey, Balance] = {}

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
        for currency, postings in legs:
            assert domain.entry_is_balanced(postings), f"unbalanced {kind} entry in {currency}"
        entry_id = new_id()
        self.entries.append(
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
            }
        )
        for currency, postings in legs:
            self.postings.extend(
                {
                    "entry_id": entry_id,
                    "program_id": self.program_id,
                    "member_id": member_id,
                    "account": p.account.value,
                    "currency": currency,
                    "amount": p.amount,
                    "rule_id": p.rule_id,
                }
                for p in postings
            )
        return entry_id

    def add_lot(self, member_id: UUID, currency: str, lot: Lot, entry_id: UUID) -> None:
        self.new_lots.append(
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
                "status": lot.status,
                "earned_at": lot.earned_at,
                "available_at": lot.available_at,
                "expires_at": lot.expires_at,
            }
        )

    def track(self, key: BalanceKey, balance: Balance, lots: Iterable[Lot] = ()) -> None:
        self.balances[key] = balance
        for lot in lots:
            self.changed_lots[lot.id] = lot

    def stage(self, batch: WriteBatch, repository: LedgerRepository) -> None:
        repository.stage(
            batch,
            entries=self.entries,
            postings=self.postings,
            new_lots=self.new_lots,
            changed_lots=[lot for lot in self.changed_lots.values() if lot.dirty],
            balances=self.balances,
            now=self.now,
        )

    async def flush(self, conn: AsyncConnection, repository: LedgerRepository) -> None:
        batch = WriteBatch()
        self.stage(batch, repository)
        await batch.write(conn)
