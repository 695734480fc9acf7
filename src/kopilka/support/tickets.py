"""Tickets: opening, moving and answering them under their SLA, the member's own view
and replies, and the breach check. Never commits.

A staff member limited to some stores sees and changes only tickets of those stores (a
ticket of no store is the back office's); another's ticket is "not found", as another
program's is.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.access.domain import Principal
from kopilka.errors import Conflict, Forbidden, InvalidInput, NotFound
from kopilka.kit.ids import new_id
from kopilka.members.service import member_service
from kopilka.outbox.support_events import (
    TicketOpened,
    TicketReplied,
    TicketStatusChanged,
)
from kopilka.outbox.unit import unit_of_work
from kopilka.programs.service import ProgramContext
from kopilka.staff.service import staff_service
from kopilka.support import domain
from kopilka.support.domain import Priority, QueueOrder, Sla, TicketStatus
from kopilka.support.repository import SupportRepository, support_repository
from kopilka.support.schemas import (
    MemberReplyCreate,
    MemberTicket,
    MemberTicketCreate,
    NoteCreate,
    ReplyCreate,
    SupportSettings,
    Ticket,
    TicketCreate,
    TicketPage,
    TicketUpdate,
)
from kopilka.support.service import author_of, support_service
from kopilka.support.surveys import survey_service
from kopilka.support.ticket_rows import (
    message_out,
    message_row,
    queue_cursor,
    sla_columns,
    sla_of,
    ticket_out,
    via_of,
)

Key = tuple[datetime, UUID]


@dataclass(frozen=True)
class Opened:
    """What opens a ticket besides its fields: who, through which channel."""

    channel: str
    name: str
    key_id: UUID | None = None
    staff_id: UUID | None = None


@dataclass(frozen=True)
class StatusMove:
    """A ticket's new status, as the service decided it (for the survey invitation of a
    resolved ticket)."""

    ticket_id: UUID
    member_id: UUID
    before: TicketStatus
    after: TicketStatus
    store: str | None
    assignee_id: UUID | None


def _visible(principal: Principal | None, store: str | None) -> bool:
    return principal is None or principal.may_act_at(store)


class TicketService:
    def __init__(self, repository: SupportRepository = support_repository) -> None:
        self.repository = repository

    async def settings(self, conn: AsyncConnection, program: ProgramContext) -> SupportSettings:
        return await support_service.settings(conn, program)

    # --- tickets: opening --------------------------------------------------------------------

    async def open_ticket(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        principal: Principal,
        data: TicketCreate,
        now: datetime,
    ) -> Ticket:
        """A ticket opened by staff or an integration for a member."""
        if not principal.may_act_at(data.store):
            raise Forbidden(
                f"you may not open tickets at {data.store or 'no store'}", field="store"
            )
        if data.assignee_id is not None:
            await self.check_assignee(conn, program, data.assignee_id)
        author = author_of(principal)
        opened = Opened(data.channel, author.name, principal.key_id, principal.staff_id)
        return await self._open(
            conn, program, data.member_id, data, data.priority, data.assignee_id, opened, now
        )

    async def open_member_ticket(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        member_id: UUID,
        data: MemberTicketCreate,
        now: datetime,
        *,
        via: str | None = None,
        principal: Principal | None = None,
    ) -> Ticket:
        """The member's own ticket (the app, the till, an e-mail): normal priority, no
        assignee. Staff limited to stores open one only at theirs."""
        if (
            principal is not None
            and data.store is not None
            and not principal.may_act_at(data.store)
        ):
            raise Forbidden(
                f"this staff member does not act at store {data.store!r}", field="store"
            )
        opened = Opened(via or data.channel, "member")
        return await self._open(conn, program, member_id, data, Priority.NORMAL, None, opened, now)

    async def _open(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        member_id: UUID,
        data: TicketCreate | MemberTicketCreate,
        priority: Priority,
        assignee_id: UUID | None,
        opened: Opened,
        now: datetime,
    ) -> Ticket:
        member = await member_service.writable(conn, program, member_id)
        await support_service.check_store(conn, program, data.store)
        settings = await self.settings(conn, program)
        if data.category not in settings.categories:
            raise InvalidInput(
                f"no category {data.category!r} (one of {', '.join(settings.categories)})",
                field="category",
            )
        purchase_id, purchase_external_id, store = data.purchase_id, None, data.store
        if data.purchase_id is not None or data.purchase_external_id is not None:
            field = "purchase_id" if data.purchase_id is not None else "purchase_external_id"
            found = await support_service.purchase_of(
                conn, program, member_id, data.purchase_id, data.purchase_external_id, field
            )
            purchase_id, purchase_external_id = found.id, found.external_id
            store = store or found.store
        target = settings.sla[priority]
        sla = Sla.start(
            now,
            timedelta(hours=target.first_response_hours),
            timedelta(hours=target.resolution_hours),
        )
        row: dict[str, Any] = {
            "id": new_id(),
            "program_id": program.id,
            "member_id": member_id,
            "subject": data.subject,
            "category": data.category,
            "priority": str(priority),
            "status": str(TicketStatus.NEW),
            "channel": opened.channel,
            "language": member.language,
            "assignee_id": assignee_id,
            "store": store,
            "purchase_id": purchase_id,
            "purchase_external_id": purchase_external_id,
            "opened_by_key": opened.key_id,
            "opened_by_staff": opened.staff_id,
            "opened_by_name": opened.name,
            "first_response_breached": False,
            "resolution_breached": False,
            "resolved_at": None,
            "closed_at": None,
            "created_at": now,
            "updated_at": now,
            **sla_columns(sla),
        }
        await self.repository.insert_ticket(conn, row)
        from_member = opened.key_id is None and opened.staff_id is None
        body_row = message_row(
            row,
            public=True,
            author="member" if from_member else "staff",
            name=member.name or "member" if from_member else opened.name,
            key_id=opened.key_id,
            staff_id=opened.staff_id,
            body=data.body,
            via=via_of(opened.channel),
            now=now,
        )
        await self.repository.insert_message(conn, body_row)
        async with unit_of_work(conn, now) as uow:
            uow.emit(
                TicketOpened(
                    program_id=program.id,
                    member_id=member_id,
                    occurred_at=now,
                    ticket_id=row["id"],
                    subject=data.subject,
                    category=data.category,
                    priority=row["priority"],
                    channel=opened.channel,
                    store=store,
                    assignee_id=assignee_id,
                    first_response_due_at=sla.first_response_due_at,
                    resolution_due_at=sla.resolution_due_at,
                )
            )
        return await self._answer(conn, row, now, public_only=False)

    async def check_assignee(
        self, conn: AsyncConnection, program: ProgramContext, assignee_id: UUID
    ) -> None:
        """An assignee is an active staff member of the program who handles tickets (422
        naming ``assignee_id`` otherwise)."""
        if not await staff_service.can_handle_tickets(conn, program.id, assignee_id):
            raise InvalidInput(
                f"{assignee_id} is not an active staff member who handles tickets",
                field="assignee_id",
            )

    # --- tickets: reading --------------------------------------------------------------------

    async def ticket(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        principal: Principal | None,
        ticket_id: UUID,
        now: datetime,
    ) -> Ticket:
        row = await self._visible_ticket(conn, program, principal, ticket_id)
        return await self._answer(conn, row._mapping, now, public_only=False)

    async def queue(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        principal: Principal | None,
        now: datetime,
        *,
        status: Sequence[TicketStatus] | None = None,
        assignee_id: UUID | None = None,
        unassigned: bool = False,
        priority: Priority | None = None,
        category: str | None = None,
        store: str | None = None,
        member_id: UUID | None = None,
        breached: bool = False,
        channel: str | None = None,
        order: QueueOrder = QueueOrder.DEADLINE,
        after: Key | None = None,
        limit: int = 50,
    ) -> TicketPage:
        """The queue, the oldest deadline first (or the newest or oldest opened first, by
        ``order``). Without ``status`` the tickets still owed something (new, open,
        waiting). The cursor is the last ticket's key in that order."""
        rows = await self.repository.queue(
            conn,
            program.id,
            statuses=domain.queue_statuses(status),
            assignee_id=assignee_id,
            unassigned=unassigned,
            priority=str(priority) if priority else None,
            category=category,
            store=store,
            member_id=member_id,
            breached_at=now if breached else None,
            channel=channel,
            order=order,
            stores=principal.stores if principal else None,
            after=after,
            limit=limit,
        )
        items = [ticket_out(r._mapping, now) for r in rows]
        return TicketPage(items=items, next_cursor=queue_cursor(items, limit, order))

    async def _visible_ticket(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        principal: Principal | None,
        ticket_id: UUID,
        *,
        lock: bool = False,
    ) -> Any:
        row = await self.repository.ticket(conn, program.id, ticket_id, lock=lock)
        if row is None or not _visible(principal, row.store):
            raise NotFound(f"ticket {ticket_id} not found", field="ticket_id")
        return row

    async def _answer(
        self, conn: AsyncConnection, row: Any, now: datetime, *, public_only: bool
    ) -> Ticket:
        messages = await self.repository.messages(conn, [row["id"]], public_only=public_only)
        ticket = ticket_out(row, now)
        ticket.messages = [message_out(m._mapping) for m in messages]
        return ticket

    # --- tickets: changing -------------------------------------------------------------------

    async def update_ticket(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        principal: Principal,
        ticket_id: UUID,
        data: TicketUpdate,
        now: datetime,
    ) -> Ticket:
        """Change status, assignee, priority or category. A move the workflow does not
        allow (``closed`` is final; ``resolved`` only reopens or closes) is a 409. A new
        priority recomputes the deadlines from the ticket's opening."""
        row = dict(
            (await self._visible_ticket(conn, program, principal, ticket_id, lock=True))._mapping
        )
        values: dict[str, Any] = {}
        if data.category is not None and data.category != row["category"]:
            settings = await self.settings(conn, program)
            if data.category not in settings.categories:
                raise InvalidInput(
                    f"no category {data.category!r} (one of {', '.join(settings.categories)})",
                    field="category",
                )
            values["category"] = data.category
        if data.assignee_id is not None and data.assignee_id != row["assignee_id"]:
            await self.check_assignee(conn, program, data.assignee_id)
            values["assignee_id"] = data.assignee_id
        if data.unassign and row["assignee_id"] is not None:
            values["assignee_id"] = None
        if data.priority is not None and str(data.priority) != row["priority"]:
            values |= await self._reprioritised(conn, program, row, data.priority)
        if values and row["status"] == TicketStatus.CLOSED:
            raise Conflict("a closed ticket does not change", field="status")
        move = None
        async with unit_of_work(conn, now) as uow:
            if data.status is not None:
                moved, move = self._move(program, principal, row | values, data.status, now, uow)
                values |= moved
            if values:
                values["updated_at"] = now
                await self.repository.update_ticket(conn, ticket_id, values)
        await self._after_move(conn, program, move, now)
        return await self._answer(conn, row | values, now, public_only=False)

    async def _reprioritised(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        row: dict[str, Any],
        priority: Priority,
    ) -> dict[str, Any]:
        """Deadlines of the new priority, counted from the opening, with the time the
        ticket has already spent waiting on the member (what its deadlines were moved by)
        kept."""
        sla_settings = (await self.settings(conn, program)).sla
        old, new = sla_settings[Priority(row["priority"])], sla_settings[priority]
        opened = row["created_at"]
        current = sla_of(row)
        paused = current.resolution_due_at - (opened + timedelta(hours=old.resolution_hours))
        paused = max(paused, timedelta(0))
        sla = Sla(
            opened + timedelta(hours=new.first_response_hours) + paused,
            opened + timedelta(hours=new.resolution_hours) + paused,
            current.first_responded_at,
            current.paused_at,
        )
        return {"priority": str(priority), **sla_columns(sla)}

    def _move(
        self,
        program: ProgramContext,
        principal: Principal | None,
        row: dict[str, Any],
        target: TicketStatus,
        now: datetime,
        uow: Any,
    ) -> tuple[dict[str, Any], StatusMove | None]:
        current = TicketStatus(row["status"])
        if target == current:
            return {}, None
        if not domain.may_move(current, target):
            allowed = ", ".join(sorted(domain.TRANSITIONS[current])) or "none: it is final"
            raise Conflict(
                f"a {current} ticket cannot become {target} (it may become: {allowed})",
                field="status",
            )
        sla = sla_of(row).for_status(target, now)
        values: dict[str, Any] = {"status": str(target), **sla_columns(sla)}
        if target is TicketStatus.RESOLVED:
            values["resolved_at"] = now
        elif target is TicketStatus.CLOSED:
            values["closed_at"] = now
            values["resolved_at"] = row["resolved_at"] or now
        elif current is TicketStatus.RESOLVED:
            values["resolved_at"] = None  # reopened: resolved again later, or not
        uow.emit(
            TicketStatusChanged(
                program_id=program.id,
                member_id=row["member_id"],
                occurred_at=now,
                ticket_id=row["id"],
                from_status=str(current),
                to_status=str(target),
                by=(author_of(principal).name if principal else "member"),
                by_staff=principal.staff_id if principal else None,
            )
        )
        move = StatusMove(
            row["id"], row["member_id"], current, target, row["store"], row["assignee_id"]
        )
        return values, move

    async def reply(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        principal: Principal,
        ticket_id: UUID,
        data: ReplyCreate,
        now: datetime,
    ) -> Ticket:
        """A public reply of staff: the member is told (``ticket.replied``). The first one is
        the ticket's first response; a new ticket becomes open, or takes ``status``."""
        row = dict(
            (await self._visible_ticket(conn, program, principal, ticket_id, lock=True))._mapping
        )
        if row["status"] == TicketStatus.CLOSED:
            raise Conflict("a closed ticket takes no replies", field="ticket_id")
        author = author_of(principal)
        message = message_row(
            row,
            public=True,
            author="staff",
            name=author.name,
            key_id=principal.key_id,
            staff_id=principal.staff_id,
            body=data.body,
            via="api",
            now=now,
        )
        sla = sla_of(row).responded(now)
        values: dict[str, Any] = {**sla_columns(sla), "updated_at": now}
        target = data.status or (
            TicketStatus.OPEN if row["status"] == TicketStatus.NEW else TicketStatus(row["status"])
        )
        await self.repository.insert_message(conn, message)
        async with unit_of_work(conn, now) as uow:
            moved, move = self._move(program, principal, row | values, target, now, uow)
            values |= moved
            await self.repository.update_ticket(conn, ticket_id, values)
            uow.emit(
                TicketReplied(
                    program_id=program.id,
                    member_id=row["member_id"],
                    occurred_at=now,
                    ticket_id=ticket_id,
                    message_id=message["id"],
                    subject=row["subject"],
                    body=data.body,
                    author_name=author.name,
                    language=row["language"],
                    status=str(values.get("status", row["status"])),
                )
            )
        await self._after_move(conn, program, move, now)
        return await self._answer(conn, row | values, now, public_only=False)

    async def _after_move(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        move: StatusMove | None,
        now: datetime,
    ) -> None:
        """A ticket resolved may invite the member to the ticket survey."""
        if move is not None and move.after is TicketStatus.RESOLVED:
            await survey_service.after_ticket_resolved(
                conn, program, move.member_id, move.ticket_id, move.store, move.assignee_id, now
            )

    async def note(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        principal: Principal,
        ticket_id: UUID,
        data: NoteCreate,
        now: datetime,
    ) -> Ticket:
        """An internal note: for staff only, never shown to the member, no SLA effect."""
        row = dict(
            (await self._visible_ticket(conn, program, principal, ticket_id, lock=True))._mapping
        )
        author = author_of(principal)
        await self.repository.insert_message(
            conn,
            message_row(
                row,
                public=False,
                author="staff",
                name=author.name,
                key_id=principal.key_id,
                staff_id=principal.staff_id,
                body=data.body,
                via="api",
                now=now,
            ),
        )
        await self.repository.update_ticket(conn, ticket_id, {"updated_at": now})
        return await self._answer(conn, row | {"updated_at": now}, now, public_only=False)

    async def member_reply(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        member_id: UUID,
        ticket_id: UUID,
        data: MemberReplyCreate,
        now: datetime,
        *,
        via: str = "app",
        principal: Principal | None = None,
    ) -> MemberTicket:
        """The member writes on their ticket: a waiting or resolved ticket reopens (its SLA
        clock runs again); a closed one takes no more (409: open a new ticket)."""
        row = await self.repository.ticket(conn, program.id, ticket_id, lock=True)
        if row is None or row.member_id != member_id or not _visible(principal, row.store):
            raise NotFound(f"ticket {ticket_id} not found", field="ticket_id")
        row_ = dict(row._mapping)
        target = domain.member_reply_status(TicketStatus(row_["status"]))
        if target is None:
            raise Conflict("this ticket is closed: open a new one", field="ticket_id")
        member = await member_service.writable(conn, program, member_id)
        await self.repository.insert_message(
            conn,
            message_row(
                row_,
                public=True,
                author="member",
                name=member.name or "member",
                key_id=None,
                staff_id=None,
                body=data.body,
                via=via,
                now=now,
            ),
        )
        values: dict[str, Any] = {"updated_at": now}
        async with unit_of_work(conn, now) as uow:
            moved, _ = self._move(program, None, row_, target, now, uow)
            values |= moved
            await self.repository.update_ticket(conn, ticket_id, values)
        messages = await self.repository.messages(conn, [ticket_id], public_only=True)
        merged = row_ | values
        return MemberTicket(
            id=ticket_id,
            subject=merged["subject"],
            category=merged["category"],
            status=merged["status"],
            created_at=merged["created_at"],
            updated_at=merged["updated_at"],
            messages=[message_out(m._mapping) for m in messages],
        )

    async def reply_target(
        self, conn: AsyncConnection, program: ProgramContext, message_id: UUID
    ) -> tuple[UUID, UUID] | None:
        """(ticket, member) of a public reply, for an e-mail answering it; None if unknown."""
        found = await self.repository.message(conn, program.id, message_id)
        if found is None:
            return None
        return found.ticket_id, found.member_id


ticket_service = TicketService()
