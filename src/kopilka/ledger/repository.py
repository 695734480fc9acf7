"""Every ledger query. Locking is explicit: ``lock=True`` takes row locks on PostgreSQL
(SQLite has one writer at a time and needs none)."""

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import func, or_, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.kit.bulk import insert_rows
from kopilka.kit.clock import as_utc
from kopilka.kit.sql import is_postgres, one_of, pg_fetch_keyed
from kopilka.ledger.domain import Allocation, Balance, BalanceKey, Lot
from kopilka.models import (
    JournalEntry,
    MemberBalance,
    Posting,
    Redemption,
    RedemptionAllocation,
)
from kopilka.models import Lot as LotRow
from kopilka.models.base import table
from kopilka.outbox.unit import UnitOfWork

balances_t = table(MemberBalance)
lots_t = table(LotRow)
entries_t = table(JournalEntry)
postings_t = table(Posting)
redemptions_t = table(Redemption)
allocations_t = table(RedemptionAllocation)

BALANCES_PG = (
    "SELECT member_id, currency, available, pending, held FROM member_balances"
    " WHERE member_id {keys}"
)


def lot_from_row(row: Any) -> Lot:
    return Lot(
        id=row.id,
        amount=row.amount,
        remaining=row.remaining,
        status=row.status,
        earned_at=as_utc(row.earned_at),
        available_at=as_utc(row.available_at),
        expires_at=as_utc(row.expires_at) if row.expires_at is not None else None,
        source_id=row.source_id,
        rule_id=row.rule_id,
        expired=row.expired,
    )


class LedgerRepository:
    async def balances_of(
        self,
        conn: AsyncConnection,
        program_id: UUID,
        member_ids: Iterable[UUID],
        currencies: Sequence[str],
        now: datetime,
    ) -> dict[BalanceKey, Balance]:
        """The balance rows of these members, opening those missing (a new member, a
        currency added later). The caller holds the member lock, so they cannot change
        under it and no one else opens them at the same time."""
        ids = sorted(set(member_ids))
        if not ids:
            return {}
        found = await self._select_balances(conn, ids)
        missing = [(m, c) for m in ids for c in currencies if (m, c) not in found]
        if missing:
            # In one driver call (COPY for an import's thousands of new members): under the
            # member lock no one else opens them. Were one opened anyway, the unique key
            # fails the transaction, which then runs again and finds it.
            await insert_rows(
                conn,
                balances_t,
                [
                    {
                        "member_id": m,
                        "currency": c,
                        "program_id": program_id,
                        "available": 0,
                        "pending": 0,
                        "held": 0,
                        "updated_at": now,
                    }
                    for m, c in missing
                ],
            )
            found.update({key: Balance() for key in missing})
        return found

    async def _select_balances(
        self, conn: AsyncConnection, member_ids: Sequence[UUID]
    ) -> dict[BalanceKey, Balance]:
        if is_postgres(conn):
            rows = await pg_fetch_keyed(conn, BALANCES_PG, "uuid", keys=member_ids)
            return {(r[0], r[1]): Balance(r[2], r[3], r[4]) for r in rows}
        query = (
            select(
                balances_t.c.member_id,
                balances_t.c.currency,
                balances_t.c.available,
                balances_t.c.pending,
                balances_t.c.held,
            )
            .where(one_of(conn, balances_t.c.member_id, member_ids))
            .order_by(balances_t.c.member_id, balances_t.c.currency)
        )
        result = (await conn.execute(query)).all()
        return {(r.member_id, r.currency): Balance(r.available, r.pending, r.held) for r in result}

    async def available_of(
        self, conn: AsyncConnection, member_ids: Sequence[UUID], currency: str
    ) -> dict[UUID, int]:
        """Members' available balance in ``currency`` (no lock; missing rows are absent)."""
        if not member_ids:
            return {}
        found = await self._select_balances(conn, sorted(set(member_ids)))
        return {m: b.available for (m, c), b in found.items() if c == currency}

    async def expiring(
        self, conn: AsyncConnection, program_id: UUID, start: datetime, end: datetime
    ) -> list[tuple[UUID, str, datetime, int]]:
        """(member, currency, expires_at, remaining) of available lots that expire in
        [start, end), summed per member, currency and instant."""
        query = (
            select(
                lots_t.c.member_id,
                lots_t.c.currency,
                lots_t.c.expires_at,
                func.sum(lots_t.c.remaining),
            )
            .where(
                lots_t.c.program_id == program_id,
                lots_t.c.remaining > 0,
                lots_t.c.status == "available",
                lots_t.c.expires_at >= start,
                lots_t.c.expires_at < end,
            )
            .group_by(lots_t.c.member_id, lots_t.c.currency, lots_t.c.expires_at)
            .order_by(lots_t.c.member_id, lots_t.c.expires_at)
        )
        return [(r[0], r[1], as_utc(r[2]), int(r[3])) for r in await conn.execute(query)]

    async def balances(self, conn: AsyncConnection, member_id: UUID) -> dict[str, Balance]:
        found = await self._select_balances(conn, [member_id])
        return {currency: balance for (_, currency), balance in found.items()}

    async def open_lots(
        self, conn: AsyncConnection, member_id: UUID, currency: str, *, lock: bool
    ) -> list[Lot]:
        """Lots that still hold points, plus pending ones (a pending lot may be empty)."""
        query = select(lots_t).where(
            lots_t.c.member_id == member_id,
            lots_t.c.currency == currency,
            or_(lots_t.c.remaining > 0, lots_t.c.status == "pending"),
        )
        if lock:
            query = query.with_for_update()
        return [lot_from_row(r) for r in (await conn.execute(query)).all()]

    async def expiring_of(
        self,
        conn: AsyncConnection,
        member_ids: Sequence[UUID],
        currency: str,
        start: datetime,
        end: datetime,
    ) -> list[tuple[UUID, datetime, int]]:
        """(member, expires_at, remaining) of these members' available lots of ``currency``
        that expire in [start, end), summed per member and instant, soonest first. No lock:
        one query through the partial index of open lots."""
        if not member_ids:
            return []
        query = (
            select(lots_t.c.member_id, lots_t.c.expires_at, func.sum(lots_t.c.remaining))
            .where(
                one_of(conn, lots_t.c.member_id, list(member_ids)),
                lots_t.c.remaining > 0,
                lots_t.c.currency == currency,
                lots_t.c.status == "available",
                lots_t.c.expires_at >= start,
                lots_t.c.expires_at < end,
            )
            .group_by(lots_t.c.member_id, lots_t.c.expires_at)
            .order_by(lots_t.c.member_id, lots_t.c.expires_at)
        )
        return [(r[0], as_utc(r[1]), int(r[2])) for r in await conn.execute(query)]

    async def lots_holding_points(
        self, conn: AsyncConnection, member_id: UUID
    ) -> list[tuple[str, Lot]]:
        """The member's lots of every currency that still hold points (no lock), read
        through the partial index of open lots (``remaining > 0``): (currency, lot)."""
        query = (
            select(lots_t)
            .where(lots_t.c.member_id == member_id, lots_t.c.remaining > 0)
            .order_by(lots_t.c.currency, lots_t.c.id)
        )
        return [(r.currency, lot_from_row(r)) for r in (await conn.execute(query)).all()]

    async def open_lots_of_members(
        self, conn: AsyncConnection, member_ids: Sequence[UUID]
    ) -> dict[BalanceKey, list[Lot]]:
        """Open lots of many members at once, locked in member order (the jobs' chunks)."""
        query = (
            select(lots_t)
            .where(
                one_of(conn, lots_t.c.member_id, member_ids),
                or_(lots_t.c.remaining > 0, lots_t.c.status == "pending"),
            )
            .order_by(lots_t.c.member_id, lots_t.c.id)
            .with_for_update()
        )
        found: dict[BalanceKey, list[Lot]] = {}
        for row in (await conn.execute(query)).all():
            found.setdefault((row.member_id, row.currency), []).append(lot_from_row(row))
        return found

    async def lots_by_ids(self, conn: AsyncConnection, lot_ids: Sequence[UUID]) -> list[Lot]:
        if not lot_ids:
            return []
        rows = (await conn.execute(select(lots_t).where(one_of(conn, lots_t.c.id, lot_ids)))).all()
        return [lot_from_row(r) for r in rows]

    async def next_expiring(
        self, conn: AsyncConnection, member_id: UUID, limit: int = 3
    ) -> list[tuple[str, int, datetime]]:
        query = (
            select(lots_t.c.currency, func.sum(lots_t.c.remaining), lots_t.c.expires_at)
            .where(
                lots_t.c.member_id == member_id,
                lots_t.c.remaining > 0,
                lots_t.c.status == "available",
                lots_t.c.expires_at.is_not(None),
            )
            .group_by(lots_t.c.currency, lots_t.c.expires_at)
            .order_by(lots_t.c.expires_at)
            .limit(limit)
        )
        return [(r[0], int(r[1]), as_utc(r[2])) for r in (await conn.execute(query)).all()]

    # --- writes --------------------------------------------------------------------------

    def stage_opening_balances(
        self,
        uow: UnitOfWork,
        program_id: UUID,
        member_ids: Sequence[UUID],
        currencies: Sequence[str],
        now: datetime,
    ) -> None:
        """Zero balance rows for new members, so their first purchase finds its lock row."""
        uow.insert(
            balances_t,
            [
                {
                    "member_id": member_id,
                    "currency": currency,
                    "program_id": program_id,
                    "available": 0,
                    "pending": 0,
                    "held": 0,
                    "updated_at": now,
                }
                for member_id in member_ids
                for currency in currencies
            ],
        )

    def stage_entry(
        self, uow: UnitOfWork, entry: dict[str, Any], postings: list[dict[str, Any]]
    ) -> None:
        uow.insert(entries_t, [entry])
        uow.insert(postings_t, postings)

    def stage_lot(self, uow: UnitOfWork, lot: dict[str, Any]) -> None:
        uow.insert(lots_t, [lot])

    def stage_state(
        self,
        uow: UnitOfWork,
        *,
        changed_lots: Sequence[Lot],
        balances: dict[BalanceKey, Balance],
        now: datetime,
    ) -> None:
        """The lots and balances a transaction moved, as they stand at its end."""
        uow.update(
            lots_t,
            ("id",),
            [
                {
                    "id": lot.id,
                    "remaining": lot.remaining,
                    "expired": lot.expired,
                    "status": lot.status,
                }
                for lot in changed_lots
            ],
        )
        uow.update(
            balances_t,
            ("member_id", "currency"),
            [
                {
                    "member_id": member_id,
                    "currency": currency,
                    "available": b.available,
                    "pending": b.pending,
                    "held": b.held,
                    "updated_at": now,
                }
                for (member_id, currency), b in balances.items()
            ],
        )

    # --- redemptions ---------------------------------------------------------------------

    async def insert_redemption(
        self, conn: AsyncConnection, row: dict[str, Any], allocations: list[dict[str, Any]]
    ) -> None:
        await insert_rows(conn, redemptions_t, [row])
        if allocations:
            await insert_rows(conn, allocations_t, allocations)

    async def get_redemption(
        self, conn: AsyncConnection, program_id: UUID, redemption_id: UUID
    ) -> Any:
        query = select(redemptions_t).where(
            redemptions_t.c.id == redemption_id, redemptions_t.c.program_id == program_id
        )
        return (await conn.execute(query)).one_or_none()

    async def allocations(self, conn: AsyncConnection, redemption_id: UUID) -> list[Allocation]:
        query = (
            select(allocations_t.c.lot_id, allocations_t.c.amount)
            .where(allocations_t.c.redemption_id == redemption_id)
            .order_by(allocations_t.c.id)
        )
        return [Allocation(r.lot_id, r.amount) for r in (await conn.execute(query)).all()]

    async def set_redemption_status(
        self,
        conn: AsyncConnection,
        redemption_id: UUID,
        status: str,
        captured: int,
        now: datetime,
    ) -> None:
        await conn.execute(
            update(redemptions_t)
            .where(redemptions_t.c.id == redemption_id)
            .values(status=status, captured_amount=captured, updated_at=now)
        )

    # --- jobs ----------------------------------------------------------------------------

    async def members_with_expired_lots(
        self, conn: AsyncConnection, program_id: UUID, as_of: datetime, limit: int
    ) -> list[UUID]:
        query = (
            select(lots_t.c.member_id)
            .distinct()
            .where(
                lots_t.c.program_id == program_id,
                lots_t.c.remaining > 0,
                lots_t.c.status == "available",
                lots_t.c.expires_at <= as_of,
            )
            .order_by(lots_t.c.member_id)
            .limit(limit)
        )
        return [r[0] for r in (await conn.execute(query)).all()]

    async def members_with_due_pending(
        self, conn: AsyncConnection, program_id: UUID, as_of: datetime, limit: int
    ) -> list[UUID]:
        query = (
            select(lots_t.c.member_id)
            .distinct()
            .where(
                lots_t.c.program_id == program_id,
                lots_t.c.status == "pending",
                lots_t.c.available_at <= as_of,
            )
            .order_by(lots_t.c.member_id)
            .limit(limit)
        )
        return [r[0] for r in (await conn.execute(query)).all()]

    async def due_holds(
        self, conn: AsyncConnection, program_id: UUID, as_of: datetime, limit: int
    ) -> list[UUID]:
        """Overdue holds in member order, so a chunk takes member locks in the same order
        as every other multi-member transaction and cannot deadlock with them."""
        query = (
            select(redemptions_t.c.id)
            .where(
                redemptions_t.c.program_id == program_id,
                redemptions_t.c.status == "held",
                redemptions_t.c.hold_expires_at <= as_of,
            )
            .order_by(redemptions_t.c.member_id, redemptions_t.c.id)
            .limit(limit)
        )
        return [r[0] for r in (await conn.execute(query)).all()]

    # --- history -------------------------------------------------------------------------

    async def history(
        self,
        conn: AsyncConnection,
        member_id: UUID,
        *,
        limit: int,
        before: tuple[datetime, UUID] | None,
    ) -> list[tuple[Any, list[Any]]]:
        query = select(entries_t).where(entries_t.c.member_id == member_id)
        if before is not None:
            query = query.where(tuple_(entries_t.c.created_at, entries_t.c.id) < tuple_(*before))
        query = query.order_by(entries_t.c.created_at.desc(), entries_t.c.id.desc()).limit(limit)
        entries = (await conn.execute(query)).all()
        if not entries:
            return []
        postings = (
            await conn.execute(
                select(postings_t)
                .where(postings_t.c.entry_id.in_([e.id for e in entries]))
                .order_by(postings_t.c.id)
            )
        ).all()
        by_entry: dict[UUID, list[Any]] = {}
        for posting in postings:
            by_entry.setdefault(posting.entry_id, []).append(posting)
        return [(entry, by_entry.get(entry.id, [])) for entry in entries]


ledger_repository = LedgerRepository()
