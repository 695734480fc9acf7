"""PostgreSQL: a worker killed with SIGKILL mid-delivery loses nothing and applies nothing
twice; two workers at once share the partitions and keep each member's order; events
committed out of id order are not skipped."""

import asyncio
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from uuid import uuid4

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from kopilka.db import make_engine, reading, transaction
from kopilka.kit.clock import clock
from kopilka.outbox.consumers import ConsumerRegistry
from kopilka.outbox.unit import UnitOfWork
from kopilka.programs.service import ProgramContext
from kopilka.worker.runner import Worker
from kopilka.worker.service import worker_service
from tests.conftest import make_program
from tests.worker.support import (
    applied_count,
    applied_rows,
    applied_table,
    by_member,
    emit,
    recorder,
    update_event,
)

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.postgres


@pytest.fixture
async def pg_program(pg_engine: AsyncEngine) -> AsyncIterator[ProgramContext]:
    async with applied_table(pg_engine):
        yield await make_program(pg_engine)


async def _emit_many(
    engine: AsyncEngine, program: ProgramContext, members: int, per: int
) -> list[uuid.UUID]:
    ids = [uuid4() for _ in range(members)]
    for n in range(per):
        await emit(engine, *(update_event(program.id, m, n) for m in ids))
    return ids


def _worker_process(
    pg_url: str, consumer: str, program: ProgramContext, *extra: str
) -> subprocess.Popen[str]:
    env = dict(
        os.environ,
        KOPILKA_DATABASE_URL=pg_url,
        KOPILKA_TEST_CONSUMER=consumer,
        KOPILKA_TEST_PROGRAM=str(program.id),
        KOPILKA_WORKER_BATCH_SIZE="40",
        KOPILKA_WORKER_POLL_SECONDS="0.05",
        PYTHONPATH=f"{ROOT / 'src'}{os.pathsep}{ROOT}",
    )
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "kopilka",
            "worker",
            *extra,
            "--no-jobs",
            "--module",
            "tests.worker.crash_consumer",
            "--consumer",
            consumer,
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


async def test_kill_9_mid_delivery_then_restart_applies_each_event_once(
    pg_url: str, pg_engine: AsyncEngine, pg_program: ProgramContext
) -> None:
    members, per = 20, 30
    total = members * per
    ids = await _emit_many(pg_engine, pg_program, members, per)
    consumer = f"crash-{uuid4().hex[:8]}"
    process = _worker_process(pg_url, consumer, pg_program)
    try:
        for _ in range(6000):  # until some batches have committed, however slow the machine
            await asyncio.sleep(0.02)
            if await applied_count(pg_engine, consumer) >= 80 or process.poll() is not None:
                break
        process.send_signal(signal.SIGKILL)
        process.wait()
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == -signal.SIGKILL, process.stderr.read() if process.stderr else ""
    before = await applied_count(pg_engine, consumer)
    assert 0 < before < total, "the worker was to be killed mid-delivery"

    again = _worker_process(pg_url, consumer, pg_program, "--once")
    out, err = again.communicate()
    assert again.returncode == 0, out + err
    rows = await applied_rows(pg_engine, consumer)
    assert len(rows) == total
    seen = by_member(rows)
    for member in ids:
        assert seen[member] == list(range(per))
    async with reading(pg_engine) as conn:
        status = await worker_service.status(conn, [consumer])
    assert status.consumers[0].parked == 0 and status.consumers[0].retrying == 0


async def test_two_workers_share_delivery_and_keep_member_order(
    pg_url: str, pg_engine: AsyncEngine, pg_program: ProgramContext
) -> None:
    registry = ConsumerRegistry()
    consumer = recorder(pg_program.id, registry=registry)
    engines = [make_engine(pg_url, pool_size=5) for _ in range(2)]
    workers = [Worker(e, [consumer], batch_size=25, poll_seconds=0.01) for e in engines]
    for w in workers:
        await w.prepare()
    members, per = 30, 12
    stop = asyncio.Event()
    running = [asyncio.create_task(w.run(stop)) for w in workers]
    try:
        ids = await _emit_many(pg_engine, pg_program, members, per)
        for _ in range(6000):
            if await applied_count(pg_engine, consumer.name) >= members * per:
                break
            await asyncio.sleep(0.02)
    finally:
        stop.set()
        await asyncio.gather(*running)
        for e in engines:
            await e.dispose()
    rows = await applied_rows(pg_engine, consumer.name)
    assert len(rows) == members * per  # the unique constraint refused any second application
    seen = by_member(rows)
    for member in ids:
        assert seen[member] == list(range(per))


async def test_a_row_committed_after_a_later_one_is_not_skipped(
    pg_engine: AsyncEngine, pg_program: ProgramContext
) -> None:
    """The outbox gap: ids are taken at insert, rows become visible at commit. A row with a
    lower id that commits after a higher one was delivered still gets delivered."""
    consumer = recorder(pg_program.id)
    worker = Worker(pg_engine, [consumer])
    await worker.prepare()
    early, late = uuid4(), uuid4()
    async with transaction(pg_engine) as slow:
        unit = UnitOfWork(clock.now())
        unit.emit(update_event(pg_program.id, early, 1))
        await unit.flush(slow)  # takes the lower id, not committed yet
        await emit(pg_engine, update_event(pg_program.id, late, 2))
        await worker.drain()
        assert await applied_rows(pg_engine, consumer.name) == [(late, 2)]
    await worker.drain()
    assert sorted(n for _, n in await applied_rows(pg_engine, consumer.name)) == [1, 2]
