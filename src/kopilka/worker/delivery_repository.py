"""Every query of event delivery: stamping, checkpoints, retries, publishing, retention.

Locking: stamping is serialized by a transaction-level advisory lock on PostgreSQL (SQLite
has one writer anyway); a worker leases a (consumer, partition) by locking its checkpoint
row ``FOR UPDATE SKIP LOCKED``, so several workers share the partitions and never read one
partition at the same time. Retry rows of a partition are only touched under that lease.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import and_, delete, exists, func, or_, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.kit.bulk import WriteBatch, insert_rows
from kopilka.kit.clock import as_utc
from kopilka.kit.sql import is_postgres, one_of
from kopilka.models import ConsumerCheckpoint, ConsumerRetry, OutboxEvent
from kopilka.models.base import table
from kopilka.outbox.consumers import PARTITIONS, StoredEvent, partition_of

outbox_t = table(OutboxEvent)
checkpoints_t = table(ConsumerCheckpoint)
retries_t = table(ConsumerRetry)

# pg_advisory_xact_lock keys: arbitrary constants, one per serialized step.
STAMP_LOCK = 7_286_150_001
PUBLISH_LOCK = 7_286_150_002

RETRYING, WAITING, PARKED = "retrying", "waiting", "parked"

_EVENT_COLUMNS = (
    outbox_t.c.seq,
    outbox_t.c.partition,
    outbox_t.c.event_id,
    outbox_t.c.program_id,
    outbox_t.c.member_id,
    outbox_t.c.topic,
    outbox_t.c.version,
    outbox_t.c.payload,
    outbox_t.c.occurred_at,
)


def _event(row: Any) -> StoredEvent:
    return StoredEvent(
        seq=row.seq,
        partition=row.partition,
        event_id=row.event_id,
        program_id=row.program_id,
        member_id=row.member_id,
        topic=row.topic,
        version=row.version,
        payload=row.payload,
        occurred_at=as_utc(row.occurred_at),
    )


@dataclass(frozen=True)
class Lease:
    """A locked checkpoint row: where the consumer stands in the partition."""

    position: int
    attempts: int


@dataclass(frozen=True)
class RetryRow:
    consumer: str
    seq: int
    member_key: UUID
    event_id: UUID
    status: str
    attempts: int
    next_attempt_at: datetime | None
    last_error: str | None


def _retry(row: Any) -> RetryRow:
    return RetryRow(
        consumer=row.consumer,
        seq=row.seq,
        member_key=row.member_key,
        event_id=row.event_id,
        status=row.status,
        attempts=row.attempts,
        next_attempt_at=as_utc(row.next_attempt_at) if row.next_attempt_at else None,
        last_error=row.last_error,
    )


@dataclass(frozen=True)
class ConsumerLag:
    consumer: str
    lag: int  # stamped events past the checkpoints
    retrying: int
    waiting: int
    parked: int
    halted_until: datetime | None
    last_error: str | None


@dataclass(frozen=True)
class ParkedEvent:
    consumer: str
    seq: int
    event_id: UUID
    program_id: UUID
    member_id: UUID | None
    topic: str
    attempts: int
    last_error: str | None
    parked_at: datetime


class OutboxRepository:
    # --- stamping ------------------------------------------------------------------------

    async def stamp(self, conn: AsyncConnection, limit: int) -> int:
        """Give up to ``limit`` committed, unstamped rows the next ``seq`` values in id
        order, and their partition. Returns how many; 0 if another worker is stamping."""
        if is_postgres(conn):
            got = await conn.scalar(
                text("SELECT pg_try_advisory_xact_lock(:key)"), {"key": STAMP_LOCK}
            )
            if not got:
                return 0
        rows = (
            await conn.execute(
                select(outbox_t.c.id, outbox_t.c.member_id, outbox_t.c.program_id)
                .where(outbox_t.c.seq.is_(None))
                .order_by(outbox_t.c.id)
                .limit(limit)
            )
        ).all()
        if not rows:
            return 0
        last = await conn.scalar(select(func.coalesce(func.max(outbox_t.c.seq), 0)))
        batch = WriteBatch()
        batch.update(
            outbox_t,
            ("id",),
            [
                {
                    "id": row.id,
                    "seq": int(last or 0) + n,
                    "partition": partition_of(row.member_id or row.program_id),
                }
                for n, row in enumerate(rows, start=1)
            ],
        )
        await batch.write(conn)
        return len(rows)

    async def last_seq(self, conn: AsyncConnection) -> int:
        return int(await conn.scalar(select(func.coalesce(func.max(outbox_t.c.seq), 0))) or 0)

    async def unstamped(self, conn: AsyncConnection) -> int:
        found = await conn.scalar(
            select(func.count()).select_from(outbox_t).where(outbox_t.c.seq.is_(None))
        )
        return int(found or 0)

    # --- checkpoints ---------------------------------------------------------------------

    async def ensure_checkpoints(
        self, conn: AsyncConnection, consumer: str, position: int, now: datetime
    ) -> None:
        """Create the consumer's checkpoint rows at ``position`` where missing."""
        have = set(
            (
                await conn.execute(
                    select(checkpoints_t.c.partition).where(checkpoints_t.c.consumer == consumer)
                )
            ).scalars()
        )
        missing = [p for p in range(PARTITIONS) if p not in have]
        if not missing:
            return
        rows = [
            {
                "consumer": consumer,
                "partition": p,
                "position": position,
                "attempts": 0,
                "retry_at": None,
                "last_error": None,
                "updated_at": now,
            }
            for p in missing
        ]
        if is_postgres(conn):
            await conn.execute(pg_insert(checkpoints_t).on_conflict_do_nothing(), rows)
        else:
            await conn.execute(checkpoints_t.insert().prefix_with("OR IGNORE"), rows)

    async def has_checkpoints(self, conn: AsyncConnection, consumer: str) -> bool:
        found = await conn.scalar(
            select(func.count())
            .select_from(checkpoints_t)
            .where(checkpoints_t.c.consumer == consumer)
        )
        return bool(found)

    async def with_work(
        self, conn: AsyncConnection, consumers: Sequence[str], now: datetime
    ) -> list[tuple[str, int]]:
        """(consumer, partition) pairs with new events or retries due, not held back."""
        c = checkpoints_t
        new_events = exists().where(
            and_(outbox_t.c.partition == c.c.partition, outbox_t.c.seq > c.c.position)
        )
        due_retries = exists().where(
            and_(
                retries_t.c.consumer == c.c.consumer,
                retries_t.c.partition == c.c.partition,
                retries_t.c.status == RETRYING,
                retries_t.c.next_attempt_at <= now,
            )
        )
        rows = await conn.execute(
            select(c.c.consumer, c.c.partition)
            .where(
                one_of(conn, c.c.consumer, consumers),
                or_(c.c.retry_at.is_(None), c.c.retry_at <= now),
                or_(new_events, due_retries),
            )
            .order_by(c.c.partition, c.c.consumer)
        )
        return [(r.consumer, r.partition) for r in rows]

    async def lease(
        self, conn: AsyncConnection, consumer: str, partition: int, now: datetime
    ) -> Lease | None:
        """Lock the checkpoint row; None if another worker holds it or it is held back."""
        c = checkpoints_t
        row = (
            await conn.execute(
                select(c.c.position, c.c.attempts, c.c.retry_at)
                .where(c.c.consumer == consumer, c.c.partition == partition)
                .with_for_update(skip_locked=True)
            )
        ).first()
        if row is None or (row.retry_at is not None and as_utc(row.retry_at) > now):
            return None
        return Lease(position=row.position, attempts=row.attempts)

    async def advance(
        self, conn: AsyncConnection, consumer: str, partition: int, position: int, now: datetime
    ) -> None:
        c = checkpoints_t
        await conn.execute(
            update(c)
            .where(c.c.consumer == consumer, c.c.partition == partition)
            .values(position=position, attempts=0, retry_at=None, last_error=None, updated_at=now)
        )

    async def hold_back(
        self,
        conn: AsyncConnection,
        consumer: str,
        partition: int,
        attempts: int,
        retry_at: datetime,
        error: str,
        now: datetime,
    ) -> None:
        """A consumer that halts on failure: the partition waits until ``retry_at``."""
        c = checkpoints_t
        await conn.execute(
            update(c)
            .where(c.c.consumer == consumer, c.c.partition == partition)
            .values(attempts=attempts, retry_at=retry_at, last_error=error, updated_at=now)
        )

    # --- events --------------------------------------------------------------------------

    async def events_after(
        self, conn: AsyncConnection, partition: int, position: int, limit: int
    ) -> list[StoredEvent]:
        rows = await conn.execute(
            select(*_EVENT_COLUMNS)
            .where(outbox_t.c.partition == partition, outbox_t.c.seq > position)
            .order_by(outbox_t.c.seq)
            .limit(limit)
        )
        return [_event(r) for r in rows]

    async def events_by_seq(
        self, conn: AsyncConnection, seqs: Sequence[int]
    ) -> dict[int, StoredEvent]:
        if not seqs:
            return {}
        rows = await conn.execute(select(*_EVENT_COLUMNS).where(one_of(conn, outbox_t.c.seq, seqs)))
        return {r.seq: _event(r) for r in rows}

    # --- retries -------------------------------------------------------------------------

    async def due_retries(
        self, conn: AsyncConnection, consumer: str, partition: int, now: datetime, limit: int
    ) -> list[RetryRow]:
        r = retries_t
        rows = await conn.execute(
            select(r)
            .where(
                r.c.consumer == consumer,
                r.c.partition == partition,
                r.c.status == RETRYING,
                r.c.next_attempt_at <= now,
            )
            .order_by(r.c.seq)
            .limit(limit)
        )
        return [_retry(row) for row in rows]

    async def blocked_members(
        self, conn: AsyncConnection, consumer: str, partition: int
    ) -> set[UUID]:
        """Members (keys) whose earlier events this consumer still has to handle."""
        r = retries_t
        rows = await conn.execute(
            select(r.c.member_key)
            .where(r.c.consumer == consumer, r.c.partition == partition, r.c.status != PARKED)
            .distinct()
        )
        return set(rows.scalars())

    async def add_retries(self, conn: AsyncConnection, rows: list[dict[str, Any]]) -> None:
        await insert_rows(conn, retries_t, rows)

    async def update_retry(
        self, conn: AsyncConnection, consumer: str, seq: int, **values: Any
    ) -> None:
        await conn.execute(
            update(retries_t)
            .where(retries_t.c.consumer == consumer, retries_t.c.seq == seq)
            .values(**values)
        )

    async def drop_retry(self, conn: AsyncConnection, consumer: str, seq: int) -> None:
        await conn.execute(
            delete(retries_t).where(retries_t.c.consumer == consumer, retries_t.c.seq == seq)
        )

    async def promote_next(
        self, conn: AsyncConnection, consumer: str, member_key: UUID, now: datetime
    ) -> None:
        """The member's next waiting event becomes due now (its predecessor is done or
        parked)."""
        r = retries_t
        if await conn.scalar(
            select(func.count())
            .select_from(r)
            .where(r.c.consumer == consumer, r.c.member_key == member_key, r.c.status == RETRYING)
        ):
            return
        first = await conn.scalar(
            select(func.min(r.c.seq)).where(
                r.c.consumer == consumer, r.c.member_key == member_key, r.c.status == WAITING
            )
        )
        if first is not None:
            await self.update_retry(
                conn, consumer, first, status=RETRYING, next_attempt_at=now, updated_at=now
            )

    async def parked(
        self,
        conn: AsyncConnection,
        *,
        program_id: UUID | None = None,
        consumer: str | None = None,
        limit: int = 100,
        after_seq: int | None = None,
    ) -> list[ParkedEvent]:
        r = retries_t
        query = (
            select(
                r.c.consumer,
                r.c.seq,
                r.c.event_id,
                r.c.attempts,
                r.c.last_error,
                r.c.updated_at,
                outbox_t.c.program_id,
                outbox_t.c.member_id,
                outbox_t.c.topic,
            )
            .join(outbox_t, outbox_t.c.seq == r.c.seq)
            .where(r.c.status == PARKED)
            .order_by(r.c.seq, r.c.consumer)
            .limit(limit)
        )
        if program_id is not None:
            query = query.where(outbox_t.c.program_id == program_id)
        if consumer is not None:
            query = query.where(r.c.consumer == consumer)
        if after_seq is not None:
            query = query.where(r.c.seq > after_seq)
        return [
            ParkedEvent(
                consumer=row.consumer,
                seq=row.seq,
                event_id=row.event_id,
                program_id=row.program_id,
                member_id=row.member_id,
                topic=row.topic,
                attempts=row.attempts,
                last_error=row.last_error,
                parked_at=as_utc(row.updated_at),
            )
            for row in await conn.execute(query)
        ]

    async def replay(
        self,
        conn: AsyncConnection,
        now: datetime,
        *,
        event_id: UUID | None = None,
        consumer: str | None = None,
        program_id: UUID | None = None,
    ) -> int:
        """Parked events (of one event, consumer or program, or all) become due now."""
        r = retries_t
        conditions = [r.c.status == PARKED]
        if event_id is not None:
            conditions.append(r.c.event_id == event_id)
        if consumer is not None:
            conditions.append(r.c.consumer == consumer)
        if program_id is not None:
            conditions.append(
                r.c.seq.in_(select(outbox_t.c.seq).where(outbox_t.c.program_id == program_id))
            )
        result = await conn.execute(
            update(r)
            .where(*conditions)
            .values(status=RETRYING, attempts=0, next_attempt_at=now, updated_at=now)
        )
        return int(result.rowcount or 0)

    # --- published_at and retention ------------------------------------------------------

    async def mark_published(
        self, conn: AsyncConnection, consumers: Sequence[str], now: datetime
    ) -> int:
        """``published_at`` for every stamped event each of ``consumers`` has handled: its
        checkpoint passed it and it waits in no retry (or park) row."""
        if not consumers:
            return 0
        # One worker at a time: two marking the same rows could lock them in other orders.
        if is_postgres(conn) and not await conn.scalar(
            text("SELECT pg_try_advisory_xact_lock(:key)"), {"key": PUBLISH_LOCK}
        ):
            return 0
        c = checkpoints_t
        positions = await conn.execute(
            select(c.c.partition, func.min(c.c.position), func.count())
            .where(one_of(conn, c.c.consumer, consumers))
            .group_by(c.c.partition)
        )
        marked = 0
        names = list(consumers)
        for partition, position, count in positions:
            if count < len(names):
                continue  # a consumer has not started on this partition
            pending = exists().where(
                retries_t.c.seq == outbox_t.c.seq, one_of(conn, retries_t.c.consumer, names)
            )
            result = await conn.execute(
                update(outbox_t)
                .where(
                    outbox_t.c.published_at.is_(None),
                    outbox_t.c.partition == partition,
                    outbox_t.c.seq <= position,
                    ~pending,
                )
                .values(published_at=now)
            )
            marked += int(result.rowcount or 0)
        return marked

    async def delete_published(self, conn: AsyncConnection, before: datetime, limit: int) -> int:
        ids = (
            select(outbox_t.c.id)
            .where(outbox_t.c.published_at.is_not(None), outbox_t.c.published_at < before)
            .order_by(outbox_t.c.id)
            .limit(limit)
        )
        result = await conn.execute(delete(outbox_t).where(outbox_t.c.id.in_(ids)))
        return int(result.rowcount or 0)

    async def undelivered(self, conn: AsyncConnection) -> int:
        """Events without ``published_at``: not yet stamped, or stamped and not yet had by
        every consumer (each count served by its own partial index)."""
        unstamped = select(func.count()).where(outbox_t.c.seq.is_(None))
        waiting = select(func.count()).where(
            outbox_t.c.seq.is_not(None), outbox_t.c.published_at.is_(None)
        )
        found = await conn.execute(select(unstamped.scalar_subquery(), waiting.scalar_subquery()))
        first, second = found.one()
        return int(first) + int(second)

    # --- status --------------------------------------------------------------------------

    async def lag(self, conn: AsyncConnection, consumers: Sequence[str]) -> list[ConsumerLag]:
        c = checkpoints_t
        names = sorted(set(consumers))
        if not names:
            return []
        behind = (
            select(func.count())
            .select_from(outbox_t)
            .where(outbox_t.c.partition == c.c.partition, outbox_t.c.seq > c.c.position)
            .scalar_subquery()
        )
        lag_rows = await conn.execute(
            select(
                c.c.consumer,
                func.sum(behind),
                func.max(c.c.retry_at),
                func.max(c.c.last_error),
            )
            .where(one_of(conn, c.c.consumer, names))
            .group_by(c.c.consumer)
        )
        lags = {r[0]: (int(r[1] or 0), r[2], r[3]) for r in lag_rows}
        counts = await conn.execute(
            select(retries_t.c.consumer, retries_t.c.status, func.count())
            .where(one_of(conn, retries_t.c.consumer, names))
            .group_by(retries_t.c.consumer, retries_t.c.status)
        )
        by_status: dict[tuple[str, str], int] = {(r[0], r[1]): int(r[2]) for r in counts}
        out = []
        for name in names:
            lag, retry_at, error = lags.get(name, (0, None, None))
            out.append(
                ConsumerLag(
                    consumer=name,
                    lag=lag,
                    retrying=by_status.get((name, RETRYING), 0),
                    waiting=by_status.get((name, WAITING), 0),
                    parked=by_status.get((name, PARKED), 0),
                    halted_until=as_utc(retry_at) if retry_at else None,
                    last_error=error,
                )
            )
        return out

    async def known_consumers(self, conn: AsyncConnection) -> list[str]:
        rows = await conn.execute(select(checkpoints_t.c.consumer).distinct())
        return sorted(rows.scalars())


outbox_repository = OutboxRepository()
