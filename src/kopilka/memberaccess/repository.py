"""Every query of members' sessions and sign-in codes."""

from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

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


member_access_repository = MemberAccessRepository()
