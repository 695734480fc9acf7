"""Program versions in the service, on SQLite and PostgreSQL."""

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from kopilka.db import reading, transaction
from kopilka.errors import Conflict, InvalidInput, NotFound
from kopilka.kit.ids import new_id
from kopilka.models import ProgramVersion
from kopilka.models.base import table
from kopilka.programs.service import ProgramContext, draft_fingerprint, program_service
from kopilka.programs.version_schemas import Version
from tests.conftest import BASE_SETTINGS, make_program

versions_t = table(ProgramVersion)
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def document(points: int = 2, per: int = 100) -> dict[str, Any]:
    return {
        **BASE_SETTINGS,
        "earning": [{"id": "base", "type": "per_amount", "points": points, "per": per}],
    }


def base_rule(doc: dict[str, Any]) -> tuple[int, int]:
    rule = doc["earning"][0]
    return rule["points"], rule["per"]


async def put_and_publish(
    engine: AsyncEngine, program: ProgramContext, doc: dict[str, Any], note: str | None = None
) -> Version:
    async with transaction(engine) as conn:
        await program_service.put_draft(conn, program.id, doc, T0)
        return await program_service.publish(conn, program.id, T0 + timedelta(minutes=1), note)


async def version_rows(engine: AsyncEngine, program_id: UUID) -> list[dict[str, Any]]:
    query = (
        select(versions_t)
        .where(versions_t.c.program_id == program_id)
        .order_by(versions_t.c.version.asc().nulls_last())
    )
    async with reading(engine) as conn:
        return [dict(row._mapping) for row in (await conn.execute(query)).all()]


async def test_a_new_program_is_its_published_version_1(engine: AsyncEngine) -> None:
    program = await make_program(engine)
    assert program.version == 1
    async with reading(engine) as conn:
        in_force = await program_service.in_force(conn, program.id)
        listed = await program_service.versions(conn, program.id, limit=10)
        first = await program_service.version(conn, program.id, 1)
    assert in_force.version == 1 and base_rule(in_force.document) == (1, 100)
    assert [(v.version, v.status) for v in listed] == [(1, "published")]
    assert first.document == in_force.document


async def test_draft_round_trip(engine: AsyncEngine) -> None:
    program = await make_program(engine)
    async with reading(engine) as conn:
        untouched = await program_service.draft(conn, program.id)
    # Without a stored draft, the draft is a copy of the version in force.
    assert not untouched.stored and untouched.version_in_force == 1
    assert base_rule(untouched.document) == (1, 100)

    async with transaction(engine) as conn:
        saved = await program_service.put_draft(conn, program.id, document(points=3), T0)
    async with transaction(engine) as conn:
        await program_service.put_draft(conn, program.id, document(points=4), T0)
    async with reading(engine) as conn:
        read_back = await program_service.draft(conn, program.id)
    assert saved.stored and saved.created_at == T0
    assert read_back.stored and base_rule(read_back.document) == (4, 100)
    drafts = [row for row in await version_rows(engine, program.id) if row["status"] == "draft"]
    assert len(drafts) == 1 and drafts[0]["version"] is None
    # Saving a draft publishes nothing.
    async with reading(engine) as conn:
        assert (await program_service.in_force(conn, program.id)).version == 1


async def test_invalid_draft_names_the_field_and_changes_nothing(engine: AsyncEngine) -> None:
    program = await make_program(engine)
    async with transaction(engine) as conn:
        await program_service.put_draft(conn, program.id, document(points=3), T0)
    before = await version_rows(engine, program.id)
    with pytest.raises(InvalidInput) as error:
        async with transaction(engine) as conn:
            await program_service.put_draft(conn, program.id, document(per=0), T0)
    assert error.value.field == "earning.0.per"
    assert "greater than or equal to 1" in error.value.detail
    assert await version_rows(engine, program.id) == before


async def test_publish_puts_the_draft_in_force_at_once(engine: AsyncEngine) -> None:
    program = await make_program(engine)
    async with reading(engine) as conn:
        assert (await program_service.get(conn, program.id)).version == 1  # now cached
    published = await put_and_publish(engine, program, document(points=2), note="double")
    assert (published.version, published.status, published.note) == (2, "published", "double")
    assert published.published_at == T0 + timedelta(minutes=1)
    async with reading(engine) as conn:
        context = await program_service.get(conn, program.id)
        draft = await program_service.draft(conn, program.id)
        in_force = await program_service.in_force(conn, program.id)
    # The cached version 1 was dropped: this process uses version 2 straight away.
    assert context.version == 2 and base_rule(context.settings.model_dump()) == (2, 100)
    assert in_force.version == 2 and base_rule(in_force.document) == (2, 100)
    # Publishing consumed the draft.
    assert not draft.stored and draft.version_in_force == 2
    assert [row["status"] for row in await version_rows(engine, program.id)] == [
        "published",
        "published",
    ]


async def test_publishing_without_a_draft_is_a_conflict(engine: AsyncEngine) -> None:
    program = await make_program(engine)
    with pytest.raises(Conflict):
        async with transaction(engine) as conn:
            await program_service.publish(conn, program.id, T0)
    assert len(await version_rows(engine, program.id)) == 1


async def test_rollback_publishes_an_earlier_document_as_a_new_version(
    engine: AsyncEngine,
) -> None:
    program = await make_program(engine)
    await put_and_publish(engine, program, document(points=2))
    async with transaction(engine) as conn:
        rolled = await program_service.rollback(conn, program.id, 1, T0 + timedelta(hours=1))
    assert (rolled.version, rolled.note) == (3, "rollback to v1")
    async with reading(engine) as conn:
        first = await program_service.version(conn, program.id, 1)
        listed = await program_service.versions(conn, program.id, limit=10)
        context = await program_service.get(conn, program.id)
    assert rolled.document == first.document
    assert [v.version for v in listed] == [3, 2, 1]
    assert context.version == 3 and base_rule(context.settings.model_dump()) == (1, 100)

    with pytest.raises(Conflict):
        async with transaction(engine) as conn:
            await program_service.rollback(conn, program.id, 3, T0)
    with pytest.raises(NotFound):
        async with transaction(engine) as conn:
            await program_service.rollback(conn, program.id, 9, T0)
    async with transaction(engine) as conn:
        noted = await program_service.rollback(conn, program.id, 2, T0, note="back to double")
    assert (noted.version, noted.note) == (4, "back to double")


async def test_publish_and_rollback_act_on_what_the_caller_saw(engine: AsyncEngine) -> None:
    program = await make_program(engine)
    async with transaction(engine) as conn:
        draft = await program_service.put_draft(conn, program.id, document(points=2), T0)
    seen = draft_fingerprint(draft.document)
    # The same document with its keys in another order: the same fingerprint.
    assert draft_fingerprint(dict(reversed(list(draft.document.items())))) == seen
    async with transaction(engine) as conn:
        await program_service.put_draft(conn, program.id, document(points=3), T0)
    with pytest.raises(Conflict) as changed:
        async with transaction(engine) as conn:
            await program_service.publish(conn, program.id, T0, seen_in_force=1, seen_draft=seen)
    assert changed.value.extra["reason"] == "stale_draft"
    with pytest.raises(Conflict) as later:
        async with transaction(engine) as conn:
            await program_service.publish(conn, program.id, T0, seen_in_force=7)
    assert later.value.extra == {"reason": "stale_version", "in_force": 1}
    assert len(await version_rows(engine, program.id)) == 2  # v1 and the draft

    async with transaction(engine) as conn:
        now_seen = draft_fingerprint((await program_service.draft(conn, program.id)).document)
        published = await program_service.publish(
            conn, program.id, T0, seen_in_force=1, seen_draft=now_seen
        )
    assert base_rule(published.document) == (3, 100)
    async with transaction(engine) as conn:
        await program_service.rollback(conn, program.id, 1, T0, seen_in_force=2)
    for _ in range(2):  # the same request again: nothing more
        with pytest.raises(Conflict, match="version 3 is in force now"):
            async with transaction(engine) as conn:
                await program_service.rollback(conn, program.id, 1, T0, seen_in_force=2)
    assert [r["version"] for r in await version_rows(engine, program.id)] == [1, 2, 3]


async def test_published_versions_are_never_changed(engine: AsyncEngine) -> None:
    program = await make_program(engine)
    first = (await version_rows(engine, program.id))[0]
    await put_and_publish(engine, program, document(points=2), note="second")
    second = (await version_rows(engine, program.id))[1]
    await put_and_publish(engine, program, document(points=5), note="third")
    async with transaction(engine) as conn:
        await program_service.rollback(conn, program.id, 1, T0)
        await program_service.put_draft(conn, program.id, document(points=7), T0)
    rows = await version_rows(engine, program.id)
    assert rows[0] == first and rows[1] == second
    assert [row["version"] for row in rows] == [1, 2, 3, 4, None]


async def test_versions_page_newest_first(engine: AsyncEngine) -> None:
    program = await make_program(engine)
    for points in (2, 3, 4):
        await put_and_publish(engine, program, document(points=points))
    async with reading(engine) as conn:
        first_page = await program_service.versions(conn, program.id, limit=2)
        rest = await program_service.versions(conn, program.id, limit=2, before=3)
    assert [v.version for v in first_page] == [4, 3]
    assert [v.version for v in rest] == [2, 1]


async def test_a_read_racing_a_publication_is_not_cached(engine: AsyncEngine) -> None:
    """A request that reads the program while a publication is not yet committed sees the
    old version; it must not keep it in the cache once the new one is in force."""
    program = await make_program(engine)
    async with transaction(engine) as writer:
        await program_service.put_draft(writer, program.id, document(points=2), T0)
        await program_service.publish(writer, program.id, T0)
        async with reading(engine) as reader:
            racing = await program_service.get(reader, program.id)
        assert racing.version == 1
    async with reading(engine) as conn:
        assert (await program_service.get(conn, program.id)).version == 2


async def test_one_draft_per_program_even_when_inserted_directly(engine: AsyncEngine) -> None:
    """The partial unique index backs the service: a second draft row cannot exist."""
    program = await make_program(engine)
    async with transaction(engine) as conn:
        await program_service.put_draft(conn, program.id, document(points=2), T0)
    row = {
        "program_id": program.id,
        "version": None,
        "status": "draft",
        "document": document(),
        "note": None,
        "created_at": T0,
        "published_at": None,
    }
    with pytest.raises(IntegrityError):
        async with transaction(engine) as conn:
            await conn.execute(versions_t.insert().values(id=new_id(), **row))
    async with reading(engine) as conn:
        count = await conn.execute(
            select(func.count()).where(versions_t.c.program_id == program.id)
        )
    assert count.scalar_one() == 2


async def test_a_note_longer_than_the_column_is_refused(engine: AsyncEngine) -> None:
    program = await make_program(engine)
    with pytest.raises(InvalidInput) as error:
        await put_and_publish(engine, program, document(points=2), note="x" * 501)
    assert error.value.field == "note"
    assert len(await version_rows(engine, program.id)) == 1
