"""Delivery through the real worker on both databases: order per member, retries with
back-off on the test clock, parking and replay, published_at."""

from collections.abc import AsyncIterator
from datetime import timedelta
from uuid import uuid4

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from kopilka.db import reading, transaction
from kopilka.kit.clock import clock
from kopilka.models import OutboxEvent
from kopilka.models.base import table
from kopilka.outbox.consumers import Consumer
from kopilka.outbox.events import DomainEvent, MemberBlocked
from kopilka.programs.service import ProgramContext
from kopilka.worker.delivery import RetryPolicy
from kopilka.worker.runner import Worker
from kopilka.worker.service import worker_service
from tests.worker.support import (
    T0,
    applied_count,
    applied_rows,
    applied_table,
    by_member,
    emit,
    recorder,
    update_event,
)

outbox_t = table(OutboxEvent)


@pytest.fixture(autouse=True)
async def _table(engine: AsyncEngine) -> AsyncIterator[None]:
    async with applied_table(engine):
        yield


def worker(engine: AsyncEngine, *consumers: Consumer, attempts: int = 5) -> Worker:
    return Worker(
        engine,
        list(consumers),
        policy=RetryPolicy(max_attempts=attempts, base_seconds=10, cap_seconds=600),
        batch_size=7,  # small: several batches per partition
    )


async def test_each_member_gets_its_events_in_order_once(
    engine: AsyncEngine, program: ProgramContext
) -> None:
    consumer = recorder(program.id)
    runner = worker(engine, consumer)
    await runner.prepare()
    members = [uuid4() for _ in range(6)]
    # Interleaved: transaction k writes event k of every member, in a rotating order.
    for k in range(12):
        rotated = members[k % 6 :] + members[: k % 6]
        await emit(engine, *(update_event(program.id, m, k) for m in rotated))
    await emit(engine, update_event(program.id, None, 99))  # program-wide

    report = await runner.drain()

    rows = await applied_rows(engine, consumer.name)
    assert len(rows) == 6 * 12 + 1
    seen = by_member(rows)
    for member in members:
        assert seen[member] == list(range(12))
    assert seen[None] == [99]
    assert report.failed == 0
    # A second drain finds nothing new.
    again = await runner.drain()
    assert again.handled == 0
    assert await applied_count(engine, consumer.name) == 6 * 12 + 1


async def test_published_at_once_every_consumer_had_the_event(
    engine: AsyncEngine, program: ProgramContext
) -> None:
    first, second = recorder(program.id), recorder(program.id)
    runner_one = worker(engine, first, second)
    await runner_one.prepare()
    member = uuid4()
    event = update_event(program.id, member, 1)
    await emit(engine, event)
    await runner_one.drain()
    async with reading(engine) as conn:
        published = await conn.scalar(
            select(outbox_t.c.published_at).where(outbox_t.c.event_id == event.event_id)
        )
    assert published is not None


async def test_a_failing_event_is_retried_with_back_off_and_holds_its_member_back(
    engine: AsyncEngine, program: ProgramContext
) -> None:
    slow, other = uuid4(), uuid4()

    def flaky(event: DomainEvent) -> bool:
        # The slow member's event 1 fails at T0 and T0 + 10 s, then succeeds.
        return (
            event.member_id == slow
            and getattr(event, "values", {}).get("n") == 1
            and clock.now() < T0 + timedelta(seconds=30)
        )

    consumer = recorder(program.id, fail=flaky)
    runner = worker(engine, consumer)
    with clock.frozen(T0):
        await runner.prepare()
        for n in range(4):
            await emit(
                engine, update_event(program.id, slow, n), update_event(program.id, other, n)
            )
        first = await runner.drain()
        assert first.failed == 1
        rows = by_member(await applied_rows(engine, consumer.name))
        # The other member went on; the slow one stopped at its failing event.
        assert rows[other] == [0, 1, 2, 3]
        assert rows[slow] == [0]
        async with reading(engine) as conn:
            status = await worker_service.status(conn, [consumer.name])
        assert status.consumers[0].retrying == 1 and status.consumers[0].waiting == 2

        # Not due before the back-off (10 s after the first failure).
        with clock.frozen(T0 + timedelta(seconds=9)):
            assert (await runner.drain()).failed == 0
        with clock.frozen(T0 + timedelta(seconds=10)):
            assert (await runner.drain()).failed == 1  # second failure; next try 20 s later
        with clock.frozen(T0 + timedelta(seconds=29)):
            assert (await runner.drain()).handled == 0
        with clock.frozen(T0 + timedelta(seconds=30)):
            third = await runner.drain()
        assert third.failed == 0 and third.handled == 3
    rows = by_member(await applied_rows(engine, consumer.name))
    assert rows[slow] == [0, 1, 2, 3]
    async with reading(engine) as conn:
        status = await worker_service.status(conn, [consumer.name])
    assert (status.consumers[0].retrying, status.consumers[0].waiting) == (0, 0)


async def test_parked_after_the_last_attempt_then_replayed(
    engine: AsyncEngine, program: ProgramContext
) -> None:
    broken = {"on": True}
    consumer = recorder(
        program.id, fail=lambda e: broken["on"] and getattr(e, "values", {}).get("n") == 0
    )
    runner = worker(engine, consumer, attempts=2)
    member = uuid4()
    bad = update_event(program.id, member, 0)
    with clock.frozen(T0):
        await runner.prepare()
        await emit(engine, bad, update_event(program.id, member, 1))
        await runner.drain()
    with clock.frozen(T0 + timedelta(seconds=10)):
        report = await runner.drain()
    assert report.parked == 1
    # Parked: the member's later event went on.
    assert by_member(await applied_rows(engine, consumer.name))[member] == [1]
    async with reading(engine) as conn:
        parked = await worker_service.parked(conn, program_id=program.id)
    assert [(p.event_id, p.consumer, p.attempts) for p in parked] == [
        (bad.event_id, consumer.name, 2)
    ]
    assert parked[0].last_error and "refused 0" in parked[0].last_error

    broken["on"] = False
    with clock.frozen(T0 + timedelta(hours=1)):
        async with transaction(engine) as conn:
            assert await worker_service.replay(conn, clock.now(), event_id=bad.event_id) == 1
        assert (await runner.drain()).handled == 1
    assert sorted(by_member(await applied_rows(engine, consumer.name))[member]) == [0, 1]
    async with reading(engine) as conn:
        assert await worker_service.parked(conn, program_id=program.id) == []


async def test_events_of_other_types_only_move_the_checkpoint(
    engine: AsyncEngine, program: ProgramContext
) -> None:
    consumer = recorder(program.id)
    runner = worker(engine, consumer)
    await runner.prepare()
    member = uuid4()
    await emit(
        engine,
        MemberBlocked(program_id=program.id, member_id=member, occurred_at=clock.now(), reason="x"),
        update_event(program.id, member, 5),
    )
    report = await runner.drain()
    assert report.handled == 1
    assert await applied_rows(engine, consumer.name) == [(member, 5)]


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_random_failures_never_reorder_or_repeat_a_members_events(
    engine: AsyncEngine, program: ProgramContext, seed: int
) -> None:
    """Property: whatever events fail, how often (below the parking limit) and how the
    members interleave, each member's events are applied once each, in order."""
    import random

    rng = random.Random(seed)
    members = [uuid4() for _ in range(rng.randint(2, 6))]
    plan = [(rng.choice(members), n) for n in range(rng.randint(10, 40))]
    failures = {n: rng.choice([0, 0, 0, 1, 2]) for _, n in plan}

    def flaky(event: DomainEvent) -> bool:
        n = getattr(event, "values", {}).get("n")
        if failures.get(n, 0) > 0:
            failures[n] -= 1
            return True
        return False

    consumer = recorder(program.id, fail=flaky)
    runner = worker(engine, consumer, attempts=10)
    with clock.frozen(T0):
        await runner.prepare()
        for start in range(0, len(plan), 5):
            await emit(
                engine, *(update_event(program.id, m, n) for m, n in plan[start : start + 5])
            )
    for minute in range(200):
        with clock.frozen(T0 + timedelta(minutes=minute)):
            await runner.drain()
        if await applied_count(engine, consumer.name) == len(plan):
            break
    seen = by_member(await applied_rows(engine, consumer.name))
    for member in members:
        assert seen.get(member, []) == [n for m, n in plan if m == member]
