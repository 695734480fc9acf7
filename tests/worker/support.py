"""Helpers of the delivery tests: events written through the unit of work, and consumers
that record what they handled in a table of their own (so a rolled-back attempt leaves no
trace, as the consumer's real writes would)."""

import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from uuid import UUID

from sqlalchemy import (
    BigInteger,
    Column,
    Integer,
    MetaData,
    String,
    Table,
    UniqueConstraint,
    Uuid,
    func,
    select,
)
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from kopilka.db import transaction
from kopilka.kit.clock import clock
from kopilka.models.base import BigIntPK
from kopilka.outbox.consumers import Consumer, ConsumerRegistry
from kopilka.outbox.events import DomainEvent, MemberUpdated
from kopilka.outbox.unit import UnitOfWork

metadata = MetaData()
applied = Table(
    "test_applied_events",
    metadata,
    Column("id", BigIntPK, primary_key=True, autoincrement=True),
    Column("consumer", String(100), nullable=False),
    Column("event_id", Uuid, nullable=False),
    Column("member_id", Uuid, nullable=True),
    Column("n", Integer, nullable=False),
    Column("seq", BigInteger, nullable=True),
    UniqueConstraint("consumer", "event_id"),
)

T0 = datetime(2031, 3, 1, 12, 0, tzinfo=UTC)


async def ensure_table(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)


async def drop_table(engine: AsyncEngine) -> None:
    """The table is the tests' own: gone before the schema is compared with the models."""
    async with engine.begin() as conn:
        await conn.run_sync(metadata.drop_all)


@asynccontextmanager
async def applied_table(engine: AsyncEngine) -> AsyncIterator[None]:
    await ensure_table(engine)
    try:
        yield
    finally:
        await drop_table(engine)


def update_event(program_id: UUID, member_id: UUID | None, n: int) -> MemberUpdated:
    return MemberUpdated(
        program_id=program_id,
        member_id=member_id,
        occurred_at=clock.now(),
        changed=["n"],
        values={"n": n},
    )


async def emit(engine: AsyncEngine, *events: DomainEvent) -> None:
    """Commit ``events`` in one transaction, as a feature would."""
    async with transaction(engine) as conn:
        unit = UnitOfWork(clock.now())
        unit.emit(*events)
        await unit.flush(conn)


def recorder(
    program_id: UUID,
    name: str | None = None,
    *,
    fail: Callable[[DomainEvent], bool] = lambda _: False,
    registry: ConsumerRegistry | None = None,
) -> Consumer:
    """A consumer of ``member.updated`` events of one program that inserts a row per event
    (a plain INSERT: applying an event twice would break the unique constraint)."""
    registry = registry or ConsumerRegistry()
    consumer_name = name or f"test-{uuid.uuid4().hex[:12]}"

    @registry.consumer("member.updated", name=consumer_name, start="latest")
    async def record(event: DomainEvent, conn: AsyncConnection) -> None:
        if event.program_id != program_id:
            return
        assert isinstance(event, MemberUpdated)
        if fail(event):
            raise RuntimeError(f"refused {event.values['n']}")
        await conn.execute(
            applied.insert().values(
                consumer=consumer_name,
                event_id=event.event_id,
                member_id=event.member_id,
                n=event.values["n"],
            )
        )

    found = registry.get(consumer_name)
    assert found is not None
    return found


async def applied_rows(engine: AsyncEngine, consumer: str) -> list[tuple[UUID | None, int]]:
    """(member, n) in the order the consumer committed them."""
    async with engine.connect() as conn:
        rows = await conn.execute(
            select(applied.c.member_id, applied.c.n)
            .where(applied.c.consumer == consumer)
            .order_by(applied.c.id)
        )
        return [(r.member_id, r.n) for r in rows]


async def applied_count(engine: AsyncEngine, consumer: str) -> int:
    async with engine.connect() as conn:
        found = await conn.scalar(
            select(func.count()).select_from(applied).where(applied.c.consumer == consumer)
        )
        return int(found or 0)


def by_member(rows: Sequence[tuple[UUID | None, int]]) -> dict[UUID | None, list[int]]:
    out: dict[UUID | None, list[int]] = {}
    for member, n in rows:
        out.setdefault(member, []).append(n)
    return out
