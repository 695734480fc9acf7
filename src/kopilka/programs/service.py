"""Programs: create and read them, version their settings document; the compiled context
the purchase path uses. Never commits.

A program's document has numbered published versions (1, 2, 3 …) that never change and at
most one draft being edited. Publishing the draft, or rolling back to an earlier version,
adds a version and puts it in force: ``programs.settings`` and ``programs.version`` are a
copy of the version in force, the one row the purchase path reads.
"""

import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.audit.service import audit_service
from kopilka.errors import Conflict, InvalidInput, NotFound
from kopilka.kit.canonical import fingerprint
from kopilka.kit.clock import clock
from kopilka.kit.ids import new_id
from kopilka.models.program_version import NOTE_LENGTH
from kopilka.outbox import events
from kopilka.outbox.unit import unit_of_work
from kopilka.programs.domain import changes_between, parse_document, summarise_changes
from kopilka.programs.repository import (
    DRAFT,
    PUBLISHED,
    ProgramRepository,
    program_repository,
)
from kopilka.programs.schemas import ProgramSettings
from kopilka.programs.version_schemas import (
    Draft,
    ProgramInForce,
    Version,
    VersionSummary,
)
from kopilka.rules.domain import CompiledProgram
from kopilka.rules.registry import compile_program

# How many earlier versions a process keeps compiled (``in_force_at``).
VERSIONS_KEPT = 64


@dataclass(frozen=True)
class ProgramContext:
    """A program with its settings validated and its rules compiled, ready for evaluation."""

    id: UUID
    slug: str
    name: str
    version: int  # the number of the published version these settings are
    settings: ProgramSettings
    compiled: CompiledProgram


class ProgramService:
    def __init__(
        self, repository: ProgramRepository = program_repository, cache_seconds: float = 30.0
    ) -> None:
        # Compiling rules once per program and process keeps evaluation off the hot path;
        # a publication reaches this process at once and other processes within
        # ``cache_seconds``.
        self.repository = repository
        self.cache_seconds = cache_seconds
        self._cache: dict[UUID, tuple[float, ProgramContext]] = {}
        # program → (when, version) of the last version this process published.
        self._published_here: dict[UUID, tuple[float, int]] = {}
        # Earlier published versions, compiled (see ``in_force_at``).
        self._versions: dict[tuple[UUID, int], ProgramContext] = {}

    # --- programs -----------------------------------------------------------------------------

    async def create(
        self, conn: AsyncConnection, *, slug: str, name: str, settings: ProgramSettings
    ) -> ProgramContext:
        """A new program whose settings are its published version 1."""
        if await self.repository.slug_taken(conn, slug):
            raise Conflict(f"a program with slug {slug!r} already exists", field="slug")
        now = clock.now()
        program_id = new_id()
        document = settings.model_dump(mode="json")
        await self.repository.insert(
            conn,
            {
                "id": program_id,
                "slug": slug,
                "name": name,
                "settings": document,
                "version": 1,
                "created_at": now,
                "updated_at": now,
            },
        )
        await self.repository.insert_version(
            conn, _published_row(program_id, 1, document, note=None, now=now)
        )
        await _announce(conn, program_id, 1, None, None, settings, now)
        return self._remember(
            ProgramContext(
                id=program_id,
                slug=slug,
                name=name,
                version=1,
                settings=settings,
                compiled=compile_program(settings),
            )
        )

    async def ids(self, conn: AsyncConnection) -> list[UUID]:
        """Every program's id (scheduled jobs run for each)."""
        return await self.repository.ids(conn)

    async def get(self, conn: AsyncConnection, program_id: UUID) -> ProgramContext:
        cached = self._cache.get(program_id)
        if cached is not None and time.monotonic() - cached[0] < self.cache_seconds:
            return cached[1]
        return self._remember(self._context(await self._row(conn, program_id)))

    async def get_by_slug(self, conn: AsyncConnection, slug: str | None) -> ProgramContext:
        """The program with this slug; without a slug, the only program there is."""
        rows = await self.repository.by_slug(conn, slug)
        if not rows:
            raise NotFound(
                f"no program {slug!r}" if slug else "no program yet: create one", field="program"
            )
        if len(rows) > 1:
            raise Conflict("several programs exist: name one with --program", field="program")
        return self._remember(self._context(rows[0]))

    async def in_force(self, conn: AsyncConnection, program_id: UUID) -> ProgramInForce:
        """The program as stored now (not as cached), with the document in force."""
        row = await self._row(conn, program_id)
        return ProgramInForce(
            id=row.id, slug=row.slug, name=row.name, version=row.version, document=row.settings
        )

    # --- the draft ----------------------------------------------------------------------------

    async def draft(self, conn: AsyncConnection, program_id: UUID) -> Draft:
        """The stored draft or, without one, a copy of the version in force (not stored)."""
        program = await self._row(conn, program_id)
        return _draft_out(program, await self.repository.draft(conn, program_id))

    async def put_draft(
        self, conn: AsyncConnection, program_id: UUID, document: Mapping[str, Any], now: datetime
    ) -> Draft:
        """Replace the draft with ``document`` once it validates; an invalid document is an
        ``InvalidInput`` naming the field, and the stored draft stays as it was."""
        normalised = parse_document(document).model_dump(mode="json")
        program = await self._row(conn, program_id, lock=True)
        stored = await self.repository.draft(conn, program_id)
        if stored is None:
            await self.repository.insert_version(conn, _draft_row(program_id, normalised, now))
        else:
            await self.repository.replace_draft_document(conn, stored.id, normalised)
        return _draft_out(program, await self.repository.draft(conn, program_id))

    # --- publishing ---------------------------------------------------------------------------

    async def publish(
        self,
        conn: AsyncConnection,
        program_id: UUID,
        now: datetime,
        note: str | None = None,
        *,
        notice: str | None = None,
        seen_in_force: int | None = None,
        seen_draft: str | None = None,
    ) -> Version:
        """Publish the stored draft as the next version and put it in force; the draft is
        consumed. Without a stored draft there is nothing to publish: a ``Conflict``.
        ``notice``: what the marketer tells members of the change (carried by the event).

        ``seen_in_force`` and ``seen_draft`` (the draft's ``draft_fingerprint``): what the
        caller reviewed. Checked under the program's lock, so that what goes in force is
        what was reviewed, once: a ``Conflict`` (``reason``: ``stale_version`` or
        ``stale_draft``) when another version is in force by now or the draft changed."""
        program = await self._row(conn, program_id, lock=True)
        _ensure_in_force(program.version, seen_in_force)
        stored = await self.repository.draft(conn, program_id)
        if stored is None:
            raise Conflict("there is no draft to publish: save one first", field="draft")
        if seen_draft is not None and draft_fingerprint(stored.document) != seen_draft:
            raise Conflict(
                "the draft has changed since it was reviewed: review it again",
                field="draft",
                reason="stale_draft",
            )
        # Validated again: the schema may have changed since the draft was saved.
        settings = parse_document(stored.document)
        await self.repository.delete_draft(conn, stored.id)
        version = await self._publish(conn, program_id, settings, note, now, notice=notice)
        await self._audit_publication(
            conn, program_id, "program.published", program.version, version, now
        )
        return version

    async def rollback(
        self,
        conn: AsyncConnection,
        program_id: UUID,
        version: int,
        now: datetime,
        note: str | None = None,
        *,
        seen_in_force: int | None = None,
    ) -> Version:
        """Publish the document of an earlier ``version`` again, as a new version: history
        keeps growing and is never rewritten. The draft, if any, is left alone.
        ``seen_in_force``: the version in force when the caller asked (as for ``publish``);
        another one in force by now is a ``Conflict`` and nothing is done."""
        program = await self._row(conn, program_id, lock=True)
        _ensure_in_force(program.version, seen_in_force)
        if version == program.version:
            raise Conflict(f"version {version} is already in force", field="version")
        earlier = await self._published(conn, program_id, version)
        settings = parse_document(earlier.document)
        published = await self._publish(
            conn, program_id, settings, note or f"rollback to v{version}", now
        )
        await self._audit_publication(
            conn, program_id, "program.rolled_back", program.version, published, now
        )
        return published

    async def _audit_publication(
        self,
        conn: AsyncConnection,
        program_id: UUID,
        action: str,
        before: int,
        version: Version,
        now: datetime,
    ) -> None:
        await audit_service.record(
            conn,
            program_id,
            action,
            subject_type="program",
            subject_id=program_id,
            now=now,
            before={"version": before},
            after={"version": version.version, "note": version.note},
        )

    async def _publish(
        self,
        conn: AsyncConnection,
        program_id: UUID,
        settings: ProgramSettings,
        note: str | None,
        now: datetime,
        *,
        notice: str | None = None,
    ) -> Version:
        """Add ``settings`` as the next version and put it in force. The caller holds the
        program's lock, so two publications never compete for a number."""
        _check_note(note)
        compile_program(settings)  # a document that does not compile is never published
        current = await self._row(conn, program_id)
        number = await self.repository.latest_number(conn, program_id) + 1
        document = settings.model_dump(mode="json")
        row = _published_row(program_id, number, document, note=note, now=now)
        await self.repository.insert_version(conn, row)
        await self.repository.put_in_force(
            conn, program_id, version=number, document=document, now=now
        )
        self._forget(program_id, number)
        await _announce(
            conn, program_id, number, current.version, current.settings, settings, now, notice
        )
        return Version.model_validate(row)

    # --- history ------------------------------------------------------------------------------

    async def versions(
        self, conn: AsyncConnection, program_id: UUID, *, limit: int, before: int | None = None
    ) -> list[VersionSummary]:
        """Published versions, newest first; ``before`` continues after a page."""
        rows = await self.repository.page(conn, program_id, limit=limit, before=before)
        return [VersionSummary.model_validate(row._asdict()) for row in rows]

    async def version(self, conn: AsyncConnection, program_id: UUID, version: int) -> Version:
        row = await self._published(conn, program_id, version)
        return Version.model_validate(row._asdict())

    async def in_force_at(
        self, conn: AsyncConnection, program: ProgramContext, moment: datetime
    ) -> ProgramContext:
        """The program as it was at ``moment``: the published version then in force,
        compiled (``program`` itself when that is the version in force now). Published
        versions never change, so each is compiled once per process."""
        row = await self.repository.published_in_force_at(conn, program.id, moment)
        if row is None or row.version == program.version:
            return program
        key = (program.id, row.version)
        found = self._versions.get(key)
        if found is None:
            if len(self._versions) >= VERSIONS_KEPT:
                self._versions.clear()
            settings = ProgramSettings.model_validate(row.document)
            found = self._versions[key] = ProgramContext(
                program.id,
                program.slug,
                program.name,
                row.version,
                settings,
                compile_program(settings),
            )
        return found

    async def _published(self, conn: AsyncConnection, program_id: UUID, version: int) -> Any:
        row = await self.repository.published(conn, program_id, version)
        if row is None:
            raise NotFound(f"program has no version {version}", field="version")
        return row

    # --- rows and the process cache ---------------------------------------------------------

    async def _row(self, conn: AsyncConnection, program_id: UUID, *, lock: bool = False) -> Any:
        row = await self.repository.get(conn, program_id, lock=lock)
        if row is None:
            raise NotFound(f"program {program_id} not found")
        return row

    def _context(self, row: Any) -> ProgramContext:
        settings = ProgramSettings.model_validate(row.settings)
        return ProgramContext(
            id=row.id,
            slug=row.slug,
            name=row.name,
            version=row.version,
            settings=settings,
            compiled=compile_program(settings),
        )

    def _remember(self, context: ProgramContext) -> ProgramContext:
        if not self._superseded(context):
            self._cache[context.id] = (time.monotonic(), context)
        return context

    def _forget(self, program_id: UUID, published: int) -> None:
        """Drop the cached context of a program that just published ``published``.

        The publication commits later, with the caller's transaction, so a request that
        reads the program in between still sees the old version; ``_superseded`` keeps it
        from caching that for ``cache_seconds``. Should the publication roll back instead,
        the program is only read uncached in this process until then.
        """
        self._cache.pop(program_id, None)
        self._published_here[program_id] = (time.monotonic(), published)

    def _superseded(self, context: ProgramContext) -> bool:
        """True for a context older than a version this process published recently."""
        published = self._published_here.get(context.id)
        if published is None or time.monotonic() - published[0] >= self.cache_seconds:
            return False
        return context.version < published[1]


async def _announce(
    conn: AsyncConnection,
    program_id: UUID,
    number: int,
    previous: int | None,
    previous_document: dict[str, Any] | None,
    settings: ProgramSettings,
    now: datetime,
    notice: str | None = None,
) -> None:
    """The ``program.published`` event of a new version, saying what changed for members."""
    try:
        before = parse_document(previous_document) if previous_document is not None else None
    except InvalidInput:
        before = None  # a document the current schema no longer reads: compared as nothing
    changes = changes_between(before, settings)
    async with unit_of_work(conn, now) as uow:
        uow.emit(
            events.ProgramPublished(
                program_id=program_id,
                member_id=None,
                occurred_at=now,
                version_number=number,
                previous=previous,
                changes=changes,
                summary=summarise_changes(changes),
                member_notice=notice or "",
            )
        )


def draft_fingerprint(document: Mapping[str, Any]) -> str:
    """A stable hash of a draft's document (whatever its keys' order): a form that reviewed
    the draft carries it, and publishing compares it with the draft stored by then."""
    return fingerprint(document)


def _ensure_in_force(in_force: int, seen: int | None) -> None:
    if seen is not None and in_force != seen:
        raise Conflict(
            f"already changed: version {in_force} is in force now",
            field="version",
            reason="stale_version",
            in_force=in_force,
        )


def _check_note(note: str | None) -> None:
    if note is not None and len(note) > NOTE_LENGTH:
        raise InvalidInput(f"a note has at most {NOTE_LENGTH} characters", field="note")


def _published_row(
    program_id: UUID, number: int, document: dict[str, Any], *, note: str | None, now: datetime
) -> dict[str, Any]:
    return {
        "id": new_id(),
        "program_id": program_id,
        "version": number,
        "status": PUBLISHED,
        "document": document,
        "note": note,
        "created_at": now,
        "published_at": now,
    }


def _draft_row(program_id: UUID, document: dict[str, Any], now: datetime) -> dict[str, Any]:
    return {
        "id": new_id(),
        "program_id": program_id,
        "version": None,
        "status": DRAFT,
        "document": document,
        "note": None,
        "created_at": now,
        "published_at": None,
    }


def _draft_out(program: Any, stored: Any) -> Draft:
    if stored is None:
        return Draft(
            stored=False,
            version_in_force=program.version,
            created_at=None,
            document=program.settings,
        )
    return Draft(
        stored=True,
        version_in_force=program.version,
        created_at=stored.created_at,
        document=stored.document,
    )


program_service = ProgramService()
