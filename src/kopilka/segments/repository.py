"""Every query of segments: predicates compiled to SQL (SQLAlchemy Core, the same on SQLite
and PostgreSQL), counts and pages of a definition, the segments and their membership.

A definition becomes one query; each predicate is a boolean expression about the row's
member, registered with :func:`kopilka.crm.predicates.compiles`:

- when every member the tree can hold for has a ``member_facts`` row (it asks for a
  purchase, a spend above 0, a last purchase, an RFM score), the query walks
  ``member_facts`` alone: ``SELECT member_id FROM member_facts WHERE program_id = :program
  AND <the tree>``, joining ``members`` only if the tree reads a profile column;
- otherwise ``SELECT members.id FROM members [LEFT JOIN member_facts] WHERE …``.

Relations to other tables (tier, consent, purchases) are correlated ``EXISTS``, which
PostgreSQL turns into semi- or anti-joins. Purchases and spend over the stored windows
(30, 90, 365 days) read ``member_facts`` columns while they are exact for today
(:meth:`SegmentRepository.windows_exact`); other windows sum the daily buckets
``member_days``, per member when a query walks few of them (a page, a batch of events),
and for the whole program at once otherwise. A range that 0 satisfies ("at most 2
purchases") also takes members with no purchases at all.
"""

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import (
    delete,
    func,
    insert,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.util import find_tables

from kopilka.crm.domain import stored_window
from kopilka.crm.predicates import SqlContext
from kopilka.kit.sql import one_of
from kopilka.segments import domain as d
from kopilka.segments.compiler_repository import (
    compile_node,
    facts_t,
    members_t,
    seg_members_t,
    segments_t,
)
from kopilka.segments.domain import (
    AllOf,
    AnyOf,
    Node,
    NotOf,
    predicates_of,
)

# --- storage -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Scope:
    """What a definition is compiled for."""

    program_id: UUID
    now: datetime
    entry_tier: str | None
    points_currency: str


def _facts_only(node: Node) -> bool:
    """Whether every member the tree holds for has a ``member_facts`` row (one per member
    with purchases, written with the buckets): then a query need not visit the others."""
    if isinstance(node, AllOf):
        return any(_facts_only(n) for n in node.items)
    if isinstance(node, AnyOf):
        return all(_facts_only(n) for n in node.items)
    if isinstance(node, NotOf):
        return False
    if isinstance(node, d.Purchases):
        return node.measure == "average_check" or not node.holds_for(0)
    # ``bought`` reads purchases as they are, which the facts may not show yet.
    return isinstance(node, d.DaysSinceLastPurchase | d.RfmGroups | d.RfmScore)


def _reads_stored_windows(node: Node) -> bool:
    return any(
        isinstance(p, d.Purchases) and p.last_days is not None and stored_window(p.last_days)
        for p in predicates_of(node)
    )


@asynccontextmanager
async def planned_for_values(conn: AsyncConnection) -> AsyncIterator[None]:
    """PostgreSQL: plan the statements inside for their parameters' values, and set the
    session's way back after them. The engine plans every statement once, generically, which
    suits the purchase path's look-ups by key; a definition's ranges and sets are only as
    selective as their values say ("spend ≥ 3,000.00 in 90 days" is a tenth of the
    members, a generic plan guesses a third), and a wrong guess turns an index range into a
    scan of the table (1,000,000 members: a 0.3 s probe instead of 0.05 ms)."""
    if conn.dialect.name != "postgresql":
        yield
        return
    before = await conn.scalar(text("SELECT current_setting('plan_cache_mode')"))
    await conn.execute(text("SELECT set_config('plan_cache_mode', 'force_custom_plan', true)"))
    try:
        yield
    finally:
        await conn.execute(
            text("SELECT set_config('plan_cache_mode', :before, true)"), {"before": before}
        )


@dataclass(frozen=True)
class Matching:
    """A definition's query (one column, the member id) and its id column, to order and
    restrict by."""

    query: Any
    id: Any


class SegmentRepository:
    async def windows_exact(self, conn: AsyncConnection, program_id: UUID, now: datetime) -> bool:
        """Whether the stored windows of every member of the program are exact today: no
        row's ``windows_until`` has come (the daily facts job moves those on)."""
        f = facts_t.c
        async with planned_for_values(conn):
            due = await conn.scalar(
                select(f.member_id)
                .where(f.program_id == program_id, f.windows_until <= now.date())
                .limit(1)
            )
        return due is None

    async def matching(
        self,
        conn: AsyncConnection,
        scope: Scope,
        node: Node,
        member_ids: Sequence[UUID] | None = None,
        *,
        per_member: bool = False,
    ) -> Matching:
        """The program's members the definition holds for (among ``member_ids``)."""
        windows = _reads_stored_windows(node) and await self.windows_exact(
            conn, scope.program_id, scope.now
        )
        per_member = per_member or member_ids is not None
        facts_only = _facts_only(node)
        ctx = SqlContext(
            program_id=scope.program_id,
            now=scope.now,
            today=scope.now.date(),
            dialect=conn.dialect.name,
            entry_tier=scope.entry_tier,
            points_currency=scope.points_currency,
            member_id=facts_t.c.member_id if facts_only else members_t.c.id,
            members=members_t,
            facts=facts_t,
            windows=windows,
            per_member=per_member,
        )
        condition = compile_node(node, ctx)
        used = set(find_tables(condition, check_columns=True))
        if facts_only:
            source: Any = facts_t
            if members_t in used:
                source = facts_t.join(members_t, members_t.c.id == facts_t.c.member_id)
            where = facts_t.c.program_id == scope.program_id
        else:
            source = members_t
            if facts_t in used:
                source = members_t.outerjoin(facts_t, facts_t.c.member_id == members_t.c.id)
            where = members_t.c.program_id == scope.program_id
        id_ = ctx.member_id
        query = select(id_.label("id")).select_from(source).where(where, condition)
        if member_ids is not None:
            query = query.where(one_of(conn, id_, member_ids))
        return Matching(query, id_)

    async def count(self, conn: AsyncConnection, scope: Scope, node: Node) -> int:
        found = (await self.matching(conn, scope, node)).query.subquery()
        async with planned_for_values(conn):
            return int(await conn.scalar(select(func.count()).select_from(found)) or 0)

    async def page(
        self, conn: AsyncConnection, scope: Scope, node: Node, after: UUID | None, limit: int
    ) -> list[UUID]:
        """Members in id order after ``after``: a walk of the ids with the definition as a
        filter, which stops at ``limit``."""
        found = await self.matching(conn, scope, node, per_member=True)
        query = found.query
        if after is not None:
            query = query.where(found.id > after)
        async with planned_for_values(conn):
            rows = await conn.execute(query.order_by(found.id).limit(limit))
        return [r[0] for r in rows]

    async def matching_among(
        self, conn: AsyncConnection, scope: Scope, node: Node, member_ids: Sequence[UUID]
    ) -> set[UUID]:
        found = await self.matching(conn, scope, node, member_ids)
        async with planned_for_values(conn):
            return {r[0] for r in await conn.execute(found.query)}

    # segments

    async def insert(self, conn: AsyncConnection, row: dict[str, Any]) -> None:
        await conn.execute(insert(segments_t).values(**row))

    async def update(self, conn: AsyncConnection, segment_id: UUID, **values: Any) -> None:
        await conn.execute(update(segments_t).where(segments_t.c.id == segment_id).values(**values))

    async def get(self, conn: AsyncConnection, program_id: UUID, key: str) -> Any:
        query = select(segments_t).where(
            segments_t.c.program_id == program_id, segments_t.c.key == key
        )
        return (await conn.execute(query)).one_or_none()

    async def listing(
        self,
        conn: AsyncConnection,
        program_id: UUID,
        *,
        archived: bool,
        after: str | None,
        limit: int,
    ) -> list[Any]:
        s = segments_t.c
        query = select(segments_t).where(s.program_id == program_id)
        if not archived:
            query = query.where(s.status == "active")
        if after is not None:
            query = query.where(s.key > after)
        return list(await conn.execute(query.order_by(s.key).limit(limit)))

    async def dynamic(self, conn: AsyncConnection, program_id: UUID) -> list[Any]:
        s = segments_t.c
        query = select(segments_t).where(
            s.program_id == program_id, s.status == "active", s.kind == "dynamic"
        )
        return list(await conn.execute(query.order_by(s.key)))

    async def has_dynamic(self, conn: AsyncConnection, program_id: UUID) -> bool:
        s = segments_t.c
        query = select(s.id).where(
            s.program_id == program_id, s.status == "active", s.kind == "dynamic"
        )
        return (await conn.scalar(query.limit(1))) is not None

    # membership

    async def members_among(
        self, conn: AsyncConnection, segment_id: UUID, member_ids: Sequence[UUID]
    ) -> set[UUID]:
        m = seg_members_t.c
        rows = await conn.execute(
            select(m.member_id).where(
                m.segment_id == segment_id, one_of(conn, m.member_id, member_ids)
            )
        )
        return {r[0] for r in rows}

    async def add_members(
        self,
        conn: AsyncConnection,
        segment_id: UUID,
        program_id: UUID,
        ids: Sequence[UUID],
        now: datetime,
    ) -> None:
        rows = [
            {"segment_id": segment_id, "member_id": i, "program_id": program_id, "entered_at": now}
            for i in ids
        ]
        for start in range(0, len(rows), 5000):
            await conn.execute(insert(seg_members_t), rows[start : start + 5000])

    async def remove_members(
        self, conn: AsyncConnection, segment_id: UUID, ids: Sequence[UUID]
    ) -> None:
        m = seg_members_t.c
        ordered = list(ids)
        for start in range(0, len(ordered), 5000):
            chunk = ordered[start : start + 5000]
            await conn.execute(
                delete(seg_members_t).where(
                    m.segment_id == segment_id, one_of(conn, m.member_id, chunk)
                )
            )

    async def changes(
        self, conn: AsyncConnection, scope: Scope, node: Node, segment_id: UUID
    ) -> tuple[list[UUID], list[UUID]]:
        """Who the definition holds for and is not in the segment (entering), and who is in
        it and the definition no longer holds for (leaving): on PostgreSQL one full join of
        the two sets, each read once."""
        found = (await self.matching(conn, scope, node)).query
        m = seg_members_t.c
        now_in = select(m.member_id).where(m.segment_id == segment_id)
        if conn.dialect.name != "postgresql":
            # SQLite joins two subqueries by scanning one for each row of the other; its
            # EXCEPT sorts each once.
            entering = [r[0] for r in await conn.execute(found.except_(now_in))]
            leaving = [r[0] for r in await conn.execute(now_in.except_(found))]
            return sorted(entering), sorted(leaving)
        matching = found.subquery("matching")
        current = now_in.subquery("current")
        query = (
            select(matching.c.id, current.c.member_id)
            .select_from(matching.join(current, matching.c.id == current.c.member_id, full=True))
            .where(or_(matching.c.id.is_(None), current.c.member_id.is_(None)))
        )
        entering, leaving = [], []
        async with planned_for_values(conn):
            rows = (await conn.execute(query)).all()
        for new, old in rows:
            if new is not None:
                entering.append(new)
            else:
                leaving.append(old)
        return sorted(entering), sorted(leaving)

    async def all_members(self, conn: AsyncConnection, segment_id: UUID) -> list[UUID]:
        m = seg_members_t.c
        rows = await conn.execute(
            select(m.member_id).where(m.segment_id == segment_id).order_by(m.member_id)
        )
        return [r[0] for r in rows]

    async def member_count(self, conn: AsyncConnection, segment_id: UUID) -> int:
        m = seg_members_t.c
        found = await conn.scalar(
            select(func.count()).select_from(seg_members_t).where(m.segment_id == segment_id)
        )
        return int(found or 0)

    async def members_page(
        self, conn: AsyncConnection, segment_id: UUID, after: UUID | None, limit: int
    ) -> list[tuple[UUID, str | None]]:
        m = seg_members_t.c
        query = (
            select(m.member_id, members_t.c.name)
            .select_from(seg_members_t.join(members_t, members_t.c.id == m.member_id))
            .where(m.segment_id == segment_id)
        )
        if after is not None:
            query = query.where(m.member_id > after)
        rows = await conn.execute(query.order_by(m.member_id).limit(limit))
        return [(r[0], r[1]) for r in rows]

    async def names(self, conn: AsyncConnection, ids: Sequence[UUID]) -> dict[UUID, str | None]:
        if not ids:
            return {}
        rows = await conn.execute(
            select(members_t.c.id, members_t.c.name).where(one_of(conn, members_t.c.id, ids))
        )
        return {r[0]: r[1] for r in rows}

    async def segments_of(
        self, conn: AsyncConnection, program_id: UUID, member_ids: Sequence[UUID]
    ) -> list[tuple[UUID, Any]]:
        """(member id, segment row) of the active segments these members are in."""
        m, s = seg_members_t.c, segments_t.c
        query = (
            select(m.member_id, segments_t)
            .select_from(seg_members_t.join(segments_t, s.id == m.segment_id))
            .where(
                s.program_id == program_id,
                s.status == "active",
                one_of(conn, m.member_id, member_ids),
            )
            .order_by(m.member_id, s.key)
        )
        return [(r[0], r) for r in await conn.execute(query)]

    async def keys_of(
        self, conn: AsyncConnection, program_id: UUID, member_ids: Sequence[UUID]
    ) -> dict[UUID, set[str]]:
        m, s = seg_members_t.c, segments_t.c
        query = (
            select(m.member_id, s.key)
            .select_from(seg_members_t.join(segments_t, s.id == m.segment_id))
            .where(
                s.program_id == program_id,
                s.status == "active",
                one_of(conn, m.member_id, member_ids),
            )
        )
        found: dict[UUID, set[str]] = {}
        for member_id, key in await conn.execute(query):
            found.setdefault(member_id, set()).add(key)
        return found

    async def program_members(
        self, conn: AsyncConnection, program_id: UUID, ids: Sequence[UUID]
    ) -> set[UUID]:
        """Which of ``ids`` are members of the program."""
        found: set[UUID] = set()
        ordered = list(ids)
        for start in range(0, len(ordered), 5000):
            chunk = ordered[start : start + 5000]
            rows = await conn.execute(
                select(members_t.c.id).where(
                    members_t.c.program_id == program_id, one_of(conn, members_t.c.id, chunk)
                )
            )
            found.update(r[0] for r in rows)
        return found


segment_repository = SegmentRepository()
