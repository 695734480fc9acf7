"""HTTP routes of messaging for the program's team (admin keys): settings, suppressions,
templates, messages and broadcasts. A member's side is in ``member_endpoints.py``, the
pages links open (and provider callbacks) in ``pages.py``."""

from typing import Annotated, Literal
from uuid import UUID

from fastapi import APIRouter, Query, Response
from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.access.domain import Permission as P
from kopilka.access.domain import Principal
from kopilka.http import EngineDep, in_transaction, read_only, requires
from kopilka.kit.clock import clock
from kopilka.kit.pagination import decode_cursor, next_cursor
from kopilka.messaging.broadcasts import BroadcastView, broadcast_service
from kopilka.messaging.composition import Outgoing, shown
from kopilka.messaging.delivery import delivery_service
from kopilka.messaging.domain import Channel, sms_length
from kopilka.messaging.records import MessageRow
from kopilka.messaging.schemas import (
    Broadcast,
    BroadcastCreate,
    BroadcastPage,
    Message,
    MessageDetail,
    MessagePage,
    Messages,
    MessageSend,
    MessagingSettings,
    Preview,
    PreviewRequest,
    StatusStep,
    Suppression,
    SuppressionCreate,
    Suppressions,
    TemplateList,
    TemplateSave,
    TemplateVersion,
    TestSend,
)
from kopilka.messaging.service import messaging_service
from kopilka.messaging.suppressions import suppression_service
from kopilka.messaging.templates import template_service
from kopilka.programs.service import ProgramContext

router = APIRouter(prefix="/v1", tags=["messaging"])
Limit = Annotated[int, Query(ge=1, le=1000)]
StatusFilter = Literal["queued", "sent", "delivered", "failed", "bounced", "skipped", "clicked"]


def message_out(message: MessageRow) -> Message:
    """A message as the API shows it: a secret kind's text never (``shown``), whatever path
    read it (a retry, a test send, the log)."""
    row = shown(message)
    return Message(
        id=row.id,
        member_id=row.member_id,
        kind=row.kind,
        purpose=row.purpose,
        channel=row.channel,
        status=row.status,
        error=row.error,
        to=row.to_address if row.channel != Channel.PUSH else "push subscription",
        subject=row.subject,
        body=row.body,
        link=row.link,
        attempts=row.attempts,
        due_at=row.due_at,
        broadcast_id=row.broadcast_id,
        created_at=row.created_at,
        sent_at=row.sent_at,
        read_at=row.read_at,
        clicked_at=row.clicked_at,
    )


# --- settings --------------------------------------------------------------------------------


@router.get("/messaging/settings", response_model=MessagingSettings)
async def get_settings(
    principal: Annotated[Principal, requires(P.MESSAGING_SETTINGS)], engine: EngineDep
) -> MessagingSettings:
    async def work(conn: AsyncConnection, program: ProgramContext) -> MessagingSettings:
        return (await messaging_service.setup(conn, program)).settings

    return await read_only(engine, principal, work)


@router.put("/messaging/settings", response_model=MessagingSettings)
async def put_settings(
    body: MessagingSettings,
    principal: Annotated[Principal, requires(P.MESSAGING_SETTINGS)],
    engine: EngineDep,
) -> MessagingSettings:
    """Replace the program's messaging settings (fields left out take their defaults)."""

    async def work(conn: AsyncConnection, program: ProgramContext) -> MessagingSettings:
        return await messaging_service.save_settings(conn, program, body, clock.now())

    return await in_transaction(engine, principal, work)


@router.get("/messaging/callbacks")
async def callbacks(
    principal: Annotated[Principal, requires(P.MESSAGING_SETTINGS)], engine: EngineDep
) -> dict[str, str]:
    """The signed URLs to give providers for their delivery reports."""

    async def work(conn: AsyncConnection, program: ProgramContext) -> dict[str, str]:
        setup = await messaging_service.ensure_setup(conn, program, clock.now())
        return {"sms": messaging_service.callback_url(setup, program)}

    return await in_transaction(engine, principal, work)


@router.get("/messaging/suppressions", response_model=Suppressions)
async def list_suppressions(
    principal: Annotated[Principal, requires(P.MESSAGING_SETTINGS)],
    engine: EngineDep,
    channel: Literal["email", "sms"] | None = None,
    limit: Limit = 100,
) -> Suppressions:
    """Addresses nothing is sent to, newest first, with the reason."""

    async def work(conn: AsyncConnection, program: ProgramContext) -> Suppressions:
        rows = await suppression_service.page(conn, program, channel, limit)
        return Suppressions(
            items=[Suppression.model_validate(r, from_attributes=True) for r in rows]
        )

    return await read_only(engine, principal, work)


@router.post("/messaging/suppressions", status_code=201, response_model=Suppression)
async def add_suppression(
    body: SuppressionCreate,
    principal: Annotated[Principal, requires(P.MESSAGING_SETTINGS)],
    engine: EngineDep,
) -> Suppression:
    """Stop sending to an address: a complaint, or an operator's decision."""

    async def work(conn: AsyncConnection, program: ProgramContext) -> Suppression:
        row = await suppression_service.add(
            conn, program, body.channel, body.address, body.reason, body.detail, clock.now()
        )
        return Suppression.model_validate(row, from_attributes=True)

    return await in_transaction(engine, principal, work)


@router.delete(
    "/messaging/suppressions/{channel}/{address}", status_code=204, response_class=Response
)
async def remove_suppression(
    channel: Literal["email", "sms"],
    address: str,
    principal: Annotated[Principal, requires(P.MESSAGING_SETTINGS)],
    engine: EngineDep,
) -> Response:
    """Send to the address again (it works again, or was suppressed by mistake)."""

    async def work(conn: AsyncConnection, program: ProgramContext) -> None:
        await suppression_service.remove(conn, program, channel, address)

    await in_transaction(engine, principal, work)
    return Response(status_code=204)


# --- templates -------------------------------------------------------------------------------


@router.get("/templates", response_model=TemplateList)
async def list_templates(
    principal: Annotated[Principal, requires(P.MESSAGES_READ)], engine: EngineDep
) -> TemplateList:
    """Every message kind: on or off, its channels, its variables and the version in use
    per language (0: the shipped texts)."""

    async def work(conn: AsyncConnection, program: ProgramContext) -> TemplateList:
        return TemplateList(items=await template_service.summaries(conn, program))

    return await read_only(engine, principal, work)


@router.get("/templates/{kind}/{language}", response_model=TemplateVersion)
async def get_template(
    kind: str,
    language: Literal["ru", "en"],
    principal: Annotated[Principal, requires(P.MESSAGES_READ)],
    engine: EngineDep,
) -> TemplateVersion:
    async def work(conn: AsyncConnection, program: ProgramContext) -> TemplateVersion:
        version, parts, at = await template_service.template(conn, program, kind, language)
        return TemplateVersion(
            kind=kind, language=language, version=version, parts=parts, created_at=at
        )

    return await read_only(engine, principal, work)


@router.put("/templates/{kind}/{language}", response_model=TemplateVersion)
async def save_template(
    kind: str,
    language: Literal["ru", "en"],
    body: TemplateSave,
    principal: Annotated[Principal, requires(P.MESSAGES_SEND)],
    engine: EngineDep,
) -> TemplateVersion:
    """A new version of the program's texts; refused, naming the part and the line, if a
    part does not compile, reads a variable the kind does not have, or does not render."""

    async def work(conn: AsyncConnection, program: ProgramContext) -> TemplateVersion:
        await template_service.save_template(conn, program, kind, language, body.parts, clock.now())
        version, parts, at = await template_service.template(conn, program, kind, language)
        return TemplateVersion(
            kind=kind, language=language, version=version, parts=parts, created_at=at
        )

    return await in_transaction(engine, principal, work)


@router.get("/templates/{kind}/{language}/versions", response_model=list[TemplateVersion])
async def template_versions(
    kind: str,
    language: Literal["ru", "en"],
    principal: Annotated[Principal, requires(P.MESSAGES_READ)],
    engine: EngineDep,
) -> list[TemplateVersion]:
    async def work(conn: AsyncConnection, program: ProgramContext) -> list[TemplateVersion]:
        rows = await template_service.template_versions(conn, program, kind, language)
        return [
            TemplateVersion(
                kind=r.kind,
                language=r.language,
                version=r.version,
                parts=r.parts,
                created_at=r.created_at,
            )
            for r in rows
        ]

    return await read_only(engine, principal, work)


@router.post("/templates/{kind}/preview", response_model=Preview)
async def preview(
    kind: str,
    body: PreviewRequest,
    principal: Annotated[Principal, requires(P.MESSAGES_READ)],
    engine: EngineDep,
) -> Preview:
    """Every part rendered with a member's real data (or sample data); nothing is sent."""

    async def work(conn: AsyncConnection, program: ProgramContext) -> Preview:
        language, parts = await template_service.preview(
            conn,
            program,
            kind,
            member_id=body.member_id,
            language=body.language,
            variables=body.variables,
            parts=body.parts,
        )
        length = sms_length(parts.get("sms", ""))
        return Preview(
            kind=kind,
            language=language,
            parts=parts,
            sms_segments=length.segments,
            sms_encoding=str(length.encoding),
        )

    return await read_only(engine, principal, work)


@router.post("/templates/{kind}/test", status_code=202, response_model=Message)
async def test_send(
    kind: str,
    body: TestSend,
    principal: Annotated[Principal, requires(P.MESSAGES_SEND)],
    engine: EngineDep,
) -> Message:
    """Queue the kind's message on one channel to a test address or a member (whatever
    their consent: a test is asked for by staff)."""

    async def work(conn: AsyncConnection, program: ProgramContext) -> Message:
        made = await template_service.test(
            conn,
            program,
            kind,
            channel=body.channel,
            to=body.to,
            member_id=body.member_id,
            language=body.language,
            variables=body.variables,
            now=clock.now(),
        )
        return message_out(made)

    return await in_transaction(engine, principal, work)


# --- messages --------------------------------------------------------------------------------


@router.post("/messages", status_code=202, response_model=Messages)
async def send_message(
    body: MessageSend, principal: Annotated[Principal, requires(P.MESSAGES_SEND)], engine: EngineDep
) -> Messages:
    """One message of a kind to one member, on its channels (or those given). The answer
    lists a message per channel: queued, or skipped with the reason (no consent, no
    address …). The same ``dedupe_key`` again makes nothing new."""

    async def work(conn: AsyncConnection, program: ProgramContext) -> Messages:
        item = Outgoing(
            body.kind,
            body.member_id,
            f"api:{body.dedupe_key}",
            body.variables,
            channels=body.channels,
            send_at=body.send_at,
        )
        made = await messaging_service.send_one(conn, program, item, clock.now())
        return Messages(items=[message_out(m) for m in made])

    return await in_transaction(engine, principal, work)


@router.get("/messages", response_model=MessagePage)
async def list_messages(
    principal: Annotated[Principal, requires(P.MESSAGES_READ)],
    engine: EngineDep,
    limit: Limit = 100,
    cursor: str | None = None,
    member_id: UUID | None = None,
    channel: Channel | None = None,
    status: StatusFilter | None = None,
    kind: str | None = None,
) -> MessagePage:
    """Messages, newest first."""
    before = decode_cursor(cursor) if cursor else None

    async def work(conn: AsyncConnection, program: ProgramContext) -> MessagePage:
        rows = await messaging_service.page(
            conn,
            program,
            limit=limit,
            before=before,
            member_id=member_id,
            channel=channel,
            status=status,
            kind=kind,
        )
        return MessagePage(
            items=[message_out(r) for r in rows], next_cursor=next_cursor(rows, limit)
        )

    return await read_only(engine, principal, work)


@router.get("/messages/counts")
async def message_counts(
    principal: Annotated[Principal, requires(P.MESSAGES_READ)], engine: EngineDep
) -> dict[str, int]:
    """Messages by status."""

    async def work(conn: AsyncConnection, program: ProgramContext) -> dict[str, int]:
        return await messaging_service.counts(conn, program)

    return await read_only(engine, principal, work)


@router.get("/messages/{message_id}", response_model=MessageDetail)
async def get_message(
    message_id: UUID, principal: Annotated[Principal, requires(P.MESSAGES_READ)], engine: EngineDep
) -> MessageDetail:
    """One message with its HTML and every status it took."""

    async def work(conn: AsyncConnection, program: ProgramContext) -> MessageDetail:
        row, history = await messaging_service.get(conn, program, message_id)
        return MessageDetail(
            **message_out(row).model_dump(),
            html=shown(row).html,
            unsubscribe_url=row.extra.get("unsubscribe_url"),
            history=[StatusStep(status=h.status, detail=h.detail, at=h.at) for h in history],
        )

    return await read_only(engine, principal, work)


@router.post("/messages/{message_id}/retry", status_code=202, response_model=Message)
async def retry_message(
    message_id: UUID, principal: Annotated[Principal, requires(P.MESSAGES_SEND)], engine: EngineDep
) -> Message:
    """Send a failed message again now, with fresh attempts."""

    async def work(conn: AsyncConnection, program: ProgramContext) -> Message:
        return message_out(await delivery_service.retry(conn, program, message_id, clock.now()))

    return await in_transaction(engine, principal, work)


# --- broadcasts ------------------------------------------------------------------------------


def broadcast_out(view: BroadcastView) -> Broadcast:
    row = view.row
    return Broadcast(
        id=row.id,
        name=row.name,
        kind=row.kind,
        channels=row.channels,
        status=row.status,
        scheduled_at=row.scheduled_at,
        total=row.total,
        holdout_percent=row.holdout_percent,
        done=view.done,
        counts=view.counts,
        created_at=row.created_at,
        finished_at=row.finished_at,
    )


@router.post("/broadcasts", status_code=201, response_model=Broadcast)
async def create_broadcast(
    body: BroadcastCreate,
    principal: Annotated[Principal, requires(P.MESSAGES_SEND)],
    engine: EngineDep,
) -> Broadcast:
    """A one-off message to a list of members or to a segment (its members when the
    broadcast is made); the worker makes and sends the messages, throttled, from
    ``send_at`` (default: now)."""

    async def work(conn: AsyncConnection, program: ProgramContext) -> Broadcast:
        view = await broadcast_service.create(
            conn,
            program,
            name=body.name,
            kind=body.kind,
            variables=body.variables,
            channels=body.channels,
            members=body.members,
            segment=body.segment,
            send_at=body.send_at,
            now=clock.now(),
            holdout_percent=body.holdout_percent,
        )
        return broadcast_out(view)

    return await in_transaction(engine, principal, work)


@router.get("/broadcasts", response_model=BroadcastPage)
async def list_broadcasts(
    principal: Annotated[Principal, requires(P.MESSAGES_READ)],
    engine: EngineDep,
    limit: Limit = 100,
    cursor: str | None = None,
) -> BroadcastPage:
    before = decode_cursor(cursor) if cursor else None

    async def work(conn: AsyncConnection, program: ProgramContext) -> BroadcastPage:
        views = await broadcast_service.page(conn, program, limit, before)
        rows = [v.row for v in views]
        return BroadcastPage(
            items=[broadcast_out(v) for v in views], next_cursor=next_cursor(rows, limit)
        )

    return await read_only(engine, principal, work)


@router.get("/broadcasts/{broadcast_id}", response_model=Broadcast)
async def get_broadcast(
    broadcast_id: UUID,
    principal: Annotated[Principal, requires(P.MESSAGES_READ)],
    engine: EngineDep,
) -> Broadcast:
    """The broadcast with its progress and its messages counted by status."""

    async def work(conn: AsyncConnection, program: ProgramContext) -> Broadcast:
        return broadcast_out(await broadcast_service.get(conn, program, broadcast_id))

    return await read_only(engine, principal, work)


@router.post("/broadcasts/{broadcast_id}/{action}", response_model=Broadcast)
async def change_broadcast(
    broadcast_id: UUID,
    action: Literal["pause", "resume", "cancel"],
    principal: Annotated[Principal, requires(P.MESSAGES_SEND)],
    engine: EngineDep,
) -> Broadcast:
    async def work(conn: AsyncConnection, program: ProgramContext) -> Broadcast:
        view = await broadcast_service.set_status(conn, program, broadcast_id, action, clock.now())
        return broadcast_out(view)

    return await in_transaction(engine, principal, work)
