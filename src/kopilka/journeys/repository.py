"""Every query of journeys: the journeys and their versions, members' runs (entered
idempotently, taken when due with a row lock a second worker skips), the steps they took,
the counts the statistics read (per version), what the steps gave (the cost), and the
members' past events the outbox keeps (a dry run's history)."""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import and_, distinct, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.kit.sql import one_of
from kopilka.models import Journey, JourneyRun, JourneyStepLog, JourneyVersion, OutboxEvent
from kopilka.models.base import table

journeys_t = table(Journey)
versions_t = table(JourneyVersion)
runs_t = table(JourneyRun)
logs_t = table(JourneyStepLog)
outbox_t = table(OutboxEvent)

LIVE = ("active", "waiting")
# Members per statement of a look-up by member (SQLite takes at most 32,766 parameters).
MEMBERS_CHUNK = 1000


@dataclass(frozen=True)
class JourneyRow:
    id: UUID
    program_id: UUID
    key: str
    name: str
    status: str
    version: int | None
    draft: dict[str, Any] | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class RunRow:
    id: UUID
    program_id: UUID
    journey_id: UUID
    version: int
    member_id: UUID
    entry_key: str
    status: str
    step: str | None
    steps_done: int
    wake_at: datetime | None
    waiting_for: str | None
    entered_at: datetime
    goal_until: datetime | None
    converted_at: datetime | None
    finished_at: datetime | None
    updated_at: datetime


def _journey(row: Any) -> JourneyRow:
    return JourneyRow(**row._mapping)


def _run(row: Any) -> RunRow:
    return RunRow(**row._mapping)


class JourneyRepository:
    # --- journeys and versions -------------------------------------------------------------

    async def add_journey(self, conn: AsyncConnection, row: dict[str, Any]) -> None:
        await conn.execute(journeys_t.insert().values(**row))

    async def journey(
        self,
        conn: AsyncConnection,
        program_id: UUID,
        key: str,
        *,
        lock: bool = False,
    ) -> JourneyRow | None:
        query = select(journeys_t).where(
            journeys_t.c.program_id == program_id, journeys_t.c.key == key
        )
        if lock:
            query = query.with_for_update()
        row = (await conn.execute(query)).first()
        return _journey(row) if row is not None else None

    async def journey_by_id(self, conn: AsyncConnection, journey_id: UUID) -> JourneyRow | None:
        row = (await conn.execute(select(journeys_t).where(journeys_t.c.id == journey_id))).first()
        return _journey(row) if row is not None else None

    async def page(
        self, conn: AsyncConnection, program_id: UUID, after: str | None, limit: int
    ) -> list[JourneyRow]:
        """A page of the program's journeys in key order, after the key ``after``."""
        j = journeys_t.c
        query = select(journeys_t).where(j.program_id == program_id)
        if after is not None:
            query = query.where(j.key > after)
        rows = await conn.execute(query.order_by(j.key).limit(limit))
        return [_journey(r) for r in rows]

    async def journeys(
        self, conn: AsyncConnection, program_id: UUID, statuses: Sequence[str] | None = None
    ) -> list[JourneyRow]:
        query = select(journeys_t).where(journeys_t.c.program_id == program_id)
        if statuses is not None:
            query = query.where(journeys_t.c.status.in_(statuses))
        rows = await conn.execute(query.order_by(journeys_t.c.key))
        return [_journey(r) for r in rows]

    async def update_journey(
        self, conn: AsyncConnection, journey_id: UUID, values: dict[str, Any]
    ) -> None:
        await conn.execute(update(journeys_t).where(journeys_t.c.id == journey_id).values(**values))

    async def add_version(self, conn: AsyncConnection, row: dict[str, Any]) -> None:
        await conn.execute(versions_t.insert().values(**row))

    async def documents(
        self, conn: AsyncConnection, pairs: Sequence[tuple[UUID, int]]
    ) -> dict[tuple[UUID, int], dict[str, Any]]:
        """The documents of these (journey, version) pairs."""
        if not pairs:
            return {}
        v = versions_t.c
        wanted = sorted(set(pairs))
        journeys = sorted({j for j, _ in wanted})
        rows = await conn.execute(
            select(v.journey_id, v.version, v.document).where(one_of(conn, v.journey_id, journeys))
        )
        found = {(r[0], int(r[1])): r[2] for r in rows}
        return {pair: found[pair] for pair in wanted if pair in found}

    async def first_published(
        self, conn: AsyncConnection, journey_ids: Sequence[UUID]
    ) -> dict[UUID, datetime]:
        """When each of these journeys was first published."""
        if not journey_ids:
            return {}
        v = versions_t.c
        rows = await conn.execute(
            select(v.journey_id, func.min(v.published_at))
            .where(one_of(conn, v.journey_id, list(journey_ids)))
            .group_by(v.journey_id)
        )
        return {r[0]: r[1] for r in rows}

    async def versions(self, conn: AsyncConnection, journey_id: UUID) -> list[tuple[int, datetime]]:
        v = versions_t.c
        rows = await conn.execute(
            select(v.version, v.published_at)
            .where(v.journey_id == journey_id)
            .order_by(v.version.desc())
        )
        return [(int(r[0]), r[1]) for r in rows]

    # --- runs ------------------------------------------------------------------------------

    async def add_runs(self, conn: AsyncConnection, rows: Sequence[dict[str, Any]]) -> set[UUID]:
        """The runs whose (journey, member, entry) is new; the ids of those inserted (an
        entry delivered twice starts one run)."""
        if not rows:
            return set()
        maker = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
        inserted: set[UUID] = set()
        for row in rows:
            statement = (
                maker(runs_t)
                .values(**row)
                .on_conflict_do_nothing(index_elements=["journey_id", "member_id", "entry_key"])
                .returning(runs_t.c.id)
            )
            hit = (await conn.execute(statement)).first()
            if hit is not None:
                inserted.add(hit[0])
        return inserted

    async def member_runs(
        self, conn: AsyncConnection, journey_ids: Sequence[UUID], member_ids: Sequence[UUID]
    ) -> list[RunRow]:
        """Every run of these members through these journeys (re-entry decisions)."""
        if not journey_ids or not member_ids:
            return []
        r = runs_t.c
        rows = await conn.execute(
            select(runs_t).where(
                one_of(conn, r.journey_id, sorted(set(journey_ids))),
                one_of(conn, r.member_id, sorted(set(member_ids))),
            )
        )
        return [_run(row) for row in rows]

    async def listening(
        self, conn: AsyncConnection, program_id: UUID, member_ids: Sequence[UUID], now: datetime
    ) -> list[RunRow]:
        """These members' runs an event may move: waiting for one, or within their goal's
        window and not converted yet; locked."""
        r = runs_t.c
        rows = await conn.execute(
            select(runs_t)
            .where(
                r.program_id == program_id,
                one_of(conn, r.member_id, sorted(set(member_ids))),
                (r.status == "waiting")
                | and_(r.converted_at.is_(None), r.goal_until.is_not(None), r.goal_until >= now),
            )
            .order_by(r.id)
            .with_for_update()
        )
        return [_run(row) for row in rows]

    async def due(
        self, conn: AsyncConnection, program_id: UUID, now: datetime, limit: int
    ) -> list[RunRow]:
        """The program's runs whose time has come (a wait over, a time-out) of active
        journeys, oldest first, locked; a second worker skips the ones taken."""
        r, j = runs_t.c, journeys_t.c
        rows = await conn.execute(
            select(runs_t)
            .join(journeys_t, j.id == r.journey_id)
            .where(
                r.program_id == program_id,
                r.status.in_(LIVE),
                r.wake_at <= now,
                j.status == "active",
            )
            .order_by(r.wake_at, r.id)
            .limit(limit)
            .with_for_update(of=runs_t, skip_locked=True)
        )
        return [_run(row) for row in rows]

    async def update_run(self, conn: AsyncConnection, run_id: UUID, values: dict[str, Any]) -> None:
        await conn.execute(update(runs_t).where(runs_t.c.id == run_id).values(**values))

    async def add_logs(self, conn: AsyncConnection, rows: Sequence[dict[str, Any]]) -> None:
        if rows:
            await conn.execute(logs_t.insert(), list(rows))

    async def runs_page(
        self,
        conn: AsyncConnection,
        journey_id: UUID,
        after: UUID | None,
        limit: int,
        status: str | None = None,
    ) -> list[RunRow]:
        r = runs_t.c
        query = select(runs_t).where(r.journey_id == journey_id)
        if status is not None:
            query = query.where(r.status == status)
        if after is not None:
            query = query.where(r.id > after)
        rows = await conn.execute(query.order_by(r.id).limit(limit))
        return [_run(row) for row in rows]

    async def run(self, conn: AsyncConnection, journey_id: UUID, run_id: UUID) -> RunRow | None:
        r = runs_t.c
        row = (
            await conn.execute(select(runs_t).where(r.journey_id == journey_id, r.id == run_id))
        ).first()
        return _run(row) if row is not None else None

    async def logs_of(self, conn: AsyncConnection, run_id: UUID) -> list[dict[str, Any]]:
        rows = await conn.execute(
            select(logs_t).where(logs_t.c.run_id == run_id).order_by(logs_t.c.seq)
        )
        return [dict(row._mapping) for row in rows]

    # --- statistics ------------------------------------------------------------------------

    async def step_counts(
        self, conn: AsyncConnection, journey_id: UUID
    ) -> dict[tuple[int, str, str], int]:
        """(version, step, outcome) → how many times runs on that version took that step
        with that outcome: a step id of version 1 is another step than version 2's."""
        g, r = logs_t.c, runs_t.c
        rows = await conn.execute(
            select(r.version, g.step, g.outcome, func.count())
            .select_from(logs_t.join(runs_t, r.id == g.run_id))
            .where(g.journey_id == journey_id)
            .group_by(r.version, g.step, g.outcome)
        )
        return {(int(row[0]), row[1], row[2]): int(row[3]) for row in rows}

    async def at_steps(self, conn: AsyncConnection, journey_id: UUID) -> dict[tuple[int, str], int]:
        """(version, step) → live runs at it now (waiting there or due)."""
        r = runs_t.c
        rows = await conn.execute(
            select(r.version, r.step, func.count())
            .where(r.journey_id == journey_id, r.status.in_(LIVE))
            .group_by(r.version, r.step)
        )
        return {(int(row[0]), str(row[1])): int(row[2]) for row in rows if row[1] is not None}

    async def run_counts(
        self, conn: AsyncConnection, journey_id: UUID
    ) -> dict[tuple[int, str], tuple[int, int]]:
        """(version, status) → (runs, of them converted); ``held_out`` is the holdout."""
        r = runs_t.c
        rows = await conn.execute(
            select(r.version, r.status, func.count(), func.count(r.converted_at))
            .where(r.journey_id == journey_id)
            .group_by(r.version, r.status)
        )
        return {(int(row[0]), str(row[1])): (int(row[2]), int(row[3])) for row in rows}

    # --- what the steps gave, and the runs' windows -----------------------------------------

    async def credited(self, conn: AsyncConnection, journey_id: UUID) -> dict[str, int]:
        """Currency → points the journey's points steps credited (their logs' detail)."""
        g = logs_t.c
        currency = g.detail["currency"].as_string()
        rows = await conn.execute(
            select(currency, func.sum(g.detail["amount"].as_integer()))
            .where(g.journey_id == journey_id, g.outcome == "credited")
            .group_by(currency)
        )
        return {str(row[0]): int(row[1] or 0) for row in rows}

    async def issued_coupons(self, conn: AsyncConnection, journey_id: UUID) -> list[str]:
        """The sources of the codes the journey's coupon steps issued, as the steps named
        them (``journey:<run>:<step number>``)."""
        g = logs_t.c
        rows = await conn.execute(
            select(g.run_id, g.seq)
            .where(g.journey_id == journey_id, g.outcome == "issued")
            .order_by(g.run_id, g.seq)
        )
        return [f"journey:{row[0]}:{row[1]}" for row in rows]

    async def run_windows(
        self, conn: AsyncConnection, journey_id: UUID
    ) -> list[tuple[UUID, bool, datetime, datetime | None]]:
        """Every run's member, whether it was held out, when it entered and the end of its
        goal's window (None: no goal)."""
        r = runs_t.c
        rows = await conn.execute(
            select(r.member_id, r.status == "held_out", r.entered_at, r.goal_until)
            .where(r.journey_id == journey_id)
            .order_by(r.id)
        )
        return [(row[0], bool(row[1]), row[2], row[3]) for row in rows]

    # --- members' past events, as the outbox keeps them --------------------------------------

    def _events(
        self, program_id: UUID, topic: str, start: datetime, end: datetime, segment: str | None
    ) -> list[Any]:
        o = outbox_t.c
        conditions = [
            o.program_id == program_id,
            o.topic == topic,
            o.member_id.is_not(None),
            o.occurred_at >= start,
            o.occurred_at < end,
        ]
        if segment is not None:
            conditions.append(o.payload["segment"].as_string() == segment)
        return conditions

    async def event_members(
        self,
        conn: AsyncConnection,
        program_id: UUID,
        topic: str,
        start: datetime,
        end: datetime,
        segment: str | None = None,
    ) -> int:
        """How many members had an event of ``topic`` in [start, end) (of ``segment``, for
        a segment's events)."""
        where = self._events(program_id, topic, start, end, segment)
        found = await conn.scalar(select(func.count(distinct(outbox_t.c.member_id))).where(*where))
        return int(found or 0)

    async def event_times(
        self,
        conn: AsyncConnection,
        program_id: UUID,
        topic: str,
        start: datetime,
        end: datetime,
        *,
        first: int | None = None,
        members: Sequence[UUID] | None = None,
        segment: str | None = None,
    ) -> dict[UUID, list[datetime]]:
        """Member → the instants of their events of ``topic`` in [start, end), in order: of
        the ``first`` members by id, or of ``members``."""
        o = outbox_t.c
        where = self._events(program_id, topic, start, end, segment)
        found: dict[UUID, list[datetime]] = {}
        if members is None:
            chosen = select(o.member_id).distinct().where(*where).order_by(o.member_id)
            if first is not None:
                chosen = chosen.limit(first)
            members = [row[0] for row in await conn.execute(chosen)]
        ids = sorted(set(members))
        for i in range(0, len(ids), MEMBERS_CHUNK):
            chunk = ids[i : i + MEMBERS_CHUNK]
            rows = await conn.execute(
                select(o.member_id, o.occurred_at)
                .where(*where, one_of(conn, o.member_id, chunk))
                .order_by(o.member_id, o.occurred_at)
            )
            for member_id, at in rows:
                found.setdefault(member_id, []).append(at)
        return found


journey_repository = JourneyRepository()
