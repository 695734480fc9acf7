"""Interactions and tickets: logging contacts, opening, moving and answering tickets under
their SLA, the breach check, and what a member's timeline reads. Never commits.

Visibility: every read and write filters by the program; a staff member limited to some
stores (``principal.stores``) sees and touches only rows of those stores (a row of no
store is the back office's), and another's row is "not found", as another program's is.
"""

from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.access.domain import Principal
from kopilka.errors import Forbidden, InvalidInput, NotFound
from kopilka.kit.clock import MAX_CLOCK_SKEW
from kopilka.kit.ids import new_id
from kopilka.kit.pagination import encode_cursor
from kopilka.members.service import member_service
from kopilka.outbox.support_events import (
    InteractionLogged,
)
from kopilka.outbox.unit import unit_of_work
from kopilka.programs.service import ProgramContext
from kopilka.stores.service import store_service
from kopilka.support import repository
from kopilka.support.repository import SupportRepository, support_repository
from kopilka.support.schemas import (
    Author,
    Interaction,
    InteractionCreate,
    InteractionPage,
    SupportItem,
    SupportSettings,
)

BREACH_CHUNK = 500
Key = tuple[datetime, UUID]


def author_of(principal: Principal) -> Author:
    return Author(
        kind="staff",
        name=principal.name or ("staff" if principal.is_staff else "api key"),
        key_id=principal.key_id,
        staff_id=principal.staff_id,
    )


class SupportService:
    def __init__(self, repository: SupportRepository = support_repository) -> None:
        self.repository = repository

    # --- settings ----------------------------------------------------------------------------

    async def settings(self, conn: AsyncConnection, program: ProgramContext) -> SupportSettings:
        found = await self.repository.settings(conn, program.id)
        if found is None:
            return SupportSettings()
        return SupportSettings.model_validate(found, strict=False)

    async def save_settings(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        settings: SupportSettings,
        now: datetime,
    ) -> SupportSettings:
        await self.repository.save_settings(conn, program.id, settings.model_dump(mode="json"), now)
        return settings

    # --- interactions ------------------------------------------------------------------------

    async def log_interaction(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        principal: Principal,
        member_id: UUID,
        data: InteractionCreate,
        now: datetime,
    ) -> Interaction:
        """Log a contact with the member; a staff member limited to stores logs only at
        theirs (a contact at no store is the back office's)."""
        await member_service.writable(conn, program, member_id)
        await self.check_store(conn, program, data.store)
        if not principal.may_act_at(data.store):
            raise Forbidden(
                f"you may not log interactions at {data.store or 'no store'}", field="store"
            )
        occurred_at = data.occurred_at or now
        if occurred_at > now + MAX_CLOCK_SKEW:
            raise InvalidInput("occurred_at is in the future", field="occurred_at")
        if data.purchase_id is not None:
            await self.purchase_of(conn, program, member_id, data.purchase_id, None, "purchase_id")
        if data.ticket_id is not None:
            ticket = await self.repository.ticket(conn, program.id, data.ticket_id)
            if ticket is None or ticket.member_id != member_id:
                raise NotFound(f"ticket {data.ticket_id} not found", field="ticket_id")
        author = author_of(principal)
        row: dict[str, Any] = {
            "id": new_id(),
            "program_id": program.id,
            "member_id": member_id,
            "kind": str(data.kind),
            "direction": str(data.direction) if data.direction else None,
            "summary": data.summary,
            "body": data.body,
            "outcome": str(data.outcome) if data.outcome else None,
            "outcome_note": data.outcome_note,
            "store": data.store,
            "purchase_id": data.purchase_id,
            "ticket_id": data.ticket_id,
            "logged_by_key": principal.key_id,
            "logged_by_staff": principal.staff_id,
            "logged_by_name": author.name,
            "occurred_at": occurred_at,
            "created_at": now,
        }
        await self.repository.insert_interaction(conn, row)
        async with unit_of_work(conn, now) as uow:
            uow.emit(
                InteractionLogged(
                    program_id=program.id,
                    member_id=member_id,
                    occurred_at=occurred_at,
                    interaction_id=row["id"],
                    kind=row["kind"],
                    direction=row["direction"],
                    summary=data.summary,
                    outcome=row["outcome"],
                    store=data.store,
                    logged_by_staff=principal.staff_id,
                    logged_by_name=author.name,
                )
            )
        return _interaction(row)

    async def check_store(
        self, conn: AsyncConnection, program: ProgramContext, store: str | None
    ) -> None:
        """A store named on support's records is one of the program's (once it has any)."""
        if store is not None and await store_service.unknown_stores(conn, program, {store}):
            raise InvalidInput(f"store {store!r} is not one of the program's stores", field="store")

    async def interactions(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        principal: Principal | None,
        member_id: UUID,
        *,
        before: Key | None,
        limit: int,
    ) -> InteractionPage:
        await member_service.get(conn, program, member_id)
        rows = await self.repository.interactions(
            conn,
            program.id,
            member_id,
            before=before,
            limit=limit,
            stores=principal.stores if principal else None,
        )
        items = [_interaction(r._mapping) for r in rows]
        last = items[-1] if len(items) == limit else None
        return InteractionPage(
            items=items, next_cursor=encode_cursor(last.occurred_at, last.id) if last else None
        )

    async def purchase_of(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        member_id: UUID,
        purchase_id: UUID | None,
        external_id: str | None,
        field: str,
    ) -> Any:
        """The member's purchase by id or external id (its id, external id and store);
        ``NotFound`` naming ``field`` if the member has no such purchase."""
        found = await self.repository.purchase(
            conn, program.id, purchase_id=purchase_id, external_id=external_id
        )
        if found is None or found.member_id != member_id:
            raise NotFound(f"no purchase {purchase_id or external_id} of this member", field=field)
        return found

    # --- a member's timeline -----------------------------------------------------------------

    async def member_items(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        member_id: UUID,
        *,
        before: Key | None = None,
        limit: int = 50,
        principal: Principal | None = None,
    ) -> list[SupportItem]:
        """The member's interactions, tickets (at their opening) and survey answers, newest
        first, at most ``limit``, before the (instant, id) ``before`` — what the customer's
        timeline shows from support. A store-limited principal sees only its stores' rows."""
        stores = principal.stores if principal else None
        interactions = await self.repository.interactions(
            conn, program.id, member_id, before=before, limit=limit, stores=stores
        )
        tickets = await self.repository.member_tickets(
            conn, program.id, member_id, before=before, limit=limit, stores=stores
        )
        answers = await self.repository.member_responses(
            conn, program.id, member_id, before=before, limit=limit, stores=stores
        )
        items = [
            SupportItem(
                type="interaction",
                id=r.id,
                at=r.occurred_at,
                title=f"{r.kind}: {r.summary}",
                detail=r.outcome,
                store=r.store,
            )
            for r in interactions
        ]
        items += [
            SupportItem(
                type="ticket",
                id=r.id,
                at=r.created_at,
                title=r.subject,
                detail=f"{r.status}, {r.priority}, {r.category}",
                store=r.store,
            )
            for r in tickets
        ]
        items += [
            SupportItem(
                type="survey_response",
                id=r.id,
                at=r.answered_at,
                title=r.name,
                detail=None if r.score is None else f"score {r.score}",
                store=r.store,
            )
            for r in answers
        ]
        items.sort(key=lambda i: (i.at, i.id), reverse=True)
        return items[:limit]


async def reassign_member(
    conn: AsyncConnection, program: ProgramContext, source: UUID, target: UUID
) -> int:
    """Two profiles of one person merged: ``source``'s interactions, tickets, survey
    invitations and answers become ``target``'s."""
    return await repository.reassign_member(conn, program.id, source, target)


async def erase_member(conn: AsyncConnection, program: ProgramContext, member_id: UUID) -> int:
    """A member's personal data erased from support (see ``repository.erase_member``)."""
    return await repository.erase_member(conn, program.id, member_id)


async def purge_interactions(
    conn: AsyncConnection, program: ProgramContext, before: datetime, limit: int
) -> int:
    """Up to ``limit`` interactions older than ``before`` deleted (a retention period)."""
    return await repository.purge_interactions_before(conn, program.id, before, limit)


def _interaction(row: Any) -> Interaction:
    return Interaction(
        id=row["id"],
        member_id=row["member_id"],
        kind=row["kind"],
        direction=row["direction"],
        summary=row["summary"],
        body=row["body"],
        outcome=row["outcome"],
        outcome_note=row["outcome_note"],
        store=row["store"],
        purchase_id=row["purchase_id"],
        ticket_id=row["ticket_id"],
        logged_by=Author(
            kind="staff",
            name=row["logged_by_name"],
            key_id=row["logged_by_key"],
            staff_id=row["logged_by_staff"],
        ),
        occurred_at=row["occurred_at"],
        created_at=row["created_at"],
    )


support_service = SupportService()
