"""Bulk updates: the last row of a key wins (SQLite and PostgreSQL); on PostgreSQL a value
too long for its column is refused rather than cut."""

from datetime import UTC, datetime

import pytest
from sqlalchemy import select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from kopilka.db import reading, transaction
from kopilka.kit.bulk import WriteBatch
from kopilka.kit.ids import new_id
from kopilka.models import Program
from kopilka.models.base import table

programs = table(Program)


async def new_program(engine: AsyncEngine) -> dict[str, object]:
    now = datetime.now(UTC)
    row = {
        "id": new_id(),
        "slug": f"b-{new_id().hex[:12]}",
        "name": "x",
        "settings": {},
        "created_at": now,
        "updated_at": now,
    }
    async with transaction(engine) as conn:
        await conn.execute(programs.insert(), row)
    return row


async def name_of(engine: AsyncEngine, program_id: object) -> str:
    async with reading(engine) as conn:
        query = select(programs.c.name).where(programs.c.id == program_id)
        return str((await conn.execute(query)).scalar_one())


@pytest.mark.parametrize("rows", [20, 3])  # a large batch and a one-statement one
async def test_the_last_row_of_a_key_wins(engine: AsyncEngine, rows: int) -> None:
    program = await new_program(engine)
    batch = WriteBatch()
    batch.update(programs, ("id",), [{"id": program["id"], "name": f"n{i}"} for i in range(rows)])
    async with transaction(engine) as conn:
        await batch.write(conn)
    assert await name_of(engine, program["id"]) == f"n{rows - 1}"


@pytest.mark.postgres
async def test_a_value_too_long_for_its_column_is_refused(pg_engine: AsyncEngine) -> None:
    # PostgreSQL only: SQLite keeps any length in a VARCHAR column.
    engine = pg_engine
    program = await new_program(engine)
    batch = WriteBatch()
    too_long = "x" * 1_000  # programs.name is VARCHAR(200)
    batch.update(programs, ("id",), [{"id": program["id"], "name": too_long}] * 70)
    with pytest.raises(DBAPIError):
        async with transaction(engine) as conn:
            await batch.write(conn)
    assert await name_of(engine, program["id"]) == "x"
