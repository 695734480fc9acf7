"""Migration 0002 gives every existing program its settings as published version 1."""

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from kopilka.db import make_engine, reading, transaction
from kopilka.kit.ids import new_id
from kopilka.migrations.runner import upgrade
from kopilka.models import Program, ProgramVersion
from kopilka.models.base import table
from tests.conftest import BACKENDS, BASE_SETTINGS, _create_pg_database, _drop_pg_database

BEFORE_VERSIONS = "0001_core"
CREATED = datetime(2026, 1, 10, 9, 0, tzinfo=UTC)
CHANGED = datetime(2026, 2, 1, 9, 0, tzinfo=UTC)
programs_t = table(Program)
versions_t = table(ProgramVersion)

# The programs table as revision 0001 left it.
programs_0001 = sa.table(
    "programs",
    sa.column("id", sa.Uuid()),
    sa.column("slug", sa.String()),
    sa.column("name", sa.String()),
    sa.column("settings", sa.JSON()),
    sa.column("created_at", sa.DateTime(timezone=True)),
    sa.column("updated_at", sa.DateTime(timezone=True)),
)


@pytest.fixture(params=BACKENDS)
async def empty_database(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'before.db'}"
        return
    name, url = await _create_pg_database()
    yield url
    await _drop_pg_database(name)


async def insert_old_program(engine: AsyncEngine, slug: str) -> None:
    async with transaction(engine) as conn:
        await conn.execute(
            programs_0001.insert().values(
                id=new_id(),
                slug=slug,
                name=slug.title(),
                settings=BASE_SETTINGS,
                created_at=CREATED,
                updated_at=CHANGED,
            )
        )


async def test_existing_programs_become_version_1(empty_database: str) -> None:
    upgrade(empty_database, BEFORE_VERSIONS)
    engine = make_engine(empty_database)
    try:
        for slug in ("coffee", "books"):
            await insert_old_program(engine, slug)
        upgrade(empty_database)
        query = (
            sa.select(
                programs_t.c.slug,
                programs_t.c.version.label("in_force"),
                versions_t.c.version,
                versions_t.c.status,
                versions_t.c.document,
                versions_t.c.published_at,
            )
            .join(versions_t, versions_t.c.program_id == programs_t.c.id)
            .order_by(programs_t.c.slug)
        )
        async with reading(engine) as conn:
            rows = (await conn.execute(query)).all()
    finally:
        await engine.dispose()
    assert [(r.slug, r.in_force, r.version, r.status) for r in rows] == [
        ("books", 1, 1, "published"),
        ("coffee", 1, 1, "published"),
    ]
    for row in rows:
        assert row.document == BASE_SETTINGS
        # The settings have been in force since the program last changed.
        assert row.published_at == CHANGED
