"""Every query of tiers. Locking: tier rows change under the member's balance lock (taken by
the caller), the one lock every value-moving path takes first."""

from collections.abc import Sequence
from datetime import UTC, date, datetime
from typing import Any
from uuid import UUID

from sqlalchemy import and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.kit.clock import as_utc
from kopilka.kit.sql import one_of, pg_fetch
from kopilka.models import Member, MemberTier, Purchase, TierChange
from kopilka.models.base import table
from kopilka.outbox.unit import UnitOfWork
from kopilka.tiers.domain import PurchaseFact, TierState

tiers_t = table(MemberTier)
changes_t = table(TierChange)
purchases_t = table(Purchase)
members_t = table(Member)

# One member's tier row and the sums of their purchases in a window, in one round trip:
# the till's single purchase needs no more (its metric is judged at its own moment only).
ONE_MEMBER_PG = (
    "SELECT t.tier, t.earned, t.achieved_at, t.achieved_from, t.achieved_by, t.review_on,"
    " t.grace_until, t.manual_tier, t.manual_until, t.manual_reason,"
    " a.spend, a.visits, a.points, a.latest, m.created_at"
    " FROM members m LEFT JOIN member_tiers t ON t.member_id = m.id"
    " CROSS JOIN LATERAL ("
    "  SELECT coalesce(sum(p.total - p.returned_amount) FILTER (WHERE p.occurred_at <= $3), 0)"
    "    AS spend,"
    "   count(*) FILTER (WHERE p.occurred_at <= $3 AND p.total > p.returned_amount) AS visits,"
    "   coalesce(sum(coalesce((p.earned ->> $4)::bigint, 0)"
    "    - coalesce((p.reversed ->> $4)::bigint, 0)) FILTER (WHERE p.occurred_at <= $3), 0)"
    "    AS points,"
    "   max(p.occurred_at) AS latest"
    "  FROM purchases p WHERE p.member_id = m.id AND p.occurred_at >= $2) a"
    " WHERE m.id = $1"
)
EARLIEST = datetime(1, 1, 1, tzinfo=UTC)

STATE_FIELDS = (
    "tier",
    "earned",
    "achieved_at",
    "achieved_from",
    "achieved_by",
    "review_on",
    "grace_until",
    "manual_tier",
    "manual_until",
    "manual_reason",
)


def _date(value: Any) -> date | None:
    if value is None or isinstance(value, date):
        return value
    return date.fromisoformat(str(value))


class _Row:
    """Attribute access to a driver record, as ``state_from_row`` reads Core rows."""

    def __init__(self, record: Any) -> None:
        self._record = record

    def __getattr__(self, name: str) -> Any:
        return self._record[name]


def state_from_row(row: Any) -> TierState:
    return TierState(
        tier=row.tier,
        earned=row.earned,
        achieved_at=as_utc(row.achieved_at) if row.achieved_at else None,
        achieved_from=row.achieved_from,
        achieved_by=row.achieved_by,
        review_on=_date(row.review_on),
        grace_until=_date(row.grace_until),
        manual_tier=row.manual_tier,
        manual_until=as_utc(row.manual_until) if row.manual_until else None,
        manual_reason=row.manual_reason,
    )


def one_member_of(
    row: Any, start: datetime, end: datetime
) -> tuple[TierState | None, PurchaseFact, datetime | None] | None:
    if row["latest"] is not None and row["latest"] > end:
        return None
    state = state_from_row(_Row(row)) if row["tier"] is not None else None
    fact = PurchaseFact(start, int(row["spend"]), int(row["points"]), int(row["visits"]))
    return state, fact, row["created_at"]


class TierRepository:
    async def states(
        self, conn: AsyncConnection, program_id: UUID, member_ids: Sequence[UUID]
    ) -> dict[UUID, TierState]:
        if not member_ids:
            return {}
        query = select(tiers_t).where(
            tiers_t.c.program_id == program_id, one_of(conn, tiers_t.c.member_id, member_ids)
        )
        return {row.member_id: state_from_row(row) for row in (await conn.execute(query)).all()}

    async def purchase_facts(
        self,
        conn: AsyncConnection,
        member_ids: Sequence[UUID],
        since: datetime | None,
        points_currency: str | None,
    ) -> dict[UUID, list[PurchaseFact]]:
        """Each member's purchases since ``since`` (all of them for None), oldest first,
        net of returns; points only when ``points_currency`` is given (they are read from
        JSON, which costs)."""
        result: dict[UUID, list[PurchaseFact]] = {m: [] for m in member_ids}
        if not member_ids:
            return result
        c = purchases_t.c
        columns = [c.member_id, c.occurred_at, c.total - c.returned_amount]
        if points_currency is not None:
            columns += [c.earned, c.reversed]
        query = select(*columns).where(one_of(conn, c.member_id, member_ids))
        if since is not None:
            query = query.where(c.occurred_at >= since)
        for row in (await conn.execute(query.order_by(c.occurred_at))).all():
            amount = int(row[2])
            points = 0
            if points_currency is not None:
                earned, reversed_ = row[3] or {}, row[4] or {}
                points = int(earned.get(points_currency, 0)) - int(
                    reversed_.get(points_currency, 0)
                )
            result[row[0]].append(
                PurchaseFact(as_utc(row[1]), amount, points, 1 if amount > 0 else 0)
            )
        return result

    async def one_member_pg(
        self,
        conn: AsyncConnection,
        member_id: UUID,
        start: datetime | None,
        end: datetime,
        points_currency: str,
    ) -> tuple[TierState | None, PurchaseFact, datetime | None] | None:
        """PostgreSQL only: the member's tier row (None: the entry tier), their purchases
        from ``start`` to ``end`` (inclusive) summed into one fact dated ``start``, and
        when they joined. None if a purchase dated after ``end`` is recorded (it moves the
        window: the caller reads the purchases one by one)."""
        start = start or EARLIEST
        rows = await pg_fetch(conn, ONE_MEMBER_PG, member_id, start, end, points_currency)
        return one_member_of(rows[0], start, end)

    def one_member_of(
        self, record: Any, start: datetime | None, end: datetime
    ) -> tuple[TierState | None, PurchaseFact, datetime | None] | None:
        """As ``one_member_pg``, from a record with the same columns read by another
        statement (the till's, which reads them with the member's lock)."""
        return one_member_of(record, start or EARLIEST, end)

    async def joined(
        self, conn: AsyncConnection, member_ids: Sequence[UUID]
    ) -> dict[UUID, datetime]:
        if not member_ids:
            return {}
        query = select(members_t.c.id, members_t.c.created_at).where(
            one_of(conn, members_t.c.id, member_ids)
        )
        return {row.id: as_utc(row.created_at) for row in (await conn.execute(query)).all()}

    async def history(self, conn: AsyncConnection, member_id: UUID, limit: int = 50) -> list[Any]:
        query = (
            select(changes_t)
            .where(changes_t.c.member_id == member_id)
            .order_by(changes_t.c.at.desc(), changes_t.c.created_at.desc())
            .limit(limit)
        )
        return list((await conn.execute(query)).all())

    async def due(
        self,
        conn: AsyncConnection,
        program_id: UUID,
        on: date,
        until: datetime,
        after: UUID | None,
        limit: int,
    ) -> list[UUID]:
        """Members with a review due on or before ``on`` or a manual tier ending by
        ``until``, in id order after ``after`` (the job's resume point)."""
        c = tiers_t.c
        query = select(c.member_id).where(
            c.program_id == program_id,
            or_(c.review_on <= on, and_(c.manual_until.is_not(None), c.manual_until <= until)),
        )
        if after is not None:
            query = query.where(c.member_id > after)
        query = query.order_by(c.member_id).limit(limit)
        return [row[0] for row in (await conn.execute(query)).all()]

    async def members_page(
        self, conn: AsyncConnection, program_id: UUID, after: UUID | None, limit: int
    ) -> list[UUID]:
        query = select(members_t.c.id).where(members_t.c.program_id == program_id)
        if after is not None:
            query = query.where(members_t.c.id > after)
        query = query.order_by(members_t.c.id).limit(limit)
        return [row[0] for row in (await conn.execute(query)).all()]

    def stage_change(self, uow: UnitOfWork, row: dict[str, Any]) -> None:
        uow.insert(changes_t, [row])

    def stage_states(
        self,
        uow: UnitOfWork,
        program_id: UUID,
        states: dict[UUID, TierState],
        existing: set[UUID],
        now: datetime,
    ) -> None:
        inserts: list[dict[str, Any]] = []
        updates: list[dict[str, Any]] = []
        for member_id, state in states.items():
            row = {name: getattr(state, name) for name in STATE_FIELDS}
            row |= {"member_id": member_id, "updated_at": now}
            if member_id in existing:
                updates.append(row)
            else:
                inserts.append(row | {"program_id": program_id})
        uow.insert(tiers_t, inserts)
        uow.update(tiers_t, ("member_id",), updates)

    # --- counts for the console ---------------------------------------------------------------

    async def members_per_stored_tier(
        self, conn: AsyncConnection, program_id: UUID
    ) -> dict[str | None, int]:
        """Members of the program per stored tier, in one grouped query; ``None`` counts
        the members without a tier row (the entry tier)."""
        query = (
            select(tiers_t.c.tier, func.count())
            .select_from(members_t.outerjoin(tiers_t, tiers_t.c.member_id == members_t.c.id))
            .where(members_t.c.program_id == program_id)
            .group_by(tiers_t.c.tier)
        )
        return {row[0]: int(row[1]) for row in (await conn.execute(query)).all()}


tier_repository = TierRepository()
