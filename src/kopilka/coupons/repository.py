"""Every query of coupons.

Locking: a code's uses and a limited campaign's count only move through conditional
updates (``uses < max_uses``), which PostgreSQL re-checks on the latest row version after
waiting for a concurrent writer, so no limit is ever passed. Per-member limits are counted
under the member's balance lock, taken by the caller first.
"""

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.coupons.domain import Code, Terms
from kopilka.kit.bulk import insert_rows
from kopilka.kit.clock import as_utc
from kopilka.kit.codes import like_pattern
from kopilka.kit.sql import one_of
from kopilka.models import CouponCampaign, CouponCode, CouponRedemption
from kopilka.models.base import table
from kopilka.outbox.unit import UnitOfWork

campaigns_t = table(CouponCampaign)
codes_t = table(CouponCode)
uses_t = table(CouponRedemption)

LOOKUP_CHUNK = 5000


def terms_from_row(row: Any) -> Terms:
    return Terms(
        id=row.id,
        key=row.key,
        kind=row.discount_kind,
        value=row.discount_value,
        max_discount=row.max_discount,
        free_sku=row.free_sku,
        min_basket=row.min_basket,
        categories=frozenset(row.categories) if row.categories is not None else None,
        skus=frozenset(row.skus) if row.skus is not None else None,
        valid_from=as_utc(row.valid_from) if row.valid_from else None,
        valid_until=as_utc(row.valid_until) if row.valid_until else None,
        per_member_limit=row.per_member_limit,
        total_limit=row.total_limit,
        redeemed_count=row.redeemed_count,
        stackable=row.stackable,
        active=row.status == "active",
    )


def code_from_row(row: Any) -> Code:
    return Code(
        id=row.id,
        code=row.code,
        campaign_id=row.campaign_id,
        member_id=row.member_id,
        uses=row.uses,
        max_uses=row.max_uses,
        active=row.status == "active",
        valid_until=as_utc(row.valid_until) if row.valid_until else None,
    )


class _Prefixed:
    """The columns of a joined row that carry ``prefix``, by their names without it."""

    def __init__(self, row: Any, prefix: str) -> None:
        self._row, self._prefix = row, prefix

    def __getattr__(self, name: str) -> Any:
        return getattr(self._row, self._prefix + name)


class CouponRepository:
    # --- campaigns -----------------------------------------------------------------------

    async def insert_campaign(self, conn: AsyncConnection, row: dict[str, Any]) -> None:
        await conn.execute(campaigns_t.insert(), [row])

    async def campaign(
        self, conn: AsyncConnection, program_id: UUID, key: str, *, lock: bool = False
    ) -> Any:
        query = select(campaigns_t).where(
            campaigns_t.c.program_id == program_id, campaigns_t.c.key == key
        )
        if lock:
            query = query.with_for_update()
        return (await conn.execute(query)).first()

    async def campaigns_by_keys(
        self, conn: AsyncConnection, program_id: UUID, keys: Sequence[str]
    ) -> list[Any]:
        if not keys:
            return []
        query = select(campaigns_t).where(
            campaigns_t.c.program_id == program_id, one_of(conn, campaigns_t.c.key, keys)
        )
        return list((await conn.execute(query)).all())

    async def campaigns_by_ids(self, conn: AsyncConnection, ids: Sequence[UUID]) -> list[Any]:
        if not ids:
            return []
        query = select(campaigns_t).where(one_of(conn, campaigns_t.c.id, ids))
        return list((await conn.execute(query)).all())

    async def campaigns(self, conn: AsyncConnection, program_id: UUID) -> list[Any]:
        query = (
            select(campaigns_t)
            .where(campaigns_t.c.program_id == program_id)
            .order_by(campaigns_t.c.created_at, campaigns_t.c.id)
        )
        return list((await conn.execute(query)).all())

    async def update_campaign(
        self, conn: AsyncConnection, campaign_id: UUID, values: dict[str, Any]
    ) -> None:
        await conn.execute(update(campaigns_t).where(campaigns_t.c.id == campaign_id), values)

    async def campaign_counts(
        self, conn: AsyncConnection, campaign_ids: Sequence[UUID]
    ) -> dict[UUID, tuple[int, int]]:
        """{campaign: (codes, uses not given back)}."""
        if not campaign_ids:
            return {}
        codes = await conn.execute(
            select(codes_t.c.campaign_id, func.count())
            .where(one_of(conn, codes_t.c.campaign_id, campaign_ids))
            .group_by(codes_t.c.campaign_id)
        )
        uses = await conn.execute(
            select(uses_t.c.campaign_id, func.count())
            .where(one_of(conn, uses_t.c.campaign_id, campaign_ids), uses_t.c.status == "applied")
            .group_by(uses_t.c.campaign_id)
        )
        counts = {c: [0, 0] for c in campaign_ids}
        for campaign_id, n in codes:
            counts[campaign_id][0] = n
        for campaign_id, n in uses:
            counts[campaign_id][1] = n
        return {c: (v[0], v[1]) for c, v in counts.items()}

    # --- codes ---------------------------------------------------------------------------

    def stage_codes(self, uow: UnitOfWork, rows: Sequence[dict[str, Any]]) -> None:
        uow.insert(codes_t, rows)

    async def insert_codes(self, conn: AsyncConnection, rows: Sequence[dict[str, Any]]) -> None:
        await insert_rows(conn, codes_t, rows)

    async def existing_codes(
        self, conn: AsyncConnection, program_id: UUID, codes: Sequence[str]
    ) -> set[str]:
        found: set[str] = set()
        for start in range(0, len(codes), LOOKUP_CHUNK):
            chunk = codes[start : start + LOOKUP_CHUNK]
            result = await conn.execute(
                select(codes_t.c.code).where(
                    codes_t.c.program_id == program_id, one_of(conn, codes_t.c.code, chunk)
                )
            )
            found.update(result.scalars())
        return found

    async def count_matching(self, conn: AsyncConnection, program_id: UUID, pattern: str) -> int:
        """How many of the program's codes have the shape of ``pattern``."""
        query = select(func.count()).where(
            codes_t.c.program_id == program_id,
            codes_t.c.code.like(like_pattern(pattern), escape="\\"),
        )
        return int(await conn.scalar(query) or 0)

    async def codes_by_text(
        self, conn: AsyncConnection, program_id: UUID, codes: Sequence[str]
    ) -> dict[str, Any]:
        if not codes:
            return {}
        result = await conn.execute(
            select(codes_t).where(
                codes_t.c.program_id == program_id, one_of(conn, codes_t.c.code, codes)
            )
        )
        return {row.code: row for row in result}

    async def codes_with_campaigns(
        self, conn: AsyncConnection, program_id: UUID, codes: Sequence[str]
    ) -> dict[str, tuple[Code, Terms]]:
        """The codes found among ``codes`` with their campaigns' terms, in one query."""
        if not codes:
            return {}
        campaign_columns = [c.label(f"cc_{c.name}") for c in campaigns_t.c]
        result = await conn.execute(
            select(codes_t, *campaign_columns)
            .join(campaigns_t, campaigns_t.c.id == codes_t.c.campaign_id)
            .where(codes_t.c.program_id == program_id, one_of(conn, codes_t.c.code, codes))
        )
        found = {}
        for row in result:
            campaign = _Prefixed(row, "cc_")
            found[row.code] = (code_from_row(row), terms_from_row(campaign))
        return found

    async def member_codes_with_campaigns(
        self,
        conn: AsyncConnection,
        program_id: UUID,
        member_id: UUID,
        *,
        limit: int,
        code_id: UUID | None = None,
    ) -> list[tuple[Any, Any]]:
        """The member's personal codes, newest first, each with its campaign's row (both
        read in one query); ``code_id``: only that code, if it is the member's."""
        campaign_columns = [c.label(f"cc_{c.name}") for c in campaigns_t.c]
        query = (
            select(codes_t, *campaign_columns)
            .join(campaigns_t, campaigns_t.c.id == codes_t.c.campaign_id)
            .where(codes_t.c.program_id == program_id, codes_t.c.member_id == member_id)
        )
        if code_id is not None:
            query = query.where(codes_t.c.id == code_id)
        query = query.order_by(codes_t.c.issued_at.desc(), codes_t.c.id.desc()).limit(limit)
        return [(row, _Prefixed(row, "cc_")) for row in await conn.execute(query)]

    async def code_page(
        self,
        conn: AsyncConnection,
        program_id: UUID,
        *,
        campaign_id: UUID | None = None,
        member_id: UUID | None = None,
        limit: int,
        after: tuple[datetime, UUID] | None,
    ) -> list[Any]:
        query = select(codes_t, campaigns_t.c.key.label("campaign_key")).join(
            campaigns_t, campaigns_t.c.id == codes_t.c.campaign_id
        )
        query = query.where(codes_t.c.program_id == program_id)
        if campaign_id is not None:
            query = query.where(codes_t.c.campaign_id == campaign_id)
        if member_id is not None:
            query = query.where(codes_t.c.member_id == member_id)
        if after is not None:
            issued, code_id = after
            query = query.where(
                or_(
                    codes_t.c.issued_at > issued,
                    and_(codes_t.c.issued_at == issued, codes_t.c.id > code_id),
                )
            )
        query = query.order_by(codes_t.c.issued_at, codes_t.c.id).limit(limit)
        return list((await conn.execute(query)).all())

    async def set_code_status(self, conn: AsyncConnection, code_id: UUID, status: str) -> None:
        await conn.execute(update(codes_t).where(codes_t.c.id == code_id), {"status": status})

    # --- uses ----------------------------------------------------------------------------

    async def take_code_use(self, conn: AsyncConnection, code_id: UUID) -> bool:
        """One more use of the code, if it has one left and is active."""
        result = await conn.execute(
            update(codes_t)
            .where(
                codes_t.c.id == code_id,
                codes_t.c.status == "active",
                or_(codes_t.c.max_uses.is_(None), codes_t.c.uses < codes_t.c.max_uses),
            )
            .values(uses=codes_t.c.uses + 1)
        )
        return result.rowcount == 1

    async def take_campaign_uses(self, conn: AsyncConnection, campaign_id: UUID, uses: int) -> bool:
        """``uses`` more uses of a campaign with a total limit, if it has that many left."""
        result = await conn.execute(
            update(campaigns_t)
            .where(
                campaigns_t.c.id == campaign_id,
                or_(
                    campaigns_t.c.total_limit.is_(None),
                    campaigns_t.c.redeemed_count + uses <= campaigns_t.c.total_limit,
                ),
            )
            .values(redeemed_count=campaigns_t.c.redeemed_count + uses)
        )
        return result.rowcount == 1

    async def give_back_code_use(self, conn: AsyncConnection, code_id: UUID) -> None:
        await conn.execute(
            update(codes_t)
            .where(codes_t.c.id == code_id, codes_t.c.uses > 0)
            .values(uses=codes_t.c.uses - 1)
        )

    async def give_back_campaign_use(self, conn: AsyncConnection, campaign_id: UUID) -> None:
        await conn.execute(
            update(campaigns_t)
            .where(campaigns_t.c.id == campaign_id, campaigns_t.c.redeemed_count > 0)
            .values(redeemed_count=campaigns_t.c.redeemed_count - 1)
        )

    async def member_uses(
        self, conn: AsyncConnection, member_id: UUID, campaign_ids: Sequence[UUID]
    ) -> dict[UUID, int]:
        """How often the member used each campaign (uses given back by returns excluded)."""
        if not campaign_ids:
            return {}
        result = await conn.execute(
            select(uses_t.c.campaign_id, func.count())
            .where(
                uses_t.c.member_id == member_id,
                one_of(conn, uses_t.c.campaign_id, campaign_ids),
                uses_t.c.status == "applied",
            )
            .group_by(uses_t.c.campaign_id)
        )
        return {campaign_id: n for campaign_id, n in result}

    async def insert_uses(self, conn: AsyncConnection, rows: Sequence[dict[str, Any]]) -> None:
        if rows:
            await conn.execute(uses_t.insert(), list(rows))

    async def uses_of_purchase(self, conn: AsyncConnection, purchase_id: UUID) -> list[Any]:
        query = (
            select(
                uses_t,
                codes_t.c.code,
                campaigns_t.c.give_back_on_return,
                campaigns_t.c.total_limit,
            )
            .join(codes_t, codes_t.c.id == uses_t.c.code_id)
            .join(campaigns_t, campaigns_t.c.id == uses_t.c.campaign_id)
            .where(uses_t.c.purchase_id == purchase_id, uses_t.c.status == "applied")
        )
        return list((await conn.execute(query)).all())

    async def mark_given_back(
        self, conn: AsyncConnection, use_ids: Sequence[UUID], now: datetime
    ) -> None:
        if use_ids:
            await conn.execute(
                update(uses_t).where(one_of(conn, uses_t.c.id, use_ids)),
                {"status": "given_back", "returned_at": now},
            )


coupon_repository = CouponRepository()
