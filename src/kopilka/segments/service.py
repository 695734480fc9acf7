"""Segments: definitions saved and versioned, counted and paged live, membership of
dynamic segments kept current (after events, and by full refreshes), static lists, and
the members' segment keys the rules' ``segment`` condition reads. Never commits.

Importing this module provides the rules' segment loader (``kopilka.earning.segment_keys``).
"""

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.crm.service import crm_service
from kopilka.earning import segment_keys
from kopilka.errors import Conflict, InvalidInput, NotFound
from kopilka.kit.ids import new_id
from kopilka.members.domain import guess_identifier_kind
from kopilka.members.schemas import MemberRef
from kopilka.members.service import member_service
from kopilka.outbox.segment_events import SegmentEntered, SegmentLeft
from kopilka.outbox.unit import unit_of_work
from kopilka.programs.service import ProgramContext, program_service
from kopilka.segments.domain import ListMode, SegmentKind, parse_definition
from kopilka.segments.repository import Scope, SegmentRepository, segment_repository
from kopilka.segments.schemas import (
    CountResult,
    ListResult,
    ListUpload,
    MemberSegment,
    MemberSegments,
    MembersPage,
    NotFoundLine,
    PreviewResult,
    RefreshResult,
    SegmentCreate,
    SegmentMemberOut,
    SegmentOut,
    SegmentUpdate,
)

SAMPLE = 10


def scope_of(program: ProgramContext, now: datetime) -> Scope:
    ladder = program.settings.tiers
    return Scope(
        program_id=program.id,
        now=now,
        entry_tier=ladder.levels[0].id if ladder is not None else None,
        points_currency=program.settings.points_currency(),
    )


def _out(row: Any) -> SegmentOut:
    return SegmentOut(
        id=row.id,
        key=row.key,
        name=row.name,
        description=row.description,
        kind=SegmentKind(row.kind),
        definition=row.definition,
        status=row.status,
        version=row.version,
        members=row.members,
        refreshed_at=row.refreshed_at,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


class SegmentService:
    def __init__(self, repository: SegmentRepository = segment_repository) -> None:
        self.repository = repository

    # --- definitions ---------------------------------------------------------------------

    async def _row(self, conn: AsyncConnection, program: ProgramContext, key: str) -> Any:
        row = await self.repository.get(conn, program.id, key)
        if row is None or row.status == "archived":
            raise NotFound(f"segment {key!r} not found", field="key")
        return row

    async def create(
        self, conn: AsyncConnection, program: ProgramContext, body: SegmentCreate, now: datetime
    ) -> SegmentOut:
        if body.kind == SegmentKind.DYNAMIC:
            if body.definition is None:
                raise InvalidInput("a dynamic segment needs a definition", field="definition")
            parse_definition(body.definition)
        elif body.definition is not None:
            raise InvalidInput("a static segment has a list, not a definition", field="definition")
        if await self.repository.get(conn, program.id, body.key) is not None:
            raise Conflict(f"segment {body.key!r} exists", field="key")
        await self.repository.insert(
            conn,
            {
                "id": new_id(),
                "program_id": program.id,
                "key": body.key,
                "name": body.name,
                "description": body.description,
                "kind": body.kind.value,
                "definition": body.definition,
                "status": "active",
                "version": 1,
                "members": 0,
                "refreshed_at": None,
                "created_at": now,
                "updated_at": now,
            },
        )
        if body.kind == SegmentKind.DYNAMIC:
            await self.refresh(conn, program, body.key, now)
        return await self.get(conn, program, body.key)

    async def get(self, conn: AsyncConnection, program: ProgramContext, key: str) -> SegmentOut:
        return _out(await self._row(conn, program, key))

    async def listing(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        *,
        archived: bool = False,
        after: str | None = None,
        limit: int = 50,
    ) -> list[SegmentOut]:
        rows = await self.repository.listing(
            conn, program.id, archived=archived, after=after, limit=limit
        )
        return [_out(r) for r in rows]

    async def update(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        key: str,
        body: SegmentUpdate,
        now: datetime,
    ) -> SegmentOut:
        row = await self._row(conn, program, key)
        values: dict[str, Any] = {}
        if body.name is not None:
            values["name"] = body.name
        if body.description is not None:
            values["description"] = body.description
        changed = body.definition is not None and body.definition != row.definition
        if body.definition is not None:
            if row.kind != SegmentKind.DYNAMIC:
                raise InvalidInput("a static segment has no definition", field="definition")
            parse_definition(body.definition)
            values["definition"] = body.definition
        if changed:
            values["version"] = row.version + 1
        if values:
            await self.repository.update(conn, row.id, updated_at=now, **values)
        if changed:
            await self.refresh(conn, program, key, now)
        return await self.get(conn, program, key)

    async def archive(
        self, conn: AsyncConnection, program: ProgramContext, key: str, now: datetime
    ) -> SegmentOut:
        """Archive the segment: its members leave it (``segment.left``), its key stays
        taken (rules and journeys may name it), it is no longer listed or kept."""
        row = await self._row(conn, program, key)
        leaving = await self.repository.all_members(conn, row.id)
        await self.repository.remove_members(conn, row.id, leaving)
        await self._emit(conn, program, row, [], leaving, "archived", now)
        await self.repository.update(conn, row.id, status="archived", members=0, updated_at=now)
        return _out(await self.repository.get(conn, program.id, key))

    # --- live counts and pages -------------------------------------------------------------

    async def preview(
        self, conn: AsyncConnection, program: ProgramContext, definition: Any, now: datetime
    ) -> PreviewResult:
        """Count and a few members of a definition being edited; nothing is stored."""
        node = parse_definition(definition)
        scope = scope_of(program, now)
        return PreviewResult(
            count=await self.repository.count(conn, scope, node),
            sample=await self.repository.page(conn, scope, node, None, SAMPLE),
        )

    async def matching(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        definition: Any,
        member_ids: Sequence[UUID],
        now: datetime,
    ) -> set[UUID]:
        """Which of these members a definition (not a stored segment) matches now: a
        journey's branch, one query for all of them."""
        node = parse_definition(definition)
        ids = sorted(set(member_ids))
        if not ids:
            return set()
        return set(await self.repository.matching_among(conn, scope_of(program, now), node, ids))

    async def count(
        self, conn: AsyncConnection, program: ProgramContext, key: str, now: datetime
    ) -> CountResult:
        """A dynamic segment counted live from its definition; a static one, its list."""
        row = await self._row(conn, program, key)
        if row.kind == SegmentKind.DYNAMIC:
            node = parse_definition(row.definition)
            found = await self.repository.count(conn, scope_of(program, now), node)
        else:
            found = await self.repository.member_count(conn, row.id)
        return CountResult(key=key, count=found)

    async def members(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        key: str,
        after: UUID | None,
        limit: int,
        now: datetime,
    ) -> MembersPage:
        """A page of members, in id order after ``after``: a dynamic segment's from its
        definition now, a static one's from its list."""
        row = await self._row(conn, program, key)
        if row.kind == SegmentKind.DYNAMIC:
            node = parse_definition(row.definition)
            ids = await self.repository.page(conn, scope_of(program, now), node, after, limit)
            names = await self.repository.names(conn, ids)
            items = [SegmentMemberOut(member_id=i, name=names.get(i)) for i in ids]
        else:
            pairs = await self.repository.members_page(conn, row.id, after, limit)
            items = [SegmentMemberOut(member_id=i, name=n) for i, n in pairs]
        cursor = str(items[-1].member_id) if len(items) == limit else None
        return MembersPage(items=items, next_cursor=cursor)

    # --- keeping membership ----------------------------------------------------------------

    async def refresh(
        self, conn: AsyncConnection, program: ProgramContext, key: str, now: datetime
    ) -> RefreshResult:
        """Re-evaluate a dynamic segment for every member, set-wise: who entered and who
        left since the last evaluation, each with its event."""
        row = await self._row(conn, program, key)
        if row.kind != SegmentKind.DYNAMIC:
            raise InvalidInput("a static segment changes by its list", field="key")
        node = parse_definition(row.definition)
        scope = scope_of(program, now)
        entering, leaving = await self.repository.changes(conn, scope, node, row.id)
        await self.repository.remove_members(conn, row.id, leaving)
        await self.repository.add_members(conn, row.id, program.id, entering, now)
        members = await self.repository.member_count(conn, row.id)
        await self.repository.update(conn, row.id, members=members, refreshed_at=now)
        await self._emit(conn, program, row, entering, leaving, "refresh", now)
        return RefreshResult(key=key, entered=len(entering), left=len(leaving), members=members)

    async def refresh_all(
        self, conn: AsyncConnection, program: ProgramContext, now: datetime
    ) -> list[RefreshResult]:
        rows = await self.repository.dynamic(conn, program.id)
        return [await self.refresh(conn, program, row.key, now) for row in rows]

    async def members_changed(
        self,
        conn: AsyncConnection,
        program_id: UUID,
        member_ids: Sequence[UUID],
        now: datetime,
        *,
        purchases: bool,
    ) -> int:
        """Re-evaluate these members' dynamic segments after their events: one query per
        segment for all of them. ``purchases``: their facts are worked out first (the
        facts consumer may not have run yet). Returns the changes made."""
        rows = await self.repository.dynamic(conn, program_id)
        if not rows or not member_ids:
            return 0
        if purchases:
            await crm_service.refresh(conn, program_id, member_ids, now)
        program = await program_service.get(conn, program_id)
        scope = scope_of(program, now)
        ids = sorted(set(member_ids))
        changes = 0
        for row in rows:
            node = parse_definition(row.definition)
            matching = await self.repository.matching_among(conn, scope, node, ids)
            current = await self.repository.members_among(conn, row.id, ids)
            entering = sorted(matching - current)
            leaving = sorted(current - matching)
            if not entering and not leaving:
                continue
            await self.repository.remove_members(conn, row.id, leaving)
            await self.repository.add_members(conn, row.id, program_id, entering, now)
            await self.repository.update(
                conn, row.id, members=row.members + len(entering) - len(leaving)
            )
            await self._emit(conn, program, row, entering, leaving, "event", now)
            changes += len(entering) + len(leaving)
        return changes

    async def _emit(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        row: Any,
        entering: Sequence[UUID],
        leaving: Sequence[UUID],
        reason: str,
        now: datetime,
    ) -> None:
        if not entering and not leaving:
            return
        common = {
            "program_id": program.id,
            "occurred_at": now,
            "segment_id": row.id,
            "segment": row.key,
            "kind": row.kind,
            "reason": reason,
        }
        async with unit_of_work(conn, now) as uow:
            uow.emit(*(SegmentEntered(member_id=m, **common) for m in entering))
            uow.emit(*(SegmentLeft(member_id=m, **common) for m in leaving))

    # --- static lists ----------------------------------------------------------------------

    async def upload(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        key: str,
        body: ListUpload,
        now: datetime,
        *,
        replace: bool = False,
    ) -> ListResult:
        """Put members on a static segment's list (``replace``: the list becomes exactly
        these; ``mode`` add or remove otherwise). Values not found are reported by line
        (1-based) and change nothing."""
        row = await self._row(conn, program, key)
        if row.kind != SegmentKind.STATIC:
            raise InvalidInput("a dynamic segment's members follow its definition", field="key")
        found, missing = await self._resolve(conn, program, body)
        current = set(await self.repository.all_members(conn, row.id))
        mode = ListMode.REPLACE if replace else body.mode
        if mode == ListMode.REPLACE:
            entering, leaving = sorted(found - current), sorted(current - found)
        elif mode == ListMode.ADD:
            entering, leaving = sorted(found - current), []
        else:
            entering, leaving = [], sorted(found & current)
        await self.repository.remove_members(conn, row.id, leaving)
        await self.repository.add_members(conn, row.id, program.id, entering, now)
        members = len(current) + len(entering) - len(leaving)
        await self.repository.update(
            conn, row.id, members=members, refreshed_at=now, updated_at=now
        )
        await self._emit(conn, program, row, entering, leaving, "list", now)
        return ListResult(
            key=key, added=len(entering), removed=len(leaving), members=members, not_found=missing
        )

    async def _resolve(
        self, conn: AsyncConnection, program: ProgramContext, body: ListUpload
    ) -> tuple[set[UUID], list[NotFoundLine]]:
        refs: list[MemberRef | None] = []
        for value in body.members:
            text = value.strip()
            kind = body.kind
            if kind == "auto":
                kind = "id" if _is_uuid(text) else guess_identifier_kind(text)
            if kind == "id" and not _is_uuid(text):
                refs.append(None)
                continue
            refs.append(MemberRef.model_validate({kind: text}) if text else None)
        hits = await member_service.resolve_many(conn, program, [r for r in refs if r is not None])
        found: set[UUID] = set()
        missing: list[NotFoundLine] = []
        it = iter(hits)
        for line, (value, ref) in enumerate(zip(body.members, refs, strict=True), start=1):
            hit = next(it) if ref is not None else None
            if hit is None:
                missing.append(NotFoundLine(line=line, value=value))
            else:
                found.add(hit[0])
        return found, missing

    # --- members' segments -----------------------------------------------------------------

    async def of_member(
        self, conn: AsyncConnection, program: ProgramContext, member_id: UUID
    ) -> MemberSegments:
        await member_service.get(conn, program, member_id)
        rows = await self.repository.segments_of(conn, program.id, [member_id])
        return MemberSegments(
            member_id=member_id,
            items=[
                MemberSegment(key=r.key, name=r.name, kind=SegmentKind(r.kind)) for _, r in rows
            ],
        )

    async def keys_of_members(
        self, conn: AsyncConnection, program_id: UUID, member_ids: Sequence[UUID]
    ) -> Mapping[UUID, frozenset[str]]:
        """The keys of the active segments each member is in (the rules' loader)."""
        found = await self.repository.keys_of(conn, program_id, member_ids)
        return {m: frozenset(keys) for m, keys in found.items()}

    async def has_dynamic(self, conn: AsyncConnection, program_id: UUID) -> bool:
        return await self.repository.has_dynamic(conn, program_id)


def _is_uuid(text: str) -> bool:
    try:
        UUID(text)
    except ValueError:
        return False
    return True


segment_service = SegmentService()
segment_keys.provide(segment_service.keys_of_members)
