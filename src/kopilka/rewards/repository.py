"""Every query of the rewards shop.

Locking: a redemption takes the member's balance lock first (the ledger's lock, taken by
the service), then touches the reward row only through the conditional stock update: lock
order is always member → reward. Every change to a reward redemption happens under its
member's lock, so its rows need no lock of their own. Pool codes are claimed with
``FOR UPDATE SKIP LOCKED`` on PostgreSQL (SQLite has one writer and needs none).
"""

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import func, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.kit.bulk import insert_rows
from kopilka.kit.sql import is_postgres, one_of
from kopilka.models import CouponCampaign, OutboxEvent, Reward, RewardCode, RewardRedemption
from kopilka.models.base import table

rewards_t = table(Reward)
codes_t = table(RewardCode)
redemptions_t = table(RewardRedemption)
campaigns_t = table(CouponCampaign)
outbox_t = table(OutboxEvent)

_REDEMPTION_COLUMNS = (
    *redemptions_t.c,
    rewards_t.c.key.label("reward_key"),
    rewards_t.c.name.label("reward_name"),
    rewards_t.c.kind,
)


class RewardRepository:
    # --- rewards -----------------------------------------------------------------------------

    async def get_by_key(self, conn: AsyncConnection, program_id: UUID, key: str) -> Any:
        query = select(rewards_t).where(
            rewards_t.c.program_id == program_id, rewards_t.c.key == key
        )
        return (await conn.execute(query)).one_or_none()

    async def by_keys(
        self, conn: AsyncConnection, program_id: UUID, keys: Sequence[str]
    ) -> dict[str, Any]:
        if not keys:
            return {}
        query = select(rewards_t).where(
            rewards_t.c.program_id == program_id, one_of(conn, rewards_t.c.key, set(keys))
        )
        return {row.key: row for row in (await conn.execute(query)).all()}

    async def page(
        self,
        conn: AsyncConnection,
        program_id: UUID,
        *,
        after: str | None,
        limit: int,
        category: str | None = None,
        status: str | None = None,
        on_offer_at: datetime | None = None,
    ) -> list[Any]:
        """Rewards in key order after ``after``. ``on_offer_at``: only those active, inside
        their window and with counted stock left (or none counted) at that moment."""
        c = rewards_t.c
        query = select(rewards_t).where(c.program_id == program_id)
        if after is not None:
            query = query.where(c.key > after)
        if category is not None:
            query = query.where(c.category == category)
        if status is not None:
            query = query.where(c.status == status)
        if on_offer_at is not None:
            query = query.where(
                c.status == "active",
                (c.available_from.is_(None)) | (c.available_from <= on_offer_at),
                (c.available_until.is_(None)) | (c.available_until > on_offer_at),
                (c.stock.is_(None)) | (c.stock > 0),
            )
        return list((await conn.execute(query.order_by(c.key).limit(limit))).all())

    async def insert(self, conn: AsyncConnection, rows: Sequence[dict[str, Any]]) -> None:
        await insert_rows(conn, rewards_t, rows)

    async def update(self, conn: AsyncConnection, reward_id: UUID, values: dict[str, Any]) -> None:
        await conn.execute(update(rewards_t).where(rewards_t.c.id == reward_id).values(**values))

    async def take_stock(self, conn: AsyncConnection, reward_id: UUID, now: datetime) -> bool:
        """One item of a counted stock, if any is left. The condition is re-checked on the
        row's latest version after a concurrent taker commits, so the last item goes to
        exactly one redemption."""
        result = await conn.execute(
            update(rewards_t)
            .where(rewards_t.c.id == reward_id, rewards_t.c.stock > 0)
            .values(stock=rewards_t.c.stock - 1, updated_at=now)
        )
        return result.rowcount == 1

    async def put_back_stock(self, conn: AsyncConnection, reward_id: UUID, now: datetime) -> None:
        """An item back on the shelf (a cancelled redemption); unlimited stays unlimited."""
        await conn.execute(
            update(rewards_t)
            .where(rewards_t.c.id == reward_id, rewards_t.c.stock.is_not(None))
            .values(stock=rewards_t.c.stock + 1, updated_at=now)
        )

    async def lock(self, conn: AsyncConnection, reward_id: UUID) -> None:
        """Take the reward row's lock (PostgreSQL; SQLite has one writer): a redemption's
        stock update waits for it, so stock set from a count of redemptions stays exact."""
        if is_postgres(conn):
            query = select(rewards_t.c.id).where(rewards_t.c.id == reward_id).with_for_update()
            await conn.execute(query)

    async def campaign_kinds(
        self, conn: AsyncConnection, program_id: UUID, keys: Sequence[str]
    ) -> dict[str, str]:
        """Discount kind of each of ``keys`` that names a coupon campaign of the program."""
        if not keys:
            return {}
        query = select(campaigns_t.c.key, campaigns_t.c.discount_kind).where(
            campaigns_t.c.program_id == program_id, one_of(conn, campaigns_t.c.key, set(keys))
        )
        return {row[0]: row[1] for row in (await conn.execute(query)).all()}

    # --- code pools --------------------------------------------------------------------------

    async def free_codes(
        self, conn: AsyncConnection, reward_ids: Sequence[UUID]
    ) -> dict[UUID, int]:
        if not reward_ids:
            return {}
        query = (
            select(codes_t.c.reward_id, func.count())
            .where(
                one_of(conn, codes_t.c.reward_id, set(reward_ids)),
                codes_t.c.redemption_id.is_(None),
            )
            .group_by(codes_t.c.reward_id)
        )
        found = {row[0]: int(row[1]) for row in (await conn.execute(query)).all()}
        return {reward_id: found.get(reward_id, 0) for reward_id in reward_ids}

    async def existing_codes(
        self, conn: AsyncConnection, reward_id: UUID, codes: Sequence[str]
    ) -> set[str]:
        query = select(codes_t.c.code).where(
            codes_t.c.reward_id == reward_id, one_of(conn, codes_t.c.code, set(codes))
        )
        return {row[0] for row in (await conn.execute(query)).all()}

    async def insert_codes(self, conn: AsyncConnection, rows: Sequence[dict[str, Any]]) -> None:
        await insert_rows(conn, codes_t, rows)

    async def claim_code(
        self, conn: AsyncConnection, reward_id: UUID, redemption_id: UUID
    ) -> str | None:
        """Hand a free code of the pool to ``redemption_id``; None if none is free.

        Any free code will do: the partial index of free codes finds one without sorting
        the pool. On PostgreSQL a code another transaction is claiming is skipped, not
        waited for: members racing for a pool each get a different code at once.
        """
        free = (
            select(codes_t.c.id)
            .where(codes_t.c.reward_id == reward_id, codes_t.c.redemption_id.is_(None))
            .limit(1)
        )
        if is_postgres(conn):
            free = free.with_for_update(skip_locked=True)
        result = await conn.execute(
            update(codes_t)
            .where(codes_t.c.id == free.scalar_subquery(), codes_t.c.redemption_id.is_(None))
            .values(redemption_id=redemption_id)
            .returning(codes_t.c.code)
        )
        code: str | None = result.scalar_one_or_none()
        return code

    # --- redemptions -------------------------------------------------------------------------

    async def taken(
        self, conn: AsyncConnection, member_id: UUID, reward_ids: Sequence[UUID]
    ) -> dict[UUID, int]:
        """The member's redemptions of each reward that were not cancelled."""
        if not reward_ids:
            return {}
        c = redemptions_t.c
        query = (
            select(c.reward_id, func.count())
            .where(
                c.member_id == member_id,
                one_of(conn, c.reward_id, set(reward_ids)),
                c.status != "cancelled",
            )
            .group_by(c.reward_id)
        )
        found = {row[0]: int(row[1]) for row in (await conn.execute(query)).all()}
        return {reward_id: found.get(reward_id, 0) for reward_id in reward_ids}

    async def taken_by_members(
        self, conn: AsyncConnection, member_ids: Sequence[UUID], reward_ids: Sequence[UUID]
    ) -> dict[tuple[UUID, UUID], int]:
        """(member, reward) → the member's redemptions of it that were not cancelled; pairs
        with none are absent. One query for many members (a batch of messages)."""
        if not member_ids or not reward_ids:
            return {}
        c = redemptions_t.c
        query = (
            select(c.member_id, c.reward_id, func.count())
            .where(
                one_of(conn, c.member_id, set(member_ids)),
                one_of(conn, c.reward_id, set(reward_ids)),
                c.status != "cancelled",
            )
            .group_by(c.member_id, c.reward_id)
        )
        return {(row[0], row[1]): int(row[2]) for row in (await conn.execute(query)).all()}

    async def redeemed(self, conn: AsyncConnection, reward_ids: Sequence[UUID]) -> dict[UUID, int]:
        """Each reward's redemptions that were not cancelled, by every member."""
        if not reward_ids:
            return {}
        c = redemptions_t.c
        query = (
            select(c.reward_id, func.count())
            .where(one_of(conn, c.reward_id, set(reward_ids)), c.status != "cancelled")
            .group_by(c.reward_id)
        )
        found = {row[0]: int(row[1]) for row in (await conn.execute(query)).all()}
        return {reward_id: found.get(reward_id, 0) for reward_id in reward_ids}

    async def insert_redemption(self, conn: AsyncConnection, row: dict[str, Any]) -> None:
        await insert_rows(conn, redemptions_t, [row])

    async def get_redemption(
        self, conn: AsyncConnection, program_id: UUID, redemption_id: UUID
    ) -> Any:
        """The redemption with its reward's key, name and kind."""
        query = (
            select(*_REDEMPTION_COLUMNS)
            .join(rewards_t, rewards_t.c.id == redemptions_t.c.reward_id)
            .where(redemptions_t.c.id == redemption_id, redemptions_t.c.program_id == program_id)
        )
        return (await conn.execute(query)).one_or_none()

    async def set_redemption(
        self, conn: AsyncConnection, redemption_id: UUID, values: dict[str, Any]
    ) -> None:
        await conn.execute(
            update(redemptions_t).where(redemptions_t.c.id == redemption_id).values(**values)
        )

    async def history(
        self,
        conn: AsyncConnection,
        program_id: UUID,
        member_id: UUID,
        *,
        limit: int,
        before: tuple[datetime, UUID] | None,
    ) -> list[Any]:
        """The member's redemptions, newest first, keyset-paginated on (created_at, id)."""
        c = redemptions_t.c
        query = (
            select(*_REDEMPTION_COLUMNS)
            .join(rewards_t, rewards_t.c.id == c.reward_id)
            .where(c.member_id == member_id, c.program_id == program_id)
        )
        if before is not None:
            query = query.where(tuple_(c.created_at, c.id) < tuple_(*before))
        query = query.order_by(c.created_at.desc(), c.id.desc()).limit(limit)
        return list((await conn.execute(query)).all())

    async def of_reward(
        self,
        conn: AsyncConnection,
        program_id: UUID,
        reward_id: UUID,
        *,
        limit: int,
        before: tuple[datetime, UUID] | None,
        status: str | None = None,
    ) -> list[Any]:
        """The reward's redemptions (of ``status`` if given), newest first, keyset-paginated
        on (created_at, id)."""
        c = redemptions_t.c
        query = (
            select(*_REDEMPTION_COLUMNS)
            .join(rewards_t, rewards_t.c.id == c.reward_id)
            .where(c.reward_id == reward_id, c.program_id == program_id)
        )
        if status is not None:
            query = query.where(c.status == status)
        if before is not None:
            query = query.where(tuple_(c.created_at, c.id) < tuple_(*before))
        query = query.order_by(c.created_at.desc(), c.id.desc()).limit(limit)
        return list((await conn.execute(query)).all())


reward_repository = RewardRepository()
