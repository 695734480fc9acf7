"""The ledger's reads that take no lock: balances, history, what expires when, the lots
still holding points. :class:`~kopilka.ledger.service.LedgerService` has them."""

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.ledger import domain
from kopilka.ledger.domain import Balance, Lot
from kopilka.ledger.repository import LedgerRepository
from kopilka.programs.service import ProgramContext


class LedgerReads:
    repository: LedgerRepository

    async def balances(
        self, conn: AsyncConnection, program: ProgramContext, member_id: UUID
    ) -> dict[str, Balance]:
        """The member's balance in each of the program's currencies (no lock); a currency
        in which nothing has moved yet is zero."""
        found = await self.repository.balances(conn, member_id)
        return {c: found.get(c) or Balance() for c in program.settings.currency_codes()}

    async def history(
        self,
        conn: AsyncConnection,
        member_id: UUID,
        *,
        limit: int,
        before: tuple[datetime, UUID] | None,
    ) -> list[tuple[Any, list[Any]]]:
        """A page of the member's journal entries, newest first, with their postings."""
        return await self.repository.history(conn, member_id, limit=limit, before=before)

    async def available_of(
        self, conn: AsyncConnection, program: ProgramContext, member_ids: Sequence[UUID]
    ) -> dict[UUID, int]:
        """Members' available points in the program's main currency (no lock)."""
        return await self.repository.available_of(
            conn, member_ids, program.settings.points_currency()
        )

    async def expiring(
        self, conn: AsyncConnection, program: ProgramContext, start: datetime, end: datetime
    ) -> list[tuple[UUID, str, datetime, int]]:
        """Available points that expire in [start, end): (member, currency, when, amount)."""
        return await self.repository.expiring(conn, program.id, start, end)

    async def next_expiring(
        self, conn: AsyncConnection, member_id: UUID
    ) -> list[tuple[str, int, datetime]]:
        return await self.repository.next_expiring(conn, member_id)

    async def expiring_of(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        member_ids: Sequence[UUID],
        start: datetime,
        end: datetime,
    ) -> dict[UUID, list[tuple[datetime, int]]]:
        """Each member's available points of the program's main currency that expire in
        [start, end): (when, points), soonest first; a member with none is absent. No lock
        (a snapshot, for a message); one query for all the members."""
        found: dict[UUID, list[tuple[datetime, int]]] = {}
        points = program.settings.points_currency()
        for member_id, when, amount in await self.repository.expiring_of(
            conn, sorted(set(member_ids)), points, start, end
        ):
            found.setdefault(member_id, []).append((when, amount))
        return found

    async def lots_holding_points(
        self, conn: AsyncConnection, program: ProgramContext, member_id: UUID
    ) -> list[tuple[str, Lot]]:
        """The member's lots that still hold points, available or pending, with their
        expiry: per currency of the program, in the order they are spent (soonest-expiring
        first). No lock; one indexed query."""
        found = await self.repository.lots_holding_points(conn, member_id)
        order = {code: index for index, code in enumerate(program.settings.currency_codes())}
        return sorted(
            ((c, lot) for c, lot in found if c in order),
            key=lambda item: (order[item[0]], domain.spending_order(item[1])),
        )
