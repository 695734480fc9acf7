"""Programs: create, read, change settings; the compiled context the purchase path uses."""

import time
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.errors import Conflict, NotFound
from kopilka.kit.clock import clock
from kopilka.kit.ids import new_id
from kopilka.models import Program
from kopilka.models.base import table
from kopilka.programs.schemas import ProgramSettings
from kopilka.rules.domain import CompiledProgram
from kopilka.rules.registry import compile_program

programs_t = table(Program)


@dataclass(frozen=True)
class ProgramContext:
    """A program with its settings validated and its rules compiled, ready for evaluation."""

    id: UUID
    slug: str
    name: str
    settings: ProgramSettings
    compiled: CompiledProgram


class ProgramService:
    def __init__(self, cache_seconds: float = 30.0) -> None:
        # Compiling rules once per program and process keeps evaluation off the hot path;
        # a settings change reaches other processes within ``cache_seconds``.
        self.cache_seconds = cache_seconds
        self._cache: dict[UUID, tuple[float, ProgramContext]] = {}

    async def create(
        self, conn: AsyncConnection, *, slug: str, name: str, settings: ProgramSettings
    ) -> ProgramContext:
        existing = await conn.execute(select(programs_t.c.id).where(programs_t.c.slug == slug))
        if existing.first() is not None:
            raise Conflict(f"a program with slug {slug!r} already exists", field="slug")
        now = clock.now()
        program_id = new_id()
        await conn.execute(
            programs_t.insert().values(
                id=program_id,
                slug=slug,
                name=name,
                settings=settings.model_dump(mode="json"),
                created_at=now,
                updated_at=now,
            )
        )
        return self._remember(
            ProgramContext(program_id, slug, name, settings, compile_program(settings))
        )

    async def get(self, conn: AsyncConnection, program_id: UUID) -> ProgramContext:
        cached = self._cache.get(program_id)
        if cached is not None and time.monotonic() - cached[0] < self.cache_seconds:
            return cached[1]
        row = (await conn.execute(select(programs_t).where(programs_t.c.id == program_id))).first()
        if row is None:
            raise NotFound(f"program {program_id} not found")
        return self._remember(self._context(row))

    async def get_by_slug(self, conn: AsyncConnection, slug: str | None) -> ProgramContext:
        """The program with this slug; without a slug, the only program there is."""
        query = select(programs_t)
        if slug is not None:
            query = query.where(programs_t.c.slug == slug)
        rows = (await conn.execute(query.limit(2))).all()
        if not rows:
            raise NotFound(
                f"no program {slug!r}" if slug else "no program yet: create one", field="program"
            )
        if len(rows) > 1:
            raise Conflict("several programs exist: name one with --program", field="program")
        return self._remember(self._context(rows[0]))

    def _context(self, row: Any) -> ProgramContext:
        settings = ProgramSettings.model_validate(row.settings)
        return ProgramContext(row.id, row.slug, row.name, settings, compile_program(settings))

    def _remember(self, context: ProgramContext) -> ProgramContext:
        self._cache[context.id] = (time.monotonic(), context)
        return context


program_service = ProgramService()
