"""Every audit-log query."""

from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import insert, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.models import AuditEntry
from kopilka.models.base import table

audit_t = table(AuditEntry)


class AuditRepository:
    async def insert(self, conn: AsyncConnection, row: dict[str, Any]) -> None:
        await conn.execute(insert(audit_t), [row])

    async def page(
        self,
        conn: AsyncConnection,
        program_id: UUID,
        *,
        limit: int,
        before: tuple[datetime, UUID] | None,
        action: str | None = None,
        actor_id: UUID | None = None,
        subject_type: str | None = None,
        subject_id: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> list[Any]:
        """Entries newest first, keyset-paged on (at, id)."""
        query = select(audit_t).where(audit_t.c.program_id == program_id)
        if action is not None:
            # ``points.`` matches every points action; a full name matches itself.
            if action.endswith("."):
                query = query.where(audit_t.c.action.startswith(action, autoescape=True))
            else:
                query = query.where(audit_t.c.action == action)
        if actor_id is not None:
            query = query.where(audit_t.c.actor_id == actor_id)
        if subject_type is not None:
            query = query.where(audit_t.c.subject_type == subject_type)
        if subject_id is not None:
            query = query.where(audit_t.c.subject_id == subject_id)
        if since is not None:
            query = query.where(audit_t.c.at >= since)
        if until is not None:
            query = query.where(audit_t.c.at < until)
        if before is not None:
            query = query.where(tuple_(audit_t.c.at, audit_t.c.id) < tuple_(*before))
        query = query.order_by(audit_t.c.at.desc(), audit_t.c.id.desc()).limit(limit)
        return list((await conn.execute(query)).all())

    async def blank_subject(
        self, conn: AsyncConnection, program_id: UUID, subject_type: str, subject_id: str
    ) -> int:
        """Blank the before and after of every entry about one subject."""
        result = await conn.execute(
            update(audit_t)
            .where(
                audit_t.c.program_id == program_id,
                audit_t.c.subject_type == subject_type,
                audit_t.c.subject_id == subject_id,
            )
            .values(before=None, after={"erased": True})
        )
        return int(result.rowcount or 0)


audit_repository = AuditRepository()
