"""Every query of attribution: what members bought within windows of their own, the coupon
discounts and personal offers an automation's gifts turned into, and members' past events
as the feature tables keep them (purchases, registrations, tier changes). Reads only."""

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import distinct, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.kit.sql import one_of
from kopilka.models import (
    CouponCode,
    CouponRedemption,
    Member,
    MemberBenefit,
    Purchase,
    TierChange,
)
from kopilka.models.base import table

purchases_t = table(Purchase)
codes_t = table(CouponCode)
redemptions_t = table(CouponRedemption)
benefits_t = table(MemberBenefit)
members_t = table(Member)
tier_changes_t = table(TierChange)

# Keys per statement of a look-up by a list (SQLite takes at most 32,766 parameters).
CHUNK = 1000
# A merged profile's history moved to the survivor, who is counted instead.
MERGED = "merged"


def _chunks(values: Sequence[Any]) -> list[list[Any]]:
    ordered = sorted(set(values))
    return [ordered[i : i + CHUNK] for i in range(0, len(ordered), CHUNK)]


class AttributionRepository:
    # --- purchases in windows ---------------------------------------------------------------

    async def purchases_of(
        self,
        conn: AsyncConnection,
        program_id: UUID,
        members: Sequence[UUID],
        start: datetime,
        end: datetime,
    ) -> list[tuple[UUID, datetime, int]]:
        """These members' purchases in [start, end): member, instant, revenue net of
        returns (as the experiments count revenue)."""
        p = purchases_t.c
        found: list[tuple[UUID, datetime, int]] = []
        for chunk in _chunks(members):
            rows = await conn.execute(
                select(p.member_id, p.occurred_at, p.total - p.returned_amount).where(
                    p.program_id == program_id,
                    one_of(conn, p.member_id, chunk),
                    p.occurred_at >= start,
                    p.occurred_at < end,
                )
            )
            found.extend((r[0], r[1], int(r[2])) for r in rows)
        return found

    # --- coupons and offers used ------------------------------------------------------------

    async def coupon_use(
        self, conn: AsyncConnection, program_id: UUID, source_type: str, source_ids: Sequence[str]
    ) -> tuple[int, int]:
        """(uses, discounts) of the codes issued from these sources: their redemptions
        still applied (a use a return gave back is not counted)."""
        c, r = codes_t.c, redemptions_t.c
        uses = discounts = 0
        for chunk in _chunks(source_ids):
            row = (
                await conn.execute(
                    select(func.count(r.id), func.coalesce(func.sum(r.discount), 0))
                    .select_from(redemptions_t.join(codes_t, c.id == r.code_id))
                    .where(
                        c.program_id == program_id,
                        c.source_type == source_type,
                        one_of(conn, c.source_id, chunk),
                        r.status == "applied",
                    )
                )
            ).one()
            uses += int(row[0])
            discounts += int(row[1])
        return uses, discounts

    async def offers_used(
        self, conn: AsyncConnection, program_id: UUID, source_type: str, source_id: str
    ) -> list[tuple[UUID, str, dict[str, Any], str | None]]:
        """The personal offers granted from this source and used: id, kind, payload and
        what used them (a purchase's or redemption's id)."""
        b = benefits_t.c
        rows = await conn.execute(
            select(b.id, b.kind, b.payload, b.used_by)
            .where(
                b.program_id == program_id,
                b.source_type == source_type,
                b.source_id == source_id,
                b.status == "used",
            )
            .order_by(b.id)
        )
        return [(r[0], r[1], dict(r[2] or {}), r[3]) for r in rows]

    async def applied_benefits(
        self, conn: AsyncConnection, program_id: UUID, purchase_ids: Sequence[UUID]
    ) -> dict[UUID, list[dict[str, Any]]]:
        """Purchase → the benefits its answer says it applied (with what each gave)."""
        p = purchases_t.c
        found: dict[UUID, list[dict[str, Any]]] = {}
        for chunk in _chunks(purchase_ids):
            rows = await conn.execute(
                select(p.id, p.answer).where(p.program_id == program_id, one_of(conn, p.id, chunk))
            )
            for purchase_id, answer in rows:
                applied = (answer or {}).get("applied_benefits") or []
                found[purchase_id] = [a for a in applied if isinstance(a, dict)]
        return found

    # --- members' past events from the feature tables ----------------------------------------

    async def purchase_members(
        self, conn: AsyncConnection, program_id: UUID, start: datetime, end: datetime
    ) -> int:
        p = purchases_t.c
        found = await conn.scalar(
            select(func.count(distinct(p.member_id))).where(
                *self._purchases(p, program_id, start, end)
            )
        )
        return int(found or 0)

    async def purchase_times(
        self,
        conn: AsyncConnection,
        program_id: UUID,
        start: datetime,
        end: datetime,
        *,
        first: int | None,
        members: Sequence[UUID] | None,
    ) -> dict[UUID, list[datetime]]:
        """Member → instants of their purchases in [start, end): of the ``first`` members
        by id, or of ``members``."""
        p = purchases_t.c
        where = self._purchases(p, program_id, start, end)
        if members is None:
            chosen = select(p.member_id).distinct().where(*where).order_by(p.member_id)
            if first is not None:
                chosen = chosen.limit(first)
            members = [r[0] for r in await conn.execute(chosen)]
        found: dict[UUID, list[datetime]] = {}
        for chunk in _chunks(members):
            rows = await conn.execute(
                select(p.member_id, p.occurred_at)
                .where(*where, one_of(conn, p.member_id, chunk))
                .order_by(p.member_id, p.occurred_at)
            )
            for member_id, at in rows:
                found.setdefault(member_id, []).append(at)
        return found

    @staticmethod
    def _purchases(p: Any, program_id: UUID, start: datetime, end: datetime) -> list[Any]:
        return [
            p.program_id == program_id,
            p.member_id.is_not(None),
            p.occurred_at >= start,
            p.occurred_at < end,
        ]

    async def registration_members(
        self, conn: AsyncConnection, program_id: UUID, start: datetime, end: datetime
    ) -> int:
        m = members_t.c
        found = await conn.scalar(
            select(func.count()).where(*self._registered(m, program_id, start, end))
        )
        return int(found or 0)

    async def registrations(
        self,
        conn: AsyncConnection,
        program_id: UUID,
        start: datetime,
        end: datetime,
        *,
        first: int | None,
        members: Sequence[UUID] | None,
    ) -> dict[UUID, datetime]:
        """Member → when they registered, for those who did in [start, end): the ``first``
        by id, or of ``members``."""
        m = members_t.c
        query = (
            select(m.id, m.created_at)
            .where(*self._registered(m, program_id, start, end))
            .order_by(m.id)
        )
        if members is None:
            chosen = query.limit(first) if first is not None else query
            return {r[0]: r[1] for r in await conn.execute(chosen)}
        found: dict[UUID, datetime] = {}
        for chunk in _chunks(members):
            rows = await conn.execute(query.where(one_of(conn, m.id, chunk)))
            found.update({r[0]: r[1] for r in rows})
        return found

    @staticmethod
    def _registered(m: Any, program_id: UUID, start: datetime, end: datetime) -> list[Any]:
        return [
            m.program_id == program_id,
            m.created_at >= start,
            m.created_at < end,
            m.status != MERGED,
        ]

    async def tier_changes(
        self, conn: AsyncConnection, program_id: UUID, start: datetime, end: datetime
    ) -> list[tuple[UUID, datetime, str | None, str]]:
        """Members' tier changes in [start, end): member, instant, from, to; in order."""
        t = tier_changes_t.c
        rows = await conn.execute(
            select(t.member_id, t.at, t.from_tier, t.to_tier)
            .where(t.program_id == program_id, t.at >= start, t.at < end)
            .order_by(t.member_id, t.at)
        )
        return [(r[0], r[1], r[2], r[3]) for r in rows]


attribution_repository = AttributionRepository()
