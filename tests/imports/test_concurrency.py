"""The import beside other writers, on PostgreSQL with real concurrent transactions.

A batch that collides with another writer's commit runs again and answers from what that
writer left; a batch that fails stops the import, and the batch in flight beside it is
cancelled, leaving nothing behind, so the import can simply be run again.
"""

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from sqlalchemy import func, insert, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from kopilka.db import reading
from kopilka.imports.service import import_service
from kopilka.kit.ids import new_id
from kopilka.models import MemberBalance, Purchase
from kopilka.models.base import table
from tests.fixtures.factories import member_body, purchase_body, unique
from tests.imports.test_service import rows
from tests.ledger.test_concurrency import _api
from tests.purchases.test_endpoints import assert_ledger_sound

pytestmark = pytest.mark.postgres

purchases_t = table(Purchase)
balances_t = table(MemberBalance)


async def _waiting_on_a_lock(engine: AsyncEngine, task: "asyncio.Task[Any]") -> None:
    """Return once some other session of this database waits for a lock (or ``task`` has
    ended without ever waiting: the caller's assertions then say what went wrong)."""
    while not task.done():
        async with reading(engine) as conn:
            waiting = await conn.scalar(
                text(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                    "AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
                )
            )
        if waiting:
            return
        await asyncio.sleep(0.01)


@asynccontextmanager
async def _open_transaction(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    async with engine.connect() as conn:
        await conn.begin()
        yield conn


async def _purchases(engine: AsyncEngine, external_ids: list[str]) -> set[str]:
    async with reading(engine) as conn:
        found = await conn.execute(
            select(purchases_t.c.external_id).where(purchases_t.c.external_id.in_(external_ids))
        )
        return set(found.scalars())


async def test_a_batch_that_collides_with_another_writer_runs_again(
    pg_engine: AsyncEngine,
) -> None:
    """Another till records a purchase under the id the import is about to use, for another
    member, and commits while the import's batch waits on that id: the batch fails on the
    unique key, runs again, and reports that row as a conflict; the rest is imported."""
    api, program, client = await _api(pg_engine)
    async with client:
        other = member_body()
        assert (await api.post("/v1/members", other)).status_code == 201
        template = purchase_body(other["external_id"], 5_000)
        assert (await api.post("/v1/purchases", template)).status_code == 201
    customer, taken = unique("c"), unique("p")
    bodies = [
        purchase_body(customer, 1_000, external_id=taken),
        purchase_body(customer, 2_000),
    ]
    async with _open_transaction(pg_engine) as writer:
        # The other writer's purchase, not committed yet: a copy of the template's row
        # under the id the import will use.
        row: dict[str, Any] = dict(
            (
                await writer.execute(
                    select(purchases_t).where(
                        purchases_t.c.program_id == program.id,
                        purchases_t.c.external_id == template["external_id"],
                    )
                )
            )
            .one()
            ._mapping
        )
        await writer.execute(
            insert(purchases_t).values({**row, "id": new_id(), "external_id": taken})
        )
        importing = asyncio.create_task(
            import_service.import_purchases(pg_engine, program, rows(bodies), batch_size=2)
        )
        await _waiting_on_a_lock(pg_engine, importing)
        assert not importing.done()
        await writer.commit()
    report = await importing
    assert report.retried == 1
    assert (report.imported, report.already_there) == (1, 0)
    assert [e.line_no for e in report.failed] == [2]
    assert taken in report.failed[0].message
    assert report.earned == {"points": 20}
    async with reading(pg_engine) as conn:
        owners = await conn.execute(
            select(purchases_t.c.external_id, func.count(), func.sum(purchases_t.c.total))
            .where(purchases_t.c.program_id == program.id)
            .group_by(purchases_t.c.external_id)
        )
        by_id = {external_id: (n, int(total)) for external_id, n, total in owners}
    # The id stays the other writer's; the import's second purchase is there once.
    assert by_id[taken] == (1, 5_000)
    assert by_id[bodies[1]["external_id"]] == (1, 2_000)
    await assert_ledger_sound(pg_engine, program)


async def test_a_failed_batch_cancels_the_one_in_flight_and_the_import_can_run_again(
    pg_engine: AsyncEngine,
) -> None:
    """The first batch waits on its member's lock, held here; the second fails in the
    database (a faulty row, refused by a trigger). The import stops with that error, the
    waiting batch is cancelled, not left to commit later; run again, it imports all."""
    api, program, client = await _api(pg_engine)
    async with client:
        waiting = member_body()
        assert (await api.post("/v1/members", waiting)).status_code == 201
        assert (
            await api.post("/v1/purchases", purchase_body(waiting["external_id"], 1_000))
        ).status_code == 201
    member_id = await _api_member_id(pg_engine, program.id, waiting["external_id"])
    faulty = unique("faulty")
    bodies = [
        purchase_body(waiting["external_id"], 3_000),
        purchase_body(unique("c"), 4_000, external_id=faulty),
    ]
    trigger = f"refuse_{faulty.replace('-', '_')}"
    async with pg_engine.begin() as conn:
        await conn.execute(
            text(
                f"CREATE FUNCTION {trigger}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                f"IF NEW.external_id = '{faulty}' THEN RAISE EXCEPTION 'faulty row'; END IF; "
                "RETURN NEW; END $$"
            )
        )
        await conn.execute(
            text(
                f"CREATE TRIGGER {trigger} BEFORE INSERT ON purchases "
                f"FOR EACH ROW EXECUTE FUNCTION {trigger}()"
            )
        )
    try:
        async with _open_transaction(pg_engine) as holder:
            await holder.execute(
                select(balances_t.c.member_id)
                .where(balances_t.c.member_id == member_id)
                .with_for_update()
            )
            importing = asyncio.create_task(
                import_service.import_purchases(pg_engine, program, rows(bodies), batch_size=1)
            )
            # Not a time limit on the import: a guard that turns a deadlock (the import
            # waiting for the batch this test holds up) into a failure instead of a hang.
            await asyncio.wait({importing}, timeout=120)
            if not importing.done():
                await holder.rollback()
                importing.cancel()
                pytest.fail("the import waited for the batch in flight instead of cancelling it")
            with pytest.raises(DBAPIError, match="faulty row"):
                await importing
            await holder.rollback()
        # Released now: a batch that had been left running would commit here.
        async with pg_engine.begin() as conn:
            await conn.execute(
                select(balances_t.c.member_id)
                .where(balances_t.c.member_id == member_id)
                .with_for_update()
            )
        assert await _purchases(pg_engine, [b["external_id"] for b in bodies]) == set()
    finally:
        async with pg_engine.begin() as conn:
            await conn.execute(text(f"DROP TRIGGER IF EXISTS {trigger} ON purchases"))
            await conn.execute(text(f"DROP FUNCTION IF EXISTS {trigger}()"))
    again = await import_service.import_purchases(pg_engine, program, rows(bodies), batch_size=1)
    assert (again.imported, again.already_there, again.failed) == (2, 0, [])
    assert again.earned == {"points": 30 + 40}
    await assert_ledger_sound(pg_engine, program)


async def _api_member_id(engine: AsyncEngine, program_id: Any, external_id: str) -> Any:
    async with reading(engine) as conn:
        return await conn.scalar(
            text(
                "SELECT member_id FROM member_identifiers WHERE program_id = :p "
                "AND kind = 'external_id' AND value = :v"
            ),
            {"p": program_id, "v": external_id},
        )
