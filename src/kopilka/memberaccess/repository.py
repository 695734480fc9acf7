"""Every query of members' sessions and sign-in codes."""

from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.kit.clock import as_utc
from kopilka.memberaccess.domain import CODE_TRIES, OnUse, StoredCode
from kopilka.models import Member, MemberSession, MemberSignInCode
from kopilka.models.base import table

sessions_t = table(MemberSession)
codes_t = table(MemberSignInCode)
members_t = table(Member)


class MemberAccessRepository:
    async def insert_session(self, conn: AsyncConnection, row: dict[str, Any]) -> None:
        await conn.execute(insert(sessions_t), [row])

    async def live_session(self, conn: AsyncConnection, digest: str, now: datetime) -> Any:
        """The live session of this token hash, with its member's status, or None."""
        query = (
            select(
                sessions_t.c.id,
                sessions_t.c.program_id,
                sessions_t.c.member_id,
                members_t.c.status,
            )
            .join(members_t, members_t.c.id == sessions_t.c.member_id)
            .where(
                sessions_t.c.token_hash == digest,
                sessions_t.c.revoked_at.is_(None),
                sessions_t.c.expires_at > now,
            )
        )
        return (await conn.execute(query)).one_or_none()

    async def revoke(
        self, conn: AsyncConnection, member_id: UUID, now: datetime, *, only: UUID | None = None
    ) -> int:
        statement = update(sessions_t).where(
            sessions_t.c.member_id == member_id, sessions_t.c.revoked_at.is_(None)
        )
        if only is not None:
            statement = statement.where(sessions_t.c.id == only)
        result = await conn.execute(statement.values(revoked_at=now))
        return int(result.rowcount or 0)

    # --- sign-in codes -------------------------------------------------------------------

    async def replace_codes(
        self, conn: AsyncConnection, row: dict[str, Any], replaced: list[UUID]
    ) -> None:
        """The member's new code, the codes ``replaced`` gone."""
        if replaced:
            await conn.execute(
                delete(codes_t).where(
                    codes_t.c.member_id == row["member_id"], codes_t.c.id.in_(replaced)
                )
            )
        await conn.execute(insert(codes_t), [row])

    async def codes_of(
        self, conn: AsyncConnection, program_id: UUID, member_ids: list[UUID]
    ) -> list[StoredCode]:
        """The members' codes in this program, newest first."""
        if not member_ids:
            return []
        query = (
            select(codes_t)
            .where(codes_t.c.program_id == program_id, codes_t.c.member_id.in_(member_ids))
            .order_by(codes_t.c.created_at.desc())
        )
        return [
            StoredCode(
                id=r.id,
                member_id=r.member_id,
                code_hash=r.code_hash,
                expires_at=as_utc(r.expires_at),
                attempts=r.attempts,
                used_at=as_utc(r.used_at) if r.used_at is not None else None,
                channel=r.channel,
                on_use=OnUse.of(r.on_use),
            )
            for r in (await conn.execute(query)).all()
        ]

    async def take_try(self, conn: AsyncConnection, code_id: UUID, now: datetime) -> bool:
        """Count one try of a live code; False if it had none left (or was used, or has
        expired) — in one conditional statement, so parallel tries never pass the limit."""
        result = await conn.execute(
            update(codes_t)
            .where(
                codes_t.c.id == code_id,
                codes_t.c.used_at.is_(None),
                codes_t.c.expires_at > now,
                codes_t.c.attempts < CODE_TRIES,
            )
            .values(attempts=codes_t.c.attempts + 1)
        )
        return bool(result.rowcount)

    async def use_code(self, conn: AsyncConnection, code_id: UUID, now: datetime) -> bool:
        """Mark the code used; False if another request used it first."""
        result = await conn.execute(
            update(codes_t)
            .where(codes_t.c.id == code_id, codes_t.c.used_at.is_(None))
            .values(used_at=now)
        )
        return bool(result.rowcount)


member_access_repository = MemberAccessRepository()
