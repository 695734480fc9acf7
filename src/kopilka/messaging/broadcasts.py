"""Broadcasts: one message of a kind to a list of members, turned into messages a chunk at
a time by the worker, throttled by the sender like every message.

Each chunk is one transaction: the recipients are locked (a second worker skips them), their
messages are made and they are marked done together. A worker killed mid-broadcast leaves
the rest of the list not done; the next round goes on from there. The dedupe key
``broadcast:<id>`` makes a member of the list get one message per channel even if a chunk
were done twice.

A broadcast may hold back ``holdout_percent`` of its audience: a stable hash of the broadcast
and the member picks them, they are recorded among the recipients (``holdout``) and sent
nothing, and analytics compares the two groups after the start (``broadcast:<id>``).
"""

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.errors import Conflict, InvalidInput, NotFound
from kopilka.kit.ids import new_id
from kopilka.members.service import member_service
from kopilka.messaging.audience_repository import AudienceRepository, audience_repository
from kopilka.messaging.broadcast_repository import BroadcastRepository, broadcast_repository
from kopilka.messaging.composition import Outgoing, known_kind
from kopilka.messaging.domain import Channel
from kopilka.messaging.notifications import KINDS, Purpose
from kopilka.messaging.records import BroadcastRow
from kopilka.messaging.service import messaging_service
from kopilka.programs.service import ProgramContext, program_service
from kopilka.segments.service import segment_service

# A segment's members are read a page at a time; a broadcast holds at most so many.
SEGMENT_PAGE = 5000
MAX_AUDIENCE = 1_000_000
MARKETING = sorted(k for k, spec in KINDS.items() if spec.purpose is Purpose.MARKETING)
SCHEDULED, RUNNING, PAUSED, DONE, CANCELLED = "scheduled", "running", "paused", "done", "cancelled"
MAX_HOLDOUT_PERCENT = 50


def held_back(broadcast_id: UUID, member_id: UUID, percent: int) -> bool:
    """Whether the member is in the broadcast's holdout: a hash of both into 0–99, below
    ``percent``. Random across members, the same on every server, and independent of any
    other broadcast's or experiment's split."""
    digest = hashlib.sha256(f"broadcast:{broadcast_id}:{member_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % 100 < percent


@dataclass(frozen=True)
class BroadcastView:
    row: BroadcastRow
    done: int
    counts: dict[str, int]


@dataclass(frozen=True)
class ChunkReport:
    broadcast_id: UUID
    members: int
    messages: int
    finished: bool


class BroadcastService:
    def __init__(
        self,
        repository: BroadcastRepository = broadcast_repository,
        audience: AudienceRepository = audience_repository,
    ) -> None:
        self.repository = repository
        self.audience = audience

    async def create(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        *,
        name: str,
        kind: str,
        variables: dict[str, Any],
        channels: Sequence[Channel] | None,
        members: Sequence[UUID] | None = None,
        segment: str | None = None,
        send_at: datetime | None,
        now: datetime,
        internal: bool = False,
        holdout_percent: int = 0,
    ) -> BroadcastView:
        """A broadcast to ``members``, or to a segment's members as they are now, less
        ``holdout_percent`` (0–50; 422 naming it otherwise) of them held back."""
        if not 0 <= holdout_percent <= MAX_HOLDOUT_PERCENT:
            raise InvalidInput(
                f"holdout_percent must be between 0 and {MAX_HOLDOUT_PERCENT}",
                field="holdout_percent",
            )
        spec = known_kind(kind)
        if not internal and spec.purpose is not Purpose.MARKETING:
            raise InvalidInput(
                f"{kind} is not a broadcast: broadcasts are marketing ({', '.join(MARKETING)}); "
                "the program's own notices go out from their events",
                field="kind",
            )
        setup = await messaging_service.ensure_setup(conn, program, now)
        chosen = list(channels or setup.settings.channels_of(kind))
        await messaging_service.check_renders(conn, program, kind, variables, chosen)
        if segment is not None:
            members = await self._segment_members(conn, program, segment, now)
            if not members:
                raise InvalidInput(f"segment {segment!r} has no members now", field="segment")
        wanted = list(dict.fromkeys(members or ()))
        found = await self.audience.recipients(conn, program.id, wanted)
        missing = [m for m in wanted if m not in found]
        if missing:
            raise InvalidInput(
                f"{len(missing)} of the members are not in this program (first: {missing[0]})",
                field="members",
            )
        broadcast_id = new_id()
        await self.repository.add_broadcast(
            conn,
            {
                "id": broadcast_id,
                "program_id": program.id,
                "name": name,
                "kind": kind,
                "variables": variables,
                "channels": [str(c) for c in chosen],
                "status": SCHEDULED,
                "scheduled_at": max(send_at or now, now),
                "total": len(wanted),
                "holdout_percent": holdout_percent,
                "created_at": now,
                "updated_at": now,
                "finished_at": None,
            },
            wanted,
            {m for m in wanted if held_back(broadcast_id, m, holdout_percent)},
        )
        return await self.get(conn, program, broadcast_id)

    async def _segment_members(
        self, conn: AsyncConnection, program: ProgramContext, key: str, now: datetime
    ) -> list[UUID]:
        found: list[UUID] = []
        after: UUID | None = None
        while True:
            page = await segment_service.members(conn, program, key, after, SEGMENT_PAGE, now)
            found.extend(item.member_id for item in page.items)
            if len(found) > MAX_AUDIENCE:
                raise InvalidInput(
                    f"segment {key!r} has more than {MAX_AUDIENCE} members: narrow it",
                    field="segment",
                )
            if page.next_cursor is None:
                return found
            after = page.items[-1].member_id

    async def to_everyone(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        *,
        name: str,
        kind: str,
        variables: dict[str, Any],
        joined_before: datetime,
        now: datetime,
    ) -> BroadcastView | None:
        """A broadcast to every active member who joined before ``joined_before`` (a notice
        of program changes goes to those who were members when it was published)."""
        members = await member_service.active_ids(conn, program, joined_before)
        if not members:
            return None
        return await self.create(
            conn,
            program,
            name=name,
            kind=kind,
            variables=variables,
            channels=None,
            members=members,
            send_at=None,
            now=now,
            internal=True,
        )

    async def get(
        self, conn: AsyncConnection, program: ProgramContext, broadcast_id: UUID
    ) -> BroadcastView:
        found = await self.repository.broadcast(conn, program.id, broadcast_id)
        if found is None:
            raise NotFound(f"no broadcast {broadcast_id}", field="broadcast_id")
        return await self._view(conn, found)

    async def _view(self, conn: AsyncConnection, row: BroadcastRow) -> BroadcastView:
        return BroadcastView(
            row,
            await self.repository.done_count(conn, row.id),
            await self.repository.counts(conn, row.program_id, row.id),
        )

    async def page(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        limit: int,
        before: tuple[datetime, UUID] | None,
    ) -> list[BroadcastView]:
        """A page of broadcasts, newest first, each with its progress and counts (three
        queries for the page, whatever its length)."""
        rows = await self.repository.broadcasts_page(conn, program.id, limit, before)
        ids = [r.id for r in rows]
        done = await self.repository.done_counts(conn, ids)
        counts = await self.repository.counts_of_broadcasts(conn, ids)
        return [BroadcastView(r, done.get(r.id, 0), counts.get(r.id, {})) for r in rows]

    async def set_status(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        broadcast_id: UUID,
        action: str,
        now: datetime,
    ) -> BroadcastView:
        """pause, resume or cancel. A broadcast whose messages are all made can still be
        paused or cancelled while some wait to be sent; pausing holds those, cancelling
        withdraws them. Resuming goes on from where it was."""
        found = await self.repository.broadcast(conn, program.id, broadcast_id, lock=True)
        if found is None:
            raise NotFound(f"no broadcast {broadcast_id}", field="broadcast_id")
        waiting = (await self.repository.counts(conn, program.id, broadcast_id)).get("queued", 0)
        stoppable = {SCHEDULED, RUNNING, PAUSED} | ({DONE} if waiting else set())
        moves = {
            "pause": (stoppable - {PAUSED}, PAUSED),
            "resume": ({PAUSED}, RUNNING),
            "cancel": (stoppable, CANCELLED),
        }
        allowed, target = moves[action]
        if found.status not in allowed:
            raise Conflict(
                f"broadcast {broadcast_id} is {found.status}: cannot {action} it",
                field="broadcast_id",
            )
        if target == RUNNING:
            done = await self.repository.done_count(conn, broadcast_id)
            target = DONE if done == found.total else RUNNING
        values: dict[str, Any] = {"status": target, "updated_at": now}
        if target == CANCELLED:
            values["finished_at"] = now
            await self.repository.cancel_queued(conn, broadcast_id, now)
        await self.repository.update_broadcast(conn, broadcast_id, **values)
        return await self.get(conn, program, broadcast_id)

    async def audience_split(
        self, conn: AsyncConnection, program: ProgramContext, broadcast_id: UUID
    ) -> tuple[BroadcastRow, list[tuple[UUID, bool]]]:
        """The broadcast and its audience: (member, held back) for every recipient."""
        found = await self.repository.broadcast(conn, program.id, broadcast_id)
        if found is None:
            raise NotFound(f"no broadcast {broadcast_id}", field="broadcast_id")
        return found, await self.audience.audience(conn, broadcast_id)

    async def with_holdout(
        self, conn: AsyncConnection, program: ProgramContext
    ) -> list[BroadcastRow]:
        """The program's broadcasts that held part of their audience back, newest first."""
        return await self.audience.broadcasts_with_holdout(conn, program.id)

    async def due(self, conn: AsyncConnection, now: datetime) -> list[BroadcastRow]:
        return await self.repository.due_broadcasts(conn, now)

    async def run_chunk(
        self, conn: AsyncConnection, broadcast_id: UUID, limit: int, now: datetime
    ) -> ChunkReport | None:
        """Make the messages of the next ``limit`` members of a due broadcast."""
        found = await self.repository.broadcast(conn, None, broadcast_id, lock=True)
        if found is None or found.status not in (SCHEDULED, RUNNING) or found.scheduled_at > now:
            return None
        program = await program_service.get(conn, found.program_id)
        members = await self.repository.take_recipients(conn, broadcast_id, limit)
        made = await messaging_service.compose(
            conn,
            program,
            [
                Outgoing(
                    found.kind,
                    member_id,
                    f"broadcast:{broadcast_id}",
                    found.variables,
                    channels=[Channel(c) for c in found.channels],
                    broadcast_id=broadcast_id,
                )
                for member_id in members
            ],
            now,
        )
        await self.repository.mark_done(conn, broadcast_id, members)
        finished = len(members) < limit
        values: dict[str, Any] = {"status": DONE if finished else RUNNING, "updated_at": now}
        if finished:
            values["finished_at"] = now
        await self.repository.update_broadcast(conn, broadcast_id, **values)
        return ChunkReport(broadcast_id, len(members), len(made), finished)


broadcast_service = BroadcastService()
