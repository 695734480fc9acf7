"""Look-ups stay index look-ups on PostgreSQL connections that planned them on empty tables.

Each pooled connection keeps one generic plan per statement, made with the statistics of
the moment it first ran. A plan made on a fresh database must still find a purchase by its
external id through the whole unique index once the table has grown.
"""

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import asyncpg
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from kopilka.db import make_engine
from kopilka.kit.bulk import insert_rows
from kopilka.kit.ids import new_id
from kopilka.migrations.runner import upgrade
from kopilka.purchases.repository import PurchaseRepository, purchases_t
from tests.conftest import PG_ADMIN_DSN, _create_pg_database, _drop_pg_database, make_program

pytestmark = pytest.mark.postgres
INDEX = "uq_purchases_program_id_external_id"


@pytest.fixture
async def fresh_engine() -> AsyncIterator[tuple[AsyncEngine, str]]:
    """A new, empty database and an engine with a single connection, so the plan made on
    the first look-up is the plan every later look-up uses."""
    name, url = await _create_pg_database()
    upgrade(url)
    engine = make_engine(url, pool_size=1)
    yield engine, name
    await engine.dispose()
    await _drop_pg_database(name)


async def _index_rows_read(database: str) -> int:
    dsn = PG_ADMIN_DSN.rsplit("/", 1)[0] + f"/{database}"
    conn = await asyncpg.connect(dsn)
    try:
        query = "SELECT idx_tup_read FROM pg_stat_user_indexes WHERE indexrelname = $1"
        return int(await conn.fetchval(query, INDEX))
    finally:
        await conn.close()


def _purchase(program_id: object, number: int) -> dict[str, object]:
    now = datetime.now(UTC)
    return {
        "id": new_id(),
        "program_id": program_id,
        "member_id": new_id(),
        "external_id": f"p-{number}",
        "occurred_at": now,
        "store": None,
        "channel": "pos",
        "currency": "RUB",
        "total": 100,
        "returned_amount": 0,
        "earned": {},
        "reversed": {},
        "request_hash": "h",
        "answer": {},
        "created_at": now,
    }


async def test_a_purchase_look_up_planned_on_an_empty_table_reads_one_row(
    fresh_engine: tuple[AsyncEngine, str],
) -> None:
    engine, database = fresh_engine
    program = await make_program(engine)
    events = PurchaseRepository()
    async with engine.begin() as conn:
        assert await events.purchase_answers(conn, program.id, ["p-0"]) == {}
    async with engine.begin() as conn:
        # The member does not matter to the look-up; skip the member foreign key.
        await conn.exec_driver_sql("SET LOCAL session_replication_role = replica")
        await insert_rows(conn, purchases_t, [_purchase(program.id, n) for n in range(2000)])
        await conn.exec_driver_sql("SELECT pg_stat_force_next_flush()")
    before = await _index_rows_read(database)

    async with engine.begin() as conn:
        found = await events.purchase_answers(conn, program.id, ["p-1234"])
        await conn.exec_driver_sql("SELECT pg_stat_force_next_flush()")
    assert list(found) == ["p-1234"]
    assert await _index_rows_read(database) - before <= 2
