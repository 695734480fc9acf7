"""The queries behind the demo's summary."""

from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import case, func, literal, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.kit.sql import one_of
from kopilka.models import (
    CouponCode,
    CouponRedemption,
    JournalEntry,
    Lot,
    Member,
    MemberBalance,
    MemberBenefit,
    MemberTier,
    Posting,
    Reward,
    RewardRedemption,
)
from kopilka.models.base import Base, table


class DemoRepository:
    async def count(self, conn: AsyncConnection, model: type[Base], program_id: UUID) -> int:
        t = table(model)
        query = select(func.count()).select_from(t).where(t.c.program_id == program_id)
        return int((await conn.execute(query)).scalar_one())

    async def account_totals(
        self, conn: AsyncConnection, program_id: UUID, currency: str
    ) -> dict[str, int]:
        postings = table(Posting)
        rows = await conn.execute(
            select(postings.c.account, func.sum(postings.c.amount))
            .where(postings.c.program_id == program_id, postings.c.currency == currency)
            .group_by(postings.c.account)
        )
        return {account: int(total) for account, total in rows.all()}

    async def richest(
        self, conn: AsyncConnection, program_id: UUID, currency: str, limit: int
    ) -> list[tuple[str, int]]:
        balances, members = table(MemberBalance), table(Member)
        rows: Any = await conn.execute(
            select(members.c.name, balances.c.available)
            .join(balances, balances.c.member_id == members.c.id)
            .where(balances.c.program_id == program_id, balances.c.currency == currency)
            .order_by(balances.c.available.desc())
            .limit(limit)
        )
        return [(name or "?", int(available)) for name, available in rows.all()]

    async def richest_with_email(
        self, conn: AsyncConnection, program_id: UUID, currency: str
    ) -> str | None:
        """The e-mail of the active member with the most points who has one (the demo's
        member to sign in to the app as)."""
        balances, members = table(MemberBalance), table(Member)
        row = (
            await conn.execute(
                select(members.c.email)
                .join(balances, balances.c.member_id == members.c.id)
                .where(
                    balances.c.program_id == program_id,
                    balances.c.currency == currency,
                    members.c.email.is_not(None),
                    members.c.status == "active",
                )
                .order_by(balances.c.available.desc(), members.c.id)
                .limit(1)
            )
        ).one_or_none()
        return None if row is None else str(row.email)

    async def earned_by_rule(
        self, conn: AsyncConnection, program_id: UUID, currency: str
    ) -> dict[str, int]:
        lots = table(Lot)
        # Lots of no rule: a journey's points (their source a journey's step), else points
        # that paid for goods later returned, given back.
        source = case(
            (lots.c.rule_id.is_not(None), lots.c.rule_id),
            (lots.c.source_id.like("journey:%"), literal("journeys")),
            else_=literal("given back on returns"),
        ).label("source")
        rows = await conn.execute(
            select(source, func.sum(lots.c.amount))
            .where(lots.c.program_id == program_id, lots.c.currency == currency)
            .group_by(source)
            .order_by(func.sum(lots.c.amount).desc())
        )
        return {str(name): int(total) for name, total in rows.all()}

    async def benefits_by_kind(self, conn: AsyncConnection, program_id: UUID) -> dict[str, int]:
        benefits = table(MemberBenefit)
        rows = await conn.execute(
            select(benefits.c.kind, func.count())
            .where(benefits.c.program_id == program_id)
            .group_by(benefits.c.kind)
            .order_by(benefits.c.kind)
        )
        return {kind: int(count) for kind, count in rows.all()}

    async def members_by_tier(self, conn: AsyncConnection, program_id: UUID) -> dict[str, int]:
        tiers = table(MemberTier)
        rows = await conn.execute(
            select(tiers.c.tier, func.count())
            .where(tiers.c.program_id == program_id)
            .group_by(tiers.c.tier)
            .order_by(func.count().desc())
        )
        return {tier: int(count) for tier, count in rows.all()}

    async def coupons(self, conn: AsyncConnection, program_id: UUID) -> tuple[int, int, int]:
        """Codes issued, uses of codes on purchases, and the money those uses took off."""
        codes, uses = table(CouponCode), table(CouponRedemption)
        issued = await conn.execute(
            select(func.count()).select_from(codes).where(codes.c.program_id == program_id)
        )
        used = await conn.execute(
            select(func.count(), func.coalesce(func.sum(uses.c.discount), 0)).where(
                uses.c.program_id == program_id, uses.c.status == "applied"
            )
        )
        count, discount = used.one()
        return int(issued.scalar_one()), int(count), int(discount)

    async def paid_with_points(
        self, conn: AsyncConnection, program_id: UUID, currency: str
    ) -> tuple[int, int]:
        """Purchases paid partly with points, and the points they took."""
        entries, postings = table(JournalEntry), table(Posting)
        row = await conn.execute(
            select(
                func.count(func.distinct(entries.c.id)),
                func.coalesce(func.sum(postings.c.amount), 0),
            )
            .join(postings, postings.c.entry_id == entries.c.id)
            .where(
                entries.c.program_id == program_id,
                entries.c.kind == "redeem",
                entries.c.reference_type == "purchase",
                postings.c.account == "redeemed",
                postings.c.currency == currency,
            )
        )
        purchases, points = row.one()
        return int(purchases), int(points)

    async def rewards_taken(self, conn: AsyncConnection, program_id: UUID) -> dict[str, int]:
        """Redemptions of each reward of the shop that were not cancelled, most first."""
        rewards, taken = table(Reward), table(RewardRedemption)
        rows = await conn.execute(
            select(rewards.c.key, func.count())
            .join(taken, taken.c.reward_id == rewards.c.id)
            .where(taken.c.program_id == program_id, taken.c.status != "cancelled")
            .group_by(rewards.c.key)
            .order_by(func.count().desc(), rewards.c.key)
        )
        return {key: int(count) for key, count in rows.all()}

    async def open_codes(
        self, conn: AsyncConnection, member_ids: list[UUID], moment: datetime
    ) -> dict[UUID, str]:
        """A personal coupon code each member could still use at ``moment``."""
        if not member_ids:
            return {}
        codes = table(CouponCode)
        rows = await conn.execute(
            select(codes.c.member_id, codes.c.code).where(
                one_of(conn, codes.c.member_id, member_ids),
                codes.c.status == "active",
                or_(codes.c.max_uses.is_(None), codes.c.uses < codes.c.max_uses),
                or_(codes.c.valid_until.is_(None), codes.c.valid_until > moment),
            )
        )
        return {member_id: code for member_id, code in rows.all()}

    async def available(
        self, conn: AsyncConnection, member_ids: list[UUID], currency: str
    ) -> dict[UUID, int]:
        """Each member's available balance in ``currency``."""
        if not member_ids:
            return {}
        balances = table(MemberBalance)
        rows = await conn.execute(
            select(balances.c.member_id, balances.c.available).where(
                one_of(conn, balances.c.member_id, member_ids),
                balances.c.currency == currency,
            )
        )
        return {member_id: int(available) for member_id, available in rows.all()}


demo_repository = DemoRepository()
