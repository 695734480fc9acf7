"""The member's own view of their tickets: public messages only."""

from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.access.domain import Principal
from kopilka.kit.pagination import encode_cursor
from kopilka.members.service import member_service
from kopilka.programs.service import ProgramContext
from kopilka.support.repository import Key, SupportRepository, support_repository
from kopilka.support.schemas import MemberTicket, MemberTicketPage, TicketMessage
from kopilka.support.ticket_rows import message_out


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
    items = [
        MemberTicket(
            id=r.id,
            subject=r.subject,
            category=r.category,
            status=r.status,
            created_at=r.created_at,
            updated_at=r.updated_at,
            messages=by_ticket.get(r.id, []),
        )
        for r in rows
    ]
    last = rows[-1] if len(rows) == limit else None
    return MemberTicketPage(
        items=items, next_cursor=encode_cursor(last.created_at, last.id) if last else None
    )
