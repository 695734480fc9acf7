"""Every member query."""

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import delete, extract, func, or_, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.kit.sql import is_postgres, one_of, pg_fetch_keyed
from kopilka.models import Member, MemberIdentifier
from kopilka.models.base import table
from kopilka.outbox.unit import UnitOfWork

members_t = table(Member)
# The member lock (see ``MemberService.lock``): the member's row, in id order. NO KEY UPDATE
# leaves the key-share locks that inserts of the member's purchases, lots … take unblocked.
LOCK_PG = (
    "SELECT id, status FROM members WHERE program_id = $1 AND id {keys}"
    " ORDER BY id FOR NO KEY UPDATE"
)
FIND_AND_LOCK_PG = (
    "SELECT i.value, m.id, m.status FROM member_identifiers i"
    " JOIN members m ON m.id = i.member_id"
    " WHERE i.program_id = $1 AND i.kind = $2 AND i.value {keys}"
    " ORDER BY m.id FOR NO KEY UPDATE OF m"
)
FIND_IDS_PG = (
    "SELECT i.value, m.id, m.status FROM member_identifiers i"
    " JOIN members m ON m.id = i.member_id"
    " WHERE i.program_id = $1 AND i.kind = $2 AND i.value {keys}"
)
identifiers_t = table(MemberIdentifier)


class MemberRepository:
    async def batch_end(
        self, conn: AsyncConnection, program_id: UUID, after: UUID | None, size: int
    ) -> UUID | None:
        """The last id of the next ``size`` members of the program after ``after`` (in id
        order); None when there are none left."""
        m = members_t.c
        where = [m.program_id == program_id, *([] if after is None else [m.id > after])]
        found = await conn.scalar(
            select(m.id).where(*where).order_by(m.id).offset(size - 1).limit(1)
        )
        if found is None:
            # The last, shorter batch (PostgreSQL has no max() of uuid).
            found = await conn.scalar(select(m.id).where(*where).order_by(m.id.desc()).limit(1))
        return found

    def stage(
        self,
        uow: UnitOfWork,
        rows: Sequence[dict[str, Any]],
        identifiers: Sequence[dict[str, Any]],
    ) -> None:
        uow.insert(members_t, rows)
        uow.insert(identifiers_t, identifiers)

    async def get(self, conn: AsyncConnection, program_id: UUID, member_id: UUID) -> Any:
        query = select(members_t).where(
            members_t.c.id == member_id, members_t.c.program_id == program_id
        )
        return (await conn.execute(query)).one_or_none()

    async def page(
        self,
        conn: AsyncConnection,
        program_id: UUID,
        *,
        limit: int,
        before: tuple[datetime, UUID] | None,
    ) -> list[UUID]:
        """Ids of the newest members first, keyset-paginated on (created_at, id)."""
        query = select(members_t.c.id).where(members_t.c.program_id == program_id)
        if before is not None:
            query = query.where(tuple_(members_t.c.created_at, members_t.c.id) < tuple_(*before))
        query = query.order_by(members_t.c.created_at.desc(), members_t.c.id.desc()).limit(limit)
        return [r.id for r in (await conn.execute(query)).all()]

    async def identifiers(self, conn: AsyncConnection, member_id: UUID) -> list[tuple[str, str]]:
        query = (
            select(identifiers_t.c.kind, identifiers_t.c.value)
            .where(identifiers_t.c.member_id == member_id)
            .order_by(identifiers_t.c.id)
        )
        return [(r.kind, r.value) for r in (await conn.execute(query)).all()]

    async def find_ids(
        self, conn: AsyncConnection, program_id: UUID, kind: str, values: Sequence[str]
    ) -> dict[str, tuple[UUID, str]]:
        """value → (member id, status) for the identifiers of ``kind`` that exist."""
        if not values:
            return {}
        if is_postgres(conn):
            rows = await pg_fetch_keyed(conn, FIND_IDS_PG, "varchar", program_id, kind, keys=values)
            return {r[0]: (r[1], r[2]) for r in rows}
        query = (
            select(identifiers_t.c.value, members_t.c.id, members_t.c.status)
            .join(members_t, members_t.c.id == identifiers_t.c.member_id)
            .where(
                identifiers_t.c.program_id == program_id,
                identifiers_t.c.kind == kind,
                one_of(conn, identifiers_t.c.value, set(values)),
            )
        )
        return {r.value: (r.id, r.status) for r in (await conn.execute(query)).all()}

    async def find_and_lock_pg(
        self, conn: AsyncConnection, program_id: UUID, kind: str, values: Sequence[str]
    ) -> dict[str, tuple[UUID, str]]:
        """PostgreSQL: members by identifier, locked in member order, in one round trip."""
        rows = await pg_fetch_keyed(
            conn, FIND_AND_LOCK_PG, "varchar", program_id, kind, keys=values
        )
        return {r[0]: (r[1], r[2]) for r in rows}

    async def lock(
        self, conn: AsyncConnection, program_id: UUID, member_ids: Sequence[UUID]
    ) -> dict[UUID, str]:
        """Lock these members' rows in id order (SQLite: its one writer is the lock); their
        statuses. Members of other programs are neither locked nor returned."""
        ids = sorted(set(member_ids))
        if not ids:
            return {}
        if is_postgres(conn):
            rows = await pg_fetch_keyed(conn, LOCK_PG, "uuid", program_id, keys=ids)
            return {r[0]: r[1] for r in rows}
        return await self.statuses(conn, program_id, ids)

    async def profiles(self, conn: AsyncConnection, program_id: UUID) -> list[Any]:
        """Every member of the program: id, registration, birthday, tags, attributes,
        status (a replay's starting point)."""
        query = select(
            members_t.c.id,
            members_t.c.created_at,
            members_t.c.birthday,
            members_t.c.tags,
            members_t.c.attributes,
            members_t.c.status,
        ).where(members_t.c.program_id == program_id)
        return list((await conn.execute(query)).all())

    async def active_ids(
        self, conn: AsyncConnection, program_id: UUID, joined_before: datetime
    ) -> list[UUID]:
        query = (
            select(members_t.c.id)
            .where(
                members_t.c.program_id == program_id,
                members_t.c.status == "active",
                members_t.c.created_at <= joined_before,
            )
            .order_by(members_t.c.id)
        )
        return [r[0] for r in await conn.execute(query)]

    async def born_on(
        self,
        conn: AsyncConnection,
        program_id: UUID,
        days: Sequence[tuple[int, int]],
        *,
        after: UUID | None,
        limit: int,
        joined_by: datetime | None = None,
    ) -> list[UUID]:
        month = extract("month", members_t.c.birthday)
        day_of_month = extract("day", members_t.c.birthday)
        query = (
            select(members_t.c.id)
            .where(
                members_t.c.program_id == program_id,
                members_t.c.status == "active",
                or_(*[(month == m) & (day_of_month == d) for m, d in days]),
            )
            .order_by(members_t.c.id)
            .limit(limit)
        )
        if after is not None:
            query = query.where(members_t.c.id > after)
        if joined_by is not None:
            query = query.where(members_t.c.created_at <= joined_by)
        return list((await conn.execute(query)).scalars().all())

    async def joined_within(
        self,
        conn: AsyncConnection,
        program_id: UUID,
        spans: Sequence[tuple[datetime, datetime]],
        *,
        after: UUID | None,
        limit: int,
    ) -> list[UUID]:
        """Active members who joined within one of ``spans`` ([start, end) instants), in
        id order after ``after``."""
        if not spans:
            return []
        created = members_t.c.created_at
        query = (
            select(members_t.c.id)
            .where(
                members_t.c.program_id == program_id,
                members_t.c.status == "active",
                or_(*[(created >= start) & (created < end) for start, end in spans]),
            )
            .order_by(members_t.c.id)
            .limit(limit)
        )
        if after is not None:
            query = query.where(members_t.c.id > after)
        return list((await conn.execute(query)).scalars().all())

    async def statuses(
        self, conn: AsyncConnection, program_id: UUID, member_ids: Sequence[UUID]
    ) -> dict[UUID, str]:
        if not member_ids:
            return {}
        query = select(members_t.c.id, members_t.c.status).where(
            members_t.c.program_id == program_id, one_of(conn, members_t.c.id, set(member_ids))
        )
        return {r.id: r.status for r in (await conn.execute(query)).all()}

    async def survivors(
        self, conn: AsyncConnection, program_id: UUID, member_ids: Sequence[UUID]
    ) -> dict[UUID, tuple[UUID, str]]:
        """For merged members among ``member_ids``: the profile each was merged into and its
        status."""
        if not member_ids:
            return {}
        survivor = members_t.alias("survivor")
        query = (
            select(members_t.c.id, survivor.c.id.label("into"), survivor.c.status)
            .join(survivor, survivor.c.id == members_t.c.merged_into)
            .where(
                members_t.c.program_id == program_id,
                one_of(conn, members_t.c.id, set(member_ids)),
            )
        )
        return {r.id: (r.into, r.status) for r in (await conn.execute(query)).all()}

    async def merged_into(
        self, conn: AsyncConnection, program_id: UUID, member_ids: Sequence[UUID]
    ) -> list[UUID]:
        """The profiles merged straight into any of ``member_ids``."""
        if not member_ids:
            return []
        query = select(members_t.c.id).where(
            members_t.c.program_id == program_id,
            one_of(conn, members_t.c.merged_into, set(member_ids)),
        )
        return [r.id for r in (await conn.execute(query)).all()]

    async def move_identifiers(
        self, conn: AsyncConnection, source: UUID, target: UUID, drop_kinds: Sequence[str]
    ) -> None:
        """``source``'s identifiers become ``target``'s, but those of ``drop_kinds``, which
        are freed."""
        if drop_kinds:
            await conn.execute(
                delete(identifiers_t).where(
                    identifiers_t.c.member_id == source, identifiers_t.c.kind.in_(drop_kinds)
                )
            )
        await conn.execute(
            update(identifiers_t)
            .where(identifiers_t.c.member_id == source)
            .values(member_id=target)
        )

    async def delete_identifiers(self, conn: AsyncConnection, member_id: UUID) -> None:
        await conn.execute(delete(identifiers_t).where(identifiers_t.c.member_id == member_id))

    async def duplicate_keys(
        self,
        conn: AsyncConnection,
        program_id: UUID,
        column: str,
        *,
        after: str | None,
        limit: int,
    ) -> list[str]:
        """Values of ``column`` (``match_name`` or ``match_email``) that more than one
        profile of the program shares, in order after ``after``."""
        key = members_t.c[column]
        query = (
            select(key)
            .where(members_t.c.program_id == program_id, key.is_not(None))
            .group_by(key)
            .having(func.count() > 1)
            .order_by(key)
            .limit(limit)
        )
        if after is not None:
            query = query.where(key > after)
        return [r[0] for r in (await conn.execute(query)).all()]

    async def sharing(
        self, conn: AsyncConnection, program_id: UUID, column: str, keys: Sequence[str]
    ) -> list[Any]:
        """The profiles carrying these keys of ``column``, oldest first."""
        if not keys:
            return []
        key = members_t.c[column]
        query = (
            select(
                members_t.c.id,
                members_t.c.name,
                members_t.c.email,
                members_t.c.phone,
                members_t.c.birthday,
                members_t.c.created_at,
                key.label("key"),
            )
            .where(members_t.c.program_id == program_id, key.in_(keys))
            .order_by(key, members_t.c.created_at, members_t.c.id)
        )
        return list((await conn.execute(query)).all())

    async def listing(
        self,
        conn: AsyncConnection,
        program_id: UUID,
        *,
        limit: int,
        before: tuple[datetime, UUID] | None = None,
        member_ids: Sequence[UUID] | None = None,
        name_patterns: Sequence[str] | None = None,
    ) -> list[Any]:
        """Members as a list shows them (id, name, contacts, first card, status, joined),
        newest first, keyset-paginated on (created_at, id): all of them, those of
        ``member_ids``, or those whose name is ``LIKE`` one of ``name_patterns`` (escaped
        with ``\\``; case-insensitive on PostgreSQL, as SQLite's ``LIKE`` is for ASCII).
        Walking the (program, created_at) index newest first, a search stops at ``limit``
        matches instead of reading every profile."""
        card = (
            select(func.min(identifiers_t.c.value))
            .where(identifiers_t.c.member_id == members_t.c.id, identifiers_t.c.kind == "card")
            .scalar_subquery()
        )
        query = select(
            members_t.c.id,
            members_t.c.name,
            members_t.c.phone,
            members_t.c.email,
            card.label("card"),
            members_t.c.status,
            members_t.c.created_at,
        ).where(members_t.c.program_id == program_id)
        if member_ids is not None:
            query = query.where(one_of(conn, members_t.c.id, set(member_ids)))
        if name_patterns:
            name = members_t.c.name
            likes = [
                name.ilike(p, escape="\\") if is_postgres(conn) else name.like(p, escape="\\")
                for p in name_patterns
            ]
            query = query.where(or_(*likes))
        if before is not None:
            query = query.where(tuple_(members_t.c.created_at, members_t.c.id) < tuple_(*before))
        query = query.order_by(members_t.c.created_at.desc(), members_t.c.id.desc()).limit(limit)
        return list((await conn.execute(query)).all())

    async def taken_identifiers(
        self,
        conn: AsyncConnection,
        program_id: UUID,
        pairs: Sequence[tuple[str, str]],
        exclude_member: UUID | None = None,
    ) -> list[tuple[str, str]]:
        taken: list[tuple[str, str]] = []
        for kind, value in pairs:
            query = select(identifiers_t.c.member_id).where(
                identifiers_t.c.program_id == program_id,
                identifiers_t.c.kind == kind,
                identifiers_t.c.value == value,
            )
            if exclude_member is not None:
                query = query.where(identifiers_t.c.member_id != exclude_member)
            if (await conn.execute(query)).first() is not None:
                taken.append((kind, value))
        return taken

    def stage_tags(self, uow: UnitOfWork, member_id: UUID, tags: list[str]) -> None:
        uow.update(members_t, ("id",), [{"id": member_id, "tags": tags}])

    async def update(self, conn: AsyncConnection, member_id: UUID, values: dict[str, Any]) -> None:
        await conn.execute(update(members_t).where(members_t.c.id == member_id).values(**values))

    async def replace_identifier(
        self,
        conn: AsyncConnection,
        program_id: UUID,
        member_id: UUID,
        kind: str,
        value: str | None,
    ) -> None:
        await conn.execute(
            delete(identifiers_t).where(
                identifiers_t.c.member_id == member_id, identifiers_t.c.kind == kind
            )
        )
        if value is not None:
            await conn.execute(
                identifiers_t.insert().values(
                    program_id=program_id, member_id=member_id, kind=kind, value=value
                )
            )


member_repository = MemberRepository()
