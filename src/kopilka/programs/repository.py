"""Every program and program-version query.

Published versions are only ever inserted: the one UPDATE and the one DELETE on
``program_versions`` below are limited to ``status = 'draft'`` in their WHERE clause, so no
code path can change history even when handed the id of a published row.
"""

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.models import Program, ProgramVersion
from kopilka.models.base import table

programs_t = table(Program)
versions_t = table(ProgramVersion)

DRAFT = "draft"
PUBLISHED = "published"
SUMMARY_COLUMNS = (
    versions_t.c.version,
    versions_t.c.status,
    versions_t.c.note,
    versions_t.c.created_at,
    versions_t.c.published_at,
)


class ProgramRepository:
    # --- programs -----------------------------------------------------------------------------

    async def slug_taken(self, conn: AsyncConnection, slug: str) -> bool:
        found = await conn.execute(select(programs_t.c.id).where(programs_t.c.slug == slug))
        return found.first() is not None

    async def insert(self, conn: AsyncConnection, row: dict[str, Any]) -> None:
        await conn.execute(programs_t.insert().values(**row))

    async def ids(self, conn: AsyncConnection) -> list[UUID]:
        found = await conn.execute(select(programs_t.c.id).order_by(programs_t.c.id))
        return list(found.scalars())

    async def get(self, conn: AsyncConnection, program_id: UUID, *, lock: bool = False) -> Any:
        """The program row; ``lock`` takes it ``FOR UPDATE``, which serialises every change of
        the program's document (draft edits, publishing) on PostgreSQL. SQLite has one writer
        at a time already."""
        query = select(programs_t).where(programs_t.c.id == program_id)
        if lock:
            query = query.with_for_update()
        return (await conn.execute(query)).one_or_none()

    async def by_slug(self, conn: AsyncConnection, slug: str | None) -> Sequence[Any]:
        """Up to two programs with this slug, or any two without one: enough to tell
        "none", "the one" and "several" apart."""
        query = select(programs_t)
        if slug is not None:
            query = query.where(programs_t.c.slug == slug)
        return (await conn.execute(query.limit(2))).all()

    async def put_in_force(
        self,
        conn: AsyncConnection,
        program_id: UUID,
        *,
        version: int,
        document: dict[str, Any],
        now: datetime,
    ) -> None:
        """Copy a published version onto the program row the purchase path reads."""
        await conn.execute(
            update(programs_t)
            .where(programs_t.c.id == program_id)
            .values(settings=document, version=version, updated_at=now)
        )

    # --- versions -----------------------------------------------------------------------------

    async def insert_version(self, conn: AsyncConnection, row: dict[str, Any]) -> None:
        await conn.execute(versions_t.insert().values(**row))

    async def draft(self, conn: AsyncConnection, program_id: UUID) -> Any:
        query = select(versions_t).where(
            versions_t.c.program_id == program_id, versions_t.c.status == DRAFT
        )
        return (await conn.execute(query)).one_or_none()

    async def replace_draft_document(
        self, conn: AsyncConnection, draft_id: UUID, document: dict[str, Any]
    ) -> None:
        await conn.execute(
            update(versions_t)
            .where(versions_t.c.id == draft_id, versions_t.c.status == DRAFT)
            .values(document=document)
        )

    async def delete_draft(self, conn: AsyncConnection, draft_id: UUID) -> None:
        await conn.execute(
            delete(versions_t).where(versions_t.c.id == draft_id, versions_t.c.status == DRAFT)
        )

    async def latest_number(self, conn: AsyncConnection, program_id: UUID) -> int:
        query = select(func.max(versions_t.c.version)).where(versions_t.c.program_id == program_id)
        return (await conn.execute(query)).scalar_one() or 0

    async def published(self, conn: AsyncConnection, program_id: UUID, version: int) -> Any:
        query = select(versions_t).where(
            versions_t.c.program_id == program_id,
            versions_t.c.version == version,
            versions_t.c.status == PUBLISHED,
        )
        return (await conn.execute(query)).one_or_none()

    async def published_in_force_at(
        self, conn: AsyncConnection, program_id: UUID, moment: datetime
    ) -> Any:
        """The published version that was in force at ``moment``: the last one published
        at or before it; the first version for a moment before it was published."""
        published = [versions_t.c.program_id == program_id, versions_t.c.status == PUBLISHED]
        query = (
            select(versions_t)
            .where(*published, versions_t.c.published_at <= moment)
            .order_by(versions_t.c.published_at.desc(), versions_t.c.version.desc())
            .limit(1)
        )
        row = (await conn.execute(query)).first()
        if row is None:
            first = select(versions_t).where(*published).order_by(versions_t.c.version).limit(1)
            row = (await conn.execute(first)).first()
        return row

    async def page(
        self, conn: AsyncConnection, program_id: UUID, *, limit: int, before: int | None
    ) -> Sequence[Any]:
        """Published versions, newest first, without their documents."""
        query = select(*SUMMARY_COLUMNS).where(
            versions_t.c.program_id == program_id, versions_t.c.status == PUBLISHED
        )
        if before is not None:
            query = query.where(versions_t.c.version < before)
        query = query.order_by(versions_t.c.version.desc()).limit(limit)
        return (await conn.execute(query)).all()


program_repository = ProgramRepository()
