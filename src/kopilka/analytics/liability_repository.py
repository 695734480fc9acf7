"""Every query of liability and breakage: sums over the program's lots, grouped by hour,
and the daily snapshots of the figures.

Hours are counted since 1970-01-01 UTC from whole epoch seconds, the same integer on SQLite
and PostgreSQL; the service cuts them into months of the program's time zone. An expiry is
grouped by the hour of the lot's last spendable instant (a lot expiring at midnight belongs
to the day, and the month, before it): ``ceil(seconds / 3600) − 1``.
"""

from collections.abc import Sequence
from datetime import date
from typing import Any
from uuid import UUID

from sqlalchemy import BigInteger, Integer, and_, case, cast, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.analytics.liability import LotSums, MergedLot, OpenPoints, Snapshot
from kopilka.kit.sql import is_postgres, one_of
from kopilka.models import JournalEntry, LiabilitySnapshot, Lot
from kopilka.models.base import table

lots_t = table(Lot)
entries_t = table(JournalEntry)
snapshots_t = table(LiabilitySnapshot)
# What a snapshot row holds besides its key, in ``Snapshot``'s order after ``day``.
SNAPSHOT_FIGURES = (
    "taken_at",
    "outstanding_points",
    "pending_points",
    "overdue_points",
    "outstanding_value",
    "breakage_rate",
    "liability_after_breakage",
)

# The entry that makes a merged profile's lots anew on the surviving one, each lot naming
# its origin in ``source_id`` as ``merge:<lot id>`` (ledger/domain.py ``transfer_in``).
MERGE_IN = "merge_in"
MERGE_SOURCE = "merge:"
CHUNK = 500


def epoch_seconds(conn: AsyncConnection, column: Any) -> Any:
    """Whole seconds since the epoch of an instant column."""
    if is_postgres(conn):
        return cast(func.floor(func.extract("epoch", column)), BigInteger)
    return cast(func.strftime("%s", column), Integer)


def hour_of(conn: AsyncConnection, column: Any) -> Any:
    return epoch_seconds(conn, column) // 3600


def last_hour_before(conn: AsyncConnection, column: Any) -> Any:
    """The hour of the last instant before ``column``."""
    return (epoch_seconds(conn, column) + 3599) // 3600 - 1


class LiabilityRepository:
    async def open_points(self, conn: AsyncConnection, program_id: UUID) -> list[OpenPoints]:
        """Points still in lots (available and pending), per currency and hour of expiry."""
        lot = lots_t.c
        last = last_hour_before(conn, lot.expires_at).label("last_hour")
        rows = (
            select(
                lot.currency,
                last,
                lot.remaining,
                case((lot.status == "pending", lot.remaining), else_=0).label("pending"),
            )
            .where(lot.program_id == program_id, lot.remaining > 0)
            .subquery()
        )
        query = select(
            rows.c.currency,
            rows.c.last_hour,
            func.sum(rows.c.remaining),
            func.sum(rows.c.pending),
        ).group_by(rows.c.currency, rows.c.last_hour)
        return [
            OpenPoints(r[0], int(r[1]) if r[1] is not None else None, int(r[2]), int(r[3]))
            for r in await conn.execute(query)
        ]

    async def lot_sums(self, conn: AsyncConnection, program_id: UUID) -> list[LotSums]:
        """Every lot of the program summed per currency and hour of earning: amounts,
        expired points, points left."""
        lot = lots_t.c
        rows = (
            select(
                lot.currency,
                hour_of(conn, lot.earned_at).label("hour"),
                lot.amount,
                lot.expired,
                lot.remaining,
            )
            .where(lot.program_id == program_id)
            .subquery()
        )
        query = select(
            rows.c.currency,
            rows.c.hour,
            func.sum(rows.c.amount),
            func.sum(rows.c.expired),
            func.sum(rows.c.remaining),
        ).group_by(rows.c.currency, rows.c.hour)
        return [
            LotSums(r[0], int(r[1]), int(r[2]), int(r[3]), int(r[4]))
            for r in await conn.execute(query)
        ]

    async def merged_lots(self, conn: AsyncConnection, program_id: UUID) -> list[MergedLot]:
        """Lots made by merges of profiles, with the lot each came from. Few: the source
        prefix narrows the lots before the join confirms the entry's kind."""
        lot = lots_t.c
        query = (
            select(
                lot.id,
                lot.source_id,
                lot.currency,
                hour_of(conn, lot.earned_at),
                lot.amount,
                lot.expired,
                lot.remaining,
            )
            .select_from(lots_t.join(entries_t, entries_t.c.id == lot.entry_id))
            .where(
                and_(
                    lot.program_id == program_id,
                    lot.source_id.like(f"{MERGE_SOURCE}%"),
                    entries_t.c.kind == MERGE_IN,
                )
            )
        )
        return [
            MergedLot(
                str(r[0]),
                r[1].removeprefix(MERGE_SOURCE),
                r[2],
                int(r[3]),
                int(r[4]),
                int(r[5]),
                int(r[6]),
            )
            for r in await conn.execute(query)
        ]

    async def earning_hours(self, conn: AsyncConnection, lot_ids: Sequence[UUID]) -> dict[str, int]:
        """The earning hour of each of these lots."""
        found: dict[str, int] = {}
        for start in range(0, len(lot_ids), CHUNK):
            chunk = lot_ids[start : start + CHUNK]
            query = select(lots_t.c.id, hour_of(conn, lots_t.c.earned_at)).where(
                one_of(conn, lots_t.c.id, chunk)
            )
            found.update({str(r[0]): int(r[1]) for r in await conn.execute(query)})
        return found

    # --- daily snapshots ------------------------------------------------------------------

    async def save_snapshots(
        self, conn: AsyncConnection, program_id: UUID, snapshots: Sequence[Snapshot]
    ) -> None:
        """Store each currency's row of its day, replacing the row a run earlier that day
        stored (the key is the day, so a second run is no second row)."""
        if not snapshots:
            return
        dialect = postgresql if is_postgres(conn) else sqlite
        statement = dialect.insert(snapshots_t).values(
            [
                {"program_id": program_id, "currency": s.currency, "day": s.day}
                | {name: getattr(s, name) for name in SNAPSHOT_FIGURES}
                for s in snapshots
            ]
        )
        await conn.execute(
            statement.on_conflict_do_update(
                index_elements=["program_id", "currency", "day"],
                set_={name: statement.excluded[name] for name in SNAPSHOT_FIGURES},
            )
        )

    async def latest_snapshot(
        self, conn: AsyncConnection, program_id: UUID, currency: str, on_or_before: date
    ) -> Snapshot | None:
        """The currency's row of the latest day up to ``on_or_before`` (the key's order:
        one index entry read)."""
        s = snapshots_t.c
        query = (
            self._snapshot_select()
            .where(s.program_id == program_id, s.currency == currency, s.day <= on_or_before)
            .order_by(s.day.desc())
            .limit(1)
        )
        row = (await conn.execute(query)).first()
        return _snapshot(row) if row is not None else None

    async def snapshots(
        self,
        conn: AsyncConnection,
        program_id: UUID,
        start: date,
        end: date,
        currency: str | None = None,
    ) -> list[Snapshot]:
        """The rows of days ``start..end`` (both included), of one currency or all, by day
        and currency."""
        s = snapshots_t.c
        query = self._snapshot_select().where(
            s.program_id == program_id, s.day >= start, s.day <= end
        )
        if currency is not None:
            query = query.where(s.currency == currency)
        query = query.order_by(s.day, s.currency)
        return [_snapshot(row) for row in await conn.execute(query)]

    def _snapshot_select(self) -> Any:
        s = snapshots_t.c
        return select(s.currency, s.day, *(s[name] for name in SNAPSHOT_FIGURES))


def _snapshot(row: Any) -> Snapshot:
    return Snapshot(*row)


liability_repository = LiabilityRepository()
