"""Every query of staff accounts and their sessions."""

from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import insert, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.models import StaffMember, StaffSession
from kopilka.models.base import table

staff_t = table(StaffMember)
sessions_t = table(StaffSession)


class StaffRepository:
    async def insert(self, conn: AsyncConnection, row: dict[str, Any]) -> None:
        await conn.execute(insert(staff_t), [row])

    async def get(
        self, conn: AsyncConnection, program_id: UUID, staff_id: UUID, *, lock: bool = False
    ) -> Any:
        query = select(staff_t).where(staff_t.c.id == staff_id, staff_t.c.program_id == program_id)
        if lock:
            query = query.with_for_update()
        return (await conn.execute(query)).one_or_none()

    async def by_email(
        self, conn: AsyncConnection, email: str, program_id: UUID | None, *, lock: bool = False
    ) -> list[Any]:
        """Accounts with this e-mail: in one program, or in every program."""
        query = select(staff_t).where(staff_t.c.email == email)
        if program_id is not None:
            query = query.where(staff_t.c.program_id == program_id)
        if lock:
            query = query.with_for_update()
        return list((await conn.execute(query.order_by(staff_t.c.id).limit(10))).all())

    async def page(
        self,
        conn: AsyncConnection,
        program_id: UUID,
        *,
        limit: int,
        after: tuple[datetime, UUID] | None,
    ) -> list[Any]:
        """Oldest account first, keyset-paged on (created_at, id)."""
        query = select(staff_t).where(staff_t.c.program_id == program_id)
        if after is not None:
            query = query.where(tuple_(staff_t.c.created_at, staff_t.c.id) > tuple_(*after))
        query = query.order_by(staff_t.c.created_at, staff_t.c.id).limit(limit)
        return list((await conn.execute(query)).all())

    async def active_with_roles(
        self, conn: AsyncConnection, program_id: UUID, roles: list[str]
    ) -> list[Any]:
        """(id, name) of the program's active staff of these roles, by name."""
        query = (
            select(staff_t.c.id, staff_t.c.name)
            .where(
                staff_t.c.program_id == program_id,
                staff_t.c.status == "active",
                staff_t.c.role.in_(roles),
            )
            .order_by(staff_t.c.name, staff_t.c.id)
        )
        return list((await conn.execute(query)).all())

    async def active_owners(
        self, conn: AsyncConnection, program_id: UUID, *, lock: bool = False
    ) -> int:
        """How many active owners the program has; ``lock``: their rows locked (in id
        order) until the transaction ends, so the count holds while it changes one."""
        query = select(staff_t.c.id).where(
            staff_t.c.program_id == program_id,
            staff_t.c.role == "owner",
            staff_t.c.status == "active",
        )
        if lock:
            query = query.order_by(staff_t.c.id).with_for_update()
        return len((await conn.execute(query)).all())

    async def update(self, conn: AsyncConnection, staff_id: UUID, values: dict[str, Any]) -> None:
        await conn.execute(update(staff_t).where(staff_t.c.id == staff_id).values(**values))

    async def insert_session(self, conn: AsyncConnection, row: dict[str, Any]) -> None:
        await conn.execute(insert(sessions_t), [row])

    async def session_with_staff(self, conn: AsyncConnection, digest: str, now: datetime) -> Any:
        """The live session of this token hash and its staff member, or None."""
        query = (
            select(
                sessions_t.c.id.label("session_id"),
                sessions_t.c.expires_at,
                staff_t.c.id,
                staff_t.c.program_id,
                staff_t.c.name,
                staff_t.c.email,
                staff_t.c.role,
                staff_t.c.stores,
                staff_t.c.status,
            )
            .join(staff_t, staff_t.c.id == sessions_t.c.staff_id)
            .where(
                sessions_t.c.token_hash == digest,
                sessions_t.c.revoked_at.is_(None),
                sessions_t.c.expires_at > now,
            )
        )
        return (await conn.execute(query)).one_or_none()

    async def session_is_live(self, conn: AsyncConnection, session_id: UUID, now: datetime) -> bool:
        query = select(sessions_t.c.id).where(
            sessions_t.c.id == session_id,
            sessions_t.c.revoked_at.is_(None),
            sessions_t.c.expires_at > now,
        )
        return (await conn.execute(query)).first() is not None

    async def revoke_sessions(
        self,
        conn: AsyncConnection,
        staff_id: UUID,
        now: datetime,
        *,
        only: UUID | None = None,
        keep: UUID | None = None,
    ) -> int:
        statement = update(sessions_t).where(
            sessions_t.c.staff_id == staff_id, sessions_t.c.revoked_at.is_(None)
        )
        if only is not None:
            statement = statement.where(sessions_t.c.id == only)
        if keep is not None:
            statement = statement.where(sessions_t.c.id != keep)
        result = await conn.execute(statement.values(revoked_at=now))
        return int(result.rowcount or 0)


staff_repository = StaffRepository()
