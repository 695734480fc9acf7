"""Statements sent straight to the PostgreSQL driver stay inside the caller's transaction."""

import asyncio
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from kopilka.kit.bulk import insert_rows
from kopilka.kit.ids import new_id
from kopilka.kit.sql import pg_fetch
from kopilka.models import Program
from kopilka.models.base import table

pytestmark = pytest.mark.postgres


async def test_a_first_driver_statement_starts_the_transaction(pg_engine: AsyncEngine) -> None:
    async with pg_engine.begin() as conn:
        first = (await pg_fetch(conn, "SELECT now()"))[0][0]
        await asyncio.sleep(0.05)
        second = (await pg_fetch(conn, "SELECT now()"))[0][0]
    assert first == second  # now() is the start of the transaction, so both ran inside one


async def test_a_driver_write_rolls_back_with_the_transaction(pg_engine: AsyncEngine) -> None:
    programs = table(Program)
    slug = f"rollback-{new_id().hex[:8]}"
    now = datetime.now(UTC)
    row = {
        "id": new_id(),
        "slug": slug,
        "name": "x",
        "settings": {},
        "created_at": now,
        "updated_at": now,
    }
    with pytest.raises(RuntimeError):
        async with pg_engine.begin() as conn:
            await insert_rows(conn, programs, [row])
            raise RuntimeError("abandon the transaction")
    async with pg_engine.connect() as conn:
        count = await conn.scalar(
            select(func.count()).select_from(programs).where(programs.c.slug == slug)
        )
    assert count == 0
