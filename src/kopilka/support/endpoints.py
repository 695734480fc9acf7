"""HTTP routes of support: interactions, tickets, support settings, surveys."""

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Header, Query
from fastapi.responses import JSONResponse
from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.access.domain import Permission as P
from kopilka.access.domain import Principal
from kopilka.http import EngineDep, in_transaction, json_response, read_only, requires
from kopilka.kit.clock import clock
from kopilka.kit.pagination import decode_cursor, decode_key_cursor
from kopilka.kit.types import Instant
from kopilka.programs.service import ProgramContext
from kopilka.support.domain import Priority, ScoreGroup, TicketStatus
from kopilka.support.member_tickets import member_tickets as tickets_of_member
from kopilka.support.schemas import (
    Interaction,
    InteractionCreate,
    InteractionPage,
    MemberReplyCreate,
    MemberTicket,
    MemberTicketCreate,
    MemberTicketPage,
    NoteCreate,
    ReplyCreate,
    ResponseCreate,
    ResponsePage,
    Scores,
    SupportSettings,
    Survey,
    SurveyCreate,
    SurveyPage,
    SurveyResponse,
    SurveyUpdate,
    Ticket,
    TicketCreate,
    TicketPage,
    TicketUpdate,
)
from kopilka.support.service import support_service
from kopilka.support.surveys import survey_service
from kopilka.support.tickets import ticket_service

router = APIRouter(prefix="/v1")
IdempotencyKey = Annotated[str | None, Header(alias="Idempotency-Key", max_length=200)]
Limit = Annotated[int, Query(ge=1, le=200)]
Cursor = Annotated[str | None, Query(max_length=500)]


# --- interactions ---------------------------------------------------------------------------


@router.post(
    "/members/{member_id}/interactions",
    status_code=201,
    response_model=Interaction,
    tags=["support"],
)
async def log_interaction(
    member_id: UUID,
    body: InteractionCreate,
    principal: Annotated[Principal, requires(P.INTERACTIONS_LOG)],
    engine: EngineDep,
) -> Interaction:
    """Log a call, e-mail, chat, visit or note with the member, and its outcome."""

    async def work(conn: AsyncConnection, program: ProgramContext) -> Interaction:
        return await support_service.log_interaction(
            conn, program, principal, member_id, body, clock.now()
        )

    return await in_transaction(engine, principal, work)


@router.get("/members/{member_id}/interactions", response_model=InteractionPage, tags=["support"])
async def member_interactions(
    member_id: UUID,
    principal: Annotated[Principal, requires(P.MEMBERS_READ)],
    engine: EngineDep,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> InteractionPage:
    """The member's interactions, newest first."""
    before = decode_cursor(cursor) if cursor else None

    async def work(conn: AsyncConnection, program: ProgramContext) -> InteractionPage:
        return await support_service.interactions(
            conn, program, principal, member_id, before=before, limit=limit
        )

    return await read_only(engine, principal, work)


# --- settings -------------------------------------------------------------------------------


@router.get("/support/settings", response_model=SupportSettings, tags=["support"])
async def get_support_settings(
    principal: Annotated[Principal, requires(P.TICKETS_HANDLE)], engine: EngineDep
) -> SupportSettings:
    """Ticket categories, SLA targets per priority, the reply address."""
    return await read_only(
        engine, principal, lambda conn, program: support_service.settings(conn, program)
    )


@router.put("/support/settings", response_model=SupportSettings, tags=["support"])
async def put_support_settings(
    body: SupportSettings,
    principal: Annotated[Principal, requires(P.PROGRAM_EDIT)],
    engine: EngineDep,
) -> SupportSettings:
    """Replace the support settings (a field left out takes its default). New SLA targets
    apply to tickets opened (or reprioritised) from now on."""
    return await in_transaction(
        engine,
        principal,
        lambda conn, program: support_service.save_settings(conn, program, body, clock.now()),
    )


# --- tickets --------------------------------------------------------------------------------


@router.post("/tickets", status_code=201, response_model=Ticket, tags=["support"])
async def open_ticket(
    body: TicketCreate,
    principal: Annotated[Principal, requires(P.TICKETS_HANDLE)],
    engine: EngineDep,
) -> Ticket:
    """Open a ticket for a member (staff, an integration)."""

    async def work(conn: AsyncConnection, program: ProgramContext) -> Ticket:
        return await ticket_service.open_ticket(conn, program, principal, body, clock.now())

    return await in_transaction(engine, principal, work)


@router.post(
    "/members/{member_id}/tickets", status_code=201, response_model=Ticket, tags=["support"]
)
async def open_member_ticket(
    member_id: UUID,
    body: MemberTicketCreate,
    principal: Annotated[Principal, requires(P.MEMBERS_WRITE)],
    engine: EngineDep,
) -> Ticket:
    """The member's own ticket, from the member app or the till."""

    async def work(conn: AsyncConnection, program: ProgramContext) -> Ticket:
        return await ticket_service.open_member_ticket(
            conn, program, member_id, body, clock.now(), principal=principal
        )

    return await in_transaction(engine, principal, work)


@router.get("/tickets", response_model=TicketPage, tags=["support"])
async def ticket_queue(
    principal: Annotated[Principal, requires(P.TICKETS_HANDLE)],
    engine: EngineDep,
    status: Annotated[list[TicketStatus] | None, Query()] = None,
    assignee_id: UUID | None = None,
    unassigned: bool = False,
    priority: Priority | None = None,
    category: Annotated[str | None, Query(max_length=40)] = None,
    store: Annotated[str | None, Query(max_length=100)] = None,
    member_id: UUID | None = None,
    breached: bool = False,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> TicketPage:
    """The queue, the nearest deadline first (without ``status``: new, open and waiting)."""
    after = decode_cursor(cursor) if cursor else None

    async def work(conn: AsyncConnection, program: ProgramContext) -> TicketPage:
        return await ticket_service.queue(
            conn,
            program,
            principal,
            clock.now(),
            status=status,
            assignee_id=assignee_id,
            unassigned=unassigned,
            priority=priority,
            category=category,
            store=store,
            member_id=member_id,
            breached=breached,
            after=after,
            limit=limit,
        )

    return await read_only(engine, principal, work)


@router.get("/tickets/{ticket_id}", response_model=Ticket, tags=["support"])
async def get_ticket(
    ticket_id: UUID,
    principal: Annotated[Principal, requires(P.TICKETS_HANDLE)],
    engine: EngineDep,
) -> Ticket:
    """A ticket with every message, internal notes included."""

    async def work(conn: AsyncConnection, program: ProgramContext) -> Ticket:
        return await ticket_service.ticket(conn, program, principal, ticket_id, clock.now())

    return await read_only(engine, principal, work)


@router.patch("/tickets/{ticket_id}", response_model=Ticket, tags=["support"])
async def update_ticket(
    ticket_id: UUID,
    body: TicketUpdate,
    principal: Annotated[Principal, requires(P.TICKETS_HANDLE)],
    engine: EngineDep,
) -> Ticket:
    """Move the ticket (409 for a move the workflow refuses), assign it, change its
    priority (its deadlines follow) or category."""

    async def work(conn: AsyncConnection, program: ProgramContext) -> Ticket:
        return await ticket_service.update_ticket(
            conn, program, principal, ticket_id, body, clock.now()
        )

    return await in_transaction(engine, principal, work)


@router.post(
    "/tickets/{ticket_id}/replies", status_code=201, response_model=Ticket, tags=["support"]
)
async def reply_to_ticket(
    ticket_id: UUID,
    body: ReplyCreate,
    principal: Annotated[Principal, requires(P.TICKETS_HANDLE)],
    engine: EngineDep,
) -> Ticket:
    """A public reply: the member gets it as a message (e-mail, else the app's inbox)."""

    async def work(conn: AsyncConnection, program: ProgramContext) -> Ticket:
        return await ticket_service.reply(conn, program, principal, ticket_id, body, clock.now())

    return await in_transaction(engine, principal, work)


@router.post("/tickets/{ticket_id}/notes", status_code=201, response_model=Ticket, tags=["support"])
async def note_on_ticket(
    ticket_id: UUID,
    body: NoteCreate,
    principal: Annotated[Principal, requires(P.TICKETS_HANDLE)],
    engine: EngineDep,
) -> Ticket:
    """An internal note, never shown to the member."""

    async def work(conn: AsyncConnection, program: ProgramContext) -> Ticket:
        return await ticket_service.note(conn, program, principal, ticket_id, body, clock.now())

    return await in_transaction(engine, principal, work)


@router.get("/members/{member_id}/tickets", response_model=MemberTicketPage, tags=["support"])
async def member_tickets(
    member_id: UUID,
    principal: Annotated[Principal, requires(P.MEMBERS_READ)],
    engine: EngineDep,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> MemberTicketPage:
    """The member's tickets as the member sees them: public messages only, newest first."""
    before = decode_cursor(cursor) if cursor else None

    async def work(conn: AsyncConnection, program: ProgramContext) -> MemberTicketPage:
        return await tickets_of_member(
            conn, program, member_id, before=before, limit=limit, principal=principal
        )

    return await read_only(engine, principal, work)


@router.post(
    "/members/{member_id}/tickets/{ticket_id}/replies",
    status_code=201,
    response_model=MemberTicket,
    tags=["support"],
)
async def member_reply(
    member_id: UUID,
    ticket_id: UUID,
    body: MemberReplyCreate,
    principal: Annotated[Principal, requires(P.MEMBERS_WRITE)],
    engine: EngineDep,
) -> MemberTicket:
    """The member writes on their ticket (the app): a waiting or resolved ticket reopens;
    a closed one is a 409."""

    async def work(conn: AsyncConnection, program: ProgramContext) -> MemberTicket:
        return await ticket_service.member_reply(
            conn, program, member_id, ticket_id, body, clock.now(), principal=principal
        )

    return await in_transaction(engine, principal, work)


# --- surveys --------------------------------------------------------------------------------


@router.post("/surveys", status_code=201, response_model=Survey, tags=["surveys"])
async def create_survey(
    body: SurveyCreate,
    principal: Annotated[Principal, requires(P.SURVEYS_MANAGE)],
    engine: EngineDep,
) -> Survey:
    """A survey with its questions (version 1)."""

    async def work(conn: AsyncConnection, program: ProgramContext) -> Survey:
        return await survey_service.create(conn, program, body, clock.now())

    return await in_transaction(engine, principal, work)


@router.get("/surveys", response_model=SurveyPage, tags=["surveys"])
async def list_surveys(
    principal: Annotated[Principal, requires(P.PROGRAM_READ)],
    engine: EngineDep,
    status: Annotated[str | None, Query(pattern="^(active|archived)$")] = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> SurveyPage:
    """The program's surveys in key order (the app lists what a member may answer); a
    store-limited staff member's counts of answers are their stores', as their scores are."""
    after = decode_key_cursor(cursor) if cursor else None

    async def work(conn: AsyncConnection, program: ProgramContext) -> SurveyPage:
        return await survey_service.page(
            conn, program, after=after, limit=limit, status=status, principal=principal
        )

    return await read_only(engine, principal, work)


@router.get("/surveys/{key}", response_model=Survey, tags=["surveys"])
async def get_survey(
    key: str, principal: Annotated[Principal, requires(P.PROGRAM_READ)], engine: EngineDep
) -> Survey:
    async def work(conn: AsyncConnection, program: ProgramContext) -> Survey:
        return await survey_service.get(conn, program, key, principal=principal)

    return await read_only(engine, principal, work)


@router.patch("/surveys/{key}", response_model=Survey, tags=["surveys"])
async def update_survey(
    key: str,
    body: SurveyUpdate,
    principal: Annotated[Principal, requires(P.SURVEYS_MANAGE)],
    engine: EngineDep,
) -> Survey:
    """Change a survey; new questions on an answered version make the next version."""

    async def work(conn: AsyncConnection, program: ProgramContext) -> Survey:
        return await survey_service.update(conn, program, key, body, clock.now())

    return await in_transaction(engine, principal, work)


@router.post(
    "/surveys/{key}/responses",
    status_code=201,
    response_model=SurveyResponse,
    tags=["surveys"],
)
async def answer_survey(
    key: str,
    body: ResponseCreate,
    principal: Annotated[Principal, requires(P.MEMBERS_WRITE)],
    engine: EngineDep,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """A member's answers, each checked against its question (a 422 names
    ``answers.N.value``). Once per invitation; the rules on ``survey_answered`` run."""

    async def work(conn: AsyncConnection, program: ProgramContext) -> tuple[int, Any, bool]:
        return await survey_service.respond(
            conn, program, key, body, idempotency_key, clock.now(), principal=principal
        )

    status_code, result, replayed = await in_transaction(engine, principal, work)
    return json_response(result, status_code, replayed=replayed)


@router.get("/surveys/{key}/responses", response_model=ResponsePage, tags=["surveys"])
async def survey_responses(
    key: str,
    principal: Annotated[Principal, requires(P.MEMBERS_READ)],
    engine: EngineDep,
    member_id: UUID | None = None,
    store: Annotated[str | None, Query(max_length=100)] = None,
    since: Annotated[Instant | None, Query(alias="from")] = None,
    until: Annotated[Instant | None, Query(alias="to")] = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> ResponsePage:
    """The survey's answers, newest first."""
    before = decode_cursor(cursor) if cursor else None

    async def work(conn: AsyncConnection, program: ProgramContext) -> ResponsePage:
        return await survey_service.responses(
            conn,
            program,
            principal,
            key,
            member_id=member_id,
            store=store,
            since=since,
            until=until,
            before=before,
            limit=limit,
        )

    return await read_only(engine, principal, work)


@router.get("/surveys/{key}/scores", response_model=Scores, tags=["surveys"])
async def survey_scores(
    key: str,
    principal: Annotated[Principal, requires(P.SURVEYS_READ)],
    engine: EngineDep,
    by: ScoreGroup = ScoreGroup.STORE,
    since: Annotated[Instant | None, Query(alias="from")] = None,
    until: Annotated[Instant | None, Query(alias="to")] = None,
) -> Scores:
    """NPS, CSAT, average and response counts in [from, to), overall and per store, month
    or staff member."""

    async def work(conn: AsyncConnection, program: ProgramContext) -> Scores:
        return await survey_service.scores(
            conn, program, principal, key, by, since=since, until=until
        )

    return await read_only(engine, principal, work, snapshot=True)
