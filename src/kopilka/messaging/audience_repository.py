"""Every query of messaging about the audience: members as recipients, their consents and
the history of them, suppressed addresses, push subscriptions, and a broadcast's audience
with the members it held back."""

from collections.abc import Sequence
from typing import Any
from uuid import UUID

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.kit.clock import as_utc
from kopilka.kit.sql import is_postgres, one_of
from kopilka.messaging.records import (
    BroadcastRow,
    ConsentRecordRow,
    ConsentRow,
    Recipient,
    SubscriptionRow,
    SuppressionRow,
)
from kopilka.messaging.repository import broadcast_row, insert_ignoring
from kopilka.models import (
    Broadcast,
    BroadcastRecipient,
    ConsentRecord,
    Member,
    MemberConsent,
    PushSubscriptionRow,
    Suppression,
)
from kopilka.models.base import table
from kopilka.outbox.unit import UnitOfWork

consents_t = table(MemberConsent)
records_t = table(ConsentRecord)
subscriptions_t = table(PushSubscriptionRow)
suppressions_t = table(Suppression)
members_t = table(Member)
broadcasts_t = table(Broadcast)
recipients_t = table(BroadcastRecipient)


class AudienceRepository:
    # --- members as recipients -----------------------------------------------------------

    async def recipients(
        self, conn: AsyncConnection, program_id: UUID, member_ids: Sequence[UUID]
    ) -> dict[UUID, Recipient]:
        if not member_ids:
            return {}
        m = members_t
        rows = await conn.execute(
            select(
                m.c.id,
                m.c.program_id,
                m.c.name,
                m.c.email,
                m.c.phone,
                m.c.language,
                m.c.attributes,
                m.c.status,
            ).where(m.c.program_id == program_id, one_of(conn, m.c.id, member_ids))
        )
        found = {}
        for r in rows:
            zone = (r.attributes or {}).get("timezone")
            found[r.id] = Recipient(
                r.id,
                r.program_id,
                r.name,
                r.email,
                r.phone,
                r.language,
                zone if isinstance(zone, str) else None,
                r.status,
            )
        return found

    # --- consents ------------------------------------------------------------------------

    async def consents(
        self, conn: AsyncConnection, member_ids: Sequence[UUID]
    ) -> dict[UUID, list[ConsentRow]]:
        if not member_ids:
            return {}
        c = consents_t
        found: dict[UUID, list[ConsentRow]] = {m: [] for m in member_ids}
        for r in await conn.execute(select(c).where(one_of(conn, c.c.member_id, member_ids))):
            found.setdefault(r.member_id, []).append(
                ConsentRow(
                    r.channel,
                    r.purpose,
                    r.status,
                    r.source,
                    r.text_version,
                    as_utc(r.updated_at),
                )
            )
        return found

    async def lock_consents(self, conn: AsyncConnection, member_id: UUID) -> None:
        """Hold the member's consents while one change is decided (PostgreSQL; SQLite has
        one writer)."""
        if is_postgres(conn):
            await conn.execute(
                select(members_t.c.id).where(members_t.c.id == member_id).with_for_update()
            )

    async def set_consent(
        self, conn: AsyncConnection, row: dict[str, Any], record: dict[str, Any]
    ) -> None:
        """The consent's new state and its history line."""
        c = consents_t
        await conn.execute(
            delete(c).where(
                c.c.member_id == row["member_id"],
                c.c.channel == row["channel"],
                c.c.purpose == row["purpose"],
            )
        )
        await conn.execute(c.insert().values(**row))
        await conn.execute(records_t.insert().values(**record))

    def stage_consents(
        self, uow: UnitOfWork, rows: Sequence[dict[str, Any]], records: Sequence[dict[str, Any]]
    ) -> None:
        """Consents of members who have none yet (new members) and their history lines,
        in the unit of work: inserts only, nothing to replace. History lines keep their
        order (their ids rise with it: the history reads newest first by id)."""
        uow.insert(consents_t, rows)
        uow.insert(records_t, records)

    async def consent_history(
        self, conn: AsyncConnection, member_id: UUID, limit: int = 200
    ) -> list[ConsentRecordRow]:
        r = records_t
        rows = await conn.execute(
            select(r).where(r.c.member_id == member_id).order_by(r.c.id.desc()).limit(limit)
        )
        return [
            ConsentRecordRow(
                x.channel,
                x.purpose,
                x.status,
                x.source,
                x.text_version,
                x.detail,
                as_utc(x.recorded_at),
            )
            for x in rows
        ]

    # --- suppressions --------------------------------------------------------------------

    async def suppressed(
        self, conn: AsyncConnection, program_id: UUID, addresses: Sequence[tuple[str, str]]
    ) -> dict[tuple[str, str], str]:
        """(channel, address) → reason, for those of ``addresses`` nothing goes to."""
        if not addresses:
            return {}
        s = suppressions_t
        rows = await conn.execute(
            select(s.c.channel, s.c.address, s.c.reason, s.c.detail).where(
                s.c.program_id == program_id,
                one_of(conn, s.c.address, sorted({a for _, a in addresses})),
            )
        )
        wanted = set(addresses)
        return {
            (r.channel, r.address): f"{r.reason}: {r.detail}" if r.detail else r.reason
            for r in rows
            if (r.channel, r.address) in wanted
        }

    async def suppress(self, conn: AsyncConnection, row: dict[str, Any]) -> None:
        await conn.execute(insert_ignoring(conn, suppressions_t).values(**row))

    async def unsuppress(
        self, conn: AsyncConnection, program_id: UUID, channel: str, address: str
    ) -> int:
        s = suppressions_t
        result = await conn.execute(
            delete(s).where(
                s.c.program_id == program_id, s.c.channel == channel, s.c.address == address
            )
        )
        return int(result.rowcount or 0)

    async def suppressions(
        self,
        conn: AsyncConnection,
        program_id: UUID,
        channel: str | None,
        limit: int,
        address: str | None = None,
    ) -> list[SuppressionRow]:
        """Newest first (of one address, if given)."""
        s = suppressions_t
        query = (
            select(s)
            .where(s.c.program_id == program_id)
            .order_by(s.c.created_at.desc(), s.c.address)
            .limit(limit)
        )
        if channel is not None:
            query = query.where(s.c.channel == channel)
        if address is not None:
            query = query.where(s.c.address == address)
        return [
            SuppressionRow(
                r.channel, r.address, r.reason, r.detail, r.message_id, as_utc(r.created_at)
            )
            for r in await conn.execute(query)
        ]

    # --- push subscriptions --------------------------------------------------------------

    async def subscriptions(
        self, conn: AsyncConnection, member_ids: Sequence[UUID]
    ) -> dict[UUID, list[SubscriptionRow]]:
        if not member_ids:
            return {}
        s = subscriptions_t
        found: dict[UUID, list[SubscriptionRow]] = {}
        rows = await conn.execute(
            select(s).where(one_of(conn, s.c.member_id, member_ids)).order_by(s.c.created_at)
        )
        for r in rows:
            found.setdefault(r.member_id, []).append(
                SubscriptionRow(
                    r.id,
                    r.member_id,
                    r.endpoint,
                    r.p256dh,
                    r.auth,
                    r.user_agent,
                    as_utc(r.created_at),
                )
            )
        return found

    async def add_subscription(self, conn: AsyncConnection, row: dict[str, Any]) -> None:
        """A new subscription; the same endpoint again gets the new keys."""
        s = subscriptions_t
        await conn.execute(
            delete(s).where(s.c.member_id == row["member_id"], s.c.endpoint == row["endpoint"])
        )
        await conn.execute(s.insert().values(**row))

    async def remove_subscription(
        self, conn: AsyncConnection, member_id: UUID, subscription_id: UUID
    ) -> int:
        s = subscriptions_t
        result = await conn.execute(
            delete(s).where(s.c.member_id == member_id, s.c.id == subscription_id)
        )
        return int(result.rowcount or 0)

    async def remove_endpoint(self, conn: AsyncConnection, program_id: UUID, endpoint: str) -> None:
        s = subscriptions_t
        await conn.execute(delete(s).where(s.c.program_id == program_id, s.c.endpoint == endpoint))

    # --- a broadcast's audience and its holdout -------------------------------------------

    async def audience(self, conn: AsyncConnection, broadcast_id: UUID) -> list[tuple[UUID, bool]]:
        """(member, held back) of every recipient of a broadcast, in member order."""
        r = recipients_t
        rows = await conn.execute(
            select(r.c.member_id, r.c.holdout)
            .where(r.c.broadcast_id == broadcast_id)
            .order_by(r.c.member_id)
        )
        return [(row[0], bool(row[1])) for row in rows]

    async def broadcasts_with_holdout(
        self, conn: AsyncConnection, program_id: UUID
    ) -> list[BroadcastRow]:
        """The program's broadcasts that held part of their audience back, newest first."""
        b = broadcasts_t
        query = (
            select(b)
            .where(b.c.program_id == program_id, b.c.holdout_percent > 0)
            .order_by(b.c.created_at.desc(), b.c.id.desc())
        )
        return [broadcast_row(r) for r in await conn.execute(query)]


audience_repository = AudienceRepository()
