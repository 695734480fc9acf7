"""Program events and invitations: staff define events (create, list, change, cancel, see
who accepted), members see the events their tier is invited to and accept or decline them.
Never commits.

Answers are idempotent (the same answer again changes nothing and emits nothing). Every
answer and every change of an event takes the event's row lock first and counts the places
taken after it, so a capacity is never exceeded by concurrent acceptances (tested on
PostgreSQL) and never lowered below the places already taken.
"""

from datetime import datetime
from typing import Any, cast
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.benefits import event_domain as domain
from kopilka.benefits.event_domain import Answer, EventTerms
from kopilka.benefits.event_repository import (
    ProgramEventRepository,
    program_event_repository,
)
from kopilka.benefits.event_schemas import (
    REQUIRED_ON_UPDATE,
    Guest,
    GuestPage,
    MemberEvent,
    MemberEventList,
    ProgramEvent,
    ProgramEventCreate,
    ProgramEventPage,
    ProgramEventUpdate,
)
from kopilka.errors import Conflict, InvalidInput, MemberBlocked, NotFound
from kopilka.kit.ids import new_id
from kopilka.kit.pagination import encode_cursor
from kopilka.members.service import MemberService, member_service
from kopilka.outbox.events import DomainEvent
from kopilka.outbox.program_event_events import (
    ProgramEventAccepted,
    ProgramEventCancelled,
    ProgramEventDeclined,
)
from kopilka.outbox.unit import UnitOfWork
from kopilka.programs.service import ProgramContext
from kopilka.tiers.service import TierService, tier_service

# Events not over that a member's list is chosen from: a program runs a handful at a time.
NOT_OVER_READ = 500


def terms_of(row: Any) -> EventTerms:
    return EventTerms(
        key=row.key,
        starts_at=row.starts_at,
        ends_at=row.ends_at,
        capacity=row.capacity,
        tiers=list(row.tiers or []),
        status=row.status,
    )


def event_out(program: ProgramContext, row: Any, taken: int) -> ProgramEvent:
    tiers = list(row.tiers or [])
    return ProgramEvent(
        id=row.id,
        key=row.key,
        name=row.name,
        description=row.description,
        place=row.place,
        starts_at=row.starts_at,
        ends_at=row.ends_at,
        capacity=row.capacity,
        tiers=tiers,
        invited_tiers=domain.invited_tiers(program.settings.tiers, row.key, tiers),
        status=row.status,
        accepted=taken,
        places_left=domain.places_left(row.capacity, taken),
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _answer(found: Any) -> Answer | None:
    return cast(Answer, found.status) if found is not None else None


def member_event_out(
    program: ProgramContext,
    row: Any,
    tier: str | None,
    found: Any,
    taken: int,
    now: datetime,
) -> MemberEvent:
    """The event as the member sees it: invited or not, their answer, what they may do."""
    terms = terms_of(row)
    invited = domain.is_invited(terms, program.settings.tiers, tier)
    answer = _answer(found)
    # Places taken by others: the member's own place is theirs whatever the count.
    others = taken - (1 if answer == "accepted" else 0)
    refusal = domain.acceptance_refusal(
        terms, invited=invited, taken=others, answer=answer, now=now
    )
    declining = domain.declining_refusal(terms, invited=invited, answer=answer, now=now)
    answered_at = None
    if found is not None:
        answered_at = found.accepted_at if answer == "accepted" else found.declined_at
    return MemberEvent(
        key=row.key,
        name=row.name,
        description=row.description,
        place=row.place,
        starts_at=row.starts_at,
        ends_at=row.ends_at,
        status=row.status,
        places_left=domain.places_left(row.capacity, taken),
        invited=invited,
        answer=answer,
        answered_at=answered_at,
        can_accept=answer != "accepted" and refusal is None,
        can_decline=answer != "declined" and declining is None,
        accept_refusal=refusal.value if refusal is not None and answer != "accepted" else None,
    )


class ProgramEventService:
    def __init__(
        self,
        repository: ProgramEventRepository = program_event_repository,
        members: MemberService = member_service,
        tiers: TierService = tier_service,
    ) -> None:
        self.repository = repository
        self.members = members
        self.tiers = tiers

    async def _require(
        self, conn: AsyncConnection, program: ProgramContext, key: str, *, lock: bool = False
    ) -> Any:
        row = await self.repository.by_key(conn, program.id, key, lock=lock)
        if row is None:
            raise NotFound(f"no program event {key!r}", field="key")
        return row

    async def _taken(self, conn: AsyncConnection, event_id: UUID) -> int:
        return (await self.repository.accepted_counts(conn, [event_id])).get(event_id, 0)

    # --- staff -------------------------------------------------------------------------------

    async def create(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        data: ProgramEventCreate,
        now: datetime,
    ) -> ProgramEvent:
        """A new event (409 naming ``key`` if the program has one by that key)."""
        if data.starts_at <= now:
            raise InvalidInput("starts_at must be in the future", field="starts_at")
        domain.check_definition(
            starts_at=data.starts_at,
            ends_at=data.ends_at,
            tiers=data.tiers,
            ladder=program.settings.tiers,
        )
        if await self.repository.by_key(conn, program.id, data.key) is not None:
            raise Conflict(f"the program has an event {data.key!r} already", field="key")
        row = {
            "id": new_id(),
            "program_id": program.id,
            **data.model_dump(),
            "status": "scheduled",
            "created_at": now,
            "updated_at": None,
        }
        await self.repository.insert(conn, row)
        return event_out(program, await self._require(conn, program, data.key), 0)

    async def page(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        now: datetime,
        *,
        status: str | None = None,
        upcoming: bool = False,
        limit: int = 50,
        after: tuple[datetime, UUID] | None = None,
    ) -> ProgramEventPage:
        """The program's events, soonest first; ``upcoming``: only those not over now."""
        rows = await self.repository.page(
            conn,
            program.id,
            status=status,
            not_over_at=now if upcoming else None,
            after=after,
            limit=limit,
        )
        taken = await self.repository.accepted_counts(conn, [r.id for r in rows])
        last = rows[-1] if len(rows) == limit else None
        return ProgramEventPage(
            items=[event_out(program, r, taken.get(r.id, 0)) for r in rows],
            next_cursor=encode_cursor(last.starts_at, last.id) if last else None,
        )

    async def get(self, conn: AsyncConnection, program: ProgramContext, key: str) -> ProgramEvent:
        row = await self._require(conn, program, key)
        return event_out(program, row, await self._taken(conn, row.id))

    async def update(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        key: str,
        data: ProgramEventUpdate,
        now: datetime,
    ) -> ProgramEvent:
        """Change some fields of a scheduled event. A new start must be in the future; the
        capacity may not go below the places taken (409 naming ``capacity``)."""
        changes = data.model_dump(exclude_unset=True)
        for name in REQUIRED_ON_UPDATE:
            if name in changes and changes[name] is None:
                raise InvalidInput(f"{name} cannot be cleared", field=name)
        row = await self._require(conn, program, key, lock=True)
        if row.status == "cancelled":
            raise Conflict(f"event {key!r} was cancelled: it takes no changes", field="status")
        changed = {k: v for k, v in changes.items() if v != getattr(row, k)}
        merged = {**row._mapping, **changed}
        if "starts_at" in changed and merged["starts_at"] <= now:
            raise InvalidInput("starts_at must be in the future", field="starts_at")
        domain.check_definition(
            starts_at=merged["starts_at"],
            ends_at=merged["ends_at"],
            tiers=merged["tiers"],
            ladder=program.settings.tiers,
        )
        taken = await self._taken(conn, row.id)
        if merged["capacity"] is not None and merged["capacity"] < taken:
            raise Conflict(
                f"{taken} members have accepted: capacity cannot be lower", field="capacity"
            )
        if changed:
            await self.repository.update(conn, row.id, {**changed, "updated_at": now})
            row = await self._require(conn, program, key)
        return event_out(program, row, taken)

    async def cancel(
        self, conn: AsyncConnection, program: ProgramContext, key: str, now: datetime
    ) -> ProgramEvent:
        """Cancel the event for good (members' answers are kept; nobody may answer any
        more). Cancelling again changes nothing."""
        row = await self._require(conn, program, key, lock=True)
        taken = await self._taken(conn, row.id)
        if row.status == "cancelled":
            return event_out(program, row, taken)
        await self.repository.update(conn, row.id, {"status": "cancelled", "updated_at": now})
        await _emit(
            conn,
            now,
            ProgramEventCancelled(
                program_id=program.id,
                member_id=None,
                occurred_at=now,
                program_event_id=row.id,
                key=row.key,
                name=row.name,
                starts_at=row.starts_at,
                guests=taken,
            ),
        )
        return event_out(program, await self._require(conn, program, key), taken)

    async def guests(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        key: str,
        *,
        limit: int = 50,
        after: tuple[datetime, UUID] | None = None,
    ) -> GuestPage:
        """Members who accepted the event, in the order they accepted."""
        row = await self._require(conn, program, key)
        rows = await self.repository.guests(conn, row.id, after=after, limit=limit)
        last = rows[-1] if len(rows) == limit else None
        return GuestPage(
            items=[Guest(member_id=r.member_id, accepted_at=r.accepted_at) for r in rows],
            next_cursor=encode_cursor(last.accepted_at, last.member_id) if last else None,
            accepted=await self._taken(conn, row.id),
        )

    # --- members -----------------------------------------------------------------------------

    async def _member_status(
        self, conn: AsyncConnection, program: ProgramContext, member_id: UUID
    ) -> str:
        """The member's status (404 if not of the program; 409 if merged or erased)."""
        status = (await self.members.statuses(conn, program, [member_id])).get(member_id)
        if status is None:
            raise NotFound(f"member {member_id} not found", field="member_id")
        if status in ("merged", "erased"):
            raise Conflict(
                f"member {member_id} is {status}: it takes no answers", field="member_id"
            )
        return status

    async def member_events(
        self, conn: AsyncConnection, program: ProgramContext, member_id: UUID, now: datetime
    ) -> MemberEventList:
        """Events not over now that the member's tier is invited to, or that they accepted
        (a cancelled one among them shows as cancelled), soonest first, with their answer."""
        status = (await self.members.statuses(conn, program, [member_id])).get(member_id)
        if status is None:
            raise NotFound(f"member {member_id} not found", field="member_id")
        tier = await self.tiers.current_tier(conn, program, member_id, now)
        rows = await self.repository.page(
            conn, program.id, status=None, not_over_at=now, after=None, limit=NOT_OVER_READ
        )
        # The member's own accepted events are listed even past the first NOT_OVER_READ.
        listed = {r.id for r in rows}
        rows += [
            r
            for r in await self.repository.accepted_not_over(conn, member_id, now)
            if r.id not in listed
        ]
        rows.sort(key=lambda r: (r.starts_at, r.key))
        answers = await self.repository.answers(conn, member_id, [r.id for r in rows])
        ladder = program.settings.tiers
        shown = [
            r
            for r in rows
            if domain.is_invited(terms_of(r), ladder, tier)
            or _answer(answers.get(r.id)) == "accepted"
        ]
        taken = await self.repository.accepted_counts(conn, [r.id for r in shown])
        items = [
            member_event_out(program, r, tier, answers.get(r.id), taken.get(r.id, 0), now)
            for r in shown
        ]
        if status == "blocked":
            # A blocked member's acceptance is refused (403): the list says so.
            items = [
                i.model_copy(update={"can_accept": False, "accept_refusal": "member_blocked"})
                if i.answer != "accepted"
                else i
                for i in items
            ]
        return MemberEventList(items=items, tier=tier)

    async def accept(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        member_id: UUID,
        key: str,
        now: datetime,
    ) -> MemberEvent:
        """The member takes a place: 403 if their tier is not invited, 409 if the event is
        cancelled, has started or is full. Accepting again changes nothing."""
        if await self._member_status(conn, program, member_id) == "blocked":
            raise MemberBlocked(f"member {member_id} is blocked", field="member_id")
        row = await self._require(conn, program, key, lock=True)
        return await self._answer(conn, program, member_id, row, "accepted", now)

    async def decline(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        member_id: UUID,
        key: str,
        now: datetime,
    ) -> MemberEvent:
        """The member will not come (a place they had taken is free again): 403 if they were
        neither invited nor had accepted, 409 if the event is cancelled or has started.
        Declining again changes nothing."""
        await self._member_status(conn, program, member_id)
        row = await self._require(conn, program, key, lock=True)
        return await self._answer(conn, program, member_id, row, "declined", now)

    async def _answer(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        member_id: UUID,
        row: Any,
        wanted: Answer,
        now: datetime,
    ) -> MemberEvent:
        """Record the member's answer, the event's row lock held: decide on the places
        taken as counted after the lock."""
        found = (await self.repository.answers(conn, member_id, [row.id])).get(row.id)
        answer = _answer(found)
        tier = await self.tiers.current_tier(conn, program, member_id, now)
        terms = terms_of(row)
        invited = domain.is_invited(terms, program.settings.tiers, tier)
        taken = await self._taken(conn, row.id)
        if wanted == "accepted":
            others = taken - (1 if answer == "accepted" else 0)
            refusal = domain.acceptance_refusal(
                terms, invited=invited, taken=others, answer=answer, now=now
            )
        else:
            refusal = domain.declining_refusal(terms, invited=invited, answer=answer, now=now)
        if refusal is not None:
            raise domain.refused(refusal, row.key)
        if answer != wanted:
            if wanted == "accepted":
                taken += 1
            elif answer == "accepted":
                taken -= 1
            await self._write_answer(conn, program, member_id, row, found, wanted, now)
            await _emit(conn, now, _answered(program, member_id, row, wanted, answer, taken, now))
            found = (await self.repository.answers(conn, member_id, [row.id])).get(row.id)
        return member_event_out(program, row, tier, found, taken, now)

    async def _write_answer(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        member_id: UUID,
        row: Any,
        found: Any,
        wanted: Answer,
        now: datetime,
    ) -> None:
        values: dict[str, Any] = (
            {"status": "accepted", "accepted_at": now, "declined_at": None}
            if wanted == "accepted"
            else {"status": "declined", "declined_at": now}
        )
        if found is None:
            await self.repository.insert_answer(
                conn,
                {
                    "event_id": row.id,
                    "member_id": member_id,
                    "program_id": program.id,
                    "accepted_at": None,
                    **values,
                },
            )
        else:
            await self.repository.update_answer(conn, row.id, member_id, values)


def _answered(
    program: ProgramContext,
    member_id: UUID,
    row: Any,
    wanted: Answer,
    previous: Answer | None,
    taken: int,
    now: datetime,
) -> DomainEvent:
    if wanted == "accepted":
        return ProgramEventAccepted(
            program_id=program.id,
            member_id=member_id,
            occurred_at=now,
            program_event_id=row.id,
            key=row.key,
            name=row.name,
            starts_at=row.starts_at,
            place=row.place,
            places_left=domain.places_left(row.capacity, taken),
        )
    return ProgramEventDeclined(
        program_id=program.id,
        member_id=member_id,
        occurred_at=now,
        program_event_id=row.id,
        key=row.key,
        name=row.name,
        starts_at=row.starts_at,
        had_accepted=previous == "accepted",
    )


async def _emit(conn: AsyncConnection, now: datetime, *events: DomainEvent) -> None:
    uow = UnitOfWork(now)
    uow.emit(*events)
    await uow.flush(conn)


program_event_service = ProgramEventService()
