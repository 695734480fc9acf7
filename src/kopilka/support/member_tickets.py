"""The member's own view of their tickets: public messages only; the locks the app's
support forms take before acting once per one-time key."""

from typing import Any
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.access.domain import Principal
from kopilka.errors import NotFound
from kopilka.kit.pagination import encode_cursor
from kopilka.members.service import member_service
from kopilka.programs.service import ProgramContext
from kopilka.support.repository import Key, SupportRepository, support_repository
from kopilka.support.schemas import MemberTicket, MemberTicketPage, TicketMessage
from kopilka.support.ticket_rows import message_out


def _member_view(row: Any, messages: list[TicketMessage]) -> MemberTicket:
    return MemberTicket(
        id=row.id,
        subject=row.subject,
        category=row.category,
        status=row.status,
        created_at=row.created_at,
        updated_at=row.updated_at,
        messages=messages,
    )


async def member_tickets(
    conn: AsyncConnection,
    program: ProgramContext,
    member_id: UUID,
    *,
    before: Key | None,
    limit: int,
    principal: Principal | None = None,
    repository: SupportRepository = support_repository,
) -> MemberTicketPage:
    """The member's own view: their tickets with public messages only (staff limited to
    stores: those of their stores)."""
    await member_service.get(conn, program, member_id)
    rows = await repository.member_tickets(
        conn,
        program.id,
        member_id,
        before=before,
        limit=limit,
        stores=principal.stores if principal else None,
    )
    messages = await repository.messages(conn, [r.id for r in rows], public_only=True)
    by_ticket: dict[UUID, list[TicketMessage]] = {}
    for m in messages:
        by_ticket.setdefault(m.ticket_id, []).append(message_out(m._mapping))
    items = [_member_view(r, by_ticket.get(r.id, [])) for r in rows]
    last = rows[-1] if len(rows) == limit else None
    return MemberTicketPage(
        items=items, next_cursor=encode_cursor(last.created_at, last.id) if last else None
    )


async def member_ticket(
    conn: AsyncConnection,
    program: ProgramContext,
    member_id: UUID,
    ticket_id: UUID,
    *,
    repository: SupportRepository = support_repository,
) -> MemberTicket:
    """One of the member's own tickets with its public messages, oldest first (internal
    notes never); NotFound for a ticket that is not theirs, as for one that does not
    exist."""
    row = await repository.ticket(conn, program.id, ticket_id)
    if row is None or row.member_id != member_id:
        raise NotFound(f"ticket {ticket_id} not found", field="ticket_id")
    messages = await repository.messages(conn, [row.id], public_only=True)
    return _member_view(row, [message_out(m._mapping) for m in messages])


async def lock_member_requests(
    conn: AsyncConnection, program: ProgramContext, member_id: UUID
) -> None:
    """Take the member's lock before a new ticket of theirs: a form sent twice at once is
    then written by one sending and found by the other (its one-time key's answer)."""
    await member_service.lock(conn, program, [member_id])


async def lock_member_ticket(
    conn: AsyncConnection,
    program: ProgramContext,
    member_id: UUID,
    ticket_id: UUID,
    *,
    repository: SupportRepository = support_repository,
) -> None:
    """Lock one of the member's own tickets before their reply (the lock the reply takes
    anyway, taken first: the same reply sent twice at once is written once); NotFound for
    a ticket that is not theirs, as for one that does not exist."""
    row = await repository.ticket(conn, program.id, ticket_id, lock=True)
    if row is None or row.member_id != member_id:
        raise NotFound(f"ticket {ticket_id} not found", field="ticket_id")
