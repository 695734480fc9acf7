"""Every query of the web-shop widget: its settings and its sessions."""

from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.kit.clock import as_utc
from kopilka.models import Member, WidgetSession, WidgetSetting
from kopilka.models.base import table
from kopilka.shopwidget import domain

sessions_t = table(WidgetSession)
settings_t = table(WidgetSetting)
members_t = table(Member)


class WidgetRepository:
    # --- settings ------------------------------------------------------------------------

    async def allowed_origins(self, conn: AsyncConnection, program_id: UUID) -> list[str]:
        query = select(settings_t.c.allowed_origins).where(settings_t.c.program_id == program_id)
        found: list[str] | None = (await conn.execute(query)).scalar_one_or_none()
        return list(found or [])

    async def save_allowed_origins(
        self, conn: AsyncConnection, program_id: UUID, origins: list[str], now: datetime
    ) -> None:
        changed = await conn.execute(
            update(settings_t)
            .where(settings_t.c.program_id == program_id)
            .values(allowed_origins=origins, updated_at=now)
        )
        if changed.rowcount == 0:
            await conn.execute(
                insert(settings_t).values(
                    program_id=program_id, allowed_origins=origins, updated_at=now
                )
            )

    # --- sessions ------------------------------------------------------------------------

    async def insert_session(self, conn: AsyncConnection, row: dict[str, Any]) -> None:
        await conn.execute(insert(sessions_t), [row])

    async def live_session(
        self, conn: AsyncConnection, digest: str, now: datetime
    ) -> tuple[domain.WidgetSession, str] | None:
        """The unexpired session of this token hash with its member's status, or None."""
        query = (
            select(
                sessions_t.c.id,
                sessions_t.c.program_id,
                sessions_t.c.member_id,
                sessions_t.c.expires_at,
                sessions_t.c.max_points,
                sessions_t.c.points_held,
                members_t.c.status,
            )
            .join(members_t, members_t.c.id == sessions_t.c.member_id)
            .where(sessions_t.c.token_hash == digest, sessions_t.c.expires_at > now)
        )
        row = (await conn.execute(query)).one_or_none()
        if row is None:
            return None
        session = domain.WidgetSession(
            session_id=row.id,
            program_id=row.program_id,
            member_id=row.member_id,
            expires_at=as_utc(row.expires_at),
            max_points=row.max_points,
            points_held=row.points_held,
        )
        return session, str(row.status)

    async def expire_sessions(self, conn: AsyncConnection, member_id: UUID, now: datetime) -> int:
        """End every unexpired session of the member now."""
        result = await conn.execute(
            update(sessions_t)
            .where(sessions_t.c.member_id == member_id, sessions_t.c.expires_at > now)
            .values(expires_at=now)
        )
        return int(result.rowcount or 0)

    async def points_held(self, conn: AsyncConnection, session_id: UUID) -> int:
        """What the session has put on hold so far, as committed (read under the member's
        lock, which every hold of the session takes first)."""
        query = select(sessions_t.c.points_held).where(sessions_t.c.id == session_id)
        return int((await conn.execute(query)).scalar_one())

    async def add_points_held(self, conn: AsyncConnection, session_id: UUID, points: int) -> None:
        await conn.execute(
            update(sessions_t)
            .where(sessions_t.c.id == session_id)
            .values(points_held=sessions_t.c.points_held + points)
        )


widget_repository = WidgetRepository()
